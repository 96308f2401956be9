//! The `[[trunks]]` section: carriers Tandem registers with (and whose
//! calls it trusts).

use serde::Deserialize;
use sip::transport::{Target, TransportKind};
use std::time::Duration;

/// One `[[trunks]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TrunkEntry {
    /// Name (logs, `call.vars.trunk`).
    pub(crate) name: String,
    /// The trunk's SIP address, `IP:PORT` (no DNS).
    pub(crate) address: String,
    /// `udp` or `tcp`.
    #[serde(default = "default_transport")]
    pub(crate) transport: String,
    /// Register Tandem with the trunk.
    #[serde(default)]
    pub(crate) register: bool,
    /// User to register as (and digest username).
    #[serde(default)]
    pub(crate) username: String,
    /// Digest password (also answers the trunk's challenges to calls).
    #[serde(default)]
    pub(crate) password: String,
    /// Domain of the AOR and Request-URI (default: the address's IP).
    #[serde(default)]
    pub(crate) domain: Option<String>,
    /// User of Tandem's Contact at the trunk (default: `username`).
    #[serde(default)]
    pub(crate) contact_user: Option<String>,
    /// Registration time asked for, in seconds.
    #[serde(default = "default_expires")]
    pub(crate) expires_s: u64,
    /// Longest wait between failed registrations, in seconds.
    #[serde(default = "default_retry_max")]
    pub(crate) retry_max_s: u64,
    /// Calls from the trunk's address skip authentication.
    #[serde(default = "default_true")]
    pub(crate) trusted: bool,
}

fn default_transport() -> String {
    "udp".into()
}

fn default_expires() -> u64 {
    600
}

fn default_retry_max() -> u64 {
    300
}

fn default_true() -> bool {
    true
}

/// What the trunks add to the other settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrunkSettings {
    /// Registrations to keep alive.
    pub(crate) registrations: Vec<b2bua::TrunkRegistration>,
    /// How calls on those registrations are recognised.
    pub(crate) inbound: Vec<b2bua::InboundTrunk>,
    /// Credentials for the trunks' challenges to calls.
    pub(crate) credentials: Vec<b2bua::Credential>,
    /// Addresses that skip authentication.
    pub(crate) trusted: Vec<ipnet::IpNet>,
}

/// Checks the entries; problems go to `errors`.
pub(crate) fn validate(entries: &[TrunkEntry], errors: &mut Vec<String>) -> TrunkSettings {
    let mut out = TrunkSettings::default();
    for (i, t) in entries.iter().enumerate() {
        let at = format!("trunks[{i}] `{}`", t.name);
        if t.name.is_empty() {
            errors.push(format!("trunks[{i}]: name is required"));
        }
        if entries[..i].iter().any(|o| o.name == t.name) {
            errors.push(format!("{at}: defined twice"));
        }
        let Ok(addr) = t.address.parse::<std::net::SocketAddr>() else {
            errors.push(format!("{at}: address `{}` must be IP:PORT", t.address));
            continue;
        };
        let kind = match TransportKind::from_token(t.transport.as_bytes()) {
            Some(k) => k,
            None => {
                errors.push(format!("{at}: transport must be udp or tcp"));
                continue;
            }
        };
        if t.trusted {
            out.trusted.push(ipnet::IpNet::from(addr.ip()));
        }
        if !t.username.is_empty() {
            out.credentials.push(b2bua::Credential {
                target: addr.to_string(),
                realm: None,
                username: t.username.clone(),
                password: t.password.clone(),
            });
        }
        if !t.register {
            continue;
        }
        let user_ok = |u: &str| api::validate::user(u).is_ok();
        if !user_ok(&t.username) {
            errors.push(format!(
                "{at}: register = true needs a username (SIP user characters)"
            ));
            continue;
        }
        let contact_user = t.contact_user.clone().unwrap_or_else(|| t.username.clone());
        if !user_ok(&contact_user) {
            errors.push(format!(
                "{at}: contact_user `{contact_user}` is not a SIP user"
            ));
        }
        if !(60..=86_400).contains(&t.expires_s) {
            errors.push(format!("{at}: expires_s must be 60-86400"));
        }
        let domain = t.domain.clone().unwrap_or_else(|| match addr.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            std::net::IpAddr::V4(ip) => ip.to_string(),
        });
        if domain.is_empty() || domain.contains(|c: char| c.is_whitespace() || c == '@') {
            errors.push(format!("{at}: domain `{domain}` is not a host"));
        }
        out.inbound.push(b2bua::InboundTrunk {
            name: t.name.clone(),
            ip: addr.ip(),
            contact_user: contact_user.clone(),
        });
        out.registrations.push(b2bua::TrunkRegistration {
            name: t.name.clone(),
            target: Target::new(kind, addr),
            domain,
            username: t.username.clone(),
            password: t.password.clone(),
            contact_user,
            expires: Duration::from_secs(t.expires_s),
            retry_max: Duration::from_secs(t.retry_max_s.max(1)),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn trunks_are_checked_and_trusted() {
        let c = Config::parse(
            "[[trunks]]\nname = \"carrier\"\naddress = \"192.0.2.10:5060\"\nregister = true\nusername = \"gw\"\npassword = \"pw\"\n",
        )
        .unwrap();
        let s = c.validate().unwrap();
        assert_eq!(s.trunk_registrations.len(), 1);
        assert_eq!(s.trunk_registrations[0].domain, "192.0.2.10");
        assert_eq!(s.trunk_registrations[0].contact_user, "gw");
        assert_eq!(s.core.trunks.len(), 1);
        assert!(
            s.users
                .auth
                .trusted
                .iter()
                .any(|n| n.contains(&"192.0.2.10".parse::<std::net::IpAddr>().unwrap()))
        );
        assert!(
            s.core
                .credentials
                .iter()
                .any(|c| c.target == "192.0.2.10:5060")
        );
        let bad = Config::parse(
            "[[trunks]]\nname = \"x\"\naddress = \"carrier.example:5060\"\n\n[[trunks]]\nname = \"y\"\naddress = \"192.0.2.1:5060\"\nregister = true\n",
        )
        .unwrap();
        let errors = bad.validate().unwrap_err().join("\n");
        assert!(errors.contains("must be IP:PORT"), "{errors}");
        assert!(errors.contains("needs a username"), "{errors}");
    }
}
