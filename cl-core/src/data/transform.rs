//! Transforms applied per batch, on tensors, with a train and an eval group as in Avalanche.

use std::fmt::Debug;
use std::sync::Arc;

use burn::tensor::{Tensor, TensorData};
use rand_chacha::ChaCha8Rng;

use crate::error::{ClError, Result};

/// A transformation of a batch of inputs.
///
/// `x` is `[batch, sample_len]` (each row a flattened sample of shape `sample_shape`). Random
/// transforms draw from `rng`, which the data loader seeds, so results are reproducible.
pub trait Transform: Send + Sync + Debug {
    /// Checks that the transform applies to samples of `sample_shape` (called when transforms
    /// are attached to a dataset, so that a mismatch is an error there, not a panic later).
    fn check(&self, _sample_shape: &[usize]) -> Result<()> {
        Ok(())
    }

    /// Shape of a sample after the transform (default: unchanged).
    fn output_shape(&self, input: &[usize]) -> Vec<usize> {
        input.to_vec()
    }

    /// Applies the transform to a batch.
    fn apply(&self, x: Tensor<2>, sample_shape: &[usize], rng: &mut ChaCha8Rng) -> Tensor<2>;

    /// The transform as a serialisable [`TransformSpec`], so that datasets holding it (replay
    /// buffers, a cumulative dataset) can be checkpointed. `None` (the default) makes saving such
    /// a dataset fail with [`ClError::NotCheckpointable`] naming the transform.
    fn spec(&self) -> Option<TransformSpec> {
        None
    }
}

/// A built-in transform, as data: what a checkpoint stores of a dataset's transforms.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TransformSpec {
    /// [`Normalize`].
    Normalize {
        /// Per-channel means.
        mean: Vec<f32>,
        /// Per-channel standard deviations.
        std: Vec<f32>,
    },
    /// [`PixelPermutation`](super::PixelPermutation).
    PixelPermutation {
        /// Output position `i` takes input value `permutation[i]`.
        permutation: Vec<usize>,
    },
    /// [`Rotation`](super::Rotation).
    Rotation {
        /// The angle in degrees.
        degrees: f32,
        /// The images' shape `[channels, height, width]`.
        sample_shape: Vec<usize>,
    },
    /// [`RandomCrop`](super::RandomCrop).
    RandomCrop {
        /// Crop height.
        height: usize,
        /// Crop width.
        width: usize,
        /// Zero padding on each side before cropping.
        padding: usize,
    },
    /// [`RandomHorizontalFlip`](super::RandomHorizontalFlip).
    RandomHorizontalFlip {
        /// Probability of flipping a sample.
        p: f64,
    },
}

impl TransformSpec {
    /// The transform.
    pub fn build(&self) -> Result<Arc<dyn Transform>> {
        use super::image_transforms::{PixelPermutation, RandomCrop, RandomHorizontalFlip, Rotation};
        Ok(match self {
            TransformSpec::Normalize { mean, std } => Arc::new(Normalize::new(mean.clone(), std.clone())?),
            TransformSpec::PixelPermutation { permutation } => Arc::new(PixelPermutation::new(permutation.clone())?),
            TransformSpec::Rotation { degrees, sample_shape } => Arc::new(Rotation::new(*degrees, sample_shape)?),
            TransformSpec::RandomCrop { height, width, padding } => {
                Arc::new(RandomCrop::new(*height, *width, *padding)?)
            }
            TransformSpec::RandomHorizontalFlip { p } => Arc::new(RandomHorizontalFlip::new(*p)?),
        })
    }
}

/// Per-channel normalisation `(x - mean) / std`, as torchvision's `Normalize`.
///
/// ```
/// use cl_core::data::Normalize;
/// let fmnist = Normalize::new(vec![0.2860], vec![0.3530]).unwrap();
/// assert_eq!(fmnist.mean(), &[0.2860]);
/// ```
#[derive(Debug, Clone)]
pub struct Normalize {
    mean: Vec<f32>,
    std: Vec<f32>,
}

impl Normalize {
    /// One mean and one standard deviation per channel (the first dimension of the sample shape).
    pub fn new(mean: Vec<f32>, std: Vec<f32>) -> Result<Self> {
        if mean.is_empty() || mean.len() != std.len() {
            return Err(ClError::config(
                "normalize",
                format!("{} means for {} standard deviations", mean.len(), std.len()),
            ));
        }
        if std.iter().any(|s| !(s.is_finite() && *s > 0.0)) || mean.iter().any(|m| !m.is_finite()) {
            return Err(ClError::config("normalize", "means must be finite and standard deviations finite and > 0"));
        }
        Ok(Self { mean, std })
    }

    /// The per-channel means.
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }

    /// The per-channel standard deviations.
    pub fn std(&self) -> &[f32] {
        &self.std
    }
}

impl Transform for Normalize {
    fn check(&self, sample_shape: &[usize]) -> Result<()> {
        let channels = sample_shape.first().copied().unwrap_or(1);
        if self.mean.len() != 1 && self.mean.len() != channels {
            return Err(ClError::config(
                "normalize",
                format!(
                    "{} channel means for samples of shape {sample_shape:?} ({channels} channels)",
                    self.mean.len()
                ),
            ));
        }
        Ok(())
    }

    fn spec(&self) -> Option<TransformSpec> {
        Some(TransformSpec::Normalize { mean: self.mean.clone(), std: self.std.clone() })
    }

    fn apply(&self, x: Tensor<2>, sample_shape: &[usize], _rng: &mut ChaCha8Rng) -> Tensor<2> {
        if self.mean.len() == 1 {
            return x.sub_scalar(self.mean[0]).div_scalar(self.std[0]);
        }
        let [b, len] = x.dims();
        let c = self.mean.len(); // == sample_shape[0], checked when attached
        debug_assert_eq!(sample_shape.first(), Some(&c));
        let device = x.device();
        let mean = Tensor::<3>::from_data(TensorData::new(self.mean.clone(), [1, c, 1]), &device);
        let inv_std: Vec<f32> = self.std.iter().map(|s| 1.0 / s).collect();
        let inv_std = Tensor::<3>::from_data(TensorData::new(inv_std, [1, c, 1]), &device);
        ((x.reshape([b, c, len / c]) - mean) * inv_std).reshape([b, len])
    }
}

/// Which transform group a dataset view applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransformMode {
    /// Training transforms (augmentation included).
    #[default]
    Train,
    /// Evaluation transforms.
    Eval,
}

/// The train and eval transform groups of a dataset (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct TransformGroups {
    /// Applied by the `train()` view.
    pub train: Arc<[Arc<dyn Transform>]>,
    /// Applied by the `eval()` view.
    pub eval: Arc<[Arc<dyn Transform>]>,
}

impl TransformGroups {
    /// Checks each transform against the shape its predecessors produce, and that training and
    /// evaluation produce samples of the same shape (a model sees both).
    pub fn check(&self, sample_shape: &[usize]) -> Result<()> {
        let mut outputs = Vec::with_capacity(2);
        for group in [&self.train, &self.eval] {
            let mut shape = sample_shape.to_vec();
            for t in group.iter() {
                t.check(&shape)?;
                shape = t.output_shape(&shape);
            }
            outputs.push(shape);
        }
        if outputs[0] != outputs[1] {
            return Err(ClError::config(
                "transforms",
                format!(
                    "training transforms give samples of shape {:?} but evaluation transforms {:?}",
                    outputs[0], outputs[1]
                ),
            ));
        }
        Ok(())
    }

    /// Shape of a sample of `sample_shape` after the `mode` group.
    pub fn output_shape(&self, mode: TransformMode, sample_shape: &[usize]) -> Vec<usize> {
        self.group(mode).iter().fold(sample_shape.to_vec(), |shape, t| t.output_shape(&shape))
    }

    /// Whether both groups are the very same transform lists (shared, not just equal).
    pub fn same_as(&self, other: &Self) -> bool {
        let same = |a: &Arc<[Arc<dyn Transform>]>, b: &Arc<[Arc<dyn Transform>]>| {
            Arc::ptr_eq(a, b) || (a.is_empty() && b.is_empty())
        };
        same(&self.train, &other.train) && same(&self.eval, &other.eval)
    }

    /// The same transforms for training and evaluation.
    pub fn same(transforms: Vec<Arc<dyn Transform>>) -> Self {
        let t: Arc<[Arc<dyn Transform>]> = transforms.into();
        Self { train: t.clone(), eval: t }
    }

    /// The group used in `mode`.
    pub fn group(&self, mode: TransformMode) -> &[Arc<dyn Transform>] {
        match mode {
            TransformMode::Train => &self.train,
            TransformMode::Eval => &self.eval,
        }
    }
}
