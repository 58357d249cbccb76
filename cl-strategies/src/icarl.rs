//! [`Icarl`]: incremental classifier and representation learning (Rebuffi et al., 2017;
//! Avalanche's `ICaRL` with `ICaRLLossPlugin`).

use std::collections::BTreeMap;
use std::sync::Arc;

use burn::tensor::activation::softplus;
use burn::tensor::{Device, Tensor, TensorData};
use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, rule};
use cl_core::data::{ClassificationDataset, TransformGroups, TransformSpec};
use cl_core::{
    Adaptation, ClError, Model, OptimizerSpec, Result, StrategyBuilder, StrategyState, TemplateSteps, step_defaults,
};
use cl_models::{Head, NcmClassifier};
use cl_plugins::persist;

use crate::memory::{load_class_means, ncm_of_width, save_class_means};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The mode of iCaRL's frozen copy of the model (the distillation teacher).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeacherMode {
    /// Training mode, dropout on (default): Avalanche's `ICaRLLossPlugin` deep-copies the model
    /// right after `_ICaRLPlugin` switched it back to training mode, and never changes it.
    #[default]
    Training,
    /// Evaluation mode, no dropout (the paper's intent).
    Evaluation,
}

/// The configuration of [`Icarl`]: Avalanche's `ICaRL(memory_size, buffer_transform=None,
/// fixed_memory=True)`.
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_strategies::IcarlConfig;
/// let config = IcarlConfig::new(500).with_fixed_memory(false);
/// assert_eq!(IcarlConfig::from_toml("memory_size = 500\nfixed_memory = false")?, config);
/// assert!(IcarlConfig::from_toml("memory_size = 0").is_err());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IcarlConfig {
    /// With `fixed_memory`, the total number of exemplars, shared equally by the classes seen
    /// (`⌈memory_size / classes⌉` each); otherwise the exemplars per class (default 2000, the
    /// paper's K; at least 1; Avalanche has no default).
    pub memory_size: usize,
    /// Whether `memory_size` is the total (default true) or per class.
    pub fixed_memory: bool,
    /// Transforms applied, in training, to the exemplars after the evaluation transforms they
    /// were stored with (Avalanche's `buffer_transform`; default none).
    pub buffer_transforms: Vec<TransformSpec>,
    /// The herding loop's cap on iterations per class (Avalanche's hard-coded 1000; a pick it
    /// has already made costs an iteration, so a class may get fewer exemplars).
    pub max_herding_iterations: usize,
    /// The distillation teacher's mode (default [`TeacherMode::Training`], Avalanche's).
    pub teacher_mode: TeacherMode,
}

impl Default for IcarlConfig {
    fn default() -> Self {
        Self::new(2000)
    }
}

impl IcarlConfig {
    /// `memory_size` exemplars, Avalanche's other defaults.
    pub fn new(memory_size: usize) -> Self {
        Self {
            memory_size,
            fixed_memory: true,
            buffer_transforms: Vec::new(),
            max_herding_iterations: 1000,
            teacher_mode: TeacherMode::Training,
        }
    }

    /// Sets the memory size.
    pub fn with_memory_size(mut self, memory_size: usize) -> Self {
        self.memory_size = memory_size;
        self
    }

    /// Sets whether the memory size is the total.
    pub fn with_fixed_memory(mut self, fixed_memory: bool) -> Self {
        self.fixed_memory = fixed_memory;
        self
    }

    /// Sets the exemplars' training transforms.
    pub fn with_buffer_transforms(mut self, buffer_transforms: Vec<TransformSpec>) -> Self {
        self.buffer_transforms = buffer_transforms;
        self
    }

    /// Sets the herding loop's cap.
    pub fn with_max_herding_iterations(mut self, max_herding_iterations: usize) -> Self {
        self.max_herding_iterations = max_herding_iterations;
        self
    }

    /// Sets the teacher's mode.
    pub fn with_teacher_mode(mut self, teacher_mode: TeacherMode) -> Self {
        self.teacher_mode = teacher_mode;
        self
    }

    /// Exemplars per class once `classes` classes have been seen.
    pub fn per_class(&self, classes: usize) -> usize {
        if self.fixed_memory { self.memory_size.div_ceil(classes.max(1)) } else { self.memory_size }
    }
}

impl Validate for IcarlConfig {
    /// `memory_size_positive`, `max_herding_iterations_positive`, `buffer_transforms_valid`.
    fn validate(&self) -> Result<()> {
        const C: &str = "IcarlConfig";
        rule(C, "memory_size_positive", self.memory_size > 0, || "memory_size must be at least 1".into())?;
        rule(C, "max_herding_iterations_positive", self.max_herding_iterations > 0, || {
            "max_herding_iterations must be at least 1 (Avalanche: 1000)".into()
        })?;
        for (i, spec) in self.buffer_transforms.iter().enumerate() {
            let built = spec.build();
            rule(C, "buffer_transforms_valid", built.is_ok(), || {
                format!(
                    "buffer transform {i} ({spec:?}): {}",
                    built.as_ref().err().map(|e| e.to_string()).unwrap_or_default()
                )
            })?;
        }
        Ok(())
    }
}

/// iCaRL's herding (Avalanche's `construct_exemplar_set`): over the unit-norm features `d`
/// (`n` rows of `dim`) with mean `μ`, starting from `w = μ`, each iteration picks
/// `argmax_j d_j·w` (first maximum), ranks it if not yet picked, and moves `w ← w + μ − d_pick`;
/// it stops after `k` distinct picks or `max_iterations` iterations. Returns the rank (1-based)
/// of each sample, 0 for those not picked.
pub fn icarl_herding(features: &[f32], dim: usize, k: usize, max_iterations: usize) -> Vec<usize> {
    let n = features.len().checked_div(dim).unwrap_or(0);
    let mut rank = vec![0usize; n];
    if n == 0 {
        return rank;
    }
    let mut mu = vec![0.0f64; dim];
    for row in features.chunks_exact(dim) {
        mu.iter_mut().zip(row).for_each(|(m, &v)| *m += f64::from(v));
    }
    mu.iter_mut().for_each(|m| *m /= n as f64);
    let mut w = mu.clone();
    let (mut added, mut iterations) = (0, 0);
    while added < k && iterations < max_iterations {
        let wf: Vec<f32> = w.iter().map(|&v| v as f32).collect();
        let (best, _) = features.par_chunks_exact(dim).enumerate().map(|(j, row)| (j, dot32(row, &wf))).reduce(
            || (usize::MAX, f64::NEG_INFINITY),
            |a, b| if b.1 > a.1 || (b.1 == a.1 && b.0 < a.0) { b } else { a },
        );
        if rank[best] == 0 {
            added += 1;
            rank[best] = added;
        }
        let row = &features[best * dim..(best + 1) * dim];
        w.iter_mut().zip(&mu).zip(row).for_each(|((w, &m), &d)| *w += m - f64::from(d));
        iterations += 1;
    }
    rank
}

/// A dot product of f32 rows with eight independent f64 sums.
fn dot32(a: &[f32], b: &[f32]) -> f64 {
    let mut acc = [0.0f64; 8];
    let full = a.len() / 8 * 8;
    for (ca, cb) in a[..full].chunks_exact(8).zip(b[..full].chunks_exact(8)) {
        for k in 0..8 {
            acc[k] += f64::from(ca[k]) * f64::from(cb[k]);
        }
    }
    let mut sum = acc.iter().sum::<f64>();
    for (x, y) in a[full..].iter().zip(&b[full..]) {
        sum += f64::from(*x) * f64::from(*y);
    }
    sum
}

/// iCaRL's loss (Avalanche's `ICaRLLossPlugin`): the mean binary cross-entropy of
/// `sigmoid(logits)` against one-hot targets whose columns `old_classes` are replaced by the
/// teacher's `sigmoid(old_logits)`; computed from the logits, `softplus(z) − t·z`, which is
/// torch's `BCELoss(sigmoid(z), t)` wherever its log clamp (−100) does not bite.
pub fn icarl_loss(logits: Tensor<2>, targets: &[u32], old: Option<(Tensor<2>, &[u32])>) -> Result<Tensor<1>> {
    let [rows, classes] = logits.dims();
    if rows != targets.len() {
        return Err(ClError::InvalidUse(format!("icarl_loss: {rows} rows of logits for {} targets", targets.len())));
    }
    if let Some(&y) = targets.iter().find(|&&y| y as usize >= classes) {
        return Err(ClError::LabelOutOfRange { label: y, outputs: classes });
    }
    let device = logits.device();
    let mut one_hot = vec![0.0f32; rows * classes];
    let mut keep = vec![1.0f32; rows * classes];
    for (i, &y) in targets.iter().enumerate() {
        one_hot[i * classes + y as usize] = 1.0;
    }
    let target = match old {
        Some((old_logits, old_classes)) => {
            for &c in old_classes.iter().filter(|&&c| (c as usize) < classes) {
                for i in 0..rows {
                    one_hot[i * classes + c as usize] = 0.0;
                    keep[i * classes + c as usize] = 0.0;
                }
            }
            let keep = Tensor::<2>::from_data(TensorData::new(keep, [rows, classes]), &device);
            let old_probs = burn::tensor::activation::sigmoid(old_logits.detach());
            let one_hot = Tensor::<2>::from_data(TensorData::new(one_hot, [rows, classes]), &device);
            one_hot + old_probs * (keep.neg() + 1.0)
        }
        None => Tensor::<2>::from_data(TensorData::new(one_hot, [rows, classes]), &device),
    };
    Ok((softplus(logits.clone(), 1.0) - logits * target).mean())
}

/// The exemplars of one class: the samples (evaluation view, transforms for replay) and their
/// herding ranks.
#[derive(Debug, Clone)]
struct Exemplars {
    class: u32,
    samples: ClassificationDataset,
    ranks: Vec<usize>,
}

/// The steps of [`Icarl`]: the exemplars joined to the training data, iCaRL's loss with the
/// teacher's outputs on the old classes, herding and the class means after each experience,
/// the nearest-mean-of-exemplars classifier at evaluation.
pub struct IcarlSteps<M: Model> {
    config: IcarlConfig,
    buffer_transforms: Vec<Arc<dyn cl_core::data::Transform>>,
    exemplars: Vec<Exemplars>,
    observed_classes: Vec<u32>,
    old_classes: Vec<u32>,
    teacher: Option<M>,
    ncm: Option<NcmClassifier>,
}

impl<M: Model> std::fmt::Debug for IcarlSteps<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IcarlSteps")
            .field("config", &self.config)
            .field("exemplars", &self.exemplars.iter().map(|e| (e.class, e.samples.len())).collect::<Vec<_>>())
            .field("old_classes", &self.old_classes)
            .finish_non_exhaustive()
    }
}

impl<M: Model> IcarlSteps<M> {
    /// No exemplars, no teacher; an error if `config` breaks a rule.
    pub fn new(config: IcarlConfig) -> Result<Self> {
        config.validate()?;
        let buffer_transforms = config.buffer_transforms.iter().map(TransformSpec::build).collect::<Result<_>>()?;
        Ok(Self {
            config,
            buffer_transforms,
            exemplars: Vec::new(),
            observed_classes: Vec::new(),
            old_classes: Vec::new(),
            teacher: None,
            ncm: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &IcarlConfig {
        &self.config
    }

    /// The exemplars, per class in the order the classes were seen: (class, samples).
    pub fn exemplars(&self) -> Vec<(u32, &ClassificationDataset)> {
        self.exemplars.iter().map(|e| (e.class, &e.samples)).collect()
    }

    /// The classes of the experiences trained on before the current one (distilled).
    pub fn old_classes(&self) -> &[u32] {
        &self.old_classes
    }

    /// The class means of the evaluation classifier (unit norm; zeros for classes without
    /// exemplars).
    pub fn class_means(&self) -> BTreeMap<u32, Vec<f32>> {
        self.ncm.as_ref().map(|n| n.class_means().clone()).unwrap_or_default()
    }

    fn memory(&self) -> Result<Option<ClassificationDataset>> {
        ClassificationDataset::concat_all(self.exemplars.iter().map(|e| &e.samples))
    }

    /// Features of every sample of `data` (evaluation view) by `model` in evaluation mode, in
    /// batches of `batch_size`; `flip` mirrors image samples (`[C, H, W]`) horizontally first.
    fn features(
        model: &M,
        data: &ClassificationDataset,
        device: &Device,
        batch_size: usize,
        flip: bool,
    ) -> Result<(Vec<f32>, usize)> {
        let eval = data.eval();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let indices: Vec<usize> = (0..eval.len()).collect();
        let mut out = Vec::new();
        let mut dim = 0;
        for chunk in indices.chunks(batch_size.max(1)) {
            let mut batch = eval.batch(chunk, device, &mut rng)?;
            if flip && let [c, h, w] = batch.sample_shape[..] {
                let rows = batch.len();
                batch.x = batch.x.reshape([rows, c, h, w]).flip([3]).reshape([rows, c * h * w]);
            }
            model.check_batch(&batch)?;
            let f = model.features(&batch).ok_or_else(no_features)?;
            dim = f.dims()[1];
            out.extend(
                f.into_data()
                    .try_into_vec_as::<f32>()
                    .map_err(|e| ClError::InvalidUse(format!("reading iCaRL's features back: {e:?}")))?,
            );
        }
        if let Some(i) = out.iter().position(|v| !v.is_finite()) {
            return Err(ClError::InvalidUse(format!(
                "iCaRL: feature {} of sample {} is not finite: the model diverged",
                i % dim.max(1),
                i / dim.max(1)
            )));
        }
        Ok((out, dim))
    }

    /// Avalanche's `construct_exemplar_set`, `reduce_exemplar_set` and `compute_class_means`
    /// (model in evaluation mode).
    fn update_memory(&mut self, state: &StrategyState<M>) -> Result<()> {
        let experience = state.current_experience()?;
        let model = state.model().valid();
        let device = state.batch_device().clone();
        let batch_size = state.settings().eval_mb_size();
        let data = experience.dataset.train();
        let targets = data.targets();
        let new_classes = experience.classes_in_this_experience.clone();
        let per_class = self.config.per_class(self.observed_classes.len());
        let eval_group: Vec<Arc<dyn cl_core::data::Transform>> = data.transforms().eval.to_vec();
        let mut train_group = eval_group.clone();
        train_group.extend(self.buffer_transforms.iter().cloned());
        let memory_transforms = TransformGroups { train: train_group.into(), eval: eval_group.into() };
        for &class in &new_classes {
            let rows: Vec<usize> = (0..targets.len()).filter(|&i| targets[i] == class).collect();
            let samples = data.subset(&rows)?;
            let (mut features, dim) = Self::features(&model, &samples, &device, batch_size, false)?;
            normalize_rows(&mut features, dim);
            let rank = icarl_herding(&features, dim, per_class, self.config.max_herding_iterations);
            let picked: Vec<usize> = (0..rows.len()).filter(|&i| rank[i] > 0 && rank[i] <= per_class).collect();
            let samples = samples.subset(&picked)?.with_transforms(memory_transforms.clone())?.eval();
            self.exemplars.push(Exemplars { class, samples, ranks: picked.iter().map(|&i| rank[i]).collect() });
        }
        let old = self.exemplars.len() - new_classes.len();
        for e in &mut self.exemplars[..old] {
            let keep: Vec<usize> = (0..e.ranks.len()).filter(|&i| e.ranks[i] <= per_class).collect();
            e.samples = e.samples.subset(&keep)?;
            e.ranks = keep.iter().map(|&i| e.ranks[i]).collect();
        }
        // The class means: unit-norm mean of the exemplars' unit-norm features and of their
        // mirrored images', all classes of the benchmark present (zeros without exemplars).
        let mut means: BTreeMap<u32, Vec<f32>> = BTreeMap::new();
        let mut width = self.ncm.as_ref().map_or(0, NcmClassifier::feature_size);
        for e in &self.exemplars {
            if e.samples.is_empty() {
                continue;
            }
            let image = e.samples.sample_shape().len() == 3;
            let (mut f1, dim) = Self::features(&model, &e.samples, &device, batch_size, false)?;
            let (mut f2, _) =
                if image { Self::features(&model, &e.samples, &device, batch_size, true)? } else { (f1.clone(), dim) };
            normalize_rows(&mut f1, dim);
            normalize_rows(&mut f2, dim);
            let n = e.samples.len() as f64;
            let mut mean = vec![0.0f64; dim];
            for (r1, r2) in f1.chunks_exact(dim).zip(f2.chunks_exact(dim)) {
                for ((m, &a), &b) in mean.iter_mut().zip(r1).zip(r2) {
                    *m += (f64::from(a) + f64::from(b)) / (2.0 * n);
                }
            }
            let norm = mean.iter().map(|v| v * v).sum::<f64>().sqrt();
            if norm == 0.0 {
                return Err(ClError::InvalidUse(format!("iCaRL: the mean feature of class {} is zero", e.class)));
            }
            means.insert(e.class, mean.iter().map(|v| (v / norm) as f32).collect());
            width = dim;
        }
        for c in 0..experience.n_classes as u32 {
            means.entry(c).or_insert_with(|| vec![0.0; width]);
        }
        let ncm = self.ncm_for(width)?;
        ncm.replace_class_means(means)
    }

    fn ncm_for(&mut self, width: usize) -> Result<&mut NcmClassifier> {
        ncm_of_width(&mut self.ncm, width, "iCaRL")
    }
}

/// Scales each row of `values` (`dim` wide) to unit L2 norm (torch's `D / torch.norm(D, dim=0)`,
/// no epsilon: a zero row stays zero).
fn normalize_rows(values: &mut [f32], dim: usize) {
    values.par_chunks_mut(dim.max(1)).for_each(|row| {
        let norm = row.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|v| *v = (f64::from(*v) / norm) as f32);
        }
    });
}

fn no_features() -> ClError {
    ClError::InvalidUse(
        "iCaRL selects exemplars and classifies by the features of the model: implement `Model::features` for it \
         (it returns None by default), e.g. use cl_models::SimpleMlp"
            .into(),
    )
}

impl<M: Model> TemplateSteps<M> for IcarlSteps<M> {
    fn name(&self) -> String {
        "IcarlSteps".into()
    }

    /// The experience's data followed by the exemplars (Avalanche's
    /// `after_train_dataset_adaptation`).
    fn train_dataset_adaptation(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        step_defaults::train_dataset_adaptation(state)?;
        if let Some(memory) = self.memory()? {
            let data = state.adapted_dataset.take().ok_or(ClError::MissingState("adapted_dataset"))?;
            state.adapted_dataset = Some(data.concat(&memory)?);
        }
        Ok(())
    }

    /// The experience's classes join the observed ones (Avalanche's `before_training_exp`).
    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let experience = state.current_experience()?;
        for &c in &experience.classes_in_this_experience {
            if !self.observed_classes.contains(&c) {
                self.observed_classes.push(c);
            }
        }
        Ok(())
    }

    /// Training: the model's outputs (its classifier). Evaluation: minus the distances of the
    /// unit-norm features to the class means.
    fn forward(&mut self, state: &mut StrategyState<M>) -> Result<Tensor<2>> {
        if state.is_training() {
            return step_defaults::forward(state);
        }
        let batch = state.current_batch()?;
        let model = state.forward_model();
        model.check_batch(batch)?;
        let features = model.features(batch).ok_or_else(no_features)?;
        let width = features.dims()[1];
        let experience = state.current_experience()?;
        let ncm = self.ncm_for(width)?;
        ncm.adaptation(&Adaptation { experience, training: false })?;
        Ok(ncm.forward_features(features))
    }

    /// Training: [`icarl_loss`] with the teacher's outputs on the old classes. Evaluation: the
    /// strategy's criterion on the nearest-mean logits.
    fn criterion(&mut self, state: &mut StrategyState<M>) -> Result<Tensor<1>> {
        if !state.is_training() {
            return step_defaults::criterion(state);
        }
        let out = state.mb_output.clone().ok_or(ClError::MissingState("mb_output"))?;
        let batch = state.current_batch()?;
        let old = match &self.teacher {
            Some(teacher) => Some((teacher.forward(batch), self.old_classes.as_slice())),
            None => None,
        };
        icarl_loss(out, &batch.targets, old)
    }

    /// Herding of the experience's classes, reduction of the older exemplars, the class means;
    /// then the teacher becomes a copy of the model and the experience's classes become old
    /// (Avalanche's `_ICaRLPlugin.after_training_exp` then `ICaRLLossPlugin.after_training_exp`).
    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        self.update_memory(state)?;
        let teacher = state.model().valid();
        let teacher = match self.config.teacher_mode {
            TeacherMode::Training => cl_core::set_training_mode(teacher, true).0,
            TeacherMode::Evaluation => teacher,
        };
        self.teacher = Some(teacher);
        let classes = state.current_experience()?.dataset.classes();
        for c in classes {
            if !self.old_classes.contains(&c) {
                self.old_classes.push(c);
            }
        }
        Ok(())
    }

    /// The configuration (checked on load), the exemplars and their ranks, the classes seen,
    /// the teacher and the class means.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config)?;
        let samples: Vec<ClassificationDataset> = self.exemplars.iter().map(|e| e.samples.clone()).collect();
        persist::put_datasets(out, "exemplars", &samples)?;
        out.put("exemplar_classes", &self.exemplars.iter().map(|e| e.class).collect::<Vec<u32>>())?;
        out.put("exemplar_ranks", &self.exemplars.iter().map(|e| e.ranks.clone()).collect::<Vec<_>>())?;
        out.put("observed_classes", &self.observed_classes)?;
        out.put("old_classes", &self.old_classes)?;
        persist::put_opt_model(out, "teacher", self.teacher.as_ref())?;
        save_class_means(out, self.ncm.as_ref())?;
        Ok(())
    }

    fn load_state(&mut self, state: &StateDict, strategy: &StrategyState<M>) -> Result<()> {
        state.check_config("config", &self.config)?;
        let samples = persist::datasets(state, "exemplars")?;
        let classes: Vec<u32> = state.get("exemplar_classes")?;
        let ranks: Vec<Vec<usize>> = state.get("exemplar_ranks")?;
        if classes.len() != samples.len() || ranks.len() != samples.len() {
            return Err(ClError::CheckpointEntry {
                component: state.component().to_string(),
                key: "exemplars".into(),
                reason: format!(
                    "{} exemplar sets, {} classes, {} rank lists",
                    samples.len(),
                    classes.len(),
                    ranks.len()
                ),
            });
        }
        self.exemplars = samples
            .into_iter()
            .zip(classes)
            .zip(ranks)
            .map(|((samples, class), ranks)| Exemplars { class, samples, ranks })
            .collect();
        self.observed_classes = state.get("observed_classes")?;
        self.old_classes = state.get("old_classes")?;
        self.teacher = persist::opt_model(state, "teacher", strategy)?.map(|t| match self.config.teacher_mode {
            TeacherMode::Training => cl_core::set_training_mode(t, true).0,
            TeacherMode::Evaluation => t,
        });
        self.ncm = load_class_means(state, "iCaRL")?;
        Ok(())
    }
}

/// iCaRL (Rebuffi et al., "iCaRL: Incremental Classifier and Representation Learning", CVPR 2017;
/// Avalanche's `ICaRL`, `avalanche/training/supervised/icarl.py`, loss `ICaRLLossPlugin` in
/// `avalanche/training/losses.py`): class-incremental learning with a memory of exemplars chosen
/// by herding, a distillation loss on the old classes and a nearest-mean-of-exemplars classifier.
///
/// As Avalanche's `ICaRL`:
/// - the training data of each experience after the first is joined by the exemplars (stored
///   with the evaluation transforms, plus `buffer_transforms` in training);
/// - the loss is [`icarl_loss`]: the binary cross-entropy of the model's sigmoid outputs against
///   one-hot targets whose old-class columns are the teacher's sigmoid outputs; the teacher is a
///   copy of the model made after each experience, kept in training mode
///   ([`TeacherMode::Training`], as Avalanche's copy: dropout on);
/// - after each experience, in evaluation mode: for each new class, herding
///   ([`icarl_herding`], at most 1000 iterations) over the unit-norm features of its samples
///   picks `⌈memory_size / classes seen⌉` exemplars (`fixed_memory`), older classes keep their
///   best-ranked ones; each class mean is the unit-norm average of the exemplars' unit-norm
///   features and of their horizontally mirrored images' (image samples `[C, H, W]` only);
///   every class of the benchmark has a mean (zeros without exemplars);
/// - evaluation classifies by the nearest class mean of the unit-norm features
///   (`NCMClassifier(normalize=True)`); the evaluation loss is the criterion on those outputs.
///
/// The model is one network with [`Model::features`] (the feature extractor) and a forward pass
/// through its classifier (Avalanche's separate `feature_extractor` and `classifier`, e.g.
/// SimpleMLP's hidden layers and output layer).
///
/// # Differences from Avalanche
///
/// - One model with `features` instead of a `TrainEvalModel`; the class means belong to the
///   strategy.
/// - Evaluating before the first experience ends gives the evaluated classes zero means
///   (Avalanche's empty NCM classifier fails).
///
/// ```
/// use burn::tensor::Device;
/// use cl_core::OptimizerSpec;
/// use cl_models::SimpleMlpConfig;
/// use cl_strategies::{Icarl, IcarlConfig};
/// let device = Device::flex();
/// let model = SimpleMlpConfig::new().init(&device)?;
/// let strategy = Icarl::builder(model, OptimizerSpec::sgd(0.01), device, IcarlConfig::new(2000))?.build()?;
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "ICaRL", alias = "ICaRLLossPlugin")]
pub struct Icarl;

impl Icarl {
    /// A builder with the iCaRL steps and the default evaluator; an error if `config` breaks a
    /// rule.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: IcarlConfig,
    ) -> Result<StrategyBuilder<M>> {
        Ok(StrategyBuilder::new(model, optimizer, device).steps(IcarlSteps::<M>::new(config)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cl_core::config::assert_rule;
    use cl_core::{Experience, Strategy};
    use cl_models::{SimpleMlp, SimpleMlpConfig};

    /// Avalanche's herding loop (`_ICaRLPlugin.construct_exemplar_set`, torch 2.9.0) on these six
    /// unit-norm features with 4 exemplars gives ranks [2, 4, 0, 1, 3, 0] in 5 iterations (one
    /// repeated pick).
    #[test]
    fn herding_is_avalanches() {
        let rows =
            [[1.0f32, 0.0, 0.5], [0.8, 0.6, 0.0], [0.0, 1.0, 0.2], [0.6, 0.8, 0.1], [0.3, 0.3, 0.9], [0.9, 0.1, 0.4]];
        let mut features: Vec<f32> = rows.concat();
        normalize_rows(&mut features, 3);
        assert_eq!(icarl_herding(&features, 3, 4, 1000), vec![2, 4, 0, 1, 3, 0]);
        // The iteration cap: 5 iterations make the 4 picks, 4 make 3.
        assert_eq!(icarl_herding(&features, 3, 4, 4), vec![2, 0, 0, 1, 3, 0]);
        assert_eq!(icarl_herding(&features, 3, 10, 1000).iter().filter(|&&r| r > 0).count(), 6);
        assert!(icarl_herding(&[], 3, 4, 1000).is_empty());
    }

    /// `ICaRLLossPlugin` (Avalanche 0.6.0, torch 2.9.0) on these logits gives 1.0546066 without a
    /// teacher and 1.0411538 with old classes [0, 1] and these teacher logits.
    #[test]
    fn the_loss_is_avalanches() {
        let device = Device::flex();
        let t = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [3, 4]), &device);
        let logits = t(vec![0.5, -1.0, 2.0, 0.1, 1.5, 0.25, -0.5, -2.0, 0.0, 1.0, 1.0, 3.0]);
        let old = t(vec![1.0, -0.5, 0.3, 0.2, -1.0, 2.0, 0.0, 0.0, 0.2, 0.2, -3.0, 1.0]);
        let y = [2u32, 3, 1];
        let plain = f64::from(icarl_loss(logits.clone(), &y, None).unwrap().into_scalar::<f32>());
        assert!((plain - 1.054_606_6).abs() < 1e-6, "{plain}");
        let distilled = f64::from(icarl_loss(logits.clone(), &y, Some((old, &[0, 1]))).unwrap().into_scalar::<f32>());
        assert!((distilled - 1.041_153_8).abs() < 1e-6, "{distilled}");
        let err = icarl_loss(logits, &[0, 4, 1], None).unwrap_err();
        assert!(matches!(err, ClError::LabelOutOfRange { label: 4, outputs: 4 }), "{err}");
    }

    #[test]
    fn config_rules() {
        assert_rule(IcarlConfig::new(0).validate(), "memory_size_positive");
        assert_rule(IcarlConfig::new(5).with_max_herding_iterations(0).validate(), "max_herding_iterations_positive");
        let bad = IcarlConfig::new(5).with_buffer_transforms(vec![TransformSpec::RandomHorizontalFlip { p: 2.0 }]);
        assert_rule(bad.validate(), "buffer_transforms_valid");
        let d = IcarlConfig::default();
        assert_eq!(
            (d.memory_size, d.fixed_memory, d.max_herding_iterations, d.teacher_mode),
            (2000, true, 1000, TeacherMode::Training)
        );
        assert_eq!(
            (IcarlConfig::new(20).per_class(3), IcarlConfig::new(20).with_fixed_memory(false).per_class(3)),
            (7, 20)
        );
    }

    fn experience(index: usize, classes: [u32; 2]) -> Experience {
        let n = 30;
        let inputs: Vec<f32> = (0..n * 4)
            .map(|i| (((i * 29 + index * 13) % 11) as f32 - 5.0) / 5.0 + classes[i / 4 % 2] as f32 * 0.5)
            .collect();
        let targets: Vec<u32> = (0..n).map(|i| classes[i % 2]).collect();
        Experience::new(index, ClassificationDataset::from_f32(inputs, vec![4], targets).unwrap(), "train", 6)
    }

    /// With a fixed memory of 12: 6 exemplars per class after the first experience, then 3 per
    /// class (the best-ranked ones kept); the training data holds them; the class means are unit
    /// norm; the teacher exists from the second experience and the old classes grow.
    #[test]
    fn exemplars_shrink_to_the_fixed_memory_and_keep_their_best_ranks() {
        let device = Device::flex();
        let model =
            SimpleMlpConfig::new().with_input_size(4).with_hidden_size(8).with_num_classes(6).init(&device).unwrap();
        let mut s: Strategy<SimpleMlp> = Icarl::builder(model, OptimizerSpec::sgd(0.05), device, IcarlConfig::new(12))
            .unwrap()
            .train_mb_size(8)
            .seed(2)
            .build()
            .unwrap();
        s.train(&experience(0, [0, 1])).unwrap();
        let steps = s.steps_as::<IcarlSteps<SimpleMlp>>().unwrap();
        let sizes: Vec<(u32, usize)> = steps.exemplars().iter().map(|(c, d)| (*c, d.len())).collect();
        assert_eq!(sizes, vec![(0, 6), (1, 6)]);
        let first_ranks: Vec<Vec<usize>> = steps.exemplars.iter().map(|e| e.ranks.clone()).collect();
        assert_eq!(steps.old_classes(), &[0, 1]);
        assert_eq!(s.state().clock().train_exp_iterations, 4, "30 samples in batches of 8");
        s.train(&experience(1, [2, 3])).unwrap();
        assert_eq!(s.state().clock().train_exp_iterations, 6, "30 samples + 12 exemplars in batches of 8");
        s.train(&experience(2, [4, 5])).unwrap();
        let steps = s.steps_as::<IcarlSteps<SimpleMlp>>().unwrap();
        let sizes: Vec<(u32, usize)> = steps.exemplars().iter().map(|(c, d)| (*c, d.len())).collect();
        assert_eq!(sizes, vec![(0, 2), (1, 2), (2, 2), (3, 2), (4, 2), (5, 2)]);
        for (e, first) in steps.exemplars.iter().zip(&first_ranks) {
            assert!(e.ranks.iter().all(|&r| r <= 2), "class {}: {:?}", e.class, e.ranks);
            assert!(e.ranks.iter().all(|r| first.contains(r)));
        }
        let means = steps.class_means();
        assert_eq!(means.len(), 6);
        for m in means.values() {
            let norm: f32 = m.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        }
        assert_eq!(steps.old_classes(), &[0, 1, 2, 3, 4, 5]);
    }
}
