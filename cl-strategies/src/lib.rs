//! # cl-strategies
//!
//! Named continual-learning strategies built on the `cl-core` template. Every strategy has one
//! shape, `X::builder(model, optimizer, device, XConfig) -> Result<StrategyBuilder<M>>`, and
//! builds a [`Strategy<M>`](cl_core::Strategy) with Avalanche's default evaluator (accuracy and
//! loss), so strategies of different kinds share one type:
//!
//! - the template with default or overridden steps: [`Naive`], [`Cumulative`] (overrides the
//!   training dataset adaptation), [`JointTraining`] (overrides which experiences a `train` call
//!   trains on), [`Der`] (DER/DER++: memory rows in each batch, logit matching), [`ErAce`]
//!   (a second forward pass over the memory, asymmetric cross-entropy) and [`ErAml`] (metric
//!   learning of the incoming samples against memory positives and negatives) and [`Scr`] (a
//!   contrastive loss over two views, nearest class mean at evaluation) and [`PackNet`] (masked
//!   forward passes per task, pruning and freezing at epoch and experience boundaries) and [`Bic`]
//!   (held-out split, replay, distillation, a bias layer fitted after each experience) and
//!   [`LaMaml`] (look-ahead steps with learned per-weight rates, first order, in `backward` and
//!   `optimizer_step`) and [`GenerativeReplay`] (generated samples labelled by the previous
//!   solver in each batch; a VAE trained after each experience by a strategy of its own) and
//!   [`Icarl`] (herding exemplars joined to the data, distillation on the old classes, nearest
//!   mean of exemplars at evaluation) and [`StreamingLda`] (no back-propagation: class means and a shared covariance of a frozen
//!   model's features, fitted in the optimizer step's place);
//! - Naive on a particular model: [`PnnStrategy`] (a progressive neural network, a column per
//!   task);
//! - Naive plus the plugin of the same name from `cl-plugins`: [`Replay`], [`GDumb`],
//!   [`Mir`], [`GssGreedy`], [`FromScratchTraining`], [`Ewc`], [`SynapticIntelligence`], [`Mas`], [`RWalk`], [`Lfl`],
//!   [`Lwf`], [`AGem`], [`Gem`], [`CwrStar`].
//!
//! [`StrategyConfig`] names any of them with its configuration (serialisable), for strategies
//! chosen at run time.

#![warn(missing_docs)]

mod ar1;
mod bic;
mod cope;
mod cumulative;
mod der;
mod distillation;
mod er_ace;
mod er_aml;
mod generative_replay;
mod icarl;
mod joint;
mod lamaml;
mod memory;
mod method;
mod naive;
pub mod packnet;
mod pnn;
mod projection;
mod regularization;
mod rehearsal;
mod scr;
mod slda;

pub use ar1::{Ar1, Ar1Config, Ar1Steps, ReplayLabels};
pub use bic::{BiasLayer, Bic, BicConfig, BicDistillation, BicSteps, bic_distillation, fit_bias_layer};
pub use cope::{Cope, CopeConfig, CopeSteps, ppp_loss};
pub use cumulative::{Cumulative, CumulativeConfig, CumulativeSteps};
pub use der::{Der, DerConfig, DerSteps, der_loss};
pub use distillation::{AGem, Lwf};
pub use er_ace::{ErAce, ErAceConfig, ErAceSteps, ace_loss};
pub use er_aml::{ErAml, ErAmlConfig, ErAmlSteps, SupConForm, scale_by_norm, sup_con_loss};
pub use generative_replay::{GenerativeReplay, GenerativeReplayConfig, GenerativeReplaySteps, VaeSteps};
pub use icarl::{Icarl, IcarlConfig, IcarlSteps, TeacherMode, icarl_herding, icarl_loss};
pub use joint::{JointSteps, JointTraining, JointTrainingConfig, union_experience};
pub use lamaml::{LaMaml, LaMamlConfig, LaMamlSteps};
pub use method::StrategyConfig;
pub use naive::{Naive, NaiveConfig};
pub use packnet::{PackNet, PackNetConfig, PackNetSteps, PruneProportion};
pub use pnn::{PnnStrategy, PnnStrategyConfig};
pub use projection::{CwrStar, Gem};
pub use regularization::{Ewc, Lfl, Mas, RWalk, SynapticIntelligence};
pub use rehearsal::{FromScratchTraining, GDumb, GssGreedy, Mir, Replay};
pub use scr::{SCR_BASE_TEMPERATURE, Scr, ScrConfig, ScrSteps, scr_loss};
pub use slda::{LdaWeights, SldaFeatures, SldaStatistics, StreamingLda, StreamingLdaConfig, StreamingLdaSteps};

#[cfg(test)]
mod checkpoint_tests;
#[cfg(test)]
mod tests;
