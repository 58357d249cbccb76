//! The catalogue of bad or extreme inputs of issue 15 that the loop meets: each gives a typed
//! error naming the problem, or (for valid extremes) simply works — never a panic or an abort.

use cl::prelude::*;

use crate::common::fixture_benchmark;

#[test]
fn a_batch_size_larger_than_the_data_is_one_batch_not_an_abort() {
    let benchmark = fixture_benchmark(1);
    for (train, eval) in [(usize::MAX, usize::MAX), (1 << 36, 1 << 40)] {
        let device = cl::default_device();
        let model = SimpleMlpConfig::new().with_hidden_size(16).init(&device).unwrap();
        let mut strategy = Replay::builder(model, OptimizerSpec::sgd(0.01), device, ReplayConfig::new(50))
            .unwrap()
            .train_mb_size(train)
            .eval_mb_size(eval)
            .build()
            .unwrap();
        strategy.train(&benchmark.train_stream[0]).unwrap();
        assert_eq!(strategy.state().clock().train_iterations, 1, "one batch of the whole experience");
        strategy.train(&benchmark.train_stream[1]).unwrap();
        let results = strategy.eval(&benchmark.test_stream).unwrap();
        assert!(results.contains_key(&MetricName::test_exp_accuracy(0, 4).to_string()));
    }
}
