//! Write Tandem routing plugins in Rust.
//!
//! A plugin is a WebAssembly module of the WIT world `router` of
//! `tandem:plugin@1.0.0` (`crates/api/wit/plugin.wit`): Tandem calls its
//! [`Router::on_invite`] for each new call and its [`Router::on_hangup`]
//! when that call has ended. This crate binds that world with wit-bindgen
//! and adds what makes a plugin short to write: the [`Router`] trait, a
//! [`Route`] builder, header look-ups on [`CallView`], wrappers of the host
//! functions ([`log`], [`kv`], [`registrar_lookup`], [`config`],
//! [`setting`]) and a [`uri`] helper.
//!
//! ```no_run
//! use tandem_plugin::{CallView, Route, Router, export_router};
//!
//! struct Desk;
//!
//! impl Router for Desk {
//!     fn on_invite(call: CallView) -> Route {
//!         match call.user.as_str() {
//!             "1000" => Route::dial(["sip:1000@127.0.0.1:5080"]).timeout_ms(20_000),
//!             _ => Route::reject(404, "Not Found"),
//!         }
//!     }
//! }
//!
//! export_router!(Desk);
//! ```
//!
//! Build the plugin as a `cdylib` for `wasm32-unknown-unknown`; the module
//! carries the component type that wit-bindgen embeds, and Tandem turns it
//! into a component when it loads it.

#[doc(hidden)]
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod bindings {
    //! What wit-bindgen generates from `crates/api/wit` (the one copy of
    //! the WIT, shared with the host).
    wit_bindgen::generate!({
        path: "../../crates/api/wit",
        world: "router",
        pub_export_macro: true,
        export_macro_name: "export_router",
        default_bindings_module: "tandem_plugin::bindings",
        additional_derives: [PartialEq],
    });
}

pub mod allocator;
mod call;
pub mod host;
mod route;
pub mod uri;

pub use bindings::export_router;
pub use bindings::tandem::plugin::host::Level;
pub use bindings::tandem::plugin::types::{
    CallVar, CallView, Decision, Dial, DialMode, DialResult, DialTarget, Edit, FromChange, Header,
    MediaMode, Reject, Route, Value,
};
pub use host::{Settings, config, kv, log, registrar_lookup, setting};

/// Every plugin built with this SDK allocates with [`allocator::EventAllocator`]
/// (feature `event-allocator`, on by default): each event runs in a fresh
/// instance, so a bump allocator is all it needs.
#[cfg(all(target_arch = "wasm32", feature = "event-allocator"))]
#[global_allocator]
static ALLOCATOR: allocator::EventAllocator = allocator::EventAllocator::new();

/// A routing plugin: implement it on a type and name that type in
/// [`export_router!`].
///
/// The methods take no `self`: Tandem runs each event in a fresh instance
/// of the plugin, so there is no state to keep between calls except in the
/// host's key-value store ([`kv`]).
pub trait Router {
    /// A new call: the edits for the B leg and a decision (dial, reject or
    /// pass to the next handler).
    fn on_invite(call: CallView) -> Route;

    /// The call this plugin routed has ended, or every attempt of its dial
    /// failed. Does nothing unless overridden.
    fn on_hangup(call_id: String, outcome: DialResult) {
        let _ = (call_id, outcome);
    }
}

impl<T: Router> bindings::Guest for T {
    fn on_invite(call: CallView) -> Route {
        <T as Router>::on_invite(call)
    }

    fn on_hangup(call_id: String, outcome: DialResult) {
        <T as Router>::on_hangup(call_id, outcome)
    }
}

/// The examples of `plugins/README.md`, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
