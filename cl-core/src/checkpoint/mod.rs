//! Checkpoint and resume: everything that influences a run's later numbers, saved atomically to
//! one versioned, checksummed file, and loaded back into a strategy built with the same
//! configuration.
//!
//! - [`StateDict`]: what one component saves (Avalanche's `state_dict`): values, tensors,
//!   modules, datasets, random generators. Every stateful component has a save/load hook:
//!   [`Plugin::save_state`](crate::Plugin::save_state), [`Evaluator::save_state`](crate::Evaluator::save_state),
//!   [`TemplateSteps::save_state`](crate::TemplateSteps::save_state),
//!   [`Model::save_extra_state`](crate::Model::save_extra_state), and in the evaluator
//!   [`Metric`](crate::evaluation::Metric) and [`Logger`](crate::evaluation::Logger) hooks. A
//!   component that keeps state and has no hook makes the save fail
//!   ([`ClError::NotCheckpointable`](crate::ClError::NotCheckpointable)), never a partial file.
//!   The one exception is the model: its parameters are always saved (a Burn record), and
//!   `Model::save_extra_state` defaults to saving nothing more, so a model of one's own with
//!   non-parameter state (a random generator behind `Model::seed`, a layout) must implement it.
//! - The file ([`read_checkpoint`], [`read_header`], [`write_atomic`]): magic bytes, format
//!   version, a JSON header (library and Burn versions, the run's identity, the clock, the
//!   payload's SHA-256), the payload. Written to a temporary file, synced and renamed, so a
//!   crash during a save leaves the previous checkpoint intact.
//! - The journal ([`RunCall`]): the top-level `train`/`eval` calls of the run, so a resumed
//!   strategy driven by the same loop skips what was already done.
//!
//! The strategy side is [`Strategy::save_checkpoint`](crate::Strategy::save_checkpoint),
//! [`StrategyBuilder::resume_from`](crate::StrategyBuilder::resume_from) /
//! [`resume_latest`](crate::StrategyBuilder::resume_latest), and checkpoint requests
//! ([`StrategyState::request_checkpoint`](crate::StrategyState::request_checkpoint), made by
//! `cl_plugins::CheckpointPlugin`).

mod file;
mod journal;
mod state_dict;

pub use file::{
    CheckpointHeader, EXTENSION, FORMAT_VERSION, STALL_WRITE_ENV, latest_checkpoint, list_checkpoints, read_checkpoint,
    read_header, write_atomic,
};
pub(crate) use file::{checkpoint_number, encode, numbered_name};
pub(crate) use journal::f64_bits;
pub use journal::{ExperienceKey, RunCall};
pub use state_dict::StateDict;

use std::path::PathBuf;

/// Where and how many checkpoints a run keeps: a request made through
/// [`StrategyState::request_checkpoint`](crate::StrategyState::request_checkpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRequest {
    /// The run directory: checkpoints are `ckpt-000001.clckpt`, `ckpt-000002.clckpt`, ...
    pub dir: PathBuf,
    /// How many checkpoints to keep (the oldest are deleted after a successful save; >= 1).
    pub keep_last: usize,
}

/// What [`Strategy::save_checkpoint`](crate::Strategy::save_checkpoint) wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointInfo {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Seconds spent collecting the state, encoding and writing it.
    pub seconds: f64,
}
