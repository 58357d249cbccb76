//! Regularisation plugins: penalties that keep the parameters important for past experiences
//! close to their past values, and the per-parameter tensors they are built from.
//!
//! - [`EwcPlugin`]: Elastic Weight Consolidation (separate or online), diagonal Fisher
//!   (Avalanche's `EWCPlugin`).
//! - [`SynapticIntelligencePlugin`]: importance from the path integral of the loss
//!   (Avalanche's `SynapticIntelligencePlugin`).
//! - [`MasPlugin`]: Memory Aware Synapses, importance from the output's sensitivity
//!   (Avalanche's `MASPlugin`).
//! - [`RWalkPlugin`]: Riemannian Walk, online Fisher plus normalised path-integral scores
//!   (Avalanche's `RWalkPlugin`).
//!
//! Every penalty weight has Avalanche's meaning: EWC, MAS and RWalk add `λ·Σ Ω·(θ−θ*)²`, SI adds
//! `λ/2·Σ Ω·(θ−θ*)²`, exactly as Avalanche 0.6 writes them, so `EwcConfig::new(0.4)` is
//! `EWCPlugin(ewc_lambda=0.4)`.
//!
//! All of them handle parameters through Burn's module visitors keyed by
//! [`ParamId`](burn::module::ParamId) ([`ParamTensors`]), so they work for any model; their
//! snapshots are detached tensors on the evaluation device.

mod ewc;
mod mas;
mod params;
mod quadratic;
mod rwalk;
mod si;
#[cfg(test)]
pub(crate) mod test_support;

pub use ewc::{EwcConfig, EwcMode, EwcPlugin};
pub use mas::{MasConfig, MasPlugin};
pub use params::{ParamEntry, ParamFilter, ParamTensors, all_params, flat_grads, weighted_sq_distance};
pub use quadratic::QuadraticPenalty;
pub use rwalk::{RWALK_EPS, RWalkConfig, RWalkPlugin};
pub use si::{SynapticIntelligenceConfig, SynapticIntelligencePlugin};

pub(crate) use params::{for_each_param, last_linear_layer};

use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use cl_core::data::{ClassificationDataLoader, DataLoader, DataLoaderConfig, MiniBatch};
use cl_core::{Model, Result, StrategyState};

/// How an importance pass turns a mini-batch gradient into its contribution.
#[derive(Clone, Copy)]
pub(crate) enum GradReduce {
    /// `g²` (EWC's diagonal Fisher).
    Square,
    /// `|g|` (MAS).
    Abs,
}

/// One pass over the current experience's training data (in order, `train_mb_size` batches,
/// on the training device): for each batch, `loss(model, batch)` is backpropagated and the
/// reduced gradient is accumulated; the result is divided by the number of batches, as
/// Avalanche's `compute_importances` / `_get_importance`. Parameters without a gradient
/// contribute zeros. Every forward pass is followed by its backward pass.
pub(crate) fn importance_pass<M: Model>(
    state: &StrategyState<M>,
    model: &M,
    reduce: GradReduce,
    loss: impl Fn(&M, &MiniBatch, &StrategyState<M>) -> Tensor<1>,
) -> Result<ParamTensors> {
    let dataset = state.current_experience()?.dataset.train();
    let settings = state.settings();
    let mut loader = ClassificationDataLoader::new(dataset, DataLoaderConfig::eval(settings.train_mb_size().max(1)))?;
    loader.start_epoch();
    let store = settings.eval_device();
    let mut acc = ParamTensors::zeros_like(model, store, &all_params);
    let mut batches = 0usize;
    while let Some(batch) = loader.next_batch(settings.device()) {
        let batch = batch?;
        let l = loss(model, &batch, state);
        let grads = GradientsParams::from_grads(l.backward(), model);
        for (id, g) in flat_grads(model, &grads) {
            let g = g.inner().to_device(store);
            let g = match reduce {
                GradReduce::Square => g.powi_scalar(2),
                GradReduce::Abs => g.abs(),
            };
            acc.update(id, |a| a + g);
        }
        batches += 1;
    }
    if batches > 0 {
        let n = batches as f64;
        acc = acc.map(|t| t.div_scalar(n));
    }
    Ok(acc)
}

/// A copy of `model` for an importance pass in evaluation mode (dropout off) that still
/// records gradients: `valid()` (plain tensors, flags off), then every float parameter is put
/// back on autodiff and marked as requiring gradients (same parameter ids).
pub(crate) fn eval_mode_autodiff_copy<M: Model>(model: &M) -> M {
    struct Track;
    impl burn::module::ModuleMapper for Track {
        fn map_float<const D: usize>(
            &mut self,
            param: burn::module::Param<Tensor<D>>,
        ) -> burn::module::Param<Tensor<D>> {
            param.map(|t| t.autodiff().require_grad())
        }
    }
    model.valid().map(&mut Track)
}
