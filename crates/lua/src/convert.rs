//! Conversions between Lua values and the API's scalars.

use api::Value as ApiValue;
use mlua::{Lua, Value};

/// A Lua scalar as an API value (`None` for tables, functions, …).
pub(crate) fn from_lua_value(v: &Value) -> Option<ApiValue> {
    match v {
        Value::String(s) => Some(ApiValue::Str(s.to_string_lossy())),
        Value::Integer(i) => Some(ApiValue::Int(*i)),
        Value::Number(n) => Some(ApiValue::Num(*n)),
        Value::Boolean(b) => Some(ApiValue::Bool(*b)),
        _ => None,
    }
}

/// An API value as a Lua value.
pub(crate) fn to_lua_value(lua: &Lua, v: &ApiValue) -> mlua::Result<Value> {
    Ok(match v {
        ApiValue::Str(s) => Value::String(lua.create_string(s)?),
        ApiValue::Int(i) => Value::Integer(*i),
        ApiValue::Num(n) => Value::Number(*n),
        ApiValue::Bool(b) => Value::Boolean(*b),
    })
}
