//! [`Cope`]: Continual Prototype Evolution (De Lange & Tuytelaars, ICCV 2021; Avalanche's `CoPE`
//! and `CoPEPlugin`).

use std::borrow::Cow;

use burn::tensor::{Device, Int, Tensor, TensorData};
use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, rule};
use cl_core::data::{DataLoaderConfig, ReplayDataLoader, ReplayDataLoaderConfig};
use cl_core::{
    ClError, Experience, Model, OptimizerSpec, Result, StrategyBuilder, StrategyState, TemplateSteps, step_defaults,
};
use cl_models::l2_normalize;
use cl_plugins::storage::{ClassBalancedBuffer, ClassBalancedConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::memory::{load_memory, save_memory};

/// CoPE's hyper-parameters, with the defaults of Avalanche's `CoPE` strategy (`mem_size=200`,
/// `n_classes=10`, `p_size=100`, `alpha=0.99`, `T=0.1`; `CoPEPlugin`'s `max_it_cnt=1`).
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_strategies::CopeConfig;
/// let config = CopeConfig::new(500).with_p_size(10);
/// assert_eq!(CopeConfig::from_toml("mem_size = 500\np_size = 10")?, config);
/// assert!(CopeConfig::from_toml("mem_size = 500\nalpha = 1.5").is_err());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "CoPE", alias = "CoPEPlugin")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CopeConfig {
    /// Samples in the class-balanced replay memory (default 200, at least 1).
    pub mem_size: usize,
    /// Classes of the whole stream: one prototype each from the start, labels below it
    /// (default 10, at least 2).
    pub n_classes: usize,
    /// Width of the model's output, the embedding the prototypes live in (default 100).
    pub p_size: usize,
    /// Momentum of the prototype update (default 0.99, in [0, 1]).
    pub alpha: f64,
    /// Softmax temperature of the PPP loss (default 0.1, > 0).
    pub temperature: f64,
    /// Training iterations per experience before it stops (default 1: online learning, one
    /// update per incoming mini-batch, at least 1).
    pub max_it_cnt: usize,
    /// Reproduce Avalanche 0.6's template: after an experience stopped in its last epoch (its
    /// `max_it_cnt` iterations done), the next experience of the same `train` call trains no
    /// iteration (default `false`). Avalanche's `stop_training` flag is cleared only at the start
    /// of the next epoch or `train` call, so with `train_epochs = 1` it carries over and skips
    /// every other online sub-experience (their memory and prototype updates still run).
    pub skip_after_stop: bool,
    /// Seed of the initial prototypes and of the memory's reservoirs (default 0).
    pub seed: u64,
}

impl Default for CopeConfig {
    /// Avalanche's defaults.
    fn default() -> Self {
        Self::new(200)
    }
}

impl CopeConfig {
    /// A memory of `mem_size` samples, Avalanche's other defaults.
    pub fn new(mem_size: usize) -> Self {
        Self {
            mem_size,
            n_classes: 10,
            p_size: 100,
            alpha: 0.99,
            temperature: 0.1,
            max_it_cnt: 1,
            skip_after_stop: false,
            seed: 0,
        }
    }

    /// Sets the number of classes.
    pub fn with_n_classes(mut self, n_classes: usize) -> Self {
        self.n_classes = n_classes;
        self
    }

    /// Sets the embedding width.
    pub fn with_p_size(mut self, p_size: usize) -> Self {
        self.p_size = p_size;
        self
    }

    /// Sets the prototype momentum.
    pub fn with_alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// Sets the temperature.
    pub fn with_temperature(mut self, temperature: f64) -> Self {
        self.temperature = temperature;
        self
    }

    /// Sets the iterations per experience.
    pub fn with_max_it_cnt(mut self, max_it_cnt: usize) -> Self {
        self.max_it_cnt = max_it_cnt;
        self
    }

    /// Sets whether the experience after a stopped one is skipped (Avalanche's template).
    pub fn with_skip_after_stop(mut self, skip_after_stop: bool) -> Self {
        self.skip_after_stop = skip_after_stop;
        self
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

impl Validate for CopeConfig {
    /// `mem_size_positive`, `n_classes_at_least_two`, `p_size_positive`, `alpha_in_unit_interval`,
    /// `temperature_positive`, `max_it_cnt_positive`.
    fn validate(&self) -> Result<()> {
        const C: &str = "CopeConfig";
        rule(C, "mem_size_positive", self.mem_size > 0, || "mem_size must be at least 1".into())?;
        rule(C, "n_classes_at_least_two", self.n_classes >= 2, || {
            format!("n_classes = {}: the PPP loss contrasts each class with the others; use at least 2", self.n_classes)
        })?;
        rule(C, "p_size_positive", self.p_size > 0, || "p_size (the model's output width) must be at least 1".into())?;
        rule(C, "alpha_in_unit_interval", (0.0..=1.0).contains(&self.alpha), || {
            format!("alpha = {} must be in [0, 1]", self.alpha)
        })?;
        rule(C, "temperature_positive", self.temperature > 0.0 && self.temperature.is_finite(), || {
            format!("temperature = {} must be a positive number", self.temperature)
        })?;
        rule(C, "max_it_cnt_positive", self.max_it_cnt > 0, || "max_it_cnt must be at least 1".into())
    }
}

/// The Pseudo-Prototypical Proxy loss (Avalanche's `PPPloss`) of unit-norm embeddings `x`
/// (`[B, D]`, with their graph) labelled `targets`, against the prototypes `prototypes`
/// (`[C, D]`, constants; row `c` is class `c`'s), temperature `t`.
///
/// For each class `c` of the batch, with `B_c` its samples, `B_k` the others, `p_c` its prototype
/// and `p_k` the other prototypes, all similarities `exp(⟨a, b⟩ / t)`:
/// - attractor: `Σ_{i ∈ B_c} log( (1/|B_c|) Σ_{j ∈ B_c ∪ {p_c}, j ≠ i} s_ji / (s_ji + Σ_k s_{p_k i}) )`;
/// - repellor: `Σ_{i ∈ B_c} Σ_{x ∈ B_k} log(1 − (P(i, x) + P(p_c, x)) / 2)` with
///   `P(a, x) = s_ax / (s_ax + Σ_k s_{p_k x})`;
///
/// the loss is `−Σ_c (attractor + repellor) / B`. As Avalanche, the "pseudo-prototypes" (the
/// rows of `B_c` playing the prototype's part) and the prototypes are constants: the gradient
/// reaches the embeddings through the samples being classified (the columns) only.
pub fn ppp_loss(x: Tensor<2>, targets: &[u32], prototypes: &Tensor<2>, t: f64) -> Result<Tensor<1>> {
    let [b, d] = x.dims();
    let [c_total, pd] = prototypes.dims();
    if b != targets.len() || d != pd {
        return Err(ClError::InvalidUse(format!(
            "PPP loss of {b} embeddings of width {d} with {} labels against prototypes of width {pd}",
            targets.len()
        )));
    }
    if let Some(&bad) = targets.iter().find(|&&y| y as usize >= c_total) {
        return Err(ClError::InvalidUse(format!(
            "label {bad} has no prototype: CoPE holds {c_total} (n_classes); raise n_classes to the stream's classes"
        )));
    }
    let device = x.device();
    // Host masks over (row j, column i): same class without self, other class, identity, and
    // 1 / |B_{y_i}| per column.
    let mut count = vec![0usize; c_total];
    targets.iter().for_each(|&y| count[y as usize] += 1);
    let mask = |f: &dyn Fn(usize, usize) -> bool| {
        let values: Vec<f32> = (0..b * b).map(|k| if f(k / b, k % b) { 1.0 } else { 0.0 }).collect();
        Tensor::<2>::from_data(TensorData::new(values, [b, b]), &device)
    };
    let same = mask(&|j, i| j != i && targets[j] == targets[i]);
    let other = mask(&|j, i| targets[j] != targets[i]);
    let eye = mask(&|j, i| j == i);
    let inv_n: Vec<f32> = targets.iter().map(|&y| 1.0 / count[y as usize] as f32).collect();
    let inv_n = Tensor::<2>::from_data(TensorData::new(inv_n, [1, b]), &device);
    let y = Tensor::<1, Int>::from_data(
        TensorData::new(targets.iter().map(|&v| v as i64).collect::<Vec<_>>(), [b]),
        &device,
    );
    // s[j, i] = exp(⟨x_j, x_i⟩ / t) with the rows constant; e[k, i] = exp(⟨p_k, x_i⟩ / t).
    let s = x.clone().detach().matmul(x.clone().transpose()).div_scalar(t).exp();
    let e = prototypes.clone().matmul(x.transpose()).div_scalar(t).exp();
    let total = e.clone().sum_dim(0);
    // own[j, i] = e[y_j, i]: the prototype of row j's class against column i.
    let own = e.select(0, y);
    // Attractor, column i of class c = y_i: the other prototypes in the denominator.
    let own_column = (own.clone() * eye).sum_dim(0);
    let others = total.clone() - own_column.clone();
    let pseudo = s.clone() / (s.clone() + others);
    let expected = ((pseudo * same).sum_dim(0) + own_column / total.clone()) * inv_n;
    let attractor = expected.log().sum();
    // Repellor, pairs (j, i) of different classes c = y_j ≠ y_i: the prototypes but c's in the
    // denominator; the pseudo-prototype x_j and the prototype p_c averaged.
    let others = total.clone() - own.clone();
    let pseudo = s.clone() / (s + others);
    let expected = (pseudo + own / total).div_scalar(2.0) * other;
    let repellor = expected.neg().add_scalar(1.0).log().sum();
    Ok((attractor + repellor).neg().div_scalar(b as f64))
}

/// CoPE's steps: L2-normalised model outputs, the PPP loss against momentum-updated class
/// prototypes, class-balanced replay of `train_mb_size` memory samples per mini-batch,
/// `max_it_cnt` iterations per experience, nearest-prototype classification at evaluation.
pub struct CopeSteps {
    config: CopeConfig,
    storage: ClassBalancedBuffer,
    /// The prototypes, `n_classes × p_size`, unit norm; empty before the first training.
    prototypes: Vec<f32>,
    /// Per class, the sum of the embeddings seen during this experience and their count.
    running: Vec<(Vec<f64>, usize)>,
    /// Training iterations in this experience.
    it_cnt: usize,
    /// The next experience of this `train` call trains nothing (`skip_after_stop`).
    skip_next: bool,
    /// The evaluation embeddings of the current batch (for the evaluation loss).
    eval_embeddings: Option<Tensor<2>>,
}

impl std::fmt::Debug for CopeSteps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopeSteps")
            .field("config", &self.config)
            .field("memory_len", &self.storage.len())
            .finish_non_exhaustive()
    }
}

impl CopeSteps {
    /// The steps with an empty memory; an error if `config` breaks a rule.
    pub fn new(config: CopeConfig) -> Result<Self> {
        config.validate()?;
        let storage = ClassBalancedBuffer::new(ClassBalancedConfig::new(config.mem_size).with_seed(config.seed))?;
        let running = vec![(vec![0.0; config.p_size], 0); config.n_classes];
        Ok(Self {
            config,
            storage,
            prototypes: Vec::new(),
            running,
            it_cnt: 0,
            skip_next: false,
            eval_embeddings: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &CopeConfig {
        &self.config
    }

    /// The replay memory, one reservoir per class.
    pub fn storage(&self) -> &ClassBalancedBuffer {
        &self.storage
    }

    /// The prototypes, `n_classes` rows of `p_size` (unit norm); empty before training.
    pub fn prototypes(&self) -> Vec<Vec<f32>> {
        self.prototypes.chunks(self.config.p_size.max(1)).map(<[f32]>::to_vec).collect()
    }

    /// Avalanche's `_init_new_prototypes` for every class: uniform in `[-1, 1]`, scaled to unit
    /// norm (from the config's seed).
    fn init_prototypes(&mut self) {
        let mut rng = ChaCha8Rng::seed_from_u64(self.config.seed ^ 0xC0_9E00_0000_0001);
        let d = self.config.p_size;
        self.prototypes = (0..self.config.n_classes * d).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        for row in self.prototypes.chunks_mut(d) {
            normalize(row);
        }
    }

    fn prototype_tensor(&self, device: &Device) -> Tensor<2> {
        Tensor::from_data(TensorData::new(self.prototypes.clone(), [self.config.n_classes, self.config.p_size]), device)
    }

    /// The model's outputs, unit norm; a typed error when their width is not `p_size`.
    fn embed<M: Model>(&self, state: &mut StrategyState<M>) -> Result<Tensor<2>> {
        let out = step_defaults::forward(state)?;
        let width = out.dims()[1];
        if width != self.config.p_size {
            return Err(ClError::config(
                "CopeConfig",
                format!(
                    "the model outputs {width} values but p_size = {}: CoPE's prototypes live in the model's output \
                     (Avalanche's p_size); set p_size to the output width or build the model with {} outputs",
                    self.config.p_size, self.config.p_size
                ),
            ));
        }
        Ok(l2_normalize(out))
    }

    /// Avalanche's `_update_prototypes`: `p ← normalize(α p + (1 − α) normalize(mean))` for each
    /// class seen in this experience's iterations.
    fn update_prototypes(&mut self) {
        let d = self.config.p_size;
        let alpha = self.config.alpha as f32;
        for (c, (sum, count)) in self.running.iter_mut().enumerate() {
            if *count == 0 {
                continue;
            }
            let mut incr: Vec<f32> = sum.iter().map(|&s| (s / *count as f64) as f32).collect();
            normalize(&mut incr);
            let row = &mut self.prototypes[c * d..(c + 1) * d];
            for (p, i) in row.iter_mut().zip(&incr) {
                *p = alpha * *p + (1.0 - alpha) * i;
            }
            normalize(row);
            sum.iter_mut().for_each(|s| *s = 0.0);
            *count = 0;
        }
    }
}

/// Scales `v` to unit L2 norm (torch's `normalize`, `eps = 1e-12`).
fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
}

impl<M: Model> TemplateSteps<M> for CopeSteps {
    fn name(&self) -> String {
        "CopeSteps".into()
    }

    /// The outputs are embeddings (training) or prototype similarities (evaluation): the
    /// labels are checked against `n_classes` by the loss.
    fn num_outputs(&self, _state: &StrategyState<M>) -> Option<usize> {
        None
    }

    /// Avalanche's `before_training_exp`: with a memory, each mini-batch is `train_mb_size`
    /// current samples followed by `train_mb_size` memory samples (memory not cycled).
    fn make_train_dataloader(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let Some(memory) = self.storage.buffer().filter(|b| !b.is_empty()) else {
            return step_defaults::make_train_dataloader(state);
        };
        let data = state.adapted_dataset.as_ref().ok_or(ClError::MissingState("adapted_dataset"))?;
        let mb = state.settings().train_mb_size();
        let config = ReplayDataLoaderConfig::new(DataLoaderConfig::train(mb, state.experience_seed()))
            .with_batch_size_mem(mb)
            .with_oversample_small_tasks(false);
        state.dataloader = Some(Box::new(ReplayDataLoader::new(data, Some(&memory), config)?));
        Ok(())
    }

    /// The prototypes are drawn once, before the first training; the iteration count restarts.
    fn before_training_exp(&mut self, _state: &mut StrategyState<M>) -> Result<()> {
        if self.prototypes.is_empty() {
            self.init_prototypes();
        }
        self.it_cnt = 0;
        Ok(())
    }

    /// A `train` call starts: nothing carries over from an earlier one.
    fn train_experiences<'a>(&mut self, experiences: &'a [Experience]) -> Result<Cow<'a, [Experience]>> {
        self.skip_next = false;
        Ok(Cow::Borrowed(experiences))
    }

    /// With `skip_after_stop`, the experience after a stopped one stops before its first epoch.
    fn before_training_epoch(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        if std::mem::take(&mut self.skip_next) {
            state.stop_training()?;
        }
        Ok(())
    }

    /// Training: the unit-norm embeddings. Evaluation: their dot products with the prototypes
    /// (the nearest prototype is the largest).
    fn forward(&mut self, state: &mut StrategyState<M>) -> Result<Tensor<2>> {
        let embeddings = self.embed(state)?;
        if state.is_training() {
            return Ok(embeddings);
        }
        if self.prototypes.is_empty() {
            self.init_prototypes();
        }
        let prototypes = self.prototype_tensor(&embeddings.device());
        self.eval_embeddings = Some(embeddings.clone());
        Ok(embeddings.matmul(prototypes.transpose()))
    }

    /// The PPP loss of the embeddings (training: after adding them to the running class sums,
    /// Avalanche's `after_forward`; evaluation: on the stored embeddings).
    fn criterion(&mut self, state: &mut StrategyState<M>) -> Result<Tensor<1>> {
        let targets = state.current_batch()?.targets.clone();
        let embeddings = if state.is_training() {
            let out = state.mb_output.clone().ok_or(ClError::MissingState("mb_output"))?;
            let values = out
                .clone()
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .map_err(|e| ClError::InvalidUse(format!("reading CoPE's embeddings back: {e:?}")))?;
            let d = self.config.p_size;
            for (row, &y) in values.chunks(d).zip(&targets) {
                if let Some((sum, count)) = self.running.get_mut(y as usize) {
                    sum.iter_mut().zip(row).for_each(|(s, &v)| *s += v as f64);
                    *count += 1;
                }
            }
            out
        } else {
            self.eval_embeddings.take().ok_or(ClError::MissingState("CoPE's evaluation embeddings"))?
        };
        let prototypes = self.prototype_tensor(&embeddings.device());
        ppp_loss(embeddings, &targets, &prototypes, self.config.temperature)
    }

    /// The update, then Avalanche's early stop after `max_it_cnt` iterations of the experience.
    fn optimizer_step(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        step_defaults::optimizer_step(state)?;
        self.it_cnt += 1;
        if self.it_cnt == self.config.max_it_cnt {
            state.stop_training()?;
            let last_epoch = state.clock().train_exp_epochs + 1 >= state.settings().train_epochs() as u64;
            self.skip_next = self.config.skip_after_stop && last_epoch;
        }
        Ok(())
    }

    /// Avalanche's `after_training_exp`: the prototypes take the experience's running means,
    /// then the experience enters the memory.
    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        self.update_prototypes();
        let data = state.current_experience()?.dataset.train();
        self.storage.update_from_dataset(&data)
    }

    /// The configuration (checked on load), the memory, the prototypes and the iteration count.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        save_memory(out, &self.config, &self.storage)?;
        out.put_data("prototypes", TensorData::new(self.prototypes.clone(), [self.prototypes.len()]));
        out.put("it_cnt", &self.it_cnt)?;
        out.put("skip_next", &self.skip_next)?;
        Ok(())
    }

    fn load_state(&mut self, state: &StateDict, _strategy: &StrategyState<M>) -> Result<()> {
        load_memory(state, &self.config, &mut self.storage)?;
        let prototypes =
            state.data("prototypes")?.convert::<f32>().try_into_vec::<f32>().map_err(|e| ClError::CheckpointEntry {
                component: state.component().to_string(),
                key: "prototypes".into(),
                reason: format!("{e:?}"),
            })?;
        if !prototypes.is_empty() && prototypes.len() != self.config.n_classes * self.config.p_size {
            return Err(ClError::CheckpointEntry {
                component: state.component().to_string(),
                key: "prototypes".into(),
                reason: format!("{} values for {} × {}", prototypes.len(), self.config.n_classes, self.config.p_size),
            });
        }
        self.prototypes = prototypes;
        self.it_cnt = state.get("it_cnt")?;
        self.skip_next = state.get("skip_next")?;
        self.running = vec![(vec![0.0; self.config.p_size], 0); self.config.n_classes];
        self.eval_embeddings = None;
        Ok(())
    }
}

/// CoPE (De Lange & Tuytelaars, "Continual Prototype Evolution: Learning Online from
/// Non-Stationary Data Streams", ICCV 2021; Avalanche's `CoPE`,
/// `avalanche/training/supervised/strategy_wrappers.py`, plugin `CoPEPlugin` and loss `PPPloss`
/// in `avalanche/training/plugins/cope.py`): online class-incremental learning of an embedding
/// in which each class has a prototype.
///
/// As Avalanche's:
/// - the model's output (`p_size` wide) is L2-normalised (Avalanche swaps its last layer for
///   the layer followed by `L2Normalization`) and trained with [`ppp_loss`] against one
///   prototype per class (all `n_classes` drawn uniform in `[-1, 1]` and normalised before
///   training);
/// - with a memory, each mini-batch is `train_mb_size` current samples followed by
///   `train_mb_size` samples of a class-balanced memory (adaptive: `mem_size` split among the
///   classes seen), updated with each experience at its end;
/// - the embeddings of every training mini-batch (replayed rows included) accumulate per class;
///   at the end of the experience each class's prototype moves to
///   `normalize(α p + (1 − α) normalize(mean))`;
/// - an experience trains `max_it_cnt` iterations (default 1) and stops: CoPE is made for the
///   online protocol, where an experience is one small mini-batch;
/// - evaluation predicts the nearest prototype (largest dot product); the evaluation loss is
///   the PPP loss.
///
/// # Differences from Avalanche
/// - Evaluation outputs are the dot products with the prototypes, not Avalanche's one-hot
///   code: same accuracy (ties to the lowest class), top-k metrics meaningful.
/// - The prototypes come from a seeded host generator (Avalanche: torch's global one).
/// - Labels at or above `n_classes` are a typed error (Avalanche: a lookup failure).
///
/// ```
/// use burn::tensor::Device;
/// use cl_core::OptimizerSpec;
/// use cl_models::SimpleMlpConfig;
/// use cl_strategies::{Cope, CopeConfig};
/// let device = Device::flex();
/// let model = SimpleMlpConfig::new().with_num_classes(100).init(&device)?;
/// let strategy = Cope::builder(model, OptimizerSpec::sgd(0.01), device, CopeConfig::new(500))?.train_mb_size(10).build()?;
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "CoPE")]
pub struct Cope;

impl Cope {
    /// A builder with CoPE's steps; an error if `config` breaks a rule.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: CopeConfig,
    ) -> Result<StrategyBuilder<M>> {
        Ok(StrategyBuilder::new(model, optimizer, device).steps(CopeSteps::new(config)?))
    }
}

#[cfg(test)]
mod tests;
