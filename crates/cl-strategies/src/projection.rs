//! Gradient projection and output-layer consolidation: [`Gem`] (and `CwrStar`, to come).

use burn::tensor::Device;
use cl_core::{DefaultSteps, Model, OptimizerSpec, Result, StrategyBuilder};
use cl_plugins::GemPlugin;

use crate::Naive;

/// Gradient Episodic Memory (Avalanche's `GEM`): Naive plus a [`GemPlugin`] storing
/// `patterns_per_exp` samples per experience and projecting each gradient that conflicts with
/// a past experience's memory gradient, with margin `memory_strength`.
///
/// ```ignore
/// let strategy = Gem::builder(model, optimizer, device, 256, 0.5)?.build()?;
/// ```
pub struct Gem;

impl Gem {
    /// A builder: Naive's defaults plus the GEM plugin; an error if `patterns_per_exp` is 0 or
    /// `memory_strength` is negative.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        patterns_per_exp: usize,
        memory_strength: f64,
    ) -> Result<StrategyBuilder<M, DefaultSteps>> {
        Ok(Naive::builder(model, optimizer, device).plugin(GemPlugin::new(patterns_per_exp, memory_strength)?))
    }
}
