//! One call's media: the SDP each side sent, the streams that relay it, and
//! the `o=` line Tandem shows each side.

use crate::engine::EngineInner;
use crate::error::MediaError;
use crate::relay::{Remote, SdpTarget, Stream};
use crate::sdp::{Description, MediaSection, Ours, OutboundOrigin, render};
use crate::shared::SessionShared;
use crate::stats::SessionStats;
use bytes::Bytes;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::time::Instant;

/// One of the two sides a session relays between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The first side (for a B2BUA, usually the caller's leg).
    A,
    /// The second side.
    B,
}

impl Side {
    /// The opposite side.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    /// 0 for A, 1 for B.
    pub(crate) fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}

/// A relay between side A and side B. Dropping it gives its ports back: its
/// relays stop relaying at once and are parked, still bound, for a later
/// session to take over (see [`MediaEngine::ports_idle`](crate::MediaEngine::ports_idle)).
pub struct MediaSession {
    engine: Arc<EngineInner>,
    shared: Arc<SessionShared>,
    state: Mutex<SessionState>,
}

#[derive(Debug, Default)]
struct SessionState {
    /// One entry per `m=` line seen so far; `None` until the line is active.
    streams: Vec<Option<Stream>>,
    /// The `o=` line sent to A (index 0) and to B (index 1).
    origins: [OutboundOrigin; 2],
}

impl MediaSession {
    pub(crate) fn new(engine: Arc<EngineInner>) -> MediaSession {
        MediaSession {
            engine,
            shared: Arc::new(SessionShared::new()),
            state: Mutex::new(SessionState::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// SDP received from `from` (offer or answer, initial or in a re-INVITE
    /// or UPDATE): records where that side wants media and returns the SDP to
    /// send to the other side, rewritten so that it sends RTP and RTCP to
    /// Tandem's sockets facing it.
    ///
    /// Per `m=` line, `from`'s media address is the line's `c=` (else the
    /// session's) and port, RTCP its port + 1 or `a=rtcp:`. In the body
    /// returned:
    /// - `c=` (session and media level) is the advertised address;
    /// - each active `m=` port is Tandem's RTP port facing `from.other()`,
    ///   and `a=rtcp:` (when present) its RTCP port (and address);
    /// - `o=` keeps the username and session id of the first SDP sent that
    ///   way, carries the advertised address (topology hiding), and its
    ///   version goes up by one exactly when the body differs from the last
    ///   one sent to that side (RFC 3264 §8);
    /// - everything else (codecs, `rtpmap`, `fmtp`, `ptime`,
    ///   `telephone-event`, direction attributes, `b=`, unknown attributes,
    ///   line endings) is copied byte for byte;
    /// - `m=` lines with port 0 stay at port 0.
    ///
    /// Hold with `c=` 0.0.0.0 (or ::) is still rewritten to our address and
    /// the relay sends nothing to `from` until its next SDP has a real
    /// address; `a=sendonly`/`recvonly`/`inactive` pass through.
    ///
    /// Each active `m=` line gets its own port pairs on first use (audio
    /// and video: two streams). Errors: the SDP is unusable
    /// ([`MediaError::Sdp`]), the pool is exhausted, or the configuration
    /// cannot work. Must be called inside a Tokio runtime.
    pub async fn rewrite_sdp(&self, from: Side, sdp: &[u8]) -> Result<Bytes, MediaError> {
        let desc = Description::parse(sdp)?;
        let runtime = self.engine.relay_handle().ok_or(MediaError::NoRuntime)?;
        let addr = self.engine.config.advertised();
        if addr.is_unspecified() {
            return Err(MediaError::Config(
                "the advertised media address is unspecified: set `advertise`",
            ));
        }
        let mut state = self.lock();
        let state = &mut *state;
        let media = desc.media();
        if state.streams.len() < media.len() {
            state.streams.resize_with(media.len(), || None);
        }
        for (slot, m) in state.streams.iter_mut().zip(media) {
            if m.port != 0 && slot.is_none() {
                *slot = Some(Stream::start(
                    &self.engine.pool,
                    &self.engine.spares,
                    &self.shared,
                    &runtime,
                )?);
            }
        }
        for (slot, m) in state.streams.iter().zip(media) {
            if let Some(stream) = slot {
                stream.set_remote(remote(from, m));
            }
        }
        let ports: Vec<Option<u16>> = state
            .streams
            .iter()
            .zip(media)
            .map(|(slot, m)| match slot {
                Some(stream) if m.port != 0 => Some(stream.port(from.other())),
                _ => None,
            })
            .collect();
        let origin = &mut state.origins[from.other().index()];
        let rendered = {
            let (username, sess_id) = origin.ident(desc.origin());
            render(
                &desc,
                &Ours {
                    addr,
                    ports: &ports,
                    username,
                    sess_id,
                },
            )
        };
        Ok(origin.stamp(rendered))
    }

    /// Packets and bytes relayed each way, RTP and RTCP apart, and packets
    /// dropped.
    pub fn stats(&self) -> SessionStats {
        self.shared.snapshot()
    }

    /// Resolves once no RTP or RTCP packet has arrived from either side for
    /// the engine's inactivity timeout (counted from the session's creation
    /// until the first packet). Cancel-safe; may be awaited again and again
    /// (it resolves at once while the session stays inactive).
    pub async fn inactive(&self) {
        let timeout = self.engine.config.inactivity_timeout;
        loop {
            let deadline = self.shared.last_activity() + timeout;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }

    /// Tandem's RTP ports facing `side`, one per active `m=` line, in order.
    pub fn local_ports(&self, side: Side) -> Vec<u16> {
        self.lock()
            .streams
            .iter()
            .flatten()
            .map(|s| s.port(side))
            .collect()
    }
}

/// What `from`'s SDP says about one `m=` line.
fn remote(from: Side, m: &MediaSection<'_>) -> Remote {
    let (rtp, rtcp) = match m.connection {
        _ if m.port == 0 => (SdpTarget::Rejected, SdpTarget::Rejected),
        None => (SdpTarget::Unknown, SdpTarget::Unknown),
        Some(conn) => {
            let at = |ip: std::net::IpAddr, port: Option<u16>| match port {
                _ if ip.is_unspecified() => SdpTarget::Held,
                None | Some(0) => SdpTarget::Rejected,
                Some(port) => SdpTarget::Addr(SocketAddr::new(ip, port)),
            };
            let rtcp = match m.rtcp {
                Some(r) => at(r.addr.unwrap_or(conn), Some(r.port)),
                None => at(conn, m.port.checked_add(1)),
            };
            (at(conn, Some(m.port)), rtcp)
        }
    };
    Remote {
        side: from,
        rtp,
        rtcp,
        rtp_proto: m.is_rtp(),
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        // The streams (parked among the spares) go with `state`.
        self.engine.session_ended();
    }
}

impl fmt::Debug for MediaSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediaSession")
            .field("ports_a", &self.local_ports(Side::A))
            .field("ports_b", &self.local_ports(Side::B))
            .field("stats", &self.stats())
            .finish()
    }
}
