//! The host API of Tandem, engine-neutral: what a dial plan sees of a call
//! ([`CallView`]), what it can ask for ([`Command`], [`DialRequest`]) and
//! what it gets back ([`DialResult`]), plus the host-wide services
//! ([`Host`]: key-value store, HTTP, static routes).
//!
//! The Lua engine and the Wasm engine bind exactly these types, so a dial
//! plan can move between them without changing meaning. The core is on the
//! other side: it turns commands into SIP. An engine never sees SIP
//! messages, and the core never sees Lua or Wasm values.

pub mod chain;
pub mod command;
pub mod headers;
pub mod host;
pub mod kv;
pub mod link;
pub mod register;
pub mod route;
pub mod simulate;
pub mod validate;
pub mod value;
pub mod view;

pub use chain::{OnError, RouterChain};
pub use command::{Command, DialMode, DialRequest, DialResult, DialTarget, ScriptError};
pub use headers::HeaderList;
pub use host::{CallHandler, HandlerError, Host, HttpRequest, HttpResponse, RouteInfo, ScriptRun};
pub use kv::{KvStore, MemoryKv};
pub use link::{CallLink, CommandReceiver, PendingDial};
pub use register::{
    Contact, RegisterContact, RegisterDecision, RegisterHandler, RegisterRun, RegisterView,
};
pub use route::{Decision, RouteAnswer, Router, RouterError, Routers};
pub use validate::ApiError;
pub use value::Value;
pub use view::CallView;

/// Version of the host API (the Lua API and the WIT world move together).
pub const API_VERSION: &str = "1.0.0";
