//! [`GDumbPlugin`]: greedy class-balanced memory, model retrained from scratch on it.

use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, rule};
use cl_core::{Model, Plugin, Result, StatePart, StrategyState};
use serde::{Deserialize, Serialize};

use crate::persist::{opt_model, put_opt_model};
use crate::storage::{ClassBalancedBuffer, ClassBalancedConfig};

/// The configuration of a [`GDumbPlugin`]: Avalanche's `GDumbPlugin(mem_size=200)`, plus the
/// seed of the class-balanced memory's reservoirs.
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_plugins::GDumbConfig;
/// let config = GDumbConfig::new(500).with_seed(1);
/// assert_eq!(GDumbConfig::from_toml(&config.to_toml().unwrap()).unwrap(), config);
/// assert_eq!(GDumbConfig::default().mem_size, 200);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GDumbConfig {
    /// Samples in the memory (Avalanche's default 200; at least 1). As in Avalanche, one memory
    /// for all tasks.
    pub mem_size: usize,
    /// Seed of the memory's per-class reservoirs (default 0).
    pub seed: u64,
}

impl Default for GDumbConfig {
    /// Avalanche's defaults: a memory of 200 samples (seed 0).
    fn default() -> Self {
        Self::new(200)
    }
}

impl GDumbConfig {
    /// A memory of `mem_size` samples, seed 0 (a shorthand for
    /// `GDumbConfig::default().with_mem_size(mem_size)`).
    pub fn new(mem_size: usize) -> Self {
        Self { mem_size, seed: 0 }
    }

    /// Sets the memory size.
    pub fn with_mem_size(mut self, mem_size: usize) -> Self {
        self.mem_size = mem_size;
        self
    }

    /// Sets the seed of the memory's reservoirs.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

impl Validate for GDumbConfig {
    /// `mem_size_positive`.
    fn validate(&self) -> Result<()> {
        rule("GDumbConfig", "mem_size_positive", self.mem_size > 0, || "mem_size must be at least 1".into())
    }
}

/// GDumb (Prabhu et al., 2020; Avalanche's `GDumbPlugin`): a class-balanced memory of
/// `mem_size` samples (an adaptive [`ClassBalancedBuffer`]) is filled greedily from the stream;
/// at each experience the model goes back to its initial weights, the optimizer to a fresh
/// state, and training runs on the memory only.
///
/// As Avalanche: the initial model is kept from the first experience; in
/// `before_train_dataset_adaptation` of every later one the model is replaced by it
/// ([`StrategyState::replace_model`]) — the loop then adapts it to the experience — and in
/// `after_train_dataset_adaptation` the memory is updated with the experience and becomes the
/// training data. Avalanche also adapts its copy of the initial model at every experience so
/// that dynamic models keep the heads of earlier experiences; here the kept model is refreshed
/// in `before_training_exp` with the just-reset, adapted and not yet trained model, which is the
/// same. Unlike Avalanche, the optimizer is reset explicitly (Burn keys optimizer state by
/// parameter id, which the reset model keeps).
///
/// Declares [`StatePart::TrainingData`], [`StatePart::ModelReset`] (exclusive: GDumb and
/// [`FromScratchPlugin`](crate::FromScratchPlugin) or [`ReplayPlugin`](crate::ReplayPlugin)
/// are rejected by the builder) and [`StatePart::Optimizer`]. Stores the model, so it is
/// `GDumbPlugin<M>` (the model type is inferred from the strategy builder).
///
/// ```
/// use cl_plugins::{GDumbConfig, GDumbPlugin};
/// # fn f<M: cl_core::Model>() -> cl_core::Result<()> {
/// let gdumb: GDumbPlugin<M> = GDumbPlugin::new(GDumbConfig::new(500))?;
/// assert_eq!(gdumb.storage().max_size(), 500);
/// # Ok(()) }
/// ```
pub struct GDumbPlugin<M: Model> {
    config: GDumbConfig,
    storage: ClassBalancedBuffer,
    init_model: Option<M>,
}

impl<M: Model> std::fmt::Debug for GDumbPlugin<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GDumbPlugin")
            .field("config", &self.config)
            .field("memory_len", &self.storage.len())
            .finish_non_exhaustive()
    }
}

impl<M: Model> GDumbPlugin<M> {
    /// GDumb as `config` says; an error if the config breaks a rule.
    pub fn new(config: GDumbConfig) -> Result<Self> {
        config.validate()?;
        let storage = ClassBalancedBuffer::new(ClassBalancedConfig::new(config.mem_size).with_seed(config.seed))?;
        Ok(Self { config, storage, init_model: None })
    }

    /// The configuration.
    pub fn config(&self) -> &GDumbConfig {
        &self.config
    }

    /// The memory.
    pub fn storage(&self) -> &ClassBalancedBuffer {
        &self.storage
    }
}

impl<M: Model> Plugin<M> for GDumbPlugin<M> {
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::TrainingData, StatePart::ModelReset, StatePart::Optimizer]
    }

    fn before_train_dataset_adaptation(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        match &self.init_model {
            None => self.init_model = Some(state.model().valid()),
            Some(init) => {
                state.replace_model(init.clone())?;
                state.reset_optimizer()?;
            }
        }
        Ok(())
    }

    fn after_train_dataset_adaptation(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        self.storage.update_from_dataset(&state.current_experience()?.dataset)?;
        state.adapted_dataset = self.storage.buffer();
        Ok(())
    }

    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        // The initial weights, adapted to every experience so far (new heads keep their initial
        // values at the next reset, as Avalanche's adapted `init_model`). Kept without autodiff:
        // `replace_model` moves it back to the autodiff device in training mode.
        self.init_model = Some(state.model().valid());
        Ok(())
    }

    /// The configuration (checked on load), the class-balanced memory (every class's samples,
    /// weights and generator position) and the initial model the next experience restarts
    /// from (a Burn record, parameter ids kept).
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config)?;
        let mut storage = StateDict::new(format!("{} (memory)", out.component()));
        self.storage.save_state(&mut storage)?;
        out.put_dict("storage", storage);
        put_opt_model(out, "init_model", self.init_model.as_ref())
    }

    fn load_state(&mut self, state: &StateDict, strategy: &StrategyState<M>) -> Result<()> {
        state.check_config("config", &self.config)?;
        self.storage.load_state(state.dict("storage")?)?;
        self.init_model = opt_model(state, "init_model", strategy)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::training::test_util::{ModelProbe, builder, classifier_weight, stream, tiny_mlp};
    use crate::{ReplayConfig, ReplayPlugin};
    use cl_core::ClError;
    use cl_core::config::{ConfigFile, assert_rule};
    use cl_models::SimpleMlp;

    #[test]
    fn config_round_trips_and_rules() {
        for c in [GDumbConfig::default(), GDumbConfig::new(40).with_seed(3)] {
            assert_eq!(GDumbConfig::from_json(&c.to_json()).unwrap(), c);
            assert_eq!(GDumbConfig::from_toml(&c.to_toml().unwrap()).unwrap(), c);
        }
        assert_eq!(GDumbConfig::from_json("{}").unwrap(), GDumbConfig::default());
        assert_rule(GDumbConfig::new(0).validate(), "mem_size_positive");
        assert_rule(GDumbPlugin::<SimpleMlp>::new(GDumbConfig::new(0)), "mem_size_positive");
    }

    #[test]
    fn gdumb_conflicts_with_replay_and_declares_its_parts() {
        let gdumb = GDumbPlugin::<SimpleMlp>::new(GDumbConfig::new(10)).unwrap();
        assert_eq!(
            Plugin::<SimpleMlp>::writes(&gdumb),
            vec![StatePart::TrainingData, StatePart::ModelReset, StatePart::Optimizer]
        );
        assert_eq!(Plugin::<SimpleMlp>::name(&gdumb), "GDumbPlugin");
        let err = builder(tiny_mlp(4), 0.1, 1)
            .plugin(ReplayPlugin::new(ReplayConfig::new(10)).unwrap())
            .plugin(gdumb)
            .build()
            .err()
            .expect("replay + GDumb conflict");
        let msg = err.to_string();
        assert!(matches!(err, ClError::IncompatiblePlugins(_)));
        assert!(msg.contains("ReplayPlugin") && msg.contains("GDumbPlugin"), "{msg}");
    }

    /// The class-balanced memory and the initial model (values and parameter ids) come back
    /// exactly; a checkpoint of another memory size or seed is refused.
    #[test]
    fn checkpoint_restores_the_memory_and_the_initial_model() {
        use crate::persist::test_util::{assert_mismatch, assert_same_dataset, module_values, restore};
        let config = GDumbConfig::new(8).with_seed(1);
        let mut s = builder(tiny_mlp(6), 0.2, 1).plugin(GDumbPlugin::new(config.clone()).unwrap()).build().unwrap();
        s.train(&stream(3, 6)).unwrap();
        let gdumb = s.plugin::<GDumbPlugin<SimpleMlp>>().unwrap();
        let mut fresh = GDumbPlugin::new(config.clone()).unwrap();
        let state = restore(gdumb, &mut fresh, s.state());
        assert_same_dataset(&gdumb.storage().buffer().unwrap(), &fresh.storage().buffer().unwrap());
        assert_eq!(fresh.storage().seen_classes(), gdumb.storage().seen_classes());
        assert_eq!(
            module_values(fresh.init_model.as_ref().unwrap()),
            module_values(gdumb.init_model.as_ref().unwrap()),
            "the initial model, ids included"
        );
        for other in [GDumbConfig::new(9).with_seed(1), GDumbConfig::new(8).with_seed(2)] {
            assert_mismatch(&state, &mut GDumbPlugin::new(other).unwrap(), s.state());
        }
    }

    #[test]
    fn gdumb_trains_the_initial_model_on_the_memory() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let model = tiny_mlp(6);
        let w_init = classifier_weight(&model);
        let mut s = builder(model, 0.2, 2)
            .plugin(GDumbPlugin::new(GDumbConfig::new(8).with_seed(1)).unwrap())
            .plugin(ModelProbe::new(log.clone()))
            .build()
            .unwrap();
        s.train(&stream(3, 6)).unwrap();
        let log = log.lock().unwrap();
        for (e, (start, end, data_len)) in log.iter().enumerate() {
            assert_eq!(start, &w_init, "experience {e} starts from the initial weights");
            assert_ne!(start, end, "experience {e} trains");
            // The training data is the memory: 6, then 8 (full) samples.
            assert_eq!(*data_len, if e == 0 { 6 } else { 8 });
        }
        let gdumb = s.plugin::<GDumbPlugin<SimpleMlp>>().unwrap();
        assert_eq!(gdumb.storage().len(), 8);
        assert_eq!(gdumb.storage().seen_classes().len(), 6);
    }
}
