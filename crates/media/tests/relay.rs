//! The relay on real loopback sockets: two UDP "phones" talk through a
//! session; what arrives is checked byte for byte.

mod common;

use common::*;
use media::{MediaConfig, MediaEngine, Side};
use rtp::packet::Packet;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;
use webrtc_util::marshal::{Marshal, Unmarshal};

#[tokio::test]
async fn rtp_both_ways_arrives_byte_identical() {
    let engine = engine();
    let session = engine.session();
    let (a, b) = (Phone::new().await, Phone::new().await);
    let (to_a_side, to_b_side) = call(&session, &a, &b).await;
    for seq in 0..50u16 {
        // A → B, built with the rtp crate (marker on the first packet).
        let mut pkt = Packet::default();
        pkt.header.version = 2;
        pkt.header.marker = seq == 0;
        pkt.header.payload_type = 0;
        pkt.header.sequence_number = 1000 + seq;
        pkt.header.timestamp = 160 * u32::from(seq);
        pkt.header.ssrc = 0xA11CE;
        pkt.payload = bytes::Bytes::from(vec![seq as u8; 160]);
        let wire = pkt.marshal().unwrap();
        a.rtp.send_to(&wire, to_a_side).await.unwrap();
        let (got, from) = recv(&b.rtp).await;
        assert_eq!(got, wire.to_vec());
        assert_eq!(from, to_b_side, "B hears Tandem's port facing B");
        let parsed = Packet::unmarshal(&mut &got[..]).unwrap();
        assert_eq!(parsed.header.ssrc, 0xA11CE);
        assert_eq!(parsed.header.sequence_number, 1000 + seq);
        assert_eq!(parsed.header.timestamp, 160 * u32::from(seq));
        assert_eq!(parsed.header.marker, seq == 0);

        // B → A.
        let back = rtp_packet(0xB0B, seq);
        b.rtp.send_to(&back, to_b_side).await.unwrap();
        let (got, from) = recv(&a.rtp).await;
        assert_eq!(got, back);
        assert_eq!(from, to_a_side);
    }
    let stats = session.stats();
    assert_eq!(stats.a_to_b.rtp_packets, 50);
    assert_eq!(stats.a_to_b.rtp_bytes, 50 * 172);
    assert_eq!(stats.b_to_a.rtp_packets, 50);
    assert_eq!(stats.b_to_a.rtp_bytes, 50 * 172);
    assert_eq!(stats.a_to_b.dropped + stats.b_to_a.dropped, 0);
}

#[tokio::test]
async fn odd_sized_and_large_datagrams_pass_whole() {
    let session = engine().session();
    let (a, b) = (Phone::new().await, Phone::new().await);
    let (to_a_side, _) = call(&session, &a, &b).await;
    for len in [12usize, 13, 1500, 9000, 60_000] {
        let mut p = rtp_packet(1, len as u16);
        p.resize(len, 0x5a);
        a.rtp.send_to(&p, to_a_side).await.unwrap();
        assert_eq!(recv(&b.rtp).await.0, p);
    }
}

#[tokio::test]
async fn rtcp_is_relayed_on_the_next_port() {
    let session = engine().session();
    let (a, b) = (Phone::new().await, Phone::new().await);
    let (to_a_side, to_b_side) = call(&session, &a, &b).await;
    let rtcp_a_side = SocketAddr::new(to_a_side.ip(), to_a_side.port() + 1);
    let rtcp_b_side = SocketAddr::new(to_b_side.ip(), to_b_side.port() + 1);
    let rr = rtcp_packet(0xA11CE);
    a.rtcp.send_to(&rr, rtcp_a_side).await.unwrap();
    let (got, from) = recv(&b.rtcp).await;
    assert_eq!(got, rr);
    assert_eq!(from, rtcp_b_side);
    let rr = rtcp_packet(0xB0B);
    b.rtcp.send_to(&rr, rtcp_b_side).await.unwrap();
    assert_eq!(recv(&a.rtcp).await.0, rr);
    // Nothing leaked onto the RTP sockets.
    assert!(silent(&a.rtp).await && silent(&b.rtp).await);
    let stats = session.stats();
    assert_eq!((stats.a_to_b.rtcp_packets, stats.a_to_b.rtcp_bytes), (1, 8));
    assert_eq!(
        (stats.b_to_a.rtcp_packets, stats.b_to_a.rtp_packets),
        (1, 0)
    );
}

#[tokio::test]
async fn rtcp_goes_where_a_rtcp_says() {
    let session = engine().session();
    let (a, b) = (Phone::new().await, Phone::new().await);
    // A's RTCP socket is somewhere unrelated to its RTP port.
    let a_rtcp_elsewhere = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let offer = audio_sdp("a", a.addr(), 1).replace(
        "a=sendrecv\r\n",
        &format!(
            "a=sendrecv\r\na=rtcp:{} IN IP4 127.0.0.1\r\n",
            a_rtcp_elsewhere.local_addr().unwrap().port()
        ),
    );
    session
        .rewrite_sdp(Side::A, offer.as_bytes())
        .await
        .unwrap();
    session
        .rewrite_sdp(Side::B, audio_sdp("b", b.addr(), 1).as_bytes())
        .await
        .unwrap();
    let (_, to_b_side) = towards(&session);
    let rr = rtcp_packet(0xB0B);
    b.rtcp
        .send_to(&rr, SocketAddr::new(to_b_side.ip(), to_b_side.port() + 1))
        .await
        .unwrap();
    assert_eq!(recv(&a_rtcp_elsewhere).await.0, rr);
}

#[tokio::test]
async fn latching_sends_the_return_stream_to_the_real_source() {
    let session = engine().session();
    let (a, b) = (Phone::new().await, Phone::new().await);
    // A's SDP says one port (a NAT hides the real one); A sends from another.
    let (to_a_side, to_b_side) = call(&session, &a, &b).await;
    let behind_nat = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    behind_nat
        .send_to(&rtp_packet(0xA, 1), to_a_side)
        .await
        .unwrap();
    assert_eq!(recv(&b.rtp).await.0, rtp_packet(0xA, 1));
    b.rtp.send_to(&rtp_packet(0xB, 1), to_b_side).await.unwrap();
    let (got, from) = recv(&behind_nat).await;
    assert_eq!(got, rtp_packet(0xB, 1));
    assert_eq!(from, to_a_side);
    assert!(
        silent(&a.rtp).await,
        "nothing to the SDP address after latching"
    );

    // The source moves (a new NAT binding): the latch follows.
    let moved = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    moved.send_to(&rtp_packet(0xA, 2), to_a_side).await.unwrap();
    recv(&b.rtp).await;
    b.rtp.send_to(&rtp_packet(0xB, 2), to_b_side).await.unwrap();
    assert_eq!(recv(&moved).await.0, rtp_packet(0xB, 2));
    assert!(silent(&behind_nat).await);
}

#[tokio::test]
async fn rtp_and_rtcp_latch_independently() {
    let session = engine().session();
    let (a, b) = (Phone::new().await, Phone::new().await);
    let (to_a_side, to_b_side) = call(&session, &a, &b).await;
    let nat_rtcp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    nat_rtcp
        .send_to(
            &rtcp_packet(0xA),
            SocketAddr::new(to_a_side.ip(), to_a_side.port() + 1),
        )
        .await
        .unwrap();
    recv(&b.rtcp).await;
    // RTCP from B follows the RTCP latch …
    b.rtcp
        .send_to(
            &rtcp_packet(0xB),
            SocketAddr::new(to_b_side.ip(), to_b_side.port() + 1),
        )
        .await
        .unwrap();
    assert_eq!(recv(&nat_rtcp).await.0, rtcp_packet(0xB));
    // … while RTP still goes to the SDP address.
    b.rtp.send_to(&rtp_packet(0xB, 1), to_b_side).await.unwrap();
    assert_eq!(recv(&a.rtp).await.0, rtp_packet(0xB, 1));
}

#[tokio::test]
async fn junk_does_not_steal_an_rtp_stream_but_is_relayed() {
    let session = engine().session();
    let (a, b) = (Phone::new().await, Phone::new().await);
    let (to_a_side, to_b_side) = call(&session, &a, &b).await;
    let intruder = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // A STUN binding request is not RTP: relayed, but it does not latch.
    let stun = [
        0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ];
    intruder.send_to(&stun, to_a_side).await.unwrap();
    assert_eq!(recv(&b.rtp).await.0, stun);
    b.rtp.send_to(&rtp_packet(0xB, 1), to_b_side).await.unwrap();
    assert_eq!(recv(&a.rtp).await.0, rtp_packet(0xB, 1));
    assert!(silent(&intruder).await);
}

#[tokio::test]
async fn packets_are_dropped_until_the_other_side_has_sent_sdp() {
    let session = engine().session();
    let (a, b) = (Phone::new().await, Phone::new().await);
    session
        .rewrite_sdp(Side::A, audio_sdp("a", a.addr(), 1).as_bytes())
        .await
        .unwrap();
    let (to_a_side, to_b_side) = towards(&session);
    // B has the offer and sends early media: A's address is known, it flows.
    b.rtp.send_to(&rtp_packet(0xB, 1), to_b_side).await.unwrap();
    assert_eq!(recv(&a.rtp).await.0, rtp_packet(0xB, 1));
    // A → B: B's SDP is not known yet, dropped (and counted).
    a.rtp.send_to(&rtp_packet(0xA, 1), to_a_side).await.unwrap();
    a.rtp.send_to(&rtp_packet(0xA, 2), to_a_side).await.unwrap();
    assert!(silent(&b.rtp).await);
    let stats = session.stats();
    assert_eq!(stats.a_to_b.dropped, 2);
    assert_eq!(stats.a_to_b.rtp_packets, 0);
    assert_eq!(stats.b_to_a.rtp_packets, 1);
    // B answers: now it flows (to where B's packets came from).
    session
        .rewrite_sdp(Side::B, audio_sdp("b", b.addr(), 1).as_bytes())
        .await
        .unwrap();
    a.rtp.send_to(&rtp_packet(0xA, 3), to_a_side).await.unwrap();
    assert_eq!(recv(&b.rtp).await.0, rtp_packet(0xA, 3));
}

#[tokio::test]
async fn zero_address_hold_stops_media_to_the_holder_until_resume() {
    let session = engine().session();
    let (a, b) = (Phone::new().await, Phone::new().await);
    let (to_a_side, to_b_side) = call(&session, &a, &b).await;
    a.rtp.send_to(&rtp_packet(0xA, 1), to_a_side).await.unwrap();
    recv(&b.rtp).await;
    // A holds RFC 2543 style: nothing may be sent to A, RTP or RTCP.
    let hold = audio_sdp("a", a.addr(), 2).replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
    session.rewrite_sdp(Side::A, hold.as_bytes()).await.unwrap();
    b.rtp.send_to(&rtp_packet(0xB, 1), to_b_side).await.unwrap();
    b.rtcp
        .send_to(
            &rtcp_packet(0xB),
            SocketAddr::new(to_b_side.ip(), to_b_side.port() + 1),
        )
        .await
        .unwrap();
    assert!(silent(&a.rtp).await && silent(&a.rtcp).await);
    // A's own packets (music on hold) still reach B.
    a.rtp.send_to(&rtp_packet(0xA, 2), to_a_side).await.unwrap();
    assert_eq!(recv(&b.rtp).await.0, rtp_packet(0xA, 2));
    assert_eq!(session.stats().b_to_a.dropped, 2);
    // Resume.
    session
        .rewrite_sdp(Side::A, audio_sdp("a", a.addr(), 3).as_bytes())
        .await
        .unwrap();
    b.rtp.send_to(&rtp_packet(0xB, 2), to_b_side).await.unwrap();
    assert_eq!(recv(&a.rtp).await.0, rtp_packet(0xB, 2));
}

#[tokio::test]
async fn a_reinvite_to_a_new_address_moves_the_stream() {
    let session = engine().session();
    let (a, b) = (Phone::new().await, Phone::new().await);
    let (to_a_side, to_b_side) = call(&session, &a, &b).await;
    a.rtp.send_to(&rtp_packet(0xA, 1), to_a_side).await.unwrap();
    recv(&b.rtp).await;
    let a2 = Phone::new().await;
    session
        .rewrite_sdp(Side::A, audio_sdp("a", a2.addr(), 2).as_bytes())
        .await
        .unwrap();
    // The ports facing A did not change: same stream.
    assert_eq!(towards(&session).0, to_a_side);
    b.rtp.send_to(&rtp_packet(0xB, 1), to_b_side).await.unwrap();
    assert_eq!(recv(&a2.rtp).await.0, rtp_packet(0xB, 1));
    assert!(silent(&a.rtp).await);
}

#[tokio::test]
async fn t38_udptl_is_relayed_and_latches_on_anything() {
    let session = engine().session();
    let (a, b) = (Phone::new().await, Phone::new().await);
    let image = |p: &Phone| {
        format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=image {} udptl t38\r\na=T38FaxVersion:0\r\n",
            p.addr().port()
        )
    };
    session
        .rewrite_sdp(Side::A, image(&a).as_bytes())
        .await
        .unwrap();
    session
        .rewrite_sdp(Side::B, image(&b).as_bytes())
        .await
        .unwrap();
    let (to_a_side, to_b_side) = towards(&session);
    let nat = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let udptl = [0x00, 0x01, 0x00, 0x42, 0x17];
    nat.send_to(&udptl, to_a_side).await.unwrap();
    assert_eq!(recv(&b.rtp).await.0, udptl);
    b.rtp.send_to(&udptl, to_b_side).await.unwrap();
    assert_eq!(recv(&nat).await.0, udptl);
}

#[tokio::test]
async fn ports_return_to_the_pool_when_the_session_drops() {
    let engine = engine();
    assert_eq!((engine.sessions(), engine.ports_in_use()), (0, 0));
    let s1 = engine.session();
    let s2 = engine.session();
    assert_eq!(engine.sessions(), 2);
    assert_eq!(engine.ports_in_use(), 0, "ports are taken lazily");
    let (a, b) = (Phone::new().await, Phone::new().await);
    call(&s1, &a, &b).await;
    call(&s2, &a, &b).await;
    assert_eq!(engine.ports_in_use(), 8);
    let ports: Vec<u16> = s1
        .local_ports(Side::A)
        .into_iter()
        .chain(s1.local_ports(Side::B))
        .collect();
    drop(s1);
    assert_eq!(engine.ports_in_use(), 4);
    assert_eq!(engine.sessions(), 1);
    drop(s2);
    assert_eq!((engine.sessions(), engine.ports_in_use()), (0, 0));
    // The relays are parked for reuse, their ports still bound ...
    assert_eq!(engine.ports_idle(), 8);
    assert!(std::net::UdpSocket::bind(("127.0.0.1", ports[0])).is_err());
    // ... until the engine goes: then the sockets really close (the tasks
    // end) shortly after.
    drop(engine);
    let deadline = tokio::time::Instant::now() + ARRIVES;
    for port in ports {
        for p in [port, port + 1] {
            loop {
                if std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok() {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "port {p} still bound"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

#[tokio::test]
async fn many_sessions_fill_and_empty_the_pool() {
    let engine = MediaEngine::new(common::config(40));
    let (a, b) = (Phone::new().await, Phone::new().await);
    let mut sessions = Vec::new();
    for _ in 0..10 {
        let s = engine.session();
        call(&s, &a, &b).await;
        sessions.push(s);
    }
    assert_eq!(engine.ports_in_use(), 40);
    sessions.clear();
    assert_eq!(engine.ports_in_use(), 0);
    assert_eq!(engine.sessions(), 0);
}

#[tokio::test(start_paused = true)]
async fn inactive_resolves_after_the_timeout_on_a_paused_clock() {
    let engine = MediaEngine::new(MediaConfig {
        inactivity_timeout: Duration::from_secs(60),
        ..common::config(4)
    });
    let session = engine.session();
    let start = tokio::time::Instant::now();
    session.inactive().await;
    assert_eq!(start.elapsed(), Duration::from_secs(60));
    // Awaiting again while still inactive resolves at once.
    session.inactive().await;
    assert_eq!(start.elapsed(), Duration::from_secs(60));
}

#[tokio::test]
async fn inactive_waits_while_media_flows_then_resolves() {
    let engine = MediaEngine::new(MediaConfig {
        inactivity_timeout: Duration::from_millis(300),
        ..common::config(4)
    });
    let session = engine.session();
    let (a, b) = (Phone::new().await, Phone::new().await);
    let (to_a_side, _) = call(&session, &a, &b).await;
    // Media every 50 ms for 900 ms: never inactive, and cancel-safe in a
    // select! loop.
    let start = tokio::time::Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(50));
    let mut seq = 0u16;
    while start.elapsed() < Duration::from_millis(900) {
        tokio::select! {
            _ = session.inactive() => panic!("inactive while media flows"),
            _ = ticker.tick() => {
                seq += 1;
                a.rtp.send_to(&rtp_packet(0xA, seq), to_a_side).await.unwrap();
            }
        }
    }
    let stopped = tokio::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(3), session.inactive())
        .await
        .expect("inactive after the media stopped");
    let waited = stopped.elapsed();
    assert!(waited >= Duration::from_millis(150), "{waited:?}");
    assert!(waited < Duration::from_millis(2000), "{waited:?}");
}

#[tokio::test]
async fn ipv6_loopback_relay() {
    let config = MediaConfig {
        bind: "::1".parse().unwrap(),
        ..common::config(4)
    };
    let engine = MediaEngine::new(config);
    let session = engine.session();
    let Ok(probe) = UdpSocket::bind("[::1]:0").await else {
        eprintln!("no IPv6 loopback here");
        return;
    };
    drop(probe);
    let (a, b) = (Phone::on("::1").await, Phone::on("::1").await);
    session
        .rewrite_sdp(Side::A, audio_sdp("a", a.addr(), 1).as_bytes())
        .await
        .unwrap();
    session
        .rewrite_sdp(Side::B, audio_sdp("b", b.addr(), 1).as_bytes())
        .await
        .unwrap();
    let to_a_side: SocketAddr = format!("[::1]:{}", session.local_ports(Side::A)[0])
        .parse()
        .unwrap();
    a.rtp.send_to(&rtp_packet(6, 6), to_a_side).await.unwrap();
    assert_eq!(recv(&b.rtp).await.0, rtp_packet(6, 6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sessions_on_a_multi_thread_runtime_lose_nothing() {
    let engine = engine();
    let mut calls = Vec::new();
    for _ in 0..4 {
        let session = engine.session();
        let (a, b) = (Phone::new().await, Phone::new().await);
        let ends = call(&session, &a, &b).await;
        calls.push((session, a, b, ends));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (session, a, b, (to_a_side, to_b_side))) in calls.into_iter().enumerate() {
        tasks.spawn(async move {
            let ssrc = i as u32;
            for burst in 0..10u16 {
                for k in 0..20u16 {
                    let seq = burst * 20 + k;
                    a.rtp
                        .send_to(&rtp_packet(ssrc, seq), to_a_side)
                        .await
                        .unwrap();
                    b.rtp
                        .send_to(&rtp_packet(ssrc + 100, seq), to_b_side)
                        .await
                        .unwrap();
                }
                for k in 0..20u16 {
                    let seq = burst * 20 + k;
                    assert_eq!(recv(&b.rtp).await.0, rtp_packet(ssrc, seq));
                    assert_eq!(recv(&a.rtp).await.0, rtp_packet(ssrc + 100, seq));
                }
            }
            let stats = session.stats();
            assert_eq!(stats.a_to_b.rtp_packets, 200);
            assert_eq!(stats.b_to_a.rtp_packets, 200);
            drop(session);
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    assert_eq!((engine.sessions(), engine.ports_in_use()), (0, 0));
}

#[tokio::test]
async fn relays_on_their_own_runtime_and_the_engine_drops_cleanly_in_async_code() {
    let engine = MediaEngine::new(MediaConfig {
        relay_threads: 1,
        ..config(8)
    });
    let session = engine.session();
    let (a, b) = (Phone::new().await, Phone::new().await);
    let (to_a_side, to_b_side) = call(&session, &a, &b).await;
    for seq in 0..10u16 {
        let wire = rtp_packet(0xA11CE, seq);
        a.rtp.send_to(&wire, to_a_side).await.unwrap();
        assert_eq!(recv(&b.rtp).await.0, wire);
        let back = rtp_packet(0xB0B, seq);
        b.rtp.send_to(&back, to_b_side).await.unwrap();
        assert_eq!(recv(&a.rtp).await.0, back);
    }
    // The last handle to the relay runtime goes away inside a runtime:
    // a blocking shutdown there would panic.
    drop(session);
    drop(engine);
    tokio::time::sleep(Duration::from_millis(50)).await;
}
