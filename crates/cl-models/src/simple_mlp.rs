//! [`SimpleMLP`]: Avalanche's `SimpleMLP`.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
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
        let mut hidden = Vec::with_capacity(self.hidden_layers);
        let mut d_in = self.input_size;
        for i in 0..self.hidden_layers {
            hidden.push(HiddenLayer {
                linear: LinearConfig::new(d_in, self.hidden_size).init(device),
                dropout: SeededDropout::new(self.drop_rate, i as u64),
            });
            d_in = self.hidden_size;
        }
        Ok(SimpleMLP {
            features: hidden,
            classifier: LinearConfig::new(self.hidden_size, self.num_classes).init(device),
            input_size: self.input_size,
            num_classes: self.num_classes,
        })
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
        self.classifier.forward(self.features(x))
    }
}

impl Model for SimpleMLP {
    fn forward(&self, batch: &MiniBatch) -> Tensor<2> {
        self.forward_tensor(batch.x.clone())
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
