//! Relays taken over by later sessions: a session that ends parks its relay
//! (task and bound sockets) and a later session takes it over. Nothing of
//! the ended call may reach the next one, and the port counts stay exact.

mod common;

use common::*;
use media::MediaEngine;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

/// Late RTP and RTCP from `phone` to the relay at `rtp` (RTCP at +1),
/// without yielding to the runtime.
fn late(phone: &Phone, rtp: SocketAddr, ssrc: u32) {
    let rtcp = SocketAddr::new(rtp.ip(), rtp.port() + 1);
    for seq in 0..3 {
        phone.rtp.try_send_to(&rtp_packet(ssrc, seq), rtp).unwrap();
    }
    phone.rtcp.try_send_to(&rtcp_packet(ssrc), rtcp).unwrap();
}

/// Nothing arrives on any socket of any of `phones`.
async fn all_silent(phones: &[&Phone]) -> bool {
    let mut quiet = true;
    for p in phones {
        let (rtp, rtcp) = tokio::join!(silent(&p.rtp), silent(&p.rtcp));
        quiet &= rtp && rtcp;
    }
    quiet
}

/// A one-stream engine (two pairs): a second session can only take over
/// the first one's relay.
fn one_stream_engine() -> MediaEngine {
    MediaEngine::new(common::config(2))
}

/// The new call works end to end, both ways, and counted only its own.
async fn check_new_call(
    session: &media::MediaSession,
    a: &Phone,
    b: &Phone,
    (to_a_side, to_b_side): (SocketAddr, SocketAddr),
) {
    // B speaks first: its packet goes to A's SDP address, not to wherever
    // the old call's packets came from.
    b.rtp
        .send_to(&rtp_packet(0xB2, 1), to_b_side)
        .await
        .unwrap();
    assert_eq!(recv(&a.rtp).await.0, rtp_packet(0xB2, 1));
    a.rtp
        .send_to(&rtp_packet(0xA2, 1), to_a_side)
        .await
        .unwrap();
    assert_eq!(recv(&b.rtp).await.0, rtp_packet(0xA2, 1));
    let stats = session.stats();
    assert_eq!((stats.a_to_b.rtp_packets, stats.b_to_a.rtp_packets), (1, 1));
    assert_eq!(
        (stats.a_to_b.rtcp_packets, stats.b_to_a.rtcp_packets),
        (0, 0)
    );
    assert_eq!((stats.a_to_b.dropped, stats.b_to_a.dropped), (0, 0));
}

#[tokio::test]
async fn packets_queued_for_the_ended_call_are_discarded_on_reuse() {
    let engine = one_stream_engine();
    let (a1, b1) = (Phone::new().await, Phone::new().await);
    let (a2, b2) = (Phone::new().await, Phone::new().await);
    let s1 = engine.session();
    let old = call(&s1, &a1, &b1).await;
    a1.rtp.send_to(&rtp_packet(0xA1, 0), old.0).await.unwrap();
    assert_eq!(recv(&b1.rtp).await.0, rtp_packet(0xA1, 0));
    drop(s1);
    assert_eq!((engine.ports_in_use(), engine.ports_idle()), (0, 4));
    // The old phones go on sending; nothing below yields to the relay task,
    // so these sit in its sockets' queues when the next session takes over.
    late(&a1, old.0, 0xA1);
    late(&b1, old.1, 0xB1);
    let s2 = engine.session();
    let new = call(&s2, &a2, &b2).await;
    assert_eq!(new, old, "the same relay, taken over");
    assert_eq!((engine.ports_in_use(), engine.ports_idle()), (4, 0));
    check_new_call(&s2, &a2, &b2, new).await;
    assert!(all_silent(&[&a1, &b1, &a2, &b2]).await);
}

#[tokio::test]
async fn a_parked_relay_throws_late_packets_away() {
    let engine = one_stream_engine();
    let (a1, b1) = (Phone::new().await, Phone::new().await);
    let (a2, b2) = (Phone::new().await, Phone::new().await);
    let s1 = engine.session();
    let old = call(&s1, &a1, &b1).await;
    drop(s1);
    // The old call's late packets reach the parked relay (which reads its
    // mailbox, and so learns it is parked, before its sockets).
    tokio::time::sleep(Duration::from_millis(20)).await;
    late(&a1, old.0, 0xA1);
    late(&b1, old.1, 0xB1);
    // Relayed to nobody (the old peers are forgotten) ...
    assert!(all_silent(&[&a1, &b1]).await);
    // ... and neither latched nor counted in the next session.
    let s2 = engine.session();
    let new = call(&s2, &a2, &b2).await;
    assert_eq!(new, old);
    check_new_call(&s2, &a2, &b2, new).await;
    assert!(all_silent(&[&a1, &b1, &a2, &b2]).await);
}

#[tokio::test]
async fn many_sessions_in_a_row_reuse_relays_and_hold_no_ports_after() {
    // Four streams' worth of ports for forty calls: most take a relay over.
    let engine = MediaEngine::new(common::config(8));
    let (a, b) = (Phone::new().await, Phone::new().await);
    let mut ports = HashSet::new();
    for i in 0..40u32 {
        let session = engine.session();
        let (to_a_side, to_b_side) = call(&session, &a, &b).await;
        ports.insert(to_a_side.port());
        // This call's packets, and only those, both ways.
        a.rtp.send_to(&rtp_packet(i, 1), to_a_side).await.unwrap();
        assert_eq!(recv(&b.rtp).await.0, rtp_packet(i, 1));
        b.rtp
            .send_to(&rtp_packet(1000 + i, 1), to_b_side)
            .await
            .unwrap();
        assert_eq!(recv(&a.rtp).await.0, rtp_packet(1000 + i, 1));
        assert_eq!(engine.ports_in_use(), 4);
        drop(session);
        assert_eq!(engine.ports_in_use(), 0, "call {i}");
        assert_eq!(engine.sessions(), 0);
    }
    assert!(ports.len() <= 8, "{} distinct ports", ports.len());
    assert_eq!(engine.ports_in_use(), 0);
    assert_eq!(engine.ports_idle(), 16, "every pair parked, none leaked");
    assert!(all_silent(&[&a, &b]).await);
}

#[tokio::test]
async fn a_relay_is_taken_over_only_after_its_quarantine_while_ports_last() {
    let engine = engine();
    let (a, b) = (Phone::new().await, Phone::new().await);
    let s1 = engine.session();
    let first = call(&s1, &a, &b).await;
    drop(s1);
    // Just parked: a fresh pair is bound instead.
    let s2 = engine.session();
    let second = call(&s2, &a, &b).await;
    assert_ne!(second.0, first.0);
    drop(s2);
    assert_eq!((engine.ports_in_use(), engine.ports_idle()), (0, 8));
    // Parked long enough: the oldest is taken over.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let s3 = engine.session();
    assert_eq!(call(&s3, &a, &b).await, first);
    assert_eq!((engine.ports_in_use(), engine.ports_idle()), (4, 4));
}
