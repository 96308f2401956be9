//! Router chains without an engine: scripted routers answer, the
//! simulator plays the call, and the transcript shows what the call got.

use api::host::BoxFuture;
use api::simulate::{Outcome, Transcript, run};
use api::{
    CallHandler, CallLink, CallView, Command, Decision, DialMode, DialRequest, DialResult,
    DialTarget, Host, HttpRequest, HttpResponse, KvStore, MemoryKv, OnError, RouteAnswer,
    RouteInfo, Router, RouterChain, RouterError, Routers,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a scripted router does.
#[derive(Clone)]
enum Does {
    /// Adds `X-By: NAME`, then passes.
    Pass,
    /// Adds `X-By: NAME`, then dials this URI.
    Dial(&'static str),
    /// Rejects with 403.
    Reject,
    /// Fails.
    Fail,
}

struct Scripted {
    label: String,
    does: Does,
    /// What the router saw (the user) and heard at hangup (the code).
    seen: Arc<Mutex<Vec<String>>>,
}

impl Router for Scripted {
    fn label(&self) -> &str {
        &self.label
    }

    fn route(&self, view: &CallView, _: &Arc<dyn Host>) -> Result<RouteAnswer, RouterError> {
        self.seen
            .lock()
            .unwrap()
            .push(format!("{} saw {}", self.label, view.user));
        let edits = vec![
            Command::AddHeader {
                name: "X-By".into(),
                value: self.label.clone(),
            },
            Command::SetRuri {
                uri: format!("sip:{}x@127.0.0.1", view.user),
            },
        ];
        let decision = match self.does {
            Does::Pass => Decision::Pass,
            Does::Dial(uri) => Decision::Dial(DialRequest {
                targets: vec![DialTarget {
                    uri: uri.into(),
                    headers: Vec::new(),
                }],
                ..DialRequest::default()
            }),
            Does::Reject => Decision::Reject(403, "Forbidden".into()),
            Does::Fail => return Err(RouterError::Failed(format!("{}: trap", self.label))),
        };
        Ok(RouteAnswer { edits, decision })
    }

    fn hangup(&self, _: &str, result: &DialResult, _: &Arc<dyn Host>) {
        self.seen
            .lock()
            .unwrap()
            .push(format!("{} heard {}", self.label, result.code));
    }
}

#[derive(Default)]
struct Scripts {
    routers: BTreeMap<String, Does>,
    off: Vec<String>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Routers for Scripts {
    fn get(&self, name: &str) -> Result<Arc<dyn Router>, RouterError> {
        if self.off.iter().any(|n| n == name) {
            return Err(RouterError::Disabled(format!("{name}@v1")));
        }
        let does = self
            .routers
            .get(name)
            .ok_or_else(|| RouterError::Unknown(name.into()))?;
        Ok(Arc::new(Scripted {
            label: format!("{name}@v1"),
            does: does.clone(),
            seen: self.seen.clone(),
        }))
    }
}

#[derive(Default)]
struct StaticHost {
    kv: MemoryKv,
}

impl Host for StaticHost {
    fn kv(&self) -> &dyn KvStore {
        &self.kv
    }

    fn http(&self, _: HttpRequest) -> BoxFuture<'static, Result<HttpResponse, String>> {
        Box::pin(async { Err("no http".to_string()) })
    }

    fn route(&self, user: &str) -> Option<RouteInfo> {
        Some(RouteInfo {
            targets: vec![format!("sip:{user}@127.0.0.9:5060")],
            mode: DialMode::Serial,
            timeout: Duration::from_secs(5),
            anchor_media: None,
        })
    }
}

fn scripts(list: &[(&str, Does)]) -> Scripts {
    Scripts {
        routers: list
            .iter()
            .map(|(n, d)| (n.to_string(), d.clone()))
            .collect(),
        ..Scripts::default()
    }
}

async fn play(chain: &RouterChain, user: &str) -> (String, Transcript) {
    let (link, rx) = CallLink::pair();
    let (label, run_fut) = chain
        .start(CallView::simulated("alice", user), link)
        .expect("start");
    tokio::spawn(run_fut);
    let outcomes = [Outcome::parse("sip:busy@127.0.0.1:5080=486").expect("outcome")];
    (label, run(rx, "sip:1000@127.0.0.1", &outcomes).await)
}

fn chain(
    scripts: Scripts,
    names: &[&str],
    on_error: OnError,
) -> (RouterChain, Arc<Mutex<Vec<String>>>) {
    let seen = scripts.seen.clone();
    let chain = RouterChain::new(
        Arc::new(scripts),
        Arc::new(StaticHost::default()),
        names.iter().map(|n| n.to_string()).collect(),
        None,
        on_error,
    );
    (chain, seen)
}

#[tokio::test]
async fn pass_hands_the_edited_call_to_the_next_router() {
    let (chain, seen) = chain(
        scripts(&[
            ("a", Does::Pass),
            ("b", Does::Dial("sip:gw@127.0.0.1:5081")),
        ]),
        &["a", "b"],
        OnError::Reject,
    );
    let (label, t) = play(&chain, "1000").await;
    assert_eq!(label, "a@v1>b@v1>static");
    // b read the R-URI a set; both edits reached the call, in order.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, ["a@v1 saw 1000", "b@v1 saw 1000x", "b@v1 heard 200"]);
    let text = t.lines.join("\n");
    assert!(
        text.find("X-By: a@v1").unwrap() < text.find("X-By: b@v1").unwrap(),
        "{text}"
    );
    assert!(text.contains("sip:1000xx@127.0.0.1"), "{text}");
    assert!(t.result.contains("sip:gw@127.0.0.1:5081"), "{}", t.result);
    assert!(!t.failed);
}

#[tokio::test]
async fn when_every_router_passes_the_static_route_dials() {
    let (chain, _) = chain(scripts(&[("a", Does::Pass)]), &["a"], OnError::Reject);
    let (_, t) = play(&chain, "1000").await;
    let text = t.lines.join("\n");
    assert!(text.contains("sip:1000x@127.0.0.9:5060"), "{text}");
}

#[tokio::test]
async fn a_reject_ends_the_chain() {
    let (chain, seen) = chain(
        scripts(&[("a", Does::Reject), ("b", Does::Pass)]),
        &["a", "b"],
        OnError::Reject,
    );
    let (_, t) = play(&chain, "1000").await;
    assert!(t.result.contains("403"), "{}", t.result);
    assert_eq!(seen.lock().unwrap().len(), 1, "b was never asked");
}

#[tokio::test]
async fn failures_follow_on_error() {
    let list = [
        ("bad", Does::Fail),
        ("b", Does::Dial("sip:gw@127.0.0.1:5081")),
    ];
    // reject: 500 (the script failed), b never asked.
    let (c, seen) = chain(scripts(&list), &["bad", "b"], OnError::Reject);
    let (_, t) = play(&c, "1000").await;
    assert!(t.failed, "{t:?}");
    assert_eq!(seen.lock().unwrap().len(), 1);
    // next: b routes.
    let (c, _) = chain(scripts(&list), &["bad", "b"], OnError::Next);
    let (_, t) = play(&c, "1000").await;
    assert!(!t.failed);
    assert!(t.lines.join("\n").contains("sip:gw@127.0.0.1:5081"));
    // static: straight to the static route, b skipped.
    let (c, seen) = chain(scripts(&list), &["bad", "b"], OnError::Static);
    let (_, t) = play(&c, "1000").await;
    assert!(
        t.lines.join("\n").contains("sip:1000@127.0.0.9:5060"),
        "{t:?}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
    // A switched-off router is a failure too.
    let mut s = scripts(&list);
    s.off.push("bad".into());
    let (c, _) = chain(s, &["bad", "b"], OnError::Next);
    let (label, t) = play(&c, "1000").await;
    assert_eq!(label, "bad(off)>b@v1>static");
    assert!(t.lines.join("\n").contains("sip:gw@127.0.0.1:5081"));
}

#[tokio::test]
async fn prefixes_and_listeners_pick_the_chain() {
    let list = [
        ("a", Does::Dial("sip:a@127.0.0.1:5081")),
        ("b", Does::Dial("sip:b@127.0.0.1:5082")),
        ("c", Does::Dial("sip:c@127.0.0.1:5083")),
    ];
    let (c, _) = chain(scripts(&list), &["a"], OnError::Reject);
    let c = c
        .with_prefix("00", vec!["b".into()])
        .with_prefix("0049", vec!["c".into()])
        .with_listener("udp:127.0.0.1:5999", vec!["c".into()]);
    for (user, want) in [("1000", "sip:a@"), ("0033", "sip:b@"), ("00491", "sip:c@")] {
        let (_, t) = play(&c, user).await;
        assert!(t.lines.join("\n").contains(want), "{user}: {t:?}");
    }
    // The listener of the simulated call wins over any prefix.
    let c = c.with_listener("udp:127.0.0.1:5060", vec!["b".into()]);
    let (_, t) = play(&c, "00491").await;
    assert!(t.lines.join("\n").contains("sip:b@"), "{t:?}");
}
