//! [`MultiHeadClassifier`]: one incremental head per task label.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use cl_core::checkpoint::StateDict;
use cl_core::config::Validate;
use cl_core::data::MiniBatch;
use cl_core::{Adaptation, ClError, DynamicModule, Result};

use super::incremental::{IncrementalClassifier, IncrementalClassifierConfig, apply_mask, check_classes};
use crate::headed::Head;

dynamic_head_config! {
    /// Configuration of a [`MultiHeadClassifier`], with the defaults of Avalanche's
    /// `MultiHeadClassifier(in_features, initial_out_features=2, masking=True, mask_value=-1000)`,
    /// plus the seed of the heads' weights (drawn on the host, the same on every backend).
    /// `initial_out_features` is the width of each new head; masking is per head.
    ///
    /// ```
    /// use cl_core::config::Validate;
    /// use cl_models::MultiHeadConfig;
    /// assert!(MultiHeadConfig::new(512).validate().is_ok());
    /// let err = MultiHeadConfig::new(512).with_initial_out_features(0).validate().unwrap_err();
    /// assert_eq!(err.rule(), Some("initial_out_features_positive"));
    /// ```
    MultiHeadConfig,
    seed: "Seed of the heads' initial weights and growth (head of task `t`: `seed + t`; 0)."
}

impl MultiHeadConfig {
    /// The configuration of the head of task `task` (its masking is done by the multi-head
    /// classifier).
    fn head_config(&self, task: u32) -> IncrementalClassifierConfig {
        IncrementalClassifierConfig::new(self.in_features)
            .with_initial_out_features(self.initial_out_features)
            .with_masking(false)
            .with_seed(self.seed.wrapping_add(task as u64))
    }

    /// Builds the classifier on `device` (after [`validate`](Validate::validate)), with the
    /// head of task 0 (as Avalanche does).
    pub fn init(&self, device: &Device) -> Result<MultiHeadClassifier> {
        self.validate()?;
        Ok(self.build(device))
    }

    /// [`init`](Self::init) of a validated configuration.
    pub(crate) fn build(&self, device: &Device) -> MultiHeadClassifier {
        MultiHeadClassifier::from_first_head(self.clone(), self.head_config(0).build(device))
    }
}

/// One [`IncrementalClassifier`] head per task label (Avalanche's `MultiHeadClassifier`).
///
/// - Model adaptation creates the head of each new task label of the experience (before
///   training *and* before evaluation: an unseen task label at evaluation gets a fresh,
///   untrained head, as in Avalanche) and grows each task's head to that task's classes.
/// - The forward pass routes each sample to the head of its task label: a batch of one task
///   goes through that head; a batch with mixed task labels is split by task, each part through
///   its head, and reassembled in the original order, the outputs of narrower heads padded to
///   the widest head (as Avalanche's `MultiTaskModule.forward`).
/// - With masking, a head's outputs of classes its task was never trained on are `mask_value`.
///
/// Differences from Avalanche, on purpose: an experience with several task labels activates
/// (and grows) each head with the classes of *its* task — Avalanche grows and activates every
/// head with all the experience's classes, or refuses with masking on; padding columns of a
/// mixed batch are `mask_value` when masking is on (Avalanche pads with 0, which can outrank a
/// head's masked or negative logits).
///
/// A task label without a head is [`ClError::UnknownTask`] from
/// [`try_forward`](Self::try_forward) and from [`Head::check_batch`], which the strategies call
/// before every forward pass.
#[derive(Module, Debug)]
pub struct MultiHeadClassifier {
    /// The heads, in order of creation; `task_labels()[i]` is the task of head `i`.
    pub heads: Vec<IncrementalClassifier>,
    #[module(skip)]
    tasks: Vec<u32>,
    #[module(skip)]
    active_units: Vec<Vec<bool>>,
    #[module(skip)]
    trained: Vec<bool>,
    #[module(skip)]
    config: MultiHeadConfig,
}

impl MultiHeadClassifier {
    /// A classifier whose head for task 0 is `head` (its masking is handled by the
    /// multi-head classifier); `config` is validated, its `in_features` is the head's.
    pub(crate) fn from_first_head(config: MultiHeadConfig, head: IncrementalClassifier) -> Self {
        let width = head.num_outputs();
        let mut config = config;
        config.in_features = head.in_features();
        Self { heads: vec![head], tasks: vec![0], active_units: vec![vec![false; width]], trained: vec![false], config }
    }

    /// The task label of each head, in head order.
    pub fn task_labels(&self) -> &[u32] {
        &self.tasks
    }

    /// Number of heads.
    pub fn num_heads(&self) -> usize {
        self.heads.len()
    }

    /// The head of task `task`.
    pub fn head(&self, task: u32) -> Option<&IncrementalClassifier> {
        self.index(task).map(|i| &self.heads[i])
    }

    /// The active (trained-on) units of the head of task `task`.
    pub fn active_units(&self, task: u32) -> Option<&[bool]> {
        self.index(task).map(|i| self.active_units[i].as_slice())
    }

    fn index(&self, task: u32) -> Option<usize> {
        self.tasks.iter().position(|&t| t == task)
    }

    fn head_index(&self, task: u32) -> Result<usize> {
        self.index(task).ok_or_else(|| ClError::UnknownTask { task, known: self.tasks.clone() })
    }

    fn forward_task(&self, index: usize, features: Tensor<2>) -> Tensor<2> {
        let out = self.heads[index].forward_features(features);
        if self.config.masking { apply_mask(out, &self.active_units[index], self.config.mask_value) } else { out }
    }

    /// Logits of `features` `[batch, in_features]` whose samples have the task labels
    /// `task_labels` (one per sample).
    pub fn try_forward(&self, features: Tensor<2>, task_labels: &[u32]) -> Result<Tensor<2>> {
        let [batch, _] = features.dims();
        if task_labels.len() != batch {
            return Err(ClError::config(
                "task_labels",
                format!("{} task labels for a batch of {batch}", task_labels.len()),
            ));
        }
        let mut tasks: Vec<u32> = task_labels.to_vec();
        tasks.sort_unstable();
        tasks.dedup();
        if let [task] = tasks.as_slice() {
            return Ok(self.forward_task(self.head_index(*task)?, features));
        }
        if tasks.is_empty() {
            let width = self.heads.iter().map(IncrementalClassifier::num_outputs).max().unwrap_or(0);
            return Ok(Tensor::zeros([0, width], &features.device()));
        }
        let device = features.device();
        let indices: Vec<usize> = tasks.iter().map(|&t| self.head_index(t)).collect::<Result<_>>()?;
        let width = indices.iter().map(|&i| self.heads[i].num_outputs()).max().unwrap_or(0);
        // Group the samples by task, run each group through its head, then put the rows back.
        let mut order: Vec<i64> = Vec::with_capacity(batch);
        let mut parts = Vec::with_capacity(tasks.len());
        for (&task, &index) in tasks.iter().zip(&indices) {
            let rows: Vec<i64> = (0..batch).filter(|&i| task_labels[i] == task).map(|i| i as i64).collect();
            let n = rows.len();
            order.extend_from_slice(&rows);
            let idx = Tensor::<1, Int>::from_data(TensorData::new(rows, [n]), &device);
            let out = self.forward_task(index, features.clone().select(0, idx));
            let w = out.dims()[1];
            parts.push(if w < width {
                let pad = if self.config.masking { self.config.mask_value } else { 0.0 };
                Tensor::cat(vec![out, Tensor::full([n, width - w], pad, &device)], 1)
            } else {
                out
            });
        }
        let mut inverse = vec![0i64; batch];
        for (pos, &row) in order.iter().enumerate() {
            inverse[row as usize] = pos as i64;
        }
        let inverse = Tensor::<1, Int>::from_data(TensorData::new(inverse, [batch]), &device);
        Ok(Tensor::cat(parts, 0).select(0, inverse))
    }

    /// Creates the head of `task` if it has none.
    fn ensure_head(&mut self, task: u32) {
        if self.index(task).is_some() {
            return;
        }
        let device = self.heads[0].classifier.weight.val().device();
        let head = self.config.head_config(task).build(&device);
        self.active_units.push(vec![false; head.num_outputs()]);
        self.trained.push(false);
        self.heads.push(head);
        self.tasks.push(task);
    }
}

impl DynamicModule for MultiHeadClassifier {
    fn adaptation(&mut self, ctx: &Adaptation<'_>) -> Result<()> {
        check_classes(ctx, &ctx.experience.classes_in_this_experience)?;
        for (task, classes) in ctx.experience.classes_by_task() {
            let classes: Vec<u32> = classes.into_iter().collect();
            self.ensure_head(task);
            let i = self.index(task).expect("the head was just ensured");
            self.heads[i].adapt_to(&classes, ctx.training);
            let width = self.heads[i].num_outputs();
            let active = &mut self.active_units[i];
            if active.len() < width {
                active.resize(width, false);
            }
            if ctx.training {
                self.trained[i] = true;
                for &c in &classes {
                    if let Some(unit) = active.get_mut(c as usize) {
                        *unit = true;
                    }
                }
            }
        }
        Ok(())
    }
}

impl Head for MultiHeadClassifier {
    fn adaptation(&mut self, ctx: &Adaptation<'_>) -> Result<()> {
        DynamicModule::adaptation(self, ctx)
    }

    fn check_batch(&self, batch: &MiniBatch) -> Result<()> {
        match batch.single_task() {
            Some(task) => self.head_index(task).map(|_| ()),
            None => {
                let mut tasks = batch.task_labels.clone();
                tasks.sort_unstable();
                tasks.dedup();
                tasks.into_iter().try_for_each(|t| self.head_index(t).map(|_| ()))
            }
        }
    }

    fn forward(&self, features: Tensor<2>, batch: &MiniBatch) -> Tensor<2> {
        match self.try_forward(features, &batch.task_labels) {
            Ok(out) => out,
            Err(e) => panic!("{e}"),
        }
    }

    /// The heads of the tasks trained on so far (Avalanche's `known_train_tasks_labels`).
    fn forward_all_tasks(&self, features: Tensor<2>) -> Option<BTreeMap<u32, Tensor<2>>> {
        Some(
            self.tasks
                .iter()
                .enumerate()
                .filter(|&(i, _)| self.trained[i])
                .map(|(i, &task)| (task, self.forward_task(i, features.clone())))
                .collect(),
        )
    }

    fn num_outputs(&self) -> Option<usize> {
        self.heads.iter().map(IncrementalClassifier::num_outputs).max()
    }

    fn adapts_outputs(&self) -> bool {
        true
    }

    /// The configuration (checked on load), the task label of each head in creation order, the
    /// per-head masks and trained flags, and each head's layout under `head/<i>`.
    fn save_extra_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config)?;
        out.put("tasks", &self.tasks)?;
        out.put("active_units", &self.active_units)?;
        out.put("trained", &self.trained)?;
        for (i, head) in self.heads.iter().enumerate() {
            let mut d = StateDict::new(format!("{} head {i} (task {})", out.component(), self.tasks[i]));
            head.save_layout(&mut d)?;
            out.put_dict(&format!("head/{i}"), d);
        }
        Ok(())
    }

    /// Re-creates the heads of the saved task labels, in the saved order, re-grows each to its
    /// saved outputs and restores the masks; a checkpoint of a classifier with another
    /// configuration is [`ClError::CheckpointMismatch`].
    fn load_extra_state(&mut self, state: &StateDict) -> Result<()> {
        state.check_config("config", &self.config)?;
        let tasks: Vec<u32> = state.get("tasks")?;
        let active_units: Vec<Vec<bool>> = state.get("active_units")?;
        let trained: Vec<bool> = state.get("trained")?;
        if !tasks.starts_with(&self.tasks) {
            return Err(ClError::CheckpointMismatch {
                path: Default::default(),
                what: format!("{} heads (task labels in creation order)", state.component()),
                checkpoint: format!("{tasks:?}"),
                current: format!("{:?} (the model must be freshly built)", self.tasks),
            });
        }
        let mut unique = tasks.clone();
        unique.sort_unstable();
        unique.dedup();
        if unique.len() != tasks.len() || active_units.len() != tasks.len() || trained.len() != tasks.len() {
            return Err(ClError::CheckpointEntry {
                component: state.component().to_string(),
                key: "tasks".into(),
                reason: format!(
                    "{} task labels ({} distinct), {} masks and {} trained flags do not describe one head each",
                    tasks.len(),
                    unique.len(),
                    active_units.len(),
                    trained.len()
                ),
            });
        }
        for &task in &tasks[self.tasks.len()..] {
            self.ensure_head(task);
        }
        for (i, head) in self.heads.iter_mut().enumerate() {
            head.load_layout(state.dict(&format!("head/{i}"))?)?;
        }
        self.active_units = active_units;
        self.trained = trained;
        Ok(())
    }
}
