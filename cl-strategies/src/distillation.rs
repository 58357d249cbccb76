//! Regularisation by distillation and gradient projection: [`Lwf`] and [`AGem`].

use burn::tensor::Device;
use cl_core::{DefaultSteps, Model, OptimizerSpec, Result, StrategyBuilder};
use cl_plugins::{AGemPlugin, LwfPlugin, LwfConfig};

use crate::Naive;

/// Learning without Forgetting (Avalanche's `LwF`): Naive plus an [`LwfPlugin`] — the loss
/// gains `alpha ·` the distillation of the previous model's softened outputs on the classes
/// seen before.
///
/// ```ignore
/// let strategy = Lwf::builder(model, optimizer, device, LwfConfig::new(1.0, 2.0))?.build()?;
/// ```
pub struct Lwf;

impl Lwf {
    /// A builder: Naive's defaults plus the LwF plugin; an error for invalid hyper-parameters.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: LwfConfig,
    ) -> Result<StrategyBuilder<M, DefaultSteps>> {
        Ok(Naive::builder(model, optimizer, device).plugin(LwfPlugin::<M>::new(config)?))
    }
}

/// Averaged GEM (Avalanche's `AGEM`): Naive plus an [`AGemPlugin`] storing `patterns_per_exp`
/// samples per experience and projecting each gradient that conflicts with the gradient on
/// `sample_size` memory samples.
///
/// ```ignore
/// let strategy = AGem::builder(model, optimizer, device, 256, 256)?.build()?;
/// ```
pub struct AGem;

impl AGem {
    /// A builder: Naive's defaults plus the A-GEM plugin; an error if a size is 0.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        patterns_per_exp: usize,
        sample_size: usize,
    ) -> Result<StrategyBuilder<M, DefaultSteps>> {
        Ok(Naive::builder(model, optimizer, device).plugin(AGemPlugin::new(patterns_per_exp, sample_size)?))
    }
}
