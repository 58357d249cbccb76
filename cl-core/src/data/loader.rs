//! Data loaders: turn a dataset into a sequence of mini-batches.

use burn::tensor::Device;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::batch::MiniBatch;
use super::dataset::ClassificationDataset;
use serde::{Deserialize, Serialize};

use crate::config::{Validate, rule};
use crate::error::Result;

/// A source of mini-batches, epoch after epoch.
///
/// The strategy calls [`start_epoch`](Self::start_epoch) before each epoch, then
/// [`next_batch`](Self::next_batch) until it returns `None`. Plugins may replace the strategy's
/// loader with their own (e.g. a replay loader mixing memory and current data).
pub trait DataLoader: Send {
    /// Batches per epoch.
    fn num_batches(&self) -> usize;
    /// Prepares a new epoch (e.g. reshuffles).
    fn start_epoch(&mut self);
    /// The next batch of the epoch on `device`, or `None` at the end of the epoch.
    fn next_batch(&mut self, device: &Device) -> Option<Result<MiniBatch>>;
}

/// Options of [`ClassificationDataLoader`] (PyTorch's `DataLoader(batch_size, shuffle,
/// drop_last)` plus the seed of its shuffling). Defaults: batch 1, no shuffling, as PyTorch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataLoaderConfig {
    /// Samples per batch (> 0).
    pub batch_size: usize,
    /// Reshuffle at every epoch.
    pub shuffle: bool,
    /// Drop the last batch if it is smaller than `batch_size`.
    pub drop_last: bool,
    /// Seed of the shuffling and of random transforms.
    pub seed: u64,
}

impl Default for DataLoaderConfig {
    fn default() -> Self {
        Self { batch_size: 1, shuffle: false, drop_last: false, seed: 0 }
    }
}

impl Validate for DataLoaderConfig {
    fn validate(&self) -> Result<()> {
        rule("DataLoaderConfig", "batch_size_positive", self.batch_size > 0, || "batch_size must be at least 1".into())
    }
}

impl DataLoaderConfig {
    /// Sets the batch size.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Sets whether each epoch is reshuffled.
    pub fn with_shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Sets whether the last partial batch is dropped.
    pub fn with_drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// A training loader: shuffled, last partial batch kept.
    pub fn train(batch_size: usize, seed: u64) -> Self {
        Self { batch_size, shuffle: true, drop_last: false, seed }
    }

    /// An evaluation loader: in order.
    pub fn eval(batch_size: usize) -> Self {
        Self { batch_size, shuffle: false, drop_last: false, seed: 0 }
    }
}

/// The default loader: batches of a [`ClassificationDataset`], shuffled with a seeded RNG.
pub struct ClassificationDataLoader {
    dataset: ClassificationDataset,
    config: DataLoaderConfig,
    order: Vec<usize>,
    pos: usize,
    rng: ChaCha8Rng,
    batch_indices: Vec<usize>,
}

impl ClassificationDataLoader {
    /// A loader over `dataset`; the configuration is validated.
    pub fn new(dataset: ClassificationDataset, config: DataLoaderConfig) -> Result<Self> {
        config.validate()?;
        let n = dataset.len();
        Ok(Self {
            dataset,
            config,
            order: (0..n).collect(),
            pos: 0,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            // A batch size larger than the data gives one batch: reserve no more than the data.
            batch_indices: Vec::with_capacity(config.batch_size.min(n)),
        })
    }

    /// The dataset iterated.
    pub fn dataset(&self) -> &ClassificationDataset {
        &self.dataset
    }

    fn epoch_len(&self) -> usize {
        if self.config.drop_last { self.num_batches() * self.config.batch_size } else { self.order.len() }
    }
}

impl DataLoader for ClassificationDataLoader {
    fn num_batches(&self) -> usize {
        let n = self.dataset.len();
        if self.config.drop_last { n / self.config.batch_size } else { n.div_ceil(self.config.batch_size) }
    }

    fn start_epoch(&mut self) {
        self.pos = 0;
        if self.config.shuffle {
            self.order.shuffle(&mut self.rng);
        }
    }

    fn next_batch(&mut self, device: &Device) -> Option<Result<MiniBatch>> {
        let end = self.epoch_len();
        if self.pos >= end {
            return None;
        }
        let stop = self.pos.saturating_add(self.config.batch_size).min(end);
        self.batch_indices.clear();
        self.batch_indices.extend_from_slice(&self.order[self.pos..stop]);
        self.pos = stop;
        Some(self.dataset.batch(&self.batch_indices, device, &mut self.rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_larger_than_the_data_is_one_batch_without_a_huge_allocation() {
        for batch_size in [1 << 36, usize::MAX] {
            let mut l = loader(10, DataLoaderConfig::default().with_batch_size(batch_size).with_shuffle(true));
            assert_eq!(l.num_batches(), 1);
            l.start_epoch();
            let device = burn::tensor::Device::default();
            let batch = l.next_batch(&device).unwrap().unwrap();
            assert_eq!(batch.len(), 10);
            assert!(l.next_batch(&device).is_none());
        }
    }

    fn loader(n: usize, config: DataLoaderConfig) -> ClassificationDataLoader {
        let ds = ClassificationDataset::from_f32((0..n).map(|i| i as f32).collect(), vec![1], vec![0; n]).unwrap();
        ClassificationDataLoader::new(ds, config).unwrap()
    }

    fn epoch(l: &mut ClassificationDataLoader) -> Vec<Vec<f32>> {
        let device = Device::default();
        l.start_epoch();
        std::iter::from_fn(|| l.next_batch(&device))
            .map(|b| b.unwrap().x.into_data().try_to_vec::<f32>().unwrap())
            .collect()
    }

    #[test]
    fn every_sample_once_per_epoch_and_seeded_order() {
        let mut l = loader(10, DataLoaderConfig::train(3, 7));
        assert_eq!(l.num_batches(), 4);
        let e1 = epoch(&mut l);
        assert_eq!(e1.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 3, 3, 1]);
        let mut all: Vec<f32> = e1.concat();
        all.sort_by(f32::total_cmp);
        assert_eq!(all, (0..10).map(|i| i as f32).collect::<Vec<_>>());
        let e2 = epoch(&mut l);
        assert_ne!(e1, e2, "reshuffled each epoch");
        let mut same = loader(10, DataLoaderConfig::train(3, 7));
        assert_eq!(epoch(&mut same), e1, "same seed, same order");
    }

    #[test]
    fn loader_configs_round_trip_and_rules() {
        use crate::config::{ConfigFile, assert_rule};
        use crate::data::{GroupBalancedDataLoaderConfig, ReplayDataLoaderConfig};
        let loader =
            DataLoaderConfig::default().with_batch_size(7).with_shuffle(true).with_drop_last(true).with_seed(3);
        assert_eq!(DataLoaderConfig::from_json(&loader.to_json()).unwrap(), loader);
        assert_eq!(DataLoaderConfig::from_toml(&loader.to_toml().unwrap()).unwrap(), loader);
        let group = GroupBalancedDataLoaderConfig::new(loader).with_oversample_small_groups(true);
        assert_eq!(GroupBalancedDataLoaderConfig::from_json(&group.to_json()).unwrap(), group);
        assert_eq!(GroupBalancedDataLoaderConfig::from_toml(&group.to_toml().unwrap()).unwrap(), group);
        let replay = ReplayDataLoaderConfig::new(loader)
            .with_batch_size_mem(5)
            .with_oversample_small_tasks(false)
            .with_task_balanced_dataloader(true);
        assert_eq!(ReplayDataLoaderConfig::from_json(&replay.to_json()).unwrap(), replay);
        assert_eq!(ReplayDataLoaderConfig::from_toml(&replay.to_toml().unwrap()).unwrap(), replay);
        // One test per rule.
        assert_rule(DataLoaderConfig::default().with_batch_size(0).validate(), "batch_size_positive");
        assert_rule(
            GroupBalancedDataLoaderConfig::new(DataLoaderConfig::train(0, 0)).validate(),
            "batch_size_positive",
        );
        assert_rule(
            ReplayDataLoaderConfig::new(DataLoaderConfig::train(4, 0)).with_batch_size_mem(0).validate(),
            "batch_size_mem_positive",
        );
        assert!(DataLoaderConfig::from_toml("batch_size = 2\nshufle = true").is_err(), "unknown fields are rejected");
    }

    #[test]
    fn drop_last_and_eval_order() {
        let mut l = loader(10, DataLoaderConfig { drop_last: true, ..DataLoaderConfig::train(3, 0) });
        assert_eq!(l.num_batches(), 3);
        assert_eq!(epoch(&mut l).len(), 3);
        let mut e = loader(5, DataLoaderConfig::eval(2));
        assert_eq!(epoch(&mut e), vec![vec![0.0, 1.0], vec![2.0, 3.0], vec![4.0]]);
        let ds = ClassificationDataset::from_f32(vec![0.0], vec![1], vec![0]).unwrap();
        assert!(ClassificationDataLoader::new(ds, DataLoaderConfig::eval(0)).is_err());
    }
}
