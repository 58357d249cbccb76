//! The plugin↔state contract: the [`StatePart`]s a plugin declares it changes.
//!
//! A leaf module: the state checks its requests against the calling plugin's declared parts,
//! and the builder rejects two plugins that declare the same exclusive part.

use serde::{Deserialize, Serialize};

/// A part of the strategy state a plugin changes, declared by
/// [`Plugin::writes`](super::Plugin::writes).
///
/// The request methods of [`StrategyState`](super::StrategyState) check the declaration of the
/// plugin calling them (an undeclared change is [`ClError::UndeclaredWrite`]), and the
/// strategy builder rejects two plugins that declare the same *exclusive* part
/// ([`ClError::IncompatiblePlugins`]).
///
/// [`ClError::UndeclaredWrite`]: crate::ClError::UndeclaredWrite
/// [`ClError::IncompatiblePlugins`]: crate::ClError::IncompatiblePlugins
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum StatePart {
    /// The training data: the dataloader or the adapted dataset (Replay, GDumb). Exclusive.
    TrainingData,
    /// The learning rate ([`set_lr`](super::StrategyState::set_lr); schedulers). Exclusive.
    LearningRate,
    /// The model's parameters, changed in place
    /// ([`map_model`](super::StrategyState::map_model); weight consolidation, best-weight restore).
    Model,
    /// The model replaced by another one
    /// ([`replace_model`](super::StrategyState::replace_model); GDumb, training from scratch).
    /// Exclusive: two plugins resetting the model would undo each other.
    ModelReset,
    /// The optimizer's state ([`reset_optimizer`](super::StrategyState::reset_optimizer)).
    Optimizer,
    /// Terms added to the loss ([`add_loss`](super::StrategyState::add_loss); EWC, LwF, ...); any
    /// number of plugins may add terms.
    Loss,
    /// The gradients before the update, changed additively or elementwise (any number).
    Gradients,
    /// The gradients projected onto a constraint set (GEM, A-GEM). Exclusive: a second
    /// projection would break the first one's constraints.
    GradientProjection,
    /// Stopping the epochs of an experience
    /// ([`stop_training`](super::StrategyState::stop_training); early stopping).
    StopTraining,
    /// Asking for a checkpoint of the whole run
    /// ([`request_checkpoint`](super::StrategyState::request_checkpoint); `CheckpointPlugin`).
    /// Exclusive: one plugin decides when and where the run is saved.
    Checkpoint,
}

impl StatePart {
    /// Every part, in declaration order.
    pub const ALL: [StatePart; 10] = [
        StatePart::TrainingData,
        StatePart::LearningRate,
        StatePart::Model,
        StatePart::ModelReset,
        StatePart::Optimizer,
        StatePart::Loss,
        StatePart::Gradients,
        StatePart::GradientProjection,
        StatePart::StopTraining,
        StatePart::Checkpoint,
    ];

    /// Whether two plugins writing this part conflict.
    pub fn is_exclusive(self) -> bool {
        matches!(
            self,
            StatePart::TrainingData
                | StatePart::LearningRate
                | StatePart::ModelReset
                | StatePart::GradientProjection
                | StatePart::Checkpoint
        )
    }

    /// A description for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            StatePart::TrainingData => "the training data (dataloader / adapted dataset)",
            StatePart::LearningRate => "the learning rate",
            StatePart::Model => "the model's parameters",
            StatePart::ModelReset => "the model (replacing it)",
            StatePart::Optimizer => "the optimizer's state",
            StatePart::Loss => "the loss",
            StatePart::Gradients => "the gradients",
            StatePart::GradientProjection => "the gradients (projection onto constraints)",
            StatePart::StopTraining => "the stop-training flag",
            StatePart::Checkpoint => "when the run is checkpointed",
        }
    }

    /// The variant's name, for messages that tell the user what to declare.
    pub fn variant_name(self) -> &'static str {
        match self {
            StatePart::TrainingData => "TrainingData",
            StatePart::LearningRate => "LearningRate",
            StatePart::Model => "Model",
            StatePart::ModelReset => "ModelReset",
            StatePart::Optimizer => "Optimizer",
            StatePart::Loss => "Loss",
            StatePart::Gradients => "Gradients",
            StatePart::GradientProjection => "GradientProjection",
            StatePart::StopTraining => "StopTraining",
            StatePart::Checkpoint => "Checkpoint",
        }
    }
}

/// A set of [`StatePart`]s (a bit set; what one plugin declares).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct PartSet(u16);

impl PartSet {
    /// The empty set.
    pub const EMPTY: PartSet = PartSet(0);

    /// The set of `parts`.
    pub fn of(parts: &[StatePart]) -> Self {
        Self(parts.iter().fold(0, |acc, p| acc | Self::bit(*p)))
    }

    fn bit(part: StatePart) -> u16 {
        1 << (part as u16)
    }

    /// Whether `part` is in the set.
    pub fn contains(self, part: StatePart) -> bool {
        self.0 & Self::bit(part) != 0
    }

    /// The parts in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = StatePart> {
        StatePart::ALL.into_iter().filter(move |p| self.contains(*p))
    }
}
