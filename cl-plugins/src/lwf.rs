//! [`LwfPlugin`]: Learning without Forgetting (Li & Hoiem, 2016; Avalanche's `LwFPlugin`).

use std::collections::{BTreeMap, BTreeSet};

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Int, Tensor, TensorData};
use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, finite_positive, rule};
use cl_core::{ClError, Model, Plugin, Result, StatePart, StrategyState};
use serde::{Deserialize, Serialize};

use crate::persist::{opt_model, put_opt_model};
use crate::weights::ExperienceWeight;

/// LwF's hyper-parameters, with the defaults of Avalanche's `LwFPlugin(alpha=1,
/// temperature=2)`.
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_plugins::{LwfConfig, LwfPlugin};
/// let config = LwfConfig::default().with_alpha(vec![0.0, 0.5, 1.0]).with_temperature(1.0);
/// assert_eq!(LwfConfig::from_toml("alpha = [0.0, 0.5, 1.0]\ntemperature = 1.0")?, config);
/// assert!(LwfConfig::from_toml("temperature = 0.0").is_err());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "LwFPlugin")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LwfConfig {
    /// Distillation weight: a number, or one per experience indexed by the number of trained
    /// experiences (a list too short for an experience is an error when that experience
    /// trains, as Avalanche's `IndexError`); finite and `>= 0`. Default 1.
    pub alpha: ExperienceWeight,
    /// Softmax temperature of the distillation (a finite number `> 0`; default 2).
    pub temperature: f64,
}

impl Default for LwfConfig {
    /// Avalanche's defaults: `alpha = 1`, `temperature = 2`.
    fn default() -> Self {
        Self { alpha: ExperienceWeight::Constant(1.0), temperature: 2.0 }
    }
}

impl LwfConfig {
    /// Sets `alpha` (a number or one per experience).
    pub fn with_alpha(mut self, alpha: impl Into<ExperienceWeight>) -> Self {
        self.alpha = alpha.into();
        self
    }

    /// Sets `temperature`.
    pub fn with_temperature(mut self, temperature: f64) -> Self {
        self.temperature = temperature;
        self
    }
}

impl Validate for LwfConfig {
    fn validate(&self) -> Result<()> {
        const C: &str = "LwfConfig";
        rule(C, "alpha_not_empty", !self.alpha.is_empty(), || {
            "alpha is an empty list: give a number or one value per experience".into()
        })?;
        rule(C, "alpha_finite_non_negative", self.alpha.all_finite_non_negative(), || {
            format!("alpha = {:?}: every value must be a finite number >= 0", self.alpha.values())
        })?;
        rule(C, "temperature_finite_positive", finite_positive(self.temperature), || {
            format!("temperature = {} must be a finite number > 0", self.temperature)
        })
    }
}

/// Learning without Forgetting: Avalanche's `LwFPlugin` (`avalanche/training/plugins/lwf.py`,
/// the loss in `LearningWithoutForgetting`, `avalanche/training/regularization.py`), the plugin
/// of the `Lwf` strategy.
///
/// After each training experience the plugin keeps a frozen copy of the model
/// (`model().valid()`: no autodiff, dropout off, unaffected by later updates) and adds the
/// classes of that experience to the classes seen so far (per task label). From the second
/// experience on, `before_backward` adds
///
/// `alpha · KL(softmax(prev[:, seen] / T) ‖ softmax(out[:, seen] / T))`, reduced by `batchmean`
/// (summed over classes and samples, divided by the batch size; **no `T²` factor**), as
/// Avalanche's `_distillation_loss`, where `out` is the current model's output on the batch
/// (`state.mb_output`, no extra forward pass), `prev` the frozen model's logits on the same
/// inputs (a constant), and `seen` the classes of the experiences trained before. `alpha` is
/// indexed by the number of experiences trained so far (Avalanche's `expcount`).
///
/// For multi-task models ([`Model::forward_all_tasks`] is `Some`, e.g. a multi-head MLP), the
/// term is summed over the previous model's heads: each head's outputs on the batch, current vs
/// previous, over the classes that head's task was trained on — Avalanche's multi-task branch.
///
/// # Differences from Avalanche
///
/// - The teacher runs in evaluation mode (dropout off). Avalanche's teacher is a `deepcopy`
///   of the model taken in training mode and never switched to `eval()`, so its soft targets
///   are computed with dropout on.
/// - For a single-head model, `seen` is the union of the classes of every task label trained
///   before. Avalanche distills the single head over the classes of task label 0 only, which
///   is the same in class-incremental scenarios (every task label 0) and distills nothing or
///   too little when a single-head model meets other task labels.
///
/// ```
/// use burn::tensor::Device;
/// use cl_core::{OptimizerSpec, Strategy};
/// use cl_models::{SimpleMlp, SimpleMlpConfig};
/// use cl_plugins::{LwfConfig, LwfPlugin};
/// let device = Device::default();
/// let model = SimpleMlpConfig::new().init(&device)?;
/// let lwf = LwfPlugin::new(LwfConfig::default().with_alpha(1.0).with_temperature(2.0))?;
/// let strategy = Strategy::builder(model, OptimizerSpec::sgd(0.01), device).plugin(lwf).build()?;
/// assert!(strategy.plugin::<LwfPlugin<SimpleMlp>>().is_some());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "LwFPlugin", alias = "LearningWithoutForgetting")]
pub struct LwfPlugin<M: Model> {
    config: LwfConfig,
    prev_model: Option<M>,
    prev_classes: BTreeSet<u32>,
    prev_classes_by_task: BTreeMap<u32, BTreeSet<u32>>,
    trained: usize,
}

impl<M: Model> LwfPlugin<M> {
    /// An LwF plugin; an error ([`ClError::InvalidConfig`]) if `config` breaks one of its rules.
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
    cl_core::check_labels(active, outputs)?;
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
        let alpha = self
            .config
            .alpha
            .at(self.trained)
            .ok_or_else(|| self.config.alpha.missing(&Plugin::<M>::name(self), "alpha", self.trained))?;
        if alpha == 0.0 {
            return Ok(());
        }
        let out = state.mb_output.clone().ok_or(ClError::MissingState("mb_output"))?;
        let batch = state.current_batch()?;
        // The teacher runs without autodiff on a plain copy of the batch; its logits join the
        // loss as constants.
        let plain = batch.inner();
        let loss = match prev_model.forward_all_tasks(&plain) {
            // Multi-task model: distill every previous head on the batch (Avalanche's
            // `forward_all_tasks` branch), over the classes that head was trained on.
            Some(prev_heads) => {
                let mut current = state.model().forward_all_tasks(batch).unwrap_or_default();
                let mut total: Option<Tensor<1>> = None;
                for (task, prev_out) in prev_heads {
                    let (Some(classes), Some(out)) = (self.prev_classes_by_task.get(&task), current.remove(&task))
                    else {
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
        state.add_loss(loss.mul_scalar(alpha))?;
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

    /// The configuration (checked on load), the frozen teacher (a Burn record), the classes
    /// seen (all, and per task label) and the number of trained experiences.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config)?;
        put_opt_model(out, "prev_model", self.prev_model.as_ref())?;
        out.put("prev_classes", &self.prev_classes)?;
        out.put("prev_classes_by_task", &self.prev_classes_by_task)?;
        out.put("trained", &self.trained)
    }

    fn load_state(&mut self, state: &StateDict, strategy: &StrategyState<M>) -> Result<()> {
        state.check_config("config", &self.config)?;
        self.prev_model = opt_model(state, "prev_model", strategy)?;
        self.prev_classes = state.get("prev_classes")?;
        self.prev_classes_by_task = state.get("prev_classes_by_task")?;
        self.trained = state.get("trained")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regularization::test_support::{LossProbe, Tiny, device, sgd, stream};
    use cl_core::Strategy;
    use cl_core::config::{ConfigFile, assert_rule};

    /// The frozen teacher (values and parameter ids), the classes seen and the number of
    /// trained experiences come back; a checkpoint of another configuration is refused.
    #[test]
    fn checkpoint_restores_the_teacher_and_the_classes() {
        use crate::persist::test_util::{assert_mismatch, module_values, restore};
        let config = LwfConfig::default().with_alpha(vec![0.0, 1.0, 2.0]);
        let mut s = Strategy::builder(Tiny::new(6), sgd(0.3), device())
            .train_mb_size(3)
            .plugin(LwfPlugin::<Tiny>::new(config.clone()).unwrap())
            .build()
            .unwrap();
        s.train(&stream(2, 6)).unwrap();
        let lwf = s.plugin::<LwfPlugin<Tiny>>().unwrap();
        let mut fresh = LwfPlugin::new(config.clone()).unwrap();
        let state = restore(lwf, &mut fresh, s.state());
        assert_eq!(module_values(fresh.previous_model().unwrap()), module_values(lwf.previous_model().unwrap()));
        assert_eq!(fresh.previous_classes(), lwf.previous_classes());
        assert_eq!(fresh.prev_classes_by_task, lwf.prev_classes_by_task);
        assert_eq!(fresh.trained_experiences(), 2);
        assert_mismatch(&state, &mut LwfPlugin::new(config.with_temperature(1.0)).unwrap(), s.state());
    }

    #[test]
    fn defaults_are_avalanches() {
        assert_eq!(LwfConfig::default(), LwfConfig { alpha: ExperienceWeight::Constant(1.0), temperature: 2.0 });
        assert_eq!(LwfConfig::from_json("{}").unwrap(), LwfConfig::default());
    }

    #[test]
    fn config_round_trips() {
        for c in [
            LwfConfig::default().with_alpha(0.5).with_temperature(1.5),
            LwfConfig::default().with_alpha(vec![0.0, 1.0, 2.0]).with_temperature(4.0),
        ] {
            assert_eq!(LwfConfig::from_json(&c.to_json()).unwrap(), c);
            assert_eq!(LwfConfig::from_toml(&c.to_toml().unwrap()).unwrap(), c);
        }
    }

    #[test]
    fn every_validation_rule() {
        let ok = LwfConfig::default();
        for (bad, rule) in [
            (ok.clone().with_alpha(vec![]), "alpha_not_empty"),
            (ok.clone().with_alpha(-1.0), "alpha_finite_non_negative"),
            (ok.clone().with_alpha(vec![1.0, f64::INFINITY]), "alpha_finite_non_negative"),
            (ok.clone().with_temperature(0.0), "temperature_finite_positive"),
            (ok.clone().with_temperature(f64::NAN), "temperature_finite_positive"),
        ] {
            assert_rule(bad.validate(), rule);
            assert_rule(LwfPlugin::<Tiny>::new(bad).map(|_| ()), rule);
        }
    }

    /// The distillation term is `alpha·KL_batchmean` without `T²`: at the first iteration of
    /// the second experience the student is the teacher, so the term is 0, and `alpha`
    /// switched off on that experience adds nothing at all; a list too short fails there.
    #[test]
    fn alpha_is_indexed_by_the_trained_experiences() {
        let run = |alpha: ExperienceWeight| {
            let seen = crate::regularization::test_support::Seen::default();
            let after = crate::regularization::test_support::Seen::default();
            let mut s = Strategy::builder(Tiny::new(4), sgd(0.3), device())
                .train_mb_size(3)
                .plugin(LossProbe(seen.clone()))
                .plugin(LwfPlugin::<Tiny>::new(LwfConfig::default().with_alpha(alpha)).unwrap())
                .plugin(LossProbe(after.clone()))
                .build()
                .unwrap();
            let r = s.train(&stream(2, 6));
            let (b, a) = (seen.lock().unwrap().clone(), after.lock().unwrap().clone());
            (r, b, a)
        };
        let (r, before, after) = run(vec![5.0, 0.0].into());
        r.unwrap();
        assert_eq!(before, after, "alpha[1] = 0: nothing added");
        let (r, before, after) = run(1.0.into());
        r.unwrap();
        let added: Vec<f32> = before.iter().zip(&after).filter(|(b, _)| b.0 == 1).map(|(b, a)| a.1 - b.1).collect();
        assert_eq!(added.len(), 2);
        assert!(added[0].abs() < 1e-6, "student = teacher on the first iteration: {added:?}");
        assert!(added[1] > 0.0, "a positive KL term afterwards: {added:?}");
        let (r, _, _) = run(vec![1.0].into());
        let err = r.unwrap_err();
        assert!(matches!(&err, ClError::Plugin { message, .. } if message.contains("alpha")), "{err:?}");
    }
}
