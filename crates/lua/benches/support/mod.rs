//! What the in-process dial-plan benchmarks share: a host without
//! network, the benchmark's dial plan, and one call played against it.

use api::host::BoxFuture;
use api::{
    CallHandler, CallLink, CallView, Command, DialResult, Host, HttpRequest, HttpResponse, KvStore,
    MemoryKv, RouteInfo,
};
use std::sync::Arc;

/// A host with a key-value store and nothing else.
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

/// The dial plan the call-rate benchmark runs through the binary, so the
/// figures in and out of process measure the same script.
const SCRIPT: &str = include_str!("../../../../benches/dialplan.lua");

/// A single-threaded runtime and the benchmark's dial plan.
pub(crate) fn setup() -> (tokio::runtime::Runtime, Arc<lua::LuaEngine>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.lua");
    std::fs::write(&path, SCRIPT.replace("{{UAS}}", "127.0.0.1:5080")).expect("write");
    let engine = lua::LuaEngine::load(
        lua::ScriptConfig::new(&path),
        Arc::new(BenchHost(MemoryKv::default())),
    )
    .expect("load");
    (rt, engine)
}

/// One call: starts the dial plan, answers its dial at once, and waits
/// until the script is done.
pub(crate) async fn one_call(engine: &dyn CallHandler, view: CallView) {
    let (link, mut rx) = CallLink::pair();
    let (_, mut run) = engine.start(view, link).expect("start");
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
}
