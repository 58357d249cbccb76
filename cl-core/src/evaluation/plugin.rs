//! [`EvaluationPlugin`]: runs the metrics at every callback, keeps the last value of each and
//! the full history, and hands the values to the loggers.

use crate::callback::{Callback, MetricResults};
use crate::checkpoint::StateDict;
use crate::error::{ClError, Result};

use super::accuracy::{AccuracyConfig, AccuracyMetrics};
use super::logger::{LogEvent, Logger};
use super::metric::{Metric, MetricContext, MetricOutput};
use super::value::MetricValue;

/// The evaluator (Avalanche's `EvaluationPlugin(metrics..., loggers=...)`): receives every
/// callback, runs its [`Metric`]s, keeps the last value of each metric (what `train` and `eval`
/// return) and the full history (every value with its step, [`history`](Self::history),
/// serialisable with serde), and hands each callback's values to its [`Logger`]s.
///
/// `cl-metrics` has the other metric families, the loggers, and `EvaluationConfig`: the
/// serialisable description of an evaluator (metrics with their options, loggers with their
/// paths) that builds one.
///
/// ```
/// use cl_core::evaluation::{AccuracyConfig, AccuracyMetrics, EvaluationPlugin, Granularity, TopkAccuracy, TopkConfig};
/// // Avalanche's default: accuracy and loss per epoch, experience and stream.
/// let evaluator = EvaluationPlugin::default();
/// assert!(evaluator.history().is_empty());
/// // Any set of metrics (and loggers).
/// let evaluator = EvaluationPlugin::empty()
///     .metric(AccuracyMetrics::new(AccuracyConfig::default().with_loss(Granularity::NONE).with_task_aware(true)))
///     .metric(TopkAccuracy::new(TopkConfig::new(5))?);
/// assert_eq!(evaluator.metric_names(), ["Accuracy/Loss", "Top5Accuracy"]);
/// # Ok::<(), cl_core::ClError>(())
/// ```
pub struct EvaluationPlugin {
    metrics: Vec<Box<dyn Metric>>,
    loggers: Vec<Box<dyn Logger>>,
    last: MetricResults,
    history: Vec<MetricValue>,
}

impl std::fmt::Debug for EvaluationPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvaluationPlugin")
            .field("metrics", &self.metric_names())
            .field("loggers", &self.loggers.len())
            .field("history", &self.history.len())
            .finish()
    }
}

impl Default for EvaluationPlugin {
    /// Accuracy and loss per epoch, experience and stream (Avalanche's `default_evaluator`,
    /// without its `InteractiveLogger`): [`AccuracyMetrics`] with [`AccuracyConfig::default`].
    fn default() -> Self {
        Self::empty().metric(AccuracyMetrics::new(AccuracyConfig::default()))
    }
}

impl EvaluationPlugin {
    /// An evaluator with no metric and no logger.
    pub fn empty() -> Self {
        Self { metrics: Vec::new(), loggers: Vec::new(), last: MetricResults::new(), history: Vec::new() }
    }

    /// An evaluator with the given metrics and loggers.
    pub fn with(metrics: Vec<Box<dyn Metric>>, loggers: Vec<Box<dyn Logger>>) -> Self {
        Self { metrics, loggers, ..Self::empty() }
    }

    /// Adds a metric (run after the ones already added).
    pub fn metric(mut self, metric: impl Metric + 'static) -> Self {
        self.metrics.push(Box::new(metric));
        self
    }

    /// Adds a logger.
    pub fn logger(mut self, logger: impl Logger + 'static) -> Self {
        self.loggers.push(Box::new(logger));
        self
    }

    /// The metrics' names, in call order.
    pub fn metric_names(&self) -> Vec<String> {
        self.metrics.iter().map(|m| m.name()).collect()
    }

    /// Every value emitted so far, in order.
    pub fn history(&self) -> &[MetricValue] {
        &self.history
    }

    /// The values of one metric name, in order (e.g. to plot it).
    pub fn values_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a MetricValue> + 'a {
        self.history.iter().filter(move |v| v.name == name)
    }

    /// The last value of every metric.
    pub fn last_values(&self) -> &MetricResults {
        &self.last
    }

    /// The history as JSON (an array of [`MetricValue`]).
    pub fn history_json(&self) -> String {
        serde_json::to_string(&self.history).expect("metric values serialise")
    }

    /// Reads a history written by [`history_json`](Self::history_json).
    pub fn history_from_json(json: &str) -> serde_json::Result<Vec<MetricValue>> {
        serde_json::from_str(json)
    }

    /// Flushes every logger.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.loggers.iter_mut().try_for_each(|l| l.flush())
    }

    /// Runs the metrics and loggers on one callback described by `ctx` — what the plugin does
    /// at every callback of the strategy; public for custom loops and for replaying hand-made
    /// predictions. Returns the values emitted (also appended to the history).
    pub fn process(&mut self, ctx: &MetricContext<'_>) -> Result<&[MetricValue]> {
        let callback = ctx.callback;
        let mut out = MetricOutput::new(ctx.clock.train_iterations);
        for m in self.metrics.iter_mut() {
            m.on(ctx, &mut out);
        }
        for v in &out.values {
            self.last.insert(v.name.clone(), v.value);
        }
        if !self.loggers.is_empty() {
            let event = LogEvent {
                callback,
                training: ctx.training,
                clock: ctx.clock,
                experience: ctx.experience_id(),
                task: ctx.task(),
                stream: ctx.stream(),
                iterations: match (ctx.dataset_len, ctx.mb_size) {
                    (Some(n), mb) if mb > 0 => Some(n.div_ceil(mb)),
                    _ => None,
                },
                train_epochs: ctx.train_epochs,
                values: &out.values,
            };
            let flush = matches!(callback, Callback::AfterTraining | Callback::AfterEval);
            for l in self.loggers.iter_mut() {
                l.log(&event).and_then(|_| if flush { l.flush() } else { Ok(()) }).map_err(|e| ClError::Plugin {
                    plugin: "EvaluationPlugin".into(),
                    callback: callback.name(),
                    message: format!("logger failed: {e}"),
                })?;
            }
        }
        let start = self.history.len();
        self.history.append(&mut out.values);
        Ok(&self.history[start..])
    }
}

impl EvaluationPlugin {
    /// The last value of every metric (what `train` and `eval` return).
    pub fn last_metrics(&self) -> MetricResults {
        self.last.clone()
    }

    /// Saves the history, the last values, every metric's accumulators and every logger's
    /// position (after flushing it) into a checkpoint.
    pub fn save_state(&mut self, out: &mut StateDict) -> Result<()> {
        out.put("metric_names", &self.metric_names())?;
        out.put("history", &self.history)?;
        // Values by their bits: JSON has no NaN or infinity.
        out.put("history_bits", &self.history.iter().map(|v| v.value.to_bits()).collect::<Vec<u64>>())?;
        out.put("last", &crate::checkpoint::f64_bits::to_bits(&self.last))?;
        for (i, m) in self.metrics.iter().enumerate() {
            let mut d = StateDict::new(format!("metric `{}`", m.name()));
            m.save_state(&mut d)?;
            out.put_dict(&format!("metric/{i}"), d);
        }
        out.put("loggers", &self.loggers.len())?;
        for (i, l) in self.loggers.iter_mut().enumerate() {
            let mut d = StateDict::new(format!("logger {i}"));
            l.save_state(&mut d)?;
            out.put_dict(&format!("logger/{i}"), d);
        }
        Ok(())
    }

    /// Restores [`save_state`](Self::save_state)'s state into an evaluator with the same
    /// metrics and loggers; the loggers go back to their saved positions.
    pub fn load_state(&mut self, state: &StateDict) -> Result<()> {
        let names: Vec<String> = state.get("metric_names")?;
        if names != self.metric_names() {
            return Err(ClError::CheckpointMismatch {
                path: Default::default(),
                what: "evaluator's metrics".into(),
                checkpoint: format!("{names:?}"),
                current: format!("{:?}", self.metric_names()),
            });
        }
        let loggers: usize = state.get("loggers")?;
        if loggers != self.loggers.len() {
            return Err(ClError::CheckpointMismatch {
                path: Default::default(),
                what: "evaluator's number of loggers".into(),
                checkpoint: loggers.to_string(),
                current: self.loggers.len().to_string(),
            });
        }
        let mut history: Vec<MetricValue> = state.get("history")?;
        let bits: Vec<u64> = state.get("history_bits")?;
        if bits.len() != history.len() {
            return Err(ClError::CheckpointEntry {
                component: state.component().to_string(),
                key: "history_bits".into(),
                reason: format!("{} values for {} records", bits.len(), history.len()),
            });
        }
        for (v, b) in history.iter_mut().zip(bits) {
            v.value = f64::from_bits(b);
        }
        // Loggers last: they cut their files, which must not happen if anything else fails.
        let last = crate::checkpoint::f64_bits::from_bits(state.get("last")?);
        for (i, m) in self.metrics.iter_mut().enumerate() {
            m.load_state(state.dict(&format!("metric/{i}"))?)?;
        }
        self.history = history;
        self.last = last;
        for (i, l) in self.loggers.iter_mut().enumerate() {
            l.load_state(state.dict(&format!("logger/{i}"))?)?;
        }
        Ok(())
    }
}
