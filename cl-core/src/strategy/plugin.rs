//! The [`Plugin`] trait: one callback per point of the training and evaluation loop.

use std::any::Any;

use super::contract::StatePart;
use super::state::StrategyState;
use crate::callback::{Callback, for_each_callback};
use crate::checkpoint::StateDict;
use crate::error::Result;
use crate::model::Model;

macro_rules! plugin_trait {
    ($( $(#[$doc:meta])* $name:ident => $variant:ident ),* $(,)?) => {
        /// A plugin: code run at the points of the loop, with access to the strategy state
        /// through its contract (see [`StrategyState`]).
        ///
        /// Every method defaults to doing nothing; a plugin implements the ones it needs.
        /// Plugins run in the order they were given to the strategy, then the evaluator, then the
        /// clock update (as in Avalanche). A callback may fail with an error, which stops the
        /// loop and is returned by `train`/`eval`.
        ///
        /// A plugin declares in [`writes`](Self::writes) the parts of the state it changes
        /// through requests ([`StatePart`]); the state rejects an undeclared request, and the
        /// builder rejects two plugins that declare the same exclusive part. After `build`, a
        /// plugin is reachable as its own type with `strategy.plugin::<P>()`.
        ///
        /// A plugin that does not need the model's type implements `Plugin<M>` for every `M`:
        ///
        /// ```
        /// use cl_core::{Model, Result};
        /// use cl_core::{Plugin, StrategyState};
        /// /// Counts the training iterations.
        /// #[derive(Default)]
        /// struct CountIterations(u64);
        /// impl<M: Model> Plugin<M> for CountIterations {
        ///     fn after_training_iteration(&mut self, _state: &mut StrategyState<M>) -> Result<()> {
        ///         self.0 += 1;
        ///         Ok(())
        ///     }
        /// }
        /// ```
        pub trait Plugin<M: Model>: Any + Send {
            /// A name for error messages and logs (default: the type's name).
            fn name(&self) -> String {
                crate::config::short_type_name::<Self>().to_string()
            }

            /// The parts of the state this plugin changes through the state's requests (read
            /// once, when the strategy is built).
            fn writes(&self) -> Vec<StatePart> {
                Vec::new()
            }

            /// Saves everything of this plugin that influences later numbers into a checkpoint
            /// (buffers, accumulated tensors, previous models, random generators, counters;
            /// Avalanche's `state_dict`). A stateless plugin returns `Ok(())`.
            ///
            /// The default refuses with [`ClError::NotCheckpointable`](crate::ClError::NotCheckpointable):
            /// a plugin that keeps state and does not implement this makes `save_checkpoint`
            /// fail, rather than write a checkpoint that resumes to other numbers.
            fn save_state(&self, _out: &mut StateDict) -> Result<()> {
                Err(crate::ClError::NotCheckpointable {
                    component: format!("plugin `{}`", self.name()),
                    hook: "Plugin::save_state and Plugin::load_state",
                })
            }

            /// Restores what [`save_state`](Self::save_state) saved, into a plugin built with the
            /// same configuration, when a strategy resumes. `strategy` is the resumed state
            /// (model already loaded, devices): a template for saved modules, the device for
            /// saved tensors.
            fn load_state(&mut self, _state: &StateDict, _strategy: &StrategyState<M>) -> Result<()> {
                Err(crate::ClError::NotCheckpointable {
                    component: format!("plugin `{}`", self.name()),
                    hook: "Plugin::save_state and Plugin::load_state",
                })
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

for_each_callback!(plugin_trait);
