//! Regularisation strategies: [`Ewc`], [`SynapticIntelligence`], [`Mas`], [`RWalk`] and [`Lfl`]
//! — Naive plus the plugin of the same name.

use burn::tensor::Device;
use cl_core::{Model, OptimizerSpec, Result, StrategyBuilder};
use cl_plugins::regularization::{
    EwcConfig, EwcPlugin, MasConfig, MasPlugin, RWalkConfig, RWalkPlugin, SynapticIntelligenceConfig,
    SynapticIntelligencePlugin,
};
use cl_plugins::{LflConfig, LflPlugin};

/// Elastic Weight Consolidation (Avalanche's `EWC`): Naive plus an [`EwcPlugin`] (penalty
/// `λ·Σ F(θ−θ*)²`, Avalanche's convention).
///
/// ```ignore
/// let config = EwcConfig::new(0.4).with_mode(EwcMode::Online { decay_factor: 0.9 });
/// let strategy = Ewc::builder(model, optimizer, device, config)?.build()?;
/// ```
pub struct Ewc;

impl Ewc {
    /// A builder: Naive's defaults plus the EWC plugin; an error if `config` breaks a rule.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: EwcConfig,
    ) -> Result<StrategyBuilder<M>> {
        Ok(StrategyBuilder::new(model, optimizer, device).plugin(EwcPlugin::new(config)?))
    }
}

/// Synaptic Intelligence (Avalanche's `SynapticIntelligence`): Naive plus a
/// [`SynapticIntelligencePlugin`].
pub struct SynapticIntelligence;

impl SynapticIntelligence {
    /// A builder: Naive's defaults plus the SI plugin; an error if `config` breaks a rule.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: SynapticIntelligenceConfig,
    ) -> Result<StrategyBuilder<M>> {
        Ok(StrategyBuilder::new(model, optimizer, device).plugin(SynapticIntelligencePlugin::new(config)?))
    }
}

/// Memory Aware Synapses (Avalanche's `MAS`): Naive plus a [`MasPlugin`].
pub struct Mas;

impl Mas {
    /// A builder: Naive's defaults plus the MAS plugin; an error if `config` breaks a rule.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: MasConfig,
    ) -> Result<StrategyBuilder<M>> {
        Ok(StrategyBuilder::new(model, optimizer, device).plugin(MasPlugin::new(config)?))
    }
}

/// Riemannian Walk: Naive plus an [`RWalkPlugin`] (Avalanche has the plugin only; this is
/// `Naive(..., plugins=[RWalkPlugin(...)])`).
pub struct RWalk;

impl RWalk {
    /// A builder: Naive's defaults plus the RWalk plugin; an error if `config` breaks a rule.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: RWalkConfig,
    ) -> Result<StrategyBuilder<M>> {
        Ok(StrategyBuilder::new(model, optimizer, device).plugin(RWalkPlugin::new(config)?))
    }
}

/// Less-Forgetful Learning (Avalanche's `LFL`): Naive plus an [`LflPlugin`]. The model must
/// implement [`Model::features`].
pub struct Lfl;

impl Lfl {
    /// A builder: Naive's defaults plus the LFL plugin; an error if `config` breaks a rule.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: LflConfig,
    ) -> Result<StrategyBuilder<M>> {
        Ok(StrategyBuilder::new(model, optimizer, device).plugin(LflPlugin::<M>::new(config)?))
    }
}
