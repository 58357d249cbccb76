//! Loggers: what the [`EvaluationPlugin`](crate::EvaluationPlugin) hands every emitted value
//! to — CSV files as Avalanche writes them, JSON lines, text, progress bars, TensorBoard events.

mod csv;
mod interactive;
mod jsonl;
mod tensorboard;
mod text;

use std::io;

use cl_core::{Callback, Clock};

use crate::value::MetricValue;

pub use self::csv::CsvLogger;
pub use interactive::InteractiveLogger;
pub use jsonl::{JsonLinesLogger, read_json_lines};
pub use tensorboard::{TbEvent, TensorBoardLogger, read_events};
pub use text::TextLogger;

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
/// use cl_metrics::{EvaluationPlugin, Granularity, LogEvent, Logger};
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
}

/// Python's `f"{v:.4f}"` (Avalanche's `_val_to_str` for floats).
pub(crate) fn fmt4(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{v:.4}")
    }
}
