//! [`JointTraining`]: trains once on the union of all experiences, the upper bound.

use std::collections::BTreeSet;

use burn::tensor::Device;
use cl_core::{
    AsExperiences, ClError, DefaultSteps, Experience, MetricResults, Model, OptimizerSpec, Result, Strategy,
    StrategyBuilder,
};
use cl_metrics::EvaluationPlugin;

/// Joint training (Avalanche's `JointTraining`): one `train` call on all the experiences at once,
/// as a single experience holding their union (an index view, no copy); a second `train` call is
/// an error, as in Avalanche (`AlreadyTrainedError`).
///
/// ```ignore
/// let mut joint = JointTraining::new(Naive::builder(model, optimizer, device).train_epochs(1).build()?);
/// joint.train(&benchmark.train_stream)?;
/// let results = joint.eval(&benchmark.test_stream)?;
/// ```
pub struct JointTraining<M: Model> {
    strategy: Strategy<M, DefaultSteps>,
    trained: bool,
}

impl<M: Model> JointTraining<M> {
    /// Wraps a strategy with the default steps (e.g. built by [`JointTraining::builder`]).
    pub fn new(strategy: Strategy<M, DefaultSteps>) -> Self {
        Self { strategy, trained: false }
    }

    /// A builder with the default evaluator; finish with `build()` and [`JointTraining::new`].
    pub fn builder(model: M, optimizer: OptimizerSpec, device: Device) -> StrategyBuilder<M, DefaultSteps> {
        StrategyBuilder::new(model, optimizer, device, DefaultSteps).evaluator(EvaluationPlugin::default())
    }

    /// Trains on the union of `experiences` (they must share a sample shape).
    pub fn train<E: AsExperiences + ?Sized>(&mut self, experiences: &E) -> Result<MetricResults> {
        if self.trained {
            return Err(ClError::InvalidUse(
                "JointTraining was already trained: it trains once on the whole stream; build a new one".into(),
            ));
        }
        let union = union_experience(experiences.as_experiences())?;
        let results = self.strategy.train(&union)?;
        self.trained = true;
        Ok(results)
    }

    /// Evaluates like [`Strategy::eval`].
    pub fn eval<E: AsExperiences + ?Sized>(&mut self, experiences: &E) -> Result<MetricResults> {
        self.strategy.eval(experiences)
    }

    /// The wrapped strategy.
    pub fn strategy(&self) -> &Strategy<M, DefaultSteps> {
        &self.strategy
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
    let classes: BTreeSet<u32> = experiences.iter().flat_map(|e| e.classes_in_this_experience.iter().copied()).collect();
    union.classes_in_this_experience = classes.iter().copied().collect();
    union.classes_seen_so_far = union.classes_in_this_experience.clone();
    union.task_labels = experiences
        .iter()
        .flat_map(|e| e.task_labels.iter().copied())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    Ok(union)
}
