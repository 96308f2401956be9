//! The example dial plans of `scripts/` through the real binary: each one
//! passes `tandem check`, and `tandem simulate` shows it doing what its
//! header comment promises (failover, unknown extensions, E.164
//! normalisation, header clean-up, HTTP routing against a local service
//! and the static fallback when that service is down).

#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use support::{Output, run_tandem};

/// Static routes for the scripts that use `tandem.route`.
const ROUTES: &str = r#"
[[routes]]
prefix = "1"
targets = ["sip:${user}@127.0.0.1:5080", "sip:${user}@127.0.0.1:5090"]
timeout_s = 20

[[routes]]
prefix = "5"
targets = ["sip:${user}@127.0.0.1:5095"]
"#;

/// The URL `http_routing.lua` ships with; the tests point it elsewhere.
const SHIPPED_URL: &str = "http://127.0.0.1:8089/route";

fn example(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts")).join(name)
}

/// A config file with [`ROUTES`], in its own directory.
fn routes_config() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tandem.toml");
    std::fs::write(&path, ROUTES).expect("write config");
    (dir, path.to_string_lossy().into_owned())
}

/// `tandem simulate SCRIPT ARGS…`, which must succeed.
fn simulate(script: &Path, args: &[&str]) -> Output {
    let script = script.to_string_lossy();
    let mut all = vec!["simulate", script.as_ref()];
    all.extend_from_slice(args);
    let out = run_tandem(&all, &[]);
    assert_eq!(out.code, Some(0), "tandem {all:?}:\n{out:?}");
    out
}

/// The `result:` line.
fn result(out: &Output) -> &str {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("result: "))
        .unwrap_or_else(|| panic!("no result line:\n{}", out.stdout))
}

/// Asserts that `expected` appear among the printed lines, in this order
/// (other lines may come between them).
fn assert_lines(out: &Output, expected: &[&str]) {
    let mut lines = out.stdout.lines();
    for want in expected {
        assert!(
            lines.any(|l| l == *want),
            "`{want}` missing (or out of order) in:\n{}",
            out.stdout
        );
    }
}

fn assert_no_line(out: &Output, needle: &str) {
    assert!(
        !out.stdout.lines().any(|l| l.contains(needle)),
        "unexpected `{needle}` in:\n{}",
        out.stdout
    );
}

#[test]
fn every_example_passes_check() {
    for name in ["default.lua", "pbx.lua", "trunk.lua", "http_routing.lua"] {
        let path = example(name);
        let out = run_tandem(&["check", path.to_str().unwrap()], &[]);
        assert_eq!(out.code, Some(0), "{name}: {out:?}");
        assert!(out.stdout.ends_with(": OK\n"), "{name}: {}", out.stdout);
    }
}

// ---------------------------------------------------------------------------
// default.lua: the static routes
// ---------------------------------------------------------------------------

#[test]
fn default_dials_the_static_route() {
    let (_dir, config) = routes_config();
    let out = simulate(
        &example("default.lua"),
        &["--config", &config, "--to", "1000"],
    );
    assert_lines(
        &out,
        &[
            "dial sip:1000@127.0.0.1:5080 sip:1000@127.0.0.1:5090 mode=serial timeout=20",
            "  sip:1000@127.0.0.1:5080 -> 200 OK",
        ],
    );
    assert_eq!(result(&out), "answered by sip:1000@127.0.0.1:5080");
}

#[test]
fn default_relays_the_failure_and_404s_without_a_route() {
    let (_dir, config) = routes_config();
    let out = simulate(
        &example("default.lua"),
        &[
            "--config",
            &config,
            "--to",
            "1000",
            "--outcome",
            "sip:1000@127.0.0.1:5080=486",
            "--outcome",
            "sip:1000@127.0.0.1:5090=503",
        ],
    );
    // Serial failover inside the route, then the better failure relayed.
    assert_lines(
        &out,
        &[
            "  sip:1000@127.0.0.1:5080 -> 486 Busy Here",
            "  sip:1000@127.0.0.1:5090 -> 503 Service Unavailable",
            "  => failed 486 Busy Here",
            "done",
        ],
    );
    assert_eq!(result(&out), "rejected 486 Busy Here");

    let out = simulate(
        &example("default.lua"),
        &["--config", &config, "--to", "999"],
    );
    assert_lines(&out, &["reject 404 Not Found", "done"]);
    assert_eq!(result(&out), "rejected 404 Not Found");
}

// ---------------------------------------------------------------------------
// pbx.lua: extensions, failover, internal and external callers
// ---------------------------------------------------------------------------

#[test]
fn pbx_fails_over_to_the_mobile_when_the_desk_is_busy() {
    let out = simulate(
        &example("pbx.lua"),
        &[
            "--from",
            "100",
            "--to",
            "101",
            "--outcome",
            "sip:101@127.0.0.1:5101=486",
        ],
    );
    assert_lines(
        &out,
        &[
            "set_var kind=internal",
            "set_header X-Call-Kind: internal",
            "set_var extension=101",
            "set_from name=\"Reception\"",
            "set_var leg=desk",
            "dial sip:101@127.0.0.1:5101 mode=serial timeout=20",
            "  => failed 486 Busy Here",
            "set_var leg=mobile",
            "dial sip:+4917012345101@127.0.0.1:5070 mode=serial timeout=20",
        ],
    );
    assert_eq!(
        result(&out),
        "answered by sip:+4917012345101@127.0.0.1:5070"
    );
}

#[test]
fn pbx_fails_over_to_voicemail_when_nobody_answers() {
    let out = simulate(
        &example("pbx.lua"),
        &[
            "--from",
            "100",
            "--to",
            "102",
            "--outcome",
            "sip:102@127.0.0.1:5102=timeout",
        ],
    );
    assert_lines(
        &out,
        &[
            "  sip:102@127.0.0.1:5102 -> 480 Temporarily Unavailable",
            "set_var leg=voicemail",
            "dial sip:voicemail@127.0.0.1:5090 [X-Mailbox: 102] mode=serial timeout=20",
        ],
    );
    assert_eq!(result(&out), "answered by sip:voicemail@127.0.0.1:5090");

    // When the voicemail fails too, its failure is what the caller gets.
    let out = simulate(
        &example("pbx.lua"),
        &[
            "--to",
            "102",
            "--outcome",
            "sip:102@127.0.0.1:5102=timeout",
            "--outcome",
            "sip:voicemail@127.0.0.1:5090=503",
        ],
    );
    assert_eq!(result(&out), "rejected 503 Service Unavailable");
}

#[test]
fn pbx_relays_a_decline_and_respects_no_voicemail() {
    // A decline is the callee's answer: no failover.
    let out = simulate(
        &example("pbx.lua"),
        &["--to", "102", "--outcome", "sip:102@127.0.0.1:5102=603"],
    );
    assert_no_line(&out, "voicemail");
    assert_eq!(result(&out), "rejected 603 Decline");

    // Extension 1001 has no voicemail: its timeout goes to the caller.
    let out = simulate(
        &example("pbx.lua"),
        &[
            "--to",
            "1001",
            "--outcome",
            "sip:1001@127.0.0.1:5103=timeout",
        ],
    );
    let dials = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("dial "))
        .count();
    assert_eq!(dials, 1, "{}", out.stdout);
    assert_eq!(result(&out), "rejected 480 Temporarily Unavailable");
}

#[test]
fn pbx_rejects_unknown_extensions_with_404() {
    for to in ["103", "1999", "12345", "reception"] {
        let out = simulate(&example("pbx.lua"), &["--from", "100", "--to", to]);
        assert_lines(&out, &["reject 404 Not Found"]);
        assert_no_line(&out, "dial ");
        assert_eq!(result(&out), "rejected 404 Not Found", "--to {to}");
    }
}

#[test]
fn pbx_outside_line_is_for_internal_callers_only() {
    let out = simulate(
        &example("pbx.lua"),
        &["--from", "101", "--to", "00301234567"],
    );
    assert_lines(
        &out,
        &[
            "set_var kind=internal",
            "set_var leg=outside",
            "set_from user=+4930123456101 name=\"Ada\"",
            "dial sip:0301234567@127.0.0.1:5070 mode=serial timeout=60",
        ],
    );
    assert_eq!(result(&out), "answered by sip:0301234567@127.0.0.1:5070");

    // The same extension number from outside the office is not trusted.
    let out = simulate(
        &example("pbx.lua"),
        &[
            "--from",
            "101",
            "--source",
            "192.0.2.7:5060",
            "--to",
            "00301234567",
        ],
    );
    assert_lines(
        &out,
        &[
            "set_var kind=external",
            "reject 403 Outside Line For Extensions Only",
        ],
    );
    assert_no_line(&out, "dial ");

    // External callers still reach extensions, without a name shown.
    let out = simulate(
        &example("pbx.lua"),
        &["--from", "bob", "--source", "192.0.2.7:5060", "--to", "100"],
    );
    assert_lines(
        &out,
        &[
            "set_header X-Call-Kind: external",
            "dial sip:100@127.0.0.1:5100 mode=serial timeout=20",
        ],
    );
    assert_no_line(&out, "set_from");
}

// ---------------------------------------------------------------------------
// trunk.lua: E.164, headers, carriers
// ---------------------------------------------------------------------------

#[test]
fn trunk_normalises_dialled_numbers_to_e164() {
    let cases = [
        // national 0XXX → +49XXX, separators stripped; Berlin goes via beta
        ("030 1234-567", "sip:+49301234567@127.0.0.1:5072"),
        ("(030) 1234/567", "sip:+49301234567@127.0.0.1:5072"),
        ("089.1234.5678", "sip:+498912345678@127.0.0.1:5071"),
        // 00 → +, URI escapes undone
        (
            "0044%2020%207946%200000",
            "sip:+442079460000@127.0.0.1:5071",
        ),
        // already E.164; +1 has only beta
        ("+1 (212) 555-0100", "sip:+12125550100@127.0.0.1:5072"),
    ];
    for (to, target) in cases {
        let out = simulate(&example("trunk.lua"), &["--from", "100", "--to", to]);
        assert_lines(&out, &[&format!("dial {target} mode=serial timeout=60")]);
        assert_eq!(result(&out), format!("answered by {target}"), "--to {to}");
    }
}

#[test]
fn trunk_rejects_incomplete_and_premium_numbers() {
    let out = simulate(&example("trunk.lua"), &["--to", "1234"]);
    assert_lines(&out, &["reject 484 Address Incomplete"]);
    assert_eq!(result(&out), "rejected 484 Address Incomplete");

    let out = simulate(&example("trunk.lua"), &["--to", "0900 123456"]);
    assert_lines(
        &out,
        &[
            "set_var number=+49900123456",
            "reject 403 Premium Numbers Blocked",
        ],
    );
    assert_no_line(&out, "dial ");
}

#[test]
fn trunk_removes_internal_headers_and_presents_the_caller() {
    let out = simulate(
        &example("trunk.lua"),
        &[
            "--from",
            "101",
            "--to",
            "0301234567",
            "--header",
            "X-Account: acme",
            "--header",
            "X-Billing-Id: 77",
            "--header",
            "X-Customer-Tag: keep",
        ],
    );
    assert_lines(
        &out,
        &[
            "remove_header X-Account",
            "remove_header X-Billing-Id",
            "set_from user=+4930123456101 name=\"Ada Lovelace\"",
            "set_header P-Asserted-Identity: <sip:+4930123456101@trunk.example.net>",
            "dial sip:+49301234567@127.0.0.1:5072 mode=serial timeout=60",
        ],
    );
    // Only the listed internal headers go; absent ones are not touched.
    assert_no_line(&out, "X-Customer-Tag");
    assert_no_line(&out, "remove_header X-Internal-Route");

    // A caller without an entry presents the main number and no name.
    let out = simulate(
        &example("trunk.lua"),
        &["--from", "999", "--to", "0301234567"],
    );
    assert_lines(
        &out,
        &[
            "set_from user=+4930123456 name=\"\"",
            "set_header P-Asserted-Identity: <sip:+4930123456@trunk.example.net>",
        ],
    );
}

#[test]
fn trunk_fails_over_on_carrier_failures_only() {
    // Beta (first for Berlin) is down: alpha carries the call.
    let out = simulate(
        &example("trunk.lua"),
        &[
            "--to",
            "0301234567",
            "--outcome",
            "sip:+49301234567@127.0.0.1:5072=503",
        ],
    );
    assert_lines(
        &out,
        &[
            "set_var carrier=beta",
            "  => failed 503 Service Unavailable",
            "set_var carrier=alpha",
            "dial sip:+49301234567@127.0.0.1:5071 mode=serial timeout=60",
        ],
    );
    assert_eq!(result(&out), "answered by sip:+49301234567@127.0.0.1:5071");

    // Both carriers fail: the last failure is relayed.
    let out = simulate(
        &example("trunk.lua"),
        &[
            "--to",
            "0301234567",
            "--outcome",
            "sip:+49301234567@127.0.0.1:5072=503",
            "--outcome",
            "sip:+49301234567@127.0.0.1:5071=502",
        ],
    );
    assert_eq!(result(&out), "rejected 502 Bad Gateway");

    // Busy is the callee's answer: no second carrier.
    let out = simulate(
        &example("trunk.lua"),
        &[
            "--to",
            "0301234567",
            "--outcome",
            "sip:+49301234567@127.0.0.1:5072=486",
        ],
    );
    assert_no_line(&out, "carrier=alpha");
    assert_eq!(result(&out), "rejected 486 Busy Here");
}

// ---------------------------------------------------------------------------
// http_routing.lua: a local routing service
// ---------------------------------------------------------------------------

/// A tiny HTTP/1.1 routing service on 127.0.0.1 (port 0): answers each
/// GET with `answer(path_and_query)` and closes the connection. Returns
/// its base URL and the request targets it saw.
fn routing_service(answer: fn(&str) -> (u16, String)) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            if let Some(target) = serve(stream, answer) {
                log.lock().unwrap().push(target);
            }
        }
    });
    (url, seen)
}

fn serve(stream: TcpStream, answer: fn(&str) -> (u16, String)) -> Option<String> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    // Skip the headers (a GET has no body).
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 || line == "\r\n" {
            break;
        }
    }
    let target = request_line.split_whitespace().nth(1)?.to_string();
    let (status, body) = answer(&target);
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    Some(target)
}

/// The routing service of the tests.
fn answer(target: &str) -> (u16, String) {
    match target {
        "/route?user=1000&from=alice" => (
            200,
            "# two desks\nsip:1000@127.0.0.1:5080\r\nsip:1000@127.0.0.1:5081\n".into(),
        ),
        "/route?user=666&from=alice" => (200, "reject 403 Blocked By Policy\n".into()),
        "/route?user=%2B4930123&from=alice" => (200, "sip:+4930123@127.0.0.1:5060\n".into()),
        "/route?user=5000&from=alice" => (200, "<html>gateway error</html>".into()),
        "/route?user=5001&from=alice" => (500, "oops".into()),
        _ => (404, String::new()),
    }
}

/// `http_routing.lua` pointed at `base_url`, in its own directory.
fn http_routing_script(base_url: &str) -> (tempfile::TempDir, PathBuf) {
    let source = std::fs::read_to_string(example("http_routing.lua")).expect("read example");
    assert!(source.contains(SHIPPED_URL), "the example's URL line moved");
    let source = source.replace(SHIPPED_URL, &format!("{base_url}/route"));
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("http_routing.lua");
    std::fs::write(&path, source).expect("write script");
    (dir, path)
}

#[test]
fn http_routing_follows_the_service() {
    let (url, seen) = routing_service(answer);
    let (_dir, script) = http_routing_script(&url);
    let (_cfg, config) = routes_config();

    let out = simulate(
        &script,
        &[
            "--config",
            &config,
            "--to",
            "1000",
            "--outcome",
            "sip:1000@127.0.0.1:5080=486",
        ],
    );
    assert_lines(
        &out,
        &[
            "set_var routing=service",
            "dial sip:1000@127.0.0.1:5080 sip:1000@127.0.0.1:5081 mode=serial timeout=30",
            "  sip:1000@127.0.0.1:5080 -> 486 Busy Here",
            "  sip:1000@127.0.0.1:5081 -> 200 OK",
        ],
    );
    assert_eq!(result(&out), "answered by sip:1000@127.0.0.1:5081");

    let out = simulate(&script, &["--config", &config, "--to", "666"]);
    assert_lines(&out, &["reject 403 Blocked By Policy"]);

    // HTTP 404: an unknown number, even though a static route matches.
    let out = simulate(&script, &["--config", &config, "--to", "1999"]);
    assert_lines(&out, &["reject 404 Not Found"]);
    assert_no_line(&out, "dial ");

    // The dialled user is escaped in the query.
    let out = simulate(&script, &["--config", &config, "--to", "+4930123"]);
    assert_eq!(result(&out), "answered by sip:+4930123@127.0.0.1:5060");

    let seen = seen.lock().unwrap();
    assert_eq!(
        *seen,
        [
            "/route?user=1000&from=alice",
            "/route?user=666&from=alice",
            "/route?user=1999&from=alice",
            "/route?user=%2B4930123&from=alice",
        ]
    );
}

#[test]
fn http_routing_falls_back_on_bad_answers() {
    let (url, _seen) = routing_service(answer);
    let (_dir, script) = http_routing_script(&url);
    let (_cfg, config) = routes_config();
    // A body that is not a decision, and an HTTP 500.
    for to in ["5000", "5001"] {
        let out = simulate(&script, &["--config", &config, "--to", to]);
        assert_lines(
            &out,
            &[
                "set_var routing=static",
                &format!("dial sip:{to}@127.0.0.1:5095 mode=serial timeout=30"),
            ],
        );
        assert!(
            out.stderr.contains("using the static routes"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn http_routing_falls_back_when_the_service_is_down() {
    // A port nobody listens on any more: connections are refused.
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let (_dir, script) = http_routing_script(&url);
    let (_cfg, config) = routes_config();

    let out = simulate(&script, &["--config", &config, "--to", "1000"]);
    assert_lines(
        &out,
        &[
            "set_var routing=static",
            "dial sip:1000@127.0.0.1:5080 sip:1000@127.0.0.1:5090 mode=serial timeout=20",
        ],
    );
    assert_eq!(result(&out), "answered by sip:1000@127.0.0.1:5080");
    assert!(
        out.stderr.contains("routing service: connection failed"),
        "{}",
        out.stderr
    );

    // No static route either: 503, so that the caller's side may retry.
    let out = simulate(&script, &["--config", &config, "--to", "777"]);
    assert_lines(&out, &["reject 503 Routing Unavailable"]);
    assert_eq!(result(&out), "rejected 503 Routing Unavailable");
}
