//! Naive learns and forgets, Cumulative forgets less, on the shipped Fashion-MNIST fixture.

use crate::common::*;
use cl::prelude::*;

fn accuracy_matrix(mut strategy: Strategy<SimpleMlp>, b: &Benchmark) -> AccuracyMatrix {
    let n = b.n_experiences();
    let mut r = AccuracyMatrix::new(n);
    for exp in &b.train_stream {
        strategy.train(exp).unwrap();
        let results = strategy.eval(&b.test_stream).unwrap();
        for j in 0..n {
            r.set(exp.current_experience, j, results[&MetricName::test_exp_accuracy(0, j).to_string()]);
        }
    }
    r
}

fn model() -> SimpleMlp {
    SimpleMlpConfig::new().init(&cl::default_device()).unwrap()
}

fn optimizer() -> OptimizerSpec {
    OptimizerSpec::sgd(0.01).with_momentum(0.9)
}

#[test]
fn naive_learns_each_experience_then_forgets_and_cumulative_forgets_less() {
    let b = fixture_benchmark(1);
    let naive = Naive::builder(model(), optimizer(), cl::default_device(), NaiveConfig::default())
        .unwrap()
        .train_mb_size(32)
        .train_epochs(5)
        .eval_mb_size(100)
        .seed(1)
        .build()
        .unwrap();
    let r = accuracy_matrix(naive, &b);
    // Two classes out of ten outputs: chance is 10 %; a model that learned the experience is far
    // above it (some pairs, like shirt vs T-shirt, are hard on 400 samples).
    for i in 0..5 {
        assert!(r.get(i, i) > 0.5, "Naive accuracy on experience {i} just after training it: {:?}", r.rows());
    }
    let diagonal = (0..5).map(|i| r.get(i, i)).sum::<f64>() / 5.0;
    assert!(diagonal > 0.75, "mean accuracy on the just-trained experience {diagonal}");
    assert!(r.get(4, 0) < r.get(0, 0) - 0.5, "experience 0 is forgotten: {:?}", r.rows());
    assert!(r.forgetting().unwrap() > 0.6, "Naive forgetting {:?}", r.forgetting());

    let cumulative = Cumulative::builder(model(), optimizer(), cl::default_device(), CumulativeConfig::default())
        .unwrap()
        .train_mb_size(32)
        .train_epochs(5)
        .eval_mb_size(100)
        .seed(1)
        .build()
        .unwrap();
    let rc = accuracy_matrix(cumulative, &b);
    assert!(
        rc.forgetting().unwrap() < r.forgetting().unwrap() - 0.4,
        "Cumulative {:?} vs Naive {:?}",
        rc.forgetting(),
        r.forgetting()
    );
    assert!(rc.average_accuracy(4).unwrap() > r.average_accuracy(4).unwrap() + 0.25);
}

#[test]
fn a_model_with_too_few_outputs_is_rejected_before_training() {
    let b = fixture_benchmark(1);
    let small = SimpleMlpConfig::new().with_num_classes(5).init(&cl::default_device()).unwrap();
    let mut s =
        Naive::builder(small, optimizer(), cl::default_device(), NaiveConfig::default()).unwrap().build().unwrap();
    let err = s.train(&b.train_stream[0]).unwrap_err();
    assert!(matches!(err, ClError::ModelOutputMismatch { model_outputs: 5, needed: 10, .. }), "{err}");
    assert!(err.to_string().contains("with_num_classes(10)"), "{err}");
    assert_eq!(s.state().clock().train_iterations, 0);

    let wrong_input = SimpleMlpConfig::new().with_input_size(100).init(&cl::default_device()).unwrap();
    let mut s = Naive::builder(wrong_input, optimizer(), cl::default_device(), NaiveConfig::default())
        .unwrap()
        .build()
        .unwrap();
    let err = s.eval(&b.test_stream).unwrap_err();
    assert!(matches!(err, ClError::InputShapeMismatch { model_input: 100, sample_len: 784, .. }), "{err}");
}

#[test]
fn invalid_strategy_configuration_is_rejected_when_built() {
    for b in [
        Naive::builder(model(), optimizer(), cl::default_device(), NaiveConfig::default()).unwrap().train_mb_size(0),
        Naive::builder(model(), optimizer(), cl::default_device(), NaiveConfig::default()).unwrap().train_epochs(0),
        Naive::builder(model(), optimizer(), cl::default_device(), NaiveConfig::default()).unwrap().eval_mb_size(0),
    ] {
        assert!(matches!(b.build(), Err(ClError::InvalidConfig { .. })));
    }
    assert!(OptimizerSpec::sgd(f64::NAN).with_momentum(0.9).validate().is_err());
    assert!(OptimizerSpec::sgd(0.1).with_momentum(1.0).validate().is_err());
    assert!(SimpleMlpConfig::new().with_hidden_size(0).init(&cl::default_device()).is_err());
}
