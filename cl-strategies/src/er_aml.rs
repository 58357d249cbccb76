//! [`ErAml`]: experience replay with asymmetric metric learning (Caccia et al., 2022;
//! Avalanche's `ER_AML`).

use burn::tensor::{Device, Tensor, TensorData};
use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, rule};
use cl_core::data::{ClassificationDataset, CyclingSampler, MiniBatch};
use cl_core::{ClError, Model, OptimizerSpec, Result, StrategyBuilder, StrategyState, TemplateSteps, step_defaults};
use cl_plugins::storage::{ClassBalancedBuffer, ClassBalancedConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::memory::{
    MemoryBatches, MemoryOutput, load_memory, memory_forward, memory_seed, memory_size_rules, memory_term, save_memory,
};

/// How [`sup_con_loss`] normalises the similarities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupConForm {
    /// Avalanche 0.6's `AMLCriterion.__sup_con_loss` as it computes: the `[2B, 2B]` similarity
    /// matrix minus its row maxima and its row log-sum-exps *broadcast along the columns*
    /// (`similarity -= similarity.max(dim=1)[0]` on a square matrix subtracts row `j`'s maximum
    /// from column `j`, and the same for the log-sum-exp). The default: it reproduces
    /// Avalanche's numbers.
    #[default]
    Avalanche,
    /// The supervised contrastive loss as written in the paper (Khosla et al., 2020): a
    /// log-softmax over each anchor's row.
    Standard,
}

/// The configuration of [`ErAml`], with the defaults of Avalanche's `ER_AML(temp=0.1,
/// base_temp=0.07, same_task_neg=True, mem_size=200, batch_size_mem=10)`.
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_strategies::{ErAmlConfig, SupConForm};
/// let config = ErAmlConfig::new(500).with_temp(0.2).with_sup_con(SupConForm::Standard);
/// assert_eq!(ErAmlConfig::from_toml("mem_size = 500\ntemp = 0.2\nsup_con = \"standard\"")?, config);
/// assert!(ErAmlConfig::from_toml("base_temp = 0.0").is_err());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ErAmlConfig {
    /// Samples in the memory, balanced over the classes seen (default 200, at least 1).
    pub mem_size: usize,
    /// Memory samples per mini-batch for the cross-entropy term (default 10, at least 1, at
    /// most `mem_size`).
    pub batch_size_mem: usize,
    /// Temperature of the supervised contrastive loss (default 0.1, > 0).
    pub temp: f64,
    /// Base temperature: the loss is scaled by `temp / base_temp` (default 0.07, > 0).
    pub base_temp: f64,
    /// Negatives only from the anchor's task (default `true`).
    pub same_task_neg: bool,
    /// The form of the contrastive loss (default: Avalanche's).
    pub sup_con: SupConForm,
    /// Seed of the memory's reservoirs (default 0).
    pub seed: u64,
}

impl Default for ErAmlConfig {
    /// Avalanche's defaults: 200 samples, 10 per mini-batch, temperatures 0.1 and 0.07.
    fn default() -> Self {
        Self::new(200)
    }
}

impl ErAmlConfig {
    /// A memory of `mem_size` samples, Avalanche's other defaults.
    pub fn new(mem_size: usize) -> Self {
        Self {
            mem_size,
            batch_size_mem: 10,
            temp: 0.1,
            base_temp: 0.07,
            same_task_neg: true,
            sup_con: SupConForm::Avalanche,
            seed: 0,
        }
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

    /// Sets the temperature.
    pub fn with_temp(mut self, temp: f64) -> Self {
        self.temp = temp;
        self
    }

    /// Sets the base temperature.
    pub fn with_base_temp(mut self, base_temp: f64) -> Self {
        self.base_temp = base_temp;
        self
    }

    /// Sets whether negatives come from the anchor's task only.
    pub fn with_same_task_neg(mut self, on: bool) -> Self {
        self.same_task_neg = on;
        self
    }

    /// Sets the form of the contrastive loss.
    pub fn with_sup_con(mut self, form: SupConForm) -> Self {
        self.sup_con = form;
        self
    }

    /// Sets the seed of the memory's reservoirs.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

impl Validate for ErAmlConfig {
    /// `mem_size_positive`, `batch_size_mem_positive`, `batch_size_mem_at_most_mem_size`,
    /// `temp_positive`, `base_temp_positive`.
    fn validate(&self) -> Result<()> {
        const C: &str = "ErAmlConfig";
        memory_size_rules(C, self.mem_size, self.batch_size_mem)?;
        rule(C, "temp_positive", self.temp.is_finite() && self.temp > 0.0, || {
            format!("temp = {} must be a finite number > 0 (default 0.1)", self.temp)
        })?;
        rule(C, "base_temp_positive", self.base_temp.is_finite() && self.base_temp > 0.0, || {
            format!("base_temp = {} must be a finite number > 0 (default 0.07)", self.base_temp)
        })
    }
}

/// Rows scaled to unit L2 norm (Avalanche's `__scale_by_norm`: `x / (‖x‖₂ + 1e-5)`), with
/// torch's gradient at a zero row (`torch.norm`'s is 0 there; `sqrt` of `Σx² = 0` would give
/// `0 · ∞ = NaN`): the norm is `sqrt(max(Σx², 1e-30))`.
pub fn scale_by_norm(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).clamp_min(1e-30).sqrt().add_scalar(1e-5);
    x.div(norm)
}

/// The supervised contrastive term of ER-AML (Avalanche's `AMLCriterion.__sup_con_loss`):
/// anchors `[B, D]` (the incoming samples' normalised features) against `features` `[P, D]` (the
/// normalised features of their memory positives and negatives),
/// `−(temp / base_temp) · mean_i mean_{j: y_j = y_i} log p_ij` with `p` from the
/// similarities `a_i·f_j / temp`.
///
/// Avalanche repeats the anchors twice (`hidden_in.repeat(2, 1)`), which leaves the mean
/// unchanged; here each anchor appears once. With [`SupConForm::Avalanche`] the similarity
/// rows are normalised as Avalanche's broadcast does (see the variant), which needs `P = 2B`
/// (one positive and one negative per anchor); with [`SupConForm::Standard`] by each row's own
/// log-sum-exp. Every anchor needs a positive among `features` (an error otherwise).
pub fn sup_con_loss(
    anchors: Tensor<2>,
    anchor_targets: &[u32],
    features: Tensor<2>,
    feature_targets: &[u32],
    temp: f64,
    base_temp: f64,
    form: SupConForm,
) -> Result<Tensor<1>> {
    let ([b, d], [p, d2]) = (anchors.dims(), features.dims());
    if b != anchor_targets.len() || p != feature_targets.len() || d != d2 || b == 0 {
        return Err(ClError::InvalidUse(format!(
            "sup_con_loss: anchors {:?} with {} labels against features {:?} with {} labels: the rows must match \
             their labels, the feature widths each other, and there must be at least one anchor",
            [b, d],
            anchor_targets.len(),
            [p, d2],
            feature_targets.len()
        )));
    }
    if form == SupConForm::Avalanche && p != 2 * b {
        return Err(ClError::InvalidUse(format!(
            "sup_con_loss in Avalanche's form needs one positive and one negative per anchor ({} features for {b} \
             anchors, got {p}); use SupConForm::Standard",
            2 * b
        )));
    }
    let mut mask = Vec::with_capacity(b * p);
    for (i, y) in anchor_targets.iter().enumerate() {
        let row = feature_targets.iter().map(|t| f32::from(u8::from(t == y)));
        let start = mask.len();
        mask.extend(row);
        if mask[start..].iter().all(|&m| m == 0.0) {
            return Err(ClError::InvalidUse(format!(
                "sup_con_loss: anchor {i} (class {y}) has no positive among the features"
            )));
        }
    }
    let device = anchors.device();
    let mask = Tensor::<2>::from_data(TensorData::new(mask, [b, p]), &device);
    let similarity = anchors.matmul(features.transpose()).div_scalar(temp);
    let log_prob = match form {
        SupConForm::Standard => {
            let shifted = similarity.clone().sub(similarity.max_dim(1).detach());
            let lse = shifted.clone().exp().sum_dim(1).log();
            shifted.sub(lse)
        }
        SupConForm::Avalanche => {
            // Rows b..2b of Avalanche's [2B, 2B] matrix repeat rows 0..b: the per-row values
            // broadcast along the columns are the anchors' values twice over.
            let row_max = similarity.clone().max_dim(1).detach().reshape([1, b]);
            let col_shift = Tensor::cat(vec![row_max.clone(), row_max], 1);
            let shifted = similarity.sub(col_shift);
            let lse = shifted.clone().exp().sum_dim(1).log().reshape([1, b]);
            shifted.sub(Tensor::cat(vec![lse.clone(), lse], 1))
        }
    };
    let per_anchor = mask.clone().mul(log_prob).sum_dim(1).div(mask.sum_dim(1)).reshape([b]);
    Ok(per_anchor.mean().mul_scalar(-(temp / base_temp)))
}

/// One class's memory samples as a pool source: a cycling shuffled loader of
/// `min(train_mb_size, group size)` rows (Avalanche's per-group `DataLoader(batch_size=
/// train_mb_size, shuffle=True, drop_last=True)`).
struct GroupLoader {
    class: u32,
    offset: usize,
    sampler: CyclingSampler,
}

/// An experience's replay: the memory loader of the cross-entropy term, and the per-class
/// loaders the positives and negatives are drawn from.
struct AmlReplay {
    batches: MemoryBatches,
    memory: ClassificationDataset,
    tasks: Vec<u32>,
    groups: Vec<GroupLoader>,
    rng: ChaCha8Rng,
    /// Reused pool of `(memory row, class)`.
    pool: Vec<(usize, u32)>,
}

impl AmlReplay {
    /// One positive (same class) and one negative (another class; the same task with
    /// `same_task_neg`) memory row per incoming sample, drawn uniformly from this iteration's
    /// pool (one batch of every class's loader), as Avalanche's `torch.multinomial` over the
    /// valid rows: `(positive rows, negative rows)`.
    fn pick(&mut self, targets: &[u32], tasks: &[u32], same_task_neg: bool) -> Result<Vec<usize>> {
        self.pool.clear();
        for g in &mut self.groups {
            let rows = g.sampler.next_batch();
            self.pool.extend(rows.iter().map(|&r| (g.offset + r, g.class)));
        }
        let mut pos = Vec::with_capacity(targets.len());
        let mut neg = Vec::with_capacity(targets.len());
        let mut candidates = Vec::with_capacity(self.pool.len());
        for (&y, &t) in targets.iter().zip(tasks) {
            candidates.clear();
            candidates.extend(self.pool.iter().filter(|(_, c)| *c == y).map(|(r, _)| *r));
            if candidates.is_empty() {
                return Err(ClError::InvalidUse(format!(
                    "ER-AML: class {y} of the mini-batch has no sample in the memory, so it has no positive: \
                     the memory of {} samples gives no slot to some class; raise mem_size to at least the number of \
                     classes",
                    self.memory.len()
                )));
            }
            pos.push(candidates[self.rng.random_range(0..candidates.len())]);
            candidates.clear();
            candidates.extend(
                self.pool.iter().filter(|(r, c)| *c != y && (!same_task_neg || self.tasks[*r] == t)).map(|(r, _)| *r),
            );
            if candidates.is_empty() {
                return Err(ClError::InvalidUse(format!(
                    "ER-AML: the memory holds no sample of another class of task {t} than class {y}, so it has no \
                     negative; set same_task_neg = false to draw negatives from every task"
                )));
            }
            neg.push(candidates[self.rng.random_range(0..candidates.len())]);
        }
        pos.extend(neg);
        Ok(pos)
    }
}

/// The steps of [`ErAml`]: the class-balanced memory (updated at the start of each
/// experience), the memory batch's forward pass, and the metric-learning loss.
pub struct ErAmlSteps {
    config: ErAmlConfig,
    storage: ClassBalancedBuffer,
    replay: Option<AmlReplay>,
    /// The memory batch's output and labels of the current iteration.
    buffer_out: Option<MemoryOutput>,
}

impl std::fmt::Debug for ErAmlSteps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErAmlSteps")
            .field("config", &self.config)
            .field("memory_len", &self.storage.len())
            .finish_non_exhaustive()
    }
}

impl ErAmlSteps {
    /// Empty memory; an error if `config` breaks a rule.
    pub fn new(config: ErAmlConfig) -> Result<Self> {
        config.validate()?;
        let storage = ClassBalancedBuffer::new(ClassBalancedConfig::new(config.mem_size).with_seed(config.seed))?;
        Ok(Self { config, storage, replay: None, buffer_out: None })
    }

    /// The configuration.
    pub fn config(&self) -> &ErAmlConfig {
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

    /// The normalised features of `batch` by the model being trained.
    fn features<M: Model>(state: &StrategyState<M>, batch: &MiniBatch) -> Result<Tensor<2>> {
        let model = state.forward_model();
        model.check_batch(batch)?;
        let features = model.features(batch).ok_or_else(|| {
            ClError::InvalidUse(
                "ER-AML needs the model's features (Avalanche's `feature_extractor`): implement `Model::features` \
                 for the model (it returns None by default)"
                    .into(),
            )
        })?;
        Ok(scale_by_norm(features))
    }
}

impl<M: Model> TemplateSteps<M> for ErAmlSteps {
    fn name(&self) -> String {
        "ErAmlSteps".into()
    }

    /// Avalanche's `_before_training_exp`: the experience's samples enter the memory first,
    /// then, from the second experience of the stream on and once the memory holds
    /// `batch_size_mem` samples of at least two classes, the memory loader and one loader per
    /// class.
    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        self.buffer_out = None;
        let experience = state.current_experience()?;
        let index = experience.current_experience;
        self.storage.update_from_dataset(&experience.dataset.train())?;
        let mb = state.settings().train_mb_size();
        self.replay = match self.storage.buffer() {
            Some(memory)
                if memory.len() >= self.config.batch_size_mem
                    && index > 0
                    && self.storage.buffer_groups().len() > 1 =>
            {
                let seed = memory_seed(state);
                let mut groups = Vec::new();
                let mut offset = 0;
                for (&class, group) in self.storage.buffer_groups() {
                    let len = group.len();
                    if len > 0 {
                        let sampler = CyclingSampler::new(len, mb.min(len), seed ^ (u64::from(class) + 1) << 20)?;
                        groups.push(GroupLoader { class, offset, sampler });
                    }
                    offset += len;
                }
                let tasks = memory.task_labels();
                let batches = MemoryBatches::new(memory.clone(), None, self.config.batch_size_mem, seed)?;
                Some(AmlReplay {
                    batches,
                    memory,
                    tasks,
                    groups,
                    rng: ChaCha8Rng::seed_from_u64(seed ^ 0x414D_4C00),
                    pool: Vec::new(),
                })
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
        if let Some(replay) = self.replay.as_mut().filter(|_| state.is_training()) {
            self.buffer_out = Some(memory_forward(&mut replay.batches, state)?);
        }
        Ok(out)
    }

    /// Without memory, the strategy's criterion; with it, Avalanche's `AMLCriterion`: the
    /// criterion on the memory batch plus [`sup_con_loss`] of the incoming samples' features
    /// against the features of a positive and a negative memory sample each (the incoming
    /// batch's own output enters the loss only through its features).
    fn criterion(&mut self, state: &mut StrategyState<M>) -> Result<Tensor<1>> {
        let Some(memory) = self.buffer_out.take() else {
            return step_defaults::criterion(state);
        };
        let buffer_term = memory_term(state, memory)?;
        let replay = self.replay.as_mut().ok_or(ClError::MissingState("ER-AML replay"))?;
        let batch = state.current_batch()?;
        let rows = replay.pick(&batch.targets, &batch.task_labels, self.config.same_task_neg)?;
        let pos_neg = replay.memory.batch(&rows, state.batch_device(), &mut replay.rng)?;
        let anchors = Self::features(state, batch)?;
        let features = Self::features(state, &pos_neg)?;
        let term = sup_con_loss(
            anchors,
            &batch.targets,
            features,
            &pos_neg.targets,
            self.config.temp,
            self.config.base_temp,
            self.config.sup_con,
        )?;
        Ok(term.add(buffer_term))
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

/// ER-AML (Caccia et al., "New Insights on Reducing Abrupt Representation Change in Online
/// Continual Learning", ICLR 2022; Avalanche's `ER_AML`,
/// `avalanche/training/supervised/er_aml.py`, loss `AMLCriterion` in
/// `avalanche/training/regularization.py`): experience replay where the incoming samples are
/// learnt by metric learning on the features — pulled towards memory samples of their class,
/// pushed from memory samples of other classes — instead of a cross-entropy that would push
/// the old classes' logits down; the classifier learns from the memory's cross-entropy.
///
/// As Avalanche's `ER_AML`:
/// - at the start of each experience its samples enter a class-balanced memory (one reservoir
///   per class) — before training, so the memory also holds the current classes;
/// - from the stream's second experience on (and once the memory holds `batch_size_mem`
///   samples), each iteration draws `batch_size_mem` memory samples for a second forward pass
///   (cross-entropy term), and one positive and one negative memory sample per incoming sample
///   from a pool made of one shuffled batch of every class's memory;
/// - the loss is `CE(memory) + sup_con_loss(features(incoming), features(pos ∪ neg))` with the
///   features scaled to unit norm, temperature `temp`, scaled by `temp / base_temp`; before any
///   replay, the plain criterion. The training metrics see the incoming batch's output.
///
/// The features are [`Model::features`] of the model being trained (Avalanche takes a
/// `feature_extractor` module; with `SimpleMLP`, its hidden layers).
///
/// # Differences from Avalanche
///
/// - The contrastive loss reproduces Avalanche's broadcasting by default
///   ([`SupConForm::Avalanche`]); [`SupConForm::Standard`] is the paper's loss.
/// - A class holding fewer memory samples than `train_mb_size` gives its whole group to the
///   pool. Avalanche's per-class `DataLoader(drop_last=True)` yields nothing then and `cycle`
///   loops for ever: its `ER_AML` hangs, e.g. with `mem_size = 500` and mini-batches of 128 from
///   the 4th class on, and on the online protocol's second sub-experience.
/// - Replay also waits until the memory holds two classes (Avalanche's `torch.multinomial`
///   fails without a negative); a class without memory slots is an error naming the fix.
/// - The memory term uses the strategy's criterion (Avalanche calls `F.cross_entropy`).
///
/// ```
/// use burn::tensor::Device;
/// use cl_core::OptimizerSpec;
/// use cl_models::SimpleMlpConfig;
/// use cl_strategies::{ErAml, ErAmlConfig, ErAmlSteps};
/// let device = Device::flex();
/// let model = SimpleMlpConfig::new().init(&device)?;
/// let strategy = ErAml::builder(model, OptimizerSpec::sgd(0.01), device, ErAmlConfig::new(500))?.build()?;
/// assert_eq!(strategy.steps_as::<ErAmlSteps>().unwrap().config().temp, 0.1);
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "ER_AML", alias = "AMLCriterion")]
pub struct ErAml;

impl ErAml {
    /// A builder with the ER-AML steps and the default evaluator; an error if `config` breaks a
    /// rule.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: ErAmlConfig,
    ) -> Result<StrategyBuilder<M>> {
        Ok(StrategyBuilder::new(model, optimizer, device).steps(ErAmlSteps::new(config)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cl_core::config::assert_rule;

    fn tensor(rows: &[Vec<f64>], device: &Device) -> Tensor<2> {
        let d = rows[0].len();
        Tensor::<2>::from_data(
            TensorData::new(rows.concat().iter().map(|&v| v as f32).collect(), [rows.len(), d]),
            device,
        )
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    /// Avalanche's `__sup_con_loss` in loops: the [2B, 2B] matrix with its
    /// broadcasting (`avalanche`), or row-wise (`standard`).
    #[allow(clippy::needless_range_loop)] // the indices of the formula
    fn by_hand(a: &[Vec<f64>], ya: &[u32], f: &[Vec<f64>], yf: &[u32], temp: f64, base: f64, avalanche: bool) -> f64 {
        let b = a.len();
        let rows: Vec<&Vec<f64>> = (0..2 * b).map(|i| &a[i % b]).collect();
        let targets: Vec<u32> = (0..2 * b).map(|i| ya[i % b]).collect();
        let n = rows.len();
        let p = f.len();
        let mut s: Vec<Vec<f64>> = rows.iter().map(|r| f.iter().map(|c| dot(r, c) / temp).collect()).collect();
        let max: Vec<f64> = s.iter().map(|r| r.iter().cloned().fold(f64::MIN, f64::max)).collect();
        let mut log_prob = vec![vec![0.0; p]; n];
        if avalanche {
            for i in 0..n {
                for j in 0..p {
                    s[i][j] -= max[j];
                }
            }
            let lse: Vec<f64> = s.iter().map(|r| r.iter().map(|v| v.exp()).sum::<f64>().ln()).collect();
            for i in 0..n {
                for j in 0..p {
                    log_prob[i][j] = s[i][j] - lse[j];
                }
            }
        } else {
            for i in 0..n {
                let lse = s[i].iter().map(|v| (v - max[i]).exp()).sum::<f64>().ln();
                for j in 0..p {
                    log_prob[i][j] = s[i][j] - max[i] - lse;
                }
            }
        }
        let mut total = 0.0;
        for i in 0..n {
            let (mut sum, mut count) = (0.0, 0.0);
            for j in 0..p {
                if yf[j] == targets[i] {
                    sum += log_prob[i][j];
                    count += 1.0;
                }
            }
            total += sum / count;
        }
        -(temp / base) * total / n as f64
    }

    /// The values of the test below: torch's `AMLCriterion._AMLCriterion__sup_con_loss(a.repeat(2, 1), f,
    /// ya.repeat(2), yf)` (Avalanche 0.6.0, torch 2.9.0) gives 2.7585983.
    #[test]
    fn sup_con_loss_by_hand_in_both_forms() {
        let device = Device::flex();
        let a = vec![vec![0.6, 0.8, 0.0], vec![0.0, 0.6, -0.8], vec![1.0, 0.0, 0.0]];
        let ya = [1u32, 2, 1];
        let f = vec![
            vec![0.8, 0.6, 0.0],
            vec![0.0, 1.0, 0.0],
            vec![0.6, 0.0, 0.8],
            vec![0.0, 0.0, 1.0],
            vec![-0.6, 0.8, 0.0],
            vec![0.28, 0.96, 0.0],
        ];
        let yf = [1u32, 2, 1, 0, 3, 0];
        let torch = sup_con_loss(tensor(&a, &device), &ya, tensor(&f, &device), &yf, 0.1, 0.07, SupConForm::Avalanche)
            .unwrap()
            .into_scalar::<f32>();
        assert!((f64::from(torch) - 2.758_598_3).abs() < 1e-5, "Avalanche's value: {torch}");
        for (form, avalanche) in [(SupConForm::Avalanche, true), (SupConForm::Standard, false)] {
            let loss = sup_con_loss(tensor(&a, &device), &ya, tensor(&f, &device), &yf, 0.1, 0.07, form).unwrap();
            let value = f64::from(loss.into_scalar::<f32>());
            let expected = by_hand(&a, &ya, &f, &yf, 0.1, 0.07, avalanche);
            assert!((value - expected).abs() < 1e-4 * expected.abs().max(1.0), "{form:?}: {value} vs {expected}");
        }
        // The two forms differ (Avalanche's broadcast is not the paper's loss).
        let v = |form| {
            f64::from(
                sup_con_loss(tensor(&a, &device), &ya, tensor(&f, &device), &yf, 0.1, 0.07, form)
                    .unwrap()
                    .into_scalar::<f32>(),
            )
        };
        assert!((v(SupConForm::Avalanche) - v(SupConForm::Standard)).abs() > 1e-3);
        // Errors: a missing positive, Avalanche's form without 2B features.
        let err =
            sup_con_loss(tensor(&a, &device), &[5, 2, 1], tensor(&f, &device), &yf, 0.1, 0.07, SupConForm::Standard)
                .unwrap_err();
        assert!(err.to_string().contains("no positive"), "{err}");
        let err = sup_con_loss(
            tensor(&a, &device),
            &ya,
            tensor(&f[..5], &device),
            &yf[..5],
            0.1,
            0.07,
            SupConForm::Avalanche,
        )
        .unwrap_err();
        assert!(err.to_string().contains("SupConForm::Standard"), "{err}");
    }

    /// A replay over a memory of classes 0, 1, 2 (groups of 4, 2, 3 rows; class 2 in task 1).
    fn replay(mb: usize) -> AmlReplay {
        let targets = vec![0u32, 0, 0, 0, 1, 1, 2, 2, 2];
        let memory = ClassificationDataset::with_task_label_buffer(
            cl_core::data::InputBuffer::F32((0..9).map(|i| i as f32).collect()),
            vec![1],
            targets,
            vec![0, 0, 0, 0, 0, 0, 1, 1, 1],
        )
        .unwrap();
        let groups = [(0u32, 0usize, 4usize), (1, 4, 2), (2, 6, 3)]
            .iter()
            .map(|&(class, offset, len)| GroupLoader {
                class,
                offset,
                sampler: CyclingSampler::new(len, mb.min(len), u64::from(class)).unwrap(),
            })
            .collect();
        AmlReplay {
            batches: MemoryBatches::new(memory.clone(), None, 2, 0).unwrap(),
            tasks: memory.task_labels(),
            memory,
            groups,
            rng: ChaCha8Rng::seed_from_u64(3),
            pool: Vec::new(),
        }
    }

    /// Positives are memory rows of the sample's class, negatives rows of another class (of the
    /// sample's task with `same_task_neg`), both from this iteration's pool: `min(mb, group)`
    /// rows of every class; every valid row is drawn.
    #[test]
    fn positives_and_negatives_are_drawn_from_the_pool_as_avalanche() {
        let mut r = replay(3);
        let targets = [0u32, 1, 1, 0];
        let tasks = [0u32, 0, 0, 0];
        let memory_targets = r.memory.targets();
        let mut drawn = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let rows = r.pick(&targets, &tasks, true).unwrap();
            assert_eq!(rows.len(), 8);
            assert_eq!(r.pool.len(), 3 + 2 + 3, "min(3, group) rows of every class");
            let pool: Vec<usize> = r.pool.iter().map(|(row, _)| *row).collect();
            for (i, (&y, &t)) in targets.iter().zip(&tasks).enumerate() {
                let (pos, neg) = (rows[i], rows[4 + i]);
                assert!(pool.contains(&pos) && pool.contains(&neg), "drawn from the pool");
                assert_eq!(memory_targets[pos], y, "a positive has the sample's class");
                assert_ne!(memory_targets[neg], y, "a negative has another class");
                assert_eq!(r.tasks[neg], t, "same_task_neg: the negative is of the sample's task");
                drawn.insert((i, pos, neg));
            }
        }
        // Sample 0 (class 0, task 0): its negatives are class 1's rows 4 and 5 only (class 2 is
        // of task 1).
        let negatives: std::collections::BTreeSet<usize> =
            drawn.iter().filter(|(i, ..)| *i == 0).map(|(_, _, n)| *n).collect();
        assert_eq!(negatives, [4, 5].into());
        let positives: std::collections::BTreeSet<usize> =
            drawn.iter().filter(|(i, ..)| *i == 0).map(|(_, p, _)| *p).collect();
        assert_eq!(positives, [0, 1, 2, 3].into(), "every row of the class over the passes");
        // Without same_task_neg, class 2 is a negative of class 0.
        let mut r = replay(3);
        let found = (0..100).any(|_| {
            let rows = r.pick(&[0], &[0], false).unwrap();
            memory_targets[rows[1]] == 2
        });
        assert!(found);
        // Class 2 is alone in task 1: no negative with same_task_neg — an error naming the fix.
        let mut r = replay(3);
        let mut r1 = replay(3);
        r1.tasks = vec![0, 0, 0, 0, 0, 0, 1, 1, 1];
        let err = r.pick(&[2], &[1], true).unwrap_err();
        assert!(err.to_string().contains("same_task_neg = false"), "{err}");
        // A class without memory rows has no positive.
        let err = r1.pick(&[7], &[0], true).unwrap_err();
        assert!(err.to_string().contains("raise mem_size"), "{err}");
    }

    #[test]
    fn scale_by_norm_is_avalanches_with_a_finite_gradient_at_a_zero_row() {
        let device = Device::flex().autodiff();
        let input = tensor(&[vec![3.0, 4.0], vec![0.0, 0.0]], &device).require_grad();
        let x = scale_by_norm(input.clone());
        let v = x.clone().into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        let want = [3.0 / (5.0 + 1e-5), 4.0 / (5.0 + 1e-5), 0.0, 0.0];
        for (a, b) in v.iter().zip(want) {
            assert!((f64::from(*a) - b).abs() < 1e-6, "{v:?}");
        }
        let grads = x.sum().backward();
        let g = input.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap();
        assert!(g.iter().all(|v| v.is_finite()), "a zero row must not give NaN: {g:?}");
    }

    #[test]
    fn config_rules() {
        assert_rule(ErAmlConfig::new(0).validate(), "mem_size_positive");
        assert_rule(ErAmlConfig::new(5).with_batch_size_mem(0).validate(), "batch_size_mem_positive");
        assert_rule(ErAmlConfig::new(5).with_batch_size_mem(6).validate(), "batch_size_mem_at_most_mem_size");
        assert_rule(ErAmlConfig::new(50).with_temp(0.0).validate(), "temp_positive");
        assert_rule(ErAmlConfig::new(50).with_base_temp(f64::NAN).validate(), "base_temp_positive");
        assert_rule(ErAmlSteps::new(ErAmlConfig::new(0)).map(|_| ()), "mem_size_positive");
        let d = ErAmlConfig::default();
        assert_eq!((d.mem_size, d.batch_size_mem, d.temp, d.base_temp, d.same_task_neg), (200, 10, 0.1, 0.07, true));
        assert_eq!(d.sup_con, SupConForm::Avalanche);
    }
}
