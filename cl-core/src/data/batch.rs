//! [`MiniBatch`]: a batch of samples on a device.

use std::sync::Arc;

use burn::tensor::{Int, Tensor};

/// A mini-batch `(x, y, t)` on a device, with host copies of the labels.
///
/// `x` is `[batch, sample_len]`: each row is a flattened sample of shape
/// [`sample_shape`](Self::sample_shape); models that need images reshape it with
/// [`images`](Self::images).
#[derive(Debug, Clone)]
pub struct MiniBatch {
    /// Inputs, `[batch, sample_len]`, transforms applied.
    pub x: Tensor<2>,
    /// Class labels, `[batch]`.
    pub y: Tensor<1, Int>,
    /// Task labels, `[batch]`.
    pub t: Tensor<1, Int>,
    /// Class labels on the host.
    pub targets: Vec<u32>,
    /// Task labels on the host.
    pub task_labels: Vec<u32>,
    /// Shape of one sample, e.g. `[1, 28, 28]`.
    pub sample_shape: Arc<[usize]>,
}

impl MiniBatch {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The same batch without autodiff (tensors on the inner backend): the input of a frozen
    /// evaluation copy of a model (`Module::valid`), e.g. a teacher in distillation.
    pub fn inner(&self) -> MiniBatch {
        MiniBatch {
            x: self.x.clone().inner(),
            y: self.y.clone().inner(),
            t: self.t.clone().inner(),
            targets: self.targets.clone(),
            task_labels: self.task_labels.clone(),
            sample_shape: self.sample_shape.clone(),
        }
    }

    /// The inputs as `[batch, channels, height, width]` images (sample shape `[C, H, W]`).
    ///
    /// # Panics
    /// If the sample shape is not 3-dimensional.
    pub fn images(&self) -> Tensor<4> {
        let s = &self.sample_shape;
        assert_eq!(s.len(), 3, "sample shape {s:?} is not [C, H, W]");
        self.x.clone().reshape([self.len(), s[0], s[1], s[2]])
    }

    /// The task label shared by every sample, or `None` if the batch mixes tasks.
    pub fn single_task(&self) -> Option<u32> {
        let first = *self.task_labels.first()?;
        self.task_labels.iter().all(|&t| t == first).then_some(first)
    }

    /// The samples of `self` followed by those of `other` (e.g. a memory batch in front of the
    /// current one, as Avalanche's `DER` concatenates them); an error if the sample shapes
    /// differ.
    pub fn concat(&self, other: &MiniBatch) -> crate::Result<MiniBatch> {
        if self.sample_shape != other.sample_shape {
            return Err(crate::ClError::SampleShapeMismatch {
                left: self.sample_shape.to_vec(),
                right: other.sample_shape.to_vec(),
            });
        }
        Ok(MiniBatch {
            x: Tensor::cat(vec![self.x.clone(), other.x.clone()], 0),
            y: Tensor::cat(vec![self.y.clone(), other.y.clone()], 0),
            t: Tensor::cat(vec![self.t.clone(), other.t.clone()], 0),
            targets: [self.targets.as_slice(), other.targets.as_slice()].concat(),
            task_labels: [self.task_labels.as_slice(), other.task_labels.as_slice()].concat(),
            sample_shape: self.sample_shape.clone(),
        })
    }
}
