//! One loaded version of a plugin and the events it answers.

use crate::bindings::{Router, RouterPre};
use crate::config::PluginConfig;
use crate::engine::{TICK, WasmEngine};
use crate::host::HostState;
use std::sync::Arc;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Store, StoreLimitsBuilder};

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

/// What a plugin decided for a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Ring these targets.
    Dial(api::DialRequest),
    /// Refuse with this code and reason.
    Reject(u16, String),
    /// Let the next handler decide.
    Pass,
}

/// A plugin's answer to a new call: B-leg edits, in order (header, R-URI,
/// From and variable commands), and the decision.
#[derive(Debug)]
pub struct PluginRoute {
    /// The edits, as API commands.
    pub edits: Vec<api::Command>,
    /// The decision.
    pub decision: Decision,
}

/// A compiled version of a plugin, ready to instantiate per event.
pub struct Plugin {
    engine: WasmEngine,
    pre: RouterPre<HostState>,
    config: PluginConfig,
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
    /// Compiles the component at `config.path` as version `version` and
    /// links it against the host API. Blocking (compiles code).
    pub fn load(
        engine: &WasmEngine,
        config: &PluginConfig,
        version: u64,
    ) -> Result<Plugin, PluginError> {
        let bytes = std::fs::read(&config.path).map_err(|e| PluginError::Io {
            path: config.path.display().to_string(),
            message: e.to_string(),
        })?;
        Plugin::from_bytes(engine, config, version, &bytes)
    }

    /// [`Plugin::load`] from the component's bytes.
    pub fn from_bytes(
        engine: &WasmEngine,
        config: &PluginConfig,
        version: u64,
        bytes: &[u8],
    ) -> Result<Plugin, PluginError> {
        let invalid = |e: wasmtime::Error| PluginError::Invalid {
            plugin: config.name.clone(),
            message: format!("{e:#}"),
        };
        let component = Component::new(engine.inner(), bytes).map_err(invalid)?;
        let mut linker: Linker<HostState> = Linker::new(engine.inner());
        Router::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(invalid)?;
        let pre = RouterPre::new(linker.instantiate_pre(&component).map_err(invalid)?)
            .map_err(invalid)?;
        Ok(Plugin {
            engine: engine.clone(),
            pre,
            label: format!("{}@v{version}", config.name).into(),
            settings: Arc::new(config.settings.clone()),
            config: config.clone(),
        })
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
            .instance_pre()
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
            limits: StoreLimitsBuilder::new()
                .memory_size(self.config.memory)
                .instances(4)
                .tables(8)
                .memories(2)
                .build(),
            label: self.label.clone(),
            call_id: call_id.to_string(),
        };
        let mut store = Store::new(self.engine.inner(), state);
        store.limiter(|s| &mut s.limits);
        let ticks = (self.config.cpu.as_nanos() / TICK.as_nanos()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store
            .set_fuel(self.config.fuel.unwrap_or(u64::MAX))
            .map_err(|e| self.trap(e))?;
        Ok(store)
    }

    fn trap(&self, e: wasmtime::Error) -> PluginError {
        let message = match e.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => {
                format!("CPU limit of {} ms exceeded", self.config.cpu.as_millis())
            }
            Some(wasmtime::Trap::OutOfFuel) => "fuel exhausted".to_string(),
            _ => format!("{e:#}"),
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
    ) -> Result<PluginRoute, PluginError> {
        let mut store = self.store(host, &view.call_id)?;
        let router = self.pre.instantiate(&mut store).map_err(|e| self.trap(e))?;
        let route = router
            .call_on_invite(&mut store, &crate::convert::view(view))
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
        let mut store = self.store(host, call_id)?;
        let router = self.pre.instantiate(&mut store).map_err(|e| self.trap(e))?;
        router
            .call_on_hangup(&mut store, call_id, &crate::convert::dial_result(result))
            .map_err(|e| self.trap(e))
    }
}
