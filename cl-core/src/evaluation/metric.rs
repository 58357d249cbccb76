//! The [`Metric`] trait and the [`MetricContext`] a metric reads at every callback.

use std::cell::OnceCell;

use crate::callback::Callback;
use crate::checkpoint::StateDict;
use crate::clock::Clock;
use crate::data::MiniBatch;
use crate::error::Result;
use crate::scenario::Experience;
use burn::tensor::{Int, Tensor};

use super::inspect::ModelInspect;
use super::names::{MetricName, Phase};
use super::value::{MetricData, MetricValue};

/// A metric: called at every callback of the loop with a read-only view of the strategy
/// state; it emits values into `out` when it has one to report.
///
/// Accumulate on the device (tensor sums over the batch) and read back once per period, as the
/// built-in metrics do; [`MetricContext::hits`] gives the per-sample top-1 hits, computed once
/// per iteration for all metrics.
///
/// A user-defined metric — the number of evaluated samples per experience:
///
/// ```
/// use cl_core::Callback;
/// use cl_core::evaluation::{EvaluationPlugin, Metric, MetricContext, MetricOutput};
///
/// #[derive(Default)]
/// struct EvalSamples(usize);
///
/// impl Metric for EvalSamples {
///     fn name(&self) -> String { "EvalSamples".into() }
///     fn on(&mut self, ctx: &MetricContext<'_>, out: &mut MetricOutput) {
///         match ctx.callback {
///             Callback::BeforeEvalExp => self.0 = 0,
///             Callback::AfterEvalIteration => self.0 += ctx.batch.map_or(0, |b| b.len()),
///             // `EvalSamples_Exp/eval_phase/test_stream/Task000/Exp000`
///             Callback::AfterEvalExp => out.scalar(ctx.exp_name("EvalSamples_Exp"), self.0 as f64),
///             _ => {}
///         }
///     }
/// }
///
/// let evaluator = EvaluationPlugin::default().metric(EvalSamples::default());
/// assert_eq!(evaluator.metric_names(), ["Accuracy/Loss", "EvalSamples"]);
/// ```
pub trait Metric: Send {
    /// A short name for logs.
    fn name(&self) -> String;

    /// Called at every callback (`ctx.callback` says which), after the strategy's plugins.
    fn on(&mut self, ctx: &MetricContext<'_>, out: &mut MetricOutput);

    /// Saves the metric's accumulators into a checkpoint (running sums, the accuracies a
    /// forgetting metric compares with, ...); a metric without state returns `Ok(())`. The
    /// default refuses ([`ClError::NotCheckpointable`](crate::ClError::NotCheckpointable)), so
    /// a resumed run never reports numbers computed from half its data.
    fn save_state(&self, _out: &mut StateDict) -> Result<()> {
        Err(crate::ClError::NotCheckpointable {
            component: format!("metric `{}`", self.name()),
            hook: "Metric::save_state and Metric::load_state",
        })
    }

    /// Restores what [`save_state`](Self::save_state) saved.
    fn load_state(&mut self, _state: &StateDict) -> Result<()> {
        Err(crate::ClError::NotCheckpointable {
            component: format!("metric `{}`", self.name()),
            hook: "Metric::save_state and Metric::load_state",
        })
    }
}

/// What a metric sees at a callback.
pub struct MetricContext<'a> {
    /// The callback being run.
    pub callback: Callback,
    /// `true` while training, `false` while evaluating (also inside periodic evaluation).
    pub training: bool,
    /// The loop's counters (before this callback's update, as in Avalanche).
    pub clock: Clock,
    /// The experience being trained or evaluated.
    pub experience: Option<&'a Experience>,
    /// The current mini-batch (iteration callbacks).
    pub batch: Option<&'a MiniBatch>,
    /// The model's logits on the batch (after the forward pass).
    pub output: Option<&'a Tensor<2>>,
    /// The batch's loss (after the criterion).
    pub loss: Option<&'a Tensor<1>>,
    /// Structural information on the model (parameters, layers).
    pub model: &'a dyn ModelInspect,
    /// Size of the current experience's (adapted) dataset, if known.
    pub dataset_len: Option<usize>,
    /// Mini-batch size of the current phase (training or evaluation).
    pub mb_size: usize,
    /// Epochs per training experience.
    pub train_epochs: usize,
    hits: OnceCell<Option<Tensor<1, Int>>>,
}

impl<'a> MetricContext<'a> {
    /// A context; `EvaluationPlugin` builds one per callback.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        callback: Callback,
        training: bool,
        clock: Clock,
        experience: Option<&'a Experience>,
        batch: Option<&'a MiniBatch>,
        output: Option<&'a Tensor<2>>,
        loss: Option<&'a Tensor<1>>,
        model: &'a dyn ModelInspect,
    ) -> Self {
        Self {
            callback,
            training,
            clock,
            experience,
            batch,
            output,
            loss,
            model,
            dataset_len: None,
            mb_size: 0,
            train_epochs: 0,
            hits: OnceCell::new(),
        }
    }

    /// The stream of the current experience (`train`, `test`, ...); `train` when none.
    pub fn stream(&self) -> &str {
        self.experience.map_or("train", |e| e.origin_stream.as_str())
    }

    /// The experience's task label if it has exactly one (Avalanche's `phase_and_task`).
    pub fn task(&self) -> Option<u32> {
        match self.experience.map(|e| e.task_labels.as_slice()) {
            Some([t]) => Some(*t),
            _ => None,
        }
    }

    /// The current experience's index.
    pub fn experience_id(&self) -> Option<usize> {
        self.experience.map(|e| e.current_experience)
    }

    /// The phase: [`Phase::Train`] while training, [`Phase::Eval`] otherwise.
    pub fn phase(&self) -> Phase {
        Phase::of(self.training)
    }

    /// `metric/phase/stream`, without task or experience (stream forgetting, the confusion
    /// matrix).
    pub fn stream_name(&self, metric: &str) -> MetricName {
        MetricName::new(metric, self.phase(), self.stream())
    }

    /// `metric/phase/stream[/TaskTTT]`, with the experience's task label when it has exactly one
    /// (Avalanche's `get_metric_name` with `add_experience=False`): epoch and stream values.
    pub fn task_name(&self, metric: &str) -> MetricName {
        MetricName { task: self.task(), ..self.stream_name(metric) }
    }

    /// `metric/phase/stream[/TaskTTT]/ExpEEE` (Avalanche's `get_metric_name` with
    /// `add_experience=True`): values of one experience.
    pub fn exp_name(&self, metric: &str) -> MetricName {
        MetricName { experience: self.experience_id(), ..self.task_name(metric) }
    }

    /// Per-sample top-1 hits (`argmax(logits) == y` as 0/1, never on a row with a NaN or infinite
    /// logit) of the current batch, on the device,
    /// computed once per callback and shared by all metrics; `None` without batch or output.
    pub fn hits(&self) -> Option<Tensor<1, Int>> {
        self.hits
            .get_or_init(|| {
                let (batch, out) = (self.batch?, self.output?);
                let n = batch.len();
                (n > 0).then(|| super::accumulator::top1_hits(out, &batch.y))
            })
            .clone()
    }
}

/// Where a metric emits its values during a callback.
#[derive(Debug, Default)]
pub struct MetricOutput {
    pub(crate) x_plot: u64,
    pub(crate) values: Vec<MetricValue>,
}

impl MetricOutput {
    /// An output stamping values with `x_plot`.
    pub fn new(x_plot: u64) -> Self {
        Self { x_plot, values: Vec::new() }
    }

    /// Emits a scalar.
    pub fn scalar(&mut self, name: MetricName, value: f64) {
        self.values.push(MetricValue::scalar(name.to_string(), value, self.x_plot));
    }

    /// Emits a value with data (a matrix); `value` is the scalar summary.
    pub fn with_data(&mut self, name: MetricName, value: f64, data: MetricData) {
        self.values.push(MetricValue { name: name.to_string(), value, x_plot: self.x_plot, data: Some(data) });
    }

    /// The values emitted so far.
    pub fn values(&self) -> &[MetricValue] {
        &self.values
    }
}
