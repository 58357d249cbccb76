//! # cl-strategies
//!
//! Named continual-learning strategies built on the `cl-core` template: [`Naive`] (default
//! steps) and [`Cumulative`] (overrides the training dataset adaptation only). Each returns a
//! [`StrategyBuilder`](cl_core::StrategyBuilder) preset with the default evaluator.

#![warn(missing_docs)]

mod cumulative;
mod naive;

pub use cumulative::{Cumulative, CumulativeSteps};
pub use naive::Naive;
