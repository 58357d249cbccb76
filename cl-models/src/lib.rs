//! # cl-models
//!
//! Models for continual learning, backend-agnostic Burn modules implementing
//! [`cl_core::Model`]:
//!
//! - [`SimpleMlp`] and [`SimpleCnn`] with Avalanche's defaults;
//! - [`HeadedModel`]: a [`Backbone`] followed by a [`Head`], to swap output layers;
//! - dynamic heads that follow the stream: [`IncrementalClassifier`] (grows with the classes
//!   seen) and [`MultiHeadClassifier`] (one head per task label), giving [`MtSimpleMlp`] and
//!   [`MtSimpleCnn`]; [`HeadedModel::as_multitask`] is Avalanche's `as_multitask`;
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
pub use simple_cnn::{CNN_FEATURES, CNN_MIN_SIDE, CnnTrunk, MtSimpleCnn, SimpleCnn, SimpleCnnConfig};
pub use simple_mlp::{HiddenLayer, IncrementalMlp, MtSimpleMlp, MlpTrunk, SimpleMlp, SimpleMlpConfig, seeded_linear};
