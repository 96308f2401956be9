//! The task that relays one stream: four sockets (RTP and RTCP facing A,
//! RTP and RTCP facing B), one poll loop, no lock per packet (the mailbox
//! is locked only when it holds messages).
//!
//! The task outlives the session it serves: when the session ends it is
//! parked (it keeps reading its sockets and throws away whatever arrives, so
//! nothing queues up, latches or is counted), and a later session can take
//! it over with a new set of counters, after emptying the sockets' receive
//! queues itself (see `Relay::activate`).

use super::io::relay;
use super::peer::{Peer, for_socket};
use super::{Ctl, Ends, Remote, SdpTarget};
use crate::packet::{RtpHeader, looks_like_rtcp};
use crate::shared::{Kind, SessionShared};
use std::future::poll_fn;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::UdpSocket;

/// Packets read from one socket before the others get a turn.
const BATCH: usize = 32;

/// Socket (and peer) index: `side * 2 + kind`, side A = 0, RTP = 0.
fn index(side: usize, kind: Kind) -> usize {
    side * 2 + usize::from(kind == Kind::Rtcp)
}

/// The state of one stream, owned by its task.
pub(super) struct RelayTask {
    /// The sockets and the mailbox.
    ends: Arc<Ends>,
    state: State,
}

struct State {
    /// Where side `i / 2` wants packets of kind `i % 2`.
    peers: [Peer; 4],
    rtp_proto: bool,
    local: IpAddr,
    /// The session served; `None` while parked.
    shared: Option<Arc<SessionShared>>,
}

impl RelayTask {
    /// A task serving `shared` from the start.
    pub(super) fn new(ends: Arc<Ends>, shared: Arc<SessionShared>) -> std::io::Result<RelayTask> {
        let local = ends.sockets[0].local_addr()?.ip();
        Ok(RelayTask {
            ends,
            state: State {
                peers: [Peer::default(); 4],
                rtp_proto: true,
                local,
                shared: Some(shared),
            },
        })
    }

    /// Relays until the relay is dropped for good (which aborts the task)
    /// or the runtime shuts down.
    pub(super) async fn run(mut self) {
        poll_fn(|cx| self.poll(cx)).await;
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let RelayTask { ends, state } = self;
        let Ends { sockets, mailbox } = &**ends;
        loop {
            // The mailbox first: packets read after `set_remote` returned
            // see it.
            mailbox.drain(|msg| state.apply(msg));
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
    fn apply(&mut self, msg: Ctl) {
        match msg {
            Ctl::Remote(remote) if self.shared.is_some() => self.set_remote(remote),
            Ctl::Remote(_) => {}
            Ctl::Park => self.reset(None),
            Ctl::Activate(shared) => self.reset(Some(shared)),
        }
    }

    /// Forgets the previous session's peers and serves `shared`.
    fn reset(&mut self, shared: Option<Arc<SessionShared>>) {
        self.peers = [Peer::default(); 4];
        self.rtp_proto = true;
        self.shared = shared;
    }

    fn set_remote(&mut self, remote: Remote) {
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
    /// other side (or throws it away while parked).
    fn relay_from(&mut self, i: usize, from: &UdpSocket, to: &UdpSocket) {
        let Some(shared) = &self.shared else {
            relay(from, to, None, BATCH, |_, _| {});
            return;
        };
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
            shared.touch();
            shared.record(
                side,
                kind,
                moved.sent,
                moved.sent_bytes,
                moved.received - moved.sent,
            );
        }
    }
}
