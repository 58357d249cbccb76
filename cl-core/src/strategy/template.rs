//! [`Strategy`]: Avalanche's training/evaluation template, with every callback.

use std::any::Any;

use super::builder::StrategyBuilder;
use super::evaluator::Evaluator;
use super::plugin::{Plugin, dispatch};
use super::settings::{NonFiniteLoss, PeriodicEval, PevalMode};
use super::state::StrategyState;
use super::steps::TemplateSteps;
use crate::callback::{Callback, MetricResults};
use crate::checkpoint::{ExperienceKey, RunCall};
use crate::data::{ClassificationDataset, DataLoader, MiniBatch};
use crate::error::{ClError, Result};
use crate::model::Model;
use crate::optim::OptimizerSpec;
use crate::scenario::{Experience, Stream};
use burn::tensor::Device;

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
/// where plugins are called). Its steps ([`TemplateSteps`]) are a trait object, so every
/// strategy over a model type `M` — `Naive`, `Cumulative`, `JointTraining`, one with steps of
/// your own — is the same type `Strategy<M>`: a `Vec` of different strategies, or one chosen
/// from a name at run time, needs no generics.
///
/// After `build`, the plugins, the evaluator and the steps are reachable as their own types:
/// [`plugin`](Self::plugin), [`plugin_mut`](Self::plugin_mut), [`evaluator_as`](Self::evaluator_as),
/// [`steps_as`](Self::steps_as).
pub struct Strategy<M: Model> {
    pub(super) state: StrategyState<M>,
    pub(super) steps: Box<dyn TemplateSteps<M>>,
    pub(super) plugins: Vec<Box<dyn Plugin<M>>>,
    pub(super) evaluator: Box<dyn Evaluator<M>>,
    /// Streams evaluated periodically during the current `train` call.
    pub(super) eval_streams: Vec<Stream>,
    /// Whether the periodic evaluation runs once more at the end of the current experience.
    pub(super) peval_do_final: bool,
    /// The top-level `train`/`eval` calls of the run so far (saved in checkpoints).
    pub(super) journal: Vec<RunCall>,
    /// After a resume: the journal's calls `replay_cursor..replay_until` are the ones the
    /// driver loop repeats, and are skipped.
    pub(super) replay_cursor: usize,
    pub(super) replay_until: usize,
    /// Whether a `train` call is running (an `eval` inside it is periodic, not top-level).
    pub(super) in_train_call: bool,
    /// Checkpoints written by requests so far (numbers the files of the run directory).
    pub(super) checkpoints_saved: u64,
    /// What the last requested checkpoint wrote.
    pub(super) last_checkpoint: Option<crate::checkpoint::CheckpointInfo>,
    /// Whether the strategy was resumed from a checkpoint.
    pub(super) resumed: bool,
}

/// Training state saved while evaluating during training.
struct SavedTrainState {
    experience: Option<Experience>,
    adapted_dataset: Option<ClassificationDataset>,
    dataloader: Option<Box<dyn DataLoader>>,
    mbatch: Option<MiniBatch>,
    is_training: bool,
    model_adapted: bool,
}

impl<M: Model> Strategy<M> {
    /// A builder with the default steps and Avalanche's default evaluator (accuracy and loss);
    /// see [`StrategyBuilder`].
    pub fn builder(model: M, optimizer: OptimizerSpec, device: Device) -> StrategyBuilder<M> {
        StrategyBuilder::new(model, optimizer, device)
    }

    pub(crate) fn from_parts(
        state: StrategyState<M>,
        steps: Box<dyn TemplateSteps<M>>,
        plugins: Vec<Box<dyn Plugin<M>>>,
        evaluator: Box<dyn Evaluator<M>>,
    ) -> Self {
        Self {
            state,
            steps,
            plugins,
            evaluator,
            eval_streams: Vec::new(),
            peval_do_final: false,
            journal: Vec::new(),
            replay_cursor: 0,
            replay_until: 0,
            in_train_call: false,
            checkpoints_saved: 0,
            last_checkpoint: None,
            resumed: false,
        }
    }

    /// The model.
    pub fn model(&self) -> &M {
        self.state.model()
    }

    /// The state, read-only (settings, clock, model, slots).
    pub fn state(&self) -> &StrategyState<M> {
        &self.state
    }

    /// The state, between `train`/`eval` calls (every request is allowed here: no plugin is
    /// running).
    pub fn state_mut(&mut self) -> &mut StrategyState<M> {
        &mut self.state
    }

    /// The evaluator.
    pub fn evaluator(&self) -> &dyn Evaluator<M> {
        self.evaluator.as_ref()
    }

    /// The evaluator as its concrete type (e.g. [`EvaluationPlugin`](crate::evaluation::EvaluationPlugin)
    /// for the history), or `None` if it has another type.
    pub fn evaluator_as<E: Evaluator<M>>(&self) -> Option<&E> {
        (self.evaluator.as_ref() as &dyn Any).downcast_ref::<E>()
    }

    /// The evaluator as its concrete type, mutably (e.g. to flush its loggers).
    pub fn evaluator_as_mut<E: Evaluator<M>>(&mut self) -> Option<&mut E> {
        (self.evaluator.as_mut() as &mut dyn Any).downcast_mut::<E>()
    }

    /// The plugins, in call order.
    pub fn plugins(&self) -> &[Box<dyn Plugin<M>>] {
        &self.plugins
    }

    /// The first plugin of type `P` (e.g. a replay plugin, to read its buffer).
    pub fn plugin<P: Plugin<M>>(&self) -> Option<&P> {
        self.plugins.iter().find_map(|p| (p.as_ref() as &dyn Any).downcast_ref::<P>())
    }

    /// The first plugin of type `P`, mutably (between `train`/`eval` calls).
    pub fn plugin_mut<P: Plugin<M>>(&mut self) -> Option<&mut P> {
        self.plugins.iter_mut().find_map(|p| (p.as_mut() as &mut dyn Any).downcast_mut::<P>())
    }

    /// The steps as their concrete type (e.g. `CumulativeSteps`, to read its union dataset).
    pub fn steps_as<S: TemplateSteps<M>>(&self) -> Option<&S> {
        (self.steps.as_ref() as &dyn Any).downcast_ref::<S>()
    }

    fn fire(&mut self, callback: Callback) -> Result<()> {
        for (i, p) in self.plugins.iter_mut().enumerate() {
            self.state.caller = Some(i);
            let result = dispatch(p.as_mut(), callback, &mut self.state);
            self.state.caller = None;
            result?;
        }
        self.evaluator.observe(callback, &self.state)?;
        self.periodic_eval(callback)?;
        self.state.clock.after(callback);
        Ok(())
    }

    /// Avalanche's `PeriodicEval`, which runs after the plugins and the evaluator and before the
    /// clock: once before training, every `k` epochs (counted before the clock's increment, i.e.
    /// after epochs 1, k+1, 2k+1, ...) — or iterations with [`PevalMode::Iteration`] — and at the
    /// end of each experience unless (epoch mode) its last epoch was just evaluated; with
    /// [`PeriodicEval::AfterExperience`], before training and at the end of each experience.
    fn periodic_eval(&mut self, callback: Callback) -> Result<()> {
        let (every, epochs) = match self.state.settings().config().periodic_eval {
            PeriodicEval::Never => return Ok(()),
            PeriodicEval::AfterExperience => (0, true),
            PeriodicEval::Every { every, mode } => (every, mode == PevalMode::Epoch),
        };
        let clock = self.state.clock;
        let run = match callback {
            Callback::BeforeTraining => true,
            Callback::BeforeTrainingExp => {
                let train_epochs = self.state.settings().train_epochs();
                self.peval_do_final = !(epochs && every > 0 && (train_epochs - 1).is_multiple_of(every));
                false
            }
            Callback::AfterTrainingEpoch => epochs && every > 0 && clock.train_exp_epochs.is_multiple_of(every as u64),
            Callback::AfterTrainingIteration => {
                !epochs && every > 0 && clock.train_exp_iterations.is_multiple_of(every as u64)
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
        let Some(outputs) = self.steps.num_outputs(&self.state) else {
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
    /// configuration's [`PeriodicEval`] (Avalanche's `PeriodicEval`). Without explicit streams
    /// the periodic evaluation uses the experiences being trained on, as in Avalanche.
    pub fn train_with_eval<E: AsExperiences + ?Sized>(
        &mut self,
        experiences: &E,
        eval_streams: &[&Stream],
    ) -> Result<MetricResults> {
        let experiences = experiences.as_experiences();
        if experiences.is_empty() {
            return Err(ClError::NoExperience("train"));
        }
        let keys = ExperienceKey::of(experiences);
        // A resumed strategy skips the calls its checkpoint already made, and continues the one
        // it was in.
        let replayed = self.next_replayed(true, &keys)?;
        if let Some(RunCall::Train { finished: true, metrics, .. }) = replayed {
            return Ok(metrics);
        }
        self.check_inputs(experiences, true)?;
        let (index, resumed) = match replayed {
            Some(RunCall::Train { done, .. }) => (self.replay_cursor - 1, Some(done)),
            Some(RunCall::Eval { .. }) => unreachable!("next_replayed checks the kind of call"),
            None => {
                self.journal.push(RunCall::Train {
                    experiences: keys,
                    total: 0,
                    done: 0,
                    finished: false,
                    metrics: MetricResults::new(),
                });
                (self.journal.len() - 1, None)
            }
        };
        self.eval_streams = if eval_streams.is_empty() {
            vec![Stream::new(experiences[0].origin_stream.clone(), experiences.to_vec())]
        } else {
            eval_streams.iter().map(|s| (*s).clone()).collect()
        };
        self.state.is_training = true;
        self.state.stop_requested = false;
        self.in_train_call = true;
        let result = self.train_call(experiences, index, resumed);
        self.in_train_call = false;
        self.state.is_training = false;
        self.eval_streams.clear();
        self.cleanup();
        if let Err(e) = result {
            // A failed call is not part of the run a checkpoint replays (a driver that goes on
            // after the error makes its next calls journal entries of their own).
            if resumed.is_none() {
                self.journal.truncate(index);
            }
            return Err(e);
        }
        let metrics = self.evaluator.last_metrics();
        if let Some(RunCall::Train { finished, metrics: m, .. }) = self.journal.get_mut(index) {
            *finished = true;
            *m = metrics.clone();
        }
        self.write_requested_checkpoint()?;
        Ok(metrics)
    }

    /// The body of a `train` call (journal entry `index`); `resumed` is the number of its
    /// experiences a checkpoint already holds.
    fn train_call(&mut self, experiences: &[Experience], index: usize, resumed: Option<usize>) -> Result<()> {
        let done = resumed.unwrap_or(0);
        if resumed.is_none() {
            let experiences = self.steps.train_experiences(experiences)?;
            self.set_train_total(index, experiences.len());
            self.fire(Callback::BeforeTraining)?;
            self.train_experiences(&experiences, index, 0)?;
        } else if done < self.train_total(index) {
            // Only the steps' own transformation of the experiences is repeated (it decides
            // which experiences the call trains on); their state is the checkpoint's.
            let experiences = self.steps.train_experiences(experiences)?;
            self.train_experiences(&experiences, index, done)?;
        }
        self.fire(Callback::AfterTraining)
    }

    fn train_experiences(&mut self, experiences: &[Experience], index: usize, skip: usize) -> Result<()> {
        for (i, exp) in experiences.iter().enumerate().skip(skip) {
            self.state.experience = Some(exp.clone());
            self.state.model_adapted = false;
            self.before_training_exp()?;
            self.train_exp()?;
            self.steps.after_training_exp(&mut self.state)?;
            self.fire(Callback::AfterTrainingExp)?;
            if let Some(RunCall::Train { done, .. }) = self.journal.get_mut(index) {
                *done += 1;
            }
            // A checkpoint requested during the call's last experience is written once the
            // call ends (after `after_training`), not twice.
            if i + 1 < experiences.len() {
                self.write_requested_checkpoint()?;
            }
        }
        Ok(())
    }

    /// Records how many experiences call `index` trains on, so a resume knows whether any is
    /// left.
    fn set_train_total(&mut self, index: usize, n: usize) {
        if let Some(RunCall::Train { total, .. }) = self.journal.get_mut(index) {
            *total = n;
        }
    }

    fn train_total(&self, index: usize) -> usize {
        match self.journal.get(index) {
            Some(RunCall::Train { total, .. }) => *total,
            _ => 0,
        }
    }

    /// After a resume, the journal's next call if the driver repeats it (checked to be the same
    /// kind of call on the same experiences), and `None` once the replay is over.
    fn next_replayed(&mut self, train: bool, keys: &[ExperienceKey]) -> Result<Option<RunCall>> {
        if self.replay_cursor >= self.replay_until {
            return Ok(None);
        }
        let expected = &self.journal[self.replay_cursor];
        let same = match expected {
            RunCall::Train { experiences, .. } => train && experiences == keys,
            RunCall::Eval { experiences, .. } => !train && experiences == keys,
        };
        if !same {
            return Err(ClError::ResumeMismatch {
                expected: expected.describe(),
                found: RunCall::describe_call(train, keys),
            });
        }
        self.replay_cursor += 1;
        Ok(Some(expected.clone()))
    }

    /// Drops the per-experience state after `train`/`eval` (Avalanche's `_train_cleanup`), so
    /// nothing of the last experience (e.g. a cumulative dataset's index) outlives the call.
    fn cleanup(&mut self) {
        let s = &mut self.state;
        s.experience = None;
        s.adapted_dataset = None;
        s.dataloader = None;
        s.mbatch = None;
        s.mb_output = None;
        s.loss = None;
        s.grads = None;
        s.pending_gradients.clear();
        s.eval_model = None;
        s.eval_stream = None;
        s.model_adapted = false;
    }

    fn before_training_exp(&mut self) -> Result<()> {
        // The device's random tensors (e.g. Burn's `Dropout`) come from each experience's own
        // seed: the backend's generator cannot be saved, so this is what lets a run resumed at
        // an experience boundary draw what the uninterrupted run drew. (Models with a generator
        // of their own save it with `Model::save_extra_state`, as cl-models' dropout does.)
        let seed = self.state.experience_seed();
        self.state.settings().device().seed(seed);
        self.fire(Callback::BeforeTrainDatasetAdaptation)?;
        self.steps.train_dataset_adaptation(&mut self.state)?;
        self.fire(Callback::AfterTrainDatasetAdaptation)?;
        self.steps.make_train_dataloader(&mut self.state)?;
        self.steps.model_adaptation(&mut self.state)?;
        self.check_outputs()?;
        self.steps.make_optimizer(&mut self.state)?;
        self.steps.before_training_exp(&mut self.state)?;
        self.fire(Callback::BeforeTrainingExp)
    }

    fn train_exp(&mut self) -> Result<()> {
        for _ in 0..self.state.settings().train_epochs() {
            self.steps.before_training_epoch(&mut self.state)?;
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

    /// Starts an epoch of the loader in the state's slot (it stays there during the epoch, so
    /// iteration callbacks can read it).
    fn start_epoch(&mut self) -> Result<()> {
        self.state.dataloader.as_mut().ok_or(ClError::MissingState("dataloader"))?.start_epoch();
        Ok(())
    }

    fn training_epoch(&mut self) -> Result<()> {
        self.start_epoch()?;
        while !self.state.stop_requested {
            let Some(batch) = self.state.next_batch()? else {
                break;
            };
            self.state.mbatch = Some(batch);
            self.fire(Callback::BeforeTrainingIteration)?;
            self.state.loss = None;
            self.state.grads = None;
            self.state.pending_gradients.clear();
            self.fire(Callback::BeforeForward)?;
            let out = self.steps.forward(&mut self.state)?;
            self.state.mb_output = Some(out);
            self.fire(Callback::AfterForward)?;
            let loss = self.steps.criterion(&mut self.state)?;
            self.state.add_loss(loss)?;
            self.fire(Callback::BeforeBackward)?;
            if !self.loss_is_usable()? {
                match self.state.settings().non_finite_loss() {
                    NonFiniteLoss::SkipBatch => {
                        self.state.loss = None;
                        continue;
                    }
                    _ => {
                        // StopExperience: no update from this batch, and no further epoch.
                        self.state.loss = None;
                        self.state.stop_requested = true;
                        break;
                    }
                }
            }
            self.steps.backward(&mut self.state)?;
            if self.state.has_pending_gradients() {
                return Err(ClError::InvalidUse(
                    "a plugin added a loss term with a closed-form gradient (StrategyState::add_loss_with_gradient: \
                     EWC, SI, MAS, RWalk), but the strategy's backward step did not apply it: call \
                     cl_core::step_defaults::backward, or StrategyState::apply_pending_gradients after computing the \
                     gradients"
                        .into(),
                ));
            }
            self.fire(Callback::AfterBackward)?;
            self.fire(Callback::BeforeUpdate)?;
            self.steps.optimizer_step(&mut self.state)?;
            self.fire(Callback::AfterUpdate)?;
            self.fire(Callback::AfterTrainingIteration)?;
        }
        Ok(())
    }

    /// Whether the iteration's loss (criterion + penalties) may be back-propagated: `true` when it
    /// is finite or the policy is [`NonFiniteLoss::Ignore`]; `false` (with a warning) when the
    /// policy skips the batch or stops the experience; [`ClError::NonFiniteLoss`] by default.
    /// One scalar read per iteration (the Loss metrics read it too).
    fn loss_is_usable(&mut self) -> Result<bool> {
        let policy = self.state.settings().non_finite_loss();
        if policy == NonFiniteLoss::Ignore {
            return Ok(true);
        }
        let Some(loss) = &self.state.loss else { return Ok(true) };
        let value = f64::from(loss.clone().detach().into_scalar::<f32>());
        if value.is_finite() {
            return Ok(true);
        }
        let clock = self.state.clock();
        let (epoch, iteration) = (clock.train_exp_epochs, clock.train_epoch_iterations);
        let experience = self.state.current_experience().map(|e| e.current_experience).unwrap_or(0);
        let lr = self.state.lr();
        match policy {
            NonFiniteLoss::Error => Err(ClError::NonFiniteLoss { loss: value, experience, epoch, iteration, lr }),
            NonFiniteLoss::SkipBatch => {
                tracing::warn!(
                    "training loss {value} at experience {experience}, epoch {epoch}, iteration {iteration}: batch \
                     skipped (non_finite_loss = skip_batch)"
                );
                Ok(false)
            }
            _ => {
                tracing::warn!(
                    "training loss {value} at experience {experience}, epoch {epoch}, iteration {iteration}: training \
                     of this experience stopped (non_finite_loss = stop_experience)"
                );
                Ok(false)
            }
        }
    }

    fn save_train_state(&mut self) -> SavedTrainState {
        let s = &mut self.state;
        SavedTrainState {
            experience: s.experience.take(),
            adapted_dataset: s.adapted_dataset.take(),
            dataloader: s.dataloader.take(),
            mbatch: s.mbatch.take(),
            is_training: s.is_training,
            model_adapted: s.model_adapted,
        }
    }

    fn load_train_state(&mut self, saved: SavedTrainState) {
        let s = &mut self.state;
        s.experience = saved.experience;
        s.adapted_dataset = saved.adapted_dataset;
        s.dataloader = saved.dataloader;
        s.mbatch = saved.mbatch;
        s.is_training = saved.is_training;
        s.model_adapted = saved.model_adapted;
        s.mb_output = None;
        s.loss = None;
        s.eval_model = None;
        s.eval_stream = None;
    }

    /// Evaluates on one experience, a list of them or a stream, and returns the evaluator's
    /// last metrics. The training state (experience, dataset, loader, mode) is restored after,
    /// so `eval` may be called during training (periodic evaluation, early stopping).
    pub fn eval<E: AsExperiences + ?Sized>(&mut self, experiences: &E) -> Result<MetricResults> {
        let experiences = experiences.as_experiences();
        if experiences.is_empty() {
            return Err(ClError::NoExperience("eval"));
        }
        let top_level = !self.in_train_call;
        let keys = if top_level { ExperienceKey::of(experiences) } else { Vec::new() };
        if top_level && let Some(RunCall::Eval { metrics, .. }) = self.next_replayed(false, &keys)? {
            return Ok(metrics);
        }
        self.check_inputs(experiences, false)?;
        let saved = self.save_train_state();
        self.state.is_training = false;
        let result = self.eval_inner(experiences);
        self.load_train_state(saved);
        result?;
        self.state.last_metrics = self.evaluator.last_metrics();
        if top_level {
            self.journal.push(RunCall::Eval { experiences: keys, metrics: self.state.last_metrics.clone() });
        }
        Ok(self.state.last_metrics.clone())
    }

    fn eval_inner(&mut self, experiences: &[Experience]) -> Result<()> {
        self.state.eval_stream = Some(experiences[0].origin_stream.clone());
        self.fire(Callback::BeforeEval)?;
        for exp in experiences {
            self.state.experience = Some(exp.clone());
            self.state.eval_stream = Some(exp.origin_stream.clone());
            self.state.model_adapted = false;
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
        self.start_epoch()?;
        while let Some(batch) = self.state.next_batch()? {
            self.state.mbatch = Some(batch);
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
