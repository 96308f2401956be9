//! Checks every engine applies to what a script asks for, so that Lua and
//! Wasm refuse the same things with the same words: no header injection, no
//! editing of the headers that make the B leg's dialog, no status code that
//! is not a final failure.

/// Why the API refused a call from a script.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Not a header name (RFC 3261 token).
    #[error("`{0}` is not a valid header name")]
    BadHeaderName(String),
    /// The header belongs to the B leg's dialog; Tandem writes it.
    #[error("header `{0}` is managed by Tandem and cannot be changed{1}")]
    ManagedHeader(String, &'static str),
    /// A value with CR, LF or NUL (header injection).
    #[error("value for `{0}` contains a line break or NUL")]
    BadValue(String),
    /// A display name with a quote or backslash (it is written quoted).
    #[error("a display name cannot hold `\"` or `\\`")]
    BadDisplayName,
    /// Not a sip:, sips: or tel: URI.
    #[error("`{0}` is not a sip:, sips: or tel: URI")]
    BadUri(String),
    /// Not a status code a call can be rejected with.
    #[error("{0} is not a final failure code (300-699)")]
    BadRejectCode(u16),
    /// A dial target Tandem cannot reach (it does no DNS).
    #[error(
        "`{0}` is not a sip: or sips: URI with an IP address (Tandem does not resolve host names)"
    )]
    Unreachable(String),
    /// A dial with no target.
    #[error("dial needs at least one target")]
    NoTarget,
    /// A bad dial option.
    #[error("bad dial option: {0}")]
    BadOption(String),
}

/// The compact forms of RFC 3261 §7.3.3 (and extensions) expanded.
pub fn canonical_name(name: &str) -> &str {
    if name.len() != 1 {
        return name;
    }
    match name.as_bytes()[0].to_ascii_lowercase() {
        b'i' => "Call-ID",
        b'm' => "Contact",
        b'e' => "Content-Encoding",
        b'l' => "Content-Length",
        b'c' => "Content-Type",
        b'f' => "From",
        b's' => "Subject",
        b'k' => "Supported",
        b't' => "To",
        b'v' => "Via",
        b'o' => "Event",
        b'u' => "Allow-Events",
        b'r' => "Refer-To",
        b'b' => "Referred-By",
        b'x' => "Session-Expires",
        _ => name,
    }
}

/// Headers the core writes on every B leg. A script changes From with
/// `set_from` and the Request-URI with `set_ruri`; the others are not its
/// to touch.
const MANAGED: [(&str, &str); 14] = [
    ("Via", ""),
    ("From", "; use set_from"),
    ("To", "; use set_ruri"),
    ("Call-ID", ""),
    ("CSeq", ""),
    ("Contact", ""),
    ("Max-Forwards", ""),
    ("Content-Length", ""),
    ("Content-Type", ""),
    ("Record-Route", ""),
    ("Route", ""),
    ("RSeq", ""),
    ("RAck", ""),
    ("Session-Expires", ""),
];

/// Checks a header name a script wants to set, add or remove.
pub fn editable_header(name: &str) -> Result<&str, ApiError> {
    if name.is_empty() || !name.bytes().all(is_token_char) {
        return Err(ApiError::BadHeaderName(name.to_string()));
    }
    let name = canonical_name(name);
    if let Some((managed, hint)) = MANAGED.iter().find(|(m, _)| m.eq_ignore_ascii_case(name)) {
        return Err(ApiError::ManagedHeader(managed.to_string(), hint));
    }
    Ok(name)
}

/// Checks a header value (or display name, or user) for injection.
pub fn value(what: &str, value: &str) -> Result<(), ApiError> {
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(ApiError::BadValue(what.to_string()));
    }
    Ok(())
}

/// Checks a header a script sets or adds: an editable name and a value
/// without line breaks; gives back the canonical name and the value.
pub fn header(name: &str, value: String) -> Result<(String, String), ApiError> {
    let name = editable_header(name)?.to_string();
    self::value(&name, &value)?;
    Ok((name, value))
}

/// Checks a display name for `set_from`: no line breaks, and no quote or
/// backslash (it is written between quotes).
pub fn display_name(name: &str) -> Result<(), ApiError> {
    value("name", name)?;
    if name.contains('"') || name.contains('\\') {
        return Err(ApiError::BadDisplayName);
    }
    Ok(())
}

/// Checks a URI a script routes to: scheme and no whitespace.
pub fn uri(uri: &str) -> Result<(), ApiError> {
    let scheme_ok = ["sip:", "sips:", "tel:"]
        .iter()
        .any(|scheme| strip_prefix_ignore_case(uri, scheme).is_some());
    if !scheme_ok || uri.len() <= 4 || uri.bytes().any(|b| b.is_ascii_whitespace() || b == 0) {
        return Err(ApiError::BadUri(uri.to_string()));
    }
    Ok(())
}

/// The user of a `user:NAME` dial target (every registered contact of
/// NAME), if `target` is one.
pub fn registered_user(target: &str) -> Option<&str> {
    strip_prefix_ignore_case(target, "user:")
}

/// `s` without `prefix`, which it starts with in any letter case.
fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    s.get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .map(|_| &s[prefix.len()..])
}

/// Checks a dial target: `user:NAME` (a registered user), or a sip: URI
/// whose host is an IP address (the core resolves no names and has no TLS
/// transport for sips: yet), so that a script learns at the line of the
/// dial, not from a silent 404.
pub fn dial_target(target: &str) -> Result<(), ApiError> {
    if let Some(name) = registered_user(target) {
        return user(name).map_err(|_| ApiError::BadUri(target.to_string()));
    }
    uri(target)?;
    let rest = strip_prefix_ignore_case(target, "sip:")
        .ok_or_else(|| ApiError::Unreachable(target.to_string()))?;
    // Byte scans: `split` with a set of chars runs a char searcher, and a
    // dial plan checks a target on every call.
    let hostport = match rest.bytes().rposition(|b| b == b'@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        &v6[..v6.bytes().position(|b| b == b']').unwrap_or(v6.len())]
    } else {
        let end = hostport
            .bytes()
            .position(|b| matches!(b, b':' | b';' | b'?'))
            .unwrap_or(hostport.len());
        &hostport[..end]
    };
    host.parse::<std::net::IpAddr>()
        .map(|_| ())
        .map_err(|_| ApiError::Unreachable(target.to_string()))
}

/// Checks a reject code.
pub fn reject_code(code: u16) -> Result<(), ApiError> {
    if (300..700).contains(&code) {
        Ok(())
    } else {
        Err(ApiError::BadRejectCode(code))
    }
}

/// The arguments of a script's reject (`call:reject`, `reg:reject`): a
/// final failure code and a reason phrase (the usual one when omitted).
pub fn reject(code: u16, reason: Option<String>) -> Result<(u16, String), ApiError> {
    reject_code(code)?;
    let reason = reason.unwrap_or_else(|| crate::command::reason_phrase(code).to_string());
    value("reason", &reason)?;
    Ok((code, reason))
}

/// A user part for `set_from`: characters RFC 3261 allows unescaped.
pub fn user(user: &str) -> Result<(), ApiError> {
    let ok = !user.is_empty()
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/%".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadValue(format!("user `{user}`")))
    }
}

/// Longest ring time a dial may ask for.
pub const MAX_DIAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

/// Seconds from a script as a duration, clamped to `max` (positive and
/// finite only): `Duration::from_secs_f64` panics on huge values.
pub fn seconds(secs: f64, max: std::time::Duration) -> Option<std::time::Duration> {
    (secs > 0.0 && secs.is_finite())
        .then(|| std::time::Duration::from_secs_f64(secs.min(max.as_secs_f64())))
}

/// Checks a per-call variable: a name without line breaks, and a string
/// value without them either.
pub fn var(name: &str, value: Option<&crate::Value>) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(ApiError::BadValue("variable name".into()));
    }
    self::value("variable name", name)?;
    if let Some(crate::Value::Str(s)) = value {
        self::value(name, s)?;
    }
    Ok(())
}

/// Checks a B-leg edit however it was made (a Lua method, a plugin's
/// answer, a script's change to that answer): the same rules for all.
/// Other commands pass.
pub fn edit(edit: &crate::Command) -> Result<(), ApiError> {
    use crate::Command;
    match edit {
        Command::SetHeader { name, value } | Command::AddHeader { name, value } => {
            editable_header(name)?;
            self::value(name, value)
        }
        Command::RemoveHeader { name } => editable_header(name).map(|_| ()),
        Command::SetRuri { uri } => self::uri(uri),
        Command::SetFrom { user, name } => {
            if let Some(u) = user {
                self::user(u)?;
            }
            match name {
                Some(n) => display_name(n),
                None => Ok(()),
            }
        }
        Command::SetVar { name, value } => var(name, value.as_ref()),
        _ => Ok(()),
    }
}

/// [`edit`], giving back the edit with canonical header names (compact
/// forms expanded), as the core expects them.
pub fn checked_edit(edit: crate::Command) -> Result<crate::Command, ApiError> {
    use crate::Command;
    let edit = match edit {
        Command::SetHeader { name, value } => Command::SetHeader {
            name: editable_header(&name)?.to_string(),
            value,
        },
        Command::AddHeader { name, value } => Command::AddHeader {
            name: editable_header(&name)?.to_string(),
            value,
        },
        Command::RemoveHeader { name } => Command::RemoveHeader {
            name: editable_header(&name)?.to_string(),
        },
        other => other,
    };
    self::edit(&edit)?;
    Ok(edit)
}

/// Checks a dial however it was made: targets, headers, and a ring time
/// of at most [`MAX_DIAL_TIMEOUT`].
pub fn dial_request(request: &crate::DialRequest) -> Result<(), ApiError> {
    for t in &request.targets {
        dial_target(&t.uri)?;
        for (n, v) in &t.headers {
            editable_header(n)?;
            self::value(n, v)?;
        }
    }
    for (n, v) in &request.headers {
        editable_header(n)?;
        self::value(n, v)?;
    }
    match request.timeout {
        Some(t) if t > MAX_DIAL_TIMEOUT => Err(ApiError::BadOption(format!(
            "timeout above {} s",
            MAX_DIAL_TIMEOUT.as_secs()
        ))),
        _ => Ok(()),
    }
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_seconds_are_clamped_not_a_panic() {
        let max = std::time::Duration::from_secs(60);
        assert_eq!(seconds(1e300, max), Some(max));
        assert_eq!(seconds(f64::NAN, max), None);
        assert_eq!(seconds(-1.0, max), None);
        assert_eq!(
            seconds(1.5, max),
            Some(std::time::Duration::from_millis(1500))
        );
    }

    #[test]
    fn edits_are_checked_alike() {
        use crate::{Command, Value};
        assert!(
            edit(&Command::SetVar {
                name: "a".into(),
                value: Some(Value::Str("x\r\nVia: y".into()))
            })
            .is_err()
        );
        assert!(
            edit(&Command::SetVar {
                name: "".into(),
                value: None
            })
            .is_err()
        );
        assert!(
            edit(&Command::SetHeader {
                name: "Via".into(),
                value: "x".into()
            })
            .is_err()
        );
        assert!(
            edit(&Command::SetFrom {
                user: Some("a b".into()),
                name: None
            })
            .is_err()
        );
        assert!(
            edit(&Command::SetRuri {
                uri: "http://x".into()
            })
            .is_err()
        );
        assert!(
            edit(&Command::AddHeader {
                name: "X-A".into(),
                value: "1".into()
            })
            .is_ok()
        );
    }

    #[test]
    fn managed_headers_are_refused_in_any_case_and_form() {
        assert!(editable_header("X-Foo").is_ok());
        assert!(editable_header("User-Agent").is_ok());
        assert!(matches!(
            editable_header("call-id"),
            Err(ApiError::ManagedHeader(..))
        ));
        assert!(matches!(
            editable_header("i"),
            Err(ApiError::ManagedHeader(..))
        ));
        assert!(matches!(
            editable_header("X Foo"),
            Err(ApiError::BadHeaderName(_))
        ));
        let e = editable_header("From").unwrap_err().to_string();
        assert!(e.contains("set_from"), "{e}");
    }

    #[test]
    fn values_and_uris() {
        assert!(value("X-A", "ok value").is_ok());
        assert!(value("X-A", "evil\r\nVia: x").is_err());
        assert!(uri("sip:1000@127.0.0.1:5080").is_ok());
        assert!(uri("sips:a@b").is_ok());
        assert!(uri("tel:+4930123").is_ok());
        assert!(uri("http://x").is_err());
        assert!(uri("sip:a b@c").is_err());
        assert!(uri("sip:").is_err());
        assert!(dial_target("sip:1000@127.0.0.1:5080;transport=tcp").is_ok());
        assert!(dial_target("sip:[::1]:5080").is_ok());
        assert!(dial_target("sip:x@127.0.0.1?Subject=a").is_ok());
        assert!(dial_target("sip:a@b@127.0.0.1;lr").is_ok());
        assert!(dial_target("sip:[::1").is_ok());
        assert!(dial_target("sip:a@[::1]x:5060").is_ok());
        assert!(dial_target("sip:a@").is_err());
        assert!(dial_target("sips:a@10.0.0.1").is_err());
        assert!(dial_target("sip:a@trunk.example.com").is_err());
        assert!(dial_target("tel:+4930123").is_err());
        assert!(dial_target("user:alice").is_ok());
        assert!(dial_target("USER:alice").is_ok());
        assert!(dial_target("user:").is_err());
        assert!(dial_target("user:a b").is_err());
        assert_eq!(registered_user("user:bob"), Some("bob"));
        assert_eq!(registered_user("sip:bob@127.0.0.1"), None);
        assert!(reject_code(486).is_ok());
        assert!(reject_code(200).is_err());
        assert!(user("+4930999").is_ok());
        assert_eq!(
            header("x-foo", "bar".into()),
            Ok(("x-foo".to_string(), "bar".to_string()))
        );
        assert!(header("i", "x".into()).is_err());
        assert!(header("X-A", "a\r\nB: c".into()).is_err());
        assert!(display_name("Sales").is_ok());
        assert!(display_name("Sa\"les").is_err());
        assert!(display_name("a\\b").is_err());
        assert!(user("a b").is_err());
    }
}
