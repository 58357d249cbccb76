//! The data model: samples `(x, y, t)`, datasets over contiguous storage, transforms, batches and
//! data loaders.

mod batch;
mod cycling;
mod dataset;
mod group_loader;
mod image_transforms;
mod loader;
mod replay_loader;
mod storage;
mod transform;

pub use batch::MiniBatch;
pub use cycling::CyclingSampler;
pub use dataset::{ClassificationDataset, Sample};
pub use group_loader::{
    GroupBalancedDataLoader, GroupBalancedDataLoaderConfig, TaskBalancedDataLoader, balanced_batch_sizes,
};
pub use image_transforms::{PixelPermutation, RandomCrop, RandomHorizontalFlip, Rotation};
pub use loader::{ClassificationDataLoader, DataLoader, DataLoaderConfig};
pub use replay_loader::{ReplayDataLoader, ReplayDataLoaderConfig};
pub use storage::InputBuffer;
pub use transform::{Normalize, Transform, TransformGroups, TransformMode, TransformSpec};

/// The number of values of a sample of `shape` (the product of its dimensions), or
/// [`ClError::DatasetLayout`](crate::ClError::DatasetLayout) when the product overflows `usize`
/// (a wrapped product would accept a wrong buffer).
pub fn checked_sample_len(shape: &[usize]) -> crate::Result<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).ok_or_else(|| {
        crate::ClError::DatasetLayout(format!(
            "sample shape {shape:?} has more than usize::MAX values: give the real shape (e.g. [1, 28, 28])"
        ))
    })
}
