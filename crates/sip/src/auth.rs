//! HTTP Digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 8760):
//! challenges, credentials and the response hash, MD5 and SHA-256, with
//! and without `-sess`, `qop=auth`.
//!
//! rsip 0.4 has a digest generator, but it spells SHA-256 `SHA256` (so it
//! rejects RFC 8760 challenges), ignores the `-sess` variants and takes the
//! digest-uri as an rsip `Uri`, whose printing drops URI headers; this
//! module keeps the digest-uri as the exact Request-URI text.

use md5::{Digest as _, Md5};
use sha2::Sha256;

/// A digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// MD5 (the RFC 2617 default).
    Md5,
    /// MD5-sess.
    Md5Sess,
    /// SHA-256 (RFC 8760).
    Sha256,
    /// SHA-256-sess.
    Sha256Sess,
}

impl Algorithm {
    /// Parses an `algorithm=` token (case-insensitive).
    pub fn from_token(s: &str) -> Option<Algorithm> {
        match s.to_ascii_uppercase().as_str() {
            "MD5" => Some(Algorithm::Md5),
            "MD5-SESS" => Some(Algorithm::Md5Sess),
            "SHA-256" => Some(Algorithm::Sha256),
            "SHA-256-SESS" => Some(Algorithm::Sha256Sess),
            _ => None,
        }
    }

    /// The token as it goes on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// Lower-case hex hash of `data`.
    pub fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex(&Md5::digest(data.as_bytes())),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex(&Sha256::digest(data.as_bytes())),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A `WWW-Authenticate` / `Proxy-Authenticate` Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Realm.
    pub realm: String,
    /// Server nonce.
    pub nonce: String,
    /// Opaque value to echo back.
    pub opaque: Option<String>,
    /// Algorithm (MD5 when absent).
    pub algorithm: Algorithm,
    /// Offered qop values (`auth`, `auth-int`).
    pub qop: Vec<String>,
    /// The nonce is stale: retry with the same credentials.
    pub stale: bool,
}

/// Why a challenge could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not a Digest challenge.
    #[error("not a Digest challenge")]
    NotDigest,
    /// realm or nonce missing.
    #[error("challenge without {0}")]
    Missing(&'static str),
    /// An algorithm this implementation does not know.
    #[error("unsupported digest algorithm `{0}`")]
    Algorithm(String),
}

/// Splits `k=v, k="v, with comma"` pairs of an auth header.
pub fn auth_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(r) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = r.char_indices();
            let mut end = r.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            value = v;
            rest = &r[end.min(r.len())..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        rest = rest.trim_start().trim_start_matches(',').trim_start();
        out.push((key, value));
    }
    out
}

impl Challenge {
    /// Parses a challenge header value.
    pub fn parse(value: &str) -> Result<Challenge, AuthError> {
        let value = value.trim();
        let (scheme, rest) = value
            .split_once(char::is_whitespace)
            .ok_or(AuthError::NotDigest)?;
        if !scheme.eq_ignore_ascii_case("digest") {
            return Err(AuthError::NotDigest);
        }
        let mut c = Challenge {
            realm: String::new(),
            nonce: String::new(),
            opaque: None,
            algorithm: Algorithm::Md5,
            qop: Vec::new(),
            stale: false,
        };
        let mut realm = false;
        let mut nonce = false;
        for (k, v) in auth_params(rest) {
            match k.as_str() {
                "realm" => {
                    c.realm = v;
                    realm = true;
                }
                "nonce" => {
                    c.nonce = v;
                    nonce = true;
                }
                "opaque" => c.opaque = Some(v),
                "algorithm" => {
                    c.algorithm = Algorithm::from_token(&v).ok_or(AuthError::Algorithm(v))?
                }
                "qop" => {
                    c.qop = v
                        .split(',')
                        .map(|q| q.trim().to_ascii_lowercase())
                        .collect()
                }
                "stale" => c.stale = v.eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        if !realm {
            return Err(AuthError::Missing("realm"));
        }
        if !nonce {
            return Err(AuthError::Missing("nonce"));
        }
        Ok(c)
    }

    /// The `Authorization` / `Proxy-Authorization` value answering this
    /// challenge for `method` on `uri` (the exact Request-URI text).
    pub fn answer(
        &self,
        method: &str,
        uri: &str,
        username: &str,
        password: &str,
        nc: u32,
        cnonce: &str,
    ) -> String {
        let qop = self.qop.iter().any(|q| q == "auth").then_some("auth");
        let response = digest_response(&DigestInput {
            algorithm: self.algorithm,
            username,
            realm: &self.realm,
            password,
            nonce: &self.nonce,
            cnonce,
            nc,
            qop,
            method,
            uri,
        });
        let mut v = format!(
            "Digest username=\"{username}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm={}",
            self.realm,
            self.nonce,
            self.algorithm.as_str()
        );
        if let Some(q) = qop {
            v.push_str(&format!(", qop={q}, nc={nc:08x}, cnonce=\"{cnonce}\""));
        }
        if let Some(o) = &self.opaque {
            v.push_str(&format!(", opaque=\"{o}\""));
        }
        v
    }
}

/// Everything the digest response depends on.
#[derive(Debug, Clone, Copy)]
pub struct DigestInput<'a> {
    /// Algorithm.
    pub algorithm: Algorithm,
    /// User name.
    pub username: &'a str,
    /// Realm.
    pub realm: &'a str,
    /// Password.
    pub password: &'a str,
    /// Server nonce.
    pub nonce: &'a str,
    /// Client nonce (with qop or -sess).
    pub cnonce: &'a str,
    /// Nonce count (with qop).
    pub nc: u32,
    /// `Some("auth")` or none.
    pub qop: Option<&'a str>,
    /// Request method.
    pub method: &'a str,
    /// digest-uri.
    pub uri: &'a str,
}

/// The digest `response` value (RFC 7616 §3.4.1).
pub fn digest_response(i: &DigestInput<'_>) -> String {
    let a = i.algorithm;
    let mut ha1 = a.hash(&format!("{}:{}:{}", i.username, i.realm, i.password));
    if a.is_sess() {
        ha1 = a.hash(&format!("{ha1}:{}:{}", i.nonce, i.cnonce));
    }
    let ha2 = a.hash(&format!("{}:{}", i.method, i.uri));
    match i.qop {
        Some(q) => a.hash(&format!(
            "{ha1}:{}:{:08x}:{}:{q}:{ha2}",
            i.nonce, i.nc, i.cnonce
        )),
        None => a.hash(&format!("{ha1}:{}:{ha2}", i.nonce)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example_md5_with_qop() {
        // RFC 2617 §3.5 (HTTP example, same computation).
        let r = digest_response(&DigestInput {
            algorithm: Algorithm::Md5,
            username: "Mufasa",
            realm: "testrealm@host.com",
            password: "Circle Of Life",
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            cnonce: "0a4f113b",
            nc: 1,
            qop: Some("auth"),
            method: "GET",
            uri: "/dir/index.html",
        });
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn rfc7616_example_sha256() {
        // RFC 7616 §3.9.1.
        let r = digest_response(&DigestInput {
            algorithm: Algorithm::Sha256,
            username: "Mufasa",
            realm: "http-auth@example.org",
            password: "Circle of Life",
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            nc: 1,
            qop: Some("auth"),
            method: "GET",
            uri: "/dir/index.html",
        });
        assert_eq!(
            r,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn parses_challenges_and_answers() {
        let c = Challenge::parse(r#"Digest realm="tandem.test", nonce="abc", qop="auth,auth-int", algorithm=SHA-256, opaque="o""#).unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert_eq!(c.qop, vec!["auth", "auth-int"]);
        let a = c.answer("INVITE", "sip:bob@127.0.0.1", "alice", "pw", 1, "cn");
        assert!(a.contains("qop=auth, nc=00000001, cnonce=\"cn\""), "{a}");
        assert!(a.contains("algorithm=SHA-256"));
        assert!(a.contains("opaque=\"o\""));
        // rsip 0.4 does not know the RFC 8760 spelling.
        assert!(rsip::headers::auth::Algorithm::try_from("SHA-256").is_err());
        assert_eq!(
            Challenge::parse("Basic realm=\"x\""),
            Err(AuthError::NotDigest)
        );
        assert_eq!(
            Challenge::parse("Digest nonce=\"n\""),
            Err(AuthError::Missing("realm"))
        );
    }

    #[test]
    fn agrees_with_rsip_for_md5() {
        let uri = rsip::Uri::try_from("sip:bob@127.0.0.1").unwrap();
        let ours = digest_response(&DigestInput {
            algorithm: Algorithm::Md5,
            username: "u",
            realm: "r",
            password: "p",
            nonce: "n",
            cnonce: "",
            nc: 0,
            qop: None,
            method: "INVITE",
            uri: "sip:bob@127.0.0.1",
        });
        let theirs = rsip::services::DigestGenerator {
            username: "u",
            password: "p",
            nonce: "n",
            uri: &uri,
            realm: "r",
            method: &rsip::Method::Invite,
            qop: None,
            algorithm: rsip::headers::auth::Algorithm::Md5,
        }
        .compute();
        assert_eq!(ours, theirs);
    }
}
