//! [`ClassBalancedBuffer`]: one reservoir per class.

use std::collections::{BTreeMap, BTreeSet};

use cl_core::Result;
use cl_core::checkpoint::StateDict;
use cl_core::config::Validate;
use cl_core::data::ClassificationDataset;
use serde::{Deserialize, Serialize};

use super::balanced::{BalancedBuffer, BufferSizing, sizing_rules};
use super::{ReservoirSamplingBuffer, max_size_rule, split_indices};

/// The configuration of a [`ClassBalancedBuffer`]: Avalanche's
/// `ClassBalancedBuffer(max_size, adaptive_size=True, total_num_classes=None)`, whose two
/// sizing arguments are one [`BufferSizing`], plus the seed of the classes' reservoirs.
///
/// ```
/// use cl_plugins::storage::{BufferSizing, ClassBalancedBuffer, ClassBalancedConfig};
/// // ClassBalancedBuffer(max_size=200, adaptive_size=False, total_num_classes=10)
/// let config = ClassBalancedConfig::new(200).with_sizing(BufferSizing::Fixed { groups: 10 });
/// assert_eq!(ClassBalancedBuffer::new(config).unwrap().max_size(), 200);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassBalancedConfig {
    /// The most samples the memory holds (required, at least 1).
    pub max_size: usize,
    /// How `max_size` is split among the classes (default: adaptive, as Avalanche; `Fixed {
    /// groups }` is Avalanche's `total_num_classes`).
    #[serde(default)]
    pub sizing: BufferSizing,
    /// Seed of the classes' reservoirs (each class's seed is derived from it and the class id;
    /// default 0).
    #[serde(default)]
    pub seed: u64,
}

impl ClassBalancedConfig {
    /// An adaptive memory of `max_size` samples, seed 0.
    pub fn new(max_size: usize) -> Self {
        Self { max_size, sizing: BufferSizing::Adaptive, seed: 0 }
    }

    /// Sets the most samples the memory holds.
    pub fn with_max_size(mut self, max_size: usize) -> Self {
        self.max_size = max_size;
        self
    }

    /// Sets how `max_size` is split among the classes.
    pub fn with_sizing(mut self, sizing: BufferSizing) -> Self {
        self.sizing = sizing;
        self
    }

    /// Sets the seed of the classes' reservoirs.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

impl Validate for ClassBalancedConfig {
    /// `max_size_positive`, `sizing_groups_positive`, `sizing_groups_at_most_max_size`.
    fn validate(&self) -> Result<()> {
        const C: &str = "ClassBalancedConfig";
        max_size_rule(C, self.max_size)?;
        sizing_rules(C, self.max_size, self.sizing)
    }
}

/// A memory balanced over classes (Avalanche's `ClassBalancedBuffer`): one
/// [`ReservoirSamplingBuffer`] per class, over every sample of that class seen so far.
///
/// Adaptive ([`BufferSizing::Adaptive`]), `max_size` is split equally among the classes seen so
/// far (the remainder to the smallest class ids); fixed ([`BufferSizing::Fixed`]), each class
/// gets `max_size / groups` samples, and seeing more than `groups` distinct classes is an error
/// (Avalanche would exceed `max_size`). Each class's reservoir has its own seed derived from the
/// buffer's seed and the class id.
#[derive(Debug, Clone)]
pub struct ClassBalancedBuffer {
    groups: BalancedBuffer<u32>,
}

impl ClassBalancedBuffer {
    /// An empty memory as `config` says; an error if the config breaks a rule.
    pub fn new(config: ClassBalancedConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            groups: BalancedBuffer::new(
                config.max_size,
                config.sizing,
                config.seed,
                "ClassBalancedBuffer",
                "classes seen",
            ),
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

    /// How `max_size` is split among the classes.
    pub fn sizing(&self) -> BufferSizing {
        self.groups.sizing()
    }

    /// The seed of the classes' reservoirs.
    pub fn seed(&self) -> u64 {
        self.groups.seed()
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

    /// Saves the memory into a checkpoint: `max_size`, sizing and seed, and every group's
    /// reservoir (samples, weights, generator position).
    pub fn save_state(&self, out: &mut StateDict) -> Result<()> {
        self.groups.save_state(out, "ClassBalancedBuffer")
    }

    /// Restores what [`save_state`](Self::save_state) saved, into a memory of the same sizing
    /// and seed (another is [`ClError::CheckpointMismatch`](cl_core::ClError::CheckpointMismatch)).
    pub fn load_state(&mut self, state: &StateDict) -> Result<()> {
        self.groups.load_state(state, "ClassBalancedBuffer")
    }
}

storage_policy_from_inherent!(ClassBalancedBuffer);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_util::{data, experience, ids};
    use crate::storage::{StorageContext, StoragePolicy, group_lengths};
    use cl_core::ClError;
    use cl_core::config::{ConfigFile, assert_rule};
    use proptest::prelude::*;

    fn buffer(max_size: usize, groups: Option<usize>, seed: u64) -> ClassBalancedBuffer {
        let sizing = groups.map_or(BufferSizing::Adaptive, |groups| BufferSizing::Fixed { groups });
        ClassBalancedBuffer::new(ClassBalancedConfig::new(max_size).with_sizing(sizing).with_seed(seed)).unwrap()
    }

    #[test]
    fn config_round_trips() {
        for c in [
            ClassBalancedConfig::new(20).with_seed(9),
            ClassBalancedConfig::new(30).with_sizing(BufferSizing::Fixed { groups: 6 }).with_seed(2),
        ] {
            assert_eq!(ClassBalancedConfig::from_json(&c.to_json()).unwrap(), c);
            assert_eq!(ClassBalancedConfig::from_toml(&c.to_toml().unwrap()).unwrap(), c);
        }
    }

    #[test]
    fn config_rules() {
        let c = ClassBalancedConfig::new;
        assert_rule(c(0).validate(), "max_size_positive");
        assert_rule(c(10).with_sizing(BufferSizing::Fixed { groups: 0 }).validate(), "sizing_groups_positive");
        assert_rule(c(3).with_sizing(BufferSizing::Fixed { groups: 4 }).validate(), "sizing_groups_at_most_max_size");
        assert_rule(ClassBalancedBuffer::new(c(0)), "max_size_positive");
    }

    #[test]
    fn more_classes_than_a_fixed_split_is_an_error() {
        let mut b = buffer(10, Some(2), 0);
        b.update_from_dataset(&data(0, vec![0, 1, 0, 1])).unwrap();
        assert!(matches!(b.update_from_dataset(&data(4, vec![2])), Err(ClError::InvalidUse(_))));
        assert_eq!(b.len(), 4);
    }

    #[test]
    fn adaptive_split_through_the_storage_context() {
        let mut b = buffer(10, None, 1);
        let e0 = experience(0, data(0, [0, 1].repeat(10)));
        StoragePolicy::update(&mut b, &StorageContext::new(&e0)).unwrap();
        assert_eq!(b.buffer().unwrap().targets(), [vec![0; 5], vec![1; 5]].concat());
        let e1 = experience(1, data(100, [2, 3, 4].repeat(10)));
        StoragePolicy::update(&mut b, &StorageContext::new(&e1)).unwrap();
        let sizes: Vec<usize> = b.buffer_groups().values().map(|g| g.len()).collect();
        assert_eq!(sizes, vec![2, 2, 2, 2, 2]);
        // Every kept sample is of its group's class.
        for (c, g) in b.buffer_groups() {
            assert!(g.buffer().unwrap().targets().iter().all(|t| t == c));
        }
        StoragePolicy::resize(&mut b, &StorageContext::new(&e1), 7).unwrap();
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
                let mut b = buffer(max_size, total, seed);
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
