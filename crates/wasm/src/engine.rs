//! The shared wasmtime engine: compilation settings, the pooling allocator
//! and the epoch ticker that bounds every event's CPU time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Memory of a plugin instance kept mapped between events (per slot).
const KEEP_RESIDENT: usize = 128 * 1024;

/// One epoch tick: the resolution of the CPU limit.
pub(crate) const TICK: Duration = Duration::from_millis(1);

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the wasm engine: {0}")]
pub struct EngineError(String);

/// The engine every plugin is compiled and run with.
#[derive(Clone)]
pub struct WasmEngine {
    engine: Engine,
    fuel: bool,
    _ticker: Arc<Ticker>,
}

impl std::fmt::Debug for WasmEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WasmEngine")
    }
}

/// Stops the epoch thread when the last engine handle goes.
struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl WasmEngine {
    /// An engine with epoch interruption and a pooling allocator sized for
    /// `instances` concurrent instances of at most `max_memory` bytes each.
    /// No fuel: counting it slows every plugin down.
    pub fn new(instances: u32, max_memory: usize) -> Result<WasmEngine, EngineError> {
        WasmEngine::build(instances, max_memory, false)
    }

    /// [`WasmEngine::new`], with fuel counted, for plugins that set a fuel
    /// limit.
    pub fn with_fuel(instances: u32, max_memory: usize) -> Result<WasmEngine, EngineError> {
        WasmEngine::build(instances, max_memory, true)
    }

    fn build(instances: u32, max_memory: usize, fuel: bool) -> Result<WasmEngine, EngineError> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(instances)
            .total_core_instances(instances)
            .total_memories(instances)
            .total_tables(instances)
            .max_memory_size(max_memory)
            // Reset a used slot's first pages with memset instead of
            // madvise: a plugin touches a few pages per event, and
            // faulting them in again costs more than clearing them.
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT / 8);
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .consume_fuel(fuel)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| EngineError(format!("{e:#}")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let ticking = engine.clone();
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("tandem-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    ticking.increment_epoch();
                }
            })
            .map_err(|e| EngineError(e.to_string()))?;
        Ok(WasmEngine {
            engine,
            fuel,
            _ticker: Arc::new(Ticker { stop }),
        })
    }

    /// True when the engine counts fuel.
    pub fn counts_fuel(&self) -> bool {
        self.fuel
    }

    /// The wasmtime engine.
    pub(crate) fn inner(&self) -> &Engine {
        &self.engine
    }
}
