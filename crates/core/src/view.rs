//! The caller's INVITE as a dial plan reads it ([`api::CallView`]).

use api::CallView;
use api::view::{LazyParties, Parties};
use bytes::Bytes;
use sip::message::{HeaderName, Message, NameAddr, Uri};
use sip::transport::{Source, TransportKind};
use std::sync::Arc;

/// Builds the script's view of a new call, for the listener named
/// `listener` (see [`listener_name`]). From and To are parsed when the
/// script first reads them ([`api::view::LazyParties`]).
pub(crate) fn call_view(request: &Message, source: &Source, listener: Arc<str>) -> CallView {
    let ruri = request.uri();
    let from = request.headers.get(&HeaderName::From).cloned();
    let to = request.headers.get(&HeaderName::To).cloned();
    CallView {
        user: ruri
            .and_then(|u| u.user_str())
            .unwrap_or_default()
            .to_string(),
        ruri: ruri.map(Uri::to_text).unwrap_or_default(),
        parties: LazyParties::read_with(move || parties(from.as_ref(), to.as_ref())),
        call_id: call_id_text(request),
        source_ip: source.remote.ip(),
        source_port: source.remote.port(),
        transport: transport_name(source.kind).to_string(),
        listener,
        auth_user: None,
        vars: Default::default(),
        headers: header_list(request),
    }
}

/// `udp` or `tcp`.
fn transport_name(kind: TransportKind) -> &'static str {
    match kind {
        TransportKind::Udp => "udp",
        TransportKind::Tcp => "tcp",
    }
}

/// The name of the listener a request came in on, as the config names
/// it and the view shows it: `udp:IP:PORT`.
pub(crate) fn listener_name(source: &Source) -> Arc<str> {
    format!("{}:{}", transport_name(source.kind), source.local).into()
}

/// From and To as text, from their header values. The parser checked
/// both whole; their parameters are not needed here.
fn parties(from: Option<&Bytes>, to: Option<&Bytes>) -> Parties {
    fn name_addr(v: Option<&Bytes>) -> Option<(Option<&[u8]>, Uri)> {
        NameAddr::display_and_uri(v?, v?).ok()
    }
    let from = name_addr(from);
    let to = name_addr(to);
    Parties {
        from: from.as_ref().map(|(_, u)| u.to_text()).unwrap_or_default(),
        from_user: from
            .as_ref()
            .and_then(|(_, u)| u.user_str())
            .unwrap_or_default()
            .to_string(),
        from_name: from
            .as_ref()
            .and_then(|(display, _)| *display)
            .map(|d| unquote(&utf8(d)))
            .unwrap_or_default(),
        to: to.map(|(_, u)| u.to_text()).unwrap_or_default(),
    }
}

/// The Call-ID of `request` as text (empty if none), for views and logs.
pub(crate) fn call_id_text(request: &Message) -> String {
    request
        .call_id()
        .map(|c| utf8(c).into_owned())
        .unwrap_or_default()
}

/// Every header of `request`, in order, as (canonical name, value) text.
pub(crate) fn header_list(request: &Message) -> api::HeaderList {
    api::HeaderList::from_bytes(
        request
            .headers
            .iter()
            .map(|h| (h.name.as_bytes(), h.value.as_ref())),
    )
}

/// `b` as text: borrowed when it is UTF-8 (nearly always; checking that
/// is much quicker than a lossy conversion), replaced characters if not.
fn utf8(b: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

/// A display name without its quotes and escapes.
fn unquote(d: &str) -> String {
    let d = d.trim();
    match d.strip_prefix('"').and_then(|d| d.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => d.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_of_an_invite() {
        let raw = b"INVITE sip:1000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nf: \"Alice \\\"A\\\"\" <sip:alice@127.0.0.1>;tag=1\r\nt: <sip:1000@127.0.0.1>\r\ni: abc@x\r\nCSeq: 1 INVITE\r\nX-Account: acme\r\nContent-Length: 0\r\n\r\n";
        let msg = sip::message::parse_datagram(bytes::Bytes::from_static(raw)).unwrap();
        let source = Source {
            kind: sip::transport::TransportKind::Udp,
            local: "127.0.0.1:5060".parse().unwrap(),
            remote: "127.0.0.1:5070".parse().unwrap(),
            conn: None,
        };
        let v = call_view(&msg, &source, listener_name(&source));
        assert_eq!(v.user, "1000");
        assert_eq!(v.from_user(), "alice");
        assert_eq!(v.from_name(), "Alice \"A\"");
        assert_eq!(v.call_id, "abc@x");
        assert_eq!(v.transport, "udp");
        assert_eq!(v.header("Call-ID"), Some("abc@x"));
        assert_eq!(v.header("x-account"), Some("acme"));
        assert_eq!(v.to(), "sip:1000@127.0.0.1");
        assert_eq!(v.from(), "sip:alice@127.0.0.1");
        assert_eq!(&*v.listener, "udp:127.0.0.1:5060");
    }
}
