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

/// `x / max(‖x‖₂, 1e-12)` per row (torch's `F.normalize(x, p=2, dim=1)`).
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
    x.div(norm)
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
