//! Training-control plugins: early stopping, learning-rate scheduling, from-scratch training.

use cl::core::PevalMode;
use cl::core::{ClError, Experience, Plugin, Result, StrategyState, Stream};
use cl::plugins::StepGranularity;

/// A scheduler plugin from a schedule and the config's setters.
fn sched(s: SchedulerConfig, f: impl FnOnce(LrSchedulerConfig) -> LrSchedulerConfig) -> LrSchedulerPlugin {
    LrSchedulerPlugin::new(f(LrSchedulerConfig::new(s))).unwrap()
}

fn es(
    patience: usize,
    stream: &str,
    f: impl FnOnce(EarlyStoppingConfig) -> EarlyStoppingConfig,
) -> EarlyStoppingPlugin {
    EarlyStoppingPlugin::new(f(EarlyStoppingConfig::new(patience, stream))).unwrap()
}
use crate::common::*;
use cl::prelude::*;

fn builder(model: SimpleMlp, lr: f64, epochs: usize) -> StrategyBuilder<SimpleMlp> {
    Naive::builder(model, OptimizerSpec::sgd(lr), cl::default_device(), NaiveConfig::default())
        .unwrap()
        .train_mb_size(2)
        .train_epochs(epochs)
        .eval_mb_size(2)
        .seed(3)
}

/// Writes a scripted metric value into `last_metrics` before each epoch (or iteration) — as the
/// periodic evaluation would — and records the model's classifier weights at that point.
/// Values are indexed by the epoch (iteration) counter of the current experience and by the
/// experience counter. The weights are read back with `strategy.plugin::<Inject>()`.
struct Inject {
    key: String,
    values: Vec<Vec<f64>>,
    per_iteration: bool,
    weights: Vec<Vec<f32>>,
}

impl Inject {
    fn new(key: &str, values: Vec<Vec<f64>>) -> Self {
        Self { key: key.into(), values, per_iteration: false, weights: Vec::new() }
    }
    fn inject(&mut self, s: &mut StrategyState<SimpleMlp>, step: u64) {
        let exp = s.clock().train_exp_counter as usize;
        if let Some(v) = self.values[exp].get(step as usize) {
            s.last_metrics_mut().insert(self.key.clone(), *v);
        }
        self.weights.push(classifier_weight(s.model()));
    }
}

impl Plugin<SimpleMlp> for Inject {
    fn before_training_epoch(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
        if !self.per_iteration {
            self.inject(s, s.clock().train_exp_epochs);
        }
        Ok(())
    }
    fn before_training_iteration(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
        if self.per_iteration {
            self.inject(s, s.clock().train_exp_iterations);
        }
        Ok(())
    }
}

/// Records the number of epochs and iterations of each experience.
#[derive(Default)]
struct Counts(Vec<(u64, u64)>);
impl Plugin<SimpleMlp> for Counts {
    fn after_training_exp(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
        self.0.push((s.clock().train_exp_epochs, s.clock().train_exp_iterations));
        Ok(())
    }
}

/// The (epochs, iterations) of each experience recorded by the strategy's `Counts` probe.
fn counts(s: &Strategy<SimpleMlp>) -> &[(u64, u64)] {
    &s.plugin::<Counts>().expect("a Counts probe").0
}

/// The weights recorded by the strategy's `Inject` probe.
fn injected_weights(s: &Strategy<SimpleMlp>) -> &[Vec<f32>] {
    &s.plugin::<Inject>().expect("an Inject probe").weights
}

const ACC_KEY: &str = "Top1_Acc_Stream/eval_phase/valid_stream/Task000";

/// Trains 1 experience of 6 samples (3 iterations per epoch) for 10 epochs with scripted values;
/// returns (epochs run, weights recorded before each epoch, final weights).
fn run_scripted(es: EarlyStoppingPlugin, key: &str, values: Vec<f64>) -> (u64, Vec<Vec<f32>>, Vec<f32>) {
    let stream = generated_stream("train", 1, 6);
    let mut s = builder(tiny_mlp(2), 0.2, 10)
        .plugin(Inject::new(key, vec![values]))
        .plugin(es)
        .plugin(Counts::default())
        .build()
        .unwrap();
    s.train(&stream[0]).unwrap();
    (counts(&s)[0].0, injected_weights(&s).to_vec(), classifier_weight(s.model()))
}

#[test]
fn early_stopping_stops_after_patience_epochs_and_restores_the_best_weights() {
    // best 0.7 at epoch 1; epochs 2 and 3 do not improve → stop before epoch 3 (patience 2).
    let es = EarlyStoppingPlugin::new(EarlyStoppingConfig::new(2, "valid")).unwrap();
    let (epochs, w, last) = run_scripted(es, ACC_KEY, vec![0.5, 0.7, 0.6, 0.65, 0.9, 0.9]);
    assert_eq!(epochs, 3, "epochs 0, 1, 2 run; stopped before epoch 3");
    assert_eq!(w.len(), 4);
    assert_ne!(w[1], w[3], "the model trained after the best epoch");
    assert_eq!(last, w[1], "the weights seen with the best value are restored");

    // Without improvement at all, the first value is the best: back to the initial weights.
    let es = EarlyStoppingPlugin::new(EarlyStoppingConfig::new(1, "valid_stream")).unwrap();
    let (epochs, w, last) = run_scripted(es, ACC_KEY, vec![0.5; 10]);
    assert_eq!(epochs, 1);
    assert_eq!(last, w[0]);

    // Steady improvement: all epochs run and the trained model is kept.
    let es = EarlyStoppingPlugin::new(EarlyStoppingConfig::new(1, "valid")).unwrap();
    let (epochs, w, last) = run_scripted(es, ACC_KEY, (0..10).map(|i| i as f64 / 10.0).collect());
    assert_eq!(epochs, 10);
    assert_ne!(last, w[9], "the last epoch's update is kept");
}

#[test]
fn early_stopping_margin_mode_and_metric_key() {
    // Improvements smaller than the margin do not count.
    let plugin = es(2, "valid", |c| c.with_margin(0.02));
    let (epochs, w, last) = run_scripted(plugin, ACC_KEY, vec![0.5, 0.505, 0.51, 0.9]);
    assert_eq!(epochs, 2);
    assert_eq!(last, w[0]);

    // Mode Min on a loss: the lowest value is the best.
    let plugin = es(2, "valid", |c| c.with_metric_name("Loss_Stream").with_mode(EarlyStoppingMode::Min));
    let (epochs, w, last) =
        run_scripted(plugin, "Loss_Stream/eval_phase/valid_stream/Task000", vec![2.0, 1.0, 0.8, 0.9, 1.5, 0.1]);
    assert_eq!(epochs, 4, "best at epoch 2, stop before epoch 4");
    assert_eq!(last, w[2]);

    // Another stream or metric is ignored: training runs all epochs.
    for key in [
        "Top1_Acc_Stream/eval_phase/valid2_stream/Task000",
        "Top1_Acc_Stream/eval_phase/test_stream",
        "Loss_Stream/eval_phase/valid_stream",
    ] {
        let es = EarlyStoppingPlugin::new(EarlyStoppingConfig::new(1, "valid")).unwrap();
        let (epochs, _, _) = run_scripted(es, key, vec![0.5; 10]);
        assert_eq!(epochs, 10, "{key} is not watched");
    }
    // The key without a task suffix matches too.
    let es = EarlyStoppingPlugin::new(EarlyStoppingConfig::new(1, "valid")).unwrap();
    assert_eq!(run_scripted(es, "Top1_Acc_Stream/eval_phase/valid_stream", vec![0.5; 10]).0, 1);
}

#[test]
fn early_stopping_validates_its_configuration() {
    assert!(matches!(
        EarlyStoppingPlugin::new(EarlyStoppingConfig::new(0, "valid")),
        Err(ClError::InvalidConfig { rule: "patience_positive", .. })
    ));
    let es = || EarlyStoppingConfig::new(1, "valid");
    for m in [-0.1, f64::NAN, f64::INFINITY] {
        assert!(
            matches!(
                EarlyStoppingPlugin::new(es().with_margin(m)),
                Err(ClError::InvalidConfig { rule: "margin_finite_non_negative", .. })
            ),
            "{m}"
        );
    }
    assert!(EarlyStoppingPlugin::new(es().with_margin(0.0)).is_ok());
    assert_eq!(
        <EarlyStoppingPlugin as Plugin<SimpleMlp>>::writes(&EarlyStoppingPlugin::new(es()).unwrap()),
        vec![cl::core::StatePart::Model, cl::core::StatePart::StopTraining]
    );
}

#[test]
fn early_stopping_resets_at_each_experience() {
    let stream = generated_stream("train", 2, 6);
    // Experience 0 stops before epoch 2 (patience 2, no improvement); experience 1 would stop at
    // once if the best value 0.9 of experience 0 were kept.
    let values = vec![vec![0.9, 0.5, 0.5, 0.5], vec![0.1, 0.2, 0.3, 0.3, 0.3]];
    let mut s = builder(tiny_mlp(4), 0.2, 5)
        .plugin(Inject::new(ACC_KEY, values))
        .plugin(EarlyStoppingPlugin::new(EarlyStoppingConfig::new(2, "valid")).unwrap())
        .plugin(Counts::default())
        .build()
        .unwrap();
    s.train(&stream).unwrap();
    assert_eq!(counts(&s), [(2, 6), (4, 12)]);
}

#[test]
fn early_stopping_per_iteration_ends_on_the_best_weights() {
    let stream = generated_stream("train", 1, 6);
    let mut inject = Inject::new(ACC_KEY, vec![vec![0.1, 0.2, 0.3, 0.3, 0.3, 0.9, 0.9]]);
    inject.per_iteration = true;
    let mut s = builder(tiny_mlp(2), 0.2, 10)
        .plugin(inject)
        .plugin(es(2, "valid", |c| c.with_peval_mode(PevalMode::Iteration)))
        .plugin(Counts::default())
        .build()
        .unwrap();
    s.train(&stream[0]).unwrap();
    // Best at iteration 2; the stop is requested before iteration 4, which still runs (as in
    // Avalanche), then the epoch ends and no other starts.
    assert_eq!(counts(&s), [(2, 5)]);
    let w = injected_weights(&s);
    assert_ne!(w[2], w[4]);
    assert_eq!(classifier_weight(s.model()), w[2], "the best weights are restored after the last iteration");
}

#[test]
fn early_stopping_reads_the_periodic_evaluation_of_the_validation_stream() {
    let train = generated_stream("train", 1, 6);
    let valid = generated_stream("valid", 1, 4);
    // With lr = 0 the validation accuracy never improves: stop after `patience` epochs.
    for (patience, name) in [(1, "valid"), (3, "valid_stream")] {
        let mut s = builder(tiny_mlp(2), 0.0, 8)
            .eval_every(Some(1))
            .plugin(EarlyStoppingPlugin::new(EarlyStoppingConfig::new(patience, name)).unwrap())
            .plugin(Counts::default())
            .build()
            .unwrap();
        let results = s.train_with_eval(&train[0], &[&valid]).unwrap();
        assert!(results.contains_key(ACC_KEY), "{results:?}");
        assert_eq!(counts(&s)[0].0, patience as u64);
    }
    // A learning model improves its loss every epoch at first: no stop within 3 epochs.
    let mut s = builder(tiny_mlp(2), 0.05, 3)
        .eval_every(Some(1))
        .plugin(es(1, "valid", |c| c.with_metric_name("Loss_Stream").with_mode(EarlyStoppingMode::Min)))
        .plugin(Counts::default())
        .build()
        .unwrap();
    s.train_with_eval(&train[0], &[&valid]).unwrap();
    assert_eq!(counts(&s)[0].0, 3);
}

/// Records `state.lr` before each epoch and each iteration.
#[derive(Default)]
struct LrProbe {
    epochs: Vec<f64>,
    iterations: Vec<f64>,
}
impl Plugin<SimpleMlp> for LrProbe {
    fn before_training_epoch(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
        self.epochs.push(s.lr());
        Ok(())
    }
    fn before_training_iteration(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
        self.iterations.push(s.lr());
        Ok(())
    }
}

/// Trains `n_exps` experiences of 6 samples (3 iterations/epoch); returns the lr seen before
/// each epoch and each iteration, and the lr left in the state.
fn run_lr(plugin: LrSchedulerPlugin, lr: f64, epochs: usize, n_exps: usize) -> (Vec<f64>, Vec<f64>, f64) {
    let stream = generated_stream("train", n_exps, 6);
    let mut s = builder(tiny_mlp(2 * n_exps), lr, epochs).plugin(plugin).plugin(LrProbe::default()).build().unwrap();
    s.train(&stream).unwrap();
    let probe = s.plugin::<LrProbe>().expect("an LrProbe");
    (probe.epochs.clone(), probe.iterations.clone(), s.state().lr())
}

fn assert_close(actual: &[f64], expected: &[f64]) {
    assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
    for (a, e) in actual.iter().zip(expected) {
        assert!((a - e).abs() < 1e-12, "{actual:?} vs {expected:?}");
    }
}

#[test]
fn lr_scheduler_steps_after_each_epoch_and_resets_per_experience() {
    // StepLR(step_size=2, gamma=0.5), lr 0.1, 5 epochs, 2 experiences.
    let per_exp = [0.1, 0.1, 0.05, 0.05, 0.025];
    let (epochs, iterations, last) =
        run_lr(sched(SchedulerConfig::Step { step_size: 2, gamma: 0.5 }, |c| c), 0.1, 5, 2);
    assert_close(&epochs, &[per_exp, per_exp].concat());
    let per_iter: Vec<f64> = per_exp.iter().flat_map(|&lr| [lr; 3]).collect();
    assert_close(&iterations, &[per_iter.clone(), per_iter].concat());
    assert_eq!(last, 0.1, "reset_lr restores the initial lr after each experience");

    // Without resetting the scheduler the schedule continues; reset_lr gives the first epoch of
    // the next experience the initial lr.
    let (epochs, _, _) =
        run_lr(sched(SchedulerConfig::Step { step_size: 2, gamma: 0.5 }, |c| c.with_reset_scheduler(false)), 0.1, 5, 2);
    assert_close(&epochs, &[0.1, 0.1, 0.05, 0.05, 0.025, 0.1, 0.0125, 0.0125, 0.00625, 0.00625]);
    // Neither reset: the lr continues from where it was.
    let (epochs, _, last) = run_lr(
        sched(SchedulerConfig::Step { step_size: 2, gamma: 0.5 }, |c| {
            c.with_reset_scheduler(false).with_reset_lr(false)
        }),
        0.1,
        3,
        2,
    );
    assert_close(&epochs, &[0.1, 0.1, 0.05, 0.05, 0.025, 0.025]);
    assert!((last - 0.0125).abs() < 1e-12);

    // Cosine annealing, T_max = 4.
    let (epochs, _, _) = run_lr(sched(SchedulerConfig::cosine_annealing(4), |c| c), 0.1, 5, 1);
    let cos = |t: f64| 0.05 * (1.0 + (std::f64::consts::PI * t / 4.0).cos());
    assert_close(&epochs, &[cos(0.0), cos(1.0), cos(2.0), cos(3.0), cos(4.0)]);

    // Linear warm-up: LinearLR(start_factor=0.25, end_factor=1, total_iters=2).
    let (epochs, _, _) = run_lr(
        sched(SchedulerConfig::Linear { start_factor: 0.25, end_factor: 1.0, total_iters: 2 }, |c| c),
        0.08,
        4,
        1,
    );
    assert_close(&epochs, &[0.02, 0.05, 0.08, 0.08]);

    // MultiStepLR and LambdaLR.
    let (epochs, _, _) =
        run_lr(sched(SchedulerConfig::MultiStep { milestones: vec![1, 3], gamma: 0.1 }, |c| c), 0.5, 4, 1);
    assert_close(&epochs, &[0.5, 0.05, 0.05, 0.005]);
    let (epochs, _, _) = run_lr(LrSchedulerPlugin::lambda(|t| 1.0 / (t + 1) as f64), 0.6, 3, 1);
    assert_close(&epochs, &[0.6, 0.3, 0.2]);
}

#[test]
fn lr_scheduler_steps_after_each_iteration() {
    // ExponentialLR(gamma=0.5) stepped per iteration, 2 epochs of 3 iterations, 2 experiences.
    let plugin =
        sched(SchedulerConfig::Exponential { gamma: 0.5 }, |c| c.with_step_granularity(StepGranularity::Iteration));
    let (epochs, iterations, _) = run_lr(plugin, 0.08, 2, 2);
    let per_exp: Vec<f64> = (0..6).map(|i| 0.08 * 0.5f64.powi(i)).collect();
    assert_close(&iterations, &[per_exp.clone(), per_exp].concat());
    assert_close(&epochs, &[0.08, 0.01, 0.08, 0.01]);

    // first_epoch_only: steps during the first epoch of each experience only.
    let plugin = sched(SchedulerConfig::Exponential { gamma: 0.5 }, |c| {
        c.with_step_granularity(StepGranularity::Iteration).with_first_epoch_only(true)
    });
    let (_, iterations, _) = run_lr(plugin, 0.08, 2, 1);
    assert_close(&iterations, &[0.08, 0.04, 0.02, 0.01, 0.01, 0.01]);

    // first_exp_only: the second experience keeps the initial lr.
    let plugin = sched(SchedulerConfig::Step { step_size: 1, gamma: 0.5 }, |c| c.with_first_exp_only(true));
    let (epochs, _, _) = run_lr(plugin, 0.1, 3, 2);
    assert_close(&epochs, &[0.1, 0.05, 0.025, 0.1, 0.1, 0.1]);
}

#[test]
fn lr_scheduler_configuration_errors() {
    let rule = |s: SchedulerConfig| LrSchedulerPlugin::new(LrSchedulerConfig::new(s)).err().and_then(|e| e.rule());
    assert_eq!(rule(SchedulerConfig::Step { step_size: 0, gamma: 0.1 }), Some("step_size_positive"));
    assert_eq!(rule(SchedulerConfig::Exponential { gamma: -0.5 }), Some("gamma_finite_positive"));
    assert_eq!(rule(SchedulerConfig::cosine_annealing(0)), Some("t_max_positive"));
    assert_eq!(
        rule(SchedulerConfig::Linear { start_factor: 0.0, end_factor: 1.0, total_iters: 2 }),
        Some("start_factor_finite_positive")
    );
    // Burn's cosine scheduler rejects lr > 1: reported when training starts (the built-in
    // CosineAnnealing, PyTorch's, accepts any rate).
    let stream = generated_stream("train", 1, 6);
    let burn_cosine = LrSchedulerPlugin::from_config(|lr| {
        cl::burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig::new(lr, 4)
    });
    let mut s = builder(tiny_mlp(2), 2.0, 1).plugin(burn_cosine).build().unwrap();
    assert!(matches!(s.train(&stream[0]), Err(ClError::InvalidConfig { rule: "lr_scheduler", .. })));
    // Two schedulers own the learning rate.
    let err = builder(tiny_mlp(2), 0.1, 1)
        .plugin(sched(SchedulerConfig::Step { step_size: 1, gamma: 0.5 }, |c| c))
        .plugin(sched(SchedulerConfig::cosine_annealing(4), |c| c))
        .build()
        .err()
        .unwrap();
    assert!(matches!(err, ClError::IncompatiblePlugins(_)), "{err}");
}

/// Records the classifier weights at the start and the end of each experience.
#[derive(Default)]
struct ModelProbe(Vec<(Vec<f32>, Vec<f32>)>, Vec<f32>);
impl Plugin<SimpleMlp> for ModelProbe {
    fn before_training_exp(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
        self.1 = classifier_weight(s.model());
        Ok(())
    }
    fn after_training_exp(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
        self.0.push((std::mem::take(&mut self.1), classifier_weight(s.model())));
        Ok(())
    }
}

/// The (start, end) weights of each experience recorded by the strategy's `ModelProbe`.
fn model_log(s: &Strategy<SimpleMlp>) -> &[(Vec<f32>, Vec<f32>)] {
    &s.plugin::<ModelProbe>().expect("a ModelProbe").0
}

#[test]
fn from_scratch_gives_a_fresh_model_at_each_experience() {
    let model = tiny_mlp(6);
    let w_init = classifier_weight(&model);
    let stream = generated_stream("train", 3, 6);
    let mut s = builder(model, 0.2, 2)
        .plugin(FromScratchPlugin::new(FromScratchConfig::default()).unwrap().with_factory(|| tiny_mlp(6)))
        .plugin(ModelProbe::default())
        .build()
        .unwrap();
    s.train(&stream).unwrap();
    let log = model_log(&s);
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].0, w_init, "the first experience trains the given model");
    for e in 1..3 {
        let (start, end) = &log[e];
        assert_ne!(start, &log[e - 1].1, "experience {e} does not start from the trained model");
        // The factory builds SimpleMlp with its seeded initialisation: every experience starts
        // from the initial weights, as Avalanche's FromScratchTraining resets to them.
        assert_eq!(start, &w_init, "experience {e} starts from the factory's initialisation");
        assert_ne!(start, end, "the fresh model trains (it lives on the autodiff device)");
    }
}

#[test]
fn from_scratch_resets_the_optimizer_state() {
    // Two experiences with the same data, full batches, SGD with momentum: from the same initial
    // weights with a fresh optimizer, the second experience repeats the first one; with the
    // momentum kept, it does not.
    let data = generated(6, &[0, 1]);
    let stream = Stream::new("train", (0..2).map(|e| Experience::new(e, data.clone(), "train", 2)).collect());
    let run = |reset: bool| {
        let initial = tiny_mlp(2);
        let init = initial.clone();
        let mut s = Naive::builder(
            initial,
            OptimizerSpec::sgd(0.1).with_momentum(0.9),
            cl::default_device(),
            NaiveConfig::default(),
        )
        .unwrap()
        .train_mb_size(6)
        .train_epochs(4)
        .plugin(
            FromScratchPlugin::new(FromScratchConfig::default().with_reset_optimizer(reset))
                .unwrap()
                .with_factory(move || init.clone()),
        )
        .plugin(ModelProbe::default())
        .build()
        .unwrap();
        s.train(&stream).unwrap();
        let log = model_log(&s);
        assert_eq!(log[0].0, log[1].0, "both experiences start from the same weights");
        let diff: f32 = log[0].1.iter().zip(&log[1].1).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        diff
    };
    let with_reset = run(true);
    let without_reset = run(false);
    assert!(with_reset < 1e-5, "fresh optimizer: same trajectory (max diff {with_reset})");
    assert!(without_reset > 1e-3, "kept momentum changes the trajectory (max diff {without_reset})");
}
