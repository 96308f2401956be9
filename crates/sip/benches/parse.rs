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
const INVITE: &[u8] = b"INVITE sip:service@192.168.1.20:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.168.1.10:5061;branch=z9hG4bK-3852-1-0;rport\r\n\
From: sipp <sip:sipp@192.168.1.10:5061>;tag=3852SIPpTag001\r\n\
To: service <sip:service@192.168.1.20:5060>\r\n\
Call-ID: 1-3852@192.168.1.10\r\n\
CSeq: 1 INVITE\r\n\
Contact: sip:sipp@192.168.1.10:5061\r\n\
Max-Forwards: 70\r\n\
Subject: Performance Test\r\n\
Content-Type: application/sdp\r\n\
Content-Length:   135\r\n\
\r\n\
v=0\r\n\
o=user1 53655765 2353687637 IN IP4 192.168.1.10\r\n\
s=-\r\n\
c=IN IP4 192.168.1.10\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

/// SIPp `uas`'s answer, as relayed back with `received` and `rport` filled.
const OK: &[u8] = b"SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 192.168.1.10:5061;branch=z9hG4bK-3852-1-0;rport=5061;received=192.168.1.10\r\n\
From: sipp <sip:sipp@192.168.1.10:5061>;tag=3852SIPpTag001\r\n\
To: service <sip:service@192.168.1.20:5060>;tag=4021SIPpTag011\r\n\
Call-ID: 1-3852@192.168.1.10\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:192.168.1.20:5060;transport=UDP>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 135\r\n\
\r\n\
v=0\r\n\
o=user1 53655765 2353687637 IN IP4 192.168.1.20\r\n\
s=-\r\n\
c=IN IP4 192.168.1.20\r\n\
t=0 0\r\n\
m=audio 6002 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

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
