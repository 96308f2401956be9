//! In-dialog requests: BYE ends both legs; re-INVITE and UPDATE are relayed
//! with rewritten SDP (491 on glare); INFO, MESSAGE, NOTIFY and the rest
//! are relayed as they are, and their answers relayed back.

use super::{Call, LegId, Pending, State};
use crate::passthrough::copy_headers;
use bytes::Bytes;
use media::Side;
use sip::message::{HeaderName, Message, Method};
use sip::transaction::{ClientEvent, ServerTx};
use sip::transport::Source;

fn side(leg: LegId) -> Side {
    match leg {
        LegId::A => Side::A,
        LegId::B(_) => Side::B,
    }
}

fn slot(leg: LegId) -> usize {
    match leg {
        LegId::A => 0,
        LegId::B(_) => 1,
    }
}

fn carries_offer(m: &Method) -> bool {
    matches!(m, Method::Invite | Method::Update)
}

impl Call {
    pub(super) async fn on_request(
        &mut self,
        leg: LegId,
        request: Message,
        _source: Source,
        tx: ServerTx,
    ) {
        let Some(method) = request.method().cloned() else {
            return;
        };
        if super::prack::is_a_prack(leg, &request) {
            return self.on_a_prack(&request, tx);
        }
        let in_order = self.dialog_mut(leg).map(|d| d.accept_remote_cseq(&request));
        match in_order {
            None => {
                // A request on an attempt that never got its dialog.
                tx.reply(481, "Call/Transaction Does Not Exist");
                return;
            }
            Some(false) => {
                tx.reply(500, "Server Internal Error (CSeq out of order)");
                return;
            }
            Some(true) => {}
        }
        if method == Method::Bye {
            tx.reply(200, "OK");
            tracing::info!(message = "Hangup.", from = ?leg);
            self.on_bye(leg);
            return;
        }
        let Some(to) = self.other(leg) else {
            tx.reply(481, "Call/Transaction Does Not Exist");
            return;
        };
        if !matches!(self.state, State::Confirmed) {
            tx.reply(491, "Request Pending");
            return;
        }
        if carries_offer(&method) && self.offer_in_progress() {
            // Glare (RFC 3261 §14.2): one offer at a time across the call.
            tx.reply(491, "Request Pending");
            return;
        }
        if carries_offer(&method) {
            if let Some(d) = self.dialog_mut(leg) {
                d.refresh_target(&request);
            }
            self.on_refresh_request(leg, &request);
        }
        let session_header = if carries_offer(&method) {
            self.session_header(to, true)
        } else {
            None
        };
        let body = if carries_offer(&method) && !request.body.is_empty() {
            match self.sdp_toward_other(side(leg), &request.body).await {
                Ok(sdp) => Some(sdp),
                Err(e) => {
                    tracing::info!(message = "SDP refused.", error = %e);
                    tx.reply(488, "Not Acceptable Here");
                    return;
                }
            }
        } else if request.body.is_empty() {
            None
        } else {
            Some(request.body.clone())
        };
        let Some(dialog) = self.dialog_mut(to) else {
            tx.reply(481, "Call/Transaction Does Not Exist");
            return;
        };
        let mut out = dialog.request(method.clone());
        let sent_cseq = dialog.local_cseq;
        let target = dialog.target;
        copy_headers(&request, &mut out.headers);
        if let Some(se) = session_header {
            out.headers.push(HeaderName::Supported, "timer");
            out.headers.push(HeaderName::SessionExpires, se);
        }
        out.headers.push(HeaderName::UserAgent, sip::USER_AGENT);
        if let Some(body) = body {
            let ctype = request
                .header_str(&HeaderName::ContentType)
                .unwrap_or("application/sdp")
                .to_string();
            out.set_body(&ctype, body);
        }
        let client = self.layer.send_request(out, target);
        self.track(
            client,
            Pending::Relay {
                from: leg,
                to,
                request,
                tx,
                answered: false,
                sent_cseq,
            },
        );
    }

    /// The end of a relayed offer: a 2xx puts both bodies in force; a
    /// refusal restores the media of the offerer to the SDP in force, so a
    /// refused re-INVITE leaves the media where it was (RFC 3261 §14.1).
    async fn settle_offer(&mut self, id: u64, from: LegId, to: LegId, code: u16, resp: &Message) {
        let Some(Pending::Relay { request, .. }) = self.pending.get(&id) else {
            return;
        };
        let offer = request.body.clone();
        if offer.is_empty() {
            return;
        }
        if (200..300).contains(&code) {
            self.sdp_in_force[slot(from)] = Some(offer);
            if !resp.body.is_empty() {
                self.sdp_in_force[slot(to)] = Some(resp.body.clone());
            }
        } else if let Some(previous) = self.sdp_in_force[slot(from)].clone()
            && let Err(e) = self.sdp_toward_other(side(from), &previous).await
        {
            tracing::warn!(message = "Could not restore the media after a refused offer.", error = %e);
        }
    }

    /// True while a re-INVITE or UPDATE is being relayed.
    fn offer_in_progress(&self) -> bool {
        self.pending.values().any(|p| {
            matches!(p, Pending::Relay { request, answered: false, .. }
                if request.method().is_some_and(carries_offer))
        })
    }

    fn on_bye(&mut self, from: LegId) {
        match from {
            LegId::A => self.a_bye_sent = true,
            LegId::B(i) => {
                if let Some(a) = self.attempts.get_mut(i) {
                    a.bye_sent = true;
                }
            }
        }
        self.fail_pending_relays();
        if let Some(other) = self.other(from) {
            let already = match other {
                LegId::A => self.a_bye_sent,
                LegId::B(i) => self.attempts.get(i).is_some_and(|a| a.bye_sent),
            };
            if !already {
                self.send_bye(other);
            }
        }
        self.state = State::Ending;
        self.ending_deadline = Some(tokio::time::Instant::now() + super::ENDING_GRACE);
        self.check_done();
    }

    /// The answer to a relayed request, relayed back.
    pub(super) async fn on_relay_event(&mut self, id: u64, event: ClientEvent) {
        let Some(Pending::Relay {
            from,
            to,
            request,
            tx,
            answered,
            sent_cseq,
        }) = self.pending.get(&id)
        else {
            return;
        };
        let (from, to, sent_cseq, was_answered) = (*from, *to, *sent_cseq, *answered);
        let method = request.method().cloned().unwrap_or(Method::Options);
        let resp = match event {
            ClientEvent::Response(r) => r,
            ClientEvent::Timeout | ClientEvent::TransportError => {
                if !was_answered {
                    tx.reply(408, "Request Timeout");
                }
                self.pending.remove(&id);
                return;
            }
        };
        let Some(code) = resp.code() else { return };
        if code == 100 {
            return;
        }
        if method == Method::Invite && (200..300).contains(&code) {
            // ACK every 2xx of the relayed re-INVITE, retransmissions too;
            // for a late offer the ACK waits for the answer in X's ACK.
            let late = request.body.is_empty() && !resp.body.is_empty();
            if let Some(d) = self.dialog_mut(to) {
                d.refresh_target(&resp);
            }
            self.ack_2xx(to, sent_cseq, late);
        }
        if was_answered {
            return;
        }
        if carries_offer(&method) && code >= 200 {
            self.settle_offer(id, from, to, code, &resp).await;
        }
        let local_tag = self.local_tag(from);
        let Some(Pending::Relay { request, .. }) = self.pending.get(&id) else {
            return;
        };
        let reason = resp.reason().unwrap_or_default();
        let mut out = Message::response_to(request, code, &reason, Some(&local_tag));
        copy_headers(&resp, &mut out.headers);
        if (200..300).contains(&code) && carries_offer(&method) {
            self.on_refresh_answered(to);
            let contact = self.dialog_mut(from).map(|d| d.contact.clone());
            if let Some(c) = contact {
                out.headers.push(HeaderName::Contact, c);
            }
            if let Some(se) = self.session_header(from, false) {
                if se.ends_with("refresher=uac") {
                    out.headers.push(HeaderName::Require, "timer");
                }
                out.headers.push(HeaderName::SessionExpires, se);
            }
        }
        if !resp.body.is_empty() {
            let body: Option<Bytes> = if carries_offer(&method) {
                self.sdp_toward_other(side(to), &resp.body).await.ok()
            } else {
                Some(resp.body.clone())
            };
            if let Some(body) = body {
                let ctype = resp
                    .header_str(&HeaderName::ContentType)
                    .unwrap_or("application/sdp")
                    .to_string();
                out.set_body(&ctype, body);
            }
        }
        if let Some(Pending::Relay { tx, answered, .. }) = self.pending.get_mut(&id) {
            tx.respond(out);
            if code >= 200 {
                *answered = true;
            }
        }
    }
}
