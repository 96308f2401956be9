//! Users of the switch: who may register and call (digest authentication,
//! trusted sources) and where registered users are (the registrar), plus
//! the dial plan's `on_register` hook.

use crate::route::ResolvedTarget;
use sip::message::Uri;
use std::sync::{Arc, OnceLock};

/// The user services the dispatcher and calls share.
pub struct UserServices {
    /// Digest authentication, trusted sources, failure limits.
    pub auth: Arc<auth::Authenticator>,
    /// The registrar and its location store.
    pub registrar: Arc<registrar::Registrar>,
    /// A caller's From user must be the user they authenticated as
    /// (`false`: the dial plan compares `call.auth_user` itself).
    pub strict_identity: bool,
    /// INVITEs without credentials are challenged (`false`: they reach the
    /// dial plan unauthenticated, which may `call:challenge()`).
    pub challenge_calls: bool,
    /// The location store writes to disk: REGISTERs are stored off the
    /// dispatcher's task.
    pub durable_store: bool,
    /// The dial plan's `on_register`, once a dial plan is loaded.
    register_hook: OnceLock<Arc<dyn api::RegisterHandler>>,
}

impl std::fmt::Debug for UserServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserServices")
            .field("users", &self.auth.has_users())
            .field("registrations", &self.registrar.count())
            .field("strict_identity", &self.strict_identity)
            .finish_non_exhaustive()
    }
}

impl Default for UserServices {
    /// No users (nobody is challenged) and an in-memory registrar.
    fn default() -> UserServices {
        UserServices::new(
            auth::Authenticator::new(auth::AuthConfig::default(), auth::Directory::default()),
            registrar::Registrar::new(
                registrar::RegistrarConfig::default(),
                Arc::new(registrar::MemoryStore::new()),
            ),
            true,
            true,
        )
    }
}

impl UserServices {
    /// Services from their parts.
    pub fn new(
        auth: auth::Authenticator,
        registrar: registrar::Registrar,
        strict_identity: bool,
        challenge_calls: bool,
    ) -> UserServices {
        UserServices {
            auth: Arc::new(auth),
            registrar: Arc::new(registrar),
            strict_identity,
            challenge_calls,
            durable_store: false,
            register_hook: OnceLock::new(),
        }
    }

    /// Lets the dial plan see registrations (only the first call counts:
    /// the engine swaps versions inside).
    pub fn set_register_hook(&self, hook: Arc<dyn api::RegisterHandler>) {
        let _ = self.register_hook.set(hook);
    }

    /// The `on_register` hook, if a dial plan set one.
    pub(crate) fn register_hook(&self) -> Option<&Arc<dyn api::RegisterHandler>> {
        self.register_hook.get()
    }

    /// The B-leg targets for every live contact of `user`, best first:
    /// the Request-URI is the registered contact, the destination is
    /// where the REGISTER came from (NAT), over its connection for TCP.
    pub fn contacts(&self, user: &str) -> Vec<ResolvedTarget> {
        self.registrar
            .lookup(user, unix_now())
            .into_iter()
            .filter_map(|b| {
                let uri = Uri::parse(&b.contact).ok()?;
                Some(ResolvedTarget {
                    uri,
                    target: b.target(),
                    headers: Vec::new(),
                    group: Some(0),
                })
            })
            .collect()
    }

    /// The contacts of `user` as a dial plan sees them.
    pub fn lookup(&self, user: &str) -> Vec<api::Contact> {
        let now = unix_now();
        self.registrar
            .lookup(user, now)
            .into_iter()
            .map(|b| api::Contact {
                expires: b.expires_in(now),
                q: b.q,
                received: format!(
                    "{}:{}",
                    b.path.target().kind.as_str().to_ascii_lowercase(),
                    b.path.remote
                ),
                user_agent: b.user_agent.clone(),
                attrs: b.attrs.clone(),
                uri: b.contact,
            })
            .collect()
    }
}

/// Seconds since the Unix epoch (bindings expire in wall-clock time, so
/// that a restart with a file store keeps their expiry).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
