//! The global allocator of the `xtask` binary: the system allocator, counting the bytes in use
//! and their peak, so that `cargo xtask fuzz` can check that a reader's peak memory stays
//! within its bound for every input.
//!
//! Counting is off until [`enable`] (only `fuzz` turns it on): the other commands, which
//! measure time, pay two relaxed loads per allocation. When fuzzing, a single allocation over
//! [`set_limit`]'s limit is refused after printing the input being run as hex, and recorded
//! ([`take_refused`]): an infallible allocation then aborts the process, as Rust does on any
//! failed allocation; a fallible one (`try_reserve`, which `std::fs::read` and `read_to_end`
//! use) becomes an error the reader returns, and the fuzzer counts the refusal as a failure.
//!
//! This is the workspace's only `unsafe` code: `GlobalAlloc` is an unsafe trait.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicPtr, AtomicUsize, Ordering::Relaxed};

/// The counting allocator (installed with `#[global_allocator]` in `main.rs`).
pub struct Counting;

// Signed: memory allocated before `enable` and freed after it takes the count below zero.
static CURRENT: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);
static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);
static INPUT: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static INPUT_LEN: AtomicUsize = AtomicUsize::new(0);
static REPORTING: AtomicBool = AtomicBool::new(false);
static ENABLED: AtomicBool = AtomicBool::new(false);
static REFUSED: AtomicUsize = AtomicUsize::new(0);

/// Starts counting (until the process ends).
pub fn enable() {
    ENABLED.store(true, Relaxed);
}

/// The size of the largest allocation refused since the last call (0 if none), and a reset.
pub fn take_refused() -> usize {
    REPORTING.store(false, Relaxed);
    REFUSED.swap(0, Relaxed)
}

/// Starts a new peak measurement at the current use; returns the current use.
pub fn reset_peak() -> isize {
    let now = CURRENT.load(Relaxed);
    PEAK.store(now, Relaxed);
    now
}

/// The highest use since [`reset_peak`].
pub fn peak() -> isize {
    PEAK.load(Relaxed)
}

/// Refuses any single allocation larger than `bytes` (`usize::MAX`: no limit).
pub fn set_limit(bytes: usize) {
    LIMIT.store(bytes, Relaxed);
}

/// The input being run, printed if an allocation is refused; it must stay alive (and
/// unmoved) until [`clear_input`].
pub fn set_input(input: &[u8]) {
    INPUT_LEN.store(input.len(), Relaxed);
    INPUT.store(input.as_ptr().cast_mut(), Relaxed);
}

/// Forgets the input of [`set_input`].
pub fn clear_input() {
    INPUT.store(std::ptr::null_mut(), Relaxed);
    INPUT_LEN.store(0, Relaxed);
}

/// Prints the refused size and (the first 4 KiB of) the current input as hex, without
/// allocating.
fn report_refusal(size: usize) {
    if REPORTING.swap(true, Relaxed) {
        return;
    }
    let mut err = std::io::stderr();
    let _ = writeln!(err, "\nxtask fuzz: an allocation of {size} bytes was refused (over --max-alloc); input (hex):");
    let (ptr, len) = (INPUT.load(Relaxed), INPUT_LEN.load(Relaxed));
    if !ptr.is_null() {
        // SAFETY: `set_input`'s contract keeps the slice alive while the input runs.
        let input = unsafe { std::slice::from_raw_parts(ptr, len) };
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for chunk in input[..len.min(4096)].chunks(64) {
            let mut line = [0u8; 129];
            for (k, b) in chunk.iter().enumerate() {
                line[2 * k] = HEX[usize::from(b >> 4)];
                line[2 * k + 1] = HEX[usize::from(b & 15)];
            }
            line[2 * chunk.len()] = b'\n';
            let _ = err.write_all(&line[..2 * chunk.len() + 1]);
        }
    }
}

fn allowed(size: usize) -> bool {
    if size <= LIMIT.load(Relaxed) {
        return true;
    }
    REFUSED.fetch_max(size, Relaxed);
    report_refusal(size);
    false
}

fn added(size: usize) {
    if ENABLED.load(Relaxed) {
        let size = size as isize;
        let now = CURRENT.fetch_add(size, Relaxed).wrapping_add(size);
        PEAK.fetch_max(now, Relaxed);
    }
}

fn removed(size: usize) {
    if ENABLED.load(Relaxed) {
        CURRENT.fetch_sub(size as isize, Relaxed);
    }
}

/// A new allocation of `layout` by `allocate`, unless over the limit; counted if it succeeded.
fn counted(layout: Layout, allocate: impl FnOnce() -> *mut u8) -> *mut u8 {
    if !allowed(layout.size()) {
        return std::ptr::null_mut();
    }
    let p = allocate();
    if !p.is_null() {
        added(layout.size());
    }
    p
}

// SAFETY: every method forwards to `System` with the caller's arguments; the counters do not
// affect what is returned except that an over-limit request returns null (a failed allocation).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        counted(layout, || unsafe { System.alloc(layout) })
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        counted(layout, || unsafe { System.alloc_zeroed(layout) })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        removed(layout.size());
        unsafe { System.dealloc(ptr, layout) };
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !allowed(new_size) {
            return std::ptr::null_mut();
        }
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        // Counted as resized in place (glibc moves large blocks with `mremap`, without a copy).
        if !p.is_null() {
            if new_size >= layout.size() {
                added(new_size - layout.size());
            } else {
                removed(layout.size() - new_size);
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_counts_what_a_computation_allocates() {
        enable();
        let baseline = reset_peak();
        let v = std::hint::black_box(vec![1u8; 10 << 20]);
        let mut w: Vec<u8> = Vec::new();
        w.extend_from_slice(&v[..5 << 20]);
        drop(v);
        let used = peak() - baseline;
        // Other tests run in parallel threads and may add to it (or free memory: a margin).
        assert!(used >= 14 << 20, "{used}");
        drop(std::hint::black_box(w));
    }
}
