//! The location store interface and the embedded in-memory store.

use crate::binding::Binding;
use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

/// Why a store could not take a write.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing the store's file failed.
    #[error("location store I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A binding could not be encoded.
    #[error("location store encoding error: {0}")]
    Encode(#[from] serde_json::Error),
    /// A remote store refused the write (e.g. its replica queue is full).
    #[error("location store unavailable: {0}")]
    Unavailable(String),
}

/// A store of bindings, keyed by AOR.
///
/// Every method must return without blocking on the network: the registrar
/// calls them on the signalling path. A remote store (e.g. Redis shared by
/// a cluster) therefore keeps a local replica that answers reads and takes
/// writes at once, and writes through to the remote side in the background
/// (like Kamailio's usrloc write-back mode), catching up from it on start
/// and on notifications of other nodes' writes.
///
/// The store keeps what it is given: it does not know time. The registrar
/// filters expired bindings on reads and removes them with `put`.
pub trait LocationStore: Send + Sync + 'static {
    /// All stored bindings of `aor`, expired ones included.
    fn get(&self, aor: &str) -> Vec<Binding>;
    /// Replaces the whole set of `aor`'s bindings; an empty set removes the
    /// AOR.
    fn put(&self, aor: &str, bindings: &[Binding]) -> Result<(), StoreError>;
    /// Every AOR that has bindings.
    fn aors(&self) -> Vec<String>;
    /// The number of stored bindings (of all AORs).
    fn len(&self) -> usize;
    /// True when no binding is stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, Vec<Binding>>,
    bindings: usize,
}

/// The embedded store: a map behind a lock, lost on restart.
#[derive(Default)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// The number of AORs with bindings.
    pub fn aor_count(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .len()
    }

    /// Every AOR with its bindings, sorted by AOR.
    pub fn snapshot(&self) -> Vec<(String, Vec<Binding>)> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<_> = inner
            .map
            .iter()
            .map(|(aor, b)| (aor.clone(), b.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    fn replace(&self, aor: &str, bindings: &[Binding]) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let old = if bindings.is_empty() {
            inner.map.remove(aor)
        } else {
            inner.map.insert(aor.to_string(), bindings.to_vec())
        };
        inner.bindings = inner.bindings - old.map_or(0, |o| o.len()) + bindings.len();
    }
}

impl LocationStore for MemoryStore {
    fn get(&self, aor: &str) -> Vec<Binding> {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .get(aor)
            .cloned()
            .unwrap_or_default()
    }

    fn put(&self, aor: &str, bindings: &[Binding]) -> Result<(), StoreError> {
        self.replace(aor, bindings);
        Ok(())
    }

    fn aors(&self) -> Vec<String> {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .keys()
            .cloned()
            .collect()
    }

    fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .bindings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::binding;

    #[test]
    fn put_replaces_and_empty_removes() {
        let s = MemoryStore::new();
        assert!(s.is_empty());
        let a = binding("alice", "sip:alice@10.0.0.5", 100);
        let b = binding("alice", "sip:alice@10.0.0.6", 100);
        s.put("alice", &[a.clone(), b.clone()]).unwrap();
        s.put("bob", &[binding("bob", "sip:bob@10.0.0.7", 100)])
            .unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s.aor_count(), 2);
        s.put("alice", std::slice::from_ref(&b)).unwrap();
        assert_eq!(s.get("alice"), vec![b]);
        assert_eq!(s.len(), 2);
        s.put("alice", &[]).unwrap();
        assert!(s.get("alice").is_empty());
        assert_eq!(s.aors(), vec!["bob".to_string()]);
        assert_eq!(s.len(), 1);
        s.put("nobody", &[]).unwrap();
        assert_eq!(s.len(), 1);
    }
}
