//! The UDP receive loop: one datagram, one copy into shared bytes, one
//! parse, one hand-off to the transaction layer.

use super::{Inbound, Source, TransportKind};
use crate::message::{ParseErrorKind, parse_datagram};
use bytes::Bytes;
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub(super) async fn receive_loop(
    sock: Arc<UdpSocket>,
    inbound: mpsc::Sender<Inbound>,
    shutdown: CancellationToken,
) {
    let local = match sock.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(message = "UDP socket has no local address.", error = %e);
            return;
        }
    };
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, remote) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = sock.recv_from(&mut buf) => match r {
                Ok(v) => v,
                Err(e) => {
                    // ICMP errors of earlier sends surface here; keep going.
                    tracing::debug!(message = "UDP receive error.", %local, error = %e);
                    continue;
                }
            },
        };
        let source = Source {
            kind: TransportKind::Udp,
            local,
            remote,
            conn: None,
        };
        let item = match parse_datagram(Bytes::copy_from_slice(&buf[..n])) {
            Ok(msg) => Inbound::Message { msg, source },
            Err(e) if e.kind == ParseErrorKind::Empty => continue,
            Err(error) => Inbound::Malformed { error, source },
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = inbound.try_send(item) {
            // Overload: drop like a congested network would; the sender
            // retransmits.
            tracing::warn!(message = "Inbound queue full, datagram dropped.", %remote);
        }
    }
}
