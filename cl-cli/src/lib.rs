//! # cl-cli
//!
//! The `cl` command line: runs as data.
//!
//! - `cl run SPEC` — one run from a spec file ([`spec::RunSpec`], TOML or JSON) into a run
//!   directory ([`run`]): resolved spec, `results.json`, metric history, checkpoints, pictures;
//!   an interrupted run resumes from its checkpoints.
//! - `cl sweep GRID` — a grid ([`grid::Grid`]: a base spec and axes) expanded into runs with
//!   stable ids, run by worker processes on this machine ([`sweep::run_local`], `--jobs N`), one
//!   slice of it (`--shard i/N`), or a Slurm array job ([`slurm`]); then aggregated.
//! - `cl aggregate DIR` — mean ± std over seeds per benchmark × strategy ([`aggregate`]).
//! - `cl validate FILE` — checks a spec or grid without running it.
//!
//! Install with `cargo install --path cl-cli` (add `--features tch` for LibTorch devices).

#![warn(missing_docs)]

pub mod aggregate;
pub mod error;
pub mod grid;
pub mod run;
pub mod slurm;
pub mod spec;
pub mod sweep;

pub use error::{CliError, Result};
