//! The built-in metrics, each at the granularities Avalanche offers and named as Avalanche
//! names them.

mod accuracy;
mod classes;
mod confusion;
mod model;
mod resources;
mod timing;
mod transfer;

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
