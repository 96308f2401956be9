//! One loaded version of a plugin and the events it answers.

use crate::bindings::Router;
use crate::compile::{ContentHash, compile, content_hash};
use crate::config::PluginConfig;
use crate::convert::{ViewArg, ViewParts};
use crate::engine::{TICK, WasmEngine};
use crate::host::HostState;
use crate::limits::{InstanceLimits, MemoryLimit};
use crate::tandem::plugin::types as wit;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wasmtime::Store;
use wasmtime::component::{ComponentExportIndex, HasSelf, InstancePre, Linker, TypedFunc};

/// `on-invite` as the host calls it.
type OnInvite<'a> = TypedFunc<(ViewArg<'a>,), (wit::Route,)>;
/// `on-hangup` as the host calls it.
type OnHangup<'a> = TypedFunc<(&'a str, &'a wit::DialResult), ()>;

/// Why a plugin failed to load or to answer an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// The file cannot be read.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        message: String,
    },
    /// Not a component of the `router` world, or one that imports
    /// something the host does not offer.
    #[error("{plugin}: not a valid router component: {message}")]
    Invalid {
        /// `name`.
        plugin: String,
        /// What wasmtime said.
        message: String,
    },
    /// The event trapped, ran out of time or fuel, or hit its memory limit.
    #[error("{plugin}: {message}")]
    Trap {
        /// `name@vN`.
        plugin: String,
        /// The trap.
        message: String,
    },
    /// The plugin answered something the API refuses.
    #[error("{plugin}: {message}")]
    Refused {
        /// `name@vN`.
        plugin: String,
        /// Which rule it broke.
        message: String,
    },
}

/// ` in FUNCTION`: the innermost guest function of a trap's backtrace
/// that has a name ("" without one).
fn guest_function(e: &wasmtime::Error) -> String {
    e.downcast_ref::<wasmtime::WasmBacktrace>()
        .and_then(|bt| {
            bt.frames()
                .iter()
                .find_map(|f| f.func_name().map(str::to_string))
        })
        .map(|name| format!(" in {name}"))
        .unwrap_or_default()
}

/// Reads a plugin's file.
pub(crate) fn read(config: &PluginConfig) -> Result<Vec<u8>, PluginError> {
    std::fs::read(&config.path).map_err(|e| PluginError::Io {
        path: config.path.display().to_string(),
        message: e.to_string(),
    })
}

/// An export of the component, found once per version: each event looks
/// it up by index.
struct Export {
    index: ComponentExportIndex,
    /// Whether it has been found to have the signature the host calls it
    /// with: checked on its first event (that takes an instance), taken
    /// as checked on every later one.
    checked: AtomicBool,
}

/// A compiled version of a plugin, ready to instantiate per event.
pub struct Plugin {
    engine: WasmEngine,
    pre: InstancePre<HostState>,
    on_invite: Export,
    on_hangup: Export,
    config: PluginConfig,
    hash: ContentHash,
    version: u64,
    label: Arc<str>,
    settings: Arc<Vec<(String, String)>>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("label", &self.label)
            .finish()
    }
}

impl Plugin {
    /// Compiles a plugin from its file's bytes (a component, or a core
    /// module with wit-bindgen's component-type section, wrapped here) as
    /// version `version` and links it against the host API. Blocking.
    pub fn from_bytes(
        engine: &WasmEngine,
        config: &PluginConfig,
        version: u64,
        bytes: &[u8],
    ) -> Result<Plugin, PluginError> {
        Plugin::compile(engine, config, version, bytes, None)
    }

    /// [`Plugin::from_bytes`], keeping compiled code in `cache` (a
    /// directory) under the content hash of `bytes`.
    pub fn compile(
        engine: &WasmEngine,
        config: &PluginConfig,
        version: u64,
        bytes: &[u8],
        cache: Option<&Path>,
    ) -> Result<Plugin, PluginError> {
        let invalid = |message: String| PluginError::Invalid {
            plugin: config.name.clone(),
            message,
        };
        if config.fuel.is_some() && !engine.counts_fuel() {
            return Err(invalid(
                "a fuel limit needs an engine that counts fuel".to_string(),
            ));
        }
        let hash = content_hash(bytes);
        let component = compile(engine.inner(), bytes, &hash, cache).map_err(invalid)?;
        let mut linker: Linker<HostState> = Linker::new(engine.inner());
        Router::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| invalid(format!("{e:#}")))?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| invalid(format!("{e:#}")))?;
        let export = |name: &str| {
            let index = component
                .get_export_index(None, name)
                .ok_or_else(|| invalid(format!("no export `{name}`")))?;
            Ok(Export {
                index,
                checked: AtomicBool::new(false),
            })
        };
        let (on_invite, on_hangup) = (export("on-invite")?, export("on-hangup")?);
        Ok(Plugin {
            engine: engine.clone(),
            pre,
            on_invite,
            on_hangup,
            label: format!("{}@v{version}", config.name).into(),
            settings: Arc::new(config.settings.clone()),
            config: config.clone(),
            hash,
            version,
        })
    }

    /// The version number (1 for the first load, +1 per reload).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The SHA-256 of the file this version was compiled from.
    pub(crate) fn hash(&self) -> &ContentHash {
        &self.hash
    }

    /// The settings this version was loaded with.
    pub fn config(&self) -> &PluginConfig {
        &self.config
    }

    /// `name@vN`, as logs show it.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The names of the component's imports: at most the host API's
    /// interfaces, nothing else can link.
    pub fn imports(&self) -> Vec<String> {
        let engine = self.engine.inner();
        self.pre
            .component()
            .component_type()
            .imports(engine)
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// A fresh, limited store for one event.
    fn store(
        &self,
        host: &Arc<dyn api::Host>,
        call_id: &str,
    ) -> Result<Store<HostState>, PluginError> {
        let state = HostState {
            host: host.clone(),
            settings: self.settings.clone(),
            limits: InstanceLimits::new(self.config.memory),
            label: self.label.clone(),
            call_id: call_id.to_string(),
        };
        let mut store = Store::new(self.engine.inner(), state);
        store.limiter(|s| &mut s.limits);
        let ticks = (self.config.cpu.as_nanos() / TICK.as_nanos()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        if self.engine.counts_fuel() {
            store
                .set_fuel(self.config.fuel.unwrap_or(u64::MAX))
                .map_err(|e| self.trap(e))?;
        }
        Ok(store)
    }

    fn trap(&self, e: wasmtime::Error) -> PluginError {
        let message = match e.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => {
                format!("CPU limit of {} ms exceeded", self.config.cpu.as_millis())
            }
            Some(wasmtime::Trap::OutOfFuel) => "fuel exhausted".to_string(),
            Some(trap) => format!("trap: {trap}{}", guest_function(&e)),
            None => match e.downcast_ref::<MemoryLimit>() {
                Some(limit) => limit.to_string(),
                // One line: a log line per failure.
                None => format!("{e:#}").replace('\n', " "),
            },
        };
        PluginError::Trap {
            plugin: self.label.to_string(),
            message,
        }
    }

    /// Asks the plugin about a new call. Each call gets a fresh instance;
    /// a trap, a timeout or a memory bomb is an error of this call only.
    pub fn route(
        &self,
        view: &api::CallView,
        host: &Arc<dyn api::Host>,
    ) -> Result<api::RouteAnswer, PluginError> {
        let parts = ViewParts::of(view);
        let mut store = self.store(host, &view.call_id)?;
        let _running = self.engine.running();
        let on_invite: OnInvite<'_> = self.export(&mut store, &self.on_invite)?;
        let (route,) = on_invite
            .call(&mut store, (parts.arg(view),))
            .map_err(|e| self.trap(e))?;
        crate::convert::route(route).map_err(|message| PluginError::Refused {
            plugin: self.label.to_string(),
            message,
        })
    }

    /// Tells the plugin how a call it routed ended.
    pub fn hangup(
        &self,
        call_id: &str,
        result: &api::DialResult,
        host: &Arc<dyn api::Host>,
    ) -> Result<(), PluginError> {
        if !self.config.hangup {
            return Ok(());
        }
        let mut store = self.store(host, call_id)?;
        let _running = self.engine.running();
        let on_hangup: OnHangup<'_> = self.export(&mut store, &self.on_hangup)?;
        on_hangup
            .call(&mut store, (call_id, &crate::convert::dial_result(result)))
            .map_err(|e| self.trap(e))
    }

    /// `export` of a fresh instance in `store`, typed. The first event of
    /// each export checks its signature (as bindgen's typed calls do on
    /// every instance); later ones take it as checked.
    #[allow(unsafe_code)]
    fn export<P, R>(
        &self,
        store: &mut Store<HostState>,
        export: &Export,
    ) -> Result<TypedFunc<P, R>, PluginError>
    where
        P: wasmtime::component::ComponentNamedList + wasmtime::component::Lower,
        R: wasmtime::component::ComponentNamedList + wasmtime::component::Lift,
    {
        let instance = self
            .pre
            .instantiate(&mut *store)
            .map_err(|e| self.trap(e))?;
        if !export.checked.load(Ordering::Relaxed) {
            let typed = instance
                .get_typed_func::<P, R>(&mut *store, &export.index)
                .map_err(|e| self.trap(e))?;
            export.checked.store(true, Ordering::Relaxed);
            return Ok(typed);
        }
        let func = instance
            .get_func(&mut *store, export.index)
            .ok_or_else(|| PluginError::Trap {
                plugin: self.label.to_string(),
                message: "an export is missing from the instance".to_string(),
            })?;
        // SAFETY: the first event checked that this export of this
        // component (one per `Plugin`) has the signature `P -> R`.
        Ok(unsafe { TypedFunc::new_unchecked(func) })
    }
}
