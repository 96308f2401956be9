//! What the host offers a plugin: logging, the shared key-value store, the
//! registrar and the plugin's own settings. There is nothing else (no
//! WASI, no files, no sockets, no clocks).
//!
//! These functions call into Tandem: they work inside the Wasm plugin
//! only. Natively (in unit tests) they panic, so keep the logic you test
//! in functions that take the settings and return a [`Route`](crate::Route).

use crate::bindings::tandem::plugin::host;

/// Log lines, tagged by the host with the plugin, its version and the
/// Call-ID.
pub mod log {
    use super::host;
    use crate::Level;

    /// Logs `message` at `level`.
    pub fn write(level: Level, message: impl AsRef<str>) {
        host::log(level, message.as_ref());
    }

    /// Logs an error.
    pub fn error(message: impl AsRef<str>) {
        write(Level::Error, message);
    }

    /// Logs a warning.
    pub fn warn(message: impl AsRef<str>) {
        write(Level::Warn, message);
    }

    /// Logs an informational line.
    pub fn info(message: impl AsRef<str>) {
        write(Level::Info, message);
    }

    /// Logs a debug line.
    pub fn debug(message: impl AsRef<str>) {
        write(Level::Debug, message);
    }
}

/// The key-value store Tandem shares between plugins and Lua dial plans
/// (the Lua API's `tandem.kv`).
pub mod kv {
    use super::host;
    use crate::Value;

    /// The value at `key`, if there is one.
    pub fn get(key: &str) -> Option<Value> {
        host::kv_get(key)
    }

    /// Stores `value` at `key`, for `ttl_ms` milliseconds or (with `None`)
    /// until it is deleted. The error says why the host refused it.
    pub fn set(key: &str, value: impl Into<Value>, ttl_ms: Option<u64>) -> Result<(), String> {
        host::kv_set(key, &value.into(), ttl_ms)
    }

    /// Adds `by` to the integer at `key` (a missing key counts as 0) and
    /// returns the new value.
    pub fn incr(key: &str, by: i64) -> Result<i64, String> {
        host::kv_incr(key, by)
    }

    /// Deletes `key`; whether it was there.
    pub fn delete(key: &str) -> bool {
        host::kv_delete(key)
    }
}

/// The registered contacts of `user` (empty: not registered).
pub fn registrar_lookup(user: &str) -> Vec<String> {
    host::registrar_lookup(user)
}

/// This plugin's settings from the TOML config (`[plugins.settings]`), as
/// key/value pairs in the config's order.
pub fn config() -> Vec<(String, String)> {
    host::config()
}

/// The setting `key`, if the config has it.
pub fn setting(key: &str) -> Option<String> {
    Settings::load().get(key).map(str::to_owned)
}

/// A plugin's settings: [`config`] read once, with look-ups by key.
///
/// Build one from pairs in unit tests:
/// `Settings::from_iter([("rates", "49 127.0.0.1:5081 0.01")])`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings(Vec<(String, String)>);

impl Settings {
    /// Reads the settings from the host.
    pub fn load() -> Self {
        Self(config())
    }

    /// The value of `key`, if set (the first one, should a key repeat).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every key/value pair, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Settings {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl From<Vec<(String, String)>> for Settings {
    fn from(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_lookup() {
        let s = Settings::from_iter([("a", "1"), ("b", "2"), ("a", "3")]);
        assert_eq!(s.get("a"), Some("1"));
        assert_eq!(s.get("b"), Some("2"));
        assert_eq!(s.get("c"), None);
        assert_eq!(s.iter().count(), 3);
        assert_eq!(Settings::default().get("a"), None);
    }
}
