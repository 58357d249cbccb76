//! [`ExperienceBalancedBuffer`]: one reservoir per experience.

use std::collections::BTreeMap;

use cl_core::Result;
use cl_core::checkpoint::StateDict;
use cl_core::config::Validate;
use cl_core::data::ClassificationDataset;
use serde::{Deserialize, Serialize};

use super::balanced::{BalancedBuffer, BufferSizing, sizing_rules};
use super::{ReservoirSamplingBuffer, max_size_rule};

/// The configuration of an [`ExperienceBalancedBuffer`]: Avalanche's
/// `ExperienceBalancedBuffer(max_size, adaptive_size=True, num_experiences=None)`, whose two
/// sizing arguments are one [`BufferSizing`], plus the seed of the groups' reservoirs.
///
/// ```
/// use cl_plugins::storage::{BufferSizing, ExperienceBalancedBuffer, ExperienceBalancedConfig};
/// // ExperienceBalancedBuffer(max_size=100, adaptive_size=False, num_experiences=5)
/// let config = ExperienceBalancedConfig::new(100).with_sizing(BufferSizing::Fixed { groups: 5 });
/// let memory = ExperienceBalancedBuffer::new(config).unwrap();
/// assert_eq!(memory.sizing(), BufferSizing::Fixed { groups: 5 });
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperienceBalancedConfig {
    /// The most samples the memory holds (required, at least 1).
    pub max_size: usize,
    /// How `max_size` is split among the experiences (default: adaptive, as Avalanche).
    #[serde(default)]
    pub sizing: BufferSizing,
    /// Seed of the groups' reservoirs (each group's seed is derived from it and the group's
    /// index; default 0).
    #[serde(default)]
    pub seed: u64,
}

impl ExperienceBalancedConfig {
    /// An adaptive memory of `max_size` samples, seed 0.
    pub fn new(max_size: usize) -> Self {
        Self { max_size, sizing: BufferSizing::Adaptive, seed: 0 }
    }

    /// Sets the most samples the memory holds.
    pub fn with_max_size(mut self, max_size: usize) -> Self {
        self.max_size = max_size;
        self
    }

    /// Sets how `max_size` is split among the experiences.
    pub fn with_sizing(mut self, sizing: BufferSizing) -> Self {
        self.sizing = sizing;
        self
    }

    /// Sets the seed of the groups' reservoirs.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

impl Validate for ExperienceBalancedConfig {
    /// `max_size_positive`, `sizing_groups_positive`, `sizing_groups_at_most_max_size`.
    fn validate(&self) -> Result<()> {
        const C: &str = "ExperienceBalancedConfig";
        max_size_rule(C, self.max_size)?;
        sizing_rules(C, self.max_size, self.sizing)
    }
}

/// A memory balanced over experiences (Avalanche's `ExperienceBalancedBuffer`): each update
/// adds a group, a [`ReservoirSamplingBuffer`] over that experience's data.
///
/// Adaptive ([`BufferSizing::Adaptive`]), `max_size` is split equally among the experiences seen
/// so far (the remainder to the first ones) and older groups shrink as experiences arrive;
/// fixed ([`BufferSizing::Fixed`]), each of the `groups` groups gets `max_size / groups`
/// samples, and updating with more experiences than that is an error (Avalanche would exceed
/// `max_size`).
///
/// As in Avalanche, every call to [`update`](super::StoragePolicy::update) starts a new group, even
/// for an experience seen before.
#[derive(Debug, Clone)]
pub struct ExperienceBalancedBuffer {
    /// Groups keyed by update index (0, 1, …).
    groups: BalancedBuffer<u64, Vec<ReservoirSamplingBuffer>>,
}

impl ExperienceBalancedBuffer {
    /// An empty memory as `config` says; an error if the config breaks a rule.
    pub fn new(config: ExperienceBalancedConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            groups: BalancedBuffer::new(
                config.max_size,
                config.sizing,
                config.seed,
                "ExperienceBalancedBuffer",
                "experiences",
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

    /// How `max_size` is split among the experiences.
    pub fn sizing(&self) -> BufferSizing {
        self.groups.sizing()
    }

    /// The seed of the groups' reservoirs.
    pub fn seed(&self) -> u64 {
        self.groups.seed()
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

    /// Saves the memory into a checkpoint: `max_size`, sizing and seed, and every group's
    /// reservoir (samples, weights, generator position).
    pub fn save_state(&self, out: &mut StateDict) -> Result<()> {
        self.groups.save_state(out, "ExperienceBalancedBuffer")
    }

    /// Restores what [`save_state`](Self::save_state) saved, into a memory of the same sizing
    /// and seed (another is [`ClError::CheckpointMismatch`](cl_core::ClError::CheckpointMismatch)).
    pub fn load_state(&mut self, state: &StateDict) -> Result<()> {
        self.groups.load_state(state, "ExperienceBalancedBuffer")
    }
}

storage_policy_from_inherent!(ExperienceBalancedBuffer);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_util::{data, experience, ids};
    use crate::storage::{StorageContext, StoragePolicy, group_lengths};
    use cl_core::ClError;
    use cl_core::config::{ConfigFile, assert_rule};
    use proptest::prelude::*;

    fn buffer(max_size: usize, groups: Option<usize>, seed: u64) -> ExperienceBalancedBuffer {
        let sizing = groups.map_or(BufferSizing::Adaptive, |groups| BufferSizing::Fixed { groups });
        ExperienceBalancedBuffer::new(ExperienceBalancedConfig::new(max_size).with_sizing(sizing).with_seed(seed))
            .unwrap()
    }

    #[test]
    fn config_round_trips() {
        for c in [
            ExperienceBalancedConfig::new(20).with_seed(9),
            ExperienceBalancedConfig::new(30).with_sizing(BufferSizing::Fixed { groups: 6 }).with_seed(2),
        ] {
            assert_eq!(ExperienceBalancedConfig::from_json(&c.to_json()).unwrap(), c);
            assert_eq!(ExperienceBalancedConfig::from_toml(&c.to_toml().unwrap()).unwrap(), c);
        }
        let c = ExperienceBalancedConfig::from_toml("max_size = 8\n[sizing.fixed]\ngroups = 2").unwrap();
        assert_eq!(c, ExperienceBalancedConfig::new(8).with_sizing(BufferSizing::Fixed { groups: 2 }));
        let c = ExperienceBalancedConfig::from_json(r#"{"max_size": 8, "sizing": "adaptive"}"#).unwrap();
        assert_eq!(c, ExperienceBalancedConfig::new(8));
    }

    #[test]
    fn config_rules() {
        let c = ExperienceBalancedConfig::new;
        assert_rule(c(0).validate(), "max_size_positive");
        assert_rule(c(10).with_sizing(BufferSizing::Fixed { groups: 0 }).validate(), "sizing_groups_positive");
        assert_rule(c(3).with_sizing(BufferSizing::Fixed { groups: 4 }).validate(), "sizing_groups_at_most_max_size");
        assert_rule(ExperienceBalancedBuffer::new(c(0)), "max_size_positive");
    }

    #[test]
    fn runtime_errors_leave_the_memory_unchanged() {
        let mut b = buffer(10, Some(2), 0);
        b.update_from_dataset(&data(0, vec![0; 3])).unwrap();
        b.update_from_dataset(&data(3, vec![0; 3])).unwrap();
        let err = b.update_from_dataset(&data(6, vec![0; 3])).unwrap_err();
        assert!(matches!(&err, ClError::InvalidUse(m) if m.contains("Adaptive")), "{err}");
        assert_eq!(b.len(), 6);
        let other = ClassificationDataset::from_f32(vec![0.0; 3], vec![3], vec![0]).unwrap();
        let mut b = buffer(10, None, 0);
        b.update_from_dataset(&data(0, vec![0; 3])).unwrap();
        assert!(matches!(b.update_from_dataset(&other), Err(ClError::SampleShapeMismatch { .. })));
        assert_eq!(b.buffer_groups().len(), 1);
    }

    #[test]
    fn adaptive_split_through_the_storage_context() {
        let mut b = buffer(10, None, 5);
        let exps: Vec<_> = (0..3).map(|e| experience(e, data(100 * e, vec![e as u32; 20]))).collect();
        for exp in &exps {
            StoragePolicy::update(&mut b, &StorageContext::new(exp)).unwrap();
        }
        let sizes: Vec<usize> = b.buffer_groups().iter().map(|g| g.len()).collect();
        assert_eq!(sizes, vec![4, 3, 3]);
        let buffer = b.buffer().unwrap();
        assert_eq!(buffer.targets(), vec![0, 0, 0, 0, 1, 1, 1, 2, 2, 2]);
        StoragePolicy::resize(&mut b, &StorageContext::new(&exps[2]), 5).unwrap();
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
                let mut b = buffer(max_size, total, seed);
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
