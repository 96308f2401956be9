//! RTP and RTCP headers read in place: the relay looks at the fixed part of
//! a packet and never copies or allocates.

/// The fixed 12-byte RTP header (RFC 3550 §5.1), read in place.
///
/// CSRC lists, header extensions and padding are not interpreted: the relay
/// forwards the packet's bytes unchanged and needs nothing past byte 12.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// Padding bit.
    pub padding: bool,
    /// Extension bit.
    pub extension: bool,
    /// Number of CSRC identifiers that follow the fixed header.
    pub csrc_count: u8,
    /// Marker bit.
    pub marker: bool,
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// Synchronization source.
    pub ssrc: u32,
}

/// Length of the fixed RTP header.
pub const RTP_HEADER_LEN: usize = 12;

/// Length of the smallest RTCP packet (a header with the sender's SSRC).
pub const RTCP_MIN_LEN: usize = 8;

impl RtpHeader {
    /// Reads the fixed header of `packet`: `None` unless it is at least 12
    /// bytes long and version 2. Payload types 72–95 are refused: in that
    /// range the second byte is an RTCP packet type (RFC 5761 §4).
    #[inline]
    pub fn parse(packet: &[u8]) -> Option<RtpHeader> {
        let fixed: &[u8; RTP_HEADER_LEN] = packet.get(..RTP_HEADER_LEN)?.try_into().ok()?;
        if fixed[0] >> 6 != 2 {
            return None;
        }
        let payload_type = fixed[1] & 0x7f;
        if (72..=95).contains(&payload_type) {
            return None;
        }
        Some(RtpHeader {
            padding: fixed[0] & 0x20 != 0,
            extension: fixed[0] & 0x10 != 0,
            csrc_count: fixed[0] & 0x0f,
            marker: fixed[1] & 0x80 != 0,
            payload_type,
            sequence: u16::from_be_bytes([fixed[2], fixed[3]]),
            timestamp: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
            ssrc: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
        })
    }

    /// Writes this header into the first 12 bytes of `out` (version 2, no
    /// CSRC list written even if `csrc_count` says so). Returns `None` if
    /// `out` is shorter than 12 bytes.
    pub fn write(&self, out: &mut [u8]) -> Option<()> {
        let fixed = out.get_mut(..RTP_HEADER_LEN)?;
        fixed[0] = 0x80
            | (u8::from(self.padding) << 5)
            | (u8::from(self.extension) << 4)
            | (self.csrc_count & 0x0f);
        fixed[1] = (u8::from(self.marker) << 7) | (self.payload_type & 0x7f);
        fixed[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        fixed[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        fixed[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        Some(())
    }
}

/// Whether `packet` looks like RTCP: version 2, at least 8 bytes, packet
/// type 192–223 (the range RFC 5761 §4 reserves for RTCP).
#[inline]
pub fn looks_like_rtcp(packet: &[u8]) -> bool {
    packet.len() >= RTCP_MIN_LEN && packet[0] >> 6 == 2 && (192..=223).contains(&packet[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    const PCMU: [u8; 12] = [
        0x80, 0x00, 0x12, 0x34, 0x00, 0x00, 0x03, 0x20, 0xde, 0xad, 0xbe, 0xef,
    ];

    #[test]
    fn reads_the_fixed_header() {
        let h = RtpHeader::parse(&PCMU).unwrap();
        assert_eq!(h.payload_type, 0);
        assert_eq!(h.sequence, 0x1234);
        assert_eq!(h.timestamp, 800);
        assert_eq!(h.ssrc, 0xdead_beef);
        assert!(!h.marker && !h.padding && !h.extension);
        assert_eq!(h.csrc_count, 0);
    }

    #[test]
    fn marker_and_dynamic_payload_type() {
        let mut p = PCMU;
        p[1] = 0x80 | 101; // telephone-event with marker
        let h = RtpHeader::parse(&p).unwrap();
        assert!(h.marker);
        assert_eq!(h.payload_type, 101);
    }

    #[test]
    fn refuses_short_wrong_version_and_rtcp() {
        assert_eq!(RtpHeader::parse(&PCMU[..11]), None);
        let mut p = PCMU;
        p[0] = 0x40;
        assert_eq!(RtpHeader::parse(&p), None);
        let sr = [0x80, 200, 0, 6, 1, 2, 3, 4];
        assert!(looks_like_rtcp(&sr));
        let mut sr12 = [0u8; 12];
        sr12[..8].copy_from_slice(&sr);
        assert_eq!(RtpHeader::parse(&sr12), None);
        assert!(!looks_like_rtcp(&PCMU));
        assert!(!looks_like_rtcp(&sr[..7]));
        // STUN and DTLS are neither.
        assert!(!looks_like_rtcp(&[
            0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42
        ]));
        assert_eq!(
            RtpHeader::parse(&[22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            None
        );
    }

    #[test]
    fn write_then_parse_round_trips() {
        let h = RtpHeader {
            padding: true,
            extension: false,
            csrc_count: 0,
            marker: true,
            payload_type: 8,
            sequence: 65_535,
            timestamp: u32::MAX,
            ssrc: 7,
        };
        let mut buf = [0u8; 12];
        h.write(&mut buf).unwrap();
        assert_eq!(RtpHeader::parse(&buf), Some(h));
        assert_eq!(h.write(&mut [0u8; 11]), None);
    }

    #[test]
    fn agrees_with_the_rtp_crate() {
        use rtp::packet::Packet;
        use webrtc_util::marshal::Marshal;
        let mut pkt = Packet::default();
        pkt.header.version = 2;
        pkt.header.marker = true;
        pkt.header.payload_type = 0;
        pkt.header.sequence_number = 4242;
        pkt.header.timestamp = 123_456;
        pkt.header.ssrc = 0x0102_0304;
        pkt.payload = bytes::Bytes::from_static(&[0xff; 160]);
        let wire = pkt.marshal().unwrap();
        let h = RtpHeader::parse(&wire).unwrap();
        assert_eq!(h.sequence, 4242);
        assert_eq!(h.timestamp, 123_456);
        assert_eq!(h.ssrc, 0x0102_0304);
        assert!(h.marker);
        assert_eq!(wire.len(), 172);
    }
}
