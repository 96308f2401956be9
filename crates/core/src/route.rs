//! Static routing: the Request-URI user picks the route with the longest
//! matching prefix; its targets are tried serially or in parallel.

use sip::message::Uri;
use sip::transport::{Target, TransportKind};
use std::time::Duration;

/// How the targets of a route are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForkMode {
    /// One after the other: the next on failure or no answer.
    Serial,
    /// All at once: the first 2xx wins, the others are cancelled.
    Parallel,
}

impl From<api::DialMode> for ForkMode {
    fn from(m: api::DialMode) -> ForkMode {
        match m {
            api::DialMode::Serial => ForkMode::Serial,
            api::DialMode::Parallel => ForkMode::Parallel,
        }
    }
}

impl From<ForkMode> for api::DialMode {
    fn from(m: ForkMode) -> api::DialMode {
        match m {
            ForkMode::Serial => api::DialMode::Serial,
            ForkMode::Parallel => api::DialMode::Parallel,
        }
    }
}

/// What a 3xx from a target does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectMode {
    /// Try its Contacts (by q-value) as further targets.
    Follow,
    /// Relay it to the caller with its Contacts.
    Relay,
}

/// Most redirects one call follows (against redirect loops).
pub const MAX_REDIRECTS: u8 = 5;

/// One route of the `[[routes]]` table.
#[derive(Debug, Clone)]
pub struct Route {
    /// Matches Request-URI users starting with this ("" matches all).
    pub prefix: String,
    /// Target URI templates; `${user}` is the dialled user.
    pub targets: Vec<String>,
    /// Serial or parallel.
    pub mode: ForkMode,
    /// How long one attempt may ring before it is cancelled.
    pub timeout: Duration,
    /// Media handling for calls on this route (`None`: the global mode).
    pub media: Option<crate::config::MediaMode>,
    /// Follow or relay 3xx responses.
    pub redirect: RedirectMode,
}

/// A target resolved for one call.
#[derive(Debug, Clone)]
pub struct ResolvedTarget {
    /// The Request-URI of the B leg.
    pub uri: Uri,
    /// Where the B-leg INVITE goes.
    pub target: Target,
    /// Extra headers for this target's INVITE (from a dial plan).
    pub headers: Vec<(sip::message::HeaderName, String)>,
    /// The contacts of one registered user share a group: they ring
    /// together even in a serial dial, and the contact's URI stays the
    /// Request-URI even when a dial plan set another one.
    pub group: Option<u32>,
}

/// What routing decided for a call.
#[derive(Debug, Clone)]
pub struct RouteDecision {
    /// The targets, in order.
    pub targets: Vec<ResolvedTarget>,
    /// Serial or parallel.
    pub mode: ForkMode,
    /// Ring time per attempt.
    pub timeout: Duration,
    /// Media handling override of the route.
    pub media: Option<crate::config::MediaMode>,
    /// Follow or relay 3xx responses.
    pub redirect: RedirectMode,
}

impl RouteDecision {
    /// No targets yet (a dial plan adds them per dial).
    pub fn empty() -> RouteDecision {
        RouteDecision {
            targets: Vec::new(),
            mode: ForkMode::Serial,
            timeout: crate::call::DEFAULT_RING_TIMEOUT,
            media: None,
            redirect: RedirectMode::Follow,
        }
    }
}

/// Why a call cannot be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No route matches the dialled user.
    #[error("no route for `{0}`")]
    NoRoute(String),
    /// A target is not a SIP URI with an IP address.
    #[error("target `{0}` is not a sip: URI with an IP address")]
    BadTarget(String),
}

/// The static routing table.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// A router over `routes`.
    pub fn new(routes: Vec<Route>) -> Router {
        Router { routes }
    }

    /// True when no route is configured.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Picks the longest-prefix route for `user` and resolves its targets.
    pub fn route(&self, user: &str) -> Result<RouteDecision, RouteError> {
        let route = self
            .routes
            .iter()
            .filter(|r| user.starts_with(&r.prefix))
            .max_by_key(|r| r.prefix.len())
            .ok_or_else(|| RouteError::NoRoute(user.to_string()))?;
        let targets = route
            .targets
            .iter()
            .map(|t| resolve(&t.replace("${user}", user)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RouteDecision {
            targets,
            mode: route.mode,
            timeout: route.timeout,
            media: route.media,
            redirect: route.redirect,
        })
    }
}

/// Resolves a target URI to a transport address (IP literals only: no DNS).
pub fn resolve(text: &str) -> Result<ResolvedTarget, RouteError> {
    let uri = Uri::parse(text).map_err(|_| RouteError::BadTarget(text.to_string()))?;
    if !uri.is_sip() {
        return Err(RouteError::BadTarget(text.to_string()));
    }
    let addr = uri
        .socket_addr()
        .ok_or_else(|| RouteError::BadTarget(text.to_string()))?;
    let kind = uri
        .transport_param()
        .and_then(|t| TransportKind::from_token(t.as_bytes()))
        .unwrap_or(TransportKind::Udp);
    Ok(ResolvedTarget {
        uri,
        target: Target::new(kind, addr),
        headers: Vec::new(),
        group: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(prefix: &str, target: &str) -> Route {
        Route {
            prefix: prefix.into(),
            targets: vec![target.into()],
            mode: ForkMode::Serial,
            timeout: Duration::from_secs(30),
            media: None,
            redirect: RedirectMode::Follow,
        }
    }

    #[test]
    fn longest_prefix_wins_and_user_is_substituted() {
        let r = Router::new(vec![
            route("", "sip:${user}@127.0.0.1:5090"),
            route("1", "sip:${user}@127.0.0.1:5080;transport=tcp"),
        ]);
        let d = r.route("1000").unwrap();
        assert_eq!(
            d.targets[0].uri.to_string(),
            "sip:1000@127.0.0.1:5080;transport=tcp"
        );
        assert_eq!(d.targets[0].target.kind, TransportKind::Tcp);
        let d = r.route("2000").unwrap();
        assert_eq!(d.targets[0].target.addr.port(), 5090);
        assert_eq!(
            Router::new(vec![route("9", "sip:x@127.0.0.1")])
                .route("1")
                .unwrap_err(),
            RouteError::NoRoute("1".into())
        );
        assert!(resolve("sip:x@example.com").is_err());
    }
}
