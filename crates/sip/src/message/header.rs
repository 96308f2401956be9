//! Header names (long and compact forms, case-insensitive) and the ordered
//! header list of a message. Values are slices of the received buffer.

use bytes::Bytes;
use std::fmt;

macro_rules! header_names {
    ($( $(#[$doc:meta])* $variant:ident => $canon:literal $(, $compact:literal)? ;)*) => {
        /// A header field name. Known names are matched case-insensitively
        /// and in their compact form; any other name is kept as received.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum HeaderName {
            $( $(#[$doc])* $variant, )*
            /// A header this crate does not model, spelled as received.
            Other(Bytes),
        }

        impl HeaderName {
            /// The canonical (long) spelling, or the received one for `Other`.
            pub fn as_bytes(&self) -> &[u8] {
                match self {
                    $( HeaderName::$variant => $canon.as_bytes(), )*
                    HeaderName::Other(b) => b,
                }
            }

            fn known(name: &[u8]) -> Option<HeaderName> {
                if name.len() == 1 {
                    let c = name[0].to_ascii_lowercase();
                    $( $( if c == $compact { return Some(HeaderName::$variant); } )? )*
                    return None;
                }
                $( if name.eq_ignore_ascii_case($canon.as_bytes()) {
                    return Some(HeaderName::$variant);
                } )*
                None
            }
        }
    };
}

header_names! {
    /// `Accept`.
    Accept => "Accept";
    /// `Accept-Encoding`.
    AcceptEncoding => "Accept-Encoding";
    /// `Accept-Language`.
    AcceptLanguage => "Accept-Language";
    /// `Alert-Info`.
    AlertInfo => "Alert-Info";
    /// `Allow`.
    Allow => "Allow";
    /// `Allow-Events` (compact `u`).
    AllowEvents => "Allow-Events", b'u';
    /// `Authentication-Info`.
    AuthenticationInfo => "Authentication-Info";
    /// `Authorization`.
    Authorization => "Authorization";
    /// `Call-ID` (compact `i`).
    CallId => "Call-ID", b'i';
    /// `Call-Info`.
    CallInfo => "Call-Info";
    /// `Contact` (compact `m`).
    Contact => "Contact", b'm';
    /// `Content-Disposition`.
    ContentDisposition => "Content-Disposition";
    /// `Content-Encoding` (compact `e`).
    ContentEncoding => "Content-Encoding", b'e';
    /// `Content-Language`.
    ContentLanguage => "Content-Language";
    /// `Content-Length` (compact `l`).
    ContentLength => "Content-Length", b'l';
    /// `Content-Type` (compact `c`).
    ContentType => "Content-Type", b'c';
    /// `CSeq`.
    CSeq => "CSeq";
    /// `Date`.
    Date => "Date";
    /// `Error-Info`.
    ErrorInfo => "Error-Info";
    /// `Event` (compact `o`).
    Event => "Event", b'o';
    /// `Expires`.
    Expires => "Expires";
    /// `From` (compact `f`).
    From => "From", b'f';
    /// `In-Reply-To`.
    InReplyTo => "In-Reply-To";
    /// `Max-Forwards`.
    MaxForwards => "Max-Forwards";
    /// `Min-Expires`.
    MinExpires => "Min-Expires";
    /// `Min-SE` (RFC 4028).
    MinSe => "Min-SE";
    /// `MIME-Version`.
    MimeVersion => "MIME-Version";
    /// `Organization`.
    Organization => "Organization";
    /// `P-Asserted-Identity` (RFC 3325).
    PAssertedIdentity => "P-Asserted-Identity";
    /// `P-Preferred-Identity` (RFC 3325).
    PPreferredIdentity => "P-Preferred-Identity";
    /// `Priority`.
    Priority => "Priority";
    /// `Privacy` (RFC 3323).
    Privacy => "Privacy";
    /// `Proxy-Authenticate`.
    ProxyAuthenticate => "Proxy-Authenticate";
    /// `Proxy-Authorization`.
    ProxyAuthorization => "Proxy-Authorization";
    /// `Proxy-Require`.
    ProxyRequire => "Proxy-Require";
    /// `RAck` (RFC 3262).
    RAck => "RAck";
    /// `Reason` (RFC 3326).
    Reason => "Reason";
    /// `Record-Route`.
    RecordRoute => "Record-Route";
    /// `Refer-To` (compact `r`, RFC 3515).
    ReferTo => "Refer-To", b'r';
    /// `Referred-By` (compact `b`, RFC 3892).
    ReferredBy => "Referred-By", b'b';
    /// `Replaces` (RFC 3891).
    Replaces => "Replaces";
    /// `Reply-To`.
    ReplyTo => "Reply-To";
    /// `Require`.
    Require => "Require";
    /// `Retry-After`.
    RetryAfter => "Retry-After";
    /// `Route`.
    Route => "Route";
    /// `RSeq` (RFC 3262).
    RSeq => "RSeq";
    /// `Server`.
    Server => "Server";
    /// `Session-Expires` (compact `x`, RFC 4028).
    SessionExpires => "Session-Expires", b'x';
    /// `Subject` (compact `s`).
    Subject => "Subject", b's';
    /// `Subscription-State` (RFC 6665).
    SubscriptionState => "Subscription-State";
    /// `Supported` (compact `k`).
    Supported => "Supported", b'k';
    /// `Timestamp`.
    Timestamp => "Timestamp";
    /// `To` (compact `t`).
    To => "To", b't';
    /// `Unsupported`.
    Unsupported => "Unsupported";
    /// `User-Agent`.
    UserAgent => "User-Agent";
    /// `Via` (compact `v`).
    Via => "Via", b'v';
    /// `Warning`.
    Warning => "Warning";
    /// `WWW-Authenticate`.
    WwwAuthenticate => "WWW-Authenticate";
}

impl HeaderName {
    /// Maps a received name to a known header, or keeps it as `Other`
    /// sharing the received buffer.
    pub(crate) fn from_shared(src: &Bytes, name: &[u8]) -> HeaderName {
        HeaderName::known(name).unwrap_or_else(|| HeaderName::Other(src.slice_ref(name)))
    }

    /// Maps any name (e.g. from a script) to a header name.
    pub fn new(name: &str) -> HeaderName {
        HeaderName::known(name.as_bytes())
            .unwrap_or_else(|| HeaderName::Other(Bytes::copy_from_slice(name.as_bytes())))
    }

    /// True when `self` and `other` name the same header (case-insensitive
    /// for `Other`).
    pub fn matches(&self, other: &HeaderName) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a == b,
        }
    }

    /// True for headers whose value is a comma-separated list that this
    /// crate splits into one entry per element when parsing (RFC 3261 §7.3.1).
    pub(crate) fn splits_on_comma(&self) -> bool {
        matches!(
            self,
            HeaderName::Via | HeaderName::Contact | HeaderName::Route | HeaderName::RecordRoute
        )
    }

    /// True for headers that may appear at most once (RFC 3261 §7.3.1, §20).
    pub(crate) fn is_single(&self) -> bool {
        matches!(
            self,
            HeaderName::CallId
                | HeaderName::CSeq
                | HeaderName::From
                | HeaderName::To
                | HeaderName::MaxForwards
                | HeaderName::ContentType
        )
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

/// One header field: its name and its value with surrounding LWS removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The field name.
    pub name: HeaderName,
    /// The field value as received (folded lines joined by one space).
    pub value: Bytes,
}

impl Header {
    /// A header from owned strings (for messages Tandem builds).
    pub fn new(name: HeaderName, value: impl Into<Bytes>) -> Header {
        Header {
            name,
            value: value.into(),
        }
    }

    /// The value as UTF-8 text, if it is.
    pub fn value_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }
}

/// The ordered header fields of a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    list: Vec<Header>,
}

impl Headers {
    /// An empty list with room for `n` headers.
    pub fn with_capacity(n: usize) -> Headers {
        Headers {
            list: Vec::with_capacity(n),
        }
    }

    /// All header fields in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Header> {
        self.list.iter()
    }

    /// Number of header fields.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when there is no header.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The first value of `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&Bytes> {
        self.list
            .iter()
            .find(|h| h.name.matches(name))
            .map(|h| &h.value)
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a Bytes> + 'a {
        self.list
            .iter()
            .filter(move |h| h.name.matches(name))
            .map(|h| &h.value)
    }

    /// Number of fields named `name`.
    pub fn count(&self, name: &HeaderName) -> usize {
        self.list.iter().filter(|h| h.name.matches(name)).count()
    }

    /// Appends a field.
    pub fn push(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        self.list.push(Header::new(name, value));
    }

    /// Inserts a field before every other (used for Via and Record-Route).
    pub fn push_front(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        self.list.insert(0, Header::new(name, value));
    }

    /// Replaces every field named `name` by one with `value`, at the place of
    /// the first one (or at the end when there was none).
    pub fn set(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        let value = value.into();
        match self.list.iter().position(|h| h.name.matches(&name)) {
            Some(i) => {
                self.list[i].value = value;
                let mut seen = 0usize;
                self.list.retain(|h| {
                    if h.name.matches(&name) {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => self.list.push(Header::new(name, value)),
        }
    }

    /// Removes every field named `name`; returns how many were removed.
    pub fn remove(&mut self, name: &HeaderName) -> usize {
        let before = self.list.len();
        self.list.retain(|h| !h.name.matches(name));
        before - self.list.len()
    }

    /// Removes the first field named `name` and returns its value.
    pub fn remove_first(&mut self, name: &HeaderName) -> Option<Bytes> {
        let i = self.list.iter().position(|h| h.name.matches(name))?;
        Some(self.list.remove(i).value)
    }

    /// Mutable access to the first field named `name`.
    pub fn first_mut(&mut self, name: &HeaderName) -> Option<&mut Header> {
        self.list.iter_mut().find(|h| h.name.matches(name))
    }

    pub(crate) fn push_header(&mut self, h: Header) {
        self.list.push(h);
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = &'a Header;
    type IntoIter = std::slice::Iter<'a, Header>;
    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_parsed_header_list_stays_below_one_kib() {
        // parse.rs allocates room for 13 headers. glibc rounds a request up
        // to (size + 8 + 15) & !15; below 1,024 it is a small-bin chunk,
        // which never consolidates the fast bins.
        let request = 13 * std::mem::size_of::<Header>();
        assert!((request + 8 + 15) & !15 < 1024, "{request} bytes");
    }

    use super::*;

    #[test]
    fn compact_and_case_insensitive_names() {
        for (raw, want) in [
            ("v", HeaderName::Via),
            ("V", HeaderName::Via),
            ("i", HeaderName::CallId),
            ("call-id", HeaderName::CallId),
            ("MaX-fOrWaRdS", HeaderName::MaxForwards),
            ("l", HeaderName::ContentLength),
            ("k", HeaderName::Supported),
            ("o", HeaderName::Event),
            ("u", HeaderName::AllowEvents),
            ("x", HeaderName::SessionExpires),
        ] {
            assert_eq!(HeaderName::new(raw), want, "{raw}");
        }
        assert_eq!(
            HeaderName::new("X-Custom").as_bytes(),
            b"X-Custom",
            "unknown names keep their spelling"
        );
        assert!(HeaderName::new("x-custom").matches(&HeaderName::new("X-CUSTOM")));
    }

    #[test]
    fn set_replaces_all_in_place() {
        let mut h = Headers::default();
        h.push(HeaderName::new("A"), "1");
        h.push(HeaderName::new("X-B"), "2");
        h.push(HeaderName::new("a"), "3");
        h.set(HeaderName::new("A"), "x");
        let got: Vec<_> = h
            .iter()
            .map(|h| (h.name.to_string(), h.value.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("A".to_string(), Bytes::from("x")),
                ("X-B".to_string(), Bytes::from("2"))
            ]
        );
    }
}
