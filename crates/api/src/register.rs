//! Registrations as a dial plan sees them: the contacts of a user
//! (`tandem.registrar.lookup`) and the optional `on_register` hook that
//! accepts, rejects or enriches a REGISTER.

use crate::command::ScriptError;
use crate::host::BoxFuture;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// One registered contact of a user.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    /// The Contact URI the phone registered.
    pub uri: String,
    /// Seconds until the binding expires.
    pub expires: u64,
    /// Preference (`q`), if the phone gave one.
    pub q: Option<f32>,
    /// Where the REGISTER came from and calls go: `udp:IP:PORT`.
    pub received: String,
    /// The phone's User-Agent, if any.
    pub user_agent: Option<String>,
    /// What an `on_register` hook attached to the binding.
    pub attrs: BTreeMap<String, String>,
}

/// One contact of a REGISTER, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterContact {
    /// The Contact URI.
    pub uri: String,
    /// Seconds it asks for (0: remove).
    pub expires: u32,
    /// Preference (`q`), if given.
    pub q: Option<f32>,
}

/// A REGISTER, as `on_register(reg)` sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterView {
    /// The user (AOR) being registered: the To URI's user.
    pub user: String,
    /// The user the sender authenticated as (`None`: trusted or open).
    pub auth_user: Option<String>,
    /// The contacts to add, refresh or remove (empty: a query or `*`).
    pub contacts: Vec<RegisterContact>,
    /// `Contact: *` (remove every binding).
    pub remove_all: bool,
    /// Call-ID of the REGISTER.
    pub call_id: String,
    /// Address the REGISTER came from.
    pub source_ip: IpAddr,
    /// Port the REGISTER came from.
    pub source_port: u16,
    /// `udp` or `tcp`.
    pub transport: String,
    /// User-Agent, if any.
    pub user_agent: Option<String>,
    /// Every header, in order, as (canonical name, value).
    pub headers: crate::HeaderList,
}

impl RegisterView {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.first(name)
    }

    /// Every value of header `name`, in order.
    pub fn headers(&self, name: &str) -> Vec<&str> {
        self.headers.values(name)
    }
}

/// What `on_register` decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterDecision {
    /// Store the bindings, with these attributes attached.
    Accept {
        /// Key/values kept with each binding (returned by lookups).
        attrs: BTreeMap<String, String>,
    },
    /// Refuse with this response.
    Reject {
        /// 300–699.
        code: u16,
        /// Reason phrase.
        reason: String,
    },
    /// Demand (fresh) credentials: 401 with a challenge.
    Challenge,
}

/// The `on_register` hook's run: its decision, or the script's error.
pub type RegisterRun = BoxFuture<'static, Result<RegisterDecision, ScriptError>>;

/// A dial plan that may also see registrations.
pub trait RegisterHandler: Send + Sync {
    /// Starts the hook on one REGISTER; `None` when the live dial plan
    /// has no `on_register` (the registration is simply accepted). The
    /// returned label names the version that ran it, for logs.
    fn on_register(&self, view: RegisterView) -> Option<(String, RegisterRun)>;
}
