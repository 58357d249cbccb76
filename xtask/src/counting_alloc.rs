//! The global allocator of the `xtask` binary: the system allocator, counting the bytes in use
//! and their peak, so that `cargo xtask fuzz` can check that a reader's peak memory stays
//! within its bound for every input.
//!
//! Counting costs two relaxed atomic operations per allocation (nothing measurable next to a
//! tensor operation, so `cargo xtask bench` is unaffected). When fuzzing, a single allocation
//! over [`set_limit`]'s limit is refused after printing the input being run as hex (the process
//! then aborts, as Rust does on any failed allocation), so that a reader that would allocate
//! gigabytes is caught with its input instead of taking the machine's memory.
//!
//! This is the workspace's only `unsafe` code: `GlobalAlloc` is an unsafe trait.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering::Relaxed};

/// The counting allocator (installed with `#[global_allocator]` in `main.rs`).
pub struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);
static INPUT: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static INPUT_LEN: AtomicUsize = AtomicUsize::new(0);
static REPORTING: AtomicBool = AtomicBool::new(false);

/// Starts a new peak measurement at the current use; returns the current use.
pub fn reset_peak() -> usize {
    let now = CURRENT.load(Relaxed);
    PEAK.store(now, Relaxed);
    now
}

/// The highest use since [`reset_peak`].
pub fn peak() -> usize {
    PEAK.load(Relaxed)
}

/// Refuses any single allocation larger than `bytes` (`usize::MAX`: no limit).
pub fn set_limit(bytes: usize) {
    LIMIT.store(bytes, Relaxed);
}

/// The input being run, printed if an allocation is refused; it must stay alive (and
/// unmoved) until the next call.
pub fn set_input(input: &[u8]) {
    INPUT_LEN.store(input.len(), Relaxed);
    INPUT.store(input.as_ptr().cast_mut(), Relaxed);
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
    report_refusal(size);
    false
}

fn added(size: usize) {
    let now = CURRENT.fetch_add(size, Relaxed) + size;
    PEAK.fetch_max(now, Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments; the counters do not
// affect what is returned except that an over-limit request returns null (a failed allocation).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !allowed(layout.size()) {
            return std::ptr::null_mut();
        }
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            added(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !allowed(layout.size()) {
            return std::ptr::null_mut();
        }
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            added(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Relaxed);
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
                CURRENT.fetch_sub(layout.size() - new_size, Relaxed);
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
        let baseline = reset_peak();
        let v = std::hint::black_box(vec![1u8; 10 << 20]);
        let mut w: Vec<u8> = Vec::new();
        w.extend_from_slice(&v[..5 << 20]);
        drop(v);
        let used = peak() - baseline;
        // Other tests run in parallel threads and may add to it.
        assert!(used >= 15 << 20, "{used}");
        drop(std::hint::black_box(w));
    }
}
