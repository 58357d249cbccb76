//! # cl-plugins
//!
//! Plugins for the `cl-core` strategy template: rehearsal ([`ReplayPlugin`], [`GDumbPlugin`])
//! over the replay memories of [`storage`] (storage policies), and training control in
//! [`training`] (early stopping, learning-rate schedules, training from scratch).
//! Regularisation and gradient-projection plugins arrive with their issue.

#![warn(missing_docs)]

mod gdumb;
mod replay;
pub mod storage;

pub use storage::{
    ClassBalancedBuffer, ClosestToCenterSelection, ExperienceBalancedBuffer, FeatureExtractor, GroupBy,
    HerdingSelection, ParametricBuffer, RandomSelection, ReservoirSamplingBuffer, SelectionStrategy, StoragePolicy,
};
pub mod training;

pub use gdumb::GDumbPlugin;
pub use replay::ReplayPlugin;
pub use training::*;

mod lwf;
mod agem;
pub use lwf::*;
pub use agem::*;
pub mod regularization;
pub use regularization::*;
mod gem;
pub use gem::*;
mod cwr_star;
pub use cwr_star::*;

mod lfl;
pub use lfl::*;
mod weights;
pub use weights::ExperienceWeight;
