//! [`MlpVae`]: Avalanche's `MlpVAE` (`avalanche/models/generator.py`), the fully connected
//! variational autoencoder Avalanche's `GenerativeReplay` trains as its default generator, and
//! [`vae_loss`], its `VAE_loss`.
//!
//! Layers as Avalanche builds them from its `MLP` helper (`Linear`, then `BatchNorm1d` and ReLU
//! on every layer but an output one):
//! - encoder: `Linear(input, 400)`, `BatchNorm1d(400)`, LeakyReLU(0.01), `Linear(400, 128)`,
//!   `BatchNorm1d(128)`, ReLU; `calc_mean` and `calc_logvar`: `Linear(128, nhid)`;
//! - decoder: `Linear(nhid, 64)`, `Linear(64, 128)`, `Linear(128, 256)` each with
//!   `BatchNorm1d` and ReLU, `Linear(256, input)`, sigmoid, then
//!   `Normalize(output_mean, output_std)` (Avalanche's hard-coded MNIST statistics 0.1307 /
//!   0.3081, whatever the data);
//! - sampling: `z = mean + ε · 0.5 · exp(logvar)` (Avalanche's `sampling`, kept as it is: the
//!   standard deviation of the usual reparametrisation would be `exp(0.5 · logvar)`).
//!
//! Avalanche's `MlpVAE` also holds a classification head that nothing trains; it is left out.

use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Linear};
use burn::tensor::activation::{leaky_relu, relu, sigmoid};
use burn::tensor::{Device, Distribution, Tensor};
use cl_core::config::Validate;
use cl_core::data::MiniBatch;
use cl_core::{ClError, Model, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::simple_mlp::seeded_linear;

/// The configuration of [`MlpVae`]: Avalanche's `MlpVAE((1, 28, 28), nhid=2)` by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlpVaeConfig {
    /// Input values per sample (default 784).
    pub input_size: usize,
    /// Latent dimensions (default 2, Avalanche's `GenerativeReplay` default).
    pub nhid: usize,
    /// The mean the decoder's output is normalised with (default 0.1307).
    pub output_mean: f64,
    /// The standard deviation the decoder's output is normalised with (default 0.3081).
    pub output_std: f64,
    /// Seed of the initial weights (`None`: the device's generator).
    pub seed: Option<u64>,
}

impl Default for MlpVaeConfig {
    fn default() -> Self {
        Self { input_size: 784, nhid: 2, output_mean: 0.1307, output_std: 0.3081, seed: None }
    }
}

impl MlpVaeConfig {
    /// Sets the latent dimensions.
    pub fn with_nhid(mut self, nhid: usize) -> Self {
        self.nhid = nhid;
        self
    }

    /// Sets the input size.
    pub fn with_input_size(mut self, n: usize) -> Self {
        self.input_size = n;
        self
    }

    /// Sets the seed of the initial weights.
    pub fn with_seed(mut self, seed: Option<u64>) -> Self {
        self.seed = seed;
        self
    }

    /// The VAE, or an error if the configuration breaks a rule.
    pub fn init(&self, device: &Device) -> Result<MlpVae> {
        self.validate()?;
        let mut rng = self.seed.map(ChaCha8Rng::seed_from_u64);
        let mut linear = |d_in: usize, d_out: usize| match rng.as_mut() {
            Some(rng) => seeded_linear(d_in, d_out, rng, device),
            None => burn::nn::LinearConfig::new(d_in, d_out).init(device),
        };
        let norm = |n: usize| BatchNormConfig::new(n).init(device);
        let (n, h) = (self.input_size, self.nhid);
        Ok(MlpVae {
            encoder_in: linear(n, 400),
            encoder_in_norm: norm(400),
            encoder_hidden: linear(400, 128),
            encoder_hidden_norm: norm(128),
            calc_mean: linear(128, h),
            calc_logvar: linear(128, h),
            decoder: vec![linear(h, 64), linear(64, 128), linear(128, 256)],
            decoder_norms: vec![norm(64), norm(128), norm(256)],
            decoder_out: linear(256, n),
            nhid: h,
            output_mean: self.output_mean,
            output_std: self.output_std,
        })
    }
}

impl Validate for MlpVaeConfig {
    /// `input_size_positive`, `nhid_positive`, `output_std_positive`.
    fn validate(&self) -> Result<()> {
        let fail =
            |rule: &'static str, reason: String| Err(ClError::InvalidConfig { config: "MlpVaeConfig", rule, reason });
        if self.input_size == 0 {
            return fail("input_size_positive", "the VAE needs at least one input value".into());
        }
        if self.nhid == 0 {
            return fail("nhid_positive", "the latent space needs at least one dimension".into());
        }
        if !(self.output_std.is_finite() && self.output_std > 0.0 && self.output_mean.is_finite()) {
            return fail(
                "output_std_positive",
                format!("the output normalisation needs a positive std, got {}", self.output_std),
            );
        }
        Ok(())
    }
}

/// Avalanche's `MlpVAE` (see the [module docs](self)).
#[derive(Module, Debug)]
pub struct MlpVae {
    /// Encoder input layer.
    pub encoder_in: Linear,
    /// Its batch normalisation.
    pub encoder_in_norm: BatchNorm,
    /// Encoder hidden layer.
    pub encoder_hidden: Linear,
    /// Its batch normalisation.
    pub encoder_hidden_norm: BatchNorm,
    /// The latent mean.
    pub calc_mean: Linear,
    /// The latent log-variance.
    pub calc_logvar: Linear,
    /// Decoder hidden layers.
    pub decoder: Vec<Linear>,
    /// Their batch normalisations.
    pub decoder_norms: Vec<BatchNorm>,
    /// Decoder output layer.
    pub decoder_out: Linear,
    #[module(skip)]
    nhid: usize,
    #[module(skip)]
    output_mean: f64,
    #[module(skip)]
    output_std: f64,
}

impl MlpVae {
    /// The latent dimensions.
    pub fn nhid(&self) -> usize {
        self.nhid
    }

    /// The latent mean and log-variance of flattened inputs `x` (`[n, input]`).
    pub fn encode(&self, x: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let h = leaky_relu(self.encoder_in_norm.forward(self.encoder_in.forward(x)), 0.01);
        let h = relu(self.encoder_hidden_norm.forward(self.encoder_hidden.forward(h)));
        (self.calc_mean.forward(h.clone()), self.calc_logvar.forward(h))
    }

    /// Decoded samples of latent codes `z` (`[n, nhid]`), flattened, normalised.
    pub fn decode(&self, z: Tensor<2>) -> Tensor<2> {
        let mut h = z;
        for (layer, norm) in self.decoder.iter().zip(&self.decoder_norms) {
            h = relu(norm.forward(layer.forward(h)));
        }
        sigmoid(self.decoder_out.forward(h)).sub_scalar(self.output_mean).div_scalar(self.output_std)
    }

    /// Reconstruction, latent mean and log-variance of `x` (one draw of `ε` from the device's
    /// generator).
    pub fn forward_vae(&self, x: Tensor<2>) -> (Tensor<2>, Tensor<2>, Tensor<2>) {
        let (mean, logvar) = self.encode(x);
        let eps = Tensor::<2>::random(mean.dims(), Distribution::Normal(0.0, 1.0), &mean.device());
        let z = mean.clone() + eps * logvar.clone().exp().mul_scalar(0.5);
        (self.decode(z), mean, logvar)
    }

    /// `n` generated samples (flattened, normalised): the decoder on `z ~ N(0, I)` (Avalanche's
    /// `generate`). Call it on an evaluation copy (batch normalisation with running statistics).
    pub fn generate(&self, n: usize, device: &Device) -> Tensor<2> {
        let z = Tensor::<2>::random([n, self.nhid], Distribution::Normal(0.0, 1.0), device);
        self.decode(z)
    }
}

/// Avalanche's `VAE_loss`: the summed squared reconstruction error plus the KL divergence,
/// `Σ (x̂ − x)² + 0.5 · Σ (−1 − logvar + exp(logvar) + mean²)` (sums over the batch, not means).
pub fn vae_loss(x: Tensor<2>, x_hat: Tensor<2>, mean: Tensor<2>, logvar: Tensor<2>) -> Tensor<1> {
    let reconstruction = (x_hat - x).powi_scalar(2).sum();
    let kl = (logvar.clone().exp() - logvar + mean.powi_scalar(2)).sub_scalar(1.0).sum().mul_scalar(0.5);
    reconstruction + kl
}

impl Model for MlpVae {
    /// The reconstruction of the batch (flattened): the template's "output" while the VAE
    /// trains (its loss is [`vae_loss`]).
    fn forward(&self, batch: &MiniBatch) -> Tensor<2> {
        self.forward_vae(batch.x.clone()).0
    }

    fn input_size(&self) -> Option<usize> {
        Some(self.decoder_out.weight.dims()[1])
    }
}
