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
    /// Static routes (`[[routes]]`), the no-script default.
    pub(crate) routes: Vec<RouteConfig>,
    /// Media relay (`[media]`).
    pub(crate) media: MediaConfig,
    /// Call limits (`[limits]`).
    pub(crate) limits: LimitsConfig,
    /// Status line (`[status]`).
    pub(crate) status: StatusConfig,
    /// Credentials for targets that challenge (`[[credentials]]`).
    pub(crate) credentials: Vec<CredentialConfig>,
    /// The Lua dial plan (`[dialplan]`).
    pub(crate) dialplan: DialplanConfig,
    /// Wasm plugins (`[[plugins]]`).
    pub(crate) plugins: Vec<PluginEntry>,
    /// The Wasm engine (`[wasm]`).
    pub(crate) wasm: WasmConfig,
    /// Digest authentication (`[auth]`).
    pub(crate) auth: crate::users_config::AuthSection,
    /// Users (`[[users]]`).
    pub(crate) users: Vec<crate::users_config::UserEntry>,
    /// The registrar (`[registrar]`).
    pub(crate) registrar: crate::users_config::RegistrarSection,
    /// Trunks (`[[trunks]]`).
    pub(crate) trunks: Vec<crate::trunks_config::TrunkEntry>,
}

/// `[wasm]`: settings shared by every plugin.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct WasmConfig {
    /// Where compiled plugins are kept, keyed by content hash ("" : no
    /// cache). Default: `$XDG_CACHE_HOME/tandem/plugins` or
    /// `~/.cache/tandem/plugins`.
    pub(crate) cache_dir: Option<std::path::PathBuf>,
    /// Plugin instances that may exist at once (one per event in flight).
    pub(crate) instances: u32,
}

impl Default for WasmConfig {
    fn default() -> WasmConfig {
        WasmConfig {
            cache_dir: None,
            instances: 1_000,
        }
    }
}

/// One `[[plugins]]` entry: a WebAssembly routing component.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PluginEntry {
    /// Name (`[dialplan] plugin = "…"`).
    pub(crate) name: String,
    /// The component; relative paths are relative to the config file.
    pub(crate) path: std::path::PathBuf,
    /// Memory ceiling of one instance, in MiB.
    #[serde(default = "default_plugin_memory")]
    pub(crate) memory_mb: usize,
    /// CPU time one event may take, in milliseconds.
    #[serde(default = "default_plugin_cpu")]
    pub(crate) cpu_ms: u64,
    /// Fuel per event (deterministic limit; 0: none).
    #[serde(default)]
    pub(crate) fuel: u64,
    /// Failures in a row after which the plugin is switched off until a
    /// good reload (0: never).
    #[serde(default = "default_crash_limit")]
    pub(crate) crash_limit: u32,
    /// Send `on-hangup` events (false saves an instance per call for a
    /// plugin that does not use them).
    #[serde(default = "default_true")]
    pub(crate) hangup: bool,
    /// Key/values the plugin reads with `host.config()`.
    #[serde(default)]
    pub(crate) settings: std::collections::BTreeMap<String, String>,
}

fn default_true() -> bool {
    true
}

fn default_crash_limit() -> u32 {
    20
}

/// One `[[dialplan.listener]]` entry: the plugin chain for calls that
/// arrive on a listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListenerChain {
    /// One of `listen`, e.g. `udp:127.0.0.1:5070`.
    pub(crate) listen: String,
    /// Plugins asked in order.
    pub(crate) plugins: Vec<String>,
}

/// One `[[dialplan.prefix]]` entry: the plugin chain for calls to a
/// prefix.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PrefixChain {
    /// Dialled-user prefix; the longest match wins.
    pub(crate) prefix: String,
    /// Plugins asked in order.
    pub(crate) plugins: Vec<String>,
}

fn default_plugin_memory() -> usize {
    16
}

fn default_plugin_cpu() -> u64 {
    10
}

/// `[dialplan]`: the Lua script every new call runs (none: static routes).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct DialplanConfig {
    /// The script; relative paths are relative to the config file.
    pub(crate) script: Option<std::path::PathBuf>,
    /// Lua states per script version (calls are spread over them).
    pub(crate) states: usize,
    /// Memory ceiling of each Lua state, in MiB.
    pub(crate) memory_mb: usize,
    /// Most Lua instructions a script runs without yielding.
    pub(crate) instructions: u64,
    /// Reload when a `.lua` file in the script's directory changes.
    pub(crate) watch: bool,
    /// Shorthand for `plugins = [NAME]`.
    pub(crate) plugin: Option<String>,
    /// Plugins of `[[plugins]]` asked in order before the script (or the
    /// static routes); `pass` goes on to the next.
    pub(crate) plugins: Vec<String>,
    /// Other chains by dialled-user prefix (`[[dialplan.prefix]]`).
    pub(crate) prefix: Vec<PrefixChain>,
    /// Other chains by listener (`[[dialplan.listener]]`).
    pub(crate) listener: Vec<ListenerChain>,
    /// A plugin's failure: `reject` (500), `next`, or `static`.
    pub(crate) on_plugin_error: String,
}

impl Default for DialplanConfig {
    fn default() -> DialplanConfig {
        DialplanConfig {
            script: None,
            states: 2,
            memory_mb: 64,
            instructions: 1_000_000,
            watch: true,
            plugin: None,
            plugins: Vec::new(),
            prefix: Vec::new(),
            listener: Vec::new(),
            on_plugin_error: "reject".into(),
        }
    }
}

/// One `[[credentials]]` entry: what Tandem answers a target's 401/407 with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CredentialConfig {
    /// `IP` or `IP:PORT` of the target.
    pub(crate) target: String,
    /// Only for this realm.
    #[serde(default)]
    pub(crate) realm: Option<String>,
    /// User name.
    pub(crate) username: String,
    /// Password.
    pub(crate) password: String,
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteConfig {
    /// Request-URI user prefix; longest wins; "" matches all.
    #[serde(default)]
    pub(crate) prefix: String,
    /// Target URIs; `${user}` is the dialled user.
    pub(crate) targets: Vec<String>,
    /// `serial` (failover) or `parallel` (first 2xx wins).
    #[serde(default = "default_mode")]
    pub(crate) mode: String,
    /// Seconds an attempt may ring before it is cancelled.
    #[serde(default = "default_ring_timeout")]
    pub(crate) timeout_s: u64,
    /// `anchored` or `direct` for calls on this route (default: `[media] mode`).
    #[serde(default)]
    pub(crate) media: Option<String>,
    /// `follow` (try the Contacts of a 3xx) or `relay` (pass it to the caller).
    #[serde(default = "default_redirect")]
    pub(crate) redirect: String,
}

fn default_redirect() -> String {
    "follow".into()
}

fn default_mode() -> String {
    "serial".into()
}

fn default_ring_timeout() -> u64 {
    30
}

/// `[media]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct MediaConfig {
    /// `anchored` (RTP through Tandem) or `direct` (SDP untouched).
    pub(crate) mode: String,
    /// Address the RTP sockets bind to.
    pub(crate) address: String,
    /// Address written into SDP (default: `address`).
    pub(crate) advertise: Option<String>,
    /// RTP port range, `MIN-MAX`.
    pub(crate) ports: String,
    /// Seconds without RTP after which a call is hung up.
    pub(crate) inactivity_timeout_s: u64,
    /// Threads that relay RTP, apart from the signalling threads (0: relay
    /// on the signalling threads). Default: half the cores, at least one.
    pub(crate) relay_threads: usize,
}

impl Default for MediaConfig {
    fn default() -> MediaConfig {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        MediaConfig {
            mode: "anchored".into(),
            address: "127.0.0.1".into(),
            advertise: None,
            ports: "20000-30000".into(),
            inactivity_timeout_s: 60,
            relay_threads: (cores / 2).max(1),
        }
    }
}

/// `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct LimitsConfig {
    /// Most calls at once.
    pub(crate) max_calls: usize,
    /// New calls per second per source address (0: no limit).
    pub(crate) calls_per_second_per_source: u32,
    /// Retry-After seconds in the 503 of a refused call.
    pub(crate) retry_after_s: u32,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            max_calls: 10_000,
            calls_per_second_per_source: 0,
            retry_after_s: 5,
        }
    }
}

/// `[status]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct StatusConfig {
    /// Seconds between status lines (0: none).
    pub(crate) interval_s: u64,
}

impl Default for StatusConfig {
    fn default() -> StatusConfig {
        StatusConfig { interval_s: 60 }
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: DEFAULT_LISTEN.iter().map(|s| s.to_string()).collect(),
            sip: SipConfig::default(),
            log: LogConfig::default(),
            routes: Vec::new(),
            media: MediaConfig::default(),
            limits: LimitsConfig::default(),
            status: StatusConfig::default(),
            credentials: Vec::new(),
            dialplan: DialplanConfig::default(),
            plugins: Vec::new(),
            wasm: WasmConfig::default(),
            auth: Default::default(),
            users: Vec::new(),
            registrar: Default::default(),
            trunks: Vec::new(),
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
    /// Session interval (RFC 4028) offered and used per leg; 0 turns
    /// session timers off.
    pub(crate) session_expires_s: u64,
    /// Smallest session interval accepted (Min-SE).
    pub(crate) min_se_s: u64,
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
            session_expires_s: 1800,
            min_se_s: 90,
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
    /// The B2BUA core.
    pub(crate) core: b2bua::CoreConfig,
    /// The media relay.
    pub(crate) media: media::MediaConfig,
    /// The Lua dial plan, if any.
    pub(crate) dialplan: Option<lua::ScriptConfig>,
    /// Watch the dial plan's directory for changes.
    pub(crate) watch: bool,
    /// Limits of the dial plan's Lua states (also for `check`/`simulate`).
    pub(crate) dialplan_limits: lua::Limits,
    /// Every `[[plugins]]` entry.
    pub(crate) plugins: Vec<wasm::PluginConfig>,
    /// The plugin chains in front of the dial plan.
    pub(crate) chains: Chains,
    /// Where compiled plugins are cached (`None`: no cache).
    pub(crate) plugin_cache: Option<std::path::PathBuf>,
    /// Plugin instances at once.
    pub(crate) wasm_instances: u32,
    /// Users, authentication and the registrar.
    pub(crate) users: crate::users_config::UserSettings,
    /// Trunks Tandem registers with.
    pub(crate) trunk_registrations: Vec<b2bua::TrunkRegistration>,
}

/// Which plugins a call asks before the dial plan.
#[derive(Debug, Clone, Default)]
pub(crate) struct Chains {
    /// For every call (empty: no chain, the script or static routes).
    pub(crate) default: Vec<String>,
    /// By dialled-user prefix.
    pub(crate) by_prefix: Vec<(String, Vec<String>)>,
    /// By listener (`udp:IP:PORT`).
    pub(crate) by_listener: Vec<(String, Vec<String>)>,
    /// What a failing plugin does to the call.
    pub(crate) on_error: Option<api::OnError>,
}

impl Chains {
    /// True when no call asks a plugin first.
    pub(crate) fn is_empty(&self) -> bool {
        self.default.is_empty() && self.by_prefix.is_empty() && self.by_listener.is_empty()
    }
}

/// The default plugin cache: `$XDG_CACHE_HOME/tandem/plugins` or
/// `~/.cache/tandem/plugins`.
fn default_plugin_cache() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache")))?;
    Some(base.join("tandem").join("plugins"))
}

fn parse_mode(text: &str, field: &str, errors: &mut Vec<String>) -> b2bua::MediaMode {
    match text {
        "anchored" => b2bua::MediaMode::Anchored,
        "direct" => b2bua::MediaMode::Direct,
        other => {
            errors.push(format!("{field} must be anchored or direct, not `{other}`"));
            b2bua::MediaMode::Anchored
        }
    }
}

impl Config {
    /// Reads a TOML file.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let mut config =
            Config::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        // A script named relative to the config file is found beside it.
        if let (Some(script), Some(dir)) = (&config.dialplan.script, path.parent())
            && script.is_relative()
        {
            config.dialplan.script = Some(dir.join(script));
        }
        if let Some(dir) = path.parent() {
            crate::users_config::resolve_paths(&mut config.auth, &mut config.registrar, dir);
            for p in &mut config.plugins {
                if p.path.is_relative() {
                    p.path = dir.join(&p.path);
                }
            }
            if let Some(cache) = &mut config.wasm.cache_dir
                && cache.is_relative()
                && !cache.as_os_str().is_empty()
            {
                *cache = dir.join(&*cache);
            }
        }
        Ok(config)
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
        let mut routes = Vec::new();
        for (i, r) in self.routes.iter().enumerate() {
            let mode = match r.mode.as_str() {
                "serial" => b2bua::ForkMode::Serial,
                "parallel" => b2bua::ForkMode::Parallel,
                other => {
                    errors.push(format!(
                        "routes[{i}].mode must be serial or parallel, not `{other}`"
                    ));
                    b2bua::ForkMode::Serial
                }
            };
            if r.targets.is_empty() {
                errors.push(format!("routes[{i}].targets must name at least one target"));
            }
            for t in &r.targets {
                if let Err(e) = b2bua::route::resolve(&t.replace("${user}", "user")) {
                    errors.push(format!("routes[{i}].targets: {e}"));
                }
            }
            let media = r
                .media
                .as_deref()
                .map(|m| parse_mode(m, &format!("routes[{i}].media"), &mut errors));
            let redirect = match r.redirect.as_str() {
                "follow" => b2bua::RedirectMode::Follow,
                "relay" => b2bua::RedirectMode::Relay,
                other => {
                    errors.push(format!(
                        "routes[{i}].redirect must be follow or relay, not `{other}`"
                    ));
                    b2bua::RedirectMode::Follow
                }
            };
            routes.push(b2bua::Route {
                redirect,
                prefix: r.prefix.clone(),
                targets: r.targets.clone(),
                mode,
                timeout: Duration::from_secs(r.timeout_s.max(1)),
                media,
            });
        }
        let m = &self.media;
        let media_mode = parse_mode(&m.mode, "media.mode", &mut errors);
        let bind = m.address.parse::<std::net::IpAddr>().unwrap_or_else(|_| {
            errors.push(format!(
                "media.address `{}` is not an IP address",
                m.address
            ));
            std::net::IpAddr::from([127, 0, 0, 1])
        });
        let advertise = match &m.advertise {
            Some(a) => match a.parse::<std::net::IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => {
                    errors.push(format!("media.advertise `{a}` is not an IP address"));
                    None
                }
            },
            None => None,
        };
        let (port_min, port_max) = match m
            .ports
            .split_once('-')
            .map(|(a, b)| (a.trim().parse::<u16>(), b.trim().parse::<u16>()))
        {
            Some((Ok(a), Ok(b))) if a < b && a >= 1024 => (a, b),
            _ => {
                errors.push(format!(
                    "media.ports `{}` must be MIN-MAX with 1024 <= MIN < MAX",
                    m.ports
                ));
                (20000, 30000)
            }
        };
        if m.relay_threads > 256 {
            errors.push("media.relay_threads must be 0-256".into());
        }
        let d = &self.dialplan;
        if d.states == 0 || d.states > 64 {
            errors.push("dialplan.states must be 1-64".into());
        }
        if d.memory_mb < 4 {
            errors.push("dialplan.memory_mb must be at least 4".into());
        }
        if d.instructions < 10_000 {
            errors.push("dialplan.instructions must be at least 10000".into());
        }
        let dialplan_limits = lua::Limits {
            instructions: d.instructions,
            memory: d.memory_mb.saturating_mul(1024 * 1024),
        };
        let dialplan = d.script.as_ref().map(|path| lua::ScriptConfig {
            path: path.clone(),
            states: d.states,
            limits: dialplan_limits,
        });
        let mut plugins = Vec::new();
        for p in &self.plugins {
            if plugins
                .iter()
                .any(|q: &wasm::PluginConfig| q.name == p.name)
            {
                errors.push(format!("plugins: `{}` is defined twice", p.name));
            }
            let name_ok = !p.name.is_empty()
                && p.name.len() <= 64
                && p.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !name_ok {
                errors.push(format!(
                    "plugins: name `{}` must be 1-64 letters, digits, `-` or `_`",
                    p.name
                ));
            }
            if p.memory_mb == 0 || p.memory_mb > 4096 {
                errors.push(format!("plugins `{}`: memory_mb must be 1-4096", p.name));
            }
            if p.cpu_ms == 0 || p.cpu_ms > 1000 {
                // Each event holds a runtime thread for up to this long.
                errors.push(format!("plugins `{}`: cpu_ms must be 1-1000", p.name));
            }
            plugins.push(wasm::PluginConfig {
                name: p.name.clone(),
                path: p.path.clone(),
                memory: p.memory_mb.max(1).saturating_mul(1024 * 1024),
                cpu: Duration::from_millis(p.cpu_ms.clamp(1, 1000)),
                fuel: (p.fuel > 0).then_some(p.fuel),
                settings: p.settings.clone().into_iter().collect(),
                crash_limit: p.crash_limit,
                hangup: p.hangup,
            });
        }
        let mut chains = Chains {
            default: d.plugins.clone(),
            by_prefix: d
                .prefix
                .iter()
                .map(|c| (c.prefix.clone(), c.plugins.clone()))
                .collect(),
            by_listener: Vec::new(),
            on_error: api::OnError::parse(&d.on_plugin_error),
        };
        let mut seen = std::collections::BTreeSet::new();
        for (prefix, names) in &chains.by_prefix {
            if prefix.is_empty() {
                errors.push(
                    "dialplan.prefix: an empty prefix is the default chain; use plugins".into(),
                );
            }
            if !seen.insert(prefix.as_str()) {
                errors.push(format!("dialplan.prefix `{prefix}` is given twice"));
            }
            if names.is_empty() {
                errors.push(format!("dialplan.prefix `{prefix}` has no plugins"));
            }
        }
        for l in &d.listener {
            if l.plugins.is_empty() {
                errors.push(format!("dialplan.listener `{}` has no plugins", l.listen));
            }
        }
        if self.wasm.instances == 0 {
            errors.push("wasm.instances must be at least 1".into());
        }
        if let Some(name) = &d.plugin {
            if !chains.default.is_empty() {
                errors.push("dialplan: set plugin or plugins, not both".into());
            }
            chains.default = vec![name.clone()];
        }
        if chains.on_error.is_none() {
            errors.push(format!(
                "dialplan.on_plugin_error must be reject, next or static, not `{}`",
                d.on_plugin_error
            ));
        }
        for l in &d.listener {
            match l.listen.parse::<Listen>() {
                Ok(parsed) if parsed.addr.port() == 0 => errors.push(format!(
                    "dialplan.listener `{}` needs a fixed port",
                    l.listen
                )),
                Ok(parsed) if listen.contains(&parsed) => chains
                    .by_listener
                    .push((parsed.to_string(), l.plugins.clone())),
                Ok(_) => errors.push(format!(
                    "dialplan.listener `{}` is not one of listen",
                    l.listen
                )),
                Err(e) => errors.push(format!("dialplan.listener `{}`: {e}", l.listen)),
            }
        }
        let named = chains
            .default
            .iter()
            .chain(chains.by_prefix.iter().flat_map(|(_, c)| c.iter()))
            .chain(chains.by_listener.iter().flat_map(|(_, c)| c.iter()));
        for name in named {
            if !plugins.iter().any(|p| &p.name == name) {
                errors.push(format!("dialplan: plugin `{name}` is not in [[plugins]]"));
            }
        }
        let plugin_cache = match &self.wasm.cache_dir {
            Some(dir) if dir.as_os_str().is_empty() => None,
            Some(dir) => Some(dir.clone()),
            None => default_plugin_cache(),
        };
        let mut users =
            crate::users_config::validate(&self.auth, &self.users, &self.registrar, &mut errors);
        let trunks = crate::trunks_config::validate(&self.trunks, &mut errors);
        users.auth.trusted.extend(trunks.trusted.iter().copied());
        if !errors.is_empty() {
            return Err(errors);
        }
        let core = b2bua::CoreConfig {
            router: b2bua::Router::new(routes),
            media: media_mode,
            max_calls: self.limits.max_calls,
            calls_per_second_per_source: self.limits.calls_per_second_per_source,
            retry_after: self.limits.retry_after_s,
            status_interval: (self.status.interval_s > 0)
                .then(|| Duration::from_secs(self.status.interval_s)),
            credentials: self
                .credentials
                .iter()
                .map(|c| b2bua::Credential {
                    target: c.target.clone(),
                    realm: c.realm.clone(),
                    username: c.username.clone(),
                    password: c.password.clone(),
                })
                .chain(trunks.credentials.iter().cloned())
                .collect(),
            t1: Duration::from_millis(s.t1_ms),
            session_expires: (s.session_expires_s > 0)
                .then(|| Duration::from_secs(s.session_expires_s.max(s.min_se_s))),
            min_se: Duration::from_secs(s.min_se_s.max(1)),
            users: Default::default(),
            trunks: trunks.inbound.clone(),
        };
        let media = media::MediaConfig {
            bind,
            advertise,
            port_min,
            port_max,
            inactivity_timeout: Duration::from_secs(m.inactivity_timeout_s.max(1)),
            relay_threads: m.relay_threads,
        };
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
            core,
            media,
            dialplan,
            watch: d.watch,
            dialplan_limits,
            plugins,
            chains,
            plugin_cache,
            wasm_instances: self.wasm.instances.max(1),
            users,
            trunk_registrations: trunks.registrations,
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
