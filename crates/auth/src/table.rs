//! A map with a bound on its size that drops its oldest entries first
//! (by first insertion), so a flood cannot grow it without end.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// At most this many entries in each of the authenticator's tables.
pub(crate) const MAX_ENTRIES: usize = 65_536;

pub(crate) struct Bounded<K, V> {
    map: HashMap<K, (V, u64)>,
    /// Keys in insertion order with the sequence number they were inserted
    /// under; entries whose key was removed (or removed and re-inserted)
    /// since are skipped and compacted away.
    order: VecDeque<(K, u64)>,
    seq: u64,
    cap: usize,
}

impl<K: Hash + Eq + Clone, V> Bounded<K, V> {
    pub(crate) fn new(cap: usize) -> Bounded<K, V> {
        Bounded {
            map: HashMap::new(),
            order: VecDeque::new(),
            seq: 0,
            cap: cap.max(1),
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn get(&self, k: &K) -> Option<&V> {
        self.map.get(k).map(|(v, _)| v)
    }

    pub(crate) fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        self.map.get_mut(k).map(|(v, _)| v)
    }

    /// Inserts (or replaces, keeping its age) and gives back the entries
    /// dropped to make room.
    pub(crate) fn insert(&mut self, k: K, v: V) -> Vec<(K, V)> {
        if let Some(slot) = self.map.get_mut(&k) {
            slot.0 = v;
            return Vec::new();
        }
        let mut dropped = Vec::new();
        while self.map.len() >= self.cap {
            let Some((old, seq)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&old).is_some_and(|(_, s)| *s == seq)
                && let Some((v, _)) = self.map.remove(&old)
            {
                dropped.push((old, v));
            }
        }
        self.seq += 1;
        self.map.insert(k.clone(), (v, self.seq));
        self.order.push_back((k, self.seq));
        if self.order.len() > 2 * self.cap + 16 {
            self.compact();
        }
        dropped
    }

    pub(crate) fn remove(&mut self, k: &K) -> Option<V> {
        self.map.remove(k).map(|(v, _)| v)
    }

    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        self.map.retain(|k, (v, _)| keep(k, v));
        self.compact();
    }

    fn compact(&mut self) {
        let map = &self.map;
        self.order
            .retain(|(k, seq)| map.get(k).is_some_and(|(_, s)| s == seq));
    }

    #[cfg(test)]
    pub(crate) fn order_len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_oldest_first() {
        let mut t = Bounded::new(3);
        assert!(t.insert(1, 'a').is_empty());
        assert!(t.insert(2, 'b').is_empty());
        assert!(t.insert(3, 'c').is_empty());
        assert!(t.insert(2, 'B').is_empty());
        assert_eq!(t.insert(4, 'd'), [(1, 'a')]);
        assert_eq!(t.len(), 3);
        assert_eq!(t.get(&2), Some(&'B'));
        t.remove(&2);
        t.insert(2, 'x');
        // 2 is now the newest: 3 goes first.
        assert_eq!(t.insert(5, 'e'), [(3, 'c')]);
        assert_eq!(t.insert(6, 'f'), [(4, 'd')]);
        assert_eq!(t.get(&2), Some(&'x'));
        t.retain(|k, _| *k != 5);
        assert_eq!(t.len(), 2);
        assert_eq!(t.order_len(), 2);
    }

    #[test]
    fn order_stays_bounded_under_churn() {
        let mut t = Bounded::new(4);
        for i in 0..1000u32 {
            t.insert(i % 2, i);
            t.remove(&(i % 2));
        }
        assert!(t.order_len() <= 2 * 4 + 16);
        assert_eq!(t.len(), 0);
    }
}
