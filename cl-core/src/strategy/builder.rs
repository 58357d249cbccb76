//! [`StrategyBuilder`]: assembles and validates a [`Strategy`].

use std::sync::Arc;

use burn::tensor::Device;

use super::contract::{PartSet, StatePart};
use super::evaluator::Evaluator;
use super::plugin::Plugin;
use super::resume::ResumeFrom;
use super::settings::{NonFiniteLoss, PeriodicEval, Settings, TrainingConfig};
use super::state::StrategyState;
use super::steps::{DefaultSteps, TemplateSteps};
use super::template::Strategy;
use crate::config::Validate;
use crate::criterion::{Criterion, CrossEntropyLoss};
use crate::error::{ClError, Result};
use crate::evaluation::EvaluationPlugin;
use crate::model::Model;
use crate::optim::OptimizerSpec;

/// Builds a [`Strategy`] (Avalanche's template constructor): the model, the optimizer recipe,
/// the device, the [`TrainingConfig`] (set whole with [`config`](Self::config) or field by
/// field), the criterion, the plugins, the evaluator and the steps. Everything is checked once,
/// in [`build`](Self::build): the configuration's rules, the optimizer's, and that no two
/// plugins claim the same exclusive [`StatePart`].
///
/// ```
/// use burn::tensor::Device;
/// use cl_core::{OptimizerSpec, Strategy};
/// # #[derive(burn::module::Module, Debug)]
/// # struct Linear1 { fc: burn::nn::Linear }
/// # impl cl_core::Model for Linear1 {
/// #     fn forward(&self, b: &cl_core::data::MiniBatch) -> burn::tensor::Tensor<2> { self.fc.forward(b.x.clone()) }
/// # }
/// # fn main() -> cl_core::Result<()> {
/// let device = Device::default();
/// let model = Linear1 { fc: burn::nn::LinearConfig::new(4, 3).init(&device) };
/// let strategy = Strategy::builder(model, OptimizerSpec::sgd(0.001).with_momentum(0.9), device)
///     .train_mb_size(100)
///     .train_epochs(4)
///     .eval_mb_size(100)
///     .build()?;
/// assert_eq!(strategy.state().settings().train_mb_size(), 100);
/// # Ok(()) }
/// ```
pub struct StrategyBuilder<M: Model> {
    model: M,
    optimizer: OptimizerSpec,
    device: Device,
    steps: Box<dyn TemplateSteps<M>>,
    criterion: Arc<dyn Criterion>,
    config: TrainingConfig,
    plugins: Vec<Box<dyn Plugin<M>>>,
    evaluator: Option<Box<dyn Evaluator<M>>>,
    resume: Option<ResumeFrom>,
}

impl<M: Model> StrategyBuilder<M> {
    /// A builder with Avalanche's defaults ([`TrainingConfig::default`]), cross-entropy loss,
    /// the default steps and Avalanche's default evaluator (accuracy and loss per epoch,
    /// experience and stream: [`EvaluationPlugin::default`]).
    pub fn new(model: M, optimizer: OptimizerSpec, device: Device) -> Self {
        Self {
            model,
            optimizer,
            device,
            steps: Box::new(DefaultSteps),
            criterion: Arc::new(CrossEntropyLoss),
            config: TrainingConfig::default(),
            plugins: Vec::new(),
            evaluator: None,
            resume: None,
        }
    }

    /// Sets the whole template configuration.
    pub fn config(mut self, config: TrainingConfig) -> Self {
        self.config = config;
        self
    }

    /// The template configuration so far.
    pub fn training_config(&self) -> &TrainingConfig {
        &self.config
    }

    /// Training mini-batch size (> 0).
    pub fn train_mb_size(mut self, n: usize) -> Self {
        self.config.train_mb_size = n;
        self
    }

    /// Epochs per experience (> 0).
    pub fn train_epochs(mut self, n: usize) -> Self {
        self.config.train_epochs = n;
        self
    }

    /// Evaluation mini-batch size (> 0; default: the training mini-batch size).
    pub fn eval_mb_size(mut self, n: usize) -> Self {
        self.config.eval_mb_size = Some(n);
        self
    }

    /// Whether `make_optimizer` resets the optimizer state (momentum, Adam moments) before
    /// each experience. Default `false`, as Avalanche ≥ 0.4: the state is created once and kept.
    pub fn reset_optimizer_state(mut self, reset: bool) -> Self {
        self.config.reset_optimizer_state = reset;
        self
    }

    /// Periodic evaluation during `train_with_eval`.
    pub fn periodic_eval(mut self, periodic_eval: PeriodicEval) -> Self {
        self.config.periodic_eval = periodic_eval;
        self
    }

    /// Periodic evaluation with Avalanche's `eval_every` (epochs): `None` never, `Some(0)` after
    /// each experience, `Some(k)` before training and every `k` epochs.
    pub fn eval_every(self, every: Option<usize>) -> Self {
        self.periodic_eval(PeriodicEval::from_eval_every(every))
    }

    /// Seed of data order, dropout and other randomness of the loop and its plugins.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// What a NaN or infinite training loss does (default: [`NonFiniteLoss::Error`]).
    pub fn non_finite_loss(mut self, policy: NonFiniteLoss) -> Self {
        self.config.non_finite_loss = policy;
        self
    }

    /// The loss (default: cross-entropy).
    pub fn criterion(mut self, criterion: impl Criterion + 'static) -> Self {
        self.criterion = Arc::new(criterion);
        self
    }

    /// Adds a plugin; plugins run in the order added.
    pub fn plugin(mut self, plugin: impl Plugin<M>) -> Self {
        self.plugins.push(Box::new(plugin));
        self
    }

    /// Adds a boxed plugin.
    pub fn boxed_plugin(mut self, plugin: Box<dyn Plugin<M>>) -> Self {
        self.plugins.push(plugin);
        self
    }

    /// Sets the evaluator (default: [`EvaluationPlugin::default`], Avalanche's default
    /// evaluator; [`NoMetrics`](super::NoMetrics) for none).
    pub fn evaluator(mut self, evaluator: impl Evaluator<M>) -> Self {
        self.evaluator = Some(Box::new(evaluator));
        self
    }

    /// Replaces the steps (a strategy that overrides some of them), keeping everything else.
    pub fn steps(mut self, steps: impl TemplateSteps<M>) -> Self {
        self.steps = Box::new(steps);
        self
    }

    /// Resumes the run saved in the checkpoint file `path` (written by
    /// [`Strategy::save_checkpoint`] or a `CheckpointPlugin`): `build` checks that the checkpoint
    /// belongs to this configuration (training settings and seed, optimizer, model type,
    /// plugins), then loads the model, optimizer, counters, evaluator, steps and plugins.
    /// Driving the resumed strategy with the loop of the original run skips what the checkpoint
    /// already holds. A missing, truncated, corrupt, other-version or other-configuration
    /// checkpoint is an error of `build` saying which.
    pub fn resume_from(mut self, path: impl AsRef<std::path::Path>) -> Self {
        self.resume = Some(ResumeFrom::File(path.as_ref().to_path_buf()));
        self
    }

    /// Resumes from the newest readable checkpoint of the run directory `dir` (as a
    /// `CheckpointPlugin` writes them), or starts afresh if it holds none: the one line a
    /// preemptible job needs. Unreadable newer checkpoints are skipped with a warning.
    pub fn resume_latest(mut self, dir: impl AsRef<std::path::Path>) -> Self {
        self.resume = Some(ResumeFrom::Latest(dir.as_ref().to_path_buf()));
        self
    }

    /// Validates everything and builds the strategy. The model is moved to the device with
    /// autodiff enabled, in training mode; the device's RNG and the model's own random state
    /// (dropout) are seeded with the configuration's seed.
    pub fn build(self) -> Result<Strategy<M>> {
        self.config.validate()?;
        self.optimizer.validate()?;
        let writers = check_plugin_compatibility(&self.plugins)?;
        let device = self.device.autodiff();
        device.seed(self.config.seed);
        // `fork` rather than `to_device`: a model taken from another strategy is already on the
        // autodiff backend with tensors of its graph, which `train()` cannot re-track (a panic in
        // burn-autodiff); `fork` detaches them (keeping which parameters require gradients).
        let mut model = self.model.fork(&device).train();
        model.seed(self.config.seed);
        let settings = Settings::new(self.config, self.optimizer, self.criterion, device);
        let mut state = StrategyState::new(model, settings);
        state.writers = writers;
        self.steps.check(&state)?;
        let evaluator = self.evaluator.unwrap_or_else(|| Box::new(EvaluationPlugin::default()));
        let mut strategy = Strategy::from_parts(state, self.steps, self.plugins, evaluator);
        if let Some(resume) = &self.resume {
            resume.apply(&mut strategy)?;
        }
        Ok(strategy)
    }
}

/// Each plugin's declared parts, after rejecting two plugins that claim the same exclusive part.
fn check_plugin_compatibility<M: Model>(plugins: &[Box<dyn Plugin<M>>]) -> Result<Vec<(String, PartSet)>> {
    let mut owners: Vec<(StatePart, String)> = Vec::new();
    let mut writers = Vec::with_capacity(plugins.len());
    for p in plugins {
        let parts = p.writes();
        for part in parts.iter().copied().filter(|part| part.is_exclusive()) {
            if let Some((_, other)) = owners.iter().find(|(q, _)| *q == part) {
                return Err(ClError::IncompatiblePlugins(format!(
                    "`{other}` and `{}` both change {} (StatePart::{}, which one plugin at most may \
                     declare); keep one of them",
                    p.name(),
                    part.describe(),
                    part.variant_name()
                )));
            }
            owners.push((part, p.name()));
        }
        writers.push((p.name(), PartSet::of(&parts)));
    }
    Ok(writers)
}
