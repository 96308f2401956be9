//! A registered contact ([`Binding`]), where its requests go ([`Path`]),
//! and binding identity (RFC 3261 §10.3 step 7, RFC 5626 §6).

use crate::register::RequestedContact;
use serde::{Deserialize, Serialize};
use sip::message::{Params, Uri};
use sip::transport::{ConnId, Source, Target, TransportKind};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Where a binding's requests go: the address the REGISTER came from (so a
/// UA behind NAT is reached at its public address and port, like
/// `received`/`rport`), not the Contact's host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Path {
    /// The transport the REGISTER came on (`"udp"` / `"tcp"` when stored).
    #[serde(with = "transport_serde")]
    pub transport: TransportKind,
    /// The peer's address the REGISTER came from.
    pub remote: SocketAddr,
    /// Our address it arrived at.
    pub local: SocketAddr,
    /// The TCP connection it came on; not persisted (gone after a restart).
    #[serde(skip)]
    pub conn: Option<u64>,
}

impl Path {
    /// The path of a request that came from `source`.
    pub fn from_source(source: &Source) -> Path {
        Path {
            transport: source.kind,
            remote: source.remote,
            local: source.local,
            conn: source.conn.map(|c| c.0),
        }
    }

    /// Where to send a request for this binding: back to the address the
    /// REGISTER came from, on its connection or socket.
    pub fn target(&self) -> Target {
        Target {
            kind: self.transport,
            addr: self.remote,
            conn: self.conn.map(ConnId),
            local: Some(self.local),
        }
    }
}

mod transport_serde {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use sip::transport::TransportKind;

    pub(super) fn serialize<S: Serializer>(t: &TransportKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match t {
            TransportKind::Udp => "udp",
            TransportKind::Tcp => "tcp",
        })
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TransportKind, D::Error> {
        let s = String::deserialize(d)?;
        TransportKind::from_token(s.as_bytes())
            .ok_or_else(|| D::Error::custom(format!("unknown transport {s:?}")))
    }
}

/// One registered contact of an AOR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Binding {
    /// The AOR key: the To URI's user part (the host part is ignored).
    pub aor: String,
    /// The Contact URI as registered (no angle brackets, no header params).
    pub contact: String,
    /// The `q` preference, 0.0..=1.0 (none means 1.0 when ordering).
    pub q: Option<f32>,
    /// When the binding expires, unix seconds.
    pub expires_at: u64,
    /// The Call-ID of the REGISTER that last wrote the binding.
    pub call_id: String,
    /// The CSeq number of that REGISTER.
    pub cseq: u32,
    /// The `+sip.instance` value without its quotes, if any.
    pub instance: Option<String>,
    /// The RFC 5626 `reg-id`, if any (only kept with an instance).
    pub reg_id: Option<u32>,
    /// Where the binding's requests go.
    pub path: Path,
    /// The User-Agent of the REGISTER.
    pub user_agent: Option<String>,
    /// Attributes set by the dial plan's `on_register` hook.
    #[serde(default)]
    pub attrs: BTreeMap<String, String>,
    /// When the binding was last registered or refreshed, unix seconds.
    pub registered_at: u64,
}

impl Binding {
    /// Seconds left until the binding expires (0 once expired).
    pub fn expires_in(&self, now: u64) -> u64 {
        self.expires_at.saturating_sub(now)
    }

    /// True while the binding has not expired.
    pub fn is_live(&self, now: u64) -> bool {
        self.expires_at > now
    }

    /// The `q` used for ordering: the registered one, else 1.0.
    pub fn effective_q(&self) -> f32 {
        self.q.unwrap_or(1.0)
    }

    /// The Contact value of a 200 OK to a REGISTER:
    /// `<uri>;expires=N[;q=Q][;+sip.instance="…"][;reg-id=N]`.
    pub fn contact_header(&self, now: u64) -> String {
        let mut h = format!("<{}>;expires={}", self.contact, self.expires_in(now));
        if let Some(q) = self.q {
            h.push_str(";q=");
            h.push_str(&format_q(q));
        }
        if let Some(instance) = &self.instance {
            h.push_str(";+sip.instance=\"");
            h.push_str(instance);
            h.push('"');
            if let Some(reg_id) = self.reg_id {
                h.push_str(";reg-id=");
                h.push_str(&reg_id.to_string());
            }
        }
        h
    }

    /// Where to send a request for this binding (see [`Path::target`]).
    pub fn target(&self) -> Target {
        self.path.target()
    }

    /// True when `contact` of a REGISTER names this binding: the same
    /// `+sip.instance` and `reg-id` when both carry an instance, else the
    /// same contact URI (see [`uris_match`]).
    pub(crate) fn is_same(&self, contact: &RequestedContact) -> bool {
        match (&self.instance, &contact.instance) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b) && self.reg_id == contact.reg_id,
            _ => uris_match(&self.contact, &contact.uri),
        }
    }
}

/// A qvalue as at most three decimals without trailing zeros (`0.5`, `1`).
fn format_q(q: f32) -> String {
    let s = format!("{:.3}", q.clamp(0.0, 1.0));
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Contact URI comparison, an approximation of RFC 3261 §19.1.4: scheme
/// and host case-insensitive; user and password byte for byte (escapes
/// are not decoded); the port must be the same (an explicit 5060 differs
/// from none); the `transport`, `user`, `ttl`, `method` and `maddr`
/// parameters must be absent from both or equal (case-insensitive); any
/// other parameter present in both must be equal; URI headers byte for
/// byte. Texts that do not parse are compared byte for byte.
pub(crate) fn uris_match(a: &str, b: &str) -> bool {
    match (Uri::parse(a), Uri::parse(b)) {
        (Ok(a), Ok(b)) => {
            a.scheme == b.scheme
                && a.user == b.user
                && a.password == b.password
                && a.host.eq_ignore_ascii_case(&b.host)
                && a.port == b.port
                && params_match(&a.params, &b.params)
                && a.headers == b.headers
        }
        _ => a == b,
    }
}

fn params_match(a: &Params, b: &Params) -> bool {
    let same = |x: Option<Option<&[u8]>>, y: Option<Option<&[u8]>>| match (x, y) {
        (None, None) => true,
        (Some(None), Some(None)) => true,
        (Some(Some(x)), Some(Some(y))) => x.eq_ignore_ascii_case(y),
        _ => false,
    };
    ["transport", "user", "ttl", "method", "maddr"]
        .iter()
        .all(|name| same(a.get(name), b.get(name)))
        && a.iter().all(|(name, value)| {
            let name = String::from_utf8_lossy(name);
            match b.get(&name) {
                Some(other) => same(Some(value), Some(other)),
                None => true,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{binding, udp};

    #[test]
    fn uri_comparison() {
        assert!(uris_match(
            "sip:alice@10.0.0.5:5060",
            "SIP:alice@10.0.0.5:5060"
        ));
        assert!(uris_match(
            "sip:alice@PC.example.com;transport=TCP",
            "sip:alice@pc.example.com;transport=tcp"
        ));
        assert!(!uris_match("sip:alice@10.0.0.5", "sip:Alice@10.0.0.5"));
        assert!(!uris_match("sip:alice@10.0.0.5", "sip:alice@10.0.0.5:5060"));
        assert!(!uris_match("sip:alice@10.0.0.5", "sips:alice@10.0.0.5"));
        assert!(!uris_match(
            "sip:alice@10.0.0.5",
            "sip:alice@10.0.0.5;transport=tcp"
        ));
        assert!(uris_match(
            "sip:alice@10.0.0.5;ob",
            "sip:alice@10.0.0.5;line=7"
        ));
        assert!(!uris_match(
            "sip:alice@10.0.0.5;line=6",
            "sip:alice@10.0.0.5;line=7"
        ));
    }

    #[test]
    fn contact_header_forms() {
        let mut b = binding("alice", "sip:alice@10.0.0.5:5060", 1000);
        assert_eq!(
            b.contact_header(400),
            "<sip:alice@10.0.0.5:5060>;expires=600"
        );
        b.q = Some(0.5);
        b.instance = Some("<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>".into());
        b.reg_id = Some(1);
        assert_eq!(
            b.contact_header(400),
            "<sip:alice@10.0.0.5:5060>;expires=600;q=0.5;\
             +sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\";reg-id=1"
        );
        assert_eq!(b.expires_in(2000), 0);
        assert_eq!(format_q(1.0), "1");
        assert_eq!(format_q(0.0), "0");
        assert_eq!(format_q(0.125), "0.125");
    }

    #[test]
    fn target_is_the_source() {
        let mut b = binding("alice", "sip:alice@192.168.1.20:5060", 1000);
        b.path = Path {
            conn: Some(7),
            ..udp("203.0.113.7:40000")
        };
        let t = b.target();
        assert_eq!(t.addr, "203.0.113.7:40000".parse().unwrap());
        assert_eq!(t.conn, Some(ConnId(7)));
        assert_eq!(t.local, Some("192.0.2.1:5060".parse().unwrap()));
        let src = Source {
            kind: TransportKind::Tcp,
            local: "192.0.2.1:5060".parse().unwrap(),
            remote: "198.51.100.9:51000".parse().unwrap(),
            conn: Some(ConnId(3)),
        };
        let p = Path::from_source(&src);
        assert_eq!(p.target(), Target::reply_to(&src));
    }

    #[test]
    fn path_serde_skips_conn() {
        let p = Path {
            transport: TransportKind::Tcp,
            conn: Some(9),
            ..udp("203.0.113.7:40000")
        };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"{"transport":"tcp","remote":"203.0.113.7:40000","local":"192.0.2.1:5060"}"#
        );
        let back: Path = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Path { conn: None, ..p });
        assert!(serde_json::from_str::<Path>(&json.replace("tcp", "sctp")).is_err());
    }
}
