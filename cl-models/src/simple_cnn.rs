//! [`SimpleCnn`] and [`MtSimpleCnn`]: Avalanche's small convolutional networks `SimpleCNN` and
//! `MTSimpleCNN`.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Initializer, Linear, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use cl_core::Result;
use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, rule};
use cl_core::data::MiniBatch;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::dropout::SeededDropout;
use crate::dynamic::{MultiHeadClassifier, MultiHeadConfig};
use crate::headed::{Backbone, HeadedModel};
use crate::simple_mlp::{drop_rate_ok, seeded_linear};

/// Width of the features of [`CnnTrunk`] (the last convolution's channels).
pub const CNN_FEATURES: usize = 64;

/// The smallest image side the trunk accepts (two unpadded 3×3 convolutions and two 2×2 pools).
pub const CNN_MIN_SIDE: usize = 10;

/// Configuration of [`SimpleCnn`] (and of [`MtSimpleCnn`]) with the defaults of Avalanche's
/// `SimpleCNN(num_classes=10)` (dropout 0.25), plus the number of input channels (Avalanche's
/// is fixed at 3: use 1 for (F)MNIST) and the seed of the weights (drawn on the host, the same
/// on every backend). In a file every field may be left out.
///
/// ```
/// use cl_core::config::Validate;
/// use cl_models::SimpleCnnConfig;
/// assert!(SimpleCnnConfig::new().with_in_channels(1).validate().is_ok());
/// let err = SimpleCnnConfig::new().with_in_channels(0).validate().unwrap_err();
/// assert_eq!(err.rule(), Some("in_channels_positive"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimpleCnnConfig {
    /// Output units (10).
    pub num_classes: usize,
    /// Channels of the input images (3 for CIFAR, 1 for (F)MNIST; 3).
    pub in_channels: usize,
    /// Dropout probability after each block (0.25).
    pub drop_rate: f64,
    /// Seed of the initial weights (0), drawn on the host (see [`SimpleMlpConfig::seed`]).
    ///
    /// [`SimpleMlpConfig::seed`]: crate::SimpleMlpConfig::seed
    pub seed: u64,
}

impl Default for SimpleCnnConfig {
    fn default() -> Self {
        Self { num_classes: 10, in_channels: 3, drop_rate: 0.25, seed: 0 }
    }
}

impl SimpleCnnConfig {
    /// Avalanche's defaults (the same as [`Default::default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`num_classes`](Self::num_classes).
    pub fn with_num_classes(mut self, num_classes: usize) -> Self {
        self.num_classes = num_classes;
        self
    }

    /// Sets [`in_channels`](Self::in_channels).
    pub fn with_in_channels(mut self, in_channels: usize) -> Self {
        self.in_channels = in_channels;
        self
    }

    /// Sets [`drop_rate`](Self::drop_rate).
    pub fn with_drop_rate(mut self, drop_rate: f64) -> Self {
        self.drop_rate = drop_rate;
        self
    }

    /// Sets [`seed`](Self::seed).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

impl Validate for SimpleCnnConfig {
    fn validate(&self) -> Result<()> {
        const C: &str = "SimpleCnnConfig";
        rule(C, "num_classes_positive", self.num_classes > 0, || "num_classes must be at least 1".into())?;
        rule(C, "in_channels_positive", self.in_channels > 0, || "in_channels must be at least 1".into())?;
        rule(C, "drop_rate_in_unit_interval", drop_rate_ok(self.drop_rate), || {
            format!("drop_rate = {} must be in [0, 1)", self.drop_rate)
        })
    }
}

impl SimpleCnnConfig {
    /// The trunk alone (after [`validate`](Validate::validate)).
    pub fn init_trunk(&self, device: &Device) -> Result<CnnTrunk> {
        self.validate()?;
        Ok(self.build_trunk(device))
    }

    /// [`init_trunk`](Self::init_trunk) of a validated configuration.
    fn build_trunk(&self, device: &Device) -> CnnTrunk {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let c = self.in_channels;
        let mut conv = |i: usize, o: usize, k: usize, pad: usize| seeded_conv2d(i, o, k, pad, &mut rng, device);
        CnnTrunk {
            conv1: conv(c, 32, 3, 1),
            conv2: conv(32, 32, 3, 0),
            conv3: conv(32, 64, 3, 1),
            conv4: conv(64, 64, 3, 0),
            conv5: conv(64, CNN_FEATURES, 1, 0),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            drop1: SeededDropout::new(self.drop_rate, 0),
            drop2: SeededDropout::new(self.drop_rate, 1),
            drop3: SeededDropout::new(self.drop_rate, 2),
            in_channels: c,
        }
    }

    /// Builds the model on `device` (after [`validate`](Validate::validate)); the classifier's
    /// weights are drawn from the config's seed + 1.
    pub fn init(&self, device: &Device) -> Result<SimpleCnn> {
        let trunk = self.init_trunk(device)?;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed.wrapping_add(1));
        Ok(HeadedModel::new(trunk, seeded_linear(CNN_FEATURES, self.num_classes, &mut rng, device)))
    }

    /// Avalanche's `MTSimpleCNN`: the trunk and a `MultiHeadClassifier(64)` with Avalanche's
    /// defaults (heads of 2 outputs, masking on); `num_classes` is not used. Head weights are
    /// drawn from the config's seed + 2.
    pub fn init_multitask(&self, device: &Device) -> Result<MtSimpleCnn> {
        let trunk = self.init_trunk(device)?;
        let head = MultiHeadConfig::new(CNN_FEATURES).with_seed(self.seed.wrapping_add(2)).build(device);
        Ok(HeadedModel::new(trunk, head))
    }
}

/// A `Conv2d` with PyTorch's default initialisation (weight and bias uniform in
/// ±1/√(in·k·k)) drawn from `rng`.
fn seeded_conv2d(d_in: usize, d_out: usize, k: usize, pad: usize, rng: &mut ChaCha8Rng, device: &Device) -> Conv2d {
    let padding = if pad == 0 { PaddingConfig2d::Valid } else { PaddingConfig2d::Explicit(pad, pad, pad, pad) };
    let mut conv = Conv2dConfig::new([d_in, d_out], [k, k])
        .with_padding(padding)
        .with_initializer(Initializer::Zeros)
        .init(device);
    let fan_in = d_in * k * k;
    let bound = 1.0 / (fan_in as f32).sqrt();
    let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-bound..bound)).collect() };
    let weight = draw(d_out * fan_in);
    let bias = draw(d_out);
    conv.weight = Param::from_tensor(Tensor::from_data(TensorData::new(weight, [d_out, d_in, k, k]), device));
    conv.bias = Some(Param::from_tensor(Tensor::from_data(TensorData::new(bias, [d_out]), device)));
    conv
}

/// The convolutional trunk of [`SimpleCnn`]: conv32-conv32-pool-dropout, conv64-conv64-pool-
/// dropout, conv64 1×1, global max pool, dropout → `[batch, 64]`.
#[derive(Module, Debug)]
pub struct CnnTrunk {
    /// 3×3, padding 1.
    pub conv1: Conv2d,
    /// 3×3, no padding.
    pub conv2: Conv2d,
    /// 3×3, padding 1.
    pub conv3: Conv2d,
    /// 3×3, no padding.
    pub conv4: Conv2d,
    /// 1×1.
    pub conv5: Conv2d,
    /// 2×2 max pooling, stride 2.
    pub pool: MaxPool2d,
    /// Dropout after the first block.
    pub drop1: SeededDropout,
    /// Dropout after the second block.
    pub drop2: SeededDropout,
    /// Dropout after the global pooling.
    pub drop3: SeededDropout,
    in_channels: usize,
}

impl CnnTrunk {
    /// Features `[batch, 64]` of images `[batch, channels, height, width]`.
    pub fn forward_images(&self, x: Tensor<4>) -> Tensor<2> {
        let x = relu(self.conv1.forward(x));
        let x = relu(self.conv2.forward(x));
        let x = self.drop1.forward(self.pool.forward(x));
        let x = relu(self.conv3.forward(x));
        let x = relu(self.conv4.forward(x));
        let x = self.drop2.forward(self.pool.forward(x));
        let x = relu(self.conv5.forward(x));
        let [b, c, h, w] = x.dims();
        // AdaptiveMaxPool2d(1): the maximum over each channel.
        let x = x.reshape([b, c, h * w]).max_dim(2).reshape([b, c]);
        self.drop3.forward(x)
    }

    /// Channels of the input images.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }
}

impl Backbone for CnnTrunk {
    fn embed(&self, batch: &MiniBatch) -> Tensor<2> {
        let out = self.forward_images(batch.images());
        crate::passes::record(out.dims()[0], out.is_tracked());
        out
    }

    fn feature_size(&self) -> usize {
        CNN_FEATURES
    }

    fn check_sample_shape(&self, shape: &[usize]) -> std::result::Result<(), String> {
        match shape {
            [c, h, w] if *c == self.in_channels && *h >= CNN_MIN_SIDE && *w >= CNN_MIN_SIDE => Ok(()),
            [c, _, _] if *c != self.in_channels => Err(format!(
                "the CNN expects {} input channels; build it with SimpleCnnConfig::new().with_in_channels({c})",
                self.in_channels
            )),
            [_, _, _] => Err(format!("the CNN needs images of at least {CNN_MIN_SIDE}×{CNN_MIN_SIDE}")),
            _ => Err("the CNN expects images [channels, height, width]".to_string()),
        }
    }

    fn seed(&mut self, seed: u64) {
        self.drop1.seed(seed);
        self.drop2.seed(seed.wrapping_add(1));
        self.drop3.seed(seed.wrapping_add(2));
    }

    /// The dropout layers' mask streams.
    fn save_extra_state(&self, out: &mut StateDict) -> Result<()> {
        crate::simple_mlp::save_dropout_states([&self.drop1, &self.drop2, &self.drop3].into_iter(), out)
    }

    fn load_extra_state(&mut self, state: &StateDict) -> Result<()> {
        crate::simple_mlp::load_dropout_states([&mut self.drop1, &mut self.drop2, &mut self.drop3].into_iter(), state)
    }
}

/// Avalanche's `SimpleCNN`: a [`CnnTrunk`] (`features`) and a linear `classifier` (64 → classes);
/// built by [`SimpleCnnConfig::init`].
#[doc(alias = "SimpleCNN")]
pub type SimpleCnn = HeadedModel<CnnTrunk, Linear>;

/// Avalanche's `MTSimpleCNN`: the [`CnnTrunk`] and a [`MultiHeadClassifier`]; built by
/// [`SimpleCnnConfig::init_multitask`] or [`HeadedModel::as_multitask`].
#[doc(alias = "MTSimpleCNN")]
pub type MtSimpleCnn = HeadedModel<CnnTrunk, MultiHeadClassifier>;
