//! TCP: an accept loop, one reader and one writer task per connection
//! (so a slow or half-open peer only ever holds up itself), a table of
//! open connections for reuse, idle and per-message timeouts, and a cap on
//! the number of connections.

use super::{
    ConnId, Inbound, SendError, Source, Target, TransportConfig, TransportKind,
    stateless_error_response,
};
use crate::message::{
    FrameError, ParseError, ParseErrorKind, StreamFrame, frame_stream, parse_datagram,
    parse_stream_message,
};
use bytes::{Buf, Bytes, BytesMut};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

struct Conn {
    remote: SocketAddr,
    tx: mpsc::Sender<Bytes>,
    /// Kept open at least until `epoch` + this many milliseconds, idle or
    /// not (a registration that lives on this connection).
    keep: Arc<AtomicU64>,
}

#[derive(Default)]
struct Table {
    conns: HashMap<ConnId, Conn>,
    by_addr: HashMap<SocketAddr, ConnId>,
}

/// The open TCP connections, shared by the accept loop and senders.
pub struct TcpPool {
    config: TransportConfig,
    inbound: mpsc::Sender<Inbound>,
    shutdown: CancellationToken,
    next_id: AtomicU64,
    table: Mutex<Table>,
    listen_addrs: Mutex<Vec<SocketAddr>>,
    /// The origin of the connections' keep-open times.
    epoch: tokio::time::Instant,
}

impl TcpPool {
    pub(super) fn new(
        config: TransportConfig,
        inbound: mpsc::Sender<Inbound>,
        shutdown: CancellationToken,
    ) -> TcpPool {
        TcpPool {
            config,
            inbound,
            shutdown,
            next_id: AtomicU64::new(1),
            table: Mutex::new(Table::default()),
            listen_addrs: Mutex::new(Vec::new()),
            epoch: tokio::time::Instant::now(),
        }
    }

    /// Keeps connection `id` open for at least `period` from now, even if
    /// it stays idle (Kamailio's `tcp_persistent_flag`): a phone that
    /// registered over it is reached over it until its binding expires.
    /// False if the connection is gone.
    pub fn keep_open(&self, id: ConnId, period: std::time::Duration) -> bool {
        let until = (tokio::time::Instant::now() + period).saturating_duration_since(self.epoch);
        let ms = u64::try_from(until.as_millis()).unwrap_or(u64::MAX);
        match self
            .table
            .lock()
            .ok()
            .and_then(|t| t.conns.get(&id).map(|c| c.keep.clone()))
        {
            Some(keep) => {
                keep.fetch_max(ms, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    pub(super) fn add_listen_addr(&self, addr: SocketAddr) {
        if let Ok(mut l) = self.listen_addrs.lock() {
            l.push(addr);
        }
    }

    /// Number of open (or opening) connections.
    pub fn len(&self) -> usize {
        self.table.lock().map(|t| t.conns.len()).unwrap_or(0)
    }

    /// True when no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn register(&self, remote: SocketAddr) -> Option<(ConnId, mpsc::Receiver<Bytes>)> {
        let mut t = self.table.lock().ok()?;
        if t.conns.len() >= self.config.max_connections {
            return None;
        }
        let id = ConnId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = mpsc::channel(self.config.tcp_queue);
        t.conns.insert(
            id,
            Conn {
                remote,
                tx,
                keep: Arc::new(AtomicU64::new(0)),
            },
        );
        t.by_addr.insert(remote, id);
        Some((id, rx))
    }

    fn unregister(&self, id: ConnId) {
        if let Ok(mut t) = self.table.lock()
            && let Some(c) = t.conns.remove(&id)
            && t.by_addr.get(&c.remote) == Some(&id)
        {
            t.by_addr.remove(&c.remote);
        }
    }

    pub(super) fn send(self: &Arc<Self>, target: &Target, data: Bytes) -> Result<(), SendError> {
        let tx = {
            let t = self
                .table
                .lock()
                .map_err(|_| SendError::Congested(target.addr))?;
            target
                .conn
                .and_then(|id| t.conns.get(&id))
                .or_else(|| t.by_addr.get(&target.addr).and_then(|id| t.conns.get(id)))
                .map(|c| c.tx.clone())
        };
        if let Some(tx) = tx {
            return tx
                .try_send(data)
                .map_err(|_| SendError::Congested(target.addr));
        }
        // No connection yet: register one now so that concurrent sends queue
        // on it, and connect in the background.
        let (id, rx) = self
            .register(target.addr)
            .ok_or(SendError::Congested(target.addr))?;
        let tx = self
            .table
            .lock()
            .ok()
            .and_then(|t| t.conns.get(&id).map(|c| c.tx.clone()));
        if let Some(tx) = tx {
            let _ = tx.try_send(data);
        }
        let pool = self.clone();
        let target = *target;
        tokio::spawn(async move {
            let connect = tokio::time::timeout(
                pool.config.tcp_connect_timeout,
                TcpStream::connect(target.addr),
            );
            match connect.await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    run_conn(pool, stream, id, target.addr, rx).await;
                }
                Ok(Err(e)) => {
                    tracing::debug!(message = "TCP connect failed.", addr = %target.addr, error = %e);
                    pool.unregister(id);
                    let _ = pool.inbound.try_send(Inbound::SendFailed { target });
                }
                Err(_) => {
                    tracing::debug!(message = "TCP connect timed out.", addr = %target.addr);
                    pool.unregister(id);
                    let _ = pool.inbound.try_send(Inbound::SendFailed { target });
                }
            }
        });
        Ok(())
    }
}

pub(super) async fn accept_loop(listener: TcpListener, pool: Arc<TcpPool>) {
    loop {
        let accepted = tokio::select! {
            _ = pool.shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let (stream, remote) = match accepted {
            Ok(v) => v,
            Err(e) => {
                // EMFILE and friends: back off a little instead of spinning.
                tracing::warn!(message = "TCP accept failed.", error = %e);
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some((id, rx)) = pool.register(remote) else {
            tracing::warn!(message = "TCP connection refused: limit reached.", %remote);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(run_conn(pool.clone(), stream, id, remote, rx));
    }
}

async fn run_conn(
    pool: Arc<TcpPool>,
    stream: TcpStream,
    id: ConnId,
    remote: SocketAddr,
    mut rx: mpsc::Receiver<Bytes>,
) {
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(_) => {
            pool.unregister(id);
            return;
        }
    };
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        while let Some(data) = rx.recv().await {
            if wr.write_all(&data).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let source = Source {
        kind: TransportKind::Tcp,
        local,
        remote,
        conn: Some(id),
    };
    let keep = pool
        .table
        .lock()
        .ok()
        .and_then(|t| t.conns.get(&id).map(|c| c.keep.clone()))
        .unwrap_or_default();
    let reason = read_loop(&pool, &mut rd, source, &keep).await;
    tracing::debug!(message = "TCP connection closed.", %remote, reason);
    pool.unregister(id);
    // The writer ends once every sender (the table's, now removed, and any
    // clone in flight) is gone and the queue is drained.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), writer).await;
}

async fn read_loop(
    pool: &Arc<TcpPool>,
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    source: Source,
    keep: &AtomicU64,
) -> &'static str {
    let cfg = &pool.config;
    let mut buf = BytesMut::with_capacity(8192);
    let mut message_started: Option<tokio::time::Instant> = None;
    loop {
        // Frame everything already buffered.
        loop {
            match frame_stream(&buf, cfg.max_message) {
                Ok(StreamFrame::Incomplete) => {
                    if buf.is_empty() {
                        message_started = None;
                    } else if message_started.is_none() {
                        message_started = Some(tokio::time::Instant::now());
                    }
                    break;
                }
                Ok(StreamFrame::KeepAlive { len, ping }) => {
                    buf.advance(len);
                    if ping {
                        let _ = pool.send(&Target::reply_to(&source), Bytes::from_static(b"\r\n"));
                    }
                }
                Ok(StreamFrame::Message { len }) => {
                    message_started = None;
                    let data = buf.split_to(len).freeze();
                    let item = match parse_stream_message(data) {
                        Ok(msg) => Inbound::Message { msg, source },
                        Err(error) => Inbound::Malformed { error, source },
                    };
                    // Back-pressure: a busy layer slows this connection only.
                    if pool.inbound.send(item).await.is_err() {
                        return "shutdown";
                    }
                }
                Err(e) => {
                    // RFC 3261 §18.3: answer 400 (513 when too large) if the
                    // headers can be read, then close.
                    let (is_request, headers) = match parse_datagram(buf.split().freeze()) {
                        Ok(m) => (m.is_request(), m.headers),
                        Err(e) => (e.is_request, e.headers),
                    };
                    let error = ParseError {
                        kind: match e {
                            FrameError::TooLarge(_) => ParseErrorKind::TooLarge,
                            FrameError::ContentLength => ParseErrorKind::ContentLength,
                        },
                        is_request,
                        headers,
                    };
                    if let Some(resp) = stateless_error_response(&error, &source) {
                        let _ = pool.send(&Target::reply_to(&source), resp);
                    }
                    tracing::info!(message = "TCP stream cannot be framed, closing.", remote = %source.remote, error = %e);
                    return "framing error";
                }
            }
        }
        let deadline = match message_started {
            Some(t) => t + cfg.tcp_message_timeout,
            None => {
                let kept =
                    pool.epoch + std::time::Duration::from_millis(keep.load(Ordering::Relaxed));
                (tokio::time::Instant::now() + cfg.tcp_idle_timeout).max(kept)
            }
        };
        let read = tokio::select! {
            _ = pool.shutdown.cancelled() => return "shutdown",
            _ = tokio::time::sleep_until(deadline) => {
                if message_started.is_some() {
                    return "message timeout";
                }
                // A registration may have asked to keep it open meanwhile.
                let kept = pool.epoch + std::time::Duration::from_millis(keep.load(Ordering::Relaxed));
                if kept > tokio::time::Instant::now() {
                    continue;
                }
                return "idle timeout";
            }
            r = rd.read_buf(&mut buf) => r,
        };
        match read {
            Ok(0) => return "closed by peer",
            Ok(_) => {}
            Err(_) => return "read error",
        }
    }
}
