//! The `call` object a script holds, and the C functions behind its fields
//! and its most used methods (`header`, `set_header`, `add_header`,
//! `remove_header` and `dial`).
//!
//! Why C functions: through mlua's safe API every `call.x` or `call:m()`
//! runs mlua's `__index` function and then a Rust callback behind a
//! protected call: about 2,700 machine instructions before any work. A C
//! function of our own found through a C `__index` costs about a third of
//! that, and a dial plan makes several such calls per call
//! (BENCHMARKS.md, "Lua dial plans", session 10).
//!
//! The object is a light userdata: a number (the call's slot in the
//! state's [`CallTable`] and that slot's generation) that Lua shows as a
//! `userdata`. Making one costs nothing (no allocation, nothing for the
//! collector); light userdata share one metatable per state, whose
//! `__index` is ours. A slot's generation moves on when its call's
//! script ends, so a script that kept an old call object gets an error,
//! never another call and never freed memory. Scripts cannot make light
//! userdata of their own.
//!
//! Why it is sound:
//! - A C function here runs only inside Lua, so while its thread holds
//!   the state's lock (mlua's). An entry leaves the table only under that
//!   lock too ([`CallTable::remove`]), so the call a C function found
//!   stays alive until the function returns, without a reference count.
//! - Lua raises errors and yields with `longjmp`, which must not skip a
//!   Rust destructor. The Rust work (finding the call, validating,
//!   sending a command) happens in [`guarded`], and any value it owns is
//!   dropped before a Lua call that can raise or yield. The only such
//!   calls made while it runs push a string (a memory error), and then it
//!   holds references only. `dial` calls a Rust function (`lua_call`) and
//!   yields (`lua_yieldk`) after `guarded` has returned.
//! - An error message is copied to a fixed buffer ([`Message`]) before it
//!   is raised, and no panic crosses into Lua: `guarded` catches it.
#![allow(unsafe_code)]
// Errors are a fixed buffer on purpose: a `longjmp` follows, which must
// not skip a destructor (a `String` or a `Box` would have one).
#![allow(clippy::result_large_err)]

use crate::call::LuaCall;
use crate::run::{Wait, Waits, wait_token};
use api::{Command, DialRequest, validate};
use mlua::ffi::{self, lua_State};
use mlua::{Function, LightUserData, Lua, Table, Value};
use std::ffi::{c_char, c_int, c_void};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Bits of a call object that number its slot; the rest is the slot's
/// generation.
const SLOT_BITS: u32 = if usize::BITS == 64 { 24 } else { 12 };
/// Mask of the slot bits.
const SLOT_MASK: usize = (1 << SLOT_BITS) - 1;
/// Generations a slot goes through before its numbers come round again.
const GENERATIONS: usize = usize::MAX >> SLOT_BITS;

/// A call object: the Lua value a script holds for its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CallKey(usize);

impl CallKey {
    /// The object as a Lua value.
    pub(crate) fn object(self) -> Value {
        Value::LightUserData(LightUserData(self.0 as *mut c_void))
    }

    /// The key a Lua value stands for, if it is a light userdata (whether
    /// a call is behind it is for the table to say).
    fn of(value: &Value) -> Option<CallKey> {
        match value {
            Value::LightUserData(p) => Some(CallKey(p.0 as usize)),
            _ => None,
        }
    }
}

/// One slot: the generation its current or next call object carries, and
/// the call while its script runs.
struct Slot {
    generation: usize,
    call: Option<Arc<LuaCall>>,
}

/// The slots of a table, and which of them are free.
#[derive(Default)]
struct Slots {
    slots: Vec<Slot>,
    free: Vec<usize>,
}

/// The calls of one Lua state whose scripts are running, each in a slot
/// its call object names.
pub(crate) struct CallTable {
    slots: Mutex<Slots>,
    waits: Arc<Waits>,
}

impl CallTable {
    /// An empty table whose dials leave their waits in `waits`.
    pub(crate) fn new(waits: Arc<Waits>) -> CallTable {
        CallTable {
            slots: Mutex::new(Slots::default()),
            waits,
        }
    }

    /// Where the state's dials leave their waits.
    pub(crate) fn waits(&self) -> &Arc<Waits> {
        &self.waits
    }

    /// A new call object for `call`, which [`CallTable::remove`] ends
    /// (`None`: the state has as many calls as objects can number).
    pub(crate) fn insert(&self, call: Arc<LuaCall>) -> Option<CallKey> {
        let mut s = self.lock();
        let index = match s.free.pop() {
            Some(i) => i,
            None if s.slots.len() < SLOT_MASK => {
                s.slots.push(Slot {
                    generation: 1,
                    call: None,
                });
                s.slots.len() - 1
            }
            None => return None,
        };
        let slot = &mut s.slots[index];
        slot.call = Some(call);
        Some(CallKey(slot.generation << SLOT_BITS | index))
    }

    /// Ends the call object `key` as one, in the state `lua` (its script
    /// ended), and drops the call.
    pub(crate) fn remove(&self, lua: &Lua, key: CallKey) {
        // The state's lock is held meanwhile: no C function of this module
        // runs, so none holds a reference into the call (see the module
        // header). Only the slot changes here: nothing can raise.
        let removed = lua.exec_raw_lua(|_| {
            let mut s = self.lock();
            let index = key.0 & SLOT_MASK;
            let slot = s.slots.get_mut(index)?;
            if slot.generation != key.0 >> SLOT_BITS {
                return None;
            }
            // A new generation: the old object now names no call.
            slot.generation = slot.generation % GENERATIONS + 1;
            let call = slot.call.take();
            s.free.push(index);
            call
        });
        drop(removed);
    }

    /// The call behind `object` (a Lua value), while its script runs.
    pub(crate) fn get(&self, object: &Value) -> Option<Arc<LuaCall>> {
        let key = CallKey::of(object)?;
        self.with(key, |c| c.clone())
    }

    /// The call at `key`, for a C function of this module: valid until
    /// it returns (see the module header).
    fn at(&self, key: CallKey) -> Option<*const LuaCall> {
        self.with(key, Arc::as_ptr)
    }

    fn with<R>(&self, key: CallKey, f: impl FnOnce(&Arc<LuaCall>) -> R) -> Option<R> {
        // The engine's wait token is a light userdata too: never a call.
        if key.0 == wait_token().0 as usize {
            return None;
        }
        let s = self.lock();
        let slot = s.slots.get(key.0 & SLOT_MASK)?;
        if slot.generation != key.0 >> SLOT_BITS {
            return None;
        }
        slot.call.as_ref().map(f)
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The C functions of the call object, as Lua functions of `lua`.
pub(crate) struct RawMethods {
    /// `call:header(name)`.
    pub(crate) header: Function,
    /// `call:set_header(name, value)`.
    pub(crate) set_header: Function,
    /// `call:add_header(name, value)`.
    pub(crate) add_header: Function,
    /// `call:remove_header(name)`.
    pub(crate) remove_header: Function,
}

/// Makes the C functions for `lua`, whose calls are in `table` (kept in
/// the state's app data, so it outlives every function that points to
/// it).
pub(crate) fn install(lua: &Lua, table: Arc<CallTable>) -> mlua::Result<RawMethods> {
    let pointer = LightUserData(Arc::as_ptr(&table) as *mut c_void);
    lua.set_app_data(table);
    let closure = |f: ffi::lua_CFunction| -> mlua::Result<Function> {
        // SAFETY: pushes one C closure over the one argument (a light
        // userdata); `pushcclosure` may raise only a memory error, which
        // `exec_raw` catches.
        unsafe { lua.exec_raw::<Function>(pointer, |state| ffi::lua_pushcclosure(state, f, 1)) }
    };
    Ok(RawMethods {
        header: closure(call_header)?,
        set_header: closure(call_set_header)?,
        add_header: closure(call_add_header)?,
        remove_header: closure(call_remove_header)?,
    })
}

/// Makes the call objects' metatable for `lua`, whose calls are in
/// `table` (the one given to [`install`]). Its `__index` looks in
/// `methods` first, then at the fields; `vars(call)` makes `call.vars`.
/// Light userdata share one metatable per state, so this one is theirs.
pub(crate) fn install_metatable(
    lua: &Lua,
    table: &Arc<CallTable>,
    methods: Table,
    vars: Function,
) -> mlua::Result<()> {
    let pointer = LightUserData(Arc::as_ptr(table) as *mut c_void);
    // SAFETY: as in `install`, over three upvalues.
    let index = unsafe {
        lua.exec_raw::<Function>((pointer, methods, vars), |state| {
            ffi::lua_pushcclosure(state, call_index, 3)
        })
    }?;
    let newindex = lua.create_function(|_, (_, key, _): (Value, Value, Value)| -> mlua::Result<()> {
        Err(mlua::Error::RuntimeError(format!(
            "attempt to set field '{}' of the call: its fields are read-only (use call.vars for variables)",
            key.to_string().unwrap_or_else(|_| key.type_name().to_string())
        )))
    })?;
    let calls = table.clone();
    let tostring = lua.create_function(move |_, object: Value| {
        Ok(match calls.get(&object) {
            Some(call) => format!("call {}", call.view().call_id),
            None => "call (ended)".to_string(),
        })
    })?;
    let metatable = lua.create_table()?;
    metatable.raw_set("__index", index)?;
    metatable.raw_set("__newindex", newindex)?;
    metatable.raw_set("__tostring", tostring)?;
    metatable.raw_set("__name", "call")?;
    metatable.raw_set("__metatable", false)?;
    // SAFETY: sets the metatable of light userdata from the one argument;
    // may raise only a memory error, which `exec_raw` catches.
    unsafe {
        lua.exec_raw::<()>(metatable, |state| {
            ffi::lua_pushlightuserdata(state, std::ptr::null_mut());
            ffi::lua_pushvalue(state, -2);
            ffi::lua_setmetatable(state, -2);
        })
    }
}

/// An error message in a fixed buffer: no destructor, so it may be held
/// while Lua raises.
#[derive(Clone, Copy)]
struct Message {
    buf: [u8; 320],
    len: usize,
}

impl Message {
    fn new(args: std::fmt::Arguments<'_>) -> Message {
        let mut m = Message {
            buf: [0; 320],
            len: 0,
        };
        let _ = std::fmt::Write::write_fmt(&mut m, args);
        m
    }
}

impl std::fmt::Write for Message {
    /// Appends what fits, cut at a character boundary.
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = self.buf.len() - self.len;
        let mut n = s.len().min(room);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// What a C function's Rust part hands back: how many results it
/// pushed, or the error to raise.
type Outcome = Result<c_int, Message>;

/// Runs the Rust part of a C function: everything it owns is dropped when
/// it returns, and a panic becomes an error.
fn guarded(work: impl FnOnce() -> Outcome) -> Outcome {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|_| {
        Err(Message::new(format_args!(
            "internal error in a call method"
        )))
    })
}

/// Finishes a C function: its result count, or raises its error with
/// the script's line in front.
///
/// # Safety
/// `state` is the running state; nothing in the caller's frame has a
/// destructor left to run.
unsafe fn finish(state: *mut lua_State, outcome: Outcome) -> c_int {
    match outcome {
        Ok(n) => n,
        // SAFETY: as above; level 1 is the script's line that called us.
        Err(m) => unsafe {
            // "file.lua:LINE: " of the script's line.
            ffi::luaL_where(state, 1);
            ffi::lua_pushlstring(state, m.buf.as_ptr() as *const c_char, m.len);
            ffi::lua_concat(state, 2);
            ffi::lua_error(state)
        },
    }
}

/// The table of the running function's first upvalue.
///
/// # Safety
/// The running C function was made by [`install`] or [`install_index`].
unsafe fn table<'a>(state: *mut lua_State) -> &'a CallTable {
    // SAFETY: the upvalue points to the `CallTable` in the state's app
    // data, which mlua drops only after closing the state.
    unsafe { &*(ffi::lua_touserdata(state, ffi::lua_upvalueindex(1)) as *const CallTable) }
}

/// The call whose object is argument 1, or why there is none.
///
/// # Safety
/// As for [`table`]; the reference is valid until the C function returns.
unsafe fn the_call<'a>(state: *mut lua_State, what: &str) -> Result<&'a LuaCall, Message> {
    // SAFETY: reading the type and address of a stack value never raises.
    let key = unsafe {
        (ffi::lua_type(state, 1) == ffi::LUA_TLIGHTUSERDATA)
            .then(|| CallKey(ffi::lua_touserdata(state, 1) as usize))
    };
    // SAFETY: see `table`; the call stays in the table while we run.
    let call = key.and_then(|k| unsafe { table(state).at(k).map(|c| &*c) });
    call.ok_or_else(|| {
        Message::new(format_args!(
            "call:{what}: use it as a method of the call of a running script (call:{what}(…))"
        ))
    })
}

/// Argument `index` as a string (borrowed from the stack), if it is one.
///
/// # Safety
/// `index` is a valid stack index; the bytes live while the argument is
/// on the stack.
unsafe fn string_arg<'a>(state: *mut lua_State, index: c_int) -> Option<&'a str> {
    // SAFETY: `tolstring` on a string neither converts nor raises.
    unsafe {
        if ffi::lua_type(state, index) != ffi::LUA_TSTRING {
            return None;
        }
        let mut len = 0;
        let p = ffi::lua_tolstring(state, index, &mut len);
        std::str::from_utf8(std::slice::from_raw_parts(p as *const u8, len)).ok()
    }
}

/// Pushes an optional string (nil for none). A memory error raises at
/// once: the caller holds only references then.
///
/// # Safety
/// `state` is the running state with a free stack slot.
unsafe fn push_optional(state: *mut lua_State, text: Option<&str>) -> Outcome {
    // SAFETY: as above.
    unsafe {
        match text {
            Some(t) => {
                ffi::lua_pushlstring(state, t.as_ptr() as *const c_char, t.len());
            }
            None => ffi::lua_pushnil(state),
        }
    }
    Ok(1)
}

/// `__index(call, key)`: a method from upvalue 2, a field of the call, or
/// an error for an unknown key. Upvalue 3 makes `call.vars`.
unsafe extern "C-unwind" fn call_index(state: *mut lua_State) -> c_int {
    // SAFETY (whole function): stack indexes 1 and 2 are the arguments
    // Lua passes to `__index`; the upvalues are the ones `install_index`
    // gave; the rules of the module header hold for each branch.
    unsafe {
        ffi::lua_pushvalue(state, 2);
        if ffi::lua_rawget(state, ffi::lua_upvalueindex(2)) != ffi::LUA_TNIL {
            return 1;
        }
        ffi::lua_pop(state, 1);
        let key = string_arg(state, 2);
        if key == Some("vars") {
            // A Rust function that makes the `Vars` userdata; it raises
            // its own errors, with nothing of ours to drop.
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(3));
            ffi::lua_pushvalue(state, 1);
            ffi::lua_call(state, 1, 1);
            return 1;
        }
        let outcome = guarded(|| {
            let Some(key) = key else {
                return Err(Message::new(format_args!(
                    "attempt to get an unknown field of the call (a {} key)",
                    type_name(state, 2)
                )));
            };
            // Only call objects have this `__index`: no call means its
            // script has ended.
            let call = the_call(state, key).map_err(|_| {
                Message::new(format_args!(
                    "call.{key}: this call object's script has ended (it is valid only while its script runs)"
                ))
            })?;
            let view = call.view();
            match key {
                "user" => push_optional(state, Some(&view.user)),
                "ruri" => push_optional(state, Some(&view.ruri)),
                "from" => push_optional(state, Some(view.from())),
                "from_user" => push_optional(state, Some(view.from_user())),
                "from_name" => push_optional(state, Some(view.from_name())),
                "to" => push_optional(state, Some(view.to())),
                "call_id" => push_optional(state, Some(&view.call_id)),
                "transport" => push_optional(state, Some(&view.transport)),
                "listener" => push_optional(state, Some(&view.listener)),
                "auth_user" => push_optional(state, view.auth_user.as_deref()),
                "version" => push_optional(state, Some(call.version())),
                "source_port" => {
                    ffi::lua_pushinteger(state, ffi::lua_Integer::from(view.source_port));
                    Ok(1)
                }
                "source_ip" => {
                    let ip = Message::new(format_args!("{}", view.source_ip));
                    let ip = std::str::from_utf8(&ip.buf[..ip.len]).unwrap_or_default();
                    push_optional(state, Some(ip))
                }
                other => Err(Message::new(format_args!(
                    "attempt to get an unknown field '{other}'"
                ))),
            }
        });
        finish(state, outcome)
    }
}

/// The type name of stack value `index`.
///
/// # Safety
/// `index` is a valid stack index.
unsafe fn type_name(state: *mut lua_State, index: c_int) -> &'static str {
    // SAFETY: `lua_typename` returns a static C string.
    unsafe {
        let name = ffi::lua_typename(state, ffi::lua_type(state, index));
        std::ffi::CStr::from_ptr(name).to_str().unwrap_or("value")
    }
}

/// `call:header(name)`: the first value of the header, or nil.
unsafe extern "C-unwind" fn call_header(state: *mut lua_State) -> c_int {
    // SAFETY: see the module header; argument 2 stays on the stack.
    unsafe {
        let outcome = guarded(|| {
            let call = the_call(state, "header")?;
            let name = string_arg(state, 2).ok_or_else(|| {
                Message::new(format_args!("call:header(name): the name must be a string"))
            })?;
            push_optional(state, call.view().header(name))
        });
        finish(state, outcome)
    }
}

/// Reads `(call, name, value)` and sends the command `make` builds.
///
/// # Safety
/// As for the C functions.
unsafe fn header_edit(
    state: *mut lua_State,
    what: &str,
    make: fn(String, String) -> Command,
) -> c_int {
    // SAFETY: see the module header.
    unsafe {
        let outcome = guarded(|| {
            let call = the_call(state, what)?;
            let (Some(name), Some(value)) = (string_arg(state, 2), string_arg(state, 3)) else {
                return Err(Message::new(format_args!(
                    "call:{what}(name, value): both must be strings"
                )));
            };
            let (name, value) = validate::header(name, value.to_string())
                .map_err(|e| Message::new(format_args!("call:{what}: {e}")))?;
            call.send(make(name, value));
            Ok(0)
        });
        finish(state, outcome)
    }
}

/// `call:set_header(name, value)`.
unsafe extern "C-unwind" fn call_set_header(state: *mut lua_State) -> c_int {
    // SAFETY: a C function of this module.
    unsafe {
        header_edit(state, "set_header", |name, value| Command::SetHeader {
            name,
            value,
        })
    }
}

/// `call:add_header(name, value)`.
unsafe extern "C-unwind" fn call_add_header(state: *mut lua_State) -> c_int {
    // SAFETY: a C function of this module.
    unsafe {
        header_edit(state, "add_header", |name, value| Command::AddHeader {
            name,
            value,
        })
    }
}

/// `call:remove_header(name)`.
unsafe extern "C-unwind" fn call_remove_header(state: *mut lua_State) -> c_int {
    // SAFETY: see the module header.
    unsafe {
        let outcome = guarded(|| {
            let call = the_call(state, "remove_header")?;
            let name = string_arg(state, 2).ok_or_else(|| {
                Message::new(format_args!(
                    "call:remove_header(name): the name must be a string"
                ))
            })?;
            let name = validate::editable_header(name)
                .map_err(|e| Message::new(format_args!("call:remove_header: {e}")))?
                .to_string();
            call.send(Command::RemoveHeader { name });
            Ok(0)
        });
        finish(state, outcome)
    }
}

/// `call:dial(targets, opts)`: starts the dial and yields until its
/// result comes. A single URI string without options is read here;
/// anything else goes to upvalue 2 (`dial_start(call, targets, opts)`, a
/// Rust function). [`dial_resumed`] makes the result table when the run
/// resumes the coroutine with the dial's outcome.
///
/// A C function that yields costs no Lua instructions of its own: the
/// wrapper in Lua this replaced was two calls and a dozen instructions,
/// each counted by the budget's hook (BENCHMARKS.md, session 11).
unsafe extern "C-unwind" fn call_dial(state: *mut lua_State) -> c_int {
    // SAFETY: see the module header; `lua_call` and `lua_yieldk` run
    // with nothing of ours left to drop in this frame.
    unsafe {
        if ffi::lua_isyieldable(state) == 0 {
            let outcome = Err(Message::new(format_args!(
                "call:dial waits for its result, which cannot happen here (in a metamethod, an iterator or a sort function)"
            )));
            return finish(state, outcome);
        }
        if ffi::lua_type(state, 2) == ffi::LUA_TSTRING && ffi::lua_isnoneornil(state, 3) != 0 {
            let outcome = guarded(|| {
                let call = the_call(state, "dial")?;
                let uri = string_arg(state, 2).ok_or_else(|| {
                    Message::new(format_args!("dial: the target must be a URI string"))
                })?;
                let target = crate::call::target_uri(uri.to_string())
                    .map_err(|e| Message::new(format_args!("{e}")))?;
                let waits = &table(state).waits;
                waits
                    .check_thread(state as usize, "call:dial")
                    .map_err(|e| Message::new(format_args!("{e}")))?;
                let request = DialRequest {
                    targets: vec![target],
                    ..DialRequest::default()
                };
                waits.put(Wait::Dial {
                    result: call.link().start_dial(request),
                    tell: None,
                });
                Ok(0)
            });
            finish(state, outcome);
        } else {
            // Any other dial: the Rust function raises its own errors.
            ffi::lua_settop(state, 3);
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(2));
            ffi::lua_insert(state, 1);
            ffi::lua_call(state, 3, 0);
        }
        ffi::lua_settop(state, 0);
        ffi::lua_pushlightuserdata(state, wait_token().0);
        ffi::lua_yieldk(state, 1, 0, Some(dial_resumed))
    }
}

/// Where `call:dial` goes on when resumed with `answered, code, reason,
/// duration` (reason nil: the usual phrase for the code, from the table
/// in upvalue 3): returns `{ answered, code, reason, duration }`, whose
/// keys are upvalues 4 to 7 (strings made once: `lua_setfield` would
/// look each name up in the state's string cache on every call).
unsafe extern "C-unwind" fn dial_resumed(
    state: *mut lua_State,
    _status: c_int,
    _ctx: ffi::lua_KContext,
) -> c_int {
    // SAFETY: the run resumes with exactly these four values; making the
    // table may raise a memory error, with nothing in this frame to drop.
    unsafe {
        ffi::lua_settop(state, 4);
        if ffi::lua_isnil(state, 3) != 0 {
            if ffi::lua_rawgeti(
                state,
                ffi::lua_upvalueindex(3),
                ffi::lua_tointeger(state, 2),
            ) == ffi::LUA_TNIL
            {
                ffi::lua_pop(state, 1);
                ffi::lua_pushstring(state, c"".as_ptr());
            }
            ffi::lua_replace(state, 3);
        }
        ffi::lua_createtable(state, 0, 4);
        for i in 1..=4 {
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(3 + i));
            ffi::lua_pushvalue(state, i);
            ffi::lua_rawset(state, 5);
        }
        1
    }
}

/// `call:dial` as a Lua function of `lua`, whose calls are in `table`
/// (the one given to [`install`]): `dial_start(call, targets, opts)`
/// starts any dial that is not a single URI string; `phrases` maps codes
/// to their usual reason phrases.
pub(crate) fn dial_function(
    lua: &Lua,
    table: &Arc<CallTable>,
    dial_start: Function,
    phrases: Table,
) -> mlua::Result<Function> {
    let pointer = LightUserData(Arc::as_ptr(table) as *mut c_void);
    let keys = ("answered", "code", "reason", "duration");
    // SAFETY: as in `install`, over seven upvalues.
    unsafe {
        lua.exec_raw::<Function>((pointer, dial_start, phrases, keys), |state| {
            ffi::lua_pushcclosure(state, call_dial, 7)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_cut_at_a_character_boundary() {
        let short = Message::new(format_args!("call:{}: {}", "header", "no"));
        assert_eq!(&short.buf[..short.len], b"call:header: no");
        // 319 ASCII bytes, then a two-byte character that does not fit.
        let long = format!("{}é and more", "x".repeat(319));
        let m = Message::new(format_args!("{long}"));
        assert_eq!(m.len, 319);
        assert!(std::str::from_utf8(&m.buf[..m.len]).is_ok());
    }
}
