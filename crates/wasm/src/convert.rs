//! Between the API's types and the ones generated from WIT. What a plugin
//! answers passes the same checks as what a Lua script asks for.

use crate::tandem::plugin::types as wit;
use api::validate;
use api::{Decision, RouteAnswer};
use std::time::Duration;

/// The call view as the plugin sees it.
pub(crate) fn view(v: &api::CallView) -> wit::CallView {
    wit::CallView {
        user: v.user.clone(),
        ruri: v.ruri.clone(),
        from: v.from.clone(),
        from_user: v.from_user.clone(),
        from_name: v.from_name.clone(),
        to: v.to.clone(),
        call_id: v.call_id.clone(),
        source_ip: v.source_ip.to_string(),
        source_port: v.source_port,
        transport: v.transport.clone(),
        auth_user: v.auth_user.clone(),
        headers: v
            .headers
            .iter()
            .map(|(name, value)| wit::Header {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
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

fn header(h: wit::Header) -> Result<(String, String), String> {
    validate::header(&h.name, h.value).map_err(|e| e.to_string())
}

fn headers(list: Vec<wit::Header>) -> Result<Vec<(String, String)>, String> {
    list.into_iter().map(header).collect()
}

fn edit(e: wit::Edit) -> Result<api::Command, String> {
    Ok(match e {
        wit::Edit::SetHeader(h) => {
            let (name, value) = header(h)?;
            api::Command::SetHeader { name, value }
        }
        wit::Edit::AddHeader(h) => {
            let (name, value) = header(h)?;
            api::Command::AddHeader { name, value }
        }
        wit::Edit::RemoveHeader(name) => api::Command::RemoveHeader {
            name: validate::editable_header(&name)
                .map_err(|e| e.to_string())?
                .to_string(),
        },
        wit::Edit::SetRuri(uri) => {
            validate::uri(&uri).map_err(|e| e.to_string())?;
            api::Command::SetRuri { uri }
        }
        wit::Edit::SetFrom(f) => {
            if let Some(u) = &f.user {
                validate::user(u).map_err(|e| e.to_string())?;
            }
            if let Some(n) = &f.name {
                validate::display_name(n).map_err(|e| format!("set-from: {e}"))?;
            }
            api::Command::SetFrom {
                user: f.user,
                name: f.name,
            }
        }
        wit::Edit::SetVar(v) => api::Command::SetVar {
            name: v.name,
            value: v.value.map(|v| match v {
                wit::Value::Str(s) => api::Value::Str(s),
                wit::Value::Int(i) => api::Value::Int(i),
                wit::Value::Num(n) => api::Value::Num(n),
                wit::Value::Boolean(b) => api::Value::Bool(b),
            }),
        },
    })
}

fn dial(d: wit::Dial) -> Result<api::DialRequest, String> {
    let mut targets = Vec::new();
    for t in d.targets {
        validate::dial_target(&t.uri).map_err(|e| e.to_string())?;
        targets.push(api::DialTarget {
            uri: t.uri,
            headers: headers(t.headers)?,
        });
    }
    Ok(api::DialRequest {
        targets,
        mode: match d.mode {
            wit::DialMode::Serial => api::DialMode::Serial,
            wit::DialMode::Parallel => api::DialMode::Parallel,
        },
        timeout: d
            .timeout_ms
            .filter(|ms| *ms > 0)
            .map(|ms| Duration::from_millis(u64::from(ms))),
        headers: headers(d.headers)?,
        anchor_media: d.media.map(|m| m == wit::MediaMode::Anchored),
    })
}

/// The plugin's answer, checked.
pub(crate) fn route(r: wit::Route) -> Result<RouteAnswer, String> {
    let edits = r.edits.into_iter().map(edit).collect::<Result<_, _>>()?;
    let decision = match r.decision {
        wit::Decision::Dial(d) => Decision::Dial(dial(d)?),
        wit::Decision::Reject(rj) => {
            validate::reject_code(rj.code).map_err(|e| e.to_string())?;
            validate::value("reason", &rj.reason).map_err(|e| e.to_string())?;
            Decision::Reject(rj.code, rj.reason)
        }
        wit::Decision::Pass => Decision::Pass,
    };
    Ok(RouteAnswer { edits, decision })
}
