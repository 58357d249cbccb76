//! Contiguous sample storage shared (by `Arc`) between dataset views.

use crate::error::{ClError, Result};

/// The inputs of a dataset as one contiguous, row-major buffer.
///
/// `U8` buffers hold raw pixels (0..=255) and are scaled to `[0, 1]` when a batch is built,
/// like torchvision's `ToTensor`; `F32` buffers are used as they are.
#[derive(Debug, Clone)]
pub enum InputBuffer {
    /// Raw bytes, scaled by 1/255 when batched.
    U8(Vec<u8>),
    /// Floating-point values, batched as they are.
    F32(Vec<f32>),
}

impl InputBuffer {
    fn len(&self) -> usize {
        match self {
            InputBuffer::U8(v) => v.len(),
            InputBuffer::F32(v) => v.len(),
        }
    }
}

/// Samples stored once: inputs, class labels and task labels of `n` samples.
#[derive(Debug)]
pub struct Storage {
    pub(crate) inputs: InputBuffer,
    pub(crate) sample_shape: Vec<usize>,
    pub(crate) sample_len: usize,
    pub(crate) targets: Vec<u32>,
    pub(crate) task_labels: Option<Vec<u32>>,
}

impl Storage {
    /// Checks that the buffers agree with the sample shape and with each other.
    pub(crate) fn new(
        inputs: InputBuffer,
        sample_shape: Vec<usize>,
        targets: Vec<u32>,
        task_labels: Option<Vec<u32>>,
    ) -> Result<Self> {
        let sample_len = super::checked_sample_len(&sample_shape)?;
        if sample_shape.is_empty() || sample_len == 0 {
            return Err(ClError::DatasetLayout(format!(
                "sample shape {sample_shape:?} has no values; give e.g. [1, 28, 28] for MNIST images"
            )));
        }
        if targets.len().checked_mul(sample_len) != Some(inputs.len()) {
            return Err(ClError::DatasetLayout(format!(
                "{} input values for {} targets of {} values each (expected {})",
                inputs.len(),
                targets.len(),
                sample_len,
                targets.len().checked_mul(sample_len).map_or("more than usize::MAX".into(), |n| n.to_string())
            )));
        }
        if let Some(t) = &task_labels
            && t.len() != targets.len()
        {
            return Err(ClError::DatasetLayout(format!("{} task labels for {} targets", t.len(), targets.len())));
        }
        if let InputBuffer::F32(v) = &inputs
            && let Some(i) = v.iter().position(|x| !x.is_finite())
        {
            return Err(ClError::DatasetLayout(format!("input value {i} is not finite ({})", v[i])));
        }
        Ok(Self { inputs, sample_shape, sample_len, targets, task_labels })
    }

    /// Number of samples.
    pub(crate) fn len(&self) -> usize {
        self.targets.len()
    }

    /// Appends sample `i`'s inputs as f32 to `out`.
    #[inline]
    pub(crate) fn push_input(&self, i: usize, out: &mut Vec<f32>) {
        let start = i * self.sample_len;
        let end = start + self.sample_len;
        match &self.inputs {
            InputBuffer::U8(v) => out.extend(v[start..end].iter().map(|&b| b as f32 / 255.0)),
            InputBuffer::F32(v) => out.extend_from_slice(&v[start..end]),
        }
    }
}
