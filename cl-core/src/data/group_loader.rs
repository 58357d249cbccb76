//! Loaders that balance several groups of data in every mini-batch, after Avalanche's
//! `GroupBalancedDataLoader` and `TaskBalancedDataLoader` (`avalanche/benchmarks/utils/data_loader.py`).
//!
//! The shared engine, [`MultiGroupSampler`], mirrors Avalanche's `MultiDatasetDataLoader` and
//! `MultiDatasetSampler`: each group has its own batch sampler (a seeded permutation cut into
//! batches of the group's batch size), one group — the *termination* group — defines the epoch
//! length, and every mini-batch concatenates one batch of each group that still has data, in
//! group order. The groups are concatenated once at construction, so a mini-batch is one index
//! list over the concatenation, gathered and uploaded by a single
//! [`ClassificationDataset::batch`] call.

use std::ops::Range;

use burn::tensor::Device;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::batch::MiniBatch;
use super::dataset::ClassificationDataset;
use super::loader::{DataLoader, DataLoaderConfig};
use serde::{Deserialize, Serialize};

use crate::config::Validate;
use crate::error::{ClError, Result};

/// The RNG stream of random transforms, apart from the groups' shuffling streams.
const TRANSFORM_STREAM: u64 = u64::MAX;

/// A ChaCha8 generator of `seed` on `stream`: group `g` shuffles with stream `g`.
pub(super) fn stream_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// One group's batch sampler: PyTorch's `BatchSampler` over a (re)shuffled permutation.
struct GroupSampler {
    /// Index of the group's first sample in the concatenation.
    offset: usize,
    /// Samples the group contributes per mini-batch.
    batch_size: usize,
    /// Batches per pass over the group (`len(batch_sampler)` in PyTorch).
    num_batches: usize,
    /// The group's local indices, in this pass's order.
    order: Vec<usize>,
    pos: usize,
    batches_done: usize,
    /// Still contributes to this epoch's mini-batches.
    active: bool,
    rng: ChaCha8Rng,
}

impl GroupSampler {
    fn new(offset: usize, len: usize, batch_size: usize, drop_last: bool, rng: ChaCha8Rng) -> Self {
        let num_batches = if drop_last { len / batch_size } else { len.div_ceil(batch_size) };
        Self { offset, batch_size, num_batches, order: (0..len).collect(), pos: 0, batches_done: 0, active: true, rng }
    }

    /// A new pass over the group (a new `iter(sampler)` in PyTorch: a fresh permutation).
    fn restart(&mut self, shuffle: bool) {
        self.pos = 0;
        self.batches_done = 0;
        if shuffle {
            self.order.shuffle(&mut self.rng);
        }
    }

    /// The range of `order` of the next batch; at the end of the pass, `None`, or (if `cycle`) a
    /// new pass's first batch.
    fn take(&mut self, cycle: bool, shuffle: bool) -> Option<Range<usize>> {
        if self.num_batches == 0 {
            return None;
        }
        if self.batches_done == self.num_batches {
            if !cycle {
                return None;
            }
            self.restart(shuffle);
        }
        let start = self.pos;
        let end = start.saturating_add(self.batch_size).min(self.order.len());
        self.pos = end;
        self.batches_done += 1;
        Some(start..end)
    }
}

/// The engine shared by the multi-group loaders (Avalanche's `MultiDatasetSampler`).
pub(super) struct MultiGroupSampler {
    dataset: ClassificationDataset,
    groups: Vec<GroupSampler>,
    termination: usize,
    oversample: bool,
    shuffle: bool,
    done: bool,
    transform_rng: ChaCha8Rng,
    batch_indices: Vec<usize>,
}

impl MultiGroupSampler {
    /// Concatenates `groups` (in order) and gives group `g` `batch_sizes[g]` samples per batch.
    ///
    /// `termination = None` picks the group with the most batches (the first such), like
    /// Avalanche's `termination_dataset=-1`. Callers validate; `groups` is non-empty, every
    /// batch size is at least 1.
    pub(super) fn new(
        groups: &[ClassificationDataset],
        batch_sizes: &[usize],
        termination: Option<usize>,
        oversample: bool,
        config: &DataLoaderConfig,
    ) -> Result<Self> {
        debug_assert_eq!(groups.len(), batch_sizes.len());
        let mut dataset = groups[0].clone();
        for g in &groups[1..] {
            dataset = dataset.concat(g)?;
        }
        let mut offset = 0;
        let samplers: Vec<GroupSampler> = groups
            .iter()
            .zip(batch_sizes)
            .enumerate()
            .map(|(i, (g, &bs))| {
                let s = GroupSampler::new(offset, g.len(), bs, config.drop_last, stream_rng(config.seed, i as u64));
                offset += g.len();
                s
            })
            .collect();
        let termination = termination.unwrap_or_else(|| {
            // `argmax` of the loaders' lengths: the first maximum.
            let max = samplers.iter().map(|s| s.num_batches).max().unwrap_or(0);
            samplers.iter().position(|s| s.num_batches == max).unwrap_or(0)
        });
        // Each group gives at most its size per batch: a batch size larger than the data (even
        // usize::MAX) reserves no more than the data.
        let capacity =
            groups.iter().zip(batch_sizes).map(|(g, &bs)| bs.min(g.len())).fold(0usize, usize::saturating_add);
        Ok(Self {
            dataset,
            groups: samplers,
            termination,
            oversample,
            shuffle: config.shuffle,
            done: true,
            transform_rng: stream_rng(config.seed, TRANSFORM_STREAM),
            batch_indices: Vec::with_capacity(capacity),
        })
    }

    /// The concatenation of the groups.
    pub(super) fn dataset(&self) -> &ClassificationDataset {
        &self.dataset
    }

    /// The index of the group that defines the epoch length.
    pub(super) fn termination(&self) -> usize {
        self.termination
    }

    /// The range of the concatenation holding group `g`'s samples.
    pub(super) fn group_range(&self, g: usize) -> Range<usize> {
        let s = &self.groups[g];
        s.offset..s.offset + s.order.len()
    }
}

impl DataLoader for MultiGroupSampler {
    fn num_batches(&self) -> usize {
        self.groups[self.termination].num_batches
    }

    fn start_epoch(&mut self) {
        self.done = false;
        for g in &mut self.groups {
            g.active = true;
            g.restart(self.shuffle);
        }
    }

    fn next_batch(&mut self, device: &Device) -> Option<Result<MiniBatch>> {
        if self.done {
            return None;
        }
        // The termination group is sampled first: its end is the epoch's end.
        let Some(term_range) = self.groups[self.termination].take(false, self.shuffle) else {
            self.done = true;
            return None;
        };
        self.batch_indices.clear();
        for (gi, g) in self.groups.iter_mut().enumerate() {
            let range = if gi == self.termination {
                term_range.clone()
            } else {
                if !g.active {
                    continue;
                }
                match g.take(self.oversample, self.shuffle) {
                    Some(r) => r,
                    None => {
                        // Exhausted without oversampling, or no batch at all (drop_last):
                        // the group leaves the epoch.
                        g.active = false;
                        continue;
                    }
                }
            };
            let offset = g.offset;
            self.batch_indices.extend(g.order[range].iter().map(|&i| i + offset));
        }
        Some(self.dataset.batch(&self.batch_indices, device, &mut self.transform_rng))
    }
}

/// Avalanche's split of `batch_size` among `n` groups: `batch_size / n` each, the remainder
/// going one by one to the first groups (`GroupBalancedDataLoader.__init__`).
///
/// ```
/// use cl_core::data::balanced_batch_sizes;
/// assert_eq!(balanced_batch_sizes(10, 3), vec![4, 3, 3]);
/// ```
pub fn balanced_batch_sizes(batch_size: usize, n: usize) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    let (each, rem) = (batch_size / n, batch_size % n);
    (0..n).map(|i| each + usize::from(i < rem)).collect()
}

/// Options of [`GroupBalancedDataLoader`] and [`TaskBalancedDataLoader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupBalancedDataLoaderConfig {
    /// The mini-batch size (split among the groups, at least one sample each), shuffling,
    /// `drop_last` (applied to each group's own batches) and seed.
    pub loader: DataLoaderConfig,
    /// Cycle the smaller groups until the largest one is exhausted; otherwise a group leaves the
    /// mini-batches once all its samples were seen. Avalanche's default: `false`.
    pub oversample_small_groups: bool,
}

impl GroupBalancedDataLoaderConfig {
    /// `loader`'s options, without oversampling.
    pub fn new(loader: DataLoaderConfig) -> Self {
        Self { loader, oversample_small_groups: false }
    }

    /// Sets [`oversample_small_groups`](Self::oversample_small_groups).
    pub fn with_oversample_small_groups(mut self, oversample: bool) -> Self {
        self.oversample_small_groups = oversample;
        self
    }
}

impl Validate for GroupBalancedDataLoaderConfig {
    /// The loader's rules (the batch size against the number of groups is checked with the data).
    fn validate(&self) -> Result<()> {
        self.loader.validate()
    }
}

/// Mini-batches balanced among groups (classes, experiences, tasks…), like Avalanche's
/// `GroupBalancedDataLoader`.
///
/// The batch size is split among the `n` groups with [`balanced_batch_sizes`] (`batch_size / n`
/// each, the remainder to the first groups); each group is shuffled and batched on its own
/// (with its own seeded RNG stream) and every mini-batch concatenates one batch of each group,
/// in group order. An epoch lasts as many batches as the group with the most batches has. A
/// smaller group is either cycled (reshuffled) until the epoch ends
/// ([`oversample_small_groups`](GroupBalancedDataLoaderConfig::oversample_small_groups)), or
/// leaves the mini-batches once exhausted, so the last batches are smaller.
///
/// The groups are concatenated once (a cheap view; every sample keeps its own group's
/// transforms), so a mini-batch is built by one gather and one upload.
///
/// ```
/// use burn::tensor::Device;
/// use cl_core::data::{
///     ClassificationDataset, DataLoader, DataLoaderConfig, GroupBalancedDataLoader,
///     GroupBalancedDataLoaderConfig,
/// };
/// let a = ClassificationDataset::from_f32(vec![0.0; 8], vec![1], vec![0; 8]).unwrap();
/// let b = ClassificationDataset::from_f32(vec![1.0; 2], vec![1], vec![1; 2]).unwrap();
/// let config = GroupBalancedDataLoaderConfig::new(DataLoaderConfig::train(4, 0))
///     .with_oversample_small_groups(true);
/// let loader = GroupBalancedDataLoader::new(&[a, b], config).unwrap();
/// assert_eq!(loader.group_batch_sizes(), &[2, 2]);
/// assert_eq!(loader.num_batches(), 4); // the larger group: 8 samples / 2 per batch
/// ```
pub struct GroupBalancedDataLoader {
    sampler: MultiGroupSampler,
    batch_sizes: Vec<usize>,
}

impl GroupBalancedDataLoader {
    /// A loader over `groups`, in order.
    ///
    /// Errors if the batch size is 0, there is no group, a group is empty, the groups' sample
    /// shapes differ, or the batch size is smaller than the number of groups.
    pub fn new(groups: &[ClassificationDataset], config: GroupBalancedDataLoaderConfig) -> Result<Self> {
        config.validate()?;
        let batch_size = config.loader.batch_size;
        if groups.is_empty() {
            return Err(ClError::config("groups", "a group-balanced loader needs at least one group"));
        }
        if let Some(empty) = groups.iter().position(ClassificationDataset::is_empty) {
            return Err(ClError::config("groups", format!("group {empty} has no samples")));
        }
        if batch_size < groups.len() {
            return Err(ClError::config(
                "batch_size",
                format!(
                    "{batch_size} is smaller than the number of groups ({}); each group needs at least one \
                     sample per batch",
                    groups.len()
                ),
            ));
        }
        let batch_sizes = balanced_batch_sizes(batch_size, groups.len());
        let sampler =
            MultiGroupSampler::new(groups, &batch_sizes, None, config.oversample_small_groups, &config.loader)?;
        Ok(Self { sampler, batch_sizes })
    }

    /// Samples each group contributes to a full mini-batch, in group order.
    pub fn group_batch_sizes(&self) -> &[usize] {
        &self.batch_sizes
    }

    /// The concatenation of the groups, which batch indices refer to.
    pub fn dataset(&self) -> &ClassificationDataset {
        self.sampler.dataset()
    }

    /// The indices of group `g`'s samples in [`dataset`](Self::dataset).
    ///
    /// # Panics
    /// If `g` is not a group index.
    pub fn group_range(&self, g: usize) -> Range<usize> {
        self.sampler.group_range(g)
    }

    /// The group whose number of batches defines the epoch length (the first largest).
    pub fn termination_group(&self) -> usize {
        self.sampler.termination()
    }
}

impl DataLoader for GroupBalancedDataLoader {
    fn num_batches(&self) -> usize {
        self.sampler.num_batches()
    }

    fn start_epoch(&mut self) {
        self.sampler.start_epoch();
    }

    fn next_batch(&mut self, device: &Device) -> Option<Result<MiniBatch>> {
        self.sampler.next_batch(device)
    }
}

/// Splits `dataset` by task label, in increasing task order: `(task labels, subsets)`.
pub(super) fn split_by_task(dataset: &ClassificationDataset) -> Result<(Vec<u32>, Vec<ClassificationDataset>)> {
    let labels = dataset.task_labels();
    let tasks: Vec<u32> = dataset.distinct_task_labels().into_iter().collect();
    let mut indices: Vec<Vec<usize>> = vec![Vec::new(); tasks.len()];
    for (i, t) in labels.iter().enumerate() {
        // `tasks` is sorted and holds every label.
        let k = tasks.binary_search(t).unwrap_or_else(|_| unreachable!("task {t} is present"));
        indices[k].push(i);
    }
    let subsets = indices.iter().map(|idx| dataset.subset(idx)).collect::<Result<Vec<_>>>()?;
    Ok((tasks, subsets))
}

/// Mini-batches balanced among the tasks of one dataset, like Avalanche's
/// `TaskBalancedDataLoader`: a [`GroupBalancedDataLoader`] over the dataset split by task label
/// (one group per task, in increasing task-label order).
///
/// ```
/// use cl_core::data::{
///     ClassificationDataset, DataLoader, DataLoaderConfig, GroupBalancedDataLoaderConfig,
///     TaskBalancedDataLoader,
/// };
/// let t0 = ClassificationDataset::from_f32(vec![0.0; 6], vec![1], vec![0; 6]).unwrap();
/// let t1 = ClassificationDataset::from_f32(vec![1.0; 2], vec![1], vec![1; 2]).unwrap().with_task_label(1);
/// let data = t0.concat(&t1).unwrap();
/// let loader =
///     TaskBalancedDataLoader::new(&data, GroupBalancedDataLoaderConfig::new(DataLoaderConfig::train(5, 0)))
///         .unwrap();
/// assert_eq!(loader.tasks(), &[0, 1]);
/// assert_eq!(loader.group_batch_sizes(), &[3, 2]);
/// ```
pub struct TaskBalancedDataLoader {
    inner: GroupBalancedDataLoader,
    tasks: Vec<u32>,
}

impl TaskBalancedDataLoader {
    /// A loader balancing the tasks of `dataset`.
    ///
    /// Errors as [`GroupBalancedDataLoader::new`]: in particular if `dataset` is empty or the batch
    /// size is smaller than its number of tasks.
    pub fn new(dataset: &ClassificationDataset, config: GroupBalancedDataLoaderConfig) -> Result<Self> {
        let (tasks, groups) = split_by_task(dataset)?;
        Ok(Self { inner: GroupBalancedDataLoader::new(&groups, config)?, tasks })
    }

    /// The task label of each group, in group order (increasing).
    pub fn tasks(&self) -> &[u32] {
        &self.tasks
    }

    /// Samples each task contributes to a full mini-batch, in [`tasks`](Self::tasks) order.
    pub fn group_batch_sizes(&self) -> &[usize] {
        self.inner.group_batch_sizes()
    }

    /// The dataset regrouped by task (task after task), which batch indices refer to.
    pub fn dataset(&self) -> &ClassificationDataset {
        self.inner.dataset()
    }
}

impl DataLoader for TaskBalancedDataLoader {
    fn num_batches(&self) -> usize {
        self.inner.num_batches()
    }

    fn start_epoch(&mut self) {
        self.inner.start_epoch();
    }

    fn next_batch(&mut self, device: &Device) -> Option<Result<MiniBatch>> {
        self.inner.next_batch(device)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// `n` samples whose single value is `first + i` (the sample id), class 0, task `task`.
    pub(crate) fn ids(first: usize, n: usize, task: u32) -> ClassificationDataset {
        ClassificationDataset::from_f32((first..first + n).map(|i| i as f32).collect(), vec![1], vec![0; n])
            .unwrap()
            .with_task_label(task)
    }

    /// One epoch: the sample ids of each batch.
    pub(crate) fn epoch(l: &mut dyn DataLoader) -> Vec<Vec<usize>> {
        let device = Device::default();
        l.start_epoch();
        let out: Vec<Vec<usize>> = std::iter::from_fn(|| l.next_batch(&device))
            .map(|b| {
                let b = b.unwrap();
                let x = b.x.into_data().try_to_vec::<f32>().unwrap();
                assert_eq!(x.len(), b.targets.len());
                x.into_iter().map(|v| v as usize).collect()
            })
            .collect();
        assert_eq!(out.len(), l.num_batches(), "num_batches matches the epoch");
        out
    }

    fn config(batch_size: usize, seed: u64, oversample: bool) -> GroupBalancedDataLoaderConfig {
        GroupBalancedDataLoaderConfig::new(DataLoaderConfig::train(batch_size, seed))
            .with_oversample_small_groups(oversample)
    }

    /// How many ids of each group (ids `100*g ..`) a batch holds, checking group order.
    fn per_group(batch: &[usize], groups: usize) -> Vec<usize> {
        let g: Vec<usize> = batch.iter().map(|&i| i / 100).collect();
        assert!(g.windows(2).all(|w| w[0] <= w[1]), "samples in group order: {batch:?}");
        (0..groups).map(|k| g.iter().filter(|&&x| x == k).count()).collect()
    }

    #[test]
    fn batch_size_split_follows_avalanche() {
        assert_eq!(balanced_batch_sizes(10, 3), vec![4, 3, 3]);
        assert_eq!(balanced_batch_sizes(11, 3), vec![4, 4, 3]);
        assert_eq!(balanced_batch_sizes(9, 3), vec![3, 3, 3]);
        assert_eq!(balanced_batch_sizes(3, 3), vec![1, 1, 1]);
        let groups = [ids(0, 40, 0), ids(100, 30, 0), ids(200, 30, 0)];
        let mut l = GroupBalancedDataLoader::new(&groups, config(10, 1, false)).unwrap();
        assert_eq!(l.group_batch_sizes(), &[4, 3, 3]);
        assert_eq!(l.group_range(1), 40..70);
        let e = epoch(&mut l);
        assert_eq!(e.len(), 10);
        for b in &e {
            assert_eq!(per_group(b, 3), vec![4, 3, 3]);
        }
    }

    #[test]
    fn epoch_without_oversampling_sees_each_sample_once() {
        // Group 0: 10 samples, 2 per batch → 5 batches; group 1: 3 samples, 2 per batch → 2.
        let groups = [ids(0, 10, 0), ids(100, 3, 0)];
        let mut l = GroupBalancedDataLoader::new(&groups, config(4, 3, false)).unwrap();
        assert_eq!(l.num_batches(), 5);
        assert_eq!(l.termination_group(), 0);
        for _ in 0..2 {
            let e = epoch(&mut l);
            let sizes: Vec<Vec<usize>> = e.iter().map(|b| per_group(b, 2)).collect();
            assert_eq!(sizes, vec![vec![2, 2], vec![2, 1], vec![2, 0], vec![2, 0], vec![2, 0]]);
            let mut all = e.concat();
            all.sort_unstable();
            let expected: Vec<usize> = (0..10).chain(100..103).collect();
            assert_eq!(all, expected);
        }
    }

    #[test]
    fn oversampling_cycles_small_groups_with_the_same_epoch_length() {
        let groups = [ids(0, 3, 0), ids(100, 10, 0)];
        let mut l = GroupBalancedDataLoader::new(&groups, config(4, 3, true)).unwrap();
        // The epoch length is the largest group's either way (Avalanche's argmax).
        assert_eq!(l.termination_group(), 1);
        assert_eq!(l.num_batches(), 5);
        let e = epoch(&mut l);
        let sizes: Vec<Vec<usize>> = e.iter().map(|b| per_group(b, 2)).collect();
        // Group 0 (3 samples, 2 per batch): [2, 1] per pass, cycled.
        assert_eq!(sizes, vec![vec![2, 2], vec![1, 2], vec![2, 2], vec![1, 2], vec![2, 2]]);
        // Each pass over group 0 (two batches) holds each of its samples once.
        for pass in e.chunks(2).filter(|c| c.len() == 2) {
            let mut s: Vec<usize> = pass.iter().flatten().copied().filter(|&i| i < 100).collect();
            s.sort_unstable();
            assert_eq!(s, vec![0, 1, 2]);
        }
        let mut large: Vec<usize> = e.concat().into_iter().filter(|&i| i >= 100).collect();
        large.sort_unstable();
        assert_eq!(large, (100..110).collect::<Vec<_>>());
    }

    #[test]
    fn drop_last_applies_per_group() {
        let groups = [ids(0, 7, 0), ids(100, 1, 0)];
        let cfg =
            GroupBalancedDataLoaderConfig::new(DataLoaderConfig { drop_last: true, ..DataLoaderConfig::train(4, 0) })
                .with_oversample_small_groups(true);
        let mut l = GroupBalancedDataLoader::new(&groups, cfg).unwrap();
        // Group 0: 7 / 2 = 3 full batches; group 1 has no full batch and is skipped.
        assert_eq!(l.num_batches(), 3);
        assert!(epoch(&mut l).iter().all(|b| per_group(b, 2) == vec![2, 0]));
    }

    #[test]
    fn seeded_and_reshuffled() {
        let groups = [ids(0, 20, 0), ids(100, 7, 0)];
        let mut a = GroupBalancedDataLoader::new(&groups, config(6, 42, true)).unwrap();
        let mut b = GroupBalancedDataLoader::new(&groups, config(6, 42, true)).unwrap();
        let mut c = GroupBalancedDataLoader::new(&groups, config(6, 43, true)).unwrap();
        let (ea, eb, ec) = (epoch(&mut a), epoch(&mut b), epoch(&mut c));
        assert_eq!(ea, eb, "same seed, same batches");
        assert_ne!(ea, ec, "another seed, other batches");
        assert_ne!(epoch(&mut a), ea, "reshuffled each epoch");
        // Without shuffling, groups are read in order.
        let cfg = GroupBalancedDataLoaderConfig::new(DataLoaderConfig::eval(4));
        let mut d = GroupBalancedDataLoader::new(&[ids(0, 3, 0), ids(100, 2, 0)], cfg).unwrap();
        assert_eq!(epoch(&mut d), vec![vec![0, 1, 100, 101], vec![2]]);
    }

    #[test]
    fn task_balanced_splits_by_task_label() {
        // Tasks interleaved in the dataset: 0, 2, 0, 2, … plus task 1.
        let a = ids(0, 6, 0);
        let b = ids(200, 6, 2);
        let mixed = a.concat(&b).unwrap().subset(&[0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11]).unwrap();
        let data = mixed.concat(&ids(100, 2, 1)).unwrap();
        let mut l = TaskBalancedDataLoader::new(&data, config(7, 5, false)).unwrap();
        assert_eq!(l.tasks(), &[0, 1, 2]);
        assert_eq!(l.group_batch_sizes(), &[3, 2, 2]);
        let e = epoch(&mut l);
        // Task 0: 6 / 3 = 2 batches; task 2: 6 / 2 = 3 batches → 3 batches.
        assert_eq!(e.len(), 3);
        let sizes: Vec<Vec<usize>> = e.iter().map(|b| per_group(b, 3)).collect();
        assert_eq!(sizes, vec![vec![3, 2, 2], vec![3, 0, 2], vec![0, 0, 2]]);
        // The task labels follow the samples.
        let device = Device::default();
        l.start_epoch();
        let batch = l.next_batch(&device).unwrap().unwrap();
        assert_eq!(batch.task_labels, vec![0, 0, 0, 1, 1, 2, 2]);
    }

    #[test]
    fn invalid_configurations_are_rejected() {
        let err = |r: Result<GroupBalancedDataLoader>| match r {
            Err(ClError::InvalidConfig { rule: field, .. }) => field,
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("accepted"),
        };
        let two = [ids(0, 3, 0), ids(100, 3, 0)];
        assert_eq!(err(GroupBalancedDataLoader::new(&two, config(0, 0, false))), "batch_size_positive");
        assert_eq!(err(GroupBalancedDataLoader::new(&two, config(1, 0, false))), "batch_size");
        assert_eq!(err(GroupBalancedDataLoader::new(&[], config(4, 0, false))), "groups");
        let empty = ids(0, 3, 0).subset(&[]).unwrap();
        assert_eq!(err(GroupBalancedDataLoader::new(&[ids(0, 3, 0), empty.clone()], config(4, 0, false))), "groups");
        assert!(TaskBalancedDataLoader::new(&empty, config(4, 0, false)).is_err());
        let three_tasks = ids(0, 2, 0).concat(&ids(100, 2, 1)).unwrap().concat(&ids(200, 2, 2)).unwrap();
        assert!(matches!(
            TaskBalancedDataLoader::new(&three_tasks, config(2, 0, false)),
            Err(ClError::InvalidConfig { rule: "batch_size", .. })
        ));
        let other_shape = ClassificationDataset::from_f32(vec![0.0; 4], vec![2], vec![0; 2]).unwrap();
        assert!(matches!(
            GroupBalancedDataLoader::new(&[ids(0, 3, 0), other_shape], config(4, 0, false)),
            Err(ClError::SampleShapeMismatch { .. })
        ));
    }
}
