//! [`TemplateSteps`]: the overridable steps of the loop, and their default implementations.
//!
//! A new strategy that changes one step (e.g. `Cumulative` changes the dataset adaptation)
//! implements this trait overriding that method only; the loop itself is not copied.

use std::any::Any;
use std::borrow::Cow;

use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use super::state::StrategyState;
use crate::checkpoint::StateDict;
use crate::data::{ClassificationDataLoader, DataLoaderConfig};
use crate::error::{ClError, Result};
use crate::model::{Adaptation, Model};
use crate::scenario::Experience;

/// The steps of the template that a strategy may override. Each default calls the function of
/// the same name in [`defaults`], which an override may call too.
pub trait TemplateSteps<M: Model>: Any + Send {
    /// Checks the strategy the steps are built into (its settings and model), once, when the
    /// builder builds it: a rule that involves the training settings (e.g. `PackNet`'s
    /// post-pruning epochs fewer than `train_epochs`) or the model's layers fails here with a
    /// typed error rather than in the middle of training. Default: nothing to check.
    fn check(&self, _state: &StrategyState<M>) -> Result<()> {
        Ok(())
    }

    /// A name for checkpoints and messages (default: the type's name); a checkpoint resumes only
    /// into steps of the same name.
    fn name(&self) -> String {
        crate::config::short_type_name::<Self>().to_string()
    }

    /// The experiences a `train` call trains on, in order (default: the ones given).
    /// `JointTraining` replaces them by their union, once, as Avalanche's `JointTraining.train`.
    fn train_experiences<'a>(&mut self, experiences: &'a [Experience]) -> Result<Cow<'a, [Experience]>> {
        Ok(Cow::Borrowed(experiences))
    }
    /// The number of class outputs of the [`forward`](Self::forward) step, checked against each
    /// experience's classes after model adaptation (default: the model's
    /// [`Model::num_outputs`]). Steps whose outputs are not the model's (a classifier of their
    /// own on the model's features, e.g. `StreamingLda`) return theirs, or `None` to check the
    /// labels themselves.
    fn num_outputs(&self, state: &StrategyState<M>) -> Option<usize> {
        state.model().num_outputs()
    }
    /// Sets `state.adapted_dataset` for training (default: the experience's data, train view).
    fn train_dataset_adaptation(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        defaults::train_dataset_adaptation(state)
    }
    /// Sets `state.dataloader` for training (default: shuffled, seeded, `train_mb_size`).
    fn make_train_dataloader(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        defaults::make_train_dataloader(state)
    }
    /// Sets `state.adapted_dataset` for evaluation (default: the experience's data, eval view).
    fn eval_dataset_adaptation(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        defaults::eval_dataset_adaptation(state)
    }
    /// Sets `state.dataloader` for evaluation (default: in order, `eval_mb_size`).
    fn make_eval_dataloader(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        defaults::make_eval_dataloader(state)
    }
    /// Adapts the model to the experience (default: [`Model::adaptation`]).
    fn model_adaptation(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        defaults::model_adaptation(state)
    }
    /// The strategy's own work at the start of a training experience, after the optimizer is
    /// ready and before the plugins' `before_training_exp` (default: nothing). Avalanche's
    /// templates override `_before_training_exp` and call `super()` last, e.g. `DER` builds its
    /// replay loader there and `ER_ACE` adds the experience to its memory.
    fn before_training_exp(&mut self, _state: &mut StrategyState<M>) -> Result<()> {
        Ok(())
    }
    /// The strategy's own work at the start of a training epoch, before the plugins'
    /// `before_training_epoch` (default: nothing); e.g. `PackNet` prunes the model when its
    /// post-pruning epochs begin (Avalanche's `PackNetPlugin.before_training_epoch`).
    /// `state.clock().train_exp_epochs` is the number of epochs already done on the experience.
    fn before_training_epoch(&mut self, _state: &mut StrategyState<M>) -> Result<()> {
        Ok(())
    }
    /// The strategy's own work at the end of a training experience, before the plugins'
    /// `after_training_exp` (default: nothing); e.g. `DER` stores samples and their logits.
    fn after_training_exp(&mut self, _state: &mut StrategyState<M>) -> Result<()> {
        Ok(())
    }
    /// Prepares the optimizer (default: built from the recipe on the first experience, or when
    /// `reset_optimizer_state` is set; otherwise kept with its state, as in Avalanche ≥ 0.4).
    fn make_optimizer(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        defaults::make_optimizer(state)
    }
    /// The model's output on `state.mbatch` (default: [`Model::forward`]).
    fn forward(&mut self, state: &mut StrategyState<M>) -> Result<Tensor<2>> {
        defaults::forward(state)
    }
    /// The criterion's loss on `state.mb_output` (default: `state.criterion` vs the targets).
    fn criterion(&mut self, state: &mut StrategyState<M>) -> Result<Tensor<1>> {
        defaults::criterion(state)
    }
    /// Computes `state.grads` from `state.loss`.
    fn backward(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        defaults::backward(state)
    }
    /// Applies `state.grads` to the model with the optimizer at `state.lr`.
    fn optimizer_step(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        defaults::optimizer_step(state)
    }

    /// Saves the steps' own state into a checkpoint (e.g. `Cumulative`'s union of the data
    /// seen). Steps without state return `Ok(())`; the default refuses
    /// ([`ClError::NotCheckpointable`]), so that steps with state are never half-saved.
    fn save_state(&self, _out: &mut StateDict) -> Result<()> {
        Err(ClError::NotCheckpointable {
            component: format!("steps `{}`", crate::config::short_type_name::<Self>()),
            hook: "TemplateSteps::save_state and TemplateSteps::load_state",
        })
    }

    /// Restores what [`save_state`](Self::save_state) saved when a strategy resumes.
    fn load_state(&mut self, _state: &StateDict, _strategy: &StrategyState<M>) -> Result<()> {
        Err(ClError::NotCheckpointable {
            component: format!("steps `{}`", crate::config::short_type_name::<Self>()),
            hook: "TemplateSteps::save_state and TemplateSteps::load_state",
        })
    }
}

/// The template's steps as Avalanche's `SupervisedTemplate` defines them.
#[derive(Debug, Default, Clone, Copy)]
pub struct DefaultSteps;

impl<M: Model> TemplateSteps<M> for DefaultSteps {
    fn save_state(&self, _out: &mut StateDict) -> Result<()> {
        Ok(())
    }

    fn load_state(&mut self, _state: &StateDict, _strategy: &StrategyState<M>) -> Result<()> {
        Ok(())
    }
}

/// The default implementation of each step, callable from overrides.
pub mod defaults {
    use super::*;

    /// The experience's dataset, train view.
    pub fn train_dataset_adaptation<M: Model>(state: &mut StrategyState<M>) -> Result<()> {
        let ds = state.current_experience()?.dataset.train();
        state.adapted_dataset = Some(ds);
        Ok(())
    }

    /// The experience's dataset, eval view.
    pub fn eval_dataset_adaptation<M: Model>(state: &mut StrategyState<M>) -> Result<()> {
        let ds = state.current_experience()?.dataset.eval();
        state.adapted_dataset = Some(ds);
        Ok(())
    }

    /// A shuffled loader of `train_mb_size`, seeded with
    /// [`experience_seed`](StrategyState::experience_seed) (each experience gets its own
    /// reproducible order).
    pub fn make_train_dataloader<M: Model>(state: &mut StrategyState<M>) -> Result<()> {
        let ds = state.adapted_dataset.clone().ok_or(ClError::MissingState("adapted_dataset"))?;
        let config = DataLoaderConfig::train(state.settings().train_mb_size(), state.experience_seed());
        let loader = ClassificationDataLoader::new(ds, config)?;
        state.dataloader = Some(Box::new(loader));
        Ok(())
    }

    /// An in-order loader of `eval_mb_size`.
    pub fn make_eval_dataloader<M: Model>(state: &mut StrategyState<M>) -> Result<()> {
        let ds = state.adapted_dataset.clone().ok_or(ClError::MissingState("adapted_dataset"))?;
        let loader = ClassificationDataLoader::new(ds, DataLoaderConfig::eval(state.settings().eval_mb_size()))?;
        state.dataloader = Some(Box::new(loader));
        Ok(())
    }

    /// Calls [`Model::adaptation`] with the current experience and phase.
    pub fn model_adaptation<M: Model>(state: &mut StrategyState<M>) -> Result<()> {
        let exp = state.experience.take().ok_or(ClError::MissingState("experience"))?;
        let ctx = Adaptation { experience: &exp, training: state.is_training };
        let adapted = state.model_mut().adaptation(&ctx);
        state.experience = Some(exp);
        state.model_adapted = true;
        adapted
    }

    /// Builds the optimizer on the first experience (or every experience with
    /// `reset_optimizer_state`); otherwise keeps it and its state. Burn's optimizers key their
    /// state by parameter id, so after model adaptation the parameters that survive keep their
    /// state (e.g. momentum) and parameters added or grown (new ids, see
    /// [`DynamicModule`](crate::DynamicModule)) start with fresh state, as Avalanche's
    /// `update_optimizer` does. The state of a replaced parameter is never used again; it stays
    /// in the optimizer (a few buffers) until `reset_optimizer_state` rebuilds it.
    pub fn make_optimizer<M: Model>(state: &mut StrategyState<M>) -> Result<()> {
        if state.optimizer.is_none() || state.settings().reset_optimizer_state() {
            state.optimizer = Some(state.settings().optimizer().build());
        }
        Ok(())
    }

    /// [`Model::forward`] of the forward model on the current batch.
    pub fn forward<M: Model>(state: &mut StrategyState<M>) -> Result<Tensor<2>> {
        let batch = state.current_batch()?;
        let model = state.forward_model();
        model.check_batch(batch)?;
        Ok(model.forward(batch))
    }

    /// The strategy's criterion on the output and the batch's targets; a target without an output
    /// unit (e.g. from a plugin's loader) is an error, not an out-of-bounds gather.
    pub fn criterion<M: Model>(state: &mut StrategyState<M>) -> Result<Tensor<1>> {
        let out = state.mb_output.clone().ok_or(ClError::MissingState("mb_output"))?;
        let batch = state.current_batch()?;
        crate::criterion::check_labels(&batch.targets, out.dims()[1])?;
        Ok(state.settings().criterion().loss(out, batch.y.clone()))
    }

    /// Backpropagates `state.loss` into `state.grads`, then adds the closed-form gradients of
    /// the terms added with [`StrategyState::add_loss_with_gradient`].
    pub fn backward<M: Model>(state: &mut StrategyState<M>) -> Result<()> {
        let loss = state.loss.as_ref().ok_or(ClError::MissingState("loss"))?;
        if !loss.is_tracked() {
            // Nothing the loss depends on is trainable: Burn's backward would panic.
            return Err(ClError::InvalidUse(
                "the training loss depends on no trainable parameter: every parameter the forward pass uses is \
                 frozen (cl_core::freeze, a plugin freezing layers, or Param::set_require_grad(false)); leave \
                 some part of the model trainable, or evaluate instead of training"
                    .into(),
            ));
        }
        let grads = loss.backward();
        let mut grads = GradientsParams::from_grads(grads, state.model());
        state.apply_pending_gradients(&mut grads)?;
        state.grads = Some(grads);
        Ok(())
    }

    /// One optimizer update with `state.grads` at `state.lr`.
    pub fn optimizer_step<M: Model>(state: &mut StrategyState<M>) -> Result<()> {
        let grads = state.grads.take().ok_or(ClError::MissingState("grads"))?;
        let lr = state.lr();
        let model = state.take_model();
        let optimizer = match state.optimizer.as_mut() {
            Some(o) => o,
            None => {
                state.put_model(model);
                return Err(ClError::MissingState("optimizer"));
            }
        };
        let model = optimizer.step(lr, model, grads);
        state.put_model(model);
        Ok(())
    }
}
