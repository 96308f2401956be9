//! Reading the caller's INVITE: header look-ups on [`CallView`].

use crate::{CallView, Header};

impl Header {
    /// A header field `name: value`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

impl CallView {
    /// The first value of the header `name`, if the INVITE has one.
    ///
    /// Names match case-insensitively, and compact forms work (`"i"` is the
    /// Call-ID, `"f"` the From), as in the Lua API's `call:header(name)`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).next()
    }

    /// Every value of the header `name`, in the order of the INVITE
    /// (case-insensitive, compact forms allowed).
    pub fn headers_named<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let name = canonical_name(name).to_owned();
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(&name))
            .map(|h| h.value.as_str())
    }
}

/// The full name of a compact header form (RFC 3261 and extensions), or
/// `name` itself. The host hands headers over with their full names.
fn canonical_name(name: &str) -> &str {
    if name.len() != 1 {
        return name;
    }
    match name.as_bytes()[0].to_ascii_lowercase() {
        b'a' => "Accept-Contact",
        b'b' => "Referred-By",
        b'c' => "Content-Type",
        b'd' => "Request-Disposition",
        b'e' => "Content-Encoding",
        b'f' => "From",
        b'i' => "Call-ID",
        b'j' => "Reject-Contact",
        b'k' => "Supported",
        b'l' => "Content-Length",
        b'm' => "Contact",
        b'n' => "Identity-Info",
        b'o' => "Event",
        b'r' => "Refer-To",
        b's' => "Subject",
        b't' => "To",
        b'u' => "Allow-Events",
        b'v' => "Via",
        b'x' => "Session-Expires",
        b'y' => "Identity",
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(headers: &[(&str, &str)]) -> CallView {
        CallView {
            user: "1000".into(),
            ruri: "sip:1000@127.0.0.1".into(),
            from: "sip:alice@127.0.0.1".into(),
            from_user: "alice".into(),
            from_name: String::new(),
            to: "sip:1000@127.0.0.1".into(),
            call_id: "abc".into(),
            source_ip: "127.0.0.1".into(),
            source_port: 5060,
            transport: "udp".into(),
            auth_user: None,
            headers: headers.iter().map(|(n, v)| Header::new(*n, *v)).collect(),
        }
    }

    #[test]
    fn header_is_case_insensitive_and_first() {
        let c = call(&[("Via", "a"), ("X-Account", "1"), ("x-account", "2")]);
        assert_eq!(c.header("X-ACCOUNT"), Some("1"));
        assert_eq!(c.header("x-missing"), None);
        assert_eq!(c.headers_named("x-account").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(c.headers_named("nope").count(), 0);
    }

    #[test]
    fn compact_forms() {
        let c = call(&[("Call-ID", "abc"), ("Via", "a"), ("Via", "b")]);
        assert_eq!(c.header("i"), Some("abc"));
        assert_eq!(c.headers_named("V").collect::<Vec<_>>(), ["a", "b"]);
        // An unknown single letter is looked up as it is.
        assert_eq!(c.header("q"), None);
    }
}
