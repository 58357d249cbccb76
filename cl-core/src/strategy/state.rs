//! [`StrategyState`]: what a plugin sees of the running strategy, and what it may change.

use burn::module::ParamId;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};

use super::contract::{PartSet, StatePart};
use super::settings::Settings;
use crate::callback::MetricResults;
use crate::checkpoint::CheckpointRequest;
use crate::clock::Clock;
use crate::data::{ClassificationDataset, DataLoader, MiniBatch};
use crate::error::{ClError, Result};
use crate::model::{Adaptation, Model};
use crate::scenario::Experience;

/// The state of a strategy, handed to every plugin callback — the narrow contract between the
/// loop and its plugins (Avalanche's template attributes, minus what a plugin should not touch).
///
/// Three kinds of access:
///
/// - **Run settings**, read-only: [`settings`](Self::settings) (batch sizes, epochs, seed,
///   devices, criterion, optimizer recipe), and the loop's own bookkeeping: [`clock`](Self::clock),
///   [`is_training`](Self::is_training), [`lr`](Self::lr), [`last_metrics`](Self::last_metrics),
///   [`eval_stream`](Self::eval_stream), [`model`](Self::model).
/// - **Loop slots**, public fields with Avalanche's meaning, set by the loop and free to
///   rewrite: [`experience`](Self::experience), [`adapted_dataset`](Self::adapted_dataset),
///   [`dataloader`](Self::dataloader), [`mbatch`](Self::mbatch), [`mb_output`](Self::mb_output),
///   [`loss`](Self::loss), [`grads`](Self::grads).
/// - **Requests**, checked against the calling plugin's [`Plugin::writes`](super::Plugin::writes):
///   [`stop_training`](Self::stop_training) ([`StatePart::StopTraining`]),
///   [`set_lr`](Self::set_lr) ([`StatePart::LearningRate`]; NaN and negative rates are
///   rejected), [`reset_optimizer`](Self::reset_optimizer) ([`StatePart::Optimizer`]),
///   [`replace_model`](Self::replace_model) ([`StatePart::ModelReset`]),
///   [`map_model`](Self::map_model) ([`StatePart::Model`]) and [`add_loss`](Self::add_loss)
///   ([`StatePart::Loss`]). The strategy's steps and code outside the callbacks may use every
///   request.
///
/// The dataloader stays in its slot during an epoch, so iteration callbacks can read it; a
/// loader put there by a plugin is used from the next batch on (the loop calls its
/// `start_epoch` at the start of each epoch only).
pub struct StrategyState<M: Model> {
    settings: Settings,
    model: Option<M>,
    /// The evaluation copy of the model (no autodiff, dropout off) while evaluating.
    pub(crate) eval_model: Option<M>,
    pub(crate) optimizer: Option<ModuleOptimizer>,
    lr: f64,
    pub(crate) clock: Clock,
    pub(crate) is_training: bool,
    pub(crate) last_metrics: MetricResults,
    pub(crate) eval_stream: Option<String>,
    pub(crate) stop_requested: bool,
    /// Whether the model was adapted to the current experience (so a model replaced after the
    /// adaptation step is adapted by `replace_model`, once).
    pub(crate) model_adapted: bool,
    /// A checkpoint asked for by a plugin, written at the end of the current training experience.
    pub(crate) checkpoint_request: Option<CheckpointRequest>,
    /// Name and declared parts of every plugin, in call order.
    pub(crate) writers: Vec<(String, PartSet)>,
    /// The plugin being called (an index into `writers`), `None` for the loop and its steps.
    pub(crate) caller: Option<usize>,

    /// The experience being trained or evaluated.
    pub experience: Option<Experience>,
    /// The experience's dataset after dataset adaptation.
    pub adapted_dataset: Option<ClassificationDataset>,
    /// The data loader of the current experience (also during its iterations).
    pub dataloader: Option<Box<dyn DataLoader>>,
    /// The current mini-batch.
    pub mbatch: Option<MiniBatch>,
    /// The model's output on the current mini-batch.
    pub mb_output: Option<Tensor<2>>,
    /// The loss of the current mini-batch.
    pub loss: Option<Tensor<1>>,
    /// Gradients between backward and update, keyed by parameter id.
    pub grads: Option<GradientsParams>,
    /// Closed-form gradients of loss terms added with
    /// [`add_loss_with_gradient`](Self::add_loss_with_gradient), flattened, keyed by parameter
    /// id, waiting for the backward step to add them to `grads`.
    pub(crate) pending_gradients: Vec<(ParamId, Tensor<1>)>,
}

impl<M: Model> StrategyState<M> {
    /// A state over `model` (already on the training device) with `settings`.
    pub(crate) fn new(model: M, settings: Settings) -> Self {
        let lr = settings.optimizer().learning_rate();
        Self {
            settings,
            model: Some(model),
            eval_model: None,
            optimizer: None,
            lr,
            clock: Clock::default(),
            is_training: false,
            last_metrics: MetricResults::new(),
            eval_stream: None,
            stop_requested: false,
            model_adapted: false,
            checkpoint_request: None,
            writers: Vec::new(),
            caller: None,
            experience: None,
            adapted_dataset: None,
            dataloader: None,
            mbatch: None,
            mb_output: None,
            loss: None,
            grads: None,
            pending_gradients: Vec::new(),
        }
    }

    // ---- read-only ------------------------------------------------------------------------

    /// The run settings: batch sizes, epochs, seed, devices, criterion, optimizer recipe.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The loop's counters.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// `true` while training, `false` while evaluating (also during periodic evaluation).
    pub fn is_training(&self) -> bool {
        self.is_training
    }

    /// The learning rate of the next update.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// The evaluator's last metric values, refreshed after every `eval` (periodic evaluations
    /// included): what early stopping and similar plugins read.
    pub fn last_metrics(&self) -> &MetricResults {
        &self.last_metrics
    }

    /// The last metric values, writable: for tests that script what a periodic evaluation would
    /// report (e.g. to drive early stopping). The loop overwrites them after every `eval`.
    #[doc(hidden)]
    pub fn last_metrics_mut(&mut self) -> &mut MetricResults {
        &mut self.last_metrics
    }

    /// The name of the stream being evaluated (`test`, `valid`, ...), while evaluating.
    pub fn eval_stream(&self) -> Option<&str> {
        self.eval_stream.as_deref()
    }

    /// The optimizer (with its state), once `make_optimizer` has built it.
    pub fn optimizer(&self) -> Option<&ModuleOptimizer> {
        self.optimizer.as_ref()
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
        if self.is_training { self.settings.device() } else { self.settings.eval_device() }
    }

    /// The seed of the current training experience's random draws (data order, replay
    /// batches): the strategy seed and the number of experiences trained before, so each
    /// experience gets its own reproducible stream. Every component derives its per-experience
    /// randomness from this one value.
    pub fn experience_seed(&self) -> u64 {
        self.settings.seed().wrapping_add(self.clock.train_exp_counter.wrapping_mul(0x9E37_79B9_7F4A_7C15))
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

    // ---- requests ---------------------------------------------------------------------------

    /// Checks that the calling plugin declared `part` (the loop and its steps may do anything).
    fn permit(&self, part: StatePart) -> Result<()> {
        let Some(i) = self.caller else {
            return Ok(());
        };
        let (name, parts) = &self.writers[i];
        if parts.contains(part) || (part == StatePart::Model && parts.contains(StatePart::ModelReset)) {
            Ok(())
        } else {
            Err(ClError::UndeclaredWrite { plugin: name.clone(), part: part.describe(), variant: part.variant_name() })
        }
    }

    /// Adds `term` to the loss (e.g. a regularisation penalty in `before_backward`).
    /// Needs [`StatePart::Loss`].
    pub fn add_loss(&mut self, term: Tensor<1>) -> Result<()> {
        self.permit(StatePart::Loss)?;
        self.loss = Some(match self.loss.take() {
            Some(l) => l + term,
            None => term,
        });
        Ok(())
    }

    /// Adds a loss term whose gradient is known in closed form: `value` (a scalar, not part of
    /// any autodiff graph) is added to the loss, so the loss reported and checked for
    /// non-finite values includes it, and `gradient` — the term's gradient per parameter,
    /// flattened row-major, on the training device without autodiff — is added to
    /// `state.grads` by the backward step, right after back-propagation and before the
    /// `after_backward` callbacks, as if the term had been back-propagated. A parameter that
    /// does not require gradients (frozen) gets none. This is how the quadratic penalties of
    /// EWC, SI, MAS and RWalk cost a few passes over the parameters instead of an autodiff
    /// graph per step. Needs [`StatePart::Loss`].
    ///
    /// A strategy whose steps override `backward` without
    /// [`step_defaults::backward`](crate::step_defaults::backward) must add them itself with
    /// [`apply_pending_gradients`](Self::apply_pending_gradients); the loop refuses to update
    /// with gradients left pending ([`ClError::InvalidUse`]).
    pub fn add_loss_with_gradient(&mut self, value: Tensor<1>, gradient: Vec<(ParamId, Tensor<1>)>) -> Result<()> {
        self.permit(StatePart::Loss)?;
        // A tensor without autodiff is a constant when added to one with it.
        let value = value.without_autodiff();
        self.loss = Some(match self.loss.take() {
            Some(l) => l + value,
            None => value,
        });
        self.pending_gradients.extend(gradient);
        Ok(())
    }

    /// Adds the gradients pending from [`add_loss_with_gradient`](Self::add_loss_with_gradient)
    /// to `grads` (reshaped to each parameter's shape; a parameter without a gradient entry gets
    /// one, a frozen parameter none) and clears them. The default backward step calls it. A
    /// gradient whose length is not its parameter's number of elements is
    /// [`ClError::InvalidUse`] naming the parameter.
    pub fn apply_pending_gradients(&mut self, grads: &mut GradientsParams) -> Result<()> {
        if self.pending_gradients.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending_gradients);
        match self.model.as_ref() {
            Some(model) => crate::model::add_flat_gradients(model, grads, pending),
            None => Err(ClError::MissingState("model")),
        }
    }

    /// Whether closed-form gradients are waiting for the backward step.
    pub fn has_pending_gradients(&self) -> bool {
        !self.pending_gradients.is_empty()
    }

    /// Asks the loop to stop training the current experience: the current epoch ends after
    /// this iteration and no further epoch starts (Avalanche's `stop_training`).
    /// Needs [`StatePart::StopTraining`].
    pub fn stop_training(&mut self) -> Result<()> {
        self.permit(StatePart::StopTraining)?;
        self.stop_requested = true;
        Ok(())
    }

    /// Sets the learning rate of the next updates. Needs [`StatePart::LearningRate`]; a NaN,
    /// infinite or negative rate is [`ClError::InvalidLearningRate`].
    pub fn set_lr(&mut self, lr: f64) -> Result<()> {
        self.permit(StatePart::LearningRate)?;
        if !(lr.is_finite() && lr >= 0.0) {
            let origin =
                self.caller.map_or_else(|| "the strategy".to_string(), |i| format!("plugin `{}`", self.writers[i].0));
            return Err(ClError::InvalidLearningRate { lr, origin });
        }
        self.lr = lr;
        Ok(())
    }

    /// Replaces the optimizer by a fresh one from the recipe (momentum, Adam moments dropped),
    /// at once. Needs [`StatePart::Optimizer`].
    pub fn reset_optimizer(&mut self) -> Result<()> {
        self.permit(StatePart::Optimizer)?;
        self.optimizer = Some(self.settings.optimizer().build());
        Ok(())
    }

    /// Asks for a checkpoint of the whole run into `request.dir`. The loop writes it at the next
    /// point where the run can resume from: the end of the current training experience (after
    /// its `after_training_exp` callbacks), or the end of the `train` call (a request made
    /// during a top-level `eval` waits for the next training experience to end). Needs
    /// [`StatePart::Checkpoint`]; a `keep_last` of 0 is rejected. A strategy that was not
    /// resumed refuses to write into a directory that already holds checkpoints
    /// ([`ClError::InvalidUse`]): resume that run or use an empty directory.
    pub fn request_checkpoint(&mut self, request: CheckpointRequest) -> Result<()> {
        self.permit(StatePart::Checkpoint)?;
        if request.keep_last == 0 {
            return Err(ClError::config("keep_last", "a run keeps at least its last checkpoint (keep_last >= 1)"));
        }
        self.checkpoint_request = Some(request);
        Ok(())
    }

    /// Replaces the model (GDumb's reset, training from scratch). The new model is moved to the
    /// training device in training mode and seeded with the strategy seed, as the builder does;
    /// if the loop already adapted the model to the current experience, the new one is adapted
    /// too, so that every model is adapted exactly once per experience. Needs
    /// [`StatePart::ModelReset`].
    pub fn replace_model(&mut self, model: M) -> Result<()> {
        self.permit(StatePart::ModelReset)?;
        // `valid()` first: a model cloned from the training model holds tracked (possibly
        // non-leaf) tensors, which `train()` cannot turn into fresh leaves.
        let mut model = model.valid().to_device(self.settings.device()).train();
        model.seed(self.settings.seed());
        if self.model_adapted
            && let Some(exp) = self.experience.as_ref()
        {
            model.adaptation(&Adaptation { experience: exp, training: self.is_training })?;
        }
        self.model = Some(model);
        Ok(())
    }

    /// Changes the model's parameters in place through `f` (Burn's module mappers consume the
    /// module): weight consolidation, restoring the best weights. `f` must keep the model on
    /// its device. Needs [`StatePart::Model`] (or [`StatePart::ModelReset`]).
    pub fn map_model(&mut self, f: impl FnOnce(M) -> M) -> Result<()> {
        self.permit(StatePart::Model)?;
        let model = self.take_model();
        self.model = Some(f(model));
        Ok(())
    }

    // ---- for the loop -----------------------------------------------------------------------

    pub(crate) fn take_model(&mut self) -> M {
        self.model.take().expect("model present")
    }

    pub(crate) fn put_model(&mut self, model: M) {
        self.model = Some(model);
    }

    /// The next batch of the loader in the slot, on the device of the current phase.
    pub(crate) fn next_batch(&mut self) -> Result<Option<MiniBatch>> {
        let device = if self.is_training { self.settings.device() } else { self.settings.eval_device() };
        let loader = self.dataloader.as_mut().ok_or(ClError::MissingState("dataloader"))?;
        loader.next_batch(device).transpose()
    }

    pub(crate) fn model_mut(&mut self) -> &mut M {
        self.model.as_mut().expect("model present")
    }
}
