//! The caller's INVITE as a dial plan reads it ([`api::CallView`]).

use api::CallView;
use sip::message::{HeaderName, Message, NameAddr, Uri};
use sip::transport::{Source, TransportKind};

/// Builds the script's view of a new call.
pub(crate) fn call_view(request: &Message, source: &Source) -> CallView {
    let ruri = request.uri();
    // The parser checked From and To whole; their parameters are not
    // needed here.
    let name_addr = |name| {
        let v = request.headers.get(&name)?;
        NameAddr::display_and_uri(v, v).ok()
    };
    let from = name_addr(HeaderName::From);
    let to = name_addr(HeaderName::To);
    let transport = match source.kind {
        TransportKind::Udp => "udp",
        TransportKind::Tcp => "tcp",
    };
    let from_name = from
        .as_ref()
        .and_then(|(display, _)| *display)
        .map(|d| unquote(&utf8(d)))
        .unwrap_or_default();
    CallView {
        user: ruri
            .and_then(|u| u.user_str())
            .unwrap_or_default()
            .to_string(),
        ruri: ruri.map(Uri::to_text).unwrap_or_default(),
        from: from.as_ref().map(|(_, u)| u.to_text()).unwrap_or_default(),
        from_user: from
            .as_ref()
            .and_then(|(_, u)| u.user_str())
            .unwrap_or_default()
            .to_string(),
        from_name,
        to: to.map(|(_, u)| u.to_text()).unwrap_or_default(),
        call_id: call_id_text(request),
        source_ip: source.remote.ip(),
        source_port: source.remote.port(),
        transport: transport.to_string(),
        listener: format!("{transport}:{}", source.local),
        auth_user: None,
        vars: Default::default(),
        headers: header_list(request),
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
        let v = call_view(&msg, &source);
        assert_eq!(v.user, "1000");
        assert_eq!(v.from_user, "alice");
        assert_eq!(v.from_name, "Alice \"A\"");
        assert_eq!(v.call_id, "abc@x");
        assert_eq!(v.transport, "udp");
        assert_eq!(v.header("Call-ID"), Some("abc@x"));
        assert_eq!(v.header("x-account"), Some("acme"));
        assert_eq!(v.to, "sip:1000@127.0.0.1");
    }
}
