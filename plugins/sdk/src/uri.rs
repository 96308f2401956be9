//! The user part of `sip:`, `sips:` and `tel:` URIs, in a bare URI
//! (`sip:alice@192.0.2.1;transport=tcp`) or a name-addr as headers carry it
//! (`"Alice" <sip:alice@192.0.2.1>;tag=1`).
//!
//! ```
//! use tandem_plugin::uri;
//!
//! assert_eq!(uri::user("<sip:0301234@192.0.2.1;user=phone>"), Some("0301234"));
//! assert_eq!(
//!     uri::with_user("sip:0301234@192.0.2.1;user=phone", "+49301234").as_deref(),
//!     Some("sip:+49301234@192.0.2.1;user=phone")
//! );
//! assert_eq!(
//!     uri::with_user("\"Alice\" <tel:0301234;phone-context=x>", "+49301234").as_deref(),
//!     Some("\"Alice\" <tel:+49301234;phone-context=x>")
//! );
//! ```

use std::ops::Range;

/// Where the user part is, and whether an `@` follows it (a `sip:` URI
/// without a user has none, so a new user needs one).
struct UserPart {
    span: Range<usize>,
    has_at: bool,
}

/// The user part of the URI in `s` (for `tel:`, the number), if `s` is or
/// holds a `sip:`, `sips:` or `tel:` URI with a user. A `:password` is not
/// part of the user; user parameters (`;npdi`) are.
pub fn user(s: &str) -> Option<&str> {
    let part = locate(s)?;
    Some(&s[part.span]).filter(|user| !user.is_empty())
}

/// `s` with the user part of its URI replaced by `user` (added to a
/// `sip:` URI that has none; an empty `user` removes it). Everything else,
/// display name, brackets and parameters, is kept. `None` if `s` holds no
/// `sip:`, `sips:` or `tel:` URI.
pub fn with_user(s: &str, user: &str) -> Option<String> {
    let UserPart { span, has_at } = locate(s)?;
    let mut out = String::with_capacity(s.len() + user.len() + 1);
    out.push_str(&s[..span.start]);
    out.push_str(user);
    match (has_at, user.is_empty()) {
        // "sip:host" gets "user@"; "sip:user@host" loses "user@".
        (false, false) => out.push('@'),
        (true, true) if s[span.end..].starts_with(':') || s[span.end..].starts_with('@') => {
            let at = s[span.end..]
                .find('@')
                .map_or(span.end, |i| span.end + i + 1);
            out.push_str(&s[at..]);
            return Some(out);
        }
        _ => {}
    }
    out.push_str(&s[span.end..]);
    Some(out)
}

/// Finds the user part of the URI in `s`.
fn locate(s: &str) -> Option<UserPart> {
    let (start, end) = uri_bounds(s);
    let uri = &s[start..end];
    let colon = uri.find(':')?;
    let scheme = &uri[..colon];
    let rest = start + colon + 1;
    if scheme.eq_ignore_ascii_case("tel") {
        let len = s[rest..end].find(';').unwrap_or(end - rest);
        return Some(UserPart {
            span: rest..rest + len,
            has_at: true,
        });
    }
    if !(scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")) {
        return None;
    }
    let body = &s[rest..end];
    // The user info ends at the '@' before the host; URI headers ('?')
    // come after the host.
    let before_headers = &body[..body.find('?').unwrap_or(body.len())];
    Some(match before_headers.find('@') {
        Some(at) => {
            let user_len = body[..at].find(':').unwrap_or(at);
            UserPart {
                span: rest..rest + user_len,
                has_at: true,
            }
        }
        None => UserPart {
            span: rest..rest,
            has_at: false,
        },
    })
}

/// The byte range of the URI in `s`: inside `<…>` if there are brackets
/// (after any quoted display name), else `s` without surrounding spaces.
fn uri_bounds(s: &str) -> (usize, usize) {
    let after_name = quoted_end(s);
    if let Some(open) = s[after_name..].find('<') {
        let start = after_name + open + 1;
        let end = s[start..].find('>').map_or(s.len(), |i| start + i);
        return (start, end);
    }
    let start = s.len() - s.trim_start().len();
    let end = s.trim_end().len().max(start);
    (start, end)
}

/// Where a leading quoted display name ends (0 if there is none).
fn quoted_end(s: &str) -> usize {
    let trimmed = s.trim_start();
    if !trimmed.starts_with('"') {
        return 0;
    }
    let offset = s.len() - trimmed.len();
    let mut escaped = false;
    for (i, c) in trimmed.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return offset + i + 1,
            _ => {}
        }
    }
    s.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users() {
        assert_eq!(user("sip:alice@127.0.0.1"), Some("alice"));
        assert_eq!(user("SIPS:bob:secret@127.0.0.1:5061"), Some("bob"));
        assert_eq!(user("sip:127.0.0.1;transport=tcp"), None);
        assert_eq!(user("tel:+4930123;phone-context=x"), Some("+4930123"));
        assert_eq!(user("\"A <b> @c\" <sip:x@h>;tag=1"), Some("x"));
        assert_eq!(user("Alice <sip:+4930;npdi@h>"), Some("+4930;npdi"));
        assert_eq!(user("  sip:a@h  "), Some("a"));
        assert_eq!(user("sip:h?subject=a@b"), None);
        assert_eq!(user("mailto:a@h"), None);
        assert_eq!(user("<urn:service:sos>"), None);
        assert_eq!(user(""), None);
    }

    #[test]
    fn replace() {
        let w = |s, u| with_user(s, u);
        assert_eq!(
            w("sip:0301234@10.0.0.1:5060;user=phone", "+49301234").as_deref(),
            Some("sip:+49301234@10.0.0.1:5060;user=phone")
        );
        assert_eq!(
            w("\"Zentrale\" <sip:030@h>;tag=9", "+4930").as_deref(),
            Some("\"Zentrale\" <sip:+4930@h>;tag=9")
        );
        assert_eq!(
            w("<tel:030;x=y>", "+4930").as_deref(),
            Some("<tel:+4930;x=y>")
        );
        assert_eq!(w("tel:030", "+4930").as_deref(), Some("tel:+4930"));
        assert_eq!(w("sip:h;lr", "u").as_deref(), Some("sip:u@h;lr"));
        assert_eq!(w("sip:a:pw@h", "b").as_deref(), Some("sip:b:pw@h"));
        assert_eq!(w("sip:a:pw@h", "").as_deref(), Some("sip:h"));
        assert_eq!(w("sip:a@h", "").as_deref(), Some("sip:h"));
        assert_eq!(w("sip:h", "").as_deref(), Some("sip:h"));
        assert_eq!(w("http://x", "u"), None);
    }
}
