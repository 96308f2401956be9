//! Server-side SIP digest authentication for Tandem (RFC 3261 §22,
//! RFC 7616, RFC 8760): the user directory, stateless integrity-protected
//! nonces, nonce-count replay protection, trusted source networks and a
//! per-address failure limit.
//!
//! The client side (challenge parsing, answers, the response hash) lives in
//! [`sip::auth`]; this crate reuses it and adds what only a server needs:
//! the response computed from a stored HA1 ([`response_from_ha1`]) and the
//! decision on a request ([`Authenticator::check`] → [`Verdict`]).

mod authenticator;
mod config;
mod digest;
mod directory;
mod nonce;
mod table;

pub use authenticator::{Authenticator, Kind, Reply, Verdict, from_matches, to_matches};
pub use config::{AuthConfig, parse_trusted};
pub use digest::{DigestParams, ha1, response_from_ha1};
pub use directory::{Directory, Secret, User};
pub use sip::auth::Algorithm;

/// Why a configuration of this crate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A user with an empty name.
    #[error("user with an empty name")]
    EmptyName,
    /// Two users with the same name.
    #[error("user `{0}` is defined more than once")]
    DuplicateUser(String),
    /// A user name with a character that cannot appear in a quoted
    /// `username` (a quote, a backslash or a control character).
    #[error("user name `{0}` holds a quote, backslash or control character")]
    BadName(String),
    /// A stored HA1 that is not hex of the right length.
    #[error("user `{user}`: {algorithm} HA1 must be {len} hex digits")]
    BadHa1 {
        /// The user.
        user: String,
        /// `MD5` or `SHA-256`.
        algorithm: &'static str,
        /// The expected number of hex digits.
        len: usize,
    },
    /// A user with an HA1 secret that holds neither hash.
    #[error("user `{0}` has neither an MD5 nor a SHA-256 HA1")]
    NoSecret(String),
    /// A trusted source that is neither an address nor a network.
    #[error("trusted source `{value}` is not an IP address or CIDR network ({reason})")]
    Trusted {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}
