//! Offers inside the call, driven by the project's test UA on both legs
//! (UDP and TCP): re-INVITE and UPDATE from either side relayed with the
//! SDP rewritten, hold and resume passing through; glare (a second offer
//! while one is pending) answered 491; BYE during a pending re-INVITE
//! (the re-INVITE gets 487 and the call ends cleanly).

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::time::Duration;
use support::ua::{
    Dialog, Established, Incoming, Ua, establish, hangup, sdp, sdp_audio, sdp_direction,
};
use support::{CallConfig, Msg, Sipp, SippTransport, Tandem};

/// Tandem with one route to a callee, the callee, the caller, and the call
/// between them (A's SDP on `port_a`, B's on `port_b`).
struct Call {
    tandem: Tandem,
    a: Ua,
    b: Ua,
    call: Established,
}

const PORT_A: u16 = 40_000;
const PORT_B: u16 = 42_000;

fn call(transport: SippTransport) -> Call {
    let mut b = Ua::callee("bob", transport);
    let tandem = CallConfig::new().route("", &[b.target()]).start();
    let mut a = Ua::caller("alice", transport, &tandem);
    let call = establish(&mut a, &mut b, "bob", &sdp(PORT_A, &[]), &sdp(PORT_B, &[]));
    Call { tandem, a, b, call }
}

/// Tandem's media address facing A (from the 200 A got) and facing B (from
/// the INVITE B got).
fn anchors(c: &Call) -> (SocketAddr, SocketAddr) {
    (
        sdp_audio(&c.call.ok_at_a.body_text()),
        sdp_audio(&c.call.invite_at_b.body_text()),
    )
}

/// The `o=` version of an SDP body.
fn o_version(body: &str) -> u64 {
    body.lines()
        .find_map(|l| l.trim().strip_prefix("o="))
        .and_then(|o| o.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no o= version in:\n{body}"))
}

/// Asserts that `m` is a request of the dialog `d` (as `d`'s owner sees it).
fn assert_in_dialog(m: &Msg, d: &Dialog) {
    assert_eq!(m.must("Call-ID"), d.call_id, "{}", m.text());
    assert_eq!(
        m.to_tag().as_deref(),
        Some(&d.local_tag[..]),
        "{}",
        m.text()
    );
    assert_eq!(
        m.tag_in_from().as_deref(),
        Some(&d.remote_tag[..]),
        "{}",
        m.text()
    );
}

/// One offer/answer from `from` to `to` with `method` (INVITE or UPDATE):
/// the offer has direction `offer_dir`, the answer `answer_dir`. Checks the
/// SDP each side gets: rewritten to tandem's anchor facing it (never the
/// other UA's port), with the direction passed through.
#[allow(clippy::too_many_arguments)]
fn offer_answer(
    from: &mut Ua,
    from_d: &mut Dialog,
    from_port: u16,
    from_anchor: SocketAddr,
    to: &mut Ua,
    to_d: &Dialog,
    to_port: u16,
    to_anchor: SocketAddr,
    method: &str,
    offer_dir: &str,
    answer_dir: &str,
) {
    let offer_attr = format!("a={offer_dir}");
    let req = from.request(
        from_d,
        method,
        &[],
        Some(("application/sdp", &sdp(from_port, &[&offer_attr]))),
    );
    let got = to.expect_request(method);
    assert_in_dialog(&got, to_d);
    let body = got.body_text();
    assert_eq!(
        sdp_direction(&body),
        offer_dir,
        "offer at the far end:\n{body}"
    );
    assert_eq!(
        sdp_audio(&body),
        to_anchor,
        "the offer points at tandem's port facing the far end:\n{body}"
    );
    assert!(
        !body.contains(&format!("m=audio {from_port} ")),
        "the offerer's port leaked:\n{body}"
    );
    let answer_attr = format!("a={answer_dir}");
    to.respond(
        &got,
        200,
        "OK",
        &[],
        Some(("application/sdp", &sdp(to_port, &[&answer_attr]))),
    );
    let resp = if method == "INVITE" {
        from.finish_invite(from_d, &req)
    } else {
        from.expect_final(&req)
    };
    assert_eq!(resp.status(), 200, "{}", resp.text());
    let body = resp.body_text();
    assert_eq!(
        sdp_direction(&body),
        answer_dir,
        "answer at the offerer:\n{body}"
    );
    assert_eq!(sdp_audio(&body), from_anchor, "{body}");
    assert!(
        !body.contains(&format!("m=audio {to_port} ")),
        "the answerer's port leaked:\n{body}"
    );
    if method == "INVITE" {
        // Tandem ACKs the far end's 2xx of a relayed re-INVITE at once.
        let ack = to.expect_request("ACK");
        assert_eq!(ack.cseq_num(), got.cseq_num(), "{}", ack.text());
    }
}

fn hold_and_resume(transport: SippTransport, method: &str, from_a: bool) {
    let mut c = call(transport);
    let (anchor_a, anchor_b) = anchors(&c);
    let Call {
        a, b, call: calls, ..
    } = &mut c;
    for (offer, answer) in [("sendonly", "recvonly"), ("sendrecv", "sendrecv")] {
        if from_a {
            offer_answer(
                a,
                &mut calls.a,
                PORT_A,
                anchor_a,
                b,
                &calls.b,
                PORT_B,
                anchor_b,
                method,
                offer,
                answer,
            );
        } else {
            offer_answer(
                b,
                &mut calls.b,
                PORT_B,
                anchor_b,
                a,
                &calls.a,
                PORT_A,
                anchor_a,
                method,
                offer,
                answer,
            );
        }
    }
    hangup(&mut c.a, &mut c.call.a, &mut c.b);
    c.tandem.assert_idle(Duration::from_secs(5));
}

#[test]
fn reinvite_from_caller_holds_and_resumes_over_udp() {
    hold_and_resume(SippTransport::Udp, "INVITE", true);
}

#[test]
fn reinvite_from_caller_holds_and_resumes_over_tcp() {
    hold_and_resume(SippTransport::Tcp, "INVITE", true);
}

#[test]
fn reinvite_from_callee_holds_and_resumes_over_udp() {
    hold_and_resume(SippTransport::Udp, "INVITE", false);
}

#[test]
fn reinvite_from_callee_holds_and_resumes_over_tcp() {
    hold_and_resume(SippTransport::Tcp, "INVITE", false);
}

#[test]
fn update_from_caller_over_udp() {
    hold_and_resume(SippTransport::Udp, "UPDATE", true);
}

#[test]
fn update_from_callee_over_tcp() {
    hold_and_resume(SippTransport::Tcp, "UPDATE", false);
}

/// Hold and resume from both ends with SIPp on both legs: each
/// re-INVITE's direction arrives at the far end and the answer's comes
/// back (the scenarios check the bodies), and the call ends cleanly.
fn sipp_hold_and_resume(transport: SippTransport) {
    const CALLS: u32 = 3;
    let mut uas = Sipp::server("uas_reinvite.xml")
        .transport(transport)
        .calls(CALLS)
        .timeout(Duration::from_secs(20))
        .spawn();
    let tandem = CallConfig::new().route("", &[uas.target()]).start();
    let uac = Sipp::client("uac_reinvite.xml", tandem.addr(transport))
        .transport(transport)
        .calls(CALLS)
        .timeout(Duration::from_secs(20))
        .run();
    uac.assert_success();
    let uas = uas.wait();
    uas.assert_success();
    for run in [&uac, &uas] {
        let logged = run
            .logs
            .lines()
            .filter(|l| l.contains("hold/resume") && l.contains("a=sendonly a=sendrecv"))
            .count();
        assert_eq!(logged, CALLS as usize, "{}", run.logs);
    }
    tandem.assert_idle(Duration::from_secs(5));
}

#[test]
fn sipp_hold_and_resume_both_ways_over_udp() {
    sipp_hold_and_resume(SippTransport::Udp);
}

#[test]
fn sipp_hold_and_resume_both_ways_over_tcp() {
    sipp_hold_and_resume(SippTransport::Tcp);
}

/// The SDP `o=` version seen by the far end goes up when the body changes
/// (RFC 3264 §8), across the initial INVITE and two re-INVITEs.
#[test]
fn sdp_version_increases_with_each_new_offer() {
    let mut c = call(SippTransport::Udp);
    let mut versions = vec![o_version(&c.call.invite_at_b.body_text())];
    for dir in ["a=sendonly", "a=sendrecv"] {
        let req = c.a.request(
            &mut c.call.a,
            "INVITE",
            &[],
            Some(("application/sdp", &sdp(PORT_A, &[dir]))),
        );
        let got = c.b.expect_request("INVITE");
        versions.push(o_version(&got.body_text()));
        c.b.respond(
            &got,
            200,
            "OK",
            &[],
            Some(("application/sdp", &sdp(PORT_B, &[]))),
        );
        let resp = c.a.finish_invite(&c.call.a, &req);
        assert_eq!(resp.status(), 200);
        c.b.expect_request("ACK");
    }
    assert!(
        versions.windows(2).all(|w| w[1] > w[0]),
        "o= versions at B: {versions:?}"
    );
    hangup(&mut c.b, &mut c.call.b, &mut c.a);
    c.tandem.assert_idle(Duration::from_secs(5));
}

/// Answers the pending re-INVITE `got` at `ua` with 200 and checks that
/// the offerer gets it.
fn complete(ua: &mut Ua, got: &Incoming, port: u16) {
    ua.respond(
        got,
        200,
        "OK",
        &[],
        Some(("application/sdp", &sdp(port, &[]))),
    );
}

fn second_offer_gets_491(transport: SippTransport) {
    let mut c = call(transport);
    // A's re-INVITE is pending at B.
    let reinvite = c.a.request(
        &mut c.call.a,
        "INVITE",
        &[],
        Some(("application/sdp", &sdp(PORT_A, &["a=sendonly"]))),
    );
    let pending = c.b.expect_request("INVITE");

    // B's own re-INVITE now: glare → 491 (RFC 3261 §14.2).
    let b_reinvite = c.b.request(
        &mut c.call.b,
        "INVITE",
        &[],
        Some(("application/sdp", &sdp(PORT_B, &["a=sendonly"]))),
    );
    let resp = c.b.finish_invite(&c.call.b, &b_reinvite);
    assert_eq!(resp.status(), 491, "{}", resp.text());
    // An UPDATE with an offer from B: 491 as well.
    let resp = c.b.transact(
        &mut c.call.b,
        "UPDATE",
        &[],
        Some(("application/sdp", &sdp(PORT_B, &["a=inactive"]))),
    );
    assert_eq!(resp.status(), 491, "{}", resp.text());
    // A second re-INVITE from A while its first is pending: 491 too.
    let again = c.a.request(
        &mut c.call.a,
        "INVITE",
        &[],
        Some(("application/sdp", &sdp(PORT_A, &["a=inactive"]))),
    );
    let resp = c.a.finish_invite(&c.call.a, &again);
    assert_eq!(resp.status(), 491, "{}", resp.text());
    // None of the refused offers reached the far end.
    c.a.expect_none(Duration::from_millis(200), "relayed offer at A", |m| {
        m.is_request("INVITE") || m.is_request("UPDATE")
    });
    c.b.expect_none(Duration::from_millis(10), "relayed offer at B", |m| {
        m.is_request("INVITE") || m.is_request("UPDATE")
    });

    // The first offer completes normally.
    complete(&mut c.b, &pending, PORT_B);
    let resp = c.a.finish_invite(&c.call.a, &reinvite);
    assert_eq!(resp.status(), 200, "{}", resp.text());
    c.b.expect_request("ACK");

    // And the call takes offers again, from B this time.
    let (anchor_a, anchor_b) = anchors(&c);
    offer_answer(
        &mut c.b,
        &mut c.call.b,
        PORT_B,
        anchor_b,
        &mut c.a,
        &c.call.a,
        PORT_A,
        anchor_a,
        "INVITE",
        "sendrecv",
        "sendrecv",
    );
    hangup(&mut c.a, &mut c.call.a, &mut c.b);
    c.tandem.assert_idle(Duration::from_secs(5));
}

#[test]
fn second_offer_while_one_is_pending_gets_491_over_udp() {
    second_offer_gets_491(SippTransport::Udp);
}

#[test]
fn second_offer_while_one_is_pending_gets_491_over_tcp() {
    second_offer_gets_491(SippTransport::Tcp);
}

/// Both sides send a re-INVITE at the same moment. Tandem relays the one
/// it sees first and answers the other 491; the UA that gets the relayed
/// one while its own is pending answers 491 too (RFC 3261 §14.2), which
/// goes back to the other side. Both offers fail with 491 and the call
/// goes on.
#[test]
fn simultaneous_reinvites_both_end_in_491() {
    let mut c = call(SippTransport::Udp);
    let a_req = c.a.request(
        &mut c.call.a,
        "INVITE",
        &[],
        Some(("application/sdp", &sdp(PORT_A, &["a=sendonly"]))),
    );
    let b_req = c.b.request(
        &mut c.call.b,
        "INVITE",
        &[],
        Some(("application/sdp", &sdp(PORT_B, &["a=sendonly"]))),
    );
    let mut relayed = 0;
    for (ua, pending) in [(&mut c.b, &b_req), (&mut c.a, &a_req)] {
        let cid = pending.get("Call-ID").to_string();
        if let Some(got) = ua.wait_for(Duration::from_millis(700), |m| {
            m.is_request("INVITE") && m.header("Call-ID") == Some(&cid)
        }) {
            relayed += 1;
            ua.respond(&got, 491, "Request Pending", &[], None);
            let ack = ua.expect_request("ACK");
            assert_eq!(ack.cseq_num(), got.cseq_num(), "{}", ack.text());
        }
    }
    assert_eq!(relayed, 1, "exactly one of the two re-INVITEs is relayed");
    let ra = c.a.finish_invite(&c.call.a, &a_req);
    let rb = c.b.finish_invite(&c.call.b, &b_req);
    assert_eq!(ra.status(), 491, "{}", ra.text());
    assert_eq!(rb.status(), 491, "{}", rb.text());

    // The call survives: a new offer from A goes through.
    let (anchor_a, anchor_b) = anchors(&c);
    offer_answer(
        &mut c.a,
        &mut c.call.a,
        PORT_A,
        anchor_a,
        &mut c.b,
        &c.call.b,
        PORT_B,
        anchor_b,
        "INVITE",
        "sendrecv",
        "sendrecv",
    );
    hangup(&mut c.b, &mut c.call.b, &mut c.a);
    c.tandem.assert_idle(Duration::from_secs(5));
}

/// A re-INVITE from A is pending at B when B hangs up: A's re-INVITE gets
/// 487 (RFC 5407 §3.2), A gets the BYE, the call ends.
fn bye_from_far_end_during_reinvite(transport: SippTransport) {
    let mut c = call(transport);
    let reinvite = c.a.request(
        &mut c.call.a,
        "INVITE",
        &[],
        Some(("application/sdp", &sdp(PORT_A, &["a=sendonly"]))),
    );
    let pending = c.b.expect_request("INVITE");
    let bye = c.b.request(&mut c.call.b, "BYE", &[], None);
    let resp = c.b.expect_final(&bye);
    assert_eq!(resp.status(), 200, "{}", resp.text());

    let resp = c.a.finish_invite(&c.call.a, &reinvite);
    assert_eq!(resp.status(), 487, "{}", resp.text());
    let bye_at_a = c.a.expect_request("BYE");
    assert_in_dialog(&bye_at_a, &c.call.a);
    c.a.respond(&bye_at_a, 200, "OK", &[], None);

    // B, which hung up, still owes its re-INVITE a final response.
    c.b.respond(&pending, 487, "Request Terminated", &[], None);
    c.b.expect_request("ACK");
    c.tandem.assert_idle(Duration::from_secs(5));
}

#[test]
fn bye_from_far_end_during_reinvite_over_udp() {
    bye_from_far_end_during_reinvite(SippTransport::Udp);
}

#[test]
fn bye_from_far_end_during_reinvite_over_tcp() {
    bye_from_far_end_during_reinvite(SippTransport::Tcp);
}

/// A hangs up while its own re-INVITE is pending at B: A's BYE gets 200 and
/// its re-INVITE 487; B gets the BYE; the call ends.
#[test]
fn bye_from_offerer_during_its_reinvite() {
    let mut c = call(SippTransport::Udp);
    let reinvite = c.a.request(
        &mut c.call.a,
        "INVITE",
        &[],
        Some(("application/sdp", &sdp(PORT_A, &["a=sendonly"]))),
    );
    let pending = c.b.expect_request("INVITE");
    let bye = c.a.request(&mut c.call.a, "BYE", &[], None);
    let resp = c.a.expect_final(&bye);
    assert_eq!(resp.status(), 200, "{}", resp.text());
    let resp = c.a.finish_invite(&c.call.a, &reinvite);
    assert_eq!(resp.status(), 487, "{}", resp.text());

    let bye_at_b = c.b.expect_request("BYE");
    assert_in_dialog(&bye_at_b, &c.call.b);
    c.b.respond(&bye_at_b, 200, "OK", &[], None);
    // A CANCEL of the pending re-INVITE is allowed too.
    if let Some(cancel) =
        c.b.wait_for(Duration::from_millis(300), |m| m.is_request("CANCEL"))
    {
        c.b.respond(&cancel, 200, "OK", &[], None);
    }
    c.b.respond(&pending, 487, "Request Terminated", &[], None);
    c.b.expect_request("ACK");
    c.tandem.assert_idle(Duration::from_secs(5));
}
