//! # cl-metrics
//!
//! Metrics of continual learning beyond Avalanche's default evaluator, the loggers, and the
//! evaluator as data, as Avalanche computes and names them.
//!
//! The evaluator itself and what it is made of are in `cl_core::evaluation`: the
//! `EvaluationPlugin` (every strategy's default evaluator: accuracy and loss), the `Metric` and
//! `Logger` traits, typed values and names (`MetricValue`, `MetricName`), `AccuracyMetrics` and
//! `TopkAccuracy`, `Granularity` and the `AccuracyMatrix`. This crate adds:
//!
//! - metric families: per-class accuracy ([`ClassAccuracy`]) and AMCA ([`Amca`]), forgetting
//!   and backward transfer ([`Forgetting`]), [`ForwardTransfer`], the accuracy matrix
//!   ([`AccuracyMatrixMetric`]), the confusion matrix ([`ConfusionMatrixMetric`]), [`Timing`],
//!   peak RAM ([`MaxRam`]), [`CpuUsage`], [`ModelSize`] and MACs ([`MacMetric`]); each is built
//!   from its configuration ([`TransferConfig`], [`MacConfig`], ...: Avalanche's arguments,
//!   serialisable, checked by named rules). Counts are accumulated on the device and read back
//!   once per epoch/experience/stream;
//! - loggers: [`CsvLogger`] (Avalanche's files), [`JsonLinesLogger`], [`TextLogger`],
//!   [`InteractiveLogger`] (progress bars), [`TensorBoardLogger`]. The file loggers write every
//!   record whole in one `write` call, so a killed run leaves at most one torn last record, which
//!   [`read_json_lines`] and [`read_events`] skip and report; they do not truncate their files
//!   when built (the first callback of a fresh run does), and a resumed run continues them from
//!   the checkpoint's position, without duplicated or lost records;
//! - checkpoints: every metric and logger saves and restores its state
//!   (`Metric::save_state`/`load_state`, `Logger::save_state`/`load_state`), so a resumed run
//!   emits the values of the uninterrupted one, bit for bit (wall-clock and process
//!   measurements aside);
//! - [`EvaluationConfig`]: a serialisable description of an evaluator — metric families with
//!   their options ([`MetricConfig`]) and loggers with their paths ([`LoggerConfig`]) — that
//!   builds the `EvaluationPlugin`; its default is Avalanche's default evaluator and
//!   [`EvaluationConfig::all`] (= [`all_metrics`]) every family.
//!
//! ```
//! use cl_core::evaluation::EvaluationPlugin;
//! use cl_metrics::{Forgetting, JsonLinesLogger, TransferConfig, all_metrics};
//! // Avalanche's default evaluator plus forgetting, values written as JSON lines.
//! let dir = std::env::temp_dir().join("cl-metrics-doc");
//! let evaluator = EvaluationPlugin::default()
//!     .metric(Forgetting::new(TransferConfig::default()))
//!     .logger(JsonLinesLogger::new(dir.join("metrics.jsonl"))?);
//! assert_eq!(evaluator.metric_names(), ["Accuracy/Loss", "Forgetting"]);
//! assert_eq!(all_metrics().metric_names().len(), 14);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Diagnostics go through `tracing`.

#![warn(missing_docs)]

mod config;
mod loggers;
mod metrics;

#[cfg(test)]
mod tests;

pub use config::{EvaluationConfig, LoggerConfig, MetricConfig, all_metrics};
pub use loggers::{
    CsvLogger, InteractiveLogger, JsonLines, JsonLinesLogger, TbEvent, TbEvents, TensorBoardLogger, TextLogger,
    read_events, read_json_lines,
};
pub use metrics::{
    AccuracyMatrixMetric, Amca, AmcaConfig, AmcaStreams, ClassAccuracy, ClassAccuracyConfig, ConfusionMatrixConfig,
    ConfusionMatrixMetric, CpuUsage, CpuUsageConfig, Forgetting, ForwardTransfer, MacConfig, MacCounter, MacMetric,
    MaxRam, MaxRamConfig, ModelSize, Timing, TimingConfig, TransferConfig,
};
