//! The plugin registry: core modules are wrapped at load, compiled code is
//! cached on disk by content hash, reloads keep calls on their version and
//! a bad file keeps the live one, and a plugin that keeps failing is
//! switched off until a good reload.

use api::{CallView, Decision, Routers};
use std::path::Path;
use wasm::{Plugin, PluginConfig, PluginRegistry, Reloaded, WasmEngine};

mod common;
use common::*;

fn engine() -> WasmEngine {
    WasmEngine::new(64, 16 * 1024 * 1024).expect("engine")
}

fn view() -> CallView {
    CallView::simulated("alice", "1000")
}

fn config(dir: &Path, name: &str) -> PluginConfig {
    let mut c = PluginConfig::new(name, dir.join(format!("{name}.wasm")));
    c.memory = 4 * 1024 * 1024;
    c
}

/// A registry with one plugin `name` (a WAT body) in a temporary
/// directory, switched off after `crash_limit` failures (0: never).
fn loaded(
    name: &str,
    body: &str,
    crash_limit: u32,
) -> (tempfile::TempDir, PluginConfig, PluginRegistry) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), name);
    config.crash_limit = crash_limit;
    std::fs::write(&config.path, component(body)).unwrap();
    let registry = PluginRegistry::load(&engine(), std::slice::from_ref(&config), None).unwrap();
    (dir, config, registry)
}

/// True when the live version of `name` (still enabled) fails a call.
fn fails(registry: &PluginRegistry, name: &str) -> bool {
    let router = registry.get(name).expect("enabled");
    router.route(&view(), &host()).is_err()
}

fn decision(registry: &PluginRegistry, name: &str) -> Decision {
    let router = registry.get(name).expect("enabled");
    router.route(&view(), &host()).expect("routes").decision
}

#[test]
fn a_core_module_with_the_world_is_wrapped_at_load() {
    let engine = engine();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "core");
    let p = Plugin::from_bytes(&engine, &config, 1, &core_module(REJECT_403)).expect("loads");
    let r = p.route(&view(), &host()).unwrap();
    assert_eq!(r.decision, Decision::Reject(403, "Forbidden".into()));
    // Wrapped or not, it imports the host API only.
    assert!(
        p.imports().iter().all(|i| i.starts_with("tandem:plugin/")),
        "{:?}",
        p.imports()
    );
}

#[test]
fn compiled_code_is_cached_by_content_hash() {
    let engine = engine();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let config = config(dir.path(), "cached");
    std::fs::write(&config.path, component(REJECT_403)).unwrap();
    let registry =
        PluginRegistry::load(&engine, std::slice::from_ref(&config), Some(&cache)).unwrap();
    let entries: Vec<_> = std::fs::read_dir(&cache).unwrap().flatten().collect();
    assert_eq!(entries.len(), 1, "one entry per content");
    let name = entries[0].file_name().into_string().unwrap();
    assert!(name.ends_with(".cwasm") && name.len() > 64, "{name}");
    drop(registry);
    // A second start loads the cached code and behaves the same.
    let registry =
        PluginRegistry::load(&engine, std::slice::from_ref(&config), Some(&cache)).unwrap();
    assert_eq!(
        decision(&registry, "cached"),
        Decision::Reject(403, "Forbidden".into())
    );
    // A damaged entry is compiled around, not trusted.
    std::fs::write(entries[0].path(), b"not compiled code").unwrap();
    let registry = PluginRegistry::load(&engine, &[config], Some(&cache)).unwrap();
    assert_eq!(
        decision(&registry, "cached"),
        Decision::Reject(403, "Forbidden".into())
    );
}

#[test]
fn reload_keeps_calls_on_their_version_and_a_bad_file_keeps_the_live_one() {
    let (_dir, config, registry) = loaded("hot", REJECT_403, 0);
    let pinned = registry.get("hot").unwrap();
    assert_eq!(pinned.label(), "hot@v1");

    assert_eq!(registry.reload()[0].1, Ok(Reloaded::Unchanged));
    std::fs::write(&config.path, component(PASS)).unwrap();
    assert_eq!(
        registry.reload()[0].1,
        Ok(Reloaded::Loaded("hot@v2".into()))
    );
    assert_eq!(decision(&registry, "hot"), Decision::Pass);
    // The call that started on v1 still talks to v1.
    assert_eq!(
        pinned.route(&view(), &host()).unwrap().decision,
        Decision::Reject(403, "Forbidden".into())
    );
    assert_eq!(registry.status(), "hot@v1:1,hot@v2:0");
    drop(pinned);
    assert_eq!(registry.status(), "hot@v2:0");

    std::fs::write(&config.path, b"\0asm garbage").unwrap();
    assert!(registry.reload()[0].1.is_err());
    assert_eq!(registry.get("hot").unwrap().label(), "hot@v2");
    assert_eq!(decision(&registry, "hot"), Decision::Pass);
}

#[test]
fn a_plugin_that_keeps_failing_is_switched_off_until_a_good_reload() {
    let (_dir, config, registry) = loaded("flaky", TRAP, 3);
    for _ in 0..3 {
        assert!(fails(&registry, "flaky"));
    }
    let e = registry.get("flaky").err().expect("disabled");
    assert_eq!(
        e.to_string(),
        "plugin `flaky@v1` is disabled after repeated failures"
    );
    assert_eq!(registry.status(), "flaky@v1:0,flaky:disabled");
    // The same file again does not bring it back…
    assert_eq!(registry.reload()[0].1, Ok(Reloaded::Unchanged));
    assert!(registry.get("flaky").is_err());
    // …a good new version does.
    std::fs::write(&config.path, component(PASS)).unwrap();
    assert_eq!(
        registry.reload()[0].1,
        Ok(Reloaded::Loaded("flaky@v2".into()))
    );
    assert_eq!(decision(&registry, "flaky"), Decision::Pass);
}

#[test]
fn sighup_reenables_and_old_versions_do_not_count() {
    let (_dir, config, registry) = loaded("old", TRAP, 2);
    // Calls pinned to v1, still running when v2 arrives.
    let v1: Vec<_> = (0..3).map(|_| registry.get("old").unwrap()).collect();
    std::fs::write(&config.path, component(PASS)).unwrap();
    registry.reload();
    for call in &v1 {
        assert!(call.route(&view(), &host()).is_err());
    }
    // v1's failures do not switch off the good v2.
    assert_eq!(decision(&registry, "old"), Decision::Pass);
    // A disabled plugin comes back on an explicit re-enable.
    std::fs::write(&config.path, component(TRAP)).unwrap();
    registry.reload();
    for _ in 0..2 {
        assert!(fails(&registry, "old"));
    }
    assert!(registry.get("old").is_err());
    assert_eq!(registry.reenable(), vec!["old@v3".to_string()]);
    assert!(registry.get("old").is_ok());
}

#[test]
fn successes_reset_the_failure_count() {
    let (_dir, config, registry) = loaded("mixed", TRAP, 2);
    assert!(fails(&registry, "mixed"));
    std::fs::write(&config.path, component(PASS)).unwrap();
    registry.reload();
    assert_eq!(decision(&registry, "mixed"), Decision::Pass);
    std::fs::write(&config.path, component(TRAP)).unwrap();
    registry.reload();
    assert!(fails(&registry, "mixed"));
    assert!(registry.get("mixed").is_ok(), "one failure after a success");
}

#[test]
fn unknown_plugins_are_named() {
    let engine = engine();
    let registry = PluginRegistry::load(&engine, &[], None).unwrap();
    let e = registry.get("nope").err().unwrap();
    assert_eq!(e.to_string(), "no plugin named `nope`");
}
