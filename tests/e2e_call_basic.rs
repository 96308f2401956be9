//! Basic calls through the B2BUA: SIPp caller → tandem → SIPp callee over
//! UDP and TCP, INVITE/180/200/ACK/BYE end to end, the caller or the callee
//! hanging up; topology hiding checked on the wire at both ends; failure
//! responses relayed with their code and reason.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;
use support::ua::{Dialog, Ua, hangup, sdp};
use support::{CallConfig, Msg, Sipp, SippRun, SippTransport, param, short_start};

const CALLS: u32 = 10;

/// `host:port` of a Via value (`SIP/2.0/UDP 127.0.0.1:5060;branch=...`).
fn via_sent_by(via: &str) -> String {
    via.split_whitespace()
        .nth(1)
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .to_string()
}

/// Everything that names one side's topology or dialogs, as it put it on
/// the wire: Via sent-by, Contact, Call-ID, its own tags.
fn identity(run: &SippRun, own_tag_marker: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for m in run.sent() {
        // Only requests carry a Via of the sender's own (a response
        // copies the request's).
        if m.method().is_some() {
            for v in m.header_all("Via") {
                ids.push(via_sent_by(v));
            }
        }
        for c in m.header_all("Contact") {
            ids.push(c.trim_matches(|c| c == '<' || c == '>').to_string());
        }
        if let Some(c) = m.header("Call-ID")
            && m.method() == Some("INVITE")
        {
            ids.push(c.to_string());
        }
        for h in ["From", "To"] {
            if let Some(t) = m.header(h).and_then(|v| param(v, "tag"))
                && t.contains(own_tag_marker)
            {
                ids.push(t);
            }
        }
    }
    ids.sort();
    ids.dedup();
    ids.retain(|s| !s.is_empty());
    ids
}

fn assert_nothing_of(
    what: &str,
    received: &[Msg],
    foreign: &[String],
    receiver: &SippRun,
    tandem: &support::Tandem,
) {
    for m in received {
        let text = m.text();
        for f in foreign {
            assert!(
                !text.contains(f.as_str()),
                "{what}: `{f}` leaked into a message tandem sent:\n{text}\n{}\n{}",
                receiver.report(),
                tandem.log_text()
            );
        }
    }
}

fn basic_calls(transport: SippTransport, callee_hangs_up: bool) {
    let (uac_scn, uas_scn) = if callee_hangs_up {
        ("uac_wait_bye.xml", "uas_bye.xml")
    } else {
        ("uac.xml", "uas.xml")
    };
    let mut uas = Sipp::server(uas_scn)
        .transport(transport)
        .calls(CALLS)
        .args(&["-d", "100"])
        .timeout(Duration::from_secs(20))
        .spawn();
    let tandem = CallConfig::new().route("", &[uas.target()]).start();
    let uac = Sipp::client(uac_scn, tandem.addr(transport))
        .transport(transport)
        .calls(CALLS)
        .args(&["-d", "100"])
        .timeout(Duration::from_secs(20))
        .run();
    uac.assert_success();
    let uas = uas.wait();
    uas.assert_success();

    // Every call went through end to end.
    let at_uas = uas.received();
    let invites: Vec<&Msg> = at_uas.iter().filter(|m| m.is_request("INVITE")).collect();
    assert_eq!(invites.len(), CALLS as usize, "{}", uas.report());
    let byes = at_uas.iter().filter(|m| m.is_request("BYE")).count();
    let acks = at_uas.iter().filter(|m| m.is_request("ACK")).count();
    if callee_hangs_up {
        assert_eq!(byes, 0, "the callee hung up itself: {}", uas.report());
        let to_a = uac
            .received()
            .iter()
            .filter(|m| m.is_request("BYE"))
            .count();
        assert_eq!(to_a, CALLS as usize, "{}", uac.report());
    } else {
        assert_eq!(byes, CALLS as usize, "{}", uas.report());
    }
    assert_eq!(acks, CALLS as usize, "{}", uas.report());

    // Topology hiding at the callee: nothing of the caller's Via, Contact,
    // Call-ID or tags; one Via (tandem's), tandem's own Call-IDs.
    let a_side = identity(&uac, "UACtag");
    // Call-IDs and tags of every call, Via and Contact.
    assert!(
        a_side.len() > 2 * CALLS as usize && a_side.iter().any(|s| s.contains("UACtag")),
        "identity of A: {a_side:?}"
    );
    assert_nothing_of("A side at B", &at_uas, &a_side, &uas, &tandem);
    let tandem_addr = tandem.addr(transport).to_string();
    let mut call_ids = Vec::new();
    for inv in &invites {
        let vias = inv.header_all("Via");
        assert_eq!(vias.len(), 1, "one Via at B:\n{}", inv.text());
        assert_eq!(via_sent_by(vias[0]), tandem_addr, "{}", inv.text());
        let contact = inv.must("Contact");
        assert!(
            contact.contains(&tandem_addr),
            "B-leg Contact is tandem's: {contact}"
        );
        call_ids.push(inv.must("Call-ID").to_string());
        // End-to-end headers cross (call-model.md, passthrough).
        assert!(inv.header("X-E2E").is_some(), "{}", inv.text());
        assert_eq!(inv.header("Subject"), Some("e2e call"), "{}", inv.text());
        assert!(
            inv.must("From").contains("Alice"),
            "B-leg From keeps the caller's display name: {}",
            inv.must("From")
        );
    }
    call_ids.sort();
    call_ids.dedup();
    assert_eq!(call_ids.len(), CALLS as usize, "one Call-ID per B leg");

    // And at the caller: nothing of the callee's Via, Contact or tags.
    let b_side = identity(&uas, "UAStag");
    assert!(
        b_side.iter().any(|s| s.contains("UAStag")),
        "identity of B: {b_side:?}"
    );
    let at_uac = uac.received();
    assert_nothing_of("B side at A", &at_uac, &b_side, &uac, &tandem);
    for m in &at_uac {
        if m.code() == Some(200) && m.cseq_method() == "INVITE" {
            let contact = m.must("Contact");
            assert!(
                contact.contains(&tandem_addr),
                "A-leg Contact is tandem's: {contact}"
            );
            assert_eq!(m.header_all("Via").len(), 1, "{}", m.text());
        }
    }

    // Nothing left behind.
    tandem.assert_idle(Duration::from_secs(5));
}

#[test]
fn caller_hangs_up_over_udp() {
    basic_calls(SippTransport::Udp, false);
}

#[test]
fn caller_hangs_up_over_tcp() {
    basic_calls(SippTransport::Tcp, false);
}

#[test]
fn callee_hangs_up_over_udp() {
    basic_calls(SippTransport::Udp, true);
}

#[test]
fn callee_hangs_up_over_tcp() {
    basic_calls(SippTransport::Tcp, true);
}

/// The callee refuses with `code reason`; the caller sees the same.
fn failure_relayed(transport: SippTransport, code: u16, reason: &str) {
    const N: u32 = 3;
    let code_s = code.to_string();
    let mut uas = Sipp::server("uas_reject.xml")
        .var("CODE", &code_s)
        .var("REASON", reason)
        .transport(transport)
        .calls(N)
        .timeout(Duration::from_secs(15))
        .spawn();
    let tandem = CallConfig::new().route("", &[uas.target()]).start();
    let uac = Sipp::client("uac_reject.xml", tandem.addr(transport))
        .var("CODE", &code_s)
        .var("PAUSE_MS", "600")
        .transport(transport)
        .calls(N)
        .timeout(Duration::from_secs(15))
        .run();
    uac.assert_success();
    uas.wait().assert_success();
    let finals: Vec<String> = uac
        .received()
        .iter()
        .filter(|m| m.code().is_some_and(|c| c >= 200))
        .map(short_start)
        .collect();
    // Exactly one per call: the ACK matched, no retransmission.
    assert_eq!(
        finals,
        vec![format!("{code} {reason}"); N as usize],
        "{}",
        uac.report()
    );
}

#[test]
fn busy_here_is_relayed_over_udp() {
    failure_relayed(SippTransport::Udp, 486, "Busy Here");
}

#[test]
fn decline_is_relayed_over_tcp() {
    failure_relayed(SippTransport::Tcp, 603, "Decline");
}

#[test]
fn custom_reason_phrase_is_relayed_over_udp() {
    failure_relayed(SippTransport::Udp, 486, "Gone Fishing");
}

/// A retransmitted INVITE (UDP) makes no second B leg; Max-Forwards is
/// decremented on the B leg.
#[test]
fn retransmitted_invite_makes_one_b_leg() {
    let mut b = Ua::callee("bob", SippTransport::Udp);
    let tandem = CallConfig::new().route("", &[b.target()]).start();
    let mut a = Ua::caller("alice", SippTransport::Udp, &tandem);
    let invite = a.invite("bob", Some(&sdp(40_000, &[])), &[]);
    let at_b = b.expect_request("INVITE");
    assert_eq!(at_b.header("Max-Forwards"), Some("69"), "{}", at_b.text());
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(100));
        a.send_req(&invite);
    }
    let first = at_b.must("Call-ID").to_string();
    b.expect_none(Duration::from_millis(500), "second B leg", |m| {
        m.is_request("INVITE") && m.header("Call-ID") != Some(&first)
    });
    let mut b_dialog = b.answer(&at_b, &sdp(42_000, &[]));
    let ok = a.expect_final(&invite);
    assert_eq!(ok.status(), 200);
    let a_dialog = Dialog::uac(&invite, &ok);
    a.ack(&a_dialog, &invite);
    b.expect_request("ACK");
    hangup(&mut b, &mut b_dialog, &mut a);
    tandem.assert_idle(Duration::from_secs(5));
}

/// Record-Route on each leg: the caller's (a proxy in front of it) is
/// echoed in the 2xx to A (RFC 3261 §12.1.1) and used as the route set of
/// tandem's requests to A (§12.2.1.1); the callee's is used on the B leg;
/// neither crosses to the other leg (topology hiding).
#[test]
fn record_route_is_kept_per_leg_and_hidden_from_the_other() {
    let mut b = Ua::callee("bob", SippTransport::Udp);
    let tandem = CallConfig::new().route("", &[b.target()]).start();
    let mut a = Ua::caller("alice", SippTransport::Udp, &tandem);
    // Each proxy is the UA itself, so that a route set that is followed
    // still reaches it; the marker parameter shows where it went.
    let rr_a = format!("<sip:127.0.0.1:{};lr;proxy=rr-a-marker>", a.local.port());
    let rr_b = format!("<sip:127.0.0.1:{};lr;proxy=rr-b-marker>", b.local.port());
    let mut problems: Vec<String> = Vec::new();
    let invite = a.invite(
        "bob",
        Some(&sdp(40_000, &[])),
        &[("Record-Route", rr_a.as_str())],
    );
    let at_b = b.expect_request("INVITE");
    assert!(!at_b.text().contains("rr-a-marker"), "{}", at_b.text());
    b.respond(
        &at_b,
        200,
        "OK",
        &[("Record-Route", rr_b.as_str())],
        Some(("application/sdp", &sdp(42_000, &[]))),
    );
    let tag = b.tag_for(at_b.must("Call-ID"));
    let mut b_dialog = Dialog::uas(&at_b, &tag);
    let ok = a.expect_final(&invite);
    assert_eq!(ok.status(), 200);
    assert!(!ok.text().contains("rr-b-marker"), "{}", ok.text());
    if ok.header("Record-Route") != Some(rr_a.as_str()) {
        problems.push(format!(
            "the 2xx to A does not echo A's Record-Route {rr_a} (RFC 3261 §12.1.1):\n{}",
            ok.text()
        ));
    }
    let a_dialog = Dialog::uac(&invite, &ok);
    a.ack(&a_dialog, &invite);
    let ack = b.expect_request("ACK");
    assert!(!ack.text().contains("rr-a-marker"), "{}", ack.text());
    if ack.header("Route") != Some(rr_b.as_str()) {
        problems.push(format!(
            "tandem's ACK to B has no Route {rr_b} from B's Record-Route (RFC 3261 \
             §12.1.2, §12.2.1.1):\n{}",
            ack.text()
        ));
    }
    // B hangs up: tandem's BYE to A follows A's route set.
    let bye = b.request(&mut b_dialog, "BYE", &[], None);
    let at_a = a.expect_request("BYE");
    assert!(!at_a.text().contains("rr-b-marker"), "{}", at_a.text());
    if at_a.header("Route") != Some(rr_a.as_str()) {
        problems.push(format!(
            "tandem's BYE to A has no Route {rr_a} from A's Record-Route (RFC 3261 \
             §12.1.1, §12.2.1.1):\n{}",
            at_a.text()
        ));
    }
    a.respond(&at_a, 200, "OK", &[], None);
    assert_eq!(b.expect_final(&bye).status(), 200);
    tandem.assert_idle(Duration::from_secs(5));
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// Static routing: the longest prefix of the Request-URI user wins,
/// `${user}` is replaced by the dialled user, and a user no route matches
/// gets 404.
#[test]
fn longest_prefix_routes_and_unrouted_users_get_404() {
    let mut short = Ua::callee("short", SippTransport::Udp);
    let mut long = Ua::callee("long", SippTransport::Udp);
    let tandem = CallConfig::new()
        .route("1", &[short.target()])
        .route("123", &[long.target()])
        .start();
    let mut a = Ua::caller("alice", SippTransport::Udp, &tandem);
    for (user, expect_long) in [("12345", true), ("1999", false), ("123", true)] {
        let invite = a.invite(user, Some(&sdp(40_000, &[])), &[]);
        let (hit, miss) = if expect_long {
            (&mut long, &mut short)
        } else {
            (&mut short, &mut long)
        };
        let at = hit.expect_request("INVITE");
        assert!(
            at.start.starts_with(&format!(
                "INVITE sip:{user}@127.0.0.1:{} ",
                hit.local.port()
            )),
            "${{user}} substituted: {}",
            at.start
        );
        miss.expect_none(
            Duration::from_millis(10),
            "INVITE for the other route",
            |m| m.is_request("INVITE"),
        );
        hit.respond(&at, 486, "Busy Here", &[], None);
        hit.expect_request("ACK");
        let resp = a.expect_final(&invite);
        assert_eq!(resp.status(), 486);
        a.ack_failure(&invite, &resp);
    }
    let invite = a.invite("2000", Some(&sdp(40_000, &[])), &[]);
    let resp = a.expect_final(&invite);
    assert_eq!(
        (resp.status(), resp.reason()),
        (404, "Not Found"),
        "{}",
        resp.text()
    );
    a.ack_failure(&invite, &resp);
    tandem.assert_idle(Duration::from_secs(5));
}
