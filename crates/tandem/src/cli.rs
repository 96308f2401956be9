//! Command-line interface.

use clap::Parser;
use std::path::PathBuf;

/// Tandem, a programmable SIP back-to-back user agent.
///
/// With no arguments it runs on the embedded default: UDP and TCP on
/// 127.0.0.1:5060.
#[derive(Debug, Parser)]
#[command(name = "tandem", version, about, long_about)]
pub(crate) struct Cli {
    /// TOML configuration file (none: the embedded default).
    #[arg(short, long, value_name = "FILE", env = "TANDEM_CONFIG")]
    pub(crate) config: Option<PathBuf>,

    /// Listen on this socket, e.g. `udp:127.0.0.1:5060`, `tcp:[::1]:5060`
    /// (port 0 picks a free port). Repeatable; replaces the config's list.
    #[arg(short, long, value_name = "PROTO:IP:PORT")]
    pub(crate) listen: Vec<String>,

    /// Log filter: error, warn, info, debug, trace, or a tracing directive
    /// such as `sip=debug,info`. Overrides the config's `[log] level`.
    #[arg(long, value_name = "LEVEL", env = "TANDEM_LOG")]
    pub(crate) log_level: Option<String>,

    /// Log format: text or json. Overrides the config's `[log] format`.
    #[arg(long, value_name = "FORMAT")]
    pub(crate) log_format: Option<String>,

    /// Check the configuration, print the effective listeners and exit.
    #[arg(long)]
    pub(crate) check_config: bool,
}
