//! What a session's relay tasks publish to the session: counters and the
//! time of the last packet. Written once per batch of packets, read by
//! [`MediaSession::stats`](crate::MediaSession::stats) and
//! [`MediaSession::inactive`](crate::MediaSession::inactive); owned by one
//! session, so never contended across calls.

use crate::stats::{DirectionStats, SessionStats};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use tokio::time::Instant;

/// Counters of one direction.
#[derive(Debug, Default)]
struct Counters {
    rtp_packets: AtomicU64,
    rtp_bytes: AtomicU64,
    rtcp_packets: AtomicU64,
    rtcp_bytes: AtomicU64,
    dropped: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> DirectionStats {
        DirectionStats {
            rtp_packets: self.rtp_packets.load(Relaxed),
            rtp_bytes: self.rtp_bytes.load(Relaxed),
            rtcp_packets: self.rtcp_packets.load(Relaxed),
            rtcp_bytes: self.rtcp_bytes.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
        }
    }
}

/// Whether a batch was RTP or RTCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The RTP sockets.
    Rtp,
    /// The RTCP sockets (RTP port + 1).
    Rtcp,
}

/// State a session shares with its relay tasks.
#[derive(Debug)]
pub(crate) struct SessionShared {
    /// Index 0: A→B, 1: B→A.
    dirs: [Counters; 2],
    epoch: Instant,
    /// Nanoseconds from `epoch` to the last packet received.
    last_rx: AtomicU64,
}

impl SessionShared {
    /// Counters at zero; the inactivity clock starts now.
    pub(crate) fn new() -> SessionShared {
        SessionShared {
            dirs: Default::default(),
            epoch: Instant::now(),
            last_rx: AtomicU64::new(0),
        }
    }

    /// Adds one batch from side `from` (0: A, 1: B).
    pub(crate) fn record(&self, from: usize, kind: Kind, relayed: u64, bytes: u64, dropped: u64) {
        let Some(c) = self.dirs.get(from) else {
            return;
        };
        let (packets, octets) = match kind {
            Kind::Rtp => (&c.rtp_packets, &c.rtp_bytes),
            Kind::Rtcp => (&c.rtcp_packets, &c.rtcp_bytes),
        };
        if relayed > 0 {
            packets.fetch_add(relayed, Relaxed);
            octets.fetch_add(bytes, Relaxed);
        }
        if dropped > 0 {
            c.dropped.fetch_add(dropped, Relaxed);
        }
    }

    /// Notes that a packet arrived now.
    pub(crate) fn touch(&self) {
        let nanos = Instant::now()
            .saturating_duration_since(self.epoch)
            .as_nanos();
        self.last_rx
            .fetch_max(u64::try_from(nanos).unwrap_or(u64::MAX), Relaxed);
    }

    /// When the last packet arrived (the session's creation if none has).
    pub(crate) fn last_activity(&self) -> Instant {
        self.epoch + std::time::Duration::from_nanos(self.last_rx.load(Relaxed))
    }

    /// Both directions' counters.
    pub(crate) fn snapshot(&self) -> SessionStats {
        SessionStats {
            a_to_b: self.dirs[0].snapshot(),
            b_to_a: self.dirs[1].snapshot(),
        }
    }
}
