//! [`HeadedModel`]: a feature extractor ([`Backbone`]) followed by a classifier ([`Head`]).
//!
//! The split lets one trunk carry any output layer: a plain `Linear` (the static models), an
//! [`IncrementalClassifier`](crate::IncrementalClassifier) that grows with the classes seen, a
//! [`MultiHeadClassifier`](crate::MultiHeadClassifier) with one head per task, or an
//! [`NcmClassifier`](crate::NcmClassifier). [`HeadedModel::as_multitask`] turns a single-head
//! model into a multi-task one (Avalanche's `as_multitask`).

use std::collections::BTreeMap;

use burn::module::{Module, ModuleDisplay};
use burn::nn::Linear;
use burn::tensor::Tensor;
#[allow(unused_imports)] // for the docs
use cl_core::DynamicModule;
use cl_core::checkpoint::StateDict;
use cl_core::config::Validate;
use cl_core::data::MiniBatch;
use cl_core::{Adaptation, Model, Result};

use crate::dynamic::{IncrementalClassifier, IncrementalClassifierConfig, MultiHeadClassifier, MultiHeadConfig};

/// The feature extractor of a [`HeadedModel`]: maps a batch to `[batch, feature_size]`.
pub trait Backbone: Module + ModuleDisplay + 'static {
    /// The features `[batch, feature_size]` of a batch.
    fn embed(&self, batch: &MiniBatch) -> Tensor<2>;

    /// Width of the features.
    fn feature_size(&self) -> usize;

    /// Values per sample the backbone expects, if fixed (checked by the strategy).
    fn input_size(&self) -> Option<usize> {
        None
    }

    /// Checks the shape of one sample; see [`Model::check_sample_shape`].
    fn check_sample_shape(&self, sample_shape: &[usize]) -> std::result::Result<(), String> {
        let len: usize = sample_shape.iter().product();
        match self.input_size() {
            Some(n) if n != len => {
                Err(format!("the model expects {n} input values per sample; build it with input_size = {len}"))
            }
            _ => Ok(()),
        }
    }

    /// Seeds the backbone's own randomness (dropout masks).
    fn seed(&mut self, _seed: u64) {}

    /// Saves the backbone's state that is not in its parameters (see
    /// [`Model::save_extra_state`]); nothing by default (the backbones of `cl-models` save their
    /// dropout layers' mask streams).
    fn save_extra_state(&self, _out: &mut StateDict) -> Result<()> {
        Ok(())
    }

    /// Restores [`save_extra_state`](Self::save_extra_state)'s state before the parameters are
    /// loaded (see [`Model::load_extra_state`]); nothing by default.
    fn load_extra_state(&mut self, _state: &StateDict) -> Result<()> {
        Ok(())
    }
}

/// The output layer of a [`HeadedModel`]: maps features to logits, possibly by task.
pub trait Head: Module + ModuleDisplay + 'static {
    /// Model adaptation of the head (dynamic heads grow here; see [`DynamicModule`]).
    fn adaptation(&mut self, _ctx: &Adaptation<'_>) -> Result<()> {
        Ok(())
    }

    /// Checks the batch's task labels before a forward pass (see [`Model::check_batch`]).
    fn check_batch(&self, _batch: &MiniBatch) -> Result<()> {
        Ok(())
    }

    /// Logits `[batch, outputs]` of the features of `batch` (the batch gives the task labels).
    fn forward(&self, features: Tensor<2>, batch: &MiniBatch) -> Tensor<2>;

    /// The logits of every task head, by task label, for multi-task heads (see
    /// [`Model::forward_all_tasks`]); `None` by default.
    fn forward_all_tasks(&self, _features: Tensor<2>) -> Option<BTreeMap<u32, Tensor<2>>> {
        None
    }

    /// Number of outputs now (for a multi-head classifier: the widest head).
    fn num_outputs(&self) -> Option<usize>;

    /// Whether the head grows with the classes seen (see [`Model::adapts_outputs`]).
    fn adapts_outputs(&self) -> bool {
        false
    }

    /// Saves the head's state that is not in its parameters: the layout of a dynamic head (its
    /// outputs, heads by task, masks), class means (see [`Model::save_extra_state`]). Nothing by
    /// default (a fixed head such as `Linear`); a head with such state must implement both hooks,
    /// or a resumed run would silently differ.
    fn save_extra_state(&self, _out: &mut StateDict) -> Result<()> {
        Ok(())
    }

    /// Restores [`save_extra_state`](Self::save_extra_state)'s state on a head built with the
    /// same configuration, *before* the parameters are loaded: a dynamic head re-grows here to
    /// the saved shapes (see [`Model::load_extra_state`]). Nothing by default.
    fn load_extra_state(&mut self, _state: &StateDict) -> Result<()> {
        Ok(())
    }
}

impl Head for Linear {
    fn forward(&self, features: Tensor<2>, _batch: &MiniBatch) -> Tensor<2> {
        Linear::forward(self, features)
    }

    fn num_outputs(&self) -> Option<usize> {
        Some(self.weight.dims()[1])
    }
}

/// A [`Backbone`] (`features`) followed by a [`Head`] (`classifier`) — the parameter paths
/// `features.*` and `classifier.*` follow Avalanche's models, so plugins that name a layer
/// (CWR*'s `classifier`) find it.
///
/// ```
/// use burn::tensor::Device;
/// use cl_models::{MtSimpleMlp, SimpleMlpConfig};
/// let device = Device::flex();
/// // Avalanche's `as_multitask(SimpleMLP(...), "classifier")`: the old classifier becomes
/// // the head of task 0, a head per new task label is added by model adaptation.
/// let model: MtSimpleMlp = SimpleMlpConfig::new().with_num_classes(2).init(&device).unwrap().as_multitask();
/// assert_eq!(model.classifier.num_heads(), 1);
/// ```
#[derive(Module, Debug)]
pub struct HeadedModel<B: Module, H: Module> {
    /// The feature extractor.
    pub features: B,
    /// The output layer.
    pub classifier: H,
}

impl<B: Backbone, H: Head> HeadedModel<B, H> {
    /// A model from its two parts.
    pub fn new(features: B, classifier: H) -> Self {
        Self { features, classifier }
    }
}

impl<B: Backbone> HeadedModel<B, Linear> {
    /// Replaces the linear classifier by a [`MultiHeadClassifier`] whose head for task 0 is the
    /// old classifier (weights kept) — Avalanche's `as_multitask`. Heads for other task labels
    /// are created by model adaptation, with `initial_out_features` = the old output width,
    /// masking on and `mask_value = -1000` as Avalanche's defaults, their weights drawn from
    /// seed 0 (see [`as_multitask_with`](Self::as_multitask_with) to choose).
    pub fn as_multitask(self) -> HeadedModel<B, MultiHeadClassifier> {
        let width = self.classifier.weight.dims()[1];
        let config = MultiHeadConfig::new(self.features.feature_size()).with_initial_out_features(width);
        self.into_multitask(config)
    }

    /// [`as_multitask`](Self::as_multitask) with the configuration of the heads to come (after
    /// [`validate`](Validate::validate); `in_features` is the backbone's feature size whatever
    /// the config says).
    pub fn as_multitask_with(self, config: MultiHeadConfig) -> Result<HeadedModel<B, MultiHeadClassifier>> {
        let config = config.with_in_features(self.features.feature_size());
        config.validate()?;
        Ok(self.into_multitask(config))
    }

    fn into_multitask(self, config: MultiHeadConfig) -> HeadedModel<B, MultiHeadClassifier> {
        let (masking, mask_value, seed) = (false, config.mask_value, config.seed);
        let first = IncrementalClassifier::from_linear(self.classifier, masking, mask_value, seed);
        HeadedModel { features: self.features, classifier: MultiHeadClassifier::from_first_head(config, first) }
    }

    /// Replaces the linear classifier by an [`IncrementalClassifier`] starting from its weights,
    /// with Avalanche's defaults (masking on, `mask_value = -1000`); units added by growth are
    /// drawn from seed 0 (see [`as_incremental_with`](Self::as_incremental_with) to choose).
    pub fn as_incremental(self) -> HeadedModel<B, IncrementalClassifier> {
        let (masking, mask_value) = (crate::dynamic::default_masking(), crate::dynamic::default_mask_value());
        let classifier = IncrementalClassifier::from_linear(self.classifier, masking, mask_value, 0);
        HeadedModel { features: self.features, classifier }
    }

    /// [`as_incremental`](Self::as_incremental) with the masking, mask value and seed of
    /// `config` (after [`validate`](Validate::validate); `in_features` and
    /// `initial_out_features` are the classifier's whatever the config says).
    pub fn as_incremental_with(
        self,
        config: IncrementalClassifierConfig,
    ) -> Result<HeadedModel<B, IncrementalClassifier>> {
        let [d_in, d_out] = self.classifier.weight.dims();
        let config = config.with_in_features(d_in).with_initial_out_features(d_out);
        config.validate()?;
        let classifier =
            IncrementalClassifier::from_linear(self.classifier, config.masking, config.mask_value, config.seed);
        Ok(HeadedModel { features: self.features, classifier })
    }
}

impl<B: Backbone, H: Head> Model for HeadedModel<B, H> {
    fn forward(&self, batch: &MiniBatch) -> Tensor<2> {
        self.classifier.forward(self.features.embed(batch), batch)
    }

    fn features(&self, batch: &MiniBatch) -> Option<Tensor<2>> {
        Some(self.features.embed(batch))
    }

    fn forward_all_tasks(&self, batch: &MiniBatch) -> Option<BTreeMap<u32, Tensor<2>>> {
        self.classifier.forward_all_tasks(self.features.embed(batch))
    }

    fn num_outputs(&self) -> Option<usize> {
        self.classifier.num_outputs()
    }

    fn adapts_outputs(&self) -> bool {
        self.classifier.adapts_outputs()
    }

    fn input_size(&self) -> Option<usize> {
        self.features.input_size()
    }

    fn check_sample_shape(&self, sample_shape: &[usize]) -> std::result::Result<(), String> {
        self.features.check_sample_shape(sample_shape)
    }

    fn seed(&mut self, seed: u64) {
        self.features.seed(seed);
    }

    fn adaptation(&mut self, ctx: &Adaptation<'_>) -> Result<()> {
        Head::adaptation(&mut self.classifier, ctx)
    }

    fn check_batch(&self, batch: &MiniBatch) -> Result<()> {
        self.classifier.check_batch(batch)
    }

    /// The backbone's extra state under `features` and the head's under `classifier` (each a
    /// nested dictionary; empty for parts without such state).
    fn save_extra_state(&self, out: &mut StateDict) -> Result<()> {
        let mut features = StateDict::new(format!("{} `features`", out.component()));
        self.features.save_extra_state(&mut features)?;
        out.put_dict("features", features);
        let mut classifier = StateDict::new(format!("{} `classifier`", out.component()));
        self.classifier.save_extra_state(&mut classifier)?;
        out.put_dict("classifier", classifier);
        Ok(())
    }

    fn load_extra_state(&mut self, state: &StateDict) -> Result<()> {
        self.features.load_extra_state(state.dict("features")?)?;
        self.classifier.load_extra_state(state.dict("classifier")?)
    }
}
