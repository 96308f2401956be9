//! `sessionchurn`: what a media session costs to set up and tear down, on
//! loopback, without any RTP.
//!
//! Each call is what the B2BUA does for an anchored call: a session, the
//! offer from side A and the answer from side B rewritten (one audio `m=`
//! line: two RTP/RTCP port pairs and a relay), then the session dropped.
//! `--concurrent` sessions are alive at a time (the oldest is dropped when a
//! new one starts), so ports are released and taken continuously as under a
//! steady call rate. It prints the calls per second reached and the CPU time
//! of the whole process per call (every thread, from
//! `/proc/self/task/*/schedstat`), which is the per-call cost of anchoring
//! the media (SDP parsing and rendering included).
//!
//! ```text
//! cargo run --release -p tandem-media --example sessionchurn -- --calls 50000
//! ```

use clap::Parser;
use media::{MediaConfig, MediaEngine, MediaSession, Side};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Media session setup/teardown cost (loopback only).
#[derive(Debug, Parser)]
struct Args {
    /// Calls (sessions) to set up and tear down.
    #[arg(long, default_value_t = 50_000)]
    calls: u32,
    /// Sessions alive at once.
    #[arg(long, default_value_t = 200)]
    concurrent: usize,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Calls per second to pace at (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u32,
    /// First port of the range (random in 20000–26000 when absent); the
    /// range holds 4 × concurrent + 2000 pairs.
    #[arg(long)]
    port_min: Option<u16>,
}

fn sdp(user: &str, port: u16) -> String {
    format!(
        "v=0\r\no={user} 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

/// CPU time of every thread of this process, from schedstat.
fn cpu_time() -> Duration {
    let mut total = 0u64;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
                total += s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    Duration::from_nanos(total)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let port_min = args
        .port_min
        .unwrap_or_else(|| 20_000 + 2 * rand::random_range(0..3_000u16));
    let pairs = u32::try_from(args.concurrent)? * 4 + 2_000;
    let port_max = u16::try_from(u32::from(port_min) + pairs * 2 - 1)?;
    let engine = MediaEngine::try_new(MediaConfig {
        port_min,
        port_max,
        ..MediaConfig::default()
    })?;
    let offer = sdp("a", 40_000);
    let answer = sdp("b", 40_002);
    let (wall, cpu) = runtime.block_on(async {
        // Warm up: one round of the concurrency, not counted.
        let mut live: VecDeque<MediaSession> = VecDeque::new();
        for _ in 0..args.concurrent {
            let s = engine.session();
            s.rewrite_sdp(Side::A, offer.as_bytes()).await?;
            s.rewrite_sdp(Side::B, answer.as_bytes()).await?;
            live.push_back(s);
        }
        let cpu_before = cpu_time();
        let start = Instant::now();
        for i in 0..args.calls {
            if args.rate > 0 {
                let due = start + Duration::from_secs_f64(f64::from(i) / f64::from(args.rate));
                tokio::time::sleep_until(due.into()).await;
            }
            let s = engine.session();
            s.rewrite_sdp(Side::A, offer.as_bytes()).await?;
            s.rewrite_sdp(Side::B, answer.as_bytes()).await?;
            live.push_back(s);
            if live.len() > args.concurrent {
                live.pop_front();
            }
            if i % 64 == 0 {
                // Let the workers run what the dropped sessions left to do.
                tokio::task::yield_now().await;
            }
        }
        live.clear();
        let wall = start.elapsed();
        // Let the teardown of the last sessions finish before reading the CPU.
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok::<_, media::MediaError>((wall, cpu_time().saturating_sub(cpu_before)))
    })?;
    let calls = f64::from(args.calls);
    println!(
        "sessionchurn: {} calls ({} alive at once, {} worker threads) in {:.2} s = {:.0} calls/s; \
         CPU {:.2} s = {:.1} µs per call; ports in use after: {}",
        args.calls,
        args.concurrent,
        args.threads,
        wall.as_secs_f64(),
        calls / wall.as_secs_f64(),
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / calls,
        engine.ports_in_use()
    );
    Ok(())
}
