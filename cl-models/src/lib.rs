//! # cl-models
//!
//! Models for continual learning, backend-agnostic Burn modules implementing
//! [`cl_core::Model`]:
//!
//! - [`SimpleMLP`] and [`SimpleCNN`] with Avalanche's defaults;
//! - [`HeadedModel`]: a [`Backbone`] followed by a [`Head`], to swap output layers;
//! - dynamic heads that follow the stream: [`IncrementalClassifier`] (grows with the classes
//!   seen) and [`MultiHeadClassifier`] (one head per task label), giving [`MTSimpleMLP`] and
//!   [`MTSimpleCNN`]; [`HeadedModel::as_multitask`] is Avalanche's `as_multitask`;
//! - [`NcmClassifier`]: nearest class mean on the features.

#![warn(missing_docs)]

mod dropout;
mod dynamic;
mod headed;
mod ncm;
mod simple_cnn;
mod simple_mlp;

pub use dropout::SeededDropout;
pub use dynamic::{IncrementalClassifier, IncrementalClassifierConfig, MultiHeadClassifier, MultiHeadConfig};
pub use headed::{Backbone, Head, HeadedModel};
pub use ncm::{NcmClassifier, class_means};
pub use simple_cnn::{CNN_FEATURES, CNN_MIN_SIDE, CnnTrunk, MTSimpleCNN, SimpleCNN, SimpleCNNConfig};
pub use simple_mlp::{HiddenLayer, IncrementalMLP, MTSimpleMLP, MlpTrunk, SimpleMLP, SimpleMLPConfig, seeded_linear};
