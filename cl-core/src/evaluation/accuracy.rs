//! Top-1 accuracy and loss (minibatch, epoch, running epoch, experience, stream, trained
//! experiences; task-agnostic or task-aware) and top-k accuracy.

use std::collections::BTreeMap;

use burn::tensor::Int;
use burn::tensor::Tensor;
use crate::callback::Callback;

use super::Granularity;
use super::accumulator::{AccuracyLossSums, TaskCounts, TaskValues};
use super::metric::{Metric, MetricContext, MetricOutput};

/// Top-1 accuracy (`Top1_Acc_*`) and loss (`Loss_*`) at the chosen granularities, plus the
/// running epoch values (`Top1_RunningAcc_Epoch`, `RunningLoss_Epoch`, every iteration) and the
/// accuracy on the experiences trained so far (`Accuracy_On_Trained_Experiences`, per stream).
///
/// Task-agnostic by default (as Avalanche's `accuracy_metrics`): the samples of every task are
/// pooled and the value is named with the experience's task label. With
/// [`task_aware`](Self::task_aware) one value per task label is emitted, each named with its
/// task (Avalanche's `TaskAwareAccuracy`; FACIL/Mammoth's task-aware numbers when the model
/// uses the task labels, e.g. a multi-head model).
///
/// Counts and loss sums stay on the device; they are read back once per epoch, experience and
/// stream (and once per iteration only for the minibatch and running values).
#[derive(Debug)]
pub struct AccuracyMetrics {
    accuracy: Granularity,
    loss: Granularity,
    running_accuracy: bool,
    running_loss: bool,
    trained_experiences: bool,
    task_aware: bool,
    minibatch: AccuracyLossSums,
    epoch: AccuracyLossSums,
    experience: AccuracyLossSums,
    stream: AccuracyLossSums,
    trained: TaskCounts,
    last_trained: usize,
}

impl AccuracyMetrics {
    /// Accuracy and loss at the given granularities.
    pub fn new(accuracy: Granularity, loss: Granularity) -> Self {
        Self {
            accuracy,
            loss,
            running_accuracy: false,
            running_loss: false,
            trained_experiences: false,
            task_aware: false,
            minibatch: AccuracyLossSums::default(),
            epoch: AccuracyLossSums::default(),
            experience: AccuracyLossSums::default(),
            stream: AccuracyLossSums::default(),
            trained: TaskCounts::default(),
            last_trained: 0,
        }
    }

    /// Accuracy only.
    pub fn accuracy(granularity: Granularity) -> Self {
        Self::new(granularity, Granularity::NONE)
    }

    /// Loss only.
    pub fn loss(granularity: Granularity) -> Self {
        Self::new(Granularity::NONE, granularity)
    }

    /// Also emits the running epoch values every iteration (`Top1_RunningAcc_Epoch` if accuracy
    /// is on at any granularity, `RunningLoss_Epoch` if loss is).
    pub fn running_epoch(mut self) -> Self {
        self.running_accuracy = self.accuracy.any();
        self.running_loss = self.loss.any();
        if !self.running_accuracy && !self.running_loss {
            self.running_accuracy = true;
        }
        self
    }

    /// Also emits `Accuracy_On_Trained_Experiences` after each evaluation: the accuracy over
    /// the evaluated experiences whose index is not above the last trained one.
    pub fn trained_experiences(mut self) -> Self {
        self.trained_experiences = true;
        self
    }

    /// One value per task label instead of the pooled value.
    pub fn task_aware(mut self) -> Self {
        self.task_aware = true;
        self
    }

    fn wants_epoch(&self) -> bool {
        self.accuracy.epoch || self.loss.epoch || self.running_accuracy || self.running_loss
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
        let values: Vec<(Option<u32>, TaskValues)> = if self.task_aware {
            sums.read().into_iter().map(|(t, v)| (Some(t), v)).collect()
        } else {
            sums.read_pooled().map(|v| (ctx.task(), v)).into_iter().collect()
        };
        for (task, v) in values {
            let name = |metric: &str| match (self.task_aware, task) {
                (true, Some(t)) => ctx.name_with_task(metric, t, add_exp),
                _ => ctx.name(metric, true, add_exp),
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
                if self.accuracy.minibatch || self.loss.minibatch {
                    self.minibatch.reset();
                    self.minibatch.update_hits(batch, hits, loss);
                    let names = (pick(self.accuracy.minibatch, "Top1_Acc_MB"), pick(self.loss.minibatch, "Loss_MB"));
                    self.emit(&self.minibatch, names, false, ctx, out);
                }
                if self.running_accuracy || self.running_loss {
                    let names = (
                        pick(self.running_accuracy, "Top1_RunningAcc_Epoch"),
                        pick(self.running_loss, "RunningLoss_Epoch"),
                    );
                    self.emit(&self.epoch, names, false, ctx, out);
                }
            }
            Callback::AfterTrainingEpoch => {
                let names = (pick(self.accuracy.epoch, "Top1_Acc_Epoch"), pick(self.loss.epoch, "Loss_Epoch"));
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
                if self.accuracy.experience || self.loss.experience {
                    self.experience.update_hits(batch, hits.clone(), loss);
                }
                if self.accuracy.stream || self.loss.stream {
                    self.stream.update_hits(batch, hits.clone(), loss);
                }
                if self.trained_experiences && ctx.experience_id().unwrap_or(0) <= self.last_trained {
                    self.trained.update(batch, hits);
                }
            }
            Callback::AfterEvalExp => {
                let names = (pick(self.accuracy.experience, "Top1_Acc_Exp"), pick(self.loss.experience, "Loss_Exp"));
                if names.0.is_some() || names.1.is_some() {
                    self.emit(&self.experience, names, true, ctx, out);
                }
            }
            Callback::AfterEval => {
                let names = (pick(self.accuracy.stream, "Top1_Acc_Stream"), pick(self.loss.stream, "Loss_Stream"));
                if names.0.is_some() || names.1.is_some() {
                    // As Avalanche, named with the last evaluated experience's task.
                    self.emit(&self.stream, names, false, ctx, out);
                }
                if self.trained_experiences {
                    let name = "Accuracy_On_Trained_Experiences";
                    if self.task_aware {
                        for (t, v) in self.trained.read() {
                            out.scalar(ctx.name_with_task(name, t, false), v);
                        }
                    } else if let Some(v) = self.trained.read_pooled() {
                        out.scalar(ctx.name(name, true, false), v);
                    }
                }
            }
            _ => {}
        }
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
    /// Top-`k` accuracy at the given granularities; `k` must be at least 1.
    pub fn new(k: usize, granularity: Granularity) -> crate::error::Result<Self> {
        if k == 0 {
            return Err(crate::error::ClError::config("k", "top-k accuracy needs k >= 1"));
        }
        Ok(Self {
            k,
            granularity,
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
        let hits = above.sum_dim(1).reshape([n]).lower_elem(self.k as i64).int();
        Some(if out_of_range { hits * batch.y.clone().lower_elem(c as i64).int() } else { hits })
    }

    fn emit(&self, counts: &TaskCounts, level: &str, add_exp: bool, ctx: &MetricContext<'_>, out: &mut MetricOutput) {
        let name = format!("Topk_{}_Acc_{level}", self.k);
        let values: BTreeMap<u32, f64> = counts.read();
        for (t, v) in values {
            out.scalar(ctx.name_with_task(&name, t, add_exp), v);
        }
    }
}

impl Metric for TopkAccuracy {
    fn name(&self) -> String {
        format!("Top{}Accuracy", self.k)
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
