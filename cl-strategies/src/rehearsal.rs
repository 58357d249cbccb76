//! Rehearsal strategies: [`Replay`], [`GDumb`], and [`FromScratchTraining`].

use burn::tensor::Device;
use cl_core::{DefaultSteps, Model, OptimizerSpec, Result, StrategyBuilder};
use cl_plugins::{FromScratchPlugin, GDumbPlugin, ReplayPlugin};

use crate::Naive;

/// Experience replay (Avalanche's `Replay`): Naive plus a [`ReplayPlugin`] with an adaptive
/// experience-balanced memory of `mem_size` samples.
///
/// ```ignore
/// let strategy = Replay::builder(model, optimizer, device, 500)?.train_mb_size(128).build()?;
/// ```
pub struct Replay;

impl Replay {
    /// A builder: Naive's defaults plus the replay plugin.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        mem_size: usize,
    ) -> Result<StrategyBuilder<M, DefaultSteps>> {
        Ok(Naive::builder(model, optimizer, device).plugin(ReplayPlugin::new(mem_size)?))
    }
}

/// GDumb (Avalanche's `GDumb`): Naive plus a [`GDumbPlugin`] of `mem_size` samples — the model
/// is retrained from its initial weights on the class-balanced memory at every experience.
pub struct GDumb;

impl GDumb {
    /// A builder: Naive's defaults plus the GDumb plugin (memory seeded with `seed`).
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        mem_size: usize,
        seed: u64,
    ) -> Result<StrategyBuilder<M, DefaultSteps>> {
        Ok(Naive::builder(model, optimizer, device).plugin(GDumbPlugin::new(mem_size, seed)?))
    }
}

/// Training from scratch on each experience (Avalanche's `FromScratchTraining`): Naive plus a
/// [`FromScratchPlugin`] that replaces the model by `factory()` (and resets the optimizer)
/// before every experience after the first.
pub struct FromScratchTraining;

impl FromScratchTraining {
    /// A builder: Naive's defaults plus the from-scratch plugin.
    pub fn builder<M: Model>(
        factory: impl Fn() -> M + Send + 'static,
        optimizer: OptimizerSpec,
        device: Device,
    ) -> StrategyBuilder<M, DefaultSteps> {
        let model = factory();
        Naive::builder(model, optimizer, device).plugin(FromScratchPlugin::new(factory))
    }
}
