//! Evaluation: the [`EvaluationPlugin`] (Avalanche's evaluator) and what it is made of — the
//! [`Metric`] trait and the [`MetricContext`] metrics read, typed [`MetricValue`]s and their
//! [`MetricName`]s (one type that writes and reads every name), the [`Logger`] trait, the
//! [`AccuracyMatrix`] (built by hand or from a history), and Avalanche's default metrics
//! ([`AccuracyMetrics`]: accuracy and loss, and [`TopkAccuracy`]), which every strategy gets
//! unless it is given another evaluator. The other metric families, the loggers and the
//! serialisable evaluation configuration are in `cl-metrics`.
//!
//! This module depends on the data model and the loop's [`Callback`]s and [`Clock`], not on the
//! strategy: the strategy module connects it to the loop.
//!
//! [`Callback`]: crate::Callback
//! [`Clock`]: crate::Clock

mod accumulator;
mod accuracy;
mod inspect;
mod logger;
mod matrix;
mod metric;
mod names;
mod plugin;
mod value;

use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::data::MiniBatch;

pub use accumulator::{AccuracyLossSums, TaskCounts, TaskValues};
pub use accuracy::{AccuracyConfig, AccuracyMetrics, TopkAccuracy, TopkConfig};
pub use inspect::{LayerInfo, LayerKind, ModelInspect, conv2d_macs, linear_macs};
pub use logger::{LogEvent, Logger};
pub use matrix::{AccuracyMatrix, IndexOutOfRange, TooLarge};
pub use metric::{Metric, MetricContext, MetricOutput};
pub use names::{MetricName, MetricNameError, Phase};
pub use plugin::EvaluationPlugin;
pub use value::{MetricData, MetricValue};

/// Granularities at which a metric is emitted (Avalanche's `accuracy_metrics(minibatch=...,
/// epoch=..., experience=..., stream=...)`).
///
/// In a configuration file a missing field is `false`, as Avalanche's arguments:
/// `{ epoch = true }` is the epoch only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Granularity {
    /// Every training iteration (`*_MB`); costs a device → host transfer per iteration.
    #[serde(default)]
    pub minibatch: bool,
    /// Every training epoch (`*_Epoch`).
    #[serde(default)]
    pub epoch: bool,
    /// Every evaluated experience (`*_Exp`).
    #[serde(default)]
    pub experience: bool,
    /// Every evaluated stream (`*_Stream`).
    #[serde(default)]
    pub stream: bool,
}

impl Granularity {
    /// Epoch, experience and stream (Avalanche's default evaluator).
    pub const DEFAULT: Self = Self { minibatch: false, epoch: true, experience: true, stream: true };
    /// Every granularity.
    pub const ALL: Self = Self { minibatch: true, epoch: true, experience: true, stream: true };
    /// None.
    pub const NONE: Self = Self { minibatch: false, epoch: false, experience: false, stream: false };

    /// Whether any granularity is on.
    pub fn any(&self) -> bool {
        self.minibatch || self.epoch || self.experience || self.stream
    }
}

/// Width of a one-hot encoding of `batch`'s labels next to a model with `outputs` logits: the
/// number of outputs, or more when a label is not below it (read from the host labels, no
/// device sync).
pub fn label_width(batch: &MiniBatch, outputs: usize) -> usize {
    let max_label = batch.targets.iter().max().map_or(0, |&m| m as usize + 1);
    outputs.max(max_label).max(1)
}

/// `[n, width]` one-hot rows of the labels `y` (`[n]`), built on the device by comparing with
/// `arange(width)` (no host read, unlike `Tensor::one_hot`); a label not below `width` gives a
/// zero row.
pub fn one_hot(y: Tensor<1, Int>, n: usize, width: usize) -> Tensor<2> {
    let device = y.device();
    let classes = Tensor::<1, Int>::arange(0..width as i64, (&device, y.dtype()));
    y.reshape([n, 1]).expand([n, width]).equal(classes.reshape([1, width]).expand([n, width])).float()
}

/// `t` (`[rows, cols]`) padded with zero columns to `cols` (and zero rows to `rows`) on the device.
pub fn pad(t: Tensor<2>, rows: usize, cols: usize) -> Tensor<2> {
    let [r, c] = t.dims();
    let device = t.device();
    let t = if c < cols { Tensor::cat(vec![t, Tensor::zeros([r, cols - c], &device)], 1) } else { t };
    if r < rows { Tensor::cat(vec![t, Tensor::zeros([rows - r, cols.max(c)], &device)], 0) } else { t }
}
