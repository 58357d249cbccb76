//! [`PackNetSteps`]: PackNet's steps of the template (Avalanche's `PackNetPlugin` callbacks and
//! `PackNetModel.forward`).

use burn::tensor::Tensor;
use cl_core::checkpoint::StateDict;
use cl_core::data::MiniBatch;
use cl_core::{ClError, Model, Result, StrategyState, TemplateSteps, step_defaults};

use super::PackNetConfig;
use super::masks::{self, TaskIndex};

/// The steps of [`PackNet`](super::PackNet):
/// - `make_optimizer`: a fresh optimizer at every experience (Avalanche's
///   `PackNetPlugin.before_training_exp`);
/// - `before_training_exp`: packs the model's layers on the first experience (checks their
///   shapes afterwards); the experience's task label must be the next task to pack;
/// - `before_training_epoch`: prunes at the first post-pruning epoch
///   (`PackNetPlugin.before_training_epoch`);
/// - `forward`: the model as the batch's task sees it ([`TaskIndex::view`]);
/// - `backward`: only the current task's weights keep their gradient;
/// - `after_training_exp`: freezes the task (`PackNetPlugin.after_training_exp`).
///
/// Reachable after build with `strategy.steps_as::<PackNetSteps>()`.
#[derive(Debug)]
pub struct PackNetSteps {
    config: PackNetConfig,
    index: TaskIndex,
    pruned: bool,
}

impl PackNetSteps {
    /// Steps for this configuration, no task packed yet.
    pub fn new(config: PackNetConfig) -> Self {
        Self { config, index: TaskIndex::default(), pruned: false }
    }

    /// The configuration.
    pub fn config(&self) -> &PackNetConfig {
        &self.config
    }

    /// Which task owns each weight.
    pub fn task_index(&self) -> &TaskIndex {
        &self.index
    }
}

/// The task label shared by every sample of the batch (Avalanche asserts the same).
fn batch_task(batch: &MiniBatch) -> Result<u32> {
    let first = batch.task_labels.first().copied().unwrap_or(0);
    match batch.task_labels.iter().find(|&&t| t != first) {
        None => Ok(first),
        Some(other) => Err(ClError::InvalidUse(format!(
            "PackNet routes a batch by its task label, but this batch mixes task labels {first} and {other}: \
             train and evaluate experiences of one task each (a task-incremental benchmark), without plugins that \
             mix tasks into the batch"
        ))),
    }
}

impl<M: Model> TemplateSteps<M> for PackNetSteps {
    /// `post_prune_epochs < train_epochs`, and a model PackNet can pack.
    fn check(&self, state: &StrategyState<M>) -> Result<()> {
        let epochs = state.settings().train_epochs();
        if self.config.post_prune_epochs >= epochs {
            return Err(ClError::InvalidConfig {
                config: "PackNetConfig",
                rule: "post_prune_epochs_below_train_epochs",
                reason: format!(
                    "PackNet trains {} epoch(s) before pruning and {} after, so train_epochs ({epochs}) must be more \
                     than post_prune_epochs: raise train_epochs or lower post_prune_epochs",
                    epochs.saturating_sub(self.config.post_prune_epochs),
                    self.config.post_prune_epochs
                ),
            });
        }
        masks::layout(state.model()).map(|_| ())
    }

    /// A fresh optimizer: momentum from the previous task would move its frozen weights.
    fn make_optimizer(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        state.reset_optimizer()
    }

    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        self.index.refresh(state.model())?;
        let experience = state.current_experience()?;
        let next = u32::from(self.index.task_count());
        match experience.task_label() {
            Ok(task) if task == next => Ok(()),
            found => Err(ClError::InvalidUse(format!(
                "PackNet packs one task per experience, in order: {next} task(s) are packed, so the next training \
                 experience must have task label {next}, but experience {} has {}: use a task-incremental benchmark \
                 (e.g. SplitConfig::with_return_task_id(true)) and train its experiences in order, each once",
                experience.current_experience,
                match found {
                    Ok(task) => format!("task label {task}"),
                    Err(_) => format!("task labels {:?}", experience.task_labels),
                }
            ))),
        }
    }

    /// Prunes when the post-pruning epochs begin.
    fn before_training_epoch(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let epochs = state.settings().train_epochs() as u64;
        let clock = state.clock();
        if !self.pruned && clock.train_exp_epochs == epochs - self.config.post_prune_epochs as u64 {
            let proportion = self.config.prune_proportion.at(clock.train_exp_counter as usize)?;
            self.index.prune(state.model(), proportion)?;
            self.pruned = true;
        }
        Ok(())
    }

    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        if !self.pruned {
            return Err(ClError::InvalidUse(format!(
                "PackNet: experience {} ended before its post-pruning epochs (training stopped after {} epoch(s)), so \
                 its weights were never pruned and cannot be packed: do not stop training early with PackNet",
                state.current_experience()?.current_experience,
                state.clock().train_exp_epochs
            )));
        }
        self.index.freeze_pruned()?;
        self.pruned = false;
        Ok(())
    }

    fn forward(&mut self, state: &mut StrategyState<M>) -> Result<Tensor<2>> {
        let batch = state.current_batch()?;
        let model = state.forward_model();
        model.check_batch(batch)?;
        let task = batch_task(batch)?;
        let view = self.index.view(model.clone(), task, state.is_training());
        Ok(view.forward(batch))
    }

    /// The default backward pass, then only the current task's weights keep their gradient
    /// ([`TaskIndex`]'s gradient masks; the biases' is dropped after the first task).
    fn backward(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        step_defaults::backward(state)?;
        let mut grads = state.grads.take().ok_or(ClError::MissingState("grads"))?;
        self.index.mask_gradients(state.model(), &mut grads);
        state.grads = Some(grads);
        Ok(())
    }

    /// Saves the configuration, the number of tasks packed and each weight's task.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config)?;
        out.put("pruned", &self.pruned)?;
        self.index.save(out)
    }

    fn load_state(&mut self, state: &StateDict, _strategy: &StrategyState<M>) -> Result<()> {
        state.check_config("config", &self.config)?;
        self.pruned = state.get("pruned")?;
        self.index = TaskIndex::load(state)?;
        Ok(())
    }
}
