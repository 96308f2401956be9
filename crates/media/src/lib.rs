//! Tandem's media plane: an RTP/RTCP relay between the two sides of a call,
//! the port pool it draws from, and the SDP rewrite that steers both sides'
//! media through it.
//!
//! This crate knows nothing of SIP. The core hands it SDP bodies
//! ([`MediaSession::rewrite_sdp`]) and gets back the bodies to forward;
//! in between, the relay anchors the media.
//!
//! # Shape
//!
//! ```text
//! MediaEngine ── port pool (even RTP port, RTP+1 for RTCP), spare relays,
//!   │            session count
//!   └─ MediaSession (one per call) ── SDP state per side, o= versions
//!        └─ one relay task per m= line, owning its four sockets:
//!             RTP  facing A  ⇄  RTP  facing B
//!             RTCP facing A  ⇄  RTCP facing B
//! ```
//!
//! # The relay design
//!
//! Each m= line (an audio or a video stream) is one Tokio task that owns its
//! four non-blocking sockets and every piece of state the hot path touches:
//! where each side wants RTP and RTCP, and what latching has learnt. A
//! packet is read into a per-worker-thread scratch buffer, its fixed 12-byte
//! header is checked in place ([`RtpHeader`]), its source is latched, and
//! the same bytes go out of the opposite socket. Nothing is allocated per
//! packet and no lock is taken: the task learns about new SDP from a mailbox
//! it checks (one atomic load) before reading its sockets, and publishes
//! statistics and the time of the last packet to atomics owned by its
//! session, once per batch of packets. No state at all is shared between
//! calls on the hot path.
//!
//! Reading and writing datagrams sits in one private module (`relay::io`)
//! behind one function that moves a batch of packets from one socket to
//! another. Batching with `recvmmsg`/`sendmmsg` there was measured and did
//! not pay on this workload (see that module).
//!
//! # Reuse: spare relays
//!
//! Binding four sockets, registering them with the IO driver and spawning a
//! task per call, then closing it all, was most of what anchoring the media
//! cost per call. So a session that ends does not tear its relays down: each
//! is *parked* among the engine's spares with its task and its sockets still
//! bound. A parked task keeps reading its sockets and throws away whatever
//! arrives (late RTP of the ended call neither queues up, nor latches, nor
//! counts anywhere). A later session takes a spare over: it empties the
//! sockets' receive queues itself before its SDP is rewritten, so nothing
//! sent to the previous call can reach the next one through a queue, then
//! hands the task its new counters; the task forwards nothing until the new
//! SDP tells it where to, as for a new relay. Spares are taken oldest
//! first and only after half a second parked while fresh ports can still
//! be bound (so a late packet meets a parked task, not the next call); when
//! the range is used up, any spare is taken rather than failing. At most
//! 1,024 streams are kept (fewer with a low file-descriptor limit: never
//! more sockets than a quarter of it), and all of them close with the
//! engine. Control messages (a new session, a side's SDP, parking) go
//! through the task's mailbox without waking it: setting up or ending a
//! call wakes no relay task at all. [`MediaEngine::ports_in_use`] counts the
//! ports of live sessions only; [`MediaEngine::ports_idle`] the parked ones.
//!
//! # Symmetric latching
//!
//! Where a side's media goes starts as the address in its SDP. The packets
//! that side sends then set it to their real source address (a NAT's public
//! mapping), for RTP and RTCP independently, and again whenever that source
//! changes. A new SDP with a different address from that side resets the
//! latch to the new address. Packets towards a side whose SDP is not known
//! yet, or that rejected the stream (port 0) or put it on hold with an
//! unspecified address (`c=IN IP4 0.0.0.0`), are dropped and counted. On
//! RTP/AVP-family streams only packets that look like RTP (version 2, at
//! least 12 bytes; RTCP at least 8) latch, so a stray datagram cannot steer a
//! stream; everything that arrives is still relayed byte for byte (STUN, DTLS
//! and T.38 UDPTL included).
//!
//! # SDP
//!
//! See [`MediaSession::rewrite_sdp`]. The rewrite works on lines: `o=`, `c=`,
//! the port of `m=` and `a=rtcp:` are replaced, every other byte (line
//! endings included) passes through as it arrived. Hold with
//! `c=IN IP4 0.0.0.0` (RFC 2543 style, RFC 3264 §8.4): the `c=` line is
//! still rewritten to our address (so the other side's view of the topology
//! never changes and RTCP keeps flowing to us), direction attributes pass
//! through, and the relay stops sending anything to the side that asked for
//! the hold until its next SDP gives a real address again.
//!
//! A legacy hold that changes nothing but `c=` therefore leaves the body the
//! other side receives (and its `o=` version) unchanged: the other side is
//! not told, the relay enforces the hold. An `a=sendonly`/`inactive` hold is
//! visible as usual.
//!
//! # Limits, on purpose for now
//!
//! - `c=` with a host name is refused ([`SdpError::UnsupportedAddress`]):
//!   the relay does not resolve names.
//! - Every active `m=` line is relayed as UDP; TCP-based media (BFCP, MSRP)
//!   is not special-cased. `m=` port counts (`49170/2`) keep their count.
//! - ICE candidates and other address-bearing attributes are passed through
//!   as they are (only `a=rtcp:` is rewritten).
//! - A stream rejected later (port 0) keeps its ports until the session ends.
//!
//! # Runtime and load
//!
//! Sessions must be driven from a Tokio runtime with IO and time enabled
//! (a spare relay is only taken over by a session on the runtime its task
//! runs on). `examples/rtpload` is the load generator for the relay, with a
//! bare `recvmmsg`/`sendmmsg` forwarder as the yardstick (`--bare`); run it
//! with `cargo run --release -p tandem-media --example rtpload -- --help`.
//! `examples/sessionchurn.rs` measures what a session costs to set up and
//! tear down.

mod config;
mod engine;
mod error;
pub mod packet;
mod pool;
mod relay;
mod sdp;
mod session;
mod shared;
mod stats;

pub use config::MediaConfig;
pub use engine::MediaEngine;
pub use error::{MediaError, SdpError};
pub use packet::RtpHeader;
pub use session::{MediaSession, Side};
pub use stats::{DirectionStats, SessionStats};
