//! The example and test plugins of `plugins/` (Rust, built from source for
//! wasm32 by `plugins/build.sh`) end to end: SIPp caller → tandem asking
//! the plugins → SIPp callees. Least-cost routing with failover, header
//! normalisation seen at the callee, chains, Lua calling a plugin,
//! misbehaving plugins ending only their own call, fallback, crash-loop
//! switch-off and re-enabling, and a reload under 50 live calls.

#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{CallConfig, Msg, Sipp, SippProc, SippRun, SippTransport, Tandem};

const UDP: SippTransport = SippTransport::Udp;

/// A built plugin: `lcr`, `headers` or `misbehave`.
fn built(name: &str) -> PathBuf {
    support::guest_plugins().join(format!("{name}.wasm"))
}

/// A copy of a built plugin in `dir` as `as_name.wasm` (its own file, so
/// a test can replace it).
fn copy(dir: &Path, plugin: &str, as_name: &str) -> PathBuf {
    let path = dir.join(format!("{as_name}.wasm"));
    replace(&path, plugin);
    path
}

/// Replaces a plugin file as a deploy does: a temporary file renamed over.
fn replace(path: &Path, plugin: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::copy(built(plugin), &tmp).expect("copy plugin");
    std::fs::rename(&tmp, path).expect("rename");
}

/// Call settings with the plugin cache in `dir`.
fn config(dir: &Path) -> CallConfig {
    CallConfig::new().wasm(&format!(
        "cache_dir = {:?}",
        dir.join("cache").display().to_string()
    ))
}

fn uas(scenario: &str, calls: u32) -> Sipp {
    Sipp::server(scenario)
        .transport(UDP)
        .calls(calls)
        .timeout(Duration::from_secs(30))
}

fn rejecting(code: u16, calls: u32) -> SippProc {
    uas("uas_reject.xml", calls)
        .var("CODE", &code.to_string())
        .var("REASON", "Busy Here")
        .spawn()
}

/// `127.0.0.1:PORT` of a SIPp callee (a gateway in a rate table).
fn gateway(p: &SippProc) -> String {
    p.addr().to_string()
}

fn call_ok(tandem: &Tandem, user: &str) -> SippRun {
    let run = Sipp::client("uac.xml", tandem.udp())
        .transport(UDP)
        .args(&["-s", user, "-d", "200"])
        .timeout(Duration::from_secs(20))
        .run();
    run.assert_success();
    run
}

fn call_refused(tandem: &Tandem, user: &str, code: u16) {
    Sipp::client("uac_reject.xml", tandem.udp())
        .transport(UDP)
        .var("CODE", &code.to_string())
        .var("PAUSE_MS", "100")
        .args(&["-s", user])
        .timeout(Duration::from_secs(20))
        .run()
        .assert_success();
}

fn invites(run: &SippRun) -> Vec<Msg> {
    run.received()
        .into_iter()
        .filter(|m| m.method() == Some("INVITE"))
        .collect()
}

fn request_line(m: &Msg) -> String {
    m.text().lines().next().unwrap_or_default().to_string()
}

#[test]
fn lcr_routes_by_longest_prefix_and_fails_over() {
    let dir = tempfile::tempdir().expect("dir");
    let mut busy = rejecting(486, 1);
    let mut good = uas("uas.xml", 1).spawn();
    let rates = format!(
        "# prefix gateway cost\nx1 127.0.0.1:5085 0.1\n4930 {busy} 0.008\n49 {good} 0.012\n1 {good} 0.005\n",
        busy = gateway(&busy),
        good = gateway(&good)
    );
    let tandem = config(dir.path())
        .dialplan_line("plugins = [\"lcr\"]")
        .plugin(
            "lcr",
            &built("lcr"),
            &["cpu_ms = 50"],
            &[("rates", &rates), ("timeout_ms", "5000")],
        )
        .start();
    call_ok(&tandem, "+49301234");
    // The cheapest route of the longest prefix first: busy, then the next.
    let run = busy.wait();
    run.assert_success();
    assert!(
        request_line(&invites(&run)[0]).starts_with("INVITE sip:49301234@127.0.0.1:"),
        "{}",
        run.report()
    );
    let run = good.wait();
    run.assert_success();
    let invite = &invites(&run)[0];
    assert!(
        request_line(invite).starts_with("INVITE sip:49301234@127.0.0.1:"),
        "{}",
        invite.text()
    );
    assert_eq!(
        invite.header("X-LCR-Route"),
        Some("4930"),
        "{}",
        invite.text()
    );
    // A number no prefix matches: 404 from the plugin.
    call_refused(&tandem, "999", 404);
    let log = tandem.log_text();
    // The bad line is told once, not on each of the two calls.
    assert_eq!(log.matches("rates line 2 skipped").count(), 1, "{log}");
    let loaded = log
        .lines()
        .find(|l| l.contains("Plugin loaded.") && l.contains("lcr@v1"))
        .unwrap_or_else(|| panic!("no load line:\n{log}"));
    // Nothing but the host API: no WASI, no files, no sockets, no clocks.
    let imports = loaded.split("imports=").nth(1).unwrap_or_default();
    assert!(imports.contains("tandem:plugin/host@1.0.0"), "{loaded}");
    assert!(!imports.contains("wasi"), "{loaded}");
    assert_eq!(
        imports.matches("tandem:plugin/").count(),
        imports.matches(':').count(),
        "{loaded}"
    );
    tandem.assert_idle(Duration::from_secs(10));
}

/// A call from `from_user` to `user` with extra headers.
fn call_with_headers(tandem: &Tandem, from_user: &str, user: &str, headers: &[&str]) {
    Sipp::client("uac_headers.xml", tandem.udp())
        .transport(UDP)
        .var("FROM_USER", from_user)
        .var("HEADERS", &headers.join("\n      "))
        .args(&["-s", user, "-d", "200"])
        .timeout(Duration::from_secs(20))
        .run()
        .assert_success();
}

#[test]
fn the_header_plugin_normalises_what_the_callee_sees() {
    let dir = tempfile::tempdir().expect("dir");
    let mut callee = uas("uas.xml", 1).spawn();
    let tandem = config(dir.path())
        .route("", &[callee.target()])
        .dialplan_line("plugins = [\"headers\"]")
        .plugin(
            "headers",
            &built("headers"),
            &[],
            &[
                ("country_code", "49"),
                ("trusted", "127.0.0.1"),
                ("strip", "X-Internal"),
            ],
        )
        .start();
    call_with_headers(
        &tandem,
        "0309999",
        "0301234",
        &[
            "P-Asserted-Identity: \"Desk\" <sip:0301111@127.0.0.1>",
            "P-Asserted-Identity: <tel:+49301112>",
            "P-Preferred-Identity: <sip:evil@127.0.0.1>",
            "X-Internal: secret",
        ],
    );
    let run = callee.wait();
    run.assert_success();
    let invite = &invites(&run)[0];
    let text = invite.text();
    // The static route after the plugin dials the normalised number.
    assert!(
        request_line(invite).starts_with("INVITE sip:+49301234@127.0.0.1:"),
        "{text}"
    );
    assert!(invite.must("From").contains("sip:+49309999@"), "{text}");
    assert_eq!(
        invite.header_all("P-Asserted-Identity"),
        vec!["\"Desk\" <sip:+49301111@127.0.0.1>"],
        "{text}"
    );
    assert_eq!(invite.header("P-Preferred-Identity"), None, "{text}");
    assert_eq!(invite.header("X-Internal"), None, "{text}");
    assert_eq!(invite.header("X-Normalised"), Some("1"), "{text}");
    tandem.assert_idle(Duration::from_secs(10));
}

#[test]
fn a_chain_normalises_then_routes_by_prefix() {
    let dir = tempfile::tempdir().expect("dir");
    let mut good = uas("uas.xml", 1).spawn();
    let rates = format!("49 {} 0.01\n", gateway(&good));
    let tandem = config(dir.path())
        .dialplan_line("plugins = [\"headers\", \"lcr\"]")
        .plugin("headers", &built("headers"), &[], &[("country_code", "49")])
        .plugin("lcr", &built("lcr"), &[], &[("rates", &rates)])
        .start();
    call_ok(&tandem, "0301234");
    let run = good.wait();
    run.assert_success();
    let invite = &invites(&run)[0];
    // The Request-URI the first plugin set, sent to the gateway the
    // second chose (like a proxy's R-URI and next hop).
    assert!(
        request_line(invite).starts_with("INVITE sip:+49301234@"),
        "{}",
        invite.text()
    );
    assert_eq!(invite.header("X-Normalised"), Some("1"));
    assert_eq!(invite.header("X-LCR-Route"), Some("49"));
    assert!(tandem.log_text().contains("headers@v1>lcr@v1>static"));
    tandem.assert_idle(Duration::from_secs(10));
}

#[test]
fn a_lua_dial_plan_calls_a_plugin_and_changes_its_answer() {
    let dir = tempfile::tempdir().expect("dir");
    let mut good = uas("uas.xml", 1).spawn();
    let script = dir.path().join("glue.lua");
    std::fs::write(
        &script,
        r#"
        function on_invite(call)
          if call.user:sub(1, 4) == "trap" then
            local r, err = tandem.plugin("broken"):route(call)
            tandem.log("warn", "plugin said no: " .. tostring(err))
            call:reject(503, "Routing Down")
            return
          end
          local r = assert(tandem.plugin("lcr"):route(call))
          r.headers["X-From-Lua"] = r.plugin .. " " .. r.action
          local res = call:apply(r)
          tandem.log("info", "dial ended " .. res.code)
        end
        "#,
    )
    .expect("script");
    let rates = format!("7 {} 0.01\n", gateway(&good));
    let tandem = config(dir.path())
        .dialplan(&script, &[])
        .plugin("lcr", &built("lcr"), &[], &[("rates", &rates)])
        .plugin("broken", &built("misbehave"), &[], &[])
        .start();
    call_ok(&tandem, "7000");
    call_refused(&tandem, "trap1", 503);
    let run = good.wait();
    run.assert_success();
    let invite = &invites(&run)[0];
    assert_eq!(
        invite.header("X-From-Lua"),
        Some("lcr@v1 dial"),
        "{}",
        invite.text()
    );
    assert_eq!(invite.header("X-LCR-Route"), Some("7"));
    tandem.expect_log(Duration::from_secs(5), &["dial ended 200"]);
    tandem.expect_log(Duration::from_secs(5), &["plugin said no: broken@v1"]);
    tandem.assert_idle(Duration::from_secs(10));
}

#[test]
fn each_misbehaving_plugin_ends_only_its_call() {
    let dir = tempfile::tempdir().expect("dir");
    let mut callee = uas("uas.xml", 1).spawn();
    let tandem = config(dir.path())
        .route("", &[callee.target()])
        .dialplan_line("plugins = [\"misbehave\"]")
        .plugin(
            "misbehave",
            &built("misbehave"),
            &["cpu_ms = 50", "memory_mb = 8"],
            &[],
        )
        .start();
    // A call that stays up while the bad ones come and go.
    let long = Sipp::client("uac.xml", tandem.udp())
        .transport(UDP)
        .args(&["-s", "good", "-d", "3000"])
        .timeout(Duration::from_secs(20));
    let long = std::thread::spawn(move || long.run());
    for user in ["loop1", "bomb1", "trap1", "badcode1"] {
        call_refused(&tandem, user, 500);
    }
    long.join().expect("caller thread").assert_success();
    let run = callee.wait();
    run.assert_success();
    assert_eq!(invites(&run)[0].header("X-Misbehave"), Some("no"));
    let log = tandem.log_text();
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Dial plan failed; ending its call."))
        .collect();
    assert_eq!(failures.len(), 4, "{log}");
    for line in &failures {
        assert!(line.contains("misbehave@v1"), "{line}");
        assert!(line.contains("call_id="), "{line}");
    }
    for needle in [
        "CPU limit of 50 ms exceeded",
        "memory limit of 8 MiB exceeded",
        "unreachable",
        "99",
    ] {
        assert!(
            failures.iter().any(|l| l.contains(needle)),
            "no failure mentions `{needle}`:\n{failures:#?}"
        );
    }
    tandem.assert_idle(Duration::from_secs(10));
}

#[test]
fn failures_fall_back_and_a_crash_loop_switches_off_until_a_good_reload() {
    let dir = tempfile::tempdir().expect("dir");
    let mut callee = uas("uas.xml", 3).spawn();
    let plugin = copy(dir.path(), "misbehave", "edge");
    let tandem = config(dir.path())
        .route("", &[callee.target()])
        .dialplan_line("plugins = [\"edge\"]")
        .dialplan_line("on_plugin_error = \"static\"")
        .dialplan_line("watch = false")
        .plugin(
            "edge",
            &plugin,
            &["crash_limit = 2"],
            &[("country_code", "49")],
        )
        .start();
    // Each trap falls back to the static route: the caller is connected.
    call_ok(&tandem, "trap1");
    call_ok(&tandem, "trap2");
    tandem.expect_log(
        Duration::from_secs(5),
        &["Plugin disabled after failing too often in a row"],
    );
    // A good file and SIGHUP bring it back, as a new version.
    replace(&plugin, "headers");
    tandem.signal("HUP");
    tandem.expect_log(Duration::from_secs(10), &["Plugin reloaded.", "edge@v2"]);
    call_ok(&tandem, "0301234");
    let run = callee.wait();
    run.assert_success();
    let invites = invites(&run);
    assert_eq!(invites.len(), 3);
    assert_eq!(invites[0].header("X-Misbehave"), None, "fell back");
    assert_eq!(invites[2].header("X-Normalised"), Some("1"), "edge@v2 ran");
    let log = tandem.log_text();
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("Plugin failed; the call falls back.") && l.contains("edge@v1"))
            .count(),
        2,
        "{log}"
    );
    tandem.assert_idle(Duration::from_secs(10));
}

#[test]
fn a_plugin_reload_during_live_calls_drops_none() {
    const CALLS: u32 = 50;
    let dir = tempfile::tempdir().expect("dir");
    let mut slow = uas("uas_slow_reject.xml", CALLS)
        .var("CODE", "486")
        .var("REASON", "Busy Here")
        // Long enough for the reload to land under them: compiling the
        // new version takes seconds in a debug build on a loaded machine.
        .var("PAUSE_MS", "8000")
        .limit(CALLS)
        .spawn();
    let mut good = uas("uas.xml", CALLS + 1).limit(CALLS).spawn();
    let rates = format!("5 {} 0.1\n5 {} 0.2\n", gateway(&slow), gateway(&good));
    let plugin = copy(dir.path(), "lcr", "route");
    let tandem = config(dir.path())
        .media(&format!("ports = \"{}\"", support::media_ports(600)))
        .route("", &[good.target()])
        .dialplan_line("plugins = [\"route\"]")
        .plugin(
            "route",
            &plugin,
            &["cpu_ms = 50"],
            &[("rates", &rates), ("country_code", "49")],
        )
        .start();
    let uac = Sipp::client("uac.xml", tandem.udp())
        .transport(UDP)
        .calls(CALLS)
        .rate(100)
        .limit(CALLS)
        .args(&["-s", "5000", "-d", "100"])
        .timeout(Duration::from_secs(30));
    let uac = std::thread::spawn(move || uac.run());
    // Every call is held at the slow gateway: deploy another plugin
    // under them (v2 passes calls on to the static route).
    tandem.expect_log_count(Duration::from_secs(10), &["Calling."], CALLS as usize);
    replace(&plugin, "headers");
    tandem.expect_log(Duration::from_secs(10), &["Plugin reloaded.", "route@v2"]);
    tandem.expect_log(Duration::from_secs(5), &["Status.", "route@v1:50"]);
    uac.join().expect("caller thread").assert_success();
    call_ok(&tandem, "0301234");
    slow.wait().assert_success();
    let run = good.wait();
    run.assert_success();
    let invites = invites(&run);
    assert_eq!(invites.len(), CALLS as usize + 1);
    // The live calls failed over as v1 decided…
    assert!(
        invites[..CALLS as usize]
            .iter()
            .all(|m| m.header("X-LCR-Route") == Some("5") && m.header("X-Normalised").is_none()),
        "a live call changed version"
    );
    // …the next call ran v2.
    assert_eq!(invites[CALLS as usize].header("X-Normalised"), Some("1"));
    tandem.assert_idle(Duration::from_secs(10));
}

#[test]
fn a_listener_picks_its_own_chain() {
    let dir = tempfile::tempdir().expect("dir");
    let mut callee = uas("uas.xml", 2).spawn();
    let trunk = format!("udp:127.0.0.1:{}", support::free_port());
    let toml = config(dir.path())
        .route("", &[callee.target()])
        .plugin("tagger", &built("misbehave"), &[], &[])
        .toml();
    // `[dialplan.listener]` before the plugin tables (their settings take
    // every key after them).
    let toml =
        format!("[[dialplan.listener]]\nlisten = {trunk:?}\nplugins = [\"tagger\"]\n\n{toml}");
    let tandem = Tandem::builder()
        .config(&toml)
        .listen(&["udp:127.0.0.1:0", &trunk])
        .start();
    // The first listener: no chain, the static route.
    call_ok(&tandem, "1000");
    // The trunk listener: the plugin first.
    let trunk_addr: std::net::SocketAddr = trunk["udp:".len()..].parse().expect("addr");
    Sipp::client("uac.xml", trunk_addr)
        .transport(UDP)
        .args(&["-s", "1001", "-d", "200"])
        .timeout(Duration::from_secs(20))
        .run()
        .assert_success();
    let run = callee.wait();
    run.assert_success();
    let invites = invites(&run);
    assert_eq!(invites.len(), 2);
    assert_eq!(invites[0].header("X-Misbehave"), None);
    assert_eq!(invites[1].header("X-Misbehave"), Some("no"));
    tandem.assert_idle(Duration::from_secs(10));
}
