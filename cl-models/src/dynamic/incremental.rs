//! [`IncrementalClassifier`]: a linear output layer that grows with the classes seen.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Bool, Device, Tensor, TensorData};
use cl_core::checkpoint::StateDict;
use cl_core::config::Validate;
use cl_core::data::MiniBatch;
use cl_core::{Adaptation, ClError, DynamicModule, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::headed::Head;
use crate::simple_mlp::seeded_linear;

dynamic_head_config! {
    /// Configuration of an [`IncrementalClassifier`], with the defaults of Avalanche's
    /// `IncrementalClassifier(in_features, initial_out_features=2, masking=True, mask_value=-1000)`,
    /// plus the seed of the weights (drawn on the host, the same on every backend).
    ///
    /// ```
    /// use cl_core::config::{ConfigFile, Validate};
    /// use cl_models::IncrementalClassifierConfig;
    /// assert!(IncrementalClassifierConfig::new(512).validate().is_ok());
    /// assert_eq!(IncrementalClassifierConfig::from_toml("in_features = 512").unwrap(), IncrementalClassifierConfig::new(512));
    /// let err = IncrementalClassifierConfig::new(0).validate().unwrap_err();
    /// assert_eq!(err.rule(), Some("in_features_positive"));
    /// ```
    IncrementalClassifierConfig,
    seed: "Seed of the initial weights and of the weights added by growth (host ChaCha8; 0)."
}

impl IncrementalClassifierConfig {
    /// Builds the classifier on `device` (after [`validate`](Validate::validate)).
    pub fn init(&self, device: &Device) -> Result<IncrementalClassifier> {
        self.validate()?;
        Ok(self.build(device))
    }

    /// [`init`](Self::init) of a validated configuration.
    pub(crate) fn build(&self, device: &Device) -> IncrementalClassifier {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let linear = seeded_linear(self.in_features, self.initial_out_features, &mut rng, device);
        IncrementalClassifier::from_linear(linear, self.masking, self.mask_value, self.seed)
    }
}

/// A linear classifier that grows to `max(classes seen) + 1` outputs at model adaptation,
/// keeping the weights of the existing units (Avalanche's `IncrementalClassifier`).
///
/// With masking, the outputs of units whose class was never trained on are set to
/// `mask_value`: a class becomes *active* when an experience containing it is adapted to for
/// training; adaptation for evaluation grows the layer but activates nothing, as in Avalanche.
///
/// Growth builds a new weight and bias — old units copied, new units drawn like PyTorch's
/// `Linear` init from a host RNG seeded by the config's seed and the growth count — as new
/// parameters (new [`ParamId`](burn::module::ParamId)s): the optimizer gives them fresh state
/// while the rest of the model keeps its own.
///
/// ```
/// use burn::tensor::Device;
/// use cl_models::IncrementalClassifierConfig;
/// let head = IncrementalClassifierConfig::new(16).init(&Device::flex()).unwrap();
/// assert_eq!(head.num_outputs(), 2);
/// ```
#[derive(Module, Debug)]
pub struct IncrementalClassifier {
    /// The linear layer (`weight` is `[in_features, outputs]`).
    pub classifier: Linear,
    #[module(skip)]
    active_units: Vec<bool>,
    #[module(skip)]
    masking: bool,
    #[module(skip)]
    mask_value: f32,
    #[module(skip)]
    seed: u64,
    #[module(skip)]
    growths: u64,
}

impl IncrementalClassifier {
    /// Wraps an existing `Linear` (its weights are kept); no unit is active yet; units added by
    /// growth are drawn from `seed`. The arguments come from a validated configuration.
    pub(crate) fn from_linear(classifier: Linear, masking: bool, mask_value: f32, seed: u64) -> Self {
        let n = classifier.weight.dims()[1];
        Self { classifier, active_units: vec![false; n], masking, mask_value, seed, growths: 0 }
    }

    /// Number of outputs now.
    pub fn num_outputs(&self) -> usize {
        self.classifier.weight.dims()[1]
    }

    /// Input features.
    pub fn in_features(&self) -> usize {
        self.classifier.weight.dims()[0]
    }

    /// Whether masking is on.
    pub fn masking(&self) -> bool {
        self.masking
    }

    /// The value of masked outputs.
    pub fn mask_value(&self) -> f32 {
        self.mask_value
    }

    /// Which units are active (trained on); inactive ones are masked when masking is on.
    pub fn active_units(&self) -> &[bool] {
        &self.active_units
    }

    /// Grows the layer to `outputs` units (no-op if it has as many already), keeping the old
    /// units' weights.
    pub fn grow(&mut self, outputs: usize) {
        let [d_in, old] = self.classifier.weight.dims();
        if outputs <= old {
            return;
        }
        self.growths += 1;
        let device = self.classifier.weight.val().device();
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ self.growths.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let bound = 1.0 / (d_in as f32).sqrt();
        let old_w = host_values(self.classifier.weight.val());
        let mut w = Vec::with_capacity(d_in * outputs);
        for row in old_w.chunks_exact(old) {
            w.extend_from_slice(row);
            w.extend((old..outputs).map(|_| rng.random_range(-bound..bound)));
        }
        let mut b = match &self.classifier.bias {
            Some(bias) => host_values(bias.val()),
            None => Vec::new(),
        };
        let has_bias = self.classifier.bias.is_some();
        if has_bias {
            b.extend((old..outputs).map(|_| rng.random_range(-bound..bound)));
        }
        self.classifier = Linear {
            weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, [d_in, outputs]), &device)),
            bias: has_bias.then(|| Param::from_tensor(Tensor::from_data(TensorData::new(b, [outputs]), &device))),
        };
        self.active_units.resize(outputs, false);
    }

    /// Marks `classes` active; classes beyond the outputs are ignored (grow first).
    pub fn activate(&mut self, classes: &[u32]) {
        for &c in classes {
            if let Some(unit) = self.active_units.get_mut(c as usize) {
                *unit = true;
            }
        }
    }

    /// Logits `[batch, outputs]`, masked if masking is on.
    pub fn forward_features(&self, features: Tensor<2>) -> Tensor<2> {
        let out = self.classifier.forward(features);
        if self.masking { apply_mask(out, &self.active_units, self.mask_value) } else { out }
    }
}

/// What an [`IncrementalClassifier`]'s checkpoint must agree with: the parts of its
/// configuration that survive growth.
#[derive(Serialize)]
struct Layout {
    in_features: usize,
    bias: bool,
    masking: bool,
    mask_value: f32,
    seed: u64,
}

impl IncrementalClassifier {
    fn layout(&self) -> Layout {
        Layout {
            in_features: self.in_features(),
            bias: self.classifier.bias.is_some(),
            masking: self.masking,
            mask_value: self.mask_value,
            seed: self.seed,
        }
    }

    /// Saves what the parameters do not hold: the number of outputs, the active units and the
    /// growth count (the seed of the next growth), with the configuration to check on load.
    pub(crate) fn save_layout(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.layout())?;
        out.put("outputs", &self.num_outputs())?;
        out.put("active_units", &self.active_units)?;
        out.put("growths", &self.growths)
    }

    /// Restores [`save_layout`](Self::save_layout)'s state on a classifier built with the same
    /// configuration: re-grows the layer to the saved outputs (placeholder values, for the
    /// parameter record to overwrite), then the mask and the growth count.
    pub(crate) fn load_layout(&mut self, state: &StateDict) -> Result<()> {
        state.check_config("config", &self.layout())?;
        let outputs: usize = state.get("outputs")?;
        let active: Vec<bool> = state.get("active_units")?;
        let growths: u64 = state.get("growths")?;
        let now = self.num_outputs();
        if outputs < now {
            return Err(ClError::CheckpointMismatch {
                path: Default::default(),
                what: format!("{} outputs", state.component()),
                checkpoint: outputs.to_string(),
                current: format!("{now} (a fresh classifier of this configuration; it cannot shrink)"),
            });
        }
        if active.len() != outputs {
            return Err(ClError::CheckpointEntry {
                component: state.component().to_string(),
                key: "active_units".into(),
                reason: format!("{} units for {outputs} outputs", active.len()),
            });
        }
        if outputs > now {
            let device = self.classifier.weight.val().device();
            let d_in = self.in_features();
            let has_bias = self.classifier.bias.is_some();
            self.classifier = Linear {
                weight: Param::from_tensor(Tensor::zeros([d_in, outputs], &device)),
                bias: has_bias.then(|| Param::from_tensor(Tensor::zeros([outputs], &device))),
            };
        }
        self.active_units = active;
        self.growths = growths;
        Ok(())
    }
}

/// Sets the outputs of inactive units (and of units beyond `active`) to `value`.
pub(crate) fn apply_mask(out: Tensor<2>, active: &[bool], value: f32) -> Tensor<2> {
    let [batch, n] = out.dims();
    let inactive: Vec<bool> = (0..n).map(|j| !active.get(j).copied().unwrap_or(false)).collect();
    if !inactive.iter().any(|&m| m) {
        return out;
    }
    let mask =
        Tensor::<1, Bool>::from_data(TensorData::new(inactive, [n]), &out.device()).reshape([1, n]).expand([batch, n]);
    out.mask_fill(mask, value)
}

/// The values of a float tensor on the host.
pub(crate) fn host_values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().expect("a float tensor converts to f32")
}

/// An error if a class label is beyond the experience's benchmark classes (a classifier would
/// otherwise grow to it: a corrupt label like `u32::MAX` would ask for billions of units).
pub(crate) fn check_classes(ctx: &Adaptation<'_>, classes: &[u32]) -> Result<()> {
    let exp = ctx.experience;
    match classes.iter().max() {
        Some(&max) if exp.n_classes > 0 && max as usize >= exp.n_classes => {
            Err(ClError::ClassOutOfRange { class: max, n_classes: exp.n_classes, experience: exp.current_experience })
        }
        _ => Ok(()),
    }
}

impl IncrementalClassifier {
    /// Grows to `max(classes) + 1` and, when `training` and masking, activates `classes`.
    pub(crate) fn adapt_to(&mut self, classes: &[u32], training: bool) {
        if let Some(&max) = classes.iter().max() {
            self.grow(max as usize + 1);
        }
        if self.masking && training {
            self.activate(classes);
        }
    }
}

impl DynamicModule for IncrementalClassifier {
    fn adaptation(&mut self, ctx: &Adaptation<'_>) -> Result<()> {
        let classes = &ctx.experience.classes_in_this_experience;
        check_classes(ctx, classes)?;
        self.adapt_to(classes, ctx.training);
        Ok(())
    }
}

impl Head for IncrementalClassifier {
    fn adaptation(&mut self, ctx: &Adaptation<'_>) -> Result<()> {
        DynamicModule::adaptation(self, ctx)
    }

    fn forward(&self, features: Tensor<2>, _batch: &MiniBatch) -> Tensor<2> {
        self.forward_features(features)
    }

    fn num_outputs(&self) -> Option<usize> {
        Some(IncrementalClassifier::num_outputs(self))
    }

    fn adapts_outputs(&self) -> bool {
        true
    }

    /// The outputs, the active units and the growth count (see [`Head::save_extra_state`]).
    fn save_extra_state(&self, out: &mut StateDict) -> Result<()> {
        self.save_layout(out)
    }

    /// Re-grows to the saved outputs and restores the mask and the growth count; a checkpoint
    /// of a classifier with another configuration (inputs, bias, masking, mask value, seed) is
    /// [`ClError::CheckpointMismatch`].
    fn load_extra_state(&mut self, state: &StateDict) -> Result<()> {
        self.load_layout(state)
    }
}
