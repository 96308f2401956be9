//! Requests inside an established call, driven by the test UA on both
//! legs: INFO, MESSAGE and NOTIFY are relayed both ways with their body,
//! content type and end-to-end headers, and their answers (code and reason)
//! come back; a request with an old CSeq gets 500, one for an unknown
//! dialog 481.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;
use support::ua::{Dialog, Ua, establish, hangup, sdp};
use support::{CallConfig, SippTransport};

/// `from` sends `method` with `body`; `to` must get it in its dialog with
/// the same body, content type and end-to-end headers, and answers
/// `code reason`, which `from` must get.
#[allow(clippy::too_many_arguments)]
fn relay(
    from: &mut Ua,
    from_d: &mut Dialog,
    to: &mut Ua,
    to_d: &Dialog,
    method: &str,
    headers: &[(&str, &str)],
    content_type: &str,
    body: &str,
    code: u16,
    reason: &str,
) {
    let token = support::unique("tok");
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    all.push(("X-E2E-Token", &token));
    let req = from.request(from_d, method, &all, Some((content_type, body)));
    let got = to.expect_where(&format!("{method} with {token}"), |m| {
        m.is_request(method) && m.header("X-E2E-Token") == Some(&token)
    });
    assert_eq!(got.must("Call-ID"), to_d.call_id, "{}", got.text());
    assert_eq!(got.to_tag().as_deref(), Some(&to_d.local_tag[..]));
    assert_eq!(got.tag_in_from().as_deref(), Some(&to_d.remote_tag[..]));
    assert_eq!(got.body_text(), body, "{method} body:\n{}", got.text());
    assert_eq!(got.header("Content-Type"), Some(content_type));
    for (n, v) in headers {
        assert_eq!(got.header(n), Some(*v), "{n} in:\n{}", got.text());
    }
    to.respond(&got, code, reason, &[("X-E2E-Answer", &token)], None);
    let resp = from.expect_final(&req);
    assert_eq!(resp.status(), code, "{}", resp.text());
    assert_eq!(resp.reason(), reason, "{}", resp.text());
    assert_eq!(
        resp.header("X-E2E-Answer"),
        Some(token.as_str()),
        "{}",
        resp.text()
    );
}

fn info_message_notify(transport: SippTransport) {
    let mut b = Ua::callee("bob", transport);
    let tandem = CallConfig::new().route("", &[b.target()]).start();
    let mut a = Ua::caller("alice", transport, &tandem);
    let mut call = establish(&mut a, &mut b, "bob", &sdp(40_000, &[]), &sdp(42_000, &[]));

    for a_to_b in [true, false] {
        let (from, from_d, to, to_d) = if a_to_b {
            (&mut a, &mut call.a, &mut b, &call.b)
        } else {
            (&mut b, &mut call.b, &mut a, &call.a)
        };
        relay(
            from,
            from_d,
            to,
            to_d,
            "INFO",
            &[],
            "application/dtmf-relay",
            "Signal=5\r\nDuration=160\r\n",
            200,
            "OK",
        );
        relay(
            from,
            from_d,
            to,
            to_d,
            "MESSAGE",
            &[],
            "text/plain;charset=UTF-8",
            "Hello through the B2BUA \u{2014} caf\u{e9}",
            202,
            "Accepted",
        );
        relay(
            from,
            from_d,
            to,
            to_d,
            "NOTIFY",
            &[
                ("Event", "talk"),
                ("Subscription-State", "active;expires=60"),
            ],
            "message/sipfrag;version=2.0",
            "SIP/2.0 200 OK\r\n",
            200,
            "OK",
        );
        // A failure answer is relayed with its code and reason too.
        relay(
            from,
            from_d,
            to,
            to_d,
            "INFO",
            &[],
            "application/x-unknown",
            "?",
            415,
            "Unsupported Media Type",
        );
    }
    hangup(&mut a, &mut call.a, &mut b);
    tandem.assert_idle(Duration::from_secs(5));
}

#[test]
fn info_message_notify_relayed_both_ways_over_udp() {
    info_message_notify(SippTransport::Udp);
}

#[test]
fn info_message_notify_relayed_both_ways_over_tcp() {
    info_message_notify(SippTransport::Tcp);
}

/// A request whose CSeq is lower than the last one on its leg gets 500
/// (RFC 3261 §12.2.2) and is not relayed; a request for a dialog tandem
/// does not know gets 481 (§12.2.2).
#[test]
fn old_cseq_gets_500_and_unknown_dialog_gets_481() {
    let mut b = Ua::callee("bob", SippTransport::Udp);
    let tandem = CallConfig::new().route("", &[b.target()]).start();
    let mut a = Ua::caller("alice", SippTransport::Udp, &tandem);
    let mut call = establish(&mut a, &mut b, "bob", &sdp(40_000, &[]), &sdp(42_000, &[]));

    // CSeq 11: relayed.
    call.a.local_cseq = 10;
    let req = a.request(&mut call.a, "INFO", &[], Some(("text/plain", "x")));
    let got = b.expect_request("INFO");
    b.respond(&got, 200, "OK", &[], None);
    assert_eq!(a.expect_final(&req).status(), 200);

    // CSeq 4 after 11: refused.
    call.a.local_cseq = 3;
    let resp = a.transact(&mut call.a, "INFO", &[], Some(("text/plain", "old")));
    assert_eq!(resp.status(), 500, "{}", resp.text());
    b.expect_none(
        Duration::from_millis(300),
        "relayed INFO with an old CSeq",
        |m| m.is_request("INFO"),
    );

    let mut stranger = call.a.clone();
    stranger.remote_tag = "no-such-tag".into();
    let resp = a.transact(&mut stranger, "INFO", &[], None);
    assert_eq!(resp.status(), 481, "{}", resp.text());

    call.a.local_cseq = 20;
    hangup(&mut a, &mut call.a, &mut b);
    tandem.assert_idle(Duration::from_secs(5));
}

/// Both sides hang up at the same moment: each BYE gets 200 from tandem,
/// each side also gets tandem's BYE (answered 481 or 200: its dialog is
/// already gone), and the call ends.
#[test]
fn both_sides_hang_up_at_once() {
    let mut b = Ua::callee("bob", SippTransport::Udp);
    let tandem = CallConfig::new().route("", &[b.target()]).start();
    let mut a = Ua::caller("alice", SippTransport::Udp, &tandem);
    let mut call = establish(&mut a, &mut b, "bob", &sdp(40_000, &[]), &sdp(42_000, &[]));
    let bye_a = a.request(&mut call.a, "BYE", &[], None);
    let bye_b = b.request(&mut call.b, "BYE", &[], None);
    for (ua, own) in [(&mut a, &bye_a), (&mut b, &bye_b)] {
        let resp = ua.expect_final(own);
        assert_eq!(resp.status(), 200, "{}", resp.text());
        if let Some(theirs) = ua.wait_for(Duration::from_millis(500), |m| m.is_request("BYE")) {
            ua.respond(&theirs, 481, "Call/Transaction Does Not Exist", &[], None);
        }
    }
    tandem.assert_idle(Duration::from_secs(5));
}

/// The two legs on different transports (caller over UDP, callee over TCP
/// and the other way round): each leg's Contact names its own transport,
/// and requests from either side cross over.
#[test]
fn legs_on_different_transports() {
    for (ta, tb) in [
        (SippTransport::Udp, SippTransport::Tcp),
        (SippTransport::Tcp, SippTransport::Udp),
    ] {
        let mut b = Ua::callee("bob", tb);
        let tandem = CallConfig::new().route("", &[b.target()]).start();
        let mut a = Ua::caller("alice", ta, &tandem);
        let mut call = establish(&mut a, &mut b, "bob", &sdp(40_000, &[]), &sdp(42_000, &[]));
        let tcp_contact = |m: &support::Msg| {
            m.must("Contact")
                .to_ascii_lowercase()
                .contains("transport=tcp")
        };
        assert_eq!(
            tcp_contact(&call.invite_at_b),
            tb == SippTransport::Tcp,
            "{}",
            call.invite_at_b.text()
        );
        assert_eq!(
            tcp_contact(&call.ok_at_a),
            ta == SippTransport::Tcp,
            "{}",
            call.ok_at_a.text()
        );
        relay(
            &mut a,
            &mut call.a,
            &mut b,
            &call.b,
            "INFO",
            &[],
            "text/plain",
            "a to b",
            200,
            "OK",
        );
        relay(
            &mut b,
            &mut call.b,
            &mut a,
            &call.a,
            "MESSAGE",
            &[],
            "text/plain",
            "b to a",
            200,
            "OK",
        );
        hangup(&mut b, &mut call.b, &mut a);
        tandem.assert_idle(Duration::from_secs(5));
    }
}
