//! Between the API's types and the ones generated from WIT. What a plugin
//! answers passes the same checks as what a Lua script asks for.

use crate::tandem::plugin::types as wit;
use api::validate;
use api::{Decision, RouteAnswer};
use std::time::Duration;
use wasmtime::component::{ComponentType, Lower};

/// One header of [`ViewArg`].
#[derive(ComponentType, Lower)]
#[component(record)]
pub(crate) struct HeaderArg<'a> {
    name: &'a str,
    value: &'a str,
}

/// The call view as `on-invite` receives it (the WIT record `call-view`),
/// borrowed from the API's view: the strings are copied once, straight
/// into the plugin's memory, with no owned copy on the host first.
#[derive(ComponentType, Lower)]
#[component(record)]
pub(crate) struct ViewArg<'a> {
    user: &'a str,
    ruri: &'a str,
    #[component(name = "from")]
    from: &'a str,
    #[component(name = "from-user")]
    from_user: &'a str,
    #[component(name = "from-name")]
    from_name: &'a str,
    to: &'a str,
    #[component(name = "call-id")]
    call_id: &'a str,
    #[component(name = "source-ip")]
    source_ip: &'a str,
    #[component(name = "source-port")]
    source_port: u16,
    transport: &'a str,
    #[component(name = "auth-user")]
    auth_user: Option<&'a str>,
    headers: &'a [HeaderArg<'a>],
}

/// What a [`ViewArg`] borrows that the view does not hold as text.
pub(crate) struct ViewParts<'a> {
    source_ip: String,
    headers: Vec<HeaderArg<'a>>,
}

impl<'a> ViewParts<'a> {
    /// The source address as text and the header list of `v`.
    pub(crate) fn of(v: &'a api::CallView) -> ViewParts<'a> {
        ViewParts {
            source_ip: v.source_ip.to_string(),
            headers: v
                .headers
                .iter()
                .map(|(name, value)| HeaderArg { name, value })
                .collect(),
        }
    }

    /// The view as the plugin receives it.
    pub(crate) fn arg<'b>(&'b self, v: &'b api::CallView) -> ViewArg<'b> {
        ViewArg {
            user: &v.user,
            ruri: &v.ruri,
            from: v.from(),
            from_user: v.from_user(),
            from_name: v.from_name(),
            to: v.to(),
            call_id: &v.call_id,
            source_ip: &self.source_ip,
            source_port: v.source_port,
            transport: &v.transport,
            auth_user: v.auth_user.as_deref(),
            headers: &self.headers,
        }
    }
}

/// A dial result for `on-hangup`.
pub(crate) fn dial_result(r: &api::DialResult) -> wit::DialResult {
    wit::DialResult {
        answered: r.answered,
        code: r.code,
        reason: r.reason.clone(),
        duration_ms: u64::try_from(r.duration.as_millis()).unwrap_or(u64::MAX),
    }
}

fn headers(list: Vec<wit::Header>) -> Vec<(String, String)> {
    list.into_iter().map(|h| (h.name, h.value)).collect()
}

/// A WIT value as an API value.
pub(crate) fn value(v: wit::Value) -> api::Value {
    match v {
        wit::Value::Str(s) => api::Value::Str(s),
        wit::Value::Int(i) => api::Value::Int(i),
        wit::Value::Num(n) => api::Value::Num(n),
        wit::Value::Boolean(b) => api::Value::Bool(b),
    }
}

fn edit(e: wit::Edit) -> Result<api::Command, String> {
    let edit = match e {
        wit::Edit::SetHeader(h) => api::Command::SetHeader {
            name: h.name,
            value: h.value,
        },
        wit::Edit::AddHeader(h) => api::Command::AddHeader {
            name: h.name,
            value: h.value,
        },
        wit::Edit::RemoveHeader(name) => api::Command::RemoveHeader { name },
        wit::Edit::SetRuri(uri) => api::Command::SetRuri { uri },
        wit::Edit::SetFrom(f) => api::Command::SetFrom {
            user: f.user,
            name: f.name,
        },
        wit::Edit::SetVar(v) => api::Command::SetVar {
            name: v.name,
            value: v.value.map(value),
        },
    };
    validate::checked_edit(edit).map_err(|e| e.to_string())
}

fn dial(d: wit::Dial) -> Result<api::DialRequest, String> {
    let canonical = |list: Vec<wit::Header>| -> Result<Vec<(String, String)>, String> {
        headers(list)
            .into_iter()
            .map(|(n, v)| validate::header(&n, v).map_err(|e| e.to_string()))
            .collect()
    };
    let mut targets = Vec::new();
    for t in d.targets {
        targets.push(api::DialTarget {
            uri: t.uri,
            headers: canonical(t.headers)?,
        });
    }
    let request = api::DialRequest {
        targets,
        mode: match d.mode {
            wit::DialMode::Serial => api::DialMode::Serial,
            wit::DialMode::Parallel => api::DialMode::Parallel,
        },
        timeout: d
            .timeout_ms
            .filter(|ms| *ms > 0)
            .map(|ms| Duration::from_millis(u64::from(ms)).min(validate::MAX_DIAL_TIMEOUT)),
        headers: canonical(d.headers)?,
        anchor_media: d.media.map(|m| m == wit::MediaMode::Anchored),
    };
    validate::dial_request(&request).map_err(|e| e.to_string())?;
    Ok(request)
}

/// The plugin's answer, checked.
pub(crate) fn route(r: wit::Route) -> Result<RouteAnswer, String> {
    let edits = r.edits.into_iter().map(edit).collect::<Result<_, _>>()?;
    let decision = match r.decision {
        wit::Decision::Dial(d) => Decision::Dial(dial(d)?),
        wit::Decision::Reject(rj) => {
            let (code, reason) =
                validate::reject(rj.code, Some(rj.reason)).map_err(|e| e.to_string())?;
            Decision::Reject(code, reason)
        }
        wit::Decision::Pass => Decision::Pass,
    };
    Ok(RouteAnswer { edits, decision })
}
