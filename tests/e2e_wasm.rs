//! Wasm plugins end to end: SIPp caller → tandem with a routing component
//! as the call handler → SIPp callee. The plugin's decision arrives on the
//! wire; a plugin that traps ends only the call it was asked about.

#[path = "support/mod.rs"]
mod support;

#[path = "../crates/wasm/tests/common/mod.rs"]
mod plugins;

use std::path::Path;
use std::time::Duration;
use support::{CallConfig, Sipp, SippTransport, Tandem};

const UDP: SippTransport = SippTransport::Udp;

/// Tandem with `[[plugins]]` entries (name → component body) and the first
/// one as the call handler.
fn start(dir: &Path, plugins: &[(&str, &str)], handler: &str) -> Tandem {
    let mut toml = CallConfig::new().toml();
    for (name, body) in plugins {
        let path = dir.join(format!("{name}.wasm"));
        std::fs::write(&path, plugins::component(body)).expect("write component");
        toml.push_str(&format!(
            "\n[[plugins]]\nname = {name:?}\npath = {:?}\ncpu_ms = 20\n",
            path.display().to_string()
        ));
    }
    let toml = format!("[dialplan]\nplugin = {handler:?}\n\n{toml}");
    Tandem::with_config(&toml)
}

fn refused(tandem: &Tandem, code: u16) {
    Sipp::client("uac_reject.xml", tandem.udp())
        .transport(UDP)
        .var("CODE", &code.to_string())
        .var("PAUSE_MS", "100")
        .timeout(Duration::from_secs(20))
        .run()
        .assert_success();
}

#[test]
fn the_plugin_routes_the_call() {
    let dir = tempfile::tempdir().expect("dir");
    let mut callee = Sipp::server("uas.xml")
        .transport(UDP)
        .timeout(Duration::from_secs(20))
        .spawn();
    let target = callee.target().replace("${user}", "routed");
    let tandem = start(dir.path(), &[("lcr", &plugins::dial_body(&target))], "lcr");
    Sipp::client("uac.xml", tandem.udp())
        .transport(UDP)
        .args(&["-d", "200"])
        .timeout(Duration::from_secs(20))
        .run()
        .assert_success();
    let run = callee.wait();
    run.assert_success();
    assert!(
        run.received()
            .iter()
            .any(|m| m.text().starts_with("INVITE sip:routed@127.0.0.1:")),
        "{}",
        run.report()
    );
    assert!(tandem.log_text().contains("lcr@v1"));
    tandem.assert_idle(Duration::from_secs(10));
}

#[test]
fn a_reject_decision_reaches_the_caller() {
    let dir = tempfile::tempdir().expect("dir");
    let tandem = start(dir.path(), &[("deny", plugins::REJECT_403)], "deny");
    refused(&tandem, 403);
    tandem.assert_idle(Duration::from_secs(10));
}

#[test]
fn a_trapping_or_spinning_plugin_ends_only_its_call() {
    for (name, body) in [("trap", plugins::TRAP), ("spin", plugins::LOOP)] {
        let dir = tempfile::tempdir().expect("dir");
        let tandem = start(dir.path(), &[(name, body)], name);
        for _ in 0..3 {
            refused(&tandem, 500);
        }
        let log = tandem.log_text();
        let line = log
            .lines()
            .find(|l| l.contains("Dial plan failed; ending its call."))
            .unwrap_or_else(|| panic!("no failure line:\n{log}"));
        assert!(line.contains(&format!("{name}@v1")), "{line}");
        assert!(line.contains("call_id="), "{line}");
        if name == "spin" {
            assert!(line.contains("CPU limit of 20 ms exceeded"), "{line}");
        }
        tandem.assert_idle(Duration::from_secs(10));
    }
}
