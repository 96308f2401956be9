//! Parser benchmarks: Tandem's parser and serializer on what SIPp's `uac`
//! and `uas` scenarios exchange (an INVITE with SDP and its 200 OK), with
//! rsip 0.4 on the same INVITE for comparison.
//!
//! Run with `cargo bench -p tandem-sip --bench parse`.

use bytes::Bytes;
use criterion::{Criterion, criterion_main};
use sip::message::parse_datagram;
use std::hint::black_box;
use std::time::Duration;

/// What SIPp's built-in `uac` scenario sends (with `rport` added).
const INVITE: &[u8] = include_bytes!("../testdata/sipp_invite.dat");

/// SIPp `uas`'s answer, as relayed back with `received` and `rport` filled.
const OK: &[u8] = include_bytes!("../testdata/sipp_200_ok.dat");

fn parse_and_serialize(raw: &'static [u8]) -> Bytes {
    match parse_datagram(Bytes::from_static(raw)) {
        Ok(m) => m.to_bytes(),
        Err(e) => panic!("benchmark message does not parse: {e}"),
    }
}

fn tandem(c: &mut Criterion) {
    // The messages must parse, or the figures would be of the error path.
    for raw in [INVITE, OK] {
        let m = parse_datagram(Bytes::from_static(raw)).expect("benchmark message parses");
        assert!(m.top_via().is_some() && m.from_hdr().is_some() && m.to_hdr().is_some());
        assert!(m.cseq().is_some() && m.body.len() == 135);
    }

    c.bench_function("parse+serialize INVITE", |b| {
        b.iter(|| parse_and_serialize(black_box(INVITE)))
    });
    c.bench_function("parse+serialize 200 OK", |b| {
        b.iter(|| parse_and_serialize(black_box(OK)))
    });
    c.bench_function("parse INVITE only", |b| {
        b.iter(|| parse_datagram(Bytes::from_static(black_box(INVITE))))
    });
    c.bench_function("parse INVITE + typed Via/From/To/CSeq", |b| {
        b.iter(|| {
            let m = parse_datagram(Bytes::from_static(black_box(INVITE)))
                .expect("benchmark message parses");
            (m.top_via(), m.from_hdr(), m.to_hdr(), m.cseq())
        })
    });
}

fn rsip_baseline(c: &mut Criterion) {
    let parsed = rsip::SipMessage::try_from(INVITE).expect("rsip parses the INVITE");
    assert!(parsed.to_string().len() > INVITE.len() / 2);

    c.bench_function("rsip parse INVITE", |b| {
        b.iter(|| rsip::SipMessage::try_from(black_box(INVITE)))
    });
    c.bench_function("rsip parse+serialize INVITE", |b| {
        b.iter(|| {
            rsip::SipMessage::try_from(black_box(INVITE))
                .expect("rsip parses the INVITE")
                .to_string()
        })
    });
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

/// Criterion's group function, kept in a module of its own because the
/// macro makes it `pub` without a doc comment.
mod group {
    use super::{config, rsip_baseline, tandem};

    criterion::criterion_group! {
        name = benches;
        config = config();
        targets = tandem, rsip_baseline
    }
}

criterion_main!(group::benches);
