//! Every configured plugin, live and reloadable: the registry hands out the
//! live version of a plugin, pinned by whoever holds it, reloads changed
//! files off the call path, and switches off a plugin that keeps failing
//! until a good reload brings a new version.

use crate::compile::content_hash;
use crate::config::PluginConfig;
use crate::engine::WasmEngine;
use crate::plugin::{Plugin, PluginError, read};
use api::{CallView, DialResult, Host, RouteAnswer, Router, RouterError, Routers};
use arc_swap::ArcSwap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// One configured plugin: its live version and its health.
struct Slot {
    config: PluginConfig,
    live: ArcSwap<Plugin>,
    /// Every version loaded so far, for the status line.
    versions: Mutex<Vec<Weak<Plugin>>>,
    /// Failures in a row (a success resets it).
    failures: AtomicU32,
    disabled: AtomicBool,
}

impl Slot {
    /// True when `plugin` is the live version: only its events count for
    /// the crash loop (calls still on an old version must not switch off a
    /// good new one, nor reset its count).
    fn is_live(&self, plugin: &Arc<Plugin>) -> bool {
        Arc::ptr_eq(&self.live.load(), plugin)
    }

    fn succeeded(&self, plugin: &Arc<Plugin>) {
        if self.is_live(plugin) && self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
    }

    fn failed(&self, plugin: &Arc<Plugin>) {
        if !self.is_live(plugin) {
            return;
        }
        let label = plugin.label();
        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        let limit = self.config.crash_limit;
        if limit > 0 && n >= limit && !self.disabled.swap(true, Ordering::Relaxed) {
            tracing::error!(
                message = "Plugin disabled after failing too often in a row; a good reload enables it again.",
                plugin = %label,
                failures = n,
            );
        }
    }

    /// `name@vN:calls` for each version with calls (the live one always).
    fn status(&self) -> String {
        let live = self.live.load_full();
        let versions = self.versions.lock().unwrap_or_else(|p| p.into_inner());
        let mut parts = Vec::new();
        for v in versions.iter().filter_map(Weak::upgrade) {
            // Held by `v`, by the live slot and `live` (if it is the live
            // version) and by the calls.
            let is_live = Arc::ptr_eq(&v, &live);
            let calls = Arc::strong_count(&v).saturating_sub(1 + 2 * usize::from(is_live));
            if is_live || calls > 0 {
                parts.push(format!("{}:{calls}", v.label()));
            }
        }
        if self.disabled.load(Ordering::Relaxed) {
            parts.push(format!("{}:disabled", self.config.name));
        }
        parts.join(",")
    }
}

/// The directory watched for a plugin file (`.` for a bare file name).
pub(crate) fn watched_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// What a reload did to one plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// The file has not changed.
    Unchanged,
    /// A new version is live (`name@vN`).
    Loaded(String),
}

/// The configured plugins.
pub struct PluginRegistry {
    engine: WasmEngine,
    cache: Option<PathBuf>,
    slots: Vec<Arc<Slot>>,
    /// One reload at a time (watcher and SIGHUP may coincide).
    reloading: Mutex<()>,
}

impl std::fmt::Debug for PluginRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRegistry")
            .field("plugins", &self.status())
            .finish()
    }
}

impl PluginRegistry {
    /// Compiles every plugin (blocking), keeping compiled code in `cache`
    /// if given. Any plugin that does not load is an error: a switch
    /// does not start half-configured.
    pub fn load(
        engine: &WasmEngine,
        configs: &[PluginConfig],
        cache: Option<&Path>,
    ) -> Result<PluginRegistry, PluginError> {
        let mut slots = Vec::with_capacity(configs.len());
        for config in configs {
            let bytes = read(config)?;
            let plugin = Arc::new(Plugin::compile(engine, config, 1, &bytes, cache)?);
            tracing::info!(
                message = "Plugin loaded.",
                plugin = %plugin.label(),
                imports = ?plugin.imports(),
            );
            slots.push(Arc::new(Slot {
                config: config.clone(),
                versions: Mutex::new(vec![Arc::downgrade(&plugin)]),
                live: ArcSwap::new(plugin),
                failures: AtomicU32::new(0),
                disabled: AtomicBool::new(false),
            }));
        }
        Ok(PluginRegistry {
            engine: engine.clone(),
            cache: cache.map(Path::to_path_buf),
            slots,
            reloading: Mutex::new(()),
        })
    }

    /// The names of the configured plugins.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.slots.iter().map(|s| s.config.name.as_str())
    }

    /// The live version of plugin `name` (also when disabled).
    pub fn live(&self, name: &str) -> Option<Arc<Plugin>> {
        self.slot(name).map(|s| s.live.load_full())
    }

    fn slot(&self, name: &str) -> Option<&Arc<Slot>> {
        self.slots.iter().find(|s| s.config.name == name)
    }

    /// Reads every plugin's file again and makes each changed one that
    /// compiles the live version (re-enabling it if it was disabled). A
    /// file that does not compile leaves its live version in place.
    /// Blocking: run it off the async threads.
    pub fn reload(&self) -> Vec<(String, Result<Reloaded, PluginError>)> {
        let _one = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        self.slots
            .iter()
            .map(|slot| (slot.config.name.clone(), self.reload_slot(slot)))
            .collect()
    }

    fn reload_slot(&self, slot: &Slot) -> Result<Reloaded, PluginError> {
        let bytes = read(&slot.config)?;
        let live = slot.live.load_full();
        if content_hash(&bytes) == *live.hash() {
            return Ok(Reloaded::Unchanged);
        }
        let version = live.version() + 1;
        let plugin = Arc::new(Plugin::compile(
            &self.engine,
            &slot.config,
            version,
            &bytes,
            self.cache.as_deref(),
        )?);
        let label = plugin.label().to_string();
        {
            let mut versions = slot.versions.lock().unwrap_or_else(|p| p.into_inner());
            versions.retain(|v| v.strong_count() > 0);
            versions.push(Arc::downgrade(&plugin));
        }
        // Count from zero for the new version before it takes calls.
        slot.failures.store(0, Ordering::Relaxed);
        slot.live.store(plugin);
        slot.disabled.store(false, Ordering::Relaxed);
        Ok(Reloaded::Loaded(label))
    }

    /// [`PluginRegistry::reload`], logging what happened to each plugin.
    pub fn reload_and_log(&self) {
        for (name, outcome) in self.reload() {
            match outcome {
                Ok(Reloaded::Loaded(label)) => {
                    tracing::info!(message = "Plugin reloaded.", plugin = %label)
                }
                Ok(Reloaded::Unchanged) => {
                    tracing::debug!(message = "Plugin unchanged; not reloaded.", plugin = %name)
                }
                Err(e) => tracing::error!(
                    message = "Plugin reload failed; keeping the live version.",
                    plugin = %name,
                    live = %self.live(&name).map(|p| p.label().to_string()).unwrap_or_default(),
                    error = %e,
                ),
            }
        }
    }

    /// Switches every disabled plugin back on (SIGHUP: the operator asks
    /// for it, even without a new file), with a fresh failure count.
    pub fn reenable(&self) -> Vec<String> {
        let mut enabled = Vec::new();
        for slot in &self.slots {
            slot.failures.store(0, Ordering::Relaxed);
            if slot.disabled.swap(false, Ordering::Relaxed) {
                let label = slot.live.load().label().to_string();
                tracing::info!(message = "Plugin enabled again.", plugin = %label);
                enabled.push(label);
            }
        }
        enabled
    }

    /// Every plugin's versions with calls, e.g. `lcr@v2:10,lcr@v3:1`.
    pub fn status(&self) -> String {
        let parts: Vec<String> = self.slots.iter().map(|s| s.status()).collect();
        parts.join(",")
    }

    /// True when `path` (as the watcher reports it: a watched directory
    /// joined with a file name) is one of the plugins' files.
    pub(crate) fn is_plugin_path(&self, path: &Path) -> bool {
        self.slots.iter().any(|s| {
            s.config.path.file_name() == path.file_name()
                && watched_dir(&s.config.path) == path.parent().unwrap_or(Path::new("."))
        })
    }

    /// The files to watch: each plugin's path.
    pub(crate) fn paths(&self) -> Vec<PathBuf> {
        self.slots.iter().map(|s| s.config.path.clone()).collect()
    }
}

impl Routers for PluginRegistry {
    fn get(&self, name: &str) -> Result<Arc<dyn Router>, RouterError> {
        let slot = self
            .slot(name)
            .ok_or_else(|| RouterError::Unknown(name.to_string()))?;
        if slot.disabled.load(Ordering::Relaxed) {
            return Err(RouterError::Disabled(slot.live.load().label().to_string()));
        }
        Ok(Arc::new(PinnedPlugin {
            plugin: slot.live.load_full(),
            slot: slot.clone(),
        }))
    }

    fn status(&self) -> String {
        PluginRegistry::status(self)
    }
}

/// One version of a plugin, held by a call: its events go to this version
/// whatever reloads happen meanwhile; failures count against the plugin.
struct PinnedPlugin {
    plugin: Arc<Plugin>,
    slot: Arc<Slot>,
}

impl Router for PinnedPlugin {
    fn label(&self) -> &str {
        self.plugin.label()
    }

    fn route(&self, view: &CallView, host: &Arc<dyn Host>) -> Result<RouteAnswer, RouterError> {
        match self.plugin.route(view, host) {
            Ok(answer) => {
                self.slot.succeeded(&self.plugin);
                Ok(answer)
            }
            Err(e) => {
                self.slot.failed(&self.plugin);
                Err(RouterError::Failed(e.to_string()))
            }
        }
    }

    fn hangup(&self, call_id: &str, result: &DialResult, host: &Arc<dyn Host>) {
        if let Err(e) = self.plugin.hangup(call_id, result, host) {
            self.slot.failed(&self.plugin);
            tracing::warn!(
                message = "Plugin failed on hangup.",
                plugin = %self.plugin.label(),
                call_id,
                error = %e,
            );
        }
    }
}
