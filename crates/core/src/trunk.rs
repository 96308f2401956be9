//! Registering Tandem with its trunks (RFC 3261 §10.2, as a UAC): for a
//! trunk with `register = true` a task keeps a binding alive — it answers
//! the trunk's digest challenge, refreshes before the binding expires,
//! follows 423 Min-Expires, backs off on failure and unregisters at
//! shutdown. INVITEs the trunk sends to that binding are recognised by
//! [`InboundTrunk`] and go to the dial plan as the dialled number.

use crate::call::token;
use sip::auth::Challenge;
use sip::message::{HeaderName, Message, Method, NameAddr, Uri};
use sip::transaction::{ClientEvent, TxLayer};
use sip::transport::Target;
use std::net::IpAddr;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A trunk Tandem registers with.
#[derive(Debug, Clone)]
pub struct TrunkRegistration {
    /// The trunk's name (logs, `call.vars.trunk`).
    pub name: String,
    /// Where the REGISTERs go.
    pub target: Target,
    /// The domain of the AOR and the Request-URI (`sip:DOMAIN`).
    pub domain: String,
    /// The user Tandem registers as (AOR user and digest username).
    pub username: String,
    /// The digest password.
    pub password: String,
    /// The user of Tandem's Contact: INVITEs to it come from the trunk.
    pub contact_user: String,
    /// Registration time asked for.
    pub expires: Duration,
    /// Longest wait between failed attempts (the back-off doubles from 1 s).
    pub retry_max: Duration,
}

/// What identifies an INVITE that arrives on a trunk registration: it
/// comes from the trunk's address and is sent to Tandem's contact user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundTrunk {
    /// The trunk's name.
    pub name: String,
    /// The trunk's address.
    pub ip: IpAddr,
    /// Tandem's contact user at that trunk.
    pub contact_user: String,
}

impl InboundTrunk {
    /// True when `request` from `source` arrives on this trunk's binding.
    pub fn matches(&self, request: &Message, source: IpAddr) -> bool {
        source == self.ip
            && request
                .uri()
                .and_then(|u| u.user_str())
                .is_some_and(|u| u == self.contact_user)
    }
}

/// The running registrations; [`TrunkRegistrations::shutdown`] unregisters.
#[derive(Debug)]
pub struct TrunkRegistrations {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl TrunkRegistrations {
    /// Starts one registration task per trunk.
    pub fn spawn(layer: &TxLayer, trunks: Vec<TrunkRegistration>) -> TrunkRegistrations {
        let (stop, stopped) = watch::channel(false);
        let tasks = trunks
            .into_iter()
            .map(|t| {
                let task = Registering::new(layer.clone(), t, stopped.clone());
                tokio::spawn(task.run())
            })
            .collect();
        TrunkRegistrations { stop, tasks }
    }

    /// Unregisters every trunk (waiting at most `timeout` for the answers).
    pub async fn shutdown(self, timeout: Duration) {
        let _ = self.stop.send(true);
        let all = futures_join(self.tasks);
        let _ = tokio::time::timeout(timeout, all).await;
    }
}

async fn futures_join(tasks: Vec<JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}

/// How one REGISTER transaction ended.
enum Outcome {
    /// 2xx: the binding lasts this long.
    Registered(Duration),
    /// 401/407 to be answered.
    Challenged(Challenge, bool),
    /// 423: ask for at least this long.
    TooBrief(Duration),
    /// Anything else: why, for the log.
    Failed(String),
    /// Shutting down.
    Stopped,
}

/// One trunk's registration loop.
struct Registering {
    layer: TxLayer,
    trunk: TrunkRegistration,
    stopped: watch::Receiver<bool>,
    call_id: String,
    from_tag: String,
    cseq: u32,
    expires: Duration,
    /// The last challenge, answered again (next nonce count) on refresh.
    challenge: Option<(Challenge, bool)>,
    nc: u32,
    registered: bool,
}

impl Registering {
    fn new(layer: TxLayer, trunk: TrunkRegistration, stopped: watch::Receiver<bool>) -> Self {
        let expires = trunk.expires;
        Registering {
            layer,
            call_id: format!("{}@tandem", token()),
            from_tag: token(),
            trunk,
            stopped,
            cseq: 0,
            expires,
            challenge: None,
            nc: 0,
            registered: false,
        }
    }

    async fn run(mut self) {
        let mut backoff = Duration::from_secs(1);
        loop {
            let wait = match self.attempt(self.expires).await {
                Some(granted) => {
                    if !self.registered {
                        tracing::info!(
                            message = "Trunk registered.",
                            trunk = %self.trunk.name,
                            expires = granted.as_secs(),
                        );
                    }
                    self.registered = true;
                    backoff = Duration::from_secs(1);
                    // Refresh well before the binding runs out.
                    (granted.mul_f32(0.8)).max(Duration::from_secs(1))
                }
                None if *self.stopped.borrow() => break,
                None => {
                    self.registered = false;
                    let wait = backoff;
                    tracing::warn!(
                        message = "Trunk registration failed; retrying.",
                        trunk = %self.trunk.name,
                        retry_in_s = wait.as_secs(),
                    );
                    backoff = (backoff * 2).min(self.trunk.retry_max.max(Duration::from_secs(1)));
                    wait
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.stopped.changed() => break,
            }
        }
        if self.registered {
            // Unregister (Expires: 0) on the way out.
            self.attempt(Duration::ZERO).await;
            tracing::info!(message = "Trunk unregistered.", trunk = %self.trunk.name);
        }
    }

    /// One registration (with at most one fresh challenge answered and
    /// one 423 followed); the granted time, or `None` on failure.
    async fn attempt(&mut self, expires: Duration) -> Option<Duration> {
        let mut fresh_challenges = 0;
        let mut too_brief = 0;
        let mut expires = expires;
        loop {
            let unregister = expires.is_zero();
            match self.transact(expires, unregister).await {
                Outcome::Registered(granted) => return Some(granted),
                Outcome::Challenged(c, proxy) => {
                    let stale = c.stale;
                    // A repeated challenge without `stale` means the
                    // credentials are wrong: give up this round.
                    if fresh_challenges > 0 && !stale {
                        tracing::warn!(
                            message = "Trunk refused Tandem's credentials.",
                            trunk = %self.trunk.name,
                            realm = %c.realm,
                        );
                        self.challenge = None;
                        return None;
                    }
                    fresh_challenges += 1;
                    if fresh_challenges > 2 {
                        return None;
                    }
                    self.challenge = Some((c, proxy));
                    self.nc = 0;
                }
                Outcome::TooBrief(min) if too_brief == 0 && !unregister => {
                    too_brief += 1;
                    expires = min;
                    self.expires = min;
                }
                Outcome::TooBrief(_) => return None,
                Outcome::Failed(why) => {
                    tracing::info!(
                        message = "Trunk registration attempt failed.",
                        trunk = %self.trunk.name,
                        reason = %why,
                    );
                    return None;
                }
                Outcome::Stopped => return None,
            }
        }
    }

    /// Sends one REGISTER and waits for its final response.
    async fn transact(&mut self, expires: Duration, unregister: bool) -> Outcome {
        let request = self.request(expires);
        let mut tx = self.layer.send_request(request, self.trunk.target);
        loop {
            let event = if unregister {
                tx.next().await
            } else {
                tokio::select! {
                    e = tx.next() => e,
                    _ = self.stopped.changed() => return Outcome::Stopped,
                }
            };
            let resp = match event {
                Some(ClientEvent::Response(r)) => r,
                Some(ClientEvent::Timeout) => return Outcome::Failed("no answer (408)".into()),
                Some(ClientEvent::TransportError) | None => {
                    return Outcome::Failed("cannot reach the trunk".into());
                }
            };
            let code = resp.code().unwrap_or(0);
            return match code {
                100..=199 => continue,
                200..=299 => Outcome::Registered(self.granted(&resp, expires)),
                401 | 407 => {
                    let header = match code {
                        401 => HeaderName::WwwAuthenticate,
                        _ => HeaderName::ProxyAuthenticate,
                    };
                    match resp
                        .headers
                        .get_all(&header)
                        .filter_map(|v| std::str::from_utf8(v).ok())
                        .find_map(|v| Challenge::parse(v).ok())
                    {
                        Some(c) => Outcome::Challenged(c, code == 407),
                        None => Outcome::Failed(format!("{code} without a usable challenge")),
                    }
                }
                423 => match resp
                    .header_str(&HeaderName::MinExpires)
                    .and_then(|v| v.trim().parse::<u64>().ok())
                {
                    Some(min) if min > 0 => Outcome::TooBrief(Duration::from_secs(min)),
                    _ => Outcome::Failed("423 without Min-Expires".into()),
                },
                _ => Outcome::Failed(format!("{code} {}", resp.reason().unwrap_or_default())),
            };
        }
    }

    /// The binding time the trunk granted: our Contact's `expires`, else
    /// the Expires header, else what we asked for.
    fn granted(&self, resp: &Message, asked: Duration) -> Duration {
        let ours = format!("{}@", self.trunk.contact_user);
        let from_contact = resp
            .headers
            .get_all(&HeaderName::Contact)
            .filter_map(|v| NameAddr::parse_shared(v, v).ok())
            .find(|n| n.uri.to_string().contains(&ours))
            .and_then(|n| {
                let e = n.params.get("expires").flatten()?;
                std::str::from_utf8(e).ok()?.trim().parse::<u64>().ok()
            });
        let from_header = resp
            .header_str(&HeaderName::Expires)
            .and_then(|v| v.trim().parse::<u64>().ok());
        from_contact
            .or(from_header)
            .map(Duration::from_secs)
            .unwrap_or(asked)
    }

    /// The next REGISTER (new CSeq; credentials when a challenge is known).
    fn request(&mut self, expires: Duration) -> Message {
        self.cseq += 1;
        let t = &self.trunk;
        let uri_text = format!("sip:{}", t.domain);
        let uri = Uri::parse(&uri_text).unwrap_or_else(|_| Uri::sip(None, &t.domain, None));
        let mut m = Message::request(Method::Register, uri);
        let aor = format!("<sip:{}@{}>", t.username, t.domain);
        m.headers.push(HeaderName::MaxForwards, "70");
        m.headers
            .push(HeaderName::From, format!("{aor};tag={}", self.from_tag));
        m.headers.push(HeaderName::To, aor);
        m.headers.push(HeaderName::CallId, self.call_id.clone());
        m.headers
            .push(HeaderName::CSeq, format!("{} REGISTER", self.cseq));
        m.headers.push(
            HeaderName::Contact,
            crate::call::contact(self.layer.transports(), &t.contact_user, &t.target),
        );
        m.headers
            .push(HeaderName::Expires, expires.as_secs().to_string());
        m.headers.push(HeaderName::UserAgent, sip::USER_AGENT);
        if let Some((c, proxy)) = &self.challenge {
            self.nc += 1;
            let value = c.answer(
                "REGISTER",
                &uri_text,
                &t.username,
                &t.password,
                self.nc,
                &token(),
            );
            let name = match proxy {
                true => HeaderName::ProxyAuthorization,
                false => HeaderName::Authorization,
            };
            m.headers.push(name, value);
        }
        m
    }
}
