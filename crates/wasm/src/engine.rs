//! The shared wasmtime engine: compilation settings, the pooling allocator
//! and the epoch ticker that bounds every event's CPU time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Memory of a plugin instance kept mapped between events (per slot). A
/// Rust plugin's stack ends at 1 MiB with its data and heap after it, so
/// this covers what a routing plugin touches.
const KEEP_RESIDENT: usize = 2 * 1024 * 1024;

/// One epoch tick: the resolution of the CPU limit.
pub(crate) const TICK: Duration = Duration::from_millis(1);

/// How often the ticker looks for running plugin code when there is none.
/// A plugin is stopped at most this much later than its CPU limit says.
pub(crate) const IDLE_CHECK: Duration = Duration::from_millis(10);

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the wasm engine: {0}")]
pub struct EngineError(String);

/// The engine every plugin is compiled and run with.
#[derive(Clone)]
pub struct WasmEngine {
    engine: Engine,
    fuel: bool,
    ticker: Arc<Ticker>,
}

impl std::fmt::Debug for WasmEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WasmEngine")
    }
}

/// The epoch thread's controls. It ticks every [`TICK`] only while plugin
/// code runs: a ticker at 1 kHz all the time woke a core a thousand times
/// a second, which at 1,000 calls/s was a context switch per call
/// (BENCHMARKS.md, "Wasm plugins"). Idle, it looks every [`IDLE_CHECK`].
struct Ticker {
    stop: Arc<AtomicBool>,
    /// Plugin events running now.
    running: Arc<AtomicUsize>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Counts a running plugin event while it lives.
pub(crate) struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
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
            // Reset the pages a plugin touched with memset (found with the
            // PAGEMAP_SCAN ioctl on Linux 6.7+) instead of madvise: an
            // event touches a few pages, and giving them back to the
            // kernel meant page faults on the next event and TLB
            // shoot-downs on the other cores (BENCHMARKS.md, "Wasm").
            .pagemap_scan(Enabled::Auto)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT / 16);
        let mut config = Config::new();
        config
            // Bounds checks in the code instead of guard pages: a plugin
            // (Rust's allocator) grows its memory on every event, and with
            // guard pages each new instance shrank the slot back with
            // mprotect, which stops every core for a TLB shoot-down
            // (BENCHMARKS.md, "Wasm plugins"). Plugin code is a small part
            // of an event; the checks cost less than the shoot-downs.
            .signals_based_traps(false)
            .memory_guard_size(0)
            // With the checks in the code, a slot needs no 4 GiB of
            // address space: the plugin's own limit is enough.
            .memory_reservation(max_memory as u64)
            .memory_reservation_for_growth(0)
            .epoch_interruption(true)
            .consume_fuel(fuel)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| EngineError(format!("{e:#}")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let running = Arc::new(AtomicUsize::new(0));
        let ticking = engine.clone();
        let (flag, busy) = (stop.clone(), running.clone());
        std::thread::Builder::new()
            .name("tandem-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    if busy.load(Ordering::Relaxed) == 0 {
                        std::thread::sleep(IDLE_CHECK);
                        continue;
                    }
                    std::thread::sleep(TICK);
                    ticking.increment_epoch();
                }
            })
            .map_err(|e| EngineError(e.to_string()))?;
        Ok(WasmEngine {
            engine,
            fuel,
            ticker: Arc::new(Ticker { stop, running }),
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

    /// Marks plugin code as running until the guard drops, so the epoch
    /// ticks (and a runaway plugin is stopped).
    pub(crate) fn running(&self) -> Running {
        self.ticker.running.fetch_add(1, Ordering::Relaxed);
        Running(self.ticker.running.clone())
    }
}
