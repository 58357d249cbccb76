//! [`Clock`]: the loop's counters, with Avalanche's meaning.

use crate::callback::Callback;

/// Counters of the loop, updated after the plugins of each callback (as Avalanche's `Clock`,
/// which runs last).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Clock {
    /// Training iterations over the strategy's lifetime.
    pub train_iterations: u64,
    /// Experiences trained so far.
    pub train_exp_counter: u64,
    /// Epochs completed on the current experience.
    pub train_exp_epochs: u64,
    /// Iterations on the current experience.
    pub train_exp_iterations: u64,
    /// Iterations in the current epoch.
    pub train_epoch_iterations: u64,
    /// Training and evaluation iterations over the strategy's lifetime.
    pub total_iterations: u64,
}

impl Clock {
    /// Updates the counters after `callback` ran.
    pub fn after(&mut self, callback: Callback) {
        match callback {
            Callback::BeforeTrainingExp => {
                self.train_exp_iterations = 0;
                self.train_exp_epochs = 0;
            }
            Callback::BeforeTrainingEpoch => self.train_epoch_iterations = 0,
            Callback::AfterTrainingIteration => {
                self.train_epoch_iterations += 1;
                self.train_exp_iterations += 1;
                self.train_iterations += 1;
                self.total_iterations += 1;
            }
            Callback::AfterTrainingEpoch => self.train_exp_epochs += 1,
            Callback::AfterTrainingExp => self.train_exp_counter += 1,
            Callback::AfterEvalIteration => self.total_iterations += 1,
            _ => {}
        }
    }
}
