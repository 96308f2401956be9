//! The resources one plugin instance may take: its linear memory up to the
//! plugin's limit, and a few instances, tables and memories. Growing past
//! the memory limit traps with [`MemoryLimit`], so a memory bomb is named
//! as such in the log instead of surfacing as the guest's own abort.

use wasmtime::ResourceLimiter;

/// Table elements one instance may have (function tables of compiled
/// languages stay far below).
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// A plugin instance tried to grow its memory past the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("memory limit of {} MiB exceeded", .0 / (1024 * 1024))]
pub(crate) struct MemoryLimit(pub(crate) usize);

/// The limiter of one store (one event).
pub(crate) struct InstanceLimits {
    memory: usize,
}

impl InstanceLimits {
    /// At most `memory` bytes of linear memory.
    pub(crate) fn new(memory: usize) -> InstanceLimits {
        InstanceLimits { memory }
    }
}

impl ResourceLimiter for InstanceLimits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory {
            return Err(wasmtime::Error::new(MemoryLimit(self.memory)));
        }
        Ok(maximum.is_none_or(|max| desired <= max))
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS && maximum.is_none_or(|max| desired <= max))
    }

    // Room for components of other toolchains (several core instances,
    // a few memories); each memory is still held to the plugin's limit.
    fn instances(&self) -> usize {
        16
    }

    fn tables(&self) -> usize {
        32
    }

    fn memories(&self) -> usize {
        4
    }
}
