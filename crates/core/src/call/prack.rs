//! Reliable provisional responses (RFC 3262) on each leg, independently:
//! toward B we PRACK every new reliable provisional; toward A we send
//! provisionals reliably when A requires it, retransmit them until A's
//! PRACK, and answer that PRACK ourselves (PRACKs never cross legs).

use super::{Call, LegId, Pending, State};
use sip::dialog::Dialog;
use sip::message::{HeaderName, Message, Method};
use sip::transaction::ServerTx;
use std::time::Duration;
use tokio::time::Instant;

/// A reliable provisional response sent to A, awaiting its PRACK.
#[derive(Debug)]
pub(super) struct ReliableProvisional {
    message: Message,
    rseq: u32,
    interval: Duration,
    next: Instant,
    give_up: Instant,
}

fn requires_100rel(m: &Message) -> bool {
    m.tokens(&HeaderName::Require)
        .any(|t| t.eq_ignore_ascii_case(b"100rel"))
}

fn rseq(m: &Message) -> Option<u32> {
    std::str::from_utf8(m.header(&HeaderName::RSeq)?)
        .ok()?
        .trim()
        .parse()
        .ok()
}

impl Call {
    /// A reliable provisional from attempt `i`: PRACK it once. Returns false
    /// for a retransmission, which must not be relayed again.
    pub(super) fn prack_b(&mut self, i: usize, resp: &Message) -> bool {
        if !requires_100rel(resp) {
            return true;
        }
        let Some(rseq) = rseq(resp) else { return true };
        let contact = match self.attempts.get(i) {
            Some(a) => self.contact_for(&a.target.target),
            None => return false,
        };
        let Some(a) = self.attempts.get_mut(i) else {
            return false;
        };
        if a.last_rseq.is_some_and(|last| rseq <= last) {
            return false;
        }
        a.last_rseq = Some(rseq);
        let same_dialog = a
            .early
            .as_ref()
            .is_some_and(|d| resp.to_tag().as_deref() == Some(&d.remote_tag[..]));
        if !same_dialog {
            a.early = Dialog::uac(&a.invite, resp, a.target.target, contact);
        }
        let cseq = a.invite_cseq();
        let Some(early) = a.early.as_mut() else {
            return true;
        };
        let mut prack = early.request(Method::Prack);
        prack
            .headers
            .push(HeaderName::RAck, format!("{rseq} {cseq} INVITE"));
        let target = early.target;
        let tx = self.layer.send_request(prack, target);
        self.track(tx, Pending::Ignore);
        true
    }

    /// True when provisionals to A must be reliable.
    pub(super) fn a_requires_100rel(&self) -> bool {
        requires_100rel(&self.a_invite)
    }

    /// Sends a provisional to A reliably (one outstanding at a time; a newer
    /// one replaces a queued one).
    pub(super) fn send_reliable_to_a(&mut self, mut out: Message) {
        if self.a_reliable.is_some() {
            self.a_queued = Some(out);
            return;
        }
        self.a_rseq += 1;
        out.headers.push(HeaderName::Require, "100rel");
        out.headers.push(HeaderName::RSeq, self.a_rseq.to_string());
        let now = Instant::now();
        self.a_tx.respond(out.clone());
        self.a_reliable = Some(ReliableProvisional {
            message: out,
            rseq: self.a_rseq,
            interval: self.config.t1,
            next: now + self.config.t1,
            give_up: now + self.config.t1 * 64,
        });
    }

    /// When the reliable provisional to A is next retransmitted (also
    /// after the answer, while the 2xx waits for its PRACK).
    pub(super) fn reliable_deadline(&self) -> Option<Instant> {
        match (&self.a_reliable, self.state) {
            (Some(r), State::Setup) => Some(r.next.min(r.give_up)),
            (Some(r), _) if self.a_answer_held.is_some() => Some(r.next.min(r.give_up)),
            _ => None,
        }
    }

    /// At the answer: whether the 2xx must wait for the PRACK of the
    /// outstanding reliable provisional (it carried SDP: RFC 3262 §3).
    /// Otherwise the answer supersedes every unacknowledged provisional.
    pub(super) fn hold_answer_for_prack(&mut self) -> bool {
        self.a_queued = None;
        let hold = self
            .a_reliable
            .as_ref()
            .is_some_and(|r| !r.message.body.is_empty());
        if !hold {
            self.a_reliable = None;
        }
        hold
    }

    /// Retransmits (or gives up on) the reliable provisional to A.
    pub(super) fn on_reliable_deadline(&mut self, now: Instant) {
        let Some(r) = self.a_reliable.as_mut() else {
            return;
        };
        if now >= r.give_up {
            tracing::info!(message = "Caller never PRACKed a reliable provisional.");
            self.a_reliable = None;
            // The call is answered on the other side: send the held 2xx
            // rather than tear down a live call for a lost PRACK.
            if let Some(ok) = self.a_answer_held.take() {
                self.a_tx.respond(ok);
            }
            return;
        }
        if now >= r.next {
            self.a_tx.respond(r.message.clone());
            r.interval *= 2;
            r.next = now + r.interval;
        }
    }

    /// A PRACK from A: stops the retransmissions of the matching reliable
    /// provisional (RFC 3262 §3); 200 for one the answer already
    /// superseded; 481 when it matches nothing Tandem sent.
    pub(super) fn on_a_prack(&mut self, request: &Message, tx: ServerTx) {
        let rack = request
            .header_str(&HeaderName::RAck)
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u32>().ok());
        match (&self.a_reliable, rack) {
            (Some(r), Some(n)) if r.rseq == n => {
                tx.reply(200, "OK");
                self.a_reliable = None;
                if let Some(ok) = self.a_answer_held.take() {
                    self.a_tx.respond(ok);
                    return;
                }
                if let Some(next) = self.a_queued.take() {
                    self.send_reliable_to_a(next);
                }
            }
            // A provisional we sent that is no longer outstanding: the
            // answer crossed the caller's PRACK (or this is a repeat).
            // It acknowledges something real; refusing it would make the
            // caller abort a call that is being answered.
            (None, Some(n)) if n > 0 && n <= self.a_rseq => tx.reply(200, "OK"),
            _ => tx.reply(481, "Call/Transaction Does Not Exist"),
        }
    }
}

/// True when a request on leg `leg` is a PRACK for the A leg.
pub(super) fn is_a_prack(leg: LegId, request: &Message) -> bool {
    leg == LegId::A && request.method() == Some(&Method::Prack)
}
