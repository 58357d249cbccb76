//! # cl-plugins
//!
//! Plugins for the `cl-core` strategy template, each configured by a serialisable config with
//! Avalanche's defaults and argument names (`XPlugin::new(XConfig)` validates it once):
//!
//! - rehearsal: [`ReplayPlugin`] ([`ReplayConfig`]), [`GDumbPlugin`] ([`GDumbConfig`]),
//!   [`MirPlugin`] and [`GssGreedyPlugin`] ([`GssGreedyConfig`]), over
//!   the replay memories of [`storage`] (storage policies, chosen in a file with
//!   [`storage::StoragePolicyConfig`]);
//! - training control: [`EarlyStoppingPlugin`], [`LrSchedulerPlugin`] (PyTorch's schedules,
//!   [`SchedulerConfig`]) and [`FromScratchPlugin`];
//! - checkpoints: [`CheckpointPlugin`] ([`CheckpointConfig`]) saves the whole run into a run
//!   directory after every N experiences, to resume with
//!   `StrategyBuilder::resume_latest(dir)`;
//! - regularisation, distillation, gradient projection and weight consolidation (EWC, SI, MAS,
//!   RWalk in [`regularization`]; [`LwfPlugin`], [`LflPlugin`], [`GemPlugin`], [`AGemPlugin`],
//!   [`CwrStarPlugin`]).
//!
//! [`PluginConfig`] names any plugin with its configuration (serialisable), for plugins chosen
//! at run time.
//!
//! Plugins that do not keep a model are not generic over it (`ReplayPlugin::new(config)?` needs
//! no annotation); every plugin is reachable after `build` as its own type with
//! `strategy.plugin::<P>()`.
//!
//! Every plugin saves its state into checkpoints ([`Plugin::save_state`](cl_core::Plugin::save_state)
//! / `load_state`): memories as datasets, accumulated tensors exactly, frozen models as Burn
//! records, random generators at their exact position, counters; and checks on load that the
//! checkpoint was written with its configuration
//! ([`ClError::CheckpointMismatch`](cl_core::ClError::CheckpointMismatch) otherwise).

#![warn(missing_docs)]

mod checkpoint;
mod config;
mod gdumb;
mod gss;
mod mir;
pub mod persist;
mod replay;
pub mod storage;
mod training;

pub use checkpoint::{CheckpointConfig, CheckpointPlugin, CheckpointUnit};
pub use config::PluginConfig;
pub use gdumb::{GDumbConfig, GDumbPlugin};
pub use gss::{GssGreedyConfig, GssGreedyPlugin, ScoringGradient};
pub use mir::{MirConfig, MirPlugin};
pub use replay::{ReplayConfig, ReplayPlugin};
pub use training::{
    CustomSchedule, EarlyStoppingConfig, EarlyStoppingMode, EarlyStoppingPlugin, FnSchedule, FromScratchConfig,
    FromScratchPlugin, LrSchedule, LrSchedulerConfig, LrSchedulerPlugin, SchedulerConfig, StepGranularity,
};

// Regularisation, distillation, projection and consolidation plugins (issue 12 port).
mod agem;
mod cwr_star;
mod gem;
mod lfl;
mod lwf;
mod mode;
pub mod regularization;
mod weights;
pub use agem::{AGemConfig, AGemPlugin};
pub use cwr_star::{CwrStarConfig, CwrStarPlugin};
pub use gem::{GemConfig, GemPlugin, gem_project, gem_project_with_ridge};
pub use lfl::{LflConfig, LflPlugin};
pub use lwf::{LwfConfig, LwfPlugin};
pub use mode::ModeAfterPass;
pub use weights::ExperienceWeight;
