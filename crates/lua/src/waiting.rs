//! The host calls that wait for a result — `call:dial`, `call:apply` and
//! `tandem.http` — as small Lua functions over the run's yield protocol
//! (`run.rs`): a Rust function checks the arguments and starts the wait,
//! the Lua function yields, and it builds the result table from the plain
//! values it is resumed with.

use crate::call::{LuaCall, dial_request};
use crate::plugin::{Apply, read_answer};
use crate::run::{Wait, Waits, wait_token};
use api::{Command, Host};
use mlua::{Function, Lua, Table, Value};
use std::sync::Arc;

/// Registry key of the call's methods written in Lua (`dial`, `apply`).
pub(crate) const CALL_METHODS: &str = "tandem.call.methods";

/// The Lua side. `call_methods` is the fallback `__index` of the call
/// userdata (after its Rust fields and methods); an unknown field is an
/// error at the script's line, as for the Rust ones.
const WRAPPERS: &str = r#"
local yield, WAIT, dial_start, apply_start, http_start, error, tostring, setmetatable = ...
local call_methods = setmetatable({
  dial = function(call, targets, opts)
    dial_start(call, targets, opts)
    local answered, code, reason, duration = yield(WAIT)
    return { answered = answered, code = code, reason = reason, duration = duration }
  end,
  apply = function(call, answer)
    if apply_start(call, answer) then
      local answered, code, reason, duration = yield(WAIT)
      return { answered = answered, code = code, reason = reason, duration = duration }
    end
  end,
}, {
  __index = function(_, key)
    error("attempt to get an unknown field '" .. tostring(key) .. "'", 3)
  end,
})
local function http(request)
  http_start(request)
  return yield(WAIT)
end
return call_methods, http
"#;

fn err(e: impl std::fmt::Display) -> mlua::Error {
    mlua::Error::RuntimeError(e.to_string())
}

/// The call behind a wrapper's first argument.
fn the_call(call: &Value, what: &str) -> mlua::Result<mlua::UserDataRef<LuaCall>> {
    let wrong = || {
        err(format!(
            "{what}: use it as a method of the call (call:{what}(…))"
        ))
    };
    match call {
        Value::UserData(ud) => ud.borrow::<LuaCall>().map_err(|_| wrong()),
        _ => Err(wrong()),
    }
}

/// Installs `tandem.http` and the call's Lua methods in `lua`.
pub(crate) fn install(
    lua: &Lua,
    tandem: &Table,
    waits: &Arc<Waits>,
    host: &Arc<dyn Host>,
) -> mlua::Result<()> {
    let w = waits.clone();
    let dial_start = lua.create_function(
        move |lua, (call, targets, opts): (Value, Value, Option<Table>)| {
            let c = the_call(&call, "dial")?;
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
    let apply_start = lua.create_function(move |lua, (call, answer): (Value, Table)| {
        let c = the_call(&call, "apply")?;
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
    let (call_methods, http): (Table, Function) = lua
        .load(WRAPPERS)
        .set_name("=tandem")
        .set_mode(mlua::chunk::ChunkMode::Text)
        .call((
            yield_fn,
            wait_token(),
            dial_start,
            apply_start,
            http_start,
            globals.get::<Value>("error")?,
            globals.get::<Value>("tostring")?,
            globals.get::<Value>("setmetatable")?,
        ))?;
    lua.set_named_registry_value(CALL_METHODS, call_methods)?;
    tandem.set("http", http)?;
    Ok(())
}
