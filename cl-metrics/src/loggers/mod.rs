//! Loggers: what the evaluator hands every emitted value to — CSV files as Avalanche writes
//! them, JSON lines, text, progress bars, TensorBoard events.

mod csv;
mod file;
mod interactive;
mod jsonl;
mod tensorboard;
mod text;

pub use self::csv::CsvLogger;
pub use interactive::InteractiveLogger;
pub use jsonl::{JsonLines, JsonLinesLogger, read_json_lines};
pub use tensorboard::{TbEvent, TbEvents, TensorBoardLogger, read_events};
pub use text::TextLogger;

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
