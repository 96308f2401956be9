//! The Lua engine of Tandem: dial plans in Lua 5.4 (mlua, vendored), one
//! coroutine per call, in a sandbox with a memory ceiling and an
//! instruction budget, hot-reloaded without touching live calls.
//!
//! A version of the script ([`ScriptVersion`]) is a few Lua states that
//! each ran the script's top level. A call runs `on_invite(call)` as a
//! coroutine on the live version's state of its worker thread and keeps
//! that state, with the version's code, until it ends; `call:dial` and `tandem.http` yield the coroutine
//! until their result comes, so no thread ever waits on a script.

mod budget;
mod call;
mod call_object;
mod convert;
mod coroutine;
mod engine;
mod error;
mod host;
mod plugin;
mod register;
mod run;
mod sandbox;
mod script;
mod waiting;

pub use budget::Limits;
pub use engine::{LuaEngine, Reload, Watch};
pub use error::LoadError;
pub use script::{ScriptConfig, ScriptVersion};
