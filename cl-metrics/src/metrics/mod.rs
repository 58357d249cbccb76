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

/// Helpers for the metrics' checkpoints ([`Metric::save_state`](cl_core::evaluation::Metric)).
///
/// Floats are saved by their bits: JSON has no `NaN` or infinity (serde_json writes `null`),
/// and a resumed run must see exactly the numbers of the interrupted one.
pub(crate) mod state {
    use std::collections::BTreeMap;

    use cl_core::Result;
    use cl_core::checkpoint::StateDict;
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    /// Saves an `f64` exactly.
    pub(crate) fn put_f64(out: &mut StateDict, key: &str, v: f64) -> Result<()> {
        out.put(key, &v.to_bits())
    }

    /// Reads an `f64` saved with [`put_f64`].
    pub(crate) fn f64(state: &StateDict, key: &str) -> Result<f64> {
        Ok(f64::from_bits(state.get(key)?))
    }

    /// Saves an optional `f64` exactly.
    pub(crate) fn put_opt_f64(out: &mut StateDict, key: &str, v: Option<f64>) -> Result<()> {
        out.put(key, &v.map(f64::to_bits))
    }

    /// Reads an optional `f64` saved with [`put_opt_f64`].
    pub(crate) fn opt_f64(state: &StateDict, key: &str) -> Result<Option<f64>> {
        Ok(state.get::<Option<u64>>(key)?.map(f64::from_bits))
    }

    /// Saves a map of `f64`s exactly.
    pub(crate) fn put_f64_map<K: Serialize>(out: &mut StateDict, key: &str, map: &BTreeMap<K, f64>) -> Result<()> {
        let bits: Vec<(&K, u64)> = map.iter().map(|(k, v)| (k, v.to_bits())).collect();
        out.put(key, &bits)
    }

    /// Reads a map saved with [`put_f64_map`].
    pub(crate) fn f64_map<K: DeserializeOwned + Ord>(state: &StateDict, key: &str) -> Result<BTreeMap<K, f64>> {
        let bits: Vec<(K, u64)> = state.get(key)?;
        Ok(bits.into_iter().map(|(k, v)| (k, f64::from_bits(v))).collect())
    }

    /// The bits of `f64`s, for a nested structure of them.
    pub(crate) fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// `f64`s back from [`bits`].
    pub(crate) fn from_bits(v: Vec<u64>) -> Vec<f64> {
        v.into_iter().map(f64::from_bits).collect()
    }
}
