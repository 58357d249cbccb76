//! The [`Plugin`] trait: one callback per point of the training and evaluation loop.

use super::state::StrategyState;

/// A part of the strategy state a plugin may replace or modify, declared by
/// [`Plugin::writes`] so that incompatible combinations are rejected when the strategy is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatePart {
    /// The training data: the dataloader or the adapted dataset (Replay, GDumb). Exclusive.
    TrainingData,
    /// The learning rate (schedulers). Exclusive.
    LearningRate,
    /// The model's parameters (re-initialisation, weight consolidation, best-weight restore).
    Model,
    /// The optimizer or its state.
    Optimizer,
    /// Terms added to the loss (EWC, LwF, ...); any number of plugins may add terms.
    Loss,
    /// The gradients before the update (GEM, A-GEM).
    Gradients,
    /// Stopping the epochs of an experience (early stopping).
    StopTraining,
}

impl StatePart {
    /// Whether two plugins writing this part conflict: only one plugin may own the training
    /// data or the learning rate.
    pub fn is_exclusive(self) -> bool {
        matches!(self, StatePart::TrainingData | StatePart::LearningRate)
    }

    /// A description for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            StatePart::TrainingData => "the training data (dataloader / adapted dataset)",
            StatePart::LearningRate => "the learning rate",
            StatePart::Model => "the model's parameters",
            StatePart::Optimizer => "the optimizer",
            StatePart::Loss => "the loss",
            StatePart::Gradients => "the gradients",
            StatePart::StopTraining => "the stop-training flag",
        }
    }
}
use crate::error::Result;
use crate::model::Model;

macro_rules! callbacks {
    ($( $(#[$doc:meta])* $name:ident => $variant:ident ),* $(,)?) => {
        /// Every point of the loop where plugins are called, in Avalanche's names.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Callback {
            $( $(#[$doc])* $variant, )*
        }

        impl Callback {
            /// Every callback, in declaration order.
            pub const ALL: &'static [Callback] = &[$(Callback::$variant),*];

            /// The callback's name as in Avalanche (`before_training_exp`, ...).
            pub fn name(self) -> &'static str {
                match self { $( Callback::$variant => stringify!($name), )* }
            }
        }

        /// A plugin: code run at the points of the loop, with mutable access to the strategy state.
        ///
        /// Every method defaults to doing nothing; a plugin implements the ones it needs.
        /// Plugins run in the order they were given to the strategy, then the evaluator, then the
        /// clock update (as in Avalanche). A callback may fail with an error, which stops the
        /// loop and is returned by `train`/`eval`.
        ///
        /// Through `state`, a plugin can: add a term to the loss before backward
        /// ([`StrategyState::add_loss`]), read and rewrite gradients between backward and update
        /// ([`StrategyState::grads`]), replace the dataloader or the adapted dataset, read and
        /// modify the model ([`StrategyState::model_mut`]), stop training
        /// ([`StrategyState::stop_training`]) and change the learning rate
        /// ([`StrategyState::lr`]).
        ///
        /// ```
        /// use cl_core::{Model, Plugin, Result, StrategyState};
        /// /// Prints the loss of every iteration.
        /// struct PrintLoss;
        /// impl<M: Model> Plugin<M> for PrintLoss {
        ///     fn after_training_iteration(&mut self, s: &mut StrategyState<M>) -> Result<()> {
        ///         if let Some(loss) = &s.loss { println!("{}", loss.clone().into_scalar::<f32>()); }
        ///         Ok(())
        ///     }
        /// }
        /// ```
        pub trait Plugin<M: Model>: Send {
            /// A name for error messages and logs.
            fn name(&self) -> String {
                std::any::type_name::<Self>().rsplit("::").next().unwrap_or("plugin").to_string()
            }

            /// The parts of the state this plugin replaces; the strategy builder rejects two
            /// plugins that replace the same exclusive part (see [`StatePart::is_exclusive`]).
            fn writes(&self) -> Vec<StatePart> {
                Vec::new()
            }
            $(
                $(#[$doc])*
                fn $name(&mut self, _state: &mut StrategyState<M>) -> Result<()> { Ok(()) }
            )*
        }

        /// Calls `plugin`'s method for `callback`.
        pub fn dispatch<M: Model, P: Plugin<M> + ?Sized>(
            plugin: &mut P,
            callback: Callback,
            state: &mut StrategyState<M>,
        ) -> Result<()> {
            match callback { $( Callback::$variant => plugin.$name(state), )* }
        }
    };
}

callbacks! {
    /// Once at the start of `train`.
    before_training => BeforeTraining,
    /// Before the training dataset of an experience is adapted.
    before_train_dataset_adaptation => BeforeTrainDatasetAdaptation,
    /// After the training dataset of an experience is adapted.
    after_train_dataset_adaptation => AfterTrainDatasetAdaptation,
    /// After the dataloader, model adaptation and optimizer are ready, before the epochs.
    before_training_exp => BeforeTrainingExp,
    /// At the start of each epoch.
    before_training_epoch => BeforeTrainingEpoch,
    /// At the start of each iteration, the batch loaded.
    before_training_iteration => BeforeTrainingIteration,
    /// Before the forward pass.
    before_forward => BeforeForward,
    /// After the forward pass (`mb_output` set).
    after_forward => AfterForward,
    /// Before backward (`loss` set): add loss terms here.
    before_backward => BeforeBackward,
    /// After backward (`grads` set).
    after_backward => AfterBackward,
    /// Before the optimizer update: rewrite gradients here.
    before_update => BeforeUpdate,
    /// After the optimizer update.
    after_update => AfterUpdate,
    /// At the end of each iteration.
    after_training_iteration => AfterTrainingIteration,
    /// At the end of each epoch.
    after_training_epoch => AfterTrainingEpoch,
    /// After the epochs of an experience.
    after_training_exp => AfterTrainingExp,
    /// Once at the end of `train`.
    after_training => AfterTraining,
    /// Once at the start of `eval`.
    before_eval => BeforeEval,
    /// Before the evaluation dataset of an experience is adapted.
    before_eval_dataset_adaptation => BeforeEvalDatasetAdaptation,
    /// After the evaluation dataset of an experience is adapted.
    after_eval_dataset_adaptation => AfterEvalDatasetAdaptation,
    /// Before evaluating an experience (dataloader and model adaptation done).
    before_eval_exp => BeforeEvalExp,
    /// At the start of each evaluation iteration.
    before_eval_iteration => BeforeEvalIteration,
    /// Before the evaluation forward pass.
    before_eval_forward => BeforeEvalForward,
    /// After the evaluation forward pass.
    after_eval_forward => AfterEvalForward,
    /// At the end of each evaluation iteration (`loss` set).
    after_eval_iteration => AfterEvalIteration,
    /// After evaluating an experience.
    after_eval_exp => AfterEvalExp,
    /// Once at the end of `eval`.
    after_eval => AfterEval,
}
