//! Settings and trusted-source parsing.

use crate::AuthError;
use ipnet::IpNet;
use sip::auth::Algorithm;
use std::net::IpAddr;
use std::time::Duration;

/// The settings of an [`crate::Authenticator`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// The realm of every challenge (default `tandem`). Stored HA1 values
    /// must have been computed with this realm.
    pub realm: String,
    /// After this a nonce is stale (default 300 s).
    pub nonce_ttl: Duration,
    /// The challenges offered, preferred first: one header per algorithm
    /// (RFC 8760 §2.4). Default `[MD5]`: many phones (baresip 1.0, SIPp
    /// 3.6) give up when any SHA-256 challenge is offered, even beside an
    /// MD5 one; `[SHA-256, MD5]` serves RFC 8760 clients. An empty list
    /// means the default.
    pub algorithms: Vec<Algorithm>,
    /// Failed checks from one address that block it (default 5; 0 never
    /// blocks).
    pub max_failures: u32,
    /// The window in which `max_failures` must happen (default 60 s).
    pub failure_window: Duration,
    /// How long a source stays blocked (default 60 s).
    pub block_time: Duration,
    /// Sources that skip authentication (trunks, PBXs).
    pub trusted: Vec<IpNet>,
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig {
            realm: "tandem".to_string(),
            nonce_ttl: Duration::from_secs(300),
            algorithms: vec![Algorithm::Md5],
            max_failures: 5,
            failure_window: Duration::from_secs(60),
            block_time: Duration::from_secs(60),
            trusted: Vec::new(),
        }
    }
}

/// Parses a trusted source: a CIDR network (`192.0.2.0/24`,
/// `2001:db8::/32`) or a bare address (`10.0.0.1` = /32, `::1` = /128;
/// IPv6 may be bracketed). Host bits of a network are cleared.
pub fn parse_trusted(s: &str) -> Result<IpNet, AuthError> {
    let value = s.trim();
    let err = |reason: String| AuthError::Trusted {
        value: s.to_string(),
        reason,
    };
    if value.is_empty() {
        return Err(err("empty".to_string()));
    }
    if value.contains('/') {
        return value
            .parse::<IpNet>()
            .map(|n| n.trunc())
            .map_err(|e| err(e.to_string()));
    }
    let bare = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    bare.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_trusted_sources() {
        assert_eq!(
            parse_trusted("192.0.2.0/24").unwrap().to_string(),
            "192.0.2.0/24"
        );
        assert_eq!(
            parse_trusted("192.0.2.7/24").unwrap().to_string(),
            "192.0.2.0/24"
        );
        assert_eq!(
            parse_trusted("10.0.0.1").unwrap().to_string(),
            "10.0.0.1/32"
        );
        assert_eq!(parse_trusted(" ::1 ").unwrap().to_string(), "::1/128");
        assert_eq!(parse_trusted("[::1]").unwrap().to_string(), "::1/128");
        assert_eq!(
            parse_trusted("2001:db8::/32").unwrap().to_string(),
            "2001:db8::/32"
        );
        for bad in [
            "",
            "pbx.example.com",
            "10.0.0.0/33",
            "10.0.0",
            "1.2.3.4/",
            "::1/129",
        ] {
            let e = parse_trusted(bad).unwrap_err();
            assert!(matches!(e, AuthError::Trusted { .. }), "{bad}: {e}");
            assert!(e.to_string().contains("not an IP address or CIDR"), "{e}");
        }
    }

    #[test]
    fn defaults() {
        let c = AuthConfig::default();
        assert_eq!(c.realm, "tandem");
        assert_eq!(c.nonce_ttl, Duration::from_secs(300));
        assert_eq!(c.algorithms, [Algorithm::Md5]);
        assert_eq!(c.max_failures, 5);
        assert_eq!(c.failure_window, Duration::from_secs(60));
        assert_eq!(c.block_time, Duration::from_secs(60));
        assert!(c.trusted.is_empty());
    }
}
