//! # cl-metrics
//!
//! Metrics of continual learning, as Avalanche computes and names them.
//!
//! - [`EvaluationPlugin`]: the evaluator. It runs a list of [`Metric`]s at every callback,
//!   keeps the last value of each (what `train`/`eval` return) and the full typed history of
//!   [`MetricValue`]s (serde), and hands the values to [`Logger`]s.
//! - Metrics ([`metrics`]): accuracy and loss at every granularity (task-agnostic or
//!   task-aware), top-k and per-class accuracy, AMCA, forgetting, BWT, forward transfer, the
//!   accuracy matrix, the confusion matrix, timing, peak RAM, CPU usage, model size and MACs.
//!   Counts are accumulated on the device and read back once per epoch/experience/stream.
//! - Loggers ([`loggers`]): CSV (Avalanche's files), JSON lines, text, interactive progress
//!   bars, TensorBoard event files.
//! - [`AccuracyMatrix`] with forgetting and backward transfer, and metric [`names`].
//!
//! Diagnostics go through `tracing`.

#![warn(missing_docs)]

mod accumulator;
mod evaluation;
pub mod loggers;
mod matrix;
mod metric;
mod model_info;
pub mod metrics;
pub mod names;
mod value;

pub use accumulator::{AccuracyLossSums, TaskCounts, TaskValues};
pub use evaluation::EvaluationPlugin;
pub use loggers::{
    CsvLogger, InteractiveLogger, JsonLinesLogger, LogEvent, Logger, TbEvent, TensorBoardLogger, TextLogger, read_events,
    read_json_lines,
};
pub use matrix::{AccuracyMatrix, IndexOutOfRange};
pub use metric::{Metric, MetricContext, MetricOutput};
pub use metrics::{
    AccuracyMatrixMetric, AccuracyMetrics, Amca, Bwt, ClassAccuracy, ConfusionMatrixMetric, CpuUsage, Forgetting,
    ForwardTransfer, Granularity, MacMetric, MaxRam, ModelSize, Timing, TopkAccuracy,
};
pub use model_info::{LayerInfo, LayerKind, ModelInspect, conv2d_macs, linear_macs};
pub use value::{MetricData, MetricValue};
