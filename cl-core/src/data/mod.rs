//! The data model: samples `(x, y, t)`, datasets over contiguous storage, transforms, batches and
//! data loaders.

mod batch;
mod dataset;
mod group_loader;
mod image_transforms;
mod loader;
mod replay_loader;
mod storage;
mod transform;

pub use batch::MiniBatch;
pub use dataset::{ClassificationDataset, Sample};
pub use group_loader::{
    GroupBalancedDataLoader, GroupBalancedDataLoaderConfig, TaskBalancedDataLoader, balanced_batch_sizes,
};
pub use image_transforms::{PixelPermutation, RandomCrop, RandomHorizontalFlip, Rotation};
pub use loader::{ClassificationDataLoader, DataLoader, DataLoaderConfig};
pub use replay_loader::{ReplayDataLoader, ReplayDataLoaderConfig};
pub use storage::InputBuffer;
pub use transform::{Normalize, Transform, TransformGroups, TransformMode, TransformSpec};
