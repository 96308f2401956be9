//! Moving datagrams from one socket to another. This is the one place that
//! reads and writes the relay's sockets: [`relay`] moves a batch of
//! datagrams from one socket to another, and [`discard`] empties a socket's
//! receive queue (for a relay taken from the spares).
//!
//! Packets are read into a buffer owned by the worker thread (64 KiB, so no
//! datagram is ever truncated) and sent from it; no stream owns a buffer
//! and nothing is allocated per packet. Reads go through Tokio (which clears
//! the socket's readiness when it runs dry); sends go straight to the
//! kernel through `socket2`, never waiting on Tokio's write readiness: a
//! send that would block is a dropped packet, as on a congested network.
//!
//! Batching with `recvmmsg`/`sendmmsg` was measured with `rtpload` (500
//! sessions, 50,000 packets/s on loopback) and left out: a stream's socket
//! holds one datagram when its task wakes up (50 packets/s per stream), and
//! one `recvmmsg` for a lone datagram costs more relay CPU than the
//! `recvfrom` that reads it plus the one that says `EAGAIN` (about +10 %
//! with one worker thread), even though it halves the read system calls.
//! Reading two datagrams with `recvfrom` and only then batching matched
//! this module within the noise, at 50,000 packets/s and at the highest
//! loss-free rate alike. The CPU a bare forwarder does not spend goes to
//! the worker threads' wake-ups, not to these calls.

use socket2::{SockAddr, SockRef};
use std::cell::RefCell;
use std::io;
use std::mem::MaybeUninit;
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

/// Reads and throws away what `sock`'s receive queue holds now, up to
/// `max` datagrams, whatever Tokio thinks of its readiness (and leaving it
/// as it is); returns how many. Works on any thread: it needs no scratch
/// buffer (a datagram longer than the small buffer is dropped whole).
pub(crate) fn discard(sock: &UdpSocket, max: usize) -> u64 {
    let raw = SockRef::from(sock);
    let mut buf = [MaybeUninit::<u8>::uninit(); 64];
    let mut thrown = 0;
    while thrown < max as u64 {
        match raw.recv(&mut buf) {
            Ok(_) => thrown += 1,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    thrown
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

    #[tokio::test]
    async fn the_largest_datagram_is_not_truncated() {
        let (phone, from, to, far) = (sock().await, sock().await, sock().await, sock().await);
        let big = vec![0x5a; 65_507];
        phone
            .send_to(&big, from.local_addr().unwrap())
            .await
            .unwrap();
        from.readable().await.unwrap();
        let moved = relay(&from, &to, Some(far.local_addr().unwrap()), 8, |p, _| {
            assert_eq!(p.len(), big.len())
        });
        assert_eq!((moved.received, moved.sent), (1, 1));
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let (n, _) = far.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], &big[..]);
    }

    #[tokio::test]
    async fn discard_empties_the_queue_without_readiness() {
        let (phone, from) = (sock().await, sock().await);
        let to = from.local_addr().unwrap();
        for _ in 0..40 {
            phone.send_to(&[9; 100], to).await.unwrap();
        }
        // Loopback delivers before send_to returns: no need to wait.
        assert_eq!(discard(&from, 1_000), 40);
        assert_eq!(discard(&from, 1_000), 0);
        for _ in 0..5 {
            phone.send_to(&[9; 100], to).await.unwrap();
        }
        assert_eq!(discard(&from, 2), 2, "bounded");
        // Long datagrams go whole, whatever the small buffer.
        phone.send_to(&[7; 3000], to).await.unwrap();
        assert_eq!(discard(&from, 1_000), 4);
    }
}
