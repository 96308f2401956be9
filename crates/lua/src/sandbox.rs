//! A sandboxed Lua state: only the safe parts of the standard library,
//! library tables frozen, globals closed after load, `require` limited to
//! Lua source files beside the script.

use crate::budget::{Budget, Limits};
use mlua::chunk::ChunkMode;
use mlua::{Function, Lua, LuaOptions, StdLib, Table, Value};
use std::path::{Path, PathBuf};

/// Base functions a script may use. Not here: `load`, `loadfile`,
/// `dofile` (code from outside the script directory or bytecode),
/// `collectgarbage` (could stop the collector), `rawset`/`rawget`
/// (bypass the frozen tables), `require` (replaced), `print` (replaced).
const BASE: [&str; 14] = [
    "assert",
    "error",
    "getmetatable",
    "ipairs",
    "next",
    "pairs",
    "pcall",
    "rawequal",
    "rawlen",
    "select",
    "setmetatable",
    "tonumber",
    "tostring",
    "type",
];

/// Run once in each state before the script: `pcall`/`xpcall` that cannot
/// swallow the budget and memory errors, and frozen library tables.
const PRELUDE: &str = r#"
local env, raw_pcall, raw_xpcall, error, tostring, find, setmetatable, select =
  ...
local function fatal(e)
  local s = tostring(e)
  return find(s, "instruction budget exceeded", 1, true)
      or find(s, "memory limit exceeded", 1, true)
      or find(s, "not enough memory", 1, true)
end
local function check(ok, ...)
  if not ok and fatal((...)) then error((...), 0) end
  return ok, ...
end
env.pcall = function(f, ...) return check(raw_pcall(f, ...)) end
env.xpcall = function(f, h, ...)
  return check(raw_xpcall(f, function(e) if fatal(e) then return e end return h(e) end, ...))
end
local function freeze(t, name)
  for k, v in next, t do
    if type(v) == "table" then t[k] = freeze(v, name .. "." .. k) end
  end
  return setmetatable({}, {
    __index = t,
    __newindex = function(_, k) error("cannot change " .. name .. "." .. tostring(k) .. ": it is read-only", 2) end,
    __pairs = function() return next, t, nil end,
    __metatable = false,
  })
end
for _, name in ipairs({ "string", "table", "math", "utf8", "coroutine", "os", "tandem" }) do
  env[name] = freeze(env[name], name)
end
"#;

/// A fresh sandboxed state for scripts in `dir`, with `tandem` (the host
/// table) installed.
pub(crate) fn new_state(
    dir: &Path,
    limits: Limits,
    install_host: impl FnOnce(&Lua, &Table) -> mlua::Result<()>,
) -> mlua::Result<(Lua, Table, Budget)> {
    let lua = Lua::new_with(
        StdLib::STRING
            | StdLib::TABLE
            | StdLib::MATH
            | StdLib::UTF8
            | StdLib::COROUTINE
            | StdLib::OS,
        LuaOptions::new(),
    )?;
    let globals = lua.globals();
    let env = lua.create_table()?;
    for name in BASE {
        env.set(name, globals.get::<Value>(name)?)?;
    }
    env.set("_VERSION", globals.get::<Value>("_VERSION")?)?;
    env.set("_G", env.clone())?;
    for lib in ["string", "table", "math", "utf8", "coroutine"] {
        env.set(lib, globals.get::<Table>(lib)?)?;
    }
    // `string.dump` hands out bytecode; nothing may load it, but nor
    // should it leak.
    env.get::<Table>("string")?.set("dump", Value::Nil)?;
    let os = lua.create_table()?;
    let real_os: Table = globals.get("os")?;
    for f in ["time", "clock", "date", "difftime"] {
        os.set(f, real_os.get::<Value>(f)?)?;
    }
    env.set("os", os)?;
    // The string metatable is shared by every string of the state: lock it
    // so one script cannot change `("").upper` for all.
    let string_mt: Table = lua
        .load("return getmetatable('')")
        .set_mode(ChunkMode::Text)
        .eval()?;
    string_mt.set("__metatable", false)?;

    let print = lua.create_function(|lua, args: mlua::MultiValue| {
        tracing::info!(target: "script", message = %join(lua, args)?);
        Ok(())
    })?;
    env.set("print", print)?;

    let tandem = lua.create_table()?;
    install_host(&lua, &tandem)?;
    env.set("tandem", tandem)?;

    env.set(
        "require",
        make_require(&lua, dir.to_path_buf(), env.clone())?,
    )?;

    let budget = Budget::install(&lua, limits)?;
    let prelude: Function = lua
        .load(PRELUDE)
        .set_name("=prelude")
        .set_mode(ChunkMode::Text)
        .into_function()?;
    budget.run(|| {
        prelude.call::<()>((
            env.clone(),
            globals.get::<Value>("pcall")?,
            globals.get::<Value>("xpcall")?,
            globals.get::<Value>("error")?,
            globals.get::<Value>("tostring")?,
            globals.get::<Table>("string")?.get::<Value>("find")?,
            globals.get::<Value>("setmetatable")?,
            globals.get::<Value>("select")?,
        ))
    })?;
    // The prelude needs `next`, `type` and `ipairs` from its own globals.
    Ok((lua, env, budget))
}

/// Closes the globals after the script's top level ran: a function that
/// assigns a global by mistake (a missing `local`) would share it with
/// every other call on the state.
pub(crate) fn close_globals(lua: &Lua, env: &Table) -> mlua::Result<()> {
    let mt = lua.create_table()?;
    let newindex = lua.create_function(|_, (_t, k, _v): (Value, Value, Value)| -> mlua::Result<()> {
        let name = match &k {
            Value::String(s) => s.to_string_lossy(),
            other => format!("{other:?}"),
        };
        Err(mlua::Error::RuntimeError(format!(
            "assignment to undeclared global `{name}` (declare it `local`, or use call.vars or tandem.kv)"
        )))
    })?;
    mt.set("__newindex", newindex)?;
    mt.set("__metatable", false)?;
    env.set_metatable(Some(mt))?;
    Ok(())
}

/// `require(name)`: `name.lua` (dots are directories) from the script's
/// directory, loaded as source into the sandbox, run once per state.
fn make_require(lua: &Lua, dir: PathBuf, env: Table) -> mlua::Result<Function> {
    let loaded = lua.create_table()?;
    lua.create_function(move |lua, name: String| {
        if let Some(v) = loaded.get::<Option<Value>>(name.as_str())? {
            return Ok(v);
        }
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
            && !name.contains("..")
            && !name.starts_with('.');
        if !valid {
            return Err(mlua::Error::RuntimeError(format!(
                "require: `{name}` is not a module name (letters, digits, `_` and `.`)"
            )));
        }
        let rel = format!("{}.lua", name.replace('.', "/"));
        let path = dir.join(&rel);
        let source = std::fs::read_to_string(&path).map_err(|e| {
            mlua::Error::RuntimeError(format!("require: module `{name}` not found ({rel}: {e})"))
        })?;
        let value: Value = lua
            .load(source)
            .set_name(format!("@{rel}"))
            .set_mode(ChunkMode::Text)
            .set_environment(env.clone())
            .call(name.clone())?;
        let value = if value.is_nil() {
            Value::Boolean(true)
        } else {
            value
        };
        loaded.set(name.as_str(), value.clone())?;
        Ok(value)
    })
}

/// Joins values as `print` does (tab-separated `tostring`).
pub(crate) fn join(lua: &Lua, args: mlua::MultiValue) -> mlua::Result<String> {
    let tostring: Function = lua.globals().get("tostring")?;
    let mut out = String::new();
    for (i, v) in args.into_iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&tostring.call::<mlua::LuaString>(v)?.to_string_lossy());
    }
    Ok(out)
}
