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

mod callback;
pub mod checkpoint;
mod clock;
pub mod config;
mod criterion;
pub mod data;
mod error;
pub mod evaluation;
mod model;
mod optim;
mod scenario;
mod strategy;

// One public path per item: the modules above that are private are flattened here; `config`,
// `data` and `evaluation` are reached through their module.
pub use callback::{Callback, MetricResults};
pub use clock::Clock;
pub use criterion::{Criterion, CrossEntropyLoss, check_labels};
pub use error::{ClError, Result};
pub use model::{
    Adaptation, BatchRenormSettings, DynamicModule, LatentReplay, Model, ModelPart, freeze, frozen_parameters,
    set_training_flags, set_training_mode, unfreeze,
};
pub use optim::{AdamSpec, AdamWSpec, OptimizerSpec, SgdSpec};
pub use scenario::{Benchmark, Experience, Stream};
pub use strategy::steps::defaults as step_defaults;
pub use strategy::{
    AsExperiences, DefaultSteps, Evaluator, NoMetrics, NonFiniteLoss, PartSet, PeriodicEval, PevalMode, Plugin,
    Settings, StatePart, Strategy, StrategyBuilder, StrategyState, TemplateSteps, TrainingConfig, derive_seed,
    dispatch, metric_context,
};

/// Re-export of the Burn version this crate is built against.
pub use burn;
