//! Gradient projection and output-layer consolidation: [`Gem`] and [`CwrStar`].

use burn::tensor::Device;
use cl_core::{DefaultSteps, Model, OptimizerSpec, Result, StrategyBuilder};
use cl_plugins::{CwrStarPlugin, GemPlugin};

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

/// CWR* (Avalanche's `CWRStar`): Naive plus a [`CwrStarPlugin`] consolidating the per-class
/// weights of the linear layer `cwr_layer_name` (its path in the model, `classifier` for
/// `SimpleMlp`); with `freeze_remaining_model`, only that layer trains after the first
/// experience.
///
/// ```ignore
/// let strategy = CwrStar::builder(model, optimizer, device, "classifier", true)?.build()?;
/// ```
pub struct CwrStar;

impl CwrStar {
    /// A builder: Naive's defaults plus the CWR* plugin; an error (`ClError::InvalidConfig`)
    /// if `model` has no linear layer named `cwr_layer_name`.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        cwr_layer_name: &str,
        freeze_remaining_model: bool,
    ) -> Result<StrategyBuilder<M, DefaultSteps>> {
        let plugin = CwrStarPlugin::new(&model, cwr_layer_name, freeze_remaining_model)?;
        Ok(Naive::builder(model, optimizer, device).plugin(plugin))
    }
}
