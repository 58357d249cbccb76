//! [`SimpleMlp`]: Avalanche's `SimpleMLP`, with its multi-task and incremental variants.

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, rule};
use cl_core::data::MiniBatch;
use cl_core::{Model, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::dropout::SeededDropout;
use crate::dynamic::{IncrementalClassifier, IncrementalClassifierConfig, MultiHeadClassifier, MultiHeadConfig};
use crate::headed::{Backbone, HeadedModel};

/// Configuration of [`SimpleMlp`] (and of [`MtSimpleMlp`] and [`IncrementalMlp`]), with the
/// defaults of Avalanche's
/// `SimpleMLP(num_classes=10, input_size=784, hidden_size=512, hidden_layers=1, drop_rate=0.5)`.
///
/// Differences from Avalanche: `hidden_layers = 0` is rejected (Avalanche builds one hidden
/// layer anyway); the initial weights are drawn from `seed` on the host, so they are the same
/// on every backend.
///
/// In a file every field may be left out (it then has its default); `seed = "device"` is
/// `None` (see [`seed`](Self::seed)).
///
/// ```
/// use cl_core::config::{ConfigFile, Validate};
/// use cl_models::SimpleMlpConfig;
/// let config = SimpleMlpConfig::new().with_num_classes(10).with_hidden_size(256);
/// assert!(config.validate().is_ok());
/// assert_eq!(SimpleMlpConfig::from_toml("hidden_size = 256").unwrap(), config);
/// let err = SimpleMlpConfig::new().with_drop_rate(1.5).validate().unwrap_err();
/// assert_eq!(err.rule(), Some("drop_rate_in_unit_interval"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimpleMlpConfig {
    /// Output units (10).
    pub num_classes: usize,
    /// Input features (784 = 28 × 28, for MNIST).
    pub input_size: usize,
    /// Units per hidden layer (512).
    pub hidden_size: usize,
    /// Number of hidden layers (1).
    pub hidden_layers: usize,
    /// Dropout probability after each hidden layer (0.5).
    pub drop_rate: f64,
    /// Seed of the initial weights (`Some(0)`), drawn on the host (ChaCha8) so that the same seed
    /// gives the same weights on every backend and whatever else uses the backend's global RNG
    /// (e.g. tests running in parallel); `None` draws them from the device's RNG
    /// (`Device::seed`). Written `seed = "device"` in a file for `None`. (TOML holds integers up
    /// to `i64::MAX`: a larger seed serialises to JSON only.)
    #[serde(with = "host_seed")]
    pub seed: Option<u64>,
}

impl Default for SimpleMlpConfig {
    fn default() -> Self {
        Self { num_classes: 10, input_size: 784, hidden_size: 512, hidden_layers: 1, drop_rate: 0.5, seed: Some(0) }
    }
}

impl SimpleMlpConfig {
    /// Avalanche's defaults (the same as [`Default::default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`num_classes`](Self::num_classes).
    pub fn with_num_classes(mut self, num_classes: usize) -> Self {
        self.num_classes = num_classes;
        self
    }

    /// Sets [`input_size`](Self::input_size).
    pub fn with_input_size(mut self, input_size: usize) -> Self {
        self.input_size = input_size;
        self
    }

    /// Sets [`hidden_size`](Self::hidden_size).
    pub fn with_hidden_size(mut self, hidden_size: usize) -> Self {
        self.hidden_size = hidden_size;
        self
    }

    /// Sets [`hidden_layers`](Self::hidden_layers).
    pub fn with_hidden_layers(mut self, hidden_layers: usize) -> Self {
        self.hidden_layers = hidden_layers;
        self
    }

    /// Sets [`drop_rate`](Self::drop_rate).
    pub fn with_drop_rate(mut self, drop_rate: f64) -> Self {
        self.drop_rate = drop_rate;
        self
    }

    /// Sets [`seed`](Self::seed) (`None`: the device's RNG).
    pub fn with_seed(mut self, seed: Option<u64>) -> Self {
        self.seed = seed;
        self
    }
}

impl Validate for SimpleMlpConfig {
    fn validate(&self) -> Result<()> {
        const C: &str = "SimpleMlpConfig";
        rule(C, "num_classes_positive", self.num_classes > 0, || "num_classes must be at least 1".into())?;
        rule(C, "input_size_positive", self.input_size > 0, || "input_size must be at least 1".into())?;
        rule(C, "hidden_size_positive", self.hidden_size > 0, || "hidden_size must be at least 1".into())?;
        rule(C, "hidden_layers_positive", self.hidden_layers > 0, || "hidden_layers must be at least 1".into())?;
        rule(C, "drop_rate_in_unit_interval", drop_rate_ok(self.drop_rate), || {
            format!("drop_rate = {} must be in [0, 1)", self.drop_rate)
        })
    }
}

/// Whether a dropout probability is in `[0, 1)` (rule `drop_rate_in_unit_interval` of the model
/// configs).
pub(crate) fn drop_rate_ok(p: f64) -> bool {
    (0.0..1.0).contains(&p)
}

impl SimpleMlpConfig {
    /// Builds the model on `device` (after [`validate`](Validate::validate)). Layers use
    /// PyTorch's default initialisation for `Linear` (Kaiming-uniform with a = √5 for weights,
    /// uniform ±1/√fan_in for biases), which is also Burn's `LinearConfig` default.
    pub fn init(&self, device: &Device) -> Result<SimpleMlp> {
        self.validate()?;
        Ok(self.build(device))
    }

    /// [`init`](Self::init) of a validated configuration.
    fn build(&self, device: &Device) -> SimpleMlp {
        let mut rng = self.seed.map(ChaCha8Rng::seed_from_u64);
        let mut linear = |d_in: usize, d_out: usize| match rng.as_mut() {
            Some(rng) => seeded_linear(d_in, d_out, rng, device),
            None => LinearConfig::new(d_in, d_out).init(device),
        };
        let mut hidden = Vec::with_capacity(self.hidden_layers);
        let mut d_in = self.input_size;
        for i in 0..self.hidden_layers {
            hidden.push(HiddenLayer {
                linear: linear(d_in, self.hidden_size),
                dropout: SeededDropout::new(self.drop_rate, i as u64),
            });
            d_in = self.hidden_size;
        }
        SimpleMlp {
            features: hidden,
            classifier: linear(self.hidden_size, self.num_classes),
            input_size: self.input_size,
            num_classes: self.num_classes,
        }
    }

    /// The seed of the heads of [`init_multitask`](Self::init_multitask) and
    /// [`init_incremental`](Self::init_incremental): the config's seed + 1, 0 without one.
    fn head_seed(&self) -> u64 {
        self.seed.map_or(0, |s| s.wrapping_add(1))
    }

    /// Avalanche's `MTSimpleMLP(input_size, hidden_size)`: the trunk of this configuration and a
    /// `MultiHeadClassifier(hidden_size)` with Avalanche's defaults (heads of 2 outputs, masking
    /// on, `mask_value = -1000`); `num_classes` is not used. Head weights are drawn from the
    /// config's seed + 1 (seed 0 without one).
    ///
    /// ```
    /// use burn::tensor::Device;
    /// let model = cl_models::SimpleMlpConfig::new().init_multitask(&Device::flex()).unwrap();
    /// assert_eq!(model.classifier.task_labels(), &[0]);
    /// assert_eq!(model.classifier.head(0).unwrap().num_outputs(), 2);
    /// ```
    pub fn init_multitask(&self, device: &Device) -> Result<MtSimpleMlp> {
        self.validate()?;
        let trunk = self.build(device).into_headed().features;
        let head = MultiHeadConfig::new(self.hidden_size).with_seed(self.head_seed()).build(device);
        Ok(HeadedModel::new(trunk, head))
    }

    /// Avalanche's `SCRModel(feature_extractor, projection)` over this configuration's trunk: a
    /// [`ProjectionHead`](crate::ProjectionHead) of `hidden_size` hidden units and
    /// `projection_size` outputs on the normalised features (`num_classes` is not used); head
    /// weights drawn from the config's seed + 1 (seed 0 without one).
    ///
    /// ```
    /// use burn::tensor::Device;
    /// let model = cl_models::SimpleMlpConfig::new().init_scr(128, &Device::flex()).unwrap();
    /// assert_eq!(model.classifier.output_size(), 128);
    /// ```
    pub fn init_scr(&self, projection_size: usize, device: &Device) -> Result<crate::ScrMlp> {
        self.validate()?;
        rule("SimpleMlpConfig", "projection_size_positive", projection_size > 0, || {
            "the projection of an SCR model needs at least 1 output".into()
        })?;
        let trunk = self.build(device).into_headed().features;
        let head =
            crate::ProjectionHead::new(self.hidden_size, self.hidden_size, projection_size, self.head_seed(), device);
        Ok(HeadedModel::new(trunk, head))
    }

    /// The trunk of this configuration with Avalanche's `IncrementalClassifier(hidden_size)`
    /// (2 initial outputs, masking on); `num_classes` is not used. Weights are drawn from the
    /// config's seed + 1 (seed 0 without one).
    pub fn init_incremental(&self, device: &Device) -> Result<IncrementalMlp> {
        self.validate()?;
        let trunk = self.build(device).into_headed().features;
        let head = IncrementalClassifierConfig::new(self.hidden_size).with_seed(self.head_seed()).build(device);
        Ok(HeadedModel::new(trunk, head))
    }
}

/// Serde of [`SimpleMlpConfig::seed`]: an integer, or `"device"` (also JSON's `null`) for `None`
/// — TOML has no null, and a missing field means the default `Some(0)`.
pub(crate) mod host_seed {
    use std::fmt;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    const DEVICE: &str = "device";

    pub fn serialize<S: Serializer>(seed: &Option<u64>, serializer: S) -> Result<S::Ok, S::Error> {
        match seed {
            Some(seed) => serializer.serialize_u64(*seed),
            None => serializer.serialize_str(DEVICE),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
        deserializer.deserialize_any(SeedVisitor)
    }

    struct SeedVisitor;

    impl<'de> Visitor<'de> for SeedVisitor {
        type Value = Option<u64>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a seed (an integer >= 0) or \"{DEVICE}\" (the device's RNG)")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v).map(Some).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if v == DEVICE { Ok(None) } else { Err(E::invalid_value(de::Unexpected::Str(v), &self)) }
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }
}

/// A `Linear` with PyTorch's default initialisation drawn from `rng`: weight and bias uniform
/// in ±1/√d_in (Kaiming-uniform with a = √5 for the weight). Burn stores the weight
/// `[d_in, d_out]`.
pub fn seeded_linear(d_in: usize, d_out: usize, rng: &mut ChaCha8Rng, device: &Device) -> Linear {
    let bound = 1.0 / (d_in as f32).sqrt();
    let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-bound..bound)).collect() };
    let weight = draw(d_in * d_out);
    let bias = draw(d_out);
    Linear {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(weight, [d_in, d_out]), device)),
        bias: Some(Param::from_tensor(Tensor::from_data(TensorData::new(bias, [d_out]), device))),
    }
}

/// Linear → ReLU → Dropout.
#[derive(Module, Debug)]
pub struct HiddenLayer {
    /// The linear layer.
    pub linear: Linear,
    /// Dropout after the activation.
    pub dropout: SeededDropout,
}

impl HiddenLayer {
    /// Applies the layer.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.dropout.forward(relu(self.linear.forward(x)))
    }
}

/// Multi-layer perceptron: hidden layers (`features`) and a linear `classifier`, as Avalanche's
/// `SimpleMLP(num_classes=10, input_size=784, hidden_size=512, hidden_layers=1, drop_rate=0.5)`;
/// built by [`SimpleMlpConfig::init`].
#[doc(alias = "SimpleMLP")]
#[derive(Module, Debug)]
pub struct SimpleMlp {
    /// The hidden layers.
    pub features: Vec<HiddenLayer>,
    /// The output layer.
    pub classifier: Linear,
    input_size: usize,
    num_classes: usize,
}

impl SimpleMlp {
    /// The hidden representation of flattened inputs `[batch, input_size]`.
    pub fn features(&self, x: Tensor<2>) -> Tensor<2> {
        let out = self.features.iter().fold(x, |x, layer| layer.forward(x));
        crate::passes::record(out.dims()[0], out.is_tracked());
        out
    }

    /// Logits of flattened inputs `[batch, input_size]`.
    pub fn forward_tensor(&self, x: Tensor<2>) -> Tensor<2> {
        self.classifier.forward(SimpleMlp::features(self, x))
    }
}

impl SimpleMlp {
    /// The same network as a [`HeadedModel`] of an [`MlpTrunk`] and a `Linear` classifier
    /// (weights kept), to swap the classifier.
    pub fn into_headed(self) -> HeadedModel<MlpTrunk, Linear> {
        let hidden_size = self.classifier.weight.dims()[0];
        HeadedModel::new(MlpTrunk { layers: self.features, input_size: self.input_size, hidden_size }, self.classifier)
    }

    /// Avalanche's `as_multitask(model, "classifier")`: the classifier becomes the head of task
    /// 0 of a [`MultiHeadClassifier`](crate::MultiHeadClassifier); see
    /// [`HeadedModel::as_multitask`].
    pub fn as_multitask(self) -> MtSimpleMlp {
        self.into_headed().as_multitask()
    }

    /// The network with an [`IncrementalClassifier`](crate::IncrementalClassifier) starting
    /// from the current classifier's weights (Avalanche's defaults: masking on,
    /// `mask_value = -1000`; growth draws from seed 0); see [`HeadedModel::as_incremental`].
    pub fn as_incremental(self) -> IncrementalMlp {
        self.into_headed().as_incremental()
    }
}

/// The hidden layers of a [`SimpleMlp`] as a [`Backbone`]: flattened inputs → features.
#[derive(Module, Debug)]
pub struct MlpTrunk {
    /// Linear → ReLU → Dropout layers.
    pub layers: Vec<HiddenLayer>,
    input_size: usize,
    hidden_size: usize,
}

impl MlpTrunk {
    /// The hidden representation of flattened inputs `[batch, input_size]`.
    pub fn embed_tensor(&self, x: Tensor<2>) -> Tensor<2> {
        let out = self.layers.iter().fold(x, |x, layer| layer.forward(x));
        crate::passes::record(out.dims()[0], out.is_tracked());
        out
    }
}

impl Backbone for MlpTrunk {
    fn embed(&self, batch: &MiniBatch) -> Tensor<2> {
        self.embed_tensor(batch.x.clone())
    }

    fn feature_size(&self) -> usize {
        self.hidden_size
    }

    fn input_size(&self) -> Option<usize> {
        Some(self.input_size)
    }

    fn seed(&mut self, seed: u64) {
        for (i, layer) in self.layers.iter_mut().enumerate() {
            layer.dropout.seed(seed.wrapping_add(i as u64));
        }
    }

    /// The dropout layers' mask streams and probabilities.
    fn save_extra_state(&self, out: &mut StateDict) -> Result<()> {
        save_dropout_states(self.layers.iter().map(|l| &l.dropout), out)
    }

    fn load_extra_state(&mut self, state: &StateDict) -> Result<()> {
        load_dropout_states(self.layers.iter_mut().map(|l| &mut l.dropout), state)
    }
}

/// Saves the dropout layers' mask streams (`dropout_rng`) and probabilities (`dropout_prob`, as
/// bits).
pub(crate) fn save_dropout_states<'a>(
    layers: impl Iterator<Item = &'a SeededDropout>,
    out: &mut StateDict,
) -> Result<()> {
    let (rng, prob): (Vec<u64>, Vec<u64>) = layers.map(|d| (d.rng_state(), d.prob.to_bits())).unzip();
    out.put("dropout_rng", &rng)?;
    out.put("dropout_prob", &prob)
}

/// Restores the mask streams saved under `dropout_rng`, checking their number and the layers'
/// probabilities (a model of another `drop_rate` is another configuration).
pub(crate) fn load_dropout_states<'a>(
    layers: impl ExactSizeIterator<Item = &'a mut SeededDropout>,
    state: &StateDict,
) -> Result<()> {
    let layers: Vec<&mut SeededDropout> = layers.collect();
    let probs: Vec<u64> = layers.iter().map(|d| d.prob.to_bits()).collect();
    let saved_probs: Vec<u64> = state.get("dropout_prob")?;
    if saved_probs != probs {
        let show = |v: &[u64]| format!("{:?}", v.iter().map(|b| f64::from_bits(*b)).collect::<Vec<_>>());
        return Err(cl_core::ClError::CheckpointMismatch {
            path: Default::default(),
            what: format!("{}: dropout probabilities (drop_rate)", state.component()),
            checkpoint: show(&saved_probs),
            current: show(&probs),
        });
    }
    let layers = layers.into_iter();
    let saved: Vec<u64> = state.get("dropout_rng")?;
    if saved.len() != layers.len() {
        return Err(cl_core::ClError::CheckpointMismatch {
            path: Default::default(),
            what: format!("{}: number of dropout layers", state.component()),
            checkpoint: saved.len().to_string(),
            current: layers.len().to_string(),
        });
    }
    for (layer, s) in layers.zip(saved) {
        layer.seed(s);
    }
    Ok(())
}

/// Avalanche's `MTSimpleMLP`: the [`SimpleMlp`] trunk and a
/// [`MultiHeadClassifier`](crate::MultiHeadClassifier) (one head per task label); built by
/// [`SimpleMlpConfig::init_multitask`] or [`SimpleMlp::as_multitask`].
#[doc(alias = "MTSimpleMLP")]
pub type MtSimpleMlp = HeadedModel<MlpTrunk, MultiHeadClassifier>;

/// The [`SimpleMlp`] trunk with an [`IncrementalClassifier`](crate::IncrementalClassifier) that
/// grows with the classes seen; built by [`SimpleMlpConfig::init_incremental`] or
/// [`SimpleMlp::as_incremental`].
pub type IncrementalMlp = HeadedModel<MlpTrunk, IncrementalClassifier>;

impl Model for SimpleMlp {
    fn forward(&self, batch: &MiniBatch) -> Tensor<2> {
        SimpleMlp::forward_tensor(self, batch.x.clone())
    }

    fn features(&self, batch: &MiniBatch) -> Option<Tensor<2>> {
        Some(SimpleMlp::features(self, batch.x.clone()))
    }

    fn num_outputs(&self) -> Option<usize> {
        Some(self.num_classes)
    }

    fn input_size(&self) -> Option<usize> {
        Some(self.input_size)
    }

    fn seed(&mut self, seed: u64) {
        for (i, layer) in self.features.iter_mut().enumerate() {
            layer.dropout.seed(seed.wrapping_add(i as u64));
        }
    }

    /// The dropout layers' mask streams and probabilities (the parameters are in the Burn
    /// record).
    fn save_extra_state(&self, out: &mut StateDict) -> Result<()> {
        save_dropout_states(self.features.iter().map(|l| &l.dropout), out)
    }

    fn load_extra_state(&mut self, state: &StateDict) -> Result<()> {
        load_dropout_states(self.features.iter_mut().map(|l| &mut l.dropout), state)
    }
}
