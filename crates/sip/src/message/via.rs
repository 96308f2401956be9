//! The `Via` header (RFC 3261 §20.42, §18.2.1, RFC 3581 `rport`).
//!
//! rsip 0.4 fails on IPv6 sent-by hosts, on LWS around the `/` of the
//! sent-protocol and keeps `rport` only as an opaque parameter; this parser
//! handles all three.

use super::params::Params;
use super::text::{is_token_char, is_ws, parse_u64, trim};
use bytes::Bytes;
use std::net::{IpAddr, SocketAddr};

/// The RFC 3261 magic cookie that starts every compliant branch.
pub const BRANCH_COOKIE: &str = "z9hG4bK";

/// Why a Via value is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ViaError {
    /// The sent-protocol is not `SIP/2.0/<transport>`.
    #[error("malformed Via sent-protocol")]
    Protocol,
    /// The sent-protocol names another SIP version.
    #[error("unsupported SIP version in Via")]
    Version,
    /// The sent-by host or port is malformed.
    #[error("malformed Via sent-by")]
    SentBy,
    /// The parameters are malformed.
    #[error("malformed Via parameters")]
    Params,
}

/// One Via value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token as received (`UDP`, `TCP`, `TLS`, `SCTP`, ...).
    pub transport: Bytes,
    /// Sent-by host as written (IPv6 keeps its brackets).
    pub host: Bytes,
    /// Sent-by port.
    pub port: Option<u16>,
    /// Via parameters (`branch`, `received`, `rport`, ...).
    pub params: Params,
}

fn token_at(s: &[u8], i: &mut usize) -> Option<(usize, usize)> {
    while *i < s.len() && is_ws(s[*i]) {
        *i += 1;
    }
    let start = *i;
    while *i < s.len() && is_token_char(s[*i]) {
        *i += 1;
    }
    (start < *i).then_some((start, *i))
}

fn expect_slash(s: &[u8], i: &mut usize) -> Result<(), ViaError> {
    while *i < s.len() && is_ws(s[*i]) {
        *i += 1;
    }
    if s.get(*i) == Some(&b'/') {
        *i += 1;
        Ok(())
    } else {
        Err(ViaError::Protocol)
    }
}

impl Via {
    /// Parses one Via value (already split at commas), sharing `src`.
    pub fn parse_shared(src: &Bytes, value: &[u8]) -> Result<Via, ViaError> {
        let s = trim(value);
        let mut i = 0;
        let (a, b) = token_at(s, &mut i).ok_or(ViaError::Protocol)?;
        if !s[a..b].eq_ignore_ascii_case(b"SIP") {
            return Err(ViaError::Protocol);
        }
        expect_slash(s, &mut i)?;
        let (a, b) = token_at(s, &mut i).ok_or(ViaError::Protocol)?;
        if &s[a..b] != b"2.0" {
            return Err(ViaError::Version);
        }
        expect_slash(s, &mut i)?;
        let (ta, tb) = token_at(s, &mut i).ok_or(ViaError::Protocol)?;
        let transport = src.slice_ref(&s[ta..tb]);
        let ws_start = i;
        while i < s.len() && is_ws(s[i]) {
            i += 1;
        }
        if i == ws_start {
            return Err(ViaError::SentBy);
        }
        let hp_start = i;
        let host_end = if s.get(i) == Some(&b'[') {
            let close = s[i..]
                .iter()
                .position(|&b| b == b']')
                .ok_or(ViaError::SentBy)?;
            i + close + 1
        } else {
            let mut j = i;
            while j < s.len()
                && (s[j].is_ascii_alphanumeric() || matches!(s[j], b'.' | b'-' | b'_'))
            {
                j += 1;
            }
            j
        };
        if host_end == hp_start {
            return Err(ViaError::SentBy);
        }
        let host = src.slice_ref(&s[hp_start..host_end]);
        i = host_end;
        let mut port = None;
        if s.get(i) == Some(&b':') {
            let p_start = i + 1;
            let mut j = p_start;
            while j < s.len() && s[j].is_ascii_digit() {
                j += 1;
            }
            port = Some(
                parse_u64(&s[p_start..j], u64::from(u16::MAX)).ok_or(ViaError::SentBy)? as u16,
            );
            i = j;
        }
        while i < s.len() && super::text::is_lws(s[i]) {
            i += 1;
        }
        let rest = &s[i..];
        if !rest.is_empty() && rest[0] != b';' {
            return Err(ViaError::SentBy);
        }
        let params = Params::from_raw(src.slice_ref(rest));
        params.validate().map_err(|_| ViaError::Params)?;
        Ok(Via {
            transport,
            host,
            port,
            params,
        })
    }

    /// Parses a Via from text.
    pub fn parse(s: &str) -> Result<Via, ViaError> {
        let src = Bytes::copy_from_slice(s.as_bytes());
        Via::parse_shared(&src, &src)
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<Bytes> {
        self.params.get_bytes("branch")
    }

    /// True when the branch starts with the RFC 3261 magic cookie and has
    /// something after it (RFC 4475 `badbranch`: the bare cookie is not
    /// enough to trust it as unique).
    pub fn is_rfc3261_branch(&self) -> bool {
        self.branch().is_some_and(|b| {
            b.len() > BRANCH_COOKIE.len() && b.starts_with(BRANCH_COOKIE.as_bytes())
        })
    }

    /// The `received` parameter as an IP address.
    pub fn received(&self) -> Option<IpAddr> {
        let v = self.params.get("received")??;
        let s = std::str::from_utf8(v).ok()?;
        s.trim_start_matches('[').trim_end_matches(']').parse().ok()
    }

    /// The `rport` parameter: `Some(None)` when present without a value.
    pub fn rport(&self) -> Option<Option<u16>> {
        match self.params.get("rport")? {
            None => Some(None),
            Some(v) => Some(parse_u64(v, u64::from(u16::MAX)).map(|p| p as u16)),
        }
    }

    /// The sent-by host without IPv6 brackets.
    pub fn host_str(&self) -> &str {
        let h = std::str::from_utf8(&self.host).unwrap_or("");
        h.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(h)
    }

    /// True when the transport is reliable (anything but UDP).
    pub fn is_reliable(&self) -> bool {
        !self.transport.eq_ignore_ascii_case(b"UDP")
    }

    /// The default port of the Via's transport (RFC 3261 §18.2.2).
    pub fn default_port(&self) -> u16 {
        if self.transport.eq_ignore_ascii_case(b"TLS")
            || self.transport.eq_ignore_ascii_case(b"WSS")
        {
            5061
        } else {
            5060
        }
    }

    /// Where a response to this Via goes (RFC 3261 §18.2.2, RFC 3581 §4):
    /// `received` (or the sent-by host) and `rport` (or the sent-by port).
    /// `None` when the sent-by host is a name and there is no `received`.
    pub fn response_addr(&self) -> Option<SocketAddr> {
        let ip = match self.received() {
            Some(ip) => ip,
            None => self.host_str().parse().ok()?,
        };
        let port = match self.rport() {
            Some(Some(p)) => p,
            _ => self.port.unwrap_or_else(|| self.default_port()),
        };
        Some(SocketAddr::new(ip, port))
    }

    /// Applies RFC 3261 §18.2.1 and RFC 3581 §4 for a request that arrived
    /// from `source`: adds `received` when the sent-by host differs from the
    /// source address, and fills an empty `rport` (adding `received` too).
    /// Returns `None` when nothing needs to change.
    pub fn stamped(&self, source: SocketAddr) -> Option<Via> {
        let host_matches = self
            .host_str()
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip == source.ip());
        let wants_rport = matches!(self.rport(), Some(None));
        if host_matches && !wants_rport {
            return None;
        }
        let mut params = self.params.clone();
        if wants_rport {
            params = params.with("rport", Some(source.port().to_string().as_bytes()));
        }
        if !host_matches || wants_rport {
            params = params.with("received", Some(source.ip().to_string().as_bytes()));
        }
        Some(Via {
            params,
            ..self.clone()
        })
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(32 + self.host.len() + self.params.as_bytes().len());
        out.extend_from_slice(b"SIP/2.0/");
        out.extend_from_slice(&self.transport);
        out.push(b' ');
        out.extend_from_slice(&self.host);
        if let Some(p) = self.port {
            out.push(b':');
            super::text::push_decimal(&mut out, p);
        }
        out.extend_from_slice(self.params.as_bytes());
        Bytes::from(out)
    }

    /// A new Via for a request Tandem sends.
    pub fn new(transport: &str, sent_by: SocketAddr, branch: &str) -> Via {
        let host = match sent_by.ip() {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        Via {
            transport: Bytes::copy_from_slice(transport.as_bytes()),
            host: Bytes::from(host),
            port: Some(sent_by.port()),
            params: Params::from_raw(Bytes::from(format!(";branch={branch};rport"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lws_in_sent_protocol() {
        let v = Via::parse("SIP  /   2.0 /UDP    192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(&v.transport[..], b"UDP");
        assert_eq!(v.host_str(), "192.0.2.2");
        assert!(!v.is_rfc3261_branch());
        let v = Via::parse(
            "SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8",
        )
        .unwrap();
        assert_eq!(v.branch().as_deref(), Some(&b"z9hG4bK9ikj8"[..]));
        assert!(v.is_rfc3261_branch());
    }

    #[test]
    fn ipv6_sent_by_where_rsip_fails() {
        let raw = "SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bKas3-111;rport";
        let v = Via::parse(raw).unwrap();
        assert_eq!(v.host_str(), "2001:db8::9:1");
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.rport(), Some(None));
        // rsip 0.4 cannot type this Via.
        use rsip::prelude::{ToTypedHeader, UntypedHeader};
        let typed = rsip::headers::Via::new(raw);
        assert!(typed.typed().is_err());
    }

    #[test]
    fn bare_cookie_branch_is_not_trusted() {
        let v = Via::parse("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK").unwrap();
        assert!(!v.is_rfc3261_branch());
    }

    #[test]
    fn stamping_received_and_rport() {
        let src: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let v = Via::parse("SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKx").unwrap();
        assert!(v.stamped(src).is_none());
        let v = Via::parse("SIP/2.0/UDP host.example.com;branch=z9hG4bKx;rport").unwrap();
        let s = v.stamped(src).unwrap();
        assert_eq!(
            &s.to_bytes()[..],
            b"SIP/2.0/UDP host.example.com;branch=z9hG4bKx;rport=40000;received=127.0.0.1"
        );
        assert_eq!(s.response_addr(), Some(src));
        let v = Via::parse("SIP/2.0/UDP 10.1.1.1:5070;branch=z9hG4bKx").unwrap();
        let s = v.stamped(src).unwrap();
        assert_eq!(s.response_addr(), "127.0.0.1:5070".parse().ok());
    }

    #[test]
    fn malformed() {
        assert_eq!(Via::parse("SIP/7.0/UDP h"), Err(ViaError::Version));
        assert_eq!(
            Via::parse("SIP/2.0/UDP 192.0.2.15;;"),
            Err(ViaError::Params)
        );
        assert_eq!(Via::parse(";"), Err(ViaError::Protocol));
        assert_eq!(Via::parse("SIP/2.0/UDP"), Err(ViaError::SentBy));
        assert_eq!(Via::parse("SIP/2.0/UDP h:99999"), Err(ViaError::SentBy));
    }
}
