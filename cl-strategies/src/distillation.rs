//! Distillation and averaged gradient projection: [`Lwf`] and [`AGem`].

use burn::tensor::Device;
use cl_core::{Model, OptimizerSpec, Result, StrategyBuilder};
use cl_plugins::{AGemConfig, AGemPlugin, LwfConfig, LwfPlugin};

/// Learning without Forgetting (Avalanche's `LwF`): Naive plus an [`LwfPlugin`] — the loss
/// gains `alpha ·` the distillation of the previous model's softened outputs on the classes
/// seen before.
pub struct Lwf;

impl Lwf {
    /// A builder: Naive's defaults plus the LwF plugin; an error if `config` breaks a rule.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: LwfConfig,
    ) -> Result<StrategyBuilder<M>> {
        Ok(StrategyBuilder::new(model, optimizer, device).plugin(LwfPlugin::<M>::new(config)?))
    }
}

/// Averaged GEM (Avalanche's `AGEM`): Naive plus an [`AGemPlugin`] storing `patterns_per_exp`
/// samples per experience and projecting each gradient that conflicts with the gradient on
/// `sample_size` memory samples.
pub struct AGem;

impl AGem {
    /// A builder: Naive's defaults plus the A-GEM plugin; an error if `config` breaks a rule.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: AGemConfig,
    ) -> Result<StrategyBuilder<M>> {
        Ok(StrategyBuilder::new(model, optimizer, device).plugin(AGemPlugin::new(config)?))
    }
}
