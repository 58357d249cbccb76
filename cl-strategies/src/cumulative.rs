//! [`Cumulative`]: trains on the union of all experiences seen so far.

use burn::tensor::Device;
use cl_core::strategy::steps::defaults;
use cl_core::{ClassificationDataset, Model, OptimizerSpec, Result, StrategyBuilder, StrategyState, TemplateSteps};
use cl_metrics::EvaluationPlugin;

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
        defaults::train_dataset_adaptation(state)?;
        let current = state
            .adapted_dataset
            .take()
            .ok_or(cl_core::ClError::MissingState("adapted_dataset"))?;
        let union = match &self.dataset {
            Some(previous) => previous.concat(&current)?,
            None => current,
        };
        self.dataset = Some(union.clone());
        state.adapted_dataset = Some(union);
        Ok(())
    }
}

/// Cumulative training (Avalanche's `Cumulative`): at each experience the model trains on the
/// data of every experience so far. An upper bound for rehearsal, at growing cost.
pub struct Cumulative;

impl Cumulative {
    /// A builder with the cumulative steps and the default evaluator.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
    ) -> StrategyBuilder<M, CumulativeSteps> {
        StrategyBuilder::new(model, optimizer, device, CumulativeSteps::default())
            .evaluator(EvaluationPlugin::default())
    }
}
