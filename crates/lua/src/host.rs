//! The `tandem` table: logging, the key-value store, HTTP and the static
//! routes, bound to the engine-neutral [`api::Host`].

use crate::convert::{from_lua_value, to_lua_value};
use api::{Host, HttpRequest};
use mlua::{Lua, Table, Value};
use std::sync::Arc;
use std::time::Duration;

/// Default and largest timeout of `tandem.http`.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
const HTTP_TIMEOUT_MAX: Duration = Duration::from_secs(60);
/// Longest time-to-live of a key-value entry (a year).
const KV_TTL_MAX: Duration = Duration::from_secs(365 * 24 * 3600);

/// Fills the `tandem` table.
pub(crate) fn install(lua: &Lua, tandem: &Table, host: Arc<dyn Host>) -> mlua::Result<()> {
    tandem.set("api_version", api::API_VERSION)?;
    tandem.set(
        "log",
        lua.create_function(|lua, (level, args): (String, mlua::MultiValue)| {
            let text = crate::sandbox::join(lua, args)?;
            match level.as_str() {
                "error" => tracing::error!(target: "script", message = %text),
                "warn" | "warning" => tracing::warn!(target: "script", message = %text),
                "info" => tracing::info!(target: "script", message = %text),
                "debug" => tracing::debug!(target: "script", message = %text),
                "trace" => tracing::trace!(target: "script", message = %text),
                other => {
                    return Err(mlua::Error::RuntimeError(format!(
                        "tandem.log: unknown level `{other}` (error, warn, info, debug)"
                    )));
                }
            }
            Ok(())
        })?,
    )?;

    let kv = lua.create_table()?;
    let h = host.clone();
    kv.set(
        "set",
        lua.create_function(move |_, (key, value, ttl): (String, Value, Option<f64>)| {
            let ttl = match ttl {
                Some(t) if t > 0.0 && t.is_finite() => api::validate::seconds(t, KV_TTL_MAX),
                Some(t) if t <= 0.0 || !t.is_finite() => {
                    return Err(mlua::Error::RuntimeError(format!(
                        "tandem.kv.set: ttl must be a positive number of seconds, got {t}"
                    )));
                }
                _ => None,
            };
            if value.is_nil() {
                h.kv().delete(&key);
                return Ok(());
            }
            let value = from_lua_value(&value).ok_or_else(|| {
                mlua::Error::RuntimeError(format!(
                    "tandem.kv.set: value must be a string, number or boolean, got {}",
                    value.type_name()
                ))
            })?;
            h.kv()
                .set(&key, value, ttl)
                .map_err(|e| mlua::Error::RuntimeError(format!("tandem.kv.set: {e}")))
        })?,
    )?;
    let h = host.clone();
    kv.set(
        "get",
        lua.create_function(move |lua, key: String| match h.kv().get(&key) {
            Some(v) => to_lua_value(lua, &v),
            None => Ok(Value::Nil),
        })?,
    )?;
    let h = host.clone();
    kv.set(
        "incr",
        lua.create_function(move |_, (key, by): (String, Option<i64>)| {
            h.kv()
                .incr(&key, by.unwrap_or(1))
                .map_err(|e| mlua::Error::RuntimeError(format!("tandem.kv.incr: {e}")))
        })?,
    )?;
    let h = host.clone();
    kv.set(
        "del",
        lua.create_function(move |_, key: String| Ok(h.kv().delete(&key)))?,
    )?;
    tandem.set("kv", kv)?;

    let h = host.clone();
    tandem.set(
        "plugin",
        lua.create_function(move |_, name: String| crate::plugin::handle(&h, name))?,
    )?;
    lua.set_app_data(host.clone());

    let registrar = lua.create_table()?;
    let h = host.clone();
    registrar.set(
        "lookup",
        lua.create_function(move |lua, user: String| {
            let list = lua.create_table()?;
            for c in h.lookup(&user) {
                let t = lua.create_table()?;
                t.set("uri", c.uri)?;
                t.set("expires", c.expires)?;
                t.set("q", c.q)?;
                t.set("received", c.received)?;
                t.set("user_agent", c.user_agent)?;
                t.set("attrs", lua.create_table_from(c.attrs)?)?;
                list.push(t)?;
            }
            Ok(list)
        })?,
    )?;
    tandem.set("registrar", registrar)?;

    let h = host.clone();
    tandem.set(
        "route",
        lua.create_function(move |lua, user: String| {
            let Some(route) = h.route(&user) else {
                return Ok(Value::Nil);
            };
            let t = lua.create_table()?;
            t.set("targets", lua.create_sequence_from(route.targets)?)?;
            t.set("mode", route.mode.as_str())?;
            t.set("timeout", route.timeout.as_secs_f64())?;
            if let Some(anchor) = route.anchor_media {
                t.set("media", if anchor { "anchored" } else { "direct" })?;
            }
            Ok(Value::Table(t))
        })?,
    )?;
    Ok(())
}

/// Reads the table of `tandem.http{…}`.
pub(crate) fn http_request(req: &Table) -> Result<HttpRequest, String> {
    for pair in req.pairs::<String, Value>() {
        let (k, _) = pair.map_err(|e| e.to_string())?;
        if !matches!(
            k.as_str(),
            "method" | "url" | "headers" | "body" | "timeout"
        ) {
            return Err(format!(
                "unknown field `{k}` (method, url, headers, body, timeout)"
            ));
        }
    }
    let url: String = req
        .get::<Option<String>>("url")
        .map_err(|e| e.to_string())?
        .ok_or("`url` is required")?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("`{url}` is not an http:// URL"));
    }
    let method = req
        .get::<Option<String>>("method")
        .map_err(|e| e.to_string())?
        .unwrap_or_else(|| "GET".into())
        .to_ascii_uppercase();
    let mut headers = Vec::new();
    if let Some(h) = req
        .get::<Option<Table>>("headers")
        .map_err(|e| e.to_string())?
    {
        for pair in h.pairs::<String, String>() {
            let (n, v) = pair.map_err(|e| format!("headers: {e}"))?;
            api::validate::value(&n, &v).map_err(|e| e.to_string())?;
            api::validate::value(&n, &n).map_err(|e| e.to_string())?;
            headers.push((n, v));
        }
    }
    let body = req
        .get::<Option<mlua::LuaString>>("body")
        .map_err(|e| e.to_string())?
        .map(|b| b.as_bytes().to_vec())
        .unwrap_or_default();
    let timeout = match req
        .get::<Option<f64>>("timeout")
        .map_err(|e| e.to_string())?
    {
        Some(t) if t > 0.0 && t.is_finite() => {
            api::validate::seconds(t, HTTP_TIMEOUT_MAX).unwrap_or(HTTP_TIMEOUT)
        }
        Some(t) => return Err(format!("timeout must be positive seconds, got {t}")),
        None => HTTP_TIMEOUT,
    };
    Ok(HttpRequest {
        method,
        url,
        headers,
        body,
        timeout,
    })
}
