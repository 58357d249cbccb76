//! [`Naive`]: fine-tuning on each experience in turn, the lower bound.

use burn::tensor::Device;
use cl_core::config::Validate;
use cl_core::{Model, OptimizerSpec, Result, StrategyBuilder};
use serde::{Deserialize, Serialize};

/// The configuration of [`Naive`]: it has no hyper-parameter of its own (the loop's — batch
/// sizes, epochs, periodic evaluation — are a [`TrainingConfig`](cl_core::TrainingConfig) given
/// to the builder with `.config(..)`). It exists so that every strategy has the same shape and
/// can be named in a [`StrategyConfig`](crate::StrategyConfig).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NaiveConfig {}

impl Validate for NaiveConfig {
    /// No rule: there is nothing to check.
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// Naive fine-tuning: the template with its default steps and the default evaluator (accuracy
/// and loss), Avalanche's `Naive`.
///
/// ```
/// use burn::tensor::Device;
/// use cl_core::{OptimizerSpec, Result};
/// use cl_models::SimpleMlpConfig;
/// use cl_strategies::{Naive, NaiveConfig};
///
/// # fn main() -> Result<()> {
/// let device = Device::flex();
/// let model = SimpleMlpConfig::new().init(&device)?;
/// let strategy = Naive::builder(model, OptimizerSpec::sgd(0.01).with_momentum(0.9), device, NaiveConfig::default())?
///     .train_mb_size(128)
///     .train_epochs(1)
///     .build()?;
/// assert_eq!(strategy.state().settings().train_mb_size(), 128);
/// # Ok(()) }
/// ```
pub struct Naive;

impl Naive {
    /// A builder with the default steps and the default evaluator; an error if `config` breaks
    /// a rule (the builder's own settings are checked by `build()`).
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: NaiveConfig,
    ) -> Result<StrategyBuilder<M>> {
        config.validate()?;
        Ok(StrategyBuilder::new(model, optimizer, device))
    }
}
