//! A global allocator that records the largest single allocation made on a thread, for the
//! decoder tests that check no allocation is out of proportion to the input (and for the
//! `kafka_peer` fuzz target, which includes this file too).
//!
//! The global allocator serves the whole test binary, so each test file that includes this
//! module chooses it in plain sight, with one line of its own (a crate has at most one):
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: TrackingAllocator = TrackingAllocator;
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Records the largest single allocation made on this thread while tracking is on.
pub struct TrackingAllocator;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the bookkeeping only reads
// and writes thread-local cells and never allocates.
unsafe impl GlobalAlloc for TrackingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn note(size: usize) {
    let _ = TRACKING.try_with(|tracking| {
        if tracking.get() {
            let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
        }
    });
}

/// Runs `work` with tracking on and returns its result with the largest single allocation it
/// made on this thread (0 if none). Counts nothing unless the test crate's `#[global_allocator]`
/// is a [`TrackingAllocator`].
pub fn largest_allocation<T>(work: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|largest| largest.set(0));
    TRACKING.with(|tracking| tracking.set(true));
    let result = work();
    TRACKING.with(|tracking| tracking.set(false));
    (result, LARGEST.with(Cell::get))
}

/// Guards every bound checked with [`largest_allocation`]: without the `#[global_allocator]`
/// line in the test crate's root they would all hold trivially.
#[test]
fn the_test_crate_declares_the_tracking_allocator() {
    let (buffer, largest) = largest_allocation(|| std::hint::black_box(vec![1u8; 4096]));
    assert_eq!(buffer.len(), 4096);
    assert!(
        largest >= 4096,
        "a 4096-byte vector seen as {largest} bytes"
    );
}
