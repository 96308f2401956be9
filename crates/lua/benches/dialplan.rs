//! What a Lua dial plan costs per call, in process: start the coroutine,
//! read two headers, set one, dial (answered at once), finish. Run with
//! `cargo bench -p tandem-lua --bench dialplan`.

use api::host::BoxFuture;
use api::{
    CallHandler, CallLink, CallView, Command, DialResult, Host, HttpRequest, HttpResponse, KvStore,
    MemoryKv, RouteInfo,
};
use criterion::{Criterion, criterion_main};
use std::sync::Arc;

struct BenchHost(MemoryKv);

impl Host for BenchHost {
    fn kv(&self) -> &dyn KvStore {
        &self.0
    }
    fn http(&self, _: HttpRequest) -> BoxFuture<'static, Result<HttpResponse, String>> {
        Box::pin(async { Err("no http in benchmarks".to_string()) })
    }
    fn route(&self, _: &str) -> Option<RouteInfo> {
        None
    }
}

/// The dial plan the call-rate benchmark runs through the binary, so both
/// figures measure the same script.
const SCRIPT: &str = include_str!("../../../benches/dialplan.lua");

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.lua");
    std::fs::write(&path, SCRIPT.replace("{{UAS}}", "127.0.0.1:5080")).expect("write");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let engine = lua::LuaEngine::load(
        lua::ScriptConfig::new(&path),
        Arc::new(BenchHost(MemoryKv::default())),
    )
    .expect("load");
    let mut view = CallView::simulated("alice", "1000");
    view.headers.push("Subject", "bench");
    view.headers.push("User-Agent", "SIPp");
    c.bench_function("lua dial plan: 2 headers read, 1 set, dial", |b| {
        b.iter(|| {
            rt.block_on(async {
                let (link, mut rx) = CallLink::pair();
                let (_, mut run) = engine.start(view.clone(), link).expect("start");
                let mut run_done = false;
                loop {
                    let cmd = tokio::select! {
                        cmd = rx.recv() => cmd,
                        _ = &mut run, if !run_done => { run_done = true; continue; }
                    };
                    let Some(cmd) = cmd else { break };
                    match cmd {
                        Command::Dial { reply, .. } => {
                            let _ = reply.send(DialResult {
                                answered: true,
                                code: 200,
                                reason: "OK".into(),
                                duration: std::time::Duration::ZERO,
                            });
                        }
                        Command::Done(r) => {
                            assert!(r.is_ok());
                            if !run_done {
                                run.await;
                            }
                            break;
                        }
                        _ => {}
                    }
                }
            })
        })
    });
}

/// Criterion's group function, in a module of its own because the macro
/// makes it `pub` without a doc comment.
mod group {
    criterion::criterion_group!(benches, super::bench);
}

criterion_main!(group::benches);
