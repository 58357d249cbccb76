//! [`PackNet`]: task-incremental parameter isolation by iterative pruning (Mallya & Lazebnik,
//! "PackNet: Adding Multiple Tasks to a Single Network by Iterative Pruning", CVPR 2018;
//! Avalanche 0.6's `PackNet` strategy, `PackNetPlugin` and `PackNetModel`,
//! `avalanche/models/packnet.py`).
//!
//! One network holds every task. Each experience (task `t`, trained in order) runs
//! `train_epochs` epochs: first on all the weights no earlier task owns; then, at the start of
//! the last `post_prune_epochs` epochs, `prune_proportion` of those weights in each layer, the
//! ones of smallest magnitude, are pruned (hidden, no gradient) and the rest is fine-tuned; after
//! the experience the task's remaining weights are frozen for good and the pruned ones are left
//! to the next task. Biases train on the first task only. Evaluating task `s` uses only the
//! weights of tasks `0..=s` (a task not trained yet sees every weight): the accuracy on a task
//! never changes once it is packed.
//!
//! Module layout: [`masks`] holds which task owns each weight and the masked views of the model;
//! [`steps`] plugs them into the loop (the forward pass, the optimizer reset, pruning at the
//! post-pruning epoch, freezing after the experience).
//!
//! Deliberate differences from Avalanche, none of which changes the numbers:
//! - any model whose trainable parameters are the weights and biases of `Linear`/convolution
//!   layers is packed as it is (Avalanche wraps it in `PackNetModel`); other trainable layers
//!   (normalisation, embeddings) are refused when the strategy is built, as
//!   `PackNetModel.wrap` refuses them, and a classifier that grows with the classes is refused
//!   (its masks would no longer fit); as in Avalanche (which wraps the layers that exist when
//!   `PackNetModel` is built), layers the model adds later — the heads a multi-head classifier
//!   adds for new tasks — are not packed: each trains with its own task only;
//! - `prune_proportion` is one proportion or one per experience (Avalanche also takes a Python
//!   callable, which a serialisable configuration cannot hold);
//! - misuse is a typed error, where Avalanche raises a `StateError` after the fact or trains
//!   nothing: an experience whose task label is not the next task to pack, a batch mixing task
//!   labels, `post_prune_epochs` not below `train_epochs`, training stopped before the
//!   post-pruning epochs.
//!
//! As in Avalanche, the optimizer is rebuilt at each experience (its momentum would move frozen
//! weights), and within an experience the pruned weights keep their values and still follow
//! the momentum built up before pruning (they get no gradient, but SGD's velocity is not
//! reset); they start the next task from there. With weight decay, frozen weights would decay
//! (their gradient is zero, not absent) — Avalanche's behaviour too; keep weight decay at 0.

pub mod masks;
pub mod steps;

use burn::tensor::Device;
use cl_core::config::Validate;
use cl_core::{ClError, Model, OptimizerSpec, Result, StrategyBuilder};
use serde::{Deserialize, Serialize};

pub use masks::{PACKABLE_LAYERS, PRUNED, PackedWeight, TaskIndex};
pub use steps::PackNetSteps;

#[cfg(test)]
mod tests;

/// The proportion of the current task's weights pruned in each layer: one for every
/// experience, or one per experience (Avalanche's `prune_proportion` float or list).
/// Serialised as a number or a list of numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PruneProportion {
    /// The same proportion at every experience.
    Constant(f64),
    /// The proportion of experience `i` is the `i`-th value.
    PerExperience(Vec<f64>),
}

impl PruneProportion {
    /// The proportion for the experience of index `experience` (an error past the list).
    pub fn at(&self, experience: usize) -> Result<f64> {
        match self {
            Self::Constant(p) => Ok(*p),
            Self::PerExperience(list) => list.get(experience).copied().ok_or_else(|| {
                ClError::config(
                    "prune_proportion",
                    format!(
                        "PackNet trains experience {experience} but prune_proportion lists {} proportions: give \
                         one per experience of the stream",
                        list.len()
                    ),
                )
            }),
        }
    }
}

/// The configuration of [`PackNet`]: Avalanche's `PackNet(post_prune_epochs, prune_proportion)`
/// (the plugin's default proportion 0.5; one post-pruning epoch by default).
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_strategies::{PackNetConfig, PruneProportion};
/// let config = PackNetConfig::new(1, PruneProportion::Constant(0.5));
/// assert_eq!(PackNetConfig::from_toml("post_prune_epochs = 1\nprune_proportion = 0.5")?, config);
/// let listed = PackNetConfig::from_toml("prune_proportion = [0.8, 0.5, 0.5]")?;
/// assert_eq!(listed.prune_proportion, PruneProportion::PerExperience(vec![0.8, 0.5, 0.5]));
/// assert!(PackNetConfig::from_toml("prune_proportion = 1.5").is_err());
/// assert!(PackNetConfig::from_toml("post_prune_epochs = 0").is_err());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PackNetConfig {
    /// Epochs of fine-tuning after pruning, at the end of each experience (default 1, at least
    /// 1 and fewer than the strategy's `train_epochs`).
    pub post_prune_epochs: usize,
    /// The proportion of the current task's weights pruned in each layer (default 0.5, each
    /// value in [0, 1]).
    pub prune_proportion: PruneProportion,
}

impl Default for PackNetConfig {
    fn default() -> Self {
        Self::new(1, PruneProportion::Constant(0.5))
    }
}

impl PackNetConfig {
    /// `post_prune_epochs` epochs after pruning `prune_proportion` of each layer.
    pub fn new(post_prune_epochs: usize, prune_proportion: PruneProportion) -> Self {
        Self { post_prune_epochs, prune_proportion }
    }

    /// Sets the post-pruning epochs.
    pub fn with_post_prune_epochs(mut self, epochs: usize) -> Self {
        self.post_prune_epochs = epochs;
        self
    }

    /// Sets the proportion pruned.
    pub fn with_prune_proportion(mut self, proportion: PruneProportion) -> Self {
        self.prune_proportion = proportion;
        self
    }
}

impl Validate for PackNetConfig {
    /// `post_prune_epochs_positive`, `prune_proportion_in_unit_interval`,
    /// `prune_proportion_not_empty` (the rule `post_prune_epochs_below_train_epochs` is checked
    /// when the strategy is built, where `train_epochs` is known).
    fn validate(&self) -> Result<()> {
        if self.post_prune_epochs == 0 {
            return Err(ClError::InvalidConfig {
                config: "PackNetConfig",
                rule: "post_prune_epochs_positive",
                reason: "PackNet fine-tunes the remaining weights after pruning: post_prune_epochs must be at least 1"
                    .into(),
            });
        }
        let values: &[f64] = match &self.prune_proportion {
            PruneProportion::Constant(p) => std::slice::from_ref(p),
            PruneProportion::PerExperience(list) if list.is_empty() => {
                return Err(ClError::InvalidConfig {
                    config: "PackNetConfig",
                    rule: "prune_proportion_not_empty",
                    reason: "give one proportion per experience, or a single number for all".into(),
                });
            }
            PruneProportion::PerExperience(list) => list,
        };
        if let Some(p) = values.iter().find(|p| !(0.0..=1.0).contains(*p)) {
            return Err(ClError::InvalidConfig {
                config: "PackNetConfig",
                rule: "prune_proportion_in_unit_interval",
                reason: format!("a proportion of weights to prune is in [0, 1], got {p}"),
            });
        }
        Ok(())
    }
}

/// PackNet (Avalanche's `PackNet`; see the [module docs](self)): the default template with
/// [`PackNetSteps`]. Task-incremental: the experiences' task labels must be 0, 1, 2, ... in
/// training order, and evaluation routes each batch by its task label. Use it with a fixed-size
/// model of `Linear`/convolution layers (e.g. `SimpleMlp`, as Avalanche's
/// `packnet_simple_mlp`), at least 2 epochs per experience, and no weight decay.
pub struct PackNet;

impl PackNet {
    /// A builder with the PackNet steps and the default evaluator.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: PackNetConfig,
    ) -> Result<StrategyBuilder<M>> {
        config.validate()?;
        Ok(StrategyBuilder::new(model, optimizer, device).steps(PackNetSteps::new(config)))
    }
}
