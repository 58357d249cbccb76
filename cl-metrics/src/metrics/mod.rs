//! The metric families of this crate, each at the granularities Avalanche offers and named as
//! Avalanche names them (accuracy, loss and top-k accuracy are in `cl_core::evaluation`).

mod classes;
mod confusion;
mod model;
mod resources;
mod timing;
mod transfer;

pub use classes::{Amca, AmcaConfig, AmcaStreams, ClassAccuracy, ClassAccuracyConfig};
pub use confusion::{ConfusionMatrixConfig, ConfusionMatrixMetric};
pub use model::{MacConfig, MacCounter, MacMetric, ModelSize};
pub use resources::{CpuUsage, CpuUsageConfig, MaxRam, MaxRamConfig};
pub use timing::{Timing, TimingConfig};
pub use transfer::{AccuracyMatrixMetric, Forgetting, ForwardTransfer, TransferConfig};
