//! [`LatentCnn`]: a small convolutional network with batch renormalisation, split at a latent
//! layer for AR1's latent replay (the role of Avalanche's `MobilenetV1(latent_layer_num)`).

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, Linear, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, rule};
use cl_core::data::MiniBatch;
use cl_core::{BatchRenormSettings, ClError, LatentReplay, Model, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::batch_renorm::BatchRenorm2d;

/// Configuration of a [`LatentCnn`]: blocks of 3×3 convolution (stride 2, padding 1, no bias)
/// → [`BatchRenorm2d`] → ReLU, the first `lower_channels.len()` below the latent layer, the
/// others above it, then a global average pool and a linear output layer without bias (as
/// Avalanche's `MobilenetV1.output`). The defaults (`[16, 32]` below, `[64, 64]` above, for
/// 1×28×28 images, 10 classes) give latent activations of 32×7×7 per sample.
///
/// ```
/// use burn::tensor::Device;
/// use cl_core::{LatentReplay, Model};
/// use cl_models::LatentCnnConfig;
/// let model = LatentCnnConfig::new().init(&Device::flex())?;
/// let split = model.latent_replay().unwrap();
/// assert_eq!(split.latent_size(), 32 * 7 * 7);
/// assert_eq!(split.lower_layers(), ["lower"]);
/// assert_eq!(split.output_layer(), "output");
/// let err = LatentCnnConfig::new().with_lower_channels(vec![]).validate_config().unwrap_err();
/// assert_eq!(err.rule(), Some("lower_channels_not_empty"));
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LatentCnnConfig {
    /// Output units (10).
    pub num_classes: usize,
    /// The shape of one input sample, `[channels, height, width]` (`[1, 28, 28]`).
    pub input_shape: [usize; 3],
    /// Channels of the blocks below the latent layer (`[16, 32]`; at least one).
    pub lower_channels: Vec<usize>,
    /// Channels of the blocks above it (`[64, 64]`; at least one).
    pub upper_channels: Vec<usize>,
    /// Seed of the initial weights (0), drawn on the host as PyTorch's default initialisation
    /// (uniform in ±1/√fan_in).
    pub seed: u64,
}

impl Default for LatentCnnConfig {
    fn default() -> Self {
        Self {
            num_classes: 10,
            input_shape: [1, 28, 28],
            lower_channels: vec![16, 32],
            upper_channels: vec![64, 64],
            seed: 0,
        }
    }
}

impl LatentCnnConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `num_classes`.
    pub fn with_num_classes(mut self, num_classes: usize) -> Self {
        self.num_classes = num_classes;
        self
    }

    /// Sets `input_shape`.
    pub fn with_input_shape(mut self, input_shape: [usize; 3]) -> Self {
        self.input_shape = input_shape;
        self
    }

    /// Sets `lower_channels`.
    pub fn with_lower_channels(mut self, channels: Vec<usize>) -> Self {
        self.lower_channels = channels;
        self
    }

    /// Sets `upper_channels`.
    pub fn with_upper_channels(mut self, channels: Vec<usize>) -> Self {
        self.upper_channels = channels;
        self
    }

    /// Sets `seed`.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// [`Validate::validate`], spelled out for doc examples.
    pub fn validate_config(&self) -> Result<()> {
        self.validate()
    }

    /// The spatial side after `blocks` stride-2 blocks.
    fn side_after(side: usize, blocks: usize) -> usize {
        (0..blocks).fold(side, |s, _| s.div_ceil(2))
    }

    /// Builds the model on `device` (after [`validate`](Validate::validate)).
    pub fn init(&self, device: &Device) -> Result<LatentCnn> {
        self.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut block = |i: usize, o: usize| ConvBlock {
            conv: seeded_conv(i, o, &mut rng, device),
            norm: BatchRenorm2d::new(o, BatchRenormSettings::default(), device),
        };
        let [c, h, w] = self.input_shape;
        let mut lower = Vec::new();
        let mut prev = c;
        for &o in &self.lower_channels {
            lower.push(block(prev, o));
            prev = o;
        }
        let mut upper = Vec::new();
        for &o in &self.upper_channels {
            upper.push(block(prev, o));
            prev = o;
        }
        let bound = 1.0 / (prev as f32).sqrt();
        let weight: Vec<f32> = (0..prev * self.num_classes).map(|_| rng.random_range(-bound..bound)).collect();
        let output = Linear {
            weight: Param::from_tensor(Tensor::from_data(TensorData::new(weight, [prev, self.num_classes]), device)),
            bias: None,
        };
        let n = self.lower_channels.len();
        let latent_shape =
            [*self.lower_channels.last().expect("validated"), Self::side_after(h, n), Self::side_after(w, n)];
        Ok(LatentCnn { lower, upper, output, input_shape: self.input_shape, latent_shape, features: prev })
    }
}

impl Validate for LatentCnnConfig {
    fn validate(&self) -> Result<()> {
        const C: &str = "LatentCnnConfig";
        rule(C, "num_classes_positive", self.num_classes > 0, || {
            "num_classes is 0: give the number of classes".into()
        })?;
        rule(C, "input_shape_positive", self.input_shape.iter().all(|&d| d > 0), || {
            format!("input_shape {:?} has a zero dimension: give [channels, height, width]", self.input_shape)
        })?;
        rule(C, "lower_channels_not_empty", !self.lower_channels.is_empty(), || {
            "lower_channels is empty: the latent layer is the output of the last lower block, give at least one".into()
        })?;
        rule(C, "upper_channels_not_empty", !self.upper_channels.is_empty(), || {
            "upper_channels is empty: give at least one block above the latent layer".into()
        })?;
        rule(C, "channels_positive", self.lower_channels.iter().chain(&self.upper_channels).all(|&c| c > 0), || {
            "a block has 0 channels".into()
        })
    }
}

/// A 3×3 convolution without bias, PyTorch's default initialisation (uniform in ±1/√fan_in).
fn seeded_conv(d_in: usize, d_out: usize, rng: &mut ChaCha8Rng, device: &Device) -> Conv2d {
    let mut conv = Conv2dConfig::new([d_in, d_out], [3, 3])
        .with_stride([2, 2])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .with_initializer(Initializer::Zeros)
        .init(device);
    let fan_in = d_in * 9;
    let bound = 1.0 / (fan_in as f32).sqrt();
    let weight: Vec<f32> = (0..d_out * fan_in).map(|_| rng.random_range(-bound..bound)).collect();
    conv.weight = Param::from_tensor(Tensor::from_data(TensorData::new(weight, [d_out, d_in, 3, 3]), device));
    conv
}

/// Convolution (3×3, stride 2) → batch renormalisation → ReLU.
#[derive(Module, Debug)]
pub struct ConvBlock {
    /// The convolution (no bias).
    pub conv: Conv2d,
    /// The normalisation.
    pub norm: BatchRenorm2d,
}

impl ConvBlock {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.norm.forward(self.conv.forward(x)))
    }
}

/// The network of [`LatentCnnConfig`]: `lower` blocks (Avalanche's `lat_features`), `upper`
/// blocks and global average pooling (`end_features`), `output` (a linear layer without bias).
/// Implements [`LatentReplay`]: the latent layer is the output of the last lower block.
#[derive(Module, Debug)]
pub struct LatentCnn {
    /// The blocks below the latent layer.
    pub lower: Vec<ConvBlock>,
    /// The blocks above it.
    pub upper: Vec<ConvBlock>,
    /// The output layer (no bias).
    pub output: Linear,
    input_shape: [usize; 3],
    latent_shape: [usize; 3],
    features: usize,
}

impl LatentCnn {
    /// The shape of one sample's latent activations, `[channels, height, width]`.
    pub fn latent_shape(&self) -> [usize; 3] {
        self.latent_shape
    }

    fn norms(&self) -> impl Iterator<Item = &BatchRenorm2d> {
        self.lower.iter().chain(&self.upper).map(|b| &b.norm)
    }

    /// The pooled features `[batch, features]` of latent activations.
    fn pooled(&self, latent: Tensor<2>) -> Tensor<2> {
        let b = latent.dims()[0];
        let [c, h, w] = self.latent_shape;
        let mut x = latent.reshape([b, c, h, w]);
        for block in &self.upper {
            x = block.forward(x);
        }
        let [b, c, h, w] = x.dims();
        x.reshape([b, c, h * w]).mean_dim(2).reshape([b, c])
    }
}

impl LatentReplay for LatentCnn {
    fn latent(&self, batch: &MiniBatch) -> Tensor<2> {
        let mut x = batch.images();
        for block in &self.lower {
            x = block.forward(x);
        }
        let b = x.dims()[0];
        x.reshape([b, self.latent_size()])
    }

    fn forward_from_latent(&self, latent: Tensor<2>) -> Tensor<2> {
        let features = self.pooled(latent);
        let out = self.output.forward(features);
        crate::passes::record(out.dims()[0], out.is_tracked());
        out
    }

    fn latent_size(&self) -> usize {
        self.latent_shape.iter().product()
    }

    fn lower_layers(&self) -> Vec<String> {
        vec!["lower".into()]
    }

    fn output_layer(&self) -> String {
        "output".into()
    }

    fn set_batch_renorm(&self, settings: &BatchRenormSettings) -> bool {
        self.norms().for_each(|n| n.set_settings(*settings));
        true
    }
}

impl Model for LatentCnn {
    fn forward(&self, batch: &MiniBatch) -> Tensor<2> {
        self.forward_from_latent(self.latent(batch))
    }

    fn features(&self, batch: &MiniBatch) -> Option<Tensor<2>> {
        Some(self.pooled(self.latent(batch)))
    }

    fn num_outputs(&self) -> Option<usize> {
        Some(self.output.weight.dims()[1])
    }

    fn input_size(&self) -> Option<usize> {
        Some(self.input_shape.iter().product())
    }

    fn check_sample_shape(&self, shape: &[usize]) -> std::result::Result<(), String> {
        if shape == self.input_shape {
            return Ok(());
        }
        Err(format!(
            "the LatentCnn expects samples of shape {:?}; build it with LatentCnnConfig::new().with_input_shape({shape:?})",
            self.input_shape
        ))
    }

    fn latent_replay(&self) -> Option<&dyn LatentReplay> {
        Some(self)
    }

    /// The batch-renormalisation settings of each layer (`r_max`, `d_max` grow while training).
    fn save_extra_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("batch_renorm", &self.norms().map(|n| n.settings()).collect::<Vec<_>>())
    }

    fn load_extra_state(&mut self, state: &StateDict) -> Result<()> {
        let saved: Vec<BatchRenormSettings> = state.get("batch_renorm")?;
        let n = self.norms().count();
        if saved.len() != n {
            return Err(ClError::CheckpointMismatch {
                path: Default::default(),
                what: format!("{}: number of batch-renorm layers", state.component()),
                checkpoint: saved.len().to_string(),
                current: n.to_string(),
            });
        }
        self.norms().zip(saved).for_each(|(n, s)| n.set_settings(s));
        Ok(())
    }
}
