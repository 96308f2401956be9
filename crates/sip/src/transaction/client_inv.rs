//! INVITE client transaction (RFC 3261 §17.1.1, as updated by RFC 6026).

use super::timers::{Timer, TimerConfig};
use super::{Action, ClientEvent};
use crate::message::{HeaderName, Message, Method, StartLine};
use bytes::Bytes;
use std::time::Duration;

/// States of Figure 5 of RFC 3261, with RFC 6026's Accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Calling,
    Proceeding,
    Completed,
    Accepted,
    Terminated,
}

/// An INVITE client transaction.
#[derive(Debug)]
pub(crate) struct ClientInvite {
    pub(crate) state: State,
    request: Message,
    wire: Bytes,
    ack: Option<Bytes>,
    reliable: bool,
    timers: TimerConfig,
    interval_a: Duration,
}

impl ClientInvite {
    /// Starts the transaction: sends the request and arms Timers A and B.
    pub(crate) fn start(
        request: Message,
        reliable: bool,
        timers: TimerConfig,
        out: &mut Vec<Action>,
    ) -> ClientInvite {
        let wire = request.to_bytes();
        out.push(Action::Transmit(wire.clone()));
        if !reliable {
            out.push(Action::Schedule(Timer::A, timers.t1));
        }
        out.push(Action::Schedule(Timer::B, timers.t64()));
        ClientInvite {
            state: State::Calling,
            request,
            wire,
            ack: None,
            reliable,
            timers,
            interval_a: timers.t1,
        }
    }

    /// The INVITE as sent (for building a CANCEL).
    pub(crate) fn request(&self) -> &Message {
        &self.request
    }

    pub(crate) fn on_response(&mut self, resp: Message, out: &mut Vec<Action>) {
        let Some(code) = resp.code() else { return };
        match (self.state, code) {
            (State::Calling | State::Proceeding, 100..=199) => {
                self.state = State::Proceeding;
                out.push(Action::Deliver(ClientEvent::Response(Box::new(resp))));
            }
            (State::Calling | State::Proceeding, 200..=299) => {
                self.state = State::Accepted;
                out.push(Action::Schedule(Timer::M, self.timers.t64()));
                out.push(Action::Deliver(ClientEvent::Response(Box::new(resp))));
            }
            (State::Accepted, 200..=299) => {
                // Retransmitted or forked 2xx: the TU ACKs each one.
                out.push(Action::Deliver(ClientEvent::Response(Box::new(resp))));
            }
            (State::Calling | State::Proceeding, 300..=699) => {
                self.state = State::Completed;
                let ack = build_ack(&self.request, &resp).to_bytes();
                out.push(Action::Transmit(ack.clone()));
                self.ack = Some(ack);
                out.push(Action::Schedule(
                    Timer::D,
                    self.timers.timer_d(self.reliable),
                ));
                out.push(Action::Deliver(ClientEvent::Response(Box::new(resp))));
            }
            (State::Completed, 300..=699) => {
                if let Some(ack) = &self.ack {
                    out.push(Action::Transmit(ack.clone()));
                }
            }
            _ => {}
        }
    }

    pub(crate) fn on_timer(&mut self, timer: Timer, out: &mut Vec<Action>) {
        match (self.state, timer) {
            (State::Calling, Timer::A) => {
                out.push(Action::Transmit(self.wire.clone()));
                self.interval_a *= 2;
                out.push(Action::Schedule(Timer::A, self.interval_a));
            }
            (State::Calling, Timer::B) => {
                self.state = State::Terminated;
                out.push(Action::Deliver(ClientEvent::Timeout));
                out.push(Action::Terminated);
            }
            (State::Completed, Timer::D) | (State::Accepted, Timer::M) => {
                self.state = State::Terminated;
                out.push(Action::Terminated);
            }
            _ => {}
        }
    }

    pub(crate) fn on_transport_error(&mut self, out: &mut Vec<Action>) {
        if matches!(self.state, State::Calling | State::Proceeding) {
            self.state = State::Terminated;
            out.push(Action::Deliver(ClientEvent::TransportError));
            out.push(Action::Terminated);
        }
    }
}

/// The ACK for a non-2xx final response (§17.1.1.3): Request-URI, Call-ID,
/// From, CSeq number, the one Via and Route of the INVITE; To of the
/// response.
pub(crate) fn build_ack(invite: &Message, resp: &Message) -> Message {
    let uri = match &invite.start {
        StartLine::Request { uri, .. } => uri.clone(),
        StartLine::Response { .. } => crate::message::Uri::sip(None, "invalid", None),
    };
    let mut ack = Message::request(Method::Ack, uri);
    if let Some(v) = invite.headers.get(&HeaderName::Via) {
        ack.headers.push(HeaderName::Via, v.clone());
    }
    ack.headers.push(HeaderName::MaxForwards, "70");
    for name in [HeaderName::From, HeaderName::CallId] {
        if let Some(v) = invite.headers.get(&name) {
            ack.headers.push(name, v.clone());
        }
    }
    if let Some(v) = resp.headers.get(&HeaderName::To) {
        ack.headers.push(HeaderName::To, v.clone());
    }
    let seq = invite.cseq().map_or(1, |c| c.seq);
    ack.headers.push(HeaderName::CSeq, format!("{seq} ACK"));
    for r in invite.headers.get_all(&HeaderName::Route) {
        ack.headers.push(HeaderName::Route, r.clone());
    }
    ack
}
