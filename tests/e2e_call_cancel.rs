//! CANCEL and the races around it, SIPp caller → tandem → SIPp callee:
//! CANCEL before the answer (A gets 200 and 487, the callee gets a CANCEL
//! and answers 487), a 200 that crosses the CANCEL (tandem ACKs it, then
//! BYEs it), and no answer within the route's `timeout_s` (A gets 480, the
//! callee gets a CANCEL).

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};
use support::ua::{Ua, sdp};
use support::{CallConfig, Msg, Sipp, SippTransport, param, short_start};

const CALLS: u32 = 3;

/// The final responses the caller got to its INVITEs, as `487 Request
/// Terminated`.
fn invite_finals(received: &[Msg]) -> Vec<String> {
    received
        .iter()
        .filter(|m| m.code().is_some_and(|c| c >= 200) && m.cseq_method() == "INVITE")
        .map(short_start)
        .collect()
}

/// Method names of the requests the callee got, per B-leg Call-ID, in order.
fn requests_per_call(received: &[Msg]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for m in received {
        let Some(method) = m.method() else { continue };
        let id = m.must("Call-ID").to_string();
        match out.iter_mut().find(|(c, _)| *c == id) {
            Some((_, v)) => v.push(method.to_string()),
            None => out.push((id, vec![method.to_string()])),
        }
    }
    out
}

fn cancel_before_answer(transport: SippTransport) {
    let mut uas = Sipp::server("uas_cancelled.xml")
        .transport(transport)
        .calls(CALLS)
        .timeout(Duration::from_secs(15))
        .spawn();
    let tandem = CallConfig::new().route("", &[uas.target()]).start();
    let uac = Sipp::client("uac_cancel.xml", tandem.addr(transport))
        .var("PAUSE_MS", "600")
        .transport(transport)
        .calls(CALLS)
        .timeout(Duration::from_secs(15))
        .run();
    uac.assert_success();
    let uas = uas.wait();
    uas.assert_success();

    // A: 200 to the CANCEL, one 487 per call (its ACK matched).
    let at_a = uac.received();
    assert_eq!(
        invite_finals(&at_a),
        vec!["487 Request Terminated".to_string(); CALLS as usize],
        "{}",
        uac.report()
    );
    let cancel_ok = at_a
        .iter()
        .filter(|m| m.code() == Some(200) && m.cseq_method() == "CANCEL")
        .count();
    assert_eq!(cancel_ok, CALLS as usize, "{}", uac.report());

    // B: INVITE, CANCEL, ACK (of its 487) in every call; the CANCEL
    // carries the INVITE's branch (RFC 3261 §9.1).
    let at_b = uas.received();
    for (id, methods) in requests_per_call(&at_b) {
        assert_eq!(
            methods,
            ["INVITE", "CANCEL", "ACK"],
            "B leg {id}:\n{}",
            uas.report()
        );
    }
    for inv in at_b.iter().filter(|m| m.is_request("INVITE")) {
        let id = inv.must("Call-ID");
        let cancel = at_b
            .iter()
            .find(|m| m.is_request("CANCEL") && m.header("Call-ID") == Some(id))
            .expect("a CANCEL per B leg");
        assert_eq!(
            param(cancel.must("Via"), "branch"),
            param(inv.must("Via"), "branch"),
            "CANCEL branch:\n{}\n{}",
            inv.text(),
            cancel.text()
        );
        assert_eq!(cancel.cseq_num(), inv.cseq_num(), "{}", cancel.text());
        assert_eq!(cancel.must("To"), inv.must("To"), "{}", cancel.text());
    }
    tandem.assert_idle(Duration::from_secs(5));
}

#[test]
fn cancel_before_answer_over_udp() {
    cancel_before_answer(SippTransport::Udp);
}

#[test]
fn cancel_before_answer_over_tcp() {
    cancel_before_answer(SippTransport::Tcp);
}

fn answer_crossing_cancel(transport: SippTransport) {
    let mut uas = Sipp::server("uas_cancel_crossing.xml")
        .transport(transport)
        .calls(CALLS)
        .timeout(Duration::from_secs(15))
        .spawn();
    let tandem = CallConfig::new().route("", &[uas.target()]).start();
    let uac = Sipp::client("uac_cancel.xml", tandem.addr(transport))
        .var("PAUSE_MS", "600")
        .transport(transport)
        .calls(CALLS)
        .timeout(Duration::from_secs(15))
        .run();
    uac.assert_success();
    let uas = uas.wait();
    // The scenario itself requires ACK, then BYE, after the crossing 200.
    uas.assert_success();
    for (id, methods) in requests_per_call(&uas.received()) {
        assert_eq!(
            methods,
            ["INVITE", "CANCEL", "ACK", "BYE"],
            "B leg {id}:\n{}",
            uas.report()
        );
    }
    // A was cancelled: 487, never a 200 nor a BYE.
    let at_a = uac.received();
    assert_eq!(
        invite_finals(&at_a),
        vec!["487 Request Terminated".to_string(); CALLS as usize],
        "{}",
        uac.report()
    );
    assert!(
        !at_a.iter().any(|m| m.is_request("BYE")),
        "{}",
        uac.report()
    );
    tandem.assert_idle(Duration::from_secs(5));
}

#[test]
fn answer_crossing_cancel_is_acked_then_byed_over_udp() {
    answer_crossing_cancel(SippTransport::Udp);
}

#[test]
fn answer_crossing_cancel_is_acked_then_byed_over_tcp() {
    answer_crossing_cancel(SippTransport::Tcp);
}

fn no_answer_in_time(transport: SippTransport) {
    let mut uas = Sipp::server("uas_cancelled.xml")
        .transport(transport)
        .calls(CALLS)
        .timeout(Duration::from_secs(15))
        .spawn();
    let tandem = CallConfig::new()
        .route_full("", &[uas.target()], "serial", 1, &[])
        .start();
    let started = Instant::now();
    let uac = Sipp::client("uac_reject.xml", tandem.addr(transport))
        .var("CODE", "480")
        .var("PAUSE_MS", "600")
        .transport(transport)
        .calls(CALLS)
        .timeout(Duration::from_secs(15))
        .run();
    let took = started.elapsed();
    uac.assert_success();
    let uas = uas.wait();
    uas.assert_success();
    assert_eq!(
        invite_finals(&uac.received()),
        vec!["480 Temporarily Unavailable".to_string(); CALLS as usize],
        "{}",
        uac.report()
    );
    assert!(
        took >= Duration::from_secs(1),
        "480 before the 1 s ring time: {took:?}"
    );
    for (id, methods) in requests_per_call(&uas.received()) {
        assert_eq!(
            methods,
            ["INVITE", "CANCEL", "ACK"],
            "B leg {id}:\n{}",
            uas.report()
        );
    }
    tandem.assert_idle(Duration::from_secs(5));
}

#[test]
fn no_answer_in_time_gets_480_over_udp() {
    no_answer_in_time(SippTransport::Udp);
}

#[test]
fn no_answer_in_time_gets_480_over_tcp() {
    no_answer_in_time(SippTransport::Tcp);
}

/// The caller cancels before the callee sent any response: A gets 200 and
/// 487 at once. Tandem must not CANCEL the B leg before a provisional
/// response arrived (RFC 3261 §9.1); once the callee rings, the CANCEL
/// comes, and the call ends.
#[test]
fn cancel_before_the_callee_sent_anything() {
    let mut b = Ua::callee("bob", SippTransport::Udp);
    let tandem = CallConfig::new().route("", &[b.target()]).start();
    let mut a = Ua::caller("alice", SippTransport::Udp, &tandem);
    let invite = a.invite("bob", Some(&sdp(40_000, &[])), &[]);
    let at_b = b.expect_request("INVITE");
    let cancel = invite.cancel();
    a.send_req(&cancel);
    let ok = a.expect_final(&cancel);
    assert_eq!(ok.status(), 200, "{}", ok.text());
    let resp = a.expect_final(&invite);
    assert_eq!(resp.status(), 487, "{}", resp.text());
    a.ack_failure(&invite, &resp);

    b.expect_none(
        Duration::from_millis(500),
        "CANCEL before any provisional response (RFC 3261 §9.1)",
        |m| m.is_request("CANCEL"),
    );
    b.respond(&at_b, 180, "Ringing", &[], None);
    let cancel_at_b = b.expect_request("CANCEL");
    assert_eq!(
        param(cancel_at_b.must("Via"), "branch"),
        param(at_b.must("Via"), "branch")
    );
    b.respond(&cancel_at_b, 200, "OK", &[], None);
    b.respond(&at_b, 487, "Request Terminated", &[], None);
    b.expect_request("ACK");
    tandem.assert_idle(Duration::from_secs(5));
}
