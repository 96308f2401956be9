//! Runs N calls through `benches/dialplan.lua` in process and exits: the
//! Lua side of a call (view, coroutine, 2 header reads, 1 set, an answered
//! dial, done) without SIP. Made for instruction counts, which unlike
//! CPU time do not depend on what else the machine does:
//!
//! ```sh
//! cargo build --release -p tandem-lua --example dialplan_calls
//! for n in 1000 3000; do valgrind --tool=callgrind \
//!   --callgrind-out-file=/tmp/dp-$n.out target/release/examples/dialplan_calls $n; done
//! ```
//! (instructions of the 3000 run − the 1000 run) / 2000 = per call.

use api::host::BoxFuture;
use api::{
    CallHandler, CallLink, CallView, Command, DialResult, Host, HttpRequest, HttpResponse, KvStore,
    MemoryKv, RouteInfo,
};
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

const SCRIPT: &str = include_str!("../../../benches/dialplan.lua");

/// The headers of a SIPp `uac` INVITE, as the core's view lists them.
fn sipp_view() -> CallView {
    let mut view = CallView::simulated("sipp", "service");
    view.headers = [
        (
            "Via",
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1234-1-0;rport",
        ),
        ("From", "sipp <sip:sipp@127.0.0.1:5070>;tag=1234SIPpTag001"),
        ("To", "service <sip:service@127.0.0.1:5060>"),
        ("Call-ID", "1-1234@127.0.0.1"),
        ("CSeq", "1 INVITE"),
        ("Contact", "sip:sipp@127.0.0.1:5070"),
        ("Max-Forwards", "70"),
        ("Subject", "Performance Test"),
        ("Content-Type", "application/sdp"),
        ("Content-Length", "135"),
    ]
    .into_iter()
    .collect();
    view
}

fn main() {
    let calls: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
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
    let view = sipp_view();
    for _ in 0..calls {
        rt.block_on(one_call(&*engine, view.clone()));
    }
}

async fn one_call(engine: &dyn CallHandler, view: CallView) {
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
