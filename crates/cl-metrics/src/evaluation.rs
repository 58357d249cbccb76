//! [`EvaluationPlugin`]: accuracy and loss at every granularity, with the full history.

use serde::{Deserialize, Serialize};

use cl_core::{Evaluator, MetricResults, Model, Plugin, Result, StrategyState};

use crate::accumulator::{AccuracyLossSums, TaskValues};
use crate::names::metric_name;

/// Granularities at which a metric is emitted (Avalanche's `accuracy_metrics(minibatch=...,
/// epoch=..., experience=..., stream=...)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Granularity {
    /// Every training iteration (`*_MB`); costs a device → host transfer per iteration.
    pub minibatch: bool,
    /// Every training epoch (`*_Epoch`).
    pub epoch: bool,
    /// Every evaluated experience (`*_Exp`).
    pub experience: bool,
    /// Every evaluated stream (`*_Stream`).
    pub stream: bool,
}

impl Granularity {
    /// Epoch, experience and stream (Avalanche's default evaluator).
    pub const DEFAULT: Self = Self {
        minibatch: false,
        epoch: true,
        experience: true,
        stream: true,
    };
    /// Every granularity.
    pub const ALL: Self = Self {
        minibatch: true,
        epoch: true,
        experience: true,
        stream: true,
    };
    /// None.
    pub const NONE: Self = Self {
        minibatch: false,
        epoch: false,
        experience: false,
        stream: false,
    };
}

/// One emitted metric value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricValue {
    /// Avalanche-style full name.
    pub name: String,
    /// The value.
    pub value: f64,
    /// `clock.train_iterations` when it was emitted (Avalanche's `x_plot`).
    pub x_plot: u64,
}

/// The evaluator: computes top-1 accuracy and loss at the configured granularities, keeps the
/// last value of each (returned by `train`/`eval`) and the full history.
///
/// Counts are accumulated on the device and read back once per epoch/experience, so evaluation
/// costs little beyond the forward pass.
///
/// ```
/// use cl_metrics::{EvaluationPlugin, Granularity};
/// let evaluator = EvaluationPlugin::new(Granularity::DEFAULT, Granularity::DEFAULT);
/// assert!(evaluator.history().is_empty());
/// ```
#[derive(Debug)]
pub struct EvaluationPlugin {
    accuracy: Granularity,
    loss: Granularity,
    last: MetricResults,
    history: Vec<MetricValue>,
    epoch: AccuracyLossSums,
    experience: AccuracyLossSums,
    stream: AccuracyLossSums,
    minibatch: AccuracyLossSums,
}

impl Default for EvaluationPlugin {
    /// Accuracy and loss per epoch, experience and stream (Avalanche's `default_evaluator`,
    /// without its logger).
    fn default() -> Self {
        Self::new(Granularity::DEFAULT, Granularity::DEFAULT)
    }
}

impl EvaluationPlugin {
    /// An evaluator of accuracy and loss at the given granularities.
    pub fn new(accuracy: Granularity, loss: Granularity) -> Self {
        Self {
            accuracy,
            loss,
            last: MetricResults::new(),
            history: Vec::new(),
            epoch: AccuracyLossSums::default(),
            experience: AccuracyLossSums::default(),
            stream: AccuracyLossSums::default(),
            minibatch: AccuracyLossSums::default(),
        }
    }

    /// Every value emitted so far, in order.
    pub fn history(&self) -> &[MetricValue] {
        &self.history
    }

    /// The history as JSON.
    pub fn history_json(&self) -> String {
        serde_json::to_string(&self.history).expect("metric values serialise")
    }

    fn emit(&mut self, name: String, value: f64, x_plot: u64) {
        self.last.insert(name.clone(), value);
        self.history.push(MetricValue { name, value, x_plot });
    }

    #[allow(clippy::too_many_arguments)]
    fn emit_values(
        &mut self,
        which: fn(&Granularity) -> bool,
        level: &str,
        values: Option<TaskValues>,
        training: bool,
        stream: &str,
        task: Option<u32>,
        experience: Option<usize>,
        x: u64,
    ) {
        let Some(v) = values else { return };
        if which(&self.accuracy) {
            let name = metric_name(&format!("Top1_Acc_{level}"), training, stream, task, experience);
            self.emit(name, v.accuracy, x);
        }
        if which(&self.loss) {
            let name = metric_name(&format!("Loss_{level}"), training, stream, task, experience);
            self.emit(name, v.loss, x);
        }
    }

    fn wants(&self, which: fn(&Granularity) -> bool) -> bool {
        which(&self.accuracy) || which(&self.loss)
    }
}

/// The stream name and the task label used in metric names, from the current experience: the
/// experience's task label if it has exactly one, otherwise none (Avalanche's `phase_and_task`).
fn stream_and_task<M: Model>(state: &StrategyState<M>) -> (String, Option<u32>) {
    match &state.experience {
        Some(e) => (
            e.origin_stream.clone(),
            match e.task_labels.as_slice() {
                [t] => Some(*t),
                _ => None,
            },
        ),
        None => ("train".to_string(), None),
    }
}

impl<M: Model> Plugin<M> for EvaluationPlugin {
    fn name(&self) -> String {
        "EvaluationPlugin".into()
    }

    fn before_training_epoch(&mut self, _s: &mut StrategyState<M>) -> Result<()> {
        self.epoch.reset();
        Ok(())
    }

    fn after_training_iteration(&mut self, s: &mut StrategyState<M>) -> Result<()> {
        let (Some(batch), Some(out), Some(loss)) = (&s.mbatch, &s.mb_output, &s.loss) else {
            return Ok(());
        };
        if self.wants(|g| g.epoch) {
            self.epoch.update(batch, out, loss);
        }
        if self.wants(|g| g.minibatch) {
            self.minibatch.reset();
            self.minibatch.update(batch, out, loss);
            let values = self.minibatch.read_pooled();
            let (stream, task) = stream_and_task(s);
            self.emit_values(|g| g.minibatch, "MB", values, true, &stream, task, None, s.clock.train_iterations);
        }
        Ok(())
    }

    fn after_training_epoch(&mut self, s: &mut StrategyState<M>) -> Result<()> {
        if self.wants(|g| g.epoch) {
            let values = self.epoch.read_pooled();
            let (stream, task) = stream_and_task(s);
            self.emit_values(|g| g.epoch, "Epoch", values, true, &stream, task, None, s.clock.train_iterations);
        }
        Ok(())
    }

    fn before_eval(&mut self, _s: &mut StrategyState<M>) -> Result<()> {
        self.stream.reset();
        Ok(())
    }

    fn before_eval_exp(&mut self, _s: &mut StrategyState<M>) -> Result<()> {
        self.experience.reset();
        Ok(())
    }

    fn after_eval_iteration(&mut self, s: &mut StrategyState<M>) -> Result<()> {
        let (Some(batch), Some(out), Some(loss)) = (&s.mbatch, &s.mb_output, &s.loss) else {
            return Ok(());
        };
        if self.wants(|g| g.experience) {
            self.experience.update(batch, out, loss);
        }
        if self.wants(|g| g.stream) {
            self.stream.update(batch, out, loss);
        }
        Ok(())
    }

    fn after_eval_exp(&mut self, s: &mut StrategyState<M>) -> Result<()> {
        if self.wants(|g| g.experience) {
            let values = self.experience.read_pooled();
            let idx = s.current_experience()?.current_experience;
            let (stream, task) = stream_and_task(s);
            self.emit_values(|g| g.experience, "Exp", values, false, &stream, task, Some(idx), s.clock.train_iterations);
        }
        Ok(())
    }

    fn after_eval(&mut self, s: &mut StrategyState<M>) -> Result<()> {
        if self.wants(|g| g.stream) {
            // As Avalanche, the stream value is named with the last evaluated experience's task.
            let values = self.stream.read_pooled();
            let (stream, task) = stream_and_task(s);
            self.emit_values(|g| g.stream, "Stream", values, false, &stream, task, None, s.clock.train_iterations);
        }
        Ok(())
    }
}

impl<M: Model> Evaluator<M> for EvaluationPlugin {
    fn last_metrics(&self) -> MetricResults {
        self.last.clone()
    }
}
