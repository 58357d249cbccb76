//! The surface a user relies on after the API consolidation: strategies built from names and
//! configurations, plugins and the evaluator reachable after build, the request methods of the
//! state and the parts a plugin must declare, exclusive parts checked at build, the base
//! strategy's default metrics, and configurations that round-trip and are checked once.

use std::sync::{Arc, Mutex};

use cl::prelude::*;

use crate::common::*;

fn sgd() -> OptimizerSpec {
    OptimizerSpec::sgd(0.05)
}

/// A plugin that makes one request in `before_training_iteration` and declares `parts`.
struct Requester {
    parts: Vec<StatePart>,
    request: fn(&mut StrategyState<SimpleMlp>) -> Result<()>,
    seen_loader: Arc<Mutex<Vec<bool>>>,
}

impl Plugin<SimpleMlp> for Requester {
    fn writes(&self) -> Vec<StatePart> {
        self.parts.clone()
    }

    fn before_training_iteration(&mut self, state: &mut StrategyState<SimpleMlp>) -> Result<()> {
        self.seen_loader.lock().unwrap().push(state.dataloader.is_some());
        (self.request)(state)
    }
}

fn requester(parts: Vec<StatePart>, request: fn(&mut StrategyState<SimpleMlp>) -> Result<()>) -> Requester {
    Requester { parts, request, seen_loader: Arc::default() }
}

fn train_with(plugin: Requester) -> (Result<MetricResults>, Strategy<SimpleMlp>) {
    let stream = generated_stream("train", 2, 16);
    let mut strategy = Naive::builder(tiny_mlp(4), sgd(), cl::default_device(), NaiveConfig::default())
        .unwrap()
        .train_mb_size(4)
        .plugin(plugin)
        .build()
        .unwrap();
    (strategy.train(&stream), strategy)
}

#[test]
fn an_undeclared_write_is_a_typed_error_naming_the_part_to_declare() {
    let (result, _) = train_with(requester(vec![], |s| s.set_lr(0.1)));
    match result.unwrap_err() {
        ClError::UndeclaredWrite { plugin, variant, .. } => {
            assert!(plugin.contains("Requester"), "{plugin}");
            assert_eq!(variant, "LearningRate");
        }
        other => panic!("unexpected error {other}"),
    }
    let (result, _) = train_with(requester(vec![], |s| s.stop_training()));
    assert!(matches!(result, Err(ClError::UndeclaredWrite { variant: "StopTraining", .. })));
}

#[test]
fn declared_requests_are_applied() {
    let (result, strategy) = train_with(requester(vec![StatePart::LearningRate], |s| s.set_lr(0.125)));
    result.unwrap();
    assert_eq!(strategy.state().lr(), 0.125);
    // Stop training: the epoch ends after the first iteration of each experience.
    let (result, strategy) = train_with(requester(vec![StatePart::StopTraining], |s| s.stop_training()));
    result.unwrap();
    assert_eq!(strategy.state().clock().train_iterations, 2);
}

#[test]
fn a_nan_or_negative_learning_rate_is_rejected() {
    let (result, _) = train_with(requester(vec![StatePart::LearningRate], |s| s.set_lr(f64::NAN)));
    assert!(matches!(result, Err(ClError::InvalidLearningRate { .. })), "{result:?}");
    let (result, _) = train_with(requester(vec![StatePart::LearningRate], |s| s.set_lr(-1.0)));
    assert!(matches!(result, Err(ClError::InvalidLearningRate { .. })), "{result:?}");
    // And in the optimizer's configuration, at build.
    let err = Naive::builder(tiny_mlp(4), OptimizerSpec::sgd(f64::NAN), cl::default_device(), NaiveConfig::default())
        .unwrap()
        .build()
        .err()
        .expect("NaN lr rejected");
    assert_eq!(err.rule(), Some("lr_finite_non_negative"), "{err}");
}

#[test]
fn the_dataloader_is_reachable_in_iteration_callbacks() {
    let plugin = requester(vec![], |_| Ok(()));
    let seen = plugin.seen_loader.clone();
    let (result, _) = train_with(plugin);
    result.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 8, "2 experiences of 4 batches");
    assert!(seen.iter().all(|&s| s));
}

#[test]
fn plugins_and_the_evaluator_are_reachable_after_build() {
    let stream = generated_stream("train", 2, 16);
    let mut strategy = Replay::builder(tiny_mlp(4), sgd(), cl::default_device(), ReplayConfig::new(10))
        .unwrap()
        .train_mb_size(4)
        .plugin(EarlyStoppingPlugin::new(EarlyStoppingConfig::new(3, "train")).unwrap())
        .build()
        .unwrap();
    strategy.train(&stream).unwrap();
    let replay = strategy.plugin::<ReplayPlugin>().expect("the strategy's replay plugin");
    assert_eq!(replay.config().mem_size, 10);
    assert!(strategy.plugin::<EarlyStoppingPlugin>().is_some());
    assert!(strategy.plugin_mut::<EwcPlugin>().is_none());
    let evaluator = strategy.evaluator_as::<EvaluationPlugin>().expect("the default evaluator");
    assert!(!evaluator.last_metrics().is_empty());
}

#[test]
fn the_base_strategy_has_the_default_evaluator() {
    let stream = generated_stream("test", 2, 8);
    let mut strategy = Strategy::builder(tiny_mlp(4), sgd(), cl::default_device()).build().unwrap();
    let results = strategy.eval(&stream).unwrap();
    assert!(results.contains_key("Top1_Acc_Stream/eval_phase/test_stream/Task000"), "{:?}", results.keys());
    assert!(results.contains_key("Loss_Stream/eval_phase/test_stream/Task000"), "{:?}", results.keys());
    assert!(results.contains_key("Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp001"));
}

#[test]
fn exclusive_parts_are_checked_at_build() {
    let device = cl::default_device();
    let err = Gem::builder(tiny_mlp(4), sgd(), device.clone(), GemConfig::new(4))
        .unwrap()
        .plugin(AGemPlugin::new(AGemConfig::new(4)).unwrap())
        .build()
        .err()
        .expect("GEM + A-GEM rejected");
    assert!(matches!(err, ClError::IncompatiblePlugins(_)), "{err}");
    assert!(err.to_string().contains("GradientProjection"), "{err}");
    let err = GDumb::builder(tiny_mlp(4), sgd(), device, GDumbConfig::new(8))
        .unwrap()
        .plugin(FromScratchPlugin::new(FromScratchConfig::default()).unwrap())
        .build()
        .err()
        .expect("GDumb + FromScratch rejected");
    assert!(matches!(err, ClError::IncompatiblePlugins(_)), "{err}");
    assert!(err.to_string().contains("ModelReset"), "{err}");
}

#[test]
fn different_strategies_from_names_and_configs_train_in_one_list() {
    let stream = generated_stream("train", 2, 16);
    let methods = [
        r#"{"name": "naive", "config": {}}"#,
        r#"{"name": "cumulative", "config": {}}"#,
        r#"{"name": "ewc", "config": {"ewc_lambda": 0.4}}"#,
        r#"{"name": "replay", "config": {"mem_size": 8}}"#,
        r#"{"name": "lwf", "config": {"alpha": 0.5, "temperature": 2.0}}"#,
    ];
    let mut strategies: Vec<Strategy<SimpleMlp>> = methods
        .iter()
        .map(|json| {
            let method = StrategyConfig::from_json(json)?;
            method.builder(tiny_mlp(4), sgd(), cl::default_device())?.train_mb_size(4).build()
        })
        .collect::<Result<_>>()
        .unwrap();
    for strategy in &mut strategies {
        strategy.train(&stream).unwrap();
        assert_eq!(strategy.state().clock().train_exp_counter, 2);
    }
    // Cumulative saw 16 + 32 samples in batches of 4, the others 16 + 16.
    assert_eq!(strategies[1].state().clock().train_iterations, 12);
    assert_eq!(strategies[0].state().clock().train_iterations, 8);
}

#[test]
fn the_training_config_round_trips_and_is_checked_at_build() {
    let config = TrainingConfig::default().with_train_mb_size(32).with_train_epochs(2);
    assert_eq!(TrainingConfig::from_json(&config.to_json()).unwrap(), config);
    assert_eq!(TrainingConfig::from_toml(&config.to_toml().unwrap()).unwrap(), config);
    let err = Naive::builder(tiny_mlp(4), sgd(), cl::default_device(), NaiveConfig::default())
        .unwrap()
        .train_mb_size(0)
        .build()
        .err()
        .expect("batch size 0 rejected");
    assert_eq!(err.rule(), Some("train_mb_size_positive"), "{err}");
    let spec = OptimizerSpec::sgd(0.1).with_momentum(0.9).with_weight_decay(1e-4);
    assert_eq!(OptimizerSpec::from_toml(&spec.to_toml().unwrap()).unwrap(), spec);
}

/// A model taken from a trained strategy starts a new strategy with its trained weights (it is
/// on the autodiff backend already; building used to panic in burn-autodiff), and the new
/// strategy trains it; the first strategy's model is untouched.
#[test]
fn a_trained_model_starts_another_strategy() {
    let b = fixture_benchmark(1);
    let dev = cl::default_device;
    let model = SimpleMlpConfig::new().with_seed(Some(1)).init(&dev()).unwrap();
    let mut first =
        Naive::builder(model, sgd(), dev(), NaiveConfig::default()).unwrap().train_mb_size(64).build().unwrap();
    first.train(&b.train_stream[0]).unwrap();
    let before = classifier_weight(first.model());
    let mut second = Naive::builder(first.model().clone(), sgd(), dev(), NaiveConfig::default())
        .unwrap()
        .train_mb_size(64)
        .build()
        .unwrap();
    assert_eq!(classifier_weight(second.model()), before, "the trained weights carry over");
    second.train(&b.train_stream[1]).unwrap();
    assert_ne!(classifier_weight(second.model()), before, "the new strategy trains them");
    assert_eq!(classifier_weight(first.model()), before, "the first strategy's model is its own");
}
