//! [`StreamingLda`]: deep streaming linear discriminant analysis (Hayes & Kanan, 2020;
//! Avalanche's `StreamingLDA`).
//!
//! - [`SldaStatistics`] (`lda.rs`): the class means, the shared covariance, their batched exact
//!   update and the LDA classifier (host, `f64`);
//! - [`StreamingLdaSteps`] (`steps.rs`): the template's steps — features from the frozen model,
//!   scores, the fit in place of the optimizer step;
//! - [`StreamingLdaConfig`] (here): the hyper-parameters.

use burn::tensor::Device;
use cl_core::config::{Validate, rule};
use cl_core::{Model, OptimizerSpec, Result, StrategyBuilder};
use serde::{Deserialize, Serialize};

mod lda;
mod steps;
#[cfg(test)]
mod tests;

pub use lda::{LdaWeights, SldaStatistics};
pub use steps::StreamingLdaSteps;

/// Which output of the model the LDA reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SldaFeatures {
    /// The model's forward output (default; Avalanche without `output_layer_name`: the model *is*
    /// the feature extractor, e.g. [`cl_models::Flatten`] or a trunk).
    #[default]
    Output,
    /// The model's [`Model::features`] (its penultimate layer; Avalanche's
    /// `output_layer_name` naming that layer through `FeatureExtractorBackbone`).
    Features,
}

/// The configuration of [`StreamingLda`], with the defaults of Avalanche's
/// `StreamingLDA(shrinkage_param=1e-4, streaming_update_sigma=True)`; `num_classes` is required
/// (as Avalanche's), `input_size` is taken from the features unless given.
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_strategies::{SldaFeatures, StreamingLdaConfig};
/// let config = StreamingLdaConfig::new(10).with_input_size(512).with_features(SldaFeatures::Features);
/// let text = "num_classes = 10\ninput_size = 512\nfeatures = \"features\"";
/// assert_eq!(StreamingLdaConfig::from_toml(text)?, config);
/// assert!(StreamingLdaConfig::from_toml("num_classes = 10\nshrinkage = 0.0").is_err());
/// assert!(StreamingLdaConfig::from_toml("shrinkage = 0.1").is_err()); // num_classes is required
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamingLdaConfig {
    /// The number of classes of the whole stream (Avalanche's `num_classes`; at least 1): the
    /// width of the scores, classes not seen yet scoring 0 as in Avalanche.
    pub num_classes: usize,
    /// The width of the features (Avalanche's `input_size`); `None` (default): the width of the
    /// first features, after which it is fixed.
    #[serde(default)]
    pub input_size: Option<usize>,
    /// The shrinkage `s` of the covariance, `(1 − s)·Σ + s·I` (default 1e-4, in `(0, 1]`;
    /// Avalanche's `shrinkage_param`).
    #[serde(default = "default_shrinkage")]
    pub shrinkage: f64,
    /// Whether each training sample updates the covariance (default true; Avalanche's
    /// `streaming_update_sigma`). When false it stays as it is (all ones, as in Avalanche, unless
    /// set with [`SldaStatistics::set_covariance`]).
    #[serde(default = "default_streaming")]
    pub streaming_update_sigma: bool,
    /// Which output of the model is the feature vector (default: its forward output).
    #[serde(default)]
    pub features: SldaFeatures,
}

fn default_shrinkage() -> f64 {
    1e-4
}

fn default_streaming() -> bool {
    true
}

impl StreamingLdaConfig {
    /// `num_classes` classes, Avalanche's other defaults.
    pub fn new(num_classes: usize) -> Self {
        Self {
            num_classes,
            input_size: None,
            shrinkage: default_shrinkage(),
            streaming_update_sigma: default_streaming(),
            features: SldaFeatures::Output,
        }
    }

    /// Sets the number of classes.
    pub fn with_num_classes(mut self, num_classes: usize) -> Self {
        self.num_classes = num_classes;
        self
    }

    /// Fixes the width of the features.
    pub fn with_input_size(mut self, input_size: usize) -> Self {
        self.input_size = Some(input_size);
        self
    }

    /// Sets the shrinkage.
    pub fn with_shrinkage(mut self, shrinkage: f64) -> Self {
        self.shrinkage = shrinkage;
        self
    }

    /// Sets whether the covariance streams.
    pub fn with_streaming_update_sigma(mut self, streaming_update_sigma: bool) -> Self {
        self.streaming_update_sigma = streaming_update_sigma;
        self
    }

    /// Sets which output of the model is the feature vector.
    pub fn with_features(mut self, features: SldaFeatures) -> Self {
        self.features = features;
        self
    }
}

impl Validate for StreamingLdaConfig {
    /// `num_classes_positive`, `input_size_positive`, `shrinkage_in_range`.
    fn validate(&self) -> Result<()> {
        const C: &str = "StreamingLdaConfig";
        rule(C, "num_classes_positive", self.num_classes > 0, || {
            "num_classes must be at least 1 (the number of classes of the whole stream)".into()
        })?;
        rule(C, "input_size_positive", self.input_size != Some(0), || {
            "input_size must be at least 1, or unset to take the width of the features".into()
        })?;
        rule(C, "shrinkage_in_range", self.shrinkage > 0.0 && self.shrinkage <= 1.0, || {
            format!(
                "shrinkage = {} must be in (0, 1] (default 1e-4): at 0 the covariance of features that never vary \
                 (e.g. border pixels) is singular",
                self.shrinkage
            )
        })
    }
}

/// Deep streaming LDA (Hayes & Kanan, "Lifelong Machine Learning with Deep Streaming Linear
/// Discriminant Analysis", CVPR-W 2020; Avalanche's `StreamingLDA`,
/// `avalanche/training/supervised/deep_slda.py`): a frozen feature extractor and, on its
/// features, running class means and one shared covariance updated by every training sample;
/// prediction by the linear discriminant rule. No back-propagation, no optimizer.
///
/// As Avalanche's `StreamingLDA`:
/// - the model is only run, in evaluation mode (no dropout), without gradients; its output (or
///   its [`Model::features`], see [`SldaFeatures`]) is the feature vector;
/// - each training mini-batch: the scores of the statistics so far are the output (the training
///   metrics see them: test-then-train accuracy) and the criterion's loss is computed on them;
///   then, in the optimizer step's place, the samples update the statistics one at a time in
///   the batch's order ([`SldaStatistics`]; the batch's update is exactly the per-sample one);
/// - the scores are `x·W − c` for `num_classes` classes, with `W = ((1 − s)·Σ + s·I)⁻¹·Mᵀ`
///   recomputed whenever the statistics changed (every training mini-batch, as Avalanche's
///   `predict`) and `c_k = ½·μ_k·W_k`; a class never seen has a zero mean and scores 0.
///
/// # Differences from Avalanche
///
/// - The solve is a Cholesky factorisation in `f64` on the host (statistics in `f64` too) where
///   Avalanche inverts the matrix in `f32` with `torch.pinverse`: same matrix, rounding only.
///   Hence `shrinkage` must be > 0 (Avalanche's pseudo-inverse also accepts 0).
/// - The loop fires `before_backward` / `after_backward` with no gradients (Avalanche's
///   `StreamingLDA` skips those two callbacks and warns about plugins that use them).
/// - The training mini-batch size changes nothing but rounding (Avalanche's default is 1, for
///   its per-sample fit; `cl` fits a batch at once exactly as its samples one by one).
/// - No `fit_base` (Avalanche's offline initialisation with scikit-learn's OAS covariance, which
///   its strategy never calls): set a covariance with [`SldaStatistics::set_covariance`] on
///   [`StreamingLdaSteps::statistics_mut`].
/// - Avalanche's examples take an ImageNet-pretrained ResNet-18 as the extractor, which cannot be
///   downloaded here: any frozen `Model` works — [`cl_models::Flatten`] (raw inputs; the
///   fidelity protocol) or a trunk trained beforehand (e.g. on the first experience by another
///   strategy; see the tests).
///
/// ```
/// use burn::tensor::Device;
/// use cl_core::OptimizerSpec;
/// use cl_models::FlattenConfig;
/// use cl_strategies::{StreamingLda, StreamingLdaConfig, StreamingLdaSteps};
/// let device = Device::flex();
/// let model = FlattenConfig::new(784).init()?;
/// // The optimizer recipe is never built: SLDA does not back-propagate.
/// let strategy = StreamingLda::builder(model, OptimizerSpec::sgd(0.01), device, StreamingLdaConfig::new(10))?
///     .train_mb_size(128)
///     .build()?;
/// assert_eq!(strategy.steps_as::<StreamingLdaSteps>().unwrap().config().shrinkage, 1e-4);
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "StreamingLDA", alias = "SLDA", alias = "DeepSLDA")]
pub struct StreamingLda;

impl StreamingLda {
    /// A builder with the SLDA steps and the default evaluator; an error if `config` breaks a
    /// rule. `optimizer` is kept in the settings (every strategy has this shape) but never built.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: StreamingLdaConfig,
    ) -> Result<StrategyBuilder<M>> {
        Ok(StrategyBuilder::new(model, optimizer, device).steps(StreamingLdaSteps::new(config)?))
    }
}
