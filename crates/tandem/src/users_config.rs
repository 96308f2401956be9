//! The `[auth]`, `[[users]]` and `[registrar]` sections: who may register
//! and call, and how registrations are kept.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `[auth]`: digest authentication of callers and registrants.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct AuthSection {
    /// The realm of every challenge.
    pub(crate) realm: String,
    /// Sources that skip authentication (trunks): addresses or CIDR
    /// networks, e.g. `192.0.2.0/24`.
    pub(crate) trusted: Vec<String>,
    /// More users, from a TOML file of `[[users]]` entries.
    pub(crate) users_file: Option<PathBuf>,
    /// Seconds a nonce stays fresh.
    pub(crate) nonce_ttl_s: u64,
    /// Algorithms offered, preferred first: `SHA-256`, `MD5`.
    pub(crate) algorithms: Vec<String>,
    /// Failed authentications from one address …
    pub(crate) max_failures: u32,
    /// … within this many seconds …
    pub(crate) failure_window_s: u64,
    /// … block it for this many seconds.
    pub(crate) block_s: u64,
    /// A caller's From user must be the user they authenticated as.
    pub(crate) match_from: bool,
    /// Challenge INVITEs without credentials (`false`: the dial plan
    /// decides, with `call.auth_user` and `call:challenge()`).
    pub(crate) challenge_calls: bool,
}

impl Default for AuthSection {
    fn default() -> AuthSection {
        let d = auth::AuthConfig::default();
        AuthSection {
            realm: d.realm,
            trusted: Vec::new(),
            users_file: None,
            nonce_ttl_s: d.nonce_ttl.as_secs(),
            algorithms: d
                .algorithms
                .iter()
                .map(|a| a.as_str().to_string())
                .collect(),
            max_failures: d.max_failures,
            failure_window_s: d.failure_window.as_secs(),
            block_s: d.block_time.as_secs(),
            match_from: true,
            challenge_calls: true,
        }
    }
}

/// One `[[users]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserEntry {
    /// The user name (AOR user and digest username).
    pub(crate) name: String,
    /// The password …
    pub(crate) password: Option<String>,
    /// … or MD5(name:realm:password) in hex …
    pub(crate) ha1: Option<String>,
    /// … and/or SHA-256(name:realm:password) in hex.
    pub(crate) ha1_sha256: Option<String>,
}

/// A users file: `[[users]]` entries only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct UsersFile {
    users: Vec<UserEntry>,
}

/// `[registrar]`: binding lifetimes and where bindings are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RegistrarSection {
    /// Shortest registration accepted (423 below it).
    pub(crate) min_expires: u32,
    /// Longest registration granted (longer ones are cut).
    pub(crate) max_expires: u32,
    /// Registration time when the phone asks for none.
    pub(crate) default_expires: u32,
    /// Most contacts one user may register.
    pub(crate) max_contacts: usize,
    /// Keep bindings in this file (JSON lines) so a restart loses none;
    /// none: in memory only.
    pub(crate) file: Option<PathBuf>,
    /// fsync the file after every change (slower; survives power loss).
    pub(crate) fsync: bool,
}

impl Default for RegistrarSection {
    fn default() -> RegistrarSection {
        let d = registrar::RegistrarConfig::default();
        RegistrarSection {
            min_expires: d.min_expires,
            max_expires: d.max_expires,
            default_expires: d.default_expires,
            max_contacts: d.max_contacts,
            file: None,
            fsync: false,
        }
    }
}

/// The checked user settings.
#[derive(Debug, Clone)]
pub(crate) struct UserSettings {
    /// Authentication settings.
    pub(crate) auth: auth::AuthConfig,
    /// Every user (config and users file).
    pub(crate) users: Vec<auth::User>,
    /// Registrar settings.
    pub(crate) registrar: registrar::RegistrarConfig,
    /// The bindings file, if any.
    pub(crate) file: Option<PathBuf>,
    /// fsync it on every change.
    pub(crate) fsync: bool,
    /// From must match the authenticated user.
    pub(crate) match_from: bool,
    /// Challenge INVITEs without credentials.
    pub(crate) challenge_calls: bool,
}

impl UserSettings {
    /// Opens the store and builds the services the core shares.
    pub(crate) fn services(&self) -> anyhow::Result<b2bua::UserServices> {
        let directory =
            auth::Directory::new(self.users.clone()).map_err(|e| anyhow::anyhow!("users: {e}"))?;
        let store: std::sync::Arc<dyn registrar::LocationStore> = match &self.file {
            Some(path) => std::sync::Arc::new(
                registrar::FileStore::open(path, self.fsync)
                    .map_err(|e| anyhow::anyhow!("registrar.file {}: {e}", path.display()))?,
            ),
            None => std::sync::Arc::new(registrar::MemoryStore::new()),
        };
        let registrar = registrar::Registrar::new(self.registrar.clone(), store);
        let mut services = b2bua::UserServices::new(
            auth::Authenticator::new(self.auth.clone(), directory),
            registrar,
            self.match_from,
            self.challenge_calls,
        );
        services.durable_store = self.file.is_some();
        Ok(services)
    }
}

/// Makes the paths of the sections relative to the config file's `dir`.
pub(crate) fn resolve_paths(auth: &mut AuthSection, reg: &mut RegistrarSection, dir: &Path) {
    for p in [&mut auth.users_file, &mut reg.file].into_iter().flatten() {
        if p.is_relative() {
            *p = dir.join(&*p);
        }
    }
}

/// Checks the sections; problems go to `errors`.
pub(crate) fn validate(
    auth: &AuthSection,
    users: &[UserEntry],
    reg: &RegistrarSection,
    errors: &mut Vec<String>,
) -> UserSettings {
    let mut config = auth::AuthConfig {
        realm: auth.realm.clone(),
        nonce_ttl: Duration::from_secs(auth.nonce_ttl_s),
        max_failures: auth.max_failures,
        failure_window: Duration::from_secs(auth.failure_window_s),
        block_time: Duration::from_secs(auth.block_s),
        ..auth::AuthConfig::default()
    };
    if auth.realm.is_empty() || auth.realm.contains(['"', '\\', '\r', '\n']) {
        errors.push(format!(
            "auth.realm `{}` must be non-empty, without quotes or backslashes",
            auth.realm
        ));
    }
    if auth.nonce_ttl_s == 0 {
        errors.push("auth.nonce_ttl_s must be above 0".into());
    }
    config.trusted = auth
        .trusted
        .iter()
        .filter_map(|t| {
            auth::parse_trusted(t)
                .map_err(|e| errors.push(format!("auth.trusted: {e}")))
                .ok()
        })
        .collect();
    let mut algorithms = Vec::new();
    for a in &auth.algorithms {
        match auth::Algorithm::from_token(a) {
            Some(alg @ (auth::Algorithm::Md5 | auth::Algorithm::Sha256)) => algorithms.push(alg),
            _ => errors.push(format!("auth.algorithms: `{a}` is not SHA-256 or MD5")),
        }
    }
    if algorithms.is_empty() {
        errors.push("auth.algorithms must name SHA-256 and/or MD5".into());
    } else {
        config.algorithms = algorithms;
    }
    let mut entries = users.to_vec();
    if let Some(path) = &auth.users_file {
        match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| toml::from_str::<UsersFile>(&t).map_err(|e| e.to_string()))
        {
            Ok(file) => entries.extend(file.users),
            Err(e) => errors.push(format!("auth.users_file {}: {e}", path.display())),
        }
    }
    let mut out = Vec::new();
    for u in entries {
        let secret = match (&u.password, &u.ha1, &u.ha1_sha256) {
            (Some(p), None, None) => auth::Secret::Password(p.clone()),
            (None, md5, sha256) if md5.is_some() || sha256.is_some() => auth::Secret::Ha1 {
                md5: md5.clone(),
                sha256: sha256.clone(),
            },
            (None, None, None) => {
                errors.push(format!(
                    "users `{}`: needs password, ha1 or ha1_sha256",
                    u.name
                ));
                continue;
            }
            _ => {
                errors.push(format!(
                    "users `{}`: give either password or ha1/ha1_sha256, not both",
                    u.name
                ));
                continue;
            }
        };
        out.push(auth::User {
            name: u.name.clone(),
            secret,
        });
    }
    if let Err(e) = auth::Directory::new(out.clone()) {
        errors.push(format!("users: {e}"));
    }
    if reg.min_expires == 0 || reg.min_expires > reg.max_expires {
        errors.push("registrar.min_expires must be 1..=max_expires".into());
    }
    if reg.default_expires < reg.min_expires || reg.default_expires > reg.max_expires {
        errors.push("registrar.default_expires must lie in min_expires..=max_expires".into());
    }
    if reg.max_contacts == 0 {
        errors.push("registrar.max_contacts must be above 0".into());
    }
    UserSettings {
        auth: config,
        users: out,
        registrar: registrar::RegistrarConfig {
            min_expires: reg.min_expires,
            max_expires: reg.max_expires,
            default_expires: reg.default_expires,
            max_contacts: reg.max_contacts,
        },
        file: reg.file.clone(),
        fsync: reg.fsync,
        match_from: auth.match_from,
        challenge_calls: auth.challenge_calls,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn users_come_from_the_config_and_a_users_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("users.toml"),
            "[[users]]\nname = \"bob\"\nha1 = \"0123456789abcdef0123456789abcdef\"\n",
        )
        .unwrap();
        let config_path = dir.path().join("tandem.toml");
        std::fs::write(
            &config_path,
            "[auth]\nrealm = \"pbx.test\"\nusers_file = \"users.toml\"\ntrusted = [\"192.0.2.0/24\", \"::1\"]\n\n[[users]]\nname = \"alice\"\npassword = \"wonderland\"\n",
        )
        .unwrap();
        let s = Config::load(&config_path).unwrap().validate().unwrap();
        let names: Vec<&str> = s.users.users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["alice", "bob"]);
        assert_eq!(s.users.auth.realm, "pbx.test");
        assert_eq!(s.users.auth.trusted.len(), 2);
        assert_eq!(s.users.auth.algorithms, [auth::Algorithm::Md5]);
    }

    #[test]
    fn bad_user_settings_are_all_reported() {
        let c = Config::parse(
            "[auth]\nrealm = \"\"\nalgorithms = [\"SHA-512\"]\ntrusted = [\"not-a-net\"]\nusers_file = \"/nonexistent/users.toml\"\n\n[[users]]\nname = \"a\"\n\n[[users]]\nname = \"b\"\npassword = \"x\"\nha1 = \"y\"\n\n[registrar]\nmin_expires = 0\n",
        )
        .unwrap();
        let errors = c.validate().unwrap_err().join("\n");
        for needle in [
            "auth.realm",
            "auth.algorithms: `SHA-512`",
            "auth.trusted",
            "auth.users_file",
            "users `a`: needs password",
            "users `b`: give either password",
            "registrar.min_expires",
        ] {
            assert!(errors.contains(needle), "{needle} missing in:\n{errors}");
        }
    }
}
