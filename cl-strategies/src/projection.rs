//! Gradient projection and output-layer consolidation: [`Gem`] and [`CwrStar`].

use burn::tensor::Device;
use cl_core::{Model, OptimizerSpec, Result, StrategyBuilder};
use cl_plugins::{CwrStarConfig, CwrStarPlugin, GemConfig, GemPlugin};

/// Gradient Episodic Memory (Avalanche's `GEM`): Naive plus a [`GemPlugin`] storing
/// `patterns_per_exp` samples per experience and projecting each gradient that conflicts with
/// a past experience's memory gradient, with margin `memory_strength`.
pub struct Gem;

impl Gem {
    /// A builder: Naive's defaults plus the GEM plugin; an error if `config` breaks a rule.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: GemConfig,
    ) -> Result<StrategyBuilder<M>> {
        Ok(StrategyBuilder::new(model, optimizer, device).plugin(GemPlugin::new(config)?))
    }
}

/// CWR* (Avalanche's `CWRStar`): Naive plus a [`CwrStarPlugin`] consolidating the per-class
/// weights of the linear layer `cwr_layer_name` (its path in the model, `classifier` for
/// `SimpleMlp`); with `freeze_remaining_model`, only that layer trains after the first
/// experience.
pub struct CwrStar;

impl CwrStar {
    /// A builder: Naive's defaults plus the CWR* plugin; an error (`ClError::InvalidConfig`) if
    /// `config` breaks a rule or `model` has no linear layer named `cwr_layer_name`.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: CwrStarConfig,
    ) -> Result<StrategyBuilder<M>> {
        let plugin = CwrStarPlugin::new(&model, config)?;
        Ok(StrategyBuilder::new(model, optimizer, device).plugin(plugin))
    }
}
