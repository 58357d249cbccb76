//! Streaming LDA on class-incremental SplitFMNIST (the fixture): it forgets far less than Naive
//! (its statistics of old classes never change), on raw pixels and on the features of a trunk
//! trained on the first experience; and the statistics depend only on the samples seen, not on
//! the mini-batch size.

use crate::common::*;
use cl::models::{Flatten, FlattenConfig};
use cl::prelude::*;
use cl::strategies::{SldaFeatures, StreamingLda, StreamingLdaConfig, StreamingLdaSteps};

fn final_accuracy<M: Model>(mut s: Strategy<M>, b: &Benchmark) -> f64 {
    for exp in &b.train_stream {
        s.train(exp).unwrap();
    }
    s.eval(&b.test_stream).unwrap()[&MetricName::test_stream_accuracy(0).to_string()]
}

fn slda(model: Flatten, config: StreamingLdaConfig, mb: usize) -> Strategy<Flatten> {
    StreamingLda::builder(model, OptimizerSpec::sgd(0.01), cl::default_device(), config)
        .unwrap()
        .train_mb_size(mb)
        .eval_mb_size(250)
        .build()
        .unwrap()
}

fn naive(seed: u64) -> Strategy<SimpleMlp> {
    let model = SimpleMlpConfig::new().with_seed(Some(seed)).init(&cl::default_device()).unwrap();
    Naive::builder(model, OptimizerSpec::sgd(0.01).with_momentum(0.9), cl::default_device(), NaiveConfig::default())
        .unwrap()
        .train_mb_size(32)
        .train_epochs(2)
        .eval_mb_size(250)
        .seed(seed)
        .build()
        .unwrap()
}

/// On the fixture (≈400 training samples per experience), over three class orders: Naive ends
/// at 0.21–0.26 (about the last experience only), SLDA on the pixels at 0.76–0.77.
#[test]
fn slda_on_pixels_beats_naive_on_class_incremental_split_fmnist() {
    for seed in 0..3 {
        let b = fixture_benchmark(seed);
        let lda = final_accuracy(slda(FlattenConfig::new(784).init().unwrap(), StreamingLdaConfig::new(10), 64), &b);
        let plain = final_accuracy(naive(seed), &b);
        assert!(plain < 0.35, "seed {seed}: Naive {plain}");
        assert!(lda > plain + 0.4, "seed {seed}: SLDA {lda} vs Naive {plain}");
    }
}

/// Any mini-batch size gives the same statistics (up to rounding): the fit is per sample, in
/// order, and the loader's order does not change the class means.
#[test]
fn the_batch_size_does_not_change_the_statistics() {
    let b = fixture_benchmark(4);
    let n = b.train_stream[0].dataset.len() as u64;
    let mut stats = Vec::new();
    for mb in [1, 37, 400] {
        let mut s = slda(FlattenConfig::new(784).init().unwrap(), StreamingLdaConfig::new(10), mb);
        s.train(&b.train_stream[0]).unwrap();
        let steps = s.steps_as::<StreamingLdaSteps>().unwrap();
        stats.push(steps.statistics().unwrap().clone());
    }
    for other in &stats[1..] {
        assert_eq!(other.counts(), stats[0].counts());
        assert_eq!(other.num_updates(), n);
        for (a, b) in other.means().iter().zip(stats[0].means()) {
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        }
    }
}

/// A SimpleMLP trained on the first experience by Naive, frozen, as SLDA's feature extractor
/// (its 512 hidden features, `SldaFeatures::Features`): the stream ends at 0.82 (seed 1), Naive
/// at 0.25.
#[test]
fn slda_on_a_trunk_trained_on_the_first_experience() {
    let b = fixture_benchmark(1);
    let mut first = naive(1);
    first.train(&b.train_stream[0]).unwrap();
    // The trained weights without their autodiff history.
    let trunk = first.model().valid();
    let config = StreamingLdaConfig::new(10).with_features(SldaFeatures::Features).with_shrinkage(1e-2);
    let strategy = StreamingLda::builder(trunk, OptimizerSpec::sgd(0.01), cl::default_device(), config)
        .unwrap()
        .train_mb_size(64)
        .eval_mb_size(250)
        .build()
        .unwrap();
    let lda = final_accuracy(strategy, &b);
    let plain = final_accuracy(naive(1), &b);
    assert!(lda > plain + 0.4, "SLDA on the trunk {lda} vs Naive {plain}");
}
