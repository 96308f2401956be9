//! Non-INVITE client transaction (RFC 3261 §17.1.2).

use super::timers::{Timer, TimerConfig};
use super::{Action, ClientEvent};
use crate::message::Message;
use bytes::Bytes;
use std::time::Duration;

/// States of Figure 6 of RFC 3261.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

/// A non-INVITE client transaction.
#[derive(Debug)]
pub(crate) struct ClientNonInvite {
    pub(crate) state: State,
    wire: Bytes,
    reliable: bool,
    timers: TimerConfig,
    interval_e: Duration,
}

impl ClientNonInvite {
    /// Sends the request and arms Timers E and F.
    pub(crate) fn start(
        request: &Message,
        reliable: bool,
        timers: TimerConfig,
        out: &mut Vec<Action>,
    ) -> ClientNonInvite {
        let wire = request.to_bytes();
        out.push(Action::Transmit(wire.clone()));
        if !reliable {
            out.push(Action::Schedule(Timer::E, timers.t1));
        }
        out.push(Action::Schedule(Timer::F, timers.t64()));
        ClientNonInvite {
            state: State::Trying,
            wire,
            reliable,
            timers,
            interval_e: timers.t1,
        }
    }

    pub(crate) fn on_response(&mut self, resp: Message, out: &mut Vec<Action>) {
        let Some(code) = resp.code() else { return };
        match (self.state, code) {
            (State::Trying | State::Proceeding, 100..=199) => {
                self.state = State::Proceeding;
                out.push(Action::Deliver(ClientEvent::Response(Box::new(resp))));
            }
            (State::Trying | State::Proceeding, 200..=699) => {
                self.state = State::Completed;
                out.push(Action::Schedule(
                    Timer::K,
                    self.timers.t4_or_zero(self.reliable),
                ));
                out.push(Action::Deliver(ClientEvent::Response(Box::new(resp))));
            }
            _ => {}
        }
    }

    pub(crate) fn on_timer(&mut self, timer: Timer, out: &mut Vec<Action>) {
        match (self.state, timer) {
            (State::Trying, Timer::E) => {
                out.push(Action::Transmit(self.wire.clone()));
                self.interval_e = (self.interval_e * 2).min(self.timers.t2);
                out.push(Action::Schedule(Timer::E, self.interval_e));
            }
            (State::Proceeding, Timer::E) => {
                out.push(Action::Transmit(self.wire.clone()));
                out.push(Action::Schedule(Timer::E, self.timers.t2));
            }
            (State::Trying | State::Proceeding, Timer::F) => {
                self.state = State::Terminated;
                out.push(Action::Deliver(ClientEvent::Timeout));
                out.push(Action::Terminated);
            }
            (State::Completed, Timer::K) => {
                self.state = State::Terminated;
                out.push(Action::Terminated);
            }
            _ => {}
        }
    }

    pub(crate) fn on_transport_error(&mut self, out: &mut Vec<Action>) {
        if matches!(self.state, State::Trying | State::Proceeding) {
            self.state = State::Terminated;
            out.push(Action::Deliver(ClientEvent::TransportError));
            out.push(Action::Terminated);
        }
    }
}
