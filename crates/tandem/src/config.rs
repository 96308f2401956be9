//! The TOML configuration. Every field has a default, so an empty file (or
//! none at all) is the embedded default: UDP and TCP on 127.0.0.1:5060.

use serde::Deserialize;
use sip::transport::Listen;
use std::path::Path;
use std::time::Duration;

/// Listeners of the embedded default: loopback only, so a fresh `tandem`
/// exposes nothing to the network.
pub(crate) const DEFAULT_LISTEN: [&str; 2] = ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"];

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    /// Sockets to listen on, as `udp:IP:PORT` / `tcp:IP:PORT`.
    pub(crate) listen: Vec<String>,
    /// SIP stack settings.
    pub(crate) sip: SipConfig,
    /// Logging.
    pub(crate) log: LogConfig,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: DEFAULT_LISTEN.iter().map(|s| s.to_string()).collect(),
            sip: SipConfig::default(),
            log: LogConfig::default(),
        }
    }
}

/// SIP stack settings (`[sip]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct SipConfig {
    /// T1 in milliseconds (RFC 3261: 500).
    pub(crate) t1_ms: u64,
    /// T2 in milliseconds (RFC 3261: 4000).
    pub(crate) t2_ms: u64,
    /// T4 in milliseconds (RFC 3261: 5000).
    pub(crate) t4_ms: u64,
    /// Largest SIP message accepted on TCP, in octets.
    pub(crate) max_message_size: usize,
    /// Seconds a TCP connection may stay idle before it is closed.
    pub(crate) tcp_idle_timeout_s: u64,
    /// Seconds a TCP peer has to finish a message it started.
    pub(crate) tcp_message_timeout_s: u64,
    /// Most TCP connections open at once.
    pub(crate) max_tcp_connections: usize,
}

impl Default for SipConfig {
    fn default() -> SipConfig {
        let t = sip::transaction::TimerConfig::default();
        let tr = sip::transport::TransportConfig::default();
        SipConfig {
            t1_ms: t.t1.as_millis() as u64,
            t2_ms: t.t2.as_millis() as u64,
            t4_ms: t.t4.as_millis() as u64,
            max_message_size: tr.max_message,
            tcp_idle_timeout_s: tr.tcp_idle_timeout.as_secs(),
            tcp_message_timeout_s: tr.tcp_message_timeout.as_secs(),
            max_tcp_connections: tr.max_connections,
        }
    }
}

/// Logging settings (`[log]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct LogConfig {
    /// `error`, `warn`, `info`, `debug`, `trace`, or a tracing filter.
    pub(crate) level: String,
    /// `text` or `json`.
    pub(crate) format: String,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

/// The configuration, checked and turned into the stack's types.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Parsed listeners.
    pub(crate) listen: Vec<Listen>,
    /// Transaction timers.
    pub(crate) timers: sip::transaction::TimerConfig,
    /// Transport limits.
    pub(crate) transport: sip::transport::TransportConfig,
    /// Logging.
    pub(crate) log: LogConfig,
}

impl Config {
    /// Reads a TOML file.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        Config::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Parses TOML text.
    pub(crate) fn parse(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// Checks every field and reports all problems at once.
    pub(crate) fn validate(&self) -> Result<Settings, Vec<String>> {
        let mut errors = Vec::new();
        let mut listen = Vec::new();
        for l in &self.listen {
            match l.parse::<Listen>() {
                Ok(l) => listen.push(l),
                Err(e) => errors.push(format!("listen: {e}")),
            }
        }
        if self.listen.is_empty() {
            errors.push("listen: at least one listener is needed".into());
        }
        let s = &self.sip;
        if s.t1_ms == 0 {
            errors.push("sip.t1_ms must be above 0".into());
        }
        if s.t2_ms < s.t1_ms {
            errors.push("sip.t2_ms must be at least sip.t1_ms".into());
        }
        if s.max_message_size < 1024 {
            errors.push("sip.max_message_size must be at least 1024".into());
        }
        if s.max_tcp_connections == 0 {
            errors.push("sip.max_tcp_connections must be above 0".into());
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            errors.push(format!(
                "log.format must be text or json, not `{}`",
                self.log.format
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let transport = sip::transport::TransportConfig {
            max_message: s.max_message_size,
            tcp_idle_timeout: Duration::from_secs(s.tcp_idle_timeout_s.max(1)),
            tcp_message_timeout: Duration::from_secs(s.tcp_message_timeout_s.max(1)),
            max_connections: s.max_tcp_connections,
            ..sip::transport::TransportConfig::default()
        };
        Ok(Settings {
            listen,
            timers: sip::transaction::TimerConfig {
                t1: Duration::from_millis(s.t1_ms),
                t2: Duration::from_millis(s.t2_ms),
                t4: Duration::from_millis(s.t4_ms),
            },
            transport,
            log: self.log.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default() {
        let c = Config::parse("").unwrap();
        let s = c.validate().unwrap();
        assert_eq!(s.listen.len(), 2);
        assert_eq!(s.timers.t1, Duration::from_millis(500));
    }

    #[test]
    fn all_errors_at_once() {
        let c = Config::parse(
            "listen = [\"sctp:1.2.3.4:5\"]\n[sip]\nt1_ms = 0\n[log]\nformat = \"xml\"\n",
        )
        .unwrap();
        let errs = c.validate().unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(Config::parse("[sip]\nt9 = 1\n").is_err());
    }
}
