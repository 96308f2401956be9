//! The `call` object a script holds, and the C functions behind its fields
//! and its most used methods (`header`, `set_header`, `add_header`,
//! `remove_header`, and `dial` to a single URI).
//!
//! Why C functions: through mlua's safe API every `call.x` or `call:m()`
//! runs mlua's `__index` function and then a Rust callback behind a
//! protected call: about 2,700 machine instructions before any work. A C
//! function of our own found through a C `__index` costs about a third of
//! that, and a dial plan makes several such calls per call
//! (BENCHMARKS.md, "Lua dial plans", session 10).
//!
//! The object is a zero-sized mlua userdata ([`CallObject`]) whose
//! metatable holds our `__index`. The call behind it is found by the
//! object's address in the state's [`CallTable`]; the entry goes when the
//! call's script ends, so a script that kept an old call object gets an
//! error, never freed memory.
//!
//! Why it is sound:
//! - A C function here runs only inside Lua, so while its thread holds
//!   the state's lock (mlua's). An entry leaves the table only under that
//!   lock too ([`CallTable::remove`]), so the call a C function found
//!   stays alive until the function returns, without a reference count.
//! - Lua raises errors with `longjmp`, which must not skip a Rust
//!   destructor. The Rust work (finding the call, validating, sending a
//!   command) happens in [`guarded`], and any value it owns is dropped
//!   before a Lua call that can raise. The only such calls made while it
//!   runs push a string (a memory error), and then it holds references
//!   only.
//! - An error message is copied to a fixed buffer ([`Message`]) before it
//!   is raised, and no panic crosses into Lua: `guarded` catches it.
#![allow(unsafe_code)]
// Errors are a fixed buffer on purpose: a `longjmp` follows, which must
// not skip a destructor (a `String` or a `Box` would have one).
#![allow(clippy::result_large_err)]

use crate::call::LuaCall;
use crate::run::{Wait, Waits};
use api::{Command, DialRequest, validate};
use mlua::ffi::{self, lua_State};
use mlua::{AnyUserData, Function, LightUserData, Lua, Table, UserData, UserDataFields, Value};
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

/// Registry key of the state's `__index` C function of call objects.
const INDEX_KEY: &str = "tandem.call.index";

/// The call object as mlua knows it: no data, only a metatable whose
/// `__index` is [`call_index`]. The call's data is in the [`CallTable`].
pub(crate) struct CallObject;

impl UserData for CallObject {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field_with("__index", |lua| {
            lua.named_registry_value::<Function>(INDEX_KEY)
        });
        fields.add_meta_field("__name", "call");
    }

    fn add_methods<M: mlua::UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_function(
            mlua::MetaMethod::NewIndex,
            |_, (_, key, _): (Value, Value, Value)| -> mlua::Result<()> {
                Err(mlua::Error::RuntimeError(format!(
                    "attempt to set field '{}' of the call: its fields are read-only (use call.vars for variables)",
                    key.to_string().unwrap_or_else(|_| key.type_name().to_string())
                )))
            },
        );
        methods.add_meta_function(mlua::MetaMethod::ToString, |lua, object: AnyUserData| {
            let calls = lua.app_data_ref::<Arc<CallTable>>().map(|t| Arc::clone(&t));
            Ok(match calls.and_then(|t| t.get(&object)) {
                Some(call) => format!("call {}", call.view().call_id),
                None => "call (ended)".to_string(),
            })
        });
    }
}

/// Hashes an object's address (already unique: only spread its bits).
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64 >> 4).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// The calls of one Lua state whose scripts are running, by the address
/// of their call object.
pub(crate) struct CallTable {
    calls: Mutex<HashMap<usize, Arc<LuaCall>, BuildHasherDefault<AddressHasher>>>,
    waits: Arc<Waits>,
}

impl CallTable {
    /// An empty table whose dials leave their waits in `waits`.
    pub(crate) fn new(waits: Arc<Waits>) -> CallTable {
        CallTable {
            calls: Mutex::new(HashMap::default()),
            waits,
        }
    }

    /// Where the state's dials leave their waits.
    pub(crate) fn waits(&self) -> &Arc<Waits> {
        &self.waits
    }

    // Lock order: the state's lock (mlua's, held while Lua runs, taken by
    // `AnyUserData::to_pointer`) before this table's lock. So the address
    // is read before the table is locked.

    /// Makes `object` the call object of `call`; gives back its key for
    /// [`CallTable::remove`].
    pub(crate) fn insert(&self, object: &AnyUserData, call: Arc<LuaCall>) -> usize {
        let address = object.to_pointer() as usize;
        self.lock().insert(address, call);
        address
    }

    /// Ends the call object at `address` (from [`CallTable::insert`]) as
    /// one, in the state `lua` (its script ended), and drops the call.
    pub(crate) fn remove(&self, lua: &Lua, address: usize) {
        let mut removed = None;
        // SAFETY: the closure only takes the entry out of the table (no
        // Lua call, nothing that can raise). `exec_raw` holds the state's
        // lock meanwhile: no C function of this module runs, so none
        // holds a reference into the call (see the module header).
        let locked = unsafe { lua.exec_raw::<()>((), |_| removed = self.lock().remove(&address)) };
        match locked {
            Ok(()) => drop(removed),
            // Cannot happen short of the process running out of memory:
            // then the entry goes without the state's lock, and the call
            // is leaked rather than freed under a C function.
            Err(_) => std::mem::forget(self.lock().remove(&address)),
        }
    }

    /// The call behind `object`, while its script runs.
    pub(crate) fn get(&self, object: &AnyUserData) -> Option<Arc<LuaCall>> {
        let address = object.to_pointer() as usize;
        self.lock().get(&address).cloned()
    }

    /// The call at `address`, for a C function of this module: valid
    /// until it returns (see the module header).
    fn at(&self, address: usize) -> Option<*const LuaCall> {
        self.lock().get(&address).map(Arc::as_ptr)
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<usize, Arc<LuaCall>, BuildHasherDefault<AddressHasher>>>
    {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
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
    /// Starts a dial to one URI string (the `call:dial` wrapper yields).
    pub(crate) dial_uri: Function,
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
        dial_uri: closure(call_dial_uri)?,
    })
}

/// Makes the call objects' `__index` for `lua`, whose calls are in
/// `table` (the one given to [`install`]): `methods` first, then the
/// fields; `vars(call)` makes `call.vars`.
pub(crate) fn install_index(
    lua: &Lua,
    table: &Arc<CallTable>,
    methods: Table,
    vars: Function,
) -> mlua::Result<()> {
    let table = LightUserData(Arc::as_ptr(table) as *mut c_void);
    // SAFETY: as in `install`, over three upvalues.
    let index = unsafe {
        lua.exec_raw::<Function>((table, methods, vars), |state| {
            ffi::lua_pushcclosure(state, call_index, 3)
        })
    }?;
    lua.set_named_registry_value(INDEX_KEY, index)
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

/// Finishes a C function: its result count, or raises its error.
///
/// # Safety
/// `state` is the running state; nothing in the caller's frame has a
/// destructor left to run.
unsafe fn finish(state: *mut lua_State, outcome: Outcome) -> c_int {
    // SAFETY: as above; level 1 is the script's line that called us.
    unsafe { finish_at(state, outcome, 1) }
}

/// [`finish`], naming the line of the Lua function `level` calls up
/// (2: the caller of a Lua wrapper that called us).
///
/// # Safety
/// As for [`finish`].
unsafe fn finish_at(state: *mut lua_State, outcome: Outcome, level: c_int) -> c_int {
    match outcome {
        Ok(n) => n,
        Err(m) => unsafe {
            // "file.lua:LINE: " of the script's line.
            ffi::luaL_where(state, level);
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
    let address = unsafe {
        if ffi::lua_type(state, 1) != ffi::LUA_TUSERDATA {
            0
        } else {
            ffi::lua_touserdata(state, 1) as usize
        }
    };
    let call = if address == 0 {
        None
    } else {
        // SAFETY: see `table`; the call stays in the table while we run.
        unsafe { table(state).at(address).map(|c| &*c) }
    };
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

/// `dial_uri(call, targets, opts)`: for a single URI string and no
/// options, starts the dial, leaves the wait for the run and returns
/// true (the `call:dial` wrapper then yields); for anything else returns
/// false, and the wrapper takes the general way.
unsafe extern "C-unwind" fn call_dial_uri(state: *mut lua_State) -> c_int {
    // SAFETY: see the module header.
    unsafe {
        if ffi::lua_type(state, 2) != ffi::LUA_TSTRING || ffi::lua_isnoneornil(state, 3) == 0 {
            ffi::lua_pushboolean(state, 0);
            return 1;
        }
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
            ffi::lua_pushboolean(state, 1);
            Ok(1)
        });
        // Called by the `call:dial` wrapper: the script's line is above it.
        finish_at(state, outcome, 2)
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
