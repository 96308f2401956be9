//! What a plugin instance may call: log, the key-value store, the
//! registrar and its own settings — and nothing else.

use crate::limits::InstanceLimits;
use crate::tandem::plugin::host::{self, Level};
use crate::tandem::plugin::types::{self, Value};
use std::sync::Arc;

/// The store data of one plugin instance (one event).
pub(crate) struct HostState {
    pub(crate) host: Arc<dyn api::Host>,
    pub(crate) settings: Arc<Vec<(String, String)>>,
    pub(crate) limits: InstanceLimits,
    /// `name@vN`, for log lines.
    pub(crate) label: Arc<str>,
    pub(crate) call_id: String,
}

fn from_api(v: api::Value) -> Value {
    match v {
        api::Value::Str(s) => Value::Str(s),
        api::Value::Int(i) => Value::Int(i),
        api::Value::Num(n) => Value::Num(n),
        api::Value::Bool(b) => Value::Boolean(b),
    }
}

impl types::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        let (plugin, call_id) = (&*self.label, &self.call_id);
        match level {
            Level::Error => tracing::error!(target: "plugin", plugin, call_id, message = %message),
            Level::Warn => tracing::warn!(target: "plugin", plugin, call_id, message = %message),
            Level::Info => tracing::info!(target: "plugin", plugin, call_id, message = %message),
            Level::Debug => tracing::debug!(target: "plugin", plugin, call_id, message = %message),
        }
    }

    fn kv_get(&mut self, key: String) -> Option<Value> {
        self.host.kv().get(&key).map(from_api)
    }

    fn kv_set(&mut self, key: String, value: Value, ttl_ms: Option<u64>) -> Result<(), String> {
        let ttl = ttl_ms.map(std::time::Duration::from_millis);
        if let Value::Str(s) = &value {
            api::validate::value(&key, s).map_err(|e| e.to_string())?;
        }
        self.host
            .kv()
            .set(&key, crate::convert::value(value), ttl)
            .map_err(|e| e.to_string())
    }

    fn kv_incr(&mut self, key: String, by: i64) -> Result<i64, String> {
        self.host.kv().incr(&key, by).map_err(|e| e.to_string())
    }

    fn kv_delete(&mut self, key: String) -> bool {
        self.host.kv().delete(&key)
    }

    fn registrar_lookup(&mut self, user: String) -> Vec<String> {
        self.host.lookup(&user).into_iter().map(|c| c.uri).collect()
    }

    fn config(&mut self) -> Vec<(String, String)> {
        self.settings.as_ref().clone()
    }
}
