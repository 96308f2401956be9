//! Transports (RFC 3261 §18): UDP sockets and TCP connections that turn
//! bytes into [`Inbound`] messages for the transaction layer, and send
//! bytes to a [`Target`] without ever blocking the caller.

mod tcp;
mod udp;

use crate::message::{Message, ParseError};
use bytes::Bytes;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use tcp::TcpPool;

/// A transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// UDP (unreliable: the transaction layer retransmits).
    Udp,
    /// TCP (reliable, stream framed by Content-Length).
    Tcp,
}

impl TransportKind {
    /// The Via transport token.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
        }
    }

    /// True for stream transports.
    pub fn is_reliable(self) -> bool {
        self != TransportKind::Udp
    }

    /// Maps a Via transport token or `transport=` URI parameter.
    pub fn from_token(t: &[u8]) -> Option<TransportKind> {
        if t.eq_ignore_ascii_case(b"udp") {
            Some(TransportKind::Udp)
        } else if t.eq_ignore_ascii_case(b"tcp") {
            Some(TransportKind::Tcp)
        } else {
            None
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifies one TCP connection for as long as it is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(pub u64);

/// Where a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// The transport it arrived on.
    pub kind: TransportKind,
    /// Our address it arrived at.
    pub local: SocketAddr,
    /// The peer's address.
    pub remote: SocketAddr,
    /// The connection, for stream transports.
    pub conn: Option<ConnId>,
}

/// Where to send a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The transport to use.
    pub kind: TransportKind,
    /// The peer's address.
    pub addr: SocketAddr,
    /// A connection to prefer (e.g. the one a request came in on).
    pub conn: Option<ConnId>,
    /// The local socket to send from, for UDP (the one a request came in on).
    pub local: Option<SocketAddr>,
}

impl Target {
    /// A target with no connection or socket preference.
    pub fn new(kind: TransportKind, addr: SocketAddr) -> Target {
        Target {
            kind,
            addr,
            conn: None,
            local: None,
        }
    }

    /// Back to where `source` came from, on the same socket or connection.
    pub fn reply_to(source: &Source) -> Target {
        Target {
            kind: source.kind,
            addr: source.remote,
            conn: source.conn,
            local: Some(source.local),
        }
    }
}

/// What the transports hand to the transaction layer.
#[derive(Debug)]
pub enum Inbound {
    /// A well-formed message.
    Message {
        /// The message.
        msg: Message,
        /// Where it came from.
        source: Source,
    },
    /// A message that failed to parse; requests get a stateless 400/505.
    Malformed {
        /// What was wrong, with the headers that could be read.
        error: ParseError,
        /// Where it came from.
        source: Source,
    },
    /// A message to `target` could not be sent (TCP connect failed, the
    /// connection broke or its queue was full).
    SendFailed {
        /// Where it was going.
        target: Target,
    },
}

/// A socket to listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen {
    /// UDP or TCP.
    pub kind: TransportKind,
    /// Address and port (port 0 picks a free one).
    pub addr: SocketAddr,
}

impl std::str::FromStr for Listen {
    type Err = String;
    /// Parses `udp:IP:PORT` or `tcp:IP:PORT` (IPv6 as `[::1]:5060`).
    fn from_str(s: &str) -> Result<Listen, String> {
        let (kind, addr) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}`: expected udp:IP:PORT or tcp:IP:PORT"))?;
        let kind = TransportKind::from_token(kind.as_bytes())
            .ok_or_else(|| format!("`{s}`: transport must be udp or tcp"))?;
        let addr = addr
            .parse()
            .map_err(|e| format!("`{s}`: bad address: {e}"))?;
        Ok(Listen { kind, addr })
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}",
            self.kind.as_str().to_ascii_lowercase(),
            self.addr
        )
    }
}

/// Limits of the transports.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Largest message accepted on a stream, in octets.
    pub max_message: usize,
    /// A TCP connection with no traffic for this long is closed.
    pub tcp_idle_timeout: Duration,
    /// A message started on a TCP connection must be complete within this
    /// time, so a slow client cannot hold a connection with a trickle.
    pub tcp_message_timeout: Duration,
    /// Most TCP connections open at once; more are refused.
    pub max_connections: usize,
    /// Most messages queued for one TCP connection before sends fail.
    pub tcp_queue: usize,
    /// How long an outgoing TCP connect may take.
    pub tcp_connect_timeout: Duration,
    /// Receive and send buffer asked for on UDP sockets, in octets (the
    /// kernel caps it at `net.core.rmem_max`/`wmem_max`). A burst of
    /// requests larger than the buffer is dropped by the kernel before
    /// Tandem sees it; retransmissions then add load just when there is
    /// least room for it.
    pub udp_buffer: usize,
}

impl Default for TransportConfig {
    fn default() -> TransportConfig {
        TransportConfig {
            max_message: 65_535,
            // RFC 5626 suggests keep-alives at least every 120 s; wait a
            // little longer than that before calling a connection idle.
            tcp_idle_timeout: Duration::from_secs(180),
            tcp_message_timeout: Duration::from_secs(32),
            max_connections: 4096,
            tcp_queue: 1024,
            tcp_connect_timeout: Duration::from_secs(10),
            udp_buffer: 4 * 1024 * 1024,
        }
    }
}

/// Why a send failed at once.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No listener of that transport and address family exists.
    #[error("no {0} transport for {1}")]
    NoTransport(TransportKind, SocketAddr),
    /// The connection's queue is full or closed.
    #[error("connection to {0} is congested or closed")]
    Congested(SocketAddr),
    /// The socket refused the datagram.
    #[error("send to {0} failed: {1}")]
    Io(SocketAddr, std::io::Error),
}

/// The running transports. Cheap to clone.
#[derive(Clone)]
pub struct Transports {
    inner: Arc<Inner>,
}

struct Inner {
    /// UDP sockets with their (cached) local addresses.
    udp: Vec<(SocketAddr, Arc<tokio::net::UdpSocket>)>,
    listens: Vec<Listen>,
    tcp: Arc<TcpPool>,
    shutdown: CancellationToken,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// Asks for `bytes` of receive and send buffer on a UDP socket; what the
/// kernel grants (capped by its limits) is logged at debug level.
fn size_buffers(sock: &tokio::net::UdpSocket, bytes: usize) {
    let s = socket2::SockRef::from(sock);
    let _ = s.set_recv_buffer_size(bytes);
    let _ = s.set_send_buffer_size(bytes);
    tracing::debug!(
        message = "UDP buffers.",
        recv = s.recv_buffer_size().unwrap_or(0),
        send = s.send_buffer_size().unwrap_or(0),
    );
}

impl Transports {
    /// Binds every listener and starts receiving; messages go to `inbound`.
    pub async fn bind(
        listens: &[Listen],
        config: TransportConfig,
        inbound: mpsc::Sender<Inbound>,
    ) -> std::io::Result<Transports> {
        let shutdown = CancellationToken::new();
        let tcp = Arc::new(TcpPool::new(
            config.clone(),
            inbound.clone(),
            shutdown.clone(),
        ));
        let mut udp = Vec::new();
        let mut bound = Vec::new();
        let mut tasks = Vec::new();
        for l in listens {
            match l.kind {
                TransportKind::Udp => {
                    let sock = Arc::new(tokio::net::UdpSocket::bind(l.addr).await?);
                    size_buffers(&sock, config.udp_buffer);
                    let addr = sock.local_addr()?;
                    tasks.push(tokio::spawn(udp::receive_loop(
                        sock.clone(),
                        inbound.clone(),
                        shutdown.clone(),
                    )));
                    udp.push((addr, sock));
                    bound.push(Listen { kind: l.kind, addr });
                }
                TransportKind::Tcp => {
                    let listener = tokio::net::TcpListener::bind(l.addr).await?;
                    let addr = listener.local_addr()?;
                    tcp.add_listen_addr(addr);
                    tasks.push(tokio::spawn(tcp::accept_loop(listener, tcp.clone())));
                    bound.push(Listen { kind: l.kind, addr });
                }
            }
        }
        Ok(Transports {
            inner: Arc::new(Inner {
                udp,
                listens: bound,
                tcp,
                shutdown,
                tasks: Mutex::new(tasks),
            }),
        })
    }

    /// The bound addresses (with the ports picked for port 0).
    pub fn listens(&self) -> &[Listen] {
        &self.inner.listens
    }

    /// The address to put in Via/Contact for a message of `kind` to `peer`:
    /// a listener of that transport and address family.
    pub fn sent_by(&self, kind: TransportKind, peer: SocketAddr) -> Option<SocketAddr> {
        let same_family = |a: &SocketAddr| a.is_ipv4() == peer.is_ipv4();
        self.inner
            .listens
            .iter()
            .find(|l| l.kind == kind && same_family(&l.addr))
            .map(|l| l.addr)
    }

    /// Keeps TCP connection `conn` open for at least `period`, idle or
    /// not (see [`TcpPool::keep_open`]); false if it is gone.
    pub fn keep_open(&self, conn: ConnId, period: Duration) -> bool {
        self.inner.tcp.keep_open(conn, period)
    }

    /// Number of open TCP connections.
    pub fn tcp_connections(&self) -> usize {
        self.inner.tcp.len()
    }

    /// Sends `data` to `target`. Never waits: UDP sends at once, TCP queues
    /// on the connection (connecting first if needed; a failure then comes
    /// back as [`Inbound::SendFailed`]).
    pub fn send(&self, target: &Target, data: Bytes) -> Result<(), SendError> {
        match target.kind {
            TransportKind::Udp => self.send_udp(target, data),
            TransportKind::Tcp => self.inner.tcp.send(target, data),
        }
    }

    fn send_udp(&self, target: &Target, data: Bytes) -> Result<(), SendError> {
        let socks = &self.inner.udp;
        let (_, sock) = target
            .local
            .and_then(|l| socks.iter().find(|(a, _)| *a == l))
            .or_else(|| {
                socks
                    .iter()
                    .find(|(a, _)| a.is_ipv4() == target.addr.is_ipv4())
            })
            .ok_or(SendError::NoTransport(TransportKind::Udp, target.addr))?;
        match sock.try_send_to(&data, target.addr) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let sock = sock.clone();
                let addr = target.addr;
                tokio::spawn(async move {
                    if let Err(e) = sock.send_to(&data, addr).await {
                        tracing::debug!(message = "UDP send failed.", %addr, error = %e);
                    }
                });
                Ok(())
            }
            Err(e) => Err(SendError::Io(target.addr, e)),
        }
    }

    /// Stops every listener and closes every connection.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
        if let Ok(mut tasks) = self.inner.tasks.lock() {
            for t in tasks.drain(..) {
                t.abort();
            }
        }
    }
}

/// The response a malformed request deserves (400 or 505 with the reason,
/// 513 when too large), built statelessly (RFC 3261 §8.2.7) from whatever
/// headers could be read: a To tag is added (§8.2.6.2) and the top Via is
/// stamped with received/rport (RFC 3581) for `source`. Bad responses and
/// keep-alives get nothing.
pub(crate) fn stateless_error_response(error: &ParseError, source: &Source) -> Option<Bytes> {
    use crate::message::{HeaderName, NameAddr, ParseErrorKind, Via};
    if !error.is_request || error.kind == ParseErrorKind::Empty {
        return None;
    }
    let (code, reason) = error.kind.status();
    let mut resp = Message::response(code, &reason);
    let mut first_via = true;
    for h in error.headers.iter() {
        let value = match h.name {
            HeaderName::Via if first_via => {
                first_via = false;
                Via::parse_shared(&h.value, &h.value)
                    .ok()
                    .and_then(|v| v.stamped(source.remote))
                    .map_or_else(|| h.value.clone(), |v| v.to_bytes())
            }
            HeaderName::To => {
                let tagged =
                    NameAddr::parse_shared(&h.value, &h.value).is_ok_and(|n| n.tag().is_some());
                if tagged {
                    h.value.clone()
                } else {
                    let tag = crate::transaction::random_token();
                    Bytes::from(format!("{};tag={tag}", String::from_utf8_lossy(&h.value)))
                }
            }
            HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                h.value.clone()
            }
            _ => continue,
        };
        resp.headers.push(h.name.clone(), value);
    }
    resp.headers.push(HeaderName::Server, crate::USER_AGENT);
    Some(resp.to_bytes())
}
