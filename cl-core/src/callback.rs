//! What the loop emits: its [`Callback`] points and the evaluator's [`MetricResults`].
//!
//! A leaf module: the clock, the plugins, the evaluator and the loop all depend on it, it on
//! none of them. The list of callbacks is written once, in the `for_each_callback!` macro, and expanded
//! into the `Callback` enum here and into the `Plugin` trait's methods in `plugin.rs`.

use std::collections::BTreeMap;

/// Metric name → last value, with Avalanche's names
/// (`Top1_Acc_Stream/eval_phase/test_stream/Task000`, ...).
pub type MetricResults = BTreeMap<String, f64>;

/// Calls `$m! { $(#[doc] method_name => Variant,)* }` with every callback of the loop, in the
/// order of Avalanche's template. The single list of callbacks.
macro_rules! for_each_callback {
    ($m:ident) => {
        $m! {
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
    };
}

pub(crate) use for_each_callback;

macro_rules! callback_enum {
    ($( $(#[$doc:meta])* $name:ident => $variant:ident ),* $(,)?) => {
        /// Every point of the loop where plugins are called, in Avalanche's names.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
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
    };
}

for_each_callback!(callback_enum);

impl Callback {
    /// Whether the callback belongs to the training loop (`before_training` ... `after_training`),
    /// as opposed to evaluation.
    pub fn is_training(self) -> bool {
        self < Callback::BeforeEval
    }
}
