//! Helpers shared by the unit tests.

use crate::binding::{Binding, Path};
use sip::message::{Message, parse_datagram};
use sip::transport::TransportKind;
use std::collections::BTreeMap;

/// A UDP path from `remote` to 192.0.2.1:5060.
pub(crate) fn udp(remote: &str) -> Path {
    Path {
        transport: TransportKind::Udp,
        remote: remote.parse().unwrap(),
        local: "192.0.2.1:5060".parse().unwrap(),
        conn: None,
    }
}

/// A plain binding that expires at `expires_at`.
pub(crate) fn binding(aor: &str, contact: &str, expires_at: u64) -> Binding {
    Binding {
        aor: aor.into(),
        contact: contact.into(),
        q: None,
        expires_at,
        call_id: "c1".into(),
        cseq: 1,
        instance: None,
        reg_id: None,
        path: udp("203.0.113.7:40000"),
        user_agent: None,
        attrs: BTreeMap::new(),
        registered_at: 0,
    }
}

/// A REGISTER for `user` with one `Contact:` line per entry of `contacts`
/// and `extra` header lines (each ending in CRLF).
pub(crate) fn register_msg(
    user: &str,
    contacts: &[&str],
    extra: &str,
    call_id: &str,
    cseq: u32,
) -> Message {
    let branch: String = call_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let mut raw = format!(
        "REGISTER sip:pbx.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK{cseq}{branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@pbx.example.com>;tag=f{cseq}\r\n\
         To: <sip:{user}@pbx.example.com>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n"
    );
    for c in contacts {
        raw.push_str("Contact: ");
        raw.push_str(c);
        raw.push_str("\r\n");
    }
    raw.push_str(extra);
    raw.push_str("Content-Length: 0\r\n\r\n");
    parse_datagram(raw.into_bytes().into()).unwrap()
}
