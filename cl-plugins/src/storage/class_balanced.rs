//! [`ClassBalancedBuffer`]: one reservoir per class.

use std::collections::{BTreeMap, BTreeSet};

use cl_core::{ClassificationDataset, Result};

use super::balanced::BalancedBuffer;
use super::{ReservoirSamplingBuffer, split_indices};

/// A memory balanced over classes (Avalanche's `ClassBalancedBuffer`): one
/// [`ReservoirSamplingBuffer`] per class, over every sample of that class seen so far.
///
/// With `adaptive_size`, `max_size` is split equally among the classes seen so far (the
/// remainder to the smallest class ids); otherwise each class gets
/// `max_size / total_num_classes` samples, and seeing more than `total_num_classes` distinct
/// classes is an error (Avalanche would exceed `max_size`). Each class's reservoir has its own
/// seed derived from the buffer's seed and the class id.
#[derive(Debug, Clone)]
pub struct ClassBalancedBuffer {
    groups: BalancedBuffer<u32>,
}

impl ClassBalancedBuffer {
    /// An empty memory of at most `max_size` (≥ 1) samples. `total_num_classes` is required
    /// (and at most `max_size`) when `adaptive_size` is false, and must be `None` otherwise.
    pub fn new(
        max_size: usize,
        adaptive_size: bool,
        total_num_classes: Option<usize>,
        seed: u64,
    ) -> Result<Self> {
        Ok(Self {
            groups: BalancedBuffer::new(
                max_size,
                adaptive_size,
                total_num_classes,
                seed,
                "total_num_classes",
                "classes seen",
            )?,
        })
    }

    /// The most samples the memory holds.
    pub fn max_size(&self) -> usize {
        self.groups.max_size()
    }

    /// The samples the memory holds now.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether the memory holds no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `max_size` is split among the classes seen so far.
    pub fn adaptive_size(&self) -> bool {
        self.groups.adaptive_size()
    }

    /// The groups, by class.
    pub fn buffer_groups(&self) -> &BTreeMap<u32, ReservoirSamplingBuffer> {
        self.groups.buffer_groups()
    }

    /// The classes seen so far.
    pub fn seen_classes(&self) -> BTreeSet<u32> {
        self.buffer_groups().keys().copied().collect()
    }

    /// The memory (the groups concatenated by increasing class); `None` while empty.
    pub fn buffer(&self) -> Option<ClassificationDataset> {
        self.groups.buffer()
    }

    /// Adds `new_data`'s samples to their classes' reservoirs and splits `max_size` again.
    pub fn update_from_dataset(&mut self, new_data: &ClassificationDataset) -> Result<()> {
        if new_data.is_empty() {
            return Ok(());
        }
        self.groups.update(new_data, split_indices(&new_data.targets()))
    }

    /// Sets `max_size` and splits it again among the classes.
    pub fn resize_to(&mut self, new_size: usize) -> Result<()> {
        self.groups.resize_to(new_size)
    }
}

storage_policy_from_inherent!(ClassBalancedBuffer);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{StoragePolicy, group_lengths};
    use cl_core::ClError;
    use crate::storage::test_util::{data, ids, set_experience, strategy};
    use proptest::prelude::*;

    #[test]
    fn config_errors() {
        assert!(ClassBalancedBuffer::new(0, true, None, 0).is_err());
        assert!(ClassBalancedBuffer::new(10, true, Some(2), 0).is_err());
        assert!(ClassBalancedBuffer::new(10, false, None, 0).is_err());
        let mut b = ClassBalancedBuffer::new(10, false, Some(2), 0).unwrap();
        b.update_from_dataset(&data(0, vec![0, 1, 0, 1])).unwrap();
        assert!(matches!(
            b.update_from_dataset(&data(4, vec![2])),
            Err(ClError::InvalidConfig { .. })
        ));
        assert_eq!(b.len(), 4);
    }

    #[test]
    fn adaptive_split_through_the_strategy_state() {
        let mut s = strategy();
        let mut b = ClassBalancedBuffer::new(10, true, None, 1).unwrap();
        set_experience(&mut s, 0, data(0, [0, 1].repeat(10)));
        StoragePolicy::update(&mut b, &s.state).unwrap();
        assert_eq!(b.buffer().unwrap().targets(), [vec![0; 5], vec![1; 5]].concat());
        set_experience(&mut s, 1, data(100, [2, 3, 4].repeat(10)));
        StoragePolicy::update(&mut b, &s.state).unwrap();
        let sizes: Vec<usize> = b.buffer_groups().values().map(|g| g.len()).collect();
        assert_eq!(sizes, vec![2, 2, 2, 2, 2]);
        // Every kept sample is of its group's class.
        for (c, g) in b.buffer_groups() {
            assert!(g.buffer().unwrap().targets().iter().all(|t| t == c));
        }
        StoragePolicy::resize(&mut b, &s.state, 7).unwrap();
        let sizes: Vec<usize> = b.buffer_groups().values().map(|g| g.len()).collect();
        assert_eq!(sizes, vec![2, 2, 1, 1, 1]);
    }

    proptest! {
        #[test]
        fn balanced_bounded_deterministic(
            max_size in 1usize..60,
            exps in proptest::collection::vec(proptest::collection::vec(0u32..8, 0..40), 1..8),
            adaptive in any::<bool>(),
            seed in 0u64..1000,
        ) {
            let total = if adaptive { None } else { Some(8.min(max_size)) };
            let run = || {
                let mut b = ClassBalancedBuffer::new(max_size, adaptive, total, seed).unwrap();
                let mut start = 0;
                let mut per_class: BTreeMap<u32, usize> = BTreeMap::new();
                for targets in &exps {
                    let n = targets.len();
                    let mut classes: BTreeSet<u32> = per_class.keys().copied().collect();
                    classes.extend(targets.iter().copied());
                    let r = b.update_from_dataset(&data(start, targets.clone()));
                    if total.is_some_and(|t| classes.len() > t) {
                        assert!(r.is_err());
                        break;
                    }
                    r.unwrap();
                    for &t in targets {
                        *per_class.entry(t).or_default() += 1;
                    }
                    start += n;
                    assert!(b.len() <= max_size);
                    let lens = group_lengths(max_size, per_class.len(), total);
                    let ideal = max_size as f64 / total.unwrap_or(per_class.len().max(1)) as f64;
                    for (((c, g), (&c2, &seen)), &l) in b.buffer_groups().iter().zip(&per_class).zip(&lens) {
                        assert_eq!(*c, c2);
                        assert_eq!(g.len(), seen.min(l));
                        assert!((l as f64 - ideal).abs() < 1.0);
                    }
                }
                b.buffer().map(|d| (ids(&d), d.targets())).unwrap_or_default()
            };
            prop_assert_eq!(run(), run());
        }
    }
}
