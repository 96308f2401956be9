//! Every timer path of RFC 3261 §17 (and RFC 6026) on a paused clock:
//! the layer runs on real loopback sockets, time jumps from timer to timer.

use super::*;
use crate::message::{HeaderName, Message, Method, Uri, parse_datagram};
use crate::transport::{Inbound, Listen, Target, TransportConfig, TransportKind, Transports};
use bytes::Bytes;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

struct Harness {
    layer: TxLayer,
    tu: mpsc::Receiver<TuEvent>,
    peer: UdpSocket,
    addr: SocketAddr,
}

async fn harness_with(timers: TimerConfig) -> Harness {
    let (in_tx, in_rx) = mpsc::channel::<Inbound>(64);
    let listen: Listen = "udp:127.0.0.1:0".parse().unwrap();
    let transports = Transports::bind(&[listen], TransportConfig::default(), in_tx)
        .await
        .unwrap();
    let addr = transports.listens()[0].addr;
    let config = LayerConfig {
        timers,
        ..LayerConfig::default()
    };
    let (layer, tu) = TxLayer::spawn(transports, in_rx, config);
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    Harness {
        layer,
        tu,
        peer,
        addr,
    }
}

async fn harness() -> Harness {
    harness_with(TimerConfig::default()).await
}

impl Harness {
    fn peer_addr(&self) -> SocketAddr {
        self.peer.local_addr().unwrap()
    }

    async fn send(&self, text: &str) {
        self.peer.send_to(text.as_bytes(), self.addr).await.unwrap();
    }

    /// Every datagram the peer has received so far.
    fn drain(&self) -> Vec<Message> {
        let mut buf = [0u8; 65536];
        let mut out = Vec::new();
        while let Ok((n, _)) = self.peer.try_recv_from(&mut buf) {
            out.push(parse_datagram(Bytes::copy_from_slice(&buf[..n])).unwrap());
        }
        out
    }

    async fn recv(&self) -> Message {
        let mut buf = [0u8; 65536];
        let (n, _) = self.peer.recv_from(&mut buf).await.unwrap();
        parse_datagram(Bytes::copy_from_slice(&buf[..n])).unwrap()
    }

    async fn next_request(&mut self) -> (Message, ServerTx) {
        match self.tu.recv().await {
            Some(TuEvent::Request { request, tx, .. }) => (request, tx),
            other => panic!("expected a request, got {other:?}"),
        }
    }

    fn target(&self) -> Target {
        Target::new(TransportKind::Udp, self.peer_addr())
    }
}

fn request(method: &str, branch: &str, peer: SocketAddr) -> String {
    format!(
        "{method} sip:bob@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP {peer};branch={branch}\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@127.0.0.1>;tag=a1\r\n\
To: <sip:bob@127.0.0.1>\r\n\
Call-ID: call-{branch}\r\n\
CSeq: 1 {method}\r\n\
Content-Length: 0\r\n\r\n"
    )
}

fn outgoing(method: Method) -> Message {
    let mut m = Message::request(method.clone(), Uri::parse("sip:bob@127.0.0.1").unwrap());
    m.headers
        .push(HeaderName::From, "<sip:tandem@127.0.0.1>;tag=t1");
    m.headers.push(HeaderName::To, "<sip:bob@127.0.0.1>");
    m.headers.push(HeaderName::CallId, "out-1");
    m.headers.push(HeaderName::CSeq, format!("1 {method}"));
    m.headers.push(HeaderName::MaxForwards, "70");
    m
}

fn answer(req: &Message, code: u16) -> String {
    let resp = Message::response_to(req, code, "X", Some("peer"));
    String::from_utf8(resp.to_bytes().to_vec()).unwrap()
}

fn codes(msgs: &[Message]) -> Vec<u16> {
    msgs.iter().map(|m| m.code().unwrap_or(0)).collect()
}

#[tokio::test(start_paused = true)]
async fn invite_client_doubles_timer_a_until_timer_b() {
    let h = harness().await;
    let start = Instant::now();
    let mut tx = h.layer.send_request(outgoing(Method::Invite), h.target());
    assert!(matches!(tx.next().await, Some(ClientEvent::Timeout)));
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(32) && elapsed < Duration::from_millis(32_100),
        "{elapsed:?}"
    );
    // Sent at 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s.
    assert_eq!(h.drain().len(), 7);
    assert_eq!(h.layer.stats().await, LayerStats::default());
}

#[tokio::test(start_paused = true)]
async fn non_invite_client_caps_timer_e_at_t2_until_timer_f() {
    let h = harness().await;
    let mut tx = h.layer.send_request(outgoing(Method::Options), h.target());
    assert!(matches!(tx.next().await, Some(ClientEvent::Timeout)));
    // 0, .5, 1.5, 3.5, 7.5, then every 4 s: 11.5 ... 31.5.
    assert_eq!(h.drain().len(), 11);
}

#[tokio::test(start_paused = true)]
async fn non_invite_client_retransmits_at_t2_once_proceeding_and_ends_with_k() {
    let h = harness().await;
    let mut tx = h.layer.send_request(outgoing(Method::Options), h.target());
    let req = h.recv().await;
    h.send(&answer(&req, 100)).await;
    assert!(matches!(tx.next().await, Some(ClientEvent::Response(r)) if r.code() == Some(100)));
    // In Proceeding, Timer E fires every T2.
    tokio::time::sleep(Duration::from_millis(8_600)).await;
    let n = h.drain().len();
    assert!((2..=3).contains(&n), "{n} retransmissions in 8.6 s");
    h.send(&answer(&req, 200)).await;
    assert!(matches!(tx.next().await, Some(ClientEvent::Response(r)) if r.code() == Some(200)));
    // A retransmitted 200 is absorbed in Completed; Timer K (T4) ends it.
    h.send(&answer(&req, 200)).await;
    tokio::time::sleep(Duration::from_millis(5_100)).await;
    assert!(tx.next().await.is_none(), "no second delivery, then closed");
    assert_eq!(h.layer.stats().await, LayerStats::default());
}

#[tokio::test(start_paused = true)]
async fn invite_client_acks_failures_and_absorbs_them_until_timer_d() {
    let h = harness().await;
    let mut tx = h.layer.send_request(outgoing(Method::Invite), h.target());
    let invite = h.recv().await;
    h.send(&answer(&invite, 486)).await;
    assert!(matches!(tx.next().await, Some(ClientEvent::Response(r)) if r.code() == Some(486)));
    let ack = h.recv().await;
    assert_eq!(ack.method(), Some(&Method::Ack));
    assert_eq!(
        ack.header(&HeaderName::Via),
        invite.header(&HeaderName::Via),
        "same branch"
    );
    assert_eq!(ack.to_tag().as_deref(), Some(&b"peer"[..]));
    // The retransmitted 486 gets the ACK again and is not delivered again.
    h.send(&answer(&invite, 486)).await;
    let again = h.recv().await;
    assert_eq!(again.method(), Some(&Method::Ack));
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert_eq!(h.layer.stats().await.client, 1, "Timer D is at least 32 s");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(tx.next().await.is_none());
    assert_eq!(h.layer.stats().await, LayerStats::default());
}

#[tokio::test(start_paused = true)]
async fn invite_client_passes_every_2xx_until_timer_m() {
    let h = harness().await;
    let mut tx = h.layer.send_request(outgoing(Method::Invite), h.target());
    let invite = h.recv().await;
    h.send(&answer(&invite, 200)).await;
    h.send(&answer(&invite, 200)).await;
    for _ in 0..2 {
        assert!(matches!(tx.next().await, Some(ClientEvent::Response(r)) if r.code() == Some(200)));
    }
    tokio::time::sleep(Duration::from_millis(32_100)).await;
    assert!(tx.next().await.is_none(), "Timer M ended it");
    assert!(
        h.drain().is_empty(),
        "no ACK from the transaction for a 2xx, no retransmission"
    );
}

#[tokio::test(start_paused = true)]
async fn invite_server_sends_100_and_retransmits_final_with_g_until_h() {
    let mut h = harness().await;
    h.send(&request("INVITE", "z9hG4bKs1", h.peer_addr())).await;
    let (_, tx) = h.next_request().await;
    assert_eq!(codes(&[h.recv().await]), vec![100]);
    tx.reply(486, "Busy Here");
    let start = Instant::now();
    match h.tu.recv().await {
        Some(TuEvent::AckTimeout { invite }) => assert_eq!(&invite, tx.key()),
        other => panic!("{other:?}"),
    }
    assert!(start.elapsed() >= Duration::from_secs(32));
    let sent = h.drain();
    // 0, .5, 1.5, 3.5, 7.5, 11.5, ... 31.5: 11 copies.
    assert_eq!(codes(&sent), vec![486; 11]);
    assert!(
        sent.iter()
            .all(|m| m.to_tag().as_deref() == Some(tx.to_tag().as_bytes()))
    );
}

#[tokio::test(start_paused = true)]
async fn ack_confirms_a_failure_and_timer_i_ends_it() {
    let mut h = harness().await;
    let invite = request("INVITE", "z9hG4bKs2", h.peer_addr());
    h.send(&invite).await;
    let (_, tx) = h.next_request().await;
    tx.reply(404, "Not Found");
    let _trying = h.recv().await;
    let resp = h.recv().await;
    let ack = invite
        .replacen("INVITE sip", "ACK sip", 1)
        .replace("1 INVITE", "1 ACK")
        .replace(
            "To: <sip:bob@127.0.0.1>",
            &format!("To: <sip:bob@127.0.0.1>;tag={}", tx.to_tag()),
        );
    assert_eq!(resp.code(), Some(404));
    h.send(&ack).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(h.drain().is_empty(), "no retransmission after the ACK");
    assert_eq!(h.layer.stats().await.server, 1, "Confirmed until Timer I");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(h.layer.stats().await, LayerStats::default());
    assert!(h.tu.try_recv().is_err(), "the TU never sees a non-2xx ACK");
}

#[tokio::test(start_paused = true)]
async fn invite_retransmission_is_absorbed_and_gets_the_last_response() {
    let mut h = harness().await;
    let invite = request("INVITE", "z9hG4bKs3", h.peer_addr());
    h.send(&invite).await;
    let (_, tx) = h.next_request().await;
    assert_eq!(h.recv().await.code(), Some(100));
    tx.reply(180, "Ringing");
    assert_eq!(h.recv().await.code(), Some(180));
    h.send(&invite).await;
    assert_eq!(h.recv().await.code(), Some(180));
    assert!(h.tu.try_recv().is_err(), "the TU saw the INVITE once");
}

#[tokio::test(start_paused = true)]
async fn a_2xx_is_retransmitted_until_its_ack() {
    let mut h = harness().await;
    h.send(&request("INVITE", "z9hG4bKs4", h.peer_addr())).await;
    let (req, tx) = h.next_request().await;
    let _trying = h.recv().await;
    let mut ok = Message::response_to(&req, 200, "OK", Some(tx.to_tag()));
    ok.headers
        .push(HeaderName::Contact, "<sip:tandem@127.0.0.1>");
    tx.respond(ok);
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    assert_eq!(codes(&h.drain()), vec![200, 200, 200], "0, 0.5, 1.5 s");
    // The ACK of a 2xx has a branch of its own (RFC 3261 §17.1.1.3).
    let ack = request("ACK", "z9hG4bKother", h.peer_addr())
        .replace("call-z9hG4bKother", "call-z9hG4bKs4")
        .replace(
            "To: <sip:bob@127.0.0.1>",
            &format!("To: <sip:bob@127.0.0.1>;tag={}", tx.to_tag()),
        );
    h.send(&ack).await;
    match h.tu.recv().await {
        Some(TuEvent::Ack { request, .. }) => assert_eq!(request.method(), Some(&Method::Ack)),
        other => panic!("{other:?}"),
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(h.drain().is_empty(), "retransmissions stopped");
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert_eq!(
        h.layer.stats().await,
        LayerStats::default(),
        "Timer L ended it"
    );
    assert!(h.tu.try_recv().is_err(), "no AckTimeout after an ACK");
}

#[tokio::test(start_paused = true)]
async fn an_unacknowledged_2xx_reports_ack_timeout_after_timer_l() {
    let mut h = harness().await;
    h.send(&request("INVITE", "z9hG4bKs5", h.peer_addr())).await;
    let (_, tx) = h.next_request().await;
    tx.reply(200, "OK");
    match h.tu.recv().await {
        Some(TuEvent::AckTimeout { invite }) => assert_eq!(&invite, tx.key()),
        other => panic!("{other:?}"),
    }
    // 100, then the 200 at 0, .5, 1.5, 3.5, 7.5, 11.5 ... 31.5.
    let sent = codes(&h.drain());
    assert_eq!(sent[0], 100);
    assert_eq!(sent[1..], vec![200; 11]);
}

#[tokio::test(start_paused = true)]
async fn non_invite_server_absorbs_retransmissions_until_timer_j() {
    let mut h = harness().await;
    let msg = request("MESSAGE", "z9hG4bKs6", h.peer_addr());
    h.send(&msg).await;
    let (_, tx) = h.next_request().await;
    h.send(&msg).await; // in Trying: absorbed silently
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(h.drain().is_empty());
    tx.reply(200, "OK");
    assert_eq!(h.recv().await.code(), Some(200));
    h.send(&msg).await; // in Completed: answered again
    assert_eq!(h.recv().await.code(), Some(200));
    assert!(h.tu.try_recv().is_err());
    tokio::time::sleep(Duration::from_millis(32_100)).await;
    assert_eq!(h.layer.stats().await, LayerStats::default());
}

#[tokio::test(start_paused = true)]
async fn cancel_matches_the_invite_or_gets_481() {
    let mut h = harness().await;
    let invite = request("INVITE", "z9hG4bKs7", h.peer_addr());
    h.send(&invite).await;
    let (_, tx) = h.next_request().await;
    let _trying = h.recv().await;
    let cancel = request("CANCEL", "z9hG4bKs7", h.peer_addr());
    h.send(&cancel).await;
    let resp = h.recv().await;
    assert_eq!(resp.code(), Some(200));
    assert_eq!(resp.cseq().map(|c| c.method), Some(Method::Cancel));
    match h.tu.recv().await {
        Some(TuEvent::Cancelled { invite }) => assert_eq!(&invite, tx.key()),
        other => panic!("{other:?}"),
    }
    tx.reply(487, "Request Terminated");
    assert_eq!(h.recv().await.code(), Some(487));

    h.send(&request("CANCEL", "z9hG4bKnone", h.peer_addr()))
        .await;
    assert_eq!(h.recv().await.code(), Some(481));
}

#[tokio::test(start_paused = true)]
async fn rfc2543_requests_match_without_a_cookie() {
    let mut h = harness().await;
    let invite = request("INVITE", "old1", h.peer_addr());
    h.send(&invite).await;
    let (_, tx) = h.next_request().await;
    tx.reply(486, "Busy Here");
    let _ = h.recv().await;
    let _ = h.recv().await;
    // Same Via (no cookie): matched by Call-ID, CSeq, From tag and Via.
    let ack = invite
        .replacen("INVITE sip", "ACK sip", 1)
        .replace("1 INVITE", "1 ACK");
    h.send(&ack).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(h.drain().is_empty(), "the ACK stopped Timer G");
}

#[tokio::test(start_paused = true)]
async fn timers_follow_a_configured_t1() {
    let h = harness_with(TimerConfig {
        t1: Duration::from_millis(100),
        t2: Duration::from_millis(800),
        t4: Duration::from_secs(1),
    })
    .await;
    let start = Instant::now();
    let mut tx = h.layer.send_request(outgoing(Method::Invite), h.target());
    assert!(matches!(tx.next().await, Some(ClientEvent::Timeout)));
    let e = start.elapsed();
    assert!(
        e >= Duration::from_millis(6_400) && e < Duration::from_millis(6_500),
        "{e:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn requests_over_tcp_are_not_retransmitted() {
    let (in_tx, in_rx) = mpsc::channel::<Inbound>(64);
    let listen: Listen = "tcp:127.0.0.1:0".parse().unwrap();
    let transports = Transports::bind(&[listen], TransportConfig::default(), in_tx)
        .await
        .unwrap();
    let (layer, _tu) = TxLayer::spawn(transports, in_rx, LayerConfig::default());
    let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = Target::new(TransportKind::Tcp, server.local_addr().unwrap());
    let mut tx = layer.send_request(outgoing(Method::Options), target);
    let (mut conn, _) = server.accept().await.unwrap();
    assert!(matches!(tx.next().await, Some(ClientEvent::Timeout)));
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(
        Duration::from_millis(100),
        tokio::io::AsyncReadExt::read_buf(&mut conn, &mut buf),
    )
    .await;
    let text = String::from_utf8_lossy(&buf);
    assert_eq!(text.matches("OPTIONS sip:").count(), 1, "{text}");
}

#[tokio::test(start_paused = true)]
async fn options_and_uas_checks_are_answered_by_the_layer() {
    let mut h = harness().await;
    h.send(&request("OPTIONS", "z9hG4bKo1", h.peer_addr()))
        .await;
    let ok = h.recv().await;
    assert_eq!(ok.code(), Some(200));
    for name in [HeaderName::Allow, HeaderName::Accept, HeaderName::Supported] {
        assert!(ok.header(&name).is_some(), "{name}");
    }
    h.send(&request("FOO", "z9hG4bKo2", h.peer_addr())).await;
    let r = h.recv().await;
    assert_eq!(r.code(), Some(501));
    assert!(r.header(&HeaderName::Allow).is_some());
    h.send(
        &request("INVITE", "z9hG4bKo3", h.peer_addr())
            .replace("Max-Forwards: 70", "Max-Forwards: 0"),
    )
    .await;
    assert_eq!(h.recv().await.code(), Some(483));
    h.send(
        &request("INVITE", "z9hG4bKo4", h.peer_addr()).replace("Max-Forwards: 70", "Require: foo"),
    )
    .await;
    let r = h.recv().await;
    assert_eq!(r.code(), Some(420));
    assert_eq!(r.header_str(&HeaderName::Unsupported), Some("foo"));
    assert!(h.tu.try_recv().is_err(), "none of these reached the TU");
}

#[tokio::test(start_paused = true)]
async fn a_merged_request_gets_482() {
    let mut h = harness().await;
    h.send(&request("INVITE", "z9hG4bKm1", h.peer_addr()).replace("call-z9hG4bKm1", "merged"))
        .await;
    let (_, _tx) = h.next_request().await;
    assert_eq!(h.recv().await.code(), Some(100));
    // Same Call-ID, CSeq and From tag, another branch: forked upstream.
    h.send(&request("INVITE", "z9hG4bKm2", h.peer_addr()).replace("call-z9hG4bKm2", "merged"))
        .await;
    assert_eq!(h.recv().await.code(), Some(482));
    assert!(h.tu.try_recv().is_err());
}
