//! The `call` object a dial plan gets: the A-leg INVITE to read, commands
//! to shape and route the B leg, and per-call variables.

use crate::call_object::CallTable;
use crate::convert::{from_lua_value, to_lua_value};
use api::validate;
use api::{CallLink, CallView, Command, DialMode, DialRequest, DialTarget};
use mlua::{MetaMethod, Table, UserData, UserDataMethods, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

fn err(e: impl std::fmt::Display) -> mlua::Error {
    mlua::Error::RuntimeError(e.to_string())
}

/// What a dial plan's `call` object stands for: the caller's INVITE, the
/// link to the call, and the script's copy of the call's variables. The
/// object scripts hold is a `call_object::CallKey`.
pub(crate) struct LuaCall {
    view: CallView,
    link: CallLink,
    /// `call.vars`, made on first use (most scripts never touch them).
    vars: OnceLock<Arc<Mutex<BTreeMap<String, api::Value>>>>,
    version: Arc<str>,
    /// Plugin versions this call routed through (`tandem.plugin`).
    pinned: Mutex<Vec<Arc<dyn api::Router>>>,
    /// Plugin routes asked so far (bounded: each may take the plugin's CPU
    /// limit, outside the script's instruction budget).
    routes: std::sync::atomic::AtomicU32,
}

/// Most plugin routes one call may ask for.
pub(crate) const MAX_ROUTES_PER_CALL: u32 = 8;

impl LuaCall {
    pub(crate) fn new(view: CallView, link: CallLink, version: Arc<str>) -> LuaCall {
        LuaCall {
            link,
            vars: OnceLock::new(),
            view,
            version,
            pinned: Mutex::new(Vec::new()),
            routes: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// The caller's INVITE.
    pub(crate) fn view(&self) -> &CallView {
        &self.view
    }

    /// The script version the call runs (`file@vN`).
    pub(crate) fn version(&self) -> &str {
        &self.version
    }

    /// Counts a plugin route; false past [`MAX_ROUTES_PER_CALL`].
    pub(crate) fn count_route(&self) -> bool {
        self.routes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            < MAX_ROUTES_PER_CALL
    }

    /// Applies an edit to the script's copy of the variables (the call
    /// gets the command too).
    pub(crate) fn note_var(&self, name: &str, value: Option<&api::Value>) {
        let mut map = self.vars().lock().unwrap_or_else(|p| p.into_inner());
        match value {
            Some(v) => map.insert(name.to_string(), v.clone()),
            None => map.remove(name),
        };
    }

    /// The script's copy of the variables.
    fn vars(&self) -> &Arc<Mutex<BTreeMap<String, api::Value>>> {
        self.vars
            .get_or_init(|| Arc::new(Mutex::new(self.view.vars.clone())))
    }

    /// Keeps a plugin version this call routed through.
    pub(crate) fn pin(&self, router: Arc<dyn api::Router>) {
        let mut pinned = self.pinned.lock().unwrap_or_else(|p| p.into_inner());
        if !pinned.iter().any(|r| r.label() == router.label()) {
            pinned.push(router);
        }
    }

    /// The pinned plugin version `label` (`name@vN`).
    pub(crate) fn pinned(&self, label: &str) -> Option<Arc<dyn api::Router>> {
        let pinned = self.pinned.lock().unwrap_or_else(|p| p.into_inner());
        pinned.iter().find(|r| r.label() == label).cloned()
    }

    /// The link to the call.
    pub(crate) fn link(&self) -> &CallLink {
        &self.link
    }

    /// Sends a command to the call.
    pub(crate) fn send(&self, cmd: Command) {
        // A call that has ended ignores further commands; the script runs
        // to its end (or is dropped by the engine) without harm.
        let _ = self.link.send(cmd);
    }
}

/// `call.vars`: reads from a local copy, writes also go to the call (for
/// logs and CDRs).
struct Vars {
    link: CallLink,
    map: Arc<Mutex<BTreeMap<String, api::Value>>>,
}

impl UserData for Vars {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Index, |lua, this, key: String| {
            let map = this.map.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(&key) {
                Some(v) => to_lua_value(lua, v),
                None => Ok(Value::Nil),
            }
        });
        methods.add_meta_method(
            MetaMethod::NewIndex,
            |_, this, (key, value): (String, Value)| {
                let v = if value.is_nil() {
                    None
                } else {
                    Some(from_lua_value(&value).ok_or_else(|| {
                        err(format!(
                            "call.vars.{key}: a variable holds a string, number or boolean, not a {}",
                            value.type_name()
                        ))
                    })?)
                };
                if let Some(api::Value::Str(s)) = &v {
                    validate::value(&key, s).map_err(err)?;
                }
                let mut map = this.map.lock().unwrap_or_else(|p| p.into_inner());
                match &v {
                    Some(v) => map.insert(key.clone(), v.clone()),
                    None => map.remove(&key),
                };
                let _ = this.link.send(Command::SetVar {
                    name: key,
                    value: v,
                });
                Ok(())
            },
        );
        methods.add_meta_method(MetaMethod::Pairs, |lua, this, ()| {
            let t = lua.create_table()?;
            for (k, v) in this.map.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                t.set(k.as_str(), to_lua_value(lua, v)?)?;
            }
            let next: mlua::Function = lua.globals().get("next")?;
            Ok((next, t, Value::Nil))
        });
    }
}

/// The call behind `object` (a method's first argument), or an error that
/// says how the method is used.
pub(crate) fn resolve(calls: &CallTable, object: &Value, what: &str) -> mlua::Result<Arc<LuaCall>> {
    calls.get(object).ok_or_else(|| {
        err(format!(
            "call:{what}: use it as a method of the call of a running script (call:{what}(…))"
        ))
    })
}

/// Adds a method of the call written in Rust: `f(lua, call, args)`.
fn method<A, R>(
    lua: &mlua::Lua,
    methods: &Table,
    calls: &Arc<CallTable>,
    name: &'static str,
    f: impl Fn(&mlua::Lua, &LuaCall, A) -> mlua::Result<R> + mlua::MaybeSend + 'static,
) -> mlua::Result<()>
where
    A: mlua::FromLuaMulti,
    R: mlua::IntoLuaMulti,
{
    let calls = calls.clone();
    let function = lua.create_function(move |lua, (object, args): (Value, A)| {
        let call = resolve(&calls, &object, name)?;
        f(lua, &call, args)
    })?;
    methods.raw_set(name, function)
}

/// The call's methods written with mlua (the ones scripts use most are C
/// functions: see `call_object`; `dial` and `apply` are added in Lua).
pub(crate) fn methods(lua: &mlua::Lua, calls: &Arc<CallTable>) -> mlua::Result<Table> {
    let methods = lua.create_table()?;
    method(
        lua,
        &methods,
        calls,
        "headers",
        |lua, c, name: Option<String>| {
            match name {
                Some(name) => {
                    lua.create_sequence_from(c.view.headers(&name).into_iter().map(str::to_string))
                }
                // Every header, in order, as { name = …, value = … }.
                None => {
                    let list = lua.create_table()?;
                    for (n, v) in c.view.headers.iter() {
                        let h = lua.create_table()?;
                        h.set("name", n)?;
                        h.set("value", v)?;
                        list.push(h)?;
                    }
                    Ok(list)
                }
            }
        },
    )?;
    method(lua, &methods, calls, "set_ruri", |_, c, uri: String| {
        validate::uri(&uri).map_err(err)?;
        c.send(Command::SetRuri { uri });
        Ok(())
    })?;
    method(lua, &methods, calls, "set_from", |_, c, t: Table| {
        let mut user = None;
        let mut name = None;
        for pair in t.pairs::<String, String>() {
            let (k, v) = pair?;
            match k.as_str() {
                "user" => {
                    validate::user(&v).map_err(err)?;
                    user = Some(v);
                }
                "name" => {
                    validate::display_name(&v).map_err(|e| err(format!("set_from: {e}")))?;
                    name = Some(v);
                }
                other => {
                    return Err(err(format!(
                        "set_from: unknown field `{other}` (user, name)"
                    )));
                }
            }
        }
        c.send(Command::SetFrom { user, name });
        Ok(())
    })?;
    method(
        lua,
        &methods,
        calls,
        "reject",
        |_, c, (code, reason): (u16, Option<String>)| {
            let (code, reason) = validate::reject(code, reason).map_err(err)?;
            c.send(Command::Reject { code, reason });
            Ok(())
        },
    )?;
    method(lua, &methods, calls, "hangup", |_, c, ()| {
        c.send(Command::Hangup);
        Ok(())
    })?;
    method(lua, &methods, calls, "challenge", |_, c, ()| {
        c.send(Command::Challenge);
        Ok(())
    })?;
    Ok(methods)
}

/// `vars(call)`, which makes `call.vars` (called by the call object's
/// `__index`).
pub(crate) fn vars_function(
    lua: &mlua::Lua,
    calls: &Arc<CallTable>,
) -> mlua::Result<mlua::Function> {
    let calls = calls.clone();
    lua.create_function(move |_, object: Value| {
        let c = resolve(&calls, &object, "vars")?;
        Ok(Vars {
            link: c.link.clone(),
            map: c.vars().clone(),
        })
    })
}

/// Reads `call:dial(targets, opts)`: targets are a URI, a list of URIs or
/// `{ uri = …, headers = … }` tables, a route from `tandem.route` (its
/// mode and timeout apply unless `opts` says otherwise), or nil (the
/// B leg's Request-URI).
pub(crate) fn dial_request(targets: Value, opts: Option<Table>) -> Result<DialRequest, String> {
    let mut req = DialRequest::default();
    match targets {
        Value::Nil => {}
        Value::String(s) => req.targets.push(target_uri(s.to_string_lossy())?),
        Value::Table(t) if t.contains_key("targets").map_err(|e| e.to_string())? => {
            // A route table from tandem.route().
            let list: Table = t
                .get("targets")
                .map_err(|e| format!("route targets: {e}"))?;
            for v in list.sequence_values::<Value>() {
                req.targets.push(target(v.map_err(|e| e.to_string())?)?);
            }
            if req.targets.is_empty() {
                return Err(api::ApiError::NoTarget.to_string());
            }
            apply_options(&mut req, &t, true)?;
        }
        Value::Table(t) if t.contains_key("uri").map_err(|e| e.to_string())? => {
            req.targets.push(target(Value::Table(t))?);
        }
        Value::Table(t) => {
            for v in t.sequence_values::<Value>() {
                req.targets.push(target(v.map_err(|e| e.to_string())?)?);
            }
            if req.targets.is_empty() {
                return Err(api::ApiError::NoTarget.to_string());
            }
        }
        other => {
            return Err(format!(
                "dial: targets must be a URI or a list, not a {}",
                other.type_name()
            ));
        }
    }
    if let Some(opts) = opts {
        apply_options(&mut req, &opts, false)?;
    }
    Ok(req)
}

/// A dial target from a URI (checked as `validate::dial_target` does).
pub(crate) fn target_uri(uri: String) -> Result<DialTarget, String> {
    validate::dial_target(&uri).map_err(|e| e.to_string())?;
    Ok(DialTarget {
        uri,
        headers: Vec::new(),
    })
}

fn target(v: Value) -> Result<DialTarget, String> {
    match v {
        Value::String(s) => target_uri(s.to_string_lossy()),
        Value::Table(t) => {
            let uri: String = t
                .get::<Option<String>>("uri")
                .map_err(|e| e.to_string())?
                .ok_or("a target table needs `uri`")?;
            let mut target = target_uri(uri)?;
            if let Some(h) = t
                .get::<Option<Table>>("headers")
                .map_err(|e| e.to_string())?
            {
                target.headers = headers(&h)?;
            }
            Ok(target)
        }
        other => Err(format!(
            "dial: a target is a URI or a table, not a {}",
            other.type_name()
        )),
    }
}

fn headers(t: &Table) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for pair in t.pairs::<String, String>() {
        let (n, v) = pair.map_err(|e| format!("headers: {e}"))?;
        out.push(validate::header(&n, v).map_err(|e| e.to_string())?);
    }
    out.sort();
    Ok(out)
}

fn apply_options(req: &mut DialRequest, t: &Table, from_route: bool) -> Result<(), String> {
    for pair in t.pairs::<String, Value>() {
        let (k, v) = pair.map_err(|e| e.to_string())?;
        match (k.as_str(), v) {
            ("mode", Value::String(s)) => {
                let s = s.to_string_lossy();
                req.mode = DialMode::parse(&s)
                    .ok_or_else(|| format!("dial: mode `{s}` (serial or parallel)"))?;
            }
            ("timeout", v @ (Value::Integer(_) | Value::Number(_))) => {
                let secs = match v {
                    Value::Integer(i) => i as f64,
                    Value::Number(n) => n,
                    _ => 0.0,
                };
                if !(secs > 0.0 && secs.is_finite()) {
                    return Err(format!(
                        "dial: timeout must be positive seconds, got {secs}"
                    ));
                }
                req.timeout = validate::seconds(secs, validate::MAX_DIAL_TIMEOUT);
            }
            ("headers", Value::Table(h)) => req.headers = headers(&h)?,
            ("media", Value::String(s)) => {
                req.anchor_media = match &*s.to_string_lossy() {
                    "anchored" => Some(true),
                    "direct" => Some(false),
                    other => return Err(format!("dial: media `{other}` (anchored or direct)")),
                }
            }
            // A route from tandem.route, or a plugin's answer.
            ("targets" | "action" | "plugin" | "edits" | "code" | "reason", _) if from_route => {}
            (k, v) => {
                return Err(format!(
                    "dial: unknown or mistyped option `{k}` ({}); options are mode, timeout, headers, media",
                    v.type_name()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlua::Lua;

    #[test]
    fn dial_arguments() {
        let lua = Lua::new();
        let eval = |code: &str| -> Value { lua.load(code).eval().unwrap() };
        let r = dial_request(eval("'sip:a@127.0.0.1'"), None).unwrap();
        assert_eq!(r.targets[0].uri, "sip:a@127.0.0.1");
        let opts: Table = lua
            .load("{ mode = 'parallel', timeout = 5, headers = { ['X-A'] = '1' } }")
            .eval()
            .unwrap();
        let r = dial_request(
            eval("{ 'sip:a@127.0.0.1', { uri = 'sip:b@127.0.0.1', headers = { ['X-B'] = '2' } } }"),
            Some(opts),
        )
        .unwrap();
        assert_eq!(r.targets.len(), 2);
        assert_eq!(r.mode, DialMode::Parallel);
        assert_eq!(r.timeout, Some(std::time::Duration::from_secs(5)));
        assert_eq!(r.headers, vec![("X-A".to_string(), "1".to_string())]);
        assert_eq!(r.targets[1].headers[0].0, "X-B");
        let route = dial_request(
            eval("{ targets = { 'sip:a@127.0.0.1' }, mode = 'parallel', timeout = 7 }"),
            None,
        )
        .unwrap();
        assert_eq!(route.mode, DialMode::Parallel);
        assert!(dial_request(eval("{}"), None).is_err());
        assert!(dial_request(eval("'http://x'"), None).is_err());
        assert!(dial_request(eval("'sip:a@example.com'"), None).is_err());
        assert!(dial_request(eval("{ targets = {} }"), None).is_err());
        let typo: Table = lua.load("{ timout = 5 }").eval().unwrap();
        let e = dial_request(eval("'sip:a@127.0.0.1'"), Some(typo)).unwrap_err();
        assert!(e.contains("timout"), "{e}");
        let bad: Table = lua
            .load("{ headers = { ['Call-ID'] = 'x' } }")
            .eval()
            .unwrap();
        assert!(dial_request(eval("'sip:a@127.0.0.1'"), Some(bad)).is_err());
        assert!(dial_request(Value::Nil, None).unwrap().targets.is_empty());
    }
}
