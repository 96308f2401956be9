//! SDP offer/answer through a session: what each side receives, checked
//! byte for byte and against sdp-rs as an independent parser.

mod common;

use common::*;
use media::{MediaConfig, MediaEngine, MediaError, Side};
use sdp_rs::SessionDescription;

fn text(b: &bytes::Bytes) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

/// The `o=` version of an SDP body.
fn version(body: &str) -> u64 {
    let o = body.lines().find(|l| l.starts_with("o=")).unwrap();
    o.split(' ').nth(2).unwrap().parse().unwrap()
}

/// Everything sdp-rs types (codecs, direction, ptime, b=, attributes,
/// media and formats) is the same in `a` and `b`.
fn same_media(a: &str, b: &str) {
    let a = SessionDescription::try_from(a).unwrap();
    let b = SessionDescription::try_from(b).unwrap();
    assert_eq!(a.session_name, b.session_name);
    assert_eq!(a.bandwidths, b.bandwidths);
    assert_eq!(a.attributes, b.attributes);
    assert_eq!(a.media_descriptions.len(), b.media_descriptions.len());
    for (ma, mb) in a.media_descriptions.iter().zip(&b.media_descriptions) {
        assert_eq!(ma.media.media, mb.media.media);
        assert_eq!(ma.media.proto, mb.media.proto);
        assert_eq!(ma.media.fmt, mb.media.fmt);
        assert_eq!(ma.bandwidths, mb.bandwidths);
        let not_rtcp = |attrs: &[sdp_rs::lines::Attribute]| {
            attrs
                .iter()
                .filter(|a| !matches!(a, sdp_rs::lines::Attribute::Other(k, _) if k == "rtcp"))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(not_rtcp(&ma.attributes), not_rtcp(&mb.attributes));
    }
}

const OFFER: &str = "v=0\r\n\
    o=alice 2890844526 2890844526 IN IP4 192.168.1.20\r\n\
    s=-\r\n\
    c=IN IP4 192.168.1.20\r\n\
    t=0 0\r\n\
    m=audio 49170 RTP/AVP 0 8 101\r\n\
    a=rtpmap:0 PCMU/8000\r\n\
    a=rtpmap:8 PCMA/8000\r\n\
    a=rtpmap:101 telephone-event/8000\r\n\
    a=fmtp:101 0-16\r\n\
    a=ptime:20\r\n\
    a=sendrecv\r\n";

#[tokio::test]
async fn simple_audio_offer() {
    let engine = engine();
    let session = engine.session();
    let out = text(
        &session
            .rewrite_sdp(Side::A, OFFER.as_bytes())
            .await
            .unwrap(),
    );
    let port_b = session.local_ports(Side::B)[0];
    let expected = OFFER
        .replace(
            "o=alice 2890844526 2890844526 IN IP4 192.168.1.20",
            "o=alice 2890844526 2890844526 IN IP4 127.0.0.1",
        )
        .replace("c=IN IP4 192.168.1.20", "c=IN IP4 127.0.0.1")
        .replace("m=audio 49170 ", &format!("m=audio {port_b} "));
    assert_eq!(out, expected);
    same_media(OFFER, &out);
    assert_eq!(port_b % 2, 0);
    assert_eq!(engine.ports_in_use(), 4);
    assert_eq!(session.local_ports(Side::A).len(), 1);
    assert_ne!(session.local_ports(Side::A), session.local_ports(Side::B));
}

#[tokio::test]
async fn offer_and_answer_each_point_at_the_port_facing_the_receiver() {
    let session = engine().session();
    let to_b = text(
        &session
            .rewrite_sdp(Side::A, OFFER.as_bytes())
            .await
            .unwrap(),
    );
    let answer = "v=0\r\n\
        o=bob 7 1 IN IP4 10.0.0.9\r\n\
        s=-\r\n\
        c=IN IP4 10.0.0.9\r\n\
        t=0 0\r\n\
        m=audio 3456 RTP/AVP 0 101\r\n\
        a=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-15\r\n";
    let to_a = text(
        &session
            .rewrite_sdp(Side::B, answer.as_bytes())
            .await
            .unwrap(),
    );
    let [a] = session.local_ports(Side::A)[..] else {
        panic!()
    };
    let [b] = session.local_ports(Side::B)[..] else {
        panic!()
    };
    assert!(to_b.contains(&format!("m=audio {b} RTP/AVP 0 8 101\r\n")));
    assert!(to_a.contains(&format!("m=audio {a} RTP/AVP 0 101\r\n")));
    assert!(to_a.starts_with("v=0\r\no=bob 7 1 IN IP4 127.0.0.1\r\n"));
    assert!(!to_a.contains("10.0.0.9"));
    same_media(answer, &to_a);
}

#[tokio::test]
async fn audio_and_video_get_a_port_pair_each() {
    let engine = engine();
    let session = engine.session();
    let offer = "v=0\r\n\
        o=- 1 1 IN IP4 192.168.1.20\r\n\
        s=-\r\n\
        c=IN IP4 192.168.1.20\r\n\
        t=0 0\r\n\
        m=audio 49170 RTP/AVP 0\r\n\
        b=AS:64\r\n\
        m=video 51372 RTP/AVP 96\r\n\
        b=AS:512\r\n\
        a=rtpmap:96 H264/90000\r\n\
        a=fmtp:96 profile-level-id=42e01f;packetization-mode=1\r\n";
    let out = text(
        &session
            .rewrite_sdp(Side::A, offer.as_bytes())
            .await
            .unwrap(),
    );
    let ports_b = session.local_ports(Side::B);
    let ports_a = session.local_ports(Side::A);
    assert_eq!(ports_b.len(), 2);
    assert_eq!(ports_a.len(), 2);
    let mut all: Vec<u16> = ports_a.iter().chain(&ports_b).copied().collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 4);
    assert!(out.contains(&format!("m=audio {} RTP/AVP 0\r\nb=AS:64\r\n", ports_b[0])));
    assert!(out.contains(&format!(
        "m=video {} RTP/AVP 96\r\nb=AS:512\r\n",
        ports_b[1]
    )));
    assert_eq!(engine.ports_in_use(), 8);
    same_media(offer, &out);
}

#[tokio::test]
async fn hold_with_sendonly_passes_and_bumps_the_version_once() {
    let session = engine().session();
    let first = text(
        &session
            .rewrite_sdp(Side::A, OFFER.as_bytes())
            .await
            .unwrap(),
    );
    // The same SDP again (e.g. a session refresh): same version.
    let again = text(
        &session
            .rewrite_sdp(Side::A, OFFER.as_bytes())
            .await
            .unwrap(),
    );
    assert_eq!(first, again);
    let hold = OFFER
        .replace("a=sendrecv", "a=sendonly")
        .replace(" 2890844526 IN", " 2890844527 IN");
    let held = text(&session.rewrite_sdp(Side::A, hold.as_bytes()).await.unwrap());
    assert_eq!(version(&held), version(&first) + 1);
    assert!(held.contains("a=sendonly\r\n"));
    assert!(!held.contains("a=sendrecv"));
    assert_eq!(
        held.replace("a=sendonly", "a=sendrecv").replace(
            &format!(" {} IN", version(&held)),
            &format!(" {} IN", version(&first))
        ),
        first
    );
    // inactive too.
    let inactive = OFFER.replace("a=sendrecv", "a=inactive");
    let out = text(
        &session
            .rewrite_sdp(Side::A, inactive.as_bytes())
            .await
            .unwrap(),
    );
    assert!(out.contains("a=inactive\r\n"));
    assert_eq!(version(&out), version(&first) + 2);
    // And resume.
    let resumed = text(
        &session
            .rewrite_sdp(Side::A, OFFER.as_bytes())
            .await
            .unwrap(),
    );
    assert_eq!(version(&resumed), version(&first) + 3);
    assert_eq!(session.local_ports(Side::B).len(), 1);
}

#[tokio::test]
async fn hold_with_zero_address_keeps_direction_and_points_at_us() {
    let session = engine().session();
    let first = text(
        &session
            .rewrite_sdp(Side::A, OFFER.as_bytes())
            .await
            .unwrap(),
    );
    let hold = OFFER
        .replace("c=IN IP4 192.168.1.20", "c=IN IP4 0.0.0.0")
        .replace("a=sendrecv", "a=sendonly");
    let out = text(&session.rewrite_sdp(Side::A, hold.as_bytes()).await.unwrap());
    assert!(out.contains("c=IN IP4 127.0.0.1\r\n"));
    assert!(!out.contains("0.0.0.0"));
    assert!(out.contains("a=sendonly\r\n"));
    assert_eq!(version(&out), version(&first) + 1);
    // Same port: the stream is the same, only its direction changed.
    assert_eq!(session.local_ports(Side::B).len(), 1);

    // A legacy hold that changes only c= is not visible to the other side
    // (its body, and so its version, stay as they were): the relay enforces
    // it by sending nothing to the holder (see the relay tests).
    let session = engine().session();
    let first = session
        .rewrite_sdp(Side::A, OFFER.as_bytes())
        .await
        .unwrap();
    let legacy = OFFER.replace("c=IN IP4 192.168.1.20", "c=IN IP4 0.0.0.0");
    let out = session
        .rewrite_sdp(Side::A, legacy.as_bytes())
        .await
        .unwrap();
    assert_eq!(out, first);
}

#[tokio::test]
async fn rejected_streams_stay_at_port_zero_and_take_no_ports() {
    let engine = engine();
    let session = engine.session();
    let offer = "v=0\r\n\
        o=- 1 1 IN IP4 192.168.1.20\r\n\
        s=-\r\n\
        c=IN IP4 192.168.1.20\r\n\
        t=0 0\r\n\
        m=audio 49170 RTP/AVP 0\r\n\
        m=video 51372 RTP/AVP 31\r\n";
    session
        .rewrite_sdp(Side::A, offer.as_bytes())
        .await
        .unwrap();
    assert_eq!(engine.ports_in_use(), 8);
    let answer = "v=0\r\n\
        o=- 5 5 IN IP4 10.0.0.9\r\n\
        s=-\r\n\
        c=IN IP4 10.0.0.9\r\n\
        t=0 0\r\n\
        m=audio 3456 RTP/AVP 0\r\n\
        m=video 0 RTP/AVP 31\r\n";
    let to_a = text(
        &session
            .rewrite_sdp(Side::B, answer.as_bytes())
            .await
            .unwrap(),
    );
    assert!(to_a.contains("m=video 0 RTP/AVP 31\r\n"));
    assert!(to_a.contains(&format!(
        "m=audio {} RTP/AVP 0\r\n",
        session.local_ports(Side::A)[0]
    )));

    // An offer that disables a stream from the start allocates nothing for it.
    let engine2 = common::engine();
    let s2 = engine2.session();
    let out = text(&s2.rewrite_sdp(Side::A, answer.as_bytes()).await.unwrap());
    assert!(out.contains("m=video 0 RTP/AVP 31\r\n"));
    assert_eq!(s2.local_ports(Side::B).len(), 1);
    assert_eq!(engine2.ports_in_use(), 4);
}

#[tokio::test]
async fn a_rtcp_is_moved_to_our_rtcp_port() {
    let session = engine().session();
    let offer = "v=0\r\n\
        o=- 1 1 IN IP4 192.168.1.20\r\n\
        s=-\r\n\
        c=IN IP4 192.168.1.20\r\n\
        t=0 0\r\n\
        m=audio 49170 RTP/AVP 0\r\n\
        a=rtcp:53020 IN IP4 192.168.1.21\r\n\
        m=audio 49180 RTP/AVP 0\r\n\
        a=rtcp:49999\r\n";
    let out = text(
        &session
            .rewrite_sdp(Side::A, offer.as_bytes())
            .await
            .unwrap(),
    );
    let p = session.local_ports(Side::B);
    assert!(out.contains(&format!(
        "m=audio {} RTP/AVP 0\r\na=rtcp:{} IN IP4 127.0.0.1\r\n",
        p[0],
        p[0] + 1
    )));
    assert!(out.contains(&format!(
        "m=audio {} RTP/AVP 0\r\na=rtcp:{}\r\n",
        p[1],
        p[1] + 1
    )));
    assert!(!out.contains("192.168.1.2"));
}

#[tokio::test]
async fn ipv6_connection_lines() {
    let offer = "v=0\r\n\
        o=- 1 1 IN IP6 2001:db8::20\r\n\
        s=-\r\n\
        c=IN IP6 2001:db8::20\r\n\
        t=0 0\r\n\
        m=audio 49170 RTP/AVP 0\r\n";
    // An IPv4 relay takes an IPv6 side's SDP and answers in IPv4.
    let session = engine().session();
    let out = text(
        &session
            .rewrite_sdp(Side::A, offer.as_bytes())
            .await
            .unwrap(),
    );
    assert!(out.contains("o=- 1 1 IN IP4 127.0.0.1\r\n"));
    assert!(out.contains("c=IN IP4 127.0.0.1\r\n"));
    assert!(!out.contains("IP6"));
    // An IPv6 relay advertises IPv6.
    let config = MediaConfig {
        bind: "::1".parse().unwrap(),
        ..common::config(8)
    };
    let engine = MediaEngine::new(config);
    let session = engine.session();
    match session.rewrite_sdp(Side::A, offer.as_bytes()).await {
        Ok(out) => {
            let out = text(&out);
            assert!(out.contains("o=- 1 1 IN IP6 ::1\r\n"));
            assert!(out.contains("c=IN IP6 ::1\r\n"));
            assert!(!out.contains("IP4"));
        }
        // A machine without IPv6 loopback cannot bind ::1.
        Err(MediaError::Io(e)) => eprintln!("no IPv6 loopback here: {e}"),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn version_increments_per_side_and_only_on_change() {
    let session = engine().session();
    let a1 = text(
        &session
            .rewrite_sdp(Side::A, OFFER.as_bytes())
            .await
            .unwrap(),
    );
    let answer = "v=0\r\no=bob 7 0 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\nm=audio 3456 RTP/AVP 0\r\n";
    let b1 = text(
        &session
            .rewrite_sdp(Side::B, answer.as_bytes())
            .await
            .unwrap(),
    );
    assert_eq!(version(&a1), 2_890_844_526);
    assert_eq!(version(&b1), 0);
    // B re-sends the same SDP with a bumped version but no change: A sees no change.
    let b_same = answer.replace("7 0 IN", "7 1 IN");
    let b2 = text(
        &session
            .rewrite_sdp(Side::B, b_same.as_bytes())
            .await
            .unwrap(),
    );
    assert_eq!(b2, b1);
    // B moves its media elsewhere: A still sends to the same Tandem port,
    // so what A sees is unchanged and so is the version.
    let moved = answer
        .replace("10.0.0.9", "10.0.0.10")
        .replace("3456", "4000");
    let b3 = text(
        &session
            .rewrite_sdp(Side::B, moved.as_bytes())
            .await
            .unwrap(),
    );
    assert_eq!(b3, b1);
    // B changes codecs: one more.
    let codec = answer.replace("RTP/AVP 0", "RTP/AVP 8");
    let b4 = text(
        &session
            .rewrite_sdp(Side::B, codec.as_bytes())
            .await
            .unwrap(),
    );
    assert_eq!(version(&b4), 1);
    // A's direction was untouched by all this.
    let a2 = text(
        &session
            .rewrite_sdp(Side::A, OFFER.as_bytes())
            .await
            .unwrap(),
    );
    assert_eq!(a2, a1);
}

#[tokio::test]
async fn unknown_lines_and_attributes_pass_byte_exact() {
    let session = engine().session();
    let offer = "v=0\n\
        o=- 1 1 IN IP4 192.168.1.20\n\
        s=Sess  with  spaces\n\
        i=info\n\
        c=IN IP4 192.168.1.20\n\
        t=0 0\n\
        a=group:BUNDLE 0\n\
        m=audio 49170 RTP/SAVP 0\n\
        a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32\n\
        a=X-custom\n\
        y=0123456789\n\
        a=maxptime:40\n";
    let out = text(
        &session
            .rewrite_sdp(Side::A, offer.as_bytes())
            .await
            .unwrap(),
    );
    let port = session.local_ports(Side::B)[0];
    let expected = offer
        .replace("o=- 1 1 IN IP4 192.168.1.20", "o=- 1 1 IN IP4 127.0.0.1")
        .replace("c=IN IP4 192.168.1.20", "c=IN IP4 127.0.0.1")
        .replace("49170", &port.to_string());
    assert_eq!(out, expected);
}

#[tokio::test]
async fn unusable_sdp_is_an_error_and_takes_no_ports() {
    let engine = engine();
    let session = engine.session();
    for body in [
        &b""[..],
        b"not sdp",
        b"v=0\r\ns=-\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 pbx.example.com\r\nm=audio 4000 RTP/AVP 0\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 0\r\n",
    ] {
        let err = session.rewrite_sdp(Side::A, body).await.unwrap_err();
        assert!(matches!(err, MediaError::Sdp(_)), "{err}");
    }
    assert_eq!(engine.ports_in_use(), 0);
}

#[tokio::test]
async fn pool_exhaustion_is_an_error() {
    // One pair: a stream needs two.
    let engine = MediaEngine::new(common::config(1));
    let session = engine.session();
    let err = session
        .rewrite_sdp(Side::A, OFFER.as_bytes())
        .await
        .unwrap_err();
    assert!(matches!(err, MediaError::PoolExhausted { .. }), "{err}");
    assert_eq!(engine.ports_in_use(), 0);
}

#[tokio::test]
async fn unspecified_advertise_is_a_config_error() {
    let config = MediaConfig {
        bind: "0.0.0.0".parse().unwrap(),
        ..common::config(8)
    };
    assert!(MediaEngine::try_new(config.clone()).is_err());
    let session = MediaEngine::new(config).session();
    let err = session
        .rewrite_sdp(Side::A, OFFER.as_bytes())
        .await
        .unwrap_err();
    assert!(matches!(err, MediaError::Config(_)), "{err}");
}

#[test]
fn rewrite_outside_a_runtime_is_an_error_not_a_panic() {
    let session = engine().session();
    let fut = session.rewrite_sdp(Side::A, OFFER.as_bytes());
    // Poll it once by hand, outside any runtime.
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(Err(MediaError::NoRuntime)) => {}
        other => panic!("{:?}", other.map(|r| r.map(|_| ()))),
    }
}

#[test]
fn engine_session_and_futures_are_send_and_sync() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let engine = engine();
    let session = engine.session();
    send_sync(&engine);
    send_sync(&session);
    send(&session.rewrite_sdp(Side::A, OFFER.as_bytes()));
    send(&session.inactive());
}
