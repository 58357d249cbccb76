//! Dynamic output layers (Avalanche's `DynamicModule`s): they change at model adaptation.

pub(crate) mod incremental;
mod multi_head;

pub use incremental::{IncrementalClassifier, IncrementalClassifierConfig};
pub use multi_head::{MultiHeadClassifier, MultiHeadConfig};
