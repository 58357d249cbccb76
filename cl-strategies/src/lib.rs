//! # cl-strategies
//!
//! Named continual-learning strategies built on the `cl-core` template: [`Naive`] (default
//! steps), [`Cumulative`] (overrides the training dataset adaptation only), [`JointTraining`]
//! (one training on the union), and Naive plus a plugin: [`Replay`], [`GDumb`],
//! [`FromScratchTraining`]. Each returns a
//! [`StrategyBuilder`](cl_core::StrategyBuilder) preset with the default evaluator.

#![warn(missing_docs)]

mod cumulative;
mod joint;
mod naive;
mod rehearsal;

pub use cumulative::{Cumulative, CumulativeSteps};
pub use joint::{JointTraining, union_experience};
pub use naive::Naive;
pub use rehearsal::{FromScratchTraining, GDumb, Replay};
mod distillation;
pub use distillation::{AGem, Lwf};
mod regularization;
pub use regularization::{Ewc, Lfl, Mas, RWalk, SynapticIntelligence};
mod projection;
pub use projection::Gem;
pub use projection::CwrStar;
