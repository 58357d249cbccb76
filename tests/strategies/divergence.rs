//! A diverging run (SGD at lr 1e6 on the fixture): a typed error by default, the other
//! non-finite-loss policies, and metrics that never count NaN outputs as right.

use cl::core::NonFiniteLoss;
use cl::prelude::*;

use crate::common::fixture_benchmark;

fn diverging(policy: NonFiniteLoss) -> Strategy<SimpleMlp> {
    let device = cl::default_device();
    let model = SimpleMlpConfig::new().with_hidden_size(64).init(&device).unwrap();
    Naive::builder(model, OptimizerSpec::sgd(1e6), device, NaiveConfig::default())
        .unwrap()
        .config(
            TrainingConfig::new()
                .with_train_mb_size(32)
                .with_eval_mb_size(256)
                .with_seed(1)
                .with_non_finite_loss(policy),
        )
        .build()
        .unwrap()
}

fn finite_weights(strategy: &Strategy<SimpleMlp>) -> bool {
    crate::common::classifier_weight(strategy.model()).iter().all(|w| w.is_finite())
}

#[test]
fn a_diverging_run_is_an_error_naming_where_and_what_to_lower() {
    let benchmark = fixture_benchmark(1);
    let mut strategy = diverging(NonFiniteLoss::Error);
    let err = strategy.train(&benchmark.train_stream[0]).unwrap_err();
    match &err {
        ClError::NonFiniteLoss { loss, experience, epoch, iteration, lr } => {
            assert!(!loss.is_finite());
            assert_eq!((*experience, *epoch, *lr), (0, 0, 1e6));
            assert!(*iteration >= 1, "the first loss is finite: {iteration}");
        }
        other => panic!("expected NonFiniteLoss, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("experience 0") && message.contains("learning rate") && message.contains("λ"),
        "{message}"
    );
    // The diverged update never reached the weights.
    assert!(finite_weights(&strategy));
}

#[test]
fn skip_batch_and_stop_experience_keep_the_weights_finite() {
    let benchmark = fixture_benchmark(1);
    let full_iterations = benchmark.train_stream[0].dataset.len().div_ceil(32) as u64;

    let mut skip = diverging(NonFiniteLoss::SkipBatch);
    skip.train(&benchmark.train_stream[0]).unwrap();
    assert!(finite_weights(&skip));

    let mut stop = diverging(NonFiniteLoss::StopExperience);
    stop.train(&benchmark.train_stream[0]).unwrap();
    assert!(finite_weights(&stop));
    assert!(stop.state().clock().train_iterations < full_iterations, "stopped early");
    // The next experience trains again (and stops again).
    stop.train(&benchmark.train_stream[1]).unwrap();
}

#[test]
fn nan_outputs_are_never_counted_as_right() {
    let benchmark = fixture_benchmark(1);
    // Avalanche's behaviour: train on, NaN spreads into the weights.
    let mut strategy = diverging(NonFiniteLoss::Ignore);
    strategy.train(&benchmark.train_stream[0]).unwrap();
    assert!(!finite_weights(&strategy), "the weights diverged");
    let results = strategy.eval(&benchmark.test_stream).unwrap();
    for j in 0..benchmark.n_experiences() {
        let accuracy = results[&MetricName::test_exp_accuracy(0, j).to_string()];
        assert_eq!(accuracy, 0.0, "experience {j}: NaN logits counted as hits ({accuracy})");
    }
}

/// SI on the fixture (SGD 0.05 with momentum 0.9, λ = 0.1, the checkpoint tests' settings):
/// without a floor its importances go negative and the loss reaches -inf; at its defaults
/// (importances floored at 0) it trains through the stream for every seed.
#[test]
fn synaptic_intelligence_at_its_defaults_does_not_diverge() {
    let run = |config: SynapticIntelligenceConfig, seed: u64| -> cl::core::Result<()> {
        let benchmark =
            split_fmnist(&SplitMnistConfig::new(5).with_seed(3).with_dataset_root(crate::common::fixture_dir()))
                .unwrap();
        let device = cl::default_device();
        let model = SimpleMlpConfig::new().init(&device).unwrap();
        let mut strategy =
            SynapticIntelligence::builder(model, OptimizerSpec::sgd(0.05).with_momentum(0.9), device, config)?
                .train_mb_size(32)
                .seed(seed)
                .build()?;
        for exp in benchmark.train_stream.iter() {
            strategy.train(exp)?;
        }
        let results = strategy.eval(&benchmark.test_stream)?;
        assert!(results.values().all(|v| v.is_finite()), "{results:?}");
        Ok(())
    };
    let mut unfloored_diverged = 0;
    for seed in [11, 1, 2] {
        run(SynapticIntelligenceConfig::new(0.1), seed).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        match run(SynapticIntelligenceConfig::new(0.1).with_min_importance(None), seed) {
            Err(ClError::NonFiniteLoss { .. }) => unfloored_diverged += 1,
            Err(other) => panic!("seed {seed}: {other}"),
            Ok(()) => {}
        }
    }
    assert!(unfloored_diverged >= 1, "Avalanche's unfloored importances diverge on the fixture");
}
