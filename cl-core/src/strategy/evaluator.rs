//! The [`Evaluator`] trait: the plugin that computes metrics and reports them.

use std::any::Any;
use std::collections::BTreeMap;

use super::plugin::Plugin;
use crate::model::Model;

/// Metric name → last value, with Avalanche's names
/// (`Top1_Acc_Stream/eval_phase/test_stream/Task000`, ...).
pub type MetricResults = BTreeMap<String, f64>;

/// A plugin that computes metrics; `train` and `eval` return its [`last_metrics`](Self::last_metrics).
///
/// `cl-metrics` provides `EvaluationPlugin`; [`NoMetrics`] computes nothing.
pub trait Evaluator<M: Model>: Plugin<M> + Any {
    /// The last value of every metric emitted so far.
    fn last_metrics(&self) -> MetricResults;
}

/// An evaluator that computes nothing (for custom loops that measure on their own).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoMetrics;

impl<M: Model> Plugin<M> for NoMetrics {}

impl<M: Model> Evaluator<M> for NoMetrics {
    fn last_metrics(&self) -> MetricResults {
        MetricResults::new()
    }
}
