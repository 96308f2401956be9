//! The transaction layer (RFC 3261 §17): sans-IO state machines for the
//! four transaction kinds, driven by one actor task that matches messages
//! to transactions, runs the timers and talks to the transaction user (TU).
//!
//! The actor owns every transaction: no lock is shared, and the order of
//! events for one transaction is the order they arrived.

mod client;
mod client_inv;
mod key;
mod layer;
mod server;
mod server_inv;
mod timers;

pub use key::{Role, TxKey};
pub(crate) use layer::random_token;
pub use layer::{ClientTx, LayerConfig, LayerStats, ServerTx, TuEvent, TxLayer};
pub use timers::{Timer, TimerConfig};

use crate::message::Message;
use bytes::Bytes;
use std::time::Duration;

/// What a client transaction reports to its TU.
#[derive(Debug, Clone)]
pub enum ClientEvent {
    /// A response (provisional or final; every 2xx of an INVITE). Boxed:
    /// a tokio channel allocates room for 32 events up front, and each
    /// client transaction has its own channel.
    Response(Box<Message>),
    /// Timer B or F fired: no final response (the TU acts as on a 408).
    Timeout,
    /// The request could not be sent (the TU acts as on a 503).
    TransportError,
}

/// What a state machine asks its driver to do.
#[derive(Debug)]
pub(crate) enum Action {
    /// Send these bytes to the transaction's peer.
    Transmit(Bytes),
    /// Fire `Timer` after this long.
    Schedule(Timer, Duration),
    /// Hand an event to the client transaction's TU.
    Deliver(ClientEvent),
    /// A server INVITE transaction's final response was never ACKed.
    AckTimeout,
    /// The transaction is over; forget it.
    Terminated,
}

#[cfg(test)]
mod tests;
