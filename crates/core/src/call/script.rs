//! A call driven by a dial plan: the script's commands arrive as messages
//! to the call's actor, beside the SIP events, and are applied in order.
//! Header and URI commands shape every later B-leg INVITE; a dial launches
//! attempts like a static route does, but its failure goes back to the
//! script (which may dial again or reject) instead of to the caller.

use super::gate::WakeGate;
use super::{Call, Failure, State};
use crate::route::{ForkMode, RouteDecision};
use api::{Command, CommandReceiver, DialRequest, DialResult, ScriptError, ScriptRun};
use sip::message::{HeaderName, Message, Uri};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Ring time of a dial that names none.
pub(crate) const DEFAULT_RING_TIMEOUT: Duration = Duration::from_secs(30);

/// One change a script made to the B leg's headers, in issue order.
#[derive(Debug, Clone)]
enum HeaderEdit {
    Set(HeaderName, String),
    Add(HeaderName, String),
    Remove(HeaderName),
}

/// What the dial plan of a call has said so far.
pub(crate) struct ScriptDriver {
    rx: CommandReceiver,
    /// The script's run, polled by the call's task (`None` once done). In
    /// a mutex only so that the call is `Sync`: it is reached through
    /// `get_mut`, never locked.
    run: Option<Mutex<WakeGate<ScriptRun>>>,
    /// `file@vN`: the version the call is pinned to.
    pub(crate) version: String,
    edits: Vec<HeaderEdit>,
    ruri: Option<Uri>,
    from_user: Option<String>,
    from_name: Option<String>,
    vars: BTreeMap<String, api::Value>,
    /// The dial waiting for its result.
    dial: Option<oneshot::Sender<DialResult>>,
    /// Headers of the current dial (all its attempts).
    dial_headers: Vec<(HeaderName, String)>,
    /// The failure the last dial ended with.
    last_failure: Option<Failure>,
    /// A dial was made (the media is set up by the first one).
    dialled: bool,
    /// When the winning attempt answered.
    answered_at: Option<Instant>,
    /// The script returned or failed.
    finished: bool,
}

impl std::fmt::Debug for ScriptDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptDriver")
            .field("version", &self.version)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl ScriptDriver {
    /// A driver reading the commands of a script pinned to `version`.
    pub(crate) fn new(rx: CommandReceiver, version: String, run: ScriptRun) -> ScriptDriver {
        ScriptDriver {
            rx,
            run: Some(Mutex::new(WakeGate::new(run))),
            version,
            edits: Vec::new(),
            ruri: None,
            from_user: None,
            from_name: None,
            vars: BTreeMap::new(),
            dial: None,
            dial_headers: Vec::new(),
            last_failure: None,
            dialled: false,
            answered_at: None,
            finished: false,
        }
    }

    /// Runs the script until it issues its next command (never resolves
    /// once the script is finished and its run is over).
    ///
    /// A script only issues commands while its run is polled, and the run
    /// is polled here, so the commands are read right after the poll and
    /// the queue never needs to wake the call's task (which would poll
    /// the whole call once more for nothing).
    pub(crate) async fn next(&mut self) -> Option<Command> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Command>> {
        if !self.finished
            && let Some(cmd) = self.rx.try_recv()
        {
            return Poll::Ready(Some(cmd));
        }
        if let Some(run) = self.run.as_mut() {
            let run = run.get_mut().unwrap_or_else(PoisonError::into_inner);
            if Pin::new(run).poll(cx).is_pending() {
                if self.finished {
                    return Poll::Pending;
                }
                // What the run issued during this poll, without a wake-up.
                return self
                    .rx
                    .try_recv()
                    .map_or(Poll::Pending, |c| Poll::Ready(Some(c)));
            }
            self.run = None;
        }
        if self.finished {
            return Poll::Pending;
        }
        // No run any more (it ended, or a chain handed the call on): read
        // the queue to its end.
        Pin::new(&mut self.rx).poll_recv(cx)
    }

    /// What is left of the script's run when the call ends: it may still
    /// log or post a record, on a task of its own (its dials answer 487).
    /// Most scripts end with their dial: the run is polled here once
    /// first, and needs no task when that finishes it.
    pub(crate) fn detach(&mut self) {
        if let Some(run) = self.run.take() {
            let mut run = run
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner)
                .into_inner();
            // Whatever the run waits for next registers the task's waker
            // again when the task polls it; this poll's waker goes unused.
            let mut cx = Context::from_waker(std::task::Waker::noop());
            if run.as_mut().poll(&mut cx).is_ready() {
                return;
            }
            // Still in the call's span: its log lines keep the Call-ID.
            tokio::spawn(tracing::Instrument::in_current_span(run));
        }
    }

    /// The Request-URI the script set for the B leg.
    pub(crate) fn ruri(&self) -> Option<&Uri> {
        self.ruri.as_ref()
    }

    /// The From user and display name the script set.
    pub(crate) fn caller_override(&self) -> (Option<&str>, Option<&str>) {
        (self.from_user.as_deref(), self.from_name.as_deref())
    }

    /// Applies the script's header edits, then the current dial's headers,
    /// to a B-leg INVITE.
    pub(crate) fn apply_headers(&self, invite: &mut Message) {
        for e in &self.edits {
            match e {
                HeaderEdit::Set(n, v) => invite.headers.set(n.clone(), v.clone()),
                HeaderEdit::Add(n, v) => invite.headers.push(n.clone(), v.clone()),
                HeaderEdit::Remove(n) => {
                    invite.headers.remove(n);
                }
            }
        }
        for (n, v) in &self.dial_headers {
            invite.headers.set(n.clone(), v.clone());
        }
    }

    /// The dial waiting for its result, taken.
    pub(crate) fn take_dial(&mut self) -> Option<oneshot::Sender<DialResult>> {
        self.dial.take()
    }

    /// The per-call variables, as `k=v` pairs for logs.
    pub(crate) fn vars_text(&self) -> String {
        self.vars
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Call {
    /// Applies one command of the call's dial plan.
    pub(super) async fn on_command(&mut self, cmd: Command) {
        let Some(script) = self.script.as_mut() else {
            return;
        };
        match cmd {
            Command::SetHeader { name, value } => script
                .edits
                .push(HeaderEdit::Set(HeaderName::new(&name), value)),
            Command::AddHeader { name, value } => script
                .edits
                .push(HeaderEdit::Add(HeaderName::new(&name), value)),
            Command::RemoveHeader { name } => script
                .edits
                .push(HeaderEdit::Remove(HeaderName::new(&name))),
            Command::SetRuri { uri } => match Uri::parse(&uri) {
                Ok(u) => script.ruri = Some(u),
                Err(_) => {
                    tracing::warn!(message = "Script set an unparsable R-URI; ignored.", uri = %uri)
                }
            },
            Command::SetFrom { user, name } => {
                if user.is_some() {
                    script.from_user = user;
                }
                if name.is_some() {
                    script.from_name = name;
                }
            }
            Command::SetVar { name, value } => {
                tracing::debug!(message = "Call variable.", name = %name, value = ?value);
                match value {
                    Some(v) => script.vars.insert(name, v),
                    None => script.vars.remove(&name),
                };
            }
            Command::Dial { request, reply } => self.script_dial(request, reply).await,
            Command::Reject { code, reason } => self.script_reject(code, &reason),
            Command::Challenge => self.script_challenge(),
            Command::Hangup => {
                if self.state == State::Setup {
                    self.script_reject(480, "Temporarily Unavailable");
                } else {
                    self.hangup_both();
                }
            }
            Command::Done(result) => self.script_done(result),
        }
    }

    async fn script_dial(&mut self, request: DialRequest, reply: oneshot::Sender<DialResult>) {
        let busy = self.script.as_ref().is_some_and(|s| s.dial.is_some());
        if self.state != State::Setup || self.winner.is_some() || busy {
            let _ = reply.send(DialResult::failed(487, "Request Terminated"));
            return;
        }
        let Some(script) = self.script.as_mut() else {
            return;
        };
        let mut targets = Vec::new();
        let wanted: Vec<(String, Vec<(String, String)>)> = if request.targets.is_empty() {
            let uri = script
                .ruri
                .as_ref()
                .or(self.a_invite.uri())
                .map(|u| u.to_string())
                .unwrap_or_default();
            vec![(uri, Vec::new())]
        } else {
            request
                .targets
                .into_iter()
                .map(|t| (t.uri, t.headers))
                .collect()
        };
        let mut unregistered = false;
        for (group, (uri, headers)) in (1u32..).zip(wanted) {
            let headers: Vec<(HeaderName, String)> = headers
                .into_iter()
                .map(|(n, v)| (HeaderName::new(&n), v))
                .collect();
            if let Some(user) = api::validate::registered_user(&uri) {
                // Every live contact of the user, ringing together.
                let contacts = self.config.users.contacts(user);
                if contacts.is_empty() {
                    tracing::info!(message = "Dial target not registered.", user = %user);
                    unregistered = true;
                }
                for mut t in contacts {
                    t.headers = headers.clone();
                    t.group = Some(group);
                    targets.push(t);
                }
                continue;
            }
            match crate::route::resolve(&uri) {
                Ok(mut t) => {
                    t.headers = headers;
                    targets.push(t);
                }
                Err(e) => tracing::warn!(message = "Dial target skipped.", error = %e),
            }
        }
        if targets.is_empty() {
            let _ = reply.send(match unregistered {
                true => DialResult::failed(480, "Temporarily Unavailable"),
                false => DialResult::failed(404, "Not Found"),
            });
            return;
        }
        script.dial_headers = request
            .headers
            .into_iter()
            .map(|(n, v)| (HeaderName::new(&n), v))
            .collect();
        let first_dial = !script.dialled;
        script.dialled = true;
        script.dial = Some(reply);
        self.decision = RouteDecision {
            targets,
            mode: request.mode.into(),
            timeout: request.timeout.unwrap_or(DEFAULT_RING_TIMEOUT),
            media: request.anchor_media.map(|a| {
                if a {
                    crate::config::MediaMode::Anchored
                } else {
                    crate::config::MediaMode::Direct
                }
            }),
            redirect: self.decision.redirect,
        };
        self.next_target = 0;
        self.failures.clear();
        if first_dial && !self.prepare_media().await {
            return;
        }
        match self.decision.mode {
            ForkMode::Serial => {
                self.launch_next();
            }
            ForkMode::Parallel => while self.launch_next() {},
        }
    }

    /// `call:challenge()`: 407 with a fresh challenge; the caller's next
    /// INVITE (with credentials) is a new call.
    fn script_challenge(&mut self) {
        if self.state != State::Setup || self.winner.is_some() {
            tracing::debug!(message = "Challenge after the call was decided; ignored.");
            return;
        }
        let users = &self.config.users;
        if !users.auth.has_users() {
            tracing::warn!(
                message = "Dial plan challenged the caller, but no users are configured: nobody can answer."
            );
        }
        let r = users
            .auth
            .challenge(auth::Kind::Proxy, false, std::time::Instant::now());
        tracing::info!(message = "Dial plan challenged the caller.");
        self.end_setup(r.code, r.reason, r.headers);
    }

    fn script_reject(&mut self, code: u16, reason: &str) {
        if self.state != State::Setup || self.winner.is_some() {
            tracing::debug!(
                message = "Reject after the call was decided; ignored.",
                code
            );
            return;
        }
        tracing::info!(message = "Dial plan rejected the call.", code, reason = %reason);
        self.end_setup(code, reason, Vec::new());
    }

    /// Answers A with a failure, cancels what is still ringing, and lets
    /// the call end.
    pub(super) fn end_setup(
        &mut self,
        code: u16,
        reason: &str,
        headers: Vec<(HeaderName, String)>,
    ) {
        for i in 0..self.attempts.len() {
            self.cancel_attempt(i);
        }
        self.a_tx.reply_with(code, reason, headers);
        self.state = State::Cancelling;
        self.ending_deadline = Some(Instant::now() + super::ENDING_GRACE);
        self.check_done();
    }

    fn script_done(&mut self, result: Result<(), ScriptError>) {
        let Some(script) = self.script.as_mut() else {
            return;
        };
        script.finished = true;
        if let Some(reply) = script.dial.take() {
            let _ = reply.send(DialResult::failed(487, "Request Terminated"));
        }
        let vars = script.vars_text();
        match result {
            Ok(()) => {
                tracing::debug!(message = "Dial plan finished.", vars = %vars);
                if self.state == State::Setup && self.winner.is_none() {
                    let (code, reason, headers) = match script.last_failure.take() {
                        Some(f) => (f.code, f.reason, f.headers),
                        None => (404, "Not Found".to_string(), Vec::new()),
                    };
                    tracing::info!(message = "Dial plan ended without answering.", code);
                    self.end_setup(code, &reason, headers);
                }
            }
            Err(e) => {
                tracing::error!(
                    message = "Dial plan failed; ending its call.",
                    script = %e.script,
                    line = e.line.map(i64::from).unwrap_or(-1),
                    error = %e.message,
                    vars = %vars,
                );
                if self.state == State::Setup && self.winner.is_none() {
                    self.end_setup(500, "Server Internal Error", Vec::new());
                } else if self.state == State::Confirmed {
                    self.hangup_both();
                }
            }
        }
    }

    /// Every attempt of the current dial failed: the result goes to the
    /// script, the caller keeps waiting. False when no script is dialling.
    pub(super) fn script_dial_failed(&mut self, best: &Failure) -> bool {
        let Some(script) = self.script.as_mut() else {
            return false;
        };
        let Some(reply) = script.dial.take() else {
            return false;
        };
        script.last_failure = Some(best.clone());
        let _ = reply.send(DialResult::failed(best.code, &best.reason));
        true
    }

    /// The winning attempt answered: the dial's result waits for the end.
    pub(super) fn script_answered(&mut self) {
        if let Some(s) = self.script.as_mut() {
            s.answered_at = Some(Instant::now());
        }
    }

    /// The call is over: a dial still waiting learns how it went, and the
    /// rest of the script runs on its own.
    pub(super) fn script_call_over(&mut self) {
        let Some(script) = self.script.as_mut() else {
            return;
        };
        let Some(reply) = script.dial.take() else {
            script.detach();
            return;
        };
        let result = match script.answered_at {
            Some(at) => DialResult {
                answered: true,
                code: 200,
                reason: "OK".into(),
                duration: at.elapsed(),
            },
            None => DialResult::failed(487, "Request Terminated"),
        };
        let _ = reply.send(result);
        script.detach();
    }

    /// The caller cancelled: a waiting dial fails with 487 at once.
    pub(super) fn script_cancelled(&mut self) {
        if let Some(reply) = self.script.as_mut().and_then(|s| s.dial.take()) {
            let _ = reply.send(DialResult::failed(487, "Request Terminated"));
        }
    }
}
