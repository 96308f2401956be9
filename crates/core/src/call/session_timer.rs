//! Session timers (RFC 4028), negotiated and run per leg: on each leg
//! either Tandem refreshes (an UPDATE at half the interval) or the peer
//! must, and a session the peer failed to refresh is ended on both legs.

use super::{Call, LegId, Pending, State};
use sip::message::{HeaderName, Message, Method};
use std::time::Duration;
use tokio::time::Instant;

/// The session timer of one leg.
#[derive(Debug, Clone, Copy)]
pub(super) struct SessionTimer {
    /// Session interval.
    interval: Duration,
    /// True when Tandem is the refresher on this leg.
    we_refresh: bool,
    /// When Tandem refreshes, or when the peer's refresh is overdue.
    due: Instant,
}

impl SessionTimer {
    fn new(interval: Duration, we_refresh: bool) -> SessionTimer {
        let mut t = SessionTimer {
            interval,
            we_refresh,
            due: Instant::now(),
        };
        t.reset();
        t
    }

    /// Restarts the interval after a refresh (RFC 4028 §10: refresh at
    /// half; expire at the interval less min(32 s, a third)).
    fn reset(&mut self) {
        let now = Instant::now();
        self.due = if self.we_refresh {
            now + self.interval / 2
        } else {
            now + self.interval - (self.interval / 3).min(Duration::from_secs(32))
        };
    }

    /// `Session-Expires` for a message where Tandem is the UAC (request)
    /// or the UAS (response) of the transaction.
    fn header(&self, as_uac: bool) -> String {
        let refresher = if self.we_refresh == as_uac {
            "uac"
        } else {
            "uas"
        };
        format!("{};refresher={refresher}", self.interval.as_secs())
    }
}

/// `Session-Expires` of a message: interval and refresher parameter.
fn session_expires(m: &Message) -> Option<(Duration, Option<String>)> {
    let v = m.header_str(&HeaderName::SessionExpires)?;
    let mut parts = v.split(';');
    let secs: u64 = parts.next()?.trim().parse().ok()?;
    let refresher = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("refresher")
            .then(|| v.trim().to_ascii_lowercase())
    });
    Some((Duration::from_secs(secs), refresher))
}

fn supports_timer(m: &Message) -> bool {
    m.tokens(&HeaderName::Supported)
        .chain(m.tokens(&HeaderName::Require))
        .any(|t| t.eq_ignore_ascii_case(b"timer"))
}

impl Call {
    /// RFC 4028 §8.1.1: an interval below our Min-SE is refused with 422.
    pub(super) fn session_interval_too_small(&self) -> bool {
        session_expires(&self.a_invite).is_some_and(|(se, _)| se < self.config.min_se)
    }

    /// Headers for the B-leg INVITE.
    pub(super) fn session_timer_offer(&self, invite: &mut Message, min_se: Duration) {
        if let Some(se) = self.config.session_expires {
            invite.headers.push(
                HeaderName::SessionExpires,
                se.max(min_se).as_secs().to_string(),
            );
            invite
                .headers
                .push(HeaderName::MinSe, min_se.as_secs().to_string());
        }
    }

    /// A 422 from attempt `i`: retry once with the interval it asks for.
    pub(super) fn retry_with_min_se(&mut self, i: usize, resp: &Message) -> bool {
        let Some(min) = resp
            .header_str(&HeaderName::MinSe)
            .and_then(|v| v.split(';').next()?.trim().parse::<u64>().ok())
        else {
            return false;
        };
        let Some(a) = self.attempts.get_mut(i) else {
            return false;
        };
        if a.se_retried || a.cancelled || self.state != State::Setup {
            return false;
        }
        a.se_retried = true;
        tracing::info!(
            message = "Session interval too small, retrying.",
            attempt = i,
            min_se = min
        );
        self.resend_invite(i, |invite| {
            invite
                .headers
                .set(HeaderName::SessionExpires, min.to_string());
            invite.headers.set(HeaderName::MinSe, min.to_string());
        });
        true
    }

    /// Negotiates both legs once the call is answered: B from its 2xx, A in
    /// the 2xx we send it (headers added to `ok`).
    pub(super) fn start_session_timers(&mut self, b_ok: &Message, ok: &mut Message) {
        // B leg: we are the UAC; the 2xx says who refreshes.
        if let Some((se, refresher)) = session_expires(b_ok) {
            let we_refresh = refresher.as_deref() != Some("uas");
            self.b_timer = Some(SessionTimer::new(se, we_refresh));
        }
        // A leg: we are the UAS.
        let a_supports = supports_timer(&self.a_invite);
        let (se, refresher) = match session_expires(&self.a_invite) {
            Some((se, r)) => (Some(se), r),
            None => (self.config.session_expires, None),
        };
        let Some(se) = se else { return };
        let we_refresh = match refresher.as_deref() {
            Some("uac") => false,
            Some("uas") => true,
            _ => !a_supports,
        };
        let timer = SessionTimer::new(se, we_refresh);
        ok.headers
            .push(HeaderName::SessionExpires, timer.header(false));
        if !we_refresh {
            ok.headers.push(HeaderName::Require, "timer");
        }
        self.a_timer = Some(timer);
    }

    fn timer_mut(&mut self, leg: LegId) -> Option<&mut SessionTimer> {
        match leg {
            LegId::A => self.a_timer.as_mut(),
            LegId::B(i) if Some(i) == self.winner => self.b_timer.as_mut(),
            LegId::B(_) => None,
        }
    }

    /// A re-INVITE or UPDATE from `leg` refreshes its session and may
    /// renegotiate interval and refresher (§9).
    pub(super) fn on_refresh_request(&mut self, leg: LegId, request: &Message) {
        let se = session_expires(request);
        if let Some(t) = self.timer_mut(leg) {
            if let Some((interval, refresher)) = se {
                t.interval = interval;
                match refresher.as_deref() {
                    Some("uac") => t.we_refresh = false,
                    Some("uas") => t.we_refresh = true,
                    _ => {}
                }
            }
            t.reset();
        }
    }

    /// `Session-Expires` for a message on `leg` (request: Tandem is UAC).
    pub(super) fn session_header(&self, leg: LegId, as_uac: bool) -> Option<String> {
        let t = match leg {
            LegId::A => self.a_timer.as_ref(),
            LegId::B(i) if Some(i) == self.winner => self.b_timer.as_ref(),
            LegId::B(_) => None,
        }?;
        Some(t.header(as_uac))
    }

    /// A 2xx to a re-INVITE/UPDATE we sent on `leg` refreshed it.
    pub(super) fn on_refresh_answered(&mut self, leg: LegId) {
        if let Some(t) = self.timer_mut(leg) {
            t.reset();
        }
    }

    /// The earliest session-timer deadline.
    pub(super) fn session_deadline(&self) -> Option<Instant> {
        if self.state != State::Confirmed {
            return None;
        }
        self.a_timer
            .iter()
            .chain(self.b_timer.iter())
            .map(|t| t.due)
            .min()
    }

    /// Refreshes the legs Tandem refreshes; ends the call when a peer let
    /// its session expire.
    pub(super) fn on_session_deadline(&mut self, now: Instant) {
        if self.state != State::Confirmed {
            return;
        }
        let legs = [
            (LegId::A, self.a_timer),
            (self.winner.map_or(LegId::A, LegId::B), self.b_timer),
        ];
        for (leg, timer) in legs {
            let Some(t) = timer else { continue };
            if t.due > now {
                continue;
            }
            if !t.we_refresh {
                tracing::info!(
                    message = "Session expired without a refresh, hanging up.",
                    ?leg
                );
                self.hangup_both();
                return;
            }
            self.send_refresh(leg);
            if let Some(t) = self.timer_mut(leg) {
                // Until the refresh is answered, wait for it as for a peer.
                t.due = now + t.interval / 2;
            }
        }
    }

    fn send_refresh(&mut self, leg: LegId) {
        let header = self.session_header(leg, true);
        let Some(dialog) = self.dialog_mut(leg) else {
            return;
        };
        let mut update = dialog.request(Method::Update);
        let target = dialog.target;
        update.headers.push(HeaderName::Supported, "timer");
        if let Some(h) = header {
            update.headers.push(HeaderName::SessionExpires, h);
        }
        update.headers.push(HeaderName::UserAgent, sip::USER_AGENT);
        tracing::debug!(message = "Refreshing the session.", ?leg);
        let tx = self.layer.send_request(update, target);
        self.track(tx, Pending::Refresh(leg));
    }

    /// The answer to our refresh on `leg`.
    pub(super) fn on_refresh_response(&mut self, leg: LegId, code: Option<u16>) {
        match code {
            Some(200..=299) => self.on_refresh_answered(leg),
            Some(405 | 501) => {
                tracing::info!(message = "Peer refuses UPDATE; no more refreshes.", ?leg);
                if let Some(t) = self.timer_mut(leg) {
                    t.we_refresh = false;
                    t.interval = Duration::from_secs(u32::MAX as u64);
                    t.reset();
                }
            }
            _ => {
                tracing::info!(message = "Session refresh failed, hanging up.", ?leg, ?code);
                self.hangup_both();
            }
        }
    }
}
