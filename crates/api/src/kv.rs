//! The key-value store scripts share (`tandem.kv`): behind a trait so a
//! cluster can swap the in-memory store for a shared one.

use crate::value::Value;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Why a key-value operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// `incr` on a value that is not an integer.
    #[error("value of `{0}` is not an integer")]
    NotInteger(String),
    /// The store is full.
    #[error("key-value store is full ({0} keys)")]
    Full(usize),
}

/// A key-value store with expiry.
pub trait KvStore: Send + Sync {
    /// Stores `value` under `key`, expiring after `ttl` (`None`: never).
    fn set(&self, key: &str, value: Value, ttl: Option<Duration>) -> Result<(), KvError>;
    /// The value under `key`, if set and not expired.
    fn get(&self, key: &str) -> Option<Value>;
    /// Adds `by` to the integer under `key` (missing counts as 0) and
    /// returns the new value; the expiry is kept.
    fn incr(&self, key: &str, by: i64) -> Result<i64, KvError>;
    /// Removes `key`; true if it was there.
    fn delete(&self, key: &str) -> bool;
}

const SHARDS: usize = 16;

struct Entry {
    value: Value,
    expires: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|e| e > now)
    }
}

/// The in-memory store: sharded so that calls on different keys rarely
/// meet on a lock; expired entries are dropped on access and when a shard
/// grows.
pub struct MemoryKv {
    shards: Vec<Mutex<HashMap<String, Entry>>>,
    hasher: std::collections::hash_map::RandomState,
    max_keys_per_shard: usize,
}

impl MemoryKv {
    /// A store holding at most `max_keys` keys.
    pub fn new(max_keys: usize) -> MemoryKv {
        MemoryKv {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: Default::default(),
            max_keys_per_shard: max_keys.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        // A poisoned shard only means a panic elsewhere mid-update of a
        // plain map: the map itself is still consistent.
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    fn make_room(&self, map: &mut HashMap<String, Entry>, key: &str) -> Result<(), KvError> {
        if map.len() < self.max_keys_per_shard || map.contains_key(key) {
            return Ok(());
        }
        let now = Instant::now();
        map.retain(|_, e| e.live(now));
        if map.len() >= self.max_keys_per_shard {
            return Err(KvError::Full(self.max_keys_per_shard * SHARDS));
        }
        Ok(())
    }
}

impl Default for MemoryKv {
    fn default() -> MemoryKv {
        MemoryKv::new(1_000_000)
    }
}

impl KvStore for MemoryKv {
    fn set(&self, key: &str, value: Value, ttl: Option<Duration>) -> Result<(), KvError> {
        let mut map = self.shard(key);
        self.make_room(&mut map, key)?;
        let expires = ttl.map(|t| Instant::now() + t);
        map.insert(key.to_string(), Entry { value, expires });
        Ok(())
    }

    fn get(&self, key: &str) -> Option<Value> {
        let mut map = self.shard(key);
        let now = Instant::now();
        match map.get(key) {
            Some(e) if e.live(now) => Some(e.value.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    fn incr(&self, key: &str, by: i64) -> Result<i64, KvError> {
        let mut map = self.shard(key);
        let now = Instant::now();
        if let Some(e) = map.get_mut(key)
            && e.live(now)
        {
            let n = match &e.value {
                Value::Int(i) => *i,
                Value::Str(s) => s
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| KvError::NotInteger(key.to_string()))?,
                _ => return Err(KvError::NotInteger(key.to_string())),
            };
            let n = n.wrapping_add(by);
            e.value = Value::Int(n);
            return Ok(n);
        }
        self.make_room(&mut map, key)?;
        map.insert(
            key.to_string(),
            Entry {
                value: Value::Int(by),
                expires: None,
            },
        );
        Ok(by)
    }

    fn delete(&self, key: &str) -> bool {
        self.shard(key).remove(key).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_incr_expire() {
        let kv = MemoryKv::new(100);
        kv.set("a", Value::from("x"), None).unwrap();
        assert_eq!(kv.get("a"), Some(Value::from("x")));
        assert_eq!(kv.incr("n", 2).unwrap(), 2);
        assert_eq!(kv.incr("n", 3).unwrap(), 5);
        assert!(kv.incr("a", 1).is_err());
        kv.set("s", Value::from("41"), None).unwrap();
        assert_eq!(kv.incr("s", 1).unwrap(), 42);
        kv.set("t", Value::Int(1), Some(Duration::from_millis(1)))
            .unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(kv.get("t"), None);
        assert!(kv.delete("a"));
        assert!(!kv.delete("a"));
    }

    #[test]
    fn full_store_refuses_new_keys_but_updates_old_ones() {
        let kv = MemoryKv::new(SHARDS);
        let mut stored = Vec::new();
        for i in 0..200 {
            let k = format!("k{i}");
            if kv.set(&k, Value::Int(i), None).is_ok() {
                stored.push(k);
            }
        }
        assert!(stored.len() <= SHARDS);
        assert!(kv.set(&stored[0], Value::Int(7), None).is_ok());
    }
}
