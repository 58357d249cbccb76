//! [`ErAce`]: experience replay with the asymmetric cross-entropy (Caccia et al., 2022;
//! Avalanche's `ER_ACE`).

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use cl_core::checkpoint::StateDict;
use cl_core::config::Validate;
use cl_core::data::ClassificationDataset;
use cl_core::{ClError, Model, OptimizerSpec, Result, StrategyBuilder, StrategyState, TemplateSteps, step_defaults};
use cl_plugins::storage::{ClassBalancedBuffer, ClassBalancedConfig};
use serde::{Deserialize, Serialize};

use crate::memory::{
    MemoryBatches, MemoryOutput, load_memory, memory_forward, memory_seed, memory_size_rules, memory_term, save_memory,
};

/// The configuration of [`ErAce`], with the defaults of Avalanche's `ER_ACE(mem_size=200,
/// batch_size_mem=10)`.
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_strategies::ErAceConfig;
/// let config = ErAceConfig::new(500).with_batch_size_mem(32);
/// assert_eq!(ErAceConfig::from_toml("mem_size = 500\nbatch_size_mem = 32")?, config);
/// assert!(ErAceConfig::from_toml("batch_size_mem = 0").is_err());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ErAceConfig {
    /// Samples in the memory, balanced over the classes seen (default 200, at least 1).
    pub mem_size: usize,
    /// Memory samples per mini-batch (default 10, at least 1, at most `mem_size`).
    pub batch_size_mem: usize,
    /// Seed of the memory's reservoirs (default 0).
    pub seed: u64,
}

impl Default for ErAceConfig {
    /// Avalanche's defaults: 200 samples, 10 per mini-batch.
    fn default() -> Self {
        Self::new(200)
    }
}

impl ErAceConfig {
    /// A memory of `mem_size` samples, Avalanche's other defaults.
    pub fn new(mem_size: usize) -> Self {
        Self { mem_size, batch_size_mem: 10, seed: 0 }
    }

    /// Sets the memory size.
    pub fn with_mem_size(mut self, mem_size: usize) -> Self {
        self.mem_size = mem_size;
        self
    }

    /// Sets the memory samples per mini-batch.
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

impl Validate for ErAceConfig {
    /// `mem_size_positive`, `batch_size_mem_positive`, `batch_size_mem_at_most_mem_size`.
    fn validate(&self) -> Result<()> {
        memory_size_rules("ErAceConfig", self.mem_size, self.batch_size_mem)
    }
}

/// The asymmetric cross-entropy of ER-ACE (Avalanche's `ACECriterion`):
/// `(CE(buffer_out, buffer_y) + CE_masked(current_out, current_y)) / 2`, where the current
/// batch's term is the cross-entropy over the output units of the classes *present in the
/// current batch* only: the other units get no gradient from the current samples.
///
/// `buffer_term` is the memory term (the strategy's criterion on the memory batch).
pub fn ace_loss(current_out: Tensor<2>, current_targets: &[u32], buffer_term: Tensor<1>) -> Result<Tensor<1>> {
    let [n, outputs] = current_out.dims();
    cl_core::check_labels(current_targets, outputs)?;
    // torch.unique: the classes of the batch, increasing.
    let mut classes: Vec<u32> = current_targets.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let device = current_out.device();
    let columns = Tensor::<1, Int>::from_data(
        TensorData::new(classes.iter().map(|&c| i64::from(c)).collect::<Vec<_>>(), [classes.len()]),
        &device,
    );
    // The position of each target among the batch's classes (its one-hot column).
    let position: Vec<i64> = current_targets.iter().map(|y| classes.binary_search(y).map_or(0, |p| p as i64)).collect();
    let position = Tensor::<1, Int>::from_data(TensorData::new(position, [n]), &device).reshape([n, 1]);
    let masked = log_softmax(current_out.select(1, columns), 1);
    let current_term = masked.gather(1, position).mean().neg();
    Ok((buffer_term + current_term).div_scalar(2.0))
}

/// The steps of [`ErAce`]: the class-balanced memory (updated at the start of each
/// experience), the memory batch's forward pass, and the asymmetric loss.
pub struct ErAceSteps {
    config: ErAceConfig,
    storage: ClassBalancedBuffer,
    replay: Option<MemoryBatches>,
    /// The memory batch's output and labels of the current iteration.
    buffer_out: Option<MemoryOutput>,
}

impl std::fmt::Debug for ErAceSteps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErAceSteps")
            .field("config", &self.config)
            .field("memory_len", &self.storage.len())
            .finish_non_exhaustive()
    }
}

impl ErAceSteps {
    /// Empty memory; an error if `config` breaks a rule.
    pub fn new(config: ErAceConfig) -> Result<Self> {
        config.validate()?;
        let storage = ClassBalancedBuffer::new(ClassBalancedConfig::new(config.mem_size).with_seed(config.seed))?;
        Ok(Self { config, storage, replay: None, buffer_out: None })
    }

    /// The configuration.
    pub fn config(&self) -> &ErAceConfig {
        &self.config
    }

    /// The memory, one reservoir per class.
    pub fn storage(&self) -> &ClassBalancedBuffer {
        &self.storage
    }

    /// The memory's samples (grouped by increasing class); `None` while empty.
    pub fn buffer(&self) -> Option<ClassificationDataset> {
        self.storage.buffer()
    }
}

impl<M: Model> TemplateSteps<M> for ErAceSteps {
    fn name(&self) -> String {
        "ErAceSteps".into()
    }

    /// Avalanche's `_before_training_exp`: the experience's samples enter the memory first (so
    /// the memory holds current classes too), then, from the second experience of the stream
    /// on and once the memory holds `batch_size_mem` samples, a memory loader (shuffled,
    /// dropping the last partial batch, cycled).
    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        self.buffer_out = None;
        let experience = state.current_experience()?;
        let index = experience.current_experience;
        self.storage.update_from_dataset(&experience.dataset.train())?;
        self.replay = match self.storage.buffer() {
            Some(memory) if memory.len() >= self.config.batch_size_mem && index > 0 => {
                Some(MemoryBatches::new(memory, None, self.config.batch_size_mem, memory_seed(state))?)
            }
            _ => None,
        };
        Ok(())
    }

    /// The current batch's output (what the metrics see); with a memory, also the output of a
    /// memory batch (a second forward pass, as Avalanche), kept for the loss.
    fn forward(&mut self, state: &mut StrategyState<M>) -> Result<Tensor<2>> {
        self.buffer_out = None;
        let out = step_defaults::forward(state)?;
        // Training batches only: a periodic evaluation during the experience sees its own data.
        if let Some(replay) = self.replay.as_mut().filter(|_| state.is_training()) {
            self.buffer_out = Some(memory_forward(replay, state)?);
        }
        Ok(out)
    }

    /// Without memory, the strategy's criterion; with it, [`ace_loss`] with the criterion on the
    /// memory batch as the memory term.
    fn criterion(&mut self, state: &mut StrategyState<M>) -> Result<Tensor<1>> {
        let Some(memory) = self.buffer_out.take() else {
            return step_defaults::criterion(state);
        };
        let buffer_term = memory_term(state, memory)?;
        let out = state.mb_output.clone().ok_or(ClError::MissingState("mb_output"))?;
        ace_loss(out, &state.current_batch()?.targets, buffer_term)
    }

    fn after_training_exp(&mut self, _state: &mut StrategyState<M>) -> Result<()> {
        self.replay = None;
        self.buffer_out = None;
        Ok(())
    }

    /// The configuration (checked on load) and the memory.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        save_memory(out, &self.config, &self.storage)
    }

    fn load_state(&mut self, state: &StateDict, _strategy: &StrategyState<M>) -> Result<()> {
        load_memory(state, &self.config, &mut self.storage)?;
        self.replay = None;
        self.buffer_out = None;
        Ok(())
    }
}

/// ER-ACE (Caccia et al., "New Insights on Reducing Abrupt Representation Change in Online
/// Continual Learning", ICLR 2022; Avalanche's `ER_ACE`,
/// `avalanche/training/supervised/er_ace.py`, loss `ACECriterion` in
/// `avalanche/training/regularization.py`): experience replay whose loss on the incoming
/// samples only involves the classes of the incoming batch, so that learning new classes does
/// not push the logits of old classes down.
///
/// As Avalanche's (non-online) `ER_ACE`:
/// - at the start of each experience its samples enter a class-balanced memory (one reservoir
///   per class, `mem_size` split equally among the classes seen) — *before* training, so the
///   memory also holds current classes;
/// - from the stream's second experience on (and once the memory holds `batch_size_mem`
///   samples), each iteration also draws `batch_size_mem` memory samples (a shuffled pass, the
///   last partial batch dropped, cycled) and runs them through the model in a second forward
///   pass;
/// - the loss is [`ace_loss`]: `(CE(memory) + CE over the current batch's classes) / 2`; the
///   training metrics see the current batch only.
///
/// # Differences from Avalanche
///
/// - The memory term uses the strategy's criterion (Avalanche calls `F.cross_entropy`; the same
///   for the default criterion).
/// - `batch_size_mem > mem_size` is a configuration error (Avalanche never replays then).
///
/// ```
/// use burn::tensor::Device;
/// use cl_core::OptimizerSpec;
/// use cl_models::SimpleMlpConfig;
/// use cl_strategies::{ErAce, ErAceConfig, ErAceSteps};
/// let device = Device::flex();
/// let model = SimpleMlpConfig::new().init(&device)?;
/// let strategy = ErAce::builder(model, OptimizerSpec::sgd(0.01), device, ErAceConfig::new(500))?.build()?;
/// assert_eq!(strategy.steps_as::<ErAceSteps>().unwrap().config().batch_size_mem, 10);
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "ER_ACE", alias = "ACECriterion")]
pub struct ErAce;

impl ErAce {
    /// A builder with the ER-ACE steps and the default evaluator; an error if `config` breaks a
    /// rule.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: ErAceConfig,
    ) -> Result<StrategyBuilder<M>> {
        Ok(StrategyBuilder::new(model, optimizer, device).steps(ErAceSteps::new(config)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cl_core::config::assert_rule;

    fn ce_masked(row: &[f64], columns: &[usize], target: usize) -> f64 {
        let z: f64 = columns.iter().map(|&c| row[c].exp()).sum();
        z.ln() - row[target]
    }

    /// Avalanche's `ACECriterion` by hand: the current term is a cross-entropy over the batch's
    /// classes only, and the units of the other classes get exactly no gradient from it.
    #[test]
    fn ace_loss_by_hand_and_no_gradient_on_absent_classes() {
        let device = Device::flex().autodiff();
        let rows = [[0.3, -1.2, 2.0, 0.7], [1.5, 0.4, -0.3, 2.2], [-0.6, 0.9, 0.1, -1.0]];
        let targets = [2u32, 2, 0];
        let out =
            Tensor::<2>::from_data(TensorData::new(rows.concat().iter().map(|&v| v as f32).collect(), [3, 4]), &device)
                .require_grad();
        let buffer_term = Tensor::<1>::from_floats([0.8f32], &device);
        let loss = ace_loss(out.clone(), &targets, buffer_term).unwrap();
        let expected =
            (0.8 + (0..3).map(|i| ce_masked(&rows[i], &[0, 2], targets[i] as usize)).sum::<f64>() / 3.0) / 2.0;
        let value = f64::from(loss.clone().into_scalar::<f32>());
        assert!((value - expected).abs() < 1e-6, "{value} vs {expected}");
        let grads = loss.backward();
        let g = out.grad(&grads).unwrap().into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        for i in 0..3 {
            assert_eq!(g[i * 4 + 1], 0.0, "class 1 is absent from the batch");
            assert_eq!(g[i * 4 + 3], 0.0, "class 3 is absent from the batch");
            // d/dz_c of ½·mean CE over columns {0, 2}: (softmax_c − [c = y]) / (2·3).
            let z: f64 = [0, 2].iter().map(|&c| rows[i][c].exp()).sum();
            for c in [0usize, 2] {
                let expected = (rows[i][c].exp() / z - f64::from(u8::from(c == targets[i] as usize))) / 6.0;
                assert!(
                    (f64::from(g[i * 4 + c]) - expected).abs() < 1e-6,
                    "row {i} class {c}: {} vs {expected}",
                    g[i * 4 + c]
                );
            }
        }
        // A label without an output unit is an error, not an out-of-bounds gather.
        let out = Tensor::<2>::zeros([1, 2], &device);
        let err = ace_loss(out, &[5], Tensor::<1>::zeros([1], &device)).unwrap_err();
        assert!(matches!(err, ClError::LabelOutOfRange { label: 5, outputs: 2 }), "{err}");
    }

    #[test]
    fn config_rules() {
        assert_rule(ErAceConfig::new(0).validate(), "mem_size_positive");
        assert_rule(ErAceConfig::new(5).with_batch_size_mem(0).validate(), "batch_size_mem_positive");
        assert_rule(ErAceConfig::new(5).with_batch_size_mem(6).validate(), "batch_size_mem_at_most_mem_size");
        assert_rule(ErAceSteps::new(ErAceConfig::new(0)).map(|_| ()), "mem_size_positive");
        assert_eq!(ErAceConfig::default(), ErAceConfig { mem_size: 200, batch_size_mem: 10, seed: 0 });
    }
}
