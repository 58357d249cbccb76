//! [`EarlyStoppingPlugin`]: Avalanche's `EarlyStoppingPlugin`.

use std::any::Any;

use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, finite_non_negative, rule};
use cl_core::{Model, PevalMode, Plugin, Result, StatePart, StrategyState};
use serde::{Deserialize, Serialize};

use crate::persist::{get_f64, opt_model, put_f64, put_opt_model};

/// Whether the watched metric should go up (`Max`, e.g. accuracy) or down (`Min`, e.g. loss):
/// Avalanche's `mode` argument of `EarlyStoppingPlugin` (`"max"` / `"min"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EarlyStoppingMode {
    /// Larger is better (Avalanche's `mode="max"`, the default).
    #[default]
    Max,
    /// Smaller is better (Avalanche's `mode="min"`).
    Min,
}

fn default_metric_name() -> String {
    "Top1_Acc_Stream".into()
}

/// The configuration of an [`EarlyStoppingPlugin`]: Avalanche's
/// `EarlyStoppingPlugin(patience, val_stream_name, metric_name="Top1_Acc_Stream", mode="max",
/// peval_mode="epoch", margin=0.0, verbose=False)` (`verbose` is dropped: the library logs
/// through `tracing`).
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_plugins::{EarlyStoppingConfig, EarlyStoppingMode};
/// // EarlyStoppingPlugin(patience=2, val_stream_name="valid_stream", metric_name="Loss_Stream",
/// //                     mode="min", margin=0.01)
/// let config = EarlyStoppingConfig::new(2, "valid_stream")
///     .with_metric_name("Loss_Stream")
///     .with_mode(EarlyStoppingMode::Min)
///     .with_margin(0.01);
/// assert_eq!(EarlyStoppingConfig::from_toml(&config.to_toml().unwrap()).unwrap(), config);
/// let parsed = EarlyStoppingConfig::from_toml("patience = 3\nval_stream_name = \"valid\"").unwrap();
/// assert_eq!(parsed, EarlyStoppingConfig::new(3, "valid"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStoppingConfig {
    /// Epochs (or iterations, with [`PevalMode::Iteration`]) without improvement before training
    /// stops (required, at least 1).
    pub patience: usize,
    /// The validation stream, as `valid` or as Avalanche's `valid_stream` (required).
    pub val_stream_name: String,
    /// The metric to watch, as named by the evaluator (default `Top1_Acc_Stream`).
    #[serde(default = "default_metric_name")]
    pub metric_name: String,
    /// Whether the metric is maximised (default) or minimised.
    #[serde(default)]
    pub mode: EarlyStoppingMode,
    /// Whether `patience` counts epochs (default) or iterations.
    #[serde(default)]
    pub peval_mode: PevalMode,
    /// The smallest change that counts as an improvement (finite, ≥ 0; default 0: any).
    #[serde(default)]
    pub margin: f64,
}

impl EarlyStoppingConfig {
    /// Stops after `patience` epochs without improvement of `Top1_Acc_Stream` on the stream
    /// `val_stream_name` (`valid` or `valid_stream`); Avalanche's other defaults.
    pub fn new(patience: usize, val_stream_name: impl Into<String>) -> Self {
        Self {
            patience,
            val_stream_name: val_stream_name.into(),
            metric_name: default_metric_name(),
            mode: EarlyStoppingMode::Max,
            peval_mode: PevalMode::Epoch,
            margin: 0.0,
        }
    }

    /// Sets the patience.
    pub fn with_patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }

    /// Sets the validation stream.
    pub fn with_val_stream_name(mut self, name: impl Into<String>) -> Self {
        self.val_stream_name = name.into();
        self
    }

    /// Sets the metric to watch.
    pub fn with_metric_name(mut self, name: impl Into<String>) -> Self {
        self.metric_name = name.into();
        self
    }

    /// Sets whether the metric is maximised or minimised.
    pub fn with_mode(mut self, mode: EarlyStoppingMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets whether `patience` counts epochs or iterations.
    pub fn with_peval_mode(mut self, mode: PevalMode) -> Self {
        self.peval_mode = mode;
        self
    }

    /// Sets the smallest change that counts as an improvement.
    pub fn with_margin(mut self, margin: f64) -> Self {
        self.margin = margin;
        self
    }

    /// The stream's name without Avalanche's `_stream` suffix.
    fn stream(&self) -> &str {
        self.val_stream_name.strip_suffix("_stream").unwrap_or(&self.val_stream_name)
    }

    /// The prefix of the watched metric's key (`{metric}/eval_phase/{stream}_stream`).
    pub fn metric_key(&self) -> String {
        format!("{}/eval_phase/{}_stream", self.metric_name, self.stream())
    }
}

impl Validate for EarlyStoppingConfig {
    /// `patience_positive`, `val_stream_name_names_a_stream`, `metric_name_not_empty`,
    /// `margin_finite_non_negative`.
    fn validate(&self) -> Result<()> {
        const C: &str = "EarlyStoppingConfig";
        rule(C, "patience_positive", self.patience > 0, || "patience must be at least 1".into())?;
        rule(C, "val_stream_name_names_a_stream", !self.stream().is_empty(), || {
            format!("val_stream_name = {:?} must name a stream (e.g. `valid` or `valid_stream`)", self.val_stream_name)
        })?;
        rule(C, "metric_name_not_empty", !self.metric_name.is_empty(), || {
            "metric_name must name a metric (e.g. `Top1_Acc_Stream`, `Loss_Stream`)".into()
        })?;
        rule(C, "margin_finite_non_negative", finite_non_negative(self.margin), || {
            format!("margin = {} must be a finite number >= 0", self.margin)
        })
    }
}

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
///   replaces it when it is better (`>` for [`EarlyStoppingMode::Max`], `<` for [`EarlyStoppingMode::Min`]) by at least
///   `margin`;
/// - when `patience` epochs (iterations) passed since the best value was seen, the best weights
///   are restored into the model ([`StrategyState::map_model`]) and training of the experience
///   stops ([`StrategyState::stop_training`]).
///
/// The watched metric is the first key of `last_metrics`, in reverse sorted order, starting with
/// `{metric_name}/eval_phase/{stream}_stream` (followed by nothing or `/...`, e.g. `/Task000`).
/// Without such a key the plugin does nothing. Avalanche takes the last key in insertion order;
/// with one task label in the stream the two agree.
///
/// With [`PevalMode::Iteration`] the stop is requested in `before_training_iteration`, and the
/// loop (Avalanche's too) still runs that iteration, updating the restored weights; unlike
/// Avalanche, the plugin restores the best weights again after that iteration, so training
/// always ends on them. Build the strategy with the same periodic-evaluation mode
/// (`PeriodicEval::Every { every: 1, mode }`) so that a new value is available at every check.
///
/// Declares [`StatePart::Model`] and [`StatePart::StopTraining`]. Not generic over the model:
/// the best weights are stored untyped. After `build`, `strategy.plugin::<EarlyStoppingPlugin>()`
/// gives [`best_value`](Self::best_value) and [`best_step`](Self::best_step).
///
/// ```
/// use cl_plugins::{EarlyStoppingConfig, EarlyStoppingPlugin, EarlyStoppingMode};
/// let es = EarlyStoppingPlugin::new(EarlyStoppingConfig::new(2, "valid_stream").with_mode(EarlyStoppingMode::Max))?;
/// assert_eq!(es.config().metric_key(), "Top1_Acc_Stream/eval_phase/valid_stream");
/// assert!(EarlyStoppingPlugin::new(EarlyStoppingConfig::new(0, "valid")).is_err());
/// // Naive::builder(..)?.eval_every(Some(1)).plugin(es).build()?
/// // then strategy.train_with_eval(&experience, &[&valid_stream])?
/// # Ok::<(), cl_core::ClError>(())
/// ```
pub struct EarlyStoppingPlugin {
    config: EarlyStoppingConfig,
    /// `config.metric_key()`, computed once.
    metric_key: String,
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
            .field("config", &self.config)
            .field("best_val", &self.best_val)
            .field("best_step", &self.best_step)
            .finish_non_exhaustive()
    }
}

impl EarlyStoppingPlugin {
    /// Early stopping as `config` says; an error if the config breaks a rule.
    pub fn new(config: EarlyStoppingConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            metric_key: config.metric_key(),
            config,
            best_model: None,
            best_val: None,
            best_step: None,
            restore_after_iteration: false,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EarlyStoppingConfig {
        &self.config
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
        let key = self.metric_key.as_str();
        state
            .last_metrics()
            .iter()
            .rev()
            .find(|(k, _)| k.strip_prefix(key).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')))
            .map(|(_, v)| *v)
    }

    fn counter<M: Model>(&self, state: &StrategyState<M>) -> u64 {
        match self.config.peval_mode {
            PevalMode::Epoch => state.clock().train_exp_epochs,
            PevalMode::Iteration => state.clock().train_exp_iterations,
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
        let better = match self.config.mode {
            EarlyStoppingMode::Max => delta > 0.0,
            EarlyStoppingMode::Min => delta < 0.0,
        };
        if better && delta.abs() >= self.config.margin {
            self.best_model = Some(Box::new(state.model().clone()));
            self.best_val = Some(value);
            self.best_step = Some(self.counter(state));
        }
        self.best_val
    }

    fn restore<M: Model>(&self, state: &mut StrategyState<M>) -> Result<()> {
        if let Some(best) = self.best_model.as_ref().and_then(|m| m.downcast_ref::<M>()) {
            state.map_model(|_| best.clone())?;
        }
        Ok(())
    }

    /// Returns whether training was stopped.
    fn check<M: Model>(&mut self, state: &mut StrategyState<M>) -> Result<bool> {
        if self.update_best(state).is_none() {
            return Ok(false);
        }
        let Some(best_step) = self.best_step else {
            return Ok(false);
        };
        if self.counter(state).saturating_sub(best_step) >= self.config.patience as u64 {
            self.restore(state)?;
            state.stop_training()?;
            return Ok(true);
        }
        Ok(false)
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
        if self.config.peval_mode == PevalMode::Epoch {
            self.check(state)?;
        }
        Ok(())
    }

    fn before_training_iteration(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        if self.config.peval_mode == PevalMode::Iteration && self.check(state)? {
            self.restore_after_iteration = true;
        }
        Ok(())
    }

    fn after_training_iteration(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        if std::mem::take(&mut self.restore_after_iteration) {
            self.restore(state)?;
        }
        Ok(())
    }

    /// The configuration (checked on load), the best weights (a Burn record, parameter ids
    /// kept), the best value (exact) and its step, and a pending restore.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config)?;
        let best = match &self.best_model {
            Some(m) => Some(m.downcast_ref::<M>().ok_or_else(|| {
                cl_core::ClError::InvalidUse(format!(
                    "EarlyStoppingPlugin holds best weights of another model type than `{}`",
                    cl_core::config::short_type_name::<M>()
                ))
            })?),
            None => None,
        };
        put_opt_model(out, "best_model", best)?;
        put_f64(out, "best_val", self.best_val)?;
        out.put("best_step", &self.best_step)?;
        out.put("restore_after_iteration", &self.restore_after_iteration)
    }

    fn load_state(&mut self, state: &StateDict, strategy: &StrategyState<M>) -> Result<()> {
        state.check_config("config", &self.config)?;
        // Stored as the training model is (a clone of it): on the training device, in training
        // mode, as the strategy's resumed model.
        let device = strategy.settings().device();
        self.best_model = opt_model(state, "best_model", strategy)?
            .map(|m: M| Box::new(m.to_device(device).train()) as Box<dyn Any + Send>);
        self.best_val = get_f64(state, "best_val")?;
        self.best_step = state.get("best_step")?;
        self.restore_after_iteration = state.get("restore_after_iteration")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::training::test_util::{Counts, Shared, builder, classifier_weight, named_stream, stream, tiny_mlp};
    use cl_core::config::{ConfigFile, assert_rule};
    use cl_core::{Callback, Evaluator, MetricResults, PeriodicEval};
    use cl_models::SimpleMlp;

    #[test]
    fn config_round_trips() {
        for c in [
            EarlyStoppingConfig::new(1, "valid"),
            EarlyStoppingConfig::new(4, "valid_stream")
                .with_metric_name("Loss_Stream")
                .with_mode(EarlyStoppingMode::Min)
                .with_peval_mode(PevalMode::Iteration)
                .with_margin(0.25),
        ] {
            assert_eq!(EarlyStoppingConfig::from_json(&c.to_json()).unwrap(), c);
            assert_eq!(EarlyStoppingConfig::from_toml(&c.to_toml().unwrap()).unwrap(), c);
        }
        let c = EarlyStoppingConfig::from_json(r#"{"patience": 2, "val_stream_name": "v", "mode": "min"}"#).unwrap();
        assert_eq!(c, EarlyStoppingConfig::new(2, "v").with_mode(EarlyStoppingMode::Min));
        assert!(EarlyStoppingConfig::from_json(r#"{"patience": 2}"#).is_err(), "the stream is required");
    }

    #[test]
    fn config_rules() {
        let c = || EarlyStoppingConfig::new(1, "valid");
        assert_rule(c().with_patience(0).validate(), "patience_positive");
        assert_rule(c().with_val_stream_name("_stream").validate(), "val_stream_name_names_a_stream");
        assert_rule(c().with_val_stream_name("").validate(), "val_stream_name_names_a_stream");
        assert_rule(c().with_metric_name("").validate(), "metric_name_not_empty");
        for m in [-0.1, f64::NAN, f64::INFINITY] {
            assert_rule(c().with_margin(m).validate(), "margin_finite_non_negative");
        }
        assert_rule(EarlyStoppingPlugin::new(c().with_patience(0)), "patience_positive");
        assert!(c().with_margin(0.0).validate().is_ok());
        assert_eq!(
            <EarlyStoppingPlugin as Plugin<SimpleMlp>>::writes(&EarlyStoppingPlugin::new(c()).unwrap()),
            vec![StatePart::Model, StatePart::StopTraining]
        );
    }

    const ACC_KEY: &str = "Top1_Acc_Stream/eval_phase/valid_stream/Task000";

    /// The best weights (values and parameter ids, on the training device), the best value
    /// (exact), its step and a pending restore come back; another configuration is refused.
    #[test]
    fn checkpoint_restores_the_best_weights_and_value() {
        use crate::persist::test_util::{assert_mismatch, module_values, restore};
        let config = EarlyStoppingConfig::new(3, "valid").with_margin(0.01);
        let weights: Shared<Vec<f32>> = Arc::default();
        let values = vec![0.5, 0.1 + 0.2, 0.7, 0.6, 0.65, 0.66];
        let mut s = builder(tiny_mlp(2), 0.2, 4)
            .periodic_eval(PeriodicEval::Every { every: 1, mode: PevalMode::Epoch })
            .evaluator(Scripted::new(ACC_KEY, values, weights))
            .plugin(EarlyStoppingPlugin::new(config.clone()).unwrap())
            .build()
            .unwrap();
        s.train_with_eval(&stream(1, 6)[0], &[&named_stream("valid", 1, 2)]).unwrap();
        let es = s.plugin::<EarlyStoppingPlugin>().unwrap();
        assert_eq!((es.best_value(), es.best_step()), (Some(0.7), Some(2)));
        let mut fresh = EarlyStoppingPlugin::new(config.clone()).unwrap();
        let state = restore::<SimpleMlp, _>(es, &mut fresh, s.state());
        assert_eq!(fresh.best_value().map(f64::to_bits), es.best_value().map(f64::to_bits));
        assert_eq!(fresh.best_step(), es.best_step());
        let best = |p: &EarlyStoppingPlugin| {
            module_values(p.best_model.as_ref().unwrap().downcast_ref::<SimpleMlp>().unwrap())
        };
        assert_eq!(best(&fresh), best(es));
        let restored = fresh.best_model.as_ref().unwrap().downcast_ref::<SimpleMlp>().unwrap();
        let (w, model_w) = (restored.classifier.weight.val(), s.model().classifier.weight.val());
        assert_eq!(w.device(), model_w.device(), "on the training device, as the model");
        assert_eq!(w.is_require_grad(), model_w.is_require_grad(), "trainable, as the model");
        assert_mismatch::<SimpleMlp, _>(
            &state,
            &mut EarlyStoppingPlugin::new(config.with_patience(2)).unwrap(),
            s.state(),
        );
        // Nothing seen yet: nothing restored.
        let mut empty = EarlyStoppingPlugin::new(EarlyStoppingConfig::new(3, "valid").with_margin(0.01)).unwrap();
        restore::<SimpleMlp, _>(
            &EarlyStoppingPlugin::new(EarlyStoppingConfig::new(3, "valid").with_margin(0.01)).unwrap(),
            &mut empty,
            s.state(),
        );
        assert!(empty.best_model.is_none() && empty.best_value().is_none());
    }

    /// An evaluator that reports scripted values of `key`: the `n`-th evaluation (periodic,
    /// before training and after each epoch or iteration) reports `values[n]`; it records the
    /// classifier weights at each evaluation.
    struct Scripted {
        key: String,
        values: Vec<f64>,
        evals: usize,
        weights: Shared<Vec<f32>>,
    }

    impl Scripted {
        fn new(key: &str, values: Vec<f64>, weights: Shared<Vec<f32>>) -> Self {
            Self { key: key.into(), values, evals: 0, weights }
        }
    }

    impl Evaluator<SimpleMlp> for Scripted {
        fn observe(&mut self, callback: Callback, state: &StrategyState<SimpleMlp>) -> Result<()> {
            if callback == Callback::AfterEval {
                self.evals += 1;
                self.weights.lock().unwrap().push(classifier_weight(state.model()));
            }
            Ok(())
        }

        fn last_metrics(&self) -> MetricResults {
            let mut m = MetricResults::new();
            if let Some(v) = self.evals.checked_sub(1).and_then(|i| self.values.get(i)) {
                m.insert(self.key.clone(), *v);
            }
            m
        }
    }

    /// Trains 1 experience of 6 samples (3 iterations per epoch) for 10 epochs with scripted
    /// values evaluated before training and after every epoch (or iteration); returns (epochs
    /// and iterations run, weights at each evaluation, final weights).
    fn run_scripted(config: EarlyStoppingConfig, key: &str, values: Vec<f64>) -> ((u64, u64), Vec<Vec<f32>>, Vec<f32>) {
        let weights: Shared<Vec<f32>> = Arc::default();
        let counts: Shared<(u64, u64)> = Arc::default();
        let train = stream(1, 6);
        let valid = named_stream("valid", 1, 2);
        let mode = config.peval_mode;
        let mut s = builder(tiny_mlp(2), 0.2, 10)
            .periodic_eval(PeriodicEval::Every { every: 1, mode })
            .evaluator(Scripted::new(key, values, weights.clone()))
            .plugin(EarlyStoppingPlugin::new(config).unwrap())
            .plugin(Counts(counts.clone()))
            .build()
            .unwrap();
        s.train_with_eval(&train[0], &[&valid]).unwrap();
        let c = counts.lock().unwrap()[0];
        let w = weights.lock().unwrap().clone();
        (c, w, classifier_weight(s.model()))
    }

    #[test]
    fn stops_after_patience_epochs_and_restores_the_best_weights() {
        // best 0.7 at epoch 1; epochs 2 and 3 do not improve → stop before epoch 3 (patience 2).
        let ((epochs, _), w, last) =
            run_scripted(EarlyStoppingConfig::new(2, "valid"), ACC_KEY, vec![0.5, 0.7, 0.6, 0.65, 0.9, 0.9]);
        assert_eq!(epochs, 3, "epochs 0, 1, 2 run; stopped before epoch 3");
        assert_ne!(w[1], w[3], "the model trained after the best epoch");
        assert_eq!(last, w[1], "the weights seen with the best value are restored");

        // Without improvement at all, the first value is the best: back to the initial weights.
        let ((epochs, _), w, last) = run_scripted(EarlyStoppingConfig::new(1, "valid_stream"), ACC_KEY, vec![0.5; 12]);
        assert_eq!(epochs, 1);
        assert_eq!(last, w[0]);

        // Steady improvement: all epochs run and the trained model is kept.
        let values = (0..12).map(|i| i as f64 / 10.0).collect();
        let ((epochs, _), w, last) = run_scripted(EarlyStoppingConfig::new(1, "valid"), ACC_KEY, values);
        assert_eq!(epochs, 10);
        assert_ne!(last, w[9], "the last epoch's update is kept");
    }

    #[test]
    fn margin_mode_and_metric_key() {
        // Improvements smaller than the margin do not count.
        let config = EarlyStoppingConfig::new(2, "valid").with_margin(0.02);
        let ((epochs, _), w, last) = run_scripted(config, ACC_KEY, vec![0.5, 0.505, 0.51, 0.9]);
        assert_eq!(epochs, 2);
        assert_eq!(last, w[0]);

        // EarlyStoppingMode Min on a loss: the lowest value is the best.
        let config =
            EarlyStoppingConfig::new(2, "valid").with_metric_name("Loss_Stream").with_mode(EarlyStoppingMode::Min);
        let key = "Loss_Stream/eval_phase/valid_stream/Task000";
        let ((epochs, _), w, last) = run_scripted(config, key, vec![2.0, 1.0, 0.8, 0.9, 1.5, 0.1]);
        assert_eq!(epochs, 4, "best at epoch 2, stop before epoch 4");
        assert_eq!(last, w[2]);

        // Another stream or metric is ignored: training runs all epochs.
        for key in [
            "Top1_Acc_Stream/eval_phase/valid2_stream/Task000",
            "Top1_Acc_Stream/eval_phase/test_stream",
            "Loss_Stream/eval_phase/valid_stream",
        ] {
            let ((epochs, _), _, _) = run_scripted(EarlyStoppingConfig::new(1, "valid"), key, vec![0.5; 12]);
            assert_eq!(epochs, 10, "{key} is not watched");
        }
        // The key without a task suffix matches too.
        let key = "Top1_Acc_Stream/eval_phase/valid_stream";
        assert_eq!(run_scripted(EarlyStoppingConfig::new(1, "valid"), key, vec![0.5; 12]).0.0, 1);
    }

    #[test]
    fn per_iteration_ends_on_the_best_weights() {
        let config = EarlyStoppingConfig::new(2, "valid").with_peval_mode(PevalMode::Iteration);
        let (counts, w, last) = run_scripted(config, ACC_KEY, vec![0.1, 0.2, 0.3, 0.3, 0.3, 0.9, 0.9]);
        // Best at iteration 2; the stop is requested before iteration 4, which still runs (as in
        // Avalanche), then the epoch ends and no other starts.
        assert_eq!(counts, (2, 5));
        assert_ne!(w[2], w[4]);
        assert_eq!(last, w[2], "the best weights are restored after the last iteration");
    }

    #[test]
    fn resets_at_each_experience_and_reads_the_real_evaluation() {
        // With lr = 0 the validation accuracy never improves: stop after `patience` epochs, in
        // every experience (the best value of an experience is forgotten at the next).
        let train = stream(2, 6);
        let valid = named_stream("valid", 1, 4);
        for (patience, name) in [(1, "valid"), (3, "valid_stream")] {
            let counts: Shared<(u64, u64)> = Arc::default();
            let mut s = builder(tiny_mlp(4), 0.0, 8)
                .eval_every(Some(1))
                .plugin(EarlyStoppingPlugin::new(EarlyStoppingConfig::new(patience, name)).unwrap())
                .plugin(Counts(counts.clone()))
                .build()
                .unwrap();
            let results = s.train_with_eval(&train, &[&valid]).unwrap();
            assert!(results.contains_key(ACC_KEY), "{results:?}");
            let counts = counts.lock().unwrap();
            assert_eq!(counts.iter().map(|c| c.0).collect::<Vec<_>>(), vec![patience as u64; 2]);
            let es = s.plugin::<EarlyStoppingPlugin>().unwrap();
            assert!(es.best_value().is_some() && es.best_step() == Some(0));
        }
    }
}
