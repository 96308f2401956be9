//! The command line and the configuration file of the real binary: help,
//! bad configurations (exit code 64), --check-config, the config's
//! listeners and log settings, the environment, and signals.

#[path = "support/mod.rs"]
mod support;

use std::net::UdpSocket;
use std::time::{Duration, Instant};
use support::{Tandem, TcpPeer, UdpPeer, run_tandem};

/// sysexits EX_USAGE.
const EX_USAGE: i32 = 64;

/// How long a server runs before the signal tests signal it: tandem installs
/// its signal handlers only after it printed its listeners (see
/// `signal_right_after_the_listening_lines_exits_0`).
const SETTLE: Duration = Duration::from_millis(500);

fn write_config(dir: &tempfile::TempDir, toml: &str) -> String {
    let path = dir.path().join("tandem.toml");
    std::fs::write(&path, toml).expect("write config");
    path.to_string_lossy().into_owned()
}

#[test]
fn help_mentions_every_flag() {
    let out = run_tandem(&["--help"], &[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    for flag in [
        "--config",
        "--listen",
        "--log-level",
        "--log-format",
        "--check-config",
    ] {
        assert!(
            out.stdout.contains(flag),
            "--help lacks {flag}:\n{}",
            out.stdout
        );
    }
    let out = run_tandem(&["--version"], &[]);
    assert_eq!(out.code, Some(0));
    assert!(out.stdout.starts_with("tandem "), "{}", out.stdout);
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let out = run_tandem(&["--no-such-flag"], &[]);
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(out.code.is_some(), "it exits by itself");
    assert!(out.stderr.contains("--no-such-flag"), "{}", out.stderr);
}

#[test]
fn bad_config_files_exit_64_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[&str])] = &[
        // Unknown keys, at the top and in a table.
        ("lisen = []\n", &["lisen"]),
        ("[sip]\nt9_ms = 1\n", &["t9_ms"]),
        ("[logging]\nlevel = \"info\"\n", &["logging"]),
        // Wrong types and invalid values.
        ("[sip]\nt1_ms = \"fast\"\n", &["t1_ms"]),
        ("[sip]\nt1_ms = 0\n", &["sip.t1_ms"]),
        ("[sip]\nt1_ms = 1000\nt2_ms = 500\n", &["sip.t2_ms"]),
        ("[sip]\nmax_message_size = 100\n", &["sip.max_message_size"]),
        (
            "[sip]\nmax_tcp_connections = 0\n",
            &["sip.max_tcp_connections"],
        ),
        ("[log]\nformat = \"xml\"\n", &["log.format", "xml"]),
        ("listen = []\n", &["listen"]),
        ("listen = [\"sctp:127.0.0.1:0\"]\n", &["sctp:127.0.0.1:0"]),
        (
            "listen = [\"udp:127.0.0.1:99999\"]\n",
            &["udp:127.0.0.1:99999"],
        ),
        ("listen = [\"udp:localhost:0\"]\n", &["udp:localhost:0"]),
        // Not TOML at all.
        ("this is not toml", &["TOML"]),
        // Several problems are all reported.
        (
            "[sip]\nt1_ms = 0\nmax_tcp_connections = 0\n",
            &["sip.t1_ms", "sip.max_tcp_connections"],
        ),
    ];
    for (toml, needles) in cases {
        let path = write_config(&dir, toml);
        let out = run_tandem(&["--config", &path], &[]);
        assert_eq!(out.code, Some(EX_USAGE), "config {toml:?}: {out:?}");
        for n in *needles {
            assert!(
                out.stderr.contains(n),
                "config {toml:?}: stderr lacks {n:?}:\n{}",
                out.stderr
            );
        }
        assert!(out.stdout.is_empty(), "{out:?}");
    }
    // A file that does not exist.
    let missing = dir.path().join("missing.toml");
    let out = run_tandem(&["--config", &missing.to_string_lossy()], &[]);
    assert_eq!(out.code, Some(EX_USAGE), "{out:?}");
    assert!(out.stderr.contains("missing.toml"), "{}", out.stderr);
    // Bad values on the command line.
    for (args, needle) in [
        (&["--listen", "udp:nowhere"][..], "udp:nowhere"),
        (&["--log-format", "xml"][..], "xml"),
        (&["--log-level", "foo=["][..], "foo=["),
    ] {
        let out = run_tandem(args, &[]);
        assert_eq!(out.code, Some(EX_USAGE), "{args:?}: {out:?}");
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn check_config_prints_the_listeners_without_binding() {
    // A port that is taken: --check-config must not try to bind it.
    let held = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        &dir,
        &format!("listen = [\"udp:127.0.0.1:{port}\", \"tcp:[::1]:0\"]\n[sip]\nt1_ms = 200\n"),
    );
    let out = run_tandem(&["--config", &path, "--check-config"], &[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            format!("listen udp:127.0.0.1:{port}"),
            "listen tcp:[::1]:0".into()
        ]
    );

    // --listen replaces the config's list.
    let out = run_tandem(
        &[
            "--config",
            &path,
            "--listen",
            "tcp:127.0.0.1:0",
            "--check-config",
        ],
        &[],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["listen tcp:127.0.0.1:0"]
    );

    // A bad config is reported by --check-config too.
    let bad = write_config(&dir, "[sip]\nt1_ms = 0\n");
    let out = run_tandem(&["--config", &bad, "--check-config"], &[]);
    assert_eq!(out.code, Some(EX_USAGE), "{out:?}");
}

#[test]
fn config_file_listeners_are_used_without_listen_flags() {
    let tandem = Tandem::builder()
        .config("listen = [\"udp:127.0.0.1:0\", \"tcp:127.0.0.1:0\"]\n")
        .listen(&[])
        .expect_listeners(2)
        .start();
    let udp = UdpPeer::new(tandem.udp());
    let req = udp.req("OPTIONS");
    assert_eq!(udp.transact(&req).status(), 200);
    let mut tcp = TcpPeer::connect(tandem.tcp());
    let req = tcp.req("OPTIONS");
    assert_eq!(tcp.transact(&req).status(), 200);
}

#[test]
fn listen_flags_replace_the_config_list() {
    let tandem = Tandem::builder()
        .config("listen = [\"udp:127.0.0.1:0\", \"tcp:127.0.0.1:0\"]\n")
        .listen(&["udp:127.0.0.1:0"])
        .start();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        tandem.count_log(&["Listening."]),
        1,
        "{}",
        tandem.log_text()
    );
    assert!(tandem.listeners.iter().all(|(k, _)| k == "udp"));
}

#[test]
fn config_from_the_environment() {
    let mut b = Tandem::builder().listen(&[]).expect_listeners(1);
    let path = b.file("env.toml", "listen = [\"udp:127.0.0.1:0\"]\n");
    let tandem = b.env("TANDEM_CONFIG", &path.to_string_lossy()).start();
    let udp = UdpPeer::new(tandem.udp());
    let req = udp.req("OPTIONS");
    assert_eq!(udp.transact(&req).status(), 200);
}

#[test]
fn log_level_from_config_and_flag() {
    // [log] level = "debug" shows the UAS checks' debug lines ...
    let tandem = Tandem::with_config("[log]\nlevel = \"debug\"\n");
    let udp = UdpPeer::new(tandem.udp());
    assert_eq!(udp.transact(&udp.req("FROBNICATE")).status(), 501);
    assert!(
        tandem.wait_for_log(Duration::from_secs(2), |l| l.iter().any(|l| l
            .contains("DEBUG")
            && l.contains("Request rejected by UAS checks."))),
        "{}",
        tandem.log_text()
    );
    // ... and --log-level overrides it.
    let tandem = Tandem::builder()
        .config("[log]\nlevel = \"debug\"\n")
        .arg("--log-level")
        .arg("info")
        .start();
    let udp = UdpPeer::new(tandem.udp());
    assert_eq!(udp.transact(&udp.req("FROBNICATE")).status(), 501);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(tandem.count_log(&["DEBUG"]), 0, "{}", tandem.log_text());
}

#[test]
fn json_log_format() {
    let tandem = Tandem::builder().arg("--log-format").arg("json").start();
    for line in tandem.log_lines() {
        assert!(
            line.starts_with('{') && line.ends_with('}'),
            "not JSON: {line}"
        );
    }
    assert!(
        tandem.log_text().contains("\"Listening.\""),
        "{}",
        tandem.log_text()
    );
    // No colour codes when stderr is not a terminal, in either format.
    assert!(!tandem.log_text().contains('\u{1b}'));
    let text = Tandem::start();
    assert!(!text.log_text().contains('\u{1b}'), "{}", text.log_text());
}

#[test]
fn a_taken_port_fails_the_start() {
    let held = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let out = run_tandem(&["--listen", &format!("udp:127.0.0.1:{port}")], &[]);
    assert!(out.code.is_some(), "it exits by itself: {out:?}");
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("cannot bind"), "{}", out.stderr);
}

fn stops_on(signal: &str) {
    let mut tandem = Tandem::start();
    // Busy with a transaction when the signal comes.
    let udp = UdpPeer::new(tandem.udp());
    assert_eq!(udp.transact(&udp.req("OPTIONS")).status(), 200);
    // A server that has been up for a moment. A signal right after the
    // `Listening.` lines is `signal_right_after_the_listening_lines_exits_0`.
    std::thread::sleep(SETTLE);
    let sent = Instant::now();
    tandem.signal(signal);
    let status = tandem
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running 5 s after SIG{signal}"));
    assert_eq!(
        status.code(),
        Some(0),
        "SIG{signal}: {status}\n{}",
        tandem.log_text()
    );
    assert!(sent.elapsed() < Duration::from_secs(5));
    assert!(
        tandem.log_text().contains("Shutting down."),
        "{}",
        tandem.log_text()
    );
}

#[test]
fn sigterm_exits_0() {
    stops_on("TERM");
}

#[test]
fn sigint_exits_0() {
    stops_on("INT");
}

#[test]
fn sighup_does_not_stop_it() {
    let mut tandem = Tandem::start();
    std::thread::sleep(SETTLE);
    tandem.signal("HUP");
    assert!(tandem.wait_for_log(Duration::from_secs(3), |l| {
        l.iter().any(|l| l.contains("SIGHUP received"))
    }));
    assert!(tandem.is_running());
    let udp = UdpPeer::new(tandem.udp());
    assert_eq!(udp.transact(&udp.req("OPTIONS")).status(), 200);
}

#[test]
fn signal_right_after_the_listening_lines_exits_0() {
    // Supervisors and scripts take the `Listening.` lines as "ready"; a stop
    // signal from then on must be a clean shutdown, never the default
    // action of the signal (death by signal, no "Shutting down.").
    let mut failures = Vec::new();
    for (i, signal) in ["TERM", "INT"].iter().cycle().take(48).enumerate() {
        let mut tandem = Tandem::builder().listen(&["udp:127.0.0.1:0"]).start();
        tandem.signal(signal);
        let status = tandem
            .wait_exit(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("still running 5 s after SIG{signal}"));
        if status.code() != Some(0) || !tandem.log_text().contains("Shutting down.") {
            failures.push(format!("run {i}: SIG{signal} -> {status}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
