//! The B2BUA core of Tandem: every call is an actor that owns its A leg
//! (the dialog with the caller) and its B legs (the attempts toward the
//! callee), relays signalling between them and anchors the media.
//!
//! The [`Dispatcher`] is the transaction user of the SIP layer: it starts a
//! call per new INVITE (after limits and routing), and hands every later
//! request, ACK and CANCEL to the call that owns the dialog. A call's state
//! is never shared: races between the legs (CANCEL vs 200, re-INVITE glare,
//! BYE during re-INVITE) are resolved in one task, in arrival order.

// Call messages carry whole SIP messages; they are moved, not copied, and
// boxing them would cost an allocation per event.
#![allow(clippy::large_enum_variant)]

mod call;
mod config;
mod dispatcher;
mod host;
mod limits;
mod passthrough;
mod registration;
pub mod route;
mod trunk;
mod users;
mod view;

pub use config::{CoreConfig, Credential, MediaMode};
pub use dispatcher::{CoreStats, Dispatcher};
pub use host::CoreHost;
pub use route::{ForkMode, RedirectMode, Route, Router};
pub use trunk::{InboundTrunk, TrunkRegistration, TrunkRegistrations};
pub use users::UserServices;
