//! What a dial plan asks the call to do, and what a dial gives back.

use crate::value::Value;
use std::fmt;
use std::time::Duration;
use tokio::sync::oneshot;

/// How the targets of one dial are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DialMode {
    /// One after the other: the next on failure or no answer.
    #[default]
    Serial,
    /// All at once: the first answer wins, the others are cancelled.
    Parallel,
}

impl DialMode {
    /// Parses `serial` or `parallel`.
    pub fn parse(s: &str) -> Option<DialMode> {
        match s {
            "serial" => Some(DialMode::Serial),
            "parallel" => Some(DialMode::Parallel),
            _ => None,
        }
    }

    /// The name scripts use.
    pub fn as_str(self) -> &'static str {
        match self {
            DialMode::Serial => "serial",
            DialMode::Parallel => "parallel",
        }
    }
}

/// One target of a dial.
#[derive(Debug, Clone, PartialEq)]
pub struct DialTarget {
    /// Where to send the B-leg INVITE (and its Request-URI unless the
    /// script set one with `set_ruri`).
    pub uri: String,
    /// Extra headers for this target only.
    pub headers: Vec<(String, String)>,
}

/// A dial: targets and how to try them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DialRequest {
    /// The targets, in order; empty means the Request-URI of the B leg.
    pub targets: Vec<DialTarget>,
    /// Serial or parallel.
    pub mode: DialMode,
    /// Ring time per attempt (`None`: the core's default).
    pub timeout: Option<Duration>,
    /// Extra headers for every attempt of this dial.
    pub headers: Vec<(String, String)>,
    /// `Some(false)` leaves SDP alone (direct media) for this dial.
    pub anchor_media: Option<bool>,
}

/// How a dial ended.
#[derive(Debug, Clone, PartialEq)]
pub struct DialResult {
    /// A target answered (and the bridged call has ended since).
    pub answered: bool,
    /// The answer's code (200) or the best failure code.
    pub code: u16,
    /// Its reason phrase.
    pub reason: String,
    /// How long the bridged call lasted (zero if not answered).
    pub duration: Duration,
}

impl DialResult {
    /// A failed dial.
    pub fn failed(code: u16, reason: &str) -> DialResult {
        DialResult {
            answered: false,
            code,
            reason: reason.to_string(),
            duration: Duration::ZERO,
        }
    }
}

/// A script's failure, as the core logs it and ends the call for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{script}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ScriptError {
    /// Script (or plugin) and its version, e.g. `scripts/pbx.lua@v3`.
    pub script: String,
    /// Line of the failure, when known.
    pub line: Option<u32>,
    /// What went wrong.
    pub message: String,
}

/// What a dial plan asks of its call. Commands are messages to the call's
/// actor, in the order the script issued them.
#[derive(Debug)]
pub enum Command {
    /// Replace every value of a header on the B leg.
    SetHeader {
        /// Canonical header name.
        name: String,
        /// The value.
        value: String,
    },
    /// Add a header value on the B leg.
    AddHeader {
        /// Canonical header name.
        name: String,
        /// The value.
        value: String,
    },
    /// Remove a header from the B leg.
    RemoveHeader {
        /// Canonical header name.
        name: String,
    },
    /// The Request-URI of the B leg.
    SetRuri {
        /// The URI.
        uri: String,
    },
    /// The From user and display name of the B leg.
    SetFrom {
        /// New user part (`None`: keep).
        user: Option<String>,
        /// New display name (`None`: keep; empty: none).
        name: Option<String>,
    },
    /// A per-call variable (shown in logs and CDRs); `None` removes it.
    SetVar {
        /// Name.
        name: String,
        /// Value.
        value: Option<Value>,
    },
    /// Try targets; the answer comes when the bridged call ended or every
    /// attempt failed.
    Dial {
        /// What to dial.
        request: DialRequest,
        /// Where the result goes.
        reply: oneshot::Sender<DialResult>,
    },
    /// Refuse the call (if not answered yet).
    Reject {
        /// 300-699.
        code: u16,
        /// Reason phrase.
        reason: String,
    },
    /// End the call: BYE if answered, 480 otherwise.
    Hangup,
    /// Demand credentials: 407 with a fresh challenge (if not answered
    /// yet); the caller's next INVITE is a new call.
    Challenge,
    /// The script returned (or failed): the call goes on without it.
    Done(Result<(), ScriptError>),
}

fn write_headers(f: &mut fmt::Formatter<'_>, headers: &[(String, String)]) -> fmt::Result {
    for (n, v) in headers {
        write!(f, " [{n}: {v}]")?;
    }
    Ok(())
}

impl fmt::Display for DialRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.targets.is_empty() {
            f.write_str("(request-uri)")?;
        }
        for (i, t) in self.targets.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(&t.uri)?;
            write_headers(f, &t.headers)?;
        }
        write!(f, " mode={}", self.mode.as_str())?;
        if let Some(t) = self.timeout {
            write!(f, " timeout={}", t.as_secs_f64())?;
        }
        if let Some(a) = self.anchor_media {
            write!(f, " media={}", if a { "anchored" } else { "direct" })?;
        }
        write_headers(f, &self.headers)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::SetHeader { name, value } => write!(f, "set_header {name}: {value}"),
            Command::AddHeader { name, value } => write!(f, "add_header {name}: {value}"),
            Command::RemoveHeader { name } => write!(f, "remove_header {name}"),
            Command::SetRuri { uri } => write!(f, "set_ruri {uri}"),
            Command::SetFrom { user, name } => {
                f.write_str("set_from")?;
                if let Some(u) = user {
                    write!(f, " user={u}")?;
                }
                if let Some(n) = name {
                    write!(f, " name=\"{n}\"")?;
                }
                Ok(())
            }
            Command::SetVar { name, value } => match value {
                Some(v) => write!(f, "set_var {name}={v}"),
                None => write!(f, "set_var {name}=nil"),
            },
            Command::Dial { request, .. } => write!(f, "dial {request}"),
            Command::Reject { code, reason } => write!(f, "reject {code} {reason}"),
            Command::Hangup => f.write_str("hangup"),
            Command::Challenge => f.write_str("challenge"),
            Command::Done(Ok(())) => f.write_str("done"),
            Command::Done(Err(e)) => write!(f, "error {e}"),
        }
    }
}

/// Lower is better when choosing which failure a caller hears (RFC 3261
/// §16.7, simplified): a global failure beats a redirect, which beats a
/// client error, then a server error; a timeout is the last resort.
pub fn failure_rank(code: u16) -> u8 {
    match code {
        600..=699 => 0,
        300..=399 => 1,
        408 => 4,
        400..=499 => 2,
        _ => 3,
    }
}

/// The usual reason phrase of a status code.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        480 => "Temporarily Unavailable",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "",
    }
}
