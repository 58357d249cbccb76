//! # cl-models
//!
//! Models for continual learning, backend-agnostic Burn modules implementing
//! [`cl_core::Model`]:
//!
//! - [`SimpleMlp`] and [`SimpleCnn`] (Avalanche's `SimpleMLP` and `SimpleCNN`) with Avalanche's
//!   defaults;
//! - [`HeadedModel`]: a [`Backbone`] followed by a [`Head`], to swap output layers;
//! - dynamic heads that follow the stream: [`IncrementalClassifier`] (grows with the classes
//!   seen) and [`MultiHeadClassifier`] (one head per task label), giving [`MtSimpleMlp`] and
//!   [`MtSimpleCnn`] (Avalanche's `MTSimpleMLP` and `MTSimpleCNN`) and [`IncrementalMlp`];
//!   [`HeadedModel::as_multitask`] is Avalanche's `as_multitask`;
//! - [`NcmClassifier`]: nearest class mean on the features (Avalanche's `NCMClassifier`);
//! - [`Pnn`]: a progressive neural network, one column per task with lateral adapters
//!   (Avalanche's `PNN`);
//! - [`Flatten`]: the input itself as features (`torch.nn.Flatten()`), for streaming classifiers
//!   on raw inputs;
//! - [`ScrMlp`]: the `SimpleMlp` trunk with a [`ProjectionHead`] (Avalanche's `SCRModel`), for
//!   supervised contrastive replay.
//!
//! Every model is built from a configuration ([`SimpleMlpConfig`], [`SimpleCnnConfig`],
//! [`IncrementalClassifierConfig`], [`MultiHeadConfig`], [`NcmConfig`]) in `cl`'s config idiom
//! (see [`cl_core::config`]): Avalanche's defaults, `with_*` setters, named validation rules
//! checked once by `init`, JSON and TOML through [`ConfigFile`](cl_core::config::ConfigFile).
//! [`ModelConfig`] names one of the built-in models in a run description.

#![warn(missing_docs)]

mod batch_renorm;
mod dropout;
mod dynamic;
mod flatten;
mod headed;
mod latent_cnn;
mod model_config;
mod ncm;
pub mod passes;
mod pnn;
mod projection;
mod simple_cnn;
mod simple_mlp;
mod vae;

pub use batch_renorm::BatchRenorm2d;
pub use dropout::SeededDropout;
pub use dynamic::{IncrementalClassifier, IncrementalClassifierConfig, MultiHeadClassifier, MultiHeadConfig};
pub use flatten::{Flatten, FlattenConfig};
pub use headed::{Backbone, Head, HeadedModel};
pub use latent_cnn::{ConvBlock, LatentCnn, LatentCnnConfig};
pub use model_config::{ModelConfig, ModelVisitor, ScrMlpConfig};
pub use ncm::{NcmClassifier, NcmConfig, class_means};
pub use pnn::{ColumnPolicy, Pnn, PnnAdapter, PnnColumn, PnnConfig, PnnLayer};
pub use projection::{ProjectionHead, ScrMlp, l2_normalize};
pub use simple_cnn::{CNN_FEATURES, CNN_MIN_SIDE, CnnTrunk, MtSimpleCnn, SimpleCnn, SimpleCnnConfig};
pub use simple_mlp::{HiddenLayer, IncrementalMlp, MlpTrunk, MtSimpleMlp, SimpleMlp, SimpleMlpConfig, seeded_linear};
pub use vae::{MlpVae, MlpVaeConfig, vae_loss};

#[cfg(test)]
mod checkpoint_tests;
#[cfg(test)]
mod tests;
