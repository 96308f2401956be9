//! OPTIONS pings (RFC 3261 §11) from SIPp over UDP and TCP, and from raw
//! sockets: every ping gets a 200 advertising Allow, Accept,
//! Accept-Encoding, Accept-Language and Supported.

#[path = "support/mod.rs"]
mod support;

use support::{SippTransport, Tandem, TcpPeer, UdpPeer, sipp};

const PINGS: u32 = 20;

fn sipp_pings(transport: SippTransport) {
    let tandem = Tandem::start();
    let target = match transport {
        SippTransport::Udp => tandem.udp(),
        SippTransport::Tcp => tandem.tcp(),
    };
    let run = sipp("options.xml", target, transport, PINGS, &[]);
    run.assert_success();
    // Every call's 200 passed the header checks and logged what it saw.
    let seen: Vec<&str> = run
        .logs
        .lines()
        .filter(|l| l.starts_with("OPTIONS 200"))
        .collect();
    assert_eq!(seen.len(), PINGS as usize, "SIPp log:\n{}", run.logs);
    for l in seen {
        assert!(l.contains("allow='INVITE"), "{l}");
        assert!(l.contains("accept='application/sdp'"), "{l}");
        assert!(l.contains("totag=';tag="), "{l}");
    }
}

#[test]
fn sipp_options_over_udp() {
    sipp_pings(SippTransport::Udp);
}

#[test]
fn sipp_options_over_tcp() {
    sipp_pings(SippTransport::Tcp);
}

fn assert_capabilities(resp: &support::Msg) {
    let text = resp.text();
    assert_eq!(resp.status(), 200, "{text}");
    let allow: Vec<&str> = resp.must("Allow").split(',').map(str::trim).collect();
    for m in ["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"] {
        assert!(allow.contains(&m), "Allow lacks {m}: {text}");
    }
    assert!(resp.must("Accept").contains("application/sdp"), "{text}");
    resp.must("Accept-Encoding");
    resp.must("Accept-Language");
    resp.must("Supported");
    assert!(
        resp.to_tag().is_some_and(|t| !t.is_empty()),
        "To tag: {text}"
    );
    // One message per datagram or frame: Content-Length is there and right.
    assert_eq!(
        resp.must("Content-Length"),
        resp.body.len().to_string(),
        "{text}"
    );
}

#[test]
fn raw_options_over_udp_and_tcp() {
    let tandem = Tandem::start();
    let udp = UdpPeer::new(tandem.udp());
    let req = udp.req("OPTIONS");
    let resp = udp.transact(&req);
    assert_capabilities(&resp);
    // Nothing else follows a non-INVITE final response.
    udp.expect_silence(std::time::Duration::from_millis(200));

    let mut tcp = TcpPeer::connect(tandem.tcp());
    let req = tcp.req("OPTIONS");
    let resp = tcp.transact(&req);
    assert_capabilities(&resp);
}

#[test]
fn options_with_max_forwards_zero_is_answered_by_the_endpoint() {
    // RFC 3261 §11.2 / RFC 4475 zeromf: OPTIONS addressed to this endpoint is
    // answered even with Max-Forwards: 0.
    let tandem = Tandem::start();
    let udp = UdpPeer::new(tandem.udp());
    let req = udp.req("OPTIONS").set("Max-Forwards", "0");
    let resp = udp.transact(&req);
    assert_capabilities(&resp);
}
