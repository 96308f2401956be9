//! The media engine's settings.

use crate::error::MediaError;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// Where the relay binds, what it advertises in SDP, which ports it may use
/// and when a silent session counts as dead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// Address the RTP and RTCP sockets bind to (default 127.0.0.1).
    pub bind: IpAddr,
    /// Address written into SDP (default: `bind`). Must be set when `bind`
    /// is unspecified (0.0.0.0 or ::), which would read as a hold in SDP.
    pub advertise: Option<IpAddr>,
    /// Lowest port of the RTP range (RTP on even ports, RTCP on RTP+1).
    pub port_min: u16,
    /// Highest port of the range; an RTP port is used only if RTP+1 fits.
    pub port_max: u16,
    /// A session with no RTP or RTCP from either side for this long is
    /// inactive (default 60 s).
    pub inactivity_timeout: Duration,
    /// Threads of the relay's own runtime, apart from signalling; 0 runs
    /// the relays on the runtime of whoever opens the session (default).
    pub relay_threads: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            advertise: None,
            port_min: 20_000,
            port_max: 30_000,
            inactivity_timeout: Duration::from_secs(60),
            relay_threads: 0,
        }
    }
}

impl MediaConfig {
    /// The address written into SDP.
    pub fn advertised(&self) -> IpAddr {
        self.advertise.unwrap_or(self.bind)
    }

    /// The first even RTP port of the range and how many RTP/RTCP pairs fit.
    pub(crate) fn pair_range(&self) -> (u16, usize) {
        let first = self.port_min.saturating_add(self.port_min % 2);
        if first == 0 || first >= self.port_max {
            return (first, 0);
        }
        // Pairs (p, p+1) with p even, first <= p and p+1 <= port_max.
        let pairs = (usize::from(self.port_max) - usize::from(first)).div_ceil(2);
        (first, pairs)
    }

    /// Checks what [`MediaEngine::new`](crate::MediaEngine::new) cannot
    /// reject: an advertised address that is unspecified, an empty or
    /// inverted port range, port 0.
    pub fn validate(&self) -> Result<(), MediaError> {
        if self.advertised().is_unspecified() {
            return Err(MediaError::Config(
                "the advertised media address is unspecified: set `advertise`",
            ));
        }
        if self.port_min == 0 || self.port_min > self.port_max {
            return Err(MediaError::Config(
                "the media port range is empty or starts at 0",
            ));
        }
        if self.pair_range().1 == 0 {
            return Err(MediaError::Config(
                "the media port range holds no even RTP port with its RTCP port",
            ));
        }
        if self.inactivity_timeout.is_zero() {
            return Err(MediaError::Config("the inactivity timeout is zero"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(min: u16, max: u16) -> MediaConfig {
        MediaConfig {
            port_min: min,
            port_max: max,
            ..MediaConfig::default()
        }
    }

    #[test]
    fn default_is_valid_loopback() {
        let c = MediaConfig::default();
        assert!(c.validate().is_ok());
        assert_eq!(c.advertised(), IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(c.pair_range(), (20_000, 5_000));
    }

    #[test]
    fn pairs_start_even_and_need_room_for_rtcp() {
        assert_eq!(range(20_001, 20_004).pair_range(), (20_002, 1));
        assert_eq!(range(20_000, 20_001).pair_range(), (20_000, 1));
        assert_eq!(range(20_000, 20_000).pair_range(), (20_000, 0));
        assert_eq!(range(20_001, 20_002).pair_range(), (20_002, 0));
        assert_eq!(range(65_534, 65_535).pair_range(), (65_534, 1));
        assert_eq!(range(65_535, 65_535).pair_range().1, 0);
        assert!(range(20_000, 20_000).validate().is_err());
        assert!(range(30_000, 20_000).validate().is_err());
    }

    #[test]
    fn unspecified_advertise_is_rejected() {
        let c = MediaConfig {
            bind: "0.0.0.0".parse().unwrap(),
            ..MediaConfig::default()
        };
        assert!(c.validate().is_err());
        let c = MediaConfig {
            advertise: Some("192.0.2.1".parse().unwrap()),
            ..c
        };
        assert!(c.validate().is_ok());
    }
}
