//! Runs a hook (`on_invite`, `on_register`) as a coroutine the engine
//! resumes itself.
//!
//! A host call that waits (`call:dial`, `call:apply`, `tandem.http`) asks
//! the host to start the wait, which leaves a [`Wait`] in the state's
//! [`Waits`] slot, then yields a private token (`call:dial` is a C
//! function that yields itself; the others are small Lua functions).
//! The run takes the wait from the slot, awaits it with no Lua state
//! held, and resumes the coroutine with the result as plain values.
//!
//! This replaces mlua's async functions on the call path. Those box each
//! future into a Lua userdata with a finalizer and return results through
//! protected table writes; per call that was about a third of what the
//! dial plan cost (BENCHMARKS.md, "Lua dial plans").

use crate::budget::{Budget, lifted};
use crate::coroutine::{Coroutine, Resumed};
use api::{DialResult, Host, HttpResponse, PendingDial, Router};
use mlua::{Function, IntoLuaMulti, LightUserData, Lua, Value};
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Coroutines each state keeps for reuse.
const THREAD_POOL: usize = 1024;

/// What a host call that waits yields: "my wait is in the slot". Only the
/// engine's own functions hold it (scripts have no `debug` to find it).
static WAIT_TOKEN: u8 = 0;

/// The token as a Lua value.
pub(crate) fn wait_token() -> LightUserData {
    LightUserData(std::ptr::addr_of!(WAIT_TOKEN) as *mut c_void)
}

/// Something a coroutine waits for.
pub(crate) enum Wait {
    /// A dial's result; a plugin that decided the dial hears how it ended.
    Dial {
        result: PendingDial,
        tell: Option<(Arc<dyn Router>, String)>,
    },
    /// An HTTP response (or why there is none).
    Http(api::host::BoxFuture<'static, Result<HttpResponse, String>>),
}

/// What a wait came to, handed back to the coroutine.
enum Outcome {
    /// `answered, code, reason, duration` (the host call makes the table).
    Dial(DialResult),
    /// `response, nil` or `nil, error`.
    Http(HttpOutcome),
}

/// An HTTP response (or why there is none) as Lua values.
struct HttpOutcome(Result<HttpResponse, String>);

impl Wait {
    async fn outcome(self, host: &Arc<dyn Host>) -> Outcome {
        match self {
            Wait::Dial { result, tell } => {
                let r = result.await;
                if let Some((router, call_id)) = tell {
                    router.hangup(&call_id, &r, host);
                }
                Outcome::Dial(r)
            }
            Wait::Http(response) => Outcome::Http(HttpOutcome(response.await)),
        }
    }
}

impl mlua::IntoLuaMulti for HttpOutcome {
    fn into_lua_multi(self, lua: &Lua) -> mlua::Result<mlua::MultiValue> {
        match self.0 {
            Ok(res) => {
                let t = lua.create_table()?;
                t.raw_set("status", res.status)?;
                t.raw_set("body", lua.create_string(&res.body)?)?;
                let headers = lua.create_table()?;
                for (n, v) in res.headers {
                    headers.raw_set(n, v)?;
                }
                t.raw_set("headers", headers)?;
                (t, Value::Nil).into_lua_multi(lua)
            }
            Err(e) => (Value::Nil, e).into_lua_multi(lua),
        }
    }
}

/// The wait the running coroutine started, picked up when it yields. One
/// per state: a state resumes one coroutine at a time.
#[derive(Default)]
pub(crate) struct Waits {
    slot: Mutex<Option<Wait>>,
    /// The coroutine a run is resuming now (its pointer; 0: none).
    running: AtomicUsize,
}

impl Waits {
    /// Errs unless the code asking to wait runs in the hook's own
    /// coroutine: one the script created cannot be resumed by the engine.
    pub(crate) fn check(&self, lua: &Lua, what: &str) -> mlua::Result<()> {
        self.check_thread(lua.current_thread().to_pointer() as usize, what)
            .map_err(mlua::Error::RuntimeError)
    }

    /// [`Waits::check`] for the coroutine at `thread` (its `lua_State`).
    pub(crate) fn check_thread(&self, thread: usize, what: &str) -> Result<(), String> {
        if thread != self.running.load(Ordering::Relaxed) {
            return Err(format!(
                "{what} waits for its result, which works in the hook itself, not in a coroutine the script created"
            ));
        }
        Ok(())
    }

    /// Leaves `wait` for the run (after [`Waits::check`]).
    pub(crate) fn put(&self, wait: Wait) {
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(wait);
    }

    fn take(&self) -> Option<Wait> {
        self.slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// Resumes the coroutines of one Lua state.
pub(crate) struct Runner {
    lua: Lua,
    budget: Budget,
    waits: Arc<Waits>,
    host: Arc<dyn Host>,
    /// Finished coroutines, kept for the next runs.
    pool: Mutex<Vec<Coroutine>>,
}

impl Runner {
    /// A runner for `lua`, whose host functions leave their waits in
    /// `waits`.
    pub(crate) fn new(lua: Lua, budget: Budget, waits: Arc<Waits>, host: Arc<dyn Host>) -> Runner {
        Runner {
            lua,
            budget,
            waits,
            host,
            pool: Mutex::new(Vec::new()),
        }
    }

    /// The state.
    pub(crate) fn lua(&self) -> &Lua {
        &self.lua
    }

    /// Runs `func(arg)` to its end: resumes it, awaits each wait it
    /// yields for, resumes it with the outcome. Each resume gets a fresh
    /// instruction budget. An error ends the run (with file and line in
    /// the message); a coroutine that yields by itself is an error too.
    pub(crate) async fn run(&self, func: &Function, arg: Value) -> mlua::Result<()> {
        let co = self.coroutine(func)?;
        let mut wait = self.resume(&co, Some(func), &[arg])?;
        while let Some(w) = wait {
            wait = match w.outcome(&self.host).await {
                Outcome::Dial(r) => {
                    // The usual phrase for the code comes from a table the
                    // host call holds (nil here): no string made per call.
                    let reason = if r.reason == api::command::reason_phrase(r.code) {
                        Value::Nil
                    } else {
                        Value::String(lifted(&self.lua, || self.lua.create_string(&r.reason))?)
                    };
                    let args = [
                        Value::Boolean(r.answered),
                        Value::Integer(r.code.into()),
                        reason,
                        Value::Number(r.duration.as_secs_f64()),
                    ];
                    self.resume(&co, None, &args)?
                }
                Outcome::Http(h) => {
                    // Under the memory limit: a remote party chose the
                    // body's size.
                    let values = h.into_lua_multi(&self.lua)?;
                    let args: Vec<Value> = values.into_iter().collect();
                    self.resume(&co, None, &args)?
                }
            };
        }
        self.recycle(co);
        Ok(())
    }

    /// A coroutine for a run, reused when one is free.
    fn coroutine(&self, func: &Function) -> mlua::Result<Coroutine> {
        let free = self
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match free {
            Some(co) => Ok(co),
            None => lifted(&self.lua, || Coroutine::new(&self.lua, func)),
        }
    }

    /// Keeps a finished coroutine for later (a failed or abandoned one is
    /// left to the collector: closing it could run script code).
    fn recycle(&self, co: Coroutine) {
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < THREAD_POOL {
            pool.push(co);
        }
    }

    /// One resume (`start`: the first, which puts the function on the
    /// coroutine): `None` when the coroutine finished, its wait when it
    /// yielded for one.
    fn resume(
        &self,
        co: &Coroutine,
        start: Option<&Function>,
        args: &[Value],
    ) -> mlua::Result<Option<Wait>> {
        // The slot is the state's: it is filled and emptied under the run
        // lock, within one resume.
        let (resumed, wait) = self.budget.run(|| {
            self.waits.running.store(co.id(), Ordering::Relaxed);
            let out = co.resume(&self.lua, start, args);
            self.waits.running.store(0, Ordering::Relaxed);
            (out, self.waits.take())
        });
        match (resumed?, wait) {
            (Resumed::Finished, _) => Ok(None),
            (Resumed::Yielded { token: true }, Some(w)) => Ok(Some(w)),
            (Resumed::Yielded { .. }, _) => Err(mlua::Error::RuntimeError(
                "the hook yielded by itself (coroutine.yield); only host calls such as call:dial and tandem.http may wait".into(),
            )),
        }
    }
}
