//! # cl-core
//!
//! The core of `cl`, a continual-learning library on Burn: the data model (samples `(x, y, t)`,
//! datasets over contiguous storage, transforms, data loaders), experiences and streams, and the
//! strategy template — Avalanche's training/evaluation loop with a plugin callback at every
//! point, whose steps can be overridden without copying the loop.
//!
//! Every type works with every Burn backend: the backend is picked at run time by the
//! [`Device`](burn::tensor::Device) given to the strategy.

#![warn(missing_docs)]

pub mod criterion;
pub mod data;
pub mod error;
pub mod model;
pub mod optim;
pub mod scenario;
pub mod strategy;

pub use criterion::{Criterion, CrossEntropyLoss};
pub use data::{ClassificationDataset, DataLoader, MiniBatch};
pub use error::{ClError, Result};
pub use model::{Adaptation, DynamicModule, Model};
pub use optim::OptimizerSpec;
pub use scenario::{Benchmark, Experience, Stream};
pub use strategy::{
    AsExperiences, PevalMode, Callback, Clock, DefaultSteps, StatePart, Evaluator, MetricResults, NoMetrics, Plugin, Strategy,
    StrategyBuilder, StrategyState, TemplateSteps,
};

/// Re-export of the Burn version this crate is built against.
pub use burn;
