//! The host side of the API: services every engine offers its scripts, and
//! the trait the core starts a call's dial plan through.

use crate::command::DialMode;
use crate::kv::KvStore;
use crate::link::CallLink;
use crate::route::{Router, RouterError};
use crate::view::CallView;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A boxed future that can move between threads.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An HTTP request from a script (`tandem.http`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// GET, POST, …
    pub method: String,
    /// `http://…`
    pub url: String,
    /// Request headers.
    pub headers: Vec<(String, String)>,
    /// Request body (empty: none).
    pub body: Vec<u8>,
    /// Whole-request timeout.
    pub timeout: Duration,
}

/// The answer to a [`HttpRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Response headers (names in lower case).
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
}

/// A static route as a script sees it (`tandem.route(user)`).
#[derive(Debug, Clone, PartialEq)]
pub struct RouteInfo {
    /// Target URIs with `${user}` filled in.
    pub targets: Vec<String>,
    /// Serial or parallel.
    pub mode: DialMode,
    /// Ring time per attempt.
    pub timeout: Duration,
    /// `Some(false)`: the route leaves SDP alone (direct media).
    pub anchor_media: Option<bool>,
}

/// Host-wide services: shared by every call, every script version and both
/// engines.
pub trait Host: Send + Sync + 'static {
    /// The key-value store.
    fn kv(&self) -> &dyn KvStore;
    /// Performs an HTTP request without blocking a thread; the error is a
    /// message for the script.
    fn http(&self, request: HttpRequest) -> BoxFuture<'static, Result<HttpResponse, String>>;
    /// The route for a dialled user, if any: a registered user's phones
    /// (`user:NAME`), else the static route.
    fn route(&self, user: &str) -> Option<RouteInfo>;
    /// The registered contacts of a user, best first (empty: none).
    fn lookup(&self, user: &str) -> Vec<crate::Contact> {
        let _ = user;
        Vec::new()
    }
    /// The live version of plugin `name` (Lua: `tandem.plugin(name)`).
    fn plugin(&self, name: &str) -> Result<Arc<dyn Router>, RouterError> {
        Err(RouterError::Unknown(name.to_string()))
    }
}

/// Why a handler could not take a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// The engine could not start the script for this call.
    #[error("cannot start the dial plan: {0}")]
    Start(String),
}

/// A dial plan's run on one call. The core polls it from the call's own
/// task, so the script's commands and the call's answers never cross
/// threads; it holds the version the call is pinned to.
pub type ScriptRun = BoxFuture<'static, ()>;

/// What the core calls a dial plan through: an engine with a loaded script
/// or plugin.
pub trait CallHandler: Send + Sync {
    /// Starts the dial plan on a new call: it drives the call through
    /// `link` while the returned run is polled. Returns the version the call
    /// is pinned to (for logs), e.g. `pbx.lua@v3`, and the run.
    fn start(&self, view: CallView, link: CallLink) -> Result<(String, ScriptRun), HandlerError>;
    /// The live version, for status lines.
    fn version(&self) -> String;
}
