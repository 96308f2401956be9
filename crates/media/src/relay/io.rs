//! Moving datagrams from one socket to another. This is the one place that
//! reads and writes the relay's sockets: batching with `recvmmsg` and
//! `sendmmsg` replaces the body of [`relay`] and nothing else.
//!
//! Packets are read into a buffer owned by the worker thread (64 KiB, so no
//! datagram is ever truncated) and sent from it; no stream owns a buffer
//! and nothing is allocated per packet. Reads go through Tokio (which clears
//! the socket's readiness when it runs dry); sends go straight to the
//! kernel through `socket2`, never waiting on Tokio's write readiness: a
//! send that would block is a dropped packet, as on a congested network.

use socket2::{SockAddr, SockRef};
use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use tokio::net::UdpSocket;

/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_536;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; MAX_DATAGRAM].into_boxed_slice());
}

/// What one call of [`relay`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Moved {
    /// Datagrams read.
    pub(crate) received: u64,
    /// Datagrams sent on.
    pub(crate) sent: u64,
    /// Bytes sent on.
    pub(crate) sent_bytes: u64,
}

/// Reads up to `max` datagrams from `from` without waiting; shows each to
/// `inspect` (bytes and source) and, when `to_addr` is known, sends the same
/// bytes out of `to`.
pub(crate) fn relay(
    from: &UdpSocket,
    to: &UdpSocket,
    to_addr: Option<SocketAddr>,
    max: usize,
    mut inspect: impl FnMut(&[u8], SocketAddr),
) -> Moved {
    let dest = to_addr.map(SockAddr::from);
    let out = SockRef::from(to);
    SCRATCH.with(|scratch| {
        let Ok(mut buf) = scratch.try_borrow_mut() else {
            // Re-entered from `inspect`: cannot happen, never panic on it.
            return Moved::default();
        };
        let mut moved = Moved::default();
        while moved.received < max as u64 {
            let (len, source) = match from.try_recv_from(&mut buf) {
                Ok(v) => v,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if e.kind() != io::ErrorKind::WouldBlock {
                        tracing::debug!(message = "Media socket receive error.", error = %e);
                    }
                    break;
                }
            };
            moved.received += 1;
            let packet = &buf[..len];
            inspect(packet, source);
            if let Some(dest) = &dest
                && out.send_to(packet, dest).is_ok()
            {
                moved.sent += 1;
                moved.sent_bytes += len as u64;
            }
        }
        moved
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sock() -> UdpSocket {
        UdpSocket::bind("127.0.0.1:0").await.unwrap()
    }

    #[tokio::test]
    async fn moves_bytes_unchanged_and_reports_sources() {
        let (phone, from, to, far) = (sock().await, sock().await, sock().await, sock().await);
        let from_addr = from.local_addr().unwrap();
        for i in 0..5u8 {
            phone.send_to(&[i; 172], from_addr).await.unwrap();
        }
        from.readable().await.unwrap();
        let mut seen = Vec::new();
        let moved = relay(&from, &to, Some(far.local_addr().unwrap()), 3, |p, s| {
            seen.push((p[0], p.len(), s))
        });
        assert_eq!(moved.received, 3);
        assert_eq!(moved.sent, 3);
        assert_eq!(moved.sent_bytes, 3 * 172);
        let phone_addr = phone.local_addr().unwrap();
        assert!(
            seen.iter()
                .all(|&(_, len, s)| len == 172 && s == phone_addr)
        );
        let moved = relay(&from, &to, None, 64, |_, _| {});
        assert_eq!((moved.received, moved.sent), (2, 0));
        let mut buf = [0u8; 2048];
        for i in 0..3u8 {
            let (n, src) = far.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &[i; 172][..]);
            assert_eq!(src, to.local_addr().unwrap());
        }
    }
}
