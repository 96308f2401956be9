//! `;name=value` parameter lists of URIs and header values, kept as the
//! received bytes and read on demand (no allocation while parsing).

use super::text::{find_unquoted, is_token, quoted_len, trim};
use bytes::Bytes;

/// A parameter list, stored as received: empty, or starting with `;`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Bytes);

/// Why a parameter list is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// `;;` or a trailing `;`.
    #[error("empty parameter")]
    Empty,
    /// A name that is not a token.
    #[error("parameter name is not a token")]
    BadName,
    /// A value with an unbalanced quote or stray characters.
    #[error("malformed parameter value")]
    BadValue,
}

impl Params {
    /// Wraps raw parameter text (empty, or starting with `;`).
    pub fn from_raw(raw: Bytes) -> Params {
        Params(raw)
    }

    /// The raw text, starting with `;` unless empty.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The raw text as shared bytes.
    pub fn raw(&self) -> &Bytes {
        &self.0
    }

    /// True when there is no parameter.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates `(name, value)` pairs, names and values trimmed of LWS.
    pub fn iter(&self) -> ParamIter<'_> {
        ParamIter {
            rest: self.0.strip_prefix(b";").unwrap_or(&self.0),
            done: self.0.is_empty(),
        }
    }

    /// The parameter `name` (case-insensitive): `Some(None)` when present
    /// without a value.
    pub fn get(&self, name: &str) -> Option<Option<&[u8]>> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The value of `name` as a shared slice (quotes kept).
    pub fn get_bytes(&self, name: &str) -> Option<Bytes> {
        match self.get(name)? {
            Some(v) if !v.is_empty() => Some(self.0.slice_ref(v)),
            _ => None,
        }
    }

    /// True if `name` is present, with or without a value.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Checks the grammar: every parameter has a token name and a token,
    /// host or quoted-string value.
    pub fn validate(&self) -> Result<(), ParamsError> {
        if self.0.is_empty() {
            return Ok(());
        }
        for (name, value) in self.iter() {
            if name.is_empty() {
                return Err(ParamsError::Empty);
            }
            if !is_token(name) {
                return Err(ParamsError::BadName);
            }
            if let Some(v) = value {
                if v.first() == Some(&b'"') {
                    if quoted_len(v) != Some(v.len()) {
                        return Err(ParamsError::BadValue);
                    }
                } else if v.is_empty()
                    || !v
                        .iter()
                        .all(|&b| super::text::is_token_char(b) || matches!(b, b':' | b'[' | b']'))
                {
                    return Err(ParamsError::BadValue);
                }
            }
        }
        Ok(())
    }

    /// Returns a copy without the parameter `name`.
    pub fn without(&self, name: &str) -> Params {
        let mut out = Vec::with_capacity(self.0.len());
        for (n, v) in self.iter() {
            if n.is_empty() || n.eq_ignore_ascii_case(name.as_bytes()) {
                continue;
            }
            out.push(b';');
            out.extend_from_slice(n);
            if let Some(v) = v {
                out.push(b'=');
                out.extend_from_slice(v);
            }
        }
        Params(Bytes::from(out))
    }

    /// Returns a copy with `name` set to `value` (replacing any existing one).
    pub fn with(&self, name: &str, value: Option<&[u8]>) -> Params {
        let mut out = self.without(name).0.to_vec();
        out.push(b';');
        out.extend_from_slice(name.as_bytes());
        if let Some(v) = value {
            out.push(b'=');
            out.extend_from_slice(v);
        }
        Params(Bytes::from(out))
    }
}

/// Iterator over a [`Params`] list.
#[derive(Debug)]
pub struct ParamIter<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = match find_unquoted(self.rest, b';') {
            Some(i) => {
                let item = &self.rest[..i];
                self.rest = &self.rest[i + 1..];
                item
            }
            None => {
                self.done = true;
                self.rest
            }
        };
        Some(match item.iter().position(|&b| b == b'=') {
            Some(eq) => (trim(&item[..eq]), Some(trim(&item[eq + 1..]))),
            None => (trim(item), None),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_tolerates_lws() {
        let p = Params::from_raw(Bytes::from_static(b" ;   tag    = 1918181833n ; lr"));
        // The leading LWS belongs to the element before the first ';'.
        let p2 = Params::from_raw(Bytes::from_static(b";   tag    = 1918181833n ; lr"));
        assert_eq!(p2.get("TAG"), Some(Some(&b"1918181833n"[..])));
        assert!(p2.has("lr"));
        assert!(p2.validate().is_ok());
        assert!(p.validate().is_err());
    }

    #[test]
    fn empty_params_are_invalid() {
        let p = Params::from_raw(Bytes::from_static(b";;;"));
        assert_eq!(p.validate(), Err(ParamsError::Empty));
    }

    #[test]
    fn with_replaces() {
        let p = Params::from_raw(Bytes::from_static(b";branch=z9hG4bKx;rport"));
        let p = p
            .with("rport", Some(b"5060"))
            .with("received", Some(b"127.0.0.1"));
        assert_eq!(
            p.as_bytes(),
            b";branch=z9hG4bKx;rport=5060;received=127.0.0.1"
        );
    }
}
