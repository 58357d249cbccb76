//! [`MirPlugin`]: Maximally Interfered Retrieval (Aljundi et al., 2019; Avalanche's `MIRPlugin`).

use std::collections::BTreeSet;

use burn::module::{ModuleMapper, Param};
use burn::optim::GradientsParams;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};
use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, rule};
use cl_core::data::{ClassificationDataset, CyclingSampler};
use cl_core::{ClError, Model, Plugin, Result, StatePart, StrategyState, check_labels};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::storage::{ClassBalancedBuffer, ClassBalancedConfig};

/// MIR's hyper-parameters, with the defaults of Avalanche's `MIR` strategy
/// (`MIRPlugin(mem_size=200, subsample=200)`, `batch_size_mem=1`).
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_plugins::{MirConfig, MirPlugin};
/// let config = MirConfig::new(500).with_subsample(50).with_batch_size_mem(10);
/// assert_eq!(MirConfig::from_toml("mem_size = 500\nsubsample = 50\nbatch_size_mem = 10")?, config);
/// assert!(MirPlugin::new(MirConfig::new(500).with_batch_size_mem(300)).is_err());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "MIRPlugin")]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MirConfig {
    /// Samples in the memory, balanced over the classes seen (default 200, at least 1).
    pub mem_size: usize,
    /// Memory samples scored per iteration (default 200, at least 1).
    pub subsample: usize,
    /// Memory samples replayed per iteration: the most interfered of the subsample (default 1,
    /// at least 1, at most `subsample`).
    pub batch_size_mem: usize,
    /// Seed of the memory's reservoirs (default 0).
    pub seed: u64,
}

impl Default for MirConfig {
    /// Avalanche's defaults: 200 samples, subsample 200, 1 replayed per iteration.
    fn default() -> Self {
        Self::new(200)
    }
}

impl MirConfig {
    /// A memory of `mem_size` samples, Avalanche's other defaults.
    pub fn new(mem_size: usize) -> Self {
        Self { mem_size, subsample: 200, batch_size_mem: 1, seed: 0 }
    }

    /// Sets the memory size.
    pub fn with_mem_size(mut self, mem_size: usize) -> Self {
        self.mem_size = mem_size;
        self
    }

    /// Sets the number of memory samples scored per iteration.
    pub fn with_subsample(mut self, subsample: usize) -> Self {
        self.subsample = subsample;
        self
    }

    /// Sets the number of memory samples replayed per iteration.
    pub fn with_batch_size_mem(mut self, batch_size_mem: usize) -> Self {
        self.batch_size_mem = batch_size_mem;
        self
    }

    /// Sets the seed of the memory's reservoirs.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

impl Validate for MirConfig {
    /// `mem_size_positive`, `subsample_positive`, `batch_size_mem_positive`,
    /// `batch_size_mem_at_most_subsample`.
    fn validate(&self) -> Result<()> {
        const C: &str = "MirConfig";
        rule(C, "mem_size_positive", self.mem_size > 0, || "mem_size must be at least 1".into())?;
        rule(C, "subsample_positive", self.subsample > 0, || "subsample must be at least 1".into())?;
        rule(C, "batch_size_mem_positive", self.batch_size_mem > 0, || "batch_size_mem must be at least 1".into())?;
        rule(C, "batch_size_mem_at_most_subsample", self.batch_size_mem <= self.subsample, || {
            format!(
                "batch_size_mem = {} is more than the subsample of {} it is chosen from; use at most subsample",
                self.batch_size_mem, self.subsample
            )
        })
    }
}

/// Maximally Interfered Retrieval (Aljundi et al., "Online Continual Learning with Maximally
/// Interfered Retrieval", NeurIPS 2019; Avalanche's `MIRPlugin`,
/// `avalanche/training/plugins/mir.py`, the plugin of its `MIR` strategy).
///
/// At each iteration with a memory, in `before_backward`: `subsample` memory samples are drawn
/// (a shuffled pass over the memory, cycled, the last batch of a pass smaller); a *virtual*
/// model takes one plain SGD step on the current batch (`θ − lr·∇θ`, the strategy's current
/// learning rate); both models score the drawn samples in training mode (dropout on, each pass
/// its own mask: Avalanche's `eval()` calls are commented out), without recording a graph; the
/// `batch_size_mem` drawn samples whose loss increases most from the model
/// to the virtual model are replayed: the criterion on them (a forward pass of the training
/// model) is added to the loss.
///
/// As Avalanche: the memory is a class-balanced buffer (one reservoir per class, `mem_size` split
/// equally among the classes seen), updated after each experience; the memory replayed during the
/// next experience leaves out the classes of the experience's **last mini-batch** (Avalanche's
/// rule, made for online streams of small batches: on class-incremental experiences whose last
/// batch holds all their classes, the previous experience's classes are not replayed, and the
/// second experience replays nothing); a memory of at most `batch_size_mem` samples is not
/// replayed.
///
/// # Differences from Avalanche
///
/// - The virtual step's gradient comes from a separate forward and backward pass of the
///   criterion on the current batch (Burn's backward consumes the graph the loss is built on;
///   Avalanche differentiates the strategy's loss so far, with the same dropout mask and the
///   terms of plugins that ran before). Same in expectation for the criterion alone.
///
/// ```
/// use burn::tensor::Device;
/// use cl_core::{OptimizerSpec, Strategy};
/// use cl_models::SimpleMlpConfig;
/// use cl_plugins::{MirConfig, MirPlugin};
/// let device = Device::flex();
/// let model = SimpleMlpConfig::new().init(&device)?;
/// let mir = MirPlugin::new(MirConfig::new(500).with_subsample(50).with_batch_size_mem(10))?;
/// let strategy = Strategy::builder(model, OptimizerSpec::sgd(0.01), device).plugin(mir).build()?;
/// assert!(strategy.plugin::<MirPlugin>().is_some());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "MIRPlugin", alias = "MIR")]
pub struct MirPlugin {
    config: MirConfig,
    storage: ClassBalancedBuffer,
    /// The classes left out of the memory replayed in the next experience.
    excluded: BTreeSet<u32>,
    /// The memory replayed during this experience, with its sampler and transform generator.
    replay: Option<(ClassificationDataset, CyclingSampler, ChaCha8Rng)>,
    /// The rows of the replayed memory chosen at the last iteration.
    last_replayed: Vec<usize>,
}

impl std::fmt::Debug for MirPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MirPlugin")
            .field("config", &self.config)
            .field("memory_len", &self.storage.len())
            .field("excluded", &self.excluded)
            .finish_non_exhaustive()
    }
}

impl MirPlugin {
    /// A MIR plugin with an empty memory; an error if `config` breaks a rule.
    pub fn new(config: MirConfig) -> Result<Self> {
        config.validate()?;
        let storage = ClassBalancedBuffer::new(ClassBalancedConfig::new(config.mem_size).with_seed(config.seed))?;
        Ok(Self { config, storage, excluded: BTreeSet::new(), replay: None, last_replayed: Vec::new() })
    }

    /// The configuration.
    pub fn config(&self) -> &MirConfig {
        &self.config
    }

    /// The memory, one reservoir per class.
    pub fn storage(&self) -> &ClassBalancedBuffer {
        &self.storage
    }

    /// The rows of [`replay_memory`](Self::replay_memory) (as it was during the last
    /// experience) replayed at the last iteration, most interfered last.
    pub fn last_replayed(&self) -> &[usize] {
        &self.last_replayed
    }

    /// The memory replayed during the next experience: the memory without the classes of the
    /// last mini-batch of the experience trained last; `None` if it holds at most
    /// `batch_size_mem` samples.
    pub fn replay_memory(&self) -> Option<ClassificationDataset> {
        let parts: Vec<&ClassificationDataset> = self
            .storage
            .buffer_groups()
            .iter()
            .filter(|(class, _)| !self.excluded.contains(class))
            .filter_map(|(_, group)| group.buffer_ref())
            .collect();
        let (first, rest) = parts.split_first()?;
        let memory = rest.iter().try_fold((*first).clone(), |acc, d| acc.concat(d)).ok()?;
        (memory.len() > self.config.batch_size_mem).then_some(memory)
    }
}

/// Per-sample cross-entropy of `out` against `y`, on the host.
fn per_sample_ce(out: Tensor<2>, y: Tensor<1, Int>) -> Result<Vec<f32>> {
    let n = out.dims()[0];
    log_softmax(out, 1)
        .gather(1, y.reshape([n, 1]))
        .neg()
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| ClError::InvalidUse(format!("reading MIR's losses back: {e:?}")))
}

/// Every float parameter without gradient tracking (forward passes record no graph; dropout
/// still follows the training flags).
struct Untracked;

impl ModuleMapper for Untracked {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.set_require_grad(false)
    }
}

/// `θ − lr·g` for every float parameter with a gradient (the others unchanged): a virtual plain
/// SGD step on an evaluation copy of the model.
struct VirtualStep<'a> {
    grads: &'a GradientsParams,
    lr: f64,
}

impl ModuleMapper for VirtualStep<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        match self.grads.get::<D>(param.id) {
            Some(g) => {
                let lr = self.lr;
                param.map(|t| {
                    let g = g.to_device(&t.device());
                    t - g.mul_scalar(lr)
                })
            }
            None => param,
        }
    }
}

impl<M: Model> Plugin<M> for MirPlugin {
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::Loss]
    }

    /// The memory replayed in this experience (decided after the previous one), with a sampler
    /// seeded by the experience's seed.
    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        self.replay = match self.replay_memory() {
            Some(memory) => {
                let seed = state.experience_seed() ^ 0x4D49_5200_0000_0001;
                let sampler = CyclingSampler::keeping_last(memory.len(), self.config.subsample, seed)?;
                Some((memory, sampler, ChaCha8Rng::seed_from_u64(seed.rotate_left(17))))
            }
            None => None,
        };
        Ok(())
    }

    fn before_backward(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let Some((memory, sampler, rng)) = self.replay.as_mut() else {
            return Ok(());
        };
        let rows = sampler.next_batch().to_vec();
        let settings = state.settings();
        let device = settings.device().clone();

        // The virtual step: the criterion's gradient on the current batch.
        let model = state.model();
        let batch = state.current_batch()?;
        let out = model.forward(batch);
        check_labels(&batch.targets, out.dims()[1])?;
        let loss = settings.criterion().loss(out, batch.y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), model);
        // Both models score in training mode (dropout on, as Avalanche's), on the training device,
        // with untracked parameters: no graph is recorded.
        let current = model.clone().map(&mut Untracked);
        let virtual_model =
            model.valid().map(&mut VirtualStep { grads: &grads, lr: state.lr() }).train().map(&mut Untracked);

        // The most interfered samples: the largest loss increase.
        let scored = memory.batch(&rows, &device, rng)?;
        current.check_batch(&scored)?;
        let before = current.forward(&scored);
        check_labels(&scored.targets, before.dims()[1])?;
        let before = per_sample_ce(before, scored.y.clone())?;
        let after = per_sample_ce(virtual_model.forward(&scored), scored.y.clone())?;
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by(|&a, &b| (after[a] - before[a]).total_cmp(&(after[b] - before[b])));
        let chosen: Vec<usize> =
            order[order.len().saturating_sub(self.config.batch_size_mem)..].iter().map(|&i| rows[i]).collect();
        self.last_replayed.clone_from(&chosen);
        let chosen = memory.batch(&chosen, &device, rng)?;

        let replay_out = state.model().forward(&chosen);
        let replay_loss = state.settings().criterion().loss(replay_out, chosen.y.clone());
        state.add_loss(replay_loss)
    }

    /// Adds the experience to the memory and leaves the classes of its last mini-batch out of
    /// the memory replayed next.
    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        self.replay = None;
        self.storage.update_from_dataset(&state.current_experience()?.dataset)?;
        self.excluded = state.mbatch.as_ref().map(|b| b.targets.iter().copied().collect()).unwrap_or_default();
        Ok(())
    }

    /// The configuration (checked on load), the memory and the classes left out of the next
    /// replay.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config)?;
        out.put("excluded", &self.excluded)?;
        let mut storage = StateDict::new(format!("{} (storage)", out.component()));
        self.storage.save_state(&mut storage)?;
        out.put_dict("storage", storage);
        Ok(())
    }

    fn load_state(&mut self, state: &StateDict, _strategy: &StrategyState<M>) -> Result<()> {
        state.check_config("config", &self.config)?;
        self.excluded = state.get("excluded")?;
        self.storage.load_state(state.dict("storage")?)?;
        self.replay = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::training::test_util::{builder, stream, tiny_mlp};
    use cl_core::config::{ConfigFile, assert_rule};

    #[test]
    fn config_rules_and_round_trip() {
        let c = MirConfig::new;
        assert_rule(c(0).validate(), "mem_size_positive");
        assert_rule(c(10).with_subsample(0).validate(), "subsample_positive");
        assert_rule(c(10).with_batch_size_mem(0).validate(), "batch_size_mem_positive");
        assert_rule(c(10).with_subsample(5).with_batch_size_mem(6).validate(), "batch_size_mem_at_most_subsample");
        let config = c(30).with_subsample(7).with_batch_size_mem(3).with_seed(2);
        assert_eq!(MirConfig::from_json(&config.to_json()).unwrap(), config);
        assert_eq!(MirConfig::default(), MirConfig { mem_size: 200, subsample: 200, batch_size_mem: 1, seed: 0 });
    }

    /// The memory replayed next leaves out the classes of the last mini-batch; the second
    /// experience of a class-incremental stream replays nothing, the third replays the first's
    /// classes; the memory checkpoint restores the same replay.
    #[test]
    fn replay_memory_leaves_out_the_last_batch_classes() {
        use crate::persist::test_util::restore;
        let mut s = builder(tiny_mlp(6), 0.1, 1)
            .train_mb_size(4)
            .plugin(MirPlugin::new(MirConfig::new(12).with_subsample(4).with_batch_size_mem(2)).unwrap())
            .build()
            .unwrap();
        let data = stream(3, 12);
        s.train(&data.experiences()[0]).unwrap();
        let mir = s.plugin::<MirPlugin>().unwrap();
        assert_eq!(mir.storage().len(), 12);
        assert!(mir.replay_memory().is_none(), "the first experience's classes are all in its last batch");
        s.train(&data.experiences()[1]).unwrap();
        let mir = s.plugin::<MirPlugin>().unwrap();
        let memory = mir.replay_memory().unwrap();
        assert_eq!(memory.classes(), mir.storage().seen_classes().into_iter().filter(|c| *c < 2).collect());
        let mut fresh = MirPlugin::new(mir.config().clone()).unwrap();
        restore(mir, &mut fresh, s.state());
        assert_eq!(fresh.replay_memory().unwrap().targets(), memory.targets());
        s.train(&data.experiences()[2]).unwrap();
    }
}
