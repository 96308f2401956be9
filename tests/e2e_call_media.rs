//! Anchored media, end to end with the test UA as caller and callee: the
//! SDP each side gets points at tandem's ports (codecs, ptime and
//! telephone-event untouched), RTP and RTCP sent to those ports arrive at
//! the far end byte for byte (payload, SSRC, sequence number) in both
//! directions, latching follows the caller's real source address, and
//! `media = "direct"` leaves the SDP alone.

#[path = "support/mod.rs"]
mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;
use support::ua::{
    Established, RtpSock, Ua, establish, hangup, recv_on, rtp_packet, sdp, sdp_audio,
};
use support::{CallConfig, SippTransport, Tandem};

/// How long one relayed packet may take.
const RTP_WAIT: Duration = Duration::from_secs(2);

/// SDP lines that must pass through unchanged: everything but `o=`, `c=`
/// and the port of `m=`.
fn untouched_lines(body: &str) -> Vec<String> {
    body.split("\r\n")
        .filter(|l| !l.is_empty() && !l.starts_with("o=") && !l.starts_with("c="))
        .map(|l| match l.strip_prefix("m=audio ") {
            Some(rest) => format!(
                "m=audio * {}",
                rest.split_once(' ').map(|(_, r)| r).unwrap_or("")
            ),
            None => l.to_string(),
        })
        .collect()
}

/// Sends `count` RTP packets from `from` to `to` and checks that each one
/// arrives at `at`, unchanged, from `expect_source`.
fn stream(
    from: &UdpSocket,
    to: SocketAddr,
    at: &UdpSocket,
    expect_source: SocketAddr,
    ssrc: u32,
    count: u16,
) {
    for i in 0..count {
        let payload: Vec<u8> = (0..160u32)
            .map(|b| (b as u8) ^ (i as u8) ^ (ssrc as u8))
            .collect();
        let seq = 30_000u16.wrapping_add(i * 7);
        let pkt = rtp_packet(0, seq, 160 * u32::from(i), ssrc, &payload);
        from.send_to(&pkt, to).expect("send RTP");
        let (got, src) = recv_on(at, RTP_WAIT).unwrap_or_else(|| {
            panic!("RTP packet {i} (SSRC {ssrc:#x}) sent to {to} never arrived")
        });
        assert_eq!(got, pkt, "packet {i} changed on the way");
        assert_eq!(
            src, expect_source,
            "packet {i} relayed from an unexpected address"
        );
    }
}

struct MediaCall {
    tandem: Tandem,
    a: Ua,
    b: Ua,
    call: Established,
    since: usize,
}

fn media_call(transport: SippTransport, config: CallConfig, sdp_a: &str, sdp_b: &str) -> MediaCall {
    let mut b = Ua::callee("bob", transport);
    let tandem = config.route("", &[b.target()]).start();
    let since = tandem.log_len();
    let mut a = Ua::caller("alice", transport, &tandem);
    let call = establish(&mut a, &mut b, "bob", sdp_a, sdp_b);
    MediaCall {
        tandem,
        a,
        b,
        call,
        since,
    }
}

fn rtp_both_ways(transport: SippTransport) {
    let ra = RtpSock::bind(true);
    let rb = RtpSock::bind(true);
    let sdp_a = sdp(ra.port, &[]);
    let sdp_b = sdp(rb.port, &[]);
    let mut c = media_call(transport, CallConfig::new(), &sdp_a, &sdp_b);

    // Each side is told to send to tandem; everything else is untouched.
    let at_b = c.call.invite_at_b.body_text();
    let at_a = c.call.ok_at_a.body_text();
    let anchor_a = sdp_audio(&at_a);
    let anchor_b = sdp_audio(&at_b);
    for (anchor, other) in [(anchor_a, rb.port), (anchor_b, ra.port)] {
        assert_eq!(anchor.ip().to_string(), "127.0.0.1");
        assert_ne!(anchor.port(), other, "media not anchored");
    }
    assert_ne!(anchor_a.port(), anchor_b.port());
    assert_eq!(untouched_lines(&at_b), untouched_lines(&sdp_a), "{at_b}");
    assert_eq!(untouched_lines(&at_a), untouched_lines(&sdp_b), "{at_a}");
    // No address of the other side's in the SDP.
    assert!(!at_b.contains(&ra.port.to_string()), "{at_b}");
    assert!(!at_a.contains(&rb.port.to_string()), "{at_a}");

    // The status line counts the session and its ports.
    let during = c.tandem.wait_status(c.since, Duration::from_secs(3), |s| {
        s.get("calls") == 1 && s.get("media_sessions") == 1 && s.get("media_ports") >= 4
    });
    assert!(during.is_ok(), "status during the call: {during:?}");

    // RTP both ways, byte for byte, from tandem's port facing the receiver.
    stream(&ra.rtp, anchor_a, &rb.rtp, anchor_b, 0xA1A1_0001, 25);
    stream(&rb.rtp, anchor_b, &ra.rtp, anchor_a, 0xB2B2_0002, 25);
    // Interleaved.
    for i in 0..10u16 {
        stream(
            &ra.rtp,
            anchor_a,
            &rb.rtp,
            anchor_b,
            0xA1A1_0001 + u32::from(i),
            1,
        );
        stream(
            &rb.rtp,
            anchor_b,
            &ra.rtp,
            anchor_a,
            0xB2B2_0002 + u32::from(i),
            1,
        );
    }

    // RFC 4733 telephone events (payload type 101, marker on the first)
    // pass through like any RTP.
    for (i, end) in [(0u16, 0u8), (1, 0), (2, 0x80)] {
        let duration = (160 * (i + 1)).to_be_bytes();
        let event = [5, end | 10, duration[0], duration[1]];
        let mut pkt = rtp_packet(101, 7000 + i, 48_000, 0xA1A1_0001, &event);
        if i == 0 {
            pkt[1] |= 0x80;
        }
        ra.rtp.send_to(&pkt, anchor_a).expect("send RTP");
        let (got, _) = recv_on(&rb.rtp, RTP_WAIT).expect("telephone-event never arrived");
        assert_eq!(got, pkt, "telephone-event packet {i} changed");
    }

    // RTCP on port + 1, both ways.
    let rtcp_a = ra.rtcp.as_ref().expect("RTCP socket");
    let rtcp_b = rb.rtcp.as_ref().expect("RTCP socket");
    let to_a = SocketAddr::new(anchor_a.ip(), anchor_a.port() + 1);
    let to_b = SocketAddr::new(anchor_b.ip(), anchor_b.port() + 1);
    // A receiver report: V=2, RC=0, PT=201, length 1, SSRC.
    let rr = [0x80u8, 201, 0, 1, 0xA1, 0xA1, 0, 1];
    rtcp_a.send_to(&rr, to_a).expect("send RTCP");
    let (got, src) = recv_on(rtcp_b, RTP_WAIT).expect("RTCP A→B never arrived");
    assert_eq!(got, rr);
    assert_eq!(src, to_b);
    let rr = [0x80u8, 201, 0, 1, 0xB2, 0xB2, 0, 2];
    rtcp_b.send_to(&rr, to_b).expect("send RTCP");
    let (got, src) = recv_on(rtcp_a, RTP_WAIT).expect("RTCP B→A never arrived");
    assert_eq!(got, rr);
    assert_eq!(src, to_a);

    hangup(&mut c.a, &mut c.call.a, &mut c.b);
    // Ports go back to the pool.
    c.tandem.assert_idle(Duration::from_secs(5));
}

#[test]
fn rtp_and_rtcp_relayed_both_ways_unchanged_over_udp() {
    rtp_both_ways(SippTransport::Udp);
}

#[test]
fn rtp_and_rtcp_relayed_both_ways_unchanged_over_tcp() {
    rtp_both_ways(SippTransport::Tcp);
}

/// The caller's SDP names one port but its RTP leaves from another (a NAT):
/// once its first packet arrived, the return stream goes to the real
/// source address.
#[test]
fn latching_sends_the_return_stream_to_the_real_source() {
    let advertised = RtpSock::bind(false);
    let real = RtpSock::bind(false);
    let rb = RtpSock::bind(false);
    let mut c = media_call(
        SippTransport::Udp,
        CallConfig::new(),
        &sdp(advertised.port, &[]),
        &sdp(rb.port, &[]),
    );
    let anchor_a = sdp_audio(&c.call.ok_at_a.body_text());
    let anchor_b = sdp_audio(&c.call.invite_at_b.body_text());

    // Before A sent anything, B's RTP goes where A's SDP says.
    stream(&rb.rtp, anchor_b, &advertised.rtp, anchor_a, 0xB0B0_0001, 3);
    // A sends from its real address.
    stream(&real.rtp, anchor_a, &rb.rtp, anchor_b, 0xA0A0_0001, 5);
    // The return stream now goes there, and no longer to the SDP address.
    stream(&rb.rtp, anchor_b, &real.rtp, anchor_a, 0xB0B0_0001, 10);
    if let Some((pkt, from)) = recv_on(&advertised.rtp, Duration::from_millis(300)) {
        panic!(
            "after latching, {} bytes still went to the SDP address (from {from})",
            pkt.len()
        );
    }
    hangup(&mut c.b, &mut c.call.b, &mut c.a);
    c.tandem.assert_idle(Duration::from_secs(5));
}

fn direct(config: CallConfig) {
    let sdp_a = sdp(41_000, &["a=sendrecv"]);
    let sdp_b = sdp(43_000, &["a=sendrecv"]);
    let mut c = media_call(SippTransport::Udp, config, &sdp_a, &sdp_b);
    assert_eq!(
        c.call.invite_at_b.body_text(),
        sdp_a,
        "the offer must arrive unchanged"
    );
    assert_eq!(
        c.call.ok_at_a.body_text(),
        sdp_b,
        "the answer must arrive unchanged"
    );
    let during = c
        .tandem
        .wait_status(c.since, Duration::from_secs(3), |s| s.get("calls") == 1);
    let (status, _) = during.unwrap_or_else(|e| panic!("no status line during the call: {e:?}"));
    assert_eq!(status.get("media_sessions"), 0, "{}", status.line);
    assert_eq!(status.get("media_ports"), 0, "{}", status.line);
    hangup(&mut c.a, &mut c.call.a, &mut c.b);
    c.tandem.assert_idle(Duration::from_secs(5));
}

#[test]
fn direct_media_leaves_the_sdp_alone() {
    direct(CallConfig::new().media("mode = \"direct\""));
}

#[test]
fn route_with_direct_media_leaves_the_sdp_alone() {
    let mut b = Ua::callee("bob", SippTransport::Udp);
    let tandem = CallConfig::new()
        .route_full("", &[b.target()], "serial", 10, &["media = \"direct\""])
        .start();
    let mut a = Ua::caller("alice", SippTransport::Udp, &tandem);
    let sdp_a = sdp(41_000, &[]);
    let sdp_b = sdp(43_000, &[]);
    let mut call = establish(&mut a, &mut b, "bob", &sdp_a, &sdp_b);
    assert_eq!(call.invite_at_b.body_text(), sdp_a);
    assert_eq!(call.ok_at_a.body_text(), sdp_b);
    hangup(&mut a, &mut call.a, &mut b);
    tandem.assert_idle(Duration::from_secs(5));
}

/// A re-INVITE that the far end refuses leaves the session as it was
/// (RFC 3261 §14.1: "the session parameters MUST remain unchanged, as if no
/// re-INVITE had been issued"): media keeps going to the old address.
#[test]
fn refused_reinvite_leaves_the_media_where_it_was() {
    let ra = RtpSock::bind(false);
    let moved = RtpSock::bind(false);
    let rb = RtpSock::bind(false);
    let mut c = media_call(
        SippTransport::Udp,
        CallConfig::new(),
        &sdp(ra.port, &[]),
        &sdp(rb.port, &[]),
    );
    let anchor_a = sdp_audio(&c.call.ok_at_a.body_text());
    let anchor_b = sdp_audio(&c.call.invite_at_b.body_text());
    stream(&ra.rtp, anchor_a, &rb.rtp, anchor_b, 0xA1, 3);
    stream(&rb.rtp, anchor_b, &ra.rtp, anchor_a, 0xB1, 3);

    // A offers to move its media; B refuses.
    let req = c.a.request(
        &mut c.call.a,
        "INVITE",
        &[],
        Some(("application/sdp", &sdp(moved.port, &[]))),
    );
    let got = c.b.expect_request("INVITE");
    c.b.respond(&got, 488, "Not Acceptable Here", &[], None);
    let resp = c.a.finish_invite(&c.call.a, &req);
    assert_eq!(resp.status(), 488, "{}", resp.text());
    c.b.expect_request("ACK");

    // B's media still reaches A where the session said.
    for i in 0..3u16 {
        let pkt = rtp_packet(0, 500 + i, 0, 0xB1, &[i as u8; 20]);
        rb.rtp.send_to(&pkt, anchor_b).expect("send RTP");
        let at_old = recv_on(&ra.rtp, Duration::from_millis(700));
        if at_old.is_none() {
            let went = match recv_on(&moved.rtp, Duration::from_millis(100)) {
                Some(_) => format!(
                    "it went to 127.0.0.1:{}, the refused offer's address",
                    moved.port
                ),
                None => "it went nowhere we listen".to_string(),
            };
            panic!(
                "after a 488 to A's re-INVITE, B's RTP no longer reaches A at 127.0.0.1:{}, \
                 the address of the session in force: {went}",
                ra.port
            );
        }
        assert_eq!(at_old.map(|(p, _)| p), Some(pkt));
    }
    hangup(&mut c.a, &mut c.call.a, &mut c.b);
    c.tandem.assert_idle(Duration::from_secs(5));
}

/// A re-INVITE that moves B's media (new port) is honoured: A's RTP goes to
/// the new address, through the same tandem ports.
#[test]
fn reinvite_moves_the_media_to_the_new_address() {
    let ra = RtpSock::bind(false);
    let rb = RtpSock::bind(false);
    let rb2 = RtpSock::bind(false);
    let mut c = media_call(
        SippTransport::Udp,
        CallConfig::new(),
        &sdp(ra.port, &[]),
        &sdp(rb.port, &[]),
    );
    let anchor_a = sdp_audio(&c.call.ok_at_a.body_text());
    let anchor_b = sdp_audio(&c.call.invite_at_b.body_text());
    stream(&rb.rtp, anchor_b, &ra.rtp, anchor_a, 0xB1, 3);
    stream(&ra.rtp, anchor_a, &rb.rtp, anchor_b, 0xA1, 3);

    let req = c.b.request(
        &mut c.call.b,
        "INVITE",
        &[],
        Some(("application/sdp", &sdp(rb2.port, &[]))),
    );
    let got = c.a.expect_request("INVITE");
    assert_eq!(
        sdp_audio(&got.body_text()),
        anchor_a,
        "same tandem port facing A"
    );
    c.a.respond(
        &got,
        200,
        "OK",
        &[],
        Some(("application/sdp", &sdp(ra.port, &[]))),
    );
    let resp = c.b.finish_invite(&c.call.b, &req);
    assert_eq!(resp.status(), 200, "{}", resp.text());
    assert_eq!(
        sdp_audio(&resp.body_text()),
        anchor_b,
        "same tandem port facing B"
    );
    c.a.expect_request("ACK");
    stream(&ra.rtp, anchor_a, &rb2.rtp, anchor_b, 0xA2, 5);
    stream(&rb2.rtp, anchor_b, &ra.rtp, anchor_a, 0xB2, 5);
    hangup(&mut c.b, &mut c.call.b, &mut c.a);
    c.tandem.assert_idle(Duration::from_secs(5));
}

/// 183 with SDP (early media): A gets the 183 with tandem's SDP, and B's
/// RTP reaches A before the answer.
#[test]
fn early_media_flows_before_the_answer() {
    let ra = RtpSock::bind(false);
    let rb = RtpSock::bind(false);
    let mut b = Ua::callee("bob", SippTransport::Udp);
    let tandem = CallConfig::new().route("", &[b.target()]).start();
    let mut a = Ua::caller("alice", SippTransport::Udp, &tandem);
    let invite = a.invite("bob", Some(&sdp(ra.port, &[])), &[]);
    let at_b = b.expect_request("INVITE");
    let anchor_b = sdp_audio(&at_b.body_text());
    b.respond(
        &at_b,
        183,
        "Session Progress",
        &[],
        Some(("application/sdp", &sdp(rb.port, &[]))),
    );
    let progress = a.expect_response(&invite, "183", |m| m.status() == 183);
    let body = progress.body_text();
    assert!(!body.is_empty(), "183 without SDP:\n{}", progress.text());
    let anchor_a = sdp_audio(&body);
    assert_ne!(
        anchor_a.port(),
        rb.port,
        "early media not anchored:\n{body}"
    );
    stream(&rb.rtp, anchor_b, &ra.rtp, anchor_a, 0xEA71, 5);

    let mut b_dialog = b.answer(&at_b, &sdp(rb.port, &[]));
    let ok = a.expect_final(&invite);
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.to_tag(),
        progress.to_tag(),
        "183 and 200 in one dialog at A"
    );
    assert_eq!(sdp_audio(&ok.body_text()), anchor_a);
    let a_dialog = support::ua::Dialog::uac(&invite, &ok);
    a.ack(&a_dialog, &invite);
    b.expect_request("ACK");
    stream(&ra.rtp, anchor_a, &rb.rtp, anchor_b, 0xA1, 3);
    hangup(&mut b, &mut b_dialog, &mut a);
    tandem.assert_idle(Duration::from_secs(5));
}

/// With `inactivity_timeout_s = 1`, a call whose media is silent is hung up
/// on both legs; one whose media flows is not.
#[test]
fn silent_media_ends_the_call_and_flowing_media_keeps_it() {
    let config = || CallConfig::new().media("inactivity_timeout_s = 1");

    // Silent: BYE on both legs within a few seconds.
    let mut c = media_call(
        SippTransport::Udp,
        config(),
        &sdp(41_000, &[]),
        &sdp(43_000, &[]),
    );
    for ua in [&mut c.a, &mut c.b] {
        let bye = ua
            .wait_for(Duration::from_secs(4), |m| m.is_request("BYE"))
            .unwrap_or_else(|| panic!("{}: no BYE for a call without media", ua.user));
        ua.respond(&bye, 200, "OK", &[], None);
    }
    c.tandem.assert_idle(Duration::from_secs(4));

    // Flowing: no BYE while RTP goes both ways for 2.5 s.
    let ra = RtpSock::bind(false);
    let rb = RtpSock::bind(false);
    let mut c = media_call(
        SippTransport::Udp,
        config(),
        &sdp(ra.port, &[]),
        &sdp(rb.port, &[]),
    );
    let anchor_a = sdp_audio(&c.call.ok_at_a.body_text());
    let anchor_b = sdp_audio(&c.call.invite_at_b.body_text());
    for i in 0..25u32 {
        stream(&ra.rtp, anchor_a, &rb.rtp, anchor_b, 0xA000 + i, 1);
        stream(&rb.rtp, anchor_b, &ra.rtp, anchor_a, 0xB000 + i, 1);
        std::thread::sleep(Duration::from_millis(100));
    }
    c.a.expect_none(Duration::from_millis(10), "BYE while media flows", |m| {
        m.is_request("BYE")
    });
    c.b.expect_none(Duration::from_millis(10), "BYE while media flows", |m| {
        m.is_request("BYE")
    });
    hangup(&mut c.a, &mut c.call.a, &mut c.b);
    c.tandem.assert_idle(Duration::from_secs(5));
}

/// Hold the RFC 2543 way (`c=IN IP4 0.0.0.0`): the far end still sees
/// tandem's address (topology unchanged) with the direction passed
/// through, nothing is sent to the held side, and a resume with a real
/// address brings the media back.
#[test]
fn hold_with_a_null_address_and_resume() {
    let ra = RtpSock::bind(false);
    let rb = RtpSock::bind(false);
    let mut c = media_call(
        SippTransport::Udp,
        CallConfig::new(),
        &sdp(ra.port, &[]),
        &sdp(rb.port, &[]),
    );
    let anchor_a = sdp_audio(&c.call.ok_at_a.body_text());
    let anchor_b = sdp_audio(&c.call.invite_at_b.body_text());
    stream(&rb.rtp, anchor_b, &ra.rtp, anchor_a, 0xB1, 2);

    let held = sdp(ra.port, &["a=sendonly"]).replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
    for (offer, dir) in [(held, "sendonly"), (sdp(ra.port, &[]), "sendrecv")] {
        let req = c.a.request(
            &mut c.call.a,
            "INVITE",
            &[],
            Some(("application/sdp", &offer)),
        );
        let got = c.b.expect_request("INVITE");
        let body = got.body_text();
        assert_eq!(sdp_audio(&body), anchor_b, "{body}");
        assert_eq!(support::ua::sdp_direction(&body), dir, "{body}");
        let answer_dir = if dir == "sendonly" {
            "a=recvonly"
        } else {
            "a=sendrecv"
        };
        c.b.respond(
            &got,
            200,
            "OK",
            &[],
            Some(("application/sdp", &sdp(rb.port, &[answer_dir]))),
        );
        let resp = c.a.finish_invite(&c.call.a, &req);
        assert_eq!(resp.status(), 200, "{}", resp.text());
        c.b.expect_request("ACK");
        let pkt = rtp_packet(0, 900, 0, 0xB2, &[7; 40]);
        rb.rtp.send_to(&pkt, anchor_b).expect("send RTP");
        let got = recv_on(&ra.rtp, Duration::from_millis(600));
        if dir == "sendonly" {
            assert!(got.is_none(), "RTP sent to a side on hold with c=0.0.0.0");
        } else {
            assert_eq!(got.map(|(p, _)| p), Some(pkt), "no RTP after the resume");
        }
    }
    hangup(&mut c.a, &mut c.call.a, &mut c.b);
    c.tandem.assert_idle(Duration::from_secs(5));
}
