//! The task that relays one stream: four sockets (RTP and RTCP facing A,
//! RTP and RTCP facing B), one poll loop, no locks.

use super::io::relay;
use super::peer::{Peer, for_socket};
use super::{Remote, SdpTarget};
use crate::packet::{RtpHeader, looks_like_rtcp};
use crate::shared::{Kind, SessionShared};
use std::future::poll_fn;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Packets read from one socket before the others get a turn.
const BATCH: usize = 32;

/// Socket (and peer) index: `side * 2 + kind`, side A = 0, RTP = 0.
fn index(side: usize, kind: Kind) -> usize {
    side * 2 + usize::from(kind == Kind::Rtcp)
}

/// The state of one stream, owned by its task.
pub(super) struct RelayTask {
    sockets: [UdpSocket; 4],
    state: State,
    ctl: mpsc::UnboundedReceiver<Remote>,
}

struct State {
    /// Where side `i / 2` wants packets of kind `i % 2`.
    peers: [Peer; 4],
    rtp_proto: bool,
    local: IpAddr,
    shared: Arc<SessionShared>,
}

impl RelayTask {
    pub(super) fn new(
        sockets: [UdpSocket; 4],
        ctl: mpsc::UnboundedReceiver<Remote>,
        shared: Arc<SessionShared>,
    ) -> std::io::Result<RelayTask> {
        let local = sockets[0].local_addr()?.ip();
        Ok(RelayTask {
            sockets,
            state: State {
                peers: [Peer::default(); 4],
                rtp_proto: true,
                local,
                shared,
            },
            ctl,
        })
    }

    /// Relays until the session drops the stream (or the runtime shuts down).
    pub(super) async fn run(mut self) {
        poll_fn(|cx| self.poll(cx)).await;
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let RelayTask {
            sockets,
            state,
            ctl,
        } = self;
        loop {
            // SDP first: packets read after `set_remote` returned see it.
            loop {
                match ctl.poll_recv(cx) {
                    Poll::Ready(Some(remote)) => state.apply(remote),
                    Poll::Ready(None) => return Poll::Ready(()),
                    Poll::Pending => break,
                }
            }
            let mut progressed = false;
            for (i, socket) in sockets.iter().enumerate() {
                match socket.poll_recv_ready(cx) {
                    Poll::Ready(Ok(())) => {
                        progressed = true;
                        // Out of the same kind of socket facing the other side;
                        // Tokio clears the readiness once the socket runs dry.
                        state.relay_from(i, socket, &sockets[i ^ 2]);
                    }
                    // The IO driver is gone: the runtime is shutting down.
                    Poll::Ready(Err(_)) => return Poll::Ready(()),
                    Poll::Pending => {}
                }
            }
            // Tokio's cooperative budget turns the readiness polls Pending
            // (and wakes us) after a while, so this loop always yields.
            if !progressed {
                return Poll::Pending;
            }
        }
    }
}

impl State {
    fn apply(&mut self, remote: Remote) {
        let side = remote.side.index();
        self.rtp_proto = remote.rtp_proto;
        for (kind, target) in [(Kind::Rtp, remote.rtp), (Kind::Rtcp, remote.rtcp)] {
            let target = match target {
                SdpTarget::Addr(a) => SdpTarget::Addr(for_socket(a, self.local)),
                other => other,
            };
            self.peers[index(side, kind)].set_sdp(target);
        }
    }

    /// Relays what socket `i` has to the same kind of socket facing the
    /// other side.
    fn relay_from(&mut self, i: usize, from: &UdpSocket, to: &UdpSocket) {
        let side = i / 2;
        let kind = if i.is_multiple_of(2) {
            Kind::Rtp
        } else {
            Kind::Rtcp
        };
        let dest = self.peers[i ^ 2].target();
        let latch_any = !self.rtp_proto;
        let peer = &mut self.peers[i];
        let moved = relay(from, to, dest, BATCH, |packet, source| {
            let genuine = latch_any
                || match kind {
                    Kind::Rtp => RtpHeader::parse(packet).is_some() || looks_like_rtcp(packet),
                    Kind::Rtcp => looks_like_rtcp(packet),
                };
            if genuine && peer.saw(source) {
                tracing::debug!(message = "Media source latched.", side, ?kind, %source);
            }
        });
        if moved.received > 0 {
            self.shared.touch();
            self.shared.record(
                side,
                kind,
                moved.sent,
                moved.sent_bytes,
                moved.received - moved.sent,
            );
        }
    }
}
