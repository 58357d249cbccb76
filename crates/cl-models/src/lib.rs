//! # cl-models
//!
//! Models for continual learning, backend-agnostic Burn modules implementing
//! [`cl_core::Model`]: [`SimpleMLP`] (Avalanche's defaults).

#![warn(missing_docs)]

mod dropout;
mod simple_mlp;

pub use dropout::SeededDropout;

pub use simple_mlp::{HiddenLayer, SimpleMLP, SimpleMLPConfig, seeded_linear};
