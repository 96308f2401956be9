//! The host calls that wait for a result — `call:dial`, `call:apply` and
//! `tandem.http` — over the run's yield protocol (`run.rs`): a Rust
//! function checks the arguments and starts the wait, then the host call
//! yields, and it builds the result table from the plain values it is
//! resumed with. `call:dial` is a C function that does all of this
//! itself (`call_object`); the other two are small Lua functions.

use crate::call::dial_request;
use crate::call_object::{self, CallTable};
use crate::plugin::{Apply, read_answer};
use crate::run::{Wait, wait_token};
use api::{Command, Host};
use mlua::{Function, Lua, Table, Value};
use std::sync::Arc;

/// The Lua side of `call:apply` (added to the call's other methods) and
/// of `tandem.http`.
const WRAPPERS: &str = r#"
local yield, WAIT, methods, apply_start, http_start, phrases = ...
methods.apply = function(call, answer)
  if apply_start(call, answer) then
    local answered, code, reason, duration = yield(WAIT)
    return { answered = answered, code = code, reason = reason or phrases[code] or "", duration = duration }
  end
end
local function http(request)
  http_start(request)
  return yield(WAIT)
end
return http
"#;

fn err(e: impl std::fmt::Display) -> mlua::Error {
    mlua::Error::RuntimeError(e.to_string())
}

/// Installs `tandem.http` and the call object (its methods, fields and
/// `__index`) in `lua`; the state's calls are in `calls`.
pub(crate) fn install(
    lua: &Lua,
    tandem: &Table,
    calls: &Arc<CallTable>,
    host: &Arc<dyn Host>,
) -> mlua::Result<()> {
    let waits = calls.waits();
    let raw = call_object::install(lua, calls.clone())?;
    let methods = crate::call::methods(lua, calls)?;
    methods.raw_set("header", raw.header)?;
    methods.raw_set("set_header", raw.set_header)?;
    methods.raw_set("add_header", raw.add_header)?;
    methods.raw_set("remove_header", raw.remove_header)?;
    let w = waits.clone();
    let c = calls.clone();
    let dial_start = lua.create_function(
        move |lua, (call, targets, opts): (Value, Value, Option<Table>)| {
            let c = crate::call::resolve(&c, &call, "dial")?;
            let request = dial_request(targets, opts).map_err(err)?;
            w.check(lua, "call:dial")?;
            w.put(Wait::Dial {
                result: c.link().start_dial(request),
                tell: None,
            });
            Ok(())
        },
    )?;
    let w = waits.clone();
    let c = calls.clone();
    let apply_start = lua.create_function(move |lua, (call, answer): (Value, Table)| {
        let c = crate::call::resolve(&c, &call, "apply")?;
        let (edits, apply) = read_answer(&c, &answer).map_err(err)?;
        if matches!(apply, Apply::Dial(..)) {
            w.check(lua, "call:apply")?;
        }
        // The edits go out at once, in order; only a dial waits.
        for edit in edits {
            if let Command::SetVar { name, value } = &edit {
                c.note_var(name, value.as_ref());
            }
            c.send(edit);
        }
        match apply {
            Apply::Dial(request, router) => {
                w.put(Wait::Dial {
                    result: c.link().start_dial(request),
                    tell: router.map(|r| (r, c.view().call_id.clone())),
                });
                Ok(true)
            }
            Apply::Reject(code, reason) => {
                c.send(Command::Reject { code, reason });
                Ok(false)
            }
            Apply::Pass => Ok(false),
        }
    })?;
    let w = waits.clone();
    let h = host.clone();
    let http_start = lua.create_function(move |lua, request: Table| {
        let request =
            crate::host::http_request(&request).map_err(|e| err(format!("tandem.http: {e}")))?;
        w.check(lua, "tandem.http")?;
        w.put(Wait::Http(h.http(request)));
        Ok(())
    })?;
    let globals = lua.globals();
    let yield_fn: Function = globals.get::<Table>("coroutine")?.get("yield")?;
    // The usual reason phrases, made once: a dial whose reason is the
    // usual one for its code is resumed with nil instead (`run.rs`).
    let phrases = lua.create_table()?;
    for code in 100..700 {
        let phrase = api::command::reason_phrase(code);
        if !phrase.is_empty() {
            phrases.raw_set(code, phrase)?;
        }
    }
    let http: Function = lua
        .load(WRAPPERS)
        .set_name("=tandem")
        .set_mode(mlua::chunk::ChunkMode::Text)
        .call((
            yield_fn,
            wait_token(),
            methods.clone(),
            apply_start,
            http_start,
            phrases.clone(),
        ))?;
    methods.raw_set(
        "dial",
        call_object::dial_function(lua, calls, dial_start, phrases)?,
    )?;
    call_object::install_metatable(lua, calls, methods, crate::call::vars_function(lua, calls)?)?;
    tandem.set("http", http)?;
    Ok(())
}
