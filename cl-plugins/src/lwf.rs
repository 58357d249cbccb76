//! [`LwfPlugin`]: Learning without Forgetting (Li & Hoiem, 2016; Avalanche's `LwfPlugin`).

use std::collections::{BTreeMap, BTreeSet};

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Int, Tensor, TensorData};
use cl_core::{ClError, MiniBatch, Model, Plugin, Result, StatePart, StrategyState};

/// LwF's distillation weight `alpha`: one number, or one per experience.
pub type LwfAlpha = crate::weights::ExperienceWeight;

/// LwF's hyper-parameters, with Avalanche's defaults (`alpha = 1`, `temperature = 2`).
#[derive(Debug, Clone, PartialEq)]
pub struct LwfConfig {
    /// Distillation weight (a number or one per experience), ≥ 0.
    pub alpha: LwfAlpha,
    /// Softmax temperature of the distillation, > 0.
    pub temperature: f64,
}

impl Default for LwfConfig {
    fn default() -> Self {
        Self {
            alpha: crate::weights::ExperienceWeight::Constant(1.0),
            temperature: 2.0,
        }
    }
}

impl LwfConfig {
    /// A configuration with the given weight(s) and temperature (checked by [`LwfPlugin::new`]).
    pub fn new(alpha: impl Into<LwfAlpha>, temperature: f64) -> Self {
        Self {
            alpha: alpha.into(),
            temperature,
        }
    }

    /// Errors for a negative or non-finite alpha, an empty alpha list, or a temperature ≤ 0.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(ClError::config("temperature", format!("must be > 0, got {}", self.temperature)));
        }
        self.alpha.validate_named("alpha")
    }
}

/// Learning without Forgetting (Avalanche's `LwfPlugin` / `LearningWithoutForgetting`).
///
/// After each training experience the plugin keeps a frozen copy of the model
/// (`model().valid()`: no autodiff, dropout off, unaffected by later updates) and adds the
/// classes of that experience to the set of previously seen classes. From the second
/// experience on, `before_backward` adds
///
/// `alpha · KL(softmax(prev[:, seen] / T) ‖ softmax(out[:, seen] / T))`, reduced by `batchmean`
/// (summed over classes and samples, divided by the batch size; no `T²` factor), as Avalanche's
/// `_distillation_loss`, where `out` is the current model's output on the batch
/// (`state.mb_output`, no extra forward pass), `prev` the frozen model's logits on the same
/// inputs (a constant), and `seen` the classes of the experiences trained before.
///
/// For multi-task models ([`Model::forward_all_tasks`] is `Some`, e.g. a multi-head MLP), the
/// term is summed over the previous model's heads: each head's outputs on the batch, current vs
/// previous, over the classes that head's task was trained on — Avalanche's multi-task branch.
///
/// ```ignore
/// let lwf = LwfPlugin::new(LwfConfig::new(1.0, 2.0))?;
/// let strategy = Naive::builder(model, optimizer, device).plugin(lwf).build()?;
/// ```
pub struct LwfPlugin<M: Model> {
    config: LwfConfig,
    prev_model: Option<M>,
    prev_classes: BTreeSet<u32>,
    prev_classes_by_task: BTreeMap<u32, BTreeSet<u32>>,
    trained: usize,
}

impl<M: Model> LwfPlugin<M> {
    /// An LwF plugin; an error for invalid hyper-parameters (see [`LwfConfig::validate`]).
    pub fn new(config: LwfConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            prev_model: None,
            prev_classes: BTreeSet::new(),
            prev_classes_by_task: BTreeMap::new(),
            trained: 0,
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &LwfConfig {
        &self.config
    }

    /// The frozen teacher (the model after the last trained experience), if any.
    pub fn previous_model(&self) -> Option<&M> {
        self.prev_model.as_ref()
    }

    /// The classes of the experiences trained so far (the distilled output units).
    pub fn previous_classes(&self) -> &BTreeSet<u32> {
        &self.prev_classes
    }

    /// The number of experiences trained so far (Avalanche's `expcount`).
    pub fn trained_experiences(&self) -> usize {
        self.trained
    }
}

/// KL divergence with `batchmean` reduction between the softened teacher and student
/// distributions over the `active` output units (torch's `kl_div(log_p, q, "batchmean")`).
fn distillation_loss(out: Tensor<2>, prev_out: Tensor<2>, active: &[u32], temperature: f64) -> Result<Tensor<1>> {
    let [n, outputs] = out.dims();
    if let Some(&label) = active.iter().find(|&&c| c as usize >= outputs) {
        return Err(ClError::LabelOutOfRange { label, outputs });
    }
    let device = out.device();
    let idx = Tensor::<1, Int>::from_data(
        TensorData::new(active.iter().map(|&c| c as i64).collect::<Vec<_>>(), [active.len()]),
        &device,
    );
    let out = out.select(1, idx.clone()).div_scalar(temperature);
    let prev = prev_out.select(1, idx).div_scalar(temperature);
    let log_p = log_softmax(out, 1);
    // q · (log q − log p), with log q from log_softmax so that tiny q give 0, not NaN.
    let q = softmax(prev.clone(), 1);
    let log_q = log_softmax(prev, 1);
    Ok(q.mul(log_q - log_p).sum().div_scalar(n as f64))
}

impl<M: Model> Plugin<M> for LwfPlugin<M> {
    fn name(&self) -> String {
        "LwfPlugin".into()
    }

    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::Loss]
    }

    fn before_backward(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let Some(prev_model) = &self.prev_model else {
            return Ok(());
        };
        if self.prev_classes.is_empty() {
            return Ok(());
        }
        let alpha = self.config.alpha.at_named(self.trained, "alpha")?;
        if alpha == 0.0 {
            return Ok(());
        }
        let out = state.mb_output.clone().ok_or(ClError::MissingState("mb_output"))?;
        let batch = state.current_batch()?;
        // The teacher runs without autodiff on a plain copy of the batch; its logits join the
        // loss as constants.
        let plain = MiniBatch {
            x: batch.x.clone().inner(),
            y: batch.y.clone().inner(),
            t: batch.t.clone().inner(),
            targets: batch.targets.clone(),
            task_labels: batch.task_labels.clone(),
            sample_shape: batch.sample_shape.clone(),
        };
        let loss = match prev_model.forward_all_tasks(&plain) {
            // Multi-task model: distill every previous head on the batch (Avalanche's
            // `forward_all_tasks` branch), over the classes that head was trained on.
            Some(prev_heads) => {
                let mut current = state.model().forward_all_tasks(batch).unwrap_or_default();
                let mut total: Option<Tensor<1>> = None;
                for (task, prev_out) in prev_heads {
                    let (Some(classes), Some(out)) = (self.prev_classes_by_task.get(&task), current.remove(&task)) else {
                        continue;
                    };
                    let active: Vec<u32> = classes.iter().copied().collect();
                    let l = distillation_loss(out, Tensor::from_inner(prev_out), &active, self.config.temperature)?;
                    total = Some(match total {
                        Some(t) => t + l,
                        None => l,
                    });
                }
                match total {
                    Some(t) => t,
                    None => return Ok(()),
                }
            }
            None => {
                let prev_out = Tensor::from_inner(prev_model.forward(&plain));
                let active: Vec<u32> = self.prev_classes.iter().copied().collect();
                distillation_loss(out, prev_out, &active, self.config.temperature)?
            }
        };
        state.add_loss(loss.mul_scalar(alpha));
        Ok(())
    }

    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let exp = state.current_experience()?;
        let classes = exp.classes_in_this_experience.clone();
        for (task, task_classes) in exp.classes_by_task() {
            self.prev_classes_by_task.entry(task).or_default().extend(task_classes);
        }
        self.prev_classes.extend(classes);
        self.prev_model = Some(state.model().valid());
        self.trained += 1;
        Ok(())
    }
}
