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
}

impl PluginConfig {
    /// A plugin at `path` with the default limits (16 MiB, 10 ms, no fuel).
    pub fn new(name: &str, path: impl Into<PathBuf>) -> PluginConfig {
        PluginConfig {
            name: name.to_string(),
            path: path.into(),
            memory: 16 * 1024 * 1024,
            cpu: Duration::from_millis(10),
            fuel: None,
            settings: Vec::new(),
        }
    }
}
