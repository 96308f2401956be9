//! What a UAS without calls answers (RFC 3261 §8.2, §9.2, §12.2.2, §16.3,
//! RFC 3261 §8.2.2.1 / §21.4.17): 481 for unknown dialogs and transactions,
//! 501 / 405 with Allow, 483 for Max-Forwards 0, 420 with Unsupported,
//! 415 with Accept, 416 for unknown URI schemes. Raw UDP and TCP.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;
use support::{Msg, Req, Tandem, TcpPeer, UdpPeer};

/// Sends `req` over UDP and checks the final status and the To tag.
fn check(udp: &UdpPeer, req: &Req, code: u16) -> Msg {
    let resp = udp.transact(req);
    assert_eq!(
        resp.status(),
        code,
        "{} {} answered:\n{}",
        req.method,
        req.uri,
        resp.text()
    );
    let tag = resp.to_tag();
    assert!(
        tag.as_deref().is_some_and(|t| !t.is_empty()),
        "final response without To tag:\n{}",
        resp.text()
    );
    resp
}

/// The ACK for a non-2xx INVITE answer, so Timer G stops.
fn ack(udp: &UdpPeer, req: &Req, resp: &Msg) {
    if req.method == "INVITE" {
        udp.send_req(&req.ack_for(resp));
    }
}

#[test]
fn cancel_matching_no_transaction_gets_481() {
    let tandem = Tandem::start();
    let udp = UdpPeer::new(tandem.udp());
    let cancel = udp.req("CANCEL");
    let resp = check(&udp, &cancel, 481);
    assert_eq!(resp.reason(), "Call/Transaction Does Not Exist");
}

#[test]
fn dialog_requests_without_dialog_get_481() {
    let tandem = Tandem::start();
    let udp = UdpPeer::new(tandem.udp());
    for method in ["BYE", "INFO", "UPDATE", "PRACK", "NOTIFY", "REFER"] {
        let mut req = udp.req(method);
        if method == "NOTIFY" {
            req = req
                .set("Event", "dialog")
                .set("Subscription-State", "terminated");
        }
        if method == "REFER" {
            req = req.set("Refer-To", "<sip:someone@tandem.invalid>");
        }
        if method == "PRACK" {
            req = req.set("RAck", "1 1 INVITE");
        }
        check(&udp, &req, 481);
    }
}

#[test]
fn in_dialog_requests_for_unknown_dialogs_get_481() {
    // §12.2.2: a request with a To tag that matches no dialog.
    let tandem = Tandem::start();
    let udp = UdpPeer::new(tandem.udp());
    for method in ["OPTIONS", "BYE", "INFO", "MESSAGE", "INVITE"] {
        let mut req = udp
            .req(method)
            .set("To", "<sip:service@tandem.invalid>;tag=no-such-dialog");
        if method == "INVITE" {
            req = req.sdp();
        }
        let resp = check(&udp, &req, 481);
        // The response keeps the request's To tag.
        assert_eq!(
            resp.to_tag().as_deref(),
            Some("no-such-dialog"),
            "{}",
            resp.text()
        );
        ack(&udp, &req, &resp);
    }
}

#[test]
fn unknown_method_gets_501_with_allow() {
    let tandem = Tandem::start();
    let udp = UdpPeer::new(tandem.udp());
    let req = udp.req("FROBNICATE");
    let resp = check(&udp, &req, 501);
    let allow = resp.must("Allow");
    for m in ["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"] {
        assert!(allow.contains(m), "Allow: {allow}");
    }
    assert!(!allow.contains("FROBNICATE"), "Allow: {allow}");
}

#[test]
fn known_but_unsupported_methods_get_405_with_allow() {
    let tandem = Tandem::start();
    let udp = UdpPeer::new(tandem.udp());
    for method in ["SUBSCRIBE", "PUBLISH"] {
        let req = udp.req(method).set("Event", "presence");
        let resp = check(&udp, &req, 405);
        let allow = resp.must("Allow");
        assert!(
            allow.contains("INVITE") && !allow.contains(method),
            "Allow: {allow}"
        );
    }
}

#[test]
fn max_forwards_zero_gets_483() {
    let tandem = Tandem::start();
    let udp = UdpPeer::new(tandem.udp());
    for method in ["INVITE", "MESSAGE", "BYE"] {
        let mut req = udp.req(method).set("Max-Forwards", "0");
        if method == "INVITE" {
            req = req.sdp();
        }
        // No 100 Trying first: the INVITE is rejected before processing.
        udp.send_req(&req);
        let resp = udp.expect();
        assert_eq!(resp.status(), 483, "{method}: {}", resp.text());
        req.assert_answered_by(&resp);
        ack(&udp, &req, &resp);
    }
}

#[test]
fn unknown_require_gets_420_with_unsupported() {
    let tandem = Tandem::start();
    let udp = UdpPeer::new(tandem.udp());
    let req = udp.req("INVITE").sdp().set("Require", "foo");
    let resp = check(&udp, &req, 420);
    assert_eq!(resp.must("Unsupported"), "foo");
    ack(&udp, &req, &resp);

    let req = udp.req("OPTIONS").set("Require", "100rel, foo");
    let resp = check(&udp, &req, 420);
    let unsupported: Vec<&str> = resp.must("Unsupported").split(',').map(str::trim).collect();
    assert!(unsupported.contains(&"foo"), "{unsupported:?}");

    // Proxy-Require is for proxies: a UAS ignores it (§8.2.2.3).
    let req = udp.req("OPTIONS").set("Proxy-Require", "foo");
    assert_eq!(udp.transact(&req).status(), 200);
}

#[test]
fn invite_with_a_non_sdp_body_gets_415_with_accept() {
    let tandem = Tandem::start();
    let udp = UdpPeer::new(tandem.udp());
    let req = udp
        .req("INVITE")
        .body("text/plain", "not a session description");
    let resp = check(&udp, &req, 415);
    assert!(
        resp.must("Accept").contains("application/sdp"),
        "{}",
        resp.text()
    );
    ack(&udp, &req, &resp);
}

#[test]
fn unknown_uri_scheme_gets_416_and_known_ones_pass() {
    let tandem = Tandem::start();
    let udp = UdpPeer::new(tandem.udp());
    let req = udp
        .req("MESSAGE")
        .uri("mailto:someone@example.com")
        .body("text/plain", "x");
    check(&udp, &req, 416);
    let req = udp.req("INVITE").uri("http://example.com/").sdp();
    let resp = check(&udp, &req, 416);
    ack(&udp, &req, &resp);
    // sip:, sips: and tel: pass the checks and reach the transaction user.
    for uri in [
        "sip:bob@tandem.invalid",
        "sips:bob@tandem.invalid",
        "tel:+15551234567",
    ] {
        let req = udp.req("MESSAGE").uri(uri).body("text/plain", "x");
        check(&udp, &req, 480);
    }
}

#[test]
fn ack_matching_nothing_and_stray_responses_get_nothing() {
    let tandem = Tandem::start();
    let udp = UdpPeer::new(tandem.udp());
    let ack = udp
        .req("ACK")
        .set("To", "<sip:service@tandem.invalid>;tag=gone");
    udp.send_req(&ack);
    let stray = b"SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKstray\r\n\
From: <sip:a@tandem.invalid>;tag=1\r\n\
To: <sip:b@tandem.invalid>;tag=2\r\n\
Call-ID: stray-response\r\n\
CSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n";
    udp.send(stray);
    udp.expect_silence(Duration::from_millis(300));
    let req = udp.req("OPTIONS");
    assert_eq!(udp.transact(&req).status(), 200);
}

#[test]
fn prechecks_apply_over_tcp_too() {
    let tandem = Tandem::start();
    let mut tcp = TcpPeer::connect(tandem.tcp());
    let cases: Vec<(Req, u16)> = vec![
        (tcp.req("CANCEL"), 481),
        (tcp.req("BYE"), 481),
        (tcp.req("FROBNICATE"), 501),
        (tcp.req("PUBLISH").set("Event", "presence"), 405),
        (tcp.req("INVITE").sdp().set("Max-Forwards", "0"), 483),
        (tcp.req("OPTIONS").set("Require", "foo"), 420),
        (tcp.req("OPTIONS"), 200),
    ];
    for (req, code) in cases {
        let resp = tcp.transact(&req);
        assert_eq!(resp.status(), code, "{}:\n{}", req.method, resp.text());
        if req.method == "INVITE" {
            tcp.send_req(&req.ack_for(&resp));
        }
    }
}

#[test]
fn invite_with_an_unknown_content_encoding_gets_415() {
    // §8.2.3: an unknown Content-Encoding gets 415 listing Accept-Encoding.
    let tandem = Tandem::start();
    let udp = UdpPeer::new(tandem.udp());
    let req = udp.req("INVITE").sdp().set("Content-Encoding", "gzip");
    let resp = check(&udp, &req, 415);
    assert_eq!(resp.must("Accept-Encoding"), "identity");
    ack(&udp, &req, &resp);
}
