//! The [`Evaluator`] trait: a read-only observer of the loop that computes the metrics.

use std::any::Any;

use super::state::StrategyState;
use crate::callback::{Callback, MetricResults};
use crate::checkpoint::StateDict;
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
    /// A name for checkpoints and messages (default: the type's name); a checkpoint resumes only
    /// into an evaluator of the same name.
    fn name(&self) -> String {
        crate::config::short_type_name::<Self>().to_string()
    }

    /// Observes one callback of the loop.
    fn observe(&mut self, callback: Callback, state: &StrategyState<M>) -> Result<()>;

    /// The last value of every metric emitted so far.
    fn last_metrics(&self) -> MetricResults;

    /// Saves the history, the metrics' accumulators and the loggers' positions into a
    /// checkpoint (flushing the loggers). The default refuses
    /// ([`ClError::NotCheckpointable`](crate::ClError::NotCheckpointable)).
    fn save_state(&mut self, _out: &mut StateDict) -> Result<()> {
        Err(crate::ClError::NotCheckpointable {
            component: format!("evaluator `{}`", crate::config::short_type_name::<Self>()),
            hook: "Evaluator::save_state and Evaluator::load_state",
        })
    }

    /// Restores what [`save_state`](Self::save_state) saved when a strategy resumes (loggers
    /// go back to where the checkpoint was taken, so nothing is logged twice).
    fn load_state(&mut self, _state: &StateDict) -> Result<()> {
        Err(crate::ClError::NotCheckpointable {
            component: format!("evaluator `{}`", crate::config::short_type_name::<Self>()),
            hook: "Evaluator::save_state and Evaluator::load_state",
        })
    }
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

    fn save_state(&mut self, _out: &mut StateDict) -> Result<()> {
        Ok(())
    }

    fn load_state(&mut self, _state: &StateDict) -> Result<()> {
        Ok(())
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

    fn save_state(&mut self, out: &mut StateDict) -> Result<()> {
        EvaluationPlugin::save_state(self, out)
    }

    fn load_state(&mut self, state: &StateDict) -> Result<()> {
        EvaluationPlugin::load_state(self, state)
    }
}
