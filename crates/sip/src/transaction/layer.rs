//! The transaction layer actor: matching (§17.1.3, §17.2.3, CANCEL §9.2),
//! timers, the UAS checks of §8.2 and the stateless answers (100 Trying,
//! OPTIONS, 400/481/501/...), and the handles the TU works with.

use super::client::ClientNonInvite;
use super::client_inv::ClientInvite;
use super::key::TxKey;
use super::server::ServerNonInvite;
use super::server_inv::{self, ServerInvite};
use super::timers::{Timer, TimerConfig};
use super::{Action, ClientEvent};
use crate::message::{BRANCH_COOKIE, HeaderName, Message, Method, Via};
use crate::transport::{Inbound, Source, Target, Transports, stateless_error_response};
use crate::uas::{UasPolicy, precheck};
use bytes::Bytes;
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};
use tokio_util::time::DelayQueue;

/// Settings of the transaction layer.
#[derive(Debug, Clone)]
pub struct LayerConfig {
    /// T1, T2, T4.
    pub timers: TimerConfig,
    /// What the UAS checks accept.
    pub policy: UasPolicy,
    /// Answer out-of-dialog OPTIONS with 200 and capabilities.
    pub answer_options: bool,
    /// Depth of the queue to the TU; when full, new requests get 503.
    pub tu_queue: usize,
}

impl Default for LayerConfig {
    fn default() -> LayerConfig {
        LayerConfig {
            timers: TimerConfig::default(),
            policy: UasPolicy::default(),
            answer_options: true,
            tu_queue: 4096,
        }
    }
}

/// What the layer hands to the TU.
#[derive(Debug)]
pub enum TuEvent {
    /// A new request that passed the UAS checks. Answer it through `tx`.
    Request {
        /// The request (top Via stamped with received/rport).
        request: Message,
        /// Where it came from.
        source: Source,
        /// Its server transaction.
        tx: ServerTx,
    },
    /// An ACK for a 2xx (its retransmissions stopped), or one matching no
    /// transaction.
    Ack {
        /// The ACK.
        request: Message,
        /// Where it came from.
        source: Source,
    },
    /// A CANCEL matched this INVITE server transaction while it was still
    /// proceeding; the CANCEL got its 200, the INVITE awaits the TU's 487.
    Cancelled {
        /// The INVITE's transaction.
        invite: TxKey,
    },
    /// A final response to this INVITE was never ACKed (Timer H or L).
    AckTimeout {
        /// The INVITE's transaction.
        invite: TxKey,
    },
}

/// Counts for tests, metrics and the status line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// Live server transactions.
    pub server: usize,
    /// Live client transactions.
    pub client: usize,
}

enum Cmd {
    Respond(TxKey, Message),
    Reply {
        key: TxKey,
        code: u16,
        reason: String,
        headers: Vec<(HeaderName, String)>,
    },
    Request {
        key: TxKey,
        request: Message,
        target: Target,
        events: mpsc::UnboundedSender<ClientEvent>,
    },
    Cancel {
        invite: TxKey,
        key: TxKey,
        events: mpsc::UnboundedSender<ClientEvent>,
    },
    Stateless(Message, Target),
    Stats(oneshot::Sender<LayerStats>),
}

/// Handle to the transaction layer. Cheap to clone.
#[derive(Clone)]
pub struct TxLayer {
    cmds: mpsc::UnboundedSender<Cmd>,
    transports: Transports,
}

/// A server transaction, as the TU sees it.
#[derive(Clone)]
pub struct ServerTx {
    key: TxKey,
    to_tag: String,
    layer: TxLayer,
}

impl std::fmt::Debug for ServerTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTx").field("key", &self.key).finish()
    }
}

impl ServerTx {
    /// The transaction key.
    pub fn key(&self) -> &TxKey {
        &self.key
    }

    /// The To tag this transaction puts in its responses.
    pub fn to_tag(&self) -> &str {
        &self.to_tag
    }

    /// Answers with a response built from the request (§8.2.6).
    pub fn reply(&self, code: u16, reason: &str) {
        self.reply_with(code, reason, Vec::new());
    }

    /// Answers with extra headers.
    pub fn reply_with(&self, code: u16, reason: &str, headers: Vec<(HeaderName, String)>) {
        let _ = self.layer.cmds.send(Cmd::Reply {
            key: self.key.clone(),
            code,
            reason: reason.to_string(),
            headers,
        });
    }

    /// Answers with a complete response the TU built.
    pub fn respond(&self, response: Message) {
        let _ = self
            .layer
            .cmds
            .send(Cmd::Respond(self.key.clone(), response));
    }
}

/// A client transaction, as the TU sees it: its key and its events.
#[derive(Debug)]
pub struct ClientTx {
    key: TxKey,
    events: mpsc::UnboundedReceiver<ClientEvent>,
}

impl ClientTx {
    /// The transaction key.
    pub fn key(&self) -> &TxKey {
        &self.key
    }

    /// The next response or failure; `None` once the transaction is over.
    pub async fn next(&mut self) -> Option<ClientEvent> {
        self.events.recv().await
    }
}

/// A fresh random token for branches and tags.
pub(crate) fn random_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl TxLayer {
    /// Starts the layer on `inbound` (fed by [`Transports::bind`]). Returns
    /// the handle and the queue of events for the TU.
    pub fn spawn(
        transports: Transports,
        inbound: mpsc::Receiver<Inbound>,
        config: LayerConfig,
    ) -> (TxLayer, mpsc::Receiver<TuEvent>) {
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (tu_tx, tu_rx) = mpsc::channel(config.tu_queue.max(1));
        let layer = TxLayer {
            cmds: cmd_tx,
            transports: transports.clone(),
        };
        let actor = Actor {
            transports,
            config,
            txs: HashMap::new(),
            accepted: HashMap::new(),
            merged: HashMap::new(),
            timers: DelayQueue::new(),
            tu: tu_tx,
            handle: layer.downgrade(),
            out: Vec::with_capacity(8),
        };
        tokio::spawn(actor.run(inbound, cmd_rx));
        (layer, tu_rx)
    }

    fn downgrade(&self) -> WeakLayer {
        WeakLayer {
            cmds: self.cmds.downgrade(),
            transports: self.transports.clone(),
        }
    }

    /// The transports this layer sends on.
    pub fn transports(&self) -> &Transports {
        &self.transports
    }

    /// Sends a request in a new client transaction. The layer adds the top
    /// Via (with a new branch and `rport`); everything else is the TU's.
    pub fn send_request(&self, mut request: Message, target: Target) -> ClientTx {
        let branch = format!("{BRANCH_COOKIE}{}", random_token());
        let method = request.method().cloned().unwrap_or(Method::Options);
        self.push_via(&mut request, &target, &branch);
        let key = TxKey::client(Bytes::from(branch), method);
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = self.cmds.send(Cmd::Request {
            key: key.clone(),
            request,
            target,
            events: tx,
        });
        ClientTx { key, events: rx }
    }

    /// Cancels a pending INVITE client transaction (§9.1), named by its
    /// key. The CANCEL is a transaction of its own; its events come on the
    /// returned handle (a transport error if the INVITE is no longer
    /// pending).
    pub fn cancel(&self, invite: &TxKey) -> ClientTx {
        let branch = match invite {
            TxKey::Branch { branch, .. } => branch.clone(),
            TxKey::Legacy { .. } => Bytes::new(),
        };
        let key = TxKey::client(branch, Method::Cancel);
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = self.cmds.send(Cmd::Cancel {
            invite: invite.clone(),
            key: key.clone(),
            events: tx,
        });
        ClientTx { key, events: rx }
    }

    /// Sends a message outside any transaction (an ACK for a 2xx, a
    /// stateless response). Requests get a new top Via.
    pub fn send_stateless(&self, mut message: Message, target: Target) {
        if message.is_request() {
            let branch = format!("{BRANCH_COOKIE}{}", random_token());
            self.push_via(&mut message, &target, &branch);
        }
        let _ = self.cmds.send(Cmd::Stateless(message, target));
    }

    /// Live transaction counts.
    pub async fn stats(&self) -> LayerStats {
        let (tx, rx) = oneshot::channel();
        let _ = self.cmds.send(Cmd::Stats(tx));
        rx.await.unwrap_or_default()
    }

    fn push_via(&self, request: &mut Message, target: &Target, branch: &str) {
        let sent_by = self
            .transports
            .sent_by(target.kind, target.addr)
            .unwrap_or(target.addr);
        let via = Via::new(target.kind.as_str(), sent_by, branch);
        request.headers.push_front(HeaderName::Via, via.to_bytes());
    }
}

#[derive(Clone)]
struct WeakLayer {
    cmds: mpsc::WeakUnboundedSender<Cmd>,
    transports: Transports,
}

impl WeakLayer {
    fn upgrade(&self) -> Option<TxLayer> {
        Some(TxLayer {
            cmds: self.cmds.upgrade()?,
            transports: self.transports.clone(),
        })
    }
}

enum Kind {
    ClientInvite(ClientInvite),
    Client(ClientNonInvite),
    ServerInvite(ServerInvite),
    Server(ServerNonInvite),
}

struct Entry {
    kind: Kind,
    target: Target,
    /// Server transactions: the request, to build replies from.
    request: Option<Message>,
    to_tag: String,
    events: Option<mpsc::UnboundedSender<ClientEvent>>,
    /// INVITE server transactions in Accepted: Call-ID, CSeq, From tag.
    dialog: Option<DialogRef>,
    /// Out-of-dialog server transactions: their entry in the merged-request
    /// index.
    merged: Option<MergedRef>,
}

type DialogRef = (Bytes, u32, Bytes);

/// Call-ID, CSeq number, From tag and method of an out-of-dialog request
/// (RFC 3261 §8.2.2.2).
type MergedRef = (Bytes, u32, Bytes, Method);

struct Actor {
    transports: Transports,
    config: LayerConfig,
    /// Entries are boxed: one is over 1 KB, and a table of them doubled
    /// and moved every entry as it grew (and kept twice the room).
    txs: HashMap<TxKey, Box<Entry>>,
    /// 2xx-answered INVITEs by (Call-ID, CSeq, From tag), to match the ACK
    /// that carries a new branch (§17.1.1.3).
    accepted: HashMap<DialogRef, TxKey>,
    /// Live out-of-dialog server transactions by Call-ID, CSeq, From tag and
    /// method, to spot a request that reached us twice by different paths.
    merged: HashMap<MergedRef, TxKey>,
    timers: DelayQueue<(TxKey, Timer)>,
    tu: mpsc::Sender<TuEvent>,
    handle: WeakLayer,
    out: Vec<Action>,
}

fn dialog_ref(m: &Message) -> Option<DialogRef> {
    Some((
        m.call_id()?.clone(),
        m.cseq()?.seq,
        m.from_tag().unwrap_or_default(),
    ))
}

/// Where responses to a request go (§18.2.2, RFC 3581): over the same
/// connection for streams, else to received/rport of the (stamped) Via,
/// from the socket the request arrived on.
fn response_target(req: &Message, source: &Source) -> Target {
    let addr = req
        .top_via()
        .and_then(|v| v.response_addr())
        .unwrap_or(source.remote);
    Target {
        kind: source.kind,
        addr: if source.kind.is_reliable() {
            source.remote
        } else {
            addr
        },
        conn: source.conn,
        local: Some(source.local),
    }
}

impl Actor {
    async fn run(
        mut self,
        mut inbound: mpsc::Receiver<Inbound>,
        mut cmds: mpsc::UnboundedReceiver<Cmd>,
    ) {
        let mut inbound_open = true;
        loop {
            tokio::select! {
                item = inbound.recv(), if inbound_open => match item {
                    Some(item) => self.on_inbound(item),
                    None => inbound_open = false,
                },
                cmd = cmds.recv() => match cmd {
                    Some(cmd) => self.on_cmd(cmd),
                    None if !inbound_open => return,
                    None => {}
                },
                Some(expired) = std::future::poll_fn(|cx| self.timers.poll_expired(cx)) => {
                    let (key, timer) = expired.into_inner();
                    self.on_timer(key, timer);
                }
            }
            if !inbound_open && self.txs.is_empty() && self.handle.upgrade().is_none() {
                return;
            }
        }
    }

    fn on_inbound(&mut self, item: Inbound) {
        match item {
            Inbound::Message { msg, source } if msg.is_request() => self.on_request(msg, source),
            Inbound::Message { msg, source } => self.on_response(msg, source),
            Inbound::Malformed { error, source } => {
                tracing::info!(message = "Malformed message.", remote = %source.remote, transport = %source.kind, error = %error.kind);
                if let Some(resp) = stateless_error_response(&error, &source) {
                    let _ = self.transports.send(&Target::reply_to(&source), resp);
                }
            }
            Inbound::SendFailed { target } => {
                let keys: Vec<TxKey> = self
                    .txs
                    .iter()
                    .filter(|(_, e)| e.target.addr == target.addr && e.target.kind == target.kind)
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in keys {
                    self.transport_error(&key);
                }
            }
        }
    }

    fn on_response(&mut self, resp: Message, source: Source) {
        // §8.1.3.3: a response with more than one Via is not for a UAC.
        if resp.headers.count(&HeaderName::Via) != 1 {
            tracing::debug!(message = "Response with several Vias dropped.", remote = %source.remote);
            return;
        }
        let Some(key) = super::TxKey::client_of_response(&resp) else {
            return;
        };
        let Some(entry) = self.txs.get_mut(&key) else {
            tracing::debug!(message = "Stray response dropped.", remote = %source.remote, code = resp.code());
            return;
        };
        match &mut entry.kind {
            Kind::ClientInvite(t) => t.on_response(resp, &mut self.out),
            Kind::Client(t) => t.on_response(resp, &mut self.out),
            _ => return,
        }
        self.apply(&key);
    }

    fn on_request(&mut self, mut req: Message, source: Source) {
        // §18.2.1 / RFC 3581: stamp received and rport on the top Via.
        if let Some(via) = req.top_via()
            && let Some(stamped) = via.stamped(source.remote)
            && let Some(h) = req.headers.first_mut(&HeaderName::Via)
        {
            h.value = stamped.to_bytes();
        }
        let Some(key) = TxKey::server(&req) else {
            return;
        };
        let Some(method) = req.method().cloned() else {
            return;
        };
        match method {
            Method::Ack => return self.on_ack(key, req, source),
            Method::Cancel if !self.txs.contains_key(&key) => {
                return self.on_new_cancel(key, req, source);
            }
            _ => {}
        }
        if let Some(entry) = self.txs.get_mut(&key) {
            match &mut entry.kind {
                Kind::ServerInvite(t) => t.on_request_retransmit(&mut self.out),
                Kind::Server(t) => t.on_request_retransmit(&mut self.out),
                _ => {}
            }
            return self.apply(&key);
        }
        let key = key.detached();
        self.new_server_tx(key.clone(), &req, &source);
        if self.is_merged(&key, &req) {
            return self.reply(&key, 482, "Loop Detected", Vec::new());
        }
        if let Err(rej) = precheck(&req, &self.config.policy) {
            tracing::debug!(message = "Request rejected by UAS checks.", code = rej.code, reason = %rej.reason);
            return self.reply(&key, rej.code, &rej.reason, rej.headers);
        }
        if method == Method::Options && self.config.answer_options && req.to_tag().is_none() {
            let headers = self.config.policy.capability_headers();
            return self.reply(&key, 200, "OK", headers);
        }
        if method == Method::Invite {
            self.reply(&key, 100, "Trying", Vec::new());
        }
        let Some(layer) = self.handle.upgrade() else {
            return self.reply(&key, 503, "Service Unavailable", Vec::new());
        };
        let tx = ServerTx {
            key: key.clone(),
            to_tag: self
                .txs
                .get(&key)
                .map(|e| e.to_tag.clone())
                .unwrap_or_default(),
            layer,
        };
        let event = TuEvent::Request {
            request: req,
            source,
            tx,
        };
        if self.tu.try_send(event).is_err() {
            tracing::warn!(message = "TU queue full, request answered 503.");
            self.reply(
                &key,
                503,
                "Service Unavailable",
                vec![(HeaderName::RetryAfter, "1".into())],
            );
        }
    }

    fn new_server_tx(&mut self, key: TxKey, req: &Message, source: &Source) {
        let reliable = source.kind.is_reliable();
        let timers = self.config.timers;
        let kind = if req.method() == Some(&Method::Invite) {
            Kind::ServerInvite(ServerInvite::new(reliable, timers))
        } else {
            Kind::Server(ServerNonInvite::new(reliable, timers))
        };
        self.txs.insert(
            key,
            Box::new(Entry {
                kind,
                target: response_target(req, source),
                request: Some(req.clone()),
                to_tag: random_token(),
                events: None,
                dialog: None,
                merged: None,
            }),
        );
    }

    /// RFC 3261 §8.2.2.2: an out-of-dialog request whose Call-ID, CSeq and
    /// From tag match a live transaction it does not belong to was merged
    /// (it reached us twice, forked upstream). Otherwise it is indexed.
    fn is_merged(&mut self, key: &TxKey, req: &Message) -> bool {
        if req.to_tag().is_some() {
            return false;
        }
        let (Some(call_id), Some(cseq), Some(method)) = (req.call_id(), req.cseq(), req.method())
        else {
            return false;
        };
        let from_tag = req.from_tag().unwrap_or_default();
        let mref: MergedRef = (
            Bytes::copy_from_slice(call_id),
            cseq.seq,
            Bytes::copy_from_slice(&from_tag),
            method.clone(),
        );
        match self.merged.get(&mref) {
            Some(other) if other != key && self.txs.contains_key(other) => true,
            _ => {
                self.merged.insert(mref.clone(), key.clone());
                if let Some(e) = self.txs.get_mut(key) {
                    e.merged = Some(mref);
                }
                false
            }
        }
    }

    fn on_ack(&mut self, key: TxKey, req: Message, source: Source) {
        let matched = if self.txs.contains_key(&key) {
            Some(key)
        } else {
            dialog_ref(&req).and_then(|d| self.accepted.get(&d).cloned())
        };
        let mut for_2xx = matched.is_none();
        if let Some(key) = matched {
            if let Some(Entry {
                kind: Kind::ServerInvite(t),
                ..
            }) = self.txs.get_mut(&key).map(|e| &mut **e)
            {
                for_2xx = t.on_ack(&mut self.out);
            }
            self.apply(&key);
        }
        if for_2xx {
            let _ = self.tu.try_send(TuEvent::Ack {
                request: req,
                source,
            });
        }
    }

    fn on_new_cancel(&mut self, key: TxKey, req: Message, source: Source) {
        let key = key.detached();
        self.new_server_tx(key.clone(), &req, &source);
        let invite = TxKey::cancelled_invite(&req);
        let state = invite
            .as_ref()
            .and_then(|k| match self.txs.get(k).map(|e| &**e) {
                Some(Entry {
                    kind: Kind::ServerInvite(t),
                    ..
                }) => Some(t.state),
                _ => None,
            });
        match (state, invite) {
            (Some(server_inv::State::Proceeding), Some(invite)) => {
                self.reply(&key, 200, "OK", Vec::new());
                let _ = self.tu.try_send(TuEvent::Cancelled { invite });
            }
            // Too late to cancel: the INVITE already has its final answer.
            (Some(_), _) => self.reply(&key, 200, "OK", Vec::new()),
            (None, _) => self.reply(&key, 481, "Call/Transaction Does Not Exist", Vec::new()),
        }
    }

    fn reply(&mut self, key: &TxKey, code: u16, reason: &str, headers: Vec<(HeaderName, String)>) {
        let Some(entry) = self.txs.get(key) else {
            return;
        };
        let Some(req) = &entry.request else {
            return;
        };
        let mut resp = Message::response_to(req, code, reason, Some(&entry.to_tag));
        for (name, value) in headers {
            resp.headers.push(name, value);
        }
        resp.headers.push(HeaderName::Server, crate::USER_AGENT);
        self.respond(key, resp);
    }

    fn respond(&mut self, key: &TxKey, resp: Message) {
        let Some(code) = resp.code() else {
            return;
        };
        let Some(entry) = self.txs.get_mut(key) else {
            tracing::debug!(
                message = "Response for a finished transaction dropped.",
                code
            );
            return;
        };
        let wire = resp.to_bytes();
        match &mut entry.kind {
            Kind::ServerInvite(t) => {
                t.on_response(code, wire, &mut self.out);
                if (200..300).contains(&code)
                    && entry.dialog.is_none()
                    && let Some((call_id, seq, tag)) = entry.request.as_ref().and_then(dialog_ref)
                {
                    let d = (
                        Bytes::copy_from_slice(&call_id),
                        seq,
                        Bytes::copy_from_slice(&tag),
                    );
                    self.accepted.insert(d.clone(), key.clone());
                    entry.dialog = Some(d);
                }
            }
            Kind::Server(t) => t.on_response(code, wire, &mut self.out),
            _ => return,
        }
        if code >= 200 {
            // Only retransmissions of the final response remain: the
            // request (and its receive buffer) is no longer needed.
            entry.request = None;
        }
        self.apply(key);
    }

    fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Respond(key, resp) => self.respond(&key, resp),
            Cmd::Reply {
                key,
                code,
                reason,
                headers,
            } => self.reply(&key, code, &reason, headers),
            Cmd::Request {
                key,
                request,
                target,
                events,
            } => self.start_client(key, request, target, events),
            Cmd::Cancel {
                invite,
                key,
                events,
            } => {
                let cancel = match self.txs.get(&invite).map(|e| &**e) {
                    Some(Entry {
                        kind: Kind::ClientInvite(t),
                        target,
                        ..
                    }) if matches!(
                        t.state,
                        super::client_inv::State::Calling | super::client_inv::State::Proceeding
                    ) =>
                    {
                        Some((build_cancel(t.request()), *target))
                    }
                    _ => None,
                };
                match cancel {
                    Some((cancel, target)) => self.start_client(key, cancel, target, events),
                    None => {
                        let _ = events.send(ClientEvent::TransportError);
                    }
                }
            }
            Cmd::Stateless(msg, target) => {
                if let Err(e) = self.transports.send(&target, msg.to_bytes()) {
                    tracing::debug!(message = "Stateless send failed.", error = %e);
                }
            }
            Cmd::Stats(reply) => {
                let server = self
                    .txs
                    .values()
                    .filter(|e| matches!(e.kind, Kind::ServerInvite(_) | Kind::Server(_)))
                    .count();
                let _ = reply.send(LayerStats {
                    server,
                    client: self.txs.len() - server,
                });
            }
        }
    }

    fn start_client(
        &mut self,
        key: TxKey,
        request: Message,
        target: Target,
        events: mpsc::UnboundedSender<ClientEvent>,
    ) {
        let reliable = target.kind.is_reliable();
        let timers = self.config.timers;
        let kind = if request.method() == Some(&Method::Invite) {
            Kind::ClientInvite(ClientInvite::start(
                request,
                reliable,
                timers,
                &mut self.out,
            ))
        } else {
            let t = ClientNonInvite::start(&request, reliable, timers, &mut self.out);
            Kind::Client(t)
        };
        self.txs.insert(
            key.clone(),
            Box::new(Entry {
                kind,
                target,
                request: None,
                to_tag: String::new(),
                events: Some(events),
                dialog: None,
                merged: None,
            }),
        );
        self.apply(&key);
    }

    fn on_timer(&mut self, key: TxKey, timer: Timer) {
        let Some(entry) = self.txs.get_mut(&key) else {
            return;
        };
        match &mut entry.kind {
            Kind::ClientInvite(t) => t.on_timer(timer, &mut self.out),
            Kind::Client(t) => t.on_timer(timer, &mut self.out),
            Kind::ServerInvite(t) => t.on_timer(timer, &mut self.out),
            Kind::Server(t) => t.on_timer(timer, &mut self.out),
        }
        self.apply(&key);
    }

    fn transport_error(&mut self, key: &TxKey) {
        let Some(entry) = self.txs.get_mut(key) else {
            return;
        };
        match &mut entry.kind {
            Kind::ClientInvite(t) => t.on_transport_error(&mut self.out),
            Kind::Client(t) => t.on_transport_error(&mut self.out),
            Kind::ServerInvite(t) => t.on_transport_error(&mut self.out),
            Kind::Server(t) => t.on_transport_error(&mut self.out),
        }
        self.apply(key);
    }

    /// Carries out what a state machine asked for.
    fn apply(&mut self, key: &TxKey) {
        let mut failed = false;
        let mut actions = std::mem::take(&mut self.out);
        for action in actions.drain(..) {
            match action {
                Action::Transmit(bytes) => {
                    if let Some(entry) = self.txs.get(key)
                        && let Err(e) = self.transports.send(&entry.target, bytes)
                    {
                        tracing::debug!(message = "Transaction send failed.", error = %e);
                        failed = true;
                    }
                }
                Action::Schedule(timer, after) => {
                    self.timers.insert((key.clone(), timer), after);
                }
                Action::Deliver(event) => {
                    if let Some(tx) = self.txs.get(key).and_then(|e| e.events.as_ref()) {
                        let _ = tx.send(event);
                    }
                }
                Action::AckTimeout => {
                    let _ = self.tu.try_send(TuEvent::AckTimeout {
                        invite: key.clone(),
                    });
                }
                Action::Terminated => {
                    if let Some(entry) = self.txs.remove(key) {
                        if let Some(d) = entry.dialog {
                            self.accepted.remove(&d);
                        }
                        if let Some(m) = entry.merged
                            && self.merged.get(&m) == Some(key)
                        {
                            self.merged.remove(&m);
                        }
                    }
                }
            }
        }
        self.out = actions;
        if failed {
            self.transport_error(key);
        }
    }
}

/// The CANCEL for an INVITE (§9.1): same Request-URI, Call-ID, To, From,
/// CSeq number, the one Via and the Route set.
fn build_cancel(invite: &Message) -> Message {
    let mut cancel = Message {
        start: invite.start.clone(),
        headers: crate::message::Headers::with_capacity(8),
        body: Bytes::new(),
    };
    if let crate::message::StartLine::Request { method, .. } = &mut cancel.start {
        *method = Method::Cancel;
    }
    if let Some(v) = invite.headers.get(&HeaderName::Via) {
        cancel.headers.push(HeaderName::Via, v.clone());
    }
    cancel.headers.push(HeaderName::MaxForwards, "70");
    for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
        if let Some(v) = invite.headers.get(&name) {
            cancel.headers.push(name, v.clone());
        }
    }
    let seq = invite.cseq().map_or(1, |c| c.seq);
    cancel
        .headers
        .push(HeaderName::CSeq, format!("{seq} CANCEL"));
    for r in invite.headers.get_all(&HeaderName::Route) {
        cancel.headers.push(HeaderName::Route, r.clone());
    }
    cancel
        .headers
        .push(HeaderName::UserAgent, crate::USER_AGENT);
    cancel
}
