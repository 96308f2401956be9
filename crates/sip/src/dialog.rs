//! Dialogs (RFC 3261 §12): the state two user agents share after an INVITE
//! is answered, and the in-dialog requests built from it.

use crate::message::{HeaderName, Message, Method, NameAddr, Uri};
use crate::transport::{Target, TransportKind};
use bytes::Bytes;

/// The state of one dialog, seen from our side.
#[derive(Debug, Clone)]
pub struct Dialog {
    /// Call-ID.
    pub call_id: Bytes,
    /// Our tag (From tag when we are UAC, To tag when UAS).
    pub local_tag: Bytes,
    /// The peer's tag.
    pub remote_tag: Bytes,
    /// Our URI with display name, without tag (our From when UAC).
    pub local_uri: Bytes,
    /// The peer's URI with display name, without tag.
    pub remote_uri: Bytes,
    /// The CSeq of our last request in this dialog.
    pub local_cseq: u32,
    /// The CSeq of the peer's last request, to reject stale ones (§12.2.2).
    pub remote_cseq: Option<u32>,
    /// The peer's Contact URI: the Request-URI of our requests.
    pub remote_target: Uri,
    /// Route set, in the order our requests carry it.
    pub route_set: Vec<Bytes>,
    /// Where our requests go (transport address).
    pub target: Target,
    /// Our Contact header value.
    pub contact: Bytes,
}

/// Strips `;tag=...` from a From/To value, keeping display name, URI and
/// other parameters.
fn without_tag(value: &Bytes) -> Bytes {
    NameAddr::without_tag(value, value).unwrap_or_else(|| value.clone())
}

fn contact_uri(m: &Message) -> Option<Uri> {
    let v = m.headers.get(&HeaderName::Contact)?;
    NameAddr::parse_shared(v, v).ok().map(|n| n.uri)
}

impl Dialog {
    /// The dialog a UAC gets from a 2xx (or 1xx with To tag) to its INVITE
    /// (§12.1.2). `target` is where the INVITE went; requests keep going
    /// there unless the response names another reachable Contact.
    pub fn uac(invite: &Message, resp: &Message, target: Target, contact: Bytes) -> Option<Dialog> {
        let mut route_set: Vec<Bytes> = resp
            .headers
            .get_all(&HeaderName::RecordRoute)
            .cloned()
            .collect();
        route_set.reverse();
        let remote_target = contact_uri(resp).or_else(|| invite.uri().cloned())?;
        Some(Dialog {
            call_id: invite.call_id()?.clone(),
            local_tag: invite.from_tag()?,
            remote_tag: resp.to_tag().unwrap_or_default(),
            local_uri: without_tag(invite.headers.get(&HeaderName::From)?),
            remote_uri: without_tag(resp.headers.get(&HeaderName::To)?),
            local_cseq: invite.cseq()?.seq,
            remote_cseq: None,
            target: next_hop(&route_set, &remote_target, target),
            remote_target,
            route_set,
            contact,
        })
    }

    /// The dialog a UAS gets from an INVITE it answers with `local_tag`
    /// (§12.1.1). `reply_to` is where in-dialog requests to the peer go
    /// (the address the INVITE came from, which also works behind NAT).
    pub fn uas(
        invite: &Message,
        local_tag: &str,
        reply_to: Target,
        contact: Bytes,
    ) -> Option<Dialog> {
        let route_set: Vec<Bytes> = invite
            .headers
            .get_all(&HeaderName::RecordRoute)
            .cloned()
            .collect();
        let remote_target = contact_uri(invite)?;
        Some(Dialog {
            call_id: invite.call_id()?.clone(),
            local_tag: Bytes::copy_from_slice(local_tag.as_bytes()),
            remote_tag: invite.from_tag().unwrap_or_default(),
            local_uri: without_tag(invite.headers.get(&HeaderName::To)?),
            remote_uri: without_tag(invite.headers.get(&HeaderName::From)?),
            local_cseq: rand::random::<u16>() as u32 + 1,
            remote_cseq: Some(invite.cseq()?.seq),
            target: reply_to,
            remote_target,
            route_set,
            contact,
        })
    }

    /// A new request in this dialog (§12.2.1.1); CSeq advances except for
    /// ACK and CANCEL, which reuse `cseq`.
    pub fn request(&mut self, method: Method) -> Message {
        if !matches!(method, Method::Ack | Method::Cancel) {
            self.local_cseq = self.local_cseq.wrapping_add(1);
        }
        self.request_with_cseq(method.clone(), self.local_cseq)
    }

    /// The ACK for a 2xx to the INVITE with CSeq `cseq` (§13.2.2.4).
    pub fn ack(&self, cseq: u32) -> Message {
        self.request_with_cseq(Method::Ack, cseq)
    }

    fn request_with_cseq(&self, method: Method, cseq: u32) -> Message {
        let mut m = Message::request(method.clone(), self.remote_target.clone());
        for r in &self.route_set {
            m.headers.push(HeaderName::Route, r.clone());
        }
        m.headers.push(HeaderName::MaxForwards, "70");
        m.headers
            .push(HeaderName::From, tagged(&self.local_uri, &self.local_tag));
        m.headers
            .push(HeaderName::To, tagged(&self.remote_uri, &self.remote_tag));
        m.headers.push(HeaderName::CallId, self.call_id.clone());
        m.headers.push(HeaderName::CSeq, format!("{cseq} {method}"));
        if matches!(
            method,
            Method::Invite | Method::Update | Method::Notify | Method::Refer
        ) {
            m.headers.push(HeaderName::Contact, self.contact.clone());
        }
        m
    }

    /// Checks an incoming in-dialog request's CSeq (§12.2.2): a lower one
    /// than seen before is out of order (answer 500). ACK and CANCEL are not
    /// checked.
    pub fn accept_remote_cseq(&mut self, req: &Message) -> bool {
        let Some(cseq) = req.cseq() else { return false };
        if matches!(cseq.method, Method::Ack | Method::Cancel) {
            return true;
        }
        match self.remote_cseq {
            Some(last) if cseq.seq < last => false,
            _ => {
                self.remote_cseq = Some(cseq.seq);
                true
            }
        }
    }

    /// Updates the remote target from a target refresh (re-INVITE, UPDATE
    /// or their 2xx) that carries a Contact (§12.2).
    pub fn refresh_target(&mut self, m: &Message) {
        if let Some(uri) = contact_uri(m) {
            self.remote_target = uri;
        }
    }
}

fn tagged(uri: &Bytes, tag: &Bytes) -> Bytes {
    if tag.is_empty() {
        return uri.clone();
    }
    let mut v = Vec::with_capacity(uri.len() + 5 + tag.len());
    v.extend_from_slice(uri);
    v.extend_from_slice(b";tag=");
    v.extend_from_slice(tag);
    Bytes::from(v)
}

/// Where a request goes (§8.1.2, RFC 3263 without DNS): the first route if
/// any, else the remote target, if they name an IP address; else the
/// address the dialog started with.
fn next_hop(route_set: &[Bytes], remote_target: &Uri, fallback: Target) -> Target {
    let uri = route_set
        .first()
        .and_then(|r| NameAddr::parse_shared(r, r).ok())
        .map(|n| n.uri)
        .unwrap_or_else(|| remote_target.clone());
    match uri.socket_addr() {
        Some(addr) => {
            let kind = uri
                .transport_param()
                .and_then(|t| TransportKind::from_token(t.as_bytes()))
                .unwrap_or(fallback.kind);
            Target {
                kind,
                addr,
                conn: if kind == fallback.kind && addr == fallback.addr {
                    fallback.conn
                } else {
                    None
                },
                local: None,
            }
        }
        None => fallback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::parse_datagram;

    const INVITE: &str = "INVITE sip:bob@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\nFrom: \"Alice\" <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.1:5080>\r\nCall-ID: c1\r\nCSeq: 7 INVITE\r\nContact: <sip:alice@127.0.0.1:5060>\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn uac_dialog_from_2xx_builds_in_dialog_requests() {
        let invite = parse_datagram(Bytes::from_static(INVITE.as_bytes())).unwrap();
        let ok = parse_datagram(Bytes::from_static(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\nFrom: \"Alice\" <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.1:5080>;tag=b9\r\nCall-ID: c1\r\nCSeq: 7 INVITE\r\nContact: <sip:bob@127.0.0.1:5090>\r\nRecord-Route: <sip:p2@127.0.0.1:6000;lr>\r\nRecord-Route: <sip:p1@127.0.0.1:7000;lr>\r\nContent-Length: 0\r\n\r\n")).unwrap();
        let target = Target::new(TransportKind::Udp, "127.0.0.1:5080".parse().unwrap());
        let mut d = Dialog::uac(
            &invite,
            &ok,
            target,
            Bytes::from_static(b"<sip:t@127.0.0.1>"),
        )
        .unwrap();
        assert_eq!(
            d.target.addr,
            "127.0.0.1:7000".parse().unwrap(),
            "first route of the reversed set"
        );
        let ack = d.ack(7);
        assert_eq!(ack.cseq().unwrap().seq, 7);
        let bye = d.request(Method::Bye);
        assert_eq!(bye.cseq().unwrap().seq, 8);
        assert_eq!(bye.uri().unwrap().to_string(), "sip:bob@127.0.0.1:5090");
        assert_eq!(bye.to_tag().as_deref(), Some(&b"b9"[..]));
        assert_eq!(bye.from_tag().as_deref(), Some(&b"a1"[..]));
        let routes: Vec<_> = bye.headers.get_all(&HeaderName::Route).collect();
        assert_eq!(routes.len(), 2);
        assert!(routes[0].starts_with(b"<sip:p1"));
    }

    #[test]
    fn uas_dialog_swaps_sides_and_checks_cseq() {
        let invite = parse_datagram(Bytes::from_static(INVITE.as_bytes())).unwrap();
        let target = Target::new(TransportKind::Udp, "127.0.0.1:5060".parse().unwrap());
        let mut d = Dialog::uas(
            &invite,
            "t1",
            target,
            Bytes::from_static(b"<sip:t@127.0.0.1>"),
        )
        .unwrap();
        let bye = d.request(Method::Bye);
        assert_eq!(bye.to_tag().as_deref(), Some(&b"a1"[..]));
        assert_eq!(bye.from_tag().as_deref(), Some(&b"t1"[..]));
        assert_eq!(
            bye.header_str(&HeaderName::To),
            Some("\"Alice\" <sip:alice@127.0.0.1>;tag=a1")
        );
        assert_eq!(bye.uri().unwrap().to_string(), "sip:alice@127.0.0.1:5060");
        let mut stale = invite.clone();
        stale.headers.set(HeaderName::CSeq, "6 BYE");
        assert!(!d.accept_remote_cseq(&stale));
        stale.headers.set(HeaderName::CSeq, "8 BYE");
        assert!(d.accept_remote_cseq(&stale));
    }
}
