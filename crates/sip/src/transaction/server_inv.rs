//! INVITE server transaction (RFC 3261 §17.2.1, as updated by RFC 6026),
//! which also retransmits a 2xx until its ACK arrives (§13.3.1.4) so that
//! the transaction user never has to.

use super::Action;
use super::timers::{Timer, TimerConfig};
use bytes::Bytes;
use std::time::Duration;

/// States of Figure 7 of RFC 3261, with RFC 6026's Accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
    Terminated,
}

/// An INVITE server transaction.
#[derive(Debug)]
pub(crate) struct ServerInvite {
    pub(crate) state: State,
    last: Option<Bytes>,
    reliable: bool,
    timers: TimerConfig,
    interval: Duration,
    acked: bool,
}

impl ServerInvite {
    pub(crate) fn new(reliable: bool, timers: TimerConfig) -> ServerInvite {
        ServerInvite {
            state: State::Proceeding,
            last: None,
            reliable,
            timers,
            interval: timers.t1,
            acked: false,
        }
    }

    /// A retransmission of the INVITE.
    pub(crate) fn on_request_retransmit(&mut self, out: &mut Vec<Action>) {
        match self.state {
            State::Proceeding | State::Completed => {
                if let Some(last) = &self.last {
                    out.push(Action::Transmit(last.clone()));
                }
            }
            // RFC 6026 §7.1: absorbed in Accepted; the 2xx goes out on its
            // own schedule.
            _ => {}
        }
    }

    /// A response from the transaction user.
    pub(crate) fn on_response(&mut self, code: u16, wire: Bytes, out: &mut Vec<Action>) {
        match (self.state, code) {
            (State::Proceeding, 100..=199) => {
                out.push(Action::Transmit(wire.clone()));
                self.last = Some(wire);
            }
            (State::Proceeding, 200..=299) => {
                self.state = State::Accepted;
                out.push(Action::Transmit(wire.clone()));
                self.last = Some(wire);
                if !self.reliable {
                    out.push(Action::Schedule(Timer::Ok2xx, self.timers.t1));
                }
                out.push(Action::Schedule(Timer::L, self.timers.t64()));
            }
            (State::Accepted, 200..=299) => {
                // The TU may send the 2xx again (e.g. with a new body);
                // keep the latest for retransmission.
                out.push(Action::Transmit(wire.clone()));
                self.last = Some(wire);
            }
            (State::Proceeding, 300..=699) => {
                self.state = State::Completed;
                out.push(Action::Transmit(wire.clone()));
                self.last = Some(wire);
                if !self.reliable {
                    out.push(Action::Schedule(Timer::G, self.timers.t1));
                }
                out.push(Action::Schedule(Timer::H, self.timers.t64()));
            }
            _ => {}
        }
    }

    /// An ACK matching this transaction: for a non-2xx it confirms; for a
    /// 2xx it stops the retransmissions. Returns true when it was for a 2xx
    /// (the TU must see it).
    pub(crate) fn on_ack(&mut self, out: &mut Vec<Action>) -> bool {
        match self.state {
            State::Completed => {
                self.state = State::Confirmed;
                out.push(Action::Schedule(
                    Timer::I,
                    self.timers.t4_or_zero(self.reliable),
                ));
                false
            }
            State::Accepted => {
                self.acked = true;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn on_timer(&mut self, timer: Timer, out: &mut Vec<Action>) {
        match (self.state, timer) {
            (State::Completed, Timer::G) => {
                if let Some(last) = &self.last {
                    out.push(Action::Transmit(last.clone()));
                }
                self.interval = (self.interval * 2).min(self.timers.t2);
                out.push(Action::Schedule(Timer::G, self.interval));
            }
            (State::Accepted, Timer::Ok2xx) if !self.acked => {
                if let Some(last) = &self.last {
                    out.push(Action::Transmit(last.clone()));
                }
                self.interval = (self.interval * 2).min(self.timers.t2);
                out.push(Action::Schedule(Timer::Ok2xx, self.interval));
            }
            (State::Completed, Timer::H) => {
                self.state = State::Terminated;
                out.push(Action::AckTimeout);
                out.push(Action::Terminated);
            }
            (State::Confirmed, Timer::I) => {
                self.state = State::Terminated;
                out.push(Action::Terminated);
            }
            (State::Accepted, Timer::L) => {
                self.state = State::Terminated;
                if !self.acked {
                    out.push(Action::AckTimeout);
                }
                out.push(Action::Terminated);
            }
            _ => {}
        }
    }

    pub(crate) fn on_transport_error(&mut self, out: &mut Vec<Action>) {
        if self.state != State::Terminated {
            self.state = State::Terminated;
            out.push(Action::Terminated);
        }
    }
}
