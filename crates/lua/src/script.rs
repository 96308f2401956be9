//! One compiled version of a dial plan: a few sandboxed Lua states that
//! each ran the script's top level, and the calls pinned to them.

use crate::budget::{Limits, lifted};
use crate::call::LuaCall;
use crate::call_object::CallTable;
use crate::error::{LoadError, script_error};
use crate::register::{LuaRegister, read_attrs};
use crate::run::{Runner, Waits};
use api::{
    CallLink, CallView, Command, HandlerError, Host, RegisterDecision, RegisterRun, RegisterView,
    ScriptError, ScriptRun,
};
use mlua::chunk::ChunkMode;
use mlua::{Function, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One Lua state of a version. A call keeps its state alive (not the
/// whole version): one reference count per state, written by the worker
/// thread that state belongs to, where one count for the version was a
/// cache line both cores wrote at the start and the end of every call.
struct State {
    /// `file@vN` of the version.
    label: Arc<str>,
    runner: Runner,
    on_invite: Function,
    /// The optional `on_register(reg)` hook.
    on_register: Option<Function>,
    /// The calls whose scripts run on this state, by call object.
    objects: Arc<CallTable>,
    calls: AtomicUsize,
}

/// A compiled, ready version of a dial plan.
pub struct ScriptVersion {
    label: Arc<str>,
    number: u64,
    hash: u64,
    states: Vec<Arc<State>>,
}

/// What a version's calls are, after the version itself may be gone (for
/// status lines): its states, which live as long as their calls.
#[derive(Debug, Clone)]
pub(crate) struct VersionCalls {
    label: Arc<str>,
    number: u64,
    states: Vec<std::sync::Weak<State>>,
}

impl VersionCalls {
    /// `file@vN`.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// The version number.
    pub(crate) fn number(&self) -> u64 {
        self.number
    }

    /// Calls running on the version now.
    pub(crate) fn calls(&self) -> usize {
        self.states
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .map(|s| s.calls.load(Ordering::Relaxed))
            .sum()
    }

    /// False once no call runs on any of its states and the version is
    /// gone.
    pub(crate) fn alive(&self) -> bool {
        self.states.iter().any(|s| s.strong_count() > 0)
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

impl std::fmt::Debug for ScriptVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptVersion")
            .field("label", &self.label)
            .field("states", &self.states.len())
            .finish()
    }
}

/// Where a dial plan comes from and how it runs.
#[derive(Debug, Clone)]
pub struct ScriptConfig {
    /// The main script (its directory is where `require` looks).
    pub path: PathBuf,
    /// Lua states per version; calls are spread over them.
    pub states: usize,
    /// Limits of each state.
    pub limits: Limits,
}

impl ScriptConfig {
    /// A config for `path` with the default limits and two states.
    pub fn new(path: impl Into<PathBuf>) -> ScriptConfig {
        ScriptConfig {
            path: path.into(),
            states: 2,
            limits: Limits::default(),
        }
    }

    /// The directory of the script.
    pub fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// The file name shown in logs and errors.
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }
}

impl ScriptVersion {
    /// Compiles the script as version `number`: reads it, runs its top
    /// level in each state and checks it defines `on_invite`. Blocking:
    /// call it off the call path.
    pub fn compile(
        config: &ScriptConfig,
        number: u64,
        host: &Arc<dyn Host>,
    ) -> Result<ScriptVersion, LoadError> {
        let source = std::fs::read_to_string(&config.path).map_err(|e| LoadError::Io {
            path: config.path.display().to_string(),
            message: e.to_string(),
        })?;
        let name = config.file_name();
        let dir = config.dir();
        let label: Arc<str> = format!("{name}@v{number}").into();
        let mut states = Vec::new();
        for _ in 0..config.states.max(1) {
            let state = load_state(&dir, &name, &source, config.limits, host, &label)?;
            states.push(Arc::new(state));
        }
        Ok(ScriptVersion {
            label,
            number,
            hash: dir_hash(&dir),
            states,
        })
    }

    /// `file@vN`, as logs show it.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The version number (1 at start, +1 per successful reload).
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Hash of the `.lua` files in the script's directory when compiled.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Calls running on this version now. Counted per state, by the
    /// thread that runs them: one counter for the whole version was a
    /// cache line both cores wrote on every call.
    pub fn calls(&self) -> usize {
        self.states
            .iter()
            .map(|s| s.calls.load(Ordering::Relaxed))
            .sum()
    }

    /// The version's calls, as status lines count them (also once the
    /// version is no longer live and its last calls run on).
    pub(crate) fn watch(&self) -> VersionCalls {
        VersionCalls {
            label: self.label.clone(),
            number: self.number,
            states: self.states.iter().map(Arc::downgrade).collect(),
        }
    }

    /// The state for a call or a registration started on this thread
    /// (see `thread_slot`).
    fn state_here(&self) -> Option<&Arc<State>> {
        match self.states.len() {
            0 => None,
            n => self.states.get(thread_slot() % n),
        }
    }

    /// Prepares `on_invite` for a new call as a coroutine on the state of
    /// the calling worker thread (the caller polls the returned run). The
    /// run keeps that state, with the version's code, alive until the
    /// script is done, so a reload never changes the code under a live
    /// call.
    pub fn start(&self, view: CallView, link: CallLink) -> Result<ScriptRun, HandlerError> {
        let Some(state) = self.state_here().cloned() else {
            return Err(HandlerError::Start("no Lua state".into()));
        };
        let call = Arc::new(LuaCall::new(view, link.clone(), self.label.clone()));
        Ok(Box::pin(async move {
            state.calls.fetch_add(1, Ordering::Relaxed);
            let lua = state.runner.lua();
            let result = match state.objects.insert(call) {
                Some(key) => {
                    let result = state.runner.run(&state.on_invite, key.object()).await;
                    // What the call holds (its view, its link) goes now;
                    // an object the script kept is a call object no more.
                    state.objects.remove(lua, key);
                    result
                }
                None => Err(mlua::Error::RuntimeError(
                    "too many calls on one Lua state".into(),
                )),
            };
            let done = result.map_err(|e| {
                // Give back what a memory bomb or a failed call left.
                let _ = state.runner.lua().gc_collect();
                script_error(&e, &state.label)
            });
            if let Err(e) = &done
                && link.is_closed()
            {
                // The call ended before the script did: nobody else will
                // report this failure.
                tracing::error!(
                    message = "Dial plan failed after its call ended.",
                    script = %e.script,
                    line = e.line.map(i64::from).unwrap_or(-1),
                    error = %e.message,
                );
            }
            link.send(Command::Done(done));
            state.calls.fetch_sub(1, Ordering::Relaxed);
        }))
    }
}

impl ScriptVersion {
    /// True when the script defines `on_register(reg)`.
    pub fn has_register_hook(&self) -> bool {
        self.states.iter().any(|s| s.on_register.is_some())
    }

    /// Runs `on_register(reg)` for one REGISTER as a coroutine on the
    /// state of the calling thread (`None`: the script has no hook). The run resolves
    /// to the hook's decision: accept (with `reg.attrs`) unless it called
    /// `reg:reject` or `reg:challenge`; an error names file and line.
    pub fn start_register(&self, view: RegisterView) -> Option<RegisterRun> {
        // Every state ran the same script: the hook is in all or none.
        let state = self.state_here()?.clone();
        let hook = state.on_register.clone()?;
        let attrs = match state.runner.lua().create_table() {
            Ok(t) => t,
            Err(e) => {
                let e = script_error(&e, &state.label);
                return Some(Box::pin(async move { Err(e) }));
            }
        };
        let (reg, decision) = LuaRegister::new(view, attrs.clone(), self.label.clone());
        state.calls.fetch_add(1, Ordering::Relaxed);
        Some(Box::pin(async move {
            let lua = state.runner.lua();
            let result = match lifted(lua, || lua.create_userdata(reg)) {
                Ok(reg) => state.runner.run(&hook, Value::UserData(reg)).await,
                Err(e) => Err(e),
            };
            state.calls.fetch_sub(1, Ordering::Relaxed);
            if let Err(e) = result {
                let _ = state.runner.lua().gc_collect();
                return Err(script_error(&e, &state.label));
            }
            let decided = decision.lock().unwrap_or_else(|p| p.into_inner()).take();
            match decided {
                Some(d) => Ok(d),
                None => read_attrs(&attrs)
                    .map(|attrs| RegisterDecision::Accept { attrs })
                    .map_err(|message| ScriptError {
                        script: state.label.to_string(),
                        line: None,
                        message,
                    }),
            }
        }))
    }
}

fn load_state(
    dir: &Path,
    name: &str,
    source: &str,
    limits: Limits,
    host: &Arc<dyn Host>,
    label: &Arc<str>,
) -> Result<State, LoadError> {
    let lua_err = |e: mlua::Error| LoadError::from_lua(&e, name);
    let waits = Arc::new(Waits::default());
    let objects = Arc::new(CallTable::new(waits.clone()));
    let (lua, env, budget) = crate::sandbox::new_state(dir, limits, |lua, t| {
        crate::host::install(lua, t, host.clone())?;
        crate::waiting::install(lua, t, &objects, host)
    })
    .map_err(lua_err)?;
    let chunk = lua
        .load(source)
        .set_name(format!("@{name}"))
        .set_mode(ChunkMode::Text)
        .set_environment(env.clone());
    budget.run(|| chunk.exec()).map_err(lua_err)?;
    let on_invite = match env.get::<mlua::Value>("on_invite").map_err(lua_err)? {
        mlua::Value::Function(f) => f,
        _ => {
            return Err(LoadError::Script {
                file: name.to_string(),
                line: None,
                message: "the script defines no function `on_invite(call)`".into(),
            });
        }
    };
    let on_register = match env.get::<mlua::Value>("on_register").map_err(lua_err)? {
        mlua::Value::Function(f) => Some(f),
        mlua::Value::Nil => None,
        other => {
            return Err(LoadError::Script {
                file: name.to_string(),
                line: None,
                message: format!(
                    "`on_register` must be a function(reg), not a {}",
                    other.type_name()
                ),
            });
        }
    };
    crate::sandbox::close_globals(&lua, &env).map_err(lua_err)?;
    Ok(State {
        label: label.clone(),
        runner: Runner::new(lua, budget, waits, host.clone()),
        on_invite,
        on_register,
        objects,
        calls: AtomicUsize::new(0),
    })
}

/// A small number per thread (0, 1, 2, … in the order threads first ask).
/// A call runs on the state of its worker thread's number, so each state
/// stays in one core's cache and its memory with one thread's allocator
/// arena, instead of every state bouncing between the workers.
fn thread_slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    SLOT.with(|s| *s)
}

/// Hash of every `.lua` file under `dir` (names and contents, modules in
/// subdirectories too): a reload that finds the same hash changes nothing.
pub(crate) fn dir_hash(dir: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut files = Vec::new();
    collect_lua_files(dir, 0, &mut files);
    files.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in files {
        f.hash(&mut h);
        std::fs::read(&f).unwrap_or_default().hash(&mut h);
    }
    h.finish()
}

/// Deepest module directory looked at (`require "a.b.c.d"`).
const MAX_DEPTH: usize = 8;

fn collect_lua_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let path = e.path();
        let hidden = e.file_name().to_string_lossy().starts_with('.');
        match e.file_type() {
            Ok(t) if t.is_dir() && !hidden && depth < MAX_DEPTH => {
                collect_lua_files(&path, depth + 1, out)
            }
            Ok(t) if t.is_file() && path.extension().is_some_and(|x| x == "lua") => out.push(path),
            _ => {}
        }
    }
}
