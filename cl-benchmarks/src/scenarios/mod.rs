//! Scenario generators over any classification dataset.

pub(crate) mod common;
mod data_incremental;
mod dataset_benchmark;
mod nc;
mod ni;
mod online;
mod validation;

pub use data_incremental::{DataIncrementalConfig, data_incremental_benchmark};
pub use dataset_benchmark::{DatasetBenchmarkConfig, TensorExperience, dataset_benchmark, tensors_benchmark};
pub use nc::{ClassIds, ClassOrder, NcConfig, nc_benchmark, nc_benchmark_multi};
pub(crate) use nc::{per_exp_keys, split_classes, validate_split};
pub use ni::{ExpAssignment, NiConfig, ni_benchmark, ni_exp_assignment};
pub use online::{
    OnlineExperience, OnlineStreamConfig, online_split_seed, split_online_experience, split_online_stream,
};
pub use validation::{
    BenchmarkWithValidation, ValidationSize, ValidationStreamConfig, benchmark_with_validation_stream,
};
