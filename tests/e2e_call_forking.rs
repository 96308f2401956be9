//! Forking: serial failover (the first target answers 503, or does not
//! answer within `timeout_s`, and the second one takes the call) and
//! parallel attempts (the first 200 wins, the other target is cancelled; a
//! loser that answers 200 anyway gets ACK then BYE). SIPp caller → tandem →
//! two SIPp callees.

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};
use support::ua::{Ua, establish, hangup, sdp};
use support::{CallConfig, Msg, Sipp, SippProc, SippRun, SippTransport, Tandem};

const CALLS: u32 = 3;

/// Request methods the callee got, per B-leg Call-ID.
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

fn assert_each_call(run: &SippRun, expected: &[&str]) {
    let calls = requests_per_call(&run.received());
    assert_eq!(calls.len(), CALLS as usize, "{}", run.report());
    for (id, methods) in calls {
        assert_eq!(methods, expected, "B leg {id}:\n{}", run.report());
    }
}

fn server(scenario: &str, transport: SippTransport) -> Sipp {
    Sipp::server(scenario)
        .transport(transport)
        .calls(CALLS)
        .timeout(Duration::from_secs(20))
}

/// Runs `uac.xml` for CALLS calls and checks it succeeded.
fn call(tandem: &Tandem, transport: SippTransport) -> SippRun {
    let uac = Sipp::client("uac.xml", tandem.addr(transport))
        .transport(transport)
        .calls(CALLS)
        .args(&["-d", "100"])
        .timeout(Duration::from_secs(20))
        .run();
    uac.assert_success();
    uac
}

fn targets(a: &SippProc, b: &SippProc) -> Vec<String> {
    vec![a.target(), b.target()]
}

#[test]
fn serial_fails_over_after_503() {
    let t = SippTransport::Udp;
    let mut first = server("uas_reject.xml", t)
        .var("CODE", "503")
        .var("REASON", "Service Unavailable")
        .spawn();
    let mut second = server("uas.xml", t).spawn();
    let tandem = CallConfig::new()
        .route_full("", &targets(&first, &second), "serial", 10, &[])
        .start();
    let uac = call(&tandem, t);
    let first = first.wait();
    first.assert_success();
    let second = second.wait();
    second.assert_success();
    assert_each_call(&first, &["INVITE", "ACK"]);
    assert_each_call(&second, &["INVITE", "ACK", "BYE"]);
    assert!(
        !uac.received().iter().any(|m| m.code() == Some(503)),
        "a failed attempt is not relayed while others remain:\n{}",
        uac.report()
    );
    tandem.assert_idle(Duration::from_secs(5));
}

#[test]
fn serial_fails_over_when_the_first_target_does_not_answer() {
    let t = SippTransport::Udp;
    let mut first = server("uas_cancelled.xml", t).spawn();
    let mut second = server("uas.xml", t).spawn();
    let tandem = CallConfig::new()
        .route_full("", &targets(&first, &second), "serial", 1, &[])
        .start();
    call(&tandem, t);
    let first = first.wait();
    first.assert_success();
    let second = second.wait();
    second.assert_success();
    assert_each_call(&first, &["INVITE", "CANCEL", "ACK"]);
    assert_each_call(&second, &["INVITE", "ACK", "BYE"]);
    tandem.assert_idle(Duration::from_secs(5));
}

fn parallel_first_200_wins(transport: SippTransport) {
    let mut winner = server("uas.xml", transport).spawn();
    let mut loser = server("uas_cancelled.xml", transport).spawn();
    let tandem = CallConfig::new()
        .route_full("", &targets(&winner, &loser), "parallel", 10, &[])
        .start();
    let uac = call(&tandem, transport);
    let winner = winner.wait();
    winner.assert_success();
    let loser = loser.wait();
    loser.assert_success();
    assert_each_call(&winner, &["INVITE", "ACK", "BYE"]);
    assert_each_call(&loser, &["INVITE", "CANCEL", "ACK"]);
    assert_one_to_tag_per_call(&uac);
    tandem.assert_idle(Duration::from_secs(5));
}

/// Every response A got to one INVITE carries the same To tag (A's own
/// dialog), however many attempts rang (call-model.md, Setup).
fn assert_one_to_tag_per_call(uac: &SippRun) {
    let mut tags: Vec<(String, String)> = Vec::new();
    for m in uac.received() {
        if m.code().is_some_and(|c| c > 100) && m.cseq_method() == "INVITE" {
            let id = m.must("Call-ID").to_string();
            let tag = m.to_tag().unwrap_or_default();
            match tags.iter().find(|(c, _)| *c == id) {
                Some((_, t)) => assert_eq!(*t, tag, "To tags differ at A:\n{}", uac.report()),
                None => tags.push((id, tag)),
            }
        }
    }
    assert_eq!(tags.len(), CALLS as usize, "{}", uac.report());
}

#[test]
fn parallel_first_200_wins_and_the_other_is_cancelled_over_udp() {
    parallel_first_200_wins(SippTransport::Udp);
}

#[test]
fn parallel_first_200_wins_and_the_other_is_cancelled_over_tcp() {
    parallel_first_200_wins(SippTransport::Tcp);
}

fn parallel_loser_200(transport: SippTransport) {
    let mut winner = server("uas.xml", transport).spawn();
    let mut loser = server("uas_cancel_crossing.xml", transport).spawn();
    let tandem = CallConfig::new()
        .route_full("", &targets(&winner, &loser), "parallel", 10, &[])
        .start();
    let uac = call(&tandem, transport);
    let winner = winner.wait();
    winner.assert_success();
    let loser = loser.wait();
    loser.assert_success();
    assert_each_call(&winner, &["INVITE", "ACK", "BYE"]);
    assert_each_call(&loser, &["INVITE", "CANCEL", "ACK", "BYE"]);
    // A saw one answer per call.
    let oks = uac
        .received()
        .iter()
        .filter(|m| m.code() == Some(200) && m.cseq_method() == "INVITE")
        .count();
    assert_eq!(oks, CALLS as usize, "{}", uac.report());
    tandem.assert_idle(Duration::from_secs(5));
}

#[test]
fn parallel_loser_answering_200_gets_ack_then_bye_over_udp() {
    parallel_loser_200(SippTransport::Udp);
}

#[test]
fn parallel_loser_answering_200_gets_ack_then_bye_over_tcp() {
    parallel_loser_200(SippTransport::Tcp);
}

/// Every attempt fails: A gets the best failure (RFC 3261 §16.7: a 6xx
/// first, else the lowest class, 4xx before 5xx), not the last one, with its
/// reason.
fn best_failure(mode: &str, answers: [(u16, &str); 2], expected: (u16, &str)) {
    let mut b1 = Ua::callee("bob", SippTransport::Udp);
    let mut b2 = Ua::callee("bob", SippTransport::Udp);
    let tandem = CallConfig::new()
        .route_full("", &[b1.target(), b2.target()], mode, 10, &[])
        .start();
    let mut a = Ua::caller("alice", SippTransport::Udp, &tandem);
    let invite = a.invite("bob", Some(&sdp(40_000, &[])), &[]);
    for (b, (code, reason)) in [(&mut b1, answers[0]), (&mut b2, answers[1])] {
        let inv = b.expect_request("INVITE");
        b.respond(&inv, 180, "Ringing", &[], None);
        b.respond(&inv, code, reason, &[], None);
        b.expect_request("ACK");
    }
    let resp = a.expect_final(&invite);
    assert_eq!(
        (resp.status(), resp.reason()),
        expected,
        "{mode} route, answers {answers:?}:\n{}",
        resp.text()
    );
    a.ack_failure(&invite, &resp);
    tandem.assert_idle(Duration::from_secs(5));
}

#[test]
fn serial_all_failed_relays_the_best_failure_not_the_last() {
    best_failure(
        "serial",
        [(486, "Busy Here"), (503, "Service Unavailable")],
        (486, "Busy Here"),
    );
}

#[test]
fn parallel_all_failed_prefers_a_6xx() {
    best_failure(
        "parallel",
        [(486, "Busy Here"), (603, "Decline")],
        (603, "Decline"),
    );
}

/// The first target refuses the TCP connection: the next one is tried at
/// once, not after the ring time.
#[test]
fn serial_fails_over_at_once_when_the_first_target_is_unreachable() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut b = Ua::callee("bob", SippTransport::Udp);
    let tandem = CallConfig::new()
        .route_full(
            "",
            &[
                format!("sip:${{user}}@127.0.0.1:{closed};transport=tcp"),
                b.target(),
            ],
            "serial",
            10,
            &[],
        )
        .start();
    let mut a = Ua::caller("alice", SippTransport::Udp, &tandem);
    let started = Instant::now();
    let mut call = establish(&mut a, &mut b, "bob", &sdp(40_000, &[]), &sdp(42_000, &[]));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "failover took {:?}",
        started.elapsed()
    );
    hangup(&mut a, &mut call.a, &mut b);
    tandem.assert_idle(Duration::from_secs(5));
}

/// A CANCEL from the caller cancels every pending parallel attempt.
#[test]
fn cancel_from_the_caller_cancels_every_parallel_attempt() {
    let t = SippTransport::Udp;
    let mut b1 = server("uas_cancelled.xml", t).spawn();
    let mut b2 = server("uas_cancelled.xml", t).spawn();
    let tandem = CallConfig::new()
        .route_full("", &targets(&b1, &b2), "parallel", 10, &[])
        .start();
    let uac = Sipp::client("uac_cancel.xml", tandem.addr(t))
        .var("PAUSE_MS", "0")
        .transport(t)
        .calls(CALLS)
        .timeout(Duration::from_secs(20))
        .run();
    uac.assert_success();
    for b in [&mut b1, &mut b2] {
        let run = b.wait();
        run.assert_success();
        assert_each_call(&run, &["INVITE", "CANCEL", "ACK"]);
    }
    tandem.assert_idle(Duration::from_secs(5));
}
