//! [`Der`]: Dark Experience Replay, DER and DER++ (Buzzega et al., 2020; Avalanche's `DER`).

use burn::tensor::{Device, Int, Tensor};
use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, finite_non_negative, rule};
use cl_core::data::ClassificationDataset;
use cl_core::{
    ClError, Criterion, Model, OptimizerSpec, Result, StrategyBuilder, StrategyState, TemplateSteps, step_defaults,
};
use cl_plugins::storage::{ClassBalancedBuffer, ClassBalancedConfig};
use serde::{Deserialize, Serialize};

use crate::memory::{MemoryBatches, memory_seed, run_logits};

/// The configuration of [`Der`], with the defaults of Avalanche's `DER(mem_size=200,
/// batch_size_mem=None, alpha=0.1, beta=0.5)`: DER++ by default; `beta = 0` is DER.
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_strategies::DerConfig;
/// let der = DerConfig::new(500).with_alpha(0.3).with_beta(0.0); // DER
/// assert_eq!(DerConfig::from_toml("mem_size = 500\nalpha = 0.3\nbeta = 0.0")?, der);
/// assert!(DerConfig::from_toml("mem_size = 0").is_err());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DerConfig {
    /// Samples in the memory, balanced over the classes seen (default 200, at least 1).
    pub mem_size: usize,
    /// Memory samples per mini-batch (default `None`: the strategy's `train_mb_size`, as
    /// Avalanche); at most `mem_size`.
    pub batch_size_mem: Option<usize>,
    /// Weight of the mean squared error between the memory samples' logits and the logits
    /// stored with them (default 0.1; finite, `>= 0`).
    pub alpha: f64,
    /// Weight of the cross-entropy on the memory samples' labels (default 0.5; `0` gives DER,
    /// more gives DER++; finite, `>= 0`).
    pub beta: f64,
    /// Seed of the memory's reservoirs (default 0).
    pub seed: u64,
}

impl Default for DerConfig {
    /// Avalanche's defaults: 200 samples, `alpha = 0.1`, `beta = 0.5`.
    fn default() -> Self {
        Self::new(200)
    }
}

impl DerConfig {
    /// A memory of `mem_size` samples, Avalanche's other defaults.
    pub fn new(mem_size: usize) -> Self {
        Self { mem_size, batch_size_mem: None, alpha: 0.1, beta: 0.5, seed: 0 }
    }

    /// Sets the memory size.
    pub fn with_mem_size(mut self, mem_size: usize) -> Self {
        self.mem_size = mem_size;
        self
    }

    /// Sets the memory samples per mini-batch.
    pub fn with_batch_size_mem(mut self, batch_size_mem: usize) -> Self {
        self.batch_size_mem = Some(batch_size_mem);
        self
    }

    /// Sets the weight of the logit-matching term.
    pub fn with_alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// Sets the weight of the memory labels' cross-entropy (0: DER).
    pub fn with_beta(mut self, beta: f64) -> Self {
        self.beta = beta;
        self
    }

    /// Sets the seed of the memory's reservoirs.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

impl Validate for DerConfig {
    /// `mem_size_positive`, `batch_size_mem_positive`, `batch_size_mem_at_most_mem_size`,
    /// `alpha_finite_non_negative`, `beta_finite_non_negative`.
    fn validate(&self) -> Result<()> {
        const C: &str = "DerConfig";
        rule(C, "mem_size_positive", self.mem_size > 0, || "mem_size must be at least 1".into())?;
        rule(C, "batch_size_mem_positive", self.batch_size_mem != Some(0), || {
            "batch_size_mem must be at least 1 (or unset: the strategy's train_mb_size)".into()
        })?;
        rule(C, "batch_size_mem_at_most_mem_size", self.batch_size_mem.is_none_or(|b| b <= self.mem_size), || {
            format!(
                "batch_size_mem = {} is larger than mem_size = {}: the memory could never fill a batch and \
                 nothing would be replayed (Avalanche silently trains without replay); use at most mem_size",
                self.batch_size_mem.unwrap_or(0),
                self.mem_size
            )
        })?;
        rule(C, "alpha_finite_non_negative", finite_non_negative(self.alpha), || {
            format!("alpha = {} must be a finite number >= 0", self.alpha)
        })?;
        rule(C, "beta_finite_non_negative", finite_non_negative(self.beta), || {
            format!("beta = {} must be a finite number >= 0", self.beta)
        })
    }
}

/// DER's loss on a batch whose first `stored.dims()[0]` rows are memory samples with their
/// stored logits `stored`: `criterion(out[m..], y[m..]) + alpha · MSE(out[..m], stored) +
/// beta · criterion(out[..m], y[..m])` (the MSE a mean over rows and outputs, as
/// `F.mse_loss`). Shapes are the caller's to check.
pub fn der_loss(
    out: Tensor<2>,
    y: Tensor<1, Int>,
    stored: Tensor<2>,
    criterion: &dyn Criterion,
    alpha: f64,
    beta: f64,
) -> Tensor<1> {
    let n = out.dims()[0];
    let m = stored.dims()[0];
    let current = criterion.loss(out.clone().narrow(0, m, n - m), y.clone().narrow(0, m, n - m));
    let memory_out = out.narrow(0, 0, m);
    let mse = (memory_out.clone() - stored).powi_scalar(2).mean();
    let replayed = criterion.loss(memory_out, y.narrow(0, 0, m));
    current + mse.mul_scalar(alpha) + replayed.mul_scalar(beta)
}

/// The error of a model whose number of outputs changed after DER stored logits.
fn grown_outputs(stored: usize, outputs: usize) -> ClError {
    ClError::InvalidUse(format!(
        "DER stored logits of {stored} outputs but the model now has {outputs}: DER needs a model whose output \
         layer does not grow (e.g. SimpleMlp with num_classes set to every class of the benchmark)"
    ))
}

/// The steps of [`Der`]: the memory (samples and their logits), the memory part of each
/// mini-batch, and the loss.
///
/// The memory is Avalanche's `ClassBalancedBufferWithLogits`: one reservoir per class over
/// every sample of that class seen, `mem_size` split equally among the classes seen. It is kept
/// as two [`ClassBalancedBuffer`]s with the same seed, one of the samples and one of their
/// logits (a dataset of `[outputs]` rows with the same labels); their reservoirs draw the same
/// weights and keep the same samples, so row `i` of one is the logits of sample `i` of the
/// other (checked after every update).
pub struct DerSteps {
    config: DerConfig,
    samples: ClassBalancedBuffer,
    logits: ClassBalancedBuffer,
    /// The memory loader of the experience being trained (Avalanche's `replay_loader`).
    replay: Option<MemoryBatches>,
    /// The stored logits of the memory rows in front of the current batch, if any.
    batch_logits: Option<Tensor<2>>,
}

impl std::fmt::Debug for DerSteps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DerSteps")
            .field("config", &self.config)
            .field("memory_len", &self.samples.len())
            .finish_non_exhaustive()
    }
}

impl DerSteps {
    /// Empty memory; an error if `config` breaks a rule.
    pub fn new(config: DerConfig) -> Result<Self> {
        config.validate()?;
        let buffer = || ClassBalancedBuffer::new(ClassBalancedConfig::new(config.mem_size).with_seed(config.seed));
        Ok(Self { samples: buffer()?, logits: buffer()?, config, replay: None, batch_logits: None })
    }

    /// The configuration.
    pub fn config(&self) -> &DerConfig {
        &self.config
    }

    /// The memory's samples (grouped by increasing class); `None` while empty.
    pub fn buffer(&self) -> Option<ClassificationDataset> {
        self.samples.buffer()
    }

    /// The memory's samples, one reservoir per class.
    pub fn samples(&self) -> &ClassBalancedBuffer {
        &self.samples
    }

    /// The logits stored with the memory's samples, row `i` for sample `i` of
    /// [`buffer`](Self::buffer); empty while the memory is.
    pub fn stored_logits(&self) -> Result<Vec<Vec<f32>>> {
        let Some(ds) = self.logits.buffer() else { return Ok(Vec::new()) };
        (0..ds.len()).map(|i| Ok(ds.sample(i)?.x)).collect()
    }

    /// The memory batch size in effect.
    fn batch_size_mem<M: Model>(&self, state: &StrategyState<M>) -> usize {
        self.config.batch_size_mem.unwrap_or_else(|| state.settings().train_mb_size())
    }

    /// Checks that the two buffers hold the same samples' rows, label by label.
    fn check_aligned(&self) -> Result<()> {
        let (s, l) = (self.samples.buffer(), self.logits.buffer());
        let same = match (&s, &l) {
            (Some(s), Some(l)) => s.targets() == l.targets(),
            (None, None) => true,
            _ => false,
        };
        if same {
            Ok(())
        } else {
            Err(ClError::InvalidUse(format!(
                "DER's memory of samples ({} rows) and of logits ({} rows) no longer match: a checkpoint of \
                 another run or a bug; please report it",
                s.map_or(0, |d| d.len()),
                l.map_or(0, |d| d.len())
            )))
        }
    }
}

impl<M: Model> TemplateSteps<M> for DerSteps {
    fn name(&self) -> String {
        "DerSteps".into()
    }

    /// Avalanche's `_before_training_exp`: a memory loader (shuffled, dropping the last partial
    /// batch, cycled) when the memory holds at least `batch_size_mem` samples.
    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        self.batch_logits = None;
        let batch_size_mem = self.batch_size_mem(state);
        self.replay = match (self.samples.buffer(), self.logits.buffer()) {
            (Some(samples), Some(logits)) if samples.len() >= batch_size_mem => {
                Some(MemoryBatches::new(samples, Some(logits), batch_size_mem, memory_seed(state))?)
            }
            _ => None,
        };
        Ok(())
    }

    /// Avalanche's `_before_forward`: `batch_size_mem` memory samples in front of the current
    /// ones (one forward pass over both), their stored logits kept for the loss.
    fn forward(&mut self, state: &mut StrategyState<M>) -> Result<Tensor<2>> {
        self.batch_logits = None;
        // Training batches only: a periodic evaluation during the experience sees its own data.
        if let Some(replay) = self.replay.as_mut().filter(|_| state.is_training()) {
            let (memory, logits) = replay.next(state.batch_device())?;
            let current = state.mbatch.take().ok_or(ClError::MissingState("mbatch"))?;
            state.mbatch = Some(memory.concat(&current)?);
            self.batch_logits = logits;
        }
        step_defaults::forward(state)
    }

    /// Without memory, the strategy's criterion. With memory (`m` rows in front):
    /// `criterion(out[m..], y[m..]) + alpha · mse(out[..m], stored) + beta · criterion(out[..m], y[..m])`.
    fn criterion(&mut self, state: &mut StrategyState<M>) -> Result<Tensor<1>> {
        let Some(stored) = self.batch_logits.take() else {
            return step_defaults::criterion(state);
        };
        let out = state.mb_output.clone().ok_or(ClError::MissingState("mb_output"))?;
        let batch = state.current_batch()?;
        let outputs = out.dims()[1];
        let stored_outputs = stored.dims()[1];
        cl_core::check_labels(&batch.targets, outputs)?;
        if stored_outputs != outputs {
            return Err(grown_outputs(stored_outputs, outputs));
        }
        Ok(der_loss(out, batch.y.clone(), stored, state.settings().criterion(), self.config.alpha, self.config.beta))
    }

    /// Avalanche's `_after_training_exp`: the experience's logits by the model in evaluation mode
    /// (evaluation view of the data, `train_mb_size` per pass), then both reservoirs updated.
    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        self.replay = None;
        self.batch_logits = None;
        let data = state.current_experience()?.dataset.clone();
        if data.is_empty() {
            return Ok(());
        }
        let eval_model = state.model().valid();
        let (values, outputs) = run_logits(
            &eval_model,
            &data,
            state.settings().eval_device(),
            state.settings().train_mb_size(),
            state.experience_seed(),
        )?;
        let logits = ClassificationDataset::from_f32(values, vec![outputs], data.targets())?;
        let before = self.logits.buffer().map(|b| b.sample_len());
        if let Some(previous) = before.filter(|&p| p != outputs) {
            return Err(grown_outputs(previous, outputs));
        }
        self.samples.update_from_dataset(&data.train())?;
        self.logits.update_from_dataset(&logits)?;
        self.check_aligned()
    }

    /// The configuration (checked on load) and both memories (samples, logits, reservoir
    /// weights and generators).
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config)?;
        let mut samples = StateDict::new(format!("{} (samples)", out.component()));
        self.samples.save_state(&mut samples)?;
        out.put_dict("samples", samples);
        let mut logits = StateDict::new(format!("{} (logits)", out.component()));
        self.logits.save_state(&mut logits)?;
        out.put_dict("logits", logits);
        Ok(())
    }

    fn load_state(&mut self, state: &StateDict, _strategy: &StrategyState<M>) -> Result<()> {
        state.check_config("config", &self.config)?;
        self.samples.load_state(state.dict("samples")?)?;
        self.logits.load_state(state.dict("logits")?)?;
        self.replay = None;
        self.batch_logits = None;
        self.check_aligned()
    }
}

/// Dark Experience Replay (Buzzega et al., "Dark Experience for General Continual Learning: a
/// Strong, Simple Baseline", NeurIPS 2020; Avalanche's `DER`,
/// `avalanche/training/supervised/der.py`): replay from a class-balanced memory that stores,
/// with each sample, the logits the model gave it; the memory samples' outputs are pulled
/// towards the stored logits (`alpha`, mean squared error) and, for DER++, towards their labels
/// (`beta`, cross-entropy).
///
/// As Avalanche:
/// - after each experience the model, in evaluation mode, computes the logits of every sample
///   of the experience (evaluation view, batches of `train_mb_size`); the samples and logits
///   enter the class-balanced memory (one reservoir per class, `mem_size` split equally among the
///   classes seen);
/// - once the memory holds `batch_size_mem` samples, every mini-batch is `batch_size_mem` memory
///   samples (a shuffled pass over the memory, the last partial batch dropped, cycled) in front
///   of the current ones, in one forward pass; the loss is
///   `CE(current) + alpha · MSE(memory logits, stored logits) + beta · CE(memory)`, each term a
///   mean over its rows; the training metrics see the whole batch, memory rows included;
/// - the stored logits are never updated after storage.
///
/// # Differences from Avalanche
///
/// - The two cross-entropy terms use the strategy's criterion (Avalanche's code calls
///   `F.cross_entropy` whatever the criterion; the same for the default criterion).
/// - A model whose number of outputs changes is an error naming the problem (Avalanche fails in
///   `mse_loss` with a size mismatch).
/// - `batch_size_mem > mem_size` is a configuration error (Avalanche never replays then).
///
/// ```
/// use burn::tensor::Device;
/// use cl_core::OptimizerSpec;
/// use cl_models::SimpleMlpConfig;
/// use cl_strategies::{Der, DerConfig, DerSteps};
/// let device = Device::flex();
/// let model = SimpleMlpConfig::new().init(&device)?;
/// let strategy = Der::builder(model, OptimizerSpec::sgd(0.01), device, DerConfig::new(500))?.build()?;
/// assert_eq!(strategy.steps_as::<DerSteps>().unwrap().config().mem_size, 500);
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "DER", alias = "DER++")]
pub struct Der;

impl Der {
    /// A builder with the DER steps and the default evaluator; an error if `config` breaks a rule.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: DerConfig,
    ) -> Result<StrategyBuilder<M>> {
        Ok(StrategyBuilder::new(model, optimizer, device).steps(DerSteps::new(config)?))
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::TensorData;
    use cl_core::CrossEntropyLoss;
    use cl_core::config::assert_rule;

    use super::*;

    fn ce(row: &[f64], target: usize) -> f64 {
        row.iter().map(|v| v.exp()).sum::<f64>().ln() - row[target]
    }

    /// `CE(current) + α·MSE(memory, stored) + β·CE(memory)` by hand, one memory row in front.
    #[test]
    fn der_loss_by_hand() {
        let device = Device::flex();
        let rows = [[1.0, 2.0], [0.0, 0.0], [3.0, 1.0]];
        let out =
            Tensor::<2>::from_data(TensorData::new(rows.concat().iter().map(|&v| v as f32).collect(), [3, 2]), &device);
        let y = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 0, 0], [3]), &device);
        let stored = Tensor::<2>::from_floats([[0.5f32, 2.5]], &device);
        let (alpha, beta) = (0.1, 0.5);
        let loss = der_loss(out, y, stored, &CrossEntropyLoss, alpha, beta);
        let current = (ce(&rows[1], 0) + ce(&rows[2], 0)) / 2.0;
        let mse = (0.5f64.powi(2) + 0.5f64.powi(2)) / 2.0;
        let expected = current + alpha * mse + beta * ce(&rows[0], 1);
        let value = f64::from(loss.into_scalar::<f32>());
        assert!((value - expected).abs() < 1e-6, "{value} vs {expected}");
    }

    #[test]
    fn config_rules() {
        assert_rule(DerConfig::new(0).validate(), "mem_size_positive");
        assert_rule(DerConfig::new(5).with_batch_size_mem(0).validate(), "batch_size_mem_positive");
        assert_rule(DerConfig::new(5).with_batch_size_mem(6).validate(), "batch_size_mem_at_most_mem_size");
        assert_rule(DerConfig::new(5).with_alpha(-1.0).validate(), "alpha_finite_non_negative");
        assert_rule(DerConfig::new(5).with_beta(f64::NAN).validate(), "beta_finite_non_negative");
        assert_rule(DerSteps::new(DerConfig::new(0)).map(|_| ()), "mem_size_positive");
        let d = DerConfig::default();
        assert_eq!((d.mem_size, d.batch_size_mem, d.alpha, d.beta), (200, None, 0.1, 0.5));
    }
}
