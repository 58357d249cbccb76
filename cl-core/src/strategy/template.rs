//! [`Strategy`]: Avalanche's training/evaluation template, with every callback.

use std::any::Any;
use std::sync::Arc;

use burn::tensor::Device;

use super::evaluator::{Evaluator, MetricResults, NoMetrics};
use super::plugin::{Callback, Plugin, StatePart, dispatch};
use super::state::StrategyState;
use super::steps::{DefaultSteps, TemplateSteps};
use crate::criterion::{CrossEntropyLoss, Criterion};
use crate::data::{ClassificationDataset, DataLoader, MiniBatch};
use crate::error::{ClError, Result};
use crate::model::Model;
use crate::optim::OptimizerSpec;
use crate::scenario::{Experience, Stream};

/// What `eval_every` counts (Avalanche's `peval_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PevalMode {
    /// Epochs (`clock.train_exp_epochs`).
    #[default]
    Epoch,
    /// Iterations (`clock.train_exp_iterations`).
    Iteration,
}

/// Something `train` and `eval` accept: one experience, a slice of them, or a stream.
pub trait AsExperiences {
    /// The experiences, in order.
    fn as_experiences(&self) -> &[Experience];
}

impl AsExperiences for Experience {
    fn as_experiences(&self) -> &[Experience] {
        std::slice::from_ref(self)
    }
}

impl AsExperiences for [Experience] {
    fn as_experiences(&self) -> &[Experience] {
        self
    }
}

impl AsExperiences for Vec<Experience> {
    fn as_experiences(&self) -> &[Experience] {
        self
    }
}

impl AsExperiences for Stream {
    fn as_experiences(&self) -> &[Experience] {
        self.experiences()
    }
}

/// A continual-learning strategy: the template loop over a model, an optimizer, a criterion,
/// plugins and an evaluator.
///
/// The loop follows Avalanche's `SupervisedTemplate` exactly (see [`Callback`] for the points
/// where plugins are called). The steps in [`TemplateSteps`] can be overridden by giving another
/// `S`; named strategies (`Naive`, `Cumulative`, ...) in `cl-strategies` are built this way.
pub struct Strategy<M: Model, S: TemplateSteps<M> = DefaultSteps> {
    /// The state plugins see.
    pub state: StrategyState<M>,
    /// The (possibly overridden) steps.
    pub steps: S,
    plugins: Vec<Box<dyn Plugin<M>>>,
    evaluator: Box<dyn Evaluator<M>>,
    eval_every: Option<usize>,
    peval_mode: PevalMode,
    /// Streams evaluated periodically during the current `train` call.
    eval_streams: Vec<Stream>,
    /// Whether the periodic evaluation runs once more at the end of the current experience.
    peval_do_final: bool,
}

/// Training state saved while evaluating during training.
struct SavedTrainState {
    experience: Option<Experience>,
    adapted_dataset: Option<ClassificationDataset>,
    dataloader: Option<Box<dyn DataLoader>>,
    mbatch: Option<MiniBatch>,
    is_training: bool,
}

impl<M: Model> Strategy<M, DefaultSteps> {
    /// A builder with the default steps; see [`StrategyBuilder`].
    pub fn builder(model: M, optimizer: OptimizerSpec, device: Device) -> StrategyBuilder<M, DefaultSteps> {
        StrategyBuilder::new(model, optimizer, device, DefaultSteps)
    }
}

impl<M: Model, S: TemplateSteps<M>> Strategy<M, S> {
    /// The model.
    pub fn model(&self) -> &M {
        self.state.model()
    }

    /// The evaluator.
    pub fn evaluator(&self) -> &dyn Evaluator<M> {
        self.evaluator.as_ref()
    }

    /// The evaluator as its concrete type (e.g. `cl_metrics::EvaluationPlugin` for the history).
    pub fn evaluator_as<E: Evaluator<M>>(&self) -> Option<&E> {
        (self.evaluator.as_ref() as &dyn Any).downcast_ref::<E>()
    }

    /// The plugins, in call order.
    pub fn plugins(&self) -> &[Box<dyn Plugin<M>>] {
        &self.plugins
    }

    fn fire(&mut self, callback: Callback) -> Result<()> {
        for p in self.plugins.iter_mut() {
            dispatch(p.as_mut(), callback, &mut self.state)?;
        }
        dispatch(self.evaluator.as_mut(), callback, &mut self.state)?;
        self.periodic_eval(callback)?;
        self.state.clock.after(callback);
        Ok(())
    }

    /// Avalanche's `PeriodicEval`, which runs after the plugins and the evaluator and before the
    /// clock: once before training, every `k` epochs (counted before the clock's increment, i.e.
    /// after epochs 1, k+1, 2k+1, ...) — or iterations with [`PevalMode::Iteration`] — and at the
    /// end of each experience unless (epoch mode) its last epoch was just evaluated; with
    /// `Some(0)`, before training and at the end of each experience.
    fn periodic_eval(&mut self, callback: Callback) -> Result<()> {
        let Some(every) = self.eval_every else {
            return Ok(());
        };
        let epochs = self.peval_mode == PevalMode::Epoch;
        let run = match callback {
            Callback::BeforeTraining => true,
            Callback::BeforeTrainingExp => {
                self.peval_do_final = !(epochs && every > 0 && (self.state.train_epochs - 1) % every == 0);
                false
            }
            Callback::AfterTrainingEpoch => {
                epochs && every > 0 && self.state.clock.train_exp_epochs % every as u64 == 0
            }
            Callback::AfterTrainingIteration => {
                !epochs && every > 0 && self.state.clock.train_exp_iterations % every as u64 == 0
            }
            Callback::AfterTrainingExp => self.peval_do_final,
            _ => false,
        };
        if run {
            let streams = std::mem::take(&mut self.eval_streams);
            let result = streams.iter().try_for_each(|s| self.eval(s).map(|_| ()));
            self.eval_streams = streams;
            result?;
        }
        Ok(())
    }

    /// Checks the samples' size against the model before anything runs (and, for training,
    /// that no experience is empty).
    fn check_inputs(&self, experiences: &[Experience], training: bool) -> Result<()> {
        let model = self.state.model();
        for exp in experiences {
            if training && exp.dataset.is_empty() {
                return Err(ClError::EmptyExperience {
                    experience: exp.current_experience,
                    stream: exp.origin_stream.clone(),
                });
            }
            if let Some(n) = model.input_size()
                && n != exp.dataset.sample_len()
            {
                return Err(ClError::InputShapeMismatch {
                    model_input: n,
                    sample_shape: exp.dataset.sample_shape().to_vec(),
                    sample_len: exp.dataset.sample_len(),
                    experience: exp.current_experience,
                });
            }
            if let Err(expected) = model.check_sample_shape(exp.dataset.sample_shape()) {
                return Err(ClError::ModelInputMismatch {
                    expected,
                    sample_shape: exp.dataset.sample_shape().to_vec(),
                    experience: exp.current_experience,
                });
            }
        }
        Ok(())
    }

    /// Checks, after model adaptation, that the model has an output for every class label of
    /// the current experience (dynamic models may have grown in the adaptation).
    fn check_outputs(&self) -> Result<()> {
        let exp = self.state.current_experience()?;
        let Some(outputs) = self.state.model().num_outputs() else {
            return Ok(());
        };
        let max_class = exp.max_class().unwrap_or(0);
        let needed = if self.state.model().adapts_outputs() {
            max_class as usize + 1
        } else {
            exp.n_classes.max(max_class as usize + 1)
        };
        if outputs < needed {
            return Err(ClError::ModelOutputMismatch {
                model_outputs: outputs,
                max_class,
                needed,
                benchmark_classes: exp.n_classes,
                experience: exp.current_experience,
                stream: exp.origin_stream.clone(),
            });
        }
        Ok(())
    }

    /// Trains on one experience, a list of them or a stream (in order), and returns the
    /// evaluator's last metrics.
    pub fn train<E: AsExperiences + ?Sized>(&mut self, experiences: &E) -> Result<MetricResults> {
        self.train_with_eval(experiences, &[])
    }

    /// Like [`train`](Self::train), evaluating `eval_streams` periodically as set by the
    /// builder's `eval_every` (Avalanche's `PeriodicEval`): before training, then `Some(0)` at
    /// the end of each experience, `Some(k)` every `k` epochs and at the end of each experience.
    /// [`train`](Self::train) evaluates the training experiences themselves.
    pub fn train_with_eval<E: AsExperiences + ?Sized>(
        &mut self,
        experiences: &E,
        eval_streams: &[&Stream],
    ) -> Result<MetricResults> {
        let experiences = experiences.as_experiences();
        if experiences.is_empty() {
            return Err(ClError::NoExperience("train"));
        }
        self.check_inputs(experiences, true)?;
        // As Avalanche: without explicit eval streams, the periodic evaluation uses the
        // experiences being trained on.
        self.eval_streams = if eval_streams.is_empty() {
            vec![Stream::new(experiences[0].origin_stream.clone(), experiences.to_vec())]
        } else {
            eval_streams.iter().map(|s| (*s).clone()).collect()
        };
        self.state.is_training = true;
        self.state.stop_requested = false;
        let result = self.train_inner(experiences);
        self.state.is_training = false;
        self.eval_streams.clear();
        self.cleanup();
        result?;
        Ok(self.evaluator.last_metrics())
    }

    /// Drops the per-experience state after `train`/`eval` (Avalanche's `_train_cleanup`), so
    /// nothing of the last experience (e.g. a cumulative dataset's index) outlives the call.
    fn cleanup(&mut self) {
        self.state.experience = None;
        self.state.adapted_dataset = None;
        self.state.dataloader = None;
        self.state.mbatch = None;
        self.state.mb_output = None;
        self.state.loss = None;
        self.state.grads = None;
        self.state.eval_model = None;
        self.state.eval_stream = None;
    }

    fn train_inner(&mut self, experiences: &[Experience]) -> Result<()> {
        self.fire(Callback::BeforeTraining)?;
        for exp in experiences {
            self.state.experience = Some(exp.clone());
            self.before_training_exp()?;
            self.train_exp()?;
            self.fire(Callback::AfterTrainingExp)?;
        }
        self.fire(Callback::AfterTraining)
    }

    fn before_training_exp(&mut self) -> Result<()> {
        self.fire(Callback::BeforeTrainDatasetAdaptation)?;
        self.steps.train_dataset_adaptation(&mut self.state)?;
        self.fire(Callback::AfterTrainDatasetAdaptation)?;
        self.steps.make_train_dataloader(&mut self.state)?;
        self.steps.model_adaptation(&mut self.state)?;
        self.check_outputs()?;
        self.steps.make_optimizer(&mut self.state)?;
        self.fire(Callback::BeforeTrainingExp)
    }

    fn train_exp(&mut self) -> Result<()> {
        for _ in 0..self.state.train_epochs {
            self.fire(Callback::BeforeTrainingEpoch)?;
            if self.state.stop_requested {
                self.state.stop_requested = false;
                break;
            }
            self.training_epoch()?;
            self.fire(Callback::AfterTrainingEpoch)?;
        }
        self.state.stop_requested = false;
        Ok(())
    }

    /// Runs one epoch of `iterations` over the state's loader. The loop holds the loader
    /// meanwhile; it goes back into the state unless a plugin set another one.
    fn with_loader(&mut self, iterations: fn(&mut Self, &mut dyn DataLoader) -> Result<()>) -> Result<()> {
        let mut loader = self
            .state
            .dataloader
            .take()
            .ok_or(ClError::MissingState("dataloader"))?;
        loader.start_epoch();
        let result = iterations(self, loader.as_mut());
        if self.state.dataloader.is_none() {
            self.state.dataloader = Some(loader);
        }
        result
    }

    fn training_epoch(&mut self) -> Result<()> {
        self.with_loader(Self::run_training_iterations)
    }

    fn run_training_iterations(&mut self, loader: &mut dyn DataLoader) -> Result<()> {
        loop {
            if self.state.stop_requested {
                break;
            }
            let Some(batch) = loader.next_batch(&self.state.device) else {
                break;
            };
            self.state.mbatch = Some(batch?);
            self.fire(Callback::BeforeTrainingIteration)?;
            self.state.loss = None;
            self.state.grads = None;
            self.fire(Callback::BeforeForward)?;
            let out = self.steps.forward(&mut self.state)?;
            self.state.mb_output = Some(out);
            self.fire(Callback::AfterForward)?;
            let loss = self.steps.criterion(&mut self.state)?;
            self.state.add_loss(loss);
            self.fire(Callback::BeforeBackward)?;
            self.steps.backward(&mut self.state)?;
            self.fire(Callback::AfterBackward)?;
            self.fire(Callback::BeforeUpdate)?;
            self.steps.optimizer_step(&mut self.state)?;
            self.fire(Callback::AfterUpdate)?;
            self.fire(Callback::AfterTrainingIteration)?;
        }
        Ok(())
    }

    fn save_train_state(&mut self) -> SavedTrainState {
        SavedTrainState {
            experience: self.state.experience.take(),
            adapted_dataset: self.state.adapted_dataset.take(),
            dataloader: self.state.dataloader.take(),
            mbatch: self.state.mbatch.take(),
            is_training: self.state.is_training,
        }
    }

    fn load_train_state(&mut self, saved: SavedTrainState) {
        self.state.experience = saved.experience;
        self.state.adapted_dataset = saved.adapted_dataset;
        self.state.dataloader = saved.dataloader;
        self.state.mbatch = saved.mbatch;
        self.state.is_training = saved.is_training;
        self.state.mb_output = None;
        self.state.loss = None;
        self.state.eval_model = None;
        self.state.eval_stream = None;
    }

    /// Evaluates on one experience, a list of them or a stream, and returns the evaluator's
    /// last metrics. The training state (experience, dataset, loader, mode) is restored after,
    /// so `eval` may be called during training (periodic evaluation, early stopping).
    pub fn eval<E: AsExperiences + ?Sized>(&mut self, experiences: &E) -> Result<MetricResults> {
        let experiences = experiences.as_experiences();
        if experiences.is_empty() {
            return Err(ClError::NoExperience("eval"));
        }
        self.check_inputs(experiences, false)?;
        let saved = self.save_train_state();
        self.state.is_training = false;
        let result = self.eval_inner(experiences);
        self.load_train_state(saved);
        result?;
        self.state.last_metrics = self.evaluator.last_metrics();
        Ok(self.state.last_metrics.clone())
    }

    fn eval_inner(&mut self, experiences: &[Experience]) -> Result<()> {
        self.state.eval_stream = Some(experiences[0].origin_stream.clone());
        self.fire(Callback::BeforeEval)?;
        for exp in experiences {
            self.state.experience = Some(exp.clone());
            self.state.eval_stream = Some(exp.origin_stream.clone());
            self.fire(Callback::BeforeEvalDatasetAdaptation)?;
            self.steps.eval_dataset_adaptation(&mut self.state)?;
            self.fire(Callback::AfterEvalDatasetAdaptation)?;
            self.steps.make_eval_dataloader(&mut self.state)?;
            self.steps.model_adaptation(&mut self.state)?;
            self.check_outputs()?;
            self.fire(Callback::BeforeEvalExp)?;
            self.state.eval_model = Some(self.state.model().valid());
            self.eval_epoch()?;
            self.fire(Callback::AfterEvalExp)?;
            self.state.eval_model = None;
        }
        self.fire(Callback::AfterEval)
    }

    fn eval_epoch(&mut self) -> Result<()> {
        self.with_loader(Self::run_eval_iterations)
    }

    fn run_eval_iterations(&mut self, loader: &mut dyn DataLoader) -> Result<()> {
        let device = self.state.eval_device.clone();
        while let Some(batch) = loader.next_batch(&device) {
            self.state.mbatch = Some(batch?);
            self.fire(Callback::BeforeEvalIteration)?;
            self.fire(Callback::BeforeEvalForward)?;
            let out = self.steps.forward(&mut self.state)?;
            self.state.mb_output = Some(out);
            self.fire(Callback::AfterEvalForward)?;
            let loss = self.steps.criterion(&mut self.state)?;
            self.state.loss = Some(loss);
            self.fire(Callback::AfterEvalIteration)?;
        }
        Ok(())
    }
}

/// Rejects two plugins that write the same exclusive part of the state.
fn check_plugin_compatibility<M: Model>(plugins: &[Box<dyn Plugin<M>>]) -> Result<()> {
    let mut owners: Vec<(StatePart, String)> = Vec::new();
    for p in plugins {
        for part in p.writes().into_iter().filter(|part| part.is_exclusive()) {
            if let Some((_, other)) = owners.iter().find(|(q, _)| *q == part) {
                return Err(ClError::IncompatiblePlugins(format!(
                    "`{other}` and `{}` both replace {}; keep one of them",
                    p.name(),
                    part.describe()
                )));
            }
            owners.push((part, p.name()));
        }
    }
    Ok(())
}

/// Builds a [`Strategy`], validating the configuration (Avalanche's constructor arguments).
///
/// ```ignore
/// let strategy = Strategy::builder(model, OptimizerSpec::sgd(0.001, 0.9, 0.0)?, device)
///     .train_mb_size(100)
///     .train_epochs(4)
///     .eval_mb_size(100)
///     .build()?;
/// ```
pub struct StrategyBuilder<M: Model, S: TemplateSteps<M> = DefaultSteps> {
    model: M,
    optimizer: OptimizerSpec,
    device: Device,
    steps: S,
    criterion: Arc<dyn Criterion>,
    train_mb_size: usize,
    train_epochs: usize,
    eval_mb_size: Option<usize>,
    eval_every: Option<usize>,
    peval_mode: PevalMode,
    seed: u64,
    reset_optimizer_state: bool,
    plugins: Vec<Box<dyn Plugin<M>>>,
    evaluator: Option<Box<dyn Evaluator<M>>>,
}

impl<M: Model, S: TemplateSteps<M>> StrategyBuilder<M, S> {
    /// A builder with Avalanche's defaults: `train_mb_size = 1`, `train_epochs = 1`,
    /// `eval_mb_size` = `train_mb_size`, cross-entropy loss, no periodic evaluation, optimizer
    /// state kept across experiences, seed 0, no metrics (the named strategies of
    /// `cl-strategies` set `cl-metrics`' default evaluator).
    pub fn new(model: M, optimizer: OptimizerSpec, device: Device, steps: S) -> Self {
        Self {
            model,
            optimizer,
            device,
            steps,
            criterion: Arc::new(CrossEntropyLoss),
            train_mb_size: 1,
            train_epochs: 1,
            eval_mb_size: None,
            eval_every: None,
            peval_mode: PevalMode::Epoch,
            seed: 0,
            reset_optimizer_state: false,
            plugins: Vec::new(),
            evaluator: None,
        }
    }

    /// Training mini-batch size (> 0).
    pub fn train_mb_size(mut self, n: usize) -> Self {
        self.train_mb_size = n;
        self
    }

    /// Epochs per experience (> 0).
    pub fn train_epochs(mut self, n: usize) -> Self {
        self.train_epochs = n;
        self
    }

    /// Evaluation mini-batch size (> 0; default: the training mini-batch size).
    pub fn eval_mb_size(mut self, n: usize) -> Self {
        self.eval_mb_size = Some(n);
        self
    }

    /// Whether `make_optimizer` resets the optimizer state (momentum, Adam moments) before
    /// each experience. Default `false`, as Avalanche ≥ 0.4: the state is created once and kept.
    pub fn reset_optimizer_state(mut self, reset: bool) -> Self {
        self.reset_optimizer_state = reset;
        self
    }

    /// Periodic evaluation during `train_with_eval`: `None` never, `Some(0)` after each
    /// experience, `Some(k)` before each experience and every `k` epochs.
    pub fn eval_every(mut self, every: Option<usize>) -> Self {
        self.eval_every = every;
        self
    }

    /// Whether `eval_every` counts epochs (default) or iterations (Avalanche's `peval_mode`).
    pub fn peval_mode(mut self, mode: PevalMode) -> Self {
        self.peval_mode = mode;
        self
    }

    /// Seed of data order, dropout and other randomness of the loop.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The loss (default: cross-entropy).
    pub fn criterion(mut self, criterion: impl Criterion + 'static) -> Self {
        self.criterion = Arc::new(criterion);
        self
    }

    /// Adds a plugin; plugins run in the order added.
    pub fn plugin(mut self, plugin: impl Plugin<M> + 'static) -> Self {
        self.plugins.push(Box::new(plugin));
        self
    }

    /// Adds a boxed plugin.
    pub fn boxed_plugin(mut self, plugin: Box<dyn Plugin<M>>) -> Self {
        self.plugins.push(plugin);
        self
    }

    /// Sets the evaluator (default: [`NoMetrics`]).
    pub fn evaluator(mut self, evaluator: impl Evaluator<M> + 'static) -> Self {
        self.evaluator = Some(Box::new(evaluator));
        self
    }

    /// Whether an evaluator was set.
    pub fn has_evaluator(&self) -> bool {
        self.evaluator.is_some()
    }

    /// Replaces the steps (to build a strategy that overrides some of them).
    pub fn steps<S2: TemplateSteps<M>>(self, steps: S2) -> StrategyBuilder<M, S2> {
        StrategyBuilder {
            model: self.model,
            optimizer: self.optimizer,
            device: self.device,
            steps,
            criterion: self.criterion,
            train_mb_size: self.train_mb_size,
            train_epochs: self.train_epochs,
            eval_mb_size: self.eval_mb_size,
            eval_every: self.eval_every,
            peval_mode: self.peval_mode,
            seed: self.seed,
            reset_optimizer_state: self.reset_optimizer_state,
            plugins: self.plugins,
            evaluator: self.evaluator,
        }
    }

    /// Validates the configuration and builds the strategy. The model is moved to the device
    /// with autodiff enabled; the device's RNG is seeded with `seed`.
    pub fn build(self) -> Result<Strategy<M, S>> {
        check_plugin_compatibility(&self.plugins)?;
        let eval_mb_size = self.eval_mb_size.unwrap_or(self.train_mb_size);
        for (field, v) in [
            ("train_mb_size", self.train_mb_size),
            ("train_epochs", self.train_epochs),
            ("eval_mb_size", eval_mb_size),
        ] {
            if v == 0 {
                return Err(ClError::config(field, "must be at least 1"));
            }
        }
        let device = self.device.autodiff();
        device.seed(self.seed);
        let mut model = self.model.to_device(&device).train();
        model.seed(self.seed);
        let mut state = StrategyState::new(
            model,
            self.optimizer,
            self.criterion,
            self.train_mb_size,
            self.train_epochs,
            eval_mb_size,
            self.seed,
            device,
        );
        state.reset_optimizer_state = self.reset_optimizer_state;
        Ok(Strategy {
            state,
            steps: self.steps,
            plugins: self.plugins,
            evaluator: self.evaluator.unwrap_or_else(|| Box::new(NoMetrics)),
            eval_every: self.eval_every,
            peval_mode: self.peval_mode,
            eval_streams: Vec::new(),
            peval_do_final: false,
        })
    }
}
