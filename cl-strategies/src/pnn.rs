//! [`PnnStrategy`]: progressive neural networks trained as Naive (Avalanche's `PNNStrategy`).

use std::any::Any;

use burn::tensor::Device;
use cl_core::config::Validate;
use cl_core::{ClError, Model, OptimizerSpec, Result, StrategyBuilder};
use serde::{Deserialize, Serialize};

/// The configuration of [`PnnStrategy`]: nothing of its own (the architecture is the model's,
/// [`cl_models::PnnConfig`]); it exists so that every strategy has the same shape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PnnStrategyConfig {}

impl Validate for PnnStrategyConfig {
    /// No rule.
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// Progressive neural networks (Rusu et al., 2016; Avalanche's `PNNStrategy`,
/// `avalanche/training/supervised/strategy_wrappers.py`): the template's default steps on a
/// [`cl_models::Pnn`], whose adaptation adds a column (freezing the earlier ones) and a head per
/// task label; for task-incremental streams, one task label per experience.
///
/// As Avalanche's, the strategy refuses any other model; new columns' parameters enter the
/// optimizer with fresh state, frozen columns get no gradient.
///
/// ```
/// use burn::tensor::Device;
/// use cl_core::OptimizerSpec;
/// use cl_models::{PnnConfig, SimpleMlpConfig};
/// use cl_strategies::{PnnStrategy, PnnStrategyConfig};
/// let device = Device::flex();
/// let model = PnnConfig::new().init(&device)?;
/// let strategy = PnnStrategy::builder(model, OptimizerSpec::sgd(0.01), device.clone(), PnnStrategyConfig::default())?.build()?;
/// let mlp = SimpleMlpConfig::new().init(&device)?;
/// assert!(PnnStrategy::builder(mlp, OptimizerSpec::sgd(0.01), device, PnnStrategyConfig::default()).is_err());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "PNNStrategy", alias = "PNN")]
pub struct PnnStrategy;

impl PnnStrategy {
    /// A builder with the default steps; an error unless `model` is a [`cl_models::Pnn`].
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: PnnStrategyConfig,
    ) -> Result<StrategyBuilder<M>> {
        config.validate()?;
        if (&model as &dyn Any).downcast_ref::<cl_models::Pnn>().is_none() {
            return Err(ClError::InvalidUse(format!(
                "PnnStrategy trains a progressive neural network, not a `{}`: build the model with \
                 cl_models::PnnConfig (model type \"pnn\" in a run spec)",
                std::any::type_name::<M>()
            )));
        }
        Ok(StrategyBuilder::new(model, optimizer, device))
    }
}
