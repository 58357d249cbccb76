//! [`ExperienceBalancedBuffer`]: one reservoir per experience.

use std::collections::BTreeMap;

use cl_core::{ClassificationDataset, Result};

use super::ReservoirSamplingBuffer;
use super::balanced::BalancedBuffer;

/// A memory balanced over experiences (Avalanche's `ExperienceBalancedBuffer`): each update
/// adds a group, a [`ReservoirSamplingBuffer`] over that experience's data.
///
/// With `adaptive_size`, `max_size` is split equally among the experiences seen so far (the
/// remainder to the first ones) and older groups shrink as experiences arrive; otherwise each
/// of the `num_experiences` groups gets `max_size / num_experiences` samples, and updating with
/// more experiences than that is an error (Avalanche would exceed `max_size`).
///
/// As in Avalanche, every call to [`update`](super::StoragePolicy::update) starts a new group, even
/// for an experience seen before.
#[derive(Debug, Clone)]
pub struct ExperienceBalancedBuffer {
    /// Groups keyed by update index (0, 1, …).
    groups: BalancedBuffer<u64, Vec<ReservoirSamplingBuffer>>,
}

impl ExperienceBalancedBuffer {
    /// An empty memory of at most `max_size` (≥ 1) samples. `num_experiences` is required
    /// (and at most `max_size`) when `adaptive_size` is false, and must be `None` otherwise.
    pub fn new(
        max_size: usize,
        adaptive_size: bool,
        num_experiences: Option<usize>,
        seed: u64,
    ) -> Result<Self> {
        Ok(Self {
            groups: BalancedBuffer::new(
                max_size,
                adaptive_size,
                num_experiences,
                seed,
                "num_experiences",
                "experiences",
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

    /// Whether `max_size` is split among the experiences seen so far.
    pub fn adaptive_size(&self) -> bool {
        self.groups.adaptive_size()
    }

    /// The groups, one per update, oldest first.
    pub fn buffer_groups(&self) -> &[ReservoirSamplingBuffer] {
        self.groups.buffer_groups()
    }

    /// The memory (the groups concatenated, oldest first); `None` while empty.
    pub fn buffer(&self) -> Option<ClassificationDataset> {
        self.groups.buffer()
    }

    /// Adds a group for the experience whose data is `new_data`, and shrinks the older ones.
    pub fn update_from_dataset(&mut self, new_data: &ClassificationDataset) -> Result<()> {
        let key = self.buffer_groups().len() as u64;
        let all = (0..new_data.len()).collect();
        self.groups.update(new_data, BTreeMap::from([(key, all)]))
    }

    /// Sets `max_size` and splits it again among the groups.
    pub fn resize_to(&mut self, new_size: usize) -> Result<()> {
        self.groups.resize_to(new_size)
    }
}

storage_policy_from_inherent!(ExperienceBalancedBuffer);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{StoragePolicy, group_lengths};
    use cl_core::ClError;
    use crate::storage::test_util::{data, ids, set_experience, strategy};
    use proptest::prelude::*;

    #[test]
    fn config_errors() {
        assert!(ExperienceBalancedBuffer::new(0, true, None, 0).is_err());
        assert!(ExperienceBalancedBuffer::new(10, true, Some(2), 0).is_err());
        assert!(ExperienceBalancedBuffer::new(10, false, None, 0).is_err());
        assert!(ExperienceBalancedBuffer::new(3, false, Some(4), 0).is_err());
        let mut b = ExperienceBalancedBuffer::new(10, false, Some(2), 0).unwrap();
        b.update_from_dataset(&data(0, vec![0; 3])).unwrap();
        b.update_from_dataset(&data(3, vec![0; 3])).unwrap();
        assert!(matches!(
            b.update_from_dataset(&data(6, vec![0; 3])),
            Err(ClError::InvalidConfig { .. })
        ));
        let other = ClassificationDataset::from_f32(vec![0.0; 3], vec![3], vec![0]).unwrap();
        let mut b = ExperienceBalancedBuffer::new(10, true, None, 0).unwrap();
        b.update_from_dataset(&data(0, vec![0; 3])).unwrap();
        assert!(matches!(
            b.update_from_dataset(&other),
            Err(ClError::SampleShapeMismatch { .. })
        ));
        assert_eq!(b.buffer_groups().len(), 1);
    }

    #[test]
    fn adaptive_split_through_the_strategy_state() {
        let mut s = strategy();
        let mut b = ExperienceBalancedBuffer::new(10, true, None, 5).unwrap();
        for e in 0..3 {
            set_experience(&mut s, e, data(100 * e, vec![e as u32; 20]));
            StoragePolicy::update(&mut b, &s.state).unwrap();
        }
        let sizes: Vec<usize> = b.buffer_groups().iter().map(|g| g.len()).collect();
        assert_eq!(sizes, vec![4, 3, 3]);
        let buffer = b.buffer().unwrap();
        assert_eq!(buffer.targets(), vec![0, 0, 0, 0, 1, 1, 1, 2, 2, 2]);
        StoragePolicy::resize(&mut b, &s.state, 5).unwrap();
        let sizes: Vec<usize> = b.buffer_groups().iter().map(|g| g.len()).collect();
        assert_eq!(sizes, vec![2, 2, 1]);
        assert!(ids(&b.buffer().unwrap()).iter().all(|&i| i % 100 < 20));
    }

    proptest! {
        #[test]
        fn balanced_bounded_deterministic(
            max_size in 1usize..60,
            sizes in proptest::collection::vec(0usize..40, 1..8),
            adaptive in any::<bool>(),
            seed in 0u64..1000,
        ) {
            let total = if adaptive { None } else { Some(sizes.len().min(max_size)) };
            let run = || {
                let mut b = ExperienceBalancedBuffer::new(max_size, adaptive, total, seed).unwrap();
                let mut start = 0;
                for (k, &n) in sizes.iter().enumerate() {
                    let r = b.update_from_dataset(&data(start, vec![k as u32; n]));
                    if total.is_some_and(|t| k >= t) {
                        assert!(r.is_err());
                        break;
                    }
                    r.unwrap();
                    start += n;
                    assert!(b.len() <= max_size);
                    let lens = group_lengths(max_size, k + 1, total);
                    let caps_ideal = max_size as f64 / total.unwrap_or(k + 1) as f64;
                    for (i, g) in b.buffer_groups().iter().enumerate() {
                        // Each group holds as much of its experience as its share allows ...
                        assert_eq!(g.len(), sizes[i].min(lens[i]));
                        // ... and the shares are within one sample of the ideal split.
                        assert!((lens[i] as f64 - caps_ideal).abs() < 1.0);
                    }
                }
                b.buffer().map(|d| ids(&d)).unwrap_or_default()
            };
            prop_assert_eq!(run(), run());
        }
    }
}
