//! [`FromScratchPlugin`]: Avalanche's `FromScratchTrainingPlugin`.

use cl_core::checkpoint::StateDict;
use cl_core::config::Validate;
use cl_core::{Model, Plugin, Result, StatePart, StrategyState};
use serde::{Deserialize, Serialize};

use crate::persist::{opt_model, put_opt_model};

/// The configuration of a [`FromScratchPlugin`]: Avalanche's
/// `FromScratchTrainingPlugin(reset_optimizer=True)`.
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_plugins::FromScratchConfig;
/// let config = FromScratchConfig::default().with_reset_optimizer(false);
/// assert_eq!(FromScratchConfig::from_toml("reset_optimizer = false").unwrap(), config);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FromScratchConfig {
    /// Whether the optimizer (and its state: momentum, Adam moments) is reset with the model
    /// (default `true`).
    pub reset_optimizer: bool,
}

impl Default for FromScratchConfig {
    /// Avalanche's default: the optimizer is reset too.
    fn default() -> Self {
        Self { reset_optimizer: true }
    }
}

impl FromScratchConfig {
    /// Avalanche's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets whether the optimizer is reset with the model.
    pub fn with_reset_optimizer(mut self, reset: bool) -> Self {
        self.reset_optimizer = reset;
        self
    }
}

impl Validate for FromScratchConfig {
    /// No rule: every value is valid.
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// Trains every experience from scratch (Avalanche's `FromScratchTrainingPlugin`, the plugin
/// behind its `FromScratchTraining` baseline): before each experience after the first, the model
/// goes back to its initial weights and, with `reset_optimizer` (default), the optimizer to a
/// fresh state.
///
/// As Avalanche, the initial weights are the model's at the first experience, and they are
/// refreshed after each reset with the model adapted to the new experience (so parameters that a
/// dynamic model adds keep their initial values at later resets). The reset happens in
/// `before_training_exp`, i.e. after the template's model adaptation and `make_optimizer`,
/// through [`StrategyState::replace_model`] (training device, train mode, strategy seed, and
/// adaptation to the current experience, so dynamic models grow their heads again). Avalanche
/// copies the initial values into the parameters whose shapes did not change, keeping a grown
/// layer as trained; here the whole model is replaced, grown layers included.
///
/// [`with_factory`](Self::with_factory) draws a fresh model from a closure at each reset
/// instead (e.g. new random weights); not serialisable.
///
/// Declares [`StatePart::ModelReset`] (exclusive: with [`GDumbPlugin`](crate::GDumbPlugin) the
/// builder rejects the strategy) and, with `reset_optimizer`, [`StatePart::Optimizer`]. Stores the
/// model, so it is `FromScratchPlugin<M>` (inferred from the strategy builder).
///
/// ```
/// use cl_plugins::{FromScratchConfig, FromScratchPlugin};
/// # fn f<M: cl_core::Model>() -> cl_core::Result<()> {
/// // FromScratchTrainingPlugin(reset_optimizer=True)
/// let plugin: FromScratchPlugin<M> = FromScratchPlugin::new(FromScratchConfig::default())?;
/// # Ok(()) }
/// ```
#[doc(alias = "FromScratchTrainingPlugin")]
pub struct FromScratchPlugin<M: Model> {
    config: FromScratchConfig,
    /// The initial weights (adapted to the experiences so far); `None` before the first
    /// experience.
    initial: Option<M>,
    /// Fresh models instead of the initial weights.
    factory: Option<Box<dyn Fn() -> M + Send>>,
    /// Whether the first experience was seen (with a factory, nothing else records it).
    started: bool,
}

impl<M: Model> std::fmt::Debug for FromScratchPlugin<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FromScratchPlugin")
            .field("config", &self.config)
            .field("factory", &self.factory.is_some())
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

impl<M: Model> FromScratchPlugin<M> {
    /// Training from scratch as `config` says; an error if the config breaks a rule.
    pub fn new(config: FromScratchConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config, initial: None, factory: None, started: false })
    }

    /// Resets the model to `factory()` (e.g. new random weights) instead of the initial weights.
    pub fn with_factory(mut self, factory: impl Fn() -> M + Send + 'static) -> Self {
        self.factory = Some(Box::new(factory));
        self
    }

    /// The configuration.
    pub fn config(&self) -> &FromScratchConfig {
        &self.config
    }
}

impl<M: Model> Plugin<M> for FromScratchPlugin<M> {
    fn writes(&self) -> Vec<StatePart> {
        let mut parts = vec![StatePart::ModelReset];
        if self.config.reset_optimizer {
            parts.push(StatePart::Optimizer);
        }
        parts
    }

    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        if !std::mem::replace(&mut self.started, true) {
            if self.factory.is_none() {
                // Without autodiff: `replace_model` moves it back to the autodiff device.
                self.initial = Some(state.model().valid());
            }
            return Ok(());
        }
        let fresh = match (&self.factory, &self.initial) {
            (Some(factory), _) => factory(),
            (None, Some(initial)) => initial.clone(),
            (None, None) => unreachable!("the initial model is kept at the first experience"),
        };
        state.replace_model(fresh)?;
        if self.factory.is_none() {
            self.initial = Some(state.model().valid());
        }
        if self.config.reset_optimizer {
            state.reset_optimizer()?;
        }
        Ok(())
    }

    /// The configuration and whether a factory is used (both checked on load), whether the
    /// first experience was seen, and the initial weights (a Burn record, parameter ids kept).
    /// A factory is a closure: it is not saved, the resumed plugin must be built with the same
    /// one.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config)?;
        out.put("factory", &self.factory.is_some())?;
        out.put("started", &self.started)?;
        put_opt_model(out, "initial", self.initial.as_ref())
    }

    fn load_state(&mut self, state: &StateDict, strategy: &StrategyState<M>) -> Result<()> {
        state.check_config("config", &self.config)?;
        state.check_config("factory", &self.factory.is_some())?;
        self.started = state.get("started")?;
        self.initial = opt_model(state, "initial", strategy)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::training::test_util::{
        ModelProbe, builder, classifier_weight, generated, stream, tiny_mlp, tiny_mlp_seeded,
    };
    use crate::{GDumbConfig, GDumbPlugin};
    use cl_core::config::ConfigFile;
    use cl_core::{ClError, Experience, OptimizerSpec, Strategy, Stream};
    use cl_models::SimpleMlp;

    /// The initial weights (values and parameter ids) and whether the first experience was
    /// seen come back; another configuration, or a factory on one side only, is refused.
    #[test]
    fn checkpoint_restores_the_initial_weights() {
        use crate::persist::test_util::{assert_mismatch, module_values, restore};
        let mut s = builder(tiny_mlp(4), 0.2, 1)
            .plugin(FromScratchPlugin::<SimpleMlp>::new(FromScratchConfig::default()).unwrap())
            .build()
            .unwrap();
        s.train(&stream(2, 4)).unwrap();
        let p = s.plugin::<FromScratchPlugin<SimpleMlp>>().unwrap();
        let mut fresh = FromScratchPlugin::new(FromScratchConfig::default()).unwrap();
        let state = restore(p, &mut fresh, s.state());
        assert!(fresh.started);
        assert_eq!(module_values(fresh.initial.as_ref().unwrap()), module_values(p.initial.as_ref().unwrap()));
        let other = FromScratchConfig::new().with_reset_optimizer(false);
        assert_mismatch(&state, &mut FromScratchPlugin::new(other).unwrap(), s.state());
        let mut with_factory =
            FromScratchPlugin::new(FromScratchConfig::default()).unwrap().with_factory(|| tiny_mlp(4));
        assert_mismatch(&state, &mut with_factory, s.state());
    }

    #[test]
    fn config_round_trips() {
        for c in [FromScratchConfig::default(), FromScratchConfig::new().with_reset_optimizer(false)] {
            assert_eq!(FromScratchConfig::from_json(&c.to_json()).unwrap(), c);
            assert_eq!(FromScratchConfig::from_toml(&c.to_toml().unwrap()).unwrap(), c);
        }
        assert_eq!(FromScratchConfig::from_json("{}").unwrap(), FromScratchConfig::default());
        assert!(FromScratchConfig::from_json(r#"{"reset": true}"#).is_err());
        // No rule: every config is valid.
        assert!(FromScratchConfig::new().with_reset_optimizer(false).validate().is_ok());
    }

    #[test]
    fn declares_model_reset_and_conflicts_with_gdumb() {
        let p =
            |reset| FromScratchPlugin::<SimpleMlp>::new(FromScratchConfig::new().with_reset_optimizer(reset)).unwrap();
        assert_eq!(Plugin::<SimpleMlp>::writes(&p(true)), vec![StatePart::ModelReset, StatePart::Optimizer]);
        assert_eq!(Plugin::<SimpleMlp>::writes(&p(false)), vec![StatePart::ModelReset]);
        let err = builder(tiny_mlp(2), 0.1, 1)
            .plugin(GDumbPlugin::new(GDumbConfig::new(10)).unwrap())
            .plugin(p(true))
            .build()
            .err()
            .expect("GDumb + FromScratch conflict");
        assert!(
            matches!(&err, ClError::IncompatiblePlugins(m) if m.contains("GDumbPlugin") && m.contains("FromScratchPlugin")),
            "{err}"
        );
    }

    #[test]
    fn each_experience_starts_from_the_initial_weights() {
        let log = Arc::default();
        let model = tiny_mlp(6);
        let w_init = classifier_weight(&model);
        let mut s = builder(model, 0.2, 2)
            .plugin(FromScratchPlugin::new(FromScratchConfig::default()).unwrap())
            .plugin(ModelProbe::new(Arc::clone(&log)))
            .build()
            .unwrap();
        s.train(&stream(3, 6)).unwrap();
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 3);
        assert_eq!(log[0].0, w_init, "the first experience trains the given model");
        for e in 1..3 {
            let (start, end, _) = &log[e];
            assert_ne!(start, &log[e - 1].1, "experience {e} does not start from the trained model");
            assert_eq!(start, &w_init, "experience {e} starts from the initial weights");
            assert_ne!(start, end, "the reset model trains (it lives on the autodiff device)");
        }
    }

    #[test]
    fn a_factory_gives_fresh_models() {
        let log = Arc::default();
        let mut s = builder(tiny_mlp(6), 0.2, 1)
            .plugin(
                FromScratchPlugin::new(FromScratchConfig::default()).unwrap().with_factory(|| tiny_mlp_seeded(6, 7)),
            )
            .plugin(ModelProbe::new(Arc::clone(&log)))
            .build()
            .unwrap();
        s.train(&stream(3, 6)).unwrap();
        let log = log.lock().unwrap();
        let fresh = classifier_weight(&tiny_mlp_seeded(6, 7));
        assert_ne!(log[0].0, fresh);
        assert_eq!(log[1].0, fresh);
        assert_eq!(log[2].0, fresh);
    }

    #[test]
    fn resets_the_optimizer_state() {
        // Two experiences with the same data, full batches, SGD with momentum: from the same
        // initial weights with a fresh optimizer, the second experience repeats the first one;
        // with the momentum kept, it does not.
        let data = generated(6, &[0, 1]);
        let exps: Vec<Experience> = (0..2).map(|e| Experience::new(e, data.clone(), "train", 2)).collect();
        let stream = Stream::new("train", exps);
        let run = |reset: bool| {
            let log = Arc::default();
            let mut s = Strategy::builder(
                tiny_mlp(2),
                OptimizerSpec::sgd(0.1).with_momentum(0.9),
                burn::tensor::Device::default(),
            )
            .train_mb_size(6)
            .train_epochs(4)
            .plugin(FromScratchPlugin::new(FromScratchConfig::new().with_reset_optimizer(reset)).unwrap())
            .plugin(ModelProbe::new(Arc::clone(&log)))
            .build()
            .unwrap();
            s.train(&stream).unwrap();
            let log = log.lock().unwrap().clone();
            assert_eq!(log[0].0, log[1].0, "both experiences start from the same weights");
            log[0].1.iter().zip(&log[1].1).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
        };
        let with_reset = run(true);
        let without_reset = run(false);
        assert!(with_reset < 1e-5, "fresh optimizer: same trajectory (max diff {with_reset})");
        assert!(without_reset > 1e-3, "kept momentum changes the trajectory (max diff {without_reset})");
    }
}
