//! The WebAssembly engine of Tandem: routing plugins are WebAssembly
//! components of the world `tandem:plugin/router` (`crates/api/wit`).
//!
//! A component is compiled once per version ([`Plugin::compile`]); every
//! event gets a fresh instance from a pre-instantiated template and the
//! pooling allocator, so nothing leaks between calls, in a store limited in
//! memory (per instance) and CPU time (epoch deadline, optional fuel). The
//! only imports a plugin can have are the host API's: no WASI, no files,
//! no sockets, no clocks. A trap, a timeout or a memory bomb is an error
//! of that one event.
//!
//! The [`PluginRegistry`] holds every configured plugin's live version,
//! reloads changed files (a bad file keeps the old version; a call keeps
//! the version it started with) and switches off a plugin that keeps
//! failing. Calls reach plugins as [`api::Router`]s, through
//! [`api::RouterChain`] or a Lua dial plan's `tandem.plugin(name)`.

mod compile;
mod config;
mod convert;
mod engine;
mod host;
mod limits;
mod plugin;
mod registry;
mod watch;

/// Rust types and traits generated from the WIT world.
mod bindings {
    #![allow(missing_docs, unreachable_pub)]
    wasmtime::component::bindgen!({
        world: "router",
        path: "../api/wit",
    });
}

pub(crate) use bindings::tandem;

pub use config::PluginConfig;
pub use engine::{EngineError, WasmEngine};
pub use plugin::{Plugin, PluginError};
pub use registry::{PluginRegistry, Reloaded};
pub use watch::{PluginWatch, WatchError};
