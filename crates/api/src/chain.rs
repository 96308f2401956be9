//! Routers in front of a dial plan: each router of the chain answers in
//! turn; `pass` hands the call, with the router's edits applied, to the
//! next; after the last comes the dial plan (`then`) or, with none, the
//! static routes. Which chain a call takes can depend on the listener it
//! arrived on or on the dialled user's prefix.

use crate::command::{Command, DialRequest, DialTarget, ScriptError};
use crate::host::{CallHandler, HandlerError, Host, ScriptRun};
use crate::link::CallLink;
use crate::route::{Decision, Router, RouterError, Routers};
use crate::view::CallView;
use std::sync::Arc;

/// What a router's failure (trap, limit, refused answer, switched off)
/// does to the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// End the call with 500 (the default).
    Reject,
    /// Go on with the next router of the chain (then the dial plan or
    /// the static routes).
    Next,
    /// Skip the rest of the chain and the dial plan: the static routes.
    Static,
}

impl OnError {
    /// `reject`, `next` or `static`.
    pub fn parse(s: &str) -> Option<OnError> {
        match s {
            "reject" => Some(OnError::Reject),
            "next" => Some(OnError::Next),
            "static" => Some(OnError::Static),
            _ => None,
        }
    }
}

/// A call handler that asks routers in order.
pub struct RouterChain {
    routers: Arc<dyn Routers>,
    host: Arc<dyn Host>,
    /// The chain for calls no prefix matches.
    default: Vec<String>,
    /// (prefix, chain), longest prefix first.
    by_prefix: Vec<(String, Vec<String>)>,
    /// (listener, chain): calls arriving on that listener.
    by_listener: Vec<(String, Vec<String>)>,
    then: Option<Arc<dyn CallHandler>>,
    on_error: OnError,
}

impl std::fmt::Debug for RouterChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterChain")
            .field("default", &self.default)
            .field("by_prefix", &self.by_prefix)
            .field("on_error", &self.on_error)
            .finish_non_exhaustive()
    }
}

impl RouterChain {
    /// Every call asks `default` in order, then `then` (or the static
    /// routes).
    pub fn new(
        routers: Arc<dyn Routers>,
        host: Arc<dyn Host>,
        default: Vec<String>,
        then: Option<Arc<dyn CallHandler>>,
        on_error: OnError,
    ) -> RouterChain {
        RouterChain {
            routers,
            host,
            default,
            by_prefix: Vec::new(),
            by_listener: Vec::new(),
            then,
            on_error,
        }
    }

    /// Calls whose dialled user starts with `prefix` ask `chain` instead
    /// of the default one (the longest matching prefix wins).
    pub fn with_prefix(mut self, prefix: &str, chain: Vec<String>) -> RouterChain {
        self.by_prefix.push((prefix.to_string(), chain));
        self.by_prefix
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        self
    }

    /// Calls arriving on `listener` (`udp:IP:PORT`, as in
    /// [`CallView::listener`]) ask `chain`, whatever their prefix.
    pub fn with_listener(mut self, listener: &str, chain: Vec<String>) -> RouterChain {
        self.by_listener.push((listener.to_string(), chain));
        self
    }

    /// The chain of a call: by listener, else by the longest prefix of the
    /// dialled user, else the default one.
    fn chain_for(&self, view: &CallView) -> &[String] {
        if let Some((_, chain)) = self.by_listener.iter().find(|(l, _)| **l == *view.listener) {
            return chain;
        }
        self.by_prefix
            .iter()
            .find(|(prefix, _)| view.user.starts_with(prefix.as_str()))
            .map(|(_, chain)| chain.as_slice())
            .unwrap_or(&self.default)
    }

    /// What comes after the routers, in a call's label.
    fn next_label(&self) -> &'static str {
        match &self.then {
            Some(_) => "dialplan",
            None => "static",
        }
    }
}

/// A router of the chain, pinned when the call starts.
type Pinned = (String, Result<Arc<dyn Router>, RouterError>);

impl CallHandler for RouterChain {
    fn start(&self, view: CallView, link: CallLink) -> Result<(String, ScriptRun), HandlerError> {
        let pinned: Vec<Pinned> = self
            .chain_for(&view)
            .iter()
            .map(|name| (name.clone(), self.routers.get(name)))
            .collect();
        let mut label: Vec<String> = pinned
            .iter()
            .map(|(name, r)| match r {
                Ok(r) => r.label().to_string(),
                Err(_) => format!("{name}(off)"),
            })
            .collect();
        label.push(self.next_label().to_string());
        let run = Run {
            host: self.host.clone(),
            then: self.then.clone(),
            on_error: self.on_error,
        };
        Ok((label.join(">"), Box::pin(run.run(view, link, pinned))))
    }

    fn version(&self) -> String {
        let then = match &self.then {
            Some(h) => h.version(),
            None => "static".to_string(),
        };
        format!("{}>{then}", self.routers.status())
    }
}

/// What a call's run of the chain needs.
struct Run {
    host: Arc<dyn Host>,
    then: Option<Arc<dyn CallHandler>>,
    on_error: OnError,
}

/// How the routers left the call.
enum Outcome {
    /// A router dialled or rejected: the call is decided.
    Decided,
    /// Every router passed: the dial plan, or the static routes.
    Passed,
    /// A router failed and the fallback is the static routes.
    Static,
    /// A router failed and the call ends with 500.
    Failed(ScriptError),
}

impl Run {
    async fn run(self, mut view: CallView, link: CallLink, pinned: Vec<Pinned>) {
        let outcome = self.ask(&mut view, &link, pinned).await;
        let done = match outcome {
            Outcome::Decided => Ok(()),
            Outcome::Failed(e) => Err(e),
            Outcome::Static => {
                dial_static(&self.host, &view.user, &link).await;
                Ok(())
            }
            Outcome::Passed => match &self.then {
                Some(handler) => match handler.start(view, link.clone()) {
                    // The dial plan finishes the call (and says so).
                    Ok((label, run)) => {
                        tracing::debug!(message = "The dial plan takes the call.", dialplan = %label);
                        return run.await;
                    }
                    Err(e) => Err(ScriptError {
                        script: handler.version(),
                        line: None,
                        message: e.to_string(),
                    }),
                },
                None => {
                    dial_static(&self.host, &view.user, &link).await;
                    Ok(())
                }
            },
        };
        link.send(Command::Done(done));
    }

    async fn ask(&self, view: &mut CallView, link: &CallLink, pinned: Vec<Pinned>) -> Outcome {
        for (name, router) in pinned {
            let routed = match router {
                Ok(r) => {
                    let label = r.label().to_string();
                    r.route(view, &self.host)
                        .map(|a| (r, a))
                        .map_err(|e| (label, e))
                }
                Err(e) => Err((name, e)),
            };
            let (router, answer) = match routed {
                Ok(ok) => ok,
                Err((label, e)) => {
                    let error = ScriptError {
                        script: label,
                        line: None,
                        message: e.to_string(),
                    };
                    match self.on_error {
                        OnError::Reject => return Outcome::Failed(error),
                        OnError::Next | OnError::Static => {
                            tracing::warn!(
                                message = "Plugin failed; the call falls back.",
                                plugin = %error.script,
                                call_id = %view.call_id,
                                error = %error.message,
                                fallback = if self.on_error == OnError::Next { "next" } else { "static" },
                            );
                            if self.on_error == OnError::Static {
                                return Outcome::Static;
                            }
                            continue;
                        }
                    }
                }
            };
            for edit in answer.edits {
                view.apply(&edit);
                link.send(edit);
            }
            match answer.decision {
                Decision::Dial(request) => {
                    let result = link.dial(request).await;
                    router.hangup(&view.call_id, &result, &self.host);
                    return Outcome::Decided;
                }
                Decision::Reject(code, reason) => {
                    link.send(Command::Reject { code, reason });
                    return Outcome::Decided;
                }
                Decision::Pass => {}
            }
        }
        Outcome::Passed
    }
}

/// Dials the static route of `user`, if there is one (none: the call ends
/// with 404 when the run finishes).
async fn dial_static(host: &Arc<dyn Host>, user: &str, link: &CallLink) {
    if let Some(route) = host.route(user) {
        link.dial(DialRequest {
            targets: route
                .targets
                .into_iter()
                .map(|uri| DialTarget {
                    uri,
                    headers: Vec::new(),
                })
                .collect(),
            mode: route.mode,
            timeout: Some(route.timeout),
            headers: Vec::new(),
            anchor_media: route.anchor_media,
        })
        .await;
    }
}
