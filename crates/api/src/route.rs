//! Routers: code that answers a new call with B-leg edits and a decision
//! without driving the call itself (Wasm plugins), so that they can be
//! chained, and called from a Lua dial plan (`tandem.plugin(name)`).

use crate::command::{Command, DialRequest, DialResult};
use crate::host::Host;
use crate::view::CallView;
use std::sync::Arc;

/// What a router decided for a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Ring these targets.
    Dial(DialRequest),
    /// Refuse with this code (300–699) and reason.
    Reject(u16, String),
    /// No decision: the next handler decides, with the edits applied.
    Pass,
}

/// A router's answer to a new call: B-leg edits, in order (only header,
/// R-URI, From and variable commands), and the decision.
#[derive(Debug)]
pub struct RouteAnswer {
    /// The edits, as API commands.
    pub edits: Vec<Command>,
    /// The decision.
    pub decision: Decision,
}

/// Why a router gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouterError {
    /// No router of that name is configured.
    #[error("no plugin named `{0}`")]
    Unknown(String),
    /// The router failed too often in a row and is switched off until a
    /// good reload.
    #[error("plugin `{0}` is disabled after repeated failures")]
    Disabled(String),
    /// This event failed (trap, CPU or memory limit, refused answer).
    #[error("{0}")]
    Failed(String),
}

/// One version of a router, pinned by whoever holds it: a call that routed
/// through it is told how it ended by the same version.
pub trait Router: Send + Sync {
    /// `name@vN`, for logs.
    fn label(&self) -> &str;
    /// Answers a new call. Synchronous and bounded by the router's CPU
    /// limit.
    fn route(&self, view: &CallView, host: &Arc<dyn Host>) -> Result<RouteAnswer, RouterError>;
    /// Tells the router how the dial it decided ended.
    fn hangup(&self, call_id: &str, result: &DialResult, host: &Arc<dyn Host>);
}

/// Routers by name: the live version of each.
pub trait Routers: Send + Sync {
    /// The live version of router `name`.
    fn get(&self, name: &str) -> Result<Arc<dyn Router>, RouterError>;
    /// Versions with calls, for status lines (e.g. `lcr@v2:10,lcr@v3:1`).
    fn status(&self) -> String {
        String::new()
    }
}

impl CallView {
    /// Applies a B-leg edit to the view, so that the next handler of a
    /// chain reads the call as the previous one left it. Non-edit commands
    /// are ignored.
    pub fn apply(&mut self, edit: &Command) {
        match edit {
            Command::SetHeader { name, value } => {
                self.headers.remove(name);
                self.headers.push(name, value);
            }
            Command::AddHeader { name, value } => {
                self.headers.push(name, value);
            }
            Command::RemoveHeader { name } => {
                self.headers.remove(name);
            }
            Command::SetRuri { uri } => {
                self.user = uri_user(uri).to_string();
                self.ruri = uri.clone();
            }
            Command::SetVar { name, value } => match value {
                Some(v) => {
                    self.vars.insert(name.clone(), v.clone());
                }
                None => {
                    self.vars.remove(name);
                }
            },
            Command::SetFrom { user, name } => self.parties.edit(|parties| {
                if let Some(user) = user {
                    parties.from = with_user(&parties.from, user);
                    parties.from_user = user.clone();
                }
                if let Some(name) = name {
                    parties.from_name = name.clone();
                }
            }),
            _ => {}
        }
    }
}

/// The user part of a `sip:user@host` URI ("" if none).
fn uri_user(uri: &str) -> &str {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return "";
    };
    if scheme.eq_ignore_ascii_case("tel") {
        // tel:+4930123;phone-context=…: the number is the user.
        return rest.split(';').next().unwrap_or(rest);
    }
    match rest.rsplit_once('@') {
        Some((user, _)) => user.split(';').next().unwrap_or(user),
        None => "",
    }
}

/// `uri` with its user part replaced (or added).
fn with_user(uri: &str, user: &str) -> String {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return uri.to_string();
    };
    let host = rest.split_once('@').map(|(_, h)| h).unwrap_or(rest);
    format!("{scheme}:{user}@{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_show_in_the_view() {
        let mut view = CallView::simulated("alice", "0301234");
        view.apply(&Command::SetRuri {
            uri: "sip:+49301234@10.0.0.1:5080".into(),
        });
        view.apply(&Command::SetFrom {
            user: Some("+4930999".into()),
            name: Some("Sales".into()),
        });
        view.apply(&Command::AddHeader {
            name: "X-A".into(),
            value: "1".into(),
        });
        view.apply(&Command::SetHeader {
            name: "X-A".into(),
            value: "2".into(),
        });
        view.apply(&Command::RemoveHeader {
            name: "Max-Forwards".into(),
        });
        view.apply(&Command::SetVar {
            name: "account".into(),
            value: Some(crate::Value::Str("acme".into())),
        });
        assert_eq!(view.user, "+49301234");
        assert_eq!(view.ruri, "sip:+49301234@10.0.0.1:5080");
        assert_eq!(view.from(), "sip:+4930999@127.0.0.1");
        assert_eq!((view.from_user(), view.from_name()), ("+4930999", "Sales"));
        assert_eq!(view.headers("X-A"), vec!["2"]);
        assert_eq!(view.header("Max-Forwards"), None);
        assert_eq!(
            view.vars.get("account"),
            Some(&crate::Value::Str("acme".into()))
        );
    }

    #[test]
    fn uri_users() {
        assert_eq!(uri_user("sip:1000@h;transport=tcp"), "1000");
        assert_eq!(uri_user("sip:1000;npdi@h"), "1000");
        assert_eq!(uri_user("sip:h"), "");
        assert_eq!(uri_user("tel:+4930123;phone-context=x"), "+4930123");
        assert_eq!(with_user("sip:h:5060", "bob"), "sip:bob@h:5060");
    }
}
