//! The `reg` object of `on_register(reg)`: the REGISTER to read, and
//! `reg:reject`, `reg:challenge` and `reg.attrs` to refuse or enrich it.

use api::{RegisterDecision, RegisterView, validate};
use mlua::{Table, UserData, UserDataFields, UserDataMethods, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

fn err(e: impl std::fmt::Display) -> mlua::Error {
    mlua::Error::RuntimeError(e.to_string())
}

/// Most attributes one registration may carry, and their longest value.
const MAX_ATTRS: usize = 32;
const MAX_ATTR_LEN: usize = 1024;

/// A REGISTER as a Lua userdata.
pub(crate) struct LuaRegister {
    view: Arc<RegisterView>,
    /// `reg.attrs`: a plain table the hook fills.
    attrs: Table,
    decision: Arc<Mutex<Option<RegisterDecision>>>,
    version: Arc<str>,
}

impl LuaRegister {
    /// The userdata and the handle its decision is read back through.
    pub(crate) fn new(
        view: RegisterView,
        attrs: Table,
        version: Arc<str>,
    ) -> (LuaRegister, Arc<Mutex<Option<RegisterDecision>>>) {
        let decision = Arc::new(Mutex::new(None));
        (
            LuaRegister {
                view: Arc::new(view),
                attrs,
                decision: decision.clone(),
                version,
            },
            decision,
        )
    }

    fn decide(&self, d: RegisterDecision) {
        let mut slot = self.decision.lock().unwrap_or_else(|p| p.into_inner());
        // The first decision counts, like a call's first reject.
        if slot.is_none() {
            *slot = Some(d);
        }
    }
}

/// Reads `reg.attrs` back: string keys, string/number/boolean values.
pub(crate) fn read_attrs(attrs: &Table) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for pair in attrs.pairs::<Value, Value>() {
        let (k, v) = pair.map_err(|e| e.to_string())?;
        let key = match &k {
            Value::String(s) => s.to_str().map_err(|e| e.to_string())?.to_string(),
            other => {
                return Err(format!(
                    "reg.attrs: key must be a string, got {}",
                    other.type_name()
                ));
            }
        };
        let value = match &v {
            Value::String(s) => s.to_str().map_err(|e| e.to_string())?.to_string(),
            Value::Integer(i) => i.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Boolean(b) => b.to_string(),
            other => {
                return Err(format!(
                    "reg.attrs.{key}: value must be a string, number or boolean, got {}",
                    other.type_name()
                ));
            }
        };
        if value.len() > MAX_ATTR_LEN {
            return Err(format!("reg.attrs.{key}: longer than {MAX_ATTR_LEN} bytes"));
        }
        validate::value(&key, &value).map_err(|e| e.to_string())?;
        out.insert(key, value);
        if out.len() > MAX_ATTRS {
            return Err(format!("reg.attrs: more than {MAX_ATTRS} attributes"));
        }
    }
    Ok(out)
}

impl UserData for LuaRegister {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("user", |_, r| Ok(r.view.user.clone()));
        fields.add_field_method_get("auth_user", |_, r| Ok(r.view.auth_user.clone()));
        fields.add_field_method_get("call_id", |_, r| Ok(r.view.call_id.clone()));
        fields.add_field_method_get("source_ip", |_, r| Ok(r.view.source_ip.to_string()));
        fields.add_field_method_get("source_port", |_, r| Ok(r.view.source_port));
        fields.add_field_method_get("transport", |_, r| Ok(r.view.transport.clone()));
        fields.add_field_method_get("user_agent", |_, r| Ok(r.view.user_agent.clone()));
        fields.add_field_method_get("remove_all", |_, r| Ok(r.view.remove_all));
        fields.add_field_method_get("version", |_, r| Ok(r.version.to_string()));
        fields.add_field_method_get("attrs", |_, r| Ok(r.attrs.clone()));
        fields.add_field_method_get("contacts", |lua, r| {
            let list = lua.create_table()?;
            for c in &r.view.contacts {
                let t = lua.create_table()?;
                t.set("uri", c.uri.as_str())?;
                t.set("expires", c.expires)?;
                t.set("q", c.q)?;
                list.push(t)?;
            }
            Ok(list)
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("header", |_, r, name: String| {
            Ok(r.view.header(&name).map(str::to_string))
        });
        methods.add_method("headers", |lua, r, name: String| {
            lua.create_sequence_from(r.view.headers(&name).into_iter().map(str::to_string))
        });
        methods.add_method("reject", |_, r, (code, reason): (u16, Option<String>)| {
            let (code, reason) = validate::reject(code, reason).map_err(err)?;
            r.decide(RegisterDecision::Reject { code, reason });
            Ok(())
        });
        methods.add_method("challenge", |_, r, ()| {
            r.decide(RegisterDecision::Challenge);
            Ok(())
        });
    }
}
