//! [`FromScratchPlugin`]: Avalanche's `FromScratchTrainingPlugin`.

use cl_core::{Model, Plugin, Result, StatePart, StrategyState};

/// Trains every experience from scratch: at the start of each experience after the first, the
/// model is replaced by a fresh one from `factory` and, with `reset_optimizer` (default `true`),
/// the optimizer by a fresh one (Avalanche's `FromScratchTrainingPlugin`, the plugin behind its
/// `FromScratchTraining` baseline).
///
/// The replacement happens in `before_training_exp`, i.e. after the template's model adaptation
/// and `make_optimizer`: the fresh model is moved to the training device (`to_device(..).train()`),
/// seeded with the strategy seed and adapted to the experience ([`Model::adaptation`]), so
/// dynamic models grow their heads again. The first experience trains the model given to the
/// strategy, which is already "from scratch".
///
/// Avalanche copies the weights saved at the first `train` back into the model; a factory that
/// clones one initial model, `move || initial.clone()`, does exactly that, while a factory that
/// initialises a new model draws new weights each time.
///
/// ```ignore
/// use cl_plugins::training::FromScratchPlugin;
/// // FromScratchTraining(model, optimizer, criterion, reset_optimizer=True):
/// let strategy = Naive::builder(tiny_mlp(), OptimizerSpec::sgd(0.01, 0.9, 0.0)?, device)
///     .plugin(FromScratchPlugin::new(|| tiny_mlp()))
///     .build()?;
/// // Same initial weights at every experience, optimizer state kept:
/// let initial = tiny_mlp();
/// let plugin = FromScratchPlugin::new(move || initial.clone()).reset_optimizer(false);
/// ```
pub struct FromScratchPlugin<M> {
    factory: Box<dyn Fn() -> M + Send>,
    reset_optimizer: bool,
}

impl<M> std::fmt::Debug for FromScratchPlugin<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FromScratchPlugin")
            .field("reset_optimizer", &self.reset_optimizer)
            .finish_non_exhaustive()
    }
}

impl<M: Model> FromScratchPlugin<M> {
    /// Resets the model to `factory()` before each experience after the first.
    pub fn new(factory: impl Fn() -> M + Send + 'static) -> Self {
        Self {
            factory: Box::new(factory),
            reset_optimizer: true,
        }
    }

    /// Whether the optimizer (and its state: momentum, Adam moments) is rebuilt too
    /// (default `true`).
    pub fn reset_optimizer(mut self, reset: bool) -> Self {
        self.reset_optimizer = reset;
        self
    }
}

impl<M: Model> Plugin<M> for FromScratchPlugin<M> {
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::Model, StatePart::Optimizer]
    }

    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        if state.clock.train_exp_counter == 0 {
            return Ok(());
        }
        let mut model = (self.factory)().to_device(&state.device).train();
        model.seed(state.seed);
        if let Some(exp) = state.experience.as_ref() {
            model.adaptation(&cl_core::Adaptation::train(exp))?;
        }
        state.set_model(model);
        if self.reset_optimizer {
            state.optimizer = Some(state.optimizer_spec.build());
        }
        Ok(())
    }
}
