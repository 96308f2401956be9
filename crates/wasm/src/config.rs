//! Per-plugin settings: where the component is, its limits, its own
//! key/values from the TOML.

use std::path::PathBuf;
use std::time::Duration;

/// How one plugin is loaded and limited.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// Name used in logs and by `tandem.plugin(name)`.
    pub name: String,
    /// The component file (`.wasm`).
    pub path: PathBuf,
    /// Most linear memory one instance may hold, in bytes.
    pub memory: usize,
    /// Most CPU time one event may take (epoch deadline).
    pub cpu: Duration,
    /// Fuel per event, for deterministic limits (`None`: epoch only).
    pub fuel: Option<u64>,
    /// Key/values the plugin reads with `host.config()`.
    pub settings: Vec<(String, String)>,
    /// Failures in a row after which the plugin is switched off until a
    /// good reload (0: never).
    pub crash_limit: u32,
    /// Send `on-hangup` events (false: the plugin does not use them, and
    /// each call saves an instance).
    pub hangup: bool,
}

impl PluginConfig {
    /// A plugin at `path` with the default limits (16 MiB, 10 ms, no fuel,
    /// switched off after 20 failures in a row).
    pub fn new(name: &str, path: impl Into<PathBuf>) -> PluginConfig {
        PluginConfig {
            name: name.to_string(),
            path: path.into(),
            memory: 16 * 1024 * 1024,
            cpu: Duration::from_millis(10),
            fuel: None,
            settings: Vec::new(),
            crash_limit: 20,
            hangup: true,
        }
    }
}
