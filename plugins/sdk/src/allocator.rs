//! The plugin's memory allocator: a bump allocator sized for one event.
//!
//! Tandem runs every event in a fresh instance and throws the instance
//! away afterwards, so nothing a plugin allocates outlives the event. A
//! general-purpose allocator (Rust's default on wasm32 is dlmalloc) spends
//! most of its work on reusing freed memory, which such a short life never
//! needs. This one hands out memory from a pointer that only moves up,
//! takes pages from the host with `memory.grow` in steps of [`GROW_PAGES`],
//! and takes back only the most recent allocation (so a `String` or `Vec`
//! that grows at the top of the heap grows in place). The instance's
//! memory limit still applies: past it, an allocation fails and the event
//! traps, as with any allocator.
//!
//! With the crate's `event-allocator` feature (on by default) it is the
//! global allocator of every plugin built with this SDK. A plugin that
//! allocates and frees a lot within one event (more than its memory limit
//! in all) turns the feature off and gets Rust's default allocator back:
//! `tandem-plugin = { …, default-features = false }`.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;

/// Wasm pages (64 KiB each) taken from the host at a time.
pub const GROW_PAGES: usize = 1;

const PAGE: usize = 65_536;

/// A bump allocator over the instance's linear memory (see the module
/// docs). Single-threaded: a plugin instance has one thread.
pub struct EventAllocator {
    /// The next free byte (0: not started yet).
    top: Cell<usize>,
    /// The end of the memory the allocator may use.
    end: Cell<usize>,
}

// SAFETY: a wasm32 plugin instance runs on one thread; the cells are
// never touched from two at once.
unsafe impl Sync for EventAllocator {}

impl EventAllocator {
    /// An allocator that starts at the first free byte of memory on its
    /// first allocation.
    pub const fn new() -> EventAllocator {
        EventAllocator {
            top: Cell::new(0),
            end: Cell::new(0),
        }
    }

    /// The address for an allocation of `layout`, with the top moved past
    /// it; `None` when the host gives no more memory.
    fn take(&self, layout: Layout) -> Option<usize> {
        if self.top.get() == 0 {
            // First use: the heap starts where the linker put its base,
            // past the stack and the data, and the rest of the memory the
            // instance starts with is used before any is grown (Tandem
            // resets those first pages by overwriting them, cheaper than
            // handing grown pages back).
            self.top.set(heap_base());
            self.end.set(memory_pages() * PAGE);
        }
        // Twice at most: once more if something else grew the memory
        // (then the new pages do not follow ours).
        for _ in 0..2 {
            let start = align_up(self.top.get(), layout.align())?;
            let end = start.checked_add(layout.size())?;
            if self.reach(end, layout.align()) {
                self.top.set(end);
                return Some(start);
            }
        }
        None
    }

    /// Whether memory reaches `end`, grown if need be (see [`Self::extend`]).
    fn reach(&self, end: usize, align: usize) -> bool {
        end <= self.end.get() || self.extend(end - self.end.get(), align)
    }

    /// Grows the memory by at least `missing` bytes. False when the host
    /// refuses, or when the new pages do not follow ours (someone else
    /// grew the memory): then the top moves to them, for another try.
    fn extend(&self, missing: usize, align: usize) -> bool {
        let pages = missing.saturating_add(align).div_ceil(PAGE).max(GROW_PAGES);
        let Some(old_pages) = grow(pages) else {
            return false;
        };
        let old_end = old_pages * PAGE;
        let ours = old_end == self.end.get();
        if !ours {
            self.top.set(old_end);
        }
        self.end.set(old_end + pages * PAGE);
        ours
    }

    /// Whether `ptr..ptr+size` is the most recent allocation.
    fn is_top(&self, ptr: *mut u8, size: usize) -> bool {
        ptr as usize + size == self.top.get()
    }
}

impl Default for EventAllocator {
    fn default() -> EventAllocator {
        EventAllocator::new()
    }
}

unsafe impl GlobalAlloc for EventAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.take(layout)
            .map_or(core::ptr::null_mut(), |at| at as *mut u8)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Only the most recent allocation comes back.
        if self.is_top(ptr, layout.size()) {
            self.top.set(ptr as usize);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size <= layout.size() {
            if self.is_top(ptr, layout.size()) {
                self.top.set(ptr as usize + new_size);
            }
            return ptr;
        }
        if self.is_top(ptr, layout.size()) {
            // The most recent allocation grows where it is.
            let at = ptr as usize;
            let end = at.saturating_add(new_size);
            if self.reach(end, 1) {
                self.top.set(end);
                return ptr;
            }
        }
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return core::ptr::null_mut();
        };
        // SAFETY: forwarded from the caller's contract.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the old size and do not
            // overlap (the new one lies above the old one).
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size()) };
        }
        new
    }
}

fn align_up(at: usize, align: usize) -> Option<usize> {
    Some(at.checked_add(align - 1)? & !(align - 1))
}

/// The first byte after the stack and the data (the linker's
/// `__heap_base`).
#[cfg(target_arch = "wasm32")]
fn heap_base() -> usize {
    unsafe extern "C" {
        static __heap_base: u8;
    }
    // SAFETY: only the symbol's address is taken, never its contents.
    core::ptr::addr_of!(__heap_base) as usize
}

/// The memory's size in pages.
#[cfg(target_arch = "wasm32")]
fn memory_pages() -> usize {
    core::arch::wasm32::memory_size(0)
}

/// Grows the memory by `pages`: the old size in pages, or `None` when the
/// host refuses (the instance's memory limit).
#[cfg(target_arch = "wasm32")]
fn grow(pages: usize) -> Option<usize> {
    match core::arch::wasm32::memory_grow(0, pages) {
        usize::MAX => None,
        old => Some(old),
    }
}

// Off wasm32 (native unit tests of plugin logic) the allocator is not
// installed; a pretend memory (its size in pages, per thread) keeps the
// module compiling and lets its arithmetic be tested.
#[cfg(not(target_arch = "wasm32"))]
use pretend::{grow, heap_base, memory_pages};

#[cfg(not(target_arch = "wasm32"))]
mod pretend {
    use std::cell::Cell;

    thread_local! {
        static PAGES: Cell<usize> = const { Cell::new(2) };
        static LIMIT: Cell<usize> = const { Cell::new(64) };
    }

    pub(super) fn memory_pages() -> usize {
        PAGES.with(Cell::get)
    }

    /// Half a page below the end of the first memory.
    pub(super) fn heap_base() -> usize {
        3 * super::PAGE / 2
    }

    pub(super) fn grow(n: usize) -> Option<usize> {
        let old = memory_pages();
        if old + n > LIMIT.with(Cell::get) {
            return None;
        }
        PAGES.with(|p| p.set(old + n));
        Some(old)
    }

    /// Starts the pretend memory over: `pages` now, `limit` at most.
    #[cfg(test)]
    pub(super) fn reset(pages: usize, limit: usize) {
        PAGES.with(|p| p.set(pages));
        LIMIT.with(|l| l.set(limit));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use pretend as memory;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn bumps_aligns_and_grows() {
        memory::reset(2, 64);
        let a = EventAllocator::new();
        unsafe {
            let p = a.alloc(layout(3, 1)) as usize;
            assert_eq!(p, memory::heap_base(), "starts at the heap base");
            let q = a.alloc(layout(8, 8)) as usize;
            assert_eq!(q, memory::heap_base() + 8, "aligned");
            assert_eq!(memory::memory_pages(), 2, "fits in the first memory");
            let r = a.alloc(layout(PAGE / 2, 1)) as usize;
            assert_eq!(memory::memory_pages(), 2 + GROW_PAGES, "grown");
            assert_eq!(r, q + 8, "contiguous across the old end");
            // Larger than a step: grows by what it needs.
            let big = a.alloc(layout(10 * PAGE, 16)) as usize;
            assert!(big + 10 * PAGE <= memory::memory_pages() * PAGE);
            assert!(big > q);
        }
    }

    #[test]
    fn the_last_allocation_grows_in_place_and_comes_back() {
        memory::reset(2, 64);
        let a = EventAllocator::new();
        unsafe {
            let p = a.alloc(layout(16, 1));
            let grown = a.realloc(p, layout(16, 1), 64);
            assert_eq!(grown, p, "the top allocation grows in place");
            let q = a.alloc(layout(8, 1));
            assert_eq!(q as usize, p as usize + 64);
            a.dealloc(q, layout(8, 1));
            let r = a.alloc(layout(8, 1));
            assert_eq!(r, q, "a freed top allocation is reused");
            // Not the top: it shrinks where it is and frees nothing.
            assert_eq!(a.realloc(p, layout(64, 1), 32), p);
            a.dealloc(p, layout(32, 1));
            assert_eq!(a.alloc(layout(1, 1)) as usize, r as usize + 8);
        }
    }

    #[test]
    fn fails_at_the_memory_limit() {
        memory::reset(2, 8);
        let a = EventAllocator::new();
        unsafe {
            assert!(!a.alloc(layout(PAGE, 1)).is_null());
            assert!(a.alloc(layout(100 * PAGE, 1)).is_null());
            // What fits still fits.
            assert!(!a.alloc(layout(16, 1)).is_null());
        }
    }
}
