//! Storage policies: the replay memory of rehearsal strategies (Avalanche's
//! `training/storage_policy.py`).
//!
//! A [`StoragePolicy`] keeps at most `max_size` samples of the experiences it has been updated
//! with, as a [`ClassificationDataset`] view over the experiences' storage (no sample is
//! copied). Policies, each built from a serialisable config (or all of them from one
//! [`StoragePolicyConfig`]):
//!
//! - [`ReservoirSamplingBuffer`] ([`ReservoirConfig`]): a uniform random sample of everything
//!   seen (exact reservoir).
//! - [`ExperienceBalancedBuffer`] ([`ExperienceBalancedConfig`]): one reservoir per experience.
//! - [`ClassBalancedBuffer`] ([`ClassBalancedConfig`]): one reservoir per class.
//! - [`ParametricBuffer`] ([`ParametricBufferConfig`]): groups by task, class or experience
//!   ([`GroupBy`]), and a [`SelectionStrategy`] ([`SelectionConfig`]: [`RandomSelection`],
//!   [`HerdingSelection`], [`ClosestToCenterSelection`]) decides which samples each group keeps.
//!
//! Policies are not generic over the model: an update gets a [`StorageContext`] (the current
//! experience and, for feature-based selection, an object-safe [`InferenceModel`] view of the
//! evaluation copy of the model). Every policy is seeded and deterministic, never holds more than
//! `max_size` samples, and is [`Any`], so a `&dyn StoragePolicy` can be downcast
//! ([`downcast_ref`](trait.StoragePolicy.html#method.downcast_ref)). Every policy saves its
//! memory into checkpoints ([`StoragePolicy::save_state`]: samples, sizes, random generators at
//! their exact position), nested in the state of the plugin that owns it.

/// Implements [`StoragePolicy`] for `$ty` by its inherent `max_size`, `len`, `buffer`,
/// `update_from_dataset` (with the current experience's dataset), `resize_to`, `save_state` and
/// `load_state`.
macro_rules! storage_policy_from_inherent {
    ($ty:ty) => {
        impl $crate::storage::StoragePolicy for $ty {
            fn max_size(&self) -> usize {
                <$ty>::max_size(self)
            }

            fn len(&self) -> usize {
                <$ty>::len(self)
            }

            fn buffer(&self) -> Option<cl_core::data::ClassificationDataset> {
                <$ty>::buffer(self)
            }

            fn update(&mut self, ctx: &$crate::storage::StorageContext<'_>) -> cl_core::Result<()> {
                self.update_from_dataset(&ctx.experience().dataset)
            }

            fn resize(&mut self, _ctx: &$crate::storage::StorageContext<'_>, new_size: usize) -> cl_core::Result<()> {
                self.resize_to(new_size)
            }

            fn save_state(&self, out: &mut cl_core::checkpoint::StateDict) -> cl_core::Result<()> {
                <$ty>::save_state(self, out)
            }

            fn load_state(&mut self, state: &cl_core::checkpoint::StateDict) -> cl_core::Result<()> {
                <$ty>::load_state(self, state)
            }
        }
    };
}

mod balanced;
mod class_balanced;
mod context;
mod experience_balanced;
mod parametric;
mod reservoir;
mod selection;

pub use balanced::BufferSizing;
pub use class_balanced::{ClassBalancedBuffer, ClassBalancedConfig};
pub use context::{InferenceModel, StorageContext};
pub use experience_balanced::{ExperienceBalancedBuffer, ExperienceBalancedConfig};
pub use parametric::{GroupBy, ParametricBuffer, ParametricBufferConfig};
pub use reservoir::{ReservoirConfig, ReservoirSamplingBuffer};
pub use selection::{
    ClosestToCenterSelection, FeatureSource, HerdingSelection, RandomSelection, SelectionConfig, SelectionStrategy,
};

use std::any::Any;

use cl_core::checkpoint::StateDict;
use cl_core::config::Validate;
use cl_core::data::ClassificationDataset;
use cl_core::{ClError, Result};
use serde::{Deserialize, Serialize};

/// A replay memory of at most [`max_size`](Self::max_size) samples (Avalanche's
/// `ExemplarsBuffer`).
///
/// [`update`](Self::update) adds the current experience of a [`StorageContext`], as Avalanche's
/// `update(strategy)` / `post_adapt`; [`buffer`](Self::buffer) gives the memory as a dataset
/// view, ready for a replay data loader. Inside a plugin the context comes from the state:
/// `StorageContext::from_state(state, &state.model().valid())`; outside one it is made from an
/// experience alone ([`StorageContext::new`]).
///
/// Unlike Avalanche's `ExemplarsBuffer`, a policy does not see the strategy: it is not generic
/// over the model, so `Box<dyn StoragePolicy>` is one type for every model, and it is [`Any`],
/// so a boxed policy can be downcast to its type
/// ([`downcast_ref`](trait.StoragePolicy.html#method.downcast_ref)).
///
/// ```
/// use cl_core::Experience;
/// use cl_core::data::ClassificationDataset;
/// use cl_plugins::storage::{ReservoirConfig, ReservoirSamplingBuffer, StorageContext, StoragePolicy};
/// # fn main() -> cl_core::Result<()> {
/// let mut memory = ReservoirSamplingBuffer::new(ReservoirConfig::new(5))?;
/// for e in 0..3 {
///     let data = ClassificationDataset::from_f32(vec![e as f32; 20], vec![2], vec![e; 10])?;
///     let experience = Experience::new(e as usize, data, "train", 3);
///     memory.update(&StorageContext::new(&experience))?; // in a plugin: `after_training_exp`
/// }
/// assert_eq!(memory.len(), 5);
/// let replay: ClassificationDataset = memory.buffer().unwrap(); // a view over the experiences
/// assert_eq!(replay.len(), 5);
/// let boxed: Box<dyn StoragePolicy> = Box::new(memory);
/// assert!(boxed.downcast_ref::<ReservoirSamplingBuffer>().is_some());
/// # Ok(()) }
/// ```
#[doc(alias = "ExemplarsBuffer")]
pub trait StoragePolicy: Any + Send {
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

    /// Adds the context's current experience — Avalanche's `update(strategy)`.
    fn update(&mut self, ctx: &StorageContext<'_>) -> Result<()>;

    /// Changes `max_size`, dropping samples (as the policy chooses) if the memory is larger
    /// (Avalanche's `resize(strategy, new_size)`).
    fn resize(&mut self, ctx: &StorageContext<'_>, new_size: usize) -> Result<()>;

    /// Saves everything of the memory that influences later updates into a checkpoint: its
    /// samples (as datasets: values, labels, transforms), sizes, and random generators at their
    /// exact position. The plugin that owns the policy nests this dictionary in its own state.
    ///
    /// The default refuses with [`ClError::NotCheckpointable`]: a policy of your own must
    /// implement both hooks to be checkpointed (the four policies of this module do).
    fn save_state(&self, _out: &mut StateDict) -> Result<()> {
        Err(crate::persist::not_checkpointable(
            format!("storage policy `{}`", cl_core::config::short_type_name::<Self>()),
            "StoragePolicy::save_state and StoragePolicy::load_state",
        ))
    }

    /// Restores what [`save_state`](Self::save_state) saved, into a policy built with the same
    /// configuration (a policy of another type or configuration is
    /// [`ClError::CheckpointMismatch`]).
    fn load_state(&mut self, _state: &StateDict) -> Result<()> {
        Err(crate::persist::not_checkpointable(
            format!("storage policy `{}`", cl_core::config::short_type_name::<Self>()),
            "StoragePolicy::save_state and StoragePolicy::load_state",
        ))
    }
}

impl dyn StoragePolicy {
    /// The policy as its concrete type, or `None` if it has another type.
    pub fn downcast_ref<P: StoragePolicy>(&self) -> Option<&P> {
        (self as &dyn Any).downcast_ref::<P>()
    }

    /// The policy as its concrete type, mutably, or `None` if it has another type.
    pub fn downcast_mut<P: StoragePolicy>(&mut self) -> Option<&mut P> {
        (self as &mut dyn Any).downcast_mut::<P>()
    }
}

impl std::fmt::Debug for dyn StoragePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoragePolicy").field("max_size", &self.max_size()).field("len", &self.len()).finish()
    }
}

/// The configuration of any of the four storage policies, to choose a memory in a file (e.g.
/// [`ReplayConfig::storage`](crate::ReplayConfig::storage)): `{"type": "class_balanced",
/// "max_size": 200}`. Avalanche passes a policy object (`storage_policy=...`); a config is the
/// serialisable equivalent. A policy of your own goes to
/// [`ReplayPlugin::with_storage`](crate::ReplayPlugin::with_storage) instead.
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_plugins::storage::{ClassBalancedConfig, StoragePolicyConfig};
/// let config = StoragePolicyConfig::from_toml("type = \"class_balanced\"\nmax_size = 200").unwrap();
/// assert_eq!(config, StoragePolicyConfig::ClassBalanced(ClassBalancedConfig::new(200)));
/// let memory = config.build().unwrap();
/// assert_eq!(memory.max_size(), 200);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StoragePolicyConfig {
    /// A [`ReservoirSamplingBuffer`].
    Reservoir(ReservoirConfig),
    /// An [`ExperienceBalancedBuffer`].
    ExperienceBalanced(ExperienceBalancedConfig),
    /// A [`ClassBalancedBuffer`].
    ClassBalanced(ClassBalancedConfig),
    /// A [`ParametricBuffer`].
    Parametric(ParametricBufferConfig),
}

impl StoragePolicyConfig {
    /// The memory size of the policy.
    pub fn max_size(&self) -> usize {
        match self {
            Self::Reservoir(c) => c.max_size,
            Self::ExperienceBalanced(c) => c.max_size,
            Self::ClassBalanced(c) => c.max_size,
            Self::Parametric(c) => c.max_size,
        }
    }

    /// Validates the config and builds an empty policy.
    pub fn build(&self) -> Result<Box<dyn StoragePolicy>> {
        Ok(match self {
            Self::Reservoir(c) => Box::new(ReservoirSamplingBuffer::new(c.clone())?),
            Self::ExperienceBalanced(c) => Box::new(ExperienceBalancedBuffer::new(c.clone())?),
            Self::ClassBalanced(c) => Box::new(ClassBalancedBuffer::new(c.clone())?),
            Self::Parametric(c) => Box::new(ParametricBuffer::new(c.clone())?),
        })
    }
}

impl Validate for StoragePolicyConfig {
    /// The rules of the chosen policy's config.
    fn validate(&self) -> Result<()> {
        match self {
            Self::Reservoir(c) => c.validate(),
            Self::ExperienceBalanced(c) => c.validate(),
            Self::ClassBalanced(c) => c.validate(),
            Self::Parametric(c) => c.validate(),
        }
    }
}

impl From<ReservoirConfig> for StoragePolicyConfig {
    fn from(c: ReservoirConfig) -> Self {
        Self::Reservoir(c)
    }
}

impl From<ExperienceBalancedConfig> for StoragePolicyConfig {
    fn from(c: ExperienceBalancedConfig) -> Self {
        Self::ExperienceBalanced(c)
    }
}

impl From<ClassBalancedConfig> for StoragePolicyConfig {
    fn from(c: ClassBalancedConfig) -> Self {
        Self::ClassBalanced(c)
    }
}

impl From<ParametricBufferConfig> for StoragePolicyConfig {
    fn from(c: ParametricBufferConfig) -> Self {
        Self::Parametric(c)
    }
}

/// The `max_size_positive` rule shared by the policies' configs.
pub(crate) fn max_size_rule(config: &'static str, max_size: usize) -> Result<()> {
    cl_core::config::rule(config, "max_size_positive", max_size > 0, || {
        "max_size must be at least 1 (a memory of 0 samples stores nothing)".into()
    })
}

/// Records which policy wrote a memory's state (`policy`), so that loading it into a policy of
/// another type is [`ClError::CheckpointMismatch`].
pub(crate) fn put_policy_name(out: &mut StateDict, name: &str) -> Result<()> {
    out.put("policy", name)
}

/// Checks the `policy` entry written by [`put_policy_name`].
pub(crate) fn check_policy_name(state: &StateDict, name: &str) -> Result<()> {
    state.check_config("policy", &name)
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

/// Checks that `data` has the sample shape of the data seen before (the first update sets it),
/// so that the groups can always be concatenated.
pub(crate) fn check_shape(seen: &mut Option<Vec<usize>>, data: &ClassificationDataset) -> Result<()> {
    match seen {
        Some(shape) if shape.as_slice() != data.sample_shape() => {
            Err(ClError::SampleShapeMismatch { left: shape.clone(), right: data.sample_shape().to_vec() })
        }
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
    // One pass: folding `concat` would copy the growing part list at every group (O(groups²),
    // e.g. an experience-balanced memory of thousands of online sub-experiences).
    ClassificationDataset::concat_all(parts.into_iter().filter(|d| !d.is_empty()))
        .expect("the groups of a buffer share one sample shape (checked at update)")
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
    use cl_core::Experience;
    use cl_core::data::ClassificationDataset;

    /// `targets.len()` samples of shape [4] whose first value is `first_id + i` (a global id).
    pub fn data(first_id: usize, targets: Vec<u32>) -> ClassificationDataset {
        let values = (0..targets.len()).flat_map(|i| [(first_id + i) as f32, 0.0, 0.0, 0.0]).collect();
        ClassificationDataset::from_f32(values, vec![4], targets).unwrap()
    }

    /// The ids (first values) of a dataset's samples.
    pub fn ids(ds: &ClassificationDataset) -> Vec<usize> {
        (0..ds.len()).map(|i| ds.sample(i).unwrap().x[0] as usize).collect()
    }

    /// Experience `index` (of a 10-class stream) over `data`.
    pub fn experience(index: usize, data: ClassificationDataset) -> Experience {
        Experience::new(index, data, "train", 10)
    }

    /// A model whose features are its inputs and whose logits are twice its inputs; it checks
    /// that batches are on its device and counts them.
    pub struct InputModel {
        device: Device,
        rows: Option<usize>,
        features: bool,
        batches: Cell<usize>,
    }

    impl InputModel {
        pub fn new(device: &Device) -> Self {
            Self { device: device.clone(), rows: None, features: true, batches: Cell::new(0) }
        }

        /// Returns only `rows` rows per batch (a broken model).
        pub fn with_rows(mut self, rows: usize) -> Self {
            self.rows = Some(rows);
            self
        }

        /// Exposes no `Model::features`.
        pub fn without_features(mut self) -> Self {
            self.features = false;
            self
        }

        pub fn batches(&self) -> usize {
            self.batches.get()
        }

        fn rows(&self, x: Tensor<2>) -> Tensor<2> {
            assert_eq!(x.device(), self.device, "batches on the context's device");
            self.batches.set(self.batches.get() + 1);
            match self.rows {
                Some(r) => x.narrow(0, 0, r),
                None => x,
            }
        }
    }

    impl InferenceModel for InputModel {
        fn infer_logits(&self, batch: &MiniBatch) -> Tensor<2> {
            self.rows(batch.x.clone()) * 2.0
        }

        fn infer_features(&self, batch: &MiniBatch) -> Option<Tensor<2>> {
            self.features.then(|| self.rows(batch.x.clone()))
        }

        fn model_name(&self) -> &'static str {
            "InputModel"
        }
    }

    use super::InferenceModel;
    use burn::tensor::{Device, Tensor};
    use cl_core::data::MiniBatch;
    use std::cell::Cell;
}

#[cfg(test)]
mod tests {
    use super::*;
    use cl_core::config::{ConfigFile, assert_rule};

    #[test]
    fn group_lengths_follow_avalanche() {
        assert_eq!(group_lengths(10, 3, None), vec![4, 3, 3]);
        assert_eq!(group_lengths(10, 3, Some(4)), vec![2, 2, 2]);
        assert_eq!(group_lengths(2, 3, None), vec![1, 1, 0]);
        assert!(group_lengths(5, 0, None).is_empty());
    }

    fn all_policies() -> Vec<StoragePolicyConfig> {
        vec![
            ReservoirConfig::new(7).with_seed(3).into(),
            ExperienceBalancedConfig::new(8).with_sizing(BufferSizing::Fixed { groups: 4 }).with_seed(5).into(),
            ClassBalancedConfig::new(9).with_sizing(BufferSizing::Fixed { groups: 3 }).with_seed(1).into(),
            ParametricBufferConfig::new(10)
                .with_groupby(GroupBy::Class)
                .with_selection(SelectionConfig::Herding { features: FeatureSource::Logits, normalize: true })
                .into(),
            ParametricBufferConfig::new(11).with_selection(SelectionConfig::Random { seed: 4 }).into(),
        ]
    }

    #[test]
    fn storage_policy_configs_round_trip() {
        for c in all_policies() {
            assert_eq!(StoragePolicyConfig::from_json(&c.to_json()).unwrap(), c);
            assert_eq!(StoragePolicyConfig::from_toml(&c.to_toml().unwrap()).unwrap(), c);
            let built = c.build().unwrap();
            assert_eq!(built.max_size(), c.max_size());
            assert!(built.is_empty());
        }
        // The tag names the policy; unknown fields are rejected.
        let c = StoragePolicyConfig::from_json(r#"{"type": "reservoir", "max_size": 3}"#).unwrap();
        assert_eq!(c, StoragePolicyConfig::Reservoir(ReservoirConfig::new(3)));
        assert!(StoragePolicyConfig::from_json(r#"{"type": "reservoir", "max_size": 3, "size": 1}"#).is_err());
    }

    #[test]
    fn storage_policy_config_delegates_its_rules() {
        assert_rule(StoragePolicyConfig::from(ReservoirConfig::new(0)).validate(), "max_size_positive");
        assert_rule(StoragePolicyConfig::from(ReservoirConfig::new(0)).build(), "max_size_positive");
        assert_rule(
            StoragePolicyConfig::from(ClassBalancedConfig::new(2).with_sizing(BufferSizing::Fixed { groups: 3 }))
                .validate(),
            "sizing_groups_at_most_max_size",
        );
    }

    /// Saves a policy's state through the binary encoding.
    fn saved(policy: &dyn StoragePolicy) -> StateDict {
        let mut d = StateDict::new("storage policy");
        policy.save_state(&mut d).unwrap();
        crate::persist::test_util::encoded(&d)
    }

    /// Every policy, filled by three experiences (a resize in between), saved, encoded and
    /// loaded into a fresh policy of the same config: the same memory sample by sample, the
    /// same state when saved again, and the same memory after a further update (the random
    /// generators continue where they were).
    #[test]
    fn every_policy_resumes_exactly_from_its_checkpoint() {
        use crate::persist::test_util::assert_same_dataset;
        use test_util::{InputModel, data, experience, ids};
        let device = burn::tensor::Device::default();
        let model = InputModel::new(&device);
        let exps: Vec<_> = (0..4)
            .map(|e| {
                let targets = (0..9).map(|i| ((i + e) % 3) as u32).collect();
                experience(e, data(100 * e, targets).with_task_label(e as u32 % 2))
            })
            .collect();
        let policies = all_policies();
        for (p, config) in policies.iter().enumerate() {
            let mut a = config.build().unwrap();
            for (e, exp) in exps[..3].iter().enumerate() {
                let ctx = StorageContext::new(exp).with_model(&model, &device);
                a.update(&ctx).unwrap();
                if e == 1 {
                    a.resize(&ctx, a.max_size() - 1).unwrap();
                }
            }
            let state = saved(a.as_ref());
            let mut b = config.build().unwrap();
            b.load_state(&state).unwrap();
            assert_eq!((b.max_size(), b.len()), (a.max_size(), a.len()), "{config:?}");
            assert_same_dataset(&a.buffer().unwrap(), &b.buffer().unwrap());
            assert_eq!(saved(b.as_ref()), state, "{config:?}: saved again");
            let ctx = StorageContext::new(&exps[3]).with_model(&model, &device);
            a.update(&ctx).unwrap();
            b.update(&ctx).unwrap();
            assert_eq!(ids(&a.buffer().unwrap()), ids(&b.buffer().unwrap()), "{config:?}: after a further update");
            assert_same_dataset(&a.buffer().unwrap(), &b.buffer().unwrap());
            // A policy of another type refuses the state.
            let other = &policies[(p + 2) % policies.len()];
            let err = other.build().unwrap().load_state(&state).unwrap_err();
            assert!(matches!(err, ClError::CheckpointMismatch { .. }), "{config:?} into {other:?}: {err:?}");
        }
        // The configuration a memory cannot infer from its samples is checked.
        let class = |sizing, seed| -> StoragePolicyConfig {
            ClassBalancedConfig::new(9).with_sizing(sizing).with_seed(seed).into()
        };
        let state = saved(class(BufferSizing::Adaptive, 1).build().unwrap().as_ref());
        for other in [class(BufferSizing::Adaptive, 2), class(BufferSizing::Fixed { groups: 3 }, 1)] {
            let err = other.build().unwrap().load_state(&state).unwrap_err();
            assert!(matches!(err, ClError::CheckpointMismatch { .. }), "{err:?}");
        }
        let parametric =
            |groupby| -> StoragePolicyConfig { ParametricBufferConfig::new(9).with_groupby(groupby).into() };
        let state = saved(parametric(GroupBy::Class).build().unwrap().as_ref());
        let err = parametric(GroupBy::Task).build().unwrap().load_state(&state).unwrap_err();
        assert!(matches!(err, ClError::CheckpointMismatch { .. }), "{err:?}");
    }

    /// A policy (or selection strategy) of one's own without the checkpoint hooks refuses to
    /// save, naming itself, rather than resume to other numbers.
    #[test]
    fn custom_policies_without_hooks_are_not_checkpointable() {
        struct Forgetful;
        impl StoragePolicy for Forgetful {
            fn max_size(&self) -> usize {
                1
            }
            fn len(&self) -> usize {
                0
            }
            fn buffer(&self) -> Option<ClassificationDataset> {
                None
            }
            fn update(&mut self, _ctx: &StorageContext<'_>) -> Result<()> {
                Ok(())
            }
            fn resize(&mut self, _ctx: &StorageContext<'_>, _new_size: usize) -> Result<()> {
                Ok(())
            }
        }
        let mut d = StateDict::new("storage policy");
        let err = Forgetful.save_state(&mut d).unwrap_err();
        assert!(
            matches!(&err, ClError::NotCheckpointable { component, .. } if component.contains("Forgetful")),
            "{err}"
        );
        assert!(matches!(Forgetful.load_state(&d), Err(ClError::NotCheckpointable { .. })));

        struct Fixed;
        impl SelectionStrategy for Fixed {
            fn make_sorted_indices(
                &mut self,
                _ctx: &StorageContext<'_>,
                data: &ClassificationDataset,
            ) -> Result<Vec<usize>> {
                Ok((0..data.len()).collect())
            }
        }
        let buffer = ParametricBuffer::with_selection(ParametricBufferConfig::new(3), Fixed).unwrap();
        let err = StoragePolicy::save_state(&buffer, &mut d).unwrap_err();
        assert!(matches!(&err, ClError::NotCheckpointable { component, .. } if component.contains("Fixed")), "{err}");
    }

    #[test]
    fn boxed_policies_downcast() {
        let mut b: Box<dyn StoragePolicy> = ReservoirConfig::new(3).into_policy_config().build().unwrap();
        assert!(b.downcast_ref::<ReservoirSamplingBuffer>().is_some());
        assert!(b.downcast_ref::<ClassBalancedBuffer>().is_none());
        assert_eq!(b.downcast_mut::<ReservoirSamplingBuffer>().unwrap().max_size(), 3);
    }

    trait IntoPolicyConfig {
        fn into_policy_config(self) -> StoragePolicyConfig;
    }
    impl<T: Into<StoragePolicyConfig>> IntoPolicyConfig for T {
        fn into_policy_config(self) -> StoragePolicyConfig {
            self.into()
        }
    }
}
