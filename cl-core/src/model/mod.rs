//! The [`Model`] trait: what the training loop needs from a network.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::tensor::Tensor;

use crate::checkpoint::StateDict;
use crate::data::MiniBatch;
use crate::error::Result;
use crate::scenario::Experience;

mod freeze;
mod gradients;
mod latent;

pub use freeze::{ModelPart, freeze, frozen_parameters, set_training_flags, set_training_mode, unfreeze};
pub(crate) use gradients::add_flat_gradients;
pub use latent::{BatchRenormSettings, LatentReplay};

/// A classifier the strategies can train: a Burn [`Module`] with a forward pass over
/// [`MiniBatch`]es.
///
/// The batch carries the task labels, so multi-task models can route samples by task; plain
/// models ignore them. `num_outputs` and `input_size` let the strategy check a model against the
/// benchmark before training starts.
///
/// ```ignore
/// #[derive(Module, Debug)]
/// struct Linear1 { fc: burn::nn::Linear }
/// impl Model for Linear1 {
///     fn forward(&self, batch: &MiniBatch) -> Tensor<2> { self.fc.forward(batch.x.clone()) }
///     fn num_outputs(&self) -> Option<usize> { Some(self.fc.weight.dims()[1]) }
/// }
/// ```
pub trait Model: Module + 'static {
    /// Logits `[batch, num_outputs]` for a batch.
    fn forward(&self, batch: &MiniBatch) -> Tensor<2>;

    /// The penultimate representation `[batch, features]` of a batch (the input of the output
    /// layer, Avalanche's `get_features`), if the model exposes one; plugins like LFL and
    /// herding use it. `None` by default.
    fn features(&self, _batch: &MiniBatch) -> Option<Tensor<2>> {
        None
    }

    /// The logits of *every* task head on the batch's inputs, by task label (Avalanche's
    /// `MultiTaskModule.forward_all_tasks`), for multi-task models; `None` (the default) for
    /// single-head models. Multi-task LwF distills each previous head this way.
    fn forward_all_tasks(&self, _batch: &MiniBatch) -> Option<BTreeMap<u32, Tensor<2>>> {
        None
    }

    /// Number of output units (classes) now, if known.
    fn num_outputs(&self) -> Option<usize> {
        None
    }

    /// Whether [`adaptation`](Self::adaptation) grows the outputs to the classes seen
    /// (incremental and multi-head classifiers). The strategy then only requires an output per
    /// class label of the current experience, not one per class of the benchmark.
    fn adapts_outputs(&self) -> bool {
        false
    }

    /// Number of input values per sample the model expects, if fixed.
    fn input_size(&self) -> Option<usize> {
        None
    }

    /// Checks the shape of one sample (e.g. `[1, 28, 28]`) before anything runs; the message of
    /// an `Err` says what the model expects. The default checks [`input_size`](Self::input_size).
    fn check_sample_shape(&self, sample_shape: &[usize]) -> std::result::Result<(), String> {
        let len: usize = sample_shape.iter().product();
        match self.input_size() {
            Some(n) if n != len => {
                Err(format!("the model expects {n} input values per sample; build it with input_size = {len}"))
            }
            _ => Ok(()),
        }
    }

    /// Seeds the model's own random state (e.g. dropout masks); called by the strategy builder
    /// with the strategy's seed. (Initial weights are the model constructor's business: the
    /// models of `cl-models` draw them from a host RNG seeded by their config.)
    fn seed(&mut self, _seed: u64) {}

    /// Model adaptation (Avalanche's `DynamicModule.adaptation`): called by the strategy's
    /// `model_adaptation` step before training and before evaluation on each experience.
    /// Dynamic models grow or add heads here, and forward the call to their dynamic parts
    /// ([`DynamicModule`]).
    fn adaptation(&mut self, _ctx: &Adaptation<'_>) -> Result<()> {
        Ok(())
    }

    /// Checks a batch before the forward pass (called by the strategy each iteration; keep it
    /// cheap, host-side): a multi-head model rejects a task label it has no head for
    /// ([`ClError::UnknownTask`](crate::ClError::UnknownTask)). `Ok` by default.
    fn check_batch(&self, _batch: &MiniBatch) -> Result<()> {
        Ok(())
    }

    /// Saves what a checkpoint needs besides the parameters (PyTorch's `get_extra_state`): the
    /// layout of dynamic parts (classes of an incremental classifier, heads of a multi-head
    /// one, their masks) and any non-parameter state. Nothing by default (a fixed model).
    fn save_extra_state(&self, _out: &mut StateDict) -> Result<()> {
        Ok(())
    }

    /// Restores [`save_extra_state`](Self::save_extra_state)'s state on a model built with the
    /// same configuration, *before* the parameters are loaded: dynamic parts re-grow here so
    /// that the saved parameters fit.
    fn load_extra_state(&mut self, _state: &StateDict) -> Result<()> {
        Ok(())
    }

    /// The model split at a latent layer ([`LatentReplay`]), for AR1's latent replay; `None`
    /// (the default) for models that do not expose one.
    fn latent_replay(&self) -> Option<&dyn LatentReplay> {
        None
    }
}

/// What a model adapts to: the experience, and whether it is about to be trained on or evaluated
/// (Avalanche's `module.training` during `adaptation`). Incremental classifiers grow in both
/// phases but only mark a class as *active* (unmasked) when it is trained on.
#[derive(Debug, Clone, Copy)]
pub struct Adaptation<'a> {
    /// The experience.
    pub experience: &'a Experience,
    /// True before training, false before evaluation.
    pub training: bool,
}

impl<'a> Adaptation<'a> {
    /// Adaptation before training on `experience`.
    pub fn train(experience: &'a Experience) -> Self {
        Self { experience, training: true }
    }

    /// Adaptation before evaluating `experience`.
    pub fn eval(experience: &'a Experience) -> Self {
        Self { experience, training: false }
    }
}

/// A part of a model that changes with the stream (Avalanche's `DynamicModule`): incremental
/// classifiers, multi-head classifiers. A model holding dynamic parts calls their `adaptation`
/// from [`Model::adaptation`], recursively.
///
/// Parameters a dynamic module adds or grows must get new parameter ids (e.g. a new
/// `Param::from_tensor`): Burn's optimizers key their state by id, and the strategy's
/// `make_optimizer` keeps the state of the ids that survive and drops the others.
pub trait DynamicModule {
    /// Adapts the module to the experience; an error for data it cannot adapt to (e.g. a class
    /// label beyond the benchmark's classes).
    fn adaptation(&mut self, ctx: &Adaptation<'_>) -> Result<()>;
}
