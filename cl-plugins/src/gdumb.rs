//! [`GDumbPlugin`]: greedy class-balanced memory, model retrained from scratch on it.

use cl_core::{Model, Plugin, Result, StatePart, StrategyState};

use crate::storage::{ClassBalancedBuffer, StoragePolicy};

/// GDumb (Prabhu et al., 2020; Avalanche's `GDumbPlugin`): a class-balanced memory of
/// `mem_size` samples is filled greedily from the stream; at each experience the model goes back
/// to its initial weights (and the optimizer to a fresh state) and trains on the memory only.
pub struct GDumbPlugin<M: Model> {
    storage: ClassBalancedBuffer,
    init_model: Option<M>,
}

impl<M: Model> GDumbPlugin<M> {
    /// A GDumb memory of `mem_size` samples (> 0), seeded with `seed`.
    pub fn new(mem_size: usize, seed: u64) -> Result<Self> {
        Ok(Self {
            storage: ClassBalancedBuffer::new(mem_size, true, None, seed)?,
            init_model: None,
        })
    }

    /// The memory.
    pub fn storage(&self) -> &ClassBalancedBuffer {
        &self.storage
    }
}

impl<M: Model> Plugin<M> for GDumbPlugin<M> {
    fn name(&self) -> String {
        "GDumbPlugin".into()
    }

    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::TrainingData, StatePart::Model, StatePart::Optimizer]
    }

    fn before_train_dataset_adaptation(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        match &self.init_model {
            None => self.init_model = Some(state.model().clone()),
            Some(init) => {
                state.set_model(init.clone());
                // Burn keys optimizer state by parameter id, which the reset model keeps: drop it
                // so the retraining starts from a fresh optimizer, as in Avalanche.
                state.optimizer = None;
            }
        }
        Ok(())
    }

    fn after_train_dataset_adaptation(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        StoragePolicy::<M>::update(&mut self.storage, state)?;
        state.adapted_dataset = StoragePolicy::<M>::buffer(&self.storage);
        Ok(())
    }
}
