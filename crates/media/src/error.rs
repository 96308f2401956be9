//! What can go wrong in the media plane.

/// An error of the media engine.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The SDP body could not be understood.
    #[error("unusable SDP: {0}")]
    Sdp(#[from] SdpError),
    /// Every RTP/RTCP port pair of the range is taken or failed to bind.
    #[error("media port pool exhausted ({port_min}-{port_max})")]
    PoolExhausted {
        /// Lowest port of the range.
        port_min: u16,
        /// Highest port of the range.
        port_max: u16,
    },
    /// The configuration cannot work (see [`MediaConfig::validate`](crate::MediaConfig::validate)).
    #[error("media configuration: {0}")]
    Config(&'static str),
    /// A socket could not be set up.
    #[error("media socket: {0}")]
    Io(#[from] std::io::Error),
    /// Called outside a Tokio runtime.
    #[error("media sessions need a Tokio runtime with IO and time enabled")]
    NoRuntime,
}

/// Why an SDP body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body is empty.
    #[error("empty body")]
    Empty,
    /// The first line is not `v=0`.
    #[error("missing or unsupported v= line")]
    Version,
    /// A line is not `<letter>=<value>`.
    #[error("line {0} is not <type>=<value>")]
    Line(usize),
    /// The `o=` line is missing, repeated or malformed.
    #[error("missing or malformed o= line")]
    Origin,
    /// A `c=` line is malformed.
    #[error("malformed c= line (line {0})")]
    Connection(usize),
    /// A `c=` line names a host instead of an IP address.
    #[error("c= line {0} is not an IP address (host names are not resolved)")]
    UnsupportedAddress(usize),
    /// An `m=` line is malformed.
    #[error("malformed m= line (line {0})")]
    Media(usize),
    /// An `a=rtcp:` attribute is malformed.
    #[error("malformed a=rtcp attribute (line {0})")]
    Rtcp(usize),
    /// An active `m=` line has no connection address at media or session level.
    #[error("m= line {0} has no c= line")]
    MissingConnection(usize),
    /// More `m=` lines than the relay anchors per session.
    #[error("more than {0} m= lines")]
    TooManyMedia(usize),
}
