//! `tandem check` and `tandem simulate`: dial plans tried without a
//! network, so they can be tested in CI.

use crate::cli::SimulateArgs;
use api::simulate::{Outcome, run};
use api::{CallLink, CallView, Host};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// `tandem check FILE`.
pub(crate) fn check(file: &Path, limits: lua::Limits, host: Arc<dyn Host>) -> ExitCode {
    let mut config = lua::ScriptConfig::new(file);
    config.states = 1;
    config.limits = limits;
    match lua::ScriptVersion::compile(&config, 1, &host) {
        Ok(_) => {
            println!("{}: OK", file.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `tandem simulate FILE --to USER …`.
pub(crate) async fn simulate(
    args: &SimulateArgs,
    limits: lua::Limits,
    host: Arc<dyn Host>,
) -> ExitCode {
    let outcomes: Vec<Outcome> = match args.outcomes.iter().map(|o| Outcome::parse(o)).collect() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("tandem simulate: {e}");
            return ExitCode::from(crate::EX_USAGE);
        }
    };
    let mut view = CallView::simulated(&args.from, &args.to);
    view.source_ip = args.source.ip();
    view.source_port = args.source.port();
    if let Some(name) = &args.from_name {
        view.parties.edit(|p| p.from_name = name.clone());
    }
    for h in &args.headers {
        let Some((name, value)) = h.split_once(':') else {
            eprintln!("tandem simulate: header `{h}` is not `Name: value`");
            return ExitCode::from(crate::EX_USAGE);
        };
        view.headers.push(name.trim(), value.trim());
    }
    let mut config = lua::ScriptConfig::new(&args.file);
    config.states = 1;
    config.limits = limits;
    let engine = match lua::LuaEngine::load(config, host) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let ruri = view.ruri.clone();
    let (link, rx) = CallLink::pair();
    if let Err(e) = engine.spawn(view, link) {
        eprintln!("tandem simulate: {e}");
        return ExitCode::FAILURE;
    }
    let transcript = run(rx, &ruri, &outcomes).await;
    for line in &transcript.lines {
        println!("{line}");
    }
    println!("result: {}", transcript.result);
    if transcript.failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
