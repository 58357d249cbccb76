//! # cl-report
//!
//! Pictures of continual-learning results, as PNG and SVG (drawn with `plotters`, text in the
//! bundled DejaVu Sans font, so no system library is needed):
//!
//! - from a **metric history** (the JSON array of `{name, value, x_plot}` that
//!   [`EvaluationPlugin`] serialises, or the JSON Lines of `cl-metrics`' logger; names read with
//!   [`MetricName`]): the [`AccuracyMatrix`] as an annotated heatmap ([`render_accuracy_matrix`])
//!   and the per-experience [`AccuracyCurves`] over training iterations
//!   ([`render_accuracy_curves`]); see [`matrix_from_history`] for how eval phases become rows;
//! - from **strategy records** (`target/bench/strategies.json` of `cargo xtask bench`): final
//!   average accuracy and forgetting side by side per strategy, one panel per benchmark
//!   ([`render_strategy_comparison`]).
//!
//! [`render_results_file`] picks the pictures from the file's content.
//!
//! ```no_run
//! use std::path::Path;
//! let written = cl_report::render_results_file(Path::new("history.json"), Path::new("pictures"))?;
//! for p in written {
//!     println!("{} and {}", p.png.display(), p.svg.display());
//! }
//! # Ok::<(), cl_report::ReportError>(())
//! ```
//!
//! It is a separate crate so that users who only need metrics do not build `plotters`.
//!
//! [`EvaluationPlugin`]: cl_core::evaluation::EvaluationPlugin
//! [`MetricName`]: cl_core::evaluation::MetricName
//! [`AccuracyMatrix`]: cl_core::evaluation::AccuracyMatrix

#![warn(missing_docs)]

mod curves;
mod draw;
mod error;
mod font;
mod history;
mod matrix;
mod png;
mod render;
mod strategies;

pub use curves::AccuracyCurves;
pub use draw::Pictures;
pub use error::{ReportError, Result};
pub use history::{MetricRecord, load_history, parse_history};
pub use matrix::matrix_from_history;
pub use render::{
    ResultsKind, detect_kind, render_accuracy_curves, render_accuracy_matrix, render_history_file, render_results_file,
    render_strategies_file, render_strategy_comparison,
};
pub use strategies::{StrategySummary, display_names, group_by_benchmark, load_strategies, parse_strategies};
