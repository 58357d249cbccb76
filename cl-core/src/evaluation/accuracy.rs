//! Top-1 accuracy and loss (minibatch, epoch, running epoch, experience, stream, trained
//! experiences; task-agnostic or task-aware) and top-k accuracy.

use std::collections::BTreeMap;

use burn::tensor::Int;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::callback::Callback;
use crate::checkpoint::StateDict;
use crate::config::{Validate, rule};
use crate::error::Result;

use super::Granularity;
use super::accumulator::{AccuracyLossSums, TaskCounts, TaskValues};
use super::metric::{Metric, MetricContext, MetricOutput};
use super::names::MetricName;

/// The configuration of [`AccuracyMetrics`]: Avalanche's `accuracy_metrics(minibatch, epoch,
/// epoch_running, experience, stream, trained_experience)` and `loss_metrics(minibatch, epoch,
/// epoch_running, experience, stream)` in one (they share one pass over the outputs), plus
/// Avalanche's `TaskAwareAccuracy`.
///
/// Avalanche's functions default every flag to `False` (no value at all); the default here is
/// its default evaluator's choice: accuracy and loss per epoch, experience and stream
/// ([`Granularity::DEFAULT`]), which is what [`EvaluationPlugin::default`](super::EvaluationPlugin)
/// computes.
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_core::evaluation::{AccuracyConfig, Granularity};
/// // accuracy_metrics(epoch=True, experience=True, stream=True, trained_experience=True)
/// let config = AccuracyConfig::default().with_loss(Granularity::NONE).with_trained_experience(true);
/// let toml = "trained_experience = true\n[loss]\n";
/// assert_eq!(AccuracyConfig::from_toml(toml).unwrap(), config);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccuracyConfig {
    /// When top-1 accuracy is emitted (`Top1_Acc_MB`, `_Epoch`, `_Exp`, `_Stream`).
    pub accuracy: Granularity,
    /// When the mean loss is emitted (`Loss_MB`, `_Epoch`, `_Exp`, `_Stream`).
    pub loss: Granularity,
    /// The running accuracy of the epoch so far, every iteration (`Top1_RunningAcc_Epoch`;
    /// Avalanche's `epoch_running` of `accuracy_metrics`).
    pub running_accuracy: bool,
    /// The running mean loss of the epoch so far, every iteration (`RunningLoss_Epoch`;
    /// Avalanche's `epoch_running` of `loss_metrics`).
    pub running_loss: bool,
    /// `Accuracy_On_Trained_Experiences` after each evaluation: the accuracy over the evaluated
    /// experiences whose index is not above the last trained one.
    pub trained_experience: bool,
    /// One value per task label, each named with its task, instead of the pooled value
    /// (Avalanche's `TaskAwareAccuracy`).
    pub task_aware: bool,
}

impl Default for AccuracyConfig {
    fn default() -> Self {
        Self {
            accuracy: Granularity::DEFAULT,
            loss: Granularity::DEFAULT,
            running_accuracy: false,
            running_loss: false,
            trained_experience: false,
            task_aware: false,
        }
    }
}

impl AccuracyConfig {
    /// Sets when accuracy is emitted.
    pub fn with_accuracy(mut self, accuracy: Granularity) -> Self {
        self.accuracy = accuracy;
        self
    }

    /// Sets when the loss is emitted.
    pub fn with_loss(mut self, loss: Granularity) -> Self {
        self.loss = loss;
        self
    }

    /// Sets whether the running epoch accuracy is emitted every iteration.
    pub fn with_running_accuracy(mut self, on: bool) -> Self {
        self.running_accuracy = on;
        self
    }

    /// Sets whether the running epoch loss is emitted every iteration.
    pub fn with_running_loss(mut self, on: bool) -> Self {
        self.running_loss = on;
        self
    }

    /// Sets whether the accuracy on the trained experiences is emitted.
    pub fn with_trained_experience(mut self, on: bool) -> Self {
        self.trained_experience = on;
        self
    }

    /// Sets whether one value per task label is emitted.
    pub fn with_task_aware(mut self, on: bool) -> Self {
        self.task_aware = on;
        self
    }
}

impl Validate for AccuracyConfig {
    /// Every combination is valid (one that emits nothing included, as in Avalanche).
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// Top-1 accuracy (`Top1_Acc_*`) and loss (`Loss_*`) at the chosen granularities, plus the
/// running epoch values (`Top1_RunningAcc_Epoch`, `RunningLoss_Epoch`, every iteration) and the
/// accuracy on the experiences trained so far (`Accuracy_On_Trained_Experiences`, per stream),
/// as configured by an [`AccuracyConfig`].
///
/// Task-agnostic by default (as Avalanche's `accuracy_metrics`): the samples of every task are
/// pooled and the value is named with the experience's task label. With
/// [`AccuracyConfig::task_aware`] one value per task label is emitted, each named with its
/// task (Avalanche's `TaskAwareAccuracy`; FACIL/Mammoth's task-aware numbers when the model
/// uses the task labels, e.g. a multi-head model).
///
/// Counts and loss sums stay on the device; they are read back once per epoch, experience and
/// stream (and once per iteration only for the minibatch and running values).
#[derive(Debug)]
pub struct AccuracyMetrics {
    config: AccuracyConfig,
    minibatch: AccuracyLossSums,
    epoch: AccuracyLossSums,
    experience: AccuracyLossSums,
    stream: AccuracyLossSums,
    trained: TaskCounts,
    last_trained: usize,
}

impl AccuracyMetrics {
    /// The metrics of `config` (every configuration is valid).
    pub fn new(config: AccuracyConfig) -> Self {
        Self {
            config,
            minibatch: AccuracyLossSums::default(),
            epoch: AccuracyLossSums::default(),
            experience: AccuracyLossSums::default(),
            stream: AccuracyLossSums::default(),
            trained: TaskCounts::default(),
            last_trained: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &AccuracyConfig {
        &self.config
    }

    fn wants_epoch(&self) -> bool {
        self.config.accuracy.epoch || self.config.loss.epoch || self.config.running_accuracy || self.config.running_loss
    }

    #[allow(clippy::too_many_arguments)]
    fn emit(
        &self,
        sums: &AccuracyLossSums,
        (acc_name, loss_name): (Option<&str>, Option<&str>),
        add_exp: bool,
        ctx: &MetricContext<'_>,
        out: &mut MetricOutput,
    ) {
        let mut values: Vec<(Option<u32>, TaskValues)> = if self.config.task_aware {
            sums.read().into_iter().map(|(t, v)| (Some(t), v)).collect()
        } else {
            sums.read_pooled().map(|v| (ctx.task(), v)).into_iter().collect()
        };
        if add_exp && values.is_empty() {
            // An experience without samples (built by hand; the benchmark generators refuse
            // them): NaN under its key rather than no key, so that a reader indexing the
            // results by experience finds it (Avalanche reports 0.0, as if all were wrong).
            values.push((ctx.task(), TaskValues { accuracy: f64::NAN, loss: f64::NAN, count: 0 }));
        }
        for (task, v) in values {
            let name = |metric: &str| {
                let name = if add_exp { ctx.exp_name(metric) } else { ctx.task_name(metric) };
                match (self.config.task_aware, task) {
                    (true, Some(t)) => name.with_task(t),
                    _ => name,
                }
            };
            if let Some(m) = acc_name {
                out.scalar(name(m), v.accuracy);
            }
            if let Some(m) = loss_name {
                out.scalar(name(m), v.loss);
            }
        }
    }
}

fn pick(on: bool, name: &str) -> Option<&str> {
    on.then_some(name)
}

impl Metric for AccuracyMetrics {
    fn name(&self) -> String {
        "Accuracy/Loss".into()
    }

    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config)?;
        out.put("last_trained", &self.last_trained)?;
        for (key, sums) in [
            ("minibatch", &self.minibatch),
            ("epoch", &self.epoch),
            ("experience", &self.experience),
            ("stream", &self.stream),
        ] {
            let mut d = StateDict::new(format!("accuracy sums `{key}`"));
            sums.save_state(&mut d)?;
            out.put_dict(key, d);
        }
        let mut d = StateDict::new("trained-experience hits");
        self.trained.save_state(&mut d)?;
        out.put_dict("trained", d);
        Ok(())
    }

    fn load_state(&mut self, state: &StateDict) -> Result<()> {
        state.check_config("config", &self.config)?;
        self.last_trained = state.get("last_trained")?;
        self.minibatch.load_state(state.dict("minibatch")?)?;
        self.epoch.load_state(state.dict("epoch")?)?;
        self.experience.load_state(state.dict("experience")?)?;
        self.stream.load_state(state.dict("stream")?)?;
        self.trained.load_state(state.dict("trained")?)
    }

    fn on(&mut self, ctx: &MetricContext<'_>, out: &mut MetricOutput) {
        match ctx.callback {
            Callback::BeforeTrainingEpoch => self.epoch.reset(),
            Callback::AfterTrainingIteration => {
                let (Some(batch), Some(hits), Some(loss)) = (ctx.batch, ctx.hits(), ctx.loss) else {
                    return;
                };
                if self.wants_epoch() {
                    self.epoch.update_hits(batch, hits.clone(), loss);
                }
                if self.config.accuracy.minibatch || self.config.loss.minibatch {
                    self.minibatch.reset();
                    self.minibatch.update_hits(batch, hits, loss);
                    let names = (
                        pick(self.config.accuracy.minibatch, "Top1_Acc_MB"),
                        pick(self.config.loss.minibatch, "Loss_MB"),
                    );
                    self.emit(&self.minibatch, names, false, ctx, out);
                }
                if self.config.running_accuracy || self.config.running_loss {
                    let names = (
                        pick(self.config.running_accuracy, "Top1_RunningAcc_Epoch"),
                        pick(self.config.running_loss, "RunningLoss_Epoch"),
                    );
                    self.emit(&self.epoch, names, false, ctx, out);
                }
            }
            Callback::AfterTrainingEpoch => {
                let names =
                    (pick(self.config.accuracy.epoch, "Top1_Acc_Epoch"), pick(self.config.loss.epoch, "Loss_Epoch"));
                if names.0.is_some() || names.1.is_some() {
                    self.emit(&self.epoch, names, false, ctx, out);
                }
            }
            Callback::AfterTrainingExp => {
                self.last_trained = ctx.experience_id().unwrap_or(0);
                self.trained.reset();
            }
            Callback::BeforeEval => {
                self.stream.reset();
                self.trained.reset();
            }
            Callback::BeforeEvalExp => self.experience.reset(),
            Callback::AfterEvalIteration => {
                let (Some(batch), Some(hits), Some(loss)) = (ctx.batch, ctx.hits(), ctx.loss) else {
                    return;
                };
                if self.config.accuracy.experience || self.config.loss.experience {
                    self.experience.update_hits(batch, hits.clone(), loss);
                }
                if self.config.accuracy.stream || self.config.loss.stream {
                    self.stream.update_hits(batch, hits.clone(), loss);
                }
                if self.config.trained_experience && ctx.experience_id().unwrap_or(0) <= self.last_trained {
                    self.trained.update(batch, hits);
                }
            }
            Callback::AfterEvalExp => {
                let names = (
                    pick(self.config.accuracy.experience, "Top1_Acc_Exp"),
                    pick(self.config.loss.experience, "Loss_Exp"),
                );
                if names.0.is_some() || names.1.is_some() {
                    self.emit(&self.experience, names, true, ctx, out);
                }
            }
            Callback::AfterEval => {
                let names = (
                    pick(self.config.accuracy.stream, "Top1_Acc_Stream"),
                    pick(self.config.loss.stream, "Loss_Stream"),
                );
                if names.0.is_some() || names.1.is_some() {
                    // As Avalanche, named with the last evaluated experience's task.
                    self.emit(&self.stream, names, false, ctx, out);
                }
                if self.config.trained_experience {
                    let name = "Accuracy_On_Trained_Experiences";
                    if self.config.task_aware {
                        for (t, v) in self.trained.read() {
                            out.scalar(ctx.task_name(name).with_task(t), v);
                        }
                    } else if let Some(v) = self.trained.read_pooled() {
                        out.scalar(ctx.task_name(name), v);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The configuration of [`TopkAccuracy`]: Avalanche's `topk_acc_metrics(top_k=5, minibatch,
/// epoch, experience, stream)`.
///
/// Avalanche defaults every granularity to `False`; the default here is epoch, experience and
/// stream ([`Granularity::DEFAULT`]), as for [`AccuracyConfig`]. Avalanche's `epoch_running` and
/// `trained_experience` are not offered.
///
/// ```
/// use cl_core::config::{ConfigFile, Validate};
/// use cl_core::evaluation::TopkConfig;
/// let config = TopkConfig::from_toml("top_k = 3").unwrap();
/// assert_eq!(config, TopkConfig::new(3));
/// assert_eq!(TopkConfig::new(0).validate().unwrap_err().rule(), Some("top_k_positive"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopkConfig {
    /// `k` (at least 1; default 5).
    pub top_k: usize,
    /// When the value is emitted (`Topk_{k}_Acc_MB`, `_Epoch`, `_Exp`, `_Stream`).
    pub granularity: Granularity,
}

impl Default for TopkConfig {
    fn default() -> Self {
        Self::new(5)
    }
}

impl TopkConfig {
    /// Top-`k` accuracy per epoch, experience and stream.
    pub fn new(top_k: usize) -> Self {
        Self { top_k, granularity: Granularity::DEFAULT }
    }

    /// Sets `k`.
    pub fn with_top_k(mut self, top_k: usize) -> Self {
        self.top_k = top_k;
        self
    }

    /// Sets when the value is emitted.
    pub fn with_granularity(mut self, granularity: Granularity) -> Self {
        self.granularity = granularity;
        self
    }
}

impl Validate for TopkConfig {
    /// `top_k_positive`.
    fn validate(&self) -> Result<()> {
        rule("TopkConfig", "top_k_positive", self.top_k > 0, || format!("top_k = {} must be at least 1", self.top_k))
    }
}

/// Top-k accuracy (`Topk_{k}_Acc_MB`, `_Epoch`, `_Exp`, `_Stream`), one value per task label
/// as Avalanche's `topk_acc_metrics`.
///
/// A sample is a hit when fewer than `k` logits rank above the logit of its true class: those
/// strictly greater, and those equal at a lower index (ties broken by index, as `torch.topk`,
/// so equal logits — a fully masked head — do not all count as hits); computed on the device,
/// read back once per period.
#[derive(Debug)]
pub struct TopkAccuracy {
    k: usize,
    granularity: Granularity,
    minibatch: TaskCounts,
    epoch: TaskCounts,
    experience: TaskCounts,
    stream: TaskCounts,
}

impl TopkAccuracy {
    /// Top-k accuracy as configured; an error if `config` breaks a rule ([`TopkConfig`]).
    pub fn new(config: TopkConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            k: config.top_k,
            granularity: config.granularity,
            minibatch: TaskCounts::default(),
            epoch: TaskCounts::default(),
            experience: TaskCounts::default(),
            stream: TaskCounts::default(),
        })
    }

    fn hits(&self, ctx: &MetricContext<'_>) -> Option<Tensor<1, Int>> {
        let (batch, out) = (ctx.batch?, ctx.output?);
        let n = batch.len();
        let c = out.dims()[1];
        if n == 0 || c == 0 {
            return None;
        }
        let logits = out.clone().detach();
        let y = batch.y.clone().reshape([n, 1]);
        // A label with no logit (not below the number of outputs) is never a hit; checked on
        // the host labels, so the usual case costs nothing.
        let out_of_range = batch.targets.iter().any(|&t| t as usize >= c);
        let index = if out_of_range { y.clone().clamp_max((c - 1) as i64) } else { y.clone() };
        let true_logit = logits.clone().gather(1, index);
        let diff = logits.sub(true_logit.expand([n, c]));
        // Ties are broken by index, as `torch.topk`: a logit equal to the true class's one
        // ranks above it only at a lower index.
        let columns = Tensor::<1, Int>::arange(0..c as i64, (&y.device(), y.dtype())).reshape([1, c]).expand([n, c]);
        let lower_index = columns.lower(y.expand([n, c])).int();
        let above = diff.clone().greater_elem(0.0).int() + diff.equal_elem(0.0).int() * lower_index;
        // A row with a NaN or infinite logit is never a hit (NaN compares as neither above nor
        // equal, which would rank the true class first).
        let hits = above.sum_dim(1).reshape([n]).lower_elem(self.k as i64).int() * super::accumulator::finite_rows(out);
        Some(if out_of_range { hits * batch.y.clone().lower_elem(c as i64).int() } else { hits })
    }

    fn emit(&self, counts: &TaskCounts, level: &str, add_exp: bool, ctx: &MetricContext<'_>, out: &mut MetricOutput) {
        let metric = format!("Topk_{}_Acc_{level}", self.k);
        let name: MetricName = if add_exp { ctx.exp_name(&metric) } else { ctx.stream_name(&metric) };
        let mut values: BTreeMap<u32, f64> = counts.read();
        if add_exp && values.is_empty() {
            // An experience without samples: NaN under its key (see `AccuracyMetrics`).
            values.insert(ctx.task().unwrap_or(0), f64::NAN);
        }
        for (t, v) in values {
            out.scalar(name.clone().with_task(t), v);
        }
    }
}

impl Metric for TopkAccuracy {
    fn name(&self) -> String {
        format!("Top{}Accuracy", self.k)
    }

    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        for (key, sums) in [
            ("minibatch", &self.minibatch),
            ("epoch", &self.epoch),
            ("experience", &self.experience),
            ("stream", &self.stream),
        ] {
            let mut d = StateDict::new(format!("top-k counts `{key}`"));
            sums.save_state(&mut d)?;
            out.put_dict(key, d);
        }
        Ok(())
    }

    fn load_state(&mut self, state: &StateDict) -> Result<()> {
        self.minibatch.load_state(state.dict("minibatch")?)?;
        self.epoch.load_state(state.dict("epoch")?)?;
        self.experience.load_state(state.dict("experience")?)?;
        self.stream.load_state(state.dict("stream")?)
    }

    fn on(&mut self, ctx: &MetricContext<'_>, out: &mut MetricOutput) {
        let g = self.granularity;
        match ctx.callback {
            Callback::BeforeTrainingEpoch => self.epoch.reset(),
            Callback::AfterTrainingIteration if g.minibatch || g.epoch => {
                let (Some(batch), Some(hits)) = (ctx.batch, self.hits(ctx)) else { return };
                if g.epoch {
                    self.epoch.update(batch, hits.clone());
                }
                if g.minibatch {
                    self.minibatch.reset();
                    self.minibatch.update(batch, hits);
                    self.emit(&self.minibatch, "MB", false, ctx, out);
                }
            }
            Callback::AfterTrainingEpoch if g.epoch => self.emit(&self.epoch, "Epoch", false, ctx, out),
            Callback::BeforeEval => self.stream.reset(),
            Callback::BeforeEvalExp => self.experience.reset(),
            Callback::AfterEvalIteration if g.experience || g.stream => {
                let (Some(batch), Some(hits)) = (ctx.batch, self.hits(ctx)) else { return };
                if g.experience {
                    self.experience.update(batch, hits.clone());
                }
                if g.stream {
                    self.stream.update(batch, hits);
                }
            }
            Callback::AfterEvalExp if g.experience => self.emit(&self.experience, "Exp", true, ctx, out),
            Callback::AfterEval if g.stream => self.emit(&self.stream, "Stream", false, ctx, out),
            _ => {}
        }
    }
}
