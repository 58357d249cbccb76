//! # cl — continual learning for Rust on Burn
//!
//! The umbrella crate: re-exports the workspace crates so one dependency gives everything, and
//! picks a default device from the enabled backend feature. Each crate can also be used alone:
//!
//! - [`core`] (`cl-core`): data model, experiences and streams, the strategy template, plugins;
//! - [`benchmarks`] (`cl-benchmarks`): dataset readers, scenario generators, SplitMNIST/SplitFMNIST;
//! - [`strategies`] (`cl-strategies`): `Naive`, `Cumulative`;
//! - [`plugins`] (`cl-plugins`): plugins for the template;
//! - [`metrics`] (`cl-metrics`): the evaluation plugin, its metrics and loggers, the accuracy matrix;
//! - [`models`] (`cl-models`): `SimpleMlp`;
//! - [`report`] (`cl-report`): pictures of results (accuracy-matrix heatmap, accuracy curves,
//!   strategy comparison) as PNG and SVG.
//!
//! [`device`] turns a name (`flex`, `ndarray`, `libtorch-cpu`, `cuda:N`, `mps`) into a Burn
//! device at run time, naming the cargo feature to enable when a backend is not compiled in.

#![warn(missing_docs)]

pub use burn;
pub mod device;
pub use cl_benchmarks as benchmarks;
pub use cl_core as core;
pub use cl_metrics as metrics;
pub use cl_models as models;
pub use cl_plugins as plugins;
pub use cl_report as report;
pub use cl_strategies as strategies;

use burn::tensor::Device;

/// The device of the default backend enabled by this crate's features: `flex` (pure-Rust CPU,
/// the default feature), else LibTorch on the CPU (`tch`), else ndarray.
#[allow(deprecated)] // Burn marks its LibTorch/ndarray device constructors deprecated in 0.22.
pub fn default_device() -> Device {
    #[cfg(feature = "flex")]
    return Device::flex();
    #[cfg(all(not(feature = "flex"), feature = "tch"))]
    return Device::libtorch();
    #[cfg(all(not(feature = "flex"), not(feature = "tch"), feature = "ndarray"))]
    return Device::ndarray();
    #[cfg(not(any(feature = "flex", feature = "tch", feature = "ndarray")))]
    Device::default()
}

/// A short description of the backend of [`default_device`], for result files.
pub fn default_backend_name() -> &'static str {
    if cfg!(feature = "flex") {
        "flex"
    } else if cfg!(feature = "tch") {
        "tch-cpu"
    } else if cfg!(feature = "ndarray") {
        "ndarray"
    } else {
        "burn-default"
    }
}

/// The most used items.
pub mod prelude {
    pub use cl_benchmarks::{BenchmarkError, DataError, NcConfig, SplitMnistConfig, nc_benchmark, split_fmnist, split_mnist};
    pub use cl_core::{
        Benchmark, ClError, ClassificationDataset, Experience, MetricResults, Model, OptimizerSpec, Plugin, Strategy,
        StrategyBuilder, StrategyState, Stream, TemplateSteps,
    };
    pub use cl_metrics::{AccuracyMatrix, EvaluationPlugin, Granularity};
    pub use cl_models::{SimpleMlp, SimpleMlpConfig};
    pub use cl_strategies::{Cumulative, Naive};
}
