//! Command-line interface.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Tandem, a programmable SIP back-to-back user agent.
///
/// With no arguments it runs on the embedded default: UDP and TCP on
/// 127.0.0.1:5060.
#[derive(Debug, Parser)]
#[command(name = "tandem", version, about, long_about)]
pub(crate) struct Cli {
    /// Work on a dial plan instead of running the switch.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,

    /// TOML configuration file (none: the embedded default).
    #[arg(short, long, value_name = "FILE", env = "TANDEM_CONFIG", global = true)]
    pub(crate) config: Option<PathBuf>,

    /// Listen on this socket, e.g. `udp:127.0.0.1:5060`, `tcp:[::1]:5060`
    /// (port 0 picks a free port). Repeatable; replaces the config's list.
    #[arg(short, long, value_name = "PROTO:IP:PORT")]
    pub(crate) listen: Vec<String>,

    /// Lua dial plan every new call runs (replaces `[dialplan] script`).
    #[arg(long, value_name = "FILE", env = "TANDEM_DIALPLAN")]
    pub(crate) dialplan: Option<PathBuf>,

    /// Log filter: error, warn, info, debug, trace, or a tracing directive
    /// such as `sip=debug,info`. Overrides the config's `[log] level`.
    #[arg(long, value_name = "LEVEL", env = "TANDEM_LOG", global = true)]
    pub(crate) log_level: Option<String>,

    /// Log format: text or json. Overrides the config's `[log] format`.
    #[arg(long, value_name = "FORMAT")]
    pub(crate) log_format: Option<String>,

    /// Check the configuration, print the effective listeners and exit.
    #[arg(long)]
    pub(crate) check_config: bool,
}

/// Subcommands: dial-plan tools that need no network.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check a dial plan: syntax, top level and `on_invite`. Errors are
    /// printed as FILE:LINE: MESSAGE; the exit status is 1 on errors.
    Check {
        /// The script.
        file: PathBuf,
    },
    /// Run a dial plan's `on_invite` against a simulated call and print
    /// every command it issues and what the caller would get.
    Simulate(SimulateArgs),
}

/// Arguments of `tandem simulate`.
#[derive(Debug, clap::Args)]
pub(crate) struct SimulateArgs {
    /// The script.
    pub(crate) file: PathBuf,
    /// The caller (From user).
    #[arg(long, default_value = "alice")]
    pub(crate) from: String,
    /// The caller's display name.
    #[arg(long)]
    pub(crate) from_name: Option<String>,
    /// The dialled user (Request-URI user).
    #[arg(long)]
    pub(crate) to: String,
    /// An extra header of the caller's INVITE, `Name: value`. Repeatable.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub(crate) headers: Vec<String>,
    /// What a target answers: `URI=CODE`, `URI=CODE Reason` or
    /// `URI=timeout`. Targets not listed answer 200. Repeatable.
    #[arg(long = "outcome", value_name = "URI=CODE")]
    pub(crate) outcomes: Vec<String>,
    /// Source address of the simulated INVITE.
    #[arg(long, default_value = "127.0.0.1:5060")]
    pub(crate) source: std::net::SocketAddr,
}
