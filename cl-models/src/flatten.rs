//! [`Flatten`]: the input itself as features (`torch.nn.Flatten()`), e.g. for a streaming
//! classifier on raw pixels.

use burn::module::Module;
use burn::tensor::Tensor;
use cl_core::config::{Validate, rule};
use cl_core::data::MiniBatch;
use cl_core::{Model, Result};
use serde::{Deserialize, Serialize};

/// The configuration of [`Flatten`]: the number of input values per sample (784, a 28 × 28
/// image).
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_models::FlattenConfig;
/// assert_eq!(FlattenConfig::from_toml("input_size = 3072")?.input_size, 3072);
/// assert!(FlattenConfig::from_toml("input_size = 0").is_err());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlattenConfig {
    /// Input values per sample (default 784).
    pub input_size: usize,
}

impl Default for FlattenConfig {
    fn default() -> Self {
        Self { input_size: 784 }
    }
}

impl FlattenConfig {
    /// `input_size` values per sample.
    pub fn new(input_size: usize) -> Self {
        Self { input_size }
    }

    /// The model (after [`validate`](Validate::validate)); it has no parameters, hence no device.
    pub fn init(&self) -> Result<Flatten> {
        self.validate()?;
        Ok(Flatten { input_size: self.input_size })
    }
}

impl Validate for FlattenConfig {
    /// `input_size_positive`.
    fn validate(&self) -> Result<()> {
        rule("FlattenConfig", "input_size_positive", self.input_size > 0, || "input_size must be at least 1".into())
    }
}

/// A model without parameters whose output and features are the flattened input
/// (`[batch, input_size]`, transforms applied): PyTorch's `torch.nn.Flatten()`. The frozen
/// "feature extractor" of a streaming classifier on raw inputs (`StreamingLda` in
/// `cl-strategies`); a strategy that back-propagates cannot train it.
#[derive(Module, Debug)]
pub struct Flatten {
    input_size: usize,
}

impl Model for Flatten {
    fn forward(&self, batch: &MiniBatch) -> Tensor<2> {
        batch.x.clone()
    }

    fn features(&self, batch: &MiniBatch) -> Option<Tensor<2>> {
        Some(batch.x.clone())
    }

    fn num_outputs(&self) -> Option<usize> {
        Some(self.input_size)
    }

    fn input_size(&self) -> Option<usize> {
        Some(self.input_size)
    }
}
