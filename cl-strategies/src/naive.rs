//! [`Naive`]: fine-tuning on each experience in turn, the lower bound.

use burn::tensor::Device;
use cl_core::{DefaultSteps, Model, OptimizerSpec, StrategyBuilder};
use cl_metrics::EvaluationPlugin;

/// Naive fine-tuning: the template with its default steps (Avalanche's `Naive`).
///
/// ```ignore
/// let mut strategy = Naive::builder(model, OptimizerSpec::sgd(0.001, 0.9, 0.0)?, device)
///     .train_mb_size(100).train_epochs(4).eval_mb_size(100).build()?;
/// for experience in &benchmark.train_stream {
///     strategy.train(experience)?;
///     let results = strategy.eval(&benchmark.test_stream)?;
/// }
/// ```
pub struct Naive;

impl Naive {
    /// A builder with the default evaluator ([`EvaluationPlugin::default`]).
    pub fn builder<M: Model>(model: M, optimizer: OptimizerSpec, device: Device) -> StrategyBuilder<M, DefaultSteps> {
        StrategyBuilder::new(model, optimizer, device, DefaultSteps).evaluator(EvaluationPlugin::default())
    }
}
