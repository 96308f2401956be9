//! One call: an actor task owning the A leg, every B-leg attempt, the media
//! session and the timers. Every SIP event of the call is a [`CallMsg`] to
//! this task, so the races between legs are settled here, in order.

mod gate;
mod prack;
mod relay;
mod script;
mod session_timer;
mod setup;

use crate::config::CoreConfig;
use crate::dispatcher::DispatcherMsg;
use crate::route::{ResolvedTarget, RouteDecision};
use bytes::Bytes;
use media::{MediaEngine, MediaSession};
pub(crate) use script::{DEFAULT_RING_TIMEOUT, ScriptDriver};
pub(crate) use setup::token;
use sip::dialog::Dialog;
use sip::message::{HeaderName, Message, Method};
use sip::transaction::{ClientEvent, ClientTx, ServerTx, TxKey, TxLayer};
use sip::transport::{Source, Target, TransportKind};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long a call waits for the BYEs and CANCELs of its ending.
const ENDING_GRACE: Duration = Duration::from_secs(32);

/// Which leg of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum LegId {
    /// The caller's dialog.
    A,
    /// The B-leg attempt with this index.
    B(usize),
}

/// What the dispatcher and the client transactions tell a call.
///
/// The messages are boxed: a tokio channel allocates room for 32 of them
/// when it is made, and every call has one (an unboxed request made that
/// 20 KB per call, kept until the call's last transaction expired).
#[derive(Debug)]
pub(crate) enum CallMsg {
    /// A request inside one of the call's dialogs.
    Request(Box<InDialogRequest>),
    /// An ACK inside one of the call's dialogs.
    Ack { leg: LegId, request: Box<Message> },
    /// The caller cancelled the INVITE.
    Cancelled,
    /// The caller never ACKed our final response.
    AckTimeout,
    /// An event of a client transaction the call started.
    Client { id: u64, event: ClientEvent },
    /// That client transaction is over.
    ClientDone { id: u64 },
}

/// A request inside one of the call's dialogs, with its transaction.
#[derive(Debug)]
pub(crate) struct InDialogRequest {
    pub(crate) leg: LegId,
    pub(crate) request: Message,
    pub(crate) source: Source,
    pub(crate) tx: ServerTx,
}

/// What a client transaction of the call is for.
#[derive(Debug)]
enum Pending {
    /// The INVITE of attempt `i`.
    Invite(usize),
    /// A request whose answer does not matter (CANCEL, PRACK).
    Ignore,
    /// A BYE on a leg.
    Bye(LegId),
    /// A session refresh (UPDATE) Tandem sent on a leg.
    Refresh(LegId),
    /// A request relayed from leg `from` to leg `to`; its answer goes back
    /// through `tx`.
    Relay {
        from: LegId,
        to: LegId,
        request: Message,
        tx: ServerTx,
        answered: bool,
        sent_cseq: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttemptState {
    /// INVITE sent, nothing but 100 back.
    Trying,
    /// A provisional response came back.
    Early,
    /// Answered with a 2xx.
    Answered,
    /// Failed, cancelled or answered and torn down.
    Done,
}

/// A final failure of an attempt, as it may be relayed to A.
#[derive(Debug, Clone)]
struct Failure {
    code: u16,
    reason: String,
    /// Headers relayed with it (the Contacts of a relayed 3xx).
    headers: Vec<(HeaderName, String)>,
}

impl Failure {
    fn new(code: u16, reason: &str) -> Failure {
        Failure {
            code,
            reason: reason.to_string(),
            headers: Vec::new(),
        }
    }
}

/// One B-leg attempt toward one target.
#[derive(Debug)]
struct Attempt {
    target: ResolvedTarget,
    invite: Message,
    key: TxKey,
    from_tag: String,
    state: AttemptState,
    dialog: Option<Dialog>,
    deadline: Option<Instant>,
    cancelled: bool,
    timed_out: bool,
    bye_sent: bool,
    /// Challenges answered so far (at most two per attempt).
    auth_tries: u8,
    /// The early dialog of reliable provisionals (RFC 3262).
    early: Option<Dialog>,
    /// A 422 was answered with a larger interval already.
    se_retried: bool,
    /// Cancelled before any provisional: send the CANCEL with the first.
    cancel_on_provisional: bool,
    /// The RSeq of the last reliable provisional PRACKed.
    last_rseq: Option<u32>,
}

impl Attempt {
    /// The CSeq number of the INVITE as last sent (its ACK reuses it).
    fn invite_cseq(&self) -> u32 {
        self.invite.cseq().map_or(1, |c| c.seq)
    }
}

/// The ACK of a 2xx that waits for the answer of a late offer.
#[derive(Debug)]
struct HeldAck {
    /// CSeq of the INVITE it acknowledges.
    cseq: u32,
    /// The ACK, once sent (resent on 2xx retransmissions).
    sent: Option<Message>,
}

fn media_side(leg: LegId) -> media::Side {
    match leg {
        LegId::A => media::Side::A,
        LegId::B(_) => media::Side::B,
    }
}

fn leg_slot(leg: LegId) -> usize {
    match leg {
        LegId::A => 0,
        LegId::B(_) => 1,
    }
}

/// Where the call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Routing and ringing: no final answer to A yet.
    Setup,
    /// A cancelled; waiting for the attempts to end.
    Cancelling,
    /// Answered on both legs.
    Confirmed,
    /// BYEs sent; waiting for their answers.
    Ending,
    /// Over.
    Done,
}

/// A call.
pub(crate) struct Call {
    id: u64,
    config: Arc<CoreConfig>,
    layer: TxLayer,
    engine: MediaEngine,
    media: Option<MediaSession>,
    control: mpsc::UnboundedSender<DispatcherMsg>,
    me: mpsc::UnboundedSender<CallMsg>,
    a_invite: Message,
    a_source: Source,
    a_tx: ServerTx,
    a_tag: String,
    a_dialog: Option<Dialog>,
    a_bye_sent: bool,
    decision: RouteDecision,
    next_target: usize,
    attempts: Vec<Attempt>,
    winner: Option<usize>,
    b_offer: Option<Bytes>,
    failures: Vec<Failure>,
    /// Redirects followed so far.
    redirects: u8,
    pending: HashMap<u64, Pending>,
    next_id: u64,
    state: State,
    ending_deadline: Option<Instant>,
    call_id: String,
    /// The reliable provisional to A awaiting its PRACK.
    a_reliable: Option<prack::ReliableProvisional>,
    /// A provisional to A waiting for the previous one's PRACK.
    a_queued: Option<Message>,
    /// The 2xx to A, held until A PRACKs the early SDP (RFC 3262 §3).
    a_answer_held: Option<Message>,
    /// The last RSeq sent to A.
    a_rseq: u32,
    /// Session timer of the A leg.
    a_timer: Option<session_timer::SessionTimer>,
    /// Session timer of the winning B leg.
    b_timer: Option<session_timer::SessionTimer>,
    /// The SDP in force from A and from B (the last completed offer/answer),
    /// to restore the media when a later offer is refused.
    sdp_in_force: [Option<Bytes>; 2],
    /// ACKs held back for late offers, by the leg they go to.
    held_acks: HashMap<LegId, HeldAck>,
    /// The dial plan driving the call (`None`: the static route).
    script: Option<ScriptDriver>,
}

impl Call {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: u64,
        config: Arc<CoreConfig>,
        layer: TxLayer,
        engine: MediaEngine,
        control: mpsc::UnboundedSender<DispatcherMsg>,
        me: mpsc::UnboundedSender<CallMsg>,
        a_invite: Message,
        a_source: Source,
        a_tx: ServerTx,
        decision: RouteDecision,
        script: Option<ScriptDriver>,
    ) -> Call {
        let call_id = a_invite
            .call_id()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .unwrap_or_default();
        let a_tag = a_tx.to_tag().to_string();
        Call {
            id,
            config,
            layer,
            engine,
            media: None,
            control,
            me,
            a_invite,
            a_source,
            a_tx,
            a_tag,
            a_dialog: None,
            a_bye_sent: false,
            decision,
            next_target: 0,
            attempts: Vec::new(),
            winner: None,
            b_offer: None,
            failures: Vec::new(),
            redirects: 0,
            pending: HashMap::new(),
            next_id: 1,
            state: State::Setup,
            ending_deadline: None,
            call_id,
            a_reliable: None,
            a_queued: None,
            a_answer_held: None,
            a_rseq: 0,
            a_timer: None,
            b_timer: None,
            sdp_in_force: [None, None],
            held_acks: HashMap::new(),
            script,
        }
    }

    /// The tracing span of this call (every log line names its Call-ID).
    pub(crate) fn span(&self) -> tracing::Span {
        match &self.script {
            Some(s) => tracing::info_span!("call", call_id = %self.call_id, dialplan = %s.version),
            None => tracing::info_span!("call", call_id = %self.call_id),
        }
    }

    /// Runs the call to its end.
    pub(crate) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<CallMsg>) {
        self.start().await;
        // One timer for the call's deadlines, moved when the next one
        // changes: a new timer per turn of the loop registered and
        // removed an entry in the runtime's shared timer wheel for every
        // SIP message and command of every call.
        let mut timer = Box::pin(tokio::time::sleep_until(Instant::now()));
        let mut armed: Option<Instant> = None;
        while self.state != State::Done {
            let deadline = self.next_deadline();
            if deadline != armed {
                if let Some(d) = deadline {
                    timer.as_mut().reset(d);
                }
                armed = deadline;
            }
            let media_watch = self.state == State::Confirmed && self.media.is_some();
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => self.on_msg(msg).await,
                    None => break,
                },
                cmd = next_command(self.script.as_mut()) => match cmd {
                    Some(cmd) => self.on_command(cmd).await,
                    None => {
                        self.on_command(api::Command::Done(Err(api::ScriptError {
                            script: self.script.as_ref().map(|s| s.version.clone()).unwrap_or_default(),
                            line: None,
                            message: "the dial plan stopped without finishing".into(),
                        })))
                        .await
                    }
                },
                _ = &mut timer, if armed.is_some() => {
                    // Set again next turn, even to the same instant.
                    armed = None;
                    self.on_deadline().await
                }
                _ = media_inactive(self.media.as_ref()), if media_watch => {
                    tracing::info!(message = "No media for too long, hanging up.");
                    self.hangup_both();
                }
            }
        }
        self.script_call_over();
        drop(self.media.take());
        tracing::debug!(message = "Call ended.");
        let _ = self.control.send(DispatcherMsg::Ended { call: self.id });
    }

    async fn on_msg(&mut self, msg: CallMsg) {
        match msg {
            CallMsg::Request(r) => {
                let InDialogRequest {
                    leg,
                    request,
                    source,
                    tx,
                } = *r;
                self.on_request(leg, request, source, tx).await
            }
            CallMsg::Ack { leg, request } => self.on_ack(leg, *request).await,
            CallMsg::Cancelled => self.on_cancel(),
            CallMsg::AckTimeout => {
                tracing::info!(message = "Caller never acknowledged the answer, hanging up.");
                self.hangup_both();
            }
            CallMsg::Client { id, event } => self.on_client(id, event).await,
            CallMsg::ClientDone { id } => {
                self.pending.remove(&id);
                self.check_done();
            }
        }
    }

    /// Starts a client transaction's event forwarding into this call.
    fn track(&mut self, mut tx: ClientTx, pending: Pending) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(id, pending);
        let me = self.me.clone();
        tokio::spawn(async move {
            while let Some(event) = tx.next().await {
                if me.send(CallMsg::Client { id, event }).is_err() {
                    return;
                }
            }
            let _ = me.send(CallMsg::ClientDone { id });
        });
        id
    }

    async fn on_client(&mut self, id: u64, event: ClientEvent) {
        let Some(pending) = self.pending.get(&id) else {
            return;
        };
        match pending {
            Pending::Invite(i) => {
                let i = *i;
                self.on_attempt_event(i, event).await;
            }
            Pending::Ignore => {}
            Pending::Bye(leg) => {
                let leg = *leg;
                let done = match &event {
                    ClientEvent::Response(r) => r.code().is_some_and(|c| c >= 200),
                    _ => true,
                };
                if done {
                    self.pending.remove(&id);
                    tracing::debug!(message = "BYE finished.", ?leg);
                    self.check_done();
                }
            }
            Pending::Relay { .. } => self.on_relay_event(id, event).await,
            Pending::Refresh(leg) => {
                let leg = *leg;
                let code = match &event {
                    ClientEvent::Response(r) => r.code(),
                    _ => Some(408),
                };
                if code.is_some_and(|c| c >= 200) {
                    self.pending.remove(&id);
                    self.on_refresh_response(leg, code);
                }
            }
        }
    }

    /// An ACK from `leg`. For a late offer (an INVITE without SDP, whose
    /// 2xx carried the offer) it carries the answer: the ACK held back on
    /// the other leg goes out now, with that answer rewritten. Any other ACK
    /// needs nothing: the other leg's 2xx was ACKed when it arrived.
    async fn on_ack(&mut self, leg: LegId, request: Message) {
        let Some(other) = self.other(leg) else { return };
        let Some(held) = self.held_acks.get(&other) else {
            return;
        };
        if held.sent.is_some() {
            return;
        }
        let cseq = held.cseq;
        let body = if request.body.is_empty() {
            None
        } else {
            match self.sdp_toward_other(media_side(leg), &request.body).await {
                Ok(sdp) => Some(sdp),
                Err(e) => {
                    tracing::info!(message = "Answer in ACK refused.", error = %e);
                    None
                }
            }
        };
        let Some(dialog) = self.dialog_mut(other) else {
            return;
        };
        let mut ack = dialog.ack(cseq);
        let target = dialog.target;
        if let Some(sdp) = body {
            ack.set_body("application/sdp", sdp);
            self.sdp_in_force[leg_slot(leg)] = Some(request.body.clone());
        }
        self.layer.send_stateless(ack.clone(), target);
        if let Some(h) = self.held_acks.get_mut(&other) {
            h.sent = Some(ack);
        }
    }

    /// The ACK for a 2xx on `leg` (CSeq `cseq`): sent at once, or held
    /// until the other leg's ACK brings the answer (`late_offer`); a
    /// retransmitted 2xx gets the ACK again once it exists.
    pub(super) fn ack_2xx(&mut self, leg: LegId, cseq: u32, late_offer: bool) {
        if let Some(h) = self.held_acks.get(&leg)
            && h.cseq == cseq
        {
            if let (Some(ack), Some(d)) = (h.sent.clone(), self.dialog_mut(leg)) {
                let target = d.target;
                self.layer.send_stateless(ack, target);
            }
            return;
        }
        if late_offer {
            self.held_acks.insert(leg, HeldAck { cseq, sent: None });
            return;
        }
        if let Some(d) = self.dialog_mut(leg) {
            let ack = d.ack(cseq);
            let target = d.target;
            self.layer.send_stateless(ack, target);
        }
    }

    fn on_cancel(&mut self) {
        if self.state != State::Setup {
            return;
        }
        tracing::info!(message = "Caller cancelled.");
        self.a_tx.reply(487, "Request Terminated");
        self.script_cancelled();
        self.state = State::Cancelling;
        for i in 0..self.attempts.len() {
            self.cancel_attempt(i);
        }
        self.ending_deadline = Some(Instant::now() + ENDING_GRACE);
        self.check_done();
    }

    /// Sends a CANCEL for a pending attempt.
    fn cancel_attempt(&mut self, i: usize) {
        let Some(a) = self.attempts.get_mut(i) else {
            return;
        };
        if a.cancelled || !matches!(a.state, AttemptState::Trying | AttemptState::Early) {
            return;
        }
        a.cancelled = true;
        a.deadline = None;
        if a.state == AttemptState::Trying {
            // §9.1: no CANCEL before a provisional response; it goes out
            // with the first one (or never, if a final comes first).
            a.cancel_on_provisional = true;
            return;
        }
        let tx = self.layer.cancel(&a.key);
        self.track(tx, Pending::Ignore);
    }

    /// BYE on every confirmed leg; the call ends when they are answered.
    fn hangup_both(&mut self) {
        if matches!(self.state, State::Ending | State::Done) {
            return;
        }
        self.fail_pending_relays();
        if self.a_dialog.is_some() && !self.a_bye_sent {
            self.send_bye(LegId::A);
        }
        if let Some(w) = self.winner {
            self.send_bye(LegId::B(w));
        }
        self.state = State::Ending;
        self.ending_deadline = Some(Instant::now() + ENDING_GRACE);
        self.check_done();
    }

    fn send_bye(&mut self, leg: LegId) {
        let Some(dialog) = self.dialog_mut(leg) else {
            return;
        };
        let mut bye = dialog.request(Method::Bye);
        bye.headers.push(HeaderName::UserAgent, sip::USER_AGENT);
        let target = dialog.target;
        match leg {
            LegId::A => self.a_bye_sent = true,
            LegId::B(i) => {
                if let Some(a) = self.attempts.get_mut(i) {
                    a.bye_sent = true;
                }
            }
        }
        let tx = self.layer.send_request(bye, target);
        self.track(tx, Pending::Bye(leg));
    }

    /// Answers every relayed request still waiting, because the call ends.
    fn fail_pending_relays(&mut self) {
        for p in self.pending.values_mut() {
            if let Pending::Relay {
                request,
                tx,
                answered,
                ..
            } = p
                && !*answered
            {
                *answered = true;
                if request.method() == Some(&Method::Invite) {
                    tx.reply(487, "Request Terminated");
                } else {
                    tx.reply(481, "Call/Transaction Does Not Exist");
                }
            }
        }
    }

    fn dialog_mut(&mut self, leg: LegId) -> Option<&mut Dialog> {
        match leg {
            LegId::A => self.a_dialog.as_mut(),
            LegId::B(i) => self.attempts.get_mut(i).and_then(|a| a.dialog.as_mut()),
        }
    }

    /// Our tag on a leg (To tag toward A, From tag toward B).
    fn local_tag(&self, leg: LegId) -> String {
        match leg {
            LegId::A => self.a_tag.clone(),
            LegId::B(i) => self
                .attempts
                .get(i)
                .map(|a| a.from_tag.clone())
                .unwrap_or_default(),
        }
    }

    /// The leg on the other side of `leg`.
    fn other(&self, leg: LegId) -> Option<LegId> {
        match leg {
            LegId::A => self.winner.map(LegId::B),
            LegId::B(i) if Some(i) == self.winner => Some(LegId::A),
            LegId::B(_) => None,
        }
    }

    /// Our Contact toward a peer.
    fn contact_for(&self, target: &Target) -> Bytes {
        Bytes::from(contact(self.layer.transports(), "tandem", target))
    }

    fn next_deadline(&self) -> Option<Instant> {
        let attempts = self
            .attempts
            .iter()
            .filter(|a| matches!(a.state, AttemptState::Trying | AttemptState::Early))
            .filter_map(|a| a.deadline);
        attempts
            .chain(self.ending_deadline)
            .chain(self.reliable_deadline())
            .chain(self.session_deadline())
            .min()
    }

    async fn on_deadline(&mut self) {
        let now = Instant::now();
        self.on_reliable_deadline(now);
        self.on_session_deadline(now);
        if self.ending_deadline.is_some_and(|d| d <= now) {
            tracing::info!(message = "Call ending timed out; forgetting it.");
            self.state = State::Done;
            return;
        }
        let expired: Vec<usize> = self
            .attempts
            .iter()
            .enumerate()
            .filter(|(_, a)| matches!(a.state, AttemptState::Trying | AttemptState::Early))
            .filter(|(_, a)| a.deadline.is_some_and(|d| d <= now))
            .map(|(i, _)| i)
            .collect();
        for i in expired {
            tracing::info!(
                message = "No answer in time, cancelling attempt.",
                attempt = i
            );
            if let Some(a) = self.attempts.get_mut(i) {
                a.timed_out = true;
            }
            self.cancel_attempt(i);
            self.failures
                .push(Failure::new(480, "Temporarily Unavailable"));
            self.attempt_over(i).await;
        }
    }

    /// Ends the call once nothing is left to wait for.
    fn check_done(&mut self) {
        let waiting_attempts = self
            .attempts
            .iter()
            .any(|a| matches!(a.state, AttemptState::Trying | AttemptState::Early));
        let waiting_byes = self.pending.values().any(|p| matches!(p, Pending::Bye(_)));
        match self.state {
            State::Cancelling if !waiting_attempts => self.state = State::Done,
            State::Ending if !waiting_byes && !waiting_attempts => self.state = State::Done,
            _ => {}
        }
    }
}

async fn next_command(script: Option<&mut ScriptDriver>) -> Option<api::Command> {
    match script {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

async fn media_inactive(media: Option<&MediaSession>) {
    match media {
        Some(m) => m.inactive().await,
        None => std::future::pending().await,
    }
}

/// Tandem's Contact as `user` toward `target`: the listener that reaches
/// it, with `;transport=tcp` over TCP.
pub(crate) fn contact(
    transports: &sip::transport::Transports,
    user: &str,
    target: &Target,
) -> String {
    let sent_by = transports
        .sent_by(target.kind, target.addr)
        .unwrap_or(target.addr);
    let transport = match target.kind {
        TransportKind::Udp => "",
        TransportKind::Tcp => ";transport=tcp",
    };
    format!("<sip:{user}@{sent_by}{transport}>")
}
