//! [`SimpleMLP`]: Avalanche's `SimpleMLP`.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use cl_core::{ClError, MiniBatch, Model, Result};

use crate::dropout::SeededDropout;

/// Configuration of [`SimpleMLP`], with Avalanche's defaults.
///
/// ```
/// use cl_models::SimpleMLPConfig;
/// let config = SimpleMLPConfig::new().with_num_classes(10).with_hidden_size(256);
/// assert!(config.validate().is_ok());
/// assert!(SimpleMLPConfig::new().with_drop_rate(1.5).validate().is_err());
/// ```
#[derive(Config, Debug)]
pub struct SimpleMLPConfig {
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

impl SimpleMLPConfig {
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
    pub fn init(&self, device: &Device) -> Result<SimpleMLP> {
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
        Ok(SimpleMLP {
            features: hidden,
            classifier: linear(self.hidden_size, self.num_classes),
            input_size: self.input_size,
            num_classes: self.num_classes,
        })
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
/// `SimpleMLP(num_classes=10, input_size=784, hidden_size=512, hidden_layers=1, drop_rate=0.5)`.
#[derive(Module, Debug)]
pub struct SimpleMLP {
    /// The hidden layers.
    pub features: Vec<HiddenLayer>,
    /// The output layer.
    pub classifier: Linear,
    input_size: usize,
    num_classes: usize,
}

impl SimpleMLP {
    /// The hidden representation of flattened inputs `[batch, input_size]`.
    pub fn features(&self, x: Tensor<2>) -> Tensor<2> {
        self.features.iter().fold(x, |x, layer| layer.forward(x))
    }

    /// Logits of flattened inputs `[batch, input_size]`.
    pub fn forward_tensor(&self, x: Tensor<2>) -> Tensor<2> {
        self.classifier.forward(SimpleMLP::features(self, x))
    }
}

impl Model for SimpleMLP {
    fn forward(&self, batch: &MiniBatch) -> Tensor<2> {
        SimpleMLP::forward_tensor(self, batch.x.clone())
    }

    fn features(&self, batch: &MiniBatch) -> Option<Tensor<2>> {
        Some(SimpleMLP::features(self, batch.x.clone()))
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
