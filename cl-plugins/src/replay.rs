//! [`ReplayPlugin`]: rehearsal from a memory buffer (Avalanche's `ReplayPlugin`).

use cl_core::data::{DataLoaderConfig, ReplayDataLoader, ReplayDataLoaderConfig};
use cl_core::{ClError, Model, Plugin, Result, StatePart, StrategyState};

use crate::storage::{ExperienceBalancedBuffer, StoragePolicy};

/// Experience replay: from the second experience on, every training mini-batch is `batch_size`
/// current samples plus `batch_size_mem` samples of the memory (a [`ReplayDataLoader`]); after
/// each experience the memory is updated by the storage policy (default: an
/// [`ExperienceBalancedBuffer`] of `mem_size` samples, adaptive, as Avalanche).
///
/// ```ignore
/// let replay = ReplayPlugin::new(500)?; // or .with_storage_policy(ReservoirSamplingBuffer::new(500, seed)?)
/// let strategy = Naive::builder(model, optimizer, device).plugin(replay).build()?;
/// ```
pub struct ReplayPlugin<M: Model> {
    batch_size: Option<usize>,
    batch_size_mem: Option<usize>,
    task_balanced_dataloader: bool,
    storage: Box<dyn StoragePolicy<M>>,
}

impl<M: Model> ReplayPlugin<M> {
    /// Replay with an adaptive experience-balanced memory of `mem_size` samples (> 0).
    pub fn new(mem_size: usize) -> Result<Self> {
        Ok(Self::with_storage(ExperienceBalancedBuffer::new(mem_size, true, None, 0)?))
    }

    /// Replay with the given storage policy (its `max_size` is the memory size).
    pub fn with_storage(storage: impl StoragePolicy<M> + 'static) -> Self {
        Self {
            batch_size: None,
            batch_size_mem: None,
            task_balanced_dataloader: false,
            storage: Box::new(storage),
        }
    }

    /// Current samples per mini-batch (default: the strategy's `train_mb_size`).
    pub fn batch_size(mut self, n: usize) -> Result<Self> {
        if n == 0 {
            return Err(ClError::config("batch_size", "must be at least 1"));
        }
        self.batch_size = Some(n);
        Ok(self)
    }

    /// Memory samples per mini-batch (default: the strategy's `train_mb_size`).
    pub fn batch_size_mem(mut self, n: usize) -> Result<Self> {
        if n == 0 {
            return Err(ClError::config("batch_size_mem", "must be at least 1"));
        }
        self.batch_size_mem = Some(n);
        Ok(self)
    }

    /// Split the memory part of each batch evenly over the memory's task labels.
    pub fn task_balanced_dataloader(mut self, on: bool) -> Self {
        self.task_balanced_dataloader = on;
        self
    }

    /// The storage policy (the memory).
    pub fn storage(&self) -> &dyn StoragePolicy<M> {
        self.storage.as_ref()
    }
}

impl<M: Model> Plugin<M> for ReplayPlugin<M> {
    fn name(&self) -> String {
        "ReplayPlugin".into()
    }

    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::TrainingData]
    }

    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let Some(memory) = self.storage.buffer().filter(|b| !b.is_empty()) else {
            return Ok(());
        };
        let data = state
            .adapted_dataset
            .as_ref()
            .ok_or(ClError::MissingState("adapted_dataset"))?;
        let seed = state
            .seed
            .wrapping_add(state.clock.train_exp_counter.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let config = ReplayDataLoaderConfig::new(DataLoaderConfig::train(self.batch_size.unwrap_or(state.train_mb_size), seed))
            .with_batch_size_mem(self.batch_size_mem.unwrap_or(state.train_mb_size))
            .with_oversample_small_tasks(true)
            .with_task_balanced_dataloader(self.task_balanced_dataloader);
        state.dataloader = Some(Box::new(ReplayDataLoader::new(data, Some(&memory), config)?));
        Ok(())
    }

    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        self.storage.update(state)
    }
}
