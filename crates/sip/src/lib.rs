//! Tandem's SIP layer: the message model and parser (on rsip where rsip is
//! right), UDP and TCP transports, and the RFC 3261 §17 transaction layer.
//!
//! This crate knows nothing of calls: it turns datagrams and streams into
//! messages, matches them to transactions, runs the retransmission timers
//! and hands new requests to the transaction user.

// Messages are moved (not copied) a few times per transaction; boxing the
// larger variants would cost an allocation per parsed message instead.
#![allow(clippy::large_enum_variant)]

pub mod auth;
pub mod dialog;
pub mod message;
pub mod transaction;
pub mod transport;
pub mod uas;

/// The product token Tandem puts in Server and User-Agent headers.
pub const USER_AGENT: &str = concat!("Tandem/", env!("CARGO_PKG_VERSION"));

pub use message::{Header, HeaderName, Headers, Message, Method, StartLine, Uri};
