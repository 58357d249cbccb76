//! [`Cumulative`]: trains on the union of all experiences seen so far.

use burn::tensor::Device;
use cl_core::checkpoint::StateDict;
use cl_core::config::Validate;
use cl_core::data::ClassificationDataset;
use cl_core::{ClError, Model, OptimizerSpec, Result, StrategyBuilder, StrategyState, TemplateSteps, step_defaults};
use serde::{Deserialize, Serialize};

/// The steps of [`Cumulative`]: only the training dataset adaptation differs from the default.
#[derive(Debug, Default, Clone)]
pub struct CumulativeSteps {
    dataset: Option<ClassificationDataset>,
}

impl CumulativeSteps {
    /// The union of the experiences trained on so far.
    pub fn dataset(&self) -> Option<&ClassificationDataset> {
        self.dataset.as_ref()
    }
}

impl<M: Model> TemplateSteps<M> for CumulativeSteps {
    /// Appends the experience's data to the union (a view: O(number of experiences), no copy)
    /// and trains on the union.
    fn train_dataset_adaptation(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        step_defaults::train_dataset_adaptation(state)?;
        let current = state.adapted_dataset.take().ok_or(ClError::MissingState("adapted_dataset"))?;
        let union = match &self.dataset {
            Some(previous) => previous.concat(&current)?,
            None => current,
        };
        self.dataset = Some(union.clone());
        state.adapted_dataset = Some(union);
        Ok(())
    }

    /// Saves the union of the experiences trained on so far (its samples, labels and
    /// transforms, in order: the resumed run draws the same batches from it), or that there is
    /// none yet.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("has_dataset", &self.dataset.is_some())?;
        if let Some(union) = &self.dataset {
            out.put_dataset("dataset", union)?;
        }
        Ok(())
    }

    fn load_state(&mut self, state: &StateDict, _strategy: &StrategyState<M>) -> Result<()> {
        self.dataset = match state.get::<bool>("has_dataset")? {
            true => Some(state.dataset("dataset")?),
            false => None,
        };
        Ok(())
    }
}

/// The configuration of [`Cumulative`]: no hyper-parameter of its own (see
/// [`NaiveConfig`](crate::NaiveConfig)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CumulativeConfig {}

impl Validate for CumulativeConfig {
    /// No rule: there is nothing to check.
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// Cumulative training (Avalanche's `Cumulative`): at each experience the model trains on the
/// data of every experience so far. An upper bound for rehearsal, at growing cost.
///
/// It is the default template with one step overridden ([`CumulativeSteps`]), so it has the
/// same type as every other strategy (`Strategy<M>`); the union is reachable after build with
/// `strategy.steps_as::<CumulativeSteps>()`.
pub struct Cumulative;

impl Cumulative {
    /// A builder with the cumulative steps and the default evaluator.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: CumulativeConfig,
    ) -> Result<StrategyBuilder<M>> {
        config.validate()?;
        Ok(StrategyBuilder::new(model, optimizer, device).steps(CumulativeSteps::default()))
    }
}
