//! Spare relays: a stream whose session ended keeps its task and its four
//! bound sockets here, parked, so that a later session takes them over
//! without binding, registering or spawning anything (and the ended one
//! closes nothing).
//!
//! Spares are taken oldest first, and only once they have been parked for
//! [`QUARANTINE`]: until then a fresh pair of ports is bound instead, so a
//! late packet of an ended call (the other side has not seen the BYE yet)
//! meets a parked task, which throws it away. Only when no fresh pair can
//! be bound is a younger spare taken. A spare taken over empties its
//! receive queues before it relays anything.
//!
//! At most [`MAX_SPARES`] streams are kept, and never more than a
//! sixteenth of the process's file-descriptor limit (four sockets each: a
//! quarter of the descriptors), so idle sockets neither hold much memory nor
//! starve the SIP side of descriptors. A stream that ends when the spares
//! are full is stopped and its ports closed, as before there were spares.

use super::Relay;
use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::runtime;

/// Streams kept parked at most (4,096 sockets, a few MiB of kernel memory).
pub(crate) const MAX_SPARES: usize = 1_024;

/// How long a stream stays parked before a new session may take it over
/// while fresh ports are still to be had.
pub(crate) const QUARANTINE: Duration = Duration::from_millis(500);

/// Which spares [`Spares::take`] may hand out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Age {
    /// Only one parked for [`QUARANTINE`] or longer.
    Quarantined,
    /// The oldest, however young.
    Any,
}

/// The engine's parked streams, oldest first.
#[derive(Debug)]
pub(crate) struct Spares {
    parked: Mutex<VecDeque<Parked>>,
    cap: usize,
    quarantine: Duration,
}

#[derive(Debug)]
struct Parked {
    relay: Relay,
    since: Instant,
}

impl Spares {
    /// At most `cap` streams, each taken over (while fresh ports last) only
    /// after `quarantine`.
    pub(crate) fn new(cap: usize, quarantine: Duration) -> Spares {
        Spares {
            parked: Mutex::new(VecDeque::new()),
            cap,
            quarantine,
        }
    }

    /// The engine's spares: [`MAX_SPARES`], less if the file-descriptor
    /// limit is low, and [`QUARANTINE`].
    pub(crate) fn for_engine() -> Spares {
        Spares::new(MAX_SPARES.min(descriptor_budget()), QUARANTINE)
    }

    /// Parks `relay` (already told to stop relaying), or drops it (stopping
    /// its task and closing its ports) when full or when its task is gone.
    pub(crate) fn park(&self, relay: Relay) {
        if !relay.alive() {
            return;
        }
        let mut parked = self.parked.lock().unwrap_or_else(PoisonError::into_inner);
        if parked.len() < self.cap {
            parked.push_back(Parked {
                relay,
                since: Instant::now(),
            });
            return;
        }
        drop(parked);
        tracing::debug!(
            message = "Media spares full: stream closed.",
            cap = self.cap
        );
    }

    /// The oldest spare whose task runs on `runtime` and that `age`
    /// allows. Spares whose task is gone are dropped on the way.
    pub(crate) fn take(&self, runtime: runtime::Id, age: Age) -> Option<Relay> {
        let mut parked = self.parked.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let mut i = 0;
        while let Some(p) = parked.get(i) {
            if !p.relay.alive() {
                parked.remove(i);
                continue;
            }
            if p.relay.runtime != runtime {
                i += 1;
                continue;
            }
            if age == Age::Quarantined && now.duration_since(p.since) < self.quarantine {
                // The ones behind it were parked later still.
                return None;
            }
            return parked.remove(i).map(|p| p.relay);
        }
        None
    }

    /// Streams parked now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.parked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Streams whose sockets fit in a quarter of the file-descriptor limit.
fn descriptor_budget() -> usize {
    use nix::sys::resource::{Resource, getrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) => usize::try_from(soft / 16).unwrap_or(usize::MAX),
        // Unknown: assume the common default of 1,024 descriptors.
        Err(_) => 64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MediaConfig;
    use crate::pool::PortPool;
    use crate::shared::SessionShared;
    use std::sync::Arc;
    use tokio::runtime::Handle;

    fn pool(pairs: u16) -> Arc<PortPool> {
        let base = 10_000 + 2 * rand::random_range(0..4_900u16);
        Arc::new(PortPool::new(&MediaConfig {
            port_min: base,
            port_max: base + 2 * pairs - 1,
            ..MediaConfig::default()
        }))
    }

    fn relay(pool: &Arc<PortPool>) -> Relay {
        let r = Relay::spawn(pool, &Arc::new(SessionShared::new()), &Handle::current()).unwrap();
        r.park();
        r
    }

    #[tokio::test]
    async fn oldest_first_and_only_after_the_quarantine() {
        let pool = pool(8);
        let spares = Spares::new(8, Duration::from_millis(100));
        let id = Handle::current().id();
        let (a, b) = (relay(&pool), relay(&pool));
        let (port_a, port_b) = (a.ports[0], b.ports[0]);
        spares.park(a);
        spares.park(b);
        assert_eq!((pool.ports_in_use(), pool.ports_idle()), (0, 8));
        assert!(spares.take(id, Age::Quarantined).is_none(), "too young");
        tokio::time::sleep(Duration::from_millis(120)).await;
        let first = spares.take(id, Age::Quarantined).unwrap();
        assert_eq!(first.ports[0], port_a);
        let second = spares.take(id, Age::Any).unwrap();
        assert_eq!(second.ports[0], port_b);
        assert!(spares.take(id, Age::Any).is_none());
        drop((first, second));
        assert_eq!((pool.ports_in_use(), pool.ports_idle()), (0, 0));
    }

    #[tokio::test]
    async fn full_spares_close_the_stream() {
        let pool = pool(8);
        let spares = Spares::new(1, Duration::ZERO);
        spares.park(relay(&pool));
        spares.park(relay(&pool));
        assert_eq!(spares.len(), 1);
        assert_eq!((pool.ports_in_use(), pool.ports_idle()), (0, 4));
    }

    #[test]
    fn spares_of_a_runtime_that_shut_down_are_dropped() {
        let pool = pool(8);
        let spares = Spares::new(8, Duration::ZERO);
        let old = tokio::runtime::Runtime::new().unwrap();
        old.block_on(async { spares.park(relay(&pool)) });
        drop(old);
        let new = tokio::runtime::Runtime::new().unwrap();
        new.block_on(async {
            let id = Handle::current().id();
            assert!(spares.take(id, Age::Any).is_none());
        });
        assert_eq!(spares.len(), 0);
        assert_eq!((pool.ports_in_use(), pool.ports_idle()), (0, 0));
    }

    #[test]
    fn the_descriptor_budget_is_a_sixteenth_of_the_limit() {
        let budget = descriptor_budget();
        assert!(budget > 0);
        if let Ok((soft, _)) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        {
            assert_eq!(budget as u64, soft / 16);
        }
    }
}
