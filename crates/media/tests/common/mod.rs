//! Helpers shared by the media integration tests: engines on random port
//! ranges (tests run in parallel and never use fixed ports), SDP bodies and
//! UDP "phones" on loopback.

#![allow(dead_code, unreachable_pub)]

use media::{MediaConfig, MediaEngine, MediaSession, Side};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

/// How long a test waits for a packet that should arrive.
pub const ARRIVES: Duration = Duration::from_secs(2);
/// How long a test waits to be sure a packet does not arrive.
pub const SILENT: Duration = Duration::from_millis(150);

/// A config with `pairs` port pairs at a random even base in 10000–19999:
/// below the kernel's ephemeral range (32768–60999 by default, where every
/// `bind(0)` of every test lands) and below Tandem's default media range.
pub fn config(pairs: u16) -> MediaConfig {
    let base = 10_000 + 2 * rand::random_range(0..4_900u16);
    MediaConfig {
        port_min: base,
        port_max: base + 2 * pairs - 1,
        ..MediaConfig::default()
    }
}

/// An engine on loopback with 64 port pairs.
pub fn engine() -> MediaEngine {
    MediaEngine::new(config(64))
}

/// A one-stream audio SDP pointing at `rtp` (RTCP implicitly at +1).
pub fn audio_sdp(user: &str, rtp: SocketAddr, version: u32) -> String {
    let (ip, addrtype) = match rtp {
        SocketAddr::V4(a) => (a.ip().to_string(), "IP4"),
        SocketAddr::V6(a) => (a.ip().to_string(), "IP6"),
    };
    format!(
        "v=0\r\n\
         o={user} 1000 {version} IN {addrtype} {ip}\r\n\
         s=-\r\n\
         c=IN {addrtype} {ip}\r\n\
         t=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\n\
         a=ptime:20\r\n\
         a=sendrecv\r\n",
        port = rtp.port()
    )
}

/// A softphone's media end: an RTP socket and an RTCP socket at RTP + 1
/// (or wherever the kernel put it, for tests that say so in `a=rtcp`).
pub struct Phone {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
}

impl Phone {
    /// Binds an RTP/RTCP pair on 127.0.0.1 (retrying until RTP+1 is free).
    pub async fn new() -> Phone {
        Phone::on("127.0.0.1").await
    }

    pub async fn on(ip: &str) -> Phone {
        for _ in 0..100 {
            let rtp = UdpSocket::bind((ip, 0)).await.unwrap();
            let port = rtp.local_addr().unwrap().port();
            if port == u16::MAX {
                continue;
            }
            if let Ok(rtcp) = UdpSocket::bind((ip, port + 1)).await {
                return Phone { rtp, rtcp };
            }
        }
        panic!("no free RTP/RTCP pair");
    }

    pub fn addr(&self) -> SocketAddr {
        self.rtp.local_addr().unwrap()
    }

    pub fn rtcp_addr(&self) -> SocketAddr {
        self.rtcp.local_addr().unwrap()
    }
}

/// The next datagram on `sock` and its source, within [`ARRIVES`].
pub async fn recv(sock: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 65_536];
    let (n, from) = tokio::time::timeout(ARRIVES, sock.recv_from(&mut buf))
        .await
        .expect("a packet should have arrived")
        .unwrap();
    buf.truncate(n);
    (buf, from)
}

/// Whether nothing arrives on `sock` within [`SILENT`].
pub async fn silent(sock: &UdpSocket) -> bool {
    let mut buf = vec![0u8; 65_536];
    tokio::time::timeout(SILENT, sock.recv_from(&mut buf))
        .await
        .is_err()
}

/// An RTP packet: PCMU, the given SSRC and sequence, a payload derived from
/// both so any corruption shows.
pub fn rtp_packet(ssrc: u32, seq: u16) -> Vec<u8> {
    let mut p = vec![0u8; 172];
    p[0] = 0x80;
    p[1] = 0;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    for (i, b) in p[12..].iter_mut().enumerate() {
        *b = (ssrc as u8).wrapping_mul(31) ^ (seq as u8) ^ (i as u8);
    }
    p
}

/// An RTCP receiver report (empty) from `ssrc`.
pub fn rtcp_packet(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 201, 0, 1];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p
}

/// A session with A's offer and B's answer exchanged; returns the Tandem
/// addresses A and B must send RTP to.
pub async fn call(session: &MediaSession, a: &Phone, b: &Phone) -> (SocketAddr, SocketAddr) {
    session
        .rewrite_sdp(Side::A, audio_sdp("a", a.addr(), 1).as_bytes())
        .await
        .unwrap();
    session
        .rewrite_sdp(Side::B, audio_sdp("b", b.addr(), 1).as_bytes())
        .await
        .unwrap();
    towards(session)
}

/// Tandem's first RTP addresses facing A and facing B.
pub fn towards(session: &MediaSession) -> (SocketAddr, SocketAddr) {
    let a = session.local_ports(Side::A)[0];
    let b = session.local_ports(Side::B)[0];
    (
        SocketAddr::from(([127, 0, 0, 1], a)),
        SocketAddr::from(([127, 0, 0, 1], b)),
    )
}
