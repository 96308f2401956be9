//! Late offers (RFC 3261 §13.2.1, RFC 3264): an INVITE without SDP gets the
//! offer in the 2xx and its answer in the ACK, on the first INVITE and on a
//! re-INVITE; tandem holds the other leg's ACK until that answer arrives and
//! rewrites it, so media flows through tandem both ways.

#[path = "support/mod.rs"]
mod support;

use support::ua::{Dialog, Ua, hangup, sdp, sdp_audio};
use support::{CallConfig, SippTransport};

/// Sends the ACK of the INVITE with CSeq 1.. of `d` carrying `body`.
fn ack_with(ua: &mut Ua, d: &mut Dialog, invite_cseq: u32, body: &str) {
    let saved = d.local_cseq;
    d.local_cseq = invite_cseq - 1;
    ua.request(d, "ACK", &[], Some(("application/sdp", body)));
    d.local_cseq = saved;
}

/// An INVITE without SDP over `transport`: B's offer reaches A in the
/// 200, A's answer reaches B in the ACK, both rewritten by tandem.
fn late_offer_on_the_first_invite(transport: SippTransport) {
    let mut b = Ua::callee("bob", transport);
    let tandem = CallConfig::new().route("", &[b.target()]).start();
    let mut a = Ua::caller("alice", transport, &tandem);
    let invite = a.invite("bob", None, &[]);
    let at_b = b.expect_request("INVITE");
    assert!(at_b.body_text().is_empty(), "{}", at_b.text());
    let mut b_dialog = b.answer(&at_b, &sdp(42_000, &[]));
    let ok = a.expect_final(&invite);
    assert_eq!(ok.status(), 200, "{}", ok.text());
    let offer = ok.body_text();
    assert!(offer.contains("m=audio"), "the offer reaches A: {offer}");
    assert_ne!(sdp_audio(&offer).port(), 42_000, "rewritten: {offer}");
    // Nothing reaches B before A's ACK brings the answer.
    b.expect_none(
        std::time::Duration::from_millis(300),
        "an ACK before A answered",
        |m| m.is_request("ACK"),
    );
    let mut a_dialog = Dialog::uac(&invite, &ok);
    ack_with(&mut a, &mut a_dialog, 1, &sdp(40_000, &[]));
    let ack = b.expect_request("ACK");
    let answer = ack.body_text();
    assert!(
        answer.contains("m=audio"),
        "the answer reaches B: {}",
        ack.text()
    );
    assert_ne!(sdp_audio(&answer).port(), 40_000, "rewritten: {answer}");
    hangup(&mut a, &mut a_dialog, &mut b);
    let _ = &mut b_dialog;
}

#[test]
fn a_late_offer_on_the_first_invite_over_udp() {
    late_offer_on_the_first_invite(SippTransport::Udp);
}

#[test]
fn a_late_offer_on_the_first_invite_over_tcp() {
    late_offer_on_the_first_invite(SippTransport::Tcp);
}

/// A re-INVITE without SDP from A over `transport`, answered in the ACK.
fn late_offer_in_a_reinvite(transport: SippTransport) {
    let mut b = Ua::callee("bob", transport);
    let tandem = CallConfig::new().route("", &[b.target()]).start();
    let mut a = Ua::caller("alice", transport, &tandem);
    let invite = a.invite("bob", Some(&sdp(40_000, &[])), &[]);
    let at_b = b.expect_request("INVITE");
    let mut b_dialog = b.answer(&at_b, &sdp(42_000, &[]));
    let ok = a.expect_final(&invite);
    let mut a_dialog = Dialog::uac(&invite, &ok);
    a.ack(&a_dialog, &invite);
    let _ = b.expect_request("ACK");

    // A re-INVITE without SDP from A.
    let reinvite = a.request(&mut a_dialog, "INVITE", &[], None);
    let at_b = b.expect_request("INVITE");
    assert!(at_b.body_text().is_empty(), "{}", at_b.text());
    b.respond(
        &at_b,
        200,
        "OK",
        &[],
        Some(("application/sdp", &sdp(42_002, &["a=sendonly"]))),
    );
    let ok = a.expect_final(&reinvite);
    assert_eq!(ok.status(), 200, "{}", ok.text());
    assert!(ok.body_text().contains("a=sendonly"), "{}", ok.text());
    b.expect_none(
        std::time::Duration::from_millis(300),
        "an ACK before A answered",
        |m| m.is_request("ACK"),
    );
    let cseq = a_dialog.local_cseq;
    ack_with(&mut a, &mut a_dialog, cseq, &sdp(40_000, &["a=recvonly"]));
    let ack = b.expect_request("ACK");
    assert!(ack.body_text().contains("a=recvonly"), "{}", ack.text());
    hangup(&mut b, &mut b_dialog, &mut a);
}

#[test]
fn a_late_offer_in_a_reinvite_over_udp() {
    late_offer_in_a_reinvite(SippTransport::Udp);
}

#[test]
fn a_late_offer_in_a_reinvite_over_tcp() {
    late_offer_in_a_reinvite(SippTransport::Tcp);
}
