//! [`ReplayDataLoader`]: mini-batches mixing the current data with a replay memory, after
//! Avalanche's `ReplayDataLoader` (`avalanche/benchmarks/utils/data_loader.py`).

use burn::tensor::Device;

use super::batch::MiniBatch;
use super::dataset::ClassificationDataset;
use super::group_loader::{MultiGroupSampler, balanced_batch_sizes, split_by_task};
use super::loader::{DataLoader, DataLoaderConfig};
use serde::{Deserialize, Serialize};

use crate::config::{Validate, rule};
use crate::error::{ClError, Result};

/// Options of [`ReplayDataLoader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayDataLoaderConfig {
    /// Current-data samples per mini-batch (`batch_size`), shuffling, `drop_last` (applied to
    /// the current data and to each memory group separately) and seed.
    pub loader: DataLoaderConfig,
    /// Memory samples per mini-batch; `None` means `loader.batch_size` (as Avalanche's
    /// `ReplayPlugin`, which defaults it to the strategy's `train_mb_size`).
    pub batch_size_mem: Option<usize>,
    /// Cycle (reshuffling) memory groups that run out before the current data; otherwise they
    /// leave the mini-batches once exhausted. [`new`](Self::new) sets it to `true`, as Avalanche's
    /// `ReplayPlugin` passes (the `ReplayDataLoader` class itself defaults to `false`).
    pub oversample_small_tasks: bool,
    /// Split the memory by task label and `batch_size_mem` among its tasks (then
    /// `batch_size_mem` must be at least the memory's number of tasks); otherwise the memory is
    /// one group.
    pub task_balanced_dataloader: bool,
}

impl ReplayDataLoaderConfig {
    /// `loader`'s options, `batch_size_mem = batch_size`, memory cycled, not task-balanced.
    pub fn new(loader: DataLoaderConfig) -> Self {
        Self { loader, batch_size_mem: None, oversample_small_tasks: true, task_balanced_dataloader: false }
    }

    /// Sets [`batch_size_mem`](Self::batch_size_mem).
    pub fn with_batch_size_mem(mut self, batch_size_mem: usize) -> Self {
        self.batch_size_mem = Some(batch_size_mem);
        self
    }

    /// Sets [`oversample_small_tasks`](Self::oversample_small_tasks).
    pub fn with_oversample_small_tasks(mut self, oversample: bool) -> Self {
        self.oversample_small_tasks = oversample;
        self
    }

    /// Sets [`task_balanced_dataloader`](Self::task_balanced_dataloader).
    pub fn with_task_balanced_dataloader(mut self, task_balanced: bool) -> Self {
        self.task_balanced_dataloader = task_balanced;
        self
    }

    /// Sets the current data's loader options.
    pub fn with_loader(mut self, loader: DataLoaderConfig) -> Self {
        self.loader = loader;
        self
    }

    /// The effective memory batch size.
    pub fn memory_batch_size(&self) -> usize {
        self.batch_size_mem.unwrap_or(self.loader.batch_size)
    }
}

impl Validate for ReplayDataLoaderConfig {
    /// The loader's rules, and a memory batch of at least one sample (the memory's number of
    /// tasks is checked with the data).
    fn validate(&self) -> Result<()> {
        self.loader.validate()?;
        rule("ReplayDataLoaderConfig", "batch_size_mem_positive", self.batch_size_mem != Some(0), || {
            "batch_size_mem must be at least 1 (or unset: the current batch size)".into()
        })
    }
}

/// Mini-batches of `batch_size` current samples followed by `batch_size_mem` memory samples,
/// like Avalanche's `ReplayDataLoader`.
///
/// The current data defines the epoch: it has as many batches as a plain
/// [`ClassificationDataLoader`](super::ClassificationDataLoader) over it would. The memory (one
/// group, or one per task with
/// [`task_balanced_dataloader`](ReplayDataLoaderConfig::task_balanced_dataloader)) is batched
/// alongside with its own seeded RNG streams; a memory group that runs out is reshuffled and
/// cycled ([`oversample_small_tasks`](ReplayDataLoaderConfig::oversample_small_tasks)) or
/// leaves the remaining batches. As in Avalanche, a memory pass ending on a partial batch gives
/// a mini-batch with fewer memory samples (unless `drop_last`).
///
/// An empty (or absent) memory gives a plain loader over the current data. Current data and
/// memory are concatenated once (a cheap view; every sample keeps its own dataset's transforms),
/// so a mini-batch is built by one gather and one upload.
///
/// ```
/// use cl_core::data::{ClassificationDataset, DataLoader, DataLoaderConfig, ReplayDataLoader, ReplayDataLoaderConfig};
/// let data = ClassificationDataset::from_f32(vec![0.0; 10], vec![1], vec![1; 10]).unwrap();
/// let memory = ClassificationDataset::from_f32(vec![1.0; 3], vec![1], vec![0; 3]).unwrap();
/// let config = ReplayDataLoaderConfig::new(DataLoaderConfig::train(4, 0)).with_batch_size_mem(2);
/// let mut loader = ReplayDataLoader::new(&data, Some(&memory), config).unwrap();
/// assert_eq!(loader.num_batches(), 3); // the current data's: 10 samples / 4 per batch
/// let device = burn::tensor::Device::default();
/// loader.start_epoch();
/// let batch = loader.next_batch(&device).unwrap().unwrap();
/// assert_eq!(batch.targets, vec![1, 1, 1, 1, 0, 0]); // current data first, then memory
/// ```
pub struct ReplayDataLoader {
    sampler: MultiGroupSampler,
    memory_batch_sizes: Vec<usize>,
    memory_tasks: Option<Vec<u32>>,
}

impl ReplayDataLoader {
    /// A loader over the current `data` and the replay `memory` (`None` or empty: no replay).
    ///
    /// Errors if the batch size is 0, `data` is empty, the memory is not empty and
    /// `batch_size_mem` is 0 or (task-balanced) smaller than the memory's number of tasks, or
    /// the sample shapes differ.
    pub fn new(
        data: &ClassificationDataset,
        memory: Option<&ClassificationDataset>,
        config: ReplayDataLoaderConfig,
    ) -> Result<Self> {
        config.validate()?;
        if data.is_empty() {
            return Err(ClError::config("data", "the current data has no samples"));
        }
        let memory = memory.filter(|m| !m.is_empty());
        let mut groups = vec![data.clone()];
        let mut batch_sizes = vec![config.loader.batch_size];
        let mut memory_batch_sizes = Vec::new();
        let mut memory_tasks = None;
        if let Some(memory) = memory {
            let bs_mem = config.memory_batch_size();
            if config.task_balanced_dataloader {
                let (tasks, subsets) = split_by_task(memory)?;
                if bs_mem < tasks.len() {
                    return Err(ClError::config(
                        "batch_size_mem",
                        format!(
                            "{bs_mem} is smaller than the memory's number of tasks ({}); a task-balanced \
                             memory needs at least one sample per task and batch",
                            tasks.len()
                        ),
                    ));
                }
                memory_batch_sizes = balanced_batch_sizes(bs_mem, tasks.len());
                groups.extend(subsets);
                memory_tasks = Some(tasks);
            } else {
                memory_batch_sizes = vec![bs_mem];
                groups.push(memory.clone());
            }
            batch_sizes.extend_from_slice(&memory_batch_sizes);
        }
        let sampler =
            MultiGroupSampler::new(&groups, &batch_sizes, Some(0), config.oversample_small_tasks, &config.loader)?;
        Ok(Self { sampler, memory_batch_sizes, memory_tasks })
    }

    /// Memory samples per full mini-batch, per memory group (empty without memory).
    pub fn memory_batch_sizes(&self) -> &[usize] {
        &self.memory_batch_sizes
    }

    /// The task label of each memory group when the memory is task-balanced.
    pub fn memory_tasks(&self) -> Option<&[u32]> {
        self.memory_tasks.as_deref()
    }

    /// The current data followed by the memory (regrouped by task if task-balanced), which
    /// batch indices refer to.
    pub fn dataset(&self) -> &ClassificationDataset {
        self.sampler.dataset()
    }
}

impl DataLoader for ReplayDataLoader {
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

#[cfg(test)]
mod tests {
    use super::super::group_loader::tests::{epoch, ids};
    use super::super::loader::ClassificationDataLoader;
    use super::*;

    fn config(batch_size: usize, batch_size_mem: usize, seed: u64) -> ReplayDataLoaderConfig {
        ReplayDataLoaderConfig::new(DataLoaderConfig::train(batch_size, seed)).with_batch_size_mem(batch_size_mem)
    }

    /// (current, memory) sample counts of a batch; current ids are < 100; checks the order.
    fn split(batch: &[usize]) -> (usize, usize) {
        let cur = batch.iter().take_while(|&&i| i < 100).count();
        assert!(batch[cur..].iter().all(|&i| i >= 100), "current data first: {batch:?}");
        (cur, batch.len() - cur)
    }

    #[test]
    fn batches_mix_current_data_and_cycled_memory() {
        let data = ids(0, 18, 1);
        let memory = ids(100, 6, 0);
        let mut l = ReplayDataLoader::new(&data, Some(&memory), config(4, 3, 9)).unwrap();
        assert_eq!(l.num_batches(), 5, "the current data's epoch: ceil(18 / 4)");
        assert_eq!(l.memory_batch_sizes(), &[3]);
        for _ in 0..2 {
            let e = epoch(&mut l);
            let sizes: Vec<(usize, usize)> = e.iter().map(|b| split(b)).collect();
            assert_eq!(sizes, vec![(4, 3), (4, 3), (4, 3), (4, 3), (2, 3)]);
            let mut cur: Vec<usize> = e.iter().flat_map(|b| b.iter().copied().filter(|&i| i < 100)).collect();
            cur.sort_unstable();
            assert_eq!(cur, (0..18).collect::<Vec<_>>(), "each current sample once");
            // The memory is cycled: each pass (two batches) holds every memory sample once.
            for pass in e.chunks(2).filter(|c| c.len() == 2) {
                let mut m: Vec<usize> = pass.iter().flatten().copied().filter(|&i| i >= 100).collect();
                m.sort_unstable();
                assert_eq!(m, (100..106).collect::<Vec<_>>());
            }
        }
        // A memory pass ending on a partial batch gives a smaller memory part, as in Avalanche.
        let mut odd = ReplayDataLoader::new(&data, Some(&ids(100, 4, 0)), config(4, 3, 9)).unwrap();
        let sizes: Vec<usize> = epoch(&mut odd).iter().map(|b| split(b).1).collect();
        assert_eq!(sizes, vec![3, 1, 3, 1, 3]);
    }

    #[test]
    fn memory_larger_than_data_and_default_memory_batch_size() {
        let data = ids(0, 5, 1);
        let memory = ids(100, 50, 0);
        let cfg = ReplayDataLoaderConfig::new(DataLoaderConfig::train(2, 0));
        assert_eq!(cfg.memory_batch_size(), 2);
        let mut l = ReplayDataLoader::new(&data, Some(&memory), cfg).unwrap();
        let e = epoch(&mut l);
        assert_eq!(e.iter().map(|b| split(b)).collect::<Vec<_>>(), vec![(2, 2), (2, 2), (1, 2)]);
        // Without oversampling, an exhausted memory leaves the batches.
        let cfg = config(2, 3, 0).with_oversample_small_tasks(false);
        let mut l = ReplayDataLoader::new(&ids(0, 10, 1), Some(&ids(100, 4, 0)), cfg).unwrap();
        let sizes: Vec<(usize, usize)> = epoch(&mut l).iter().map(|b| split(b)).collect();
        assert_eq!(sizes, vec![(2, 3), (2, 1), (2, 0), (2, 0), (2, 0)]);
    }

    #[test]
    fn empty_memory_is_a_plain_loader() {
        let data = ids(0, 11, 0);
        let empty = ids(100, 3, 0).subset(&[]).unwrap();
        let plain = || ClassificationDataLoader::new(data.clone(), DataLoaderConfig::train(4, 5)).unwrap();
        for memory in [None, Some(&empty)] {
            let mut l = ReplayDataLoader::new(&data, memory, config(4, 3, 5)).unwrap();
            assert!(l.memory_batch_sizes().is_empty());
            // The current data's stream is the plain loader's (stream 0 of the same seed).
            assert_eq!(epoch(&mut l), epoch(&mut plain()));
        }
    }

    #[test]
    fn task_balanced_memory_splits_batch_size_mem() {
        let data = ids(0, 12, 2);
        // Memory: task 1 (ids 200..) before task 0 (ids 100..) in the dataset.
        let memory = ids(200, 4, 1).concat(&ids(100, 9, 0)).unwrap();
        let cfg = config(4, 5, 1).with_task_balanced_dataloader(true);
        let mut l = ReplayDataLoader::new(&data, Some(&memory), cfg).unwrap();
        assert_eq!(l.memory_tasks(), Some(&[0, 1][..]));
        assert_eq!(l.memory_batch_sizes(), &[3, 2], "remainder to the first task");
        let device = Device::default();
        l.start_epoch();
        while let Some(b) = l.next_batch(&device) {
            let b = b.unwrap();
            assert_eq!(b.task_labels, vec![2, 2, 2, 2, 0, 0, 0, 1, 1]);
        }
        // Too few memory samples per batch for its tasks.
        let cfg = config(4, 1, 1).with_task_balanced_dataloader(true);
        assert!(matches!(
            ReplayDataLoader::new(&data, Some(&memory), cfg),
            Err(ClError::InvalidConfig { rule: "batch_size_mem", .. })
        ));
    }

    #[test]
    fn seeded_batches_and_invalid_configurations() {
        let data = ids(0, 20, 0);
        let memory = ids(100, 7, 0);
        let run = |seed| epoch(&mut ReplayDataLoader::new(&data, Some(&memory), config(4, 2, seed)).unwrap());
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
        let field = |r: Result<ReplayDataLoader>| match r {
            Err(ClError::InvalidConfig { rule: field, .. }) => field,
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("accepted"),
        };
        assert_eq!(field(ReplayDataLoader::new(&data, Some(&memory), config(0, 2, 0))), "batch_size_positive");
        assert_eq!(field(ReplayDataLoader::new(&data, Some(&memory), config(4, 0, 0))), "batch_size_mem_positive");
        let empty = data.subset(&[]).unwrap();
        assert_eq!(field(ReplayDataLoader::new(&empty, Some(&memory), config(4, 2, 0))), "data");
        // The config is checked on its own, with or without memory: 0 is never a batch size.
        assert_eq!(field(ReplayDataLoader::new(&data, None, config(4, 0, 0))), "batch_size_mem_positive");
    }
}
