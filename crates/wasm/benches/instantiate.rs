//! What one plugin event costs: a fresh instance from the pre-instantiated
//! template (pooling allocator) and one `on-invite` call, for a minimal
//! WAT plugin and for the LCR example plugin (built by `plugins/build.sh`;
//! skipped with a note when it is missing). Also what loading costs:
//! compiling the LCR plugin, and loading it from the compile cache. Run
//! with `plugins/build.sh && cargo bench -p tandem-wasm --bench instantiate`.

use criterion::{Criterion, criterion_main};

#[path = "../tests/common/mod.rs"]
mod common;

fn bench(c: &mut Criterion) {
    let engine = wasm::WasmEngine::new(64, 16 * 1024 * 1024).expect("engine");
    let config = wasm::PluginConfig::new("bench", "bench.wasm");
    let plugin =
        wasm::Plugin::from_bytes(&engine, &config, 1, &common::component(common::REJECT_403))
            .expect("plugin");
    let host = common::host();
    let view = api::CallView::simulated("alice", "1000");
    c.bench_function("wasm plugin: fresh instance + on-invite", |b| {
        b.iter(|| plugin.route(&view, &host).expect("route"))
    });

    let lcr = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/plugins/lcr.wasm");
    let Ok(bytes) = std::fs::read(lcr) else {
        eprintln!("{lcr} missing: run plugins/build.sh for the LCR figures");
        return;
    };
    let mut config = wasm::PluginConfig::new("lcr", lcr);
    config.settings = vec![(
        "rates".into(),
        "4930 127.0.0.2:5060 0.008\n49 127.0.0.3:5060 0.012\n44 127.0.0.4:5060 0.01\n1 127.0.0.1:5080 0.005\n"
            .into(),
    )];
    let plugin = wasm::Plugin::from_bytes(&engine, &config, 1, &bytes).expect("lcr");
    let view = api::CallView::simulated("alice", "+4930123456");
    c.bench_function("lcr plugin: fresh instance + on-invite", |b| {
        b.iter(|| plugin.route(&view, &host).expect("route"))
    });
    let mut group = c.benchmark_group("lcr plugin load");
    group.sample_size(10);
    group.bench_function("compile (no cache)", |b| {
        b.iter(|| wasm::Plugin::from_bytes(&engine, &config, 1, &bytes).expect("lcr"))
    });
    let cache = tempfile::tempdir().expect("cache dir");
    group.bench_function("from the compile cache", |b| {
        b.iter(|| {
            wasm::Plugin::compile(&engine, &config, 1, &bytes, Some(cache.path())).expect("lcr")
        })
    });
    group.finish();
}

/// Criterion's group function, in a module of its own because the macro
/// makes it `pub` without a doc comment.
mod group {
    criterion::criterion_group!(benches, super::bench);
}

criterion_main!(group::benches);
