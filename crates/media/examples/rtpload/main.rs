//! `rtpload`: an RTP load generator for Tandem's media relay, on loopback.
//!
//! It starts the relay in a child process (this same binary with the hidden
//! `--child-relay` flag) so the relay's CPU time can be read on its own from
//! `/proc/<pid>/task/*/schedstat`. The child opens `--sessions` media
//! sessions and does the SDP offer/answer for each; the parent then plays
//! both phones of every call: one UDP socket for all A phones and one for
//! all B phones, sending 172-byte RTP packets (12-byte header + 160 bytes of
//! PCMU) both ways at a fixed aggregate rate (`--rate` packets per second
//! sent into the relay, split evenly over the 2 × sessions streams) for
//! `--duration` seconds (one sender thread per direction, one receiver
//! thread per phone socket), and counts what comes back out: packets sent,
//! received, lost, corrupted (any byte different from what was sent), the
//! relay's CPU time per second of load and per packet, the generator's own
//! CPU, and where the kernel dropped packets (receive queues of the phone
//! sockets or of the relay's sockets, from `/proc/net/udp`).
//!
//! The generator shares the machine with the relay: on a small machine the
//! highest loss-free rate is where the two together run out of CPU.
//!
//! `--bare` puts a bare `recvmmsg`/`sendmmsg` forwarder (`bare.rs`) in the
//! child instead of the relay: the yardstick the relay's CPU is compared
//! with, measured on the same machine under the same load.
//!
//! `--rates 20000,50000,100000` runs several steps one after the other on the
//! same sessions. Every step stops by itself; the whole run is bounded by
//! the sum of its steps (each at most 120 s) plus at most 3 s of draining per
//! step.
//!
//! ```text
//! cargo run --release -p tandem-media --example rtpload -- --sessions 500 --rate 50000 --duration 10
//! ```

mod bare;

use clap::Parser;
use media::{MediaConfig, MediaEngine, MediaSession, Side};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// RTP load generator for the Tandem media relay (loopback only).
#[derive(Debug, Parser)]
struct Args {
    /// Media sessions (calls); each carries one two-way audio stream.
    #[arg(long, default_value_t = 500)]
    sessions: u16,
    /// Aggregate packets per second sent into the relay (both directions).
    #[arg(long, default_value_t = 50_000)]
    rate: u32,
    /// Several rates, run one after the other (overrides --rate).
    #[arg(long, value_delimiter = ',')]
    rates: Vec<u32>,
    /// Seconds of load per rate (at most 120).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Tokio worker threads of the relay process.
    #[arg(long, default_value_t = 2)]
    relay_threads: usize,
    /// First port of the relay's range (random in 20000–26000 when absent:
    /// below the ephemeral ports, above the tests' 10000–19999).
    #[arg(long)]
    port_min: Option<u16>,
    /// Run a bare recvmmsg/sendmmsg forwarder instead of the relay (the
    /// yardstick).
    #[arg(long)]
    bare: bool,
    /// Child mode: run the relay, print its ports, exit when stdin closes.
    #[arg(long, hide = true)]
    child_relay: bool,
    /// Child mode: the A phones' address.
    #[arg(long, hide = true)]
    phone_a: Option<SocketAddr>,
    /// Child mode: the B phones' address.
    #[arg(long, hide = true)]
    phone_b: Option<SocketAddr>,
}

const PACKET: usize = 172;
const PAYLOAD: usize = 160;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.child_relay {
        return child(&args);
    }
    parent(&args)
}

// ---------------------------------------------------------------- relay side

fn sdp(user: &str, addr: SocketAddr) -> String {
    format!(
        "v=0\r\no={user} 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n",
        ip = addr.ip(),
        port = addr.port()
    )
}

fn child(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let (Some(phone_a), Some(phone_b), Some(port_min)) =
        (args.phone_a, args.phone_b, args.port_min)
    else {
        return Err("child mode needs --phone-a, --phone-b and --port-min".into());
    };
    if args.bare {
        return bare::run(args.sessions, port_min, phone_a, phone_b);
    }
    // Control only: the relays run on the engine's own runtime, as in
    // tandem.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let pairs = u32::from(args.sessions) * 2 + 16;
    let port_max = u16::try_from(u32::from(port_min) + pairs * 2 - 1)?;
    let engine = MediaEngine::try_new(MediaConfig {
        port_min,
        port_max,
        inactivity_timeout: Duration::from_secs(3600),
        relay_threads: args.relay_threads.max(1),
        ..MediaConfig::default()
    })?;
    let sessions: Vec<MediaSession> = runtime.block_on(async {
        let mut sessions = Vec::new();
        for _ in 0..args.sessions {
            let s = engine.session();
            s.rewrite_sdp(Side::A, sdp("a", phone_a).as_bytes()).await?;
            s.rewrite_sdp(Side::B, sdp("b", phone_b).as_bytes()).await?;
            sessions.push(s);
        }
        Ok::<_, media::MediaError>(sessions)
    })?;
    let mut out = std::io::stdout().lock();
    for s in &sessions {
        writeln!(
            out,
            "{} {}",
            s.local_ports(Side::A)[0],
            s.local_ports(Side::B)[0]
        )?;
    }
    writeln!(out, "ready")?;
    out.flush()?;
    // Run until the parent closes stdin; answer "stats" lines meanwhile.
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        if line?.trim() == "stats" {
            let (mut relayed, mut dropped) = (0u64, 0u64);
            for s in &sessions {
                let st = s.stats();
                relayed += st.a_to_b.packets() + st.b_to_a.packets();
                dropped += st.a_to_b.dropped + st.b_to_a.dropped;
            }
            writeln!(out, "{relayed} {dropped}")?;
            out.flush()?;
        }
    }
    drop(sessions);
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

// ---------------------------------------------------------------- phone side

/// CPU time of every thread of process `pid`, from schedstat (ns).
fn cpu_time(pid: u32) -> Duration {
    let mut total = 0u64;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
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

/// CPU time of process `pid` including its ended threads, from
/// `/proc/<pid>/stat` (utime + stime, in USER_HZ = 100 ticks per second).
fn process_cpu_time(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // Fields after the command name (which may contain spaces) in parentheses.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return Duration::ZERO;
    };
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    Duration::from_millis(10 * f.iter().sum::<u64>())
}

/// Receive-queue drops of the UDP sockets on ports `phones` and of those in
/// `relay` (an inclusive port range), from `/proc/net/udp`.
fn socket_drops(phones: &[u16], relay: (u16, u16)) -> (u64, u64) {
    let Ok(table) = std::fs::read_to_string("/proc/net/udp") else {
        return (0, 0);
    };
    let (mut at_phones, mut at_relay) = (0, 0);
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(drops)) = (f.get(1), f.last()) else {
            continue;
        };
        let port = local
            .rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
        let drops: u64 = drops.parse().unwrap_or(0);
        match port {
            Some(p) if phones.contains(&p) => at_phones += drops,
            Some(p) if (relay.0..=relay.1).contains(&p) => at_relay += drops,
            _ => {}
        }
    }
    (at_phones, at_relay)
}

/// The machine's UDP receive-buffer drops so far (`/proc/net/snmp`).
fn udp_rcvbuf_errors() -> u64 {
    let Ok(snmp) = std::fs::read_to_string("/proc/net/snmp") else {
        return 0;
    };
    let mut lines = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

fn phone_socket() -> std::io::Result<UdpSocket> {
    let s = UdpSocket::bind("127.0.0.1:0")?;
    let s2 = socket2::SockRef::from(&s);
    // As deep as the kernel allows (net.core.rmem_max/wmem_max).
    let _ = s2.set_recv_buffer_size(8 << 20);
    let _ = s2.set_send_buffer_size(8 << 20);
    s.set_read_timeout(Some(Duration::from_millis(50)))?;
    Ok(s)
}

/// SSRC of stream `session` in direction `dir` (0: A→B, 1: B→A).
fn ssrc(session: usize, dir: usize) -> u32 {
    0x1000_0000 | ((session as u32) << 1) | dir as u32
}

fn payload_byte(ssrc: u32, i: usize) -> u8 {
    (ssrc as u8).wrapping_mul(31) ^ (i as u8)
}

#[derive(Default)]
struct Counts {
    received: AtomicU64,
    corrupted: AtomicU64,
}

/// Receives on one phone socket until `stop`, checking every packet.
fn receiver(sock: UdpSocket, expect_dir: usize, stop: Arc<AtomicBool>, counts: Arc<Counts>) {
    let mut buf = [0u8; 2048];
    while !stop.load(Relaxed) {
        let Ok((n, _)) = sock.recv_from(&mut buf) else {
            continue;
        };
        counts.received.fetch_add(1, Relaxed);
        let p = &buf[..n];
        let ok = n == PACKET && p[0] == 0x80 && p[1] == 0 && {
            let s = u32::from_be_bytes([p[8], p[9], p[10], p[11]]);
            (s & 1) as usize == expect_dir
                && p[12..]
                    .iter()
                    .enumerate()
                    .all(|(i, &b)| b == payload_byte(s, i))
        };
        if !ok {
            counts.corrupted.fetch_add(1, Relaxed);
        }
    }
}

/// Sends `streams` round-robin at `rate` packets per second from `start`
/// until `duration` has passed; returns how many were sent.
fn sender(
    sock: &UdpSocket,
    streams: &[(SocketAddr, [u8; PACKET])],
    rate: f64,
    start: Instant,
    duration: Duration,
) -> u64 {
    let mut packets: Vec<[u8; PACKET]> = streams.iter().map(|s| s.1).collect();
    let mut seq = 0u16;
    let mut sent = 0u64;
    let mut next = 0usize;
    loop {
        let elapsed = start.elapsed();
        if elapsed >= duration {
            return sent;
        }
        let due = (elapsed.as_secs_f64() * rate) as u64;
        if sent >= due {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        // At most 256 before looking at the clock again.
        for _ in 0..(due - sent).min(256) {
            if next == 0 {
                seq = seq.wrapping_add(1);
            }
            let packet = &mut packets[next];
            packet[2..4].copy_from_slice(&seq.to_be_bytes());
            packet[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
            // A send the kernel refuses counts as sent and lost.
            let _ = sock.send_to(&packet[..], streams[next].0);
            sent += 1;
            next = (next + 1) % packets.len();
        }
    }
}

struct Step {
    rate: u32,
    sent: u64,
    received: u64,
    corrupted: u64,
    relay_cpu: Duration,
    own_cpu: Duration,
    wall: Duration,
    rcvbuf_errors: u64,
    relay_dropped: u64,
    queue_drops_phones: u64,
    queue_drops_relay: u64,
}

fn parent(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let duration = Duration::from_secs(args.duration.clamp(1, 120));
    let rates = if args.rates.is_empty() {
        vec![args.rate]
    } else {
        args.rates.clone()
    };
    let phone_a = phone_socket()?;
    let phone_b = phone_socket()?;
    let port_min = args
        .port_min
        .unwrap_or_else(|| 20_000 + 2 * rand::random_range(0..3_000u16));
    let phone_ports = [phone_a.local_addr()?.port(), phone_b.local_addr()?.port()];
    let relay_ports = (
        port_min,
        u16::try_from(u32::from(port_min) + (u32::from(args.sessions) * 2 + 16) * 2 - 1)?,
    );
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args([
            "--child-relay",
            "--sessions",
            &args.sessions.to_string(),
            "--relay-threads",
            &args.relay_threads.to_string(),
            "--port-min",
            &port_min.to_string(),
            "--phone-a",
            &phone_a.local_addr()?.to_string(),
            "--phone-b",
            &phone_b.local_addr()?.to_string(),
        ])
        .args(args.bare.then_some("--bare"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let (Some(mut to_child), Some(from_child)) = (child.stdin.take(), child.stdout.take()) else {
        return Err("no pipes to the relay process".into());
    };
    let mut from_child = BufReader::new(from_child);
    let mut targets: Vec<(SocketAddr, SocketAddr)> = Vec::new();
    loop {
        let mut line = String::new();
        if from_child.read_line(&mut line)? == 0 {
            return Err("the relay process ended before it was ready".into());
        }
        let line = line.trim();
        if line == "ready" {
            break;
        }
        let mut ports = line.split(' ').map(str::parse::<u16>);
        let (Some(Ok(a)), Some(Ok(b))) = (ports.next(), ports.next()) else {
            return Err(format!("unexpected line from the relay: {line}").into());
        };
        targets.push((
            SocketAddr::from(([127, 0, 0, 1], a)),
            SocketAddr::from(([127, 0, 0, 1], b)),
        ));
    }
    let mut relay_stats = |to_child: &mut std::process::ChildStdin| -> Result<(u64, u64), Box<dyn std::error::Error>> {
        writeln!(to_child, "stats")?;
        to_child.flush()?;
        let mut line = String::new();
        from_child.read_line(&mut line)?;
        let mut v = line.split_whitespace().map(str::parse::<u64>);
        match (v.next(), v.next()) {
            (Some(Ok(r)), Some(Ok(d))) => Ok((r, d)),
            _ => Err(format!("unexpected stats line: {line}").into()),
        }
    };
    println!(
        "rtpload: {} sessions ({} streams of {PACKET}-byte RTP), {} pid {pid}, {} s per step",
        targets.len(),
        targets.len() * 2,
        if args.bare {
            "bare forwarder (one thread)".to_string()
        } else {
            format!("relay with {} worker threads", args.relay_threads)
        },
        duration.as_secs()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    // Phone A receives B→A (dir 1), phone B receives A→B (dir 0).
    let receivers = [
        (phone_a.try_clone()?, 1usize),
        (phone_b.try_clone()?, 0usize),
    ]
    .into_iter()
    .map(|(sock, dir)| {
        let (stop, counts) = (Arc::clone(&stop), Arc::clone(&counts));
        std::thread::spawn(move || receiver(sock, dir, stop, counts))
    })
    .collect::<Vec<_>>();

    // One template per stream and direction: (to address, packet bytes).
    let mut streams: [Vec<(SocketAddr, [u8; PACKET])>; 2] = [Vec::new(), Vec::new()];
    for (session, &(to_a_side, to_b_side)) in targets.iter().enumerate() {
        for (dir, to) in [(0, to_a_side), (1, to_b_side)] {
            let s = ssrc(session, dir);
            let mut p = [0u8; PACKET];
            p[0] = 0x80;
            p[8..12].copy_from_slice(&s.to_be_bytes());
            for (i, b) in p[12..12 + PAYLOAD].iter_mut().enumerate() {
                *b = payload_byte(s, i);
            }
            streams[dir].push((to, p));
        }
    }
    let streams = streams.map(Arc::new);

    let mut steps = Vec::new();
    for &rate in &rates {
        let received_before = counts.received.load(Relaxed);
        let corrupted_before = counts.corrupted.load(Relaxed);
        let (_, dropped_before) = relay_stats(&mut to_child)?;
        let rcvbuf_before = udp_rcvbuf_errors();
        let drops_before = socket_drops(&phone_ports, relay_ports);
        let cpu_before = cpu_time(pid);
        let own_before = process_cpu_time(std::process::id());
        let start = Instant::now();
        // One sender thread per direction: A phones → relay, B phones → relay.
        let senders = [(&phone_a, 0usize), (&phone_b, 1usize)]
            .into_iter()
            .map(|(sock, dir)| {
                let sock = sock.try_clone()?;
                let streams = Arc::clone(&streams[dir]);
                let rate = f64::from(rate) / 2.0;
                Ok(std::thread::spawn(move || {
                    sender(&sock, &streams, rate, start, duration)
                }))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        let sent: u64 = senders.into_iter().map(|h| h.join().unwrap_or(0)).sum();
        let wall = start.elapsed();
        let relay_cpu = cpu_time(pid).saturating_sub(cpu_before);
        let own_cpu = process_cpu_time(std::process::id()).saturating_sub(own_before);
        // Let the last packets arrive: until nothing came for 200 ms (at
        // most 3 s), so a step's backlog is not counted in the next one.
        let drain_until = Instant::now() + Duration::from_secs(3);
        let mut last = counts.received.load(Relaxed);
        while Instant::now() < drain_until {
            std::thread::sleep(Duration::from_millis(200));
            let now = counts.received.load(Relaxed);
            if now == last {
                break;
            }
            last = now;
        }
        let (_, dropped_after) = relay_stats(&mut to_child)?;
        let drops_after = socket_drops(&phone_ports, relay_ports);
        steps.push(Step {
            rate,
            sent,
            received: counts.received.load(Relaxed) - received_before,
            corrupted: counts.corrupted.load(Relaxed) - corrupted_before,
            relay_cpu,
            own_cpu,
            wall,
            rcvbuf_errors: udp_rcvbuf_errors().saturating_sub(rcvbuf_before),
            relay_dropped: dropped_after - dropped_before,
            queue_drops_phones: drops_after.0.saturating_sub(drops_before.0),
            queue_drops_relay: drops_after.1.saturating_sub(drops_before.1),
        });
        report(steps.last().into_iter());
    }
    stop.store(true, Relaxed);
    for r in receivers {
        let _ = r.join();
    }
    drop(to_child);
    let _ = child.wait();
    if steps.len() > 1 {
        println!("summary:");
        report(steps.iter());
    }
    Ok(())
}

fn report<'a>(steps: impl Iterator<Item = &'a Step>) {
    for s in steps {
        let lost = s.sent.saturating_sub(s.received);
        let loss = if s.sent == 0 {
            0.0
        } else {
            100.0 * lost as f64 / s.sent as f64
        };
        let secs = s.wall.as_secs_f64();
        let cpu_pct = 100.0 * s.relay_cpu.as_secs_f64() / secs;
        let ns_per_packet = if s.sent == 0 {
            0.0
        } else {
            s.relay_cpu.as_nanos() as f64 / s.sent as f64
        };
        println!(
            "rate {:>7} pps (achieved {:.0}): sent {:>9} received {:>9} lost {:>7} ({:.4} %) corrupted {} | \
             relay CPU {:.2} s in {:.2} s = {:.1} % of one core, {:.0} ns/packet | \
             generator CPU {:.1} % | relay dropped {} | UDP queue drops: phones {} relay {} \
             (machine RcvbufErrors {})",
            s.rate,
            s.sent as f64 / secs,
            s.sent,
            s.received,
            lost,
            loss,
            s.corrupted,
            s.relay_cpu.as_secs_f64(),
            secs,
            cpu_pct,
            ns_per_packet,
            100.0 * s.own_cpu.as_secs_f64() / secs,
            s.relay_dropped,
            s.queue_drops_phones,
            s.queue_drops_relay,
            s.rcvbuf_errors
        );
    }
}
