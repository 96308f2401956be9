//! The decision on one request: trusted, open, authenticated, challenged,
//! forbidden or blocked.

use crate::config::AuthConfig;
use crate::digest::{DigestParams, ha1, response_from_ha1};
use crate::directory::{Directory, Secret, User};
use crate::nonce::{Nonce, NonceKey, ct_eq};
use crate::table::{Bounded, MAX_ENTRIES};
use sip::auth::{Algorithm, auth_params};
use sip::message::{HeaderName, Message, Scheme, Uri};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Which header pair a check uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// 401 with `WWW-Authenticate`, answered in `Authorization` (registrar,
    /// user agent server).
    Www,
    /// 407 with `Proxy-Authenticate`, answered in `Proxy-Authorization`
    /// (INVITE to a proxy-like B2BUA).
    Proxy,
}

impl Kind {
    /// 401 or 407.
    pub fn code(self) -> u16 {
        match self {
            Kind::Www => 401,
            Kind::Proxy => 407,
        }
    }

    /// The reason phrase of [`Kind::code`].
    pub fn reason(self) -> &'static str {
        match self {
            Kind::Www => "Unauthorized",
            Kind::Proxy => "Proxy Authentication Required",
        }
    }

    /// `WWW-Authenticate` or `Proxy-Authenticate`.
    pub fn challenge_header(self) -> HeaderName {
        match self {
            Kind::Www => HeaderName::WwwAuthenticate,
            Kind::Proxy => HeaderName::ProxyAuthenticate,
        }
    }

    /// `Authorization` or `Proxy-Authorization`.
    pub fn credentials_header(self) -> HeaderName {
        match self {
            Kind::Www => HeaderName::Authorization,
            Kind::Proxy => HeaderName::ProxyAuthorization,
        }
    }
}

/// A response the caller sends as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Status code (401, 403, 407).
    pub code: u16,
    /// Reason phrase.
    pub reason: &'static str,
    /// Headers to add (challenges).
    pub headers: Vec<(HeaderName, String)>,
}

impl Reply {
    fn forbidden() -> Reply {
        Reply {
            code: 403,
            reason: "Forbidden",
            headers: Vec::new(),
        }
    }

    fn blocked() -> Reply {
        Reply {
            code: 403,
            reason: "Too Many Failed Attempts",
            headers: Vec::new(),
        }
    }

    /// This reply as a response to `request` ([`Message::response_to`] plus
    /// the headers).
    pub fn to_response(&self, request: &Message, to_tag: Option<&str>) -> Message {
        let mut resp = Message::response_to(request, self.code, self.reason, to_tag);
        for (name, value) in &self.headers {
            resp.headers.push(name.clone(), value.clone());
        }
        resp
    }
}

/// The decision on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The source address is trusted and carried no valid credentials.
    Trusted,
    /// The directory is empty: nobody is challenged.
    Open,
    /// Valid credentials (from any source, trusted ones included).
    Authenticated {
        /// The user name.
        user: String,
    },
    /// 401/407 with fresh challenges; `stale=true` in them where the digest
    /// was right but the nonce had expired or was replayed.
    Challenge(Reply),
    /// 403: unknown user, wrong password, wrong digest-uri, malformed
    /// credentials.
    Forbidden {
        /// The 403 to send.
        reply: Reply,
        /// Why, for the log only: never sent to the peer.
        why: String,
    },
    /// The source is blocked after too many failures: 403 "Too Many Failed
    /// Attempts".
    Blocked(Reply),
}

impl Verdict {
    /// True for the verdicts that let the request in.
    pub fn is_allowed(&self) -> bool {
        matches!(
            self,
            Verdict::Trusted | Verdict::Open | Verdict::Authenticated { .. }
        )
    }

    /// The authenticated user, if any.
    pub fn user(&self) -> Option<&str> {
        match self {
            Verdict::Authenticated { user } => Some(user),
            _ => None,
        }
    }

    /// The response to send for the verdicts that refuse the request.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Verdict::Challenge(r) | Verdict::Blocked(r) | Verdict::Forbidden { reply: r, .. } => {
                Some(r)
            }
            _ => None,
        }
    }
}

/// A block never lasts longer than this (keeps `Instant` arithmetic safe).
const MAX_BLOCK: Duration = Duration::from_secs(365 * 24 * 3600);

/// The nonce-count state of one nonce (RFC 7616 §3.4: `nc`), an IPsec-style
/// anti-replay window: the highest count seen and a bitmap of the 64 counts
/// up to it.
#[derive(Debug, Clone, Copy)]
struct NcState {
    issued_ms: u64,
    max: u64,
    /// Bit `i` set: count `max - i` was seen.
    seen: u64,
}

impl NcState {
    fn new(issued_ms: u64, nc: u64) -> NcState {
        NcState {
            issued_ms,
            max: nc,
            seen: 1,
        }
    }

    /// Records `nc`; false when it was seen before or is below the window.
    fn accept(&mut self, nc: u64) -> bool {
        if nc > self.max {
            let shift = nc - self.max;
            self.seen = if shift >= 64 { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.max = nc;
            return true;
        }
        let back = self.max - nc;
        if back >= 64 {
            return false;
        }
        let bit = 1u64 << back;
        if self.seen & bit != 0 {
            return false;
        }
        self.seen |= bit;
        true
    }
}

struct NonceTable {
    table: Bounded<u64, NcState>,
    /// Nonces issued at or before this may have lost their state (dropped
    /// to bound memory, or pruned): without state they count as replayed.
    forgotten_ms: Option<u64>,
}

impl NonceTable {
    fn forget(&mut self, issued_ms: u64) {
        self.forgotten_ms = Some(self.forgotten_ms.map_or(issued_ms, |f| f.max(issued_ms)));
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    window_start: Instant,
    count: u32,
    blocked_until: Option<Instant>,
}

/// The credentials of one `Authorization` / `Proxy-Authorization` header.
#[derive(Debug, Default)]
struct Credentials {
    username: Option<String>,
    realm: Option<String>,
    nonce: Option<String>,
    uri: Option<String>,
    response: Option<String>,
    algorithm: Option<String>,
    qop: Option<String>,
    nc: Option<String>,
    cnonce: Option<String>,
    opaque: Option<String>,
}

impl Credentials {
    fn parse(value: &str) -> Option<Credentials> {
        let (scheme, rest) = value.trim().split_once(char::is_whitespace)?;
        if !scheme.eq_ignore_ascii_case("digest") {
            return None;
        }
        let mut c = Credentials::default();
        for (k, v) in auth_params(rest) {
            let slot = match k.as_str() {
                "username" => &mut c.username,
                "realm" => &mut c.realm,
                "nonce" => &mut c.nonce,
                "uri" => &mut c.uri,
                "response" => &mut c.response,
                "algorithm" => &mut c.algorithm,
                "qop" => &mut c.qop,
                "nc" => &mut c.nc,
                "cnonce" => &mut c.cnonce,
                "opaque" => &mut c.opaque,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(v);
            }
        }
        Some(c)
    }
}

/// The outcome of verifying credentials.
enum Outcome {
    Ok(String),
    Challenge { stale: bool },
    Forbidden(String),
}

/// Decides whether requests are let in. `Send + Sync`: share it through an
/// `Arc`; the tables sit behind short-held mutexes.
pub struct Authenticator {
    config: AuthConfig,
    algorithms: Vec<Algorithm>,
    directory: Directory,
    key: NonceKey,
    opaque: String,
    /// Nonce timestamps count milliseconds from here.
    epoch: Instant,
    counter: AtomicU64,
    nonces: Mutex<NonceTable>,
    failures: Mutex<Bounded<IpAddr, Failures>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("realm", &self.config.realm)
            .field("algorithms", &self.algorithms)
            .field("users", &self.directory.len())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn parse_nc(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok().map(u64::from)
}

/// True when the digest-uri names the Request-URI: the same text, or the
/// same scheme, host (case-insensitive), port (5060/5061 when absent) and
/// user. A digest-uri without a user matches any user: SIPp (3.6) always
/// sends `sip:<remote host>:<remote port>`, whatever the Request-URI.
fn uri_matches(digest_uri: &str, request_uri: &Uri) -> bool {
    if request_uri.to_string() == digest_uri {
        return true;
    }
    let Ok(d) = Uri::parse(digest_uri) else {
        return false;
    };
    let r = request_uri;
    if d.scheme != r.scheme {
        return false;
    }
    match r.scheme {
        Scheme::Sip | Scheme::Sips => {
            let default = if r.scheme == Scheme::Sips { 5061 } else { 5060 };
            (d.user.is_none() || d.user == r.user)
                && d.host_str().eq_ignore_ascii_case(r.host_str())
                && d.port.unwrap_or(default) == r.port.unwrap_or(default)
        }
        Scheme::Tel => d.user == r.user,
        Scheme::Other(_) => d.opaque == r.opaque,
    }
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if b == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

fn uri_user_is(uri: &Uri, user: &str) -> bool {
    uri.user
        .as_deref()
        .is_some_and(|u| percent_decode(u) == user.as_bytes())
}

/// True when the From URI's user part is `user` (an INVITE's caller is the
/// authenticated user; `%XX` escapes are decoded).
pub fn from_matches(request: &Message, user: &str) -> bool {
    request
        .from_hdr()
        .is_some_and(|n| uri_user_is(&n.uri, user))
}

/// True when the To URI's user part is `user` (a user may only REGISTER
/// their own address of record; `%XX` escapes are decoded).
pub fn to_matches(request: &Message, user: &str) -> bool {
    request.to_hdr().is_some_and(|n| uri_user_is(&n.uri, user))
}

impl Authenticator {
    /// An authenticator with a random per-process nonce secret and opaque
    /// value. An empty `algorithms` list means the default (MD5 only);
    /// duplicates are dropped.
    pub fn new(config: AuthConfig, directory: Directory) -> Authenticator {
        let mut secret = [0u8; 32];
        rand::fill(&mut secret);
        let opaque = format!("{:016x}", rand::random::<u64>());
        let mut algorithms: Vec<Algorithm> = Vec::new();
        for a in &config.algorithms {
            if !algorithms.contains(a) {
                algorithms.push(*a);
            }
        }
        if algorithms.is_empty() {
            algorithms = AuthConfig::default().algorithms;
        }
        let now = Instant::now();
        Authenticator {
            // A day back, so an `Instant` taken a little before this (or a
            // paused test clock) still counts from after the epoch.
            epoch: now.checked_sub(Duration::from_secs(86_400)).unwrap_or(now),
            algorithms,
            directory,
            key: NonceKey::new(secret),
            opaque,
            counter: AtomicU64::new(rand::random()),
            nonces: Mutex::new(NonceTable {
                table: Bounded::new(MAX_ENTRIES),
                forgotten_ms: None,
            }),
            failures: Mutex::new(Bounded::new(MAX_ENTRIES)),
            config,
        }
    }

    /// The realm of the challenges.
    pub fn realm(&self) -> &str {
        &self.config.realm
    }

    /// True when the directory has users (requests are challenged).
    pub fn has_users(&self) -> bool {
        !self.directory.is_empty()
    }

    /// True when `ip` is in a trusted network (IPv4-mapped IPv6 addresses
    /// count as IPv4).
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.config.trusted.iter().any(|n| n.contains(&ip))
    }

    /// The user directory.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// A 401/407 with one challenge per configured algorithm, preferred
    /// first, all with one fresh nonce (`stale=true` when `stale`).
    pub fn challenge(&self, kind: Kind, stale: bool, now: Instant) -> Reply {
        let nonce = self.key.issue(Nonce {
            issued_ms: self.ms(now),
            counter: self.counter.fetch_add(1, Ordering::Relaxed),
        });
        let realm = quote(&self.config.realm);
        let stale = if stale { ", stale=true" } else { "" };
        let headers = self
            .algorithms
            .iter()
            .map(|a| {
                (
                    kind.challenge_header(),
                    format!(
                        "Digest realm=\"{realm}\", nonce=\"{nonce}\", opaque=\"{}\", algorithm={}, qop=\"auth\"{stale}",
                        self.opaque,
                        a.as_str()
                    ),
                )
            })
            .collect();
        Reply {
            code: kind.code(),
            reason: kind.reason(),
            headers,
        }
    }

    /// Decides on `request` from `source`. Order: trusted source (valid
    /// credentials still name the user), blocked source, empty directory,
    /// then the credentials of `kind` for our realm.
    pub fn check(&self, request: &Message, source: IpAddr, kind: Kind, now: Instant) -> Verdict {
        let source = source.to_canonical();
        if self.is_trusted(source) {
            if self.has_users()
                && let Some(c) = self.credentials(request, kind)
                && let Outcome::Ok(user) = self.verify(request, &c, now)
            {
                return Verdict::Authenticated { user };
            }
            return Verdict::Trusted;
        }
        if self.is_blocked(source, now) {
            return Verdict::Blocked(Reply::blocked());
        }
        if !self.has_users() {
            return Verdict::Open;
        }
        let Some(c) = self.credentials(request, kind) else {
            return Verdict::Challenge(self.challenge(kind, false, now));
        };
        match self.verify(request, &c, now) {
            Outcome::Ok(user) => {
                lock(&self.failures).remove(&source);
                Verdict::Authenticated { user }
            }
            Outcome::Challenge { stale } => Verdict::Challenge(self.challenge(kind, stale, now)),
            Outcome::Forbidden(why) => {
                self.record_failure(source, now);
                Verdict::Forbidden {
                    reply: Reply::forbidden(),
                    why,
                }
            }
        }
    }

    /// Forgets the nonce-count state of expired nonces and failure records
    /// that no longer block or count.
    pub fn prune(&self, now: Instant) {
        let now_ms = self.ms(now);
        {
            let mut n = lock(&self.nonces);
            let mut newest_gone = None::<u64>;
            n.table.retain(|_, st| {
                let keep = !self.expired(st.issued_ms, now_ms);
                if !keep {
                    newest_gone = Some(newest_gone.map_or(st.issued_ms, |g| g.max(st.issued_ms)));
                }
                keep
            });
            if let Some(g) = newest_gone {
                n.forget(g);
            }
        }
        let window = self.config.failure_window;
        lock(&self.failures).retain(|_, f| match f.blocked_until {
            Some(until) => now < until,
            None => now.saturating_duration_since(f.window_start) <= window,
        });
    }

    /// Milliseconds from the epoch to `now`.
    fn ms(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    fn expired(&self, issued_ms: u64, now_ms: u64) -> bool {
        let ttl = u64::try_from(self.config.nonce_ttl.as_millis()).unwrap_or(u64::MAX);
        now_ms.saturating_sub(issued_ms) > ttl
    }

    /// The first credentials of `kind` for our realm.
    fn credentials(&self, request: &Message, kind: Kind) -> Option<Credentials> {
        let name = kind.credentials_header();
        request
            .headers
            .get_all(&name)
            .filter_map(|v| std::str::from_utf8(v).ok())
            .filter_map(Credentials::parse)
            .find(|c| c.realm.as_deref() == Some(self.config.realm.as_str()))
    }

    fn verify(&self, request: &Message, c: &Credentials, now: Instant) -> Outcome {
        let forbidden = |why: String| Outcome::Forbidden(why);
        let (Some(method), Some(request_uri)) = (request.method(), request.uri()) else {
            return forbidden("not a request".to_string());
        };
        let (Some(username), Some(nonce_text), Some(digest_uri), Some(response)) = (
            c.username.as_deref(),
            c.nonce.as_deref(),
            c.uri.as_deref(),
            c.response.as_deref(),
        ) else {
            return forbidden(
                "malformed credentials: username, nonce, uri or response missing".to_string(),
            );
        };
        let algorithm = match c.algorithm.as_deref() {
            None => Some(Algorithm::Md5),
            Some(a) => Algorithm::from_token(a),
        };
        let Some(algorithm) = algorithm.filter(|a| self.algorithms.contains(a)) else {
            return Outcome::Challenge { stale: false };
        };
        // qop=auth needs nc and cnonce; no qop is RFC 2069 style and makes
        // the nonce one-time (its uses share count 0).
        let (qop, nc_text, nc) = match c.qop.as_deref() {
            None => (None, "", 0),
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let (Some(nc_text), Some(_)) = (c.nc.as_deref(), c.cnonce.as_deref()) else {
                    return forbidden(
                        "malformed credentials: qop=auth without nc or cnonce".into(),
                    );
                };
                let Some(nc) = parse_nc(nc_text) else {
                    return forbidden(format!("malformed credentials: nc {nc_text:?}"));
                };
                (Some(q), nc_text, nc)
            }
            Some(_) => return Outcome::Challenge { stale: false },
        };
        let Some(nonce) = self.key.verify(nonce_text) else {
            return Outcome::Challenge { stale: false };
        };
        if c.opaque.as_deref().is_some_and(|o| o != self.opaque) {
            return Outcome::Challenge { stale: false };
        }
        let Some(user) = self.directory.get(username) else {
            return forbidden(format!("unknown user {username:?}"));
        };
        if !uri_matches(digest_uri, request_uri) {
            return forbidden(format!(
                "digest uri {digest_uri:?} is not the Request-URI `{request_uri}`"
            ));
        }
        let Some(ha1) = self.ha1_of(user, algorithm) else {
            return forbidden(format!(
                "user {username:?} has no {} HA1 to verify an {} response with",
                hash_name(algorithm),
                algorithm.as_str()
            ));
        };
        let method = method.to_string();
        let expected = response_from_ha1(
            &ha1,
            &DigestParams {
                algorithm,
                nonce: nonce_text,
                cnonce: c.cnonce.as_deref().unwrap_or(""),
                nc: nc_text,
                qop,
                method: &method,
                uri: digest_uri,
            },
        );
        if !ct_eq(
            expected.as_bytes(),
            response.to_ascii_lowercase().as_bytes(),
        ) {
            return forbidden(format!(
                "wrong response from {username:?} (wrong password?)"
            ));
        }
        let now_ms = self.ms(now);
        if self.expired(nonce.issued_ms, now_ms) {
            return Outcome::Challenge { stale: true };
        }
        if !self.use_nonce(nonce, nc) {
            tracing::info!(
                user = username,
                nc = nc_text,
                "Replayed nonce count; challenging again."
            );
            return Outcome::Challenge { stale: true };
        }
        Outcome::Ok(user.name.clone())
    }

    fn ha1_of(&self, user: &User, algorithm: Algorithm) -> Option<String> {
        match &user.secret {
            Secret::Password(pw) => Some(ha1(algorithm, &user.name, &self.config.realm, pw)),
            Secret::Ha1 { md5, sha256 } => match algorithm {
                Algorithm::Md5 | Algorithm::Md5Sess => md5.clone(),
                Algorithm::Sha256 | Algorithm::Sha256Sess => sha256.clone(),
            },
        }
    }

    /// Records count `nc` of `nonce`; false when it is a replay.
    fn use_nonce(&self, nonce: Nonce, nc: u64) -> bool {
        let mut n = lock(&self.nonces);
        if let Some(st) = n.table.get_mut(&nonce.counter) {
            return st.accept(nc);
        }
        if n.forgotten_ms.is_some_and(|f| nonce.issued_ms <= f) {
            return false;
        }
        for (_, st) in n
            .table
            .insert(nonce.counter, NcState::new(nonce.issued_ms, nc))
        {
            n.forget(st.issued_ms);
        }
        true
    }

    fn is_blocked(&self, ip: IpAddr, now: Instant) -> bool {
        lock(&self.failures)
            .get(&ip)
            .and_then(|f| f.blocked_until)
            .is_some_and(|until| now < until)
    }

    fn record_failure(&self, ip: IpAddr, now: Instant) {
        let max = self.config.max_failures;
        if max == 0 {
            return;
        }
        let fresh = Failures {
            window_start: now,
            count: 0,
            blocked_until: None,
        };
        let mut table = lock(&self.failures);
        let f = match table.get_mut(&ip) {
            Some(f) => f,
            None => {
                table.insert(ip, fresh);
                match table.get_mut(&ip) {
                    Some(f) => f,
                    None => return,
                }
            }
        };
        match f.blocked_until {
            // Blocked meanwhile by a concurrent check: nothing to add.
            Some(until) if now < until => return,
            Some(_) => *f = fresh,
            None if now.saturating_duration_since(f.window_start) > self.config.failure_window => {
                *f = fresh
            }
            None => {}
        }
        f.count = f.count.saturating_add(1);
        if f.count >= max {
            f.blocked_until = Some(now + self.config.block_time.min(MAX_BLOCK));
            let count = f.count;
            drop(table);
            tracing::warn!(
                source = %ip,
                "Source blocked after {count} failed authentications."
            );
        }
    }
}

fn hash_name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::Md5 | Algorithm::Md5Sess => "MD5",
        Algorithm::Sha256 | Algorithm::Sha256Sess => "SHA-256",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_trusted;
    use sip::auth::Challenge;
    use sip::message::parse_datagram;

    const SRC: &str = "198.51.100.7";
    const RURI: &str = "sip:tandem.test";

    fn src() -> IpAddr {
        SRC.parse().unwrap()
    }

    fn users() -> Vec<User> {
        vec![
            User {
                name: "alice".into(),
                secret: Secret::Password("wonderland".into()),
            },
            User {
                name: "md5only".into(),
                secret: Secret::Ha1 {
                    md5: Some(ha1(Algorithm::Md5, "md5only", "tandem", "pw5")),
                    sha256: None,
                },
            },
            User {
                name: "shaonly".into(),
                secret: Secret::Ha1 {
                    md5: None,
                    sha256: Some(
                        ha1(Algorithm::Sha256, "shaonly", "tandem", "pw256").to_uppercase(),
                    ),
                },
            },
        ]
    }

    fn authenticator(config: AuthConfig) -> Authenticator {
        Authenticator::new(config, Directory::new(users()).unwrap())
    }

    /// Both algorithms offered, SHA-256 first (RFC 8760).
    fn both() -> AuthConfig {
        AuthConfig {
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            ..AuthConfig::default()
        }
    }

    fn default_auth() -> Authenticator {
        authenticator(both())
    }

    /// A REGISTER (or INVITE) as it arrives, with `extra` header lines.
    fn request(method: &str, ruri: &str, extra: &[(HeaderName, String)]) -> Message {
        let mut text = format!(
            "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK77\r\nMax-Forwards: 70\r\nFrom: <sip:alice@tandem.test>;tag=f1\r\nTo: <sip:alice@tandem.test>\r\nCall-ID: c1@198.51.100.7\r\nCSeq: 1 {method}\r\nContact: <sip:alice@198.51.100.7:5060>\r\n"
        );
        for (name, value) in extra {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        parse_datagram(text.into()).unwrap()
    }

    /// The challenge of `reply` for `algorithm`, parsed by the client side.
    fn challenge_for(reply: &Reply, algorithm: Algorithm) -> Challenge {
        reply
            .headers
            .iter()
            .map(|(_, v)| Challenge::parse(v).unwrap())
            .find(|c| c.algorithm == algorithm)
            .unwrap()
    }

    struct Client<'a> {
        method: &'a str,
        uri: &'a str,
        user: &'a str,
        password: &'a str,
        kind: Kind,
    }

    impl Client<'_> {
        fn alice() -> Client<'static> {
            Client {
                method: "REGISTER",
                uri: RURI,
                user: "alice",
                password: "wonderland",
                kind: Kind::Www,
            }
        }

        fn answer(&self, c: &Challenge, nc: u32) -> Message {
            let value = c.answer(self.method, self.uri, self.user, self.password, nc, "cn0");
            request(
                self.method,
                RURI,
                &[(self.kind.credentials_header(), value)],
            )
        }
    }

    fn first_challenge(a: &Authenticator, kind: Kind, now: Instant) -> Reply {
        match a.check(&request("REGISTER", RURI, &[]), src(), kind, now) {
            Verdict::Challenge(r) => r,
            v => panic!("{v:?}"),
        }
    }

    fn is_challenge(v: &Verdict, stale: bool) -> bool {
        match v {
            Verdict::Challenge(r) => {
                r.code == 401
                    && !r.headers.is_empty()
                    && r.headers
                        .iter()
                        .all(|(_, h)| Challenge::parse(h).unwrap().stale == stale)
            }
            _ => false,
        }
    }

    fn authenticated(v: &Verdict, user: &str) -> bool {
        v.user() == Some(user)
    }

    #[test]
    fn full_flow_sha256_and_md5() {
        let a = default_auth();
        let now = Instant::now();
        let reply = first_challenge(&a, Kind::Www, now);
        assert_eq!((reply.code, reply.reason), (401, "Unauthorized"));
        assert_eq!(reply.headers.len(), 2);
        let (name, first) = &reply.headers[0];
        assert_eq!(*name, HeaderName::WwwAuthenticate);
        assert!(
            first.starts_with("Digest realm=\"tandem\", nonce=\"")
                && first.ends_with("algorithm=SHA-256, qop=\"auth\""),
            "{first}"
        );
        assert!(reply.headers[1].1.contains("algorithm=MD5, qop=\"auth\""));
        for algorithm in [Algorithm::Sha256, Algorithm::Md5] {
            let c = challenge_for(&reply, algorithm);
            assert_eq!(c.realm, "tandem");
            assert_eq!(c.qop, ["auth"]);
            assert!(!c.stale);
            let nc = if algorithm == Algorithm::Md5 { 2 } else { 1 };
            let v = a.check(&Client::alice().answer(&c, nc), src(), Kind::Www, now);
            assert!(authenticated(&v, "alice"), "{algorithm:?}: {v:?}");
            assert!(v.is_allowed() && v.reply().is_none());
        }
    }

    #[test]
    fn ha1_users_verify_their_algorithms_only() {
        let a = default_auth();
        let now = Instant::now();
        let reply = first_challenge(&a, Kind::Www, now);
        let md5 = Client {
            user: "md5only",
            password: "pw5",
            ..Client::alice()
        };
        let v = a.check(
            &md5.answer(&challenge_for(&reply, Algorithm::Md5), 1),
            src(),
            Kind::Www,
            now,
        );
        assert!(authenticated(&v, "md5only"), "{v:?}");
        let v = a.check(
            &md5.answer(&challenge_for(&reply, Algorithm::Sha256), 1),
            src(),
            Kind::Www,
            now,
        );
        match v {
            Verdict::Forbidden { reply, why } => {
                assert_eq!((reply.code, reply.reason), (403, "Forbidden"));
                assert!(why.contains("no SHA-256 HA1"), "{why}");
            }
            v => panic!("{v:?}"),
        }
        let sha = Client {
            user: "shaonly",
            password: "pw256",
            ..Client::alice()
        };
        // One nonce serves all the challenges of a reply: a new count.
        let v = a.check(
            &sha.answer(&challenge_for(&reply, Algorithm::Sha256), 3),
            src(),
            Kind::Www,
            now,
        );
        assert!(authenticated(&v, "shaonly"), "{v:?}");
    }

    #[test]
    fn sess_variants_verify() {
        let a = authenticator(AuthConfig {
            algorithms: vec![Algorithm::Sha256Sess, Algorithm::Md5Sess],
            ..both()
        });
        let now = Instant::now();
        let reply = first_challenge(&a, Kind::Www, now);
        assert!(reply.headers[0].1.contains("algorithm=SHA-256-sess"));
        let md5 = Client {
            user: "md5only",
            password: "pw5",
            ..Client::alice()
        };
        let v = a.check(
            &md5.answer(&challenge_for(&reply, Algorithm::Md5Sess), 1),
            src(),
            Kind::Www,
            now,
        );
        assert!(authenticated(&v, "md5only"), "{v:?}");
        let v = a.check(
            &Client::alice().answer(&challenge_for(&reply, Algorithm::Sha256Sess), 2),
            src(),
            Kind::Www,
            now,
        );
        assert!(authenticated(&v, "alice"), "{v:?}");
    }

    #[test]
    fn wrong_password_and_unknown_user_are_forbidden() {
        let a = default_auth();
        let now = Instant::now();
        let c = challenge_for(&first_challenge(&a, Kind::Www, now), Algorithm::Sha256);
        let wrong = Client {
            password: "nope",
            ..Client::alice()
        };
        match a.check(&wrong.answer(&c, 1), src(), Kind::Www, now) {
            Verdict::Forbidden { reply, why } => {
                assert_eq!(reply, Reply::forbidden());
                assert!(why.contains("wrong response"), "{why}");
            }
            v => panic!("{v:?}"),
        }
        let unknown = Client {
            user: "mallory",
            ..Client::alice()
        };
        match a.check(&unknown.answer(&c, 2), src(), Kind::Www, now) {
            Verdict::Forbidden { why, .. } => assert_eq!(why, "unknown user \"mallory\""),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn nc_replay_is_challenged_stale_and_reordering_passes() {
        let a = default_auth();
        let now = Instant::now();
        let c = challenge_for(&first_challenge(&a, Kind::Www, now), Algorithm::Sha256);
        let alice = Client::alice();
        let check = |nc| a.check(&alice.answer(&c, nc), src(), Kind::Www, now);
        assert!(authenticated(&check(1), "alice"));
        assert!(is_challenge(&check(1), true), "replay");
        // Reordered UDP: 3 before 2, then 2 passes once.
        assert!(authenticated(&check(3), "alice"));
        assert!(authenticated(&check(2), "alice"));
        assert!(is_challenge(&check(2), true));
        assert!(is_challenge(&check(3), true));
        // Far ahead, then an unseen count below the 64-wide window.
        assert!(authenticated(&check(100), "alice"));
        assert!(authenticated(&check(37), "alice"));
        assert!(is_challenge(&check(36), true));
        assert!(is_challenge(&check(4), true));
        // A replay is not a failure.
        assert!(a.failures.lock().unwrap().get(&src()).is_none());
    }

    #[test]
    fn nc_window_bits() {
        let mut s = NcState::new(0, 5);
        assert!(!s.accept(5));
        assert!(s.accept(70));
        assert!(s.accept(7));
        assert!(!s.accept(6));
        assert!(!s.accept(7));
        assert!(s.accept(u64::from(u32::MAX)));
        assert!(!s.accept(71));
        assert!(!s.accept(u64::from(u32::MAX)));
    }

    #[test]
    fn expired_nonce_is_stale_only_with_the_right_digest() {
        let a = default_auth();
        let t0 = Instant::now();
        let c = challenge_for(&first_challenge(&a, Kind::Www, t0), Algorithm::Sha256);
        let later = t0 + Duration::from_secs(301);
        let v = a.check(&Client::alice().answer(&c, 1), src(), Kind::Www, later);
        assert!(is_challenge(&v, true), "{v:?}");
        let reply = v.reply().unwrap().clone();
        assert!(reply.headers[0].1.ends_with(", stale=true"));
        let wrong = Client {
            password: "nope",
            ..Client::alice()
        };
        assert!(matches!(
            a.check(&wrong.answer(&c, 2), src(), Kind::Www, later),
            Verdict::Forbidden { .. }
        ));
        // The fresh nonce of the stale challenge works.
        let fresh = challenge_for(&reply, Algorithm::Sha256);
        assert!(authenticated(
            &a.check(&Client::alice().answer(&fresh, 1), src(), Kind::Www, later),
            "alice"
        ));
        // Just inside the lifetime is fine.
        let c = challenge_for(&first_challenge(&a, Kind::Www, t0), Algorithm::Sha256);
        let v = a.check(
            &Client::alice().answer(&c, 1),
            src(),
            Kind::Www,
            t0 + Duration::from_secs(300),
        );
        assert!(authenticated(&v, "alice"), "{v:?}");
    }

    #[test]
    fn forged_or_foreign_nonce_is_challenged_not_counted() {
        let a = default_auth();
        let now = Instant::now();
        let mut c = challenge_for(&first_challenge(&a, Kind::Www, now), Algorithm::Sha256);
        let original = c.nonce.clone();
        // Move the timestamp forward a little: the MAC no longer matches.
        let mut bytes = original.clone().into_bytes();
        bytes[14] = if bytes[14] == b'f' { b'e' } else { b'f' };
        c.nonce = String::from_utf8(bytes).unwrap();
        assert!(is_challenge(
            &a.check(&Client::alice().answer(&c, 1), src(), Kind::Www, now),
            false
        ));
        c.nonce = "not-a-nonce".into();
        assert!(is_challenge(
            &a.check(&Client::alice().answer(&c, 1), src(), Kind::Www, now),
            false
        ));
        // A previous process's nonce.
        let other = default_auth();
        let mut c = challenge_for(&first_challenge(&other, Kind::Www, now), Algorithm::Sha256);
        c.opaque = None;
        assert!(is_challenge(
            &a.check(&Client::alice().answer(&c, 1), src(), Kind::Www, now),
            false
        ));
        assert!(a.failures.lock().unwrap().get(&src()).is_none());
    }

    #[test]
    fn opaque_algorithm_and_qop_mismatches_are_challenged() {
        let a = authenticator(AuthConfig {
            algorithms: vec![Algorithm::Sha256],
            ..both()
        });
        let now = Instant::now();
        let reply = first_challenge(&a, Kind::Www, now);
        assert_eq!(reply.headers.len(), 1);
        let c = challenge_for(&reply, Algorithm::Sha256);
        let mut other = c.clone();
        other.opaque = Some("0000".into());
        assert!(is_challenge(
            &a.check(&Client::alice().answer(&other, 1), src(), Kind::Www, now),
            false
        ));
        // An algorithm we did not offer.
        let mut md5 = c.clone();
        md5.algorithm = Algorithm::Md5;
        assert!(is_challenge(
            &a.check(&Client::alice().answer(&md5, 1), src(), Kind::Www, now),
            false
        ));
        // auth-int.
        let value = Client::alice()
            .answer(&c, 1)
            .header_str(&HeaderName::Authorization)
            .unwrap()
            .replace("qop=auth", "qop=auth-int");
        let m = request("REGISTER", RURI, &[(HeaderName::Authorization, value)]);
        assert!(is_challenge(&a.check(&m, src(), Kind::Www, now), false));
        // Without opaque: accepted (some clients drop it).
        let mut none = c.clone();
        none.opaque = None;
        assert!(authenticated(
            &a.check(&Client::alice().answer(&none, 1), src(), Kind::Www, now),
            "alice"
        ));
        // qop=auth without nc: malformed.
        let value = Client::alice()
            .answer(&c, 2)
            .header_str(&HeaderName::Authorization)
            .unwrap()
            .replace("nc=00000002, ", "");
        let m = request("REGISTER", RURI, &[(HeaderName::Authorization, value)]);
        assert!(matches!(
            a.check(&m, src(), Kind::Www, now),
            Verdict::Forbidden { .. }
        ));
    }

    #[test]
    fn without_qop_a_nonce_is_one_time() {
        let a = default_auth();
        let now = Instant::now();
        let mut c = challenge_for(&first_challenge(&a, Kind::Www, now), Algorithm::Md5);
        c.qop.clear();
        let m = Client::alice().answer(&c, 1);
        assert!(
            !m.header_str(&HeaderName::Authorization)
                .unwrap()
                .contains("qop")
        );
        assert!(authenticated(&a.check(&m, src(), Kind::Www, now), "alice"));
        assert!(is_challenge(&a.check(&m, src(), Kind::Www, now), true));
    }

    #[test]
    fn digest_uri_must_name_the_request_uri() {
        let a = default_auth();
        let now = Instant::now();
        let c = challenge_for(&first_challenge(&a, Kind::Www, now), Algorithm::Sha256);
        let other = Client {
            uri: "sip:other.test",
            ..Client::alice()
        };
        match a.check(&other.answer(&c, 1), src(), Kind::Www, now) {
            Verdict::Forbidden { why, .. } => assert!(why.contains("not the Request-URI"), "{why}"),
            v => panic!("{v:?}"),
        }
        // Another spelling of the same URI.
        let spelled = Client {
            uri: "sip:TANDEM.test:5060;transport=udp",
            ..Client::alice()
        };
        assert!(authenticated(
            &a.check(&spelled.answer(&c, 2), src(), Kind::Www, now),
            "alice"
        ));
        assert!(uri_matches(
            "sip:bob@[::1]",
            &Uri::parse("sip:bob@[::1]:5060").unwrap()
        ));
        assert!(!uri_matches("sip:Bob@h", &Uri::parse("sip:bob@h").unwrap()));
        assert!(!uri_matches("sip:bob@h", &Uri::parse("sip:h").unwrap()));
        // SIPp's digest-uri.
        assert!(uri_matches(
            "sip:127.0.0.1:5070",
            &Uri::parse("sip:bob@127.0.0.1:5070;transport=udp").unwrap()
        ));
        assert!(!uri_matches(
            "sip:127.0.0.1:5071",
            &Uri::parse("sip:bob@127.0.0.1:5070").unwrap()
        ));
        assert!(!uri_matches("sips:h", &Uri::parse("sip:h").unwrap()));
        assert!(!uri_matches("sip:h:5070", &Uri::parse("sip:h").unwrap()));
        assert!(!uri_matches("garbage", &Uri::parse("sip:h").unwrap()));
    }

    #[test]
    fn sipp_style_credentials_verify() {
        // SIPp 3.6.1 answers the first challenge only, without spaces, with
        // the digest-uri `sip:<remote ip>:<remote port>`.
        let a = authenticator(AuthConfig {
            algorithms: vec![Algorithm::Md5, Algorithm::Sha256],
            ..both()
        });
        let now = Instant::now();
        let reply = first_challenge(&a, Kind::Proxy, now);
        let c = Challenge::parse(&reply.headers[0].1).unwrap();
        assert_eq!(c.algorithm, Algorithm::Md5);
        let uri = "sip:127.0.0.1:5070";
        let response = sip::auth::digest_response(&sip::auth::DigestInput {
            algorithm: Algorithm::Md5,
            username: "alice",
            realm: "tandem",
            password: "wonderland",
            nonce: &c.nonce,
            cnonce: "6b8b4567",
            nc: 1,
            qop: Some("auth"),
            method: "INVITE",
            uri,
        });
        let value = format!(
            "Digest username=\"alice\",realm=\"tandem\",cnonce=\"6b8b4567\",nc=00000001,qop=auth,uri=\"{uri}\",nonce=\"{}\",response=\"{response}\",algorithm=MD5,opaque=\"{}\"",
            c.nonce,
            c.opaque.unwrap()
        );
        let m = request(
            "INVITE",
            "sip:bob@127.0.0.1:5070;transport=udp",
            &[(HeaderName::ProxyAuthorization, value)],
        );
        let v = a.check(&m, src(), Kind::Proxy, now);
        assert!(authenticated(&v, "alice"), "{v:?}");
    }

    #[test]
    fn blocks_after_max_failures_and_unblocks_after_block_time() {
        let a = authenticator(AuthConfig {
            max_failures: 3,
            ..both()
        });
        let t0 = Instant::now();
        let reply = first_challenge(&a, Kind::Www, t0);
        let c = challenge_for(&reply, Algorithm::Sha256);
        let wrong = Client {
            password: "nope",
            ..Client::alice()
        };
        for nc in 1..=3 {
            let v = a.check(&wrong.answer(&c, nc), src(), Kind::Www, t0);
            assert!(matches!(v, Verdict::Forbidden { .. }), "{nc}: {v:?}");
        }
        // Blocked, even with the right password; another source is not.
        let v = a.check(
            &Client::alice().answer(&c, 4),
            src(),
            Kind::Www,
            t0 + Duration::from_secs(59),
        );
        assert_eq!(
            v,
            Verdict::Blocked(Reply {
                code: 403,
                reason: "Too Many Failed Attempts",
                headers: vec![]
            })
        );
        assert!(!v.is_allowed());
        let other: IpAddr = "198.51.100.8".parse().unwrap();
        assert!(authenticated(
            &a.check(&Client::alice().answer(&c, 5), other, Kind::Www, t0),
            "alice"
        ));
        // After block_time: in again, with a fresh count.
        let t1 = t0 + Duration::from_secs(60);
        assert!(authenticated(
            &a.check(&Client::alice().answer(&c, 6), src(), Kind::Www, t1),
            "alice"
        ));
        assert!(a.failures.lock().unwrap().get(&src()).is_none());
        for nc in 7..=8 {
            assert!(matches!(
                a.check(&wrong.answer(&c, nc), src(), Kind::Www, t1),
                Verdict::Forbidden { .. }
            ));
        }
        // A success resets this source's count.
        assert!(authenticated(
            &a.check(&Client::alice().answer(&c, 9), src(), Kind::Www, t1),
            "alice"
        ));
        for nc in 10..=11 {
            assert!(matches!(
                a.check(&wrong.answer(&c, nc), src(), Kind::Www, t1),
                Verdict::Forbidden { .. }
            ));
        }
        assert!(!a.is_blocked(src(), t1));
    }

    #[test]
    fn failures_outside_the_window_do_not_block() {
        let a = authenticator(AuthConfig {
            max_failures: 2,
            ..both()
        });
        let t0 = Instant::now();
        a.record_failure(src(), t0);
        a.record_failure(src(), t0 + Duration::from_secs(61));
        assert!(!a.is_blocked(src(), t0 + Duration::from_secs(61)));
        a.record_failure(src(), t0 + Duration::from_secs(62));
        assert!(a.is_blocked(src(), t0 + Duration::from_secs(62)));
        // Further failures while blocked neither extend nor lift the block.
        a.record_failure(src(), t0 + Duration::from_secs(100));
        assert!(a.is_blocked(src(), t0 + Duration::from_secs(121)));
        assert!(!a.is_blocked(src(), t0 + Duration::from_secs(122)));
        // max_failures 0 never blocks.
        let never = authenticator(AuthConfig {
            max_failures: 0,
            ..both()
        });
        for _ in 0..100 {
            never.record_failure(src(), t0);
        }
        assert!(!never.is_blocked(src(), t0));
        assert_eq!(never.failures.lock().unwrap().len(), 0);
    }

    #[test]
    fn trusted_sources_v4_and_v6() {
        let a = authenticator(AuthConfig {
            trusted: vec![
                parse_trusted("192.0.2.0/24").unwrap(),
                parse_trusted("2001:db8::/32").unwrap(),
            ],
            ..both()
        });
        let now = Instant::now();
        let plain = request("INVITE", RURI, &[]);
        for ip in [
            "192.0.2.1",
            "192.0.2.255",
            "2001:db8::1",
            "::ffff:192.0.2.9",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(a.is_trusted(ip));
            assert_eq!(
                a.check(&plain, ip, Kind::Proxy, now),
                Verdict::Trusted,
                "{ip}"
            );
        }
        for ip in ["192.0.3.1", "2001:db9::1", SRC] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!a.is_trusted(ip));
            assert!(matches!(
                a.check(&plain, ip, Kind::Proxy, now),
                Verdict::Challenge(_)
            ));
        }
        // A trusted PBX's user is still named when the credentials are right.
        let pbx: IpAddr = "192.0.2.1".parse().unwrap();
        let c = challenge_for(&a.challenge(Kind::Proxy, false, now), Algorithm::Sha256);
        let invite = Client {
            method: "INVITE",
            kind: Kind::Proxy,
            ..Client::alice()
        };
        assert!(authenticated(
            &a.check(&invite.answer(&c, 1), pbx, Kind::Proxy, now),
            "alice"
        ));
        let wrong = Client {
            password: "nope",
            ..invite
        };
        for nc in 2..20 {
            assert_eq!(
                a.check(&wrong.answer(&c, nc), pbx, Kind::Proxy, now),
                Verdict::Trusted
            );
        }
        assert_eq!(a.failures.lock().unwrap().len(), 0);
    }

    #[test]
    fn empty_directory_is_open() {
        let a = Authenticator::new(AuthConfig::default(), Directory::new(vec![]).unwrap());
        assert!(!a.has_users());
        let now = Instant::now();
        assert_eq!(
            a.check(&request("REGISTER", RURI, &[]), src(), Kind::Www, now),
            Verdict::Open
        );
        let c = challenge_for(&a.challenge(Kind::Www, false, now), Algorithm::Md5);
        assert_eq!(
            a.check(&Client::alice().answer(&c, 1), src(), Kind::Www, now),
            Verdict::Open
        );
    }

    #[test]
    fn kinds_use_their_codes_and_headers() {
        let a = default_auth();
        let now = Instant::now();
        let proxy = first_challenge(&a, Kind::Proxy, now);
        assert_eq!(
            (proxy.code, proxy.reason),
            (407, "Proxy Authentication Required")
        );
        assert!(
            proxy
                .headers
                .iter()
                .all(|(n, _)| *n == HeaderName::ProxyAuthenticate)
        );
        let www = a.challenge(Kind::Www, true, now);
        assert_eq!((www.code, www.reason), (401, "Unauthorized"));
        assert!(
            www.headers
                .iter()
                .all(|(n, v)| *n == HeaderName::WwwAuthenticate && v.ends_with("stale=true"))
        );
        let c = challenge_for(&proxy, Algorithm::Sha256);
        let invite = Client {
            method: "INVITE",
            kind: Kind::Proxy,
            ..Client::alice()
        };
        let m = invite.answer(&c, 1);
        // Proxy-Authorization does not answer a WWW check, and vice versa.
        assert!(matches!(
            a.check(&m, src(), Kind::Www, now),
            Verdict::Challenge(_)
        ));
        assert!(authenticated(
            &a.check(&m, src(), Kind::Proxy, now),
            "alice"
        ));
        let www_m = Client::alice().answer(&c, 2);
        assert!(matches!(
            a.check(&www_m, src(), Kind::Proxy, now),
            Verdict::Challenge(_)
        ));
        // As a response.
        let resp = proxy.to_response(&m, Some("t1"));
        assert_eq!(resp.code(), Some(407));
        assert_eq!(resp.headers.count(&HeaderName::ProxyAuthenticate), 2);
        assert_eq!(resp.to_tag().as_deref(), Some(&b"t1"[..]));
    }

    #[test]
    fn picks_the_credentials_of_our_realm() {
        let a = default_auth();
        let now = Instant::now();
        let c = challenge_for(&first_challenge(&a, Kind::Www, now), Algorithm::Sha256);
        let ours = c.answer("REGISTER", RURI, "alice", "wonderland", 1, "x");
        let mut theirs = c.clone();
        theirs.realm = "elsewhere".into();
        let theirs = theirs.answer("REGISTER", RURI, "alice", "other", 1, "x");
        let m = request(
            "REGISTER",
            RURI,
            &[
                (HeaderName::Authorization, "Basic YWxpY2U6eA==".into()),
                (HeaderName::Authorization, theirs.clone()),
                (HeaderName::Authorization, ours),
            ],
        );
        assert!(authenticated(&a.check(&m, src(), Kind::Www, now), "alice"));
        // Only another realm's credentials: a challenge, not a failure.
        let m = request("REGISTER", RURI, &[(HeaderName::Authorization, theirs)]);
        assert!(is_challenge(&a.check(&m, src(), Kind::Www, now), false));
        // Garbage for our realm never panics.
        for junk in [
            "Digest realm=\"tandem\"",
            "Digest realm=\"tandem\", username=\"alice\", nonce=\"\", uri=\"\", response=\"\"",
            "Digest realm=\"tandem\", username=\"alice\", nonce=\"x\", uri=\"sip:tandem.test\", response=\"r\", qop=auth, nc=zz, cnonce=\"c\"",
            "Digest realm=\"tandem\", username=\"alice\", nonce=\"x\", uri=\"sip:tandem.test\", response=\"r\", qop=auth, nc=+1, cnonce=\"c\"",
            "Digest realm=\"tandem\", username=\"é\u{0}\", nonce=\"x\", uri=\"\u{7f}\", response=\"r\", algorithm=SHA-512",
            "Digest realm=\"tandem\", ,,, =, username",
        ] {
            let m = request(
                "REGISTER",
                RURI,
                &[(HeaderName::new("Authorization"), junk.into())],
            );
            let v = a.check(&m, src(), Kind::Www, now);
            assert!(!v.is_allowed(), "{junk}: {v:?}");
        }
    }

    #[test]
    fn from_and_to_match_the_user() {
        let m = request("REGISTER", RURI, &[]);
        assert!(from_matches(&m, "alice"));
        assert!(to_matches(&m, "alice"));
        assert!(!from_matches(&m, "bob"));
        assert!(!to_matches(&m, "Alice"));
        let text = "INVITE sip:bob@tandem.test SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: \"A\" <sip:%61lice@tandem.test>;tag=1\r\nTo: sip:bob@tandem.test\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        let m = parse_datagram(text.into()).unwrap();
        assert!(from_matches(&m, "alice"));
        assert!(to_matches(&m, "bob"));
        assert!(!to_matches(&m, "alice"));
    }

    #[test]
    fn tables_are_bounded() {
        let a = default_auth();
        let t0 = Instant::now();
        for i in 0..(MAX_ENTRIES as u32 + 5000) {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            a.record_failure(ip, t0);
        }
        assert_eq!(a.failures.lock().unwrap().len(), MAX_ENTRIES);
        let first = |counter| Nonce {
            issued_ms: a.ms(t0) + counter / 100,
            counter,
        };
        for counter in 0..(MAX_ENTRIES as u64 + 5000) {
            assert!(a.use_nonce(first(counter), 1));
        }
        assert_eq!(a.nonces.lock().unwrap().table.len(), MAX_ENTRIES);
        // A dropped nonce's state is gone, so its reuse counts as a replay.
        assert!(!a.use_nonce(first(0), 2));
        assert!(a.use_nonce(first(MAX_ENTRIES as u64 + 4999), 2));
        // A nonce issued after everything dropped is new.
        let newer = Nonce {
            issued_ms: a.ms(t0) + 10_000,
            counter: u64::MAX,
        };
        assert!(a.use_nonce(newer, 1));
    }

    #[test]
    fn prune_forgets_expired_nonces_and_old_failures() {
        let a = default_auth();
        let t0 = Instant::now();
        let c = challenge_for(&first_challenge(&a, Kind::Www, t0), Algorithm::Sha256);
        assert!(authenticated(
            &a.check(&Client::alice().answer(&c, 1), src(), Kind::Www, t0),
            "alice"
        ));
        a.record_failure("192.0.2.1".parse().unwrap(), t0);
        a.prune(t0 + Duration::from_secs(60));
        assert_eq!(a.nonces.lock().unwrap().table.len(), 1);
        assert_eq!(a.failures.lock().unwrap().len(), 1);
        a.prune(t0 + Duration::from_secs(301));
        assert_eq!(a.nonces.lock().unwrap().table.len(), 0);
        assert_eq!(a.failures.lock().unwrap().len(), 0);
        // Even a caller with an older clock reading cannot reuse it now.
        assert!(!a.use_nonce(a.key.verify(&c.nonce).unwrap(), 2));
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Authenticator>();
        let a = default_auth();
        assert_eq!(a.realm(), "tandem");
        assert!(a.has_users());
        assert_eq!(a.directory().len(), 3);
        assert!(!format!("{a:?}").contains("wonderland"));
    }

    #[test]
    fn realm_is_quoted_in_challenges() {
        let a = authenticator(AuthConfig {
            realm: "a \"b\" \\c".into(),
            ..both()
        });
        let r = a.challenge(Kind::Www, false, Instant::now());
        assert_eq!(challenge_for(&r, Algorithm::Md5).realm, "a \"b\" \\c");
    }
}
