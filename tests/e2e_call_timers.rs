//! Session timers (RFC 4028) per leg: tandem refreshes the leg where it is
//! the refresher (UPDATE at half the interval), ends the call on both legs
//! when a peer that should refresh does not, and refuses an interval below
//! its Min-SE with 422.

#[path = "support/mod.rs"]
mod support;

use support::ua::{Dialog, Ua, sdp};
use support::{CallConfig, SippTransport};

fn config(b: &Ua) -> CallConfig {
    CallConfig::new()
        .route("", &[b.target()])
        .sip("session_expires_s = 4")
        .sip("min_se_s = 2")
}

/// Over `transport`: tandem refreshes the B leg with UPDATE and ends the
/// call when A, the refresher of its leg, does not refresh.
fn refresh_one_leg_enforce_the_other(transport: SippTransport) {
    let mut b = Ua::callee("bob", transport);
    let tandem = config(&b).start();
    let mut a = Ua::caller("alice", transport, &tandem);
    let invite = a.invite(
        "bob",
        Some(&sdp(40_000, &[])),
        &[
            ("Supported", "timer"),
            ("Session-Expires", "4;refresher=uac"),
        ],
    );
    let at_b = b.expect_request("INVITE");
    assert_eq!(at_b.header("Session-Expires"), Some("4"), "{}", at_b.text());
    assert!(
        at_b.header("Supported")
            .is_some_and(|s| s.contains("timer")),
        "{}",
        at_b.text()
    );
    // B makes tandem (the UAC of the B leg) the refresher.
    b.respond(
        &at_b,
        200,
        "OK",
        &[("Session-Expires", "4;refresher=uac"), ("Require", "timer")],
        Some(("application/sdp", &sdp(42_000, &[]))),
    );
    let ok = a.expect_final(&invite);
    assert_eq!(ok.status(), 200, "{}", ok.text());
    // A asked to refresh its leg itself.
    assert_eq!(
        ok.header("Session-Expires"),
        Some("4;refresher=uac"),
        "{}",
        ok.text()
    );
    assert_eq!(ok.header("Require"), Some("timer"), "{}", ok.text());
    let a_dialog = Dialog::uac(&invite, &ok);
    a.ack(&a_dialog, &invite);
    let _ = b.expect_request("ACK");

    // Tandem refreshes B at half the interval.
    let update = b.expect_request("UPDATE");
    assert!(
        update
            .header("Session-Expires")
            .is_some_and(|v| v.starts_with("4;refresher=uac")),
        "{}",
        update.text()
    );
    b.respond(
        &update,
        200,
        "OK",
        &[("Session-Expires", "4;refresher=uac")],
        None,
    );

    // A never refreshes: its session expires (4 s less a third) and the
    // call ends on both legs.
    let bye_a = a.expect_request("BYE");
    a.respond(&bye_a, 200, "OK", &[], None);
    let bye_b = b.expect_request("BYE");
    b.respond(&bye_b, 200, "OK", &[], None);
    // The log is read from a pipe: wait for the line, don't race it.
    tandem.expect_log(
        std::time::Duration::from_secs(5),
        &["Session expired without a refresh"],
    );
}

#[test]
fn tandem_refreshes_one_leg_and_enforces_the_other_over_udp() {
    refresh_one_leg_enforce_the_other(SippTransport::Udp);
}

#[test]
fn tandem_refreshes_one_leg_and_enforces_the_other_over_tcp() {
    refresh_one_leg_enforce_the_other(SippTransport::Tcp);
}

/// Over `transport`: a Session-Expires below Min-SE gets 422 with Min-SE.
fn interval_below_min_se(transport: SippTransport) {
    let b = Ua::callee("bob", transport);
    let tandem = config(&b).start();
    let mut a = Ua::caller("alice", transport, &tandem);
    let invite = a.invite(
        "bob",
        Some(&sdp(40_000, &[])),
        &[("Supported", "timer"), ("Session-Expires", "1")],
    );
    let resp = a.expect_final(&invite);
    assert_eq!(resp.status(), 422, "{}", resp.text());
    assert_eq!(resp.header("Min-SE"), Some("2"), "{}", resp.text());
    a.ack_failure(&invite, &resp);
}

#[test]
fn an_interval_below_min_se_gets_422_over_udp() {
    interval_below_min_se(SippTransport::Udp);
}

#[test]
fn an_interval_below_min_se_gets_422_over_tcp() {
    interval_below_min_se(SippTransport::Tcp);
}
