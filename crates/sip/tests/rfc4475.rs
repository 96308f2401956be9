//! Every RFC 4475 torture message through the parser and the UAS checks,
//! against what the RFC asks of an endpoint (`testdata/rfc4475/INDEX.tsv`).

use bytes::Bytes;
use sip::message::{HeaderName, Message, parse_datagram};
use sip::uas::{UasPolicy, precheck};

/// What Tandem does with a message.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Processed normally (a request goes on to the transaction user, a
    /// response to its client transaction).
    Accept,
    /// Silently discarded.
    Drop,
    /// Answered with this final status code.
    Answer(u16),
}

fn outcome(data: &[u8]) -> (Outcome, Option<Message>) {
    match parse_datagram(Bytes::copy_from_slice(data)) {
        Err(e) if !e.is_request => (Outcome::Drop, None),
        Err(e) => (Outcome::Answer(e.kind.status().0), None),
        Ok(m) if !m.is_request() => {
            // RFC 3261 §8.1.3.3: a UAC discards responses with several Vias.
            if m.headers.count(&HeaderName::Via) > 1 {
                (Outcome::Drop, Some(m))
            } else {
                (Outcome::Accept, Some(m))
            }
        }
        Ok(m) => match precheck(&m, &UasPolicy::default()) {
            Ok(()) => (Outcome::Accept, Some(m)),
            Err(r) => (Outcome::Answer(r.code), Some(m)),
        },
    }
}

/// Expected outcome per message. The REGISTERs pass the UAS checks and go
/// on to the registrar (whose answers `tests/e2e_malformed.rs` checks).
const EXPECTED: &[(&str, Outcome)] = &[
    ("wsinv", Outcome::Accept),
    ("intmeth", Outcome::Answer(501)),
    ("esc01", Outcome::Accept),
    ("escnull", Outcome::Accept),
    ("esc02", Outcome::Answer(501)),
    ("lwsdisp", Outcome::Accept),
    ("longreq", Outcome::Accept),
    ("dblreq", Outcome::Accept),
    ("semiuri", Outcome::Accept),
    ("transports", Outcome::Accept),
    ("mpart01", Outcome::Accept),
    ("unreason", Outcome::Accept),
    ("noreason", Outcome::Accept),
    ("badinv01", Outcome::Answer(400)),
    ("clerr", Outcome::Answer(400)),
    ("ncl", Outcome::Answer(400)),
    ("scalar02", Outcome::Answer(400)),
    ("scalarlg", Outcome::Drop),
    ("quotbal", Outcome::Answer(400)),
    ("ltgtruri", Outcome::Answer(400)),
    ("lwsruri", Outcome::Answer(400)),
    ("lwsstart", Outcome::Answer(400)),
    ("trws", Outcome::Answer(400)),
    ("escruri", Outcome::Accept),
    ("baddate", Outcome::Accept),
    ("regbadct", Outcome::Answer(400)),
    ("badaspec", Outcome::Answer(400)),
    ("baddn", Outcome::Answer(400)),
    ("badvers", Outcome::Answer(505)),
    ("mismatch01", Outcome::Answer(400)),
    ("mismatch02", Outcome::Answer(501)),
    ("bigcode", Outcome::Drop),
    ("badbranch", Outcome::Accept),
    ("insuf", Outcome::Answer(400)),
    ("unkscm", Outcome::Answer(416)),
    ("novelsc", Outcome::Answer(416)),
    ("unksm2", Outcome::Accept),
    ("bext01", Outcome::Answer(420)),
    ("invut", Outcome::Answer(415)),
    ("regaut01", Outcome::Accept),
    ("multi01", Outcome::Answer(400)),
    ("mcl01", Outcome::Answer(400)),
    ("bcast", Outcome::Drop),
    ("zeromf", Outcome::Accept),
    ("cparam01", Outcome::Accept),
    ("cparam02", Outcome::Accept),
    ("regescrt", Outcome::Accept),
    ("sdp01", Outcome::Answer(406)),
    ("inv2543", Outcome::Accept),
];

fn dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rfc4475")
}

fn load(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(format!("{name}.dat"))).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_torture_message_gets_the_rfc_answer() {
    let index = std::fs::read_to_string(dir().join("INDEX.tsv")).expect("INDEX.tsv");
    let names: Vec<&str> = index
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .collect();
    assert_eq!(names.len(), 49, "all 49 messages are indexed");
    assert_eq!(EXPECTED.len(), names.len());
    let mut failures = Vec::new();
    for name in names {
        let want = &EXPECTED
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{name} has no expectation"))
            .1;
        let (got, _) = outcome(&load(name));
        println!("{name:12} {got:?}");
        if &got != want {
            failures.push(format!("{name}: want {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn valid_messages_keep_their_details() {
    let (_, m) = outcome(&load("escnull"));
    let m = m.expect("escnull parses");
    let contacts: Vec<_> = m.headers.get_all(&HeaderName::Contact).collect();
    assert_eq!(contacts.len(), 2);
    assert_ne!(contacts[0], contacts[1], "%00 does not truncate");

    let (_, m) = outcome(&load("dblreq"));
    assert!(
        m.expect("dblreq parses").body.is_empty(),
        "octets after the body are ignored"
    );

    let (_, m) = outcome(&load("mpart01"));
    let m = m.expect("mpart01 parses");
    assert!(m.body.contains(&0), "binary body framed by Content-Length");

    let (_, m) = outcome(&load("wsinv"));
    let m = m.expect("wsinv parses");
    assert_eq!(m.headers.count(&HeaderName::Via), 3);
    assert_eq!(
        m.header(&HeaderName::new("NewFangledHeader"))
            .map(|v| &v[..]),
        Some(&b"newfangled value continued newfangled value"[..])
    );
    assert_eq!(
        m.header(&HeaderName::new("UnknownHeaderWithUnusualValue"))
            .map(|v| &v[..]),
        Some(&b";;,,;;,;"[..])
    );
    assert_eq!(m.to_tag().as_deref(), Some(&b"1918181833n"[..]));
    assert_eq!(m.max_forwards(), Some(68));

    let (_, m) = outcome(&load("unreason"));
    let reason = m.expect("unreason parses").reason().unwrap_or_default();
    assert!(reason.starts_with("= 2**3 * 5**2 "), "{reason}");

    let (_, m) = outcome(&load("semiuri"));
    let m = m.expect("semiuri parses");
    assert_eq!(
        m.uri().and_then(|u| u.user_str()),
        Some("user;par=u%40example.net")
    );
}

#[test]
fn valid_messages_survive_a_round_trip() {
    for name in [
        "wsinv", "esc01", "intmeth", "longreq", "mpart01", "unreason", "inv2543", "semiuri",
    ] {
        let (_, m) = outcome(&load(name));
        let m = m.unwrap_or_else(|| panic!("{name} parses"));
        let mut again =
            parse_datagram(m.to_bytes()).unwrap_or_else(|e| panic!("{name} re-parses: {e}"));
        // Writing always adds Content-Length (inv2543 had none).
        let mut m = m;
        m.headers.remove(&HeaderName::ContentLength);
        again.headers.remove(&HeaderName::ContentLength);
        assert_eq!(again, m, "{name}");
    }
}
