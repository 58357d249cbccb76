//! [`SimpleMlp`]: Avalanche's `SimpleMlp`.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use cl_core::{ClError, MiniBatch, Model, Result};

use crate::dropout::SeededDropout;
use crate::dynamic::{IncrementalClassifier, IncrementalClassifierConfig, MultiHeadClassifier, MultiHeadConfig};
use crate::headed::{Backbone, HeadedModel};

/// Configuration of [`SimpleMlp`], with Avalanche's defaults.
///
/// ```
/// use cl_models::SimpleMlpConfig;
/// let config = SimpleMlpConfig::new().with_num_classes(10).with_hidden_size(256);
/// assert!(config.validate().is_ok());
/// assert!(SimpleMlpConfig::new().with_drop_rate(1.5).validate().is_err());
/// ```
#[derive(Config, Debug)]
pub struct SimpleMlpConfig {
    /// Output units.
    #[config(default = 10)]
    pub num_classes: usize,
    /// Input features (28 × 28 for MNIST).
    #[config(default = 784)]
    pub input_size: usize,
    /// Units per hidden layer.
    #[config(default = 512)]
    pub hidden_size: usize,
    /// Number of hidden layers.
    #[config(default = 1)]
    pub hidden_layers: usize,
    /// Dropout probability after each hidden layer.
    #[config(default = 0.5)]
    pub drop_rate: f64,
    /// Seed of the initial weights, drawn on the host (ChaCha8) so that the same seed gives the
    /// same weights on every backend and whatever else uses the backend's global RNG (e.g.
    /// tests running in parallel); `None` draws them from the device's RNG (`Device::seed`).
    #[config(default = "Some(0)")]
    pub seed: Option<u64>,
}

impl SimpleMlpConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        for (field, v) in [
            ("num_classes", self.num_classes),
            ("input_size", self.input_size),
            ("hidden_size", self.hidden_size),
            ("hidden_layers", self.hidden_layers),
        ] {
            if v == 0 {
                return Err(ClError::config(field, "must be at least 1"));
            }
        }
        if !(0.0..1.0).contains(&self.drop_rate) {
            return Err(ClError::config("drop_rate", format!("{} is not in [0, 1)", self.drop_rate)));
        }
        Ok(())
    }

    /// Builds the model on `device`. Layers use PyTorch's default initialisation for `Linear`
    /// (Kaiming-uniform with a = √5 for weights, uniform ±1/√fan_in for biases), which is also
    /// Burn's `LinearConfig` default.
    pub fn init(&self, device: &Device) -> Result<SimpleMlp> {
        self.validate()?;
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
        Ok(SimpleMlp {
            features: hidden,
            classifier: linear(self.hidden_size, self.num_classes),
            input_size: self.input_size,
            num_classes: self.num_classes,
        })
    }
}

impl SimpleMlpConfig {
    /// Avalanche's `MtSimpleMlp(input_size, hidden_size)`: the trunk of this configuration and a
    /// `MultiHeadClassifier(hidden_size)` with Avalanche's defaults (heads of 2 outputs, masking
    /// on, `mask_value = -1000`); `num_classes` is not used. Head weights are drawn from the
    /// config's seed (+1; seed 0 without one).
    ///
    /// ```
    /// use burn::tensor::Device;
    /// let model = cl_models::SimpleMlpConfig::new().init_multitask(&Device::flex()).unwrap();
    /// assert_eq!(model.classifier.task_labels(), &[0]);
    /// assert_eq!(model.classifier.head(0).unwrap().num_outputs(), 2);
    /// ```
    pub fn init_multitask(&self, device: &Device) -> Result<MtSimpleMlp> {
        let trunk = self.init(device)?.into_headed().features;
        let seed = self.seed.map_or(0, |s| s.wrapping_add(1));
        let head = MultiHeadConfig::new(self.hidden_size).with_seed(seed).init(device)?;
        Ok(HeadedModel::new(trunk, head))
    }

    /// The trunk of this configuration with Avalanche's
    /// `IncrementalClassifier(hidden_size)` (2 initial outputs, masking on); `num_classes` is
    /// not used. Weights are drawn from the config's seed (+1; seed 0 without one).
    pub fn init_incremental(&self, device: &Device) -> Result<IncrementalMlp> {
        let trunk = self.init(device)?.into_headed().features;
        let seed = self.seed.map_or(0, |s| s.wrapping_add(1));
        let head = IncrementalClassifierConfig::new(self.hidden_size).with_seed(seed).init(device)?;
        Ok(HeadedModel::new(trunk, head))
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
/// `SimpleMlp(num_classes=10, input_size=784, hidden_size=512, hidden_layers=1, drop_rate=0.5)`.
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
        self.features.iter().fold(x, |x, layer| layer.forward(x))
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
        HeadedModel::new(
            MlpTrunk { layers: self.features, input_size: self.input_size, hidden_size },
            self.classifier,
        )
    }

    /// Avalanche's `as_multitask(model, "classifier")`: the classifier becomes the head of task
    /// 0 of a [`MultiHeadClassifier`](crate::MultiHeadClassifier); see
    /// [`HeadedModel::as_multitask`].
    pub fn as_multitask(self) -> MtSimpleMlp {
        self.into_headed().as_multitask()
    }

    /// The network with an [`IncrementalClassifier`](crate::IncrementalClassifier) (masking on)
    /// starting from the current classifier's weights; growth draws from `seed`.
    pub fn as_incremental(self, seed: u64) -> IncrementalMlp {
        self.into_headed().as_incremental(seed)
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

impl Backbone for MlpTrunk {
    fn embed(&self, batch: &MiniBatch) -> Tensor<2> {
        self.layers.iter().fold(batch.x.clone(), |x, layer| layer.forward(x))
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
}

/// Avalanche's `MtSimpleMlp`: the [`SimpleMlp`] trunk and a
/// [`MultiHeadClassifier`](crate::MultiHeadClassifier) (one head per task label).
pub type MtSimpleMlp = HeadedModel<MlpTrunk, MultiHeadClassifier>;

/// The [`SimpleMlp`] trunk with an [`IncrementalClassifier`](crate::IncrementalClassifier) that
/// grows with the classes seen.
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
}
