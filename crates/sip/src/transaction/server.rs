//! Non-INVITE server transaction (RFC 3261 §17.2.2).

use super::Action;
use super::timers::{Timer, TimerConfig};
use bytes::Bytes;

/// States of Figure 8 of RFC 3261.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

/// A non-INVITE server transaction.
#[derive(Debug)]
pub(crate) struct ServerNonInvite {
    pub(crate) state: State,
    last: Option<Bytes>,
    reliable: bool,
    timers: TimerConfig,
}

impl ServerNonInvite {
    pub(crate) fn new(reliable: bool, timers: TimerConfig) -> ServerNonInvite {
        ServerNonInvite {
            state: State::Trying,
            last: None,
            reliable,
            timers,
        }
    }

    /// A retransmission of the request.
    pub(crate) fn on_request_retransmit(&mut self, out: &mut Vec<Action>) {
        if matches!(self.state, State::Proceeding | State::Completed)
            && let Some(last) = &self.last
        {
            out.push(Action::Transmit(last.clone()));
        }
    }

    /// A response from the transaction user.
    pub(crate) fn on_response(&mut self, code: u16, wire: Bytes, out: &mut Vec<Action>) {
        match (self.state, code) {
            (State::Trying | State::Proceeding, 100..=199) => {
                self.state = State::Proceeding;
                out.push(Action::Transmit(wire.clone()));
                self.last = Some(wire);
            }
            (State::Trying | State::Proceeding, 200..=699) => {
                self.state = State::Completed;
                out.push(Action::Transmit(wire.clone()));
                self.last = Some(wire);
                out.push(Action::Schedule(
                    Timer::J,
                    self.timers.timer_j(self.reliable),
                ));
            }
            _ => {}
        }
    }

    pub(crate) fn on_timer(&mut self, timer: Timer, out: &mut Vec<Action>) {
        if (self.state, timer) == (State::Completed, Timer::J) {
            self.state = State::Terminated;
            out.push(Action::Terminated);
        }
    }

    pub(crate) fn on_transport_error(&mut self, out: &mut Vec<Action>) {
        if self.state != State::Terminated {
            self.state = State::Terminated;
            out.push(Action::Terminated);
        }
    }
}
