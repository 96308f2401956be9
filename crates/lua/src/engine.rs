//! The Lua engine: the live version of the dial plan, swapped atomically
//! on reload, with the script directory watched for changes.

use crate::error::LoadError;
use crate::script::{ScriptConfig, ScriptVersion, VersionCalls, dir_hash};
use api::{
    CallHandler, CallLink, CallView, HandlerError, Host, RegisterHandler, RegisterRun,
    RegisterView, ScriptRun,
};
use arc_swap::ArcSwap;
use notify_debouncer_full::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How long the watcher waits for a burst of file events to settle.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// A new version is live.
    Loaded(String),
    /// The files are as they were: nothing changed.
    Unchanged,
}

/// A dial plan engine for one script.
pub struct LuaEngine {
    config: ScriptConfig,
    host: Arc<dyn Host>,
    live: ArcSwap<ScriptVersion>,
    next_number: AtomicU64,
    /// Versions that may still have calls (for status lines).
    versions: Mutex<Vec<VersionCalls>>,
    reloads: Mutex<()>,
}

impl std::fmt::Debug for LuaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LuaEngine")
            .field("script", &self.config.path)
            .field("live", &self.live.load().label())
            .finish()
    }
}

impl LuaEngine {
    /// Loads version 1 of the script. Blocking (reads and runs the
    /// script's top level).
    pub fn load(config: ScriptConfig, host: Arc<dyn Host>) -> Result<Arc<LuaEngine>, LoadError> {
        let first = Arc::new(ScriptVersion::compile(&config, 1, &host)?);
        tracing::info!(message = "Dial plan loaded.", version = %first.label());
        Ok(Arc::new(LuaEngine {
            versions: Mutex::new(vec![first.watch()]),
            live: ArcSwap::new(first),
            config,
            host,
            next_number: AtomicU64::new(2),
            reloads: Mutex::new(()),
        }))
    }

    /// The live version.
    pub fn live(&self) -> Arc<ScriptVersion> {
        self.live.load_full()
    }

    /// Compiles the script again; a good version replaces the live one for
    /// new calls, a bad one is reported and the live one stays. Calls in
    /// flight keep the version they started with. Blocking.
    pub fn reload(&self) -> Result<Reload, LoadError> {
        let _one_at_a_time = self.reloads.lock().unwrap_or_else(|p| p.into_inner());
        if dir_hash(&self.config.dir()) == self.live.load().hash() {
            return Ok(Reload::Unchanged);
        }
        let number = self.next_number.load(Ordering::Relaxed);
        let new = Arc::new(ScriptVersion::compile(&self.config, number, &self.host)?);
        self.next_number.store(number + 1, Ordering::Relaxed);
        let label = new.label().to_string();
        let old = self.live.swap(new.clone());
        let mut versions = self.versions.lock().unwrap_or_else(|p| p.into_inner());
        versions.retain(VersionCalls::alive);
        versions.push(new.watch());
        tracing::info!(
            message = "Dial plan reloaded.",
            version = %label,
            previous = %old.label(),
            previous_calls = old.calls(),
        );
        Ok(Reload::Loaded(label))
    }

    /// Reloads and logs the outcome (for the watcher and SIGHUP).
    pub fn reload_and_log(&self) {
        match self.reload() {
            Ok(Reload::Loaded(_)) => {}
            Ok(Reload::Unchanged) => {
                tracing::debug!(message = "Dial plan unchanged; not reloaded.")
            }
            Err(e) => tracing::error!(
                message = "Dial plan reload failed; keeping the live version.",
                live = %self.live.load().label(),
                error = %e,
            ),
        }
    }

    /// Every version with calls, as `label:calls` (the live one always).
    pub fn versions_status(&self) -> String {
        let live = self.live.load_full();
        let versions = self.versions.lock().unwrap_or_else(|p| p.into_inner());
        let mut parts: Vec<String> = versions
            .iter()
            .filter(|v| v.number() == live.number() || v.calls() > 0)
            .map(|v| format!("{}:{}", v.label(), v.calls()))
            .collect();
        if parts.is_empty() {
            parts.push(format!("{}:{}", live.label(), live.calls()));
        }
        parts.join(",")
    }

    /// Watches the script's directory and reloads on changes to `.lua`
    /// files (debounced; editors' temporary files ignored). The watch ends
    /// when the returned guard is dropped.
    pub fn watch(self: &Arc<Self>) -> Result<Watch, LoadError> {
        let engine: Weak<LuaEngine> = Arc::downgrade(self);
        let dir = self.config.dir();
        let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
            let Ok(events) = result else { return };
            // Reading the files (as a reload does) shows up as access
            // events: only changes count, or every reload would cause one.
            let relevant = events
                .iter()
                .filter(|e| !e.kind.is_access())
                .flat_map(|e| e.paths.iter())
                .any(|p| is_script_file(p));
            if relevant && let Some(engine) = engine.upgrade() {
                // The debouncer's own thread: off the call path.
                engine.reload_and_log();
            }
        })
        .map_err(|e| LoadError::Io {
            path: dir.display().to_string(),
            message: format!("cannot watch: {e}"),
        })?;
        debouncer
            .watch(&dir, RecursiveMode::Recursive)
            .map_err(|e| LoadError::Io {
                path: dir.display().to_string(),
                message: format!("cannot watch: {e}"),
            })?;
        tracing::info!(message = "Watching the dial plan directory.", dir = %dir.display());
        Ok(Watch {
            _debouncer: debouncer,
        })
    }
}

/// Keeps a directory watch alive.
pub struct Watch {
    _debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watch")
    }
}

/// A `.lua` file, not an editor's temporary (`.swp`, `~`, `4913`, `.#x`).
fn is_script_file(p: &std::path::Path) -> bool {
    let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name.ends_with(".lua") && !name.starts_with(".#") && !name.starts_with('.')
}

impl LuaEngine {
    /// Starts the dial plan on a call and runs it as a task of its own
    /// (for `tandem simulate` and tests; the core polls the run itself).
    pub fn spawn(&self, view: CallView, link: CallLink) -> Result<String, HandlerError> {
        let (label, run) = self.start(view, link)?;
        tokio::spawn(run);
        Ok(label)
    }
}

impl CallHandler for LuaEngine {
    fn start(&self, view: CallView, link: CallLink) -> Result<(String, ScriptRun), HandlerError> {
        // Not `load_full`: the run keeps its state, not the version (see
        // `ScriptVersion::start`).
        let version = self.live.load();
        let label = version.label().to_string();
        Ok((label, version.start(view, link)?))
    }

    fn version(&self) -> String {
        self.versions_status()
    }
}

impl RegisterHandler for LuaEngine {
    fn on_register(&self, view: RegisterView) -> Option<(String, RegisterRun)> {
        let version = self.live.load();
        let run = version.start_register(view)?;
        Some((version.label().to_string(), run))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_files_are_ignored() {
        assert!(is_script_file("/x/pbx.lua".as_ref()));
        assert!(!is_script_file("/x/.pbx.lua.swp".as_ref()));
        assert!(!is_script_file("/x/pbx.lua~".as_ref()));
        assert!(!is_script_file("/x/4913".as_ref()));
        assert!(!is_script_file("/x/.#pbx.lua".as_ref()));
    }
}
