//! Malformed and hostile input over raw UDP: the RFC 4475 torture messages
//! get exactly the answer `crates/sip/tests/rfc4475.rs` expects (or
//! nothing), random garbage and a 60 KB junk datagram crash nothing, and
//! OPTIONS still gets 200 afterwards.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;
use support::{Msg, Tandem, UdpPeer, rfc4475_dir};

/// What `crates/sip/tests/rfc4475.rs` expects of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Accept,
    Drop,
    Answer(u16),
}

/// Reads the `EXPECTED` table of the sip crate's torture test, so both
/// suites stay on one list (any formatting of the source is fine).
fn expected() -> Vec<(String, Outcome)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../sip/tests/rfc4475.rs");
    let src = std::fs::read_to_string(path).expect("read crates/sip/tests/rfc4475.rs");
    let start = src.find("const EXPECTED").expect("EXPECTED table");
    let end = start + src[start..].find("];").expect("end of EXPECTED");
    let table: String = src[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let mut out = Vec::new();
    for entry in table.split("(\"").skip(1) {
        let (name, rest) = entry.split_once('"').expect("quoted name");
        let rest = rest.trim_start_matches(',');
        let outcome = if rest.starts_with("Outcome::Accept") {
            Outcome::Accept
        } else if rest.starts_with("Outcome::Drop") {
            Outcome::Drop
        } else if let Some(code) = rest.strip_prefix("Outcome::Answer(") {
            let code: String = code.chars().take_while(char::is_ascii_digit).collect();
            Outcome::Answer(code.parse().expect("status code"))
        } else {
            panic!("cannot read the expectation of {name}: {rest}");
        };
        out.push((name.to_string(), outcome));
    }
    assert_eq!(out.len(), 49, "all 49 torture messages have an expectation");
    out
}

/// What the registrar answers the torture REGISTERs (RFC 4475 §3.1.1.2,
/// §3.1.2.6, §3.3.4, §3.3.7, §3.3.13, §3.3.14), and a Contact the 200 lists.
const REGISTRAR_ANSWERS: &[(&str, u16, Option<&str>)] = &[
    ("escnull", 200, Some("<sip:%00@host5.example.com>")),
    ("dblreq", 200, Some("<sip:j.user@host.example.com>")),
    ("unksm2", 400, None),
    ("regaut01", 200, None),
    // Without angle brackets `;unknownparam` is a header parameter.
    (
        "cparam01",
        200,
        Some("<sip:+19725552222@gw1.example.net>;expires="),
    ),
    (
        "cparam02",
        200,
        Some("<sip:+19725552222@gw1.example.net;unknownparam>"),
    ),
    (
        "regescrt",
        200,
        Some("<sip:user@example.com?Route=%3Csip:sip.example.com%3E>"),
    ),
];

fn load(name: &str) -> Vec<u8> {
    std::fs::read(rfc4475_dir().join(format!("{name}.dat")))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The torture messages' Vias name hosts such as `192.0.2.2` or
/// `host.example.com` without a port, so a stateful answer would go to
/// `127.0.0.1:5060` (RFC 3261 §18.2.2). Adding `;rport` (RFC 3581) right
/// after the sent-by of the first Via sends it back to the test socket
/// instead; every other octet stays as in the RFC. Messages whose first Via
/// is not a plain one-line `SIP/2.0/<transport> <host>[:<port>]` are left
/// alone.
fn with_rport(msg: &[u8]) -> Vec<u8> {
    let mut pos = 0;
    for line in msg.split(|&b| b == b'\n') {
        let line_start = pos;
        pos += line.len() + 1;
        if line_start == 0 {
            continue;
        }
        if line == b"\r" || line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = String::from_utf8_lossy(&line[..colon])
            .trim()
            .to_ascii_lowercase();
        if name != "via" && name != "v" {
            continue;
        }
        let value = &line[colon + 1..];
        if value.windows(5).any(|w| w.eq_ignore_ascii_case(b"rport")) {
            return msg.to_vec();
        }
        let lead = value
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        let v = &value[lead..];
        if !v.starts_with(b"SIP/2.0/") {
            return msg.to_vec();
        }
        let mut i = 8;
        while i < v.len() && v[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let spaces = v[i..].iter().take_while(|&&b| b == b' ').count();
        if spaces == 0 {
            return msg.to_vec();
        }
        i += spaces;
        let host_start = i;
        while i < v.len() && (v[i].is_ascii_alphanumeric() || matches!(v[i], b'.' | b'-' | b':')) {
            i += 1;
        }
        if i == host_start {
            return msg.to_vec();
        }
        let at = line_start + colon + 1 + lead + i;
        let mut out = msg[..at].to_vec();
        out.extend_from_slice(b";rport");
        out.extend_from_slice(&msg[at..]);
        return out;
    }
    msg.to_vec()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Sends one message from a fresh socket and returns the final response.
fn final_answer(tandem: &Tandem, data: &[u8], wait: Duration) -> Option<Msg> {
    let udp = UdpPeer::new(tandem.udp());
    udp.send(data);
    let deadline = std::time::Instant::now() + wait;
    loop {
        let left = deadline.checked_duration_since(std::time::Instant::now())?;
        let m = udp.recv(left)?;
        if m.code().is_some_and(|c| c >= 200) {
            return Some(m);
        }
    }
}

fn assert_options_works(tandem: &mut Tandem) {
    tandem.assert_alive();
    let udp = UdpPeer::new(tandem.udp());
    let req = udp.req("OPTIONS");
    assert_eq!(udp.transact(&req).status(), 200, "OPTIONS after the abuse");
    tandem.assert_alive();
}

/// The first Via line and the method: several torture messages share a
/// branch, sent-by and method (cparam01/cparam02, escnull/regescrt,
/// unkscm/novelsc), which makes the second one a retransmission of the
/// first (RFC 3261 §17.2.3) whose answer goes where the first one's went.
fn transaction_id(data: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(data);
    let method = text.split(' ').next().unwrap_or_default().to_string();
    let via = text
        .split("\r\n")
        .find(|l| {
            let name = l.split(':').next().unwrap_or_default().trim();
            name.eq_ignore_ascii_case("via") || name.eq_ignore_ascii_case("v")
        })
        .unwrap_or_default()
        .to_string();
    format!("{method} {via}").into_bytes()
}

#[test]
fn torture_messages_get_the_expected_answer_on_the_wire() {
    // One tandem per set of messages with distinct transaction identities.
    let mut instances: Vec<(Tandem, Vec<Vec<u8>>)> = Vec::new();
    let mut failures = Vec::new();
    let mut answered = 0;
    for (name, outcome) in expected() {
        let Outcome::Answer(code) = outcome else {
            continue;
        };
        let data = with_rport(&load(&name));
        let id = transaction_id(&data);
        let slot = match instances.iter().position(|(_, ids)| !ids.contains(&id)) {
            Some(i) => i,
            None => {
                instances.push((Tandem::start(), Vec::new()));
                instances.len() - 1
            }
        };
        instances[slot].1.push(id);
        let tandem = &instances[slot].0;
        match final_answer(tandem, &data, Duration::from_secs(2)) {
            None => failures.push(format!("{name}: want {code}, got nothing")),
            Some(m) if m.status() != code => {
                failures.push(format!("{name}: want {code}, got `{}`", m.start))
            }
            Some(m) => {
                answered += 1;
                if code == 400 {
                    assert!(m.reason().starts_with("Bad Request"), "{name}: {}", m.start);
                }
            }
        }
    }
    // The REGISTERs reach the registrar (open: no users configured).
    for (name, code, contact) in REGISTRAR_ANSWERS {
        let data = with_rport(&load(name));
        let tandem = Tandem::start();
        match final_answer(&tandem, &data, Duration::from_secs(2)) {
            Some(m) if m.status() == *code => {
                if let Some(c) = contact {
                    let listed = m.header_all("Contact").join(", ");
                    if !listed.contains(c) {
                        failures.push(format!("{name}: Contact `{listed}` lacks `{c}`"));
                    }
                }
            }
            Some(m) => failures.push(format!("{name}: want {code}, got `{}`", m.start)),
            None => failures.push(format!("{name}: want {code}, got nothing")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(answered >= 23, "only {answered} answered");
    for (tandem, _) in &mut instances {
        assert_options_works(tandem);
    }
}

#[test]
fn torture_messages_to_drop_get_nothing() {
    let mut tandem = Tandem::start();
    let drops: Vec<String> = expected()
        .into_iter()
        .filter(|(_, o)| *o == Outcome::Drop)
        .map(|(n, _)| n)
        .collect();
    assert!(!drops.is_empty());
    // All at once from their own sockets, then one quiet period for all.
    let peers: Vec<(String, UdpPeer)> = drops
        .into_iter()
        .map(|name| {
            let udp = UdpPeer::new(tandem.udp());
            udp.send(&load(&name));
            (name, udp)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for (name, udp) in &peers {
        if let Some((data, _)) = udp.recv_raw(Duration::from_millis(1)) {
            panic!(
                "{name} must be dropped, got:\n{}",
                String::from_utf8_lossy(&data)
            );
        }
    }
    assert_options_works(&mut tandem);
}

#[test]
fn valid_torture_requests_are_processed() {
    // The well-formed requests reach the transaction user (or the OPTIONS
    // answer): never a 400 or 505, never a server error.
    let mut tandem = Tandem::start();
    let mut failures = Vec::new();
    let mut seen = Vec::new();
    for (name, outcome) in expected() {
        let data = with_rport(&load(&name));
        let id = transaction_id(&data);
        if outcome != Outcome::Accept || data.starts_with(b"SIP/") || !contains(&id, b"rport") {
            // Responses, and requests whose Via could not get an rport (their
            // answer goes to the Via's port 5060, not to us).
            continue;
        }
        // A registrar answers unksm2 (a non-SIP AOR) with 400 (RFC 4475
        // §3.3.4); REGISTRAR_ANSWERS checks it.
        if seen.contains(&id) || name == "unksm2" {
            continue;
        }
        seen.push(id);
        match final_answer(&tandem, &data, Duration::from_secs(2)) {
            None => failures.push(format!("{name}: no answer")),
            Some(m) if matches!(m.status(), 400 | 505) || m.status() >= 500 => {
                failures.push(format!("{name}: `{}`", m.start))
            }
            Some(m) => println!("{name}: {}", m.start),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(
        seen.len() >= 8,
        "only {} valid requests checked",
        seen.len()
    );
    assert_options_works(&mut tandem);
}

/// xorshift64*: deterministic junk without a dependency.
struct Junk(u64);

impl Junk {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn garbage_and_a_60k_datagram_crash_nothing() {
    let mut tandem = Tandem::start();
    let udp = UdpPeer::new(tandem.udp());
    let mut junk = Junk(0x9E37_79B9_7F4A_7C15);
    for _ in 0..30 {
        let n = 1 + (junk.next() % 1400) as usize;
        udp.send(&junk.bytes(n));
    }
    let mut nasty: Vec<Vec<u8>> = vec![
        b"\r\n\r\n".to_vec(),
        b"\0\0\0\0".to_vec(),
        b"INVITE".to_vec(),
        b"INVITE sip:a@b SIP/2.0\r\n\r\n".to_vec(),
        b"SIP/2.0 200 OK\r\n\r\n".to_vec(),
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP\r\n\r\n".to_vec(),
        b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 99999999999999999999\r\n\r\n".to_vec(),
        b"OPTIONS sip:a@b SIP/2.0\r\nCSeq: 4294967296 OPTIONS\r\n\r\n".to_vec(),
        "OPTIONS sip:\u{1F4A9}@b SIP/2.0\r\nVia: \u{1F4A9}\r\n\r\n"
            .as_bytes()
            .to_vec(),
    ];
    // 60 KB: random octets, a start line with a huge URI, and a request
    // with thousands of headers.
    nasty.push(junk.bytes(60_000));
    let mut big = b"OPTIONS sip:".to_vec();
    big.extend(std::iter::repeat_n(b'a', 60_000));
    big.extend_from_slice(b"@b SIP/2.0\r\n\r\n");
    nasty.push(big);
    let mut many = b"OPTIONS sip:a@b SIP/2.0\r\n".to_vec();
    while many.len() < 60_000 {
        many.extend_from_slice(b"X-Junk: ;;,,\"\\<>\r\n");
    }
    many.extend_from_slice(b"\r\n");
    nasty.push(many);
    for d in &nasty {
        udp.send(d);
    }
    // Drain whatever comes back (400s for what looked like requests).
    while udp.recv_raw(Duration::from_millis(300)).is_some() {}
    assert_options_works(&mut tandem);
}

#[test]
fn stateless_400_echoes_the_readable_headers() {
    // RFC 3261 §8.2.6.2: the response copies Via, From, To, Call-ID and CSeq;
    // it goes back to the source (RFC 3581 style) even without rport.
    let tandem = Tandem::start();
    let udp = UdpPeer::new(tandem.udp());
    let req = udp.req("OPTIONS").set("Content-Length", "abc");
    // Our own Content-Length is written too: drop it for the bad one.
    let mut req = req;
    req.no_content_length = true;
    udp.send_req(&req);
    let resp = udp.expect();
    assert_eq!(resp.status(), 400, "{}", resp.text());
    assert!(resp.reason().starts_with("Bad Request ("), "{}", resp.start);
    assert_eq!(resp.header("Call-ID"), Some(req.get("Call-ID")));
    assert_eq!(resp.header("CSeq"), Some(req.get("CSeq")));
    assert_eq!(resp.header("From"), Some(req.get("From")));
    let via = resp.must("Via");
    assert!(via.contains(&req.branch()), "{via}");
}

#[test]
fn stateless_400_has_a_to_tag() {
    // RFC 3261 §8.2.6.2: "the UAS MUST add a tag to the To header field in
    // the response (with the exception of the 100 (Trying) response)", and
    // §8.2.7: a stateless UAS sets the To tag like a stateful one.
    let tandem = Tandem::start();
    let udp = UdpPeer::new(tandem.udp());
    let mut req = udp.req("OPTIONS").set("Content-Length", "abc");
    req.no_content_length = true;
    udp.send_req(&req);
    let resp = udp.expect();
    assert_eq!(resp.status(), 400, "{}", resp.text());
    let to = resp.must("To");
    assert!(to.starts_with(req.get("To")), "To is copied: {to}");
    assert!(
        resp.to_tag().is_some_and(|t| !t.is_empty()),
        "400 Bad Request without a To tag:\n{}",
        resp.text()
    );
}
