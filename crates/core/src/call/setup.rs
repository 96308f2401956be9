//! Call setup: the B-leg attempts (serial or parallel), their responses,
//! the answer relayed to A, and failure selection.

use super::{Attempt, AttemptState, Call, LegId, Pending, State};
use crate::config::MediaMode;
use crate::dispatcher::DispatcherMsg;
use crate::passthrough::copy_headers;
use crate::route::ForkMode;
use bytes::Bytes;
use media::Side;
use sip::dialog::Dialog;
use sip::message::{HeaderName, Message, Method};
use sip::transaction::ClientEvent;
use sip::transport::Target;
use tokio::time::Instant;

/// A random token for Call-IDs, tags and cnonces.
pub(crate) fn token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

use api::command::failure_rank;

impl Call {
    /// Prepares the media and sends the first attempt(s).
    pub(super) async fn start(&mut self) {
        if self.session_interval_too_small() {
            self.a_tx.reply_with(
                422,
                "Session Interval Too Small",
                vec![(HeaderName::MinSe, self.config.min_se.as_secs().to_string())],
            );
            self.state = State::Done;
            return;
        }
        if self.script.is_some() {
            // The dial plan decides; the media waits for its first dial.
            return;
        }
        if !self.prepare_media().await {
            return;
        }
        match self.decision.mode {
            ForkMode::Serial => {
                self.launch_next();
            }
            ForkMode::Parallel => while self.launch_next() {},
        }
        if self.attempts.is_empty() {
            self.a_tx.reply(500, "Server Internal Error");
            self.state = State::Done;
        }
    }

    /// Opens the media session (anchored media) and rewrites the caller's
    /// offer for the B legs; false (and 488 to A) if the offer is refused.
    pub(super) async fn prepare_media(&mut self) -> bool {
        if self.decision.media.unwrap_or(self.config.media) == MediaMode::Anchored {
            self.media = Some(self.engine.session());
        }
        if !self.a_invite.body.is_empty() {
            let body = self.a_invite.body.clone();
            match self.sdp_toward_other(Side::A, &body).await {
                Ok(sdp) => self.b_offer = Some(sdp),
                Err(e) => {
                    tracing::info!(message = "Caller's SDP refused.", error = %e);
                    if let Some(reply) = self.script.as_mut().and_then(|s| s.take_dial()) {
                        let _ = reply.send(api::DialResult::failed(488, "Not Acceptable Here"));
                    }
                    self.a_tx.reply(488, "Not Acceptable Here");
                    self.state = State::Done;
                    return false;
                }
            }
        }
        true
    }

    /// Rewrites SDP from side `from` for the other side (or passes it
    /// through with direct media).
    pub(super) async fn sdp_toward_other(
        &self,
        from: Side,
        sdp: &Bytes,
    ) -> Result<Bytes, media::MediaError> {
        match &self.media {
            Some(m) => m.rewrite_sdp(from, sdp).await,
            None => Ok(sdp.clone()),
        }
    }

    /// Sends the INVITE to the next target; false when none is left.
    pub(super) fn launch_next(&mut self) -> bool {
        let Some(target) = self.decision.targets.get(self.next_target).cloned() else {
            return false;
        };
        self.next_target += 1;
        let index = self.attempts.len();
        let call_id = format!("{}@tandem", token());
        let from_tag = token();
        let contact = self.contact_for(&target.target);
        let a = &self.a_invite;
        let from = a.from_hdr();
        let mut user = from
            .as_ref()
            .and_then(|f| f.uri.user_str().map(str::to_string))
            .unwrap_or_else(|| "anonymous".into());
        let mut display =
            from.and_then(|f| f.display.map(|d| String::from_utf8_lossy(&d).into_owned()));
        let mut ruri = target.uri.clone();
        if let Some(s) = &self.script {
            let (u, n) = s.caller_override();
            if let Some(u) = u {
                user = u.to_string();
            }
            if let Some(n) = n {
                display = (!n.is_empty()).then(|| format!("\"{n}\""));
            }
            // A registered contact is reached at its own URI.
            if let Some(r) = s.ruri()
                && target.group.is_none()
            {
                ruri = r.clone();
            }
        }
        let sent_by = self
            .layer
            .transports()
            .sent_by(target.target.kind, target.target.addr)
            .unwrap_or(target.target.addr);
        let host = match sent_by.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            std::net::IpAddr::V4(ip) => ip.to_string(),
        };
        let mut invite = Message::request(Method::Invite, ruri.clone());
        let max_forwards = a.max_forwards().unwrap_or(70).saturating_sub(1).max(1);
        invite
            .headers
            .push(HeaderName::MaxForwards, max_forwards.to_string());
        let from_value = match display {
            Some(d) => format!("{d} <sip:{user}@{host}>;tag={from_tag}"),
            None => format!("<sip:{user}@{host}>;tag={from_tag}"),
        };
        invite.headers.push(HeaderName::From, from_value);
        invite.headers.push(HeaderName::To, format!("<{ruri}>"));
        invite.headers.push(HeaderName::CallId, call_id.clone());
        invite.headers.push(HeaderName::CSeq, "1 INVITE");
        invite.headers.push(HeaderName::Contact, contact);
        invite.headers.push(
            HeaderName::Allow,
            sip::uas::UasPolicy::default().allow_value(),
        );
        invite.headers.push(HeaderName::Supported, "100rel, timer");
        self.session_timer_offer(&mut invite, self.config.min_se);
        copy_headers(&self.a_invite, &mut invite.headers);
        invite.headers.push(HeaderName::UserAgent, sip::USER_AGENT);
        if let Some(s) = &self.script {
            s.apply_headers(&mut invite);
        }
        for (n, v) in &target.headers {
            invite.headers.set(n.clone(), v.clone());
        }
        if let Some(sdp) = &self.b_offer {
            invite.set_body("application/sdp", sdp.clone());
        }
        let tx = self.layer.send_request(invite.clone(), target.target);
        let key = tx.key().clone();
        let _ = self.control.send(DispatcherMsg::Register {
            call: self.id,
            key: (Bytes::from(call_id), Bytes::from(from_tag.clone())),
            leg: LegId::B(index),
        });
        tracing::info!(message = "Calling.", attempt = index, target = %target.uri);
        let target_group = target.group;
        self.attempts.push(Attempt {
            target,
            invite,
            key,
            from_tag,
            state: AttemptState::Trying,
            dialog: None,
            deadline: Some(Instant::now() + self.decision.timeout),
            cancelled: false,
            timed_out: false,
            bye_sent: false,
            auth_tries: 0,
            early: None,
            se_retried: false,
            cancel_on_provisional: false,
            last_rseq: None,
        });
        self.track(tx, Pending::Invite(index));
        // The other contacts of the same registered user ring with it.
        if self.decision.mode == ForkMode::Serial
            && let Some(group) = target_group
            && self
                .decision
                .targets
                .get(self.next_target)
                .is_some_and(|t| t.group == Some(group))
        {
            self.launch_next();
        }
        true
    }

    /// A response (or failure) of attempt `i`'s INVITE.
    pub(super) async fn on_attempt_event(&mut self, i: usize, event: ClientEvent) {
        let resp = match event {
            ClientEvent::Response(r) => *r,
            ClientEvent::Timeout => return self.attempt_failed(i, 408, "Request Timeout").await,
            ClientEvent::TransportError => {
                return self.attempt_failed(i, 503, "Service Unavailable").await;
            }
        };
        let Some(code) = resp.code() else { return };
        match code {
            100 => {}
            101..=199 => self.on_provisional(i, resp).await,
            200..=299 => self.on_attempt_2xx(i, resp).await,
            401 | 407 if self.answer_challenge(i, &resp) => {}
            422 if self.retry_with_min_se(i, &resp) => {}
            300..=399 => self.on_redirect(i, resp).await,
            _ => {
                let reason = resp.reason().unwrap_or_default();
                self.attempt_failed(i, code, &reason).await;
            }
        }
    }

    /// Retries attempt `i` with credentials for its target (RFC 3261
    /// §22.2); false when none apply or it was tried already.
    fn answer_challenge(&mut self, i: usize, resp: &Message) -> bool {
        let Some(a) = self.attempts.get(i) else {
            return false;
        };
        if a.auth_tries >= 2 || a.cancelled || self.state != State::Setup {
            return false;
        }
        let (challenge_hdr, answer_hdr) = if resp.code() == Some(401) {
            (HeaderName::WwwAuthenticate, HeaderName::Authorization)
        } else {
            (
                HeaderName::ProxyAuthenticate,
                HeaderName::ProxyAuthorization,
            )
        };
        let uri = a.invite.uri().map(|u| u.to_string()).unwrap_or_default();
        let addr = a.target.target.addr;
        let answer = resp
            .headers
            .get_all(&challenge_hdr)
            .filter_map(|v| std::str::from_utf8(v).ok())
            .filter_map(|v| sip::auth::Challenge::parse(v).ok())
            .find_map(|c| {
                let cred = self.config.credential_for(addr, &c.realm)?;
                Some(c.answer("INVITE", &uri, &cred.username, &cred.password, 1, &token()))
            });
        let Some(answer) = answer else {
            tracing::info!(
                message = "Challenged without matching credentials.",
                attempt = i
            );
            return false;
        };
        tracing::info!(message = "Answering the challenge.", attempt = i);
        self.attempts[i].auth_tries += 1;
        self.resend_invite(i, |invite| {
            invite.headers.remove(&answer_hdr);
            invite.headers.push(answer_hdr, answer);
        });
        true
    }

    /// Sends attempt `i`'s INVITE again (same dialog identifiers, next
    /// CSeq, new transaction) after `edit`: the retry after a 401/407 or a
    /// 422.
    pub(super) fn resend_invite(&mut self, i: usize, edit: impl FnOnce(&mut Message)) {
        let Some(a) = self.attempts.get_mut(i) else {
            return;
        };
        let mut invite = a.invite.clone();
        edit(&mut invite);
        let seq = a.invite_cseq().wrapping_add(1);
        invite
            .headers
            .set(HeaderName::CSeq, format!("{seq} INVITE"));
        let tx = self.layer.send_request(invite.clone(), a.target.target);
        a.key = tx.key().clone();
        a.invite = invite;
        a.state = AttemptState::Trying;
        self.track(tx, Pending::Invite(i));
    }

    /// A 3xx: follow its Contacts as further targets, or relay it.
    async fn on_redirect(&mut self, i: usize, resp: Message) {
        let code = resp.code().unwrap_or(302);
        let reason = resp.reason().unwrap_or_default();
        let follow = self.decision.redirect == crate::route::RedirectMode::Follow
            && self.redirects < crate::route::MAX_REDIRECTS;
        let mut failure = super::Failure::new(code, &reason);
        if follow {
            let mut contacts: Vec<(f32, crate::route::ResolvedTarget)> = resp
                .headers
                .get_all(&HeaderName::Contact)
                .filter_map(|v| sip::message::NameAddr::parse_shared(v, v).ok())
                .filter_map(|n| {
                    let q = n
                        .params
                        .get("q")
                        .flatten()
                        .and_then(|q| std::str::from_utf8(q).ok()?.parse::<f32>().ok())
                        .unwrap_or(1.0);
                    let t = crate::route::resolve(&n.uri.to_string()).ok()?;
                    Some((q, t))
                })
                .collect();
            contacts.sort_by(|a, b| b.0.total_cmp(&a.0));
            if !contacts.is_empty() {
                self.redirects += 1;
                tracing::info!(
                    message = "Following redirect.",
                    attempt = i,
                    contacts = contacts.len()
                );
                let at = self.next_target.min(self.decision.targets.len());
                for (k, (_, t)) in contacts.into_iter().enumerate() {
                    self.decision.targets.insert(at + k, t);
                }
                if self.decision.mode == ForkMode::Parallel {
                    // Parallel routes have launched everything: launch the
                    // redirect targets now.
                    if let Some(a) = self.attempts.get_mut(i) {
                        a.state = AttemptState::Done;
                    }
                    while self.launch_next() {}
                    self.failures.push(failure);
                    return self.attempt_over(i).await;
                }
            }
        } else {
            for c in resp.headers.get_all(&HeaderName::Contact) {
                failure
                    .headers
                    .push((HeaderName::Contact, String::from_utf8_lossy(c).into_owned()));
            }
        }
        let Some(a) = self.attempts.get_mut(i) else {
            return;
        };
        if a.state == AttemptState::Done {
            return;
        }
        a.state = AttemptState::Done;
        a.deadline = None;
        self.failures.push(failure);
        self.attempt_over(i).await;
    }

    async fn on_provisional(&mut self, i: usize, resp: Message) {
        let Some(a) = self.attempts.get_mut(i) else {
            return;
        };
        if a.state == AttemptState::Trying {
            a.state = AttemptState::Early;
        }
        if a.cancel_on_provisional {
            a.cancel_on_provisional = false;
            let tx = self.layer.cancel(&a.key);
            self.track(tx, Pending::Ignore);
            return;
        }
        if a.cancelled || self.state != State::Setup || self.winner.is_some() {
            return;
        }
        if !self.prack_b(i, &resp) {
            return;
        }
        let code = resp.code().unwrap_or(180);
        let reason = resp.reason().unwrap_or_default();
        let mut out = Message::response_to(&self.a_invite, code, &reason, Some(&self.a_tag));
        out.headers.push(
            HeaderName::Contact,
            self.contact_for(&a_target(&self.a_source)),
        );
        copy_headers(&resp, &mut out.headers);
        if !resp.body.is_empty() {
            match self.sdp_toward_other(Side::B, &resp.body).await {
                Ok(sdp) => out.set_body("application/sdp", sdp),
                Err(e) => tracing::info!(message = "Early media SDP refused.", error = %e),
            }
        }
        if self.a_requires_100rel() {
            self.send_reliable_to_a(out);
        } else {
            self.a_tx.respond(out);
        }
    }

    async fn on_attempt_2xx(&mut self, i: usize, resp: Message) {
        let Some(a) = self.attempts.get_mut(i) else {
            return;
        };
        // A retransmitted 2xx (our ACK was lost): ACK it again.
        if let Some(d) = &a.dialog
            && resp.to_tag().as_deref() == Some(&d.remote_tag[..])
        {
            let cseq = a.invite_cseq();
            self.ack_2xx(LegId::B(i), cseq, false);
            return;
        }
        let target = a.target.target;
        let contact = self.contact_for(&target);
        let a = &mut self.attempts[i];
        let Some(dialog) = Dialog::uac(&a.invite, &resp, a.target.target, contact) else {
            tracing::warn!(
                message = "2xx without the headers of a dialog.",
                attempt = i
            );
            return;
        };
        let cseq = a.invite_cseq();
        a.dialog = Some(dialog);
        // A late offer (A's INVITE had no SDP): B's 2xx carries the offer;
        // its ACK waits for A's answer (in A's ACK).
        let late = self.winner.is_none()
            && self.state == State::Setup
            && self.a_invite.body.is_empty()
            && !resp.body.is_empty();
        self.ack_2xx(LegId::B(i), cseq, late);
        let a = &mut self.attempts[i];
        a.deadline = None;
        if self.winner.is_some() || self.state != State::Setup {
            // A loser's 2xx, or one that crossed the CANCEL: ACK, then BYE.
            tracing::info!(
                message = "Late 2xx: acknowledging and hanging up.",
                attempt = i
            );
            a.state = AttemptState::Done;
            self.send_bye(LegId::B(i));
            self.check_done();
            return;
        }
        a.state = AttemptState::Answered;
        self.winner = Some(i);
        self.on_answer(i, resp).await;
    }

    /// The winning 2xx: answer A, cancel the other attempts.
    async fn on_answer(&mut self, i: usize, resp: Message) {
        let code = resp.code().unwrap_or(200);
        let reason = resp.reason().unwrap_or_else(|| "OK".into());
        let a_target = a_target(&self.a_source);
        let contact = self.contact_for(&a_target);
        let mut ok = Message::response_to(&self.a_invite, code, &reason, Some(&self.a_tag));
        ok.headers.push(HeaderName::Contact, contact.clone());
        ok.headers.push(
            HeaderName::Allow,
            sip::uas::UasPolicy::default().allow_value(),
        );
        copy_headers(&resp, &mut ok.headers);
        if !resp.body.is_empty() {
            match self.sdp_toward_other(Side::B, &resp.body).await {
                Ok(sdp) => ok.set_body("application/sdp", sdp),
                Err(e) => {
                    tracing::warn!(message = "Callee's SDP refused; hanging up.", error = %e);
                    self.a_tx.reply(488, "Not Acceptable Here");
                    self.state = State::Confirmed;
                    self.a_dialog = None;
                    self.hangup_both();
                    return;
                }
            }
        }
        // RFC 3262 §3: a 2xx waits for the PRACK of an outstanding
        // reliable provisional that carried SDP.
        let hold = self.hold_answer_for_prack();
        self.start_session_timers(&resp, &mut ok);
        if !self.a_invite.body.is_empty() {
            self.sdp_in_force[0] = Some(self.a_invite.body.clone());
        }
        if !resp.body.is_empty() {
            self.sdp_in_force[1] = Some(resp.body.clone());
        }
        if hold {
            tracing::debug!(message = "Answer held until the caller PRACKs the early SDP.");
            self.a_answer_held = Some(ok);
        } else {
            self.a_tx.respond(ok);
        }
        self.a_dialog = Dialog::uas(&self.a_invite, &self.a_tag, a_target, contact);
        self.state = State::Confirmed;
        self.script_answered();
        tracing::info!(message = "Answered.", attempt = i);
        for j in 0..self.attempts.len() {
            if j != i {
                self.cancel_attempt(j);
            }
        }
    }

    async fn attempt_failed(&mut self, i: usize, code: u16, reason: &str) {
        let Some(a) = self.attempts.get_mut(i) else {
            return;
        };
        if a.state == AttemptState::Done {
            return;
        }
        let timed_out = a.timed_out;
        a.state = AttemptState::Done;
        a.deadline = None;
        if !timed_out {
            tracing::info!(message = "Attempt failed.", attempt = i, code);
            self.failures.push(super::Failure::new(code, reason));
        }
        self.attempt_over(i).await;
    }

    /// After attempt `i` ended without winning: next target, or the best
    /// failure to A.
    pub(super) async fn attempt_over(&mut self, _i: usize) {
        match self.state {
            State::Setup if self.winner.is_none() => {
                // A 6xx is definitive (RFC 3261 §16.7, §21.6): no further
                // target is tried and pending attempts are cancelled.
                let global = self.failures.iter().any(|f| (600..700).contains(&f.code));
                if global {
                    for j in 0..self.attempts.len() {
                        self.cancel_attempt(j);
                    }
                }
                let pending = self.attempts.iter().any(|a| {
                    matches!(a.state, AttemptState::Trying | AttemptState::Early) && !a.cancelled
                });
                if pending {
                    return;
                }
                // Serial: the next target once every attempt of the last
                // one (all contacts of a registered user) is over.
                if !global && self.decision.mode == ForkMode::Serial && self.launch_next() {
                    return;
                }
                let best = self
                    .failures
                    .iter()
                    .rev()
                    .min_by_key(|f| failure_rank(f.code))
                    .cloned()
                    .unwrap_or_else(|| super::Failure::new(480, "Temporarily Unavailable"));
                if self.script_dial_failed(&best) {
                    tracing::info!(message = "Dial failed.", code = best.code);
                    return;
                }
                tracing::info!(message = "Call failed.", code = best.code);
                self.a_tx.reply_with(best.code, &best.reason, best.headers);
                self.state = State::Cancelling;
                self.ending_deadline = Some(Instant::now() + super::ENDING_GRACE);
                self.check_done();
            }
            _ => self.check_done(),
        }
    }
}

/// Where requests to the caller go: back to where its INVITE came from
/// (over the same connection for TCP), which also works behind NAT.
pub(crate) fn a_target(source: &sip::transport::Source) -> Target {
    Target {
        kind: source.kind,
        addr: source.remote,
        conn: source.conn,
        local: Some(source.local),
    }
}
