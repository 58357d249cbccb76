//! # cl-benchmarks
//!
//! Datasets, scenario generators and classic continual-learning benchmarks, usable without any
//! strategy: readers for the standard files ([`idx`], [`mnist_files`], [`cifar_files`]), a
//! checked downloader ([`download`]), the class-incremental generator [`nc_benchmark`], and
//! SplitMNIST / SplitFMNIST ([`split_mnist`], [`split_fmnist`]) and SplitCIFAR10 /
//! SplitCIFAR100 ([`split_cifar10`], [`split_cifar100`]).

#![warn(missing_docs)]

pub mod cifar_bin;
pub mod cifar_files;
pub mod classic;
pub mod data_error;
pub mod download;
mod error;
pub mod files;
pub mod idx;
pub mod mnist_files;
pub mod scenarios;

pub use cifar_files::CifarKind;
/// The data model the benchmarks are made of (datasets, loaders, transforms), re-exported so that
/// a training loop needs only this crate.
pub use cl_core::data;
pub use cl_core::{Benchmark, Experience, Result as CoreResult, Stream};
pub use classic::{
    BenchmarkConfig, SplitCifarConfig, SplitConfig, SplitMnistConfig, split_cifar10, split_cifar100, split_fmnist,
    split_mnist,
};
pub use data_error::DataError;
pub use error::BenchmarkError;
pub use mnist_files::MnistKind;
pub use scenarios::{
    BenchmarkWithValidation, ClassIds, ClassOrder, DatasetBenchmarkConfig, NcConfig, NiConfig, OnlineExperience,
    TensorExperience, ValidationSize, benchmark_with_validation_stream, data_incremental_benchmark, dataset_benchmark,
    nc_benchmark, nc_benchmark_multi, ni_benchmark, ni_exp_assignment, split_online_stream, tensors_benchmark,
};
