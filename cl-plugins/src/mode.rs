//! [`ModeAfterPass`]: whether a plugin whose Avalanche counterpart calls `model.eval()` inside a
//! callback (and never switches back) leaves the model in evaluation mode, as Avalanche does.

use cl_core::{Model, Result, StrategyState, set_training_flags, set_training_mode};
use serde::{Deserialize, Serialize};

/// The mode the model trains in after a plugin's pass in evaluation mode. Avalanche's LFL
/// (`compute_features`) and RWalk (`_update_grad`) call `model.eval()` and never switch back:
/// the rest of the experience trains in evaluation mode (dropout off, batch normalisation on
/// its running statistics), until the next `train()` call's `model.train()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModeAfterPass {
    /// Avalanche's: from the plugin's first pass in an experience on, the model trains in
    /// evaluation mode; the training flags switched off are switched back on after the
    /// experience (the next experience starts in training mode, as Avalanche's next `train()`).
    #[default]
    Avalanche,
    /// The strategy's training mode is kept throughout (only the plugin's own pass is in
    /// evaluation mode).
    Training,
}

/// The training flags a plugin switched off in the current experience, to switch back on.
#[derive(Debug, Clone, Default)]
pub(crate) struct EvalModeSwitch(Option<Vec<String>>);

impl EvalModeSwitch {
    /// Switches the model to evaluation mode (once per experience) when `mode` is Avalanche's.
    pub(crate) fn enter<M: Model>(&mut self, mode: ModeAfterPass, state: &mut StrategyState<M>) -> Result<()> {
        if mode != ModeAfterPass::Avalanche || self.0.is_some() {
            return Ok(());
        }
        let mut changed = Vec::new();
        state.map_model(|m| {
            let (m, c) = set_training_mode(m, false);
            changed = c;
            m
        })?;
        self.0 = Some(changed);
        Ok(())
    }

    /// Switches back on the flags [`enter`](Self::enter) switched off.
    pub(crate) fn leave<M: Model>(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        match self.0.take() {
            Some(flags) => state.map_model(|m| set_training_flags(m, &flags, true)),
            None => Ok(()),
        }
    }
}
