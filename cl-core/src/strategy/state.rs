//! [`StrategyState`]: everything a plugin can see and change, as in Avalanche's template.

use std::sync::Arc;

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};

use super::clock::Clock;
use crate::criterion::Criterion;
use crate::data::{ClassificationDataset, DataLoader, MiniBatch};
use crate::error::{ClError, Result};
use crate::model::Model;
use crate::optim::OptimizerSpec;
use crate::scenario::Experience;

/// The state of a strategy, handed mutably to every plugin callback.
///
/// Fields have Avalanche's meaning: `experience` is the experience being trained or evaluated,
/// `adapted_dataset` its data after dataset adaptation, `mbatch` the current mini-batch,
/// `mb_output` the model's logits, `loss` the loss to minimise (plugins add terms to it),
/// `grads` the gradients between backward and update (plugins may rewrite them).
///
/// During an epoch the loop holds the dataloader, so `dataloader` is `None` inside iteration
/// callbacks; a loader set by a plugin is used from the next epoch on (set it in
/// `before_training_exp` or `before_training_epoch` to use it at once).
pub struct StrategyState<M: Model> {
    model: Option<M>,
    /// The evaluation copy of the model (no autodiff, dropout off) while evaluating.
    pub(crate) eval_model: Option<M>,
    /// The optimizer, rebuilt by `make_optimizer` before each experience.
    pub optimizer: Option<ModuleOptimizer>,
    /// How the optimizer is built.
    pub optimizer_spec: OptimizerSpec,
    /// The learning rate used by the next update; plugins (schedulers) may change it.
    pub lr: f64,
    /// The loss function.
    pub criterion: Arc<dyn Criterion>,
    /// Training mini-batch size.
    pub train_mb_size: usize,
    /// Epochs per training experience.
    pub train_epochs: usize,
    /// Evaluation mini-batch size.
    pub eval_mb_size: usize,
    /// Seed of the data order and of the model's random ops.
    pub seed: u64,
    /// Device used for training (autodiff enabled).
    pub device: Device,
    /// Device used for evaluation (the same device without autodiff).
    pub eval_device: Device,
    /// The loop's counters.
    pub clock: Clock,
    /// The experience being trained or evaluated.
    pub experience: Option<Experience>,
    /// The experience's dataset after dataset adaptation.
    pub adapted_dataset: Option<ClassificationDataset>,
    /// The data loader of the current experience (see the type's docs for when it is `None`).
    pub dataloader: Option<Box<dyn DataLoader>>,
    /// The current mini-batch.
    pub mbatch: Option<MiniBatch>,
    /// The model's output on the current mini-batch.
    pub mb_output: Option<Tensor<2>>,
    /// The loss of the current mini-batch.
    pub loss: Option<Tensor<1>>,
    /// Gradients between backward and update, keyed by parameter id.
    pub grads: Option<GradientsParams>,
    /// `true` while training, `false` while evaluating (also during periodic evaluation).
    pub is_training: bool,
    /// The evaluator's last metric values, refreshed after every `eval` (periodic evaluations
    /// included): what early stopping and similar plugins read.
    pub last_metrics: super::evaluator::MetricResults,
    /// Whether `make_optimizer` resets the optimizer state before each experience.
    pub reset_optimizer_state: bool,
    /// The name of the stream being evaluated (`test`, `valid`, ...), while evaluating.
    pub eval_stream: Option<String>,
    pub(crate) stop_requested: bool,
}

impl<M: Model> StrategyState<M> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        model: M,
        optimizer_spec: OptimizerSpec,
        criterion: Arc<dyn Criterion>,
        train_mb_size: usize,
        train_epochs: usize,
        eval_mb_size: usize,
        seed: u64,
        device: Device,
    ) -> Self {
        let eval_device = device.clone().without_autodiff();
        Self {
            model: Some(model),
            eval_model: None,
            optimizer: None,
            lr: optimizer_spec.learning_rate(),
            optimizer_spec,
            criterion,
            train_mb_size,
            train_epochs,
            eval_mb_size,
            seed,
            device,
            eval_device,
            clock: Clock::default(),
            experience: None,
            adapted_dataset: None,
            dataloader: None,
            mbatch: None,
            mb_output: None,
            loss: None,
            grads: None,
            is_training: false,
            reset_optimizer_state: false,
            last_metrics: Default::default(),
            eval_stream: None,
            stop_requested: false,
        }
    }

    /// The model being trained.
    ///
    /// Its parameters live on the autodiff device: for inference inside a plugin (features for
    /// a buffer, a teacher's logits) use `model().valid()`, not a forward pass on this model —
    /// with Burn 0.22, forward passes on autodiff tensors that are never backpropagated leave
    /// graph state behind and slow every later step.
    pub fn model(&self) -> &M {
        self.model.as_ref().expect("the model is always present outside the optimizer step")
    }

    /// Mutable access to the model (e.g. to snapshot or reset parameters).
    pub fn model_mut(&mut self) -> &mut M {
        self.model.as_mut().expect("the model is always present outside the optimizer step")
    }

    /// Replaces the model.
    pub fn set_model(&mut self, model: M) {
        self.model = Some(model);
    }

    /// Applies `f` to the model by value (Burn's module mappers consume the module).
    pub fn map_model(&mut self, f: impl FnOnce(M) -> M) {
        let model = self.model.take().expect("model present");
        self.model = Some(f(model));
    }

    /// The model used for the forward pass now: the training model while training, its
    /// evaluation copy (no autodiff, dropout off) while evaluating.
    pub fn forward_model(&self) -> &M {
        match (&self.eval_model, self.is_training) {
            (Some(m), false) => m,
            _ => self.model(),
        }
    }

    /// The device batches are created on now (training or evaluation device).
    pub fn batch_device(&self) -> &Device {
        if self.is_training { &self.device } else { &self.eval_device }
    }

    /// Adds `term` to the loss (e.g. a regularisation penalty in `before_backward`).
    pub fn add_loss(&mut self, term: Tensor<1>) {
        self.loss = Some(match self.loss.take() {
            Some(l) => l + term,
            None => term,
        });
    }

    /// Asks the loop to stop training the current experience: the current epoch ends after
    /// this iteration and no further epoch starts (Avalanche's `stop_training`).
    pub fn stop_training(&mut self) {
        self.stop_requested = true;
    }

    /// Whether a stop was requested and not yet acted upon.
    pub fn stop_requested(&self) -> bool {
        self.stop_requested
    }

    /// The current experience, or an error naming the missing state.
    pub fn current_experience(&self) -> Result<&Experience> {
        self.experience.as_ref().ok_or(ClError::MissingState("experience"))
    }

    /// The current mini-batch, or an error naming the missing state.
    pub fn current_batch(&self) -> Result<&MiniBatch> {
        self.mbatch.as_ref().ok_or(ClError::MissingState("mbatch"))
    }

    pub(crate) fn take_model(&mut self) -> M {
        self.model.take().expect("model present")
    }
}
