//! The [`Logger`] trait: what the [`EvaluationPlugin`](super::EvaluationPlugin) hands every
//! emitted value to (`cl-metrics` has the loggers: CSV files as Avalanche writes them, JSON lines,
//! text, progress bars, TensorBoard events).

use std::io;

use crate::callback::Callback;
use crate::checkpoint::StateDict;
use crate::clock::Clock;

use super::value::MetricValue;

/// What a logger receives at every callback: where the loop is, and the values the metrics
/// emitted at this callback (often none).
#[derive(Debug, Clone, Copy)]
pub struct LogEvent<'a> {
    /// The callback.
    pub callback: Callback,
    /// `true` while training, `false` while evaluating.
    pub training: bool,
    /// The loop's counters (before this callback's update).
    pub clock: Clock,
    /// The current experience's index.
    pub experience: Option<usize>,
    /// The current experience's task label, if it has one.
    pub task: Option<u32>,
    /// The current experience's stream (`train`, `test`, ...).
    pub stream: &'a str,
    /// Iterations in the current epoch / evaluated experience, if known (for progress bars).
    pub iterations: Option<usize>,
    /// Epochs per training experience.
    pub train_epochs: usize,
    /// The values emitted at this callback, in emission order.
    pub values: &'a [MetricValue],
}

/// A logger (Avalanche's `BaseLogger`): called after the metrics at every callback.
///
/// ```
/// use cl_core::Callback;
/// use cl_core::evaluation::{EvaluationPlugin, LogEvent, Logger};
///
/// /// Counts the values emitted at the end of evaluated experiences.
/// #[derive(Default)]
/// struct CountExpValues(usize);
/// impl Logger for CountExpValues {
///     fn log(&mut self, event: &LogEvent<'_>) -> std::io::Result<()> {
///         if event.callback == Callback::AfterEvalExp {
///             self.0 += event.values.len();
///         }
///         Ok(())
///     }
/// }
/// let evaluator = EvaluationPlugin::default().logger(CountExpValues::default());
/// # let _ = evaluator;
/// ```
pub trait Logger: Send {
    /// Handles one callback; an error stops the loop (reported as a plugin error).
    fn log(&mut self, event: &LogEvent<'_>) -> io::Result<()>;

    /// Writes out anything buffered (called after `train` and `eval`).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Flushes and saves the logger's position into a checkpoint (e.g. the length of its
    /// file), so that a resumed run continues the log without duplicating or losing records.
    /// A logger with no output to continue (the terminal) returns `Ok(())`. The default
    /// refuses ([`ClError::NotCheckpointable`](crate::ClError::NotCheckpointable)).
    fn save_state(&mut self, _out: &mut StateDict) -> crate::Result<()> {
        Err(crate::ClError::NotCheckpointable {
            component: format!("logger `{}`", crate::config::short_type_name::<Self>()),
            hook: "Logger::save_state and Logger::load_state",
        })
    }

    /// Goes back to the position [`save_state`](Self::save_state) saved (truncating what the
    /// interrupted run wrote after the checkpoint), before anything is logged again.
    fn load_state(&mut self, _state: &StateDict) -> crate::Result<()> {
        Err(crate::ClError::NotCheckpointable {
            component: format!("logger `{}`", crate::config::short_type_name::<Self>()),
            hook: "Logger::save_state and Logger::load_state",
        })
    }
}
