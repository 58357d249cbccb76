//! The data model: samples `(x, y, t)`, datasets over contiguous storage, transforms, batches and
//! data loaders.

mod batch;
mod dataset;
mod loader;
mod storage;
mod transform;

pub use batch::MiniBatch;
pub use dataset::{ClassificationDataset, Sample};
pub use loader::{ClassificationDataLoader, DataLoader, DataLoaderConfig};
pub use storage::InputBuffer;
pub use transform::{Normalize, Transform, TransformGroups, TransformMode};
