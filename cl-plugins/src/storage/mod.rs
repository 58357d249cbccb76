//! Storage policies: the replay memory of rehearsal strategies (Avalanche's
//! `training/storage_policy.py`).
//!
//! A [`StoragePolicy`] keeps at most `max_size` samples of the experiences it has been updated
//! with, as a [`ClassificationDataset`] view over the experiences' storage (no sample is
//! copied). Policies:
//!
//! - [`ReservoirSamplingBuffer`]: a uniform random sample of everything seen (exact reservoir).
//! - [`ExperienceBalancedBuffer`]: one reservoir per experience.
//! - [`ClassBalancedBuffer`]: one reservoir per class.
//! - [`ParametricBuffer`]: groups by task, class or experience, and a [`SelectionStrategy`]
//!   ([`RandomSelection`], [`HerdingSelection`], [`ClosestToCenterSelection`]) decides which
//!   samples each group keeps.
//!
//! Every policy is seeded and deterministic, and never holds more than `max_size` samples.

/// Implements [`StoragePolicy`] for `$ty` by its inherent `max_size`, `len`, `buffer`,
/// `update_from_dataset` (with the current experience's dataset) and `resize_to`.
macro_rules! storage_policy_from_inherent {
    ($ty:ty) => {
        impl<M: cl_core::Model> $crate::storage::StoragePolicy<M> for $ty {
            fn max_size(&self) -> usize {
                <$ty>::max_size(self)
            }

            fn len(&self) -> usize {
                <$ty>::len(self)
            }

            fn buffer(&self) -> Option<cl_core::ClassificationDataset> {
                <$ty>::buffer(self)
            }

            fn update(&mut self, state: &cl_core::StrategyState<M>) -> cl_core::Result<()> {
                let data = state.current_experience()?.dataset.clone();
                self.update_from_dataset(&data)
            }

            fn resize(&mut self, _state: &cl_core::StrategyState<M>, new_size: usize) -> cl_core::Result<()> {
                self.resize_to(new_size)
            }
        }
    };
}

mod balanced;
mod class_balanced;
mod experience_balanced;
mod parametric;
mod reservoir;
mod selection;

pub use class_balanced::ClassBalancedBuffer;
pub use experience_balanced::ExperienceBalancedBuffer;
pub use parametric::{GroupBy, ParametricBuffer};
pub use reservoir::ReservoirSamplingBuffer;
pub use selection::{
    ClosestToCenterSelection, FeatureExtractor, HerdingSelection, RandomSelection, SelectionStrategy,
};

use cl_core::{ClError, ClassificationDataset, Model, Result, StrategyState};

/// A replay memory of at most [`max_size`](Self::max_size) samples (Avalanche's
/// `ExemplarsBuffer`).
///
/// [`update`](Self::update) adds the current experience (`state.experience`'s dataset), as
/// Avalanche's `update(strategy)` / `post_adapt`; [`buffer`](Self::buffer) gives the memory as a
/// dataset view, ready for a replay data loader.
///
/// ```
/// use burn::tensor::Device;
/// use cl_core::{ClassificationDataset, Experience, OptimizerSpec, Strategy};
/// use cl_plugins::storage::{ReservoirSamplingBuffer, StoragePolicy};
/// # fn main() -> cl_core::Result<()> {
/// let device = Device::default();
/// let model = cl_models::SimpleMlpConfig::new().with_input_size(2).with_num_classes(3).init(&device)?;
/// let mut strategy = Strategy::builder(model, OptimizerSpec::sgd(0.1, 0.0, 0.0)?, device).build()?;
/// let mut memory = ReservoirSamplingBuffer::new(5, 0)?;
/// for e in 0..3 {
///     let data = ClassificationDataset::from_f32(vec![e as f32; 20], vec![2], vec![e; 10])?;
///     strategy.state.experience = Some(Experience::new(e as usize, data, "train", 3));
///     memory.update(&strategy.state)?; // in a plugin: `after_training_exp`
/// }
/// assert_eq!(memory.len(), 5);
/// let replay: ClassificationDataset = memory.buffer().unwrap(); // a view over the experiences
/// assert_eq!(replay.len(), 5);
/// # Ok(()) }
/// ```
pub trait StoragePolicy<M: Model>: Send {
    /// The most samples the memory holds.
    fn max_size(&self) -> usize;

    /// The samples the memory holds now.
    fn len(&self) -> usize;

    /// Whether the memory holds no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The memory as a dataset (an index view over the experiences' storage; cheap clone);
    /// `None` while empty.
    fn buffer(&self) -> Option<ClassificationDataset>;

    /// Adds the current experience (`state.experience`'s dataset) — Avalanche's
    /// `update(strategy)`. An error if no experience is set.
    fn update(&mut self, state: &StrategyState<M>) -> Result<()>;

    /// Changes `max_size`, dropping samples (as the policy chooses) if the memory is larger.
    fn resize(&mut self, state: &StrategyState<M>, new_size: usize) -> Result<()>;
}

/// Rejects `max_size == 0` at construction.
pub(crate) fn check_max_size(max_size: usize) -> Result<()> {
    if max_size == 0 {
        return Err(ClError::config("max_size", "must be at least 1"));
    }
    Ok(())
}

/// Checks the fixed number of groups against `adaptive_size` (Avalanche's
/// `BalancedExemplarsBuffer` assertions), and that a fixed split gives every group a sample.
pub(crate) fn check_group_config(
    max_size: usize,
    adaptive_size: bool,
    total_groups: Option<usize>,
    field: &'static str,
) -> Result<()> {
    check_max_size(max_size)?;
    match (adaptive_size, total_groups) {
        (true, Some(_)) => Err(ClError::config(
            field,
            "is only used with a fixed split (adaptive_size = false); give None",
        )),
        (false, None) | (false, Some(0)) => Err(ClError::config(
            field,
            "a fixed split (adaptive_size = false) needs the number of groups (at least 1)",
        )),
        (false, Some(n)) if n > max_size => Err(ClError::config(
            field,
            format!("{n} groups for max_size {max_size}: every group would get 0 samples"),
        )),
        _ => Ok(()),
    }
}

/// Group capacities (Avalanche's `get_group_lengths`): adaptive (`total_groups == None`):
/// `max_size` split equally among `num_groups`, the remainder to the first ones; fixed:
/// `max_size / total_groups` each.
pub(crate) fn group_lengths(max_size: usize, num_groups: usize, total_groups: Option<usize>) -> Vec<usize> {
    if num_groups == 0 {
        return Vec::new();
    }
    match total_groups {
        None => {
            let base = max_size / num_groups;
            let rem = max_size - base * num_groups;
            (0..num_groups).map(|i| base + usize::from(i < rem)).collect()
        }
        Some(total) => vec![max_size / total; num_groups],
    }
}

/// A seed for group `key` of a buffer seeded with `seed` (SplitMix64 finaliser), independent
/// of the order groups appear in.
pub(crate) fn derive_seed(seed: u64, key: u64) -> u64 {
    let mut z = seed ^ 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(key.wrapping_add(1));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Checks that `data` has the sample shape of the data seen before (the first update sets it),
/// so that the groups can always be concatenated.
pub(crate) fn check_shape(seen: &mut Option<Vec<usize>>, data: &ClassificationDataset) -> Result<()> {
    match seen {
        Some(shape) if shape.as_slice() != data.sample_shape() => Err(ClError::SampleShapeMismatch {
            left: shape.clone(),
            right: data.sample_shape().to_vec(),
        }),
        Some(_) => Ok(()),
        None => {
            *seen = Some(data.sample_shape().to_vec());
            Ok(())
        }
    }
}

/// The concatenation of the non-empty `parts`, in order; `None` if all are empty.
pub(crate) fn concat_all<'a>(
    parts: impl IntoIterator<Item = &'a ClassificationDataset>,
) -> Option<ClassificationDataset> {
    parts.into_iter().filter(|d| !d.is_empty()).fold(None, |acc, d| {
        Some(match acc {
            None => d.clone(),
            Some(a) => a
                .concat(d)
                .expect("the groups of a buffer share one sample shape (checked at update)"),
        })
    })
}

/// Indices of `data`'s samples per key, keys in increasing order.
pub(crate) fn split_indices(keys: &[u32]) -> std::collections::BTreeMap<u32, Vec<usize>> {
    let mut out: std::collections::BTreeMap<u32, Vec<usize>> = std::collections::BTreeMap::new();
    for (i, &k) in keys.iter().enumerate() {
        out.entry(k).or_default().push(i);
    }
    out
}

#[cfg(test)]
pub(crate) mod test_util {
    use burn::tensor::Device;
    use cl_core::{ClassificationDataset, Experience, OptimizerSpec, Strategy};
    use cl_models::{SimpleMlp, SimpleMlpConfig};

    /// A strategy over a small MLP (4 inputs, 10 classes), to get a `StrategyState`.
    pub fn strategy() -> Strategy<SimpleMlp> {
        let device = Device::default();
        let model = SimpleMlpConfig::new()
            .with_input_size(4)
            .with_hidden_size(8)
            .with_num_classes(10)
            .init(&device)
            .unwrap();
        Strategy::builder(model, OptimizerSpec::sgd(0.1, 0.0, 0.0).unwrap(), device)
            .build()
            .unwrap()
    }

    /// `targets.len()` samples of shape [4] whose first value is `first_id + i` (a global id).
    pub fn data(first_id: usize, targets: Vec<u32>) -> ClassificationDataset {
        let values = (0..targets.len())
            .flat_map(|i| [(first_id + i) as f32, 0.0, 0.0, 0.0])
            .collect();
        ClassificationDataset::from_f32(values, vec![4], targets).unwrap()
    }

    /// The ids (first values) of a dataset's samples.
    pub fn ids(ds: &ClassificationDataset) -> Vec<usize> {
        (0..ds.len())
            .map(|i| ds.sample(i).unwrap().x[0] as usize)
            .collect()
    }

    /// Sets the strategy's current experience.
    pub fn set_experience(s: &mut Strategy<SimpleMlp>, index: usize, data: ClassificationDataset) {
        s.state.experience = Some(Experience::new(index, data, "train", 10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_lengths_follow_avalanche() {
        assert_eq!(group_lengths(10, 3, None), vec![4, 3, 3]);
        assert_eq!(group_lengths(10, 3, Some(4)), vec![2, 2, 2]);
        assert_eq!(group_lengths(2, 3, None), vec![1, 1, 0]);
        assert!(group_lengths(5, 0, None).is_empty());
    }

    #[test]
    fn group_config_errors() {
        assert!(check_group_config(10, true, None, "n").is_ok());
        assert!(check_group_config(10, false, Some(3), "n").is_ok());
        for (m, a, t) in [
            (0, true, None),
            (10, true, Some(2)),
            (10, false, None),
            (10, false, Some(0)),
            (2, false, Some(3)),
        ] {
            assert!(
                matches!(
                    check_group_config(m, a, t, "n"),
                    Err(ClError::InvalidConfig { .. })
                ),
                "{m} {a} {t:?}"
            );
        }
    }
}
