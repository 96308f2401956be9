//! The project's own test UA: a small SIP user agent on raw sockets (UDP,
//! or TCP as a client or a server) that the call tests drive step by step
//! as the caller (A) or the callee (B) of a call through tandem, plus RTP
//! helpers for the media tests.
//!
//! Messages are read by background threads into a queue; the test picks
//! what it waits for ([`Ua::expect_request`], [`Ua::expect_final`]) and
//! everything else stays queued for later. Retransmissions (byte-identical
//! copies of a message already received) are dropped, so a test sees each
//! message once.

use super::{Msg, Req, SippTransport, Tandem, TcpPeer, TcpRead, param, unique};
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Default wait for a message through tandem.
pub(crate) const UA_WAIT: Duration = Duration::from_secs(5);

/// Where a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A datagram from this address.
    Udp(SocketAddr),
    /// The TCP connection with this index.
    Tcp(usize),
}

/// A message received, with where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Incoming {
    /// The message.
    pub(crate) msg: Msg,
    /// Where it came from (responses to a request go back there).
    pub(crate) origin: Origin,
}

impl std::ops::Deref for Incoming {
    type Target = Msg;
    fn deref(&self) -> &Msg {
        &self.msg
    }
}

impl Msg {
    /// The method of a request.
    pub(crate) fn method(&self) -> Option<&str> {
        if self.start.starts_with("SIP/2.0 ") {
            return None;
        }
        self.start.split(' ').next()
    }

    /// True for a request with this method.
    pub(crate) fn is_request(&self, method: &str) -> bool {
        self.method() == Some(method)
    }

    /// The CSeq number.
    pub(crate) fn cseq_num(&self) -> u32 {
        self.must("CSeq")
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("bad CSeq in:\n{}", self.text()))
    }

    /// The CSeq method.
    pub(crate) fn cseq_method(&self) -> &str {
        self.must("CSeq").split_whitespace().nth(1).unwrap_or("")
    }

    /// The body as text.
    pub(crate) fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `tag` parameter of From.
    pub(crate) fn tag_in_from(&self) -> Option<String> {
        param(self.header("From")?, "tag")
    }
}

/// A header value without its `;tag=` parameter.
pub(crate) fn strip_tag(value: &str) -> String {
    let split_at = value.rfind('>').map(|i| i + 1).unwrap_or(0);
    let (head, params) = value.split_at(split_at);
    let kept: Vec<&str> = params
        .split(';')
        .enumerate()
        .filter(|(i, p)| {
            *i == 0
                || !p
                    .split('=')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("tag")
        })
        .map(|(_, p)| p)
        .collect();
    format!("{head}{}", kept.join(";"))
}

/// The URI of a name-addr or addr-spec header value (`<sip:x@h>;p` →
/// `sip:x@h`).
pub(crate) fn uri_of(value: &str) -> String {
    match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => value[a + 1..b].to_string(),
        _ => value.split(';').next().unwrap_or("").trim().to_string(),
    }
}

/// One dialog as a UA sees it.
#[derive(Debug, Clone)]
pub(crate) struct Dialog {
    /// Call-ID.
    pub(crate) call_id: String,
    /// Our From/To value, without tag.
    pub(crate) local: String,
    /// Our tag.
    pub(crate) local_tag: String,
    /// The peer's From/To value, without tag.
    pub(crate) remote: String,
    /// The peer's tag.
    pub(crate) remote_tag: String,
    /// The peer's Contact URI (Request-URI of our requests).
    pub(crate) remote_target: String,
    /// Our last CSeq.
    pub(crate) local_cseq: u32,
}

impl Dialog {
    /// The caller's view, from its INVITE and the 2xx.
    pub(crate) fn uac(invite: &Req, ok: &Msg) -> Dialog {
        Dialog {
            call_id: invite.get("Call-ID").to_string(),
            local: strip_tag(invite.get("From")),
            local_tag: param(invite.get("From"), "tag").expect("From tag"),
            remote: strip_tag(ok.must("To")),
            remote_tag: ok
                .to_tag()
                .unwrap_or_else(|| panic!("2xx without To tag:\n{}", ok.text())),
            remote_target: uri_of(
                ok.header("Contact")
                    .unwrap_or_else(|| panic!("2xx without Contact:\n{}", ok.text())),
            ),
            local_cseq: invite
                .get("CSeq")
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(1),
        }
    }

    /// The callee's view, from the INVITE received and the tag we answered
    /// with.
    pub(crate) fn uas(invite: &Msg, local_tag: &str) -> Dialog {
        Dialog {
            call_id: invite.must("Call-ID").to_string(),
            local: strip_tag(invite.must("To")),
            local_tag: local_tag.to_string(),
            remote: strip_tag(invite.must("From")),
            remote_tag: invite
                .tag_in_from()
                .unwrap_or_else(|| panic!("INVITE without From tag:\n{}", invite.text())),
            remote_target: uri_of(
                invite
                    .header("Contact")
                    .unwrap_or_else(|| panic!("INVITE without Contact:\n{}", invite.text())),
            ),
            local_cseq: 100,
        }
    }
}

/// Where outgoing octets go.
enum Link {
    Udp(UdpSocket),
    Tcp(Arc<Mutex<Vec<TcpStream>>>),
}

/// A SIP user agent for tests.
pub(crate) struct Ua {
    /// The user part of our URIs.
    pub(crate) user: String,
    /// UDP or TCP.
    pub(crate) transport: SippTransport,
    /// Our address (Via, Contact): the UDP socket, the TCP listener, or the
    /// TCP connection of a client.
    pub(crate) local: SocketAddr,
    link: Link,
    /// Where requests go over UDP (tandem); learnt from the first message
    /// when not given.
    server: Option<SocketAddr>,
    rx: mpsc::Receiver<Incoming>,
    backlog: VecDeque<Incoming>,
    seen: HashSet<Vec<u8>>,
    tags: HashMap<String, String>,
    stop: Arc<AtomicBool>,
    /// Every message sent and received, for failure messages.
    pub(crate) trace: Vec<String>,
}

impl Drop for Ua {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if std::thread::panicking() {
            eprintln!(
                "---- UA {} trace ----\n{}\n--------------------",
                self.user,
                self.trace.join("\n")
            );
        }
    }
}

fn spawn_tcp_reader(
    stream: TcpStream,
    index: usize,
    tx: mpsc::Sender<Incoming>,
    stop: Arc<AtomicBool>,
) {
    std::thread::spawn(move || {
        let mut peer = TcpPeer::from_stream(stream);
        while !stop.load(Ordering::Relaxed) {
            match peer.read(Duration::from_millis(100)) {
                TcpRead::Msg(msg) => {
                    if tx
                        .send(Incoming {
                            msg,
                            origin: Origin::Tcp(index),
                        })
                        .is_err()
                    {
                        return;
                    }
                }
                TcpRead::Timeout => {}
                TcpRead::Closed => return,
            }
        }
    });
}

impl Ua {
    fn udp(user: &str, server: Option<SocketAddr>) -> Ua {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
        let local = sock.local_addr().expect("local address");
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let reader = sock.try_clone().expect("clone socket");
        reader
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65_536];
                while !stop.load(Ordering::Relaxed) {
                    match reader.recv_from(&mut buf) {
                        Ok((n, from)) => {
                            let Some(msg) = Msg::parse(&buf[..n]) else {
                                continue;
                            };
                            if tx
                                .send(Incoming {
                                    msg,
                                    origin: Origin::Udp(from),
                                })
                                .is_err()
                            {
                                return;
                            }
                        }
                        Err(_) => continue,
                    }
                }
            });
        }
        Ua {
            user: user.to_string(),
            transport: SippTransport::Udp,
            local,
            link: Link::Udp(sock),
            server,
            rx,
            backlog: VecDeque::new(),
            seen: HashSet::new(),
            tags: HashMap::new(),
            stop,
            trace: Vec::new(),
        }
    }

    /// A caller talking to tandem's listener for `transport`.
    pub(crate) fn caller(user: &str, transport: SippTransport, tandem: &Tandem) -> Ua {
        let server = tandem.addr(transport);
        match transport {
            SippTransport::Udp => Ua::udp(user, Some(server)),
            SippTransport::Tcp => {
                let stream = TcpStream::connect_timeout(&server, Duration::from_secs(3))
                    .expect("TCP connect to tandem");
                let local = stream.local_addr().expect("local address");
                let (tx, rx) = mpsc::channel();
                let stop = Arc::new(AtomicBool::new(false));
                let writer = stream.try_clone().expect("clone stream");
                writer
                    .set_write_timeout(Some(Duration::from_secs(3)))
                    .expect("write timeout");
                spawn_tcp_reader(stream, 0, tx, stop.clone());
                Ua {
                    user: user.to_string(),
                    transport,
                    local,
                    link: Link::Tcp(Arc::new(Mutex::new(vec![writer]))),
                    server: Some(server),
                    rx,
                    backlog: VecDeque::new(),
                    seen: HashSet::new(),
                    tags: HashMap::new(),
                    stop,
                    trace: Vec::new(),
                }
            }
        }
    }

    /// A callee listening on a free port (UDP socket or TCP listener);
    /// route tandem to [`Ua::target`].
    pub(crate) fn callee(user: &str, transport: SippTransport) -> Ua {
        match transport {
            SippTransport::Udp => Ua::udp(user, None),
            SippTransport::Tcp => {
                let listener = TcpListener::bind("127.0.0.1:0").expect("bind TCP");
                let local = listener.local_addr().expect("local address");
                listener.set_nonblocking(true).expect("nonblocking");
                let (tx, rx) = mpsc::channel();
                let stop = Arc::new(AtomicBool::new(false));
                let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
                {
                    let stop = stop.clone();
                    let conns = conns.clone();
                    std::thread::spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            match listener.accept() {
                                Ok((stream, _)) => {
                                    let _ = stream.set_nonblocking(false);
                                    let writer = stream.try_clone().expect("clone stream");
                                    let _ = writer.set_write_timeout(Some(Duration::from_secs(3)));
                                    let index = {
                                        let mut c = conns.lock().unwrap();
                                        c.push(writer);
                                        c.len() - 1
                                    };
                                    spawn_tcp_reader(stream, index, tx.clone(), stop.clone());
                                }
                                Err(_) => std::thread::sleep(Duration::from_millis(5)),
                            }
                        }
                    });
                }
                Ua {
                    user: user.to_string(),
                    transport,
                    local,
                    link: Link::Tcp(conns),
                    server: None,
                    rx,
                    backlog: VecDeque::new(),
                    seen: HashSet::new(),
                    tags: HashMap::new(),
                    stop,
                    trace: Vec::new(),
                }
            }
        }
    }

    /// A route target reaching this callee: `sip:${user}@127.0.0.1:PORT`
    /// (`;transport=tcp` over TCP).
    pub(crate) fn target(&self) -> String {
        format!(
            "sip:${{user}}@127.0.0.1:{}{}",
            self.local.port(),
            self.transport.uri_param()
        )
    }

    /// Our Contact value.
    pub(crate) fn contact(&self) -> String {
        format!(
            "<sip:{}@{}{}>",
            self.user,
            self.local,
            self.transport.uri_param()
        )
    }

    fn via(&self) -> String {
        format!(
            "SIP/2.0/{} {};branch={};rport",
            self.transport.token(),
            self.local,
            unique("z9hG4bK")
        )
    }

    /// Sends raw octets toward `origin` (or tandem when `None`).
    pub(crate) fn send_raw(&mut self, origin: Option<Origin>, data: &[u8]) {
        self.trace.push(format!(
            ">>> sent to {origin:?}:\n{}",
            String::from_utf8_lossy(data)
        ));
        match &self.link {
            Link::Udp(sock) => {
                let to = match origin {
                    Some(Origin::Udp(a)) => a,
                    _ => self.server.expect("no server address known yet"),
                };
                sock.send_to(data, to).expect("send datagram");
            }
            Link::Tcp(conns) => {
                let mut conns = conns.lock().unwrap();
                let index = match origin {
                    Some(Origin::Tcp(i)) => i,
                    _ => conns.len().checked_sub(1).expect("no TCP connection yet"),
                };
                conns[index].write_all(data).expect("TCP write");
            }
        }
    }

    /// Sends a request to tandem: to its UDP address, or over the newest
    /// TCP connection.
    pub(crate) fn send_req(&mut self, req: &Req) {
        self.send_raw(None, &req.to_bytes());
    }

    fn next_raw(&mut self, deadline: Instant) -> Option<Incoming> {
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let inc = self.rx.recv_timeout(left).ok()?;
            if !self.seen.insert(inc.msg.raw.clone()) {
                continue;
            }
            if let (None, Origin::Udp(from)) = (self.server, inc.origin) {
                self.server = Some(from);
            }
            self.trace.push(format!(
                "<<< received from {:?}:\n{}",
                inc.origin,
                inc.msg.text()
            ));
            return Some(inc);
        }
    }

    /// The first message (queued or arriving within `timeout`) that
    /// satisfies `pred`; the others stay queued.
    pub(crate) fn wait_for(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Msg) -> bool,
    ) -> Option<Incoming> {
        if let Some(i) = self.backlog.iter().position(|m| pred(&m.msg)) {
            return self.backlog.remove(i);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let inc = self.next_raw(deadline)?;
            if pred(&inc.msg) {
                return Some(inc);
            }
            self.backlog.push_back(inc);
        }
    }

    /// Like [`Ua::wait_for`] but panics (naming `what`) on timeout.
    pub(crate) fn expect_where(&mut self, what: &str, pred: impl Fn(&Msg) -> bool) -> Incoming {
        match self.wait_for(UA_WAIT, pred) {
            Some(m) => m,
            None => panic!(
                "UA {}: no {what} within {UA_WAIT:?}; queued: {:?}",
                self.user,
                self.backlog
                    .iter()
                    .map(|m| m.msg.start.clone())
                    .collect::<Vec<_>>()
            ),
        }
    }

    /// The next request with this method.
    pub(crate) fn expect_request(&mut self, method: &str) -> Incoming {
        let m = method.to_string();
        self.expect_where(&format!("{method} request"), move |msg| msg.is_request(&m))
    }

    /// Everything queued and arriving within `timeout`.
    pub(crate) fn drain(&mut self, timeout: Duration) -> Vec<Incoming> {
        let mut out: Vec<Incoming> = self.backlog.drain(..).collect();
        let deadline = Instant::now() + timeout;
        while let Some(m) = self.next_raw(deadline) {
            out.push(m);
        }
        out
    }

    /// Panics if a message satisfying `pred` is queued or arrives within
    /// `timeout`.
    pub(crate) fn expect_none(
        &mut self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Msg) -> bool,
    ) {
        if let Some(m) = self.wait_for(timeout, pred) {
            panic!("UA {}: unexpected {what}:\n{}", self.user, m.msg.text());
        }
    }

    /// A response to `req` (same Call-ID and CSeq) satisfying `pred`.
    pub(crate) fn expect_response(
        &mut self,
        req: &Req,
        what: &str,
        pred: impl Fn(&Msg) -> bool,
    ) -> Incoming {
        let call_id = req.get("Call-ID").to_string();
        let cseq = req.get("CSeq").to_string();
        self.expect_where(&format!("{what} to {}", req.method), move |m| {
            m.code().is_some()
                && m.header("Call-ID") == Some(&call_id)
                && m.header("CSeq") == Some(&cseq)
                && pred(m)
        })
    }

    /// The final response to `req`.
    pub(crate) fn expect_final(&mut self, req: &Req) -> Incoming {
        self.expect_response(req, "final response", |m| m.status() >= 200)
    }

    /// The To tag we use for dialogs of this Call-ID (made on first use).
    pub(crate) fn tag_for(&mut self, call_id: &str) -> String {
        self.tags
            .entry(call_id.to_string())
            .or_insert_with(|| unique("b"))
            .clone()
    }

    /// Answers a request: Via, From, To (with our tag when it has none),
    /// Call-ID and CSeq copied; Contact for 1xx/2xx to INVITE and UPDATE;
    /// `headers` and an optional `(content type, body)`.
    pub(crate) fn respond(
        &mut self,
        req: &Incoming,
        code: u16,
        reason: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &str)>,
    ) {
        let call_id = req.must("Call-ID").to_string();
        let mut out = format!("SIP/2.0 {code} {reason}\r\n");
        for v in req.header_all("Via") {
            out.push_str(&format!("Via: {v}\r\n"));
        }
        out.push_str(&format!("From: {}\r\n", req.must("From")));
        let to = req.must("To");
        if req.to_tag().is_none() && code > 100 {
            let tag = self.tag_for(&call_id);
            out.push_str(&format!("To: {to};tag={tag}\r\n"));
        } else {
            out.push_str(&format!("To: {to}\r\n"));
        }
        out.push_str(&format!("Call-ID: {call_id}\r\n"));
        out.push_str(&format!("CSeq: {}\r\n", req.must("CSeq")));
        let method = req.method().unwrap_or("");
        if (101..300).contains(&code) && matches!(method, "INVITE" | "UPDATE") {
            out.push_str(&format!("Contact: {}\r\n", self.contact()));
        }
        for (n, v) in headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        let body = body.unwrap_or(("", ""));
        if !body.1.is_empty() {
            out.push_str(&format!("Content-Type: {}\r\n", body.0));
        }
        out.push_str(&format!(
            "Content-Length: {}\r\n\r\n{}",
            body.1.len(),
            body.1
        ));
        self.send_raw(Some(req.origin), out.as_bytes());
    }

    /// Answers an INVITE with 200 and `sdp`; returns our dialog.
    pub(crate) fn answer(&mut self, invite: &Incoming, sdp: &str) -> Dialog {
        self.respond(invite, 200, "OK", &[], Some(("application/sdp", sdp)));
        let tag = self.tag_for(invite.must("Call-ID"));
        Dialog::uas(invite, &tag)
    }

    /// A new INVITE to `user` at tandem (sent).
    pub(crate) fn invite(
        &mut self,
        user: &str,
        sdp: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Req {
        let server = self.server.expect("a caller knows tandem's address");
        let mut req = Req {
            method: "INVITE".into(),
            uri: format!("sip:{user}@{server}{}", self.transport.uri_param()),
            headers: vec![
                ("Via".into(), self.via()),
                ("Max-Forwards".into(), "70".into()),
                (
                    "From".into(),
                    format!(
                        "\"{}\" <sip:{}@127.0.0.1>;tag={}",
                        self.user,
                        self.user,
                        unique("a")
                    ),
                ),
                ("To".into(), format!("<sip:{user}@{server}>")),
                ("Call-ID".into(), unique("ua-call-")),
                ("CSeq".into(), "1 INVITE".into()),
                ("Contact".into(), self.contact()),
            ],
            body: Vec::new(),
            no_content_length: false,
        };
        for (n, v) in headers {
            req.headers.push((n.to_string(), v.to_string()));
        }
        if let Some(sdp) = sdp {
            req = req.body("application/sdp", sdp);
        }
        self.send_req(&req);
        req
    }

    /// An in-dialog request (sent): new CSeq and branch.
    pub(crate) fn request(
        &mut self,
        d: &mut Dialog,
        method: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &str)>,
    ) -> Req {
        d.local_cseq += 1;
        let req = self.in_dialog(d, method, d.local_cseq, headers, body);
        self.send_req(&req);
        req
    }

    fn in_dialog(
        &self,
        d: &Dialog,
        method: &str,
        cseq: u32,
        headers: &[(&str, &str)],
        body: Option<(&str, &str)>,
    ) -> Req {
        let mut req = Req {
            method: method.into(),
            uri: d.remote_target.clone(),
            headers: vec![
                ("Via".into(), self.via()),
                ("Max-Forwards".into(), "70".into()),
                ("From".into(), format!("{};tag={}", d.local, d.local_tag)),
                ("To".into(), format!("{};tag={}", d.remote, d.remote_tag)),
                ("Call-ID".into(), d.call_id.clone()),
                ("CSeq".into(), format!("{cseq} {method}")),
            ],
            body: Vec::new(),
            no_content_length: false,
        };
        if method != "ACK" {
            req.headers.push(("Contact".into(), self.contact()));
        }
        for (n, v) in headers {
            req.headers.push((n.to_string(), v.to_string()));
        }
        if let Some((ctype, body)) = body {
            req = req.body(ctype, body);
        }
        req
    }

    /// The ACK of a 2xx to an INVITE of the dialog (sent).
    pub(crate) fn ack(&mut self, d: &Dialog, invite: &Req) {
        let seq = invite
            .get("CSeq")
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let ack = self.in_dialog(d, "ACK", seq, &[], None);
        self.send_req(&ack);
    }

    /// The ACK of a non-2xx final response (same branch; sent).
    pub(crate) fn ack_failure(&mut self, invite: &Req, resp: &Msg) {
        let ack = invite.ack_for(resp);
        self.send_req(&ack);
    }

    /// Waits for the final response to an INVITE we sent and ACKs it (a
    /// 2xx in `d`'s dialog, anything else hop by hop).
    pub(crate) fn finish_invite(&mut self, d: &Dialog, invite: &Req) -> Incoming {
        let resp = self.expect_final(invite);
        if (200..300).contains(&resp.status()) {
            self.ack(d, invite);
        } else {
            self.ack_failure(invite, &resp);
        }
        resp
    }

    /// Sends an in-dialog request and waits for its final response (ACKing
    /// it for INVITE).
    pub(crate) fn transact(
        &mut self,
        d: &mut Dialog,
        method: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &str)>,
    ) -> Incoming {
        let req = self.request(d, method, headers, body);
        if method == "INVITE" {
            self.finish_invite(d, &req)
        } else {
            self.expect_final(&req)
        }
    }
}

/// A call set up through tandem between two UAs.
pub(crate) struct Established {
    /// The caller's dialog.
    pub(crate) a: Dialog,
    /// The callee's dialog.
    pub(crate) b: Dialog,
    /// The INVITE as the callee got it.
    pub(crate) invite_at_b: Incoming,
    /// The 200 as the caller got it.
    pub(crate) ok_at_a: Incoming,
    /// The INVITE the caller sent.
    pub(crate) invite: Req,
}

/// Sets up a call from `a` to `user` (routed by tandem to `b`): INVITE with
/// `sdp_a`, 180, 200 with `sdp_b`, ACK on both legs.
pub(crate) fn establish(
    a: &mut Ua,
    b: &mut Ua,
    user: &str,
    sdp_a: &str,
    sdp_b: &str,
) -> Established {
    let invite = a.invite(user, Some(sdp_a), &[]);
    let invite_at_b = b.expect_request("INVITE");
    b.respond(&invite_at_b, 180, "Ringing", &[], None);
    let ringing = a.expect_response(&invite, "180", |m| m.status() == 180);
    assert!(ringing.to_tag().is_some(), "180 without To tag");
    let b_dialog = b.answer(&invite_at_b, sdp_b);
    let ok_at_a = a.expect_final(&invite);
    assert_eq!(ok_at_a.status(), 200, "{}", ok_at_a.text());
    assert_eq!(
        ok_at_a.to_tag(),
        ringing.to_tag(),
        "180 and 200 to A carry A's one To tag"
    );
    let a_dialog = Dialog::uac(&invite, &ok_at_a);
    a.ack(&a_dialog, &invite);
    let ack = b.expect_request("ACK");
    assert_eq!(ack.cseq_num(), invite_at_b.cseq_num(), "{}", ack.text());
    Established {
        a: a_dialog,
        b: b_dialog,
        invite_at_b,
        ok_at_a,
        invite,
    }
}

/// `from` hangs up: BYE, 200 back; the other side gets the BYE and answers.
pub(crate) fn hangup(from: &mut Ua, d: &mut Dialog, other: &mut Ua) {
    let resp = from.transact(d, "BYE", &[], None);
    assert_eq!(resp.status(), 200, "{}", resp.text());
    let bye = other.expect_request("BYE");
    other.respond(&bye, 200, "OK", &[], None);
}

// ---------------------------------------------------------------------------
// SDP and RTP
// ---------------------------------------------------------------------------

/// An audio offer or answer: PCMU and telephone-event on `port`, with
/// `extra` attribute lines (`a=sendonly`).
pub(crate) fn sdp(port: u16, extra: &[&str]) -> String {
    let mut s = format!(
        "v=0\r\no=ua {id} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-15\r\na=ptime:20\r\n",
        id = 1000 + u32::from(port)
    );
    for e in extra {
        s.push_str(e);
        s.push_str("\r\n");
    }
    s
}

/// The `c=` address and `m=audio` port of an SDP body.
pub(crate) fn sdp_audio(body: &str) -> SocketAddr {
    let ip = body
        .lines()
        .filter_map(|l| l.trim().strip_prefix("c=IN IP4 "))
        .next_back()
        .unwrap_or_else(|| panic!("no c= line in SDP:\n{body}"))
        .trim()
        .to_string();
    let port = body
        .lines()
        .find_map(|l| l.trim().strip_prefix("m=audio "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no m=audio line in SDP:\n{body}"));
    SocketAddr::new(ip.parse().expect("c= address"), port)
}

/// The direction attribute of an SDP body (`sendrecv` when none).
pub(crate) fn sdp_direction(body: &str) -> &'static str {
    for d in ["sendonly", "recvonly", "inactive", "sendrecv"] {
        if body.lines().any(|l| l.trim() == format!("a={d}")) {
            return d;
        }
    }
    "sendrecv"
}

/// An RTP packet: version 2, payload type `pt`, `seq`, `ts`, `ssrc`.
pub(crate) fn rtp_packet(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + payload.len());
    p.push(0x80);
    p.push(pt & 0x7f);
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A UDP socket for RTP on 127.0.0.1, with its RTCP neighbour (port + 1)
/// when `with_rtcp`.
pub(crate) struct RtpSock {
    /// The RTP socket.
    pub(crate) rtp: UdpSocket,
    /// The RTCP socket (port + 1), if asked for.
    pub(crate) rtcp: Option<UdpSocket>,
    /// The RTP port.
    pub(crate) port: u16,
}

impl RtpSock {
    /// Binds a socket (and its RTCP neighbour).
    pub(crate) fn bind(with_rtcp: bool) -> RtpSock {
        for _ in 0..100 {
            let rtp = UdpSocket::bind("127.0.0.1:0").expect("bind RTP");
            let port = rtp.local_addr().expect("local address").port();
            if !with_rtcp {
                return RtpSock {
                    rtp,
                    rtcp: None,
                    port,
                };
            }
            if let Some(p1) = port.checked_add(1)
                && let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", p1))
            {
                return RtpSock {
                    rtp,
                    rtcp: Some(rtcp),
                    port,
                };
            }
        }
        panic!("no RTP/RTCP port pair free");
    }

    /// The next datagram on the RTP socket within `timeout`.
    pub(crate) fn recv(&self, timeout: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        recv_on(&self.rtp, timeout)
    }
}

/// The next datagram on `sock` within `timeout`.
pub(crate) fn recv_on(sock: &UdpSocket, timeout: Duration) -> Option<(Vec<u8>, SocketAddr)> {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 2048];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        if left.is_zero() {
            return None;
        }
        sock.set_read_timeout(Some(left)).expect("read timeout");
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => return Some((buf[..n].to_vec(), from)),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            Err(_) => continue,
        }
    }
}
