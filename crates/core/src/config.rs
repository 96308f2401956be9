//! Settings of the B2BUA core.

use crate::route::Router;
use std::time::Duration;

/// Whether Tandem relays the media or leaves SDP alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaMode {
    /// SDP rewritten, RTP/RTCP relayed through Tandem (the default).
    Anchored,
    /// SDP passed through: media flows between the endpoints.
    Direct,
}

/// Settings of the core.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Static routes (the no-script default).
    pub router: Router,
    /// Anchored or direct media.
    pub media: MediaMode,
    /// Most calls at once; more get 503 with Retry-After.
    pub max_calls: usize,
    /// New calls per second one source address may start (0: no limit).
    pub calls_per_second_per_source: u32,
    /// Seconds in the Retry-After of a 503 for limits.
    pub retry_after: u32,
    /// How often a status line (calls, ports, transactions) is logged.
    pub status_interval: Option<Duration>,
    /// Credentials for targets that challenge B legs (401/407).
    pub credentials: Vec<Credential>,
    /// T1 of the SIP layer, for the retransmissions the core does itself
    /// (reliable provisionals).
    pub t1: Duration,
    /// Session interval offered on B legs and used on A legs whose caller
    /// supports timers (RFC 4028); `None` turns session timers off.
    pub session_expires: Option<Duration>,
    /// Smallest session interval accepted (Min-SE; 422 below it).
    pub min_se: Duration,
    /// Users, authentication and the registrar.
    pub users: std::sync::Arc<crate::users::UserServices>,
    /// Trunks Tandem registers with: their INVITEs skip authentication.
    pub trunks: Vec<crate::trunk::InboundTrunk>,
}

/// Credentials Tandem answers a target's digest challenge with.
#[derive(Debug, Clone)]
pub struct Credential {
    /// The target: `IP` (any port) or `IP:PORT`.
    pub target: String,
    /// Only for this realm (`None`: any).
    pub realm: Option<String>,
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl CoreConfig {
    /// The credentials for a challenge from `addr` in `realm`.
    pub fn credential_for(&self, addr: std::net::SocketAddr, realm: &str) -> Option<&Credential> {
        self.credentials.iter().find(|c| {
            let target_ok = c.target == addr.to_string() || c.target == addr.ip().to_string();
            target_ok && c.realm.as_deref().is_none_or(|r| r == realm)
        })
    }
}

impl Default for CoreConfig {
    fn default() -> CoreConfig {
        CoreConfig {
            router: Router::default(),
            media: MediaMode::Anchored,
            max_calls: 10_000,
            calls_per_second_per_source: 0,
            retry_after: 5,
            status_interval: Some(Duration::from_secs(60)),
            credentials: Vec::new(),
            t1: Duration::from_millis(500),
            session_expires: Some(Duration::from_secs(1800)),
            min_se: Duration::from_secs(90),
            users: Default::default(),
            trunks: Vec::new(),
        }
    }
}
