//! The users that may authenticate.

use crate::AuthError;
use std::collections::BTreeMap;
use std::fmt;

/// What the directory knows of a user's password.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// The clear-text password: every algorithm can be verified.
    Password(String),
    /// Stored HA1 values, `H(user:realm:password)` in lower-case hex, for
    /// the configured realm: only the algorithms with a hash can be verified
    /// (MD5 and MD5-sess from `md5`, SHA-256 and SHA-256-sess from `sha256`).
    Ha1 {
        /// MD5 HA1 (32 hex digits).
        md5: Option<String>,
        /// SHA-256 HA1 (64 hex digits).
        sha256: Option<String>,
    },
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Password(_) => f.write_str("Password(..)"),
            Secret::Ha1 { md5, sha256 } => f
                .debug_struct("Ha1")
                .field("md5", &md5.as_ref().map(|_| ".."))
                .field("sha256", &sha256.as_ref().map(|_| ".."))
                .finish(),
        }
    }
}

/// One user of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user name (the digest `username`).
    pub name: String,
    /// The password or its HA1 values.
    pub secret: Secret,
}

/// The users, by name, built from the configuration.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    users: BTreeMap<String, User>,
}

fn check_hex(
    user: &str,
    value: &str,
    algorithm: &'static str,
    len: usize,
) -> Result<String, AuthError> {
    if value.len() != len || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AuthError::BadHa1 {
            user: user.to_string(),
            algorithm,
            len,
        });
    }
    Ok(value.to_ascii_lowercase())
}

impl Directory {
    /// Builds the directory. Empty or duplicate names, names with quotes,
    /// backslashes or control characters, and HA1 values that are not hex
    /// of the right length (32 for MD5, 64 for SHA-256; upper case is
    /// accepted and lowered) are errors.
    pub fn new(users: Vec<User>) -> Result<Directory, AuthError> {
        let mut map = BTreeMap::new();
        for mut user in users {
            if user.name.is_empty() {
                return Err(AuthError::EmptyName);
            }
            if user
                .name
                .chars()
                .any(|c| c == '"' || c == '\\' || c.is_control())
            {
                return Err(AuthError::BadName(user.name));
            }
            if let Secret::Ha1 { md5, sha256 } = &mut user.secret {
                if md5.is_none() && sha256.is_none() {
                    return Err(AuthError::NoSecret(user.name));
                }
                if let Some(h) = md5 {
                    *h = check_hex(&user.name, h, "MD5", 32)?;
                }
                if let Some(h) = sha256 {
                    *h = check_hex(&user.name, h, "SHA-256", 64)?;
                }
            }
            if map.contains_key(&user.name) {
                return Err(AuthError::DuplicateUser(user.name));
            }
            map.insert(user.name.clone(), user);
        }
        Ok(Directory { users: map })
    }

    /// The user named `name` (exact, case-sensitive).
    pub fn get(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    /// True when there are no users (nobody is challenged).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// The user names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(name: &str) -> User {
        User {
            name: name.to_string(),
            secret: Secret::Password("pw".to_string()),
        }
    }

    fn ha1(name: &str, md5: Option<&str>, sha256: Option<&str>) -> User {
        User {
            name: name.to_string(),
            secret: Secret::Ha1 {
                md5: md5.map(str::to_string),
                sha256: sha256.map(str::to_string),
            },
        }
    }

    #[test]
    fn builds_and_looks_up() {
        let d =
            Directory::new(vec![pw("bob"), ha1("alice", Some(&"AB".repeat(16)), None)]).unwrap();
        assert_eq!(d.len(), 2);
        assert!(!d.is_empty());
        assert_eq!(d.names().collect::<Vec<_>>(), ["alice", "bob"]);
        assert!(d.get("Bob").is_none());
        assert_eq!(
            d.get("alice").unwrap().secret,
            Secret::Ha1 {
                md5: Some("ab".repeat(16)),
                sha256: None
            }
        );
        assert!(Directory::new(vec![]).unwrap().is_empty());
    }

    #[test]
    fn refuses_bad_users() {
        assert_eq!(
            Directory::new(vec![pw("a"), pw("a")]).unwrap_err(),
            AuthError::DuplicateUser("a".into())
        );
        assert_eq!(
            Directory::new(vec![pw("")]).unwrap_err(),
            AuthError::EmptyName
        );
        assert!(matches!(
            Directory::new(vec![pw("a\"b")]).unwrap_err(),
            AuthError::BadName(_)
        ));
        assert_eq!(
            Directory::new(vec![ha1("a", None, None)]).unwrap_err(),
            AuthError::NoSecret("a".into())
        );
        for (md5, sha) in [
            (Some("abc"), None),
            (Some(&*"zz".repeat(16)), None),
            (None, Some(&*"ab".repeat(16))),
            (Some(&*"ab".repeat(16)), Some(&*"ab".repeat(33))),
        ] {
            let e = Directory::new(vec![ha1("a", md5, sha)]).unwrap_err();
            assert!(matches!(e, AuthError::BadHa1 { .. }), "{e}");
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let s = format!("{:?} {:?}", pw("a"), ha1("b", Some(&"ab".repeat(16)), None));
        assert!(!s.contains("pw") && !s.contains("abab"), "{s}");
    }
}
