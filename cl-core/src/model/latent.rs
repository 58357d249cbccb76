//! [`LatentReplay`]: a model split at a latent layer, for latent replay (AR1).

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::data::MiniBatch;

/// A model split at a *latent layer* into a lower part (Avalanche's `lat_features`) and an upper
/// part (`end_features` and the output layer), as AR1's latent replay needs it (Avalanche's
/// `MobilenetV1(latent_layer_num=...)` and its `forward(x, latent_input, return_lat_acts)`).
/// A model exposes it through [`Model::latent_replay`](crate::Model::latent_replay).
///
/// Latent activations travel flattened, `[batch, latent_size]` (a convolutional model reshapes
/// them back to its feature maps), so a replay buffer of them is one contiguous buffer whatever
/// the layer's shape.
pub trait LatentReplay {
    /// The lower part's activations of a batch, flattened: `[batch, latent_size]`.
    fn latent(&self, batch: &MiniBatch) -> Tensor<2>;

    /// The logits `[batch, num_outputs]` of the upper part on latent activations
    /// `[batch, latent_size]` (as [`latent`](Self::latent) returns them).
    fn forward_from_latent(&self, latent: Tensor<2>) -> Tensor<2>;

    /// The number of values of one sample's latent activations.
    fn latent_size(&self) -> usize;

    /// The paths of the lower part's layers (for [`ModelPart::layers`](crate::ModelPart)):
    /// what AR1 keeps in evaluation mode, and freezes from the second experience on.
    fn lower_layers(&self) -> Vec<String>;

    /// The path of the output layer (a `burn::nn::Linear`), AR1's CWR* layer.
    fn output_layer(&self) -> String;

    /// Sets the settings of every batch-renormalisation layer (Avalanche's
    /// `replace_bn_with_brn` and `change_brn_pars`); `false` when the model has none (nothing
    /// changes).
    fn set_batch_renorm(&self, _settings: &BatchRenormSettings) -> bool {
        false
    }
}

/// The settings of a batch-renormalisation layer (Ioffe 2017; Avalanche's `BatchRenorm2D`):
/// the running statistics' update rate and the clipping limits `r_max`, `d_max` of the
/// correction factors, which grow by `r_d_max_inc_step` per training sample seen while below
/// `max_r_max`, `max_d_max`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BatchRenormSettings {
    /// Update rate of the running mean and standard deviation (Avalanche's `momentum`).
    pub momentum: f64,
    /// Current limit of `r` (clipped to `[1/r_max, r_max]`).
    pub r_max: f64,
    /// Current limit of `d` (clipped to `[-d_max, d_max]`).
    pub d_max: f64,
    /// Growth of `r_max` and `d_max` per training sample while below their maxima.
    pub r_d_max_inc_step: f64,
    /// The value `r_max` grows to.
    pub max_r_max: f64,
    /// The value `d_max` grows to.
    pub max_d_max: f64,
}

impl Default for BatchRenormSettings {
    /// Avalanche's `BatchRenorm2D` defaults: momentum 0.01, `r_max` 1 and `d_max` 0 (plain batch
    /// normalisation at first) growing by 1e-4 per sample to 3 and 5.
    fn default() -> Self {
        Self { momentum: 0.01, r_max: 1.0, d_max: 0.0, r_d_max_inc_step: 1e-4, max_r_max: 3.0, max_d_max: 5.0 }
    }
}
