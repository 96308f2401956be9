//! Shared harness of the end-to-end tests: starts the real `tandem` binary
//! on loopback, talks to it over raw UDP and TCP sockets, and runs SIPp
//! (as a client to completion, or as a server in the background that tandem
//! routes calls to); [`CallConfig`] writes call configurations and
//! [`Tandem::wait_status`] reads the status line; [`ua`] is a test UA for
//! the call tests.
//!
//! Everything here is synchronous std code with a timeout on every wait, so
//! a test that goes wrong fails instead of hanging, and tests can run in
//! parallel (every socket is bound to port 0 on 127.0.0.1 or ::1).

#![allow(dead_code)]

/// The project's own test UA (raw sockets) and RTP helpers.
pub(crate) mod ua;

/// A real softphone (baresip), headless.
pub(crate) mod baresip;

/// Digest credentials for the test UA.
pub(crate) mod digest;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The binary under test.
pub(crate) const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");

/// How long tandem may take to print its listeners.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Default wait for a response that should come at once.
pub(crate) const WAIT: Duration = Duration::from_secs(3);

/// Directory of the SIPp scenarios.
pub(crate) fn sipp_dir() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/sipp")).to_path_buf()
}

/// A scenario file in `tests/sipp/`.
pub(crate) fn scenario(name: &str) -> PathBuf {
    let p = sipp_dir().join(name);
    assert!(p.is_file(), "SIPp scenario {} is missing", p.display());
    p
}

/// The RFC 4475 torture messages of the sip crate.
pub(crate) fn rfc4475_dir() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../sip/testdata/rfc4475"
    ))
    .to_path_buf()
}

/// The example and test plugins of `plugins/`, built from source for
/// wasm32 by `plugins/build.sh` (once per test process; the script is
/// quick when they are up to date): the directory with `lcr.wasm`,
/// `headers.wasm` and `misbehave.wasm`.
pub(crate) fn guest_plugins() -> PathBuf {
    static BUILT: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
        let out = Command::new("bash")
            .arg(root.join("plugins/build.sh"))
            .output()
            .map_err(|e| format!("cannot run plugins/build.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "plugins/build.sh failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(root.join("target/plugins"))
    });
    match built {
        Ok(dir) => dir.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// A token unique in this process and very likely across processes.
pub(crate) fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}{:x}{:x}{n}", std::process::id(), nanos)
}

/// True when an IPv6 loopback socket can be bound here.
pub(crate) fn ipv6_available() -> bool {
    UdpSocket::bind("[::1]:0").is_ok() && TcpListener::bind("[::1]:0").is_ok()
}

// ---------------------------------------------------------------------------
// The tandem process
// ---------------------------------------------------------------------------

/// Lines tandem wrote to stderr, collected by a thread so the pipe never
/// fills up.
#[derive(Default)]
struct LogBuf {
    lines: Mutex<Vec<String>>,
    changed: Condvar,
    closed: Mutex<bool>,
}

/// How to start tandem.
pub(crate) struct Builder {
    config: Option<String>,
    listen: Vec<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    expect_listeners: Option<usize>,
    dir: tempfile::TempDir,
}

impl Builder {
    /// An environment variable for the process.
    pub(crate) fn env(mut self, key: &str, value: &str) -> Builder {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Writes a file into the process's temporary directory (its working
    /// directory) and returns its path.
    pub(crate) fn file(&mut self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).expect("write file");
        path
    }

    /// A TOML config file written to a temporary directory.
    pub(crate) fn config(mut self, toml: &str) -> Builder {
        self.config = Some(toml.to_string());
        self
    }

    /// Replaces the default `--listen` flags (UDP and TCP on 127.0.0.1:0).
    /// An empty list passes no `--listen` at all (the config's list is used).
    pub(crate) fn listen(mut self, listen: &[&str]) -> Builder {
        self.listen = listen.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Extra command-line arguments.
    pub(crate) fn arg(mut self, arg: &str) -> Builder {
        self.args.push(arg.to_string());
        self
    }

    /// How many `Listening.` lines to wait for (default: one per `--listen`).
    pub(crate) fn expect_listeners(mut self, n: usize) -> Builder {
        self.expect_listeners = Some(n);
        self
    }

    /// Starts tandem and waits until every listener is up.
    pub(crate) fn start(self) -> Tandem {
        let dir = self.dir;
        let mut cmd = Command::new(TANDEM);
        cmd.env_remove("TANDEM_CONFIG")
            .env_remove("TANDEM_LOG")
            .env_remove("RUST_LOG")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(toml) = &self.config {
            let path = dir.path().join("tandem.toml");
            std::fs::write(&path, toml).expect("write config");
            cmd.arg("--config").arg(&path);
        }
        for l in &self.listen {
            cmd.arg("--listen").arg(l);
        }
        cmd.args(&self.args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let expected = self.expect_listeners.unwrap_or(self.listen.len()).max(1);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {TANDEM}: {e}"));
        let log = Arc::new(LogBuf::default());
        let stderr = child.stderr.take().expect("stderr is piped");
        {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut rd = BufReader::new(stderr);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match rd.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let s = String::from_utf8_lossy(&line).trim_end().to_string();
                            log.lines.lock().unwrap().push(s);
                            log.changed.notify_all();
                        }
                    }
                }
                *log.closed.lock().unwrap() = true;
                log.changed.notify_all();
            });
        }
        let mut tandem = Tandem {
            child,
            listeners: Vec::new(),
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let listeners: Vec<(String, SocketAddr)> = tandem
                .log_lines()
                .iter()
                .filter_map(|l| parse_listening(l))
                .collect();
            if listeners.len() >= expected {
                tandem.listeners = listeners;
                return tandem;
            }
            if let Ok(Some(status)) = tandem.child.try_wait() {
                // Give the reader a moment to collect the last lines.
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "tandem exited during startup ({status}):\n{}",
                    tandem.log_text()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "tandem did not print {expected} listeners within {STARTUP_TIMEOUT:?}:\n{}",
                    tandem.log_text()
                );
            }
            tandem.wait_log_change(Duration::from_millis(50));
        }
    }
}

/// `listen=udp:127.0.0.1:5060` (text) or `"listen":"udp:..."` (JSON).
fn parse_listening(line: &str) -> Option<(String, SocketAddr)> {
    if !line.contains("Listening.") {
        return None;
    }
    let rest = if let Some(i) = line.find("listen=") {
        &line[i + "listen=".len()..]
    } else {
        let i = line.find("\"listen\":\"")?;
        &line[i + "\"listen\":\"".len()..]
    };
    let value: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"')
        .collect();
    let (kind, addr) = value.split_once(':')?;
    Some((kind.to_string(), addr.parse().ok()?))
}

/// A running tandem. Killed on drop; its log is printed if the test failed.
pub(crate) struct Tandem {
    child: Child,
    /// `(kind, address)` of every listener, as logged.
    pub(crate) listeners: Vec<(String, SocketAddr)>,
    log: Arc<LogBuf>,
    _dir: tempfile::TempDir,
}

impl Tandem {
    /// UDP and TCP on 127.0.0.1, ports picked by the kernel.
    pub(crate) fn builder() -> Builder {
        Builder {
            config: None,
            listen: vec!["udp:127.0.0.1:0".into(), "tcp:127.0.0.1:0".into()],
            args: Vec::new(),
            env: Vec::new(),
            expect_listeners: None,
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// Starts with the default listeners and no config file.
    pub(crate) fn start() -> Tandem {
        Tandem::builder().start()
    }

    /// Starts with the default listeners and this config file.
    pub(crate) fn with_config(toml: &str) -> Tandem {
        Tandem::builder().config(toml).start()
    }

    fn listener(&self, kind: &str) -> SocketAddr {
        self.listeners
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("no {kind} listener in {:?}", self.listeners))
    }

    /// The (first) UDP listener.
    pub(crate) fn udp(&self) -> SocketAddr {
        self.listener("udp")
    }

    /// The (first) TCP listener.
    pub(crate) fn tcp(&self) -> SocketAddr {
        self.listener("tcp")
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every stderr line so far.
    pub(crate) fn log_lines(&self) -> Vec<String> {
        self.log.lines.lock().unwrap().clone()
    }

    /// The whole log so far as one string.
    pub(crate) fn log_text(&self) -> String {
        self.log_lines().join("\n")
    }

    fn wait_log_change(&self, max: Duration) {
        let guard = self.log.lines.lock().unwrap();
        let _ = self.log.changed.wait_timeout(guard, max).unwrap();
    }

    /// Waits until `pred` holds for the log lines (up to `timeout`).
    pub(crate) fn wait_for_log(&self, timeout: Duration, pred: impl Fn(&[String]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.log_lines()) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            self.wait_log_change((deadline - now).min(Duration::from_millis(50)));
        }
    }

    /// Waits (up to `timeout`) for a log line containing every one of
    /// `needles`; fails the test with the whole log if none comes.
    pub(crate) fn expect_log(&self, timeout: Duration, needles: &[&str]) {
        self.expect_log_count(timeout, needles, 1);
    }

    /// [`Tandem::expect_log`] for at least `count` such lines.
    pub(crate) fn expect_log_count(&self, timeout: Duration, needles: &[&str], count: usize) {
        let found = self.wait_for_log(timeout, |lines| {
            lines
                .iter()
                .filter(|l| needles.iter().all(|n| l.contains(n)))
                .count()
                >= count
        });
        assert!(
            found,
            "fewer than {count} log lines with {needles:?}:\n{}",
            self.log_text()
        );
    }

    /// Lines containing every one of `needles`.
    pub(crate) fn count_log(&self, needles: &[&str]) -> usize {
        self.log_lines()
            .iter()
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .count()
    }

    /// Sends a signal by name (`TERM`, `INT`, ...) with the shell's `kill`.
    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -{name} {}", self.pid()))
            .status()
            .expect("run sh -c kill");
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }

    /// Waits for the process to exit; `None` on timeout.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader thread drain the pipe.
                let guard = self.log.closed.lock().unwrap();
                let _ = self
                    .log
                    .changed
                    .wait_timeout_while(guard, Duration::from_secs(2), |closed| !*closed)
                    .unwrap();
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// True while the process runs.
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Panics (with the log) unless the process still runs.
    pub(crate) fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            std::thread::sleep(Duration::from_millis(100));
            panic!("tandem died ({status}):\n{}", self.log_text());
        }
    }
}

impl Drop for Tandem {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- tandem log ----\n{}\n--------------------",
                self.log_text()
            );
        }
    }
}

/// What a short run of the binary gave.
#[derive(Debug)]
pub(crate) struct Output {
    /// Exit code (`None`: killed by a signal or by the timeout).
    pub(crate) code: Option<i32>,
    /// Standard output.
    pub(crate) stdout: String,
    /// Standard error.
    pub(crate) stderr: String,
}

/// Runs tandem with `args` (and no inherited config from the environment)
/// and waits up to 10 s for it to exit.
pub(crate) fn run_tandem(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().expect("temporary directory");
    let out = dir.path().join("stdout");
    let err = dir.path().join("stderr");
    let mut child = Command::new(TANDEM)
        .args(args)
        .env_remove("TANDEM_CONFIG")
        .env_remove("TANDEM_LOG")
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {TANDEM}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        code,
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
    }
}

// ---------------------------------------------------------------------------
// SIP messages, as raw text
// ---------------------------------------------------------------------------

/// A SIP message as received: start line, headers in order, body.
#[derive(Debug, Clone)]
pub(crate) struct Msg {
    /// The start line.
    pub(crate) start: String,
    /// Headers as `(name, value)`, in order.
    pub(crate) headers: Vec<(String, String)>,
    /// The body.
    pub(crate) body: Vec<u8>,
    /// The octets received.
    pub(crate) raw: Vec<u8>,
}

impl Msg {
    /// Parses a whole message (one datagram or one framed stream message).
    pub(crate) fn parse(raw: &[u8]) -> Option<Msg> {
        let end = find(raw, b"\r\n\r\n")?;
        let head = std::str::from_utf8(&raw[..end]).ok()?;
        let mut lines = head.split("\r\n");
        let start = lines.next()?.to_string();
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                let last = headers.last_mut()?;
                last.1.push(' ');
                last.1.push_str(line.trim());
                continue;
            }
            let (name, value) = line.split_once(':')?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        Some(Msg {
            start,
            headers,
            body: raw[end + 4..].to_vec(),
            raw: raw.to_vec(),
        })
    }

    /// The status code of a response.
    pub(crate) fn code(&self) -> Option<u16> {
        let rest = self.start.strip_prefix("SIP/2.0 ")?;
        rest.get(..3)?.parse().ok()
    }

    /// The status code, panicking on a request.
    pub(crate) fn status(&self) -> u16 {
        self.code()
            .unwrap_or_else(|| panic!("not a response: {}", self.text()))
    }

    /// The reason phrase of a response.
    pub(crate) fn reason(&self) -> &str {
        self.start.get(12..).unwrap_or("")
    }

    /// The first value of a header (case-insensitive name).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header.
    pub(crate) fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A header that must be there.
    pub(crate) fn must(&self, name: &str) -> &str {
        self.header(name)
            .unwrap_or_else(|| panic!("no {name} header in:\n{}", self.text()))
    }

    /// The `tag` parameter of To.
    pub(crate) fn to_tag(&self) -> Option<String> {
        param(self.header("To")?, "tag")
    }

    /// The message as text (lossy), for failure messages.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

/// A `;name=value` parameter of a header value (`Some("")` for a flag).
pub(crate) fn param(value: &str, name: &str) -> Option<String> {
    // Skip the URI part in <...> so that URI parameters are not matched.
    let after = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    after.split(';').skip(1).find_map(|p| {
        let (n, v) = p.split_once('=').unwrap_or((p, ""));
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A request to send, built as text. Content-Length is added when written.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    /// Method.
    pub(crate) method: String,
    /// Request-URI.
    pub(crate) uri: String,
    /// Headers in order (no Content-Length).
    pub(crate) headers: Vec<(String, String)>,
    /// Body.
    pub(crate) body: Vec<u8>,
    /// Omit Content-Length entirely.
    pub(crate) no_content_length: bool,
}

impl Req {
    /// A fresh out-of-dialog request from `local` over `transport` (`UDP`
    /// or `TCP`) with a new branch (and `rport`), From tag and Call-ID.
    pub(crate) fn new(method: &str, transport: &str, local: SocketAddr) -> Req {
        let host = match local {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        };
        Req {
            method: method.to_string(),
            uri: "sip:service@tandem.invalid".to_string(),
            headers: vec![
                (
                    "Via".into(),
                    format!(
                        "SIP/2.0/{transport} {host}:{};branch={};rport",
                        local.port(),
                        unique("z9hG4bK")
                    ),
                ),
                ("Max-Forwards".into(), "70".into()),
                (
                    "From".into(),
                    format!("<sip:e2e@{host}>;tag={}", unique("f")),
                ),
                ("To".into(), "<sip:service@tandem.invalid>".into()),
                ("Call-ID".into(), unique("e2e-")),
                ("CSeq".into(), format!("1 {method}")),
                (
                    "Contact".into(),
                    format!("<sip:e2e@{host}:{}>", local.port()),
                ),
            ],
            body: Vec::new(),
            no_content_length: false,
        }
    }

    /// Sets a header (replacing the first of that name, or appending).
    pub(crate) fn set(mut self, name: &str, value: &str) -> Req {
        match self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(h) => h.1 = value.to_string(),
            None => self.headers.push((name.to_string(), value.to_string())),
        }
        self
    }

    /// Removes every header of that name.
    pub(crate) fn remove(mut self, name: &str) -> Req {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// Sets the Request-URI.
    pub(crate) fn uri(mut self, uri: &str) -> Req {
        self.uri = uri.to_string();
        self
    }

    /// Sets a body with its Content-Type.
    pub(crate) fn body(self, content_type: &str, body: &str) -> Req {
        let mut r = self.set("Content-Type", content_type);
        r.body = body.as_bytes().to_vec();
        r
    }

    /// A small SDP offer.
    pub(crate) fn sdp(self) -> Req {
        self.body("application/sdp", SDP)
    }

    /// The first value of a header.
    pub(crate) fn get(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("request has no {name}"))
    }

    /// The branch of the top Via.
    pub(crate) fn branch(&self) -> String {
        param(self.get("Via"), "branch").expect("Via has a branch")
    }

    /// The wire form.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} SIP/2.0\r\n", self.method, self.uri);
        for (n, v) in &self.headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        if !self.no_content_length {
            out.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }

    /// The ACK for a non-2xx final response to this INVITE (RFC 3261
    /// §17.1.1.3): same Request-URI, top Via (branch), From, Call-ID and
    /// CSeq number; To with the response's tag.
    pub(crate) fn ack_for(&self, response: &Msg) -> Req {
        let seq = self
            .get("CSeq")
            .split_whitespace()
            .next()
            .unwrap_or("1")
            .to_string();
        let mut ack = Req {
            method: "ACK".into(),
            uri: self.uri.clone(),
            headers: Vec::new(),
            body: Vec::new(),
            no_content_length: false,
        };
        for name in ["Via", "Max-Forwards", "From"] {
            ack.headers.push((name.into(), self.get(name).into()));
        }
        ack.headers.push(("To".into(), response.must("To").into()));
        ack.headers
            .push(("Call-ID".into(), self.get("Call-ID").into()));
        ack.headers.push(("CSeq".into(), format!("{seq} ACK")));
        ack
    }

    /// The CANCEL for this request (RFC 3261 §9.1): same Request-URI, top
    /// Via, From, To, Call-ID and CSeq number.
    pub(crate) fn cancel(&self) -> Req {
        let seq = self
            .get("CSeq")
            .split_whitespace()
            .next()
            .unwrap_or("1")
            .to_string();
        let mut c = Req {
            method: "CANCEL".into(),
            uri: self.uri.clone(),
            headers: Vec::new(),
            body: Vec::new(),
            no_content_length: false,
        };
        for name in ["Via", "Max-Forwards", "From", "To", "Call-ID"] {
            c.headers.push((name.into(), self.get(name).into()));
        }
        c.headers.push(("CSeq".into(), format!("{seq} CANCEL")));
        c
    }

    /// Asserts that `resp` answers this request: same Call-ID, CSeq, From
    /// and top Via branch (RFC 3261 §8.2.6.2).
    pub(crate) fn assert_answered_by(&self, resp: &Msg) {
        let text = resp.text();
        assert_eq!(
            resp.header("Call-ID"),
            Some(self.get("Call-ID")),
            "Call-ID in:\n{text}"
        );
        assert_eq!(
            resp.header("CSeq"),
            Some(self.get("CSeq")),
            "CSeq in:\n{text}"
        );
        assert_eq!(
            resp.header("From"),
            Some(self.get("From")),
            "From in:\n{text}"
        );
        let via = resp
            .header("Via")
            .unwrap_or_else(|| panic!("no Via in:\n{text}"));
        assert_eq!(
            param(via, "branch"),
            Some(self.branch()),
            "branch in:\n{text}"
        );
    }
}

/// An SDP offer for INVITEs.
pub(crate) const SDP: &str = "v=0\r\n\
o=e2e 1 1 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 9 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

// ---------------------------------------------------------------------------
// Raw sockets
// ---------------------------------------------------------------------------

/// A UDP client socket on the loopback of `server`'s family.
pub(crate) struct UdpPeer {
    /// The socket.
    pub(crate) sock: UdpSocket,
    /// Its address.
    pub(crate) local: SocketAddr,
    /// Where requests go.
    pub(crate) server: SocketAddr,
}

impl UdpPeer {
    /// A new socket talking to `server`.
    pub(crate) fn new(server: SocketAddr) -> UdpPeer {
        let bind = if server.is_ipv4() {
            "127.0.0.1:0"
        } else {
            "[::1]:0"
        };
        let sock = UdpSocket::bind(bind).expect("bind UDP");
        let local = sock.local_addr().expect("local address");
        UdpPeer {
            sock,
            local,
            server,
        }
    }

    /// A request from this socket.
    pub(crate) fn req(&self, method: &str) -> Req {
        Req::new(method, "UDP", self.local)
    }

    /// Sends raw octets to the server.
    pub(crate) fn send(&self, data: &[u8]) {
        self.sock.send_to(data, self.server).expect("send datagram");
    }

    /// Sends a request.
    pub(crate) fn send_req(&self, req: &Req) {
        self.send(&req.to_bytes());
    }

    /// The next datagram (from anyone) within `timeout`.
    pub(crate) fn recv_raw(&self, timeout: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65_536];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            if left.is_zero() {
                return None;
            }
            self.sock
                .set_read_timeout(Some(left))
                .expect("read timeout");
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => return Some((buf[..n].to_vec(), from)),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None;
                }
                // ICMP errors of earlier sends: keep listening.
                Err(_) => continue,
            }
        }
    }

    /// The next SIP message within `timeout`; it must come from the server.
    pub(crate) fn recv(&self, timeout: Duration) -> Option<Msg> {
        let (data, from) = self.recv_raw(timeout)?;
        assert_eq!(from, self.server, "datagram from an unexpected address");
        Some(
            Msg::parse(&data).unwrap_or_else(|| {
                panic!("unparsable datagram: {:?}", String::from_utf8_lossy(&data))
            }),
        )
    }

    /// The next message, which must arrive within [`WAIT`].
    pub(crate) fn expect(&self) -> Msg {
        self.recv(WAIT).expect("no response within the timeout")
    }

    /// The next final (non-1xx) response; provisional ones are skipped.
    pub(crate) fn expect_final(&self) -> Msg {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_default();
            let m = self
                .recv(left)
                .expect("no final response within the timeout");
            if m.code().is_some_and(|c| c >= 200) {
                return m;
            }
        }
    }

    /// Sends `req` and returns its final response (checked to answer it).
    pub(crate) fn transact(&self, req: &Req) -> Msg {
        self.send_req(req);
        let resp = self.expect_final();
        req.assert_answered_by(&resp);
        resp
    }

    /// Asserts that nothing arrives within `timeout`.
    pub(crate) fn expect_silence(&self, timeout: Duration) {
        if let Some((data, from)) = self.recv_raw(timeout) {
            panic!(
                "expected nothing, got from {from}:\n{}",
                String::from_utf8_lossy(&data)
            );
        }
    }
}

/// One TCP connection to tandem, with a Content-Length framer for what
/// comes back.
pub(crate) struct TcpPeer {
    /// The stream.
    pub(crate) stream: TcpStream,
    /// Its local address.
    pub(crate) local: SocketAddr,
    buf: Vec<u8>,
}

/// What a read on a TCP peer gave.
#[derive(Debug)]
pub(crate) enum TcpRead {
    /// A complete message.
    Msg(Msg),
    /// The server closed the connection (EOF or reset).
    Closed,
    /// Nothing within the timeout.
    Timeout,
}

impl TcpPeer {
    /// Wraps a connected stream (one accepted from a listener, say).
    pub(crate) fn from_stream(stream: TcpStream) -> TcpPeer {
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(WAIT));
        let local = stream.local_addr().expect("local address");
        TcpPeer {
            stream,
            local,
            buf: Vec::new(),
        }
    }

    /// Connects to `server`.
    pub(crate) fn connect(server: SocketAddr) -> TcpPeer {
        let stream = TcpStream::connect_timeout(&server, WAIT).expect("TCP connect");
        stream.set_nodelay(true).expect("nodelay");
        // A server that stops reading must not hang a test in write_all.
        stream.set_write_timeout(Some(WAIT)).expect("write timeout");
        let local = stream.local_addr().expect("local address");
        TcpPeer {
            stream,
            local,
            buf: Vec::new(),
        }
    }

    /// A request from this connection.
    pub(crate) fn req(&self, method: &str) -> Req {
        Req::new(method, "TCP", self.local)
    }

    /// Writes raw octets.
    pub(crate) fn send(&mut self, data: &[u8]) {
        self.stream.write_all(data).expect("TCP write");
    }

    /// Writes a request.
    pub(crate) fn send_req(&mut self, req: &Req) {
        let bytes = req.to_bytes();
        self.send(&bytes);
    }

    /// Reads more octets; `Ok(false)` on EOF.
    fn fill(&mut self, deadline: Instant) -> Result<bool, TcpRead> {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(TcpRead::Timeout)?;
        self.stream
            .set_read_timeout(Some(left))
            .expect("read timeout");
        let mut chunk = [0u8; 16_384];
        match self.stream.read(&mut chunk) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Err(TcpRead::Timeout)
            }
            Err(_) => Ok(false),
        }
    }

    /// Raw octets within `timeout` (at least one), or `None`.
    pub(crate) fn read_raw(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        if self.buf.is_empty() {
            let deadline = Instant::now() + timeout;
            match self.fill(deadline) {
                Ok(true) => {}
                _ => return None,
            }
        }
        Some(std::mem::take(&mut self.buf))
    }

    /// The next framed message, EOF or timeout.
    pub(crate) fn read(&mut self, timeout: Duration) -> TcpRead {
        let deadline = Instant::now() + timeout;
        loop {
            // Leading CRLFs are keep-alive pongs; a message starts after them.
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let start = self.buf.iter().position(|&b| b != b'\r' && b != b'\n');
                if start.is_some_and(|s| s < end) {
                    let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                    let len = head
                        .split("\r\n")
                        .filter_map(|l| l.split_once(':'))
                        .find(|(n, _)| {
                            n.trim().eq_ignore_ascii_case("content-length")
                                || n.trim().eq_ignore_ascii_case("l")
                        })
                        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    let total = end + 4 + len;
                    if self.buf.len() >= total {
                        let s = start.unwrap_or(0);
                        let raw: Vec<u8> = self.buf.drain(..total).skip(s).collect();
                        let msg = Msg::parse(&raw).unwrap_or_else(|| {
                            panic!(
                                "unparsable TCP message: {:?}",
                                String::from_utf8_lossy(&raw)
                            )
                        });
                        return TcpRead::Msg(msg);
                    }
                }
            }
            match self.fill(deadline) {
                Ok(true) => {}
                Ok(false) => return TcpRead::Closed,
                Err(t) => return t,
            }
        }
    }

    /// The next message, which must arrive within [`WAIT`].
    pub(crate) fn expect(&mut self) -> Msg {
        match self.read(WAIT) {
            TcpRead::Msg(m) => m,
            other => panic!("expected a message on TCP, got {other:?}"),
        }
    }

    /// The next final response; provisional ones are skipped.
    pub(crate) fn expect_final(&mut self) -> Msg {
        loop {
            let m = self.expect();
            if m.code().is_some_and(|c| c >= 200) {
                return m;
            }
        }
    }

    /// Sends `req` and returns its final response (checked to answer it).
    pub(crate) fn transact(&mut self, req: &Req) -> Msg {
        self.send_req(req);
        let resp = self.expect_final();
        req.assert_answered_by(&resp);
        resp
    }

    /// Waits until the server closes the connection; returns how long it
    /// took, or `None` if it stays open for `timeout`. Anything received
    /// meanwhile is returned too.
    pub(crate) fn wait_closed(&mut self, timeout: Duration) -> (Option<Duration>, Vec<u8>) {
        let start = Instant::now();
        let deadline = start + timeout;
        loop {
            match self.fill(deadline) {
                Ok(true) => {}
                Ok(false) => return (Some(start.elapsed()), std::mem::take(&mut self.buf)),
                Err(_) => return (None, std::mem::take(&mut self.buf)),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// SIPp
// ---------------------------------------------------------------------------

/// Transport for a SIPp run (and for the test UA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SippTransport {
    /// `-t u1`.
    Udp,
    /// `-t t1`: one TCP connection for every call.
    Tcp,
}

impl SippTransport {
    /// The Via token: `UDP` or `TCP`.
    pub(crate) fn token(self) -> &'static str {
        match self {
            SippTransport::Udp => "UDP",
            SippTransport::Tcp => "TCP",
        }
    }

    /// The URI parameter that selects this transport (empty for UDP).
    pub(crate) fn uri_param(self) -> &'static str {
        match self {
            SippTransport::Udp => "",
            SippTransport::Tcp => ";transport=tcp",
        }
    }
}

/// A port free on 127.0.0.1 for both UDP and TCP right now.
pub(crate) fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
        let port = udp.local_addr().expect("local address").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP on 127.0.0.1");
}

/// True when some socket is bound to `port` for `transport` (a listening
/// socket for TCP), read from /proc/net so that probing never takes the
/// port away from the process that is about to bind it.
pub(crate) fn port_bound(port: u16, transport: SippTransport) -> bool {
    let (file, listen_only) = match transport {
        SippTransport::Udp => ("/proc/net/udp", false),
        SippTransport::Tcp => ("/proc/net/tcp", true),
    };
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines().skip(1).any(|l| {
        let mut f = l.split_whitespace();
        let local = f.nth(1).unwrap_or("");
        let state = f.nth(1).unwrap_or("");
        let p = local
            .rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
        p == Some(port) && (!listen_only || state == "0A")
    })
}

fn sipp_binary() -> PathBuf {
    let candidates = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("sipp"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    std::iter::once(PathBuf::from("/usr/bin/sipp"))
        .chain(candidates)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "SIPp is not installed: the end-to-end tests need it \
                 (Debian/Ubuntu: `apt-get install -y sip-tester`)"
            )
        })
}

/// A finished SIPp run.
pub(crate) struct SippRun {
    /// Exit code (0: every call succeeded).
    pub(crate) code: Option<i32>,
    /// The `-trace_err` file.
    pub(crate) errors: String,
    /// The `-trace_msg` file.
    pub(crate) messages: String,
    /// The `-trace_logs` file (scenario `<log>` actions).
    pub(crate) logs: String,
    /// SIPp's screen output.
    pub(crate) screen: String,
    /// What this run was (for failure messages).
    pub(crate) name: String,
}

/// One message of a SIPp `-trace_msg` file.
#[derive(Debug, Clone)]
pub(crate) struct Traced {
    /// True for a message SIPp sent, false for one it received.
    pub(crate) sent: bool,
    /// The message.
    pub(crate) msg: Msg,
}

impl SippRun {
    /// Whether SIPp said it could not bind one of its ports.
    fn could_not_bind(&self) -> bool {
        self.screen.contains("bind") || self.errors.contains("bind")
    }

    /// Panics with everything SIPp wrote unless every call succeeded.
    pub(crate) fn assert_success(&self) {
        if self.code != Some(0) {
            panic!(
                "SIPp {} failed (exit code {:?}).\n{}",
                self.name,
                self.code,
                self.report()
            );
        }
    }

    /// Everything SIPp wrote, shortened, for failure messages.
    pub(crate) fn report(&self) -> String {
        format!(
            "---- {name}: error log ----\n{}\n---- {name}: screen (tail) ----\n{}\n---- {name}: messages (tail) ----\n{}",
            tail(&self.errors, 3000),
            tail(&self.screen, 3000),
            tail(&self.messages, 6000),
            name = self.name,
        )
    }

    /// Every message of the `-trace_msg` file, in order.
    pub(crate) fn traced(&self) -> Vec<Traced> {
        parse_trace(&self.messages)
    }

    /// The messages SIPp received.
    pub(crate) fn received(&self) -> Vec<Msg> {
        self.traced()
            .into_iter()
            .filter(|t| !t.sent)
            .map(|t| t.msg)
            .collect()
    }

    /// The messages SIPp sent.
    pub(crate) fn sent(&self) -> Vec<Msg> {
        self.traced()
            .into_iter()
            .filter(|t| t.sent)
            .map(|t| t.msg)
            .collect()
    }

    /// Start lines of the received messages (`INVITE`, `SIP/2.0 200`, ...),
    /// shortened to the method or the code and reason.
    pub(crate) fn received_starts(&self) -> Vec<String> {
        self.received().iter().map(short_start).collect()
    }
}

/// `INVITE` for a request, `200 OK` for a response.
pub(crate) fn short_start(m: &Msg) -> String {
    match m.start.strip_prefix("SIP/2.0 ") {
        Some(rest) => rest.to_string(),
        None => m.start.split(' ').next().unwrap_or("").to_string(),
    }
}

/// Splits a SIPp message trace into messages. Blocks start with a line of
/// dashes, then `UDP message sent (N bytes):` or `TCP message received [N]
/// bytes :`, an empty line and the message.
pub(crate) fn parse_trace(text: &str) -> Vec<Traced> {
    let mut out = Vec::new();
    for block in text.split("-----------------------------------------------") {
        let mut lines = block.split('\n');
        // The rest of the dashes line (a timestamp).
        let _ = lines.next();
        let Some(kind) = lines.next() else { continue };
        let sent = kind.contains("message sent");
        if !sent && !kind.contains("message received") {
            continue;
        }
        let rest: Vec<&str> = lines.map(|l| l.trim_end_matches('\r')).collect();
        // Skip the empty line(s) before the start line.
        let start = rest.iter().position(|l| !l.trim().is_empty());
        let Some(start) = start else { continue };
        let mut body = rest[start..].join("\r\n");
        // The headers end at the first empty line; make sure it is there.
        if !body.contains("\r\n\r\n") {
            body.push_str("\r\n\r\n");
        }
        let mut raw = body.into_bytes();
        // The trace adds blank lines after the body: trim them.
        while raw.ends_with(b"\r\n\r\n\r\n") {
            raw.truncate(raw.len() - 2);
        }
        if let Some(msg) = Msg::parse(&raw) {
            out.push(Traced { sent, msg });
        }
    }
    out
}

fn tail(s: &str, n: usize) -> &str {
    let mut i = s.len().saturating_sub(n);
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

/// Which scenario SIPp runs.
#[derive(Debug, Clone)]
enum Scenario {
    /// A file in `tests/sipp/`, with `{{NAME}}` placeholders replaced.
    File(String),
    /// A built-in scenario (`-sn uac`).
    Builtin(String),
}

/// A SIPp command, built step by step, then run to its end ([`Sipp::run`],
/// for clients) or started in the background ([`Sipp::spawn`], for
/// servers that must listen before tandem calls them).
#[derive(Debug, Clone)]
pub(crate) struct Sipp {
    scenario: Scenario,
    vars: Vec<(String, String)>,
    target: Option<SocketAddr>,
    transport: SippTransport,
    calls: u32,
    rate: u32,
    limit: u32,
    extra: Vec<String>,
    timeout: Duration,
    trace_msg: bool,
}

impl Sipp {
    fn new(scenario: Scenario, target: Option<SocketAddr>) -> Sipp {
        Sipp {
            scenario,
            vars: Vec::new(),
            target,
            transport: SippTransport::Udp,
            calls: 1,
            rate: 50,
            limit: 10,
            extra: Vec::new(),
            timeout: Duration::from_secs(30),
            trace_msg: true,
        }
    }

    /// A client running `tests/sipp/<name>` against `target`.
    pub(crate) fn client(name: &str, target: SocketAddr) -> Sipp {
        Sipp::new(Scenario::File(name.to_string()), Some(target))
    }

    /// A server running `tests/sipp/<name>`.
    pub(crate) fn server(name: &str) -> Sipp {
        Sipp::new(Scenario::File(name.to_string()), None)
    }

    /// A client running a built-in scenario (`uac`, ...).
    pub(crate) fn builtin_client(name: &str, target: SocketAddr) -> Sipp {
        Sipp::new(Scenario::Builtin(name.to_string()), Some(target))
    }

    /// A server running a built-in scenario (`uas`, ...).
    pub(crate) fn builtin_server(name: &str) -> Sipp {
        Sipp::new(Scenario::Builtin(name.to_string()), None)
    }

    /// Replaces `{{name}}` in the scenario file by `value`.
    pub(crate) fn var(mut self, name: &str, value: &str) -> Sipp {
        self.vars.push((name.to_string(), value.to_string()));
        self
    }

    /// UDP (default) or TCP.
    pub(crate) fn transport(mut self, t: SippTransport) -> Sipp {
        self.transport = t;
        self
    }

    /// Stop after this many calls (`-m`; default 1).
    pub(crate) fn calls(mut self, n: u32) -> Sipp {
        self.calls = n;
        self
    }

    /// Calls per second (`-r`; default 50).
    pub(crate) fn rate(mut self, r: u32) -> Sipp {
        self.rate = r;
        self
    }

    /// Most calls at once (`-l`; default 10).
    pub(crate) fn limit(mut self, l: u32) -> Sipp {
        self.limit = l;
        self
    }

    /// Extra command-line arguments.
    pub(crate) fn args(mut self, args: &[&str]) -> Sipp {
        self.extra.extend(args.iter().map(|s| s.to_string()));
        self
    }

    /// SIPp's global timeout (`-timeout`, default 30 s): a run still going
    /// then fails.
    pub(crate) fn timeout(mut self, t: Duration) -> Sipp {
        self.timeout = t;
        self
    }

    /// Turns the message trace off (long runs).
    pub(crate) fn no_trace(mut self) -> Sipp {
        self.trace_msg = false;
        self
    }

    fn name(&self) -> String {
        let role = if self.target.is_some() {
            "client"
        } else {
            "server"
        };
        match &self.scenario {
            Scenario::File(f) => format!("{role} {f}"),
            Scenario::Builtin(b) => format!("{role} -sn {b}"),
        }
    }

    fn command(&self, dir: &Path, port: u16) -> Command {
        let mut cmd = Command::new(sipp_binary());
        cmd.current_dir(dir);
        if let Some(target) = self.target {
            cmd.arg(target.to_string());
        }
        match &self.scenario {
            Scenario::File(name) => {
                let mut text = std::fs::read_to_string(scenario(name))
                    .unwrap_or_else(|e| panic!("read scenario {name}: {e}"));
                for (k, v) in &self.vars {
                    text = text.replace(&format!("{{{{{k}}}}}"), v);
                }
                assert!(
                    !text.contains("{{"),
                    "scenario {name} has a placeholder left: {:?}",
                    self.vars
                );
                let path = dir.join(name);
                std::fs::write(&path, text).expect("write scenario");
                cmd.arg("-sf").arg(path);
            }
            Scenario::Builtin(name) => {
                cmd.args(["-sn", name]);
            }
        }
        let timeout = format!("{}s", self.timeout.as_secs().max(1));
        cmd.args(["-i", "127.0.0.1"])
            .args(["-p", &port.to_string()])
            // SIPp binds media (-mp) and control (-cp) ports of its own, and
            // moves to the next ones when those are taken.
            .args(["-mp", &free_port().to_string()])
            .args(["-cp", &free_port().to_string()])
            .args([
                "-t",
                if self.transport == SippTransport::Tcp {
                    "t1"
                } else {
                    "u1"
                },
            ])
            .args(["-m", &self.calls.to_string()])
            .args(["-r", &self.rate.to_string()])
            .args(["-l", &self.limit.to_string()])
            .args(["-nostdin", "-timeout", &timeout, "-timeout_error"])
            .args(["-trace_err", "-error_file"])
            .arg(dir.join("errors.log"))
            .args(["-trace_logs", "-log_file"])
            .arg(dir.join("logs.log"));
        if self.trace_msg {
            cmd.args(["-trace_msg", "-message_file"])
                .arg(dir.join("messages.log"));
        }
        cmd.args(&self.extra);
        let screen = std::fs::File::create(dir.join("screen.txt")).expect("screen file");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(screen.try_clone().expect("clone file")))
            .stderr(Stdio::from(screen));
        cmd
    }

    /// Starts SIPp in the background on a free port. A server is returned
    /// once its port is bound (a port taken meanwhile by someone else makes
    /// SIPp exit; it is then started again on another port).
    pub(crate) fn spawn(self) -> SippProc {
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("temporary directory");
            let port = free_port();
            let mut child = self
                .command(dir.path(), port)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run sipp: {e}"));
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut bound = false;
            while Instant::now() < deadline {
                if port_bound(port, self.transport) {
                    bound = true;
                    break;
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let mut proc = SippProc {
                child: Some(child),
                dir,
                port,
                transport: self.transport,
                deadline: Instant::now() + self.timeout + Duration::from_secs(5),
                name: self.name(),
            };
            if bound {
                return proc;
            }
            let run = proc.wait();
            if !run.could_not_bind() {
                panic!("SIPp {} did not start.\n{}", run.name, run.report());
            }
        }
        panic!("SIPp could not bind a port in 5 attempts");
    }

    /// Runs SIPp to its end (its own timeout, plus a margin, bounds it).
    pub(crate) fn run(self) -> SippRun {
        // A port picked this way may be taken again before SIPp binds it;
        // SIPp then fails to bind (exit code 254 or 255 with a bind error):
        // retry.
        for attempt in 0.. {
            let dir = tempfile::tempdir().expect("temporary directory");
            let port = free_port();
            let child = self
                .command(dir.path(), port)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run sipp: {e}"));
            let mut proc = SippProc {
                child: Some(child),
                dir,
                port,
                transport: self.transport,
                deadline: Instant::now() + self.timeout + Duration::from_secs(10),
                name: self.name(),
            };
            let run = proc.wait();
            // No SIP message sent or received (the message log may still
            // hold SIPp's own notices, such as "Problem EAGAIN on socket").
            let bind_failed =
                run.code != Some(0) && run.could_not_bind() && !run.messages.contains("SIP/2.0");
            if bind_failed && attempt < 3 {
                continue;
            }
            return run;
        }
        unreachable!()
    }
}

/// A SIPp process running in the background. Killed on drop.
pub(crate) struct SippProc {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// The SIP port it listens on.
    pub(crate) port: u16,
    transport: SippTransport,
    deadline: Instant,
    name: String,
}

impl SippProc {
    /// Its SIP address.
    pub(crate) fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// A route target reaching it: `sip:${user}@127.0.0.1:PORT` (with
    /// `;transport=tcp` over TCP).
    pub(crate) fn target(&self) -> String {
        format!(
            "sip:${{user}}@127.0.0.1:{}{}",
            self.port,
            self.transport.uri_param()
        )
    }

    /// Kills the process at once (a peer that vanishes).
    pub(crate) fn kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// True while SIPp runs.
    pub(crate) fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The message trace so far.
    pub(crate) fn messages(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("messages.log")).unwrap_or_default()
    }

    /// What the scenario's `<log>` actions wrote so far.
    pub(crate) fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs.log")).unwrap_or_default()
    }

    /// Waits until the scenario logged `needle` (panics with the trace
    /// after `timeout`).
    pub(crate) fn wait_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.logs().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "SIPp never logged `{needle}`; messages:\n{}",
                self.messages()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until SIPp exits (killing it at its deadline) and collects
    /// what it wrote.
    pub(crate) fn wait(&mut self) -> SippRun {
        let mut code = None;
        if let Some(mut child) = self.child.take() {
            let status = loop {
                if let Some(s) = child.try_wait().expect("wait for sipp") {
                    break Some(s);
                }
                if Instant::now() > self.deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            code = status.and_then(|s| s.code());
        }
        let read = |n: &str| std::fs::read_to_string(self.dir.path().join(n)).unwrap_or_default();
        SippRun {
            code,
            errors: read("errors.log"),
            messages: read("messages.log"),
            logs: read("logs.log"),
            screen: read("screen.txt"),
            name: self.name.clone(),
        }
    }
}

impl Drop for SippProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs the scenario `name` from `tests/sipp/` against `target` until `calls`
/// calls are done (or 30 s pass, which counts as an error).
pub(crate) fn sipp(
    name: &str,
    target: SocketAddr,
    transport: SippTransport,
    calls: u32,
    extra: &[&str],
) -> SippRun {
    Sipp::client(name, target)
        .transport(transport)
        .calls(calls)
        .args(extra)
        .run()
}

// ---------------------------------------------------------------------------
// Configurations for calls, and the status line
// ---------------------------------------------------------------------------

/// A small media port range, `"MIN-MAX"` with `n` ports, outside the
/// kernel's ephemeral port range (above it when there is room, else between
/// 30000 and its start), and away from 10000-30000, where tandem's default
/// range and the media crate's own tests live. Ranges handed out in one
/// test process never overlap (tests run in parallel, and a tandem may keep
/// its ports bound); the first one starts at a random place, so other
/// processes are unlikely to meet them. A port someone else holds anyway is
/// skipped by the pool: an overlap costs ports, not calls.
pub(crate) fn media_ports(n: u16) -> String {
    static CURSOR: Mutex<Option<u64>> = Mutex::new(None);
    let (lo, hi) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse::<u64>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32_768, 60_999));
    let n = u64::from(n.max(2)).next_multiple_of(2);
    let (start, end) = if hi + 1 + 2_000 <= 65_535 {
        (hi + 1, 65_535)
    } else {
        (30_000, lo.max(32_000))
    };
    let start = start.next_multiple_of(2);
    let len = end - start;
    assert!(n < len, "no room for {n} media ports");
    let mut cursor = CURSOR.lock().unwrap();
    let pos = cursor.get_or_insert_with(|| {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::from(d.subsec_nanos()) ^ d.as_secs())
            .unwrap_or(0)
            ^ (u64::from(std::process::id()) << 7);
        ((seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) % len) & !1
    });
    if *pos + n > len {
        *pos = 0;
    }
    let min = start + *pos;
    *pos += n;
    format!("{min}-{}", min + n - 1)
}

/// A tandem configuration for call tests, written as TOML.
#[derive(Debug, Clone)]
pub(crate) struct CallConfig {
    routes: Vec<String>,
    media: Vec<String>,
    limits: Vec<String>,
    sip: Vec<String>,
    dialplan: Vec<String>,
    wasm: Vec<String>,
    plugins: Vec<String>,
    status_s: u64,
}

impl CallConfig {
    /// Anchored media on 127.0.0.1 with a small random port range, the
    /// status line every second, default limits and timers.
    pub(crate) fn new() -> CallConfig {
        CallConfig {
            routes: Vec::new(),
            media: vec![
                "address = \"127.0.0.1\"".into(),
                format!("ports = \"{}\"", media_ports(100)),
            ],
            limits: Vec::new(),
            sip: Vec::new(),
            dialplan: Vec::new(),
            wasm: Vec::new(),
            plugins: Vec::new(),
            status_s: 1,
        }
    }

    /// A `[dialplan]` line (`plugins = ["lcr"]`, `watch = false`).
    pub(crate) fn dialplan_line(mut self, line: &str) -> CallConfig {
        self.dialplan.push(line.to_string());
        self
    }

    /// A `[wasm]` line (`cache_dir = "…"`).
    pub(crate) fn wasm(mut self, line: &str) -> CallConfig {
        self.wasm.push(line.to_string());
        self
    }

    /// A `[[plugins]]` entry: `lines` for the entry (`cpu_ms = 20`),
    /// `settings` for its `[plugins.settings]`.
    pub(crate) fn plugin(
        mut self,
        name: &str,
        path: &Path,
        lines: &[&str],
        settings: &[(&str, &str)],
    ) -> CallConfig {
        let mut p = format!(
            "[[plugins]]\nname = {name:?}\npath = {:?}\n",
            path.display().to_string()
        );
        for l in lines {
            p.push_str(l);
            p.push('\n');
        }
        p.push_str("[plugins.settings]\n");
        for (k, v) in settings {
            p.push_str(&format!("{k} = {v:?}\n"));
        }
        self.plugins.push(p);
        self
    }

    /// The Lua dial plan at `script`, with extra `[dialplan]` lines
    /// (`watch = false`, `instructions = 100000`).
    pub(crate) fn dialplan(mut self, script: &Path, extra: &[&str]) -> CallConfig {
        self.dialplan
            .push(format!("script = {:?}", script.display().to_string()));
        self.dialplan.extend(extra.iter().map(|l| l.to_string()));
        self
    }

    /// A route: `mode` is `serial` or `parallel`; `extra` adds lines
    /// (`media = "direct"`).
    pub(crate) fn route_full(
        mut self,
        prefix: &str,
        targets: &[String],
        mode: &str,
        timeout_s: u64,
        extra: &[&str],
    ) -> CallConfig {
        let targets: Vec<String> = targets.iter().map(|t| format!("{t:?}")).collect();
        let mut r = format!(
            "[[routes]]\nprefix = {prefix:?}\ntargets = [{}]\nmode = {mode:?}\ntimeout_s = {timeout_s}\n",
            targets.join(", ")
        );
        for e in extra {
            r.push_str(e);
            r.push('\n');
        }
        self.routes.push(r);
        self
    }

    /// A serial route to `targets` with a 10 s ring time.
    pub(crate) fn route(self, prefix: &str, targets: &[String]) -> CallConfig {
        self.route_full(prefix, targets, "serial", 10, &[])
    }

    /// A `[media]` line (`mode = "direct"`, `ports = "..."`).
    pub(crate) fn media(mut self, line: &str) -> CallConfig {
        let key = line.split('=').next().unwrap_or("").trim().to_string();
        self.media
            .retain(|l| l.split('=').next().unwrap_or("").trim() != key);
        self.media.push(line.to_string());
        self
    }

    /// A `[limits]` line.
    pub(crate) fn limits(mut self, line: &str) -> CallConfig {
        self.limits.push(line.to_string());
        self
    }

    /// A `[sip]` line (`t1_ms = 50`).
    pub(crate) fn sip(mut self, line: &str) -> CallConfig {
        self.sip.push(line.to_string());
        self
    }

    /// The TOML text.
    pub(crate) fn toml(&self) -> String {
        let mut out = String::new();
        for r in &self.routes {
            out.push_str(r);
            out.push('\n');
        }
        for (section, lines) in [
            ("media", &self.media),
            ("limits", &self.limits),
            ("sip", &self.sip),
            ("dialplan", &self.dialplan),
            ("wasm", &self.wasm),
        ] {
            if !lines.is_empty() {
                out.push_str(&format!("[{section}]\n{}\n\n", lines.join("\n")));
            }
        }
        out.push_str(&format!("[status]\ninterval_s = {}\n\n", self.status_s));
        // Last: a plugin's settings table takes every key after it.
        for p in &self.plugins {
            out.push_str(p);
            out.push('\n');
        }
        out
    }

    /// Starts tandem with this configuration.
    pub(crate) fn start(&self) -> Tandem {
        Tandem::with_config(&self.toml())
    }
}

/// One `Status.` line: `calls=N total_calls=N media_sessions=N ...`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Status {
    /// Every `key=value` of the line with a numeric value.
    pub(crate) values: Vec<(String, u64)>,
    /// The line.
    pub(crate) line: String,
}

impl Status {
    /// Parses a log line; `None` unless it is a status line.
    pub(crate) fn parse(line: &str) -> Option<Status> {
        let i = line.find("Status.")?;
        let values = line[i..]
            .split_whitespace()
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.to_string(), v.trim_matches('"').parse().ok()?))
            })
            .collect();
        Some(Status {
            values,
            line: line.to_string(),
        })
    }

    /// A value by name (panics when the line lacks it).
    pub(crate) fn get(&self, key: &str) -> u64 {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no {key}= in status line {}", self.line))
    }
}

impl Tandem {
    /// The listener for `transport`.
    pub(crate) fn addr(&self, transport: SippTransport) -> SocketAddr {
        match transport {
            SippTransport::Udp => self.udp(),
            SippTransport::Tcp => self.tcp(),
        }
    }

    /// Number of log lines so far (a mark for [`Tandem::wait_status`]).
    pub(crate) fn log_len(&self) -> usize {
        self.log.lines.lock().unwrap().len()
    }

    /// Waits (up to `timeout`) for a status line logged after line `since`
    /// that satisfies `pred`; `Err` carries the last status line seen.
    pub(crate) fn wait_status(
        &self,
        since: usize,
        timeout: Duration,
        pred: impl Fn(&Status) -> bool,
    ) -> Result<(Status, Duration), Option<Status>> {
        let start = Instant::now();
        let deadline = start + timeout;
        let mut last = None;
        loop {
            let lines = self.log_lines();
            for l in lines.iter().skip(since) {
                if let Some(s) = Status::parse(l) {
                    if pred(&s) {
                        return Ok((s, start.elapsed()));
                    }
                    last = Some(s);
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(last);
            }
            self.wait_log_change((deadline - now).min(Duration::from_millis(100)));
        }
    }

    /// Waits for a status line logged from now on with no call, no media
    /// session and no media port left; panics with the last one otherwise.
    pub(crate) fn assert_idle(&self, timeout: Duration) -> Duration {
        match self.wait_status(self.log_len(), timeout, |s| {
            s.get("calls") == 0 && s.get("media_sessions") == 0 && s.get("media_ports") == 0
        }) {
            Ok((_, t)) => t,
            Err(last) => panic!(
                "calls or media ports left behind after {timeout:?}: last status line {:?}",
                last.map(|s| s.line)
            ),
        }
    }
}
