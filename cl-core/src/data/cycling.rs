//! [`CyclingSampler`]: endless shuffled mini-batches of indices, Avalanche's
//! `cycle(DataLoader(buffer, batch_size, shuffle=True, drop_last=True))`.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::error::{ClError, Result};

/// Index batches of a fixed size drawn without replacement from `0..len`, reshuffled whenever
/// fewer than a batch remain (the rest of that pass is dropped, as `drop_last=True`), for ever:
/// the memory loader of Avalanche's `DER`, `ER_ACE` and `ER_AML` (`cycle` over a shuffled
/// `DataLoader`). Seeded: the same seed gives the same batches.
///
/// ```
/// use cl_core::data::CyclingSampler;
/// let mut s = CyclingSampler::new(5, 2, 7)?;
/// let a = s.next_batch().to_vec();
/// let b = s.next_batch().to_vec();
/// assert!(a.iter().chain(&b).all(|&i| i < 5));
/// assert!(a.iter().all(|i| !b.contains(i)), "no repeat within a pass");
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[derive(Debug, Clone)]
pub struct CyclingSampler {
    order: Vec<usize>,
    batch_size: usize,
    pos: usize,
    rng: ChaCha8Rng,
    /// Whether the last, smaller batch of a pass is yielded (`drop_last=False`).
    keep_last: bool,
}

impl CyclingSampler {
    /// Batches of `batch_size` indices of `0..len`; an error unless `1 <= batch_size <= len`
    /// (Avalanche builds no memory loader then).
    pub fn new(len: usize, batch_size: usize, seed: u64) -> Result<Self> {
        if batch_size == 0 || batch_size > len {
            return Err(ClError::InvalidUse(format!(
                "a cycling sampler of batches of {batch_size} over {len} samples: the batch size must be at \
                 least 1 and at most the number of samples"
            )));
        }
        Ok(Self::shuffled(len, batch_size, seed, false))
    }

    /// Like [`new`](Self::new) but each pass ends with its last, smaller batch (Avalanche's
    /// `cycle(DataLoader(buffer, batch_size, shuffle=True))`, `drop_last=False`, as MIR's memory
    /// loader); a batch size larger than `len` gives the whole shuffled memory each time. An
    /// error if `len` or `batch_size` is 0.
    pub fn keeping_last(len: usize, batch_size: usize, seed: u64) -> Result<Self> {
        if batch_size == 0 || len == 0 {
            return Err(ClError::InvalidUse(format!(
                "a cycling sampler of batches of {batch_size} over {len} samples: both must be at least 1"
            )));
        }
        Ok(Self::shuffled(len, batch_size, seed, true))
    }

    fn shuffled(len: usize, batch_size: usize, seed: u64, keep_last: bool) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut order: Vec<usize> = (0..len).collect();
        order.shuffle(&mut rng);
        Self { order, batch_size, pos: 0, rng, keep_last }
    }

    /// The next batch of indices (a new shuffled pass starts when the current one has fewer
    /// than a batch left).
    pub fn next_batch(&mut self) -> &[usize] {
        let len = self.order.len();
        let exhausted = if self.keep_last { self.pos >= len } else { self.pos + self.batch_size > len };
        if exhausted {
            self.order.shuffle(&mut self.rng);
            self.pos = 0;
        }
        let start = self.pos;
        self.pos = (self.pos + self.batch_size).min(len);
        &self.order[start..self.pos]
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The number of indices sampled from.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether there is nothing to sample from (never: `new` refuses it).
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_cover_every_index_once_and_drop_the_rest() {
        let mut s = CyclingSampler::new(7, 3, 1).unwrap();
        for _ in 0..4 {
            // A pass: two batches of 3 distinct indices; the 7th index of the pass is dropped.
            let mut pass: Vec<usize> = s.next_batch().to_vec();
            pass.extend_from_slice(s.next_batch());
            let mut sorted = pass.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), 6, "{pass:?}");
            assert!(pass.iter().all(|&i| i < 7));
        }
        let first: Vec<Vec<usize>> = {
            let mut a = CyclingSampler::new(7, 3, 1).unwrap();
            (0..5).map(|_| a.next_batch().to_vec()).collect()
        };
        let mut b = CyclingSampler::new(7, 3, 1).unwrap();
        assert_eq!((0..5).map(|_| b.next_batch().to_vec()).collect::<Vec<_>>(), first, "seeded");
        let mut c = CyclingSampler::new(7, 3, 2).unwrap();
        assert_ne!((0..5).map(|_| c.next_batch().to_vec()).collect::<Vec<_>>(), first);
    }

    #[test]
    fn keeping_last_yields_the_partial_batch() {
        let mut s = CyclingSampler::keeping_last(7, 3, 4).unwrap();
        let sizes: Vec<usize> = (0..6).map(|_| s.next_batch().len()).collect();
        assert_eq!(sizes, vec![3, 3, 1, 3, 3, 1]);
        let mut big = CyclingSampler::keeping_last(4, 10, 0).unwrap();
        let mut all = big.next_batch().to_vec();
        all.sort_unstable();
        assert_eq!(all, vec![0, 1, 2, 3]);
        assert!(CyclingSampler::keeping_last(0, 3, 0).is_err());
    }

    #[test]
    fn sizes_out_of_range_are_errors() {
        assert!(CyclingSampler::new(3, 0, 0).is_err());
        assert!(CyclingSampler::new(3, 4, 0).is_err());
        assert_eq!(CyclingSampler::new(3, 3, 0).unwrap().next_batch().len(), 3);
    }
}
