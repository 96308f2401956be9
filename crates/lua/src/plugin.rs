//! `tandem.plugin(name)`: a Wasm routing plugin called from a dial plan.
//! `:route(call)` returns the plugin's answer as a table the script can
//! read, change and play with `call:apply(answer)`, so hot routing logic
//! can live in Wasm and the glue in Lua.

use crate::call::{LuaCall, dial_request};
use crate::call_object::CallTable;
use crate::convert::{from_lua_value, to_lua_value};
use api::validate;
use api::{Command, Decision, DialRequest, Host, RouteAnswer, Router, RouterError};
use mlua::{Lua, Table, UserData, UserDataMethods, Value};
use std::sync::Arc;

fn err(e: impl std::fmt::Display) -> mlua::Error {
    mlua::Error::RuntimeError(e.to_string())
}

/// A plugin by name; each `:route` asks the version live at that moment
/// and pins it to the call (its `on-hangup` goes to the same version).
pub(crate) struct PluginHandle {
    name: String,
    host: Arc<dyn Host>,
}

/// `tandem.plugin(name)`: unknown names are an error at once.
pub(crate) fn handle(host: &Arc<dyn Host>, name: String) -> mlua::Result<PluginHandle> {
    match host.plugin(&name) {
        Err(RouterError::Unknown(_)) => Err(err(format!(
            "tandem.plugin: no plugin named `{name}` in [[plugins]]"
        ))),
        // Disabled now does not mean disabled at route time.
        _ => Ok(PluginHandle {
            name,
            host: host.clone(),
        }),
    }
}

impl UserData for PluginHandle {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("route", |lua, p, call: Value| {
            let call = lua
                .app_data_ref::<Arc<CallTable>>()
                .and_then(|calls| calls.get(&call))
                .ok_or_else(|| {
                    err("plugin:route(call): the argument must be the call of a running script")
                })?;
            if !call.count_route() {
                return Err(err(format!(
                    "plugin:route: at most {} plugin routes per call",
                    crate::call::MAX_ROUTES_PER_CALL
                )));
            }
            let routed = p
                .host
                .plugin(&p.name)
                .and_then(|router| router.route(call.view(), &p.host).map(|a| (router, a)));
            match routed {
                Ok((router, answer)) => {
                    let table = answer_table(lua, router.label(), &answer)?;
                    call.pin(router);
                    Ok((Value::Table(table), Value::Nil))
                }
                Err(e) => {
                    tracing::warn!(
                        message = "Plugin failed; the script gets nil and the error.",
                        plugin = %p.name,
                        error = %e,
                    );
                    Ok((Value::Nil, Value::String(lua.create_string(e.to_string())?)))
                }
            }
        });
        methods.add_meta_method(mlua::MetaMethod::ToString, |_, p, ()| {
            Ok(format!("plugin {}", p.name))
        });
    }
}

/// The answer as Lua sees it: `action` (`dial`, `reject`, `pass`),
/// `plugin` (`name@vN`), `edits` (a list of `{ op = …, … }`), and for a
/// dial `targets`, `mode`, `timeout`, `headers`, `media` (the shape
/// `call:dial` takes), for a reject `code` and `reason`.
fn answer_table(lua: &Lua, label: &str, answer: &RouteAnswer) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("plugin", label)?;
    let edits = lua.create_table()?;
    for edit in &answer.edits {
        edits.push(edit_table(lua, edit)?)?;
    }
    t.set("edits", edits)?;
    match &answer.decision {
        Decision::Dial(request) => {
            t.set("action", "dial")?;
            let targets = lua.create_table()?;
            for target in &request.targets {
                let e = lua.create_table()?;
                e.set("uri", target.uri.as_str())?;
                e.set("headers", header_table(lua, &target.headers)?)?;
                targets.push(e)?;
            }
            t.set("targets", targets)?;
            t.set("mode", request.mode.as_str())?;
            if let Some(timeout) = request.timeout {
                t.set("timeout", timeout.as_secs_f64())?;
            }
            t.set("headers", header_table(lua, &request.headers)?)?;
            if let Some(anchor) = request.anchor_media {
                t.set("media", if anchor { "anchored" } else { "direct" })?;
            }
        }
        Decision::Reject(code, reason) => {
            t.set("action", "reject")?;
            t.set("code", *code)?;
            t.set("reason", reason.as_str())?;
        }
        Decision::Pass => t.set("action", "pass")?,
    }
    Ok(t)
}

fn header_table(lua: &Lua, headers: &[(String, String)]) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for (n, v) in headers {
        t.set(n.as_str(), v.as_str())?;
    }
    Ok(t)
}

fn edit_table(lua: &Lua, edit: &Command) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    match edit {
        Command::SetHeader { name, value } => {
            t.set("op", "set_header")?;
            t.set("name", name.as_str())?;
            t.set("value", value.as_str())?;
        }
        Command::AddHeader { name, value } => {
            t.set("op", "add_header")?;
            t.set("name", name.as_str())?;
            t.set("value", value.as_str())?;
        }
        Command::RemoveHeader { name } => {
            t.set("op", "remove_header")?;
            t.set("name", name.as_str())?;
        }
        Command::SetRuri { uri } => {
            t.set("op", "set_ruri")?;
            t.set("uri", uri.as_str())?;
        }
        Command::SetFrom { user, name } => {
            t.set("op", "set_from")?;
            t.set("user", user.as_deref())?;
            t.set("name", name.as_deref())?;
        }
        Command::SetVar { name, value } => {
            t.set("op", "set_var")?;
            t.set("name", name.as_str())?;
            if let Some(v) = value {
                t.set("value", to_lua_value(lua, v)?)?;
            }
        }
        _ => {}
    }
    Ok(t)
}

/// One entry of `answer.edits` back as a command, checked like the
/// methods that issue it (the script may have changed it).
fn edit_command(t: &Table) -> Result<Command, String> {
    let text = |k: &str| -> Result<String, String> {
        t.get::<Option<String>>(k)
            .map_err(|e| format!("edit `{k}`: {e}"))?
            .ok_or_else(|| format!("edit without `{k}`"))
    };
    let optional = |k: &str| -> Result<Option<String>, String> {
        t.get::<Option<String>>(k)
            .map_err(|e| format!("edit `{k}`: {e}"))
    };
    let edit = match text("op")?.as_str() {
        "set_header" => Command::SetHeader {
            name: text("name")?,
            value: text("value")?,
        },
        "add_header" => Command::AddHeader {
            name: text("name")?,
            value: text("value")?,
        },
        "remove_header" => Command::RemoveHeader {
            name: text("name")?,
        },
        "set_ruri" => Command::SetRuri { uri: text("uri")? },
        "set_from" => Command::SetFrom {
            user: optional("user")?,
            name: optional("name")?,
        },
        "set_var" => {
            let value: Value = t.get("value").map_err(|e| e.to_string())?;
            let value = match value {
                Value::Nil => None,
                v => Some(from_lua_value(&v).ok_or_else(|| {
                    format!(
                        "set_var: a variable holds a string, number or boolean, not a {}",
                        v.type_name()
                    )
                })?),
            };
            Command::SetVar {
                name: text("name")?,
                value,
            }
        }
        other => return Err(format!("unknown edit op `{other}`")),
    };
    validate::checked_edit(edit).map_err(|e| e.to_string())
}

/// What `call:apply(answer)` plays: the edits, then the decision.
pub(crate) enum Apply {
    /// Dial; the plugin that decided (if pinned) hears how it ended.
    Dial(DialRequest, Option<Arc<dyn Router>>),
    /// Reject.
    Reject(u16, String),
    /// Only the edits.
    Pass,
}

/// Reads an answer table (possibly changed by the script): the edits as
/// commands and what to do.
pub(crate) fn read_answer(call: &LuaCall, answer: &Table) -> Result<(Vec<Command>, Apply), String> {
    let mut edits = Vec::new();
    if let Some(list) = answer
        .get::<Option<Table>>("edits")
        .map_err(|e| format!("edits: {e}"))?
    {
        for t in list.sequence_values::<Table>() {
            edits.push(edit_command(&t.map_err(|e| format!("edits: {e}"))?)?);
        }
    }
    let action: String = answer
        .get::<Option<String>>("action")
        .map_err(|e| format!("action: {e}"))?
        .ok_or("apply: the answer has no `action`")?;
    let apply = match action.as_str() {
        "dial" => {
            let request = dial_request(Value::Table(answer.clone()), None)?;
            let label: Option<String> = answer.get("plugin").map_err(|e| e.to_string())?;
            Apply::Dial(request, label.and_then(|l| call.pinned(&l)))
        }
        "reject" => {
            let code: u16 = answer
                .get::<Option<u16>>("code")
                .map_err(|e| format!("code: {e}"))?
                .ok_or("apply: a reject needs `code`")?;
            let reason = answer
                .get::<Option<String>>("reason")
                .map_err(|e| format!("reason: {e}"))?;
            let (code, reason) = validate::reject(code, reason).map_err(|e| e.to_string())?;
            Apply::Reject(code, reason)
        }
        "pass" => Apply::Pass,
        other => return Err(format!("apply: action `{other}` (dial, reject or pass)")),
    };
    Ok((edits, apply))
}
