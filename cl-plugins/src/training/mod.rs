//! Training-control plugins (Avalanche's `EarlyStoppingPlugin`, `LrSchedulerPlugin` and
//! `FromScratchTrainingPlugin`): they stop the epochs, schedule the learning rate or reset the
//! model, and touch nothing else of the loop.

mod early_stopping;
mod from_scratch;
mod lr_scheduling;

pub use early_stopping::{EarlyStoppingPlugin, Mode, PevalMode};
pub use from_scratch::FromScratchPlugin;
pub use lr_scheduling::{FnSchedule, LrSchedulerPlugin, LrSchedule, StepGranularity};
