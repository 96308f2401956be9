//! The transaction user: new INVITEs become calls (after limits and
//! routing), everything else goes to the call that owns its dialog.

use crate::call::{Call, CallMsg, InDialogRequest, LegId, ScriptDriver};
use crate::config::CoreConfig;
use crate::limits::RateLimiter;
use crate::route::RouteDecision;
use bytes::Bytes;
use media::MediaEngine;
use sip::message::{HeaderName, Message, Method};
use sip::transaction::{TuEvent, TxKey, TxLayer};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tokio::sync::mpsc;

/// Counters the dispatcher keeps, readable from anywhere without a lock.
#[derive(Debug, Default)]
pub struct CoreStats {
    /// Calls alive now.
    pub active_calls: AtomicUsize,
    /// Calls started since start-up.
    pub total_calls: AtomicU64,
    /// INVITEs refused by limits (503).
    pub rejected_by_limits: AtomicU64,
}

/// A dialog as the dispatcher indexes it: Call-ID and our tag.
pub(crate) type DialogKey = (Bytes, Bytes);

/// What calls tell the dispatcher.
#[derive(Debug)]
pub(crate) enum DispatcherMsg {
    /// Route requests of this dialog to the call's leg.
    Register {
        call: u64,
        key: DialogKey,
        leg: LegId,
    },
    /// The call is over: forget everything about it.
    Ended { call: u64 },
}

struct CallEntry {
    tx: mpsc::UnboundedSender<CallMsg>,
    keys: Vec<DialogKey>,
    invite: TxKey,
}

/// The transaction user of the SIP layer.
pub struct Dispatcher {
    layer: TxLayer,
    media: MediaEngine,
    config: Arc<CoreConfig>,
    stats: Arc<CoreStats>,
    calls: HashMap<u64, CallEntry>,
    dialogs: HashMap<DialogKey, (u64, LegId)>,
    invites: HashMap<TxKey, u64>,
    limiter: RateLimiter,
    next_call: u64,
    control_tx: mpsc::UnboundedSender<DispatcherMsg>,
    handler: Option<Arc<dyn api::CallHandler>>,
    /// Each listener's name for call views, made once (`udp:IP:PORT`).
    listeners: Listeners,
}

/// Most listener names the dispatcher keeps (a wildcard listener could
/// see many local addresses; past this each call formats its own).
const MAX_LISTENER_NAMES: usize = 64;

/// The name of the listener `source` came in on, for call views: from
/// `known`, or made and kept there.
fn listener_name(known: &mut Listeners, source: &sip::transport::Source) -> Arc<str> {
    let found = known
        .iter()
        .find(|(kind, local, _)| *kind == source.kind && *local == source.local);
    if let Some((_, _, name)) = found {
        return name.clone();
    }
    let name = crate::view::listener_name(source);
    if known.len() < MAX_LISTENER_NAMES {
        known.push((source.kind, source.local, name.clone()));
    }
    name
}

/// Listener names by transport and local address.
type Listeners = Vec<(
    sip::transport::TransportKind,
    std::net::SocketAddr,
    Arc<str>,
)>;

impl Dispatcher {
    /// Starts the dispatcher on the layer's event queue. With a `handler`
    /// (a dial plan), every new call runs it; without one the static
    /// routes of `config` apply.
    pub fn spawn(
        layer: TxLayer,
        events: mpsc::Receiver<TuEvent>,
        media: MediaEngine,
        config: CoreConfig,
        handler: Option<Arc<dyn api::CallHandler>>,
    ) -> Arc<CoreStats> {
        let stats = Arc::new(CoreStats::default());
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let limiter = RateLimiter::new(config.calls_per_second_per_source);
        let d = Dispatcher {
            layer,
            media,
            config: Arc::new(config),
            stats: stats.clone(),
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            invites: HashMap::new(),
            limiter,
            next_call: 1,
            control_tx,
            handler,
            listeners: Vec::new(),
        };
        tokio::spawn(d.run(events, control_rx));
        stats
    }

    async fn run(
        mut self,
        mut events: mpsc::Receiver<TuEvent>,
        mut control: mpsc::UnboundedReceiver<DispatcherMsg>,
    ) {
        let interval = self.config.status_interval;
        let mut status =
            tokio::time::interval(interval.unwrap_or(std::time::Duration::from_secs(3600)));
        status.tick().await;
        // Bindings expire and nonce state ages by the second.
        let mut housekeeping = tokio::time::interval(std::time::Duration::from_secs(1));
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = housekeeping.tick() => {
                    let users = &self.config.users;
                    let expired = users.registrar.expire(crate::users::unix_now());
                    if expired > 0 {
                        tracing::debug!(message = "Bindings expired.", count = expired);
                    }
                    users.auth.prune(std::time::Instant::now());
                }
                ev = events.recv() => match ev {
                    Some(ev) => self.on_event(ev),
                    None => return,
                },
                Some(msg) = control.recv() => self.on_control(msg),
                _ = status.tick() => {
                    self.limiter.prune(tokio::time::Instant::now());
                    if interval.is_some() {
                        self.log_status().await;
                    }
                }
            }
        }
    }

    async fn log_status(&self) {
        let tx = self.layer.stats().await;
        tracing::info!(
            message = "Status.",
            calls = self.calls.len(),
            total_calls = self.stats.total_calls.load(Ordering::Relaxed),
            media_sessions = self.media.sessions(),
            media_ports = self.media.ports_in_use(),
            media_ports_idle = self.media.ports_idle(),
            server_transactions = tx.server,
            client_transactions = tx.client,
            dialogs = self.dialogs.len(),
            registrations = self.config.users.registrar.count(),
            dialplan = %self.handler.as_ref().map(|h| h.version()).unwrap_or_else(|| "static".into()),
        );
    }

    fn on_control(&mut self, msg: DispatcherMsg) {
        match msg {
            DispatcherMsg::Register { call, key, leg } => {
                if let Some(entry) = self.calls.get_mut(&call) {
                    entry.keys.push(key.clone());
                    self.dialogs.insert(key, (call, leg));
                }
            }
            DispatcherMsg::Ended { call } => {
                if let Some(entry) = self.calls.remove(&call) {
                    for key in entry.keys {
                        self.dialogs.remove(&key);
                    }
                    self.invites.remove(&entry.invite);
                }
                self.stats
                    .active_calls
                    .store(self.calls.len(), Ordering::Relaxed);
            }
        }
    }

    fn on_event(&mut self, ev: TuEvent) {
        match ev {
            TuEvent::Request {
                request,
                source,
                tx,
            } => {
                let method = request.method().cloned().unwrap_or(Method::Options);
                if let Some(to_tag) = request.to_tag() {
                    let key = dialog_key(&request, to_tag);
                    match key.and_then(|k| self.dialogs.get(&k)).copied() {
                        Some((call, leg)) => self.send_to_call(
                            call,
                            CallMsg::Request(Box::new(InDialogRequest {
                                leg,
                                request,
                                source,
                                tx,
                            })),
                        ),
                        None => tx.reply(481, "Call/Transaction Does Not Exist"),
                    }
                    return;
                }
                match method {
                    Method::Invite => self.new_call(request, source, tx),
                    Method::Register => crate::registration::on_register(
                        &self.config.users,
                        self.layer.transports(),
                        request,
                        source,
                        tx,
                    ),
                    // No out-of-dialog MESSAGE routing yet.
                    Method::Message => tx.reply(480, "Temporarily Unavailable"),
                    _ => tx.reply(481, "Call/Transaction Does Not Exist"),
                }
            }
            TuEvent::Ack { request, .. } => {
                let key = request.to_tag().and_then(|t| dialog_key(&request, t));
                if let Some((call, leg)) = key.and_then(|k| self.dialogs.get(&k)).copied() {
                    self.send_to_call(
                        call,
                        CallMsg::Ack {
                            leg,
                            request: Box::new(request),
                        },
                    );
                }
            }
            TuEvent::Cancelled { invite } => {
                if let Some(call) = self.invites.get(&invite).copied() {
                    self.send_to_call(call, CallMsg::Cancelled);
                }
            }
            TuEvent::AckTimeout { invite } => {
                if let Some(call) = self.invites.get(&invite).copied() {
                    self.send_to_call(call, CallMsg::AckTimeout);
                }
            }
        }
    }

    fn send_to_call(&mut self, call: u64, msg: CallMsg) {
        if let Some(entry) = self.calls.get(&call) {
            let _ = entry.tx.send(msg);
        }
    }

    fn new_call(
        &mut self,
        request: Message,
        source: sip::transport::Source,
        tx: sip::transaction::ServerTx,
    ) {
        let retry_after = self.config.retry_after.to_string();
        if self.calls.len() >= self.config.max_calls
            || !self
                .limiter
                .allow(source.remote.ip(), tokio::time::Instant::now())
        {
            self.stats
                .rejected_by_limits
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(message = "Call refused by limits.", remote = %source.remote);
            tx.reply_with(
                503,
                "Service Unavailable",
                vec![(HeaderName::RetryAfter, retry_after)],
            );
            return;
        }
        // A call the trunk sends to Tandem's registration: trusted, and
        // the dialled number is the To user (the R-URI is our contact).
        let trunk = self
            .config
            .trunks
            .iter()
            .find(|t| t.matches(&request, source.remote.ip()))
            .cloned();
        let auth_user = match &trunk {
            Some(_) => None,
            None => match self.admit(&request, &source, &tx) {
                Some(user) => user,
                None => return,
            },
        };
        let dialled = match &trunk {
            Some(_) => request
                .to_hdr()
                .and_then(|t| t.uri.user_str().map(str::to_string)),
            None => request.uri().and_then(|u| u.user_str().map(str::to_string)),
        }
        .unwrap_or_default();
        let (decision, script) = match &self.handler {
            Some(handler) => {
                let (link, rx) = api::CallLink::pair();
                let listener = listener_name(&mut self.listeners, &source);
                let mut view = crate::view::call_view(&request, &source, listener);
                view.auth_user = auth_user;
                if let Some(t) = &trunk {
                    view.user = dialled.clone();
                    view.vars
                        .insert("trunk".into(), api::Value::Str(t.name.clone()));
                }
                match handler.start(view, link) {
                    Ok((version, run)) => (
                        RouteDecision::empty(),
                        Some(ScriptDriver::new(rx, version, run)),
                    ),
                    Err(e) => {
                        tracing::error!(message = "Dial plan cannot take the call.", error = %e);
                        tx.reply(500, "Server Internal Error");
                        return;
                    }
                }
            }
            None => match self.default_route(&request, &dialled) {
                Ok(d) => (d, None),
                Err((code, reason)) => {
                    tx.reply(code, reason);
                    return;
                }
            },
        };
        let id = self.next_call;
        self.next_call += 1;
        let (call_tx, call_rx) = mpsc::unbounded_channel();
        let a_key = dialog_key(&request, Bytes::copy_from_slice(tx.to_tag().as_bytes()));
        let mut keys = Vec::new();
        if let Some(k) = a_key.as_ref().map(detached) {
            self.dialogs.insert(k.clone(), (id, LegId::A));
            keys.push(k);
        }
        self.invites.insert(tx.key().clone(), id);
        self.calls.insert(
            id,
            CallEntry {
                tx: call_tx.clone(),
                keys,
                invite: tx.key().clone(),
            },
        );
        self.stats.total_calls.fetch_add(1, Ordering::Relaxed);
        self.stats
            .active_calls
            .store(self.calls.len(), Ordering::Relaxed);
        let call = Call::new(
            id,
            self.config.clone(),
            self.layer.clone(),
            self.media.clone(),
            self.control_tx.clone(),
            call_tx,
            request,
            source,
            tx,
            decision,
            script,
        );
        let span = call.span();
        tokio::spawn(tracing::Instrument::instrument(call.run(call_rx), span));
    }
}

impl Dispatcher {
    /// Authenticates a new INVITE (407 challenge, 403, or let in). Returns
    /// the authenticated user (`Some(None)`: let in unauthenticated, as a
    /// trusted source, with no users configured, or for the dial plan to
    /// decide), or `None` once the INVITE has been answered.
    fn admit(
        &self,
        request: &Message,
        source: &sip::transport::Source,
        tx: &sip::transaction::ServerTx,
    ) -> Option<Option<String>> {
        let users = &self.config.users;
        let verdict = users.auth.check(
            request,
            source.remote.ip(),
            auth::Kind::Proxy,
            std::time::Instant::now(),
        );
        let call_id = || crate::view::call_id_text(request);
        match verdict {
            auth::Verdict::Trusted | auth::Verdict::Open => Some(None),
            auth::Verdict::Authenticated { user } => {
                if users.strict_identity && !auth::from_matches(request, &user) {
                    tracing::warn!(
                        message = "Call refused: From is not the authenticated user.",
                        user = %user,
                        call_id = %call_id(),
                        source = %source.remote,
                    );
                    tx.reply(403, "Forbidden");
                    return None;
                }
                Some(Some(user))
            }
            // The dial plan decides about calls without credentials
            // (`call.auth_user` is nil; `call:challenge()` asks for them).
            // (Credentials that did not pass — stale, another algorithm —
            // are challenged at once, so the phone's retry keeps `stale`.)
            auth::Verdict::Challenge(_)
                if !users.challenge_calls
                    && request.header(&HeaderName::ProxyAuthorization).is_none() =>
            {
                Some(None)
            }
            auth::Verdict::Challenge(r) | auth::Verdict::Blocked(r) => {
                tx.reply_with(r.code, r.reason, r.headers);
                None
            }
            auth::Verdict::Forbidden { reply, why } => {
                tracing::info!(
                    message = "Call refused: authentication failed.",
                    reason = %why,
                    call_id = %call_id(),
                    source = %source.remote,
                );
                tx.reply_with(reply.code, reply.reason, reply.headers);
                None
            }
        }
    }

    /// The route of a new call without a dial plan: the contacts of a
    /// registered user (all at once), 480 for a known user who is not
    /// registered, else the static routes.
    fn default_route(
        &self,
        request: &Message,
        user: &str,
    ) -> Result<RouteDecision, (u16, &'static str)> {
        let users = &self.config.users;
        let contacts = users.contacts(user);
        if !contacts.is_empty() {
            return Ok(RouteDecision {
                targets: contacts,
                mode: crate::route::ForkMode::Parallel,
                ..RouteDecision::empty()
            });
        }
        if !user.is_empty() && users.auth.directory().get(user).is_some() {
            tracing::info!(message = "User not registered.", user = %user);
            return Err((480, "Temporarily Unavailable"));
        }
        self.static_route(request, user)
    }

    /// The static route of a new call, or the failure to answer with.
    fn static_route(
        &self,
        request: &Message,
        user: &str,
    ) -> Result<RouteDecision, (u16, &'static str)> {
        self.config.router.route(user).map_err(|e| {
            let call_id = crate::view::call_id_text(request);
            tracing::info!(message = "Call not routed.", user = %user, call_id = %call_id, error = %e);
            match e {
                crate::route::RouteError::NoRoute(_) => (404, "Not Found"),
                crate::route::RouteError::BadTarget(_) => (500, "Server Internal Error"),
            }
        })
    }
}

/// The dialog key of a request, sharing its buffer (for lookups).
fn dialog_key(request: &Message, local_tag: Bytes) -> Option<DialogKey> {
    Some((request.call_id()?.clone(), local_tag))
}

/// A copy of a key that keeps no receive buffer alive (for the index).
fn detached((call_id, tag): &DialogKey) -> DialogKey {
    (Bytes::copy_from_slice(call_id), Bytes::copy_from_slice(tag))
}
