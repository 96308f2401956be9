//! Plugins written in WAT and encoded as components of the `router` world:
//! decisions come back checked, each call gets a fresh instance, and a trap,
//! a runaway loop or a memory bomb is an error of that call only.

use api::CallView;
use api::Decision;
use std::time::{Duration, Instant};
use wasm::{Plugin, PluginConfig, PluginError, WasmEngine};

mod common;
use common::*;

fn engine() -> WasmEngine {
    WasmEngine::new(64, 64 * 1024 * 1024).expect("engine")
}

fn plugin(engine: &WasmEngine, body: &str) -> Plugin {
    let mut config = PluginConfig::new("test", "test.wasm");
    config.memory = 4 * 1024 * 1024;
    Plugin::from_bytes(engine, &config, 1, &component(body)).expect("loads")
}

fn view() -> CallView {
    CallView::simulated("alice", "1000")
}

#[test]
fn decisions_come_back() {
    let engine = engine();
    let r = plugin(&engine, REJECT_403).route(&view(), &host()).unwrap();
    assert!(r.edits.is_empty());
    assert_eq!(r.decision, Decision::Reject(403, "Forbidden".into()));
    let r = plugin(&engine, PASS).route(&view(), &host()).unwrap();
    assert_eq!(r.decision, Decision::Pass);
}

#[test]
fn every_call_gets_a_fresh_instance() {
    let engine = engine();
    let p = plugin(&engine, COUNTER);
    for _ in 0..5 {
        let r = p.route(&view(), &host()).unwrap();
        assert_eq!(r.decision, Decision::Reject(480, "x".into()));
    }
}

#[test]
fn a_trap_is_an_error_of_that_call() {
    let engine = engine();
    let bad = plugin(&engine, TRAP);
    let e = bad.route(&view(), &host()).unwrap_err();
    assert!(matches!(e, PluginError::Trap { .. }), "{e}");
    assert!(e.to_string().starts_with("test@v1:"), "{e}");
    // The plugin and the engine still work.
    assert!(bad.route(&view(), &host()).is_err());
    let good = plugin(&engine, PASS);
    assert_eq!(
        good.route(&view(), &host()).unwrap().decision,
        Decision::Pass
    );
}

#[test]
fn a_runaway_loop_is_stopped_by_the_cpu_limit() {
    let engine = engine();
    let mut config = PluginConfig::new("spin", "spin.wasm");
    config.cpu = Duration::from_millis(20);
    let p = Plugin::from_bytes(&engine, &config, 1, &component(LOOP)).unwrap();
    let started = Instant::now();
    let e = p.route(&view(), &host()).unwrap_err();
    assert!(e.to_string().contains("CPU limit of 20 ms exceeded"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn fuel_stops_a_loop_deterministically() {
    let engine = WasmEngine::with_fuel(8, 64 * 1024 * 1024).expect("engine");
    let mut config = PluginConfig::new("spin", "spin.wasm");
    config.cpu = Duration::from_secs(10);
    config.fuel = Some(100_000);
    let p = Plugin::from_bytes(&engine, &config, 1, &component(LOOP)).unwrap();
    let e = p.route(&view(), &host()).unwrap_err();
    assert!(e.to_string().contains("fuel exhausted"), "{e}");
}

#[test]
fn a_memory_bomb_hits_the_instance_limit() {
    let engine = engine();
    let p = plugin(&engine, BOMB);
    let e = p.route(&view(), &host()).unwrap_err();
    assert!(matches!(e, PluginError::Trap { .. }), "{e}");
    assert!(
        e.to_string().ends_with("memory limit of 4 MiB exceeded"),
        "{e}"
    );
    // Others still get their memory.
    let good = plugin(&engine, REJECT_403);
    assert!(good.route(&view(), &host()).is_ok());
}

#[test]
fn answers_the_api_refuses_are_errors() {
    let engine = engine();
    let e = plugin(&engine, BAD_CODE)
        .route(&view(), &host())
        .unwrap_err();
    assert!(matches!(e, PluginError::Refused { .. }), "{e}");
    assert!(e.to_string().contains("200"), "{e}");
}

#[test]
fn a_plugin_imports_nothing_but_the_host_api() {
    let engine = engine();
    let p = plugin(&engine, PASS);
    for import in p.imports() {
        assert!(import.starts_with("tandem:plugin/"), "{import}");
    }
    let e = Plugin::from_bytes(
        &engine,
        &PluginConfig::new("junk", "junk.wasm"),
        1,
        b"\0asm junk",
    )
    .unwrap_err();
    assert!(matches!(e, PluginError::Invalid { .. }), "{e}");
}

#[test]
fn a_dial_decision_carries_its_target() {
    let engine = engine();
    let r = plugin(&engine, &dial_body("sip:1000@127.0.0.1:5080"))
        .route(&view(), &host())
        .unwrap();
    let Decision::Dial(d) = r.decision else {
        panic!("{:?}", r.decision)
    };
    assert_eq!(d.targets.len(), 1);
    assert_eq!(d.targets[0].uri, "sip:1000@127.0.0.1:5080");
    assert_eq!(d.mode, api::DialMode::Serial);
    assert_eq!(d.timeout, None);
}
