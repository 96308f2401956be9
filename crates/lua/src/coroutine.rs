//! A hook's coroutine, resumed through Lua's C API.
//!
//! mlua's `Thread::resume` checks the thread's state with `lua_getstack`
//! and `lua_getinfo`, moves arguments and results through its reference
//! stack, and wraps each value it hands back: about 1,500 machine
//! instructions per resume around Lua's own work, and a run resumes a
//! call's coroutine at least twice (BENCHMARKS.md, "Lua dial plans",
//! session 11). Here a resume is one `lua_resume` under the state's lock.
//!
//! Why it is sound:
//! - Everything runs under the state's lock (mlua's, through
//!   `exec_raw_lua`), as mlua's own resume does; Rust callbacks that the
//!   script calls meanwhile take it again (it is re-entrant).
//! - `lua_resume` is a protected call: an error in the coroutine comes
//!   back as a status, never as a `longjmp` through this frame. The other
//!   calls here cannot raise: the values pushed are references mlua holds
//!   or plain numbers, and the stacks are grown (`lua_checkstack`, which
//!   fails instead of raising) before anything is pushed.
//! - An error value is read the way mlua reads one (`pop_value`), so a
//!   Rust callback's error comes back as that error, with its traceback.
#![allow(unsafe_code)]

use crate::run::wait_token;
use mlua::ffi::{self, lua_State};
use mlua::{Function, Lua, Thread, Value};
use std::ffi::c_int;

/// A coroutine of a state, and its `lua_State`.
pub(crate) struct Coroutine {
    /// mlua's handle, which keeps the coroutine from the collector.
    thread: Thread,
    /// The coroutine's `lua_State`, as a number (the handle keeps it
    /// valid).
    state: usize,
}

/// How a resume ended (an error is the `Err` of [`Coroutine::resume`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resumed {
    /// The function returned.
    Finished,
    /// It yielded: with the engine's wait token (a host call waits), or
    /// with anything else (the script yielded by itself).
    Yielded {
        /// Yielded exactly the wait token.
        token: bool,
    },
}

impl Coroutine {
    /// A new coroutine of `lua` (running `func` when started).
    pub(crate) fn new(lua: &Lua, func: &Function) -> mlua::Result<Coroutine> {
        let thread = lua.create_thread(func.clone())?;
        let state = thread.to_pointer() as usize;
        Ok(Coroutine { thread, state })
    }

    /// The coroutine's `lua_State` as a number: what `Waits` compares with
    /// the state a host call runs in.
    pub(crate) fn id(&self) -> usize {
        self.state
    }

    /// Resumes the coroutine with `args` in `lua`, the state it belongs
    /// to. With `start`, first empties it and puts `start` on it: a new
    /// run of a coroutine that finished (or never ran).
    pub(crate) fn resume(
        &self,
        lua: &Lua,
        start: Option<&Function>,
        args: &[Value],
    ) -> mlua::Result<Resumed> {
        debug_assert!(self.thread.to_pointer() as usize == self.state);
        let thread = self.state as *mut lua_State;
        let nargs = args.len() as c_int;
        let pushed = nargs + c_int::from(start.is_some());
        lua.exec_raw_lua(|raw| {
            let main = raw.state();
            // SAFETY: see the module header. Both stacks are grown before
            // anything is pushed; the values are mlua's (pushed by
            // reference) or plain.
            unsafe {
                if ffi::lua_checkstack(main, pushed + 2) == 0
                    || ffi::lua_checkstack(thread, pushed + 2) == 0
                {
                    return Err(mlua::Error::RuntimeError(
                        "cannot resume the hook: stack overflow".into(),
                    ));
                }
                if let Some(f) = start {
                    // A finished coroutine keeps nothing that needs closing.
                    ffi::lua_settop(thread, 0);
                    raw.push(f)?;
                }
                for a in args {
                    raw.push_value(a)?;
                }
                ffi::lua_xmove(main, thread, pushed);
                let mut results: c_int = 0;
                let status = ffi::lua_resume(thread, main, nargs, &mut results);
                match status {
                    ffi::LUA_OK => {
                        ffi::lua_settop(thread, 0);
                        Ok(Resumed::Finished)
                    }
                    ffi::LUA_YIELD => {
                        let token = results == 1
                            && ffi::lua_type(thread, -1) == ffi::LUA_TLIGHTUSERDATA
                            && ffi::lua_touserdata(thread, -1) == wait_token().0;
                        // What a resume expects: the yielded values gone.
                        ffi::lua_pop(thread, results);
                        Ok(Resumed::Yielded { token })
                    }
                    _ => {
                        // The error value, moved to where mlua reads values.
                        ffi::lua_xmove(thread, main, 1);
                        Err(error_of(status, raw.pop_value()))
                    }
                }
            }
        })
    }
}

/// The error a failed resume left: a Rust callback's error as it was, a
/// message as a runtime (or memory) error, anything else by its type.
fn error_of(status: c_int, value: Value) -> mlua::Error {
    match value {
        Value::Error(e) => *e,
        Value::String(s) if status == ffi::LUA_ERRMEM => {
            mlua::Error::MemoryError(s.to_string_lossy())
        }
        Value::String(s) => mlua::Error::RuntimeError(s.to_string_lossy()),
        other => {
            mlua::Error::RuntimeError(format!("(error object is a {} value)", other.type_name()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua_with(code: &str) -> (Lua, Function) {
        let lua = Lua::new();
        let f = lua.load(code).into_function().unwrap();
        (lua, f)
    }

    #[test]
    fn a_coroutine_yields_finishes_and_runs_again() {
        let (lua, f) = lua_with("local a = ...; local b = coroutine.yield(a + 1); assert(b == 5)");
        let co = Coroutine::new(&lua, &f).unwrap();
        for _ in 0..3 {
            let r = co.resume(&lua, Some(&f), &[Value::Integer(1)]).unwrap();
            assert_eq!(r, Resumed::Yielded { token: false });
            let r = co.resume(&lua, None, &[Value::Integer(5)]).unwrap();
            assert_eq!(r, Resumed::Finished);
        }
    }

    #[test]
    fn the_wait_token_is_told_apart() {
        let (lua, f) = lua_with("coroutine.yield(...)");
        let co = Coroutine::new(&lua, &f).unwrap();
        let token = Value::LightUserData(wait_token());
        let r = co.resume(&lua, Some(&f), &[token]).unwrap();
        assert_eq!(r, Resumed::Yielded { token: true });
    }

    #[test]
    fn errors_come_back_as_mlua_errors() {
        // A message.
        let (lua, f) = lua_with("error('boom')");
        let co = Coroutine::new(&lua, &f).unwrap();
        let e = co.resume(&lua, Some(&f), &[]).unwrap_err();
        assert!(
            matches!(&e, mlua::Error::RuntimeError(m) if m.ends_with("boom")),
            "{e:?}"
        );
        // A Rust callback's error keeps its kind.
        let (lua, f) = lua_with("fail()");
        let fail = lua
            .create_function(|_, ()| Err::<(), _>(mlua::Error::RuntimeError("nope".into())))
            .unwrap();
        lua.globals().set("fail", fail).unwrap();
        let co = Coroutine::new(&lua, &f).unwrap();
        let e = co.resume(&lua, Some(&f), &[]).unwrap_err();
        assert!(matches!(&e, mlua::Error::CallbackError { .. }), "{e:?}");
        // Anything else, by its type.
        let (lua, f) = lua_with("error({})");
        let co = Coroutine::new(&lua, &f).unwrap();
        let e = co.resume(&lua, Some(&f), &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "runtime error: (error object is a table value)"
        );
        // A dead coroutine says so.
        let e = co.resume(&lua, None, &[]).unwrap_err();
        assert!(
            e.to_string().contains("cannot resume dead coroutine"),
            "{e}"
        );
    }
}
