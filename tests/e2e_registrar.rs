//! The registrar, the location service and digest authentication, end to
//! end: SIPp and the test UA register to the real binary (right and wrong
//! passwords, replayed and expired nonces, SHA-256 and MD5, expiry,
//! unregistering), unauthenticated INVITEs never reach a B leg, registered
//! users call each other by name (UDP and over the registering TCP
//! connection), bindings survive a restart, and the dial plan sees
//! registrations (`on_register`, `tandem.registrar.lookup`,
//! `call:dial("user:…")`, `call:challenge()`).

mod support;

use sip::auth::{Algorithm, Challenge};
use std::time::Duration;
use support::baresip::Baresip;
use support::digest::{authorized, challenge, send};
use support::ua::{Incoming, Ua};
use support::*;

/// Two users in realm `tandem.test`; SIPp answers only MD5, so MD5 is
/// offered first in the SIPp tests.
fn users(extra: &str) -> String {
    format!(
        r#"
[auth]
realm = "tandem.test"
{extra}

[[users]]
name = "alice"
password = "wonderland"

[[users]]
name = "bob"
password = "builder"
"#
    )
}

/// A REGISTER for `user` from `ua` (fresh branch, given CSeq and Call-ID).
fn register_req(ua: &Ua, user: &str, call_id: &str, cseq: u32, expires: u32) -> Req {
    let tandem = "tandem.test";
    Req::new("REGISTER", ua.transport.token(), ua.local)
        .uri(&format!("sip:{tandem}"))
        .set(
            "From",
            &format!("<sip:{user}@{tandem}>;tag={}", unique("r")),
        )
        .set("To", &format!("<sip:{user}@{tandem}>"))
        .set("Call-ID", call_id)
        .set("CSeq", &format!("{cseq} REGISTER"))
        .set("Contact", &ua.contact())
        .set("Expires", &expires.to_string())
}

/// Registers `ua` as `user` (challenge, then credentials); returns the
/// 200 and the challenge used.
fn register(ua: &mut Ua, user: &str, password: &str, expires: u32) -> (Incoming, Challenge) {
    let call_id = unique("reg-");
    let first = send(&register_req(ua, user, &call_id, 1, expires), ua);
    assert_eq!(first.status(), 401, "{}", first.text());
    let c = challenge(&first, Algorithm::Md5);
    let req = authorized(
        register_req(ua, user, &call_id, 2, expires),
        &c,
        user,
        password,
        1,
    );
    let ok = send(&req, ua);
    assert_eq!(ok.status(), 200, "{}", ok.text());
    (ok, c)
}

/// Sends INVITE `req` from `ua`, checks that it fails with `code`, and
/// ACKs the failure.
fn refused(req: &Req, ua: &mut Ua, code: u16) -> Incoming {
    let r = send(req, ua);
    assert_eq!(r.status(), code, "{}", r.text());
    ua.ack_failure(req, &r);
    r
}

/// An INVITE from `user` to `to` at tandem (not sent).
fn invite_req(ua: &Ua, tandem: std::net::SocketAddr, user: &str, to: &str) -> Req {
    Req::new("INVITE", ua.transport.token(), ua.local)
        .uri(&format!("sip:{to}@{tandem}"))
        .set(
            "From",
            &format!("<sip:{user}@tandem.test>;tag={}", unique("f")),
        )
        .set("To", &format!("<sip:{to}@tandem.test>"))
        .set("Contact", &ua.contact())
        .sdp()
}

#[test]
fn sipp_registers_with_digest_auth_and_unregisters() {
    let tandem = Tandem::with_config(&users(r#"algorithms = ["MD5", "SHA-256"]"#));
    let run = Sipp::client("register_auth.xml", tandem.udp())
        .args(&["-s", "alice", "-au", "alice", "-ap", "wonderland"])
        .run();
    run.assert_success();
    assert!(
        run.logs.contains("registered <sip:alice@127.0.0.1:"),
        "{}",
        run.logs
    );
    assert!(run.logs.contains("unregistered"), "{}", run.logs);
}

#[test]
fn sipp_with_a_wrong_password_is_forbidden() {
    let tandem = Tandem::with_config(&users(r#"algorithms = ["MD5"]"#));
    let run = Sipp::client("register_wrong.xml", tandem.udp())
        .args(&["-s", "alice", "-au", "alice", "-ap", "queen-of-hearts"])
        .run();
    run.assert_success();
    tandem.expect_log(WAIT, &["Registration refused: authentication failed."]);
}

#[test]
fn sha256_nonce_replay_and_expiry() {
    let tandem = Tandem::with_config(&users(
        "nonce_ttl_s = 1\nalgorithms = [\"SHA-256\", \"MD5\"]",
    ));
    let mut ua = Ua::caller("alice", SippTransport::Udp, &tandem);
    let call_id = unique("reg-");
    let first = send(&register_req(&ua, "alice", &call_id, 1, 60), &mut ua);
    assert_eq!(first.status(), 401);
    // RFC 8760: one challenge per algorithm, the preferred (SHA-256) first.
    let offered = first.header_all("WWW-Authenticate");
    assert_eq!(offered.len(), 2, "{}", first.text());
    assert!(offered[0].contains("algorithm=SHA-256"), "{}", offered[0]);
    assert!(offered[1].contains("algorithm=MD5"), "{}", offered[1]);
    assert!(offered[0].contains("qop=\"auth\""), "{}", offered[0]);
    let c = challenge(&first, Algorithm::Sha256);

    let req = authorized(
        register_req(&ua, "alice", &call_id, 2, 60),
        &c,
        "alice",
        "wonderland",
        1,
    );
    let ok = send(&req, &mut ua);
    assert_eq!(ok.status(), 200, "{}", ok.text());
    assert!(ok.must("Contact").contains(&ua.local.to_string()));
    assert!(ok.header("Date").is_some(), "{}", ok.text());

    // The same credentials again (a replay: new branch and CSeq, same
    // nonce and nonce count) are not accepted.
    let replay =
        register_req(&ua, "alice", &call_id, 3, 60).set("Authorization", req.get("Authorization"));
    let r = send(&replay, &mut ua);
    assert_eq!(r.status(), 401, "{}", r.text());
    assert!(
        r.must("WWW-Authenticate").contains("stale=true"),
        "{}",
        r.text()
    );

    // The next nonce count with the same nonce is fine.
    let next = authorized(
        register_req(&ua, "alice", &call_id, 4, 60),
        &c,
        "alice",
        "wonderland",
        2,
    );
    assert_eq!(send(&next, &mut ua).status(), 200);

    // After the nonce's lifetime: stale, and a fresh nonce works.
    std::thread::sleep(Duration::from_millis(2200));
    let late = authorized(
        register_req(&ua, "alice", &call_id, 5, 60),
        &c,
        "alice",
        "wonderland",
        3,
    );
    let r = send(&late, &mut ua);
    assert_eq!(r.status(), 401, "{}", r.text());
    assert!(
        r.must("WWW-Authenticate").contains("stale=true"),
        "{}",
        r.text()
    );
    let fresh = challenge(&r, Algorithm::Sha256);
    let again = authorized(
        register_req(&ua, "alice", &call_id, 6, 60),
        &fresh,
        "alice",
        "wonderland",
        1,
    );
    assert_eq!(send(&again, &mut ua).status(), 200);
}

#[test]
fn bindings_are_listed_expire_and_are_removed() {
    let tandem = Tandem::with_config(
        "[registrar]\nmin_expires = 2\nmax_expires = 600\ndefault_expires = 60\n",
    );
    let mut ua = Ua::caller("carol", SippTransport::Udp, &tandem);
    let call_id = unique("reg-");
    // Too brief: 423 with Min-Expires.
    let r = send(&register_req(&ua, "carol", &call_id, 1, 1), &mut ua);
    assert_eq!(r.status(), 423, "{}", r.text());
    assert_eq!(r.header("Min-Expires"), Some("2"));
    // Two contacts: one short-lived, one with q and a long (clamped) time.
    let req = register_req(&ua, "carol", &call_id, 2, 2).set(
        "Contact",
        &format!(
            "<sip:carol@{}>, <sip:carol-desk@127.0.0.1:5999>;q=0.5;expires=3600",
            ua.local
        ),
    );
    let ok = send(&req, &mut ua);
    assert_eq!(ok.status(), 200, "{}", ok.text());
    let contacts = ok.header_all("Contact").join(", ");
    assert!(
        contacts.contains("carol-desk@127.0.0.1:5999>;expires=600;q=0.5"),
        "{contacts}"
    );
    assert!(
        contacts.contains(&format!("<sip:carol@{}>;expires=2", ua.local)),
        "{contacts}"
    );
    // A query (no Contact) lists them; out-of-order CSeq is refused.
    let stale = register_req(&ua, "carol", &call_id, 1, 60);
    assert_eq!(send(&stale, &mut ua).status(), 500);
    std::thread::sleep(Duration::from_millis(3200));
    let query = register_req(&ua, "carol", &call_id, 3, 60).remove("Contact");
    let listed = send(&query, &mut ua);
    let contacts = listed.header_all("Contact").join(", ");
    assert!(
        !contacts.contains(&ua.local.to_string()),
        "expired binding listed: {contacts}"
    );
    assert!(contacts.contains("carol-desk"), "{contacts}");
    // `*` with Expires: 0 removes the rest; with another value it is refused.
    let bad = register_req(&ua, "carol", &call_id, 4, 60).set("Contact", "*");
    assert_eq!(send(&bad, &mut ua).status(), 400);
    let all = register_req(&ua, "carol", &call_id, 5, 0).set("Contact", "*");
    let gone = send(&all, &mut ua);
    assert_eq!(gone.status(), 200, "{}", gone.text());
    assert!(gone.header("Contact").is_none(), "{}", gone.text());
}

#[test]
fn a_user_registers_only_their_own_name_and_failures_are_rate_limited() {
    let tandem = Tandem::with_config(&users(
        "max_failures = 3\nfailure_window_s = 60\nblock_s = 60",
    ));
    let mut ua = Ua::caller("alice", SippTransport::Udp, &tandem);
    // alice's credentials for bob's AOR: 403.
    let call_id = unique("reg-");
    let first = send(&register_req(&ua, "bob", &call_id, 1, 60), &mut ua);
    let c = challenge(&first, Algorithm::Md5);
    let req = authorized(
        register_req(&ua, "bob", &call_id, 2, 60),
        &c,
        "alice",
        "wonderland",
        1,
    );
    let r = send(&req, &mut ua);
    assert_eq!(r.status(), 403, "{}", r.text());
    tandem.expect_log(WAIT, &["Registration for another user refused.", "aor=bob"]);
    // Three wrong passwords, then the source is blocked even for the
    // right one.
    for n in 0..3 {
        let req = authorized(
            register_req(&ua, "alice", &call_id, 3 + n, 60),
            &c,
            "alice",
            "guess",
            2 + n,
        );
        assert_eq!(send(&req, &mut ua).status(), 403);
    }
    let right = authorized(
        register_req(&ua, "alice", &call_id, 10, 60),
        &c,
        "alice",
        "wonderland",
        9,
    );
    let r = send(&right, &mut ua);
    assert_eq!(r.status(), 403, "{}", r.text());
    assert_eq!(r.reason(), "Too Many Failed Attempts");
    tandem.expect_log(WAIT, &["Source blocked after"]);
}

#[test]
fn unauthenticated_invites_are_challenged_and_never_reach_a_b_leg() {
    let mut b = Ua::callee("b", SippTransport::Udp);
    let tandem = Tandem::with_config(&format!(
        "{}\n[[routes]]\nprefix = \"9\"\ntargets = [\"{}\"]\n",
        users(r#"algorithms = ["SHA-256", "MD5"]"#),
        b.target()
    ));
    let mut a = Ua::caller("alice", SippTransport::Udp, &tandem);
    // No credentials: 407 with a Proxy-Authenticate per algorithm.
    let inv = invite_req(&a, tandem.udp(), "alice", "9123");
    let r = refused(&inv, &mut a, 407);
    let c = challenge(&r, Algorithm::Sha256);
    // Wrong password: 403.
    let wrong = authorized(
        invite_req(&a, tandem.udp(), "alice", "9123"),
        &c,
        "alice",
        "nope",
        1,
    );
    refused(&wrong, &mut a, 403);
    // Right password, but From claims to be bob: 403.
    let spoof = authorized(
        invite_req(&a, tandem.udp(), "bob", "9123"),
        &c,
        "alice",
        "wonderland",
        2,
    );
    refused(&spoof, &mut a, 403);
    tandem.expect_log(WAIT, &["Call refused: From is not the authenticated user."]);
    b.expect_none(
        Duration::from_millis(500),
        "no INVITE may reach the B leg",
        |_| true,
    );
    // Right password and identity: the call goes through.
    let good = authorized(
        invite_req(&a, tandem.udp(), "alice", "9123"),
        &c,
        "alice",
        "wonderland",
        3,
    );
    a.send_req(&good);
    let at_b = b.expect_request("INVITE");
    assert!(
        at_b.header("Proxy-Authorization").is_none(),
        "credentials leaked to B:\n{}",
        at_b.text()
    );
    b.respond(&at_b, 486, "Busy Here", &[], None);
    let r = a.expect_final(&good);
    assert_eq!(r.status(), 486);
    a.ack_failure(&good, &r);
}

#[test]
fn registered_sipp_users_call_each_other_by_name() {
    let tandem = Tandem::with_config(&users(r#"algorithms = ["MD5"]"#));
    // bob: a SIPp that registers when kicked, then answers.
    let bob = Sipp::server("register_answer.xml")
        .var("USER", "bob")
        .var("TANDEM", &tandem.udp().to_string())
        .var("TANDEM_IP", &tandem.udp().ip().to_string())
        .var("TANDEM_PORT", &tandem.udp().port().to_string())
        // SIPp builds the digest uri from the remote address, which a
        // server scenario's setdest leaves empty.
        .args(&[
            "-au",
            "bob",
            "-ap",
            "builder",
            "-auth_uri",
            &tandem.udp().to_string(),
        ])
        .calls(2)
        .spawn();
    let kick = UdpPeer::new(bob.addr());
    kick.send_req(&kick.req("OPTIONS").uri(&format!("sip:bob@{}", bob.addr())));
    bob.wait_log("registered", Duration::from_secs(10));
    // alice: registers, then calls bob by name.
    let alice = Sipp::client("register_call.xml", tandem.udp())
        .var("USER", "alice")
        .args(&[
            "-s",
            "bob",
            "-au",
            "alice",
            "-ap",
            "wonderland",
            "-d",
            "500",
        ])
        .run();
    alice.assert_success();
    assert!(alice.logs.contains("answered by bob"), "{}", alice.logs);
    let mut bob = bob;
    let bob_run = bob.wait();
    bob_run.assert_success();
    // bob was reached at the address it registered from, at its contact.
    let invite = bob_run
        .received()
        .into_iter()
        .find(|m| m.start.starts_with("INVITE "))
        .expect("bob got an INVITE");
    assert!(
        invite
            .start
            .starts_with(&format!("INVITE sip:bob@127.0.0.1:{} ", bob.port)),
        "{}",
        invite.start
    );
    assert!(invite.must("From").contains("alice"), "{}", invite.text());
}

#[test]
fn an_unregistered_user_gets_480_and_tcp_bindings_reuse_their_connection() {
    let tandem = Tandem::with_config(&users(r#"algorithms = ["MD5"]"#));
    let mut alice = Ua::caller("alice", SippTransport::Udp, &tandem);
    let (_, c) = register(&mut alice, "alice", "wonderland", 60);
    // bob is a user but not registered: 480.
    let inv = authorized(
        invite_req(&alice, tandem.udp(), "alice", "bob"),
        &c,
        "alice",
        "wonderland",
        2,
    );
    refused(&inv, &mut alice, 480);
    // bob registers over TCP: the call reaches him on that connection.
    let mut bob = Ua::caller("bob", SippTransport::Tcp, &tandem);
    register(&mut bob, "bob", "builder", 60);
    let inv = authorized(
        invite_req(&alice, tandem.udp(), "alice", "bob"),
        &c,
        "alice",
        "wonderland",
        3,
    );
    alice.send_req(&inv);
    let at_bob = bob.expect_request("INVITE");
    assert!(
        at_bob
            .start
            .starts_with(&format!("INVITE sip:bob@{}", bob.local)),
        "{}",
        at_bob.start
    );
    bob.respond(&at_bob, 603, "Decline", &[], None);
    let r = alice.expect_final(&inv);
    assert_eq!(r.status(), 603);
    alice.ack_failure(&inv, &r);
}

#[test]
fn bindings_survive_a_restart_with_a_file_store() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("bindings.jsonl");
    let config = format!("[registrar]\nfile = \"{}\"\n", file.display());
    let mut first = Tandem::with_config(&config);
    let port = first.udp().port();
    let mut dave = Ua::caller("dave", SippTransport::Udp, &first);
    let ok = send(
        &register_req(&dave, "dave", &unique("reg-"), 1, 300),
        &mut dave,
    );
    assert_eq!(ok.status(), 200, "{}", ok.text());
    // Killed outright: nothing is flushed at exit.
    first.signal("KILL");
    first.wait_exit(Duration::from_secs(5));
    // The same address again, so that dave's socket still talks to it.
    let second = Tandem::builder()
        .config(&config)
        .listen(&[&format!("udp:127.0.0.1:{port}")])
        .start();
    let mut caller = Ua::caller("erin", SippTransport::Udp, &second);
    let inv = invite_req(&caller, second.udp(), "erin", "dave");
    caller.send_req(&inv);
    let at_dave = dave.expect_request("INVITE");
    dave.respond(&at_dave, 486, "Busy Here", &[], None);
    let r = caller.expect_final(&inv);
    assert_eq!(r.status(), 486);
    caller.ack_failure(&inv, &r);
}

#[test]
fn the_dial_plan_sees_registrations() {
    let mut builder = Tandem::builder();
    let script = builder.file(
        "pbx.lua",
        r#"
function on_register(reg)
  if reg.user_agent == "BadPhone/1.0" then
    reg:reject(403, "Phone Not Allowed")
    return
  end
  reg.attrs.dept = "sales"
  reg.attrs.via = reg.transport
end

function on_invite(call)
  if not call.auth_user then
    call:challenge()
    return
  end
  local contacts = tandem.registrar.lookup(call.user)
  if #contacts == 0 then
    call:reject(404, "No Such Phone")
    return
  end
  call:set_header("X-Dept", contacts[1].attrs.dept or "none")
  call:set_header("X-Auth-User", call.auth_user)
  call:set_header("X-Contacts", tostring(#contacts))
  local r = call:dial("user:" .. call.user)
  if not r.answered then call:reject(r.code, r.reason) end
end
"#,
    );
    let tandem = builder
        .config(&format!(
            "{}\n[dialplan]\nscript = \"{}\"\n",
            users("challenge_calls = false\nalgorithms = [\"MD5\"]"),
            script.display()
        ))
        .start();
    let mut bob = Ua::caller("bob", SippTransport::Udp, &tandem);
    // A phone the hook refuses.
    let call_id = unique("reg-");
    let first = send(&register_req(&bob, "bob", &call_id, 1, 60), &mut bob);
    let c = challenge(&first, Algorithm::Md5);
    let bad = authorized(
        register_req(&bob, "bob", &call_id, 2, 60).set("User-Agent", "BadPhone/1.0"),
        &c,
        "bob",
        "builder",
        1,
    );
    let r = send(&bad, &mut bob);
    assert_eq!((r.status(), r.reason()), (403, "Phone Not Allowed"));
    register(&mut bob, "bob", "builder", 60);

    let mut alice = Ua::caller("alice", SippTransport::Udp, &tandem);
    // Without credentials the INVITE reaches the dial plan, which
    // challenges.
    let inv = invite_req(&alice, tandem.udp(), "alice", "bob");
    let r = refused(&inv, &mut alice, 407);
    let c = challenge(&r, Algorithm::Md5);
    let inv = authorized(
        invite_req(&alice, tandem.udp(), "alice", "bob"),
        &c,
        "alice",
        "wonderland",
        1,
    );
    alice.send_req(&inv);
    let at_bob = bob.expect_request("INVITE");
    assert_eq!(at_bob.header("X-Dept"), Some("sales"), "{}", at_bob.text());
    assert_eq!(at_bob.header("X-Auth-User"), Some("alice"));
    assert_eq!(at_bob.header("X-Contacts"), Some("1"));
    bob.respond(&at_bob, 486, "Busy Here", &[], None);
    let r = alice.expect_final(&inv);
    assert_eq!(r.status(), 486);
    alice.ack_failure(&inv, &r);
}

#[test]
fn baresip_registers_and_calls_through_tandem_to_sipp() {
    assert!(
        Baresip::available(),
        "baresip is not installed (the test command installs baresip-core)"
    );
    // SIPp answers and echoes the RTP it gets, so the phone hears its own
    // tone back through Tandem's relay.
    let mut uas = Sipp::server("uas.xml").args(&["-rtp_echo"]).spawn();
    let tandem = Tandem::with_config(&format!(
        "{}\n[[routes]]\nprefix = \"1000\"\ntargets = [\"{}\"]\n",
        users(""),
        uas.target()
    ));
    let mut phone = Baresip::start("alice", "wonderland", tandem.udp(), Duration::from_secs(40));
    phone.wait_registered(Duration::from_secs(10));
    phone.dial(&format!("sip:1000@{}", tandem.udp()));
    phone.wait_established(Duration::from_secs(10));
    phone.wait_rtp(Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(2));
    phone.hangup();
    phone.wait_closed(Duration::from_secs(10));
    uas.wait().assert_success();
    let heard = phone.received_audio().expect("a recording of the call");
    assert!(
        heard.duration() > Duration::from_secs(1),
        "heard {:?}",
        heard.duration()
    );
    assert!(
        heard.tone_ratio(440.0) > 0.5,
        "the echoed 440 Hz tone: ratio {}, rms {}",
        heard.tone_ratio(440.0),
        heard.rms()
    );
    tandem.expect_log(WAIT, &["Hangup."]);
}

#[test]
fn an_open_switch_on_a_public_listener_warns() {
    // Bound to the wildcard address but never sent to: nothing leaves
    // the machine.
    let open = Tandem::builder().listen(&["udp:0.0.0.0:0"]).start();
    open.expect_log(WAIT, &["No [[users]] configured"]);
    let closed = Tandem::builder()
        .config(&users(""))
        .listen(&["udp:0.0.0.0:0"])
        .start();
    closed.expect_log(WAIT, &["Listening."]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(closed.count_log(&["No [[users]] configured"]), 0);
}

#[test]
fn a_tcp_registration_keeps_its_idle_connection_open() {
    // Connections idle for 1 s are closed, unless a binding lives on them.
    let tandem = Tandem::with_config("[sip]\ntcp_idle_timeout_s = 1\n");
    let mut phone = Ua::caller("frank", SippTransport::Tcp, &tandem);
    let ok = send(
        &register_req(&phone, "frank", &unique("reg-"), 1, 60),
        &mut phone,
    );
    assert_eq!(ok.status(), 200, "{}", ok.text());
    std::thread::sleep(Duration::from_millis(2500));
    let mut caller = Ua::caller("gina", SippTransport::Udp, &tandem);
    let inv = invite_req(&caller, tandem.udp(), "gina", "frank");
    caller.send_req(&inv);
    let at_phone = phone.expect_request("INVITE");
    phone.respond(&at_phone, 486, "Busy Here", &[], None);
    let r = caller.expect_final(&inv);
    assert_eq!(r.status(), 486, "{}", r.text());
    caller.ack_failure(&inv, &r);
}
