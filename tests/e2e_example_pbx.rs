//! The PBX of `examples/pbx/` through the real binary: its dial plan passes
//! `tandem check` and `tandem simulate`, and with the example's own config
//! (moved to free ports) two test phones register with digest
//! authentication, a call to an extension rings the registered phone with
//! the authenticated caller's ID, busy fails over to voicemail, numbers
//! starting with 0 go to the trunk, and `on_register` tagged each binding
//! with the phone's family.

mod support;

use sip::auth::{Algorithm, Challenge};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use support::digest::{authorized, challenge, send};
use support::ua::{Dialog, Ua, hangup, sdp};
use support::*;

/// The example's voicemail, trunk and media ports, which the test moves
/// to free ports.
const SHIPPED_VOICEMAIL: &str = "sip:voicemail@127.0.0.1:5090";
const SHIPPED_TRUNK: &str = "127.0.0.1:5070";
const SHIPPED_MEDIA_PORTS: &str = "ports = \"20000-20999\"";

/// The example's realm; the phones' domain.
const REALM: &str = "tandem.test";

fn example(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/pbx")).join(name)
}

fn read_example(name: &str) -> String {
    std::fs::read_to_string(example(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
}

/// Tandem with `examples/pbx/` in a temporary directory: the config and the
/// dial plan as shipped, except for the listeners (free ports), the media
/// ports, the voicemail and trunk addresses, and a status line every
/// second. Returns it with the path of its bindings file.
fn start_pbx(voicemail: &Ua, trunk: &Ua) -> (Tandem, PathBuf) {
    let config = read_example("tandem.toml");
    let script = read_example("pbx.lua");
    for (text, shipped) in [
        (&config, SHIPPED_TRUNK),
        (&config, SHIPPED_MEDIA_PORTS),
        (&script, SHIPPED_VOICEMAIL),
    ] {
        assert!(text.contains(shipped), "`{shipped}` moved in examples/pbx");
    }
    let config = config
        .replace(
            SHIPPED_MEDIA_PORTS,
            &format!("ports = \"{}\"", media_ports(20)),
        )
        .replace(SHIPPED_TRUNK, &trunk.local.to_string())
        + "\n[status]\ninterval_s = 1\n";
    let script = script.replace(
        SHIPPED_VOICEMAIL,
        &format!("sip:voicemail@{}", voicemail.local),
    );
    let mut builder = Tandem::builder();
    let dir = builder
        .file("pbx.lua", &script)
        .parent()
        .expect("temporary directory")
        .to_path_buf();
    // The default listeners (UDP and TCP on 127.0.0.1:0) replace the
    // config's 5060.
    let tandem = builder.config(&config).start();
    (tandem, dir.join("bindings.jsonl"))
}

/// The challenge for MD5 (the example offers only MD5) in a 401/407.
fn md5_challenge(resp: &Msg) -> Challenge {
    let header = if resp.status() == 401 {
        "WWW-Authenticate"
    } else {
        "Proxy-Authenticate"
    };
    let offered = resp.header_all(header);
    assert_eq!(offered.len(), 1, "MD5 alone is offered:\n{}", resp.text());
    challenge(resp, Algorithm::Md5)
}

/// Registers `phone` as its user with `password` (401, then credentials),
/// as a phone whose User-Agent is `user_agent`.
fn register(phone: &mut Ua, password: &str, user_agent: &str) {
    let user = phone.user.clone();
    let call_id = unique("reg-");
    let req = |phone: &Ua, cseq: u32| {
        Req::new("REGISTER", phone.transport.token(), phone.local)
            .uri(&format!("sip:{REALM}"))
            .set("From", &format!("<sip:{user}@{REALM}>;tag={}", unique("r")))
            .set("To", &format!("<sip:{user}@{REALM}>"))
            .set("Call-ID", &call_id)
            .set("CSeq", &format!("{cseq} REGISTER"))
            .set("Contact", &phone.contact())
            .set("Expires", "600")
            .set("User-Agent", user_agent)
    };
    let first = send(&req(phone, 1), phone);
    assert_eq!(first.status(), 401, "{}", first.text());
    let c = md5_challenge(&first);
    let ok = send(&authorized(req(phone, 2), &c, &user, password, 1), phone);
    assert_eq!(ok.status(), 200, "{}", ok.text());
    assert!(
        ok.header_all("Contact")
            .iter()
            .any(|c| c.contains(&phone.local.to_string())),
        "{}",
        ok.text()
    );
}

/// An INVITE from `phone` (its user in From) to `to` at tandem, with SDP
/// (not sent).
fn invite(phone: &Ua, tandem: &Tandem, to: &str) -> Req {
    let server = tandem.addr(phone.transport);
    Req::new("INVITE", phone.transport.token(), phone.local)
        .uri(&format!("sip:{to}@{server}{}", phone.transport.uri_param()))
        .set(
            "From",
            &format!("<sip:{}@{REALM}>;tag={}", phone.user, unique("f")),
        )
        .set("To", &format!("<sip:{to}@{REALM}>"))
        .set("Contact", &phone.contact())
        .sdp()
}

#[test]
fn the_example_passes_check_and_simulate() {
    let script = example("pbx.lua");
    let script = script.to_str().expect("UTF-8 path");
    let out = run_tandem(&["check", script], &[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.ends_with(": OK\n"), "{}", out.stdout);

    // The config is valid as shipped (this opens no bindings file).
    let config = example("tandem.toml");
    let out = run_tandem(
        &["--check-config", "--config", config.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains("listen udp:127.0.0.1:5060"),
        "{}",
        out.stdout
    );

    // Busy: the operator (not registered here: 480), then voicemail.
    let out = run_tandem(
        &[
            "simulate",
            script,
            "--from",
            "1001",
            "--to",
            "1002",
            "--outcome",
            "user:1002=486",
            "--outcome",
            "user:1000=480",
        ],
        &[],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    for line in [
        "dial user:1002 mode=serial timeout=20",
        "dial user:1000 sip:voicemail@127.0.0.1:5090 [X-Mailbox: 1002] mode=serial timeout=20",
        "result: answered by sip:voicemail@127.0.0.1:5090",
    ] {
        assert!(
            out.stdout.lines().any(|l| l == line),
            "`{line}` missing in:\n{}",
            out.stdout
        );
    }
}

#[test]
fn registered_phones_ring_and_busy_fails_over_to_voicemail() {
    let mut voicemail = Ua::callee("voicemail", SippTransport::Udp);
    let mut trunk = Ua::callee("trunk", SippTransport::Udp);
    let (tandem, bindings) = start_pbx(&voicemail, &trunk);

    // Two phones register: 1001 over UDP, 1002 over TCP.
    let mut ada = Ua::caller("1001", SippTransport::Udp, &tandem);
    let mut grace = Ua::caller("1002", SippTransport::Tcp, &tandem);
    register(&mut ada, "wonderland", "baresip v1.0.0 (x86_64/linux)");
    register(&mut grace, "builder", "Linphone/5.2.6 (belle-sip/5.2.0)");
    if let Err(last) = tandem.wait_status(0, WAIT, |s| s.get("registrations") == 2) {
        panic!("registrations=2 never logged; last: {last:?}");
    }
    // on_register tagged each binding with the phone's family, and the
    // file store has them.
    let journal = std::fs::read_to_string(&bindings).expect("read the bindings file");
    for family in [r#""family":"baresip""#, r#""family":"linphone""#] {
        assert!(journal.contains(family), "{family} missing in:\n{journal}");
    }

    // 1001 calls 1002: challenged first, then let in with credentials.
    let first = invite(&ada, &tandem, "1002");
    let r = send(&first, &mut ada);
    assert_eq!(r.status(), 407, "{}", r.text());
    ada.ack_failure(&first, &r);
    let c = md5_challenge(&r);
    let call = authorized(invite(&ada, &tandem, "1002"), &c, "1001", "wonderland", 1);
    ada.send_req(&call);

    // 1002's phone rings, on the connection it registered over, at its
    // registered contact, with 1001's name as caller ID.
    let at_grace = grace.expect_request("INVITE");
    assert!(
        at_grace
            .start
            .starts_with(&format!("INVITE sip:1002@{}", grace.local)),
        "{}",
        at_grace.start
    );
    let from = at_grace.must("From");
    assert!(
        from.contains("\"Ada\"") && from.contains("sip:1001@"),
        "{from}"
    );
    assert!(
        at_grace.header("Proxy-Authorization").is_none(),
        "credentials leaked:\n{}",
        at_grace.text()
    );
    grace.respond(&at_grace, 180, "Ringing", &[], None);
    ada.expect_response(&call, "180", |m| m.status() == 180);
    grace.respond(&at_grace, 486, "Busy Here", &[], None);

    // Busy: the operator has no phone registered, so voicemail answers.
    let at_voicemail = voicemail.expect_request("INVITE");
    assert_eq!(
        at_voicemail.header("X-Mailbox"),
        Some("1002"),
        "{}",
        at_voicemail.text()
    );
    let rtp = UdpSocket::bind("127.0.0.1:0").expect("bind RTP");
    let port = rtp.local_addr().expect("RTP address").port();
    voicemail.answer(&at_voicemail, &sdp(port, &[]));
    let ok = ada.expect_final(&call);
    assert_eq!(ok.status(), 200, "{}", ok.text());
    let mut ada_dialog = Dialog::uac(&call, &ok);
    ada.ack(&ada_dialog, &call);
    voicemail.expect_request("ACK");
    hangup(&mut ada, &mut ada_dialog, &mut voicemail);
    tandem.expect_log(WAIT, &["extension 1002 gave 486"]);

    // A number starting with 0 goes out over the trunk, presented as the
    // office number with the caller's name.
    let out = authorized(
        invite(&ada, &tandem, "0301234567"),
        &c,
        "1001",
        "wonderland",
        2,
    );
    ada.send_req(&out);
    let at_trunk = trunk.expect_request("INVITE");
    assert!(
        at_trunk
            .start
            .starts_with(&format!("INVITE sip:0301234567@{} ", trunk.local)),
        "{}",
        at_trunk.start
    );
    let from = at_trunk.must("From");
    assert!(
        from.contains("\"Ada\"") && from.contains("sip:+4930123456@"),
        "{from}"
    );
    trunk.respond(&at_trunk, 486, "Busy Here", &[], None);
    let r = ada.expect_final(&out);
    assert_eq!(r.status(), 486, "{}", r.text());
    ada.ack_failure(&out, &r);
}
