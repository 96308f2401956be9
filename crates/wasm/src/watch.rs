//! Reloading plugins when their files change: the directories holding
//! them are watched (an editor's or a build's rename-on-save shows there,
//! not on the file), debounced, and only `.wasm` changes count.

use crate::registry::PluginRegistry;
use notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Quiet time after the last change before a reload.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Keeps the plugin directories watched.
pub struct PluginWatch {
    _debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
}

impl std::fmt::Debug for PluginWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PluginWatch")
    }
}

/// Why the plugin directories cannot be watched.
#[derive(Debug, thiserror::Error)]
#[error("cannot watch {dir}: {message}")]
pub struct WatchError {
    /// The directory.
    pub dir: String,
    /// What the OS said.
    pub message: String,
}

impl PluginRegistry {
    /// Watches the directories of every plugin file and reloads (on the
    /// watcher's thread, off the call path) when a `.wasm` file in them
    /// changes. The watch ends when the guard is dropped.
    pub fn watch(self: &Arc<Self>) -> Result<PluginWatch, WatchError> {
        let registry: Weak<PluginRegistry> = Arc::downgrade(self);
        let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
            let Ok(events) = result else { return };
            let relevant = events
                .iter()
                .filter(|e| !e.kind.is_access())
                .flat_map(|e| e.paths.iter())
                .any(|p| is_plugin_file(p));
            if relevant && let Some(registry) = registry.upgrade() {
                registry.reload_and_log();
            }
        })
        .map_err(|e| WatchError {
            dir: String::new(),
            message: e.to_string(),
        })?;
        let dirs: BTreeSet<PathBuf> = self
            .paths()
            .iter()
            .map(|p| match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            })
            .collect();
        for dir in &dirs {
            debouncer
                .watch(dir, RecursiveMode::NonRecursive)
                .map_err(|e| WatchError {
                    dir: dir.display().to_string(),
                    message: e.to_string(),
                })?;
            tracing::info!(message = "Watching a plugin directory.", dir = %dir.display());
        }
        Ok(PluginWatch {
            _debouncer: debouncer,
        })
    }
}

/// A `.wasm` file, not a hidden or temporary one.
fn is_plugin_file(p: &Path) -> bool {
    let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name.ends_with(".wasm") && !name.starts_with('.')
}
