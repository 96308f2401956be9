//! Via handling (RFC 3261 §18.2.1 / §18.2.2, RFC 3581): `received` and
//! `rport` are stamped on the response's Via, and UDP responses go to
//! received/rport, or to received plus the sent-by port.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;
use support::{Tandem, UdpPeer, param, unique};

fn via(host_port: &str, extra: &str) -> String {
    format!(
        "SIP/2.0/UDP {host_port};branch={}{extra}",
        unique("z9hG4bK")
    )
}

#[test]
fn empty_rport_is_filled_with_the_source_port() {
    let tandem = Tandem::start();
    let udp = UdpPeer::new(tandem.udp());
    // sent-by names this socket; rport asks for the source port anyway.
    let req = udp
        .req("OPTIONS")
        .set("Via", &via(&udp.local.to_string(), ";rport"));
    let resp = udp.transact(&req);
    let v = resp.must("Via");
    assert_eq!(param(v, "rport"), Some(udp.local.port().to_string()), "{v}");
    assert_eq!(param(v, "received").as_deref(), Some("127.0.0.1"), "{v}");
    // The rest of the Via is the request's.
    assert!(v.starts_with(&format!("SIP/2.0/UDP {}", udp.local)), "{v}");
}

#[test]
fn sent_by_matching_the_source_needs_no_received() {
    let tandem = Tandem::start();
    let udp = UdpPeer::new(tandem.udp());
    let sent = via(&udp.local.to_string(), "");
    let req = udp.req("OPTIONS").set("Via", &sent);
    let resp = udp.transact(&req);
    assert_eq!(resp.must("Via"), sent, "the Via comes back unchanged");
}

#[test]
fn host_name_with_rport_gets_received_and_the_answer_comes_back() {
    let tandem = Tandem::start();
    let udp = UdpPeer::new(tandem.udp());
    let req = udp
        .req("OPTIONS")
        .set("Via", &via("client.invalid", ";rport"));
    let resp = udp.transact(&req);
    let v = resp.must("Via");
    assert_eq!(param(v, "received").as_deref(), Some("127.0.0.1"), "{v}");
    assert_eq!(param(v, "rport"), Some(udp.local.port().to_string()), "{v}");

    // An INVITE too: the 100, the 404 and its retransmissions follow rport.
    let invite = udp
        .req("INVITE")
        .sdp()
        .set("Via", &via("client.invalid:9", ";rport"));
    udp.send_req(&invite);
    assert_eq!(udp.expect().status(), 100);
    let resp = udp.expect();
    assert_eq!(resp.status(), 404);
    invite.assert_answered_by(&resp);
    udp.send_req(&invite.ack_for(&resp));
}

#[test]
fn host_name_without_rport_goes_to_received_and_the_sent_by_port() {
    let tandem = Tandem::start();
    // Sent from `from`, the Via names the port of `to`: §18.2.2 sends the
    // response to received (127.0.0.1) and the sent-by port.
    let from = UdpPeer::new(tandem.udp());
    let to = UdpPeer::new(tandem.udp());
    let req = from.req("OPTIONS").set(
        "Via",
        &via(&format!("client.invalid:{}", to.local.port()), ""),
    );
    from.send_req(&req);
    let resp = to.expect();
    assert_eq!(resp.status(), 200, "{}", resp.text());
    req.assert_answered_by(&resp);
    let v = resp.must("Via");
    assert_eq!(param(v, "received").as_deref(), Some("127.0.0.1"), "{v}");
    assert_eq!(param(v, "rport"), None, "no rport was asked for: {v}");
    from.expect_silence(Duration::from_millis(200));

    // Same with the socket's own port, as a client without rport does it.
    let req = to.req("OPTIONS").set(
        "Via",
        &via(&format!("client.invalid:{}", to.local.port()), ""),
    );
    let resp = to.transact(&req);
    assert_eq!(resp.status(), 200);
}

#[test]
fn foreign_ip_sent_by_gets_received_and_the_sent_by_port() {
    let tandem = Tandem::start();
    let from = UdpPeer::new(tandem.udp());
    let to = UdpPeer::new(tandem.udp());
    // 192.0.2.1 (TEST-NET) is not where the request came from.
    let req = from
        .req("MESSAGE")
        .body("text/plain", "hi")
        .set("Via", &via(&format!("192.0.2.1:{}", to.local.port()), ""));
    from.send_req(&req);
    let resp = to.expect();
    assert_eq!(resp.status(), 480, "{}", resp.text());
    let v = resp.must("Via");
    assert!(
        v.starts_with(&format!("SIP/2.0/UDP 192.0.2.1:{}", to.local.port())),
        "{v}"
    );
    assert_eq!(param(v, "received").as_deref(), Some("127.0.0.1"), "{v}");
    from.expect_silence(Duration::from_millis(200));
}

#[test]
fn several_vias_come_back_in_order() {
    // §8.2.6.2: the response's Vias equal the request's, in order; only the
    // top one is stamped.
    let tandem = Tandem::start();
    let udp = UdpPeer::new(tandem.udp());
    let top = via("client.invalid", ";rport");
    let second = "SIP/2.0/UDP proxy.invalid:5070;branch=z9hG4bKproxy1;received=192.0.2.7";
    let third = "SIP/2.0/TCP origin.invalid;branch=z9hG4bKorigin";
    let mut req = udp.req("OPTIONS").set("Via", &top);
    req.headers
        .insert(1, ("Via".into(), format!("{second}, {third}")));
    let resp = udp.transact(&req);
    let vias: Vec<String> = resp
        .header_all("Via")
        .iter()
        .flat_map(|v| v.split(", ").map(str::to_string))
        .collect();
    assert_eq!(vias.len(), 3, "{}", resp.text());
    assert!(vias[0].starts_with(&top), "{}", vias[0]);
    assert_eq!(vias[1], second);
    assert_eq!(vias[2], third);
}
