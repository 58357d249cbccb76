//! The strategy template: Avalanche's training/evaluation loop ([`Strategy`], built by
//! [`StrategyBuilder`]), the state plugins see ([`StrategyState`], read through [`Settings`]
//! and changed through requests checked against [`StatePart`]s), the [`Plugin`] trait, the
//! [`Evaluator`] observer, the overridable [`TemplateSteps`], and the serialisable
//! [`TrainingConfig`].
//!
//! Modules, in dependency order: `contract` (what plugins declare) and `settings` (the run
//! configuration) depend on nothing here; `state` on both; `plugin`, `evaluator` and `steps` on
//! the state; `template` (the loop) on all of them; `builder` on the loop.

mod builder;
mod contract;
mod evaluator;
mod plugin;
mod resume;
mod settings;
mod state;
pub mod steps;
mod template;

pub use builder::StrategyBuilder;
pub use contract::{PartSet, StatePart};
pub use evaluator::{Evaluator, NoMetrics, metric_context};
pub use plugin::{Plugin, dispatch};
pub use settings::{NonFiniteLoss, PeriodicEval, PevalMode, Settings, TrainingConfig, derive_seed};
pub use state::StrategyState;
pub use steps::{DefaultSteps, TemplateSteps};
pub use template::{AsExperiences, Strategy};
