//! Reading a REGISTER (RFC 3261 §10.3 steps 5–6) without touching the
//! store: the AOR, the contacts with their effective expiration, `*`.

use crate::error::RegisterError;
use crate::registrar::RegistrarConfig;
use sip::message::{HeaderName, Message, NameAddr};

/// Longest User-Agent kept with a binding, in bytes.
const MAX_USER_AGENT: usize = 256;

/// A REGISTER as the registrar reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterRequest {
    /// The To URI's user part (the AOR key).
    pub aor: String,
    /// The contacts, in request order (empty for a query or `*`).
    pub contacts: Vec<RequestedContact>,
    /// `Contact: *` with `Expires: 0`: remove every binding.
    pub star: bool,
    /// The Call-ID.
    pub call_id: String,
    /// The CSeq number.
    pub cseq: u32,
    /// The User-Agent, trimmed and cut to 256 bytes.
    pub user_agent: Option<String>,
}

impl RegisterRequest {
    /// True for a query (no Contact at all): nothing changes.
    pub fn is_query(&self) -> bool {
        !self.star && self.contacts.is_empty()
    }
}

/// One Contact of a REGISTER.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestedContact {
    /// The contact URI as written, without `<>` and header parameters.
    pub uri: String,
    /// The effective expiration in seconds (0 removes the binding), already
    /// checked against the minimum and clamped to the maximum.
    pub expires: u32,
    /// The `q` parameter, 0.0..=1.0.
    pub q: Option<f32>,
    /// The `+sip.instance` value without its quotes.
    pub instance: Option<String>,
    /// The `reg-id` (ignored, so `None`, without an instance).
    pub reg_id: Option<u32>,
}

/// Reads a REGISTER without touching the store: the AOR (To user), the
/// contacts with their effective expiration, `*`, Call-ID, CSeq and
/// User-Agent.
///
/// A contact's expiration is its `expires` parameter, else the `Expires`
/// header, else `default_expires`; a malformed value counts as
/// `default_expires` (RFC 3261 §20.10 says 3600, the default default).
/// Non-zero values below `min_expires` fail the whole request with 423;
/// values above `max_expires` are clamped. A `reg-id` without
/// `+sip.instance` is ignored.
pub fn parse_register(
    request: &Message,
    config: &RegistrarConfig,
) -> Result<RegisterRequest, RegisterError> {
    let to = request.to_hdr().ok_or(RegisterError::Missing("To"))?;
    let aor = to
        .uri
        .user_str()
        .filter(|u| !u.is_empty())
        .ok_or(RegisterError::Missing("To user"))?
        .to_string();
    let call_id = request
        .call_id()
        .map(|v| String::from_utf8_lossy(v).trim().to_string())
        .filter(|v| !v.is_empty())
        .ok_or(RegisterError::Missing("Call-ID"))?;
    let cseq = request.cseq().ok_or(RegisterError::Missing("CSeq"))?.seq;
    let user_agent = request
        .header(&HeaderName::UserAgent)
        .map(|v| {
            let v = String::from_utf8_lossy(v);
            truncate(v.trim(), MAX_USER_AGENT).to_string()
        })
        .filter(|v| !v.is_empty());

    let default = config.effective_default();
    // None: absent; Some(None): malformed.
    let header_expires = request
        .header(&HeaderName::Expires)
        .map(|v| parse_delta(v.trim_ascii()));

    let mut star = 0usize;
    let mut contacts = Vec::new();
    for value in request.headers.get_all(&HeaderName::Contact) {
        if value.trim_ascii() == b"*" {
            star += 1;
            continue;
        }
        let text = String::from_utf8_lossy(value);
        let name_addr = NameAddr::parse_shared(value, value)
            .map_err(|e| RegisterError::BadContact(format!("{text}: {e}")))?;
        let expires = |param: Option<Option<u32>>| match param.or(header_expires) {
            Some(Some(n)) => n,
            Some(None) | None => default,
        };
        contacts.push(contact(&name_addr, &text, expires, config)?);
    }

    if star > 0 && (star > 1 || !contacts.is_empty() || header_expires != Some(Some(0))) {
        return Err(RegisterError::BadStar);
    }
    Ok(RegisterRequest {
        aor,
        contacts,
        star: star > 0,
        call_id,
        cseq,
        user_agent,
    })
}

/// One parsed Contact: `expires` maps the contact's own parameter (`None`
/// absent, `Some(None)` malformed) to its effective value.
fn contact(
    name_addr: &NameAddr,
    text: &str,
    expires: impl Fn(Option<Option<u32>>) -> u32,
    config: &RegistrarConfig,
) -> Result<RequestedContact, RegisterError> {
    let bad = |why: &str| RegisterError::BadContact(format!("{text}: {why}"));
    if !name_addr.uri.is_sip() {
        return Err(bad("not a SIP URI"));
    }
    let mut uri = Vec::with_capacity(64);
    name_addr.uri.write_to(&mut uri);
    let uri = String::from_utf8(uri).map_err(|_| bad("URI is not UTF-8"))?;
    let params = &name_addr.params;

    let expires = match expires(params.get("expires").map(|v| v.and_then(parse_delta))) {
        0 => 0,
        n if n < config.min_expires => {
            return Err(RegisterError::IntervalTooBrief {
                min: config.min_expires,
            });
        }
        n => n.min(config.max_expires),
    };
    let q = match params.get("q") {
        None => None,
        Some(v) => {
            let q = v
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.parse::<f32>().ok())
                .filter(|q| (0.0..=1.0).contains(q))
                .ok_or_else(|| bad("q must be a number from 0 to 1"))?;
            Some(q)
        }
    };
    let instance = match params.get("+sip.instance") {
        None => None,
        Some(v) => {
            let v = v
                .and_then(|v| std::str::from_utf8(v).ok())
                .map(|v| {
                    v.strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .unwrap_or(v)
                })
                .filter(|v| !v.is_empty())
                .ok_or_else(|| bad("empty +sip.instance"))?;
            Some(v.to_string())
        }
    };
    let reg_id = match params.get("reg-id") {
        None => None,
        Some(v) => Some(
            v.and_then(parse_delta)
                .filter(|&n| n > 0)
                .ok_or_else(|| bad("reg-id must be a positive integer"))?,
        ),
    };
    Ok(RequestedContact {
        uri,
        expires,
        q,
        reg_id: instance.as_ref().and(reg_id),
        instance,
    })
}

/// `delta-seconds`; values above 2^32-1 saturate. `None` when malformed.
fn parse_delta(v: &[u8]) -> Option<u32> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: u64 = 0;
    for &d in v {
        n = (n * 10 + u64::from(d - b'0')).min(u64::from(u32::MAX));
    }
    u32::try_from(n).ok()
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::register_msg;

    fn parse(contacts: &[&str], extra: &str) -> Result<RegisterRequest, RegisterError> {
        parse_register(
            &register_msg("alice", contacts, extra, "c1", 1),
            &RegistrarConfig::default(),
        )
    }

    #[test]
    fn reads_aor_contacts_and_headers() {
        let msg = register_msg(
            "alice",
            &[
                "\"Alice\" <sip:alice@192.168.1.20:5060;transport=udp>;expires=120;q=0.7",
                "sip:alice@10.0.0.1;q=1.0, <sips:alice@host.example.com>",
            ],
            "User-Agent:  Phone/2.1 \r\nExpires: 300\r\n",
            "call-1@host",
            42,
        );
        let r = parse_register(&msg, &RegistrarConfig::default()).unwrap();
        assert_eq!(r.aor, "alice");
        assert_eq!(r.call_id, "call-1@host");
        assert_eq!(r.cseq, 42);
        assert_eq!(r.user_agent.as_deref(), Some("Phone/2.1"));
        assert!(!r.star && !r.is_query());
        let got: Vec<_> = r
            .contacts
            .iter()
            .map(|c| (c.uri.as_str(), c.expires, c.q))
            .collect();
        assert_eq!(
            got,
            vec![
                ("sip:alice@192.168.1.20:5060;transport=udp", 120, Some(0.7)),
                ("sip:alice@10.0.0.1", 300, Some(1.0)),
                ("sips:alice@host.example.com", 300, None),
            ]
        );
    }

    #[test]
    fn expires_precedence_and_limits() {
        let e =
            |contact: &str, extra: &str| parse(&[contact], extra).map(|r| r.contacts[0].expires);
        assert_eq!(e("<sip:a@h>", "").unwrap(), 3600);
        assert_eq!(e("<sip:a@h>", "Expires: 600\r\n").unwrap(), 600);
        assert_eq!(e("<sip:a@h>;expires=90", "Expires: 600\r\n").unwrap(), 90);
        assert_eq!(e("<sip:a@h>;expires=0", "Expires: 600\r\n").unwrap(), 0);
        assert_eq!(e("<sip:a@h>", "Expires: 0\r\n").unwrap(), 0);
        // Clamped to the maximum, even beyond 2^32-1.
        assert_eq!(e("<sip:a@h>;expires=7200", "").unwrap(), 3600);
        assert_eq!(e("<sip:a@h>;expires=99999999999", "").unwrap(), 3600);
        // Malformed values count as the default.
        assert_eq!(
            e("<sip:a@h>;expires=soon", "Expires: 600\r\n").unwrap(),
            3600
        );
        assert_eq!(e("<sip:a@h>", "Expires: -1\r\n").unwrap(), 3600);
        assert!(matches!(
            e("<sip:a@h>;expires=30", ""),
            Err(RegisterError::IntervalTooBrief { min: 60 })
        ));
        assert!(matches!(
            e("<sip:a@h>", "Expires: 59\r\n"),
            Err(RegisterError::IntervalTooBrief { min: 60 })
        ));
        // One brief contact fails the whole request.
        assert!(matches!(
            parse(&["<sip:a@h>", "<sip:b@h>;expires=1"], ""),
            Err(RegisterError::IntervalTooBrief { .. })
        ));
        // A default below the minimum is raised to it.
        let config = RegistrarConfig {
            default_expires: 10,
            ..RegistrarConfig::default()
        };
        let r = parse_register(&register_msg("a", &["<sip:a@h>"], "", "c", 1), &config);
        assert_eq!(r.unwrap().contacts[0].expires, 60);
    }

    #[test]
    fn star_rules() {
        let r = parse(&["*"], "Expires: 0\r\n").unwrap();
        assert!(r.star && r.contacts.is_empty() && !r.is_query());
        for (contacts, extra) in [
            (&["*"][..], ""),
            (&["*"][..], "Expires: 60\r\n"),
            (&["*", "<sip:a@h>"][..], "Expires: 0\r\n"),
            (&["*", "*"][..], "Expires: 0\r\n"),
        ] {
            assert!(
                matches!(parse(contacts, extra), Err(RegisterError::BadStar)),
                "{contacts:?} {extra:?}"
            );
        }
        assert!(parse(&[], "").unwrap().is_query());
    }

    #[test]
    fn bad_contacts() {
        for c in [
            "<tel:+15551234>",
            "<mailto:a@example.com>",
            "<sip:a@h>;q=1.5",
            "<sip:a@h>;q=-0.1",
            "<sip:a@h>;q=high",
            "<sip:a@h>;q",
            "<sip:a@h>;+sip.instance",
            "<sip:a@h>;+sip.instance=\"<urn:uuid:1>\";reg-id=x",
        ] {
            let r = parse(&[c], "");
            assert!(matches!(r, Err(RegisterError::BadContact(_))), "{c}: {r:?}");
        }
    }

    #[test]
    fn instance_and_reg_id() {
        let r = parse(
            &["<sip:a@10.0.0.5;ob>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>\";reg-id=1"],
            "",
        )
        .unwrap();
        let c = &r.contacts[0];
        assert_eq!(c.uri, "sip:a@10.0.0.5;ob");
        assert_eq!(
            c.instance.as_deref(),
            Some("<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>")
        );
        assert_eq!(c.reg_id, Some(1));
        // reg-id without an instance is ignored.
        let r = parse(&["<sip:a@10.0.0.5>;reg-id=1"], "").unwrap();
        assert_eq!(r.contacts[0].reg_id, None);
    }

    #[test]
    fn missing_headers() {
        let raw = "REGISTER sip:pbx.example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n\
                   From: <sip:a@pbx>;tag=1\r\nTo: <sip:pbx.example.com>\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\n\
                   Content-Length: 0\r\n\r\n";
        let msg = sip::message::parse_datagram(raw.as_bytes().to_vec().into()).unwrap();
        assert!(matches!(
            parse_register(&msg, &RegistrarConfig::default()),
            Err(RegisterError::Missing("To user"))
        ));
        let mut msg = register_msg("a", &[], "", "c", 1);
        msg.headers.remove(&HeaderName::CallId);
        assert!(matches!(
            parse_register(&msg, &RegistrarConfig::default()),
            Err(RegisterError::Missing("Call-ID"))
        ));
        let mut msg = register_msg("a", &[], "", "c", 1);
        msg.headers.remove(&HeaderName::CSeq);
        assert!(matches!(
            parse_register(&msg, &RegistrarConfig::default()),
            Err(RegisterError::Missing("CSeq"))
        ));
        let mut msg = register_msg("a", &[], "", "c", 1);
        msg.headers.remove(&HeaderName::To);
        assert!(matches!(
            parse_register(&msg, &RegistrarConfig::default()),
            Err(RegisterError::Missing("To"))
        ));
    }

    #[test]
    fn helpers() {
        assert_eq!(parse_delta(b"0"), Some(0));
        assert_eq!(parse_delta(b"4294967296"), Some(u32::MAX));
        assert_eq!(parse_delta(b""), None);
        assert_eq!(parse_delta(b"1a"), None);
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
