//! Property tests of the message parser: on arbitrary bytes, on mutations
//! of valid messages (RFC 4475 torture messages, a SIPp-style INVITE and
//! 200 OK) and on streams of them, nothing panics; whatever parses also
//! passes the UAS checks and typed accessors without panicking, serializes,
//! re-parses (as a datagram and from a stream) and serializes to the same
//! bytes again.

use bytes::Bytes;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestRunner;
use sip::message::{
    HeaderName, Message, NameAddr, ParseError, StreamFrame, Via, frame_stream, parse_datagram,
    parse_stream_message,
};
use sip::uas::{UasPolicy, precheck};
use std::net::SocketAddr;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What SIPp's built-in `uac` scenario sends (with `rport` added).
const INVITE: &[u8] = include_bytes!("../testdata/sipp_invite.dat");

/// SIPp `uas`'s answer, as relayed back with `received` and `rport` filled.
const OK: &[u8] = include_bytes!("../testdata/sipp_200_ok.dat");

/// Octets that matter to the grammar, inserted in runs by the mutator.
const SPECIALS: &[u8] = b"\r\n ,;\"<>:%\0\xff";

/// What may precede a message on a stream: nothing, a pong, a ping.
const KEEPALIVES: &[&[u8]] = &[b"", b"\r\n", b"\r\n\r\n"];

/// The RFC 4475 messages and the two typical ones.
static SEEDS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rfc4475");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("testdata/rfc4475 is readable")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "dat"))
        .collect();
    paths.sort();
    let mut seeds: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| std::fs::read(p).expect("RFC 4475 message is readable"))
        .collect();
    assert_eq!(seeds.len(), 49, "expected the 49 RFC 4475 messages");
    seeds.push(INVITE.to_vec());
    seeds.push(OK.to_vec());
    seeds
});

/// One edit of a message.
#[derive(Debug, Clone)]
enum Mutation {
    /// XOR one octet with a non-zero mask.
    Flip(Index, u8),
    /// Overwrite one octet.
    Set(Index, u8),
    /// Cut the message at a point.
    Truncate(Index),
    /// Insert a run of grammar-relevant octets.
    Insert(Index, Vec<u8>),
    /// Remove up to `n` octets.
    Delete(Index, usize),
    /// Copy one line (with its line break) to the start of another.
    DupLine(Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 1..=255u8).prop_map(|(i, m)| Mutation::Flip(i, m)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        4 => (any::<Index>(), prop::collection::vec(prop::sample::select(SPECIALS), 1..12))
            .prop_map(|(i, run)| Mutation::Insert(i, run)),
        1 => (any::<Index>(), 1..40usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::DupLine(a, b)),
    ]
}

/// Offsets at which lines start.
fn line_starts(buf: &[u8]) -> Vec<usize> {
    std::iter::once(0)
        .chain(
            buf.iter()
                .enumerate()
                .filter(|&(_, &b)| b == b'\n')
                .map(|(i, _)| i + 1)
                .filter(|&i| i < buf.len()),
        )
        .collect()
}

fn apply(buf: &mut Vec<u8>, m: &Mutation) {
    match m {
        Mutation::Flip(i, mask) if !buf.is_empty() => {
            let at = i.index(buf.len());
            buf[at] ^= mask;
        }
        Mutation::Set(i, b) if !buf.is_empty() => {
            let at = i.index(buf.len());
            buf[at] = *b;
        }
        Mutation::Truncate(i) => buf.truncate(i.index(buf.len() + 1)),
        Mutation::Insert(i, run) => {
            let at = i.index(buf.len() + 1);
            buf.splice(at..at, run.iter().copied());
        }
        Mutation::Delete(i, n) if !buf.is_empty() => {
            let at = i.index(buf.len());
            let end = (at + n).min(buf.len());
            buf.drain(at..end);
        }
        Mutation::DupLine(src, dst) if !buf.is_empty() => {
            let starts = line_starts(buf);
            let a = starts[src.index(starts.len())];
            let b = starts.iter().copied().find(|&s| s > a).unwrap_or(buf.len());
            let line = buf[a..b].to_vec();
            let at = starts[dst.index(starts.len())];
            buf.splice(at..at, line);
        }
        _ => {}
    }
}

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (0..SEEDS.len(), prop::collection::vec(mutation(), 1..4)).prop_map(|(seed, edits)| {
        let mut buf = SEEDS[seed].clone();
        for e in &edits {
            apply(&mut buf, e);
        }
        buf
    })
}

/// Everything a parse failure offers, without panicking.
fn exercise_error(e: &ParseError) {
    let _ = e.to_string();
    let (code, reason) = e.kind.status();
    assert!(matches!(code, 400 | 505 | 513), "{code} {reason}");
    for h in e.headers.iter() {
        let _ = h.value_str();
    }
}

fn exercise_name_addr(n: &NameAddr) {
    let _ = n.tag();
    let _ = n.display_text();
    let _ = n.uri.user_str();
    let _ = n.uri.host_str();
    let _ = n.uri.transport_param();
    let _ = n.uri.socket_addr();
    let out = n.to_bytes();
    // The name-addr as written back must read the same way.
    let again = NameAddr::parse_shared(&out, &out)
        .unwrap_or_else(|e| panic!("{:?} re-parses: {e}", String::from_utf8_lossy(&out)));
    assert_eq!(again.to_bytes(), out);
}

fn exercise_via(v: &Via) {
    let _ = v.branch();
    let _ = v.is_rfc3261_branch();
    let _ = v.received();
    let _ = v.rport();
    let _ = v.host_str();
    let _ = v.is_reliable();
    let _ = v.default_port();
    let _ = v.response_addr();
    for source in ["192.0.2.1:5060", "[2001:db8::1]:5070"] {
        let source: SocketAddr = source.parse().expect("literal address");
        if let Some(s) = v.stamped(source) {
            let out = s.to_bytes();
            Via::parse_shared(&out, &out).unwrap_or_else(|e| {
                panic!("stamped {:?} re-parses: {e}", String::from_utf8_lossy(&out))
            });
        }
    }
    let out = v.to_bytes();
    let again = Via::parse_shared(&out, &out)
        .unwrap_or_else(|e| panic!("{:?} re-parses: {e}", String::from_utf8_lossy(&out)));
    assert_eq!(again.to_bytes(), out);
}

/// Serializes `m` and checks the result parses as a datagram and as a
/// stream message, frames as exactly one message, and is a fixed point.
fn round_trip(m: &Message, what: &str) -> Bytes {
    let out = m.to_bytes();
    let mut appended = b"prefix".to_vec();
    m.write_to(&mut appended);
    assert_eq!(&appended[6..], &out[..], "write_to and to_bytes agree");
    let again = parse_datagram(out.clone()).unwrap_or_else(|e| {
        panic!(
            "{what}: serialized message does not re-parse ({e}):\n{:?}",
            String::from_utf8_lossy(&out)
        )
    });
    assert_eq!(again.body, m.body, "{what}: body survives");
    assert_eq!(again.start, m.start, "{what}: start line survives");
    let out2 = again.to_bytes();
    assert_eq!(
        String::from_utf8_lossy(&out2),
        String::from_utf8_lossy(&out),
        "{what}: serialization is a fixed point"
    );
    let streamed = parse_stream_message(out.clone()).unwrap_or_else(|e| {
        panic!(
            "{what}: serialized message does not parse from a stream ({e}):\n{:?}",
            String::from_utf8_lossy(&out)
        )
    });
    assert_eq!(streamed.to_bytes(), out);
    assert_eq!(
        frame_stream(&out, out.len()),
        Ok(StreamFrame::Message { len: out.len() }),
        "{what}: frames as one message:\n{:?}",
        String::from_utf8_lossy(&out)
    );
    out
}

/// Every accessor, the UAS checks and the responses built from a message.
fn exercise_message(m: &Message) {
    let _ = m.is_request();
    let _ = m.method();
    let _ = m.code();
    let _ = m.reason();
    if let Some(u) = m.uri() {
        let _ = u.user_str();
        let _ = u.host_str();
        let _ = u.transport_param();
        let _ = u.socket_addr();
        let _ = u.is_sip();
    }
    let _ = m.call_id();
    if let Some(c) = m.cseq() {
        let _ = c.to_bytes();
    }
    if let Some(v) = m.top_via() {
        exercise_via(&v);
    }
    for v in m.headers.get_all(&HeaderName::Via) {
        if let Ok(v) = Via::parse_shared(v, v) {
            exercise_via(&v);
        }
    }
    for n in [m.from_hdr(), m.to_hdr()].iter().flatten() {
        exercise_name_addr(n);
    }
    for c in m.headers.get_all(&HeaderName::Contact) {
        if let Ok(n) = NameAddr::parse_shared(c, c) {
            exercise_name_addr(&n);
        }
    }
    let _ = m.from_tag();
    let _ = m.to_tag();
    let _ = m.max_forwards();
    let _ = m.content_type();
    for h in m.headers.iter() {
        let _ = h.value_str();
        let _ = m.header_str(&h.name);
        let _ = m.tokens(&h.name).count();
    }

    if m.is_request() {
        if let Err(rejection) = precheck(m, &UasPolicy::default()) {
            assert!((400..700).contains(&rejection.code), "{rejection:?}");
            let resp = rejection.response_to(m, "rej1");
            round_trip(&resp, "rejection response");
        }
        let resp = Message::response_to(m, 180, "Ringing", Some("t1"));
        round_trip(&resp, "180 to a parsed request");
    } else {
        // precheck lets responses through.
        assert!(precheck(m, &UasPolicy::default()).is_ok());
    }
}

/// Runs every entry point on `data`; true when it parsed as a datagram.
fn check(data: &[u8]) -> bool {
    let bytes = Bytes::copy_from_slice(data);
    let datagram = parse_datagram(bytes.clone());
    match &datagram {
        Ok(m) => {
            exercise_message(m);
            round_trip(m, "datagram");
        }
        Err(e) => exercise_error(e),
    }
    match parse_stream_message(bytes) {
        Ok(m) => {
            // A stream message is a datagram with a mandatory Content-Length.
            assert_eq!(
                datagram.as_ref().ok(),
                Some(&m),
                "stream and datagram agree"
            );
            exercise_message(&m);
            round_trip(&m, "stream message");
        }
        Err(e) => exercise_error(&e),
    }
    for max in [64, 65_536] {
        match frame_stream(data, max) {
            Ok(StreamFrame::Message { len }) => {
                assert!(len > 0 && len <= data.len() && len <= max);
                check_framed(&data[..len], "framed message");
            }
            Ok(StreamFrame::KeepAlive { len, .. }) => assert!(len > 0 && len <= data.len()),
            Ok(StreamFrame::Incomplete) | Err(_) => {}
        }
    }
    datagram.is_ok()
}

/// Offset of the body: after the first empty line.
fn body_start(buf: &[u8]) -> Option<usize> {
    (0..buf.len()).find_map(|i| {
        let rest = &buf[i..];
        if rest.starts_with(b"\n\r\n") {
            Some(i + 3)
        } else if rest.starts_with(b"\n\n") {
            Some(i + 2)
        } else {
            None
        }
    })
}

/// Parses a message that `frame_stream` cut out; when it parses, the parser
/// must have read the same Content-Length as the framer.
fn check_framed(framed: &[u8], what: &str) {
    match parse_stream_message(Bytes::copy_from_slice(framed)) {
        Ok(m) => {
            let start = body_start(framed).expect("a framed message has an empty line");
            assert_eq!(
                m.body.len(),
                framed.len() - start,
                "{what}: framer and parser disagree on the body:\n{:?}",
                String::from_utf8_lossy(framed)
            );
            exercise_message(&m);
            round_trip(&m, what);
        }
        Err(e) => exercise_error(&e),
    }
}

/// Cuts a stream into messages as a transport would, checking that framing
/// always makes progress and that a prefix never frames differently from
/// the whole buffer.
fn check_stream(buf: &[u8], cuts: &[Index]) {
    let max = 8_192;
    let mut pos = 0;
    while pos < buf.len() {
        let rest = &buf[pos..];
        let whole = frame_stream(rest, max);
        for cut in cuts {
            let prefix = &rest[..cut.index(rest.len() + 1)];
            match (frame_stream(prefix, max), whole) {
                (Ok(StreamFrame::Message { len }), w) => {
                    assert_eq!(
                        w,
                        Ok(StreamFrame::Message { len }),
                        "prefix frames as the whole"
                    );
                }
                (_, Ok(StreamFrame::Message { len })) if prefix.len() >= len => {
                    panic!("a prefix holding the whole message does not frame it");
                }
                _ => {}
            }
        }
        match whole {
            Ok(StreamFrame::KeepAlive { len, .. }) => {
                assert!(len > 0 && len <= rest.len());
                pos += len;
            }
            Ok(StreamFrame::Message { len }) => {
                assert!(len > 0 && len <= rest.len());
                check_framed(&rest[..len], "message cut from a stream");
                pos += len;
            }
            Ok(StreamFrame::Incomplete) | Err(_) => break,
        }
    }
}

/// `cases`, times `PARSER_PROPS_SCALE` when set (for a long run by hand).
fn config(cases: u32) -> ProptestConfig {
    let scale = std::env::var("PARSER_PROPS_SCALE")
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .unwrap_or(1);
    ProptestConfig {
        cases: cases.saturating_mul(scale),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

#[test]
fn seeds_never_panic_and_typical_messages_round_trip_exactly() {
    let parsed = SEEDS.iter().filter(|seed| check(seed)).count();
    // Most torture messages are valid or fail only in the UAS checks.
    assert!(parsed > SEEDS.len() / 2, "{parsed} seeds parsed");
    let invite = parse_datagram(Bytes::from_static(INVITE)).expect("INVITE parses");
    assert_eq!(invite.body.len(), 135);
    let want =
        String::from_utf8_lossy(INVITE).replace("Content-Length:   135", "Content-Length: 135");
    assert_eq!(
        String::from_utf8_lossy(&round_trip(&invite, "INVITE")),
        want
    );
    let ok = parse_datagram(Bytes::from_static(OK)).expect("200 OK parses");
    assert_eq!(&round_trip(&ok, "200 OK")[..], OK);
}

proptest! {
    #![proptest_config(config(2_000))]

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2_048)) {
        let _ = check(&data);
    }
}

#[test]
fn mutated_messages_never_panic_and_round_trip() {
    let config = config(10_000);
    let cases = config.cases as usize;
    let parsed = AtomicUsize::new(0);
    let mut runner = TestRunner::new(config);
    let result = runner.run(&mutated(), |data| {
        if check(&data) {
            parsed.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // The mutants must stay close enough to SIP to reach the accessors and
    // the round trip, not only the parser's first checks (about 11% parse;
    // 5% leaves room for the random seed).
    let parsed = parsed.into_inner();
    assert!(
        parsed * 20 >= cases,
        "only {parsed} of {cases} mutants parsed"
    );
}

proptest! {
    #![proptest_config(config(1_500))]

    #[test]
    fn streams_frame_consistently(
        parts in prop::collection::vec(
            (0..SEEDS.len(), prop::collection::vec(mutation(), 0..3), prop::sample::select(KEEPALIVES)),
            1..5,
        ),
        cuts in prop::collection::vec(any::<Index>(), 0..4),
    ) {
        let mut buf = Vec::new();
        for (seed, edits, keepalive) in &parts {
            buf.extend_from_slice(keepalive);
            let mut msg = SEEDS[*seed].clone();
            for e in edits {
                apply(&mut msg, e);
            }
            buf.extend_from_slice(&msg);
        }
        check_stream(&buf, &cuts);
    }
}
