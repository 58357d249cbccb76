//! [`ParametricBuffer`]: groups of samples chosen by a [`SelectionStrategy`].

use std::collections::{BTreeMap, BTreeSet};

use cl_core::checkpoint::StateDict;
use cl_core::config::Validate;
use cl_core::data::ClassificationDataset;
use cl_core::{ClError, Result};
use serde::{Deserialize, Serialize};

use super::{
    SelectionConfig, SelectionStrategy, StorageContext, StoragePolicy, check_policy_name, check_shape, concat_all,
    group_lengths, max_size_rule, put_policy_name, split_indices,
};
use crate::persist::{opt_dataset, put_opt_dataset};

/// How a [`ParametricBuffer`] groups its samples (Avalanche's `groupby`: `None`, `"task"`,
/// `"class"`, `"experience"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// One group (Avalanche's `groupby=None`, the default).
    #[default]
    None,
    /// One group per task label.
    Task,
    /// One group per class.
    Class,
    /// One group per experience (the experience's `current_experience`; Avalanche keys by the
    /// training-experience counter).
    Experience,
}

/// The configuration of a [`ParametricBuffer`]: Avalanche's
/// `ParametricBuffer(max_size, groupby=None, selection_strategy=None)`, with the selection
/// strategy as a serialisable [`SelectionConfig`] (default: random, as Avalanche).
///
/// ```
/// use cl_plugins::storage::{FeatureSource, GroupBy, ParametricBuffer, ParametricBufferConfig, SelectionConfig};
/// // ParametricBuffer(max_size=200, groupby="class",
/// //                  selection_strategy=HerdingSelectionStrategy(model, "features"))
/// let config = ParametricBufferConfig::new(200)
///     .with_groupby(GroupBy::Class)
///     .with_selection(SelectionConfig::herding(FeatureSource::Features));
/// let memory = ParametricBuffer::new(config).unwrap();
/// assert_eq!(memory.groupby(), GroupBy::Class);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParametricBufferConfig {
    /// The most samples the memory holds (required, at least 1).
    pub max_size: usize,
    /// How samples are grouped (default: one group).
    #[serde(default)]
    pub groupby: GroupBy,
    /// Which samples each group keeps (default: random, seed 0).
    #[serde(default)]
    pub selection: SelectionConfig,
}

impl ParametricBufferConfig {
    /// One group of `max_size` samples chosen at random (seed 0).
    pub fn new(max_size: usize) -> Self {
        Self { max_size, groupby: GroupBy::None, selection: SelectionConfig::default() }
    }

    /// Sets the most samples the memory holds.
    pub fn with_max_size(mut self, max_size: usize) -> Self {
        self.max_size = max_size;
        self
    }

    /// Sets how samples are grouped.
    pub fn with_groupby(mut self, groupby: GroupBy) -> Self {
        self.groupby = groupby;
        self
    }

    /// Sets the selection strategy.
    pub fn with_selection(mut self, selection: SelectionConfig) -> Self {
        self.selection = selection;
        self
    }
}

impl Validate for ParametricBufferConfig {
    /// `max_size_positive` (the selection configs have no rule).
    fn validate(&self) -> Result<()> {
        max_size_rule("ParametricBufferConfig", self.max_size)
    }
}

/// One group: its capacity and its samples.
#[derive(Debug, Clone)]
struct Group {
    max_size: usize,
    data: Option<ClassificationDataset>,
}

/// A memory whose groups (by task, class, experience or none) keep the samples a
/// [`SelectionStrategy`] ranks first (Avalanche's `ParametricBuffer`).
///
/// `max_size` is split equally among the groups seen so far (the remainder to the smallest
/// group keys). On an update, each group's old samples and new samples are ranked together by
/// the selection strategy and the first ones kept; groups larger than their new share are cut
/// the same way. A group within its share is not re-ranked (Avalanche re-ranks every group on
/// every update, which changes the order of a group but not its samples). Kept samples are in
/// dataset order.
///
/// Feature-based strategies need the context's model: update it with
/// [`StorageContext::from_state`] (as the replay plugin does) or
/// [`StorageContext::with_model`].
pub struct ParametricBuffer {
    max_size: usize,
    groupby: GroupBy,
    /// The selection's config, `None` for a custom strategy.
    selection_config: Option<SelectionConfig>,
    selection: Box<dyn SelectionStrategy>,
    groups: BTreeMap<u64, Group>,
    sample_shape: Option<Vec<usize>>,
}

impl std::fmt::Debug for ParametricBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParametricBuffer")
            .field("max_size", &self.max_size)
            .field("groupby", &self.groupby)
            .field("selection", &self.selection_config)
            .field("group_sizes", &self.group_sizes())
            .finish_non_exhaustive()
    }
}

impl ParametricBuffer {
    /// An empty memory as `config` says; an error if the config breaks a rule.
    pub fn new(config: ParametricBufferConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            max_size: config.max_size,
            groupby: config.groupby,
            selection_config: Some(config.selection),
            selection: config.selection.build(),
            groups: BTreeMap::new(),
            sample_shape: None,
        })
    }

    /// An empty memory as `config` says, whose samples are chosen by a selection strategy of
    /// your own instead of `config.selection` (not serialisable).
    pub fn with_selection(config: ParametricBufferConfig, selection: impl SelectionStrategy) -> Result<Self> {
        let mut buffer = Self::new(config)?;
        buffer.selection_config = None;
        buffer.selection = Box::new(selection);
        Ok(buffer)
    }

    /// The most samples the memory holds.
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// How samples are grouped.
    pub fn groupby(&self) -> GroupBy {
        self.groupby
    }

    /// The selection's config, `None` for a strategy given to
    /// [`with_selection`](Self::with_selection).
    pub fn selection(&self) -> Option<SelectionConfig> {
        self.selection_config
    }

    /// `(group key, samples held, capacity)` of each group, by increasing key (the key is the
    /// task label, class or experience index; 0 with [`GroupBy::None`]).
    pub fn group_sizes(&self) -> Vec<(u64, usize, usize)> {
        self.groups.iter().map(|(&k, g)| (k, g.data.as_ref().map_or(0, |d| d.len()), g.max_size)).collect()
    }

    /// The samples of group `key`, if it holds any.
    pub fn group(&self, key: u64) -> Option<&ClassificationDataset> {
        self.groups.get(&key).and_then(|g| g.data.as_ref())
    }

    /// Splits `data` into the groups of `self.groupby`.
    fn make_groups(
        &self,
        experience: usize,
        data: &ClassificationDataset,
    ) -> Result<BTreeMap<u64, ClassificationDataset>> {
        let split = |keys: Vec<u32>| -> Result<BTreeMap<u64, ClassificationDataset>> {
            split_indices(&keys).into_iter().map(|(k, idx)| Ok((u64::from(k), data.subset(&idx)?))).collect()
        };
        match self.groupby {
            GroupBy::None => Ok(BTreeMap::from([(0, data.clone())])),
            GroupBy::Experience => Ok(BTreeMap::from([(experience as u64, data.clone())])),
            GroupBy::Task => split(data.task_labels()),
            GroupBy::Class => split(data.targets()),
        }
    }

    /// The first `k` samples of `data` by the selection strategy, in dataset order.
    fn cut(
        &mut self,
        ctx: &StorageContext<'_>,
        data: ClassificationDataset,
        k: usize,
    ) -> Result<Option<ClassificationDataset>> {
        if k == 0 || data.is_empty() {
            return Ok(None);
        }
        if data.len() <= k {
            return Ok(Some(data));
        }
        let mut idx = self.selection.make_sorted_prefix(ctx, &data, k)?;
        idx.truncate(k);
        let distinct: BTreeSet<usize> = idx.iter().copied().collect();
        if idx.len() < k || distinct.len() != idx.len() || idx.iter().any(|&i| i >= data.len()) {
            return Err(ClError::InvalidUse(format!(
                "the selection strategy ranked {} indices ({} distinct) of {} samples; {k} distinct \
                 indices below {} are needed",
                idx.len(),
                distinct.len(),
                data.len(),
                data.len()
            )));
        }
        idx.sort_unstable();
        Ok(Some(data.subset(&idx)?))
    }

    /// Sets each group's capacity (`max_size` split among the groups) and cuts the groups
    /// larger than it.
    fn rebalance(&mut self, ctx: &StorageContext<'_>) -> Result<()> {
        let lens = group_lengths(self.max_size, self.groups.len(), None);
        let keys: Vec<u64> = self.groups.keys().copied().collect();
        for (key, len) in keys.into_iter().zip(lens) {
            let group = self.groups.get_mut(&key).expect("key listed");
            group.max_size = len;
            if let Some(data) = group.data.take() {
                let kept = self.cut(ctx, data, len)?;
                self.groups.get_mut(&key).expect("key listed").data = kept;
            }
        }
        Ok(())
    }
}

impl StoragePolicy for ParametricBuffer {
    fn max_size(&self) -> usize {
        self.max_size
    }

    fn len(&self) -> usize {
        self.groups.values().map(|g| g.data.as_ref().map_or(0, |d| d.len())).sum()
    }

    fn buffer(&self) -> Option<ClassificationDataset> {
        concat_all(self.groups.values().filter_map(|g| g.data.as_ref()))
    }

    fn update(&mut self, ctx: &StorageContext<'_>) -> Result<()> {
        let experience = ctx.experience();
        let data = experience.dataset.clone();
        if data.is_empty() {
            return Ok(());
        }
        check_shape(&mut self.sample_shape, &data)?;
        let new_groups = self.make_groups(experience.current_experience, &data)?;
        for key in new_groups.keys() {
            self.groups.entry(*key).or_insert(Group { max_size: 0, data: None });
        }
        // New capacities, then old ∪ new of each updated group ranked together and cut.
        let lens = group_lengths(self.max_size, self.groups.len(), None);
        let caps: BTreeMap<u64, usize> = self.groups.keys().copied().zip(lens).collect();
        for (key, new_data) in new_groups {
            let group = self.groups.get_mut(&key).expect("inserted above");
            let combined = match group.data.take() {
                Some(old) => old.concat(&new_data)?,
                None => new_data,
            };
            let kept = self.cut(ctx, combined, caps[&key])?;
            self.groups.get_mut(&key).expect("inserted above").data = kept;
        }
        self.rebalance(ctx)
    }

    fn resize(&mut self, ctx: &StorageContext<'_>, new_size: usize) -> Result<()> {
        self.max_size = new_size;
        self.rebalance(ctx)
    }

    /// `max_size`, the grouping and the selection's config (checked on load), the selection
    /// strategy's state (a nested dictionary: a random selection's generator), the sample
    /// shape and every group (capacity and samples).
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        put_policy_name(out, "ParametricBuffer")?;
        out.put("max_size", &self.max_size)?;
        out.put("groupby", &self.groupby)?;
        out.put("selection_config", &self.selection_config)?;
        let mut selection = StateDict::new(format!("{} (selection strategy)", out.component()));
        self.selection.save_state(&mut selection)?;
        out.put_dict("selection", selection);
        out.put("sample_shape", &self.sample_shape)?;
        out.put("keys", &self.groups.keys().copied().collect::<Vec<u64>>())?;
        for (key, group) in &self.groups {
            out.put(&format!("group/{key}/max_size"), &group.max_size)?;
            put_opt_dataset(out, &format!("group/{key}/data"), group.data.as_ref())?;
        }
        Ok(())
    }

    fn load_state(&mut self, state: &StateDict) -> Result<()> {
        check_policy_name(state, "ParametricBuffer")?;
        state.check_config("groupby", &self.groupby)?;
        state.check_config("selection_config", &self.selection_config)?;
        let max_size: usize = state.get("max_size")?;
        let sample_shape: Option<Vec<usize>> = state.get("sample_shape")?;
        let keys: Vec<u64> = state.get("keys")?;
        let mut groups = BTreeMap::new();
        for key in keys {
            let group = Group {
                max_size: state.get(&format!("group/{key}/max_size"))?,
                data: opt_dataset(state, &format!("group/{key}/data"))?,
            };
            groups.insert(key, group);
        }
        self.selection.load_state(state.dict("selection")?)?;
        self.max_size = max_size;
        self.sample_shape = sample_shape;
        self.groups = groups;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::FeatureSource;
    use crate::storage::test_util::{InputModel, data, experience, ids};
    use burn::tensor::Device;
    use cl_core::config::{ConfigFile, assert_rule};
    use proptest::prelude::*;

    fn random(max_size: usize, groupby: GroupBy, seed: u64) -> ParametricBuffer {
        let config = ParametricBufferConfig::new(max_size)
            .with_groupby(groupby)
            .with_selection(SelectionConfig::Random { seed });
        ParametricBuffer::new(config).unwrap()
    }

    #[test]
    fn config_round_trips_and_rules() {
        for c in [
            ParametricBufferConfig::new(5),
            ParametricBufferConfig::new(50)
                .with_groupby(GroupBy::Experience)
                .with_selection(SelectionConfig::closest_to_center(FeatureSource::Logits)),
            ParametricBufferConfig::new(9)
                .with_groupby(GroupBy::Task)
                .with_selection(SelectionConfig::Random { seed: 3 }),
        ] {
            assert_eq!(ParametricBufferConfig::from_json(&c.to_json()).unwrap(), c);
            assert_eq!(ParametricBufferConfig::from_toml(&c.to_toml().unwrap()).unwrap(), c);
        }
        let c = ParametricBufferConfig::from_toml("max_size = 4\ngroupby = \"class\"\n[selection]\ntype = \"herding\"")
            .unwrap();
        assert_eq!(
            c,
            ParametricBufferConfig::new(4)
                .with_groupby(GroupBy::Class)
                .with_selection(SelectionConfig::herding(FeatureSource::Features))
        );
        assert_rule(ParametricBufferConfig::new(0).validate(), "max_size_positive");
        assert_rule(ParametricBuffer::new(ParametricBufferConfig::new(0)), "max_size_positive");
    }

    #[test]
    fn groups_by_task_class_and_experience() {
        let tasks = |first: usize, n: usize, t: u32| data(first, vec![0; n]).with_task_label(t);
        let mut by_task = random(9, GroupBy::Task, 1);
        let mut by_exp = random(9, GroupBy::Experience, 1);
        let mut by_class = random(9, GroupBy::Class, 1);
        let mut single = random(9, GroupBy::None, 1);
        let exps: Vec<_> = [tasks(0, 10, 3), tasks(100, 10, 5).concat(&data(200, vec![1; 10])).unwrap()]
            .into_iter()
            .enumerate()
            .map(|(e, d)| experience(e, d))
            .collect();
        for exp in &exps {
            for b in [&mut by_task, &mut by_exp, &mut by_class, &mut single] {
                b.update(&StorageContext::new(exp)).unwrap();
                assert!(b.len() <= 9);
            }
        }
        // The concatenation keeps the first part's task label override: 100.. has task 5,
        // 200.. has the storage's task (0).
        assert_eq!(by_task.group_sizes(), vec![(0, 3, 3), (3, 3, 3), (5, 3, 3)]);
        assert_eq!(by_exp.group_sizes(), vec![(0, 5, 5), (1, 4, 4)]);
        assert_eq!(by_class.group_sizes(), vec![(0, 5, 5), (1, 4, 4)]);
        assert_eq!(single.group_sizes(), vec![(0, 9, 9)]);
        assert!(by_class.group(1).unwrap().targets().iter().all(|&t| t == 1));
        assert!(ids(by_exp.group(0).unwrap()).iter().all(|&i| i < 10));
        by_class.resize(&StorageContext::new(&exps[1]), 3).unwrap();
        assert_eq!(by_class.group_sizes(), vec![(0, 2, 2), (1, 1, 1)]);
        assert_eq!(by_class.buffer().unwrap().len(), 3);
    }

    #[test]
    fn closest_to_center_keeps_the_cluster() {
        // Three samples near the direction (1, 1, 0, 0) and two outliers: after L2
        // normalisation the mean is closest to the cluster, which is what a group of 3 keeps.
        let values = vec![
            0.0, 0.0, 1.0, 0.0, //
            1.0, 1.0, 0.0, 0.0, //
            0.0, 0.0, 0.0, 1.0, //
            1.0, 1.2, 0.0, 0.0, //
            1.2, 1.0, 0.0, 0.0,
        ];
        let exp = experience(0, ClassificationDataset::from_f32(values, vec![4], vec![0; 5]).unwrap());
        let device = Device::default();
        let model = InputModel::new(&device);
        let ctx = StorageContext::new(&exp).with_model(&model, &device);
        let selection = SelectionConfig::ClosestToCenter { features: FeatureSource::Features, normalize: true };
        let mut b = ParametricBuffer::new(ParametricBufferConfig::new(3).with_selection(selection)).unwrap();
        b.update(&ctx).unwrap();
        let kept = b.buffer().unwrap();
        let firsts: Vec<f32> = (0..3).map(|i| kept.sample(i).unwrap().x[0]).collect();
        assert_eq!(firsts, vec![1.0, 1.0, 1.2]);
        // Without a model in the context, feature-based selection is an error.
        let mut b = ParametricBuffer::new(ParametricBufferConfig::new(3).with_selection(selection)).unwrap();
        assert!(matches!(b.update(&StorageContext::new(&exp)), Err(ClError::Plugin { .. })));
    }

    #[test]
    fn herding_on_model_features_is_deterministic() {
        let targets: Vec<u32> = (0..60).map(|i| i % 3).collect();
        let values: Vec<f32> = (0..60 * 4).map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0).collect();
        let exp = experience(0, ClassificationDataset::from_f32(values, vec![4], targets).unwrap());
        let device = Device::default();
        let model = cl_models::SimpleMlpConfig::new()
            .with_input_size(4)
            .with_hidden_size(8)
            .with_num_classes(10)
            .init(&device)
            .unwrap();
        let run = || {
            let ctx = StorageContext::new(&exp).with_model(&model, &device).with_batch_size(7);
            let config = ParametricBufferConfig::new(12)
                .with_groupby(GroupBy::Class)
                .with_selection(SelectionConfig::herding(FeatureSource::Features));
            let mut b = ParametricBuffer::new(config).unwrap();
            b.update(&ctx).unwrap();
            b.buffer().unwrap()
        };
        let (a, b) = (run(), run());
        assert_eq!(a.len(), 12);
        assert_eq!(a.targets(), [vec![0; 4], vec![1; 4], vec![2; 4]].concat());
        let xs = |d: &ClassificationDataset| (0..d.len()).map(|i| d.sample(i).unwrap().x).collect::<Vec<_>>();
        assert_eq!(xs(&a), xs(&b));
    }

    /// A selection strategy of one's own: keeps the last samples.
    struct KeepLast;
    impl SelectionStrategy for KeepLast {
        fn make_sorted_indices(
            &mut self,
            _ctx: &StorageContext<'_>,
            data: &ClassificationDataset,
        ) -> Result<Vec<usize>> {
            Ok((0..data.len()).rev().collect())
        }
    }

    #[test]
    fn custom_selection_strategy() {
        let mut b = ParametricBuffer::with_selection(ParametricBufferConfig::new(3), KeepLast).unwrap();
        assert_eq!(b.selection(), None);
        let exp = experience(0, data(0, vec![0; 10]));
        b.update(&StorageContext::new(&exp)).unwrap();
        assert_eq!(ids(&b.buffer().unwrap()), vec![7, 8, 9]);
    }

    proptest! {
        #[test]
        fn class_groups_balanced_bounded_deterministic(
            max_size in 1usize..40,
            exps in proptest::collection::vec(proptest::collection::vec(0u32..6, 0..30), 1..6),
            seed in 0u64..1000,
        ) {
            let run = || {
                let mut b = random(max_size, GroupBy::Class, seed);
                let mut per_class: BTreeMap<u32, usize> = BTreeMap::new();
                let mut start = 0;
                for (e, targets) in exps.iter().enumerate() {
                    if targets.is_empty() { continue; }
                    let exp = experience(e, data(start, targets.clone()));
                    start += targets.len();
                    b.update(&StorageContext::new(&exp)).unwrap();
                    for &t in targets { *per_class.entry(t).or_default() += 1; }
                    assert!(b.len() <= max_size);
                    let lens = group_lengths(max_size, per_class.len(), None);
                    let ideal = max_size as f64 / per_class.len() as f64;
                    for ((k, n, cap), ((&c, &seen), &l)) in b.group_sizes().into_iter().zip(per_class.iter().zip(&lens)) {
                        assert_eq!((k, cap), (u64::from(c), l));
                        assert_eq!(n, seen.min(l));
                        assert!((l as f64 - ideal).abs() < 1.0);
                    }
                }
                b.buffer().map(|d| ids(&d)).unwrap_or_default()
            };
            prop_assert_eq!(run(), run());
        }
    }
}
