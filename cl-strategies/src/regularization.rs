//! Regularisation strategies: [`Ewc`], [`SynapticIntelligence`], [`Mas`], [`RWalk`] and [`Lfl`]
//! — Naive plus the plugin of the same name.

use burn::tensor::Device;
use cl_core::{DefaultSteps, Model, OptimizerSpec, Result, StrategyBuilder};
use cl_plugins::{LflLambda, LflPlugin};
use cl_plugins::regularization::{
    EwcConfig, EwcPlugin, MasConfig, MasPlugin, RWalkConfig, RWalkPlugin, SynapticIntelligenceConfig,
    SynapticIntelligencePlugin,
};

use crate::Naive;

/// Elastic Weight Consolidation (Avalanche's `EWC`): Naive plus an [`EwcPlugin`].
///
/// ```ignore
/// let strategy = Ewc::builder(model, optimizer, device, EwcConfig::online(100.0, 0.9))?.build()?;
/// ```
pub struct Ewc;

impl Ewc {
    /// A builder: Naive's defaults plus the EWC plugin (errors on invalid hyper-parameters).
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: EwcConfig,
    ) -> Result<StrategyBuilder<M, DefaultSteps>> {
        Ok(Naive::builder(model, optimizer, device).plugin(EwcPlugin::new(config)?))
    }
}

/// Synaptic Intelligence (Avalanche's `SynapticIntelligence`): Naive plus a
/// [`SynapticIntelligencePlugin`].
///
/// ```ignore
/// let strategy = SynapticIntelligence::builder(model, optimizer, device,
///     SynapticIntelligenceConfig::new(1e-4))?.build()?;
/// ```
pub struct SynapticIntelligence;

impl SynapticIntelligence {
    /// A builder: Naive's defaults plus the SI plugin (errors on invalid hyper-parameters).
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: SynapticIntelligenceConfig,
    ) -> Result<StrategyBuilder<M, DefaultSteps>> {
        Ok(Naive::builder(model, optimizer, device).plugin(SynapticIntelligencePlugin::new(config)?))
    }
}

/// Memory Aware Synapses (Avalanche's `MAS`): Naive plus a [`MasPlugin`].
///
/// ```ignore
/// let strategy = Mas::builder(model, optimizer, device, MasConfig::new(1.0, 0.5))?.build()?;
/// ```
pub struct Mas;

impl Mas {
    /// A builder: Naive's defaults plus the MAS plugin (errors on invalid hyper-parameters).
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: MasConfig,
    ) -> Result<StrategyBuilder<M, DefaultSteps>> {
        Ok(Naive::builder(model, optimizer, device).plugin(MasPlugin::new(config)?))
    }
}

/// Riemannian Walk: Naive plus an [`RWalkPlugin`] (Avalanche has the plugin only; this is
/// `Naive(..., plugins=[RWalkPlugin(...)])`).
///
/// ```ignore
/// let strategy = RWalk::builder(model, optimizer, device, RWalkConfig::new(1.0, 0.9, 10))?.build()?;
/// ```
pub struct RWalk;

impl RWalk {
    /// A builder: Naive's defaults plus the RWalk plugin (errors on invalid hyper-parameters).
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: RWalkConfig,
    ) -> Result<StrategyBuilder<M, DefaultSteps>> {
        Ok(Naive::builder(model, optimizer, device).plugin(RWalkPlugin::new(config)?))
    }
}

/// Less-Forgetful Learning (Avalanche's `LFL`): Naive plus an [`LflPlugin`]. The model must
/// implement [`Model::features`].
///
/// ```ignore
/// let strategy = Lfl::builder(model, optimizer, device, 0.5)?.build()?;
/// ```
pub struct Lfl;

impl Lfl {
    /// A builder: Naive's defaults plus the LFL plugin with weight(s) `lambda_e` (a number or
    /// one per experience; errors when negative, non-finite or empty).
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        lambda_e: impl Into<LflLambda>,
    ) -> Result<StrategyBuilder<M, DefaultSteps>> {
        Ok(Naive::builder(model, optimizer, device).plugin(LflPlugin::new(lambda_e)?))
    }
}
