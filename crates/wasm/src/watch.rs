//! Reloading plugins when their files change: the directories holding
//! them are watched (a deploy's or an editor's rename-on-save shows there,
//! not on the file), debounced, and only changes to a plugin's own file
//! count.

use crate::registry::PluginRegistry;
use notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use std::collections::BTreeSet;
use std::path::PathBuf;
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
    /// watcher's thread, off the call path) when one of the plugin files
    /// changes. The watch ends when the guard is dropped.
    pub fn watch(self: &Arc<Self>) -> Result<PluginWatch, WatchError> {
        let registry: Weak<PluginRegistry> = Arc::downgrade(self);
        let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
            let Some(registry) = registry.upgrade() else {
                return;
            };
            let events = match result {
                Ok(events) => events,
                Err(errors) => {
                    for e in errors {
                        tracing::warn!(message = "Plugin directory watch error.", error = %e);
                    }
                    return;
                }
            };
            // Only changes to a plugin's own file (a rename onto it
            // included); reading the files shows up as access events.
            let relevant = events
                .iter()
                .filter(|e| !e.kind.is_access())
                .flat_map(|e| e.paths.iter())
                .any(|p| registry.is_plugin_path(p));
            if relevant {
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
            .map(|p| crate::registry::watched_dir(p).to_path_buf())
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
