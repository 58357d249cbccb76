//! The [`Evaluator`] trait: a read-only observer of the loop that computes the metrics.

use std::any::Any;

use super::state::StrategyState;
use crate::callback::{Callback, MetricResults};
use crate::error::Result;
use crate::evaluation::{EvaluationPlugin, MetricContext};
use crate::model::Model;

/// The observer that computes metrics (Avalanche's `EvaluationPlugin`): it sees every callback,
/// after the plugins, with a read-only view of the state, and `train`/`eval` return its
/// [`last_metrics`](Self::last_metrics).
///
/// [`EvaluationPlugin`] is the evaluator of every strategy unless the builder is given another;
/// [`NoMetrics`] computes nothing.
pub trait Evaluator<M: Model>: Any + Send {
    /// Observes one callback of the loop.
    fn observe(&mut self, callback: Callback, state: &StrategyState<M>) -> Result<()>;

    /// The last value of every metric emitted so far.
    fn last_metrics(&self) -> MetricResults;
}

/// An evaluator that computes nothing (for custom loops that measure on their own, or to time
/// the loop alone).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoMetrics;

impl<M: Model> Evaluator<M> for NoMetrics {
    fn observe(&mut self, _callback: Callback, _state: &StrategyState<M>) -> Result<()> {
        Ok(())
    }

    fn last_metrics(&self) -> MetricResults {
        MetricResults::new()
    }
}

/// The metric context of one callback, read from the state.
pub fn metric_context<'a, M: Model>(callback: Callback, s: &'a StrategyState<M>) -> MetricContext<'a> {
    let mut ctx = MetricContext::new(
        callback,
        s.is_training(),
        *s.clock(),
        s.experience.as_ref(),
        s.mbatch.as_ref(),
        s.mb_output.as_ref(),
        s.loss.as_ref(),
        s.model(),
    );
    let settings = s.settings();
    ctx.dataset_len = s.adapted_dataset.as_ref().map(|d| d.len());
    ctx.mb_size = if s.is_training() { settings.train_mb_size() } else { settings.eval_mb_size() };
    ctx.train_epochs = settings.train_epochs();
    ctx
}

impl<M: Model> Evaluator<M> for EvaluationPlugin {
    fn observe(&mut self, callback: Callback, state: &StrategyState<M>) -> Result<()> {
        self.process(&metric_context(callback, state)).map(|_| ())
    }

    fn last_metrics(&self) -> MetricResults {
        EvaluationPlugin::last_metrics(self)
    }
}
