//! Where one side wants one kind of packet (RTP or RTCP), from its SDP and
//! from symmetric latching.

use std::net::{IpAddr, SocketAddr, SocketAddrV6};

/// What a side's SDP says about one kind of packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SdpTarget {
    /// No SDP from that side yet.
    Unknown,
    /// The side rejected or disabled the stream (port 0).
    Rejected,
    /// The side asked for nothing to be sent (`c=` 0.0.0.0 or ::).
    Held,
    /// Send here unless latching learnt better.
    Addr(SocketAddr),
}

/// One side's destination for one kind of packet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer {
    sdp: SdpTarget,
    latched: Option<SocketAddr>,
    target: Option<SocketAddr>,
}

impl Default for Peer {
    fn default() -> Self {
        Peer {
            sdp: SdpTarget::Unknown,
            latched: None,
            target: None,
        }
    }
}

impl Peer {
    /// Where packets for this side go now: `None` until its SDP is known,
    /// and while it is on hold or rejected.
    #[inline]
    pub(crate) fn target(&self) -> Option<SocketAddr> {
        self.target
    }

    /// The side's SDP changed. A different SDP target from an earlier SDP
    /// forgets the latch (the side moved, e.g. after a re-INVITE); the first
    /// SDP keeps what early packets taught.
    pub(crate) fn set_sdp(&mut self, sdp: SdpTarget) {
        if self.sdp != SdpTarget::Unknown && self.sdp != sdp {
            self.latched = None;
        }
        self.sdp = sdp;
        self.recompute();
    }

    /// A packet from this side arrived from `source`. Returns whether the
    /// latch moved.
    #[inline]
    pub(crate) fn saw(&mut self, source: SocketAddr) -> bool {
        if self.latched == Some(source) {
            return false;
        }
        self.latched = Some(source);
        self.recompute();
        true
    }

    fn recompute(&mut self) {
        self.target = match self.sdp {
            SdpTarget::Addr(a) => Some(self.latched.unwrap_or(a)),
            SdpTarget::Unknown | SdpTarget::Rejected | SdpTarget::Held => None,
        };
    }
}

/// `addr` in the family of a socket bound to `local`: an IPv4 destination
/// becomes v4-mapped for a (dual-stack) IPv6 socket.
pub(crate) fn for_socket(addr: SocketAddr, local: IpAddr) -> SocketAddr {
    match (addr, local) {
        (SocketAddr::V4(v4), IpAddr::V6(_)) => {
            SocketAddr::V6(SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0))
        }
        _ => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn unknown_until_sdp_even_if_packets_came() {
        let mut p = Peer::default();
        assert_eq!(p.target(), None);
        assert!(p.saw(a("10.0.0.1:4000")));
        assert_eq!(p.target(), None);
        // The first SDP keeps what the early packets taught.
        p.set_sdp(SdpTarget::Addr(a("192.168.1.2:4000")));
        assert_eq!(p.target(), Some(a("10.0.0.1:4000")));
    }

    #[test]
    fn latches_and_relatches() {
        let mut p = Peer::default();
        p.set_sdp(SdpTarget::Addr(a("192.168.1.2:4000")));
        assert_eq!(p.target(), Some(a("192.168.1.2:4000")));
        assert!(p.saw(a("203.0.113.9:61000")));
        assert!(!p.saw(a("203.0.113.9:61000")));
        assert_eq!(p.target(), Some(a("203.0.113.9:61000")));
        assert!(p.saw(a("203.0.113.9:61002")));
        assert_eq!(p.target(), Some(a("203.0.113.9:61002")));
    }

    #[test]
    fn a_new_sdp_address_resets_the_latch_the_same_one_does_not() {
        let mut p = Peer::default();
        p.set_sdp(SdpTarget::Addr(a("192.168.1.2:4000")));
        p.saw(a("203.0.113.9:61000"));
        p.set_sdp(SdpTarget::Addr(a("192.168.1.2:4000")));
        assert_eq!(p.target(), Some(a("203.0.113.9:61000")));
        p.set_sdp(SdpTarget::Addr(a("192.168.1.7:5000")));
        assert_eq!(p.target(), Some(a("192.168.1.7:5000")));
    }

    #[test]
    fn hold_and_reject_stop_sending_even_when_latched() {
        let mut p = Peer::default();
        p.set_sdp(SdpTarget::Addr(a("192.168.1.2:4000")));
        p.saw(a("203.0.113.9:61000"));
        p.set_sdp(SdpTarget::Held);
        assert_eq!(p.target(), None);
        p.saw(a("203.0.113.9:61000"));
        assert_eq!(p.target(), None);
        p.set_sdp(SdpTarget::Addr(a("192.168.1.2:4000")));
        assert_eq!(p.target(), Some(a("192.168.1.2:4000")));
        p.set_sdp(SdpTarget::Rejected);
        assert_eq!(p.target(), None);
    }

    #[test]
    fn maps_v4_for_v6_sockets() {
        let v6: IpAddr = "::".parse().unwrap();
        let v4: IpAddr = "0.0.0.0".parse().unwrap();
        assert_eq!(for_socket(a("192.0.2.1:9"), v6), a("[::ffff:192.0.2.1]:9"));
        assert_eq!(for_socket(a("192.0.2.1:9"), v4), a("192.0.2.1:9"));
        assert_eq!(for_socket(a("[2001:db8::1]:9"), v6), a("[2001:db8::1]:9"));
    }
}
