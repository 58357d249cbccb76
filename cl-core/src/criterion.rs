//! Loss functions used as the strategy's criterion.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

/// An error ([`ClError::LabelOutOfRange`](crate::ClError::LabelOutOfRange)) if a label has no
/// output unit among `outputs`: what every loss over gathered logits checks first, instead of an
/// out-of-bounds gather deep in a tensor op.
pub fn check_labels(labels: &[u32], outputs: usize) -> crate::Result<()> {
    match labels.iter().find(|&&y| y as usize >= outputs) {
        Some(&label) => Err(crate::ClError::LabelOutOfRange { label, outputs }),
        None => Ok(()),
    }
}

/// A loss over logits and class targets, returning a scalar tensor (`[1]`).
pub trait Criterion: Send + Sync {
    /// The loss of `logits` (`[batch, classes]`) against `targets` (`[batch]`).
    fn loss(&self, logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1>;

    /// A name for result files and messages (default: the type's name).
    fn name(&self) -> &'static str {
        crate::config::short_type_name::<Self>()
    }
}

/// Mean cross-entropy, as `torch.nn.CrossEntropyLoss()`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CrossEntropyLoss;

impl Criterion for CrossEntropyLoss {
    fn loss(&self, logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        let [n, _] = logits.dims();
        log_softmax(logits, 1).gather(1, targets.reshape([n, 1])).mean().neg()
    }
}
