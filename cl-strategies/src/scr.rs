//! [`Scr`]: supervised contrastive replay (Mai et al., 2021; Avalanche's `SCR`).

use std::collections::BTreeMap;
use std::sync::Arc;

use burn::tensor::{Device, Tensor, TensorData};
use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, rule};
use cl_core::data::{DataLoaderConfig, MiniBatch, ReplayDataLoader, ReplayDataLoaderConfig, Transform, TransformSpec};
use cl_core::{
    Adaptation, ClError, Model, OptimizerSpec, Result, StrategyBuilder, StrategyState, TemplateSteps, step_defaults,
};
use cl_models::{Head, NcmClassifier, l2_normalize};
use cl_plugins::storage::{ClassBalancedBuffer, ClassBalancedConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::memory::{load_class_means, load_memory, ncm_of_width, save_class_means, save_memory};

/// The configuration of [`Scr`], with the defaults of Avalanche's `SCR(mem_size=100,
/// temperature=0.1, batch_size_mem=100, augmentations=identity)`.
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_core::data::TransformSpec;
/// use cl_strategies::ScrConfig;
/// let config = ScrConfig::new(500).with_augmentations(vec![TransformSpec::RandomHorizontalFlip { p: 0.5 }]);
/// let text = "mem_size = 500\n[[augmentations]]\ntype = \"random_horizontal_flip\"\np = 0.5";
/// assert_eq!(ScrConfig::from_toml(text)?, config);
/// assert!(ScrConfig::from_toml("temperature = 0.0").is_err());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScrConfig {
    /// Samples in the class-balanced memory (default 100, at least 1); also what the class
    /// means are computed from.
    pub mem_size: usize,
    /// Memory samples added to each mini-batch (default 100, at least 1).
    pub batch_size_mem: usize,
    /// Temperature of the contrastive loss (default 0.1, > 0; the base temperature is 0.07, as
    /// Avalanche's `SCRLoss`).
    pub temperature: f64,
    /// The augmentations of the second view, applied in order to the whole mini-batch (current
    /// and memory samples) on the device, drawn from the loop's seed. Default none: the second
    /// view is the batch itself (Avalanche's default `Lambda(lambda el: el)`; the views then
    /// differ by their dropout masks only).
    pub augmentations: Vec<TransformSpec>,
    /// Seed of the memory's reservoirs (default 0).
    pub seed: u64,
}

impl Default for ScrConfig {
    /// Avalanche's defaults.
    fn default() -> Self {
        Self::new(100)
    }
}

impl ScrConfig {
    /// A memory of `mem_size` samples, Avalanche's other defaults.
    pub fn new(mem_size: usize) -> Self {
        Self { mem_size, batch_size_mem: 100, temperature: 0.1, augmentations: Vec::new(), seed: 0 }
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
    pub fn with_temperature(mut self, temperature: f64) -> Self {
        self.temperature = temperature;
        self
    }

    /// Sets the augmentations of the second view.
    pub fn with_augmentations(mut self, augmentations: Vec<TransformSpec>) -> Self {
        self.augmentations = augmentations;
        self
    }

    /// Sets the seed of the memory's reservoirs.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

impl Validate for ScrConfig {
    /// `mem_size_positive`, `batch_size_mem_positive`, `temperature_positive`,
    /// `augmentations_valid`.
    fn validate(&self) -> Result<()> {
        const C: &str = "ScrConfig";
        rule(C, "mem_size_positive", self.mem_size > 0, || "mem_size must be at least 1".into())?;
        rule(C, "batch_size_mem_positive", self.batch_size_mem > 0, || "batch_size_mem must be at least 1".into())?;
        rule(C, "temperature_positive", self.temperature.is_finite() && self.temperature > 0.0, || {
            format!("temperature = {} must be a finite number > 0 (default 0.1)", self.temperature)
        })?;
        for (i, spec) in self.augmentations.iter().enumerate() {
            let built = spec.build();
            rule(C, "augmentations_valid", built.is_ok(), || {
                format!(
                    "augmentation {i} ({spec:?}): {}",
                    built.as_ref().err().map(|e| e.to_string()).unwrap_or_default()
                )
            })?;
        }
        Ok(())
    }
}

/// Base temperature of Avalanche's `SCRLoss` (SupContrast's default).
pub const SCR_BASE_TEMPERATURE: f64 = 0.07;

/// The supervised contrastive loss of SCR over two views (Avalanche's `SCRLoss`, SupContrast's
/// `SupConLoss` with `contrast_mode="all"`): `out` holds the `[2N, D]` embeddings of the
/// first view (rows `0..N`) then the second (rows `N..2N`) of `N` samples labelled `targets`;
/// each row is an anchor against all other rows,
/// `−(T / T_base) · mean_a mean_{p ≠ a, y_p = y_a} log(exp(z_a·z_p / T) / Σ_{k ≠ a} exp(z_a·z_k / T))`.
/// The embeddings are used as given (Avalanche does not normalise them).
pub fn scr_loss(out: Tensor<2>, targets: &[u32], temperature: f64, base_temperature: f64) -> Result<Tensor<1>> {
    let [rows, _] = out.dims();
    let n = targets.len();
    if rows != 2 * n || n == 0 {
        return Err(ClError::InvalidUse(format!(
            "scr_loss: {rows} embeddings for {n} labels; give two views of each sample (2 × {n} rows, the first view \
             first)"
        )));
    }
    let labels: Vec<u32> = targets.iter().chain(targets).copied().collect();
    let mut mask = Vec::with_capacity(rows * rows);
    let mut others = Vec::with_capacity(rows * rows);
    for (i, a) in labels.iter().enumerate() {
        for (j, b) in labels.iter().enumerate() {
            let off_diagonal = f32::from(u8::from(i != j));
            others.push(off_diagonal);
            mask.push(off_diagonal * f32::from(u8::from(a == b)));
        }
    }
    let device = out.device();
    let mask = Tensor::<2>::from_data(TensorData::new(mask, [rows, rows]), &device);
    let others = Tensor::<2>::from_data(TensorData::new(others, [rows, rows]), &device);
    let logits = out.clone().matmul(out.transpose()).div_scalar(temperature);
    let logits = logits.clone().sub(logits.max_dim(1).detach());
    let denominator = logits.clone().exp().mul(others).sum_dim(1).log();
    let log_prob = logits.sub(denominator);
    let per_anchor = mask.clone().mul(log_prob).sum_dim(1).div(mask.sum_dim(1)).reshape([rows]);
    Ok(per_anchor.mean().mul_scalar(-(temperature / base_temperature)))
}

/// The steps of [`Scr`]: the class-balanced memory and its replay loader, the augmented second
/// view, the contrastive loss, and the nearest-class-mean classifier of the evaluation.
pub struct ScrSteps {
    config: ScrConfig,
    storage: ClassBalancedBuffer,
    augmentations: Vec<Arc<dyn Transform>>,
    rng: ChaCha8Rng,
    /// The class means (built once the features' width is known).
    ncm: Option<NcmClassifier>,
    /// The labels of the batch before its second view was appended.
    targets: Option<Vec<u32>>,
}

impl std::fmt::Debug for ScrSteps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrSteps")
            .field("config", &self.config)
            .field("memory_len", &self.storage.len())
            .field("class_means", &self.ncm.as_ref().map(|n| n.class_means().len()))
            .finish_non_exhaustive()
    }
}

impl ScrSteps {
    /// Empty memory, no class means; an error if `config` breaks a rule.
    pub fn new(config: ScrConfig) -> Result<Self> {
        config.validate()?;
        let storage = ClassBalancedBuffer::new(ClassBalancedConfig::new(config.mem_size).with_seed(config.seed))?;
        let augmentations = config.augmentations.iter().map(TransformSpec::build).collect::<Result<Vec<_>>>()?;
        Ok(Self { config, storage, augmentations, rng: ChaCha8Rng::seed_from_u64(0), ncm: None, targets: None })
    }

    /// The configuration.
    pub fn config(&self) -> &ScrConfig {
        &self.config
    }

    /// The memory, one reservoir per class.
    pub fn storage(&self) -> &ClassBalancedBuffer {
        &self.storage
    }

    /// The class means of the evaluation (unit-norm features), by class; empty before the first
    /// experience ends.
    pub fn class_means(&self) -> BTreeMap<u32, Vec<f32>> {
        self.ncm.as_ref().map(|n| n.class_means().clone()).unwrap_or_default()
    }

    fn ncm(&mut self, feature_size: usize) -> Result<&mut NcmClassifier> {
        ncm_of_width(&mut self.ncm, feature_size, "SCR")
    }

    /// Avalanche's `compute_class_means`: for each class of the memory, the mean of its samples'
    /// unit-norm features (model in evaluation mode, evaluation view of the data), scaled to unit
    /// norm; merged into the classifier with momentum 0.5 (`update_class_means_dict`).
    fn update_class_means<M: Model>(&mut self, state: &StrategyState<M>) -> Result<()> {
        let Some(memory) = self.storage.buffer() else {
            return Ok(());
        };
        let model = state.model().valid();
        let device = state.batch_device().clone();
        let eval = memory.eval();
        let classes: Vec<u32> = eval.classes().into_iter().collect();
        let n_classes = classes.last().map_or(0, |&c| c as usize + 1);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let indices: Vec<usize> = (0..eval.len()).collect();
        let mut sums: Option<Tensor<2>> = None;
        let mut counts = vec![0usize; n_classes];
        for chunk in indices.chunks(state.settings().eval_mb_size().max(1)) {
            let batch = eval.batch(chunk, &device, &mut rng)?;
            model.check_batch(&batch)?;
            let features = model.features(&batch).ok_or_else(no_features)?;
            let mut one_hot = vec![0.0f32; batch.len() * n_classes];
            for (i, &y) in batch.targets.iter().enumerate() {
                one_hot[i * n_classes + y as usize] = 1.0;
                counts[y as usize] += 1;
            }
            let one_hot = Tensor::<2>::from_data(TensorData::new(one_hot, [batch.len(), n_classes]), &device);
            let part = one_hot.transpose().matmul(l2_normalize(features));
            sums = Some(match sums {
                Some(s) => s + part,
                None => part,
            });
        }
        let Some(sums) = sums else {
            return Ok(());
        };
        let width = sums.dims()[1];
        let values = sums
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| ClError::InvalidUse(format!("reading SCR's class means back: {e:?}")))?;
        let mut means = BTreeMap::new();
        for c in classes {
            let k = counts[c as usize] as f32;
            let mean: Vec<f32> = values[c as usize * width..(c as usize + 1) * width].iter().map(|v| v / k).collect();
            let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt();
            if !mean.iter().all(|v| v.is_finite()) || norm == 0.0 {
                return Err(ClError::InvalidUse(format!(
                    "SCR's mean feature of class {c} is {}: the model diverged",
                    if norm == 0.0 { "zero" } else { "not finite" }
                )));
            }
            means.insert(c, mean.iter().map(|v| v / norm).collect());
        }
        self.ncm(width)?.update_class_means(means, 0.5)
    }
}

fn no_features() -> ClError {
    ClError::InvalidUse(
        "SCR classifies by the nearest class mean of the model's features: implement `Model::features` for the \
         model (it returns None by default), e.g. use cl_models::SimpleMlpConfig::init_scr"
            .into(),
    )
}

impl<M: Model> TemplateSteps<M> for ScrSteps {
    fn name(&self) -> String {
        "ScrSteps".into()
    }

    /// Avalanche's `ReplayPlugin(mem_size, batch_size=train_mb_size, batch_size_mem)`: with a
    /// memory, each mini-batch is `train_mb_size` current samples followed by `batch_size_mem`
    /// memory samples (cycled).
    fn make_train_dataloader(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let Some(memory) = self.storage.buffer().filter(|b| !b.is_empty()) else {
            return step_defaults::make_train_dataloader(state);
        };
        let data = state.adapted_dataset.as_ref().ok_or(ClError::MissingState("adapted_dataset"))?;
        let loader = DataLoaderConfig::train(state.settings().train_mb_size(), state.experience_seed());
        let config = ReplayDataLoaderConfig::new(loader)
            .with_batch_size_mem(self.config.batch_size_mem)
            .with_oversample_small_tasks(true);
        state.dataloader = Some(Box::new(ReplayDataLoader::new(data, Some(&memory), config)?));
        Ok(())
    }

    /// The augmentations' draws restart from the experience's seed.
    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        self.rng = ChaCha8Rng::seed_from_u64(state.experience_seed() ^ 0x5343_5241_5547);
        Ok(())
    }

    /// The evaluation's nearest-class-mean classifier gives the evaluated experience's classes
    /// without a mean a zero mean (Avalanche's `NCMClassifier.eval_adaptation`).
    fn model_adaptation(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        step_defaults::model_adaptation(state)?;
        if !state.is_training()
            && let Some(ncm) = self.ncm.as_mut()
        {
            let experience = state.current_experience()?;
            ncm.adaptation(&Adaptation { experience, training: false })?;
        }
        Ok(())
    }

    /// Training: the batch followed by its augmented copy through the model (the projections,
    /// `[2N, D]`; Avalanche's `_before_forward`). Evaluation: minus the distances of the
    /// normalised features to the class means.
    fn forward(&mut self, state: &mut StrategyState<M>) -> Result<Tensor<2>> {
        if state.is_training() {
            let batch = state.mbatch.take().ok_or(ClError::MissingState("mbatch"))?;
            let mut x = batch.x.clone();
            for t in &self.augmentations {
                t.check(&batch.sample_shape)?;
                x = t.apply(x, &batch.sample_shape, &mut self.rng);
            }
            let second = MiniBatch { x, ..batch.clone() };
            self.targets = Some(batch.targets.clone());
            state.mbatch = Some(batch.concat(&second)?);
            return step_defaults::forward(state);
        }
        let batch = state.current_batch()?;
        let model = state.forward_model();
        model.check_batch(batch)?;
        let features = model.features(batch).ok_or_else(no_features)?;
        let width = features.dims()[1];
        let experience = state.current_experience()?;
        let ncm = self.ncm(width)?;
        // Zero means for the evaluated classes before any mean exists (Avalanche's classifier
        // then has none and fails).
        ncm.adaptation(&Adaptation { experience, training: false })?;
        Ok(ncm.forward_features(features))
    }

    /// Training: [`scr_loss`] of the two views. Evaluation: the strategy's criterion on the
    /// nearest-class-mean logits (Avalanche's `CrossEntropyLoss`).
    fn criterion(&mut self, state: &mut StrategyState<M>) -> Result<Tensor<1>> {
        match self.targets.take().filter(|_| state.is_training()) {
            Some(targets) => {
                let out = state.mb_output.clone().ok_or(ClError::MissingState("mb_output"))?;
                scr_loss(out, &targets, self.config.temperature, SCR_BASE_TEMPERATURE)
            }
            None => step_defaults::criterion(state),
        }
    }

    /// Avalanche's `_after_training_exp`: the experience enters the memory (its replay plugin),
    /// then the class means are computed from the memory and merged.
    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        self.targets = None;
        let data = state.current_experience()?.dataset.train();
        self.storage.update_from_dataset(&data)?;
        self.update_class_means(state)
    }

    /// The configuration (checked on load), the memory and the class means.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        save_memory(out, &self.config, &self.storage)?;
        save_class_means(out, self.ncm.as_ref())?;
        Ok(())
    }

    fn load_state(&mut self, state: &StateDict, _strategy: &StrategyState<M>) -> Result<()> {
        load_memory(state, &self.config, &mut self.storage)?;
        self.ncm = load_class_means(state, "SCR")?;
        self.targets = None;
        Ok(())
    }
}

/// SCR (Mai et al., "Supervised Contrastive Replay: Revisiting the Nearest Class Mean
/// Classifier in Online Class-Incremental Continual Learning", CVPR-W 2021; Avalanche's `SCR`,
/// `avalanche/training/supervised/supervised_contrastive_replay.py`, loss `SCRLoss` in
/// `avalanche/training/losses.py`, model `SCRModel`): replay where the model learns an embedding
/// by supervised contrastive learning over the batch and its memory samples in two views, and
/// classifies by the nearest class mean of its features.
///
/// As Avalanche's `SCR`:
/// - a class-balanced memory of `mem_size` samples, updated at the end of each experience;
///   with a memory, each mini-batch is the current samples followed by `batch_size_mem` memory
///   samples (Avalanche's `ReplayPlugin`);
/// - the second view is the whole mini-batch through `augmentations` (default identity); the
///   model's outputs of both views (the projections, with `SimpleMlpConfig::init_scr`'s
///   [`ScrMlp`](cl_models::ScrMlp)) enter [`scr_loss`] at temperature `temperature`, base 0.07;
/// - after each experience, the class means of the memory's unit-norm features (model in
///   evaluation mode) are merged into the classifier's with momentum 0.5; the evaluation
///   outputs minus the distance of the unit-norm features to each class mean (zero means for
///   evaluated classes without one), and its loss is the criterion on those.
///
/// The training metrics see the projections of both views (as in Avalanche, the training
/// accuracy means nothing; the loss is the contrastive loss).
///
/// # Differences from Avalanche
///
/// - Any model with [`Model::features`] works: its `forward` is the training embedding (for
///   `ScrMlp`, the projection of the normalised features), the evaluation classifier belongs to
///   the strategy; Avalanche requires an `SCRModel`, whose forward switches with `model.training`.
/// - Augmentations are `cl`'s batched tensor transforms (random crop, flip, ...), drawn from the
///   loop's seed.
/// - Evaluating before any class mean exists gives every evaluated class a zero mean (Avalanche's
///   classifier fails).
///
/// ```
/// use burn::tensor::Device;
/// use cl_core::OptimizerSpec;
/// use cl_models::SimpleMlpConfig;
/// use cl_strategies::{Scr, ScrConfig, ScrSteps};
/// let device = Device::flex();
/// let model = SimpleMlpConfig::new().init_scr(128, &device)?;
/// let strategy = Scr::builder(model, OptimizerSpec::sgd(0.1), device, ScrConfig::new(500))?.build()?;
/// assert_eq!(strategy.steps_as::<ScrSteps>().unwrap().config().batch_size_mem, 100);
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "SCR", alias = "SCRLoss", alias = "SCRModel")]
pub struct Scr;

impl Scr {
    /// A builder with the SCR steps and the default evaluator; an error if `config` breaks a
    /// rule.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: ScrConfig,
    ) -> Result<StrategyBuilder<M>> {
        Ok(StrategyBuilder::new(model, optimizer, device).steps(ScrSteps::new(config)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cl_core::config::assert_rule;

    /// SupContrast's loss in loops over `[2N, D]` rows (view 0 then view 1).
    fn by_hand(out: &[Vec<f64>], targets: &[u32], t: f64, base: f64) -> f64 {
        let labels: Vec<u32> = targets.iter().chain(targets).copied().collect();
        let n = out.len();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>() / t;
        let mut total = 0.0;
        for a in 0..n {
            let logits: Vec<f64> = (0..n).map(|k| dot(&out[a], &out[k])).collect();
            let max = logits.iter().cloned().fold(f64::MIN, f64::max);
            let denominator = (0..n).filter(|&k| k != a).map(|k| (logits[k] - max).exp()).sum::<f64>().ln();
            let positives: Vec<usize> = (0..n).filter(|&p| p != a && labels[p] == labels[a]).collect();
            let mean = positives.iter().map(|&p| logits[p] - max - denominator).sum::<f64>() / positives.len() as f64;
            total += -(t / base) * mean;
        }
        total / n as f64
    }

    /// Avalanche's `SCRLoss(temperature=0.1)(torch.stack([out[:3], out[3:]], 1), y)` on these
    /// values (Avalanche 0.6.0, torch 2.9.0) gives 4.5039201; the loops agree.
    #[test]
    fn scr_loss_is_avalanches_and_by_hand() {
        let rows = vec![
            vec![0.5, 0.2, -0.3],
            vec![0.1, 0.9, 0.4],
            vec![-0.7, 0.3, 0.2],
            vec![0.4, 0.1, -0.2],
            vec![0.2, 0.8, 0.5],
            vec![-0.6, 0.2, 0.1],
        ];
        let targets = [1u32, 2, 1];
        let device = Device::flex();
        let out =
            Tensor::<2>::from_data(TensorData::new(rows.concat().iter().map(|&v| v as f32).collect(), [6, 3]), &device);
        let loss = f64::from(scr_loss(out.clone(), &targets, 0.1, 0.07).unwrap().into_scalar::<f32>());
        assert!((loss - 4.503_920_1).abs() < 1e-4, "Avalanche's value: {loss}");
        let hand = by_hand(&rows, &targets, 0.1, 0.07);
        assert!((loss - hand).abs() < 1e-4, "{loss} vs {hand}");
        let err = scr_loss(out, &[1, 2], 0.1, 0.07).unwrap_err();
        assert!(err.to_string().contains("two views"), "{err}");
    }

    #[test]
    fn config_rules() {
        assert_rule(ScrConfig::new(0).validate(), "mem_size_positive");
        assert_rule(ScrConfig::new(5).with_batch_size_mem(0).validate(), "batch_size_mem_positive");
        assert_rule(ScrConfig::new(5).with_temperature(-1.0).validate(), "temperature_positive");
        let bad = ScrConfig::new(5).with_augmentations(vec![TransformSpec::RandomHorizontalFlip { p: 2.0 }]);
        assert_rule(bad.validate(), "augmentations_valid");
        assert_rule(ScrSteps::new(ScrConfig::new(0)).map(|_| ()), "mem_size_positive");
        let d = ScrConfig::default();
        assert_eq!((d.mem_size, d.batch_size_mem, d.temperature, d.augmentations.len()), (100, 100, 0.1, 0));
    }
}
