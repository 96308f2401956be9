//! INVITE with no route configured: 100 Trying, then 404 with a To tag,
//! retransmitted per Timer G over UDP until the ACK (RFC 3261 §17.2.1);
//! retransmitted INVITEs are absorbed by the transaction layer; CANCEL of
//! an answered INVITE still gets 200 (§9.2).

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};
use support::{SippTransport, Tandem, TcpPeer, UdpPeer, sipp};

const CALLS: u32 = 10;

fn sipp_rejected(transport: SippTransport) {
    // T1 = 100 ms: a 404 whose ACK did not match would be retransmitted
    // during the scenario's closing pause and show up in SIPp's trace.
    let tandem = Tandem::with_config(FAST_TIMERS);
    let target = match transport {
        SippTransport::Udp => tandem.udp(),
        SippTransport::Tcp => tandem.tcp(),
    };
    let run = sipp("invite_reject.xml", target, transport, CALLS, &[]);
    run.assert_success();
    let seen = run
        .logs
        .lines()
        .filter(|l| l.starts_with("INVITE 404"))
        .count();
    assert_eq!(seen, CALLS as usize, "SIPp log:\n{}", run.logs);
    // Each 404 arrived once: every ACK matched its INVITE transaction.
    let finals = run
        .messages
        .lines()
        .filter(|l| l.starts_with("SIP/2.0 404"))
        .count();
    assert_eq!(
        finals, CALLS as usize,
        "404s seen by SIPp:\n{}",
        run.messages
    );
    assert!(
        tandem.wait_for_log(Duration::from_secs(2), |l| {
            l.iter().filter(|l| l.contains("Call not routed.")).count() == CALLS as usize
        }),
        "one `Call not routed.` per INVITE:\n{}",
        tandem.log_text()
    );
}

#[test]
fn sipp_invite_rejected_over_udp() {
    sipp_rejected(SippTransport::Udp);
}

#[test]
fn sipp_invite_rejected_over_tcp() {
    sipp_rejected(SippTransport::Tcp);
}

/// T1 = 100 ms, T2 = 400 ms: Timer G fires after 100, 200, 400, 400, ... ms.
const FAST_TIMERS: &str = "[sip]\nt1_ms = 100\nt2_ms = 400\nt4_ms = 500\n";

#[test]
fn udp_404_is_retransmitted_until_the_ack() {
    let tandem = Tandem::with_config(FAST_TIMERS);
    let udp = UdpPeer::new(tandem.udp());
    let invite = udp.req("INVITE").sdp();
    udp.send_req(&invite);

    let trying = udp.expect();
    assert_eq!(trying.status(), 100, "{}", trying.text());
    invite.assert_answered_by(&trying);
    assert_eq!(
        trying.to_tag(),
        None,
        "100 Trying carries no To tag (§8.2.6.1)"
    );

    let first = udp.expect();
    assert_eq!(first.status(), 404, "{}", first.text());
    assert_eq!(first.reason(), "Not Found");
    invite.assert_answered_by(&first);
    let tag = first.to_tag().expect("404 has a To tag");
    assert!(!tag.is_empty());
    let sent_at = Instant::now();

    // Without an ACK, Timer G retransmits the very same 404.
    let mut copies = 0;
    while copies < 3 {
        let m = udp
            .recv(Duration::from_secs(2))
            .unwrap_or_else(|| panic!("only {copies} retransmissions of the 404 arrived"));
        assert_eq!(m.raw, first.raw, "a retransmission is byte-identical");
        copies += 1;
    }
    // Three copies at ~100, 300 and 700 ms: not before the first Timer G.
    assert!(
        sent_at.elapsed() >= Duration::from_millis(500),
        "retransmissions came too fast: {:?}",
        sent_at.elapsed()
    );

    // The ACK (same branch, the 404's To tag) stops them (§17.2.1).
    udp.send_req(&invite.ack_for(&first));
    // One copy may already be on its way when the ACK arrives.
    let grace = Instant::now() + Duration::from_millis(50);
    while let Some(left) = grace.checked_duration_since(Instant::now()) {
        if udp.recv(left).is_none() {
            break;
        }
    }
    // At T2 = 400 ms, three more would have come within 1.3 s.
    udp.expect_silence(Duration::from_millis(1300));
    assert_eq!(
        tandem.count_log(&["Call not routed.", invite.get("Call-ID")]),
        1,
        "{}",
        tandem.log_text()
    );
}

#[test]
fn udp_404_retransmissions_stop_at_timer_h_without_ack() {
    // T1 = 20 ms: Timer H (64·T1) gives up after 1.28 s.
    let tandem = Tandem::with_config("[sip]\nt1_ms = 20\nt2_ms = 100\n");
    let udp = UdpPeer::new(tandem.udp());
    let invite = udp.req("INVITE").sdp();
    udp.send_req(&invite);
    let start = Instant::now();
    let mut finals = 0;
    let mut last = start;
    while let Some(m) = udp.recv(Duration::from_millis(600)) {
        if m.status() == 404 {
            finals += 1;
            last = Instant::now();
        }
        assert!(start.elapsed() < Duration::from_secs(5), "404s never stop");
    }
    let span = last - start;
    assert!(finals >= 8, "only {finals} copies of the 404");
    assert!(
        span >= Duration::from_millis(900) && span <= Duration::from_millis(2500),
        "404 retransmitted for {span:?}, expected about 64·T1 = 1.28 s"
    );
}

#[test]
fn retransmitted_invite_is_absorbed() {
    // T1 = 5 s so that no Timer G retransmission falls into the test.
    let tandem = Tandem::with_config("[sip]\nt1_ms = 5000\nt2_ms = 5000\n");
    let udp = UdpPeer::new(tandem.udp());
    let invite = udp.req("INVITE").sdp();
    let call_id = invite.get("Call-ID").to_string();
    udp.send_req(&invite);
    assert_eq!(udp.expect().status(), 100);
    let first = udp.expect();
    assert_eq!(first.status(), 404);

    // The same INVITE again: the server transaction answers with its last
    // response; the transaction user never sees it.
    udp.send_req(&invite);
    let again = udp.expect();
    assert_eq!(again.raw, first.raw, "the 404 is resent as it was");
    udp.expect_silence(Duration::from_millis(300));
    let answered = |l: &[String]| {
        l.iter()
            .filter(|l| l.contains("Call not routed.") && l.contains(&format!("call_id={call_id}")))
            .count()
    };
    assert!(tandem.wait_for_log(Duration::from_secs(2), |l| answered(l) >= 1));
    assert_eq!(answered(&tandem.log_lines()), 1, "{}", tandem.log_text());
    udp.send_req(&invite.ack_for(&first));
}

#[test]
fn retransmission_before_the_final_response_gets_the_last_response() {
    let tandem = Tandem::with_config("[sip]\nt1_ms = 5000\nt2_ms = 5000\n");
    let udp = UdpPeer::new(tandem.udp());
    let invite = udp.req("INVITE").sdp();
    // Two copies back to back: whatever the timing, each copy is answered
    // with the transaction's latest response and only one 404 is created.
    udp.send_req(&invite);
    udp.send_req(&invite);
    let mut tags = Vec::new();
    while let Some(m) = udp.recv(Duration::from_millis(400)) {
        invite.assert_answered_by(&m);
        if m.status() == 404 {
            tags.push(m.to_tag().expect("To tag"));
        }
    }
    assert!(!tags.is_empty());
    assert!(
        tags.iter().all(|t| *t == tags[0]),
        "one transaction, one tag: {tags:?}"
    );
    assert_eq!(
        tandem.count_log(&["Call not routed.", invite.get("Call-ID")]),
        1
    );
}

#[test]
fn tcp_404_is_sent_once() {
    // Reliable transport: no Timer G (§17.2.1).
    let tandem = Tandem::with_config(FAST_TIMERS);
    let mut tcp = TcpPeer::connect(tandem.tcp());
    let invite = tcp.req("INVITE").sdp();
    tcp.send_req(&invite);
    assert_eq!(tcp.expect().status(), 100);
    let resp = tcp.expect();
    assert_eq!(resp.status(), 404);
    invite.assert_answered_by(&resp);
    assert!(resp.to_tag().is_some());
    assert!(
        matches!(
            tcp.read(Duration::from_millis(600)),
            support::TcpRead::Timeout
        ),
        "nothing more on a reliable transport"
    );
    tcp.send_req(&invite.ack_for(&resp));
}

#[test]
fn message_is_rejected_with_480() {
    let tandem = Tandem::start();
    let udp = UdpPeer::new(tandem.udp());
    let req = udp.req("MESSAGE").body("text/plain", "hello");
    let resp = udp.transact(&req);
    assert_eq!(resp.status(), 480, "{}", resp.text());
    assert!(resp.to_tag().is_some());
}

#[test]
fn cancel_of_an_answered_invite_gets_200() {
    let tandem = Tandem::with_config("[sip]\nt1_ms = 5000\nt2_ms = 5000\n");
    let udp = UdpPeer::new(tandem.udp());
    let invite = udp.req("INVITE").sdp();
    udp.send_req(&invite);
    let resp = udp.expect_final();
    assert_eq!(resp.status(), 404);
    // §9.2: the INVITE transaction exists (completed): 200 for the CANCEL,
    // no effect on the INVITE.
    let cancel = invite.cancel();
    let ok = udp.transact(&cancel);
    assert_eq!(ok.status(), 200, "{}", ok.text());
    udp.expect_silence(Duration::from_millis(200));
    udp.send_req(&invite.ack_for(&resp));
}

#[test]
fn trying_copies_the_timestamp() {
    // RFC 3261 §8.2.6.1: a Timestamp in the request MUST be copied into the
    // 100 (Trying).
    let tandem = Tandem::start();
    let udp = UdpPeer::new(tandem.udp());
    let invite = udp.req("INVITE").sdp().set("Timestamp", "54.2 0.5");
    udp.send_req(&invite);
    let trying = udp.expect();
    assert_eq!(trying.status(), 100);
    assert_eq!(
        trying.header("Timestamp"),
        Some("54.2 0.5"),
        "{}",
        trying.text()
    );
    let resp = udp.expect_final();
    udp.send_req(&invite.ack_for(&resp));
}

#[test]
fn rfc2543_invite_without_branch_is_matched_too() {
    // §17.2.3: without the magic cookie, transactions match on Request-URI,
    // To tag, From tag, Call-ID, CSeq and top Via.
    let tandem = Tandem::with_config("[sip]\nt1_ms = 100\nt2_ms = 400\n");
    let udp = UdpPeer::new(tandem.udp());
    let invite = udp
        .req("INVITE")
        .sdp()
        .set("Via", &format!("SIP/2.0/UDP {}", udp.local));
    udp.send_req(&invite);
    assert_eq!(udp.expect().status(), 100);
    let first = udp.expect();
    assert_eq!(first.status(), 404);
    // A retransmission is absorbed: the same 404 again.
    udp.send_req(&invite);
    let again = udp.expect();
    assert_eq!(again.to_tag(), first.to_tag());
    // The ACK (no branch either) stops Timer G.
    udp.send_req(&invite.ack_for(&first));
    let grace = Instant::now() + Duration::from_millis(50);
    while let Some(left) = grace.checked_duration_since(Instant::now()) {
        if udp.recv(left).is_none() {
            break;
        }
    }
    udp.expect_silence(Duration::from_millis(1000));
    assert_eq!(
        tandem.count_log(&["Call not routed.", invite.get("Call-ID")]),
        1
    );
}
