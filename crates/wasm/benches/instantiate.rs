//! What one plugin event costs: a fresh instance from the pre-instantiated
//! template (pooling allocator) and one `on-invite` call. Run with
//! `cargo bench -p tandem-wasm --bench instantiate`.

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
}

/// Criterion's group function, in a module of its own because the macro
/// makes it `pub` without a doc comment.
mod group {
    criterion::criterion_group!(benches, super::bench);
}

criterion_main!(group::benches);
