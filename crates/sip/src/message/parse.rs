//! Parsing of one complete message (RFC 3261 §7): start line, headers
//! (compact forms, folding, LWS before the colon, bare-LF line ends,
//! comma-joined lists split), body framed by Content-Length, and the checks
//! whose failure is answered with 400 or 505.
//!
//! The message keeps slices of the input buffer: the only copies are of
//! folded header values, which must be joined.

use super::cseq::CSeq;
use super::header::{Header, HeaderName, Headers};
use super::method::Method;
use super::name_addr::NameAddr;
use super::text::{CommaSplit, is_token, is_ws, parse_u64, trim, unfold};
use super::uri::Uri;
use super::via::Via;
use super::{Message, StartLine};
use bytes::Bytes;
use std::fmt;

/// What is wrong with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// Nothing but line breaks (a keep-alive).
    Empty,
    /// The request line is not `Method SP URI SP SIP/2.0`.
    RequestLine(&'static str),
    /// The status line is malformed or the code is not 100–699.
    StatusLine,
    /// A SIP version other than 2.0 (answered with 505).
    Version,
    /// A header line without a colon or with a name that is not a token.
    HeaderLine,
    /// A mandatory header is missing.
    Missing(&'static str),
    /// A header that may appear once appears more than once.
    Duplicate(HeaderName),
    /// A header value does not follow its grammar.
    Header(HeaderName, String),
    /// Content-Length is not a number, or several disagree.
    ContentLength,
    /// Content-Length is larger than the body received.
    Truncated,
    /// The message exceeds the size limit (answered with 513).
    TooLarge,
}

impl ParseErrorKind {
    /// The status code and reason phrase that answer a request with this
    /// error.
    pub fn status(&self) -> (u16, String) {
        match self {
            ParseErrorKind::Version => (505, "Version Not Supported".into()),
            ParseErrorKind::TooLarge => (513, "Message Too Large".into()),
            other => (400, format!("Bad Request ({other})")),
        }
    }
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseErrorKind::Empty => f.write_str("empty message"),
            ParseErrorKind::RequestLine(why) => write!(f, "malformed request line: {why}"),
            ParseErrorKind::StatusLine => f.write_str("malformed status line"),
            ParseErrorKind::Version => f.write_str("unsupported SIP version"),
            ParseErrorKind::HeaderLine => f.write_str("malformed header line"),
            ParseErrorKind::Missing(h) => write!(f, "missing {h} header"),
            ParseErrorKind::Duplicate(h) => write!(f, "duplicate {h} header"),
            ParseErrorKind::Header(h, why) => write!(f, "malformed {h} header: {why}"),
            ParseErrorKind::ContentLength => f.write_str("invalid Content-Length"),
            ParseErrorKind::Truncated => f.write_str("body shorter than Content-Length"),
            ParseErrorKind::TooLarge => f.write_str("message too large"),
        }
    }
}

/// A message that could not be parsed, with what could be read of it so
/// that a request can still be answered.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}")]
pub struct ParseError {
    /// What is wrong.
    pub kind: ParseErrorKind,
    /// True when the start line looked like a request (only requests are
    /// answered; bad responses are dropped).
    pub is_request: bool,
    /// The header fields read before the error.
    pub headers: Headers,
}

/// Parses a message that arrived in one datagram (UDP): the body is what
/// follows the headers, cut to Content-Length when one is given.
pub fn parse_datagram(data: Bytes) -> Result<Message, ParseError> {
    parse(data, false)
}

/// Parses one message cut out of a stream by [`super::frame_stream`]:
/// Content-Length is mandatory.
pub fn parse_stream_message(data: Bytes) -> Result<Message, ParseError> {
    parse(data, true)
}

struct Lines<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Lines<'a> {
    /// The next line without its line break, and the offset after it.
    fn next_line(&mut self) -> Option<&'a [u8]> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.pos..];
        match memchr::memchr(b'\n', rest) {
            Some(i) => {
                self.pos += i + 1;
                let line = &rest[..i];
                Some(line.strip_suffix(b"\r").unwrap_or(line))
            }
            None => {
                self.pos = self.buf.len();
                Some(rest)
            }
        }
    }

    fn peek_continuation(&self) -> bool {
        self.buf.get(self.pos).is_some_and(|&b| is_ws(b))
    }
}

fn parse(data: Bytes, stream: bool) -> Result<Message, ParseError> {
    let buf: &[u8] = &data;
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .ok_or_else(|| err(ParseErrorKind::Empty, false, Headers::default()))?;
    let mut lines = Lines { buf, pos: start };
    let first = lines.next_line().unwrap_or_default();
    let is_request = !first.starts_with(b"SIP/");
    let start_line = parse_start_line(&data, first);

    // 13 headers (72 bytes each) stay below glibc's large-request size
    // (a 1 KiB chunk): a larger first allocation made every parse
    // consolidate the allocator's fast bins (BENCHMARKS.md, Lua dial plans).
    let mut headers = Headers::with_capacity(13);
    let mut header_err: Option<ParseErrorKind> = None;
    let mut body_start = buf.len();
    loop {
        let line_start = lines.pos;
        let Some(line) = lines.next_line() else {
            // No empty line: on a datagram the headers end with the data.
            break;
        };
        if line.is_empty() {
            body_start = lines.pos;
            break;
        }
        let mut line_end = line_start + line.len();
        let mut folded = false;
        while lines.peek_continuation() {
            lines.next_line();
            folded = true;
            line_end = lines.pos;
        }
        if folded {
            // Trim the final line break of the last continuation line.
            while line_end > line_start && matches!(buf[line_end - 1], b'\r' | b'\n') {
                line_end -= 1;
            }
        }
        let raw = &buf[line_start..line_end];
        if let Err(kind) = split_header(&data, raw, folded, &mut headers) {
            header_err.get_or_insert(kind);
        }
    }

    let fail = |kind: ParseErrorKind, headers: Headers| Err(err(kind, is_request, headers));
    let start_line = match start_line {
        Ok(s) => s,
        Err(kind) => return fail(kind, headers),
    };
    if let Some(kind) = header_err {
        return fail(kind, headers);
    }
    if let Err(kind) = validate(&start_line, &headers) {
        return fail(kind, headers);
    }

    let content_length = match content_length(&headers) {
        Ok(n) => n,
        Err(kind) => return fail(kind, headers),
    };
    let available = buf.len() - body_start.min(buf.len());
    let body = match content_length {
        Some(n) if n > available => return fail(ParseErrorKind::Truncated, headers),
        Some(n) => data.slice(body_start..body_start + n),
        None if stream => return fail(ParseErrorKind::Missing("Content-Length"), headers),
        None => data.slice(body_start.min(buf.len())..),
    };
    Ok(Message {
        start: start_line,
        headers,
        body,
    })
}

/// The Content-Length, when given; several must agree (RFC 4475 `mcl01`).
fn content_length(headers: &Headers) -> Result<Option<usize>, ParseErrorKind> {
    let mut length: Option<usize> = None;
    for v in headers.get_all(&HeaderName::ContentLength) {
        let n =
            parse_u64(trim(v), u64::from(u32::MAX)).ok_or(ParseErrorKind::ContentLength)? as usize;
        if length.is_some_and(|c| c != n) {
            return Err(ParseErrorKind::ContentLength);
        }
        length = Some(n);
    }
    Ok(length)
}

fn err(kind: ParseErrorKind, is_request: bool, headers: Headers) -> ParseError {
    ParseError {
        kind,
        is_request,
        headers,
    }
}

fn parse_start_line(src: &Bytes, line: &[u8]) -> Result<StartLine, ParseErrorKind> {
    if let Some(rest) = line.strip_prefix(b"SIP/") {
        // SIP-Version SP Status-Code SP Reason-Phrase
        let sp = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or(ParseErrorKind::StatusLine)?;
        if &rest[..sp] != b"2.0" {
            return Err(ParseErrorKind::Version);
        }
        let rest = &rest[sp + 1..];
        let code_end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        let code_txt = &rest[..code_end];
        if code_txt.len() != 3 {
            return Err(ParseErrorKind::StatusLine);
        }
        let code = parse_u64(code_txt, 699)
            .filter(|&c| c >= 100)
            .ok_or(ParseErrorKind::StatusLine)? as u16;
        let reason = if code_end < rest.len() {
            src.slice_ref(trim(&rest[code_end + 1..]))
        } else {
            Bytes::new()
        };
        return Ok(StartLine::Response { code, reason });
    }
    // Method SP Request-URI SP SIP-Version
    let first_sp = line
        .iter()
        .position(|&b| b == b' ')
        .ok_or(ParseErrorKind::RequestLine("no spaces"))?;
    let last_sp = line.iter().rposition(|&b| b == b' ').unwrap_or(first_sp);
    if last_sp == first_sp {
        return Err(ParseErrorKind::RequestLine("missing SIP version"));
    }
    let method = &line[..first_sp];
    let uri = &line[first_sp + 1..last_sp];
    let version = &line[last_sp + 1..];
    if !is_token(method) {
        return Err(ParseErrorKind::RequestLine("method is not a token"));
    }
    if version.starts_with(b"SIP/") && version != b"SIP/2.0" {
        return Err(ParseErrorKind::Version);
    }
    if version != b"SIP/2.0" {
        return Err(ParseErrorKind::RequestLine("bad SIP version"));
    }
    if uri.is_empty() || uri.iter().any(|&b| is_ws(b)) {
        return Err(ParseErrorKind::RequestLine("whitespace in Request-URI"));
    }
    let uri = Uri::parse_shared(src, uri)
        .map_err(|_| ParseErrorKind::RequestLine("malformed Request-URI"))?;
    Ok(StartLine::Request {
        method: Method::from_shared(src, method),
        uri,
    })
}

/// Splits one header field (all its lines) into name and value(s) and adds
/// them to `headers`; list headers become one entry per element.
fn split_header(
    src: &Bytes,
    raw: &[u8],
    folded: bool,
    headers: &mut Headers,
) -> Result<(), ParseErrorKind> {
    let colon = raw
        .iter()
        .position(|&b| b == b':')
        .ok_or(ParseErrorKind::HeaderLine)?;
    let name_raw = trim(&raw[..colon]);
    if !is_token(name_raw) {
        return Err(ParseErrorKind::HeaderLine);
    }
    let name = HeaderName::from_shared(src, name_raw);
    let value_raw = &raw[colon + 1..];
    let owner: Bytes = if folded {
        Bytes::from(unfold(value_raw))
    } else {
        src.clone()
    };
    let value: &[u8] = if folded {
        trim(&owner)
    } else {
        trim(value_raw)
    };
    if name.splits_on_comma() {
        for element in CommaSplit::new(value) {
            if element.is_empty() {
                return Err(ParseErrorKind::Header(name, "empty list element".into()));
            }
            headers.push_header(Header {
                name: name.clone(),
                value: owner.slice_ref(element),
            });
        }
    } else {
        headers.push_header(Header {
            name,
            value: owner.slice_ref(value),
        });
    }
    Ok(())
}

/// The checks after which a message can be processed (RFC 3261 §8.2, §7.3).
fn validate(start: &StartLine, headers: &Headers) -> Result<(), ParseErrorKind> {
    for (name, label) in [
        (HeaderName::Via, "Via"),
        (HeaderName::From, "From"),
        (HeaderName::To, "To"),
        (HeaderName::CallId, "Call-ID"),
        (HeaderName::CSeq, "CSeq"),
    ] {
        match headers.count(&name) {
            0 => return Err(ParseErrorKind::Missing(label)),
            1 => {}
            _ if name.is_single() => return Err(ParseErrorKind::Duplicate(name)),
            _ => {}
        }
    }
    for name in [HeaderName::MaxForwards, HeaderName::ContentType] {
        if headers.count(&name) > 1 {
            return Err(ParseErrorKind::Duplicate(name));
        }
    }
    for h in headers.iter() {
        let v = &h.value;
        let bad = |why: String| ParseErrorKind::Header(h.name.clone(), why);
        match h.name {
            HeaderName::Via => {
                Via::parse_shared(v, v).map_err(|e| match e {
                    super::ViaError::Version if matches!(start, StartLine::Request { .. }) => {
                        ParseErrorKind::Version
                    }
                    e => bad(e.to_string()),
                })?;
            }
            HeaderName::From | HeaderName::To => {
                NameAddr::parse_shared(v, v).map_err(|e| bad(e.to_string()))?;
            }
            HeaderName::Contact if &v[..] != b"*" => {
                NameAddr::parse_shared(v, v).map_err(|e| bad(e.to_string()))?;
            }
            HeaderName::CSeq => {
                CSeq::parse_shared(v, v).map_err(|e| bad(e.to_string()))?;
            }
            HeaderName::CallId if v.is_empty() || v.iter().any(|&b| is_ws(b)) => {
                return Err(bad("not a word".into()));
            }
            HeaderName::MaxForwards if parse_u64(v, u64::MAX).is_none() => {
                return Err(bad("not a number".into()));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@example.com>\r\n\
From: Alice <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.example.com>\r\n\
X-Unknown:   keep  me  \r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\r\nEXTRA";

    #[test]
    fn parses_a_typical_invite_and_frames_the_body() {
        let m = parse_datagram(Bytes::from_static(INVITE)).unwrap();
        assert_eq!(m.method(), Some(&Method::Invite));
        assert_eq!(&m.body[..], b"v=0\r");
        assert_eq!(m.cseq().unwrap().seq, 314159);
        assert_eq!(m.from_tag().as_deref(), Some(&b"1928301774"[..]));
        assert_eq!(
            m.header(&HeaderName::new("x-unknown")).map(|v| &v[..]),
            Some(&b"keep  me"[..])
        );
    }

    #[test]
    fn bare_lf_and_compact_forms() {
        let raw = b"OPTIONS sip:a@b SIP/2.0\nv: SIP/2.0/UDP h;branch=z9hG4bKx\nf: <sip:c@d>;tag=1\nt: sip:a@b\ni: x\nCSeq : 1 OPTIONS\nl: 0\n\n";
        let m = parse_datagram(Bytes::from_static(raw)).unwrap();
        assert_eq!(m.call_id().map(|v| &v[..]), Some(&b"x"[..]));
        assert!(m.top_via().is_some());
    }

    #[test]
    fn comma_joined_vias_are_split() {
        let raw = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h1;branch=z9hG4bK1, SIP/2.0/TCP [::1]:5070;branch=z9hG4bK2\r\nf: <sip:c@d>;tag=1\r\nt: sip:a@b\r\ni: x\r\nCSeq: 1 OPTIONS\r\n\r\n";
        let m = parse_datagram(Bytes::from_static(raw)).unwrap();
        assert_eq!(m.headers.count(&HeaderName::Via), 2);
        // rsip 0.4 sees a single Via here.
        let r = rsip::SipMessage::try_from(&raw[..]).ok();
        let n = r.map(|r| {
            rsip::prelude::HasHeaders::headers(&r)
                .iter()
                .filter(|h| matches!(h, rsip::Header::Via(_)))
                .count()
        });
        assert_eq!(n, Some(1));
    }

    #[test]
    fn start_line_errors() {
        let e = parse_datagram(Bytes::from_static(b"OPTIONS sip:a@b SIP/3.0\r\n\r\n")).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::Version);
        assert_eq!(e.kind.status().0, 505);
        let e = parse_datagram(Bytes::from_static(b"SIP/2.0 4294967301 x\r\n\r\n")).unwrap_err();
        assert!(!e.is_request);
        let e = parse_datagram(Bytes::from_static(b"\r\n\r\n")).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::Empty);
    }

    #[test]
    fn stream_needs_content_length() {
        let raw = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nf: <sip:c@d>;tag=1\r\nt: sip:a@b\r\ni: x\r\nCSeq: 1 OPTIONS\r\n\r\n";
        let e = parse_stream_message(Bytes::from_static(raw)).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::Missing("Content-Length"));
    }
}
