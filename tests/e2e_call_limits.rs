//! Limits and leaks: 1,000 calls in a row leave no call and no media port
//! behind (read from the status line); `max_calls` and the per-source call
//! rate refuse calls with 503 and Retry-After; peers that vanish (a callee
//! that never answers the BYE, a caller that never ACKs, a callee that
//! never answers at all) never keep a call alive past the transaction
//! timeouts (64·T1 with `t1_ms = 50`: 3.2 s).

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};
use support::ua::{Ua, establish, hangup, sdp};
use support::{CallConfig, Sipp, SippTransport, Status};

/// 64·T1 with `t1_ms = 50`.
const TX_TIMEOUT: Duration = Duration::from_millis(3200);

#[test]
fn thousand_calls_leave_no_call_and_no_port_behind() {
    const CALLS: u32 = 1000;
    let t = SippTransport::Udp;
    let mut uas = Sipp::server("uas.xml")
        .transport(t)
        .calls(CALLS)
        .no_trace()
        .timeout(Duration::from_secs(40))
        .spawn();
    let tandem = CallConfig::new()
        .media(&format!("ports = \"{}\"", support::media_ports(800)))
        .route("", &[uas.target()])
        .start();
    let since = tandem.log_len();
    let started = Instant::now();
    let uac = Sipp::client("uac.xml", tandem.udp())
        .transport(t)
        .calls(CALLS)
        .rate(250)
        .limit(100)
        .no_trace()
        .timeout(Duration::from_secs(40))
        .run();
    let took = started.elapsed();
    uac.assert_success();
    let uas = uas.wait();
    uas.assert_success();
    let after = tandem.log_len();
    let (status, idle_after) = match tandem.wait_status(after, Duration::from_secs(10), |s| {
        s.get("calls") == 0 && s.get("media_ports") == 0
    }) {
        Ok(s) => s,
        Err(last) => panic!(
            "calls or ports left behind after {CALLS} calls: {:?}",
            last.map(|s| s.line)
        ),
    };
    assert_eq!(
        status.get("total_calls"),
        u64::from(CALLS),
        "{}",
        status.line
    );
    assert_eq!(status.get("media_sessions"), 0, "{}", status.line);
    assert_eq!(status.get("dialogs"), 0, "{}", status.line);
    // The status line did count the calls' ports (so the zeros above mean
    // something): a line taken while a call was up shows it in use, and
    // the pairs calls gave back to the pool show as idle. Calls here last
    // a few milliseconds, so the once-a-second lines may all fall between
    // calls; the idle count does not depend on that.
    let busiest = tandem
        .log_lines()
        .iter()
        .skip(since)
        .filter_map(|l| Status::parse(l))
        .map(|s| s.get("media_ports") + s.get("media_ports_idle"))
        .max()
        .unwrap_or(0);
    assert!(
        busiest > 0 || took < Duration::from_secs(1),
        "no status line during {took:?} of calls showed a media port in use or idle"
    );
    eprintln!(
        "{CALLS} calls in {took:?}; idle {idle_after:?} later: {}",
        status.line
    );
}

#[test]
fn max_calls_refuses_a_second_call_with_503_and_retry_after() {
    let mut b = Ua::callee("bob", SippTransport::Udp);
    let tandem = CallConfig::new()
        .limits("max_calls = 1")
        .limits("retry_after_s = 7")
        .route("", &[b.target()])
        .start();
    let mut a = Ua::caller("alice", SippTransport::Udp, &tandem);
    let mut call = establish(&mut a, &mut b, "bob", &sdp(40_000, &[]), &sdp(42_000, &[]));

    let mut a2 = Ua::caller("carol", SippTransport::Udp, &tandem);
    let invite = a2.invite("bob", Some(&sdp(44_000, &[])), &[]);
    let resp = a2.expect_final(&invite);
    assert_eq!(resp.status(), 503, "{}", resp.text());
    assert_eq!(resp.header("Retry-After"), Some("7"), "{}", resp.text());
    a2.ack_failure(&invite, &resp);
    b.expect_none(
        Duration::from_millis(300),
        "INVITE of a refused call",
        |m| m.is_request("INVITE"),
    );

    // Once the first call is over, calls are taken again.
    hangup(&mut a, &mut call.a, &mut b);
    tandem.assert_idle(Duration::from_secs(5));
    let mut call = establish(&mut a2, &mut b, "bob", &sdp(44_000, &[]), &sdp(42_000, &[]));
    hangup(&mut b, &mut call.b, &mut a2);
}

#[test]
fn per_source_rate_refuses_part_of_a_burst() {
    const BURST: usize = 6;
    let mut b = Ua::callee("bob", SippTransport::Udp);
    let tandem = CallConfig::new()
        .limits("calls_per_second_per_source = 1")
        .limits("retry_after_s = 3")
        .route("", &[b.target()])
        .start();
    let mut a = Ua::caller("alice", SippTransport::Udp, &tandem);
    let invites: Vec<_> = (0..BURST)
        .map(|_| a.invite("bob", Some(&sdp(40_000, &[])), &[]))
        .collect();
    // The callee refuses whatever gets through, so every call ends.
    let mut routed = 0;
    while let Some(inv) = b.wait_for(Duration::from_millis(700), |m| m.is_request("INVITE")) {
        routed += 1;
        b.respond(&inv, 486, "Busy Here", &[], None);
    }
    let (mut refused, mut busy) = (0, 0);
    for inv in &invites {
        let resp = a.expect_final(inv);
        match resp.status() {
            503 => {
                assert_eq!(resp.header("Retry-After"), Some("3"), "{}", resp.text());
                refused += 1;
            }
            486 => busy += 1,
            other => panic!("unexpected {other}:\n{}", resp.text()),
        }
        a.ack_failure(inv, &resp);
    }
    assert!(refused >= 1, "no call of the burst was refused");
    assert!(busy >= 1, "every call of the burst was refused");
    assert_eq!(busy, routed, "only the calls let through reach the callee");
    assert_eq!(refused + busy, BURST);
    tandem.assert_idle(Duration::from_secs(5));
}

/// The callee answers, then its process dies; when the caller hangs up,
/// tandem's BYE toward it gets no answer. The call must end once that BYE
/// transaction times out (64·T1), not linger for the 32 s grace period.
fn vanished_callee(transport: SippTransport) {
    let mut uas = Sipp::server("uas_answer_only.xml")
        .transport(transport)
        .calls(1)
        .timeout(Duration::from_secs(15))
        .spawn();
    let tandem = CallConfig::new()
        .sip("t1_ms = 50")
        .route("", &[uas.target()])
        .start();
    // The caller hangs up 1.5 s after the answer; the callee is gone by then.
    let uac = std::thread::scope(|s| {
        let addr = tandem.addr(transport);
        let h = s.spawn(move || {
            Sipp::client("uac.xml", addr)
                .transport(transport)
                .args(&["-d", "1500"])
                .timeout(Duration::from_secs(15))
                .run()
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while uas.is_running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        uas.kill();
        h.join().expect("SIPp client thread")
    });
    uac.assert_success();
    let uas = uas.wait();
    uas.assert_success();
    let bye_sent_at = tandem.log_len();
    // Status lines come every second: allow the BYE timeout, one interval
    // and some slack.
    let limit = TX_TIMEOUT + Duration::from_millis(2500);
    match tandem.wait_status(bye_sent_at, limit, |s| {
        s.get("calls") == 0 && s.get("media_ports") == 0
    }) {
        Ok(_) => {}
        Err(last) => panic!(
            "the call outlived its unanswered BYE: still there {limit:?} after the caller's \
             BYE (BYE timeout 64·T1 = {TX_TIMEOUT:?}); last status: {:?}",
            last.map(|s| s.line)
        ),
    }
}

#[test]
fn vanished_callee_does_not_keep_the_call_over_udp() {
    vanished_callee(SippTransport::Udp);
}

#[test]
fn vanished_callee_does_not_keep_the_call_over_tcp() {
    vanished_callee(SippTransport::Tcp);
}

/// The caller never ACKs the 200: after 64·T1 tandem hangs up both legs;
/// the callee gets a BYE; the caller (gone) never answers its BYE; the call
/// ends once that BYE times out.
#[test]
fn caller_that_never_acks_is_hung_up() {
    let mut b = Ua::callee("bob", SippTransport::Udp);
    let tandem = CallConfig::new()
        .sip("t1_ms = 50")
        .route("", &[b.target()])
        .start();
    let mut a = Ua::caller("alice", SippTransport::Udp, &tandem);
    let invite = a.invite("bob", Some(&sdp(40_000, &[])), &[]);
    let inv = b.expect_request("INVITE");
    let _b_dialog = b.answer(&inv, &sdp(42_000, &[]));
    let ok = a.expect_final(&invite);
    assert_eq!(ok.status(), 200);
    let answered = Instant::now();
    // No ACK from A. B gets its ACK from tandem, then a BYE after 64·T1.
    b.expect_request("ACK");
    let bye = b
        .wait_for(TX_TIMEOUT + Duration::from_secs(3), |m| m.is_request("BYE"))
        .unwrap_or_else(|| {
            panic!(
                "no BYE at the callee {:?} after the answer",
                answered.elapsed()
            )
        });
    let waited = answered.elapsed();
    assert!(
        waited >= TX_TIMEOUT - Duration::from_millis(300),
        "BYE came before the ACK timeout: {waited:?}"
    );
    b.respond(&bye, 200, "OK", &[], None);
    // A gets a BYE too, which it ignores (it is gone).
    a.wait_for(Duration::from_secs(2), |m| m.is_request("BYE"))
        .expect("tandem hangs up the caller too");
    drop(a);
    let limit = TX_TIMEOUT + Duration::from_millis(2500);
    let mark = tandem.log_len();
    if let Err(last) = tandem.wait_status(mark, limit, |s| {
        s.get("calls") == 0 && s.get("media_ports") == 0
    }) {
        panic!(
            "the call outlived its unanswered BYE toward the caller by more than {limit:?}; \
             last status: {:?}",
            last.map(|s| s.line)
        );
    }
}

/// The callee never answers at all (not even 100 Trying): the INVITE
/// transaction times out (Timer B, 64·T1), A gets 408 (or 480), and the call
/// is gone.
#[test]
fn callee_that_never_answers_does_not_keep_the_call() {
    let mut b = Ua::callee("bob", SippTransport::Udp);
    let tandem = CallConfig::new()
        .sip("t1_ms = 50")
        .route("", &[b.target()])
        .start();
    let mut a = Ua::caller("alice", SippTransport::Udp, &tandem);
    let started = Instant::now();
    let invite = a.invite("bob", Some(&sdp(40_000, &[])), &[]);
    b.expect_request("INVITE");
    let resp = a
        .wait_for(TX_TIMEOUT + Duration::from_secs(3), |m| {
            m.code().is_some_and(|c| c >= 200)
        })
        .unwrap_or_else(|| panic!("no final response {:?} after the INVITE", started.elapsed()));
    assert!(
        matches!(resp.status(), 408 | 480),
        "expected 408 or 480:\n{}",
        resp.text()
    );
    a.ack_failure(&invite, &resp);
    tandem.assert_idle(Duration::from_secs(4));
}
