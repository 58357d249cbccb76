//! [`Bic`]: Bias Correction (Wu et al., "Large Scale Incremental Learning", CVPR 2019;
//! Avalanche 0.6's `BiC` strategy and `BiCPlugin`, `avalanche/training/plugins/bic.py`, bias
//! layer `BiasLayer` in `avalanche/models/bic_model.py`; itself after FACIL's `bic.py`).
//!
//! Class-incremental replay with distillation and a bias-correction layer:
//! - a part of each experience is held out: `val_percentage · mem_size` samples in all, split
//!   equally over the classes seen (the first ones of each class, in the experience's order),
//!   kept per class in a reservoir that shrinks as classes arrive; the rest is the training
//!   data;
//! - training batches hold the current samples and as many memory samples (an
//!   experience-balanced memory of `mem_size`, filled from the training part after each
//!   experience; Avalanche's `ReplayDataLoader`);
//! - from the second experience, the loss is `(1 − λ)·CE + λ·distillation` with
//!   `λ = old classes / all classes`: the cross-entropy at temperature 2 between the current
//!   model's and the previous model's logits of the old classes (the previous model's logits of
//!   the previous experience's classes first corrected by the current bias layer, from the
//!   third experience);
//! - after each experience from the second, stage 2: a bias layer `α·z + β` on the logits of
//!   the experience's classes, trained on the held-out samples with the model frozen (SGD
//!   lr 0.1, momentum 0.9, the rate divided by 10 after epochs 50, 100 and 150, loss
//!   `CE + 0.1·β²/2`); at evaluation the layer corrects the model's logits.
//!
//! Deliberate differences from Avalanche:
//! - the distillation's soft targets are Avalanche's `softmax(old / T, dim=0)` — normalised
//!   over the *batch*, not over the classes — by default ([`BicDistillation::Avalanche`]);
//!   [`BicDistillation::Standard`] normalises over the classes as the paper does;
//! - the temperature is `temperature` (default 2); Avalanche's `T` is ignored and 2 hard-coded;
//! - stage 2 computes the frozen model's logits of the held-out samples once and fits `α` and
//!   `β` on them (two scalars, an exact gradient on the host, milliseconds); Avalanche runs the
//!   model forward on every batch of its 200 epochs — the same numbers, up to the shuffles;
//! - the held-out samples are read in their evaluation view (no augmentation); Avalanche uses
//!   the experience's current transforms (the same for Fashion-MNIST);
//! - when the classes seen do not divide the held-out size, the remainder goes to the classes
//!   of smallest id (Avalanche: the first ones of a Python `set`, the same order for small ids);
//! - Avalanche's bias correction leaves the model in evaluation mode: in a `train` call over
//!   several experiences, dropout stays off from the third on; cl keeps the model as it was
//!   (one experience per call, as the comparison runs, is the same in both);
//! - other plugins' loss terms are added after the mixing (Avalanche mixes whatever loss
//!   the plugins before BiC added).

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor, TensorData};
use cl_core::checkpoint::StateDict;
use cl_core::config::Validate;
use cl_core::data::{ClassificationDataset, DataLoaderConfig, ReplayDataLoader, ReplayDataLoaderConfig};
use cl_core::{ClError, Model, OptimizerSpec, Result, StrategyBuilder, StrategyState, TemplateSteps, step_defaults};
use cl_plugins::storage::{
    ExperienceBalancedBuffer, ExperienceBalancedConfig, ReservoirConfig, ReservoirSamplingBuffer,
};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::memory::run_logits;

/// How the distillation's soft targets are normalised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BicDistillation {
    /// Avalanche 0.6's `softmax(old / T, dim=0)`: each class's column normalised over the
    /// batch (the default, for fidelity).
    #[default]
    Avalanche,
    /// The paper's `softmax(old / T)` over the old classes of each sample.
    Standard,
}

/// The configuration of [`Bic`]: Avalanche's `BiC(mem_size=200, val_percentage=0.1, T=2,
/// stage_2_epochs=200, lamb=-1, lr=0.1)`.
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_strategies::{BicConfig, BicDistillation};
/// let config = BicConfig::new(2000).with_lamb(Some(0.5));
/// assert_eq!(BicConfig::from_toml("mem_size = 2000\nlamb = 0.5")?, config);
/// assert_eq!(BicConfig::default().distillation, BicDistillation::Avalanche);
/// assert!(BicConfig::from_toml("mem_size = 5").is_err()); // 10 % of 5 holds no sample
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BicConfig {
    /// Samples in the replay memory (default 200); `val_percentage` of it is held out besides.
    pub mem_size: usize,
    /// The proportion of `mem_size` held out for stage 2 (default 0.1; `val_percentage ·
    /// mem_size` must be at least 1).
    pub val_percentage: f64,
    /// Epochs of stage 2 (default 200).
    pub stage_2_epochs: usize,
    /// Learning rate of stage 2 (default 0.1, positive).
    pub lr: f64,
    /// The weight of the distillation: `None` (default; Avalanche's `lamb=-1`) for old classes
    /// over all classes, mixing `(1 − λ)·CE + λ·distillation`; `Some(λ)` for `CE + λ·distillation`.
    pub lamb: Option<f64>,
    /// The distillation's temperature (default 2, Avalanche's hard-coded value; positive).
    pub temperature: f64,
    /// How the soft targets are normalised (default Avalanche's).
    pub distillation: BicDistillation,
    /// Seed of the memory's and the held-out reservoirs and of stage 2's shuffles (default 0).
    pub seed: u64,
}

impl Default for BicConfig {
    fn default() -> Self {
        Self::new(200)
    }
}

impl BicConfig {
    /// A memory of `mem_size` samples, Avalanche's other defaults.
    pub fn new(mem_size: usize) -> Self {
        Self {
            mem_size,
            val_percentage: 0.1,
            stage_2_epochs: 200,
            lr: 0.1,
            lamb: None,
            temperature: 2.0,
            distillation: BicDistillation::Avalanche,
            seed: 0,
        }
    }

    /// Sets the memory size.
    pub fn with_mem_size(mut self, mem_size: usize) -> Self {
        self.mem_size = mem_size;
        self
    }

    /// Sets the held-out proportion.
    pub fn with_val_percentage(mut self, val_percentage: f64) -> Self {
        self.val_percentage = val_percentage;
        self
    }

    /// Sets the epochs of stage 2.
    pub fn with_stage_2_epochs(mut self, epochs: usize) -> Self {
        self.stage_2_epochs = epochs;
        self
    }

    /// Sets the learning rate of stage 2.
    pub fn with_lr(mut self, lr: f64) -> Self {
        self.lr = lr;
        self
    }

    /// Sets the distillation weight (`None`: old classes over all classes).
    pub fn with_lamb(mut self, lamb: Option<f64>) -> Self {
        self.lamb = lamb;
        self
    }

    /// Sets the distillation temperature.
    pub fn with_temperature(mut self, temperature: f64) -> Self {
        self.temperature = temperature;
        self
    }

    /// Sets how the soft targets are normalised.
    pub fn with_distillation(mut self, distillation: BicDistillation) -> Self {
        self.distillation = distillation;
        self
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The number of held-out samples, `int(val_percentage · mem_size)`.
    pub fn val_size(&self) -> usize {
        (self.val_percentage * self.mem_size as f64) as usize
    }
}

impl Validate for BicConfig {
    /// `mem_size_positive`, `val_percentage_in_unit_interval`, `val_size_positive`,
    /// `lr_positive`, `temperature_positive`, `lamb_finite_non_negative`.
    fn validate(&self) -> Result<()> {
        let fail =
            |rule: &'static str, reason: String| Err(ClError::InvalidConfig { config: "BicConfig", rule, reason });
        if self.mem_size == 0 {
            return fail("mem_size_positive", "BiC replays from a memory: mem_size must be at least 1".into());
        }
        if !(self.val_percentage > 0.0 && self.val_percentage <= 1.0) {
            return fail(
                "val_percentage_in_unit_interval",
                format!("the held-out proportion of the memory is in (0, 1], got {}", self.val_percentage),
            );
        }
        if self.val_size() == 0 {
            return fail(
                "val_size_positive",
                format!(
                    "val_percentage · mem_size = {} · {} holds no sample for the bias layer: raise mem_size or \
                     val_percentage",
                    self.val_percentage, self.mem_size
                ),
            );
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return fail("lr_positive", format!("stage 2's learning rate must be positive, got {}", self.lr));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return fail("temperature_positive", format!("the temperature must be positive, got {}", self.temperature));
        }
        if let Some(l) = self.lamb
            && !(l.is_finite() && l >= 0.0)
        {
            return fail("lamb_finite_non_negative", format!("lamb must be a finite number ≥ 0, got {l}"));
        }
        Ok(())
    }
}

/// The bias-correction layer (Avalanche's `BiasLayer`): `α·z + β` on the logits of `classes`,
/// the others unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BiasLayer {
    /// The classes it corrects (those of the experience it was trained after), sorted.
    pub classes: Vec<u32>,
    /// The scale.
    pub alpha: f64,
    /// The shift.
    pub beta: f64,
}

impl BiasLayer {
    /// The identity on `classes` (α 1, β 0), as a new layer starts.
    pub fn new(mut classes: Vec<u32>) -> Self {
        classes.sort_unstable();
        classes.dedup();
        Self { classes, alpha: 1.0, beta: 0.0 }
    }

    /// `logits` with the layer applied (one multiply-add over `[batch, outputs]`).
    pub fn forward(&self, logits: Tensor<2>) -> Tensor<2> {
        let outputs = logits.dims()[1];
        let mut scale = vec![1.0f32; outputs];
        let mut shift = vec![0.0f32; outputs];
        for &c in self.classes.iter().filter(|&&c| (c as usize) < outputs) {
            scale[c as usize] = self.alpha as f32;
            shift[c as usize] = self.beta as f32;
        }
        let device = logits.device();
        let scale = Tensor::<2>::from_data(TensorData::new(scale, [1, outputs]), &device);
        let shift = Tensor::<2>::from_data(TensorData::new(shift, [1, outputs]), &device);
        logits * scale + shift
    }
}

/// Stage 2's milestones (Avalanche's `MultiStepLR(milestones=[50, 100, 150], gamma=0.1)`).
const STAGE_2_MILESTONES: [usize; 3] = [50, 100, 150];
/// Stage 2's momentum.
const STAGE_2_MOMENTUM: f64 = 0.9;
/// The weight of stage 2's `β²/2` penalty.
const STAGE_2_BETA_PENALTY: f64 = 0.1;

/// Fits a new bias layer on `classes` (stage 2): SGD with momentum over shuffled mini-batches
/// of `batch_size` of the frozen logits `logits` (`[n, outputs]`) with labels `targets`, loss
/// `CE(α·z + β on classes) + 0.1·β²/2`, the learning rate divided by 10 at each milestone.
/// The gradient is exact (the loss has two parameters); torch's SGD update (`v = μ·v + g`,
/// `p -= lr·v`, `v = g` on the first step).
pub fn fit_bias_layer(
    logits: &[f32],
    outputs: usize,
    targets: &[u32],
    classes: Vec<u32>,
    (epochs, lr, batch_size): (usize, f64, usize),
    rng: &mut ChaCha8Rng,
) -> BiasLayer {
    let mut layer = BiasLayer::new(classes);
    let in_layer: Vec<bool> = (0..outputs).map(|c| layer.classes.binary_search(&(c as u32)).is_ok()).collect();
    let n = targets.len();
    let (mut va, mut vb): (Option<f64>, Option<f64>) = (None, None);
    let mut order: Vec<usize> = (0..n).collect();
    let mut z = vec![0.0f64; outputs];
    for epoch in 0..epochs {
        let lr = lr * 0.1f64.powi(STAGE_2_MILESTONES.iter().filter(|&&m| epoch >= m).count() as i32);
        order.shuffle(rng);
        for batch in order.chunks(batch_size.max(1)) {
            let (mut ga, mut gb) = (0.0f64, 0.0f64);
            for &i in batch {
                let row = &logits[i * outputs..(i + 1) * outputs];
                for c in 0..outputs {
                    let x = f64::from(row[c]);
                    z[c] = if in_layer[c] { layer.alpha * x + layer.beta } else { x };
                }
                let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = z.iter().map(|v| (v - max).exp()).sum();
                for c in (0..outputs).filter(|&c| in_layer[c]) {
                    let p = (z[c] - max).exp() / sum;
                    let g = p - if targets[i] as usize == c { 1.0 } else { 0.0 };
                    ga += g * f64::from(row[c]);
                    gb += g;
                }
            }
            let m = batch.len() as f64;
            let ga = ga / m;
            let gb = gb / m + STAGE_2_BETA_PENALTY * layer.beta;
            let va = *va.insert(va.map_or(ga, |v| STAGE_2_MOMENTUM * v + ga));
            let vb = *vb.insert(vb.map_or(gb, |v| STAGE_2_MOMENTUM * v + gb));
            layer.alpha -= lr * va;
            layer.beta -= lr * vb;
        }
    }
    layer
}

/// The distillation term: the cross-entropy at temperature `t` between `new` and the soft
/// targets of `old` (both `[batch, old classes]`), soft targets by `form`.
pub fn bic_distillation(new: Tensor<2>, old: Tensor<2>, t: f64, form: BicDistillation) -> Tensor<1> {
    let [n, _] = new.dims();
    let dim = match form {
        BicDistillation::Avalanche => 0,
        BicDistillation::Standard => 1,
    };
    let targets = burn::tensor::activation::softmax(old.div_scalar(t), dim);
    let log_p = burn::tensor::activation::log_softmax(new.div_scalar(t), 1);
    (targets * log_p).sum().neg().div_scalar(n as f64)
}

/// The steps of [`Bic`]: the held-out split in the dataset adaptation, the replay loader, the
/// mixed loss in the criterion, the bias layer in the evaluation forward pass, and the memory,
/// the previous model and stage 2 after each experience. Reachable after build with
/// `strategy.steps_as::<BicSteps>()`.
pub struct BicSteps<M: Model> {
    config: BicConfig,
    /// The experience (index in training order) where each class was seen last.
    class_to_exp: BTreeMap<u32, usize>,
    /// The held-out samples, per class, in the order classes were first seen.
    val: Vec<(u32, ReservoirSamplingBuffer)>,
    memory: ExperienceBalancedBuffer,
    previous: Option<M>,
    bias: Option<BiasLayer>,
    /// Experiences trained so far.
    trained: usize,
    /// The current experience's training part (the memory's source).
    train_part: Option<ClassificationDataset>,
    rng: ChaCha8Rng,
}

impl<M: Model> std::fmt::Debug for BicSteps<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BicSteps")
            .field("config", &self.config)
            .field("trained", &self.trained)
            .field("memory", &self.memory.len())
            .field("bias", &self.bias)
            .finish()
    }
}

impl<M: Model> BicSteps<M> {
    /// Steps for this configuration (validated by [`Bic::builder`]).
    pub fn new(config: BicConfig) -> Result<Self> {
        let memory =
            ExperienceBalancedBuffer::new(ExperienceBalancedConfig::new(config.mem_size).with_seed(config.seed))?;
        let rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0xB1C0_57A6_E200_0002);
        Ok(Self {
            config,
            class_to_exp: BTreeMap::new(),
            val: Vec::new(),
            memory,
            previous: None,
            bias: None,
            trained: 0,
            train_part: None,
            rng,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &BicConfig {
        &self.config
    }

    /// The bias layer trained after the last experience (none before the second).
    pub fn bias_layer(&self) -> Option<&BiasLayer> {
        self.bias.as_ref()
    }

    /// The replay memory.
    pub fn memory(&self) -> &ExperienceBalancedBuffer {
        &self.memory
    }

    /// The held-out samples of each class, in the order the classes were first seen.
    pub fn held_out(&self) -> Vec<(u32, ClassificationDataset)> {
        self.val.iter().filter_map(|(c, b)| b.buffer().map(|d| (*c, d))).collect()
    }

    /// The classes before the previous experience, of the previous one, and of the current
    /// one (Avalanche's `_classes_groups`).
    fn class_groups(&self) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
        let (mut initial, mut previous, mut current) = (Vec::new(), Vec::new(), Vec::new());
        for (&c, &e) in &self.class_to_exp {
            if e + 1 < self.trained {
                initial.push(c);
            } else if e + 1 == self.trained {
                previous.push(c);
            } else {
                current.push(c);
            }
        }
        (initial, previous, current)
    }

    /// Splits the experience's training data: per class, the first samples (in the data's
    /// order) join that class's held-out reservoir, the rest is returned; every class's
    /// reservoir is resized to its share of the held-out size.
    fn hold_out(&mut self, data: &ClassificationDataset) -> Result<ClassificationDataset> {
        let targets = data.targets();
        let mut by_class: Vec<(u32, Vec<usize>)> = Vec::new();
        for (i, &y) in targets.iter().enumerate() {
            match by_class.iter_mut().find(|(c, _)| *c == y) {
                Some((_, idx)) => idx.push(i),
                None => by_class.push((y, vec![i])),
            }
        }
        for (c, _) in &by_class {
            self.class_to_exp.insert(*c, self.trained);
        }
        // Avalanche's get_group_lengths: the held-out size split over the classes seen, the
        // remainder to the first ones.
        let seen: Vec<u32> = self.class_to_exp.keys().copied().collect();
        let total = self.config.val_size();
        let share = |c: u32| {
            let k = seen.iter().position(|&s| s == c).unwrap_or(0);
            total / seen.len() + usize::from(k < total % seen.len())
        };
        let mut train_parts = Vec::with_capacity(by_class.len());
        for (c, idx) in &by_class {
            let len = share(*c).min(idx.len());
            let held = data.subset(&idx[..len])?;
            match self.val.iter_mut().find(|(v, _)| v == c) {
                Some((_, buffer)) => buffer.update_from_dataset(&held)?,
                None if len > 0 => {
                    let config = ReservoirConfig::new(len).with_seed(self.config.seed ^ (u64::from(*c) << 32));
                    let mut buffer = ReservoirSamplingBuffer::new(config)?;
                    buffer.update_from_dataset(&held)?;
                    self.val.push((*c, buffer));
                }
                None => {}
            }
            train_parts.push(data.subset(&idx[len..])?);
        }
        // A class whose share drops to 0 (more classes than held-out samples) leaves the set.
        self.val.retain(|(c, _)| share(*c) > 0);
        for (c, buffer) in &mut self.val {
            buffer.resize_to(share(*c))?;
        }
        ClassificationDataset::concat_all(&train_parts)?.ok_or(ClError::MissingState("adapted_dataset"))
    }

    /// Stage 2: a bias layer on the classes of the experience just trained, fitted on the
    /// held-out samples' logits by the frozen model.
    fn bias_correction(&mut self, state: &StrategyState<M>, classes: Vec<u32>) -> Result<()> {
        let held: Vec<ClassificationDataset> = self.val.iter().filter_map(|(_, b)| b.buffer()).collect();
        let Some(held) = ClassificationDataset::concat_all(&held)? else {
            return Ok(());
        };
        let model = state.model().valid();
        let device = state.settings().eval_device();
        let (logits, outputs) = run_logits(&model, &held, device, state.settings().eval_mb_size(), 0)?;
        let targets = held.targets();
        cl_core::check_labels(&targets, outputs)?;
        let settings = (self.config.stage_2_epochs, self.config.lr, state.settings().train_mb_size());
        self.bias = Some(fit_bias_layer(&logits, outputs, &targets, classes, settings, &mut self.rng));
        Ok(())
    }
}

impl<M: Model> TemplateSteps<M> for BicSteps<M> {
    /// The experience's data without its held-out samples.
    fn train_dataset_adaptation(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        step_defaults::train_dataset_adaptation(state)?;
        let data = state.adapted_dataset.take().ok_or(ClError::MissingState("adapted_dataset"))?;
        let train = self.hold_out(&data)?;
        self.train_part = Some(train.clone());
        state.adapted_dataset = Some(train);
        Ok(())
    }

    /// The current samples with as many memory samples per batch, once the memory holds any.
    fn make_train_dataloader(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let Some(memory) = self.memory.buffer().filter(|b| !b.is_empty()) else {
            return step_defaults::make_train_dataloader(state);
        };
        let data = state.adapted_dataset.as_ref().ok_or(ClError::MissingState("adapted_dataset"))?;
        let mb = state.settings().train_mb_size();
        let config = ReplayDataLoaderConfig::new(DataLoaderConfig::train(mb, state.experience_seed()))
            .with_batch_size_mem(mb)
            .with_oversample_small_tasks(true);
        state.dataloader = Some(Box::new(ReplayDataLoader::new(data, Some(&memory), config)?));
        Ok(())
    }

    /// The model's logits; in evaluation, corrected by the bias layer.
    fn forward(&mut self, state: &mut StrategyState<M>) -> Result<Tensor<2>> {
        let out = step_defaults::forward(state)?;
        match (&self.bias, state.is_training()) {
            (Some(bias), false) => Ok(bias.forward(out)),
            _ => Ok(out),
        }
    }

    /// The criterion, mixed with the distillation from the previous model from the second
    /// experience.
    fn criterion(&mut self, state: &mut StrategyState<M>) -> Result<Tensor<1>> {
        let ce = step_defaults::criterion(state)?;
        let Some(previous) = self.previous.as_ref().filter(|_| state.is_training()) else {
            return Ok(ce);
        };
        let (initial, previous_classes, current) = self.class_groups();
        let old: Vec<u32> = initial
            .iter()
            .chain(&previous_classes)
            .copied()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if old.is_empty() {
            return Ok(ce);
        }
        let batch = state.current_batch()?;
        let plain = batch.inner();
        let mut old_out = previous.forward(&plain);
        if !initial.is_empty()
            && let Some(bias) = &self.bias
        {
            old_out = bias.forward(old_out);
        }
        let out = state.mb_output.clone().ok_or(ClError::MissingState("mb_output"))?;
        let device = out.device();
        let columns = Tensor::<1, burn::tensor::Int>::from_data(
            TensorData::new(old.iter().map(|&c| i64::from(c)).collect::<Vec<_>>(), [old.len()]),
            &device,
        );
        let new_old = out.select(1, columns.clone());
        let old_old = Tensor::<2>::from_inner(old_out).select(1, columns);
        let distill = bic_distillation(new_old, old_old, self.config.temperature, self.config.distillation);
        let all = old.len() + current.iter().filter(|c| !old.contains(c)).count();
        Ok(match self.config.lamb {
            None => {
                let lamb = old.len() as f64 / all as f64;
                ce.mul_scalar(1.0 - lamb) + distill.mul_scalar(lamb)
            }
            Some(lamb) => ce + distill.mul_scalar(lamb),
        })
    }

    /// The previous model, the memory (from the training part) and, from the second
    /// experience, stage 2.
    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        self.previous = Some(state.model().valid());
        let train = self.train_part.take().ok_or(ClError::MissingState("adapted_dataset"))?;
        let classes: Vec<u32> = train.classes().into_iter().collect();
        self.memory.update_from_dataset(&train)?;
        if self.trained > 0 {
            self.bias_correction(state, classes)?;
        }
        self.trained += 1;
        Ok(())
    }

    /// The configuration (checked on load), the classes' experiences, the held-out reservoirs,
    /// the memory, the bias layer, the stage-2 generator and the experiences trained. The
    /// previous model is the model itself at the experience boundaries where checkpoints are
    /// taken, and is rebuilt from it on load.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config)?;
        out.put("class_to_exp", &self.class_to_exp)?;
        out.put("trained", &self.trained)?;
        out.put("bias", &self.bias)?;
        out.put_rng("rng", &self.rng)?;
        out.put("val_classes", &self.val.iter().map(|(c, _)| *c).collect::<Vec<u32>>())?;
        for (c, buffer) in &self.val {
            let mut dict = StateDict::new(format!("{} (held-out class {c})", out.component()));
            buffer.save_state(&mut dict)?;
            out.put_dict(&format!("val.{c}"), dict);
        }
        let mut memory = StateDict::new(format!("{} (memory)", out.component()));
        self.memory.save_state(&mut memory)?;
        out.put_dict("memory", memory);
        Ok(())
    }

    fn load_state(&mut self, state: &StateDict, strategy: &StrategyState<M>) -> Result<()> {
        state.check_config("config", &self.config)?;
        self.class_to_exp = state.get("class_to_exp")?;
        self.trained = state.get("trained")?;
        self.bias = state.get("bias")?;
        self.rng = state.rng("rng")?;
        let classes: Vec<u32> = state.get("val_classes")?;
        self.val = Vec::with_capacity(classes.len());
        for c in classes {
            let mut buffer = ReservoirSamplingBuffer::new(ReservoirConfig::new(1))?;
            buffer.load_state(state.dict(&format!("val.{c}"))?)?;
            self.val.push((c, buffer));
        }
        self.memory.load_state(state.dict("memory")?)?;
        self.previous = (self.trained > 0).then(|| strategy.model().valid());
        self.train_part = None;
        Ok(())
    }
}

/// BiC (Avalanche's `BiC`; see the [module docs](self)): the default template with
/// [`BicSteps`]. Class-incremental, single head: use it with a model whose outputs cover every
/// class (e.g. `SimpleMlp` with `num_classes`).
pub struct Bic;

impl Bic {
    /// A builder with the BiC steps and the default evaluator.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: BicConfig,
    ) -> Result<StrategyBuilder<M>> {
        config.validate()?;
        Ok(StrategyBuilder::new(model, optimizer, device).steps(BicSteps::<M>::new(config)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stage 2's loss at (α, β) on `logits` (host, f64), for finite differences.
    fn stage_2_loss(logits: &[f32], outputs: usize, targets: &[u32], classes: &[u32], a: f64, b: f64) -> f64 {
        let n = targets.len();
        let mut total = 0.0;
        for i in 0..n {
            let z: Vec<f64> = (0..outputs)
                .map(|c| {
                    let x = f64::from(logits[i * outputs + c]);
                    if classes.contains(&(c as u32)) { a * x + b } else { x }
                })
                .collect();
            let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + z.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
            total += lse - z[targets[i] as usize];
        }
        total / n as f64 + STAGE_2_BETA_PENALTY * b * b / 2.0
    }

    #[test]
    fn one_stage_2_step_follows_the_exact_gradient() {
        let logits = [0.5f32, -1.0, 2.0, 1.5, 0.2, 3.0, -0.3, 0.8, 1.1];
        let targets = [0u32, 1, 2];
        let lr = 1e-3;
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        // One epoch, one batch of all three rows: one SGD step from (1, 0).
        let layer = fit_bias_layer(&logits, 3, &targets, vec![2], (1, lr, 8), &mut rng);
        let h = 1e-6;
        let ga = (stage_2_loss(&logits, 3, &targets, &[2], 1.0 + h, 0.0)
            - stage_2_loss(&logits, 3, &targets, &[2], 1.0 - h, 0.0))
            / (2.0 * h);
        let gb = (stage_2_loss(&logits, 3, &targets, &[2], 1.0, h) - stage_2_loss(&logits, 3, &targets, &[2], 1.0, -h))
            / (2.0 * h);
        assert!(((1.0 - layer.alpha) / lr - ga).abs() < 1e-6, "α step {} vs gradient {ga}", (1.0 - layer.alpha) / lr);
        assert!((-layer.beta / lr - gb).abs() < 1e-6, "β step {} vs gradient {gb}", -layer.beta / lr);
    }

    #[test]
    fn stage_2_removes_a_bias_towards_the_new_classes() {
        // Class 2 (the newest) gets +3 on every sample: uncorrected, every sample reads as 2.
        let n = 30;
        let mut logits = Vec::new();
        let mut targets = Vec::new();
        for i in 0..n {
            let y = (i % 3) as u32;
            let mut row = [0.0f32; 3];
            row[y as usize] += 2.0;
            row[2] += 3.0;
            logits.extend(row);
            targets.push(y);
        }
        let argmax_accuracy = |layer: &BiasLayer| {
            let mut right = 0;
            for (i, &y) in targets.iter().enumerate() {
                let z: Vec<f64> = (0..3)
                    .map(|c| {
                        let x = f64::from(logits[i * 3 + c]);
                        if c == 2 { layer.alpha * x + layer.beta } else { x }
                    })
                    .collect();
                let best = (0..3).max_by(|&a, &b| z[a].total_cmp(&z[b])).unwrap();
                right += usize::from(best == y as usize);
            }
            right as f64 / n as f64
        };
        assert!((argmax_accuracy(&BiasLayer::new(vec![2])) - 1.0 / 3.0).abs() < 1e-9);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let layer = fit_bias_layer(&logits, 3, &targets, vec![2], (200, 0.1, 8), &mut rng);
        assert_eq!(argmax_accuracy(&layer), 1.0, "{layer:?}");
    }

    #[test]
    fn the_bias_layer_corrects_only_its_classes() {
        let device = burn::tensor::Device::flex();
        let logits = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, -1.0, 0.5, 4.0], [2, 3]), &device);
        let layer = BiasLayer { classes: vec![1, 2], alpha: 0.5, beta: -1.0 };
        let out = layer.forward(logits).into_data().try_into_vec_as::<f32>().unwrap();
        assert_eq!(out, vec![1.0, 0.0, 0.5, -1.0, -0.75, 1.0]);
    }

    #[test]
    fn the_distillation_forms_by_hand() {
        let device = burn::tensor::Device::flex();
        let new = [[1.0f64, -0.5], [0.25, 2.0], [0.0, 0.5]];
        let old = [[0.5f64, 1.0], [-1.0, 0.0], [2.0, -0.5]];
        let t = 2.0;
        let tensor = |v: &[[f64; 2]; 3]| {
            Tensor::<2>::from_data(
                TensorData::new(v.iter().flatten().map(|x| *x as f32).collect::<Vec<_>>(), [3, 2]),
                &device,
            )
        };
        let log_softmax_row = |r: &[f64; 2]| {
            let lse = ((r[0] / t).exp() + (r[1] / t).exp()).ln();
            [r[0] / t - lse, r[1] / t - lse]
        };
        // Avalanche: each column of the old logits softmaxed over the batch.
        let mut avalanche = 0.0;
        let mut standard = 0.0;
        for c in 0..2 {
            let denom: f64 = old.iter().map(|r| (r[c] / t).exp()).sum();
            for (i, r) in new.iter().enumerate() {
                avalanche -= (old[i][c] / t).exp() / denom * log_softmax_row(r)[c];
            }
        }
        for (r, o) in new.iter().zip(&old) {
            let denom: f64 = o.iter().map(|v| (v / t).exp()).sum();
            let log_p = log_softmax_row(r);
            for (v, lp) in o.iter().zip(log_p) {
                standard -= (v / t).exp() / denom * lp;
            }
        }
        let value = |form| f64::from(bic_distillation(tensor(&new), tensor(&old), t, form).into_scalar::<f32>());
        assert!((value(BicDistillation::Avalanche) - avalanche / 3.0).abs() < 1e-5);
        assert!((value(BicDistillation::Standard) - standard / 3.0).abs() < 1e-5);
    }

    #[test]
    fn the_configuration_rules() {
        use cl_core::config::assert_rule;
        assert_rule(BicConfig::new(0).validate(), "mem_size_positive");
        assert_rule(BicConfig::new(100).with_val_percentage(0.0).validate(), "val_percentage_in_unit_interval");
        assert_rule(BicConfig::new(5).validate(), "val_size_positive");
        assert_rule(BicConfig::new(100).with_lr(0.0).validate(), "lr_positive");
        assert_rule(BicConfig::new(100).with_temperature(-1.0).validate(), "temperature_positive");
        assert_rule(BicConfig::new(100).with_lamb(Some(f64::NAN)).validate(), "lamb_finite_non_negative");
        assert!(BicConfig::new(100).validate().is_ok());
    }
}
