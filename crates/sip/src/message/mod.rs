//! The SIP message model: a start line, ordered headers and a body, all
//! sharing the one buffer the message was received in.
//!
//! Parsing ([`parse`]) is our own front end and typed parsers for the
//! headers that the transaction layer needs, because rsip 0.4 fails on much
//! of RFC 4475 (see `STACK.md` and the tests beside each type). Conversions
//! to rsip's types exist where rsip's types are right ([`rsip_compat`]).

mod cseq;
mod framing;
mod header;
mod method;
mod name_addr;
mod params;
mod parse;
pub mod rsip_compat;
pub(crate) mod text;
mod uri;
mod via;
mod write;

pub use cseq::{CSeq, CSeqError};
pub use framing::{FrameError, StreamFrame, frame_stream};
pub use header::{Header, HeaderName, Headers};
pub use method::Method;
pub use name_addr::{NameAddr, NameAddrError};
pub use params::{ParamIter, Params, ParamsError};
pub use parse::{ParseError, ParseErrorKind, parse_datagram, parse_stream_message};
pub use uri::{Scheme, Uri, UriError};
pub use via::{BRANCH_COOKIE, Via, ViaError};

use bytes::Bytes;

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `Method SP Request-URI SP SIP/2.0`.
    Request {
        /// The method.
        method: Method,
        /// The Request-URI.
        uri: Uri,
    },
    /// `SIP/2.0 SP Status-Code SP Reason-Phrase`.
    Response {
        /// The status code, 100–699.
        code: u16,
        /// The reason phrase as received (may be empty or UTF-8).
        reason: Bytes,
    },
}

/// A SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Request line or status line.
    pub start: StartLine,
    /// Header fields in order. Content-Length is recomputed when writing.
    pub headers: Headers,
    /// The body, framed by Content-Length.
    pub body: Bytes,
}

impl Message {
    /// A new request with no headers.
    pub fn request(method: Method, uri: Uri) -> Message {
        Message {
            start: StartLine::Request { method, uri },
            headers: Headers::with_capacity(12),
            body: Bytes::new(),
        }
    }

    /// A new response with no headers.
    pub fn response(code: u16, reason: &str) -> Message {
        Message {
            start: StartLine::Response {
                code,
                reason: Bytes::copy_from_slice(reason.as_bytes()),
            },
            headers: Headers::with_capacity(12),
            body: Bytes::new(),
        }
    }

    /// A response to `req` per RFC 3261 §8.2.6.2: Via, From, To, Call-ID and
    /// CSeq copied; `to_tag` is added to To when it has none and the code is
    /// above 100; Record-Route is echoed in the 1xx/2xx of a request that
    /// creates a dialog (§12.1.1).
    pub fn response_to(req: &Message, code: u16, reason: &str, to_tag: Option<&str>) -> Message {
        let mut resp = Message::response(code, reason);
        for h in req.headers.iter() {
            match h.name {
                HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                    resp.headers.push_header(h.clone())
                }
                HeaderName::To => {
                    let value = match to_tag {
                        Some(tag) if code > 100 && !has_tag(&h.value) => {
                            let mut v = Vec::with_capacity(h.value.len() + 5 + tag.len());
                            v.extend_from_slice(&h.value);
                            v.extend_from_slice(b";tag=");
                            v.extend_from_slice(tag.as_bytes());
                            Bytes::from(v)
                        }
                        _ => h.value.clone(),
                    };
                    resp.headers.push(HeaderName::To, value);
                }
                HeaderName::Timestamp if code == 100 => resp.headers.push_header(h.clone()),
                // §12.1.1: responses that establish a dialog echo its route.
                HeaderName::RecordRoute if (101..300).contains(&code) && creates_dialog(req) => {
                    resp.headers.push_header(h.clone())
                }
                _ => {}
            }
        }
        resp
    }

    /// True for requests.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI of a request.
    pub fn uri(&self) -> Option<&Uri> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code of a response.
    pub fn code(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// The reason phrase of a response, lossily as text.
    pub fn reason(&self) -> Option<String> {
        match &self.start {
            StartLine::Response { reason, .. } => {
                Some(String::from_utf8_lossy(reason).into_owned())
            }
            StartLine::Request { .. } => None,
        }
    }

    /// The first value of a header.
    pub fn header(&self, name: &HeaderName) -> Option<&Bytes> {
        self.headers.get(name)
    }

    /// The first value of a header as text.
    pub fn header_str(&self, name: &HeaderName) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Option<&Bytes> {
        self.headers.get(&HeaderName::CallId)
    }

    /// The CSeq, parsed.
    pub fn cseq(&self) -> Option<CSeq> {
        let v = self.headers.get(&HeaderName::CSeq)?;
        CSeq::parse_shared(v, v).ok()
    }

    /// The topmost Via, parsed.
    pub fn top_via(&self) -> Option<Via> {
        let v = self.headers.get(&HeaderName::Via)?;
        Via::parse_shared(v, v).ok()
    }

    /// The From header, parsed.
    pub fn from_hdr(&self) -> Option<NameAddr> {
        let v = self.headers.get(&HeaderName::From)?;
        NameAddr::parse_shared(v, v).ok()
    }

    /// The To header, parsed.
    pub fn to_hdr(&self) -> Option<NameAddr> {
        let v = self.headers.get(&HeaderName::To)?;
        NameAddr::parse_shared(v, v).ok()
    }

    /// The tag of the From header.
    pub fn from_tag(&self) -> Option<Bytes> {
        let v = self.headers.get(&HeaderName::From)?;
        NameAddr::tag_of(v, v)
    }

    /// The tag of the To header.
    pub fn to_tag(&self) -> Option<Bytes> {
        let v = self.headers.get(&HeaderName::To)?;
        NameAddr::tag_of(v, v)
    }

    /// Max-Forwards, when present and numeric (values above 255 clamp).
    pub fn max_forwards(&self) -> Option<u8> {
        let v = self.headers.get(&HeaderName::MaxForwards)?;
        text::parse_u64(text::trim(v), u64::MAX).map(|n| n.min(255) as u8)
    }

    /// Iterates the comma-separated option tags / tokens of every field named
    /// `name` (Require, Supported, Allow, Accept, ...), trimmed.
    pub fn tokens<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .get_all(name)
            .flat_map(|v| text::CommaSplit::new(v))
            .filter(|t| !t.is_empty())
    }

    /// The media type of the body (`type/subtype`, lower-cased, no params).
    pub fn content_type(&self) -> Option<String> {
        let v = self.headers.get(&HeaderName::ContentType)?;
        let end = v.iter().position(|&b| b == b';').unwrap_or(v.len());
        Some(String::from_utf8_lossy(text::trim(&v[..end])).to_ascii_lowercase())
    }

    /// Sets the body and its Content-Type.
    pub fn set_body(&mut self, content_type: &str, body: impl Into<Bytes>) {
        self.headers.set(
            HeaderName::ContentType,
            Bytes::copy_from_slice(content_type.as_bytes()),
        );
        self.body = body.into();
    }
}

fn creates_dialog(req: &Message) -> bool {
    matches!(
        req.method(),
        Some(Method::Invite | Method::Subscribe | Method::Refer | Method::Notify)
    )
}

fn has_tag(to: &Bytes) -> bool {
    NameAddr::tag_of(to, to).is_some()
}
