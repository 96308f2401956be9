//! The `tandem` binary: reads the configuration, starts logging, the
//! transports and the transaction layer, and runs until SIGINT/SIGTERM.

mod cli;
mod config;
mod dialplan;
mod trunks_config;
mod users_config;

use anyhow::Context;
use clap::Parser as _;
use sip::transaction::{LayerConfig, TxLayer};
use sip::transport::Transports;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The allocator: mimalloc's per-thread free lists serve the many small,
/// short-lived values of a call (SIP messages, Lua strings and tables) in
/// fewer instructions than glibc's malloc. Built without transparent huge
/// pages (`no_thp`), which cost more system time than they saved
/// (BENCHMARKS.md, "Session 7: the allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for a bad configuration or usage (sysexits EX_USAGE).
pub(crate) const EX_USAGE: u8 = 64;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors; everything else is a
            // usage error (exit 64, like a bad configuration).
            let code = if e.use_stderr() { EX_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let mut config = match &cli.config {
        Some(path) => match config::Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("tandem: {e:#}");
                return ExitCode::from(EX_USAGE);
            }
        },
        None => config::Config::default(),
    };
    if !cli.listen.is_empty() {
        config.listen = cli.listen.clone();
    }
    if let Some(level) = &cli.log_level {
        config.log.level = level.clone();
    } else if cli.command.is_some() {
        // The dial-plan tools print their own results; only the script's
        // own log lines and problems go to stderr.
        config.log.level = "warn,script=info".into();
    }
    if let Some(format) = &cli.log_format {
        config.log.format = format.clone();
    }
    if let Some(script) = &cli.dialplan {
        config.dialplan.script = Some(script.clone());
    }
    let settings = match config.validate() {
        Ok(s) => s,
        Err(errors) => {
            for e in errors {
                eprintln!("tandem: config: {e}");
            }
            return ExitCode::from(EX_USAGE);
        }
    };
    if cli.check_config {
        for l in &settings.listen {
            println!("listen {l}");
        }
        if let Some(d) = &settings.dialplan {
            println!("dialplan {}", d.path.display());
        }
        return ExitCode::SUCCESS;
    }
    if let Err(e) = init_logging(&settings.log) {
        eprintln!("tandem: {e:#}");
        return ExitCode::from(EX_USAGE);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tandem: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut settings = settings;
    if cli.command.is_some() {
        // `check` and `simulate` must not open (and compact) the bindings
        // file a running Tandem appends to.
        settings.users.file = None;
    }
    let users = match settings.users.services() {
        Ok(u) => Arc::new(u),
        Err(e) => {
            eprintln!("tandem: {e:#}");
            return ExitCode::from(EX_USAGE);
        }
    };
    settings.core.users = users.clone();
    let core_host = Arc::new(b2bua::CoreHost::new(settings.core.router.clone(), users));
    let host: Arc<dyn api::Host> = core_host.clone();
    // The tools run scripts with the limits of the configured dial plan.
    let limits = settings.dialplan_limits;
    // The tools offer a script the configured plugins too.
    if cli.command.is_some() && !settings.plugins.is_empty() {
        match runtime.block_on(load_plugins(&settings)) {
            Ok(plugins) => core_host.set_plugins(plugins),
            Err(e) => {
                eprintln!("tandem: {e:#}");
                return ExitCode::FAILURE;
            }
        }
    }
    match &cli.command {
        Some(cli::Command::Check { file }) => {
            let _guard = runtime.enter();
            return dialplan::check(file, limits, host);
        }
        Some(cli::Command::Simulate(args)) => {
            return runtime.block_on(dialplan::simulate(args, limits, host));
        }
        None => {}
    }
    match runtime.block_on(run(settings, core_host)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(message = "Tandem stopped.", error = %format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

fn init_logging(log: &config::LogConfig) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&log.level)
        .with_context(|| format!("invalid log level `{}`", log.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
    Ok(())
}

async fn run(settings: config::Settings, core_host: Arc<b2bua::CoreHost>) -> anyhow::Result<()> {
    // Handlers first: a signal that arrives while the listeners come up
    // must shut down cleanly, not kill the process with the default action.
    let signals = Signals::install()?;
    let host: Arc<dyn api::Host> = core_host.clone();
    // Plugins before the dial plan: a script may call them.
    let plugins = match settings.plugins.is_empty() {
        true => None,
        false => Some(load_plugins(&settings).await?),
    };
    if let Some(plugins) = &plugins {
        core_host.set_plugins(plugins.clone());
    }
    let engine = match &settings.dialplan {
        Some(script) => {
            let script = script.clone();
            let host = host.clone();
            let engine = tokio::task::spawn_blocking(move || lua::LuaEngine::load(script, host))
                .await
                .context("loading the dial plan")?
                .map_err(|e| anyhow::anyhow!("dial plan: {e}"))?;
            Some(engine)
        }
        None => None,
    };
    let _watch = match (&engine, settings.watch) {
        (Some(engine), true) => Some(engine.watch().map_err(|e| anyhow::anyhow!("{e}"))?),
        _ => None,
    };
    let _plugin_watch = match (&plugins, settings.watch) {
        (Some(plugins), true) => Some(plugins.watch().map_err(|e| anyhow::anyhow!("{e}"))?),
        _ => None,
    };
    if let Some(engine) = &engine {
        settings.core.users.set_register_hook(engine.clone());
    }
    warn_if_open(&settings);
    let (inbound_tx, inbound_rx) = mpsc::channel(16_384);
    let transports = Transports::bind(&settings.listen, settings.transport.clone(), inbound_tx)
        .await
        .context("cannot bind the listeners")?;
    for l in transports.listens() {
        tracing::info!(message = "Listening.", listen = %l);
    }
    let mut layer_config = LayerConfig {
        timers: settings.timers,
        ..LayerConfig::default()
    };
    // The extensions the core implements on each leg.
    layer_config.policy.supported = vec!["100rel".into(), "timer".into()];
    let (layer, events) = TxLayer::spawn(transports.clone(), inbound_rx, layer_config);
    let layer_handle = layer.clone();
    let media_engine = media::MediaEngine::new(settings.media.clone());
    let mut handler = engine.clone().map(|e| e as Arc<dyn api::CallHandler>);
    if let Some(plugins) = &plugins
        && !settings.chains.is_empty()
    {
        let chains = &settings.chains;
        let mut chain = api::RouterChain::new(
            plugins.clone(),
            host.clone(),
            chains.default.clone(),
            handler,
            chains.on_error.unwrap_or(api::OnError::Reject),
        );
        for (prefix, names) in &chains.by_prefix {
            chain = chain.with_prefix(prefix, names.clone());
        }
        for (listener, names) in &chains.by_listener {
            chain = chain.with_listener(listener, names.clone());
        }
        handler = Some(Arc::new(chain));
    }
    let _stats =
        b2bua::Dispatcher::spawn(layer, events, media_engine, settings.core.clone(), handler);
    let trunks = b2bua::TrunkRegistrations::spawn(&layer_handle, settings.trunk_registrations);
    signals.wait_for_shutdown(engine, plugins).await;
    tracing::info!(message = "Shutting down.");
    trunks.shutdown(std::time::Duration::from_secs(2)).await;
    transports.shutdown();
    Ok(())
}

/// With no users nobody is challenged: fine on loopback or behind a
/// trusted edge, dangerous on a public address.
fn warn_if_open(settings: &config::Settings) {
    if settings.core.users.auth.has_users() {
        return;
    }
    for l in &settings.listen {
        if !l.addr.ip().is_loopback() {
            tracing::warn!(
                message = "No [[users]] configured: anyone who reaches this listener can register and call.",
                listen = %l,
            );
        }
    }
}

/// Compiles every `[[plugins]]` entry (off the async threads).
async fn load_plugins(settings: &config::Settings) -> anyhow::Result<Arc<wasm::PluginRegistry>> {
    let configs = settings.plugins.clone();
    let cache = settings.plugin_cache.clone();
    let instances = settings.wasm_instances;
    tokio::task::spawn_blocking(move || {
        let max_memory = configs.iter().map(|c| c.memory).max().unwrap_or(1 << 20);
        let engine = match configs.iter().any(|c| c.fuel.is_some()) {
            true => wasm::WasmEngine::with_fuel(instances, max_memory),
            false => wasm::WasmEngine::new(instances, max_memory),
        }
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let registry = wasm::PluginRegistry::load(&engine, &configs, cache.as_deref())
            .map_err(|e| anyhow::anyhow!("plugin: {e}"))?;
        Ok(Arc::new(registry))
    })
    .await
    .context("loading the plugins")?
}

/// SIGTERM, SIGINT and SIGHUP, caught from start-up on.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("SIGINT handler")?,
            hup: signal(SignalKind::hangup()).context("SIGHUP handler")?,
        })
    }

    /// Waits for SIGTERM or SIGINT; SIGHUP reloads the dial plan and the
    /// plugins.
    async fn wait_for_shutdown(
        mut self,
        engine: Option<Arc<lua::LuaEngine>>,
        plugins: Option<Arc<wasm::PluginRegistry>>,
    ) {
        loop {
            tokio::select! {
                _ = self.term.recv() => return,
                _ = self.int.recv() => return,
                _ = self.hup.recv() => {
                    if engine.is_none() && plugins.is_none() {
                        tracing::info!(message = "SIGHUP received: no dial plan or plugin to reload.");
                        continue;
                    }
                    tracing::info!(message = "SIGHUP received: reloading the dial plan and plugins.");
                    let (engine, plugins) = (engine.clone(), plugins.clone());
                    // Compiling runs Lua and Cranelift: off the signalling
                    // threads.
                    tokio::task::spawn_blocking(move || {
                        if let Some(engine) = engine {
                            engine.reload_and_log();
                        }
                        if let Some(plugins) = plugins {
                            plugins.reload_and_log();
                            // An explicit reload also gives switched-off
                            // plugins another chance.
                            plugins.reenable();
                        }
                    });
                }
            }
        }
    }
}
