//! [`JointTraining`]: trains once on the union of all experiences, the upper bound.

use std::borrow::Cow;
use std::collections::BTreeSet;

use burn::tensor::Device;
use cl_core::checkpoint::StateDict;
use cl_core::config::Validate;
use cl_core::{ClError, Experience, Model, OptimizerSpec, Result, StrategyBuilder, StrategyState, TemplateSteps};
use serde::{Deserialize, Serialize};

/// The configuration of [`JointTraining`]: no hyper-parameter of its own (see
/// [`NaiveConfig`](crate::NaiveConfig)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JointTrainingConfig {}

impl Validate for JointTrainingConfig {
    /// No rule: there is nothing to check.
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// The steps of [`JointTraining`]: a `train` call trains on the union of its experiences, once.
#[derive(Debug, Default, Clone)]
pub struct JointSteps {
    trained: bool,
}

impl JointSteps {
    /// Whether the strategy has been trained (a second `train` call is an error).
    pub fn trained(&self) -> bool {
        self.trained
    }
}

impl<M: Model> TemplateSteps<M> for JointSteps {
    fn train_experiences<'a>(&mut self, experiences: &'a [Experience]) -> Result<Cow<'a, [Experience]>> {
        if self.trained {
            return Err(ClError::InvalidUse(
                "JointTraining was already trained: it trains once on the whole stream (Avalanche's \
                 AlreadyTrainedError); build a new strategy to train again"
                    .into(),
            ));
        }
        let union = union_experience(experiences)?;
        self.trained = true;
        Ok(Cow::Owned(vec![union]))
    }

    /// Saves whether the strategy was trained. A checkpoint inside the `train` call is written
    /// after its one (union) experience, so a resume never repeats this call's
    /// `train_experiences` (the loop repeats it only for a call with experiences left); a
    /// resumed strategy trained again is the same error as in the uninterrupted run.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("trained", &self.trained)
    }

    fn load_state(&mut self, state: &StateDict, _strategy: &StrategyState<M>) -> Result<()> {
        self.trained = state.get("trained")?;
        Ok(())
    }
}

/// Joint training (Avalanche's `JointTraining`): one `train` call on all the experiences at once,
/// as a single experience holding their union (an index view, no copy); a second `train` call is
/// an error, as in Avalanche (`AlreadyTrainedError`). Evaluation is per experience as usual.
///
/// It is the default template with one step overridden ([`JointSteps`]), so it has the same type
/// as every other strategy (`Strategy<M>`).
pub struct JointTraining;

impl JointTraining {
    /// A builder with the joint steps and the default evaluator.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: JointTrainingConfig,
    ) -> Result<StrategyBuilder<M>> {
        config.validate()?;
        Ok(StrategyBuilder::new(model, optimizer, device).steps(JointSteps::default()))
    }
}

/// One experience holding the union of `experiences`, with their classes and task labels.
pub fn union_experience(experiences: &[Experience]) -> Result<Experience> {
    let first = experiences.first().ok_or(ClError::NoExperience("JointTraining::train"))?;
    let mut dataset = first.dataset.clone();
    for exp in &experiences[1..] {
        dataset = dataset.concat(&exp.dataset)?;
    }
    let n_classes = experiences.iter().map(|e| e.n_classes).max().unwrap_or(0);
    let mut union = Experience::new(0, dataset, first.origin_stream.clone(), n_classes);
    let classes: BTreeSet<u32> =
        experiences.iter().flat_map(|e| e.classes_in_this_experience.iter().copied()).collect();
    union.classes_in_this_experience = classes.iter().copied().collect();
    union.classes_seen_so_far = union.classes_in_this_experience.clone();
    union.task_labels =
        experiences.iter().flat_map(|e| e.task_labels.iter().copied()).collect::<BTreeSet<_>>().into_iter().collect();
    Ok(union)
}
