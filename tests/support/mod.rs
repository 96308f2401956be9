//! Shared harness of the end-to-end tests: starts the real `tandem` binary
//! on loopback, talks to it over raw UDP and TCP sockets, and runs SIPp.
//!
//! Everything here is synchronous std code with a timeout on every wait, so
//! a test that goes wrong fails instead of hanging, and tests can run in
//! parallel (every socket is bound to port 0 on 127.0.0.1 or ::1).

#![allow(dead_code)]

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

/// Transport for a SIPp run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SippTransport {
    /// `-t u1`.
    Udp,
    /// `-t t1`: one TCP connection for every call.
    Tcp,
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
}

impl SippRun {
    /// Panics with everything SIPp wrote unless every call succeeded.
    pub(crate) fn assert_success(&self) {
        if self.code != Some(0) {
            panic!(
                "SIPp failed (exit code {:?}).\n---- error log ----\n{}\n---- screen (tail) ----\n{}\n---- messages (tail) ----\n{}",
                self.code,
                self.errors,
                tail(&self.screen, 4000),
                tail(&self.messages, 6000),
            );
        }
    }
}

fn tail(s: &str, n: usize) -> &str {
    let mut i = s.len().saturating_sub(n);
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
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
    let bin = sipp_binary();
    let scenario = scenario(name);
    // A port picked this way may be taken again before SIPp binds it; SIPp
    // then fails to bind (exit code 254 or 255 with a bind error): retry.
    for attempt in 0.. {
        let dir = tempfile::tempdir().expect("temporary directory");
        let err = dir.path().join("errors.log");
        let msg = dir.path().join("messages.log");
        let log = dir.path().join("logs.log");
        let screen = dir.path().join("screen.txt");
        let screen_file = std::fs::File::create(&screen).expect("screen file");
        let mut cmd = Command::new(&bin);
        cmd.current_dir(dir.path())
            .arg(target.to_string())
            .arg("-sf")
            .arg(&scenario)
            .args(["-i", "127.0.0.1"])
            .args(["-p", &free_port().to_string()])
            // SIPp binds media (-mp) and control (-cp) ports of its own, and
            // moves to the next ones when those are taken.
            .args(["-mp", &free_port().to_string()])
            .args(["-cp", &free_port().to_string()])
            .args([
                "-t",
                if transport == SippTransport::Tcp {
                    "t1"
                } else {
                    "u1"
                },
            ])
            .args(["-m", &calls.to_string()])
            .args(["-r", "50", "-l", "10"])
            .args(["-nostdin", "-timeout", "30s", "-timeout_error"])
            .args(["-trace_err", "-error_file"])
            .arg(&err)
            .args(["-trace_msg", "-message_file"])
            .arg(&msg)
            .args(["-trace_logs", "-log_file"])
            .arg(&log)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::from(screen_file.try_clone().expect("clone file")))
            .stderr(Stdio::from(screen_file));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        let deadline = Instant::now() + Duration::from_secs(45);
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait for sipp") {
                break Some(s);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let run = SippRun {
            code: status.and_then(|s| s.code()),
            errors: read(&err),
            messages: read(&msg),
            logs: read(&log),
            screen: read(&screen),
        };
        let bind_failed = run.code != Some(0)
            && (run.screen.contains("bind") || run.errors.contains("bind"))
            && run.messages.is_empty();
        if bind_failed && attempt < 3 {
            continue;
        }
        return run;
    }
    unreachable!()
}
