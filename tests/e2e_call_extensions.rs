//! Extensions on the B leg and the A leg: digest authentication toward a
//! challenging callee (RFC 3261 §22, RFC 8760), reliable provisionals with
//! PRACK on each leg (RFC 3262), 3xx followed or relayed, and a 6xx that
//! ends the search.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;
use support::{CallConfig, Sipp, SippTransport};

const CALLS: u32 = 3;

fn timeout() -> Duration {
    Duration::from_secs(20)
}

#[test]
fn a_challenging_callee_gets_digest_credentials() {
    for transport in [SippTransport::Udp, SippTransport::Tcp] {
        let mut uas = Sipp::server("uas_digest.xml")
            .transport(transport)
            .calls(CALLS)
            .timeout(timeout())
            .spawn();
        let credentials = [
            "[[credentials]]".to_string(),
            format!("target = \"{}\"", uas.addr()),
            "username = \"trunkuser\"".to_string(),
            "password = \"trunkpass\"".to_string(),
        ];
        let extra: Vec<&str> = credentials.iter().map(String::as_str).collect();
        let tandem = CallConfig::new()
            .route_full("", &[uas.target()], "serial", 10, &extra)
            .start();
        let uac = Sipp::client("uac.xml", tandem.addr(transport))
            .transport(transport)
            .calls(CALLS)
            .timeout(timeout())
            .run();
        uac.assert_success();
        let uas = uas.wait();
        // The UAS verified the Authorization of every retried INVITE
        // (SIPp's verifyauth) before answering.
        uas.assert_success();
        let retried: Vec<_> = uas
            .received()
            .into_iter()
            .filter(|m| m.is_request("INVITE") && m.header("Authorization").is_some())
            .collect();
        assert_eq!(retried.len(), CALLS as usize, "{}", uas.report());
        for m in &retried {
            let auth = m.must("Authorization");
            assert!(auth.contains("username=\"trunkuser\""), "{auth}");
            assert!(auth.contains("qop=auth"), "{auth}");
            assert!(
                m.must("CSeq").starts_with("2 "),
                "CSeq advances: {}",
                m.text()
            );
        }
        // The caller never sees the challenge.
        assert!(uac.received().iter().all(|m| m.status() != 401));
    }
}

#[test]
fn reliable_provisionals_are_pracked_on_each_leg() {
    for transport in [SippTransport::Udp, SippTransport::Tcp] {
        let mut uas = Sipp::server("uas_100rel.xml")
            .transport(transport)
            .calls(CALLS)
            .timeout(timeout())
            .spawn();
        let tandem = CallConfig::new().route("", &[uas.target()]).start();
        // The caller requires 100rel: its 183 must be reliable and it
        // PRACKs it; tandem PRACKs the callee's reliable 183 itself.
        let uac = Sipp::client("uac_100rel.xml", tandem.addr(transport))
            .transport(transport)
            .calls(CALLS)
            .timeout(timeout())
            .run();
        uac.assert_success();
        let uas = uas.wait();
        uas.assert_success();
        let pracks_at_b = uas
            .received()
            .iter()
            .filter(|m| m.is_request("PRACK"))
            .count();
        assert_eq!(pracks_at_b, CALLS as usize, "{}", uas.report());
        for m in uac.received().iter().filter(|m| m.status() == 183) {
            assert_eq!(m.header("Require"), Some("100rel"), "{}", m.text());
            assert!(m.header("RSeq").is_some(), "{}", m.text());
        }
    }
}

/// A 302 from the first target is followed: tandem sends a new INVITE to
/// the Contact of the 302 (over `transport`, like everything else).
fn redirect_followed(transport: SippTransport) {
    let mut final_uas = Sipp::server("uas.xml")
        .transport(transport)
        .calls(CALLS)
        .timeout(timeout())
        .spawn();
    let moved_to = format!("moved@{}{}", final_uas.addr(), transport.uri_param());
    let mut redirector = Sipp::server("uas_redirect.xml")
        .var("TARGET", &moved_to)
        .transport(transport)
        .calls(CALLS)
        .timeout(timeout())
        .spawn();
    let tandem = CallConfig::new().route("", &[redirector.target()]).start();
    let uac = Sipp::client("uac.xml", tandem.addr(transport))
        .transport(transport)
        .calls(CALLS)
        .timeout(timeout())
        .run();
    uac.assert_success();
    redirector.wait().assert_success();
    let final_run = final_uas.wait();
    final_run.assert_success();
    let invites: Vec<_> = final_run
        .received()
        .into_iter()
        .filter(|m| m.is_request("INVITE"))
        .collect();
    assert_eq!(invites.len(), CALLS as usize, "{}", final_run.report());
    assert!(
        invites
            .iter()
            .all(|m| m.text().starts_with("INVITE sip:moved@")),
        "the B leg follows the Contact of the 302"
    );
    let via = format!("SIP/2.0/{} ", transport.token());
    assert!(
        invites.iter().all(|m| m.must("Via").starts_with(&via)),
        "the followed INVITE goes over {via}: {}",
        final_run.report()
    );
}

#[test]
fn a_redirect_is_followed_to_its_contact_over_udp() {
    redirect_followed(SippTransport::Udp);
}

#[test]
fn a_redirect_is_followed_to_its_contact_over_tcp() {
    redirect_followed(SippTransport::Tcp);
}

/// With `redirect = "relay"` the 302 goes back to the caller as it is.
fn redirect_relayed(transport: SippTransport) {
    let moved_to = format!("moved@127.0.0.1:9{}", transport.uri_param());
    let mut redirector = Sipp::server("uas_redirect.xml")
        .var("TARGET", &moved_to)
        .transport(transport)
        .calls(CALLS)
        .timeout(timeout())
        .spawn();
    let tandem = CallConfig::new()
        .route_full(
            "",
            &[redirector.target()],
            "serial",
            10,
            &["redirect = \"relay\""],
        )
        .start();
    let uac = Sipp::client("uac_expect_302.xml", tandem.addr(transport))
        .transport(transport)
        .calls(CALLS)
        .timeout(timeout())
        .run();
    uac.assert_success();
    redirector.wait().assert_success();
}

#[test]
fn a_redirect_is_relayed_when_configured_over_udp() {
    redirect_relayed(SippTransport::Udp);
}

#[test]
fn a_redirect_is_relayed_when_configured_over_tcp() {
    redirect_relayed(SippTransport::Tcp);
}

#[test]
fn a_global_failure_ends_a_serial_search() {
    let mut decline = Sipp::server("uas_reject.xml")
        .var("CODE", "603")
        .var("REASON", "Decline")
        .calls(1)
        .timeout(timeout())
        .spawn();
    let mut never = Sipp::server("uas.xml")
        .calls(1)
        .timeout(Duration::from_secs(5))
        .spawn();
    let tandem = CallConfig::new()
        .route("", &[decline.target(), never.target()])
        .start();
    let uac = Sipp::client("uac_reject.xml", tandem.addr(SippTransport::Udp))
        .var("CODE", "603")
        .var("PAUSE_MS", "0")
        .calls(1)
        .timeout(timeout())
        .run();
    uac.assert_success();
    decline.wait().assert_success();
    never.kill();
    assert!(
        !never.messages().contains("INVITE sip:"),
        "no target is tried after a 6xx"
    );
}
