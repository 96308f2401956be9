//! SIP over TCP (RFC 3261 §18.3, RFC 5626 §3.5.1): framing by
//! Content-Length, 400 / 513 then close, keep-alive pings, pipelining,
//! slow and idle clients, the connection cap, and IPv6.

#[path = "support/mod.rs"]
mod support;

use std::io::Write;
use std::time::{Duration, Instant};
use support::{Req, Tandem, TcpPeer, TcpRead, UdpPeer, ipv6_available, param};

fn opts(peer: &TcpPeer) -> Req {
    peer.req("OPTIONS")
}

#[test]
fn missing_content_length_gets_400_then_close() {
    let tandem = Tandem::start();
    let mut tcp = TcpPeer::connect(tandem.tcp());
    let mut req = opts(&tcp);
    req.no_content_length = true;
    tcp.send_req(&req);
    let resp = tcp.expect();
    assert_eq!(resp.status(), 400, "{}", resp.text());
    assert!(resp.reason().starts_with("Bad Request ("), "{}", resp.start);
    assert_eq!(resp.header("Call-ID"), Some(req.get("Call-ID")));
    let (closed, rest) = tcp.wait_closed(Duration::from_secs(3));
    assert!(closed.is_some(), "connection still open after the 400");
    assert!(rest.is_empty(), "nothing after the 400: {rest:?}");
    // The listener is fine.
    let mut again = TcpPeer::connect(tandem.tcp());
    let req = opts(&again);
    assert_eq!(again.transact(&req).status(), 200);
}

const SMALL: &str = "[sip]\nmax_message_size = 2048\ntcp_message_timeout_s = 1\n";

#[test]
fn oversized_message_gets_513_then_close() {
    // RFC 3261 §18.3 / §21.5.14: a message longer than the server accepts is
    // answered 513 (Message Too Large), and the stream is closed.
    let tandem = Tandem::with_config(SMALL);
    // Headers that announce a body beyond max_message_size: the framer
    // knows at once; nothing of the body is sent, so the server's close
    // cannot turn into a reset of unread data.
    let mut tcp = TcpPeer::connect(tandem.tcp());
    let req = opts(&tcp).body("text/plain", "");
    let mut head = String::from_utf8(req.to_bytes()).unwrap();
    head = head.replace("Content-Length: 0\r\n", "Content-Length: 5000\r\n");
    tcp.send(head.as_bytes());
    let resp = tcp.expect();
    assert_eq!(resp.status(), 513, "{}", resp.text());
    assert_eq!(resp.header("Call-ID"), Some(req.get("Call-ID")));
    let (closed, _) = tcp.wait_closed(Duration::from_secs(3));
    assert!(closed.is_some(), "connection still open after the 513");
}

#[test]
fn oversized_header_section_gets_513_then_close() {
    let tandem = Tandem::with_config(SMALL);
    let mut tcp = TcpPeer::connect(tandem.tcp());
    let req = opts(&tcp);
    let full = req.to_bytes();
    // The start line and the first headers, then 3 KB of one header that
    // never ends: more than max_message_size without an empty line.
    let mut data = full[..full.len() - 2].to_vec();
    data.extend_from_slice(b"X-Filler: ");
    data.extend(std::iter::repeat_n(b'x', 3000));
    tcp.send(&data);
    match tcp.read(Duration::from_secs(3)) {
        TcpRead::Msg(m) => {
            assert_eq!(m.status(), 513, "{}", m.text());
            let (closed, _) = tcp.wait_closed(Duration::from_secs(3));
            assert!(closed.is_some(), "connection still open after the 513");
        }
        other => panic!("expected 513 then close, got {other:?}"),
    }
}

#[test]
fn message_of_exactly_max_size_is_accepted() {
    let tandem = Tandem::with_config(SMALL);
    let mut tcp = TcpPeer::connect(tandem.tcp());
    let mut req = opts(&tcp).body("text/plain", "");
    let len = req.to_bytes().len();
    // Grow the body until the whole message is 2048 octets.
    let mut body_len = 2048 - len;
    loop {
        req.body = vec![b'a'; body_len];
        let n = req.to_bytes().len();
        if n == 2048 {
            break;
        }
        body_len -= n - 2048;
    }
    assert_eq!(tcp.transact(&req).status(), 200);
}

#[test]
fn slow_client_blocks_nobody_and_is_cut_after_the_message_timeout() {
    let tandem = Tandem::with_config(SMALL);
    // Half a message, then silence.
    let mut slow = TcpPeer::connect(tandem.tcp());
    let half = opts(&slow).to_bytes();
    slow.send(&half[..half.len() / 2]);
    let started = Instant::now();

    // Meanwhile another TCP client and a UDP client are served.
    let mut tcp = TcpPeer::connect(tandem.tcp());
    for _ in 0..3 {
        let req = opts(&tcp);
        assert_eq!(tcp.transact(&req).status(), 200);
    }
    let udp = UdpPeer::new(tandem.udp());
    let req = udp.req("OPTIONS");
    assert_eq!(udp.transact(&req).status(), 200);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "others were held up"
    );

    // tcp_message_timeout_s = 1: the half message's connection is closed.
    let (closed, data) = slow.wait_closed(Duration::from_secs(4));
    let closed = closed.expect("the slow connection stays open");
    let total = started.elapsed();
    assert!(
        total >= Duration::from_millis(900) && total <= Duration::from_millis(2500),
        "closed after {total:?} (closed {closed:?} into the wait), want about 1 s"
    );
    assert!(
        data.is_empty(),
        "nothing is answered to half a message: {data:?}"
    );
    // The other connection is still open and works.
    let req = opts(&tcp);
    assert_eq!(tcp.transact(&req).status(), 200);
}

#[test]
fn a_trickling_client_is_cut_too() {
    // A byte every 200 ms resets no timer: the message must be complete
    // within tcp_message_timeout_s of its first octet.
    let tandem = Tandem::with_config(SMALL);
    let mut slow = TcpPeer::connect(tandem.tcp());
    let data = opts(&slow).to_bytes();
    let started = Instant::now();
    let mut closed = false;
    for b in data.iter().take(20) {
        if slow.stream.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        if let (Some(_), _) = slow.wait_closed(Duration::from_millis(200)) {
            closed = true;
            break;
        }
    }
    assert!(closed, "a 20-octet trickle over 4 s was not cut");
    let t = started.elapsed();
    assert!(
        t <= Duration::from_millis(2500),
        "cut after {t:?}, want about 1 s"
    );
}

#[test]
fn crlf_ping_gets_crlf_pong() {
    let tandem = Tandem::start();
    let mut tcp = TcpPeer::connect(tandem.tcp());
    for _ in 0..3 {
        tcp.send(b"\r\n\r\n");
        let pong = tcp.read_raw(Duration::from_secs(2)).expect("no pong");
        assert_eq!(pong, b"\r\n", "RFC 5626 §3.5.1: the pong is one CRLF");
    }
    // A single CRLF (a pong or keep-alive) wants no answer.
    tcp.send(b"\r\n");
    assert!(tcp.read_raw(Duration::from_millis(300)).is_none());
    // And the connection still carries SIP.
    let req = opts(&tcp);
    assert_eq!(tcp.transact(&req).status(), 200);
}

#[test]
fn pipelined_requests_get_every_answer() {
    let tandem = Tandem::start();
    let mut tcp = TcpPeer::connect(tandem.tcp());
    let a = opts(&tcp);
    let b = opts(&tcp).body("text/plain", "a body in the middle");
    let c = tcp.req("BYE");
    let mut data = a.to_bytes();
    data.extend_from_slice(b"\r\n\r\n");
    data.extend(b.to_bytes());
    data.extend(c.to_bytes());
    tcp.send(&data);
    let mut got = Vec::new();
    while got.len() < 3 {
        match tcp.read(Duration::from_secs(3)) {
            TcpRead::Msg(m) => got.push(m),
            other => panic!("after {} answers: {other:?}", got.len()),
        }
    }
    for (req, code) in [(&a, 200), (&b, 200), (&c, 481)] {
        let resp = got
            .iter()
            .find(|m| m.header("Call-ID") == Some(req.get("Call-ID")))
            .unwrap_or_else(|| panic!("no answer to {}", req.get("Call-ID")));
        assert_eq!(resp.status(), code);
        req.assert_answered_by(resp);
    }
}

#[test]
fn two_options_in_one_write_get_two_200s() {
    let tandem = Tandem::start();
    let mut tcp = TcpPeer::connect(tandem.tcp());
    let a = opts(&tcp);
    let b = opts(&tcp);
    let mut data = a.to_bytes();
    data.extend(b.to_bytes());
    tcp.send(&data);
    let first = tcp.expect();
    let second = tcp.expect();
    assert_eq!((first.status(), second.status()), (200, 200));
    // In order: one connection, one reader.
    a.assert_answered_by(&first);
    b.assert_answered_by(&second);
}

#[test]
fn message_split_across_writes_is_reassembled() {
    let tandem = Tandem::start();
    let mut tcp = TcpPeer::connect(tandem.tcp());
    let req = opts(&tcp).body("text/plain", "split body");
    let data = req.to_bytes();
    for chunk in data.chunks(7) {
        tcp.send(chunk);
        std::thread::sleep(Duration::from_millis(2));
    }
    let resp = tcp.expect_final();
    assert_eq!(resp.status(), 200);
    req.assert_answered_by(&resp);
}

#[test]
fn idle_connection_is_closed() {
    let tandem = Tandem::with_config("[sip]\ntcp_idle_timeout_s = 1\n");
    let mut tcp = TcpPeer::connect(tandem.tcp());
    let req = opts(&tcp);
    assert_eq!(tcp.transact(&req).status(), 200);
    let started = Instant::now();
    let (closed, _) = tcp.wait_closed(Duration::from_secs(4));
    assert!(closed.is_some(), "idle connection still open after 4 s");
    let t = started.elapsed();
    assert!(t >= Duration::from_millis(700), "closed too early: {t:?}");
}

#[test]
fn connections_beyond_the_cap_are_refused() {
    let tandem = Tandem::with_config("[sip]\nmax_tcp_connections = 2\n");
    let mut a = TcpPeer::connect(tandem.tcp());
    let mut b = TcpPeer::connect(tandem.tcp());
    // Both are registered once they have been served.
    let req = opts(&a);
    assert_eq!(a.transact(&req).status(), 200);
    let req = opts(&b);
    assert_eq!(b.transact(&req).status(), 200);
    // The third is accepted by the kernel and closed by tandem.
    let mut c = TcpPeer::connect(tandem.tcp());
    let (closed, data) = c.wait_closed(Duration::from_secs(3));
    assert!(closed.is_some(), "a third connection was kept");
    assert!(data.is_empty());
    assert!(
        tandem.wait_for_log(Duration::from_secs(2), |l| l
            .iter()
            .any(|l| l.contains("TCP connection refused: limit reached."))),
        "{}",
        tandem.log_text()
    );
    // The first two still work; once one closes, a new one is served.
    let req = opts(&a);
    assert_eq!(a.transact(&req).status(), 200);
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut d = TcpPeer::connect(tandem.tcp());
        let req = opts(&d);
        d.send_req(&req);
        match d.read(Duration::from_millis(500)) {
            TcpRead::Msg(m) => {
                assert_eq!(m.status(), 200);
                break;
            }
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            other => panic!("a slot freed by a closed connection is not reused: {other:?}"),
        }
    }
}

#[test]
fn responses_go_back_on_the_same_connection() {
    // §18.2.2: over TCP the response uses the request's connection, whatever
    // the Via says (here a sent-by port nobody listens on).
    let tandem = Tandem::start();
    let mut tcp = TcpPeer::connect(tandem.tcp());
    let req = opts(&tcp).set(
        "Via",
        &format!(
            "SIP/2.0/TCP client.invalid:9;branch={}",
            support::unique("z9hG4bK")
        ),
    );
    let resp = tcp.transact(&req);
    assert_eq!(resp.status(), 200);
    let via = resp.must("Via");
    assert_eq!(
        param(via, "received").as_deref(),
        Some("127.0.0.1"),
        "{via}"
    );
}

#[test]
fn ipv6_over_udp_and_tcp() {
    if !ipv6_available() {
        eprintln!("skipped: ::1 cannot be bound here");
        return;
    }
    let tandem = Tandem::builder()
        .listen(&["udp:[::1]:0", "tcp:[::1]:0"])
        .start();
    assert!(tandem.udp().is_ipv6() && tandem.tcp().is_ipv6());

    // UDP with rport: received and rport are filled in (RFC 3581 §4).
    let udp = UdpPeer::new(tandem.udp());
    let req = udp.req("OPTIONS");
    assert!(req.get("Via").starts_with("SIP/2.0/UDP [::1]:"));
    let resp = udp.transact(&req);
    assert_eq!(resp.status(), 200);
    let via = resp.must("Via");
    assert_eq!(
        param(via, "rport"),
        Some(udp.local.port().to_string()),
        "{via}"
    );
    let received = param(via, "received").expect("received");
    assert_eq!(
        received.trim_matches(|c| c == '[' || c == ']'),
        "::1",
        "{via}"
    );

    // TCP with a host name: received is added, no rport asked, none given.
    let mut tcp = TcpPeer::connect(tandem.tcp());
    let req = tcp.req("OPTIONS").set(
        "Via",
        &format!(
            "SIP/2.0/TCP client.invalid;branch={}",
            support::unique("z9hG4bK")
        ),
    );
    let resp = tcp.transact(&req);
    assert_eq!(resp.status(), 200);
    let via = resp.must("Via");
    let received = param(via, "received").expect("received");
    assert_eq!(
        received.trim_matches(|c| c == '[' || c == ']'),
        "::1",
        "{via}"
    );
    assert_eq!(param(via, "rport"), None, "{via}");

    // And an INVITE over IPv6 UDP is rejected like over IPv4.
    let invite = udp.req("INVITE").sdp();
    let resp = udp.transact(&invite);
    assert_eq!(resp.status(), 404);
    udp.send_req(&invite.ack_for(&resp));
}

#[test]
fn framed_but_malformed_request_gets_400_and_the_connection_stays() {
    // Framing is intact (Content-Length is right), only a header is bad:
    // 400 for that request, and the stream goes on.
    let tandem = Tandem::start();
    let mut tcp = TcpPeer::connect(tandem.tcp());
    let bad = opts(&tcp).set("CSeq", "abc OPTIONS");
    tcp.send_req(&bad);
    let resp = tcp.expect();
    assert_eq!(resp.status(), 400, "{}", resp.text());
    assert!(resp.reason().contains("CSeq"), "{}", resp.start);
    let req = opts(&tcp);
    assert_eq!(tcp.transact(&req).status(), 200);
}
