//! Rehearsal strategies: [`Replay`], [`GDumb`], [`Mir`], [`GssGreedy`] and [`FromScratchTraining`] — Naive plus
//! the plugin of the same name.

use burn::tensor::Device;
use cl_core::{Model, OptimizerSpec, Result, StrategyBuilder};
use cl_plugins::{
    FromScratchConfig, FromScratchPlugin, GDumbConfig, GDumbPlugin, GssGreedyConfig, GssGreedyPlugin, MirConfig,
    MirPlugin, ReplayConfig, ReplayPlugin,
};

/// Experience replay (Avalanche's `Replay`): Naive plus a [`ReplayPlugin`] (by default an
/// experience-balanced memory of `mem_size = 200` samples, as Avalanche).
///
/// ```ignore
/// let strategy = Replay::builder(model, optimizer, device, ReplayConfig::new(500))?.train_mb_size(128).build()?;
/// let memory = strategy.plugin::<ReplayPlugin>().unwrap().buffer();
/// ```
pub struct Replay;

impl Replay {
    /// A builder: Naive's defaults plus the replay plugin; an error if `config` breaks a rule.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: ReplayConfig,
    ) -> Result<StrategyBuilder<M>> {
        Ok(StrategyBuilder::new(model, optimizer, device).plugin(ReplayPlugin::new(config)?))
    }
}

/// Maximally Interfered Retrieval (Avalanche's `MIR`): Naive plus a [`MirPlugin`] — each
/// iteration replays the `batch_size_mem` memory samples (of a `subsample`) whose loss a virtual
/// SGD step on the current batch increases most.
pub struct Mir;

impl Mir {
    /// A builder: Naive's defaults plus the MIR plugin; an error if `config` breaks a rule.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: MirConfig,
    ) -> Result<StrategyBuilder<M>> {
        Ok(StrategyBuilder::new(model, optimizer, device).plugin(MirPlugin::new(config)?))
    }
}

/// GSS-greedy (Aljundi et al., "Gradient based sample selection for online continual
/// learning", NeurIPS 2019; Avalanche's `GSS_greedy`, `avalanche/training/supervised/strategy_wrappers.py`):
/// Naive plus a [`GssGreedyPlugin`] — a memory of `mem_size` samples chosen by the diversity of
/// their gradients (each candidate's best cosine similarity to random memory subsets' gradients;
/// conflicting mini-batches replace redundant samples), replayed `batch_size_mem` samples per
/// mini-batch. Avalanche's defaults (`mem_size` 200, `mem_strength` 1); Avalanche's strategy
/// also defaults to `train_mb_size = 1`, here the builder's usual default applies.
///
/// ```ignore
/// let config = GssGreedyConfig::new(1000).with_input_size(vec![1, 28, 28]);
/// let strategy = GssGreedy::builder(model, optimizer, device, config)?.train_mb_size(128).build()?;
/// ```
#[doc(alias = "GSS_greedy")]
pub struct GssGreedy;

impl GssGreedy {
    /// A builder: Naive's defaults plus the GSS-greedy plugin; an error if `config` breaks a rule.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: GssGreedyConfig,
    ) -> Result<StrategyBuilder<M>> {
        Ok(StrategyBuilder::new(model, optimizer, device).plugin(GssGreedyPlugin::new(config)?))
    }
}

/// GDumb (Avalanche's `GDumb`): Naive plus a [`GDumbPlugin`] — the model is retrained from its
/// initial weights on a class-balanced memory at every experience.
pub struct GDumb;

impl GDumb {
    /// A builder: Naive's defaults plus the GDumb plugin; an error if `config` breaks a rule.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: GDumbConfig,
    ) -> Result<StrategyBuilder<M>> {
        Ok(StrategyBuilder::new(model, optimizer, device).plugin(GDumbPlugin::<M>::new(config)?))
    }
}

/// Training from scratch on each experience (Avalanche's `FromScratchTraining`): Naive plus a
/// [`FromScratchPlugin`] that puts the model back to its initial weights (and, by default,
/// resets the optimizer) before every experience after the first.
pub struct FromScratchTraining;

impl FromScratchTraining {
    /// A builder: Naive's defaults plus the from-scratch plugin; an error if `config` breaks a
    /// rule.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: FromScratchConfig,
    ) -> Result<StrategyBuilder<M>> {
        Ok(StrategyBuilder::new(model, optimizer, device).plugin(FromScratchPlugin::<M>::new(config)?))
    }

    /// Like [`builder`](Self::builder), but each reset draws a fresh model from `factory` (e.g.
    /// new random weights) instead of the initial weights; the first model is `factory()` too.
    pub fn builder_with_factory<M: Model>(
        factory: impl Fn() -> M + Send + 'static,
        optimizer: OptimizerSpec,
        device: Device,
        config: FromScratchConfig,
    ) -> Result<StrategyBuilder<M>> {
        let model = factory();
        let plugin = FromScratchPlugin::new(config)?.with_factory(factory);
        Ok(StrategyBuilder::new(model, optimizer, device).plugin(plugin))
    }
}
