//! What a Lua dial plan costs per call, in process: start the coroutine,
//! read two headers, set one, dial (answered at once), finish. Run with
//! `cargo bench -p tandem-lua --bench dialplan`.

#[path = "support/mod.rs"]
mod support;

use api::CallView;
use criterion::{Criterion, criterion_main};

fn bench(c: &mut Criterion) {
    let (rt, engine) = support::setup();
    let mut view = CallView::simulated("alice", "1000");
    view.headers.push("Subject", "bench");
    view.headers.push("User-Agent", "SIPp");
    c.bench_function("lua dial plan: 2 headers read, 1 set, dial", |b| {
        b.iter(|| rt.block_on(support::one_call(&*engine, view.clone())))
    });
}

/// Criterion's group function, in a module of its own because the macro
/// makes it `pub` without a doc comment.
mod group {
    criterion::criterion_group!(benches, super::bench);
}

criterion_main!(group::benches);
