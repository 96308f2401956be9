//! Snapshots of what a session has relayed.

/// What one direction of a session has carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// RTP packets relayed (sent on to the other side).
    pub rtp_packets: u64,
    /// Bytes of those RTP packets (UDP payload).
    pub rtp_bytes: u64,
    /// RTCP packets relayed.
    pub rtcp_packets: u64,
    /// Bytes of those RTCP packets.
    pub rtcp_bytes: u64,
    /// Packets received from this direction's source and not sent on: the
    /// destination was not known yet, on hold or rejected, or sending failed.
    pub dropped: u64,
}

impl DirectionStats {
    /// RTP and RTCP packets relayed.
    pub fn packets(&self) -> u64 {
        self.rtp_packets + self.rtcp_packets
    }
}

/// Both directions of a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// From side A to side B.
    pub a_to_b: DirectionStats,
    /// From side B to side A.
    pub b_to_a: DirectionStats,
}
