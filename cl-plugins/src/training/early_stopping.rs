//! [`EarlyStoppingPlugin`]: Avalanche's `EarlyStoppingPlugin`.

use std::any::Any;

use cl_core::{ClError, Model, Plugin, Result, StatePart, StrategyState};

/// Whether the watched metric should go up (`Max`, e.g. accuracy) or down (`Min`, e.g. loss).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Larger is better (Avalanche's `mode="max"`).
    #[default]
    Max,
    /// Smaller is better (Avalanche's `mode="min"`).
    Min,
}

pub use cl_core::PevalMode;

/// Early stopping with best-weight restore (Avalanche's `EarlyStoppingPlugin`).
///
/// The plugin reads the evaluator's last values ([`StrategyState::last_metrics`]), which the
/// strategy refreshes after every evaluation: build the strategy with `.eval_every(Some(1))` and
/// train with `train_with_eval(&experience, &[&valid_stream])` so that the validation stream is
/// evaluated before training and after every epoch.
///
/// Exactly as Avalanche:
/// - `before_training_exp` forgets the best value, weights and step;
/// - at every `before_training_epoch` (or `before_training_iteration` with
///   [`PevalMode::Iteration`]) the last value of the watched metric is read; the first value
///   seen in the experience becomes the best (its weights are snapshotted); a later value
///   replaces it when it is better (`>` for [`Mode::Max`], `<` for [`Mode::Min`]) by at least
///   `margin`;
/// - when `patience` epochs (iterations) passed since the best value was seen, the best weights
///   are restored into the model and training of the experience stops.
///
/// The watched metric is the first key of `last_metrics`, in reverse sorted order, starting with
/// `{metric_name}/eval_phase/{stream}_stream` (followed by nothing or `/...`, e.g. `/Task000`);
/// `val_stream_name` may be given as `valid` or as Avalanche's `valid_stream`. Without such a
/// key the plugin does nothing. Avalanche takes the last key in insertion order; with one task
/// label in the stream the two agree.
///
/// With [`PevalMode::Iteration`] the stop is requested in `before_training_iteration`, and the
/// loop (Avalanche's too) still runs that iteration, updating the restored weights; unlike
/// Avalanche, the plugin restores the best weights again after that iteration, so training
/// always ends on them.
///
/// Build the strategy with the same `peval_mode` (`StrategyBuilder::peval_mode`) and an
/// `eval_every` of 1 so that a new value is available at every check.
///
/// ```
/// use cl_plugins::training::{EarlyStoppingPlugin, Mode};
/// // EarlyStoppingPlugin(patience=2, val_stream_name="valid_stream", metric_name="Loss_Stream",
/// //                     mode="min", margin=0.01)
/// let es = EarlyStoppingPlugin::new(2, "valid_stream")
///     .unwrap()
///     .metric_name("Loss_Stream")
///     .mode(Mode::Min)
///     .margin(0.01)
///     .unwrap();
/// assert_eq!(es.metric_key(), "Loss_Stream/eval_phase/valid_stream");
/// assert!(EarlyStoppingPlugin::new(0, "valid").is_err());
/// // Used as: Naive::builder(model, optimizer, device).eval_every(Some(1)).plugin(es).build()?
/// //          and strategy.train_with_eval(&experience, &[&valid_stream])?
/// ```
pub struct EarlyStoppingPlugin {
    patience: u64,
    stream: String,
    metric_name: String,
    mode: Mode,
    margin: f64,
    peval_mode: PevalMode,
    /// The best weights: a clone of the strategy's model (cheap: Burn parameters are shared
    /// handles), stored untyped so that the plugin needs no type parameter.
    best_model: Option<Box<dyn Any + Send>>,
    best_val: Option<f64>,
    best_step: Option<u64>,
    /// Set when a stop was requested in `before_training_iteration`: the loop still runs that
    /// iteration, so the best weights are restored again after it.
    restore_after_iteration: bool,
}

impl std::fmt::Debug for EarlyStoppingPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EarlyStoppingPlugin")
            .field("patience", &self.patience)
            .field("metric_key", &self.metric_key())
            .field("mode", &self.mode)
            .field("margin", &self.margin)
            .field("peval_mode", &self.peval_mode)
            .field("best_val", &self.best_val)
            .field("best_step", &self.best_step)
            .finish()
    }
}

impl EarlyStoppingPlugin {
    /// Stops after `patience` (≥ 1) epochs without improvement of `Top1_Acc_Stream` on the
    /// stream `val_stream_name` (`valid` or `valid_stream`).
    pub fn new(patience: usize, val_stream_name: impl Into<String>) -> Result<Self> {
        if patience == 0 {
            return Err(ClError::config("patience", "must be at least 1"));
        }
        let name: String = val_stream_name.into();
        let stream = name.strip_suffix("_stream").unwrap_or(&name).to_string();
        if stream.is_empty() {
            return Err(ClError::config("val_stream_name", "must name a stream (e.g. `valid`)"));
        }
        Ok(Self {
            patience: patience as u64,
            stream,
            metric_name: "Top1_Acc_Stream".into(),
            mode: Mode::Max,
            margin: 0.0,
            peval_mode: PevalMode::Epoch,
            best_model: None,
            best_val: None,
            best_step: None,
            restore_after_iteration: false,
        })
    }

    /// The metric to watch, as named by the evaluator (default `Top1_Acc_Stream`).
    pub fn metric_name(mut self, name: impl Into<String>) -> Self {
        self.metric_name = name.into();
        self
    }

    /// Whether the metric is maximised (default) or minimised.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// The smallest change that counts as an improvement (finite, ≥ 0; default 0: any).
    pub fn margin(mut self, margin: f64) -> Result<Self> {
        if !(margin.is_finite() && margin >= 0.0) {
            return Err(ClError::config("margin", format!("{margin} is not a finite value >= 0")));
        }
        self.margin = margin;
        Ok(self)
    }

    /// Whether `patience` counts epochs (default) or iterations.
    pub fn peval_mode(mut self, mode: PevalMode) -> Self {
        self.peval_mode = mode;
        self
    }

    /// The prefix of the watched metric's key (`{metric}/eval_phase/{stream}_stream`).
    pub fn metric_key(&self) -> String {
        format!("{}/eval_phase/{}_stream", self.metric_name, self.stream)
    }

    /// The best value seen in the current experience, if any.
    pub fn best_value(&self) -> Option<f64> {
        self.best_val
    }

    /// The epoch (or iteration) of the current experience at which the best value was seen.
    pub fn best_step(&self) -> Option<u64> {
        self.best_step
    }

    fn read_metric<M: Model>(&self, state: &StrategyState<M>) -> Option<f64> {
        let key = self.metric_key();
        state
            .last_metrics
            .iter()
            .rev()
            .find(|(k, _)| k.strip_prefix(key.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')))
            .map(|(_, v)| *v)
    }

    fn counter<M: Model>(&self, state: &StrategyState<M>) -> u64 {
        match self.peval_mode {
            PevalMode::Epoch => state.clock.train_exp_epochs,
            PevalMode::Iteration => state.clock.train_exp_iterations,
        }
    }

    /// Avalanche's `_update_best`: `None` when there is no value yet or this is the first one.
    fn update_best<M: Model>(&mut self, state: &StrategyState<M>) -> Option<f64> {
        let value = self.read_metric(state)?;
        let Some(best) = self.best_val else {
            self.best_model = Some(Box::new(state.model().clone()));
            self.best_val = Some(value);
            self.best_step = Some(self.counter(state));
            return None;
        };
        let delta = value - best;
        let better = match self.mode {
            Mode::Max => delta > 0.0,
            Mode::Min => delta < 0.0,
        };
        if better && delta.abs() >= self.margin {
            self.best_model = Some(Box::new(state.model().clone()));
            self.best_val = Some(value);
            self.best_step = Some(self.counter(state));
        }
        self.best_val
    }

    fn restore<M: Model>(&self, state: &mut StrategyState<M>) {
        if let Some(best) = self.best_model.as_ref().and_then(|m| m.downcast_ref::<M>()) {
            state.set_model(best.clone());
        }
    }

    /// Returns whether training was stopped.
    fn check<M: Model>(&mut self, state: &mut StrategyState<M>) -> bool {
        if self.update_best(state).is_none() {
            return false;
        }
        let Some(best_step) = self.best_step else {
            return false;
        };
        if self.counter(state).saturating_sub(best_step) >= self.patience {
            self.restore(state);
            state.stop_training();
            return true;
        }
        false
    }
}

impl<M: Model> Plugin<M> for EarlyStoppingPlugin {
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::Model, StatePart::StopTraining]
    }

    fn before_training_exp(&mut self, _state: &mut StrategyState<M>) -> Result<()> {
        self.best_model = None;
        self.best_val = None;
        self.best_step = None;
        self.restore_after_iteration = false;
        Ok(())
    }

    fn before_training_epoch(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        if self.peval_mode == PevalMode::Epoch {
            self.check(state);
        }
        Ok(())
    }

    fn before_training_iteration(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        if self.peval_mode == PevalMode::Iteration && self.check(state) {
            self.restore_after_iteration = true;
        }
        Ok(())
    }

    fn after_training_iteration(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        if std::mem::take(&mut self.restore_after_iteration) {
            self.restore(state);
        }
        Ok(())
    }
}
