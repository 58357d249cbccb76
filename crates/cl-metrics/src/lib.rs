//! # cl-metrics
//!
//! Metrics of continual learning: the [`EvaluationPlugin`] evaluator (top-1 accuracy and loss
//! per minibatch, epoch, experience and stream, named as Avalanche names them, accumulated on the
//! device), the [`AccuracyMatrix`] with forgetting and backward transfer, and metric names.

#![warn(missing_docs)]

mod accumulator;
mod evaluation;
mod matrix;
pub mod names;

pub use accumulator::{AccuracyLossSums, TaskValues};
pub use evaluation::{EvaluationPlugin, Granularity, MetricValue};
pub use matrix::AccuracyMatrix;
