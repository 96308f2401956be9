//! A call without a network, for `tandem simulate` and dial-plan tests:
//! every command the script issues is written down, and each dial is
//! answered from a table of outcomes per target.

use crate::command::{Command, DialMode, DialResult, failure_rank, reason_phrase};
use crate::link::CommandReceiver;
use std::time::Duration;

/// What one target does when dialled in a simulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The target URI as the script dials it.
    pub uri: String,
    /// The final code it answers with (`200` answers).
    pub code: u16,
    /// Its reason phrase.
    pub reason: String,
}

impl Outcome {
    /// Parses `URI=CODE`, `URI=CODE Reason` or `URI=timeout` (no answer:
    /// 480, as the core reports a ring timeout).
    pub fn parse(text: &str) -> Result<Outcome, String> {
        let (uri, what) = text
            .rsplit_once('=')
            .ok_or_else(|| format!("outcome `{text}` is not URI=CODE"))?;
        let what = what.trim();
        if what.eq_ignore_ascii_case("timeout") {
            return Ok(Outcome {
                uri: uri.trim().to_string(),
                code: 480,
                reason: "Temporarily Unavailable".into(),
            });
        }
        let (code, reason) = what.split_once(' ').unwrap_or((what, ""));
        let code: u16 = code
            .parse()
            .ok()
            .filter(|c| (200..700).contains(c))
            .ok_or_else(|| format!("outcome `{text}`: `{code}` is not a final status code"))?;
        let reason = if reason.is_empty() {
            reason_phrase(code).to_string()
        } else {
            reason.to_string()
        };
        Ok(Outcome {
            uri: uri.trim().to_string(),
            code,
            reason,
        })
    }
}

/// The transcript of a simulated call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transcript {
    /// One line per command, dial results indented under their dial.
    pub lines: Vec<String>,
    /// What the caller would get: `answered by URI`, `rejected CODE
    /// Reason`, …
    pub result: String,
    /// The script failed (the caller gets 500 or a BYE).
    pub failed: bool,
}

/// Plays the call side for a script: answers dials from `outcomes`
/// (targets not listed answer 200) until the script is done. `ruri` is
/// the caller's Request-URI (what an empty dial rings).
pub async fn run(mut rx: CommandReceiver, ruri: &str, outcomes: &[Outcome]) -> Transcript {
    let mut t = Transcript::default();
    let mut b_ruri = ruri.to_string();
    let mut last_failure: Option<(u16, String)> = None;
    let mut decided: Option<String> = None;
    while let Some(cmd) = rx.recv().await {
        t.lines.push(cmd.to_string());
        match cmd {
            Command::SetRuri { uri } => b_ruri = uri,
            Command::Dial { request, reply } => {
                if decided.is_some() {
                    t.lines
                        .push("  -> 487 Request Terminated (call already ended)".into());
                    let _ = reply.send(DialResult::failed(487, "Request Terminated"));
                    continue;
                }
                let targets: Vec<String> = if request.targets.is_empty() {
                    vec![b_ruri.clone()]
                } else {
                    request.targets.iter().map(|t| t.uri.clone()).collect()
                };
                let answer = |uri: &str| {
                    outcomes
                        .iter()
                        .find(|o| o.uri == uri)
                        .map(|o| (o.code, o.reason.clone()))
                        .unwrap_or((200, "OK".into()))
                };
                let mut result = None;
                let mut failures = Vec::new();
                for uri in &targets {
                    let (code, reason) = answer(uri);
                    t.lines.push(format!("  {uri} -> {code} {reason}"));
                    if (200..300).contains(&code) {
                        result = Some(DialResult {
                            answered: true,
                            code,
                            reason,
                            duration: Duration::ZERO,
                        });
                        decided = Some(format!("answered by {uri}"));
                        break;
                    }
                    failures.push((code, reason));
                    // A 6xx stops a serial dial (RFC 3261 §16.7).
                    if request.mode == DialMode::Serial && code >= 600 {
                        break;
                    }
                }
                let result = result.unwrap_or_else(|| {
                    let (code, reason) = failures
                        .iter()
                        .rev()
                        .min_by_key(|(c, _)| failure_rank(*c))
                        .cloned()
                        .unwrap_or((480, "Temporarily Unavailable".into()));
                    last_failure = Some((code, reason.clone()));
                    DialResult::failed(code, &reason)
                });
                t.lines.push(format!(
                    "  => {} {} {}",
                    if result.answered {
                        "answered"
                    } else {
                        "failed"
                    },
                    result.code,
                    result.reason
                ));
                let _ = reply.send(result);
            }
            Command::Reject { code, reason } if decided.is_none() => {
                decided = Some(format!("rejected {code} {reason}"));
            }
            Command::Challenge if decided.is_none() => {
                decided = Some("challenged 407 Proxy Authentication Required".into());
            }
            Command::Hangup => {
                if decided.is_none() {
                    decided = Some("rejected 480 Temporarily Unavailable".into());
                } else if let Some(d) = &mut decided
                    && d.starts_with("answered")
                {
                    d.push_str(", hung up");
                }
            }
            Command::Done(result) => {
                if let Err(e) = result {
                    t.failed = true;
                    if decided.is_none() {
                        decided = Some(format!("rejected 500 Server Internal Error ({e})"));
                    } else if let Some(d) = &mut decided {
                        d.push_str(&format!(", then BYE: {e}"));
                    }
                }
                break;
            }
            _ => {}
        }
    }
    t.result = decided.unwrap_or_else(|| match last_failure {
        Some((code, reason)) => format!("rejected {code} {reason}"),
        None => "rejected 404 Not Found (the dial plan routed nowhere)".into(),
    });
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{DialRequest, DialTarget};
    use crate::link::CallLink;

    fn target(uri: &str) -> DialTarget {
        DialTarget {
            uri: uri.into(),
            headers: Vec::new(),
        }
    }

    #[test]
    fn outcomes_parse() {
        let o = Outcome::parse("sip:1000@127.0.0.1:5080=486").unwrap();
        assert_eq!(
            (o.uri.as_str(), o.code, o.reason.as_str()),
            ("sip:1000@127.0.0.1:5080", 486, "Busy Here")
        );
        assert_eq!(Outcome::parse("sip:a@b=timeout").unwrap().code, 480);
        assert_eq!(
            Outcome::parse("sip:a@b=503 Gone Fishing").unwrap().reason,
            "Gone Fishing"
        );
        assert!(Outcome::parse("sip:a@b").is_err());
        assert!(Outcome::parse("sip:a@b=99").is_err());
    }

    #[tokio::test]
    async fn serial_failover_then_answer() {
        let (link, rx) = CallLink::pair();
        let outcomes = vec![Outcome::parse("sip:a@1.2.3.4=486").unwrap()];
        let script = async move {
            let r = link
                .dial(DialRequest {
                    targets: vec![target("sip:a@1.2.3.4"), target("sip:b@1.2.3.4")],
                    ..Default::default()
                })
                .await;
            link.send(Command::Done(Ok(())));
            r
        };
        let (t, r) = tokio::join!(run(rx, "sip:x@y", &outcomes), script);
        assert!(r.answered);
        assert_eq!(t.result, "answered by sip:b@1.2.3.4");
        assert!(
            t.lines
                .iter()
                .any(|l| l.contains("sip:a@1.2.3.4 -> 486 Busy Here"))
        );
    }

    #[tokio::test]
    async fn failed_dial_without_reject_relays_the_failure() {
        let (link, rx) = CallLink::pair();
        let outcomes = vec![Outcome::parse("sip:a@1.2.3.4=486").unwrap()];
        let script = async move {
            link.dial(DialRequest {
                targets: vec![target("sip:a@1.2.3.4")],
                ..Default::default()
            })
            .await;
            link.send(Command::Done(Ok(())));
        };
        let (t, ()) = tokio::join!(run(rx, "sip:x@y", &outcomes), script);
        assert_eq!(t.result, "rejected 486 Busy Here");
    }
}
