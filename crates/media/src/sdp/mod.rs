//! SDP, read and rewritten line by line.
//!
//! The relay needs five things from an SDP body: the `o=` line, the `c=`
//! addresses, each `m=` line's port and transport, and `a=rtcp:`. Those are
//! read by [`Description::parse`]; the rewrite ([`render`]) replaces exactly
//! those lines (and only the port of `m=`) and copies every other byte as it
//! arrived, line endings included — codecs, `fmtp`, `ptime`, direction
//! attributes, `b=`, unknown attributes and lines sdp-rs would not accept.
//!
//! sdp-rs is the test oracle here rather than the parser: its typed model
//! re-serialises (so the rest of the body would not be byte-exact), its
//! parser stops silently at a line it does not expect (dropping the `m=`
//! sections after it), and it refuses host names in `o=`. The tests check
//! that what this module writes still parses with sdp-rs and keeps every
//! typed attribute.

mod origin;
mod rewrite;
mod scan;

pub(crate) use origin::OutboundOrigin;
pub(crate) use rewrite::{Ours, render};
pub(crate) use scan::{Description, MediaSection};
