//! A real softphone for the end-to-end tests: Debian's baresip 1.0
//! (`apt-get install -y baresip-core`) run headless on loopback.
//!
//! [`Baresip`] writes a config and an accounts file into a temporary
//! directory (baresip `-f DIR` reads nothing else and never touches
//! `$HOME`), starts baresip with `-t LIFETIME` so it always ends by itself,
//! reads what it prints, and drives it by writing menu commands (`/dial`,
//! `/hangup`, `/accept`, `/quit`) to its standard input. It sends a sine
//! (`ausine`) and records the audio it receives (`sndfile`) as WAV files,
//! read with [`Baresip::received_audio`]. No sound card or terminal needed.
//!
//! Things measured with baresip 1.0.0 / libre 1.1.0 that shape this file:
//! - Digest authentication is MD5 only (`qop=auth` works, any letter case).
//!   A 401/407 that has any `WWW-Authenticate`/`Proxy-Authenticate` with
//!   another algorithm (`SHA-256`, `MD5-sess`), first or after an MD5 one,
//!   fails the request outright: `reg: <aor>: Register: Function not
//!   implemented` for REGISTER, `<uri>: session closed: Function not
//!   implemented` for INVITE. A registrar that offers SHA-256 and MD5 must
//!   be set to offer MD5 alone for baresip.
//! - `sip_listen 127.0.0.1:0` picks free ports (UDP, TCP, and TLS each
//!   their own), so no port is chosen here; [`Baresip::sip_addr`] finds the
//!   UDP one. `net_interface 127.0.0.1` makes SDP say `c=IN IP4 127.0.0.1`
//!   (without it baresip advertises the first non-loopback address). RTP
//!   sockets are bound to 0.0.0.0 (baresip 1.0 has no setting for that),
//!   but every packet goes to loopback peers only.
//! - Output lines (stdout): `baresip is ready.`; registered:
//!   `alice@127.0.0.1: {0/UDP/v4} 200 OK (<Server>) [1 binding]`
//!   (user@host, no port; printed once, not on refreshes); registration
//!   failed: `reg: sip:alice@...: 401 Unauthorized ()` (or
//!   `... Register: <error>`); incoming call, manual answer:
//!   `sip:alice@...: Incoming call from:  sip:carol@... - (press 'a' to
//!   accept)`; auto-answer: `call: answering call on line 1 from ... with
//!   200`; `alice@...: Call established: sip:bob@...`; media:
//!   `stream: incoming rtp for 'audio' established, receiving from
//!   127.0.0.1:PORT`; an established call ends with `...: Call with
//!   sip:bob@... terminated (duration: 3 secs)` (after `<peer>: session
//!   closed: Connection reset by peer` when the other side sent BYE); a call
//!   that never got answered ends with `<uri>: session closed: 486 Busy
//!   Here` alone. Errors are coloured (ANSI escapes, stripped here).
//! - `-e "/dial ..."` runs at startup, before the registration has been
//!   answered, so dialing is a separate step after [`Baresip::wait_registered`].
//! - The `stdio` module reads commands from a pipe without a terminal
//!   (it prints `stdio: could not setup terminal`), but with stdin at EOF it
//!   spins at 100% CPU, and with stdin from /dev/null it fails to load. So
//!   stdin is a FIFO that baresip itself also holds open for writing: it
//!   never sees EOF, even if the test process dies.
//! - `-t N` stops it after N seconds (hang up, un-REGISTER), but it waits
//!   for those transactions: up to ~35 s more when the registrar does not
//!   answer. [`Drop`] kills it at once.

#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long baresip may take to print `baresip is ready.`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long after a `session closed:` line a `Call with ... terminated`
/// line of the same call may follow (both are printed together).
const CLOSE_GRACE: Duration = Duration::from_millis(300);

/// Lines of a log shown in a failure message.
const TAIL: usize = 120;

/// Where baresip is, if installed.
fn binary() -> Option<PathBuf> {
    let mut candidates = vec![PathBuf::from("/usr/bin/baresip")];
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("baresip")));
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// The kernel's ephemeral port range, used for baresip's RTP ports (away
/// from the fixed ranges of tandem and of [`super::media_ports`]).
fn rtp_port_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .filter(|(lo, hi)| lo < hi)
        .unwrap_or((32768, 60999))
}

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Stdout: everything that matters (registration, calls, errors).
    Stdout,
    /// Stderr: the menu's own messages.
    Stderr,
    /// A command we sent.
    Command,
}

/// One line of the log (ANSI colours removed).
#[derive(Debug, Clone)]
struct Line {
    at: Instant,
    source: Source,
    text: String,
}

#[derive(Default)]
struct State {
    lines: Vec<Line>,
    /// Output streams not yet at EOF.
    open: usize,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn push(&self, source: Source, text: String) {
        let mut st = self.state.lock().unwrap();
        st.lines.push(Line {
            at: Instant::now(),
            source,
            text,
        });
        drop(st);
        self.changed.notify_all();
    }
}

/// Removes ANSI escape sequences (`ESC [ params final`, including the
/// console's `ESC[10;1000]` bell settings).
fn strip_ansi(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == 0x1b {
            i += 1;
            if i < raw.len() && raw[i] == b'[' {
                i += 1;
                while i < raw.len() && (0x20..=0x3f).contains(&raw[i]) {
                    i += 1;
                }
            }
            i += 1; // the final byte
            continue;
        }
        if raw[i] != 0x07 {
            out.push(raw[i]);
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).trim_end().to_string()
}

/// Reads one output stream into `shared`, a line at a time (split at `\n`
/// and `\r`: the menu redraws with carriage returns).
fn spawn_reader(mut stream: impl Read + Send + 'static, stderr: bool, shared: Arc<Shared>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut cur: Vec<u8> = Vec::new();
        let flush = |cur: &mut Vec<u8>| {
            let text = strip_ansi(cur);
            cur.clear();
            // The menu echoes a command being typed on stderr, one growing
            // prefix per character (`/d`, `/di`, ...): the commands are
            // logged when sent instead.
            if text.trim().is_empty() || (stderr && text.starts_with('/')) {
                return;
            }
            let source = if stderr {
                Source::Stderr
            } else {
                Source::Stdout
            };
            shared.push(source, text);
        };
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    for &b in &buf[..n] {
                        if b == b'\n' || b == b'\r' {
                            flush(&mut cur);
                        } else {
                            cur.push(b);
                        }
                    }
                }
            }
        }
        flush(&mut cur);
        shared.state.lock().unwrap().open -= 1;
        shared.changed.notify_all();
    });
}

/// What [`Baresip`] waits for, matched on stdout lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Registered,
    RegisterFailed,
    Incoming,
    Established,
    Rtp,
    Closed,
}

impl Event {
    fn name(self) -> &'static str {
        match self {
            Event::Registered => "a successful registration",
            Event::RegisterFailed => "a failed registration",
            Event::Incoming => "an incoming call",
            Event::Established => "an established call",
            Event::Rtp => "incoming RTP",
            Event::Closed => "a closed call",
        }
    }

    fn matches(self, l: &str) -> bool {
        match self {
            // `alice@127.0.0.1:5060: {0/UDP/v4} 200 OK () [1 binding]`
            Event::Registered => l.contains("} 2") && l.contains(" binding"),
            Event::RegisterFailed => l.starts_with("reg: "),
            Event::Incoming => l.contains(": Incoming call from: "),
            Event::Established => l.contains(": Call established: "),
            Event::Rtp => l.starts_with("stream: incoming rtp for 'audio' established"),
            Event::Closed => {
                (l.contains(": Call with ") && l.contains(" terminated (duration: "))
                    || l.contains(": session closed: ")
            }
        }
    }
}

/// The stdout lines that are `event`s, in order. A call ends with one
/// `terminated` line if it was established (after a `session closed:` line
/// when the peer hung up), or with a `session closed:` line alone if not:
/// each call counts once.
fn events(lines: &[Line], event: Event, now: Instant) -> Vec<String> {
    let out: Vec<&Line> = lines
        .iter()
        .filter(|l| l.source == Source::Stdout)
        .collect();
    let mut found = Vec::new();
    for (i, l) in out.iter().enumerate() {
        if !event.matches(&l.text) {
            continue;
        }
        if event == Event::Closed && l.text.contains(": session closed: ") {
            match out.get(i + 1) {
                Some(next) if next.text.contains(" terminated (duration: ") => continue,
                Some(_) => {}
                None if now.duration_since(l.at) < CLOSE_GRACE => continue,
                None => {}
            }
        }
        found.push(l.text.clone());
    }
    found
}

/// How to start a [`Baresip`]: [`Baresip::builder`].
#[derive(Debug, Clone)]
pub(crate) struct BaresipBuilder {
    user: String,
    password: Option<String>,
    registrar: Option<SocketAddr>,
    domain: Option<String>,
    lifetime: Duration,
    auto_answer: bool,
    regint: u32,
    tone_hz: u32,
    trace: bool,
}

impl BaresipBuilder {
    /// The digest password (`auth_pass`; the digest user is the account's
    /// user). MD5 only: see the module docs.
    pub(crate) fn password(mut self, password: &str) -> BaresipBuilder {
        self.password = Some(password.to_string());
        self
    }

    /// Registers at `registrar` (an IPv4 loopback UDP address) and sends
    /// every request through it as outbound proxy (`Route: <sip:ADDR;lr>`),
    /// so dialed calls go through it too. Without a registrar baresip
    /// neither registers nor uses a proxy.
    pub(crate) fn registrar(mut self, registrar: SocketAddr) -> BaresipBuilder {
        self.registrar = Some(registrar);
        self
    }

    /// The host part of the address of record, `sip:USER@DOMAIN` (default:
    /// the registrar's `127.0.0.1:PORT`, or `127.0.0.1`). It is never
    /// looked up in DNS while a registrar is set: requests go there.
    pub(crate) fn domain(mut self, domain: &str) -> BaresipBuilder {
        self.domain = Some(domain.to_string());
        self
    }

    /// After this baresip hangs up, un-registers and exits by itself
    /// (`-t`, whole seconds, rounded up; default 30 s).
    pub(crate) fn lifetime(mut self, lifetime: Duration) -> BaresipBuilder {
        self.lifetime = lifetime;
        self
    }

    /// Answer incoming calls at once (`answermode=auto`, the default), or
    /// let them ring until [`Baresip::accept`] (`answermode=manual`).
    pub(crate) fn auto_answer(mut self, auto: bool) -> BaresipBuilder {
        self.auto_answer = auto;
        self
    }

    /// The registration interval in seconds, sent as the Contact's
    /// `expires` (default 600; 0: no registration at all).
    pub(crate) fn regint(mut self, seconds: u32) -> BaresipBuilder {
        self.regint = seconds;
        self
    }

    /// The frequency of the sine it sends (default 440 Hz); give each
    /// phone of a call its own to tell their audio apart.
    pub(crate) fn tone(mut self, hz: u32) -> BaresipBuilder {
        self.tone_hz = hz;
        self
    }

    /// Prints every SIP message sent and received into the log (`-s`).
    pub(crate) fn trace(mut self) -> BaresipBuilder {
        self.trace = true;
        self
    }

    fn accounts_line(&self) -> String {
        let domain = match (&self.domain, self.registrar) {
            (Some(d), _) => d.clone(),
            (None, Some(r)) => r.to_string(),
            (None, None) => "127.0.0.1".to_string(),
        };
        let mut line = format!("<sip:{}@{}>", self.user, domain);
        if let Some(p) = &self.password {
            line.push_str(&format!(";auth_pass={p}"));
        }
        if let Some(r) = self.registrar {
            line.push_str(&format!(";outbound=\"sip:{r}\""));
        }
        let regint = if self.registrar.is_some() {
            self.regint
        } else {
            0
        };
        line.push_str(&format!(";regint={regint}"));
        let mode = if self.auto_answer { "auto" } else { "manual" };
        line.push_str(&format!(";answermode={mode}"));
        line
    }

    fn config(&self, dir: &Path) -> String {
        let (lo, hi) = rtp_port_range();
        format!(
            "# Written by tests/support/baresip.rs.\n\
             poll_method\t\tepoll\n\
             net_interface\t\t127.0.0.1\n\
             sip_listen\t\t127.0.0.1:0\n\
             dns_server\t\t127.0.0.1:53\n\
             call_max_calls\t\t4\n\
             audio_source\t\tausine,{tone}\n\
             ausrc_srate\t\t48000\n\
             ausrc_channels\t\t2\n\
             rtp_ports\t\t{lo}-{hi}\n\
             statmode_default\toff\n\
             module_path\t\t/usr/lib/baresip/modules\n\
             module\t\t\tstdio.so\n\
             module\t\t\tg711.so\n\
             module\t\t\tausine.so\n\
             module\t\t\tsndfile.so\n\
             snd_path\t\t{audio}\n\
             module_tmp\t\taccount.so\n\
             module_app\t\tmenu.so\n",
            tone = self.tone_hz,
            audio = dir.join("audio").display(),
        )
    }

    /// Starts baresip and waits until it is ready (it then registers in
    /// the background: [`Baresip::wait_registered`]).
    pub(crate) fn start(self) -> Baresip {
        let bin = binary().unwrap_or_else(|| {
            panic!(
                "baresip is not installed: these tests need it \
                 (Debian/Ubuntu: `apt-get install -y baresip-core`)"
            )
        });
        let bad = |s: &str| s.is_empty() || s.contains(|c: char| "<>;,\"\\ \t\r\n".contains(c));
        assert!(!bad(&self.user), "unusable baresip user {:?}", self.user);
        if let Some(p) = &self.password {
            assert!(!bad(p), "unusable baresip password {p:?}");
        }
        if let Some(r) = self.registrar {
            assert!(
                matches!(r, SocketAddr::V4(a) if a.ip().is_loopback()),
                "baresip registrar must be an IPv4 loopback address, not {r}"
            );
        }

        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::create_dir(dir.path().join("audio")).expect("create audio directory");
        std::fs::write(dir.path().join("config"), self.config(dir.path())).expect("write config");
        std::fs::write(dir.path().join("accounts"), self.accounts_line() + "\n")
            .expect("write accounts");

        // Standard input: a FIFO opened read-write, once for baresip and
        // once for us. Baresip's own write end keeps it from ever reading
        // EOF (its stdio module would spin on it).
        let fifo = dir.path().join("stdin");
        let status = Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap_or_else(|e| panic!("cannot run mkfifo: {e}"));
        assert!(status.success(), "mkfifo {} failed", fifo.display());
        let input = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .expect("open FIFO");

        let secs = self.lifetime.as_secs() + u64::from(self.lifetime.subsec_nanos() > 0);
        let mut cmd = Command::new(&bin);
        cmd.arg("-f")
            .arg(dir.path())
            .args(["-t", &secs.max(1).to_string()]);
        if self.trace {
            cmd.arg("-s");
        }
        cmd.current_dir(dir.path())
            .env("HOME", dir.path())
            .stdin(Stdio::from(input.try_clone().expect("clone FIFO")))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));

        let shared = Arc::new(Shared::default());
        shared.state.lock().unwrap().open = 2;
        spawn_reader(
            child.stdout.take().expect("stdout is piped"),
            false,
            shared.clone(),
        );
        spawn_reader(
            child.stderr.take().expect("stderr is piped"),
            true,
            shared.clone(),
        );

        let mut phone = Baresip {
            child,
            input,
            shared,
            dir,
            account: self.accounts_line(),
            seen: Vec::new(),
        };
        phone.wait_line(READY_TIMEOUT, "baresip is ready.", |l| {
            l.starts_with("baresip is ready.")
        });
        phone
    }
}

/// A headless baresip softphone with one account. Killed on drop; its log
/// is printed if the test failed.
pub(crate) struct Baresip {
    child: Child,
    /// Our write end of its standard input (a FIFO).
    input: File,
    shared: Arc<Shared>,
    dir: tempfile::TempDir,
    account: String,
    /// How many of each event the `wait_*` calls consumed.
    seen: Vec<(Event, usize)>,
}

impl Baresip {
    /// True when the `baresip` binary is installed (for diagnostics: the
    /// test command installs it, and [`BaresipBuilder::start`] panics
    /// without it).
    pub(crate) fn available() -> bool {
        binary().is_some()
    }

    /// A builder for account `user`: auto-answer, 440 Hz, 30 s lifetime,
    /// no registrar and no password until set.
    pub(crate) fn builder(user: &str) -> BaresipBuilder {
        BaresipBuilder {
            user: user.to_string(),
            password: None,
            registrar: None,
            domain: None,
            lifetime: Duration::from_secs(30),
            auto_answer: true,
            regint: 600,
            tone_hz: 440,
            trace: false,
        }
    }

    /// Starts baresip as `user@registrar` with `password`: it registers at
    /// `registrar` (127.0.0.1:PORT, UDP) and sends every request through
    /// it, listens on free loopback ports, answers incoming calls at once,
    /// sends a 440 Hz sine, and exits by itself after `lifetime`.
    pub(crate) fn start(
        user: &str,
        password: &str,
        registrar: SocketAddr,
        lifetime: Duration,
    ) -> Baresip {
        Baresip::builder(user)
            .password(password)
            .registrar(registrar)
            .lifetime(lifetime)
            .start()
    }

    /// The accounts line it was started with (for messages).
    pub(crate) fn account(&self) -> &str {
        &self.account
    }

    /// Its temporary directory (config, accounts, `audio/` recordings).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes one menu command (`/dial sip:...`, `/hangup`, ...) to its
    /// standard input. The log shows it as `> COMMAND`.
    pub(crate) fn command(&mut self, command: &str) {
        assert!(
            command.starts_with('/') && !command.contains(['\n', '\r']),
            "not a baresip command line: {command:?}"
        );
        self.shared.push(Source::Command, format!("> {command}"));
        self.input
            .write_all(format!("{command}\n").as_bytes())
            .and_then(|()| self.input.flush())
            .unwrap_or_else(|e| panic!("cannot write to baresip: {e}"));
    }

    /// Calls `uri` (`sip:bob@127.0.0.1:5060`, or just `bob` for
    /// `sip:bob@DOMAIN`) through the registrar. Call it after
    /// [`Baresip::wait_registered`]: a dial sent earlier goes out before
    /// the registration is done.
    pub(crate) fn dial(&mut self, uri: &str) {
        assert!(
            !uri.is_empty() && !uri.contains(char::is_whitespace),
            "unusable URI {uri:?}"
        );
        self.command(&format!("/dial {uri}"));
    }

    /// Answers the ringing call (with [`BaresipBuilder::auto_answer`]
    /// false).
    pub(crate) fn accept(&mut self) {
        self.command("/accept");
    }

    /// Hangs up the current call (BYE, or CANCEL while it rings).
    pub(crate) fn hangup(&mut self) {
        self.command("/hangup");
    }

    /// Every line it printed so far (stderr lines marked `[stderr]`,
    /// commands sent as `> COMMAND`).
    pub(crate) fn log(&self) -> String {
        let st = self.shared.state.lock().unwrap();
        st.lines
            .iter()
            .map(|l| match l.source {
                Source::Stderr => format!("[stderr] {}", l.text),
                Source::Stdout | Source::Command => l.text.clone(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let skip = lines.len().saturating_sub(TAIL);
        let mut out = String::new();
        if skip > 0 {
            out.push_str(&format!("[... {skip} lines ...]\n"));
        }
        out.push_str(&lines[skip..].join("\n"));
        out
    }

    fn status_text(&mut self) -> String {
        match self.child.try_wait() {
            Ok(Some(s)) => format!("exited ({s})"),
            _ => "running".to_string(),
        }
    }

    /// Waits (up to `timeout`) for a stdout line for which `pred` holds and
    /// returns it; panics with the log if none comes or baresip exits.
    pub(crate) fn wait_line(
        &mut self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        self.wait_until(timeout, what, |lines, _| {
            lines
                .iter()
                .find(|l| l.source == Source::Stdout && pred(&l.text))
                .map(|l| Ok(l.text.clone()))
        })
    }

    /// Polls `f` on the lines until it gives a value (`Err` panics with its
    /// message), `timeout` passes, or baresip has exited.
    fn wait_until<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        f: impl Fn(&[Line], Instant) -> Option<Result<T, String>>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let (found, exited) = {
                let st = self.shared.state.lock().unwrap();
                (f(&st.lines, Instant::now()), st.open == 0)
            };
            match found {
                Some(Ok(v)) => return v,
                Some(Err(msg)) => {
                    panic!("baresip: {msg}\n---- baresip log ----\n{}", self.log_tail())
                }
                None => {}
            }
            let now = Instant::now();
            if exited || now >= deadline {
                let why = if exited {
                    "exited".to_string()
                } else {
                    format!("did not print it within {timeout:?}")
                };
                let status = self.status_text();
                panic!(
                    "baresip ({}) waited for {what} but {why} [{status}]\n\
                     ---- baresip log ----\n{}",
                    self.account,
                    self.log_tail()
                );
            }
            let st = self.shared.state.lock().unwrap();
            let wait = (deadline - now).min(Duration::from_millis(100));
            let _ = self.shared.changed.wait_timeout(st, wait).unwrap();
        }
    }

    fn seen(&self, event: Event) -> usize {
        self.seen
            .iter()
            .find(|(e, _)| *e == event)
            .map_or(0, |(_, n)| *n)
    }

    fn mark_seen(&mut self, event: Event, n: usize) {
        match self.seen.iter_mut().find(|(e, _)| *e == event) {
            Some(entry) => entry.1 = n,
            None => self.seen.push((event, n)),
        }
    }

    /// Waits for the next `event` after those earlier waits consumed.
    fn wait_event(&mut self, event: Event, timeout: Duration) -> String {
        let n = self.seen(event);
        let failed_before = if event == Event::Registered {
            self.count_event(Event::RegisterFailed)
        } else {
            0
        };
        let line = self.wait_until(timeout, event.name(), |lines, now| {
            if let Some(l) = events(lines, event, now).into_iter().nth(n) {
                return Some(Ok(l));
            }
            if event == Event::Registered {
                let failed = events(lines, Event::RegisterFailed, now);
                if let Some(l) = failed.into_iter().nth(failed_before) {
                    let hint = if l.contains("Function not implemented") {
                        " (baresip 1.0 answers MD5 digest challenges only, and \
                         fails on any other algorithm offered, e.g. SHA-256: \
                         make the registrar offer MD5 alone)"
                    } else {
                        ""
                    };
                    return Some(Err(format!("registration failed: {l}{hint}")));
                }
            }
            None
        });
        self.mark_seen(event, n + 1);
        line
    }

    fn count_event(&self, event: Event) -> usize {
        let st = self.shared.state.lock().unwrap();
        events(&st.lines, event, Instant::now()).len()
    }

    /// Waits for the next successful registration and returns its line;
    /// panics with the log at once when the registration fails, or after
    /// `timeout`. Baresip prints one such line when the status changes
    /// (the first success, or a success after a failure), none for
    /// refreshes.
    pub(crate) fn wait_registered(&mut self, timeout: Duration) -> String {
        self.wait_event(Event::Registered, timeout)
    }

    /// Waits for the next incoming call to ring (manual answer mode).
    pub(crate) fn wait_incoming(&mut self, timeout: Duration) -> String {
        self.wait_event(Event::Incoming, timeout)
    }

    /// Waits for the next call to be established (either direction) and
    /// returns its line (`alice@...: Call established: sip:bob@...`).
    pub(crate) fn wait_established(&mut self, timeout: Duration) -> String {
        self.wait_event(Event::Established, timeout)
    }

    /// Waits until RTP arrived on the next call's audio stream.
    pub(crate) fn wait_rtp(&mut self, timeout: Duration) -> String {
        self.wait_event(Event::Rtp, timeout)
    }

    /// Waits for the next call to end and returns its last line: `...: Call
    /// with sip:bob@... terminated (duration: 3 secs)` for an established
    /// call, `sip:bob@...: session closed: 486 Busy Here` (the reason) for
    /// one that never was.
    pub(crate) fn wait_closed(&mut self, timeout: Duration) -> String {
        self.wait_event(Event::Closed, timeout)
    }

    /// Calls established so far.
    pub(crate) fn established_count(&self) -> usize {
        self.count_event(Event::Established)
    }

    /// Calls ended so far.
    pub(crate) fn closed_count(&self) -> usize {
        self.count_event(Event::Closed)
    }

    /// Its SIP UDP address (127.0.0.1, a port the kernel picked), read
    /// from /proc: the only UDP socket it binds to 127.0.0.1 (RTP and DNS
    /// sockets are bound to the wildcard address).
    pub(crate) fn sip_addr(&self) -> SocketAddr {
        let pid = self.child.id();
        let mut inodes: Vec<(u32, String)> = Vec::new();
        if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
            for entry in rd.flatten() {
                let fd: u32 = entry
                    .file_name()
                    .to_string_lossy()
                    .parse()
                    .unwrap_or(u32::MAX);
                if let Ok(target) = std::fs::read_link(entry.path()) {
                    let t = target.to_string_lossy();
                    if let Some(inode) =
                        t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']'))
                    {
                        inodes.push((fd, inode.to_string()));
                    }
                }
            }
        }
        inodes.sort();
        let udp = std::fs::read_to_string(format!("/proc/{pid}/net/udp")).unwrap_or_default();
        for (_, inode) in &inodes {
            for l in udp.lines().skip(1) {
                let f: Vec<&str> = l.split_whitespace().collect();
                if f.len() > 9
                    && f[9] == inode
                    && let Some(port) = f[1].strip_prefix("0100007F:")
                {
                    let port = u16::from_str_radix(port, 16).expect("port in /proc");
                    return SocketAddr::from(([127, 0, 0, 1], port));
                }
            }
        }
        panic!(
            "baresip (pid {pid}) has no UDP socket on 127.0.0.1\n{}",
            self.log_tail()
        );
    }

    fn recording(&self, suffix: &str) -> Option<Audio> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("audio"))
            .ok()?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(suffix))
            .collect();
        // `dump-YYYY-MM-DD-hh-mm-ss-dec.wav`: sorts by start time.
        files.sort();
        Audio::read_wav(files.last()?)
    }

    /// The audio it received and decoded on the latest call (8 kHz mono,
    /// recorded by the `sndfile` module), `None` before any call. Reading
    /// during a call gives what arrived so far.
    pub(crate) fn received_audio(&self) -> Option<Audio> {
        self.recording("-dec.wav")
    }

    /// The audio it encoded and sent on the latest call (its sine).
    pub(crate) fn sent_audio(&self) -> Option<Audio> {
        self.recording("-enc.wav")
    }

    /// Waits (up to `timeout`) for the process to exit; `None` if it still
    /// runs.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the readers collect the last lines.
                let st = self.shared.state.lock().unwrap();
                let _ = self
                    .shared
                    .changed
                    .wait_timeout_while(st, Duration::from_secs(2), |s| s.open > 0)
                    .unwrap();
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Quits cleanly (`/quit`: hang up, un-REGISTER, exit), killing it if
    /// it has not exited within `timeout`. `None` if it had to be killed.
    pub(crate) fn stop(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.command("/quit");
        }
        let status = self.wait_exit(timeout);
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        status
    }

    /// True while the process runs.
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- baresip log ({}) ----\n{}\n--------------------",
                self.account,
                self.log_tail()
            );
        }
    }
}

/// Audio read from one of baresip's WAV recordings (first channel only).
#[derive(Debug, Clone)]
pub(crate) struct Audio {
    /// Samples per second.
    pub(crate) rate: u32,
    /// 16-bit samples.
    pub(crate) samples: Vec<i16>,
}

impl Audio {
    /// Reads a 16-bit PCM WAV file. The data runs to the end of the file
    /// when the header's size is not written yet (a recording in progress).
    pub(crate) fn read_wav(path: &Path) -> Option<Audio> {
        let data = std::fs::read(path).ok()?;
        if data.len() < 12 || &data[0..4] != b"RIFF" || &data[8..12] != b"WAVE" {
            return None;
        }
        let u16_at = |i: usize| u16::from_le_bytes([data[i], data[i + 1]]);
        let u32_at =
            |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
        let (mut rate, mut channels, mut bits) = (0u32, 0u16, 0u16);
        let mut pos = 12;
        while pos + 8 <= data.len() {
            let id = &data[pos..pos + 4];
            let size = u32_at(pos + 4) as usize;
            let body = pos + 8;
            if id == b"fmt " && body + 16 <= data.len() {
                channels = u16_at(body + 2);
                rate = u32_at(body + 4);
                bits = u16_at(body + 14);
            } else if id == b"data" {
                if bits != 16 || channels == 0 || rate == 0 {
                    return None;
                }
                let end = if size > 0 && body + size <= data.len() {
                    body + size
                } else {
                    data.len()
                };
                let frame = 2 * usize::from(channels);
                let samples = data[body..end]
                    .chunks_exact(frame)
                    .map(|f| i16::from_le_bytes([f[0], f[1]]))
                    .collect();
                return Some(Audio { rate, samples });
            }
            pos = body.saturating_add(size).saturating_add(size & 1);
        }
        None
    }

    /// How long the audio lasts.
    pub(crate) fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.samples.len() as f64 / f64::from(self.rate.max(1)))
    }

    /// Root mean square of the samples (0 for silence, about 23000 for a
    /// full-scale sine).
    pub(crate) fn rms(&self) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        let e: f64 = self.samples.iter().map(|&s| f64::from(s).powi(2)).sum();
        (e / self.samples.len() as f64).sqrt()
    }

    /// The share (0 to 1) of the audio's energy at `hz` (Goertzel): about
    /// 1 for baresip's sine of that frequency even after G.711, about 0
    /// for another tone or for silence.
    pub(crate) fn tone_ratio(&self, hz: f64) -> f64 {
        let n = self.samples.len();
        let energy: f64 = self.samples.iter().map(|&s| f64::from(s).powi(2)).sum();
        if n == 0 || energy == 0.0 {
            return 0.0;
        }
        let k = 2.0 * (2.0 * std::f64::consts::PI * hz / f64::from(self.rate)).cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &x in &self.samples {
            let s0 = f64::from(x) + k * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let power = s1 * s1 + s2 * s2 - k * s1 * s2;
        (2.0 * power / (n as f64 * energy)).min(1.0)
    }
}
