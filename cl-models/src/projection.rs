//! [`ProjectionHead`]: the training head of supervised contrastive replay (Avalanche's
//! `SCRModel.train_classifier` on the L2-normalised features), and [`ScrMlp`], the
//! [`SimpleMlp`](crate::SimpleMlp) trunk with it.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use cl_core::data::MiniBatch;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::headed::{Head, HeadedModel};
use crate::simple_mlp::{MlpTrunk, seeded_linear};

/// `x / max(‖x‖₂, 1e-12)` per row (torch's `F.normalize(x, p=2, dim=1)`), with torch's
/// gradient at a zero row: the norm is `sqrt(max(Σx², 1e-24))`, whose gradient is 0 there (a
/// plain `sqrt` then `clamp_min` gives `0 · ∞ = NaN` — an all-zero ReLU row would poison the
/// whole step).
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).clamp_min(1e-24).sqrt();
    x.div(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn l2_normalize_values_and_a_finite_gradient_at_a_zero_row() {
        let device = Device::flex().autodiff();
        let x = Tensor::<2>::from_data(TensorData::new(vec![3.0f32, 4.0, 0.0, 0.0], [2, 2]), &device).require_grad();
        let y = l2_normalize(x.clone());
        assert_eq!(y.clone().into_data().try_to_vec::<f32>().unwrap(), [0.6, 0.8, 0.0, 0.0]);
        let grads = y.sum().backward();
        let g = x.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap();
        assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
        // torch's F.normalize there: x / eps, so 1 / eps (the norm's own gradient is 0).
        assert_eq!(&g[2..], &[1e12, 1e12]);
    }
}

/// The projection network of supervised contrastive replay (Mai et al., 2021), the
/// `projection` of Avalanche's `SCRModel(feature_extractor, projection)`: L2-normalised features
/// → `Linear(features, hidden)` → ReLU → `Linear(hidden, output)` (SupContrast's `mlp` head).
/// Its outputs are embeddings, not class scores: [`num_outputs`](Head::num_outputs) is `None`,
/// and a strategy evaluates such a model with a nearest-class-mean classifier on the features
/// (`cl_strategies::Scr`).
#[derive(Module, Debug)]
pub struct ProjectionHead {
    /// The hidden layer.
    pub hidden: Linear,
    /// The output layer.
    pub output: Linear,
}

impl ProjectionHead {
    /// A head from `input` features through `hidden` units to `output` values, weights drawn
    /// from `seed` (PyTorch's `nn.Linear` initialisation).
    pub fn new(input: usize, hidden: usize, output: usize, seed: u64, device: &Device) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Self {
            hidden: seeded_linear(input, hidden, &mut rng, device),
            output: seeded_linear(hidden, output, &mut rng, device),
        }
    }

    /// Width of the embeddings.
    pub fn output_size(&self) -> usize {
        self.output.weight.dims()[1]
    }
}

impl Head for ProjectionHead {
    fn forward(&self, features: Tensor<2>, _batch: &MiniBatch) -> Tensor<2> {
        self.output.forward(relu(self.hidden.forward(l2_normalize(features))))
    }

    /// Embeddings, not classes.
    fn num_outputs(&self) -> Option<usize> {
        None
    }
}

/// Avalanche's `SCRModel` with `SimpleMLP`'s hidden layers as the feature extractor and a
/// [`ProjectionHead`]: trained by `cl_strategies::Scr` (contrastive loss on the projections,
/// nearest class mean on the features at evaluation); built by
/// [`SimpleMlpConfig::init_scr`](crate::SimpleMlpConfig::init_scr).
#[doc(alias = "SCRModel")]
pub type ScrMlp = HeadedModel<MlpTrunk, ProjectionHead>;
