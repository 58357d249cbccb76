//! [`StorageContext`]: what a storage policy sees of the strategy, and [`InferenceModel`], the
//! object-safe view of the model that feature-based selection runs.

use burn::tensor::{Device, Tensor};
use cl_core::data::MiniBatch;
use cl_core::{ClError, Experience, Model, Result, StrategyState};

/// The inference a storage policy may run on the model, object-safe so that policies need no
/// model type parameter. Every [`Model`] is one (blanket impl); give the *evaluation copy*
/// (`state.model().valid()`: no autodiff, dropout off), never the training model.
///
/// Avalanche has no counterpart: its storage policies receive the whole strategy and call the
/// model. The methods are named apart from [`Model::forward`] and [`Model::features`] so that
/// both traits can be in scope without ambiguity.
pub trait InferenceModel {
    /// The logits `[batch, outputs]` of a batch ([`Model::forward`]).
    fn infer_logits(&self, batch: &MiniBatch) -> Tensor<2>;

    /// The penultimate representation `[batch, features]` of a batch ([`Model::features`],
    /// Avalanche's `get_features`), `None` if the model exposes none.
    fn infer_features(&self, batch: &MiniBatch) -> Option<Tensor<2>>;

    /// The model's type name, for error messages.
    fn model_name(&self) -> &'static str;
}

impl<M: Model> InferenceModel for M {
    fn infer_logits(&self, batch: &MiniBatch) -> Tensor<2> {
        Model::forward(self, batch)
    }

    fn infer_features(&self, batch: &MiniBatch) -> Option<Tensor<2>> {
        Model::features(self, batch)
    }

    fn model_name(&self) -> &'static str {
        cl_core::config::short_type_name::<M>()
    }
}

/// What a [`StoragePolicy`](super::StoragePolicy) update sees (Avalanche passes the whole
/// strategy): the current experience and, for feature-based selection
/// ([`HerdingSelection`](super::HerdingSelection),
/// [`ClosestToCenterSelection`](super::ClosestToCenterSelection)), the evaluation copy of the
/// model with the device and batch size to run it.
///
/// In a plugin: `StorageContext::from_state(state, &state.model().valid())`. Elsewhere (tests, a
/// memory filled by hand): [`StorageContext::new`] over an experience, plus
/// [`with_model`](Self::with_model) when the policy selects by features.
#[derive(Clone, Copy)]
pub struct StorageContext<'a> {
    experience: &'a Experience,
    model: Option<(&'a dyn InferenceModel, &'a Device)>,
    batch_size: usize,
    seed: u64,
}

impl std::fmt::Debug for StorageContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageContext")
            .field("experience", &self.experience.current_experience)
            .field("stream", &self.experience.origin_stream)
            .field("model", &self.model.map(|(m, _)| m.model_name()))
            .field("batch_size", &self.batch_size)
            .field("seed", &self.seed)
            .finish()
    }
}

impl<'a> StorageContext<'a> {
    /// The default [`batch_size`](Self::batch_size) of a context made by [`new`](Self::new).
    pub const DEFAULT_BATCH_SIZE: usize = 256;

    /// A context over `experience` alone: no model (feature-based selection fails with an error
    /// that names [`with_model`](Self::with_model)), batches of
    /// [`DEFAULT_BATCH_SIZE`](Self::DEFAULT_BATCH_SIZE), seed 0.
    pub fn new(experience: &'a Experience) -> Self {
        Self { experience, model: None, batch_size: Self::DEFAULT_BATCH_SIZE, seed: 0 }
    }

    /// The context of a plugin callback: the state's current experience, `eval_model` (give
    /// `&state.model().valid()`) on the evaluation device, the evaluation mini-batch size
    /// (Avalanche's feature-based selection uses `strategy.eval_mb_size`) and the strategy seed.
    /// An error if no experience is set.
    pub fn from_state<M: Model>(state: &'a StrategyState<M>, eval_model: &'a M) -> Result<Self> {
        let settings = state.settings();
        Ok(Self {
            experience: state.current_experience()?,
            model: Some((eval_model, settings.eval_device())),
            batch_size: settings.eval_mb_size(),
            seed: settings.seed(),
        })
    }

    /// Sets the model feature-based selection runs (an evaluation copy) and the device its
    /// batches are built on.
    pub fn with_model(mut self, model: &'a dyn InferenceModel, device: &'a Device) -> Self {
        self.model = Some((model, device));
        self
    }

    /// Sets the samples per forward pass of feature-based selection (at least 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Sets the seed of the (evaluation) transforms' random draws when batches are built.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The experience being added.
    pub fn experience(&self) -> &'a Experience {
        self.experience
    }

    /// The model and the device of its batches, if the context has one.
    pub fn model(&self) -> Option<(&'a dyn InferenceModel, &'a Device)> {
        self.model
    }

    /// The model and its device, or an error (naming `who`) saying how to provide one.
    pub(crate) fn require_model(&self, who: &str) -> Result<(&'a dyn InferenceModel, &'a Device)> {
        self.model.ok_or_else(|| ClError::Plugin {
            plugin: who.to_string(),
            callback: "make_sorted_indices",
            message: "feature-based selection needs the model: build the StorageContext with \
                      `StorageContext::from_state(state, &state.model().valid())` or `.with_model(..)`"
                .into(),
        })
    }

    /// Samples per forward pass of feature-based selection.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The seed of the transforms' random draws.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}
