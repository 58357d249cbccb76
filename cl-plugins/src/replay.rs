//! [`ReplayPlugin`]: rehearsal from a memory buffer (Avalanche's `ReplayPlugin`).

use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, rule};
use cl_core::data::{DataLoaderConfig, ReplayDataLoader, ReplayDataLoaderConfig};
use cl_core::{ClError, Model, Plugin, Result, StatePart, StrategyState};
use serde::{Deserialize, Serialize};

use crate::storage::{ExperienceBalancedConfig, StorageContext, StoragePolicy, StoragePolicyConfig};

/// The configuration of a [`ReplayPlugin`]: Avalanche's `ReplayPlugin(mem_size=200,
/// batch_size=None, batch_size_mem=None, task_balanced_dataloader=False, storage_policy=None)`,
/// with the storage policy as a serialisable [`StoragePolicyConfig`].
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_plugins::ReplayConfig;
/// use cl_plugins::storage::{ReservoirConfig, StoragePolicyConfig};
/// // ReplayPlugin(mem_size=500, batch_size_mem=32,
/// //              storage_policy=ReservoirSamplingBuffer(max_size=500))
/// let config = ReplayConfig::new(500)
///     .with_batch_size_mem(32)
///     .with_storage(StoragePolicyConfig::Reservoir(ReservoirConfig::new(500)));
/// assert_eq!(ReplayConfig::from_json(&config.to_json()).unwrap(), config);
/// assert_eq!(ReplayConfig::default().mem_size, 200);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplayConfig {
    /// Samples in the memory (Avalanche's default 200; at least 1).
    pub mem_size: usize,
    /// Current samples per mini-batch (default `None`: the strategy's `train_mb_size`).
    pub batch_size: Option<usize>,
    /// Memory samples per mini-batch (default `None`: the strategy's `train_mb_size`).
    ///
    /// Avalanche's docstring says the default is the *data* batch size, its code uses
    /// `strategy.train_mb_size`; this follows the code.
    pub batch_size_mem: Option<usize>,
    /// Split the memory part of each batch evenly over the memory's task labels (default
    /// `false`); `batch_size_mem` must then be at least the number of tasks in the memory.
    pub task_balanced_dataloader: bool,
    /// The memory (default `None`: an adaptive [`ExperienceBalancedBuffer`](crate::storage::ExperienceBalancedBuffer) of `mem_size`
    /// samples, seed 0, as Avalanche). Its `max_size` must equal `mem_size` (Avalanche asserts
    /// it too).
    pub storage: Option<StoragePolicyConfig>,
}

impl Default for ReplayConfig {
    /// Avalanche's defaults: a memory of 200 samples.
    fn default() -> Self {
        Self::new(200)
    }
}

impl ReplayConfig {
    /// A memory of `mem_size` samples, Avalanche's other defaults (a shorthand for
    /// `ReplayConfig::default().with_mem_size(mem_size)`, since the memory size is nearly
    /// always given).
    pub fn new(mem_size: usize) -> Self {
        Self { mem_size, batch_size: None, batch_size_mem: None, task_balanced_dataloader: false, storage: None }
    }

    /// Sets the memory size.
    pub fn with_mem_size(mut self, mem_size: usize) -> Self {
        self.mem_size = mem_size;
        self
    }

    /// Sets the current samples per mini-batch.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = Some(batch_size);
        self
    }

    /// Sets the memory samples per mini-batch.
    pub fn with_batch_size_mem(mut self, batch_size_mem: usize) -> Self {
        self.batch_size_mem = Some(batch_size_mem);
        self
    }

    /// Sets whether the memory part of each batch is balanced over tasks.
    pub fn with_task_balanced_dataloader(mut self, on: bool) -> Self {
        self.task_balanced_dataloader = on;
        self
    }

    /// Sets the storage policy (its `max_size` must be `mem_size`).
    pub fn with_storage(mut self, storage: StoragePolicyConfig) -> Self {
        self.storage = Some(storage);
        self
    }

    /// The storage policy in effect: the configured one, or Avalanche's default.
    pub fn resolved_storage(&self) -> StoragePolicyConfig {
        self.storage
            .clone()
            .unwrap_or_else(|| StoragePolicyConfig::ExperienceBalanced(ExperienceBalancedConfig::new(self.mem_size)))
    }
}

impl Validate for ReplayConfig {
    /// `mem_size_positive`, `batch_size_positive`, `batch_size_mem_positive`,
    /// `storage_max_size_matches_mem_size`, then the storage config's rules.
    fn validate(&self) -> Result<()> {
        const C: &str = "ReplayConfig";
        rule(C, "mem_size_positive", self.mem_size > 0, || "mem_size must be at least 1".into())?;
        rule(C, "batch_size_positive", self.batch_size != Some(0), || {
            "batch_size must be at least 1 (or unset: the strategy's train_mb_size)".into()
        })?;
        rule(C, "batch_size_mem_positive", self.batch_size_mem != Some(0), || {
            "batch_size_mem must be at least 1 (or unset: the strategy's train_mb_size)".into()
        })?;
        check_storage_size(self.mem_size, self.storage.as_ref().map(StoragePolicyConfig::max_size))?;
        match &self.storage {
            Some(storage) => storage.validate(),
            None => Ok(()),
        }
    }
}

/// The `storage_max_size_matches_mem_size` rule.
fn check_storage_size(mem_size: usize, max_size: Option<usize>) -> Result<()> {
    rule("ReplayConfig", "storage_max_size_matches_mem_size", max_size.is_none_or(|m| m == mem_size), || {
        format!(
            "the storage policy holds {} samples but mem_size is {mem_size}; give both the same size",
            max_size.unwrap_or(0)
        )
    })
}

/// Experience replay (Avalanche's `ReplayPlugin`): from the second experience on, every training
/// mini-batch is `batch_size` current samples plus `batch_size_mem` samples of the memory (a
/// [`ReplayDataLoader`], oversampling small tasks as Avalanche); after each experience the memory
/// is updated by the storage policy (default: an adaptive [`ExperienceBalancedBuffer`](crate::storage::ExperienceBalancedBuffer) of
/// `mem_size` samples, as Avalanche).
///
/// Not generic over the model: `ReplayPlugin::new(ReplayConfig::new(100))?` needs no type
/// annotation, and the memory is reachable after `build` with
/// `strategy.plugin::<ReplayPlugin>()` then [`storage`](Self::storage).
///
/// The replay loader is seeded with the per-experience seed
/// ([`StrategyState::experience_seed`]); the memory is updated with the evaluation copy of the
/// model (`state.model().valid()`), which feature-based selection runs.
///
/// ```
/// use cl_plugins::{ReplayConfig, ReplayPlugin};
/// use cl_plugins::storage::ExperienceBalancedBuffer;
/// let replay = ReplayPlugin::new(ReplayConfig::new(500))?;
/// assert_eq!(replay.storage().max_size(), 500);
/// assert!(replay.storage().downcast_ref::<ExperienceBalancedBuffer>().is_some());
/// // Naive::builder(model, optimizer, device, NaiveConfig::default())?.plugin(replay).build()?
/// # Ok::<(), cl_core::ClError>(())
/// ```
pub struct ReplayPlugin {
    config: ReplayConfig,
    storage: Box<dyn StoragePolicy>,
}

impl std::fmt::Debug for ReplayPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayPlugin")
            .field("config", &self.config)
            .field("memory_len", &self.storage.len())
            .finish_non_exhaustive()
    }
}

impl ReplayPlugin {
    /// Replay as `config` says (its memory built from `config.storage`, or Avalanche's default);
    /// an error if the config breaks a rule.
    pub fn new(config: ReplayConfig) -> Result<Self> {
        config.validate()?;
        let storage = config.resolved_storage().build()?;
        Ok(Self { config, storage })
    }

    /// Replay with a storage policy of your own (Avalanche's `storage_policy=` argument with an
    /// object); its `max_size` must be `config.mem_size`, and `config.storage` must be unset.
    pub fn with_storage(config: ReplayConfig, policy: impl StoragePolicy) -> Result<Self> {
        config.validate()?;
        if config.storage.is_some() {
            return Err(ClError::InvalidConfig {
                config: "ReplayConfig",
                rule: "storage_unset_with_custom_policy",
                reason: "a custom storage policy replaces `storage`: leave `storage` unset".into(),
            });
        }
        check_storage_size(config.mem_size, Some(policy.max_size()))?;
        Ok(Self { config, storage: Box::new(policy) })
    }

    /// The configuration.
    pub fn config(&self) -> &ReplayConfig {
        &self.config
    }

    /// The storage policy (the memory); downcast it with `storage().downcast_ref::<P>()`.
    pub fn storage(&self) -> &dyn StoragePolicy {
        self.storage.as_ref()
    }

    /// The storage policy, mutably (e.g. to resize it between experiences).
    pub fn storage_mut(&mut self) -> &mut dyn StoragePolicy {
        self.storage.as_mut()
    }
}

impl<M: Model> Plugin<M> for ReplayPlugin {
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::TrainingData]
    }

    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let Some(memory) = self.storage.buffer().filter(|b| !b.is_empty()) else {
            return Ok(());
        };
        let data = state.adapted_dataset.as_ref().ok_or(ClError::MissingState("adapted_dataset"))?;
        let mb_size = state.settings().train_mb_size();
        let loader = DataLoaderConfig::train(self.config.batch_size.unwrap_or(mb_size), state.experience_seed());
        let config = ReplayDataLoaderConfig::new(loader)
            .with_batch_size_mem(self.config.batch_size_mem.unwrap_or(mb_size))
            .with_oversample_small_tasks(true)
            .with_task_balanced_dataloader(self.config.task_balanced_dataloader);
        state.dataloader = Some(Box::new(ReplayDataLoader::new(data, Some(&memory), config)?));
        Ok(())
    }

    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        // Never a forward pass on the autodiff model (it would leave graph state behind).
        let eval_model = state.model().valid();
        self.storage.update(&StorageContext::from_state(state, &eval_model)?)
    }

    /// The configuration (checked on load) and the memory's state (a nested dictionary:
    /// [`StoragePolicy::save_state`]; a custom policy must implement it).
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config)?;
        let mut storage = StateDict::new(format!("{} (storage policy)", out.component()));
        self.storage.save_state(&mut storage)?;
        out.put_dict("storage", storage);
        Ok(())
    }

    fn load_state(&mut self, state: &StateDict, _strategy: &StrategyState<M>) -> Result<()> {
        state.check_config("config", &self.config)?;
        self.storage.load_state(state.dict("storage")?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::storage::{
        BufferSizing, ClassBalancedConfig, ExperienceBalancedBuffer, FeatureSource, GroupBy, ParametricBuffer,
        ParametricBufferConfig, ReservoirConfig, ReservoirSamplingBuffer, SelectionConfig,
    };
    use crate::training::test_util::{builder, stream, tiny_mlp};
    use cl_core::config::{ConfigFile, assert_rule};
    use cl_models::SimpleMlp;

    #[test]
    fn new_infers_without_a_type_annotation() {
        // `ReplayPlugin::new(100)?` used to need a turbofish (E0283): the plugin is not generic.
        let replay = ReplayPlugin::new(ReplayConfig::new(100)).unwrap();
        assert_eq!(replay.storage().max_size(), 100);
        let strategy = builder(tiny_mlp(4), 0.1, 1).plugin(replay).build().unwrap();
        assert!(strategy.plugin::<ReplayPlugin>().is_some());
    }

    #[test]
    fn config_round_trips() {
        for c in [
            ReplayConfig::default(),
            ReplayConfig::new(64).with_batch_size(8).with_batch_size_mem(4).with_task_balanced_dataloader(true),
            ReplayConfig::new(30)
                .with_storage(ClassBalancedConfig::new(30).with_sizing(BufferSizing::Fixed { groups: 3 }).into()),
            ReplayConfig::new(12).with_storage(
                ParametricBufferConfig::new(12)
                    .with_groupby(GroupBy::Task)
                    .with_selection(SelectionConfig::herding(FeatureSource::Logits))
                    .into(),
            ),
        ] {
            assert_eq!(ReplayConfig::from_json(&c.to_json()).unwrap(), c);
            assert_eq!(ReplayConfig::from_toml(&c.to_toml().unwrap()).unwrap(), c);
        }
        let c =
            ReplayConfig::from_toml("mem_size = 10\n[storage]\ntype = \"reservoir\"\nmax_size = 10\nseed = 2").unwrap();
        assert_eq!(c, ReplayConfig::new(10).with_storage(ReservoirConfig::new(10).with_seed(2).into()));
        assert_eq!(ReplayConfig::from_json("{}").unwrap(), ReplayConfig::default());
    }

    #[test]
    fn config_rules() {
        let c = ReplayConfig::new;
        assert_rule(c(0).validate(), "mem_size_positive");
        assert_rule(c(10).with_batch_size(0).validate(), "batch_size_positive");
        assert_rule(c(10).with_batch_size_mem(0).validate(), "batch_size_mem_positive");
        assert_rule(
            c(10).with_storage(ReservoirConfig::new(11).into()).validate(),
            "storage_max_size_matches_mem_size",
        );
        // The storage config's own rules.
        let fixed = ClassBalancedConfig::new(10).with_sizing(BufferSizing::Fixed { groups: 0 });
        assert_rule(c(10).with_storage(fixed.into()).validate(), "sizing_groups_positive");
        assert_rule(ReplayPlugin::new(c(0)), "mem_size_positive");
        // A custom policy: same size, and no storage config besides it.
        let policy = || ReservoirSamplingBuffer::new(ReservoirConfig::new(10)).unwrap();
        assert_rule(ReplayPlugin::with_storage(c(11), policy()), "storage_max_size_matches_mem_size");
        assert_rule(
            ReplayPlugin::with_storage(c(10).with_storage(ReservoirConfig::new(10).into()), policy()),
            "storage_unset_with_custom_policy",
        );
        let replay = ReplayPlugin::with_storage(c(10), policy()).unwrap();
        assert!(replay.storage().downcast_ref::<ReservoirSamplingBuffer>().is_some());
    }

    /// Records the size of every training batch, per experience.
    struct BatchSizes(Arc<Mutex<Vec<Vec<usize>>>>);
    impl Plugin<SimpleMlp> for BatchSizes {
        fn before_training_exp(&mut self, _s: &mut StrategyState<SimpleMlp>) -> Result<()> {
            self.0.lock().unwrap().push(Vec::new());
            Ok(())
        }
        fn before_training_iteration(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
            let n = s.current_batch()?.len();
            self.0.lock().unwrap().last_mut().unwrap().push(n);
            Ok(())
        }
    }

    #[test]
    fn replay_batches_hold_current_and_memory_samples() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let mut s = builder(tiny_mlp(4), 0.1, 1)
            .train_mb_size(5)
            // The replay plugin replaces the loader in before_training_exp: the probe runs after it.
            .plugin(ReplayPlugin::new(ReplayConfig::new(6).with_batch_size_mem(3)).unwrap())
            .plugin(BatchSizes(sizes.clone()))
            .build()
            .unwrap();
        s.train(&stream(2, 20)).unwrap();
        let sizes = sizes.lock().unwrap();
        assert_eq!(sizes[0], vec![5; 4], "first experience: no memory yet");
        // Second: 4 batches of 5 current + 3 memory samples (the 6-sample memory cycles).
        assert_eq!(sizes[1], vec![8; 4]);
        let replay = s.plugin::<ReplayPlugin>().unwrap();
        assert_eq!(replay.storage().len(), 6);
        let memory = replay.storage().downcast_ref::<ExperienceBalancedBuffer>().unwrap();
        assert_eq!(memory.buffer_groups().len(), 2);
    }

    #[test]
    fn feature_based_memory_runs_the_eval_model() {
        // Herding on the model's penultimate features, through the plugin: the storage context
        // carries the evaluation copy of the model.
        let storage = ParametricBufferConfig::new(6)
            .with_groupby(GroupBy::Class)
            .with_selection(SelectionConfig::herding(FeatureSource::Features));
        let mut s = builder(tiny_mlp(4), 0.1, 1)
            .train_mb_size(5)
            .plugin(ReplayPlugin::new(ReplayConfig::new(6).with_storage(storage.into())).unwrap())
            .build()
            .unwrap();
        s.train(&stream(2, 20)).unwrap();
        let memory = s.plugin::<ReplayPlugin>().unwrap().storage().downcast_ref::<ParametricBuffer>().unwrap();
        assert_eq!(memory.group_sizes().iter().map(|g| g.0).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        assert_eq!(memory.group_sizes().iter().map(|g| g.1).sum::<usize>(), 6);
    }

    /// The memory (every policy through `StoragePolicy::save_state`) comes back sample by
    /// sample in a fresh plugin; a checkpoint of another configuration is refused; a custom
    /// policy keeps its own state.
    #[test]
    fn checkpoint_restores_the_memory() {
        use crate::persist::test_util::{assert_mismatch, assert_same_dataset, restore};
        let configs = [
            ReplayConfig::new(6),
            ReplayConfig::new(6).with_storage(ReservoirConfig::new(6).with_seed(4).into()),
            ReplayConfig::new(6).with_storage(
                ParametricBufferConfig::new(6)
                    .with_groupby(GroupBy::Class)
                    .with_selection(SelectionConfig::herding(FeatureSource::Features))
                    .into(),
            ),
        ];
        for config in configs {
            let mut s =
                builder(tiny_mlp(6), 0.1, 1).plugin(ReplayPlugin::new(config.clone()).unwrap()).build().unwrap();
            s.train(&stream(3, 8)).unwrap();
            let replay = s.plugin::<ReplayPlugin>().unwrap();
            let mut fresh = ReplayPlugin::new(config.clone()).unwrap();
            let state = restore::<SimpleMlp, _>(replay, &mut fresh, s.state());
            assert_same_dataset(&replay.storage().buffer().unwrap(), &fresh.storage().buffer().unwrap());
            let mut other = ReplayPlugin::new(config.clone().with_batch_size_mem(3)).unwrap();
            assert_mismatch::<SimpleMlp, _>(&state, &mut other, s.state());
        }
        let custom = || {
            ReplayPlugin::with_storage(
                ReplayConfig::new(5),
                ReservoirSamplingBuffer::new(ReservoirConfig::new(5)).unwrap(),
            )
        };
        let mut s = builder(tiny_mlp(6), 0.1, 1).plugin(custom().unwrap()).build().unwrap();
        s.train(&stream(3, 8)).unwrap();
        let mut fresh = custom().unwrap();
        restore::<SimpleMlp, _>(s.plugin::<ReplayPlugin>().unwrap(), &mut fresh, s.state());
        assert_eq!(fresh.storage().len(), 5);
    }

    #[test]
    fn replay_declares_the_training_data() {
        let replay = ReplayPlugin::new(ReplayConfig::default()).unwrap();
        assert_eq!(<ReplayPlugin as Plugin<SimpleMlp>>::writes(&replay), vec![StatePart::TrainingData]);
        assert_eq!(<ReplayPlugin as Plugin<SimpleMlp>>::name(&replay), "ReplayPlugin");
    }
}
