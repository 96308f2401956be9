//! Limits on a Lua state: an instruction budget per run between yields and
//! a memory ceiling, both enforced from a count hook so the error names the
//! script line that ran over.
//!
//! The hook is a *global* hook of the state, so it also watches coroutines
//! a script creates itself (a per-thread hook would not be inherited). A
//! state runs one coroutine at a time; each resume (`Budget::run`) resets the count each
//! time a call's coroutine is resumed, under the state's run lock, so the
//! count is always "instructions since this call last yielded".

use mlua::{HookTriggers, Lua, VmState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Instructions between two hook calls.
const HOOK_EVERY: u32 = 1_000;

/// The limits of one Lua state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most instructions a script runs without yielding.
    pub instructions: u64,
    /// Most bytes the state may hold.
    pub memory: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            instructions: 1_000_000,
            memory: 64 * 1024 * 1024,
        }
    }
}

/// The budget of one state: shared by the hook and the run wrapper.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    used: Arc<AtomicU64>,
    run_lock: Arc<Mutex<()>>,
}

impl Budget {
    /// Installs the hook and the memory limit on `lua`.
    pub(crate) fn install(lua: &Lua, limits: Limits) -> mlua::Result<Budget> {
        let used = Arc::new(AtomicU64::new(0));
        let hook_used = used.clone();
        let max = limits.instructions.max(u64::from(HOOK_EVERY));
        // Stop a runaway allocation at 7/8 of the ceiling, where the hook
        // can still say which line did it; the hard limit catches a single
        // huge allocation.
        let soft_memory = limits.memory / 8 * 7;
        lua.set_memory_limit(limits.memory)?;
        lua.set_global_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY),
            move |lua, debug| {
                let n = hook_used.fetch_add(u64::from(HOOK_EVERY), Ordering::Relaxed);
                let over_budget = n >= max;
                let over_memory = lua.used_memory() > soft_memory;
                if !over_budget && !over_memory {
                    return Ok(VmState::Continue);
                }
                let src = debug.source();
                let place = match debug.current_line() {
                    Some(line) => format!("{}:{line}: ", src.short_src.unwrap_or_default()),
                    None => String::new(),
                };
                let what = if over_budget {
                    format!("instruction budget exceeded ({max} instructions without yielding)")
                } else {
                    format!("memory limit exceeded ({} bytes)", lua.used_memory())
                };
                Err(mlua::Error::RuntimeError(format!("{place}{what}")))
            },
        )?;
        Ok(Budget {
            used,
            run_lock: Arc::new(Mutex::new(())),
        })
    }

    /// Runs `f` as one budgeted run on the state: loading a script, or one
    /// resume of a call's coroutine (each starts a fresh budget).
    pub(crate) fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.run_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.used.store(0, Ordering::Relaxed);
        f()
    }
}

/// Runs `f`, which makes a few host values of bounded size (a field of
/// the call, a header, a reason phrase, the call object), with the
/// state's hard memory limit lifted.
///
/// While a state has a limit, mlua must expect any allocation to fail
/// and wraps each string or table it makes in a protected call: about
/// 1,100 instructions for each one, a third of what reading `call.user`
/// costs. The values made here are as large as the SIP message they come
/// from at most, and the hook's soft limit (7/8 of the hard one) still
/// counts what they hold. The script does not run meanwhile, except for
/// a finalizer (`__gc`) the collector may call, which the instruction
/// budget and the soft limit still bound.
pub(crate) fn lifted<R>(lua: &Lua, f: impl FnOnce() -> mlua::Result<R>) -> mlua::Result<R> {
    let limit = lua.set_memory_limit(0)?;
    let result = f();
    lua.set_memory_limit(limit)?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifted_puts_the_limit_back() {
        let lua = Lua::new();
        lua.set_memory_limit(8 << 20).unwrap();
        let s = lifted(&lua, || lua.create_string("x".repeat(1 << 10))).unwrap();
        assert_eq!(s.as_bytes().len(), 1 << 10);
        assert!(lifted(&lua, || Err::<(), _>(mlua::Error::runtime("no"))).is_err());
        // The limit is the one set before, after success and failure.
        assert_eq!(lua.set_memory_limit(1 << 30).unwrap(), 8 << 20);
    }
}
