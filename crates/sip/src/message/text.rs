//! Byte-level helpers of the SIP grammar (RFC 3261 §25.1): LWS, tokens,
//! quoted strings and comma lists that respect quotes and angle brackets.

/// True for SP and HTAB.
#[inline]
pub(crate) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// True for any LWS octet, including the CR/LF of folded lines.
#[inline]
pub(crate) fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// True for an octet of the `token` rule.
#[inline]
pub(crate) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// True if `s` is a non-empty `token`.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_token_char(b))
}

/// Strips leading and trailing LWS.
pub(crate) fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_lws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_lws(b)).map_or(start, |i| i + 1);
    &s[start..end]
}

/// Length of the quoted string starting at `s[0] == b'"'`, including both
/// quotes, honouring `\` escapes. `None` when the closing quote is missing.
pub(crate) fn quoted_len(s: &[u8]) -> Option<usize> {
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Finds the first `sep` outside quoted strings and `<...>`.
pub(crate) fn find_unquoted(s: &[u8], sep: u8) -> Option<usize> {
    let mut i = 0;
    let mut angle = false;
    while i < s.len() {
        let b = s[i];
        if b == b'"' && !angle {
            i += quoted_len(&s[i..])?;
            continue;
        }
        if b == b'<' {
            angle = true;
        } else if b == b'>' {
            angle = false;
        } else if b == sep && !angle {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Iterates the comma-separated elements of a header value, skipping commas
/// inside quoted strings and `<...>`. Elements are trimmed of LWS; empty
/// elements are yielded as empty slices so that callers can reject them.
pub(crate) struct CommaSplit<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> CommaSplit<'a> {
    pub(crate) fn new(s: &'a [u8]) -> Self {
        CommaSplit { rest: Some(s) }
    }
}

impl<'a> Iterator for CommaSplit<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let s = self.rest?;
        match find_unquoted(s, b',') {
            Some(i) => {
                self.rest = Some(&s[i + 1..]);
                Some(trim(&s[..i]))
            }
            None => {
                self.rest = None;
                Some(trim(s))
            }
        }
    }
}

/// Parses a decimal number of at most `max` value; no sign, no spaces.
pub(crate) fn parse_u64(s: &[u8], max: u64) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    (v <= max).then_some(v)
}

/// Removes every CRLF/LF line break of a folded value, replacing each run of
/// `LWS` that contains a line break by a single space (RFC 3261 §7.3.1).
pub(crate) fn unfold(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b == b'\r' || b == b'\n' {
            while out.last().is_some_and(|&c| is_ws(c)) {
                out.pop();
            }
            while i < s.len() && is_lws(s[i]) {
                i += 1;
            }
            out.push(b' ');
            continue;
        }
        out.push(b);
        i += 1;
    }
    out
}

/// Appends `n` in decimal, without the allocation of `n.to_string()`
/// (ports are written into every Via, Contact and Request-URI).
pub(crate) fn push_decimal(out: &mut Vec<u8>, n: u16) {
    let mut digits = [0u8; 5];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comma_split_respects_quotes_and_angles() {
        let v: Vec<&[u8]> =
            CommaSplit::new(br#""a, b" <sip:x@y;p=1,2>, <sip:z>;q=0.5 ,"#).collect();
        assert_eq!(
            v,
            vec![
                &br#""a, b" <sip:x@y;p=1,2>"#[..],
                &b"<sip:z>;q=0.5"[..],
                &b""[..]
            ]
        );
    }

    #[test]
    fn unfold_joins_continuation_lines() {
        assert_eq!(unfold(b"a  \r\n  b\r\n\tc"), b"a b c");
    }

    #[test]
    fn numbers_are_bounded() {
        assert_eq!(parse_u64(b"4294967295", u32::MAX as u64), Some(4294967295));
        assert_eq!(parse_u64(b"4294967296", u32::MAX as u64), None);
        assert_eq!(parse_u64(b"36893488147419103232", u64::MAX), None);
        assert_eq!(parse_u64(b"-1", 10), None);
    }

    #[test]
    fn quoted_len_handles_escapes() {
        assert_eq!(quoted_len(br#""a\"b" x"#), Some(6));
        assert_eq!(quoted_len(br#""open"#), None);
    }

    #[test]
    fn decimals_as_to_string_writes_them() {
        for n in [0u16, 7, 10, 99, 5060, 65535] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }
}
