//! [`TrunkPasses`]: how many samples went through the trunks of this crate's models (SimpleMLP,
//! its headed, multi-head, incremental and SCR forms, SimpleCNN), and how many of them through
//! an autodiff graph — the work a strategy does, counted where it happens (its own steps, its
//! plugins' importance passes, memory gradients, teachers), for the "work vs Naive" column of
//! `cargo xtask bench`.
//!
//! Process-wide relaxed atomic counters: one add per trunk forward pass, nothing per sample.
//! Passes made concurrently by other threads (parallel runs in one process) are counted too.

use std::sync::atomic::{AtomicU64, Ordering};

static FORWARD_ROWS: AtomicU64 = AtomicU64::new(0);
static TRACKED_ROWS: AtomicU64 = AtomicU64::new(0);

/// Samples through the trunks so far: all of them, and those whose output is tracked by
/// autodiff (a graph a backward pass may follow).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrunkPasses {
    /// Samples forwarded.
    pub forward: u64,
    /// Samples forwarded through an autodiff graph.
    pub tracked: u64,
}

impl TrunkPasses {
    /// The counters now.
    pub fn now() -> Self {
        Self { forward: FORWARD_ROWS.load(Ordering::Relaxed), tracked: TRACKED_ROWS.load(Ordering::Relaxed) }
    }

    /// The passes since `earlier` (a value of [`now`](Self::now)).
    pub fn since(earlier: Self) -> Self {
        let now = Self::now();
        Self { forward: now.forward.wrapping_sub(earlier.forward), tracked: now.tracked.wrapping_sub(earlier.tracked) }
    }

    /// The sum of two counts.
    pub fn plus(self, other: Self) -> Self {
        Self { forward: self.forward + other.forward, tracked: self.tracked + other.tracked }
    }

    /// The work in forward-pass units, counting a tracked sample as a forward and a backward
    /// pass (a backward costs about two forwards: the gradients of the inputs and of the
    /// weights): `forward + 2·tracked`.
    pub fn work(self) -> u64 {
        self.forward + 2 * self.tracked
    }
}

/// Counts one trunk pass of `rows` samples.
pub(crate) fn record(rows: usize, tracked: bool) {
    FORWARD_ROWS.fetch_add(rows as u64, Ordering::Relaxed);
    if tracked {
        TRACKED_ROWS.fetch_add(rows as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimpleMlpConfig;
    use burn::tensor::{Device, Tensor};

    /// A forward pass of 5 samples counts 5 (other tests may run at the same time, so the
    /// counts are lower bounds), tracked only on an autodiff device; `work` weighs a tracked
    /// sample 3.
    #[test]
    fn counts_samples_and_tracked_samples() {
        let plain = Device::default();
        let model = SimpleMlpConfig::new().with_input_size(4).with_hidden_size(3).init(&plain).unwrap();
        let before = TrunkPasses::now();
        let _ = model.forward_tensor(Tensor::zeros([5, 4], &plain));
        let d = TrunkPasses::since(before);
        assert!(d.forward >= 5, "{d:?}");
        let ad = plain.autodiff();
        use burn::module::Module;
        let model = model.to_device(&ad).train();
        let before = TrunkPasses::now();
        let _ = model.forward_tensor(Tensor::zeros([7, 4], &ad));
        let d = TrunkPasses::since(before);
        assert!(d.forward >= 7 && d.tracked >= 7, "{d:?}");
        assert_eq!(TrunkPasses { forward: 7, tracked: 7 }.work(), 21);
        assert_eq!(TrunkPasses { forward: 1, tracked: 0 }.plus(TrunkPasses { forward: 2, tracked: 2 }).work(), 7);
    }
}
