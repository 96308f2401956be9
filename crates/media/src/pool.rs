//! The RTP port pool: even ports for RTP, the next odd port for RTCP, handed
//! out round-robin so a port just given back is the last to be bound again
//! (late packets of an ended call do not reach the next one).
//!
//! A pair counts as taken only once both of its sockets are bound; a port
//! that another process holds is skipped and tried again on a later pass.
//! A taken pair is either *live* (a session relays on it) or *idle* (its
//! session ended and its sockets stay bound, parked with their relay among
//! the spares for the next session: see `relay::spare`). The lease says
//! which, so the pool counts both exactly. The lock is taken only to hand
//! out, park, take back or give back a pair, never per packet.

use crate::config::MediaConfig;
use crate::error::MediaError;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

/// The engine's pool of RTP/RTCP port pairs.
#[derive(Debug)]
pub(crate) struct PortPool {
    bind: IpAddr,
    first: u16,
    pairs: usize,
    port_min: u16,
    port_max: u16,
    state: Mutex<PoolState>,
    /// Pairs held by live sessions.
    live: AtomicUsize,
    /// Pairs bound and parked for reuse.
    idle: AtomicUsize,
}

/// What became of one pair of the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Not bound by us.
    Free,
    /// Bound, a session relays on it.
    Live,
    /// Bound, no session: parked for reuse.
    Idle,
}

#[derive(Debug)]
struct PoolState {
    slots: Vec<Slot>,
    next: usize,
}

/// A pair taken from the pool, live until [`PortLease::park`]; dropping it
/// gives the pair back (its sockets must close with it).
#[derive(Debug)]
pub(crate) struct PortLease {
    pool: Arc<PortPool>,
    index: usize,
}

impl PortLease {
    /// The pair's session ended; its sockets stay bound for the next one.
    pub(crate) fn park(&self) {
        self.pool.set(self.index, Slot::Idle);
    }

    /// A new session took the parked pair.
    pub(crate) fn unpark(&self) {
        self.pool.set(self.index, Slot::Live);
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        self.pool.set(self.index, Slot::Free);
    }
}

/// A pair's two bound, non-blocking sockets and its lease.
#[derive(Debug)]
pub(crate) struct BoundPair {
    /// The RTP socket (even port).
    pub(crate) rtp: UdpSocket,
    /// The RTCP socket (RTP port + 1).
    pub(crate) rtcp: UdpSocket,
    /// The RTP port.
    pub(crate) port: u16,
    /// Gives the pair back when dropped.
    pub(crate) lease: PortLease,
}

impl PortPool {
    /// A pool over `config`'s range, binding to `config.bind`.
    pub(crate) fn new(config: &MediaConfig) -> PortPool {
        let (first, pairs) = config.pair_range();
        PortPool {
            bind: config.bind,
            first,
            pairs,
            port_min: config.port_min,
            port_max: config.port_max,
            state: Mutex::new(PoolState {
                slots: vec![Slot::Free; pairs],
                next: 0,
            }),
            live: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
        }
    }

    /// Ports held by live sessions (two per pair).
    pub(crate) fn ports_in_use(&self) -> usize {
        self.live.load(Relaxed) * 2
    }

    /// Ports bound and parked for reuse, held by no session (two per pair).
    pub(crate) fn ports_idle(&self) -> usize {
        self.idle.load(Relaxed) * 2
    }

    fn port_of(&self, index: usize) -> Option<u16> {
        u16::try_from(index * 2)
            .ok()
            .and_then(|off| self.first.checked_add(off))
    }

    /// Binds the next free pair (live). Pairs whose ports are taken by
    /// someone else are skipped; the pool is exhausted when a whole pass
    /// finds none.
    pub(crate) fn allocate(self: &Arc<Self>) -> Result<BoundPair, MediaError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for step in 0..self.pairs {
            let index = (state.next + step) % self.pairs;
            if state.slots[index] != Slot::Free {
                continue;
            }
            let Some(port) = self.port_of(index) else {
                continue;
            };
            match self.bind_pair(port) {
                Ok((rtp, rtcp)) => {
                    state.slots[index] = Slot::Live;
                    state.next = (index + 1) % self.pairs;
                    self.live.fetch_add(1, Relaxed);
                    return Ok(BoundPair {
                        rtp,
                        rtcp,
                        port,
                        lease: PortLease {
                            pool: Arc::clone(self),
                            index,
                        },
                    });
                }
                Err(e) if skippable(&e) => {
                    tracing::debug!(message = "Media port busy, skipped.", port, error = %e);
                }
                Err(e) => return Err(MediaError::Io(e)),
            }
        }
        Err(MediaError::PoolExhausted {
            port_min: self.port_min,
            port_max: self.port_max,
        })
    }

    fn bind_pair(&self, port: u16) -> io::Result<(UdpSocket, UdpSocket)> {
        let rtcp_port = port.checked_add(1).ok_or(io::ErrorKind::AddrInUse)?;
        let rtp = bind(SocketAddr::new(self.bind, port))?;
        let rtcp = bind(SocketAddr::new(self.bind, rtcp_port))?;
        Ok((rtp, rtcp))
    }

    /// Moves pair `index` to `to`, keeping the counters exact.
    fn set(&self, index: usize, to: Slot) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(slot) = state.slots.get_mut(index) else {
            return;
        };
        let from = *slot;
        // A pair given back stays given back: only a new bind takes it.
        if from == to || from == Slot::Free {
            return;
        }
        *slot = to;
        for (state, delta) in [(from, false), (to, true)] {
            let counter = match state {
                Slot::Live => &self.live,
                Slot::Idle => &self.idle,
                Slot::Free => continue,
            };
            if delta {
                counter.fetch_add(1, Relaxed);
            } else {
                counter.fetch_sub(1, Relaxed);
            }
        }
    }
}

/// A port someone else holds (or a privileged one) is skipped; any other
/// bind error (the address is not ours, …) fails every port alike.
fn skippable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied
    )
}

fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let sock = UdpSocket::bind(addr)?;
    sock.set_nonblocking(true)?;
    Ok(sock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MediaConfig;

    /// A pool over `pairs` pairs at a random base below the ephemeral port
    /// range, so parallel tests and other processes rarely meet (and a busy
    /// port is skipped anyway).
    fn pool(pairs: u16) -> Arc<PortPool> {
        let base = 10_000 + 2 * rand::random_range(0..4_900u16);
        Arc::new(PortPool::new(&MediaConfig {
            port_min: base,
            port_max: base + 2 * pairs - 1,
            ..MediaConfig::default()
        }))
    }

    #[test]
    fn hands_out_even_rtp_and_odd_rtcp() {
        let pool = pool(8);
        let p = pool.allocate().unwrap();
        assert_eq!(p.port % 2, 0);
        assert_eq!(p.rtp.local_addr().unwrap().port(), p.port);
        assert_eq!(p.rtcp.local_addr().unwrap().port(), p.port + 1);
        assert_eq!(pool.ports_in_use(), 2);
        drop(p);
        assert_eq!(pool.ports_in_use(), 0);
    }

    #[test]
    fn exhausts_then_recovers() {
        let pool = pool(3);
        let held: Vec<BoundPair> = (0..3).filter_map(|_| pool.allocate().ok()).collect();
        // Another process may hold one of the random ports: the pool skips
        // it, so at least the pairs it did bind are distinct and counted.
        assert!(!held.is_empty());
        let mut ports: Vec<u16> = held.iter().map(|p| p.port).collect();
        ports.dedup();
        assert_eq!(ports.len(), held.len());
        assert_eq!(pool.ports_in_use(), held.len() * 2);
        assert!(matches!(
            pool.allocate(),
            Err(MediaError::PoolExhausted { .. })
        ));
        drop(held);
        assert_eq!(pool.ports_in_use(), 0);
        assert!(pool.allocate().is_ok());
    }

    #[test]
    fn skips_a_port_held_by_someone_else() {
        let pool = pool(4);
        let first = pool.allocate().unwrap();
        let squatted = first.port + 2;
        drop(first);
        // Someone else binds the next RTCP port: that pair is skipped.
        let Ok(_squatter) = UdpSocket::bind(SocketAddr::new(pool.bind, squatted + 1)) else {
            return; // taken already: nothing to prove here
        };
        let next = pool.allocate().unwrap();
        assert_ne!(next.port, squatted);
        assert_eq!(pool.ports_in_use(), 2);
    }

    #[test]
    fn round_robin_does_not_reuse_a_pair_at_once() {
        let pool = pool(4);
        let a = pool.allocate().unwrap();
        let port = a.port;
        drop(a);
        let b = pool.allocate().unwrap();
        assert_ne!(b.port, port);
    }

    #[test]
    fn a_foreign_bind_address_is_an_error_not_exhaustion() {
        let pool = Arc::new(PortPool::new(&MediaConfig {
            bind: "192.0.2.1".parse().unwrap(),
            port_min: 10_000,
            port_max: 10_009,
            ..MediaConfig::default()
        }));
        assert!(matches!(pool.allocate(), Err(MediaError::Io(_))));
    }

    #[test]
    fn parked_pairs_count_as_idle_not_in_use() {
        let pool = pool(4);
        let p = pool.allocate().unwrap();
        assert_eq!((pool.ports_in_use(), pool.ports_idle()), (2, 0));
        p.lease.park();
        p.lease.park();
        assert_eq!((pool.ports_in_use(), pool.ports_idle()), (0, 2));
        p.lease.unpark();
        assert_eq!((pool.ports_in_use(), pool.ports_idle()), (2, 0));
        p.lease.park();
        // Given back while parked: neither in use nor idle, free to bind.
        let port = p.port;
        drop(p);
        assert_eq!((pool.ports_in_use(), pool.ports_idle()), (0, 0));
        let mut seen = Vec::new();
        while let Ok(q) = pool.allocate() {
            seen.push(q);
        }
        assert!(
            seen.iter().any(|q| q.port == port),
            "the pair is free again"
        );
    }

    #[test]
    fn a_parked_pair_is_not_bound_again() {
        let pool = pool(2);
        let a = pool.allocate().unwrap();
        a.lease.park();
        // Only the other pair can be handed out; then the pool is exhausted.
        let b = pool.allocate().unwrap();
        assert_ne!(a.port, b.port);
        assert!(matches!(
            pool.allocate(),
            Err(MediaError::PoolExhausted { .. })
        ));
        assert_eq!((pool.ports_in_use(), pool.ports_idle()), (2, 2));
    }
}
