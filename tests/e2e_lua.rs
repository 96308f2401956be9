//! Lua dial plans end to end: SIPp caller → tandem running a script →
//! SIPp callees. What the script asks for must arrive on the wire (headers,
//! Request-URI, From), failover and parallel ringing must behave, a script
//! that fails must end only its own call, and a reload must leave live
//! calls on the version they started with.

#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{CallConfig, Msg, Sipp, SippProc, SippRun, SippTransport, Tandem};

const UDP: SippTransport = SippTransport::Udp;

/// A script in its own directory (which tandem watches).
struct Script {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl Script {
    fn new(source: &str) -> Script {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("plan.lua");
        std::fs::write(&path, source).expect("write script");
        Script { dir, path }
    }

    fn rewrite(&self, source: &str) {
        // As editors do: a temporary file renamed over the script.
        let tmp = self.dir.path().join(".plan.lua.swp");
        std::fs::write(&tmp, source).expect("write temp");
        std::fs::rename(&tmp, &self.path).expect("rename");
    }
}

/// A SIPp callee's URI for `user`.
fn uri(p: &SippProc, user: &str) -> String {
    p.target().replace("${user}", user)
}

fn start(script: &Script, extra: &[&str]) -> Tandem {
    CallConfig::new().dialplan(&script.path, extra).start()
}

fn uas(scenario: &str, calls: u32) -> Sipp {
    Sipp::server(scenario)
        .transport(UDP)
        .calls(calls)
        .timeout(Duration::from_secs(30))
}

fn rejecting(code: u16, reason: &str, calls: u32) -> SippProc {
    uas("uas_reject.xml", calls)
        .var("CODE", &code.to_string())
        .var("REASON", reason)
        .spawn()
}

/// One call from SIPp to `user`, expected to be answered and hung up.
fn call_ok(tandem: &Tandem, user: &str) -> SippRun {
    let run = Sipp::client("uac.xml", tandem.udp())
        .transport(UDP)
        .args(&["-s", user, "-d", "200"])
        .timeout(Duration::from_secs(20))
        .run();
    run.assert_success();
    run
}

/// One call from SIPp to `user`, expected to fail with `code`.
fn call_refused(tandem: &Tandem, user: &str, code: u16) -> SippRun {
    let run = Sipp::client("uac_reject.xml", tandem.udp())
        .transport(UDP)
        .var("CODE", &code.to_string())
        .var("PAUSE_MS", "100")
        .args(&["-s", user])
        .timeout(Duration::from_secs(20))
        .run();
    run.assert_success();
    run
}

fn invites(run: &SippRun) -> Vec<Msg> {
    run.received()
        .into_iter()
        .filter(|m| m.method() == Some("INVITE"))
        .collect()
}

#[test]
fn header_ruri_and_from_changes_arrive_at_the_callee() {
    let mut callee = uas("uas.xml", 1).spawn();
    let script = Script::new(&format!(
        r#"
        function on_invite(call)
          call:set_header("X-E2E", "rewritten-" .. call:header("X-E2E"))
          call:add_header("X-Trace", "1")
          call:add_header("X-Trace", "2")
          call:remove_header("Subject")
          call:set_ruri("sip:+4930123@trunk.invalid")
          call:set_from{{ user = "+4930999", name = "Sales" }}
          call.vars.account = "acme"
          local r = call:dial("{target}", {{ headers = {{ ["X-Leg"] = "b" }} }})
          tandem.log("info", "dial ended", r.answered, r.code)
        end
        "#,
        target = uri(&callee, "1000")
    ));
    let tandem = start(&script, &[]);
    call_ok(&tandem, "1000");
    let run = callee.wait();
    run.assert_success();
    let invite = &invites(&run)[0];
    let text = invite.text();
    assert!(
        text.starts_with("INVITE sip:+4930123@trunk.invalid SIP/2.0"),
        "{text}"
    );
    assert_eq!(invite.must("X-E2E"), "rewritten-call-1");
    assert_eq!(invite.header_all("X-Trace"), vec!["1", "2"]);
    assert_eq!(invite.must("X-Leg"), "b");
    assert!(invite.header("Subject").is_none(), "{text}");
    let from = invite.must("From");
    assert!(
        from.starts_with("\"Sales\" <sip:+4930999@127.0.0.1"),
        "{from}"
    );
    assert!(invite.must("To").contains("sip:+4930123@trunk.invalid"));
    assert!(tandem.wait_for_log(Duration::from_secs(5), |l| {
        l.iter().any(|l| l.contains("dial ended true 200"))
    }));
    tandem.assert_idle(Duration::from_secs(10));
}

#[test]
fn serial_failover_on_busy_and_on_no_answer() {
    let mut busy = rejecting(486, "Busy Here", 1);
    let mut silent = uas("uas_cancelled.xml", 1).spawn();
    let mut good = uas("uas.xml", 1).spawn();
    let script = Script::new(&format!(
        r#"
        function on_invite(call)
          local r = call:dial({{ "{busy}", "{silent}" }}, {{ timeout = 2 }})
          assert(not r.answered)
          call.vars.first = r.code
          local r2 = call:dial("{good}", {{ headers = {{ ["X-Failover"] = tostring(r.code) }} }})
          if not r2.answered then call:reject(r2.code, r2.reason) end
        end
        "#,
        busy = uri(&busy, "1"),
        silent = uri(&silent, "2"),
        good = uri(&good, "3"),
    ));
    let tandem = start(&script, &[]);
    call_ok(&tandem, "1000");
    busy.wait().assert_success();
    let silent_run = silent.wait();
    silent_run.assert_success();
    assert!(
        silent_run
            .received()
            .iter()
            .any(|m| m.method() == Some("CANCEL")),
        "the unanswered target is cancelled at its timeout"
    );
    let good_run = good.wait();
    good_run.assert_success();
    // Busy then no answer: the ring timeout (480) is what the first dial
    // reports, as it was the last failure of equal rank.
    assert_eq!(invites(&good_run)[0].must("X-Failover"), "480");
    tandem.assert_idle(Duration::from_secs(10));
}

#[test]
fn parallel_ringing_first_answer_wins() {
    let mut ringing = uas("uas_cancelled.xml", 1).spawn();
    let mut answering = uas("uas.xml", 1).spawn();
    let script = Script::new(&format!(
        r#"
        function on_invite(call)
          call:dial({{ "{a}", "{b}" }}, {{ mode = "parallel", timeout = 10 }})
        end
        "#,
        a = uri(&ringing, "desk"),
        b = uri(&answering, "mobile"),
    ));
    let tandem = start(&script, &[]);
    call_ok(&tandem, "1000");
    answering.wait().assert_success();
    let r = ringing.wait();
    r.assert_success();
    assert!(r.received().iter().any(|m| m.method() == Some("CANCEL")));
    tandem.assert_idle(Duration::from_secs(10));
}

#[test]
fn reject_codes_and_relayed_failures() {
    let mut busy = rejecting(486, "Busy Here", 1);
    let script = Script::new(&format!(
        r#"
        function on_invite(call)
          if call.user == "403" then return call:reject(403, "Forbidden") end
          if call.user == "603" then return call:reject(603) end
          if call.user == "none" then return end
          -- A failed dial without a reject: its failure reaches the caller.
          call:dial("{busy}")
        end
        "#,
        busy = uri(&busy, "x"),
    ));
    let tandem = start(&script, &[]);
    let run = call_refused(&tandem, "403", 403);
    assert!(run.received_starts().iter().any(|s| s == "403 Forbidden"));
    call_refused(&tandem, "603", 603);
    call_refused(&tandem, "none", 404);
    call_refused(&tandem, "busy", 486);
    busy.wait().assert_success();
    tandem.assert_idle(Duration::from_secs(10));
}

/// A tiny HTTP routing service: answers every request with the body
/// `target`, and records the request lines it got.
fn http_service(target: String) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind http");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            log.lock().expect("lock").push(line.trim().to_string());
            // Skip the request headers.
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                target.len(),
                target
            );
        }
    });
    (port, seen)
}

#[test]
fn http_routing_against_a_local_service() {
    let mut callee = uas("uas.xml", 1).spawn();
    let (port, seen) = http_service(uri(&callee, "routed"));
    let script = Script::new(&format!(
        r#"
        function on_invite(call)
          local res, err = tandem.http{{ url = "http://127.0.0.1:{port}/route?n=" .. call.user, timeout = 2 }}
          if not res then return call:reject(503, "Routing Down") end
          call:dial(res.body)
        end
        "#
    ));
    let tandem = start(&script, &[]);
    call_ok(&tandem, "4930123");
    let run = callee.wait();
    run.assert_success();
    assert!(invites(&run)[0].text().starts_with("INVITE sip:routed@"));
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen, vec!["GET /route?n=4930123 HTTP/1.1".to_string()]);
    tandem.assert_idle(Duration::from_secs(10));
}

#[test]
fn a_failing_script_ends_only_its_own_call() {
    let mut callee = uas("uas.xml", 1).spawn();
    let script = Script::new(&format!(
        "function on_invite(call)\n\
         \x20 if call.user == \"loop\" then while true do end end\n\
         \x20 if call.user == \"bomb\" then local t = {{}} for i = 1, 1e9 do t[i] = string.rep('x', 4096) .. i end end\n\
         \x20 if call.user == \"error\" then local x = nil; x.y = 1 end\n\
         \x20 call:dial(\"{target}\")\n\
         end\n",
        target = uri(&callee, "ok")
    ));
    let tandem = start(&script, &["memory_mb = 16", "instructions = 200000"]);
    // A call that stays up while the bad ones come and go.
    let long = Sipp::client("uac.xml", tandem.udp())
        .transport(UDP)
        .args(&["-s", "ok", "-d", "3000"])
        .timeout(Duration::from_secs(20));
    let long = std::thread::spawn(move || long.run());
    for user in ["loop", "bomb", "error"] {
        call_refused(&tandem, user, 500);
    }
    long.join().expect("caller thread").assert_success();
    callee.wait().assert_success();
    let log = tandem.log_text();
    assert!(log.contains("plan.lua@v1"), "{log}");
    for needle in [
        "instruction budget exceeded",
        "memory limit exceeded",
        "attempt to index a nil value",
    ] {
        let line = log
            .lines()
            .find(|l| l.contains("Dial plan failed; ending its call.") && l.contains(needle))
            .unwrap_or_else(|| panic!("no failure line for `{needle}`:\n{log}"));
        assert!(line.contains("call_id="), "{line}");
        assert!(line.contains("line="), "{line}");
    }
    assert!(
        log.contains("line=4"),
        "the runtime error is on line 4:\n{log}"
    );
    tandem.assert_idle(Duration::from_secs(10));
}

fn versioned(first: &str, second: &str, version: u32) -> String {
    format!(
        r#"
        function on_invite(call)
          call:dial("{first}")
          call:dial("{second}", {{ headers = {{ ["X-Version"] = "{version}" }} }})
        end
        "#
    )
}

#[test]
fn a_reload_during_live_calls_drops_none() {
    const CALLS: u32 = 50;
    let mut slow = uas("uas_slow_reject.xml", CALLS + 1)
        .var("CODE", "486")
        .var("REASON", "Busy Here")
        .var("PAUSE_MS", "3000")
        .limit(CALLS)
        .spawn();
    let mut good = uas("uas.xml", CALLS + 1).limit(CALLS).spawn();
    let (first, second) = (uri(&slow, "slow"), uri(&good, "good"));
    let script = Script::new(&versioned(&first, &second, 1));
    // Two port pairs per call.
    let tandem = CallConfig::new()
        .media(&format!("ports = \"{}\"", support::media_ports(600)))
        .dialplan(&script.path, &[])
        .start();
    let uac = Sipp::client("uac.xml", tandem.udp())
        .transport(UDP)
        .calls(CALLS)
        .rate(100)
        .limit(CALLS)
        .args(&["-d", "100"])
        .timeout(Duration::from_secs(30));
    let uac = std::thread::spawn(move || uac.run());
    // Every call is held in its first dial; change the script under them.
    tandem.expect_log_count(Duration::from_secs(10), &["Calling."], CALLS as usize);
    script.rewrite(&versioned(&first, &second, 2));
    tandem.expect_log(
        Duration::from_secs(10),
        &["Dial plan reloaded.", "plan.lua@v2"],
    );
    uac.join().expect("caller thread").assert_success();
    // One more call, on the new version.
    call_ok(&tandem, "after");
    slow.wait().assert_success();
    let run = good.wait();
    run.assert_success();
    let versions: Vec<String> = invites(&run)
        .iter()
        .map(|m| m.must("X-Version").to_string())
        .collect();
    assert_eq!(versions.len(), CALLS as usize + 1);
    assert!(
        versions[..CALLS as usize].iter().all(|v| v == "1"),
        "{versions:?}"
    );
    assert_eq!(versions[CALLS as usize], "2");
    tandem.assert_idle(Duration::from_secs(10));
}

#[test]
fn sighup_reloads_and_a_broken_edit_keeps_the_old_version() {
    let script = Script::new("function on_invite(call) call:reject(486) end\n");
    let tandem = start(&script, &["watch = false"]);
    call_refused(&tandem, "x", 486);
    std::fs::write(&script.path, "function on_invite(call\n").expect("write");
    tandem.signal("HUP");
    assert!(tandem.wait_for_log(Duration::from_secs(5), |l| {
        l.iter()
            .any(|l| l.contains("reload failed") && l.contains("plan.lua:"))
    }));
    call_refused(&tandem, "x", 486);
    std::fs::write(
        &script.path,
        "function on_invite(call) call:reject(603) end\n",
    )
    .expect("write");
    tandem.signal("HUP");
    assert!(
        tandem.wait_for_log(Duration::from_secs(5), |l| l
            .iter()
            .any(|l| l.contains("Dial plan reloaded.") && l.contains("plan.lua@v2")))
    );
    call_refused(&tandem, "x", 603);
    assert!(tandem.wait_for_log(Duration::from_secs(5), |l| {
        l.iter()
            .any(|l| l.contains("Status.") && l.contains("dialplan=plan.lua@v2:0"))
    }));
}

#[test]
fn check_and_simulate_from_the_command_line() {
    let script = Script::new(
        "function on_invite(call)\n  call:set_header('X-A', call:header('X-A') or 'none')\n  local r = call:dial('sip:1000@127.0.0.1:5080')\n  if not r.answered then call:reject(480, 'Nobody Home') end\nend\n",
    );
    let path = script.path.to_str().expect("utf-8 path");
    let out = support::run_tandem(&["check", path], &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let out = support::run_tandem(
        &[
            "simulate",
            path,
            "--from",
            "alice",
            "--to",
            "1000",
            "--header",
            "X-A: b",
            "--outcome",
            "sip:1000@127.0.0.1:5080=486",
        ],
        &[],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        vec![
            "set_header X-A: b",
            "dial sip:1000@127.0.0.1:5080 mode=serial",
            "  sip:1000@127.0.0.1:5080 -> 486 Busy Here",
            "  => failed 486 Busy Here",
            "reject 480 Nobody Home",
            "done",
            "result: rejected 480 Nobody Home",
        ]
    );
    let bad = Path::new(path).with_file_name("bad.lua");
    std::fs::write(&bad, "function on_invite(call)\n  if x then\n").expect("write");
    let out = support::run_tandem(&["check", bad.to_str().expect("utf-8")], &[]);
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(out.stderr.starts_with("bad.lua:"), "{}", out.stderr);
}
