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

#[path = "../benches/support/mod.rs"]
mod support;

use api::CallView;

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
    let (rt, engine) = support::setup();
    let view = sipp_view();
    for _ in 0..calls {
        rt.block_on(support::one_call(&*engine, view.clone()));
    }
}
