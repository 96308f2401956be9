//! URIs (RFC 3261 §19.1, RFC 3966 `tel:`, and any other scheme kept opaque).
//!
//! rsip 0.4's `Uri` drops URI headers (`?Route=...`) and rejects `tel:`, so
//! Tandem keeps its own: every part is a slice of the received bytes, and an
//! unmodified URI is written back exactly as it came.

use super::params::Params;
use bytes::Bytes;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// A URI scheme.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:`
    Sips,
    /// `tel:` (RFC 3966)
    Tel,
    /// Any other scheme, as received.
    Other(Bytes),
}

impl Scheme {
    /// The scheme name without the colon.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Scheme::Sip => b"sip",
            Scheme::Sips => b"sips",
            Scheme::Tel => b"tel",
            Scheme::Other(b) => b,
        }
    }
}

/// Why a URI could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// No `scheme:` prefix or an invalid scheme name.
    #[error("missing or invalid URI scheme")]
    Scheme,
    /// Whitespace, `<`, `>`, `"` or a control character in the URI.
    #[error("illegal character in URI")]
    Char,
    /// An empty or malformed host.
    #[error("invalid URI host")]
    Host,
    /// A port that is not a number up to 65535.
    #[error("invalid URI port")]
    Port,
    /// Malformed URI parameters.
    #[error("invalid URI parameters")]
    Params,
}

/// A parsed URI. For `sip:`/`sips:` the parts are split out; for `tel:` the
/// number is in `user`; any other scheme is kept whole in `opaque`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    /// The scheme.
    pub scheme: Scheme,
    /// The user part (escaped as received), or the `tel:` number.
    pub user: Option<Bytes>,
    /// The password of `user:password@`.
    pub password: Option<Bytes>,
    /// The host as written (IPv6 references keep their brackets).
    pub host: Bytes,
    /// The explicit port.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp;lr`).
    pub params: Params,
    /// URI headers, raw, starting with `?` unless empty.
    pub headers: Bytes,
    /// For schemes other than sip/sips/tel: everything after the colon.
    pub opaque: Bytes,
}

fn is_uri_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'<' | b'>' | b'"')
}

impl Uri {
    /// Parses `s`, which must be a slice of `src`; the parts share `src`.
    pub fn parse_shared(src: &Bytes, s: &[u8]) -> Result<Uri, UriError> {
        let colon = s.iter().position(|&b| b == b':').ok_or(UriError::Scheme)?;
        let scheme = &s[..colon];
        if scheme.is_empty()
            || !scheme[0].is_ascii_alphabetic()
            || !scheme
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return Err(UriError::Scheme);
        }
        if !s.iter().all(|&b| is_uri_char(b)) {
            return Err(UriError::Char);
        }
        let rest = &s[colon + 1..];
        let mut uri = Uri {
            scheme: Scheme::Sip,
            user: None,
            password: None,
            host: Bytes::new(),
            port: None,
            params: Params::default(),
            headers: Bytes::new(),
            opaque: Bytes::new(),
        };
        if scheme.eq_ignore_ascii_case(b"sip") || scheme.eq_ignore_ascii_case(b"sips") {
            if scheme.eq_ignore_ascii_case(b"sips") {
                uri.scheme = Scheme::Sips;
            }
            parse_sip(src, rest, &mut uri)?;
        } else if scheme.eq_ignore_ascii_case(b"tel") {
            uri.scheme = Scheme::Tel;
            let end = rest.iter().position(|&b| b == b';').unwrap_or(rest.len());
            if end == 0 {
                return Err(UriError::Host);
            }
            uri.user = Some(src.slice_ref(&rest[..end]));
            uri.params = Params::from_raw(src.slice_ref(&rest[end..]));
            uri.params.validate().map_err(|_| UriError::Params)?;
        } else {
            uri.scheme = Scheme::Other(src.slice_ref(scheme));
            if rest.is_empty() {
                return Err(UriError::Host);
            }
            uri.opaque = src.slice_ref(rest);
        }
        Ok(uri)
    }

    /// Parses a URI from text (copies it once).
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        let src = Bytes::copy_from_slice(s.as_bytes());
        Uri::parse_shared(&src, &src)
    }

    /// The user part as text, if any and if UTF-8.
    pub fn user_str(&self) -> Option<&str> {
        self.user
            .as_deref()
            .and_then(|u| std::str::from_utf8(u).ok())
    }

    /// The host as text (without IPv6 brackets).
    pub fn host_str(&self) -> &str {
        let h = std::str::from_utf8(&self.host).unwrap_or("");
        h.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(h)
    }

    /// The `transport` URI parameter, lower-cased.
    pub fn transport_param(&self) -> Option<String> {
        self.params
            .get("transport")
            .flatten()
            .map(|v| String::from_utf8_lossy(v).to_ascii_lowercase())
    }

    /// The socket address when the host is an IP literal (default port 5060,
    /// 5061 for sips).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let ip: IpAddr = self.host_str().parse().ok()?;
        let default = if self.scheme == Scheme::Sips {
            5061
        } else {
            5060
        };
        Some(SocketAddr::new(ip, self.port.unwrap_or(default)))
    }

    /// True for `sip:` and `sips:` URIs.
    pub fn is_sip(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }

    /// Appends the wire form to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.scheme.as_bytes());
        out.push(b':');
        match self.scheme {
            Scheme::Sip | Scheme::Sips => {
                if let Some(user) = &self.user {
                    out.extend_from_slice(user);
                    if let Some(pw) = &self.password {
                        out.push(b':');
                        out.extend_from_slice(pw);
                    }
                    out.push(b'@');
                }
                out.extend_from_slice(&self.host);
                if let Some(port) = self.port {
                    out.push(b':');
                    super::text::push_decimal(out, port);
                }
                out.extend_from_slice(self.params.as_bytes());
                out.extend_from_slice(&self.headers);
            }
            Scheme::Tel => {
                if let Some(user) = &self.user {
                    out.extend_from_slice(user);
                }
                out.extend_from_slice(self.params.as_bytes());
            }
            Scheme::Other(_) => out.extend_from_slice(&self.opaque),
        }
    }

    /// The wire form as text, non-UTF-8 bytes replaced (one allocation
    /// when the URI is UTF-8, as it nearly always is).
    pub fn to_text(&self) -> String {
        let mut out = Vec::with_capacity(
            8 + self.user.as_ref().map_or(0, |u| u.len())
                + self.host.len()
                + self.params.as_bytes().len()
                + self.headers.len()
                + self.opaque.len(),
        );
        self.write_to(&mut out);
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// A `sip:` URI for a host and port, e.g. for Contact headers.
    pub fn sip(user: Option<&str>, host: &str, port: Option<u16>) -> Uri {
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        Uri {
            scheme: Scheme::Sip,
            user: user.map(|u| Bytes::copy_from_slice(u.as_bytes())),
            password: None,
            host: Bytes::from(host),
            port,
            params: Params::default(),
            headers: Bytes::new(),
            opaque: Bytes::new(),
        }
    }
}

fn parse_sip(src: &Bytes, rest: &[u8], uri: &mut Uri) -> Result<(), UriError> {
    // userinfo ends at the first '@' (neither host, params nor headers may
    // hold an unescaped '@'); it may itself hold ';', '?' and ':'.
    let hostport_start = match rest.iter().position(|&b| b == b'@') {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.iter().position(|&b| b == b':') {
                Some(c) => {
                    uri.user = Some(src.slice_ref(&userinfo[..c]));
                    uri.password = Some(src.slice_ref(&userinfo[c + 1..]));
                }
                None => uri.user = Some(src.slice_ref(userinfo)),
            }
            if userinfo.is_empty() {
                return Err(UriError::Host);
            }
            at + 1
        }
        None => 0,
    };
    let hp = &rest[hostport_start..];
    let (host_end, after_host) = if hp.first() == Some(&b'[') {
        let close = hp.iter().position(|&b| b == b']').ok_or(UriError::Host)?;
        (close + 1, close + 1)
    } else {
        let e = hp
            .iter()
            .position(|&b| matches!(b, b':' | b';' | b'?'))
            .unwrap_or(hp.len());
        (e, e)
    };
    let host = &hp[..host_end];
    if host.is_empty()
        || !host.iter().all(|&b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'[' | b']' | b':')
        })
    {
        return Err(UriError::Host);
    }
    uri.host = src.slice_ref(host);
    let mut tail = &hp[after_host..];
    if tail.first() == Some(&b':') {
        let e = tail
            .iter()
            .position(|&b| matches!(b, b';' | b'?'))
            .unwrap_or(tail.len());
        let port =
            super::text::parse_u64(&tail[1..e], u64::from(u16::MAX)).ok_or(UriError::Port)?;
        uri.port = Some(port as u16);
        tail = &tail[e..];
    }
    let q = tail.iter().position(|&b| b == b'?').unwrap_or(tail.len());
    uri.params = Params::from_raw(src.slice_ref(&tail[..q]));
    uri.params.validate().map_err(|_| UriError::Params)?;
    uri.headers = src.slice_ref(&tail[q..]);
    Ok(())
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl TryFrom<&Uri> for rsip::Uri {
    type Error = rsip::Error;
    /// Converts to rsip's URI. rsip drops URI headers and knows no `tel:`.
    fn try_from(u: &Uri) -> Result<rsip::Uri, rsip::Error> {
        rsip::Uri::try_from(u.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(s: &str) -> Uri {
        let u = Uri::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(u.to_string(), s, "round trip");
        u
    }

    #[test]
    fn sip_uri_parts() {
        let u = rt("sip:alice:secret@[2001:db8::1]:5070;transport=tcp;lr?Subject=hi");
        assert_eq!(u.user_str(), Some("alice"));
        assert_eq!(u.password.as_deref(), Some(&b"secret"[..]));
        assert_eq!(u.host_str(), "2001:db8::1");
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.transport_param().as_deref(), Some("tcp"));
        assert!(u.params.has("lr"));
        assert_eq!(&u.headers[..], b"?Subject=hi");
        assert_eq!(u.socket_addr(), "[2001:db8::1]:5070".parse().ok());
    }

    #[test]
    fn rfc4475_semiuri_user_holds_semicolon() {
        let u = rt("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user_str(), Some("user;par=u%40example.net"));
        assert_eq!(u.host_str(), "example.com");
    }

    #[test]
    fn rfc4475_intmeth_userinfo_with_question_mark() {
        let u = rt(
            "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
        );
        assert_eq!(
            u.user_str(),
            Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        );
        assert_eq!(u.host_str(), "example.com");
    }

    #[test]
    fn tel_and_other_schemes() {
        let t = rt("tel:+4930123;phone-context=example.com");
        assert_eq!(t.scheme, Scheme::Tel);
        assert_eq!(t.user_str(), Some("+4930123"));
        // rsip 0.4 cannot parse tel: at all.
        assert!(
            rsip::Uri::try_from("tel:+4930123")
                .map(|u| u.to_string())
                .ok()
                != Some("tel:+4930123".into())
        );
        let o = rt("nobodyKnowsThisScheme:totallyopaquecontent");
        assert!(matches!(o.scheme, Scheme::Other(_)));
        rt("soap.beep://192.0.2.103:3002");
    }

    #[test]
    fn uri_headers_kept_where_rsip_drops_them() {
        let u = rt("sip:user@example.com?Route=%3Csip:sip.example.com%3E");
        assert_eq!(&u.headers[..], b"?Route=%3Csip:sip.example.com%3E");
        let r = rsip::Uri::try_from(&u)
            .map(|r| r.to_string())
            .unwrap_or_default();
        assert!(!r.contains("Route"), "rsip loses URI headers: {r}");
    }

    #[test]
    fn bad_uris() {
        assert_eq!(Uri::parse("<sip:user@example.com>"), Err(UriError::Scheme));
        assert_eq!(Uri::parse("sip:user@example.com; lr"), Err(UriError::Char));
        assert_eq!(Uri::parse("sip:user@"), Err(UriError::Host));
        assert_eq!(Uri::parse("sip:host:70000"), Err(UriError::Port));
        assert_eq!(Uri::parse("sip:host;;"), Err(UriError::Params));
    }
}
