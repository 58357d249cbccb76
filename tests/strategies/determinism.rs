//! Same seed, same numbers on the CPU backend.
//!
//! Alone in its test binary: Burn's CPU backends draw from one process-wide RNG, so tests
//! running in parallel in the same process would interleave their draws.

use crate::common::*;
use cl::prelude::*;

#[test]
fn same_seed_same_numbers_on_the_cpu() {
    let b = fixture_benchmark(2);
    let run = || {
        let device = cl::default_device();
        device.seed(5); // the model's initial weights
        let model = SimpleMlpConfig::new().init(&device).unwrap();
        let mut s = Naive::builder(model, OptimizerSpec::sgd(0.01).with_momentum(0.9), device, NaiveConfig::default())
            .unwrap()
            .train_mb_size(64)
            .eval_mb_size(100)
            .seed(5)
            .build()
            .unwrap();
        s.train(&b.train_stream[0]).unwrap();
        let results = s.eval(&b.test_stream.slice(0..1)).unwrap();
        (classifier_weight(s.model()), results)
    };
    let (w1, r1) = run();
    let (w2, r2) = run();
    assert_eq!(w1, w2);
    assert_eq!(r1, r2);
}
