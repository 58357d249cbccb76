//! The built-in metrics, each at the granularities Avalanche offers and named as Avalanche
//! names them.

mod accuracy;
mod classes;
mod confusion;
mod model;
mod resources;
mod timing;
mod transfer;

use burn::tensor::{Int, Tensor};
use cl_core::MiniBatch;
use serde::{Deserialize, Serialize};

pub use accuracy::{AccuracyMetrics, TopkAccuracy};
pub use classes::{Amca, ClassAccuracy};
pub use confusion::ConfusionMatrixMetric;
pub use model::{MacMetric, ModelSize};
pub use resources::{CpuUsage, MaxRam};
pub use timing::Timing;
pub use transfer::{AccuracyMatrixMetric, Bwt, Forgetting, ForwardTransfer};

/// Granularities at which a metric is emitted (Avalanche's `accuracy_metrics(minibatch=...,
/// epoch=..., experience=..., stream=...)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Granularity {
    /// Every training iteration (`*_MB`); costs a device → host transfer per iteration.
    pub minibatch: bool,
    /// Every training epoch (`*_Epoch`).
    pub epoch: bool,
    /// Every evaluated experience (`*_Exp`).
    pub experience: bool,
    /// Every evaluated stream (`*_Stream`).
    pub stream: bool,
}

impl Granularity {
    /// Epoch, experience and stream (Avalanche's default evaluator).
    pub const DEFAULT: Self = Self {
        minibatch: false,
        epoch: true,
        experience: true,
        stream: true,
    };
    /// Every granularity.
    pub const ALL: Self = Self {
        minibatch: true,
        epoch: true,
        experience: true,
        stream: true,
    };
    /// None.
    pub const NONE: Self = Self {
        minibatch: false,
        epoch: false,
        experience: false,
        stream: false,
    };

    /// Whether any granularity is on.
    pub fn any(&self) -> bool {
        self.minibatch || self.epoch || self.experience || self.stream
    }
}

/// Width of a one-hot encoding of `batch`'s labels next to a model with `outputs` logits: the
/// number of outputs, or more when a label is not below it (read from the host labels, no
/// device sync).
pub(crate) fn label_width(batch: &MiniBatch, outputs: usize) -> usize {
    let max_label = batch.targets.iter().max().map_or(0, |&m| m as usize + 1);
    outputs.max(max_label).max(1)
}

/// `[n, width]` one-hot rows of the labels `y` (`[n]`), built on the device by comparing with
/// `arange(width)` (no host read, unlike `Tensor::one_hot`); a label not below `width` gives a
/// zero row.
pub(crate) fn one_hot(y: Tensor<1, Int>, n: usize, width: usize) -> Tensor<2> {
    let device = y.device();
    let classes = Tensor::<1, Int>::arange(0..width as i64, (&device, y.dtype()));
    y.reshape([n, 1])
        .expand([n, width])
        .equal(classes.reshape([1, width]).expand([n, width]))
        .float()
}

/// `t` (`[rows, cols]`) padded with zero columns to `cols` (and zero rows to `rows`) on the device.
pub(crate) fn pad(t: Tensor<2>, rows: usize, cols: usize) -> Tensor<2> {
    let [r, c] = t.dims();
    let device = t.device();
    let t = if c < cols { Tensor::cat(vec![t, Tensor::zeros([r, cols - c], &device)], 1) } else { t };
    if r < rows { Tensor::cat(vec![t, Tensor::zeros([rows - r, cols.max(c)], &device)], 0) } else { t }
}
