//! `name-addr` / `addr-spec` values of From, To, Contact, Route and
//! Record-Route (RFC 3261 §20.10, §25.1).

use super::params::Params;
use super::text::{is_token, quoted_len, trim};
use super::uri::{Uri, UriError};
use bytes::Bytes;

/// Why a name-addr is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameAddrError {
    /// A display name with an unbalanced quote.
    #[error("unbalanced quote in display name")]
    Quote,
    /// An unquoted display name that is not a sequence of tokens.
    #[error("display name must be quoted")]
    DisplayName,
    /// `<` without `>` or text between `>` and the parameters.
    #[error("malformed angle brackets")]
    Angle,
    /// An addr-spec outside `<>` that holds `?` or `,`.
    #[error("URI with headers must be enclosed in angle brackets")]
    BareUri,
    /// The URI itself.
    #[error("{0}")]
    Uri(#[from] UriError),
    /// The header parameters.
    #[error("malformed header parameters")]
    Params,
}

/// A display name, URI and header parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name as written (quotes kept if it was quoted).
    pub display: Option<Bytes>,
    /// The URI.
    pub uri: Uri,
    /// Header parameters after the URI (`;tag=...`, `;expires=...`).
    pub params: Params,
}

impl NameAddr {
    /// Parses one value (already split at commas), sharing `src`.
    pub fn parse_shared(src: &Bytes, value: &[u8]) -> Result<NameAddr, NameAddrError> {
        let Parts {
            display,
            uri,
            params,
        } = split(value)?;
        let uri = Uri::parse_shared(src, uri)?;
        let params = Params::from_raw(src.slice_ref(params));
        params.validate().map_err(|_| NameAddrError::Params)?;
        Ok(NameAddr {
            display: display.map(|d| src.slice_ref(d)),
            uri,
            params,
        })
    }

    /// The display name (as written) and the URI of a value, without
    /// looking at its header parameters: what a call's view needs of its
    /// From and To, which the parser already checked whole.
    pub fn display_and_uri<'a>(
        src: &Bytes,
        value: &'a [u8],
    ) -> Result<(Option<&'a [u8]>, Uri), NameAddrError> {
        let parts = split(value)?;
        Ok((parts.display, Uri::parse_shared(src, parts.uri)?))
    }

    /// The `tag` parameter of a value, found without parsing its URI or
    /// checking its other parameters. Meant for values the parser already
    /// checked whole (From and To of a parsed message).
    pub fn tag_of(src: &Bytes, value: &[u8]) -> Option<Bytes> {
        let params = split(value).ok()?.params;
        Params::from_raw(src.slice_ref(params)).get_bytes("tag")
    }

    /// The value without its `tag` parameter, written as a name-addr
    /// (`display <uri>;params`), as a dialog's local and remote URI keep
    /// it; `None` when it has no tag (or does not split). Like
    /// [`NameAddr::tag_of`], for values the parser already checked.
    pub fn without_tag(src: &Bytes, value: &[u8]) -> Option<Bytes> {
        let parts = split(value).ok()?;
        let params = Params::from_raw(src.slice_ref(parts.params));
        params.get("tag")?;
        let rest = params.without("tag");
        let mut out = Vec::with_capacity(value.len() + 2);
        if let Some(d) = parts.display {
            out.extend_from_slice(d);
            out.push(b' ');
        }
        out.push(b'<');
        out.extend_from_slice(parts.uri);
        out.push(b'>');
        out.extend_from_slice(rest.as_bytes());
        Some(Bytes::from(out))
    }

    /// Parses a value from text.
    pub fn parse(s: &str) -> Result<NameAddr, NameAddrError> {
        let src = Bytes::copy_from_slice(s.as_bytes());
        NameAddr::parse_shared(&src, &src)
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<Bytes> {
        self.params.get_bytes("tag")
    }

    /// The display name without quotes and escapes.
    pub fn display_text(&self) -> Option<String> {
        let d = self.display.as_deref()?;
        let d = d
            .strip_prefix(b"\"")
            .and_then(|d| d.strip_suffix(b"\""))
            .unwrap_or(d);
        let mut out = Vec::with_capacity(d.len());
        let mut i = 0;
        while i < d.len() {
            if d[i] == b'\\' && i + 1 < d.len() {
                i += 1;
            }
            out.push(d[i]);
            i += 1;
        }
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    /// A name-addr with no display name and no parameters.
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr {
            display: None,
            uri,
            params: Params::default(),
        }
    }

    /// The wire form; always uses `<>` around the URI.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(64);
        if let Some(d) = &self.display {
            out.extend_from_slice(d);
            out.push(b' ');
        }
        out.push(b'<');
        self.uri.write_to(&mut out);
        out.push(b'>');
        out.extend_from_slice(self.params.as_bytes());
        Bytes::from(out)
    }
}

/// The pieces of a name-addr or addr-spec value, as written.
struct Parts<'a> {
    display: Option<&'a [u8]>,
    uri: &'a [u8],
    params: &'a [u8],
}

/// A value split into display name, URI and header parameters (RFC 3261
/// §25.1 `name-addr` / `addr-spec`), with the checks of everything but
/// the URI and the parameters themselves.
fn split(value: &[u8]) -> Result<Parts<'_>, NameAddrError> {
    let s = trim(value);
    let (display, rest): (Option<&[u8]>, &[u8]) = if s.first() == Some(&b'"') {
        let q = quoted_len(s).ok_or(NameAddrError::Quote)?;
        let rest = trim(&s[q..]);
        if rest.first() != Some(&b'<') {
            return Err(NameAddrError::Angle);
        }
        (Some(&s[..q]), rest)
    } else if let Some(lt) = s.iter().position(|&b| b == b'<') {
        let d = trim(&s[..lt]);
        if !d.is_empty()
            && !d
                .split(|&b| b == b' ' || b == b'\t')
                .all(|t| t.is_empty() || is_token(t))
        {
            return Err(NameAddrError::DisplayName);
        }
        ((!d.is_empty()).then_some(d), &s[lt..])
    } else {
        // addr-spec: header parameters start at the first ';'.
        let semi = s.iter().position(|&b| b == b';').unwrap_or(s.len());
        let spec = trim(&s[..semi]);
        if spec.iter().any(|&b| b == b'?' || b == b',') {
            return Err(NameAddrError::BareUri);
        }
        if spec.contains(&b'"') {
            return Err(NameAddrError::Quote);
        }
        return Ok(Parts {
            display: None,
            uri: spec,
            params: &s[semi..],
        });
    };
    let gt = rest
        .iter()
        .position(|&b| b == b'>')
        .ok_or(NameAddrError::Angle)?;
    let after = trim(&rest[gt + 1..]);
    if !after.is_empty() && after[0] != b';' {
        return Err(NameAddrError::Angle);
    }
    Ok(Parts {
        display,
        uri: &rest[1..gt],
        params: after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_tag_writes_what_the_parsed_form_writes() {
        for v in [
            r#""Bob" <sip:bob@h;transport=tcp>;tag=1;x=2"#,
            "Bob <sip:bob@h>;Tag=up",
            "sip:bob@h;tag=bare;lr",
            "<sip:bob@h?Subject=x>;tag=t",
        ] {
            let src = Bytes::copy_from_slice(v.as_bytes());
            let mut parsed = NameAddr::parse_shared(&src, &src).unwrap();
            parsed.params = parsed.params.without("tag");
            assert_eq!(
                NameAddr::without_tag(&src, &src),
                Some(parsed.to_bytes()),
                "{v}"
            );
        }
        let no_tag = Bytes::from_static(b"<sip:bob@h;tag=uri-param>");
        assert_eq!(NameAddr::without_tag(&no_tag, &no_tag), None);
    }

    #[test]
    fn tag_of_finds_what_the_parser_finds() {
        for v in [
            r#""J Rosenberg \""       <sip:jdrosen@example.com> ; tag = 98asjd8"#,
            r#""a <b>; tag=no" <sip:a@h;tag=uri-param>;tag=yes;x=1"#,
            "Bob <sip:bob@h>;Tag=up",
            "sip:bob@h;tag=bare;lr",
            "<sip:bob@h;transport=tcp>",
            "sip:bob@h",
            "<sip:bob@h?Subject=x;tag=hdr>;tag=t",
        ] {
            let src = Bytes::copy_from_slice(v.as_bytes());
            let parsed = NameAddr::parse_shared(&src, &src).unwrap().tag();
            assert_eq!(NameAddr::tag_of(&src, &src), parsed, "{v}");
        }
    }

    #[test]
    fn forms() {
        let n = NameAddr::parse(
            r#""J Rosenberg \\\""       <sip:jdrosen@example.com> ; tag = 98asjd8"#,
        )
        .unwrap();
        assert_eq!(n.tag().as_deref(), Some(&b"98asjd8"[..]));
        assert_eq!(n.display_text().as_deref(), Some(r#"J Rosenberg \""#));
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display.as_deref(), Some(&b"caller"[..]));
        let n = NameAddr::parse("sip:+19725552222@gw1.example.net;unknownparam").unwrap();
        assert!(n.params.has("unknownparam"));
        assert!(n.uri.params.is_empty());
        let n = NameAddr::parse("<sip:+19725552222@gw1.example.net;unknownparam>").unwrap();
        assert!(n.uri.params.has("unknownparam"));
        assert_eq!(
            NameAddr::parse("sip:a@b;tag=1").unwrap().tag().as_deref(),
            Some(&b"1"[..])
        );
    }

    #[test]
    fn rfc4475_bad_name_addrs() {
        assert_eq!(
            NameAddr::parse(r#""Mr. J. User <sip:j.user@example.com>"#),
            Err(NameAddrError::Quote)
        );
        assert_eq!(
            NameAddr::parse("Bell, Alexander <sip:a.g.bell@example.com>;tag=43"),
            Err(NameAddrError::DisplayName)
        );
        assert!(NameAddr::parse(r#""Watson, Thomas" < sip:t.watson@example.org >"#).is_err());
        assert_eq!(
            NameAddr::parse("sip:user@example.com?Route=%3Csip:sip.example.com%3E"),
            Err(NameAddrError::BareUri)
        );
        assert_eq!(
            NameAddr::parse(r#""Joe" <sip:joe@example.org>;;;;"#),
            Err(NameAddrError::Params)
        );
    }
}
