//! Registering with a trunk, end to end: the test UA plays the carrier's
//! registrar. Tandem answers its digest challenge, refreshes before the
//! binding runs out, backs off after a failure, routes the carrier's
//! INVITEs to its contact by the dialled number (To), and unregisters at
//! shutdown.

mod support;

use sip::auth::{Algorithm, DigestInput, auth_params, digest_response};
use std::time::Duration;
use support::ua::{Incoming, Ua, uri_of};
use support::*;

/// Checks the digest in `reg`'s Authorization against `password`;
/// returns its nonce count.
fn check_digest(reg: &Incoming, password: &str) -> u32 {
    let value = reg.must("Authorization");
    let scheme_and_rest = value.split_once(' ').expect("Digest params").1;
    let p: std::collections::HashMap<String, String> =
        auth_params(scheme_and_rest).into_iter().collect();
    let get = |k: &str| {
        p.get(k)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no {k} in {value}"))
    };
    let nc = u32::from_str_radix(get("nc"), 16).expect("hex nc");
    let expected = digest_response(&DigestInput {
        algorithm: Algorithm::Md5,
        username: get("username"),
        realm: get("realm"),
        password,
        nonce: get("nonce"),
        cnonce: get("cnonce"),
        nc,
        qop: Some("auth"),
        method: "REGISTER",
        uri: get("uri"),
    });
    assert_eq!(get("response"), expected, "digest of {value}");
    assert_eq!(get("uri"), "sip:carrier.test");
    nc
}

#[test]
fn tandem_registers_with_a_trunk_and_takes_its_calls() {
    let mut carrier = Ua::callee("carrier", SippTransport::Udp);
    let mut b = Ua::callee("b", SippTransport::Udp);
    let mut tandem = Tandem::with_config(&format!(
        r#"
[auth]
realm = "tandem.test"

[[users]]
name = "alice"
password = "wonderland"

[[trunks]]
name = "carrier"
address = "{}"
register = true
username = "tandem-gw"
password = "s3cret"
domain = "carrier.test"
expires_s = 60

[[routes]]
prefix = "+4930"
targets = ["{}"]
"#,
        carrier.local,
        b.target()
    ));
    let wait = Duration::from_secs(5);
    // The first REGISTER is challenged, the second carries credentials.
    let reg = carrier.expect_request("REGISTER");
    assert!(
        reg.start.starts_with("REGISTER sip:carrier.test SIP/2.0"),
        "{}",
        reg.start
    );
    assert_eq!(uri_of(reg.must("To")), "sip:tandem-gw@carrier.test");
    assert_eq!(reg.header("Expires"), Some("60"));
    let contact = uri_of(reg.must("Contact"));
    assert!(contact.starts_with("sip:tandem-gw@127.0.0.1:"), "{contact}");
    carrier.respond(
        &reg,
        401,
        "Unauthorized",
        &[(
            "WWW-Authenticate",
            r#"Digest realm="carrier.test", nonce="n0nce1", qop="auth", algorithm=MD5"#,
        )],
        None,
    );
    let reg = carrier
        .wait_for(wait, |m| m.is_request("REGISTER"))
        .expect("REGISTER with credentials");
    assert_eq!(check_digest(&reg, "s3cret"), 1);
    // Granted for 2 s only: the refresh must come before that.
    carrier.respond(
        &reg,
        200,
        "OK",
        &[("Contact", &format!("<{contact}>;expires=2"))],
        None,
    );
    tandem.expect_log(wait, &["Trunk registered.", "trunk=carrier"]);
    let refresh = carrier
        .wait_for(Duration::from_millis(2000), |m| m.is_request("REGISTER"))
        .expect("a refresh before the 2 s binding expires");
    assert_eq!(
        check_digest(&refresh, "s3cret"),
        2,
        "the known nonce, next count"
    );
    // A failure: Tandem backs off and tries again.
    carrier.respond(&refresh, 503, "Service Unavailable", &[], None);
    tandem.expect_log(
        wait,
        &["Trunk registration failed; retrying.", "trunk=carrier"],
    );
    let retry = carrier
        .wait_for(wait, |m| m.is_request("REGISTER"))
        .expect("a retry");
    carrier.respond(&retry, 200, "OK", &[("Expires", "600")], None);
    tandem.expect_log_count(wait, &["Trunk registered.", "trunk=carrier"], 2);

    // The carrier calls Tandem's contact: routed by the dialled number,
    // without a challenge (users are configured, but this is the trunk).
    let invite = Req::new("INVITE", "UDP", carrier.local)
        .uri(&contact)
        .set(
            "From",
            &format!("<sip:+4940999@carrier.test>;tag={}", unique("c")),
        )
        .set("To", "<sip:+4930123@carrier.test>")
        .set("Contact", &carrier.contact())
        .sdp();
    carrier.send_req(&invite);
    let at_b = b.expect_request("INVITE");
    assert!(
        at_b.start.starts_with("INVITE sip:+4930123@"),
        "{}",
        at_b.start
    );
    b.respond(&at_b, 486, "Busy Here", &[], None);
    let r = carrier.expect_final(&invite);
    assert_eq!(r.status(), 486, "{}", r.text());
    carrier.ack_failure(&invite, &r);

    // At shutdown Tandem unregisters.
    tandem.signal("TERM");
    let bye = carrier
        .wait_for(wait, |m| m.is_request("REGISTER"))
        .expect("an unregister");
    assert_eq!(bye.header("Expires"), Some("0"), "{}", bye.text());
    carrier.respond(&bye, 200, "OK", &[], None);
    let status = tandem.wait_exit(wait).expect("tandem exits");
    assert!(status.success(), "{status:?}");
    tandem.expect_log(wait, &["Trunk unregistered.", "trunk=carrier"]);
}

#[test]
fn the_dial_plan_sees_calls_from_a_trunk_by_their_number() {
    let mut carrier = Ua::callee("carrier", SippTransport::Udp);
    let mut b = Ua::callee("b", SippTransport::Udp);
    let mut builder = Tandem::builder();
    let script = builder.file(
        "trunk.lua",
        &format!(
            r#"
function on_invite(call)
  call:set_header("X-Trunk", tostring(call.vars.trunk))
  call:set_header("X-Number", call.user)
  local r = call:dial("{}")
  if not r.answered then call:reject(r.code, r.reason) end
end
"#,
            b.target().replace("${user}", "desk")
        ),
    );
    let tandem = builder
        .config(&format!(
            "[dialplan]\nscript = \"{}\"\n\n[[trunks]]\nname = \"carrier\"\naddress = \"{}\"\nregister = true\nusername = \"gw\"\npassword = \"pw\"\n",
            script.display(),
            carrier.local
        ))
        .start();
    let reg = carrier.expect_request("REGISTER");
    let contact = uri_of(reg.must("Contact"));
    carrier.respond(&reg, 200, "OK", &[("Expires", "600")], None);
    tandem.expect_log(Duration::from_secs(5), &["Trunk registered."]);
    let invite = Req::new("INVITE", "UDP", carrier.local)
        .uri(&contact)
        .set(
            "From",
            &format!("<sip:+4940999@carrier.test>;tag={}", unique("c")),
        )
        .set("To", "<sip:+4930777@carrier.test>")
        .set("Contact", &carrier.contact())
        .sdp();
    carrier.send_req(&invite);
    let at_b = b.expect_request("INVITE");
    assert_eq!(at_b.header("X-Trunk"), Some("carrier"), "{}", at_b.text());
    assert_eq!(at_b.header("X-Number"), Some("+4930777"));
    b.respond(&at_b, 480, "Temporarily Unavailable", &[], None);
    let r = carrier.expect_final(&invite);
    assert_eq!(r.status(), 480);
    carrier.ack_failure(&invite, &r);
}
