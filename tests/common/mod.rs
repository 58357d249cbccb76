//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use cl::core::data::ClassificationDataset;
use cl::core::{Experience, Stream};
use cl::prelude::*;

/// The Fashion-MNIST cut shipped in the repo (2000 train, 500 test samples).
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("cl-benchmarks/tests/fixtures/fashion-mnist-mini")
}

/// SplitFMNIST on the fixture.
pub fn fixture_benchmark(seed: u64) -> Benchmark {
    split_fmnist(&SplitMnistConfig::new(5).with_seed(seed).with_dataset_root(fixture_dir())).unwrap()
}

/// A generated dataset: `n` samples of 4 features, labels `classes` round-robin.
pub fn generated(n: usize, classes: &[u32]) -> ClassificationDataset {
    let inputs: Vec<f32> = (0..n * 4).map(|i| ((i * 37 % 11) as f32) / 11.0).collect();
    let targets: Vec<u32> = (0..n).map(|i| classes[i % classes.len()]).collect();
    ClassificationDataset::from_f32(inputs, vec![4], targets).unwrap()
}

/// A stream of generated experiences, `per_exp` samples each, two classes per experience.
pub fn generated_stream(name: &str, n_exps: usize, per_exp: usize) -> Stream {
    let exps = (0..n_exps)
        .map(|e| {
            let c = 2 * e as u32;
            Experience::new(e, generated(per_exp, &[c, c + 1]), name, 2 * n_exps)
        })
        .collect();
    Stream::new(name, exps)
}

/// A small MLP for generated data.
pub fn tiny_mlp(num_classes: usize) -> SimpleMlp {
    SimpleMlpConfig::new()
        .with_input_size(4)
        .with_hidden_size(8)
        .with_num_classes(num_classes)
        .with_drop_rate(0.0)
        .init(&cl::default_device())
        .unwrap()
}

/// Flattened values of a model's classifier weight.
pub fn classifier_weight(model: &SimpleMlp) -> Vec<f32> {
    model.classifier.weight.val().into_data().try_to_vec::<f32>().unwrap()
}

/// The PermutedFMNIST protocol shared by the behaviour tests of LwF, A-GEM and GEM
/// (`tests/strategies/lwf_agem.rs`, `tests/strategies/gem_cwr.rs`): PermutedFMNIST on the fixture, SimpleMlp with
/// Avalanche's defaults, SGD(0.01, momentum 0.9), `EPOCHS` epochs of batches of 32.
pub mod permuted {
    use cl::prelude::*;

    /// Epochs per experience.
    pub const EPOCHS: usize = 2;

    /// SimpleMlp with Avalanche's defaults.
    pub fn model() -> SimpleMlp {
        SimpleMlpConfig::new().init(&cl::default_device()).unwrap()
    }

    /// SGD(lr 0.01, momentum 0.9).
    pub fn opt() -> OptimizerSpec {
        OptimizerSpec::sgd(0.01).with_momentum(0.9)
    }

    /// Batches of 32, `EPOCHS` epochs, the strategy seeded with `seed + 1`.
    pub fn configure(b: StrategyBuilder<SimpleMlp>, seed: u64) -> Strategy<SimpleMlp> {
        b.train_mb_size(32).train_epochs(EPOCHS).eval_mb_size(250).seed(seed + 1).build().unwrap()
    }

    /// Accuracy on experience 0's test data right after training it, and after the last
    /// experience.
    pub fn exp0_accuracy(mut s: Strategy<SimpleMlp>, b: &Benchmark) -> (f64, f64) {
        let mut first = 0.0;
        let mut last = 0.0;
        for exp in &b.train_stream {
            s.train(exp).unwrap();
            let res = s.eval(&b.test_stream).unwrap();
            last = res[&MetricName::test_exp_accuracy(0, 0).to_string()];
            if exp.current_experience == 0 {
                first = last;
            }
        }
        (first, last)
    }
}

/// The PermutedFMNIST protocol of the regulariser behaviour tests (`tests/strategies/regularization.rs`,
/// `tests/strategies/rwalk.rs`): SimpleMlp with 256 hidden units, SGD(0.01, momentum 0.9), 2 epochs of
/// batches of 32.
pub mod regularisers {
    use cl::prelude::*;

    /// (accuracy on experience 0 after training it, on experience 0 after the last experience,
    /// on the last experience after it).
    pub fn accuracies(builder: StrategyBuilder<SimpleMlp>, b: &Benchmark, seed: u64) -> (f64, f64, f64) {
        let mut s = builder.train_mb_size(32).train_epochs(2).eval_mb_size(250).seed(seed).build().unwrap();
        let mut first = 0.0;
        for (i, exp) in b.train_stream.iter().enumerate() {
            s.train(exp).unwrap();
            if i == 0 {
                first = s.eval(&b.test_stream[0]).unwrap()[&MetricName::test_exp_accuracy(0, 0).to_string()];
            }
        }
        let r = s.eval(&b.test_stream).unwrap();
        (
            first,
            r[&MetricName::test_exp_accuracy(0, 0).to_string()],
            r[&MetricName::test_exp_accuracy(0, 2).to_string()],
        )
    }

    /// SimpleMlp with 256 hidden units.
    pub fn mlp() -> SimpleMlp {
        SimpleMlpConfig::new().with_hidden_size(256).init(&cl::default_device()).unwrap()
    }

    /// SGD(lr 0.01, momentum 0.9).
    pub fn opt() -> OptimizerSpec {
        OptimizerSpec::sgd(0.01).with_momentum(0.9)
    }
}

/// SimpleMlp (784-512-10) with initial-weight seed `seed`.
pub fn seeded_mlp(seed: u64) -> SimpleMlp {
    SimpleMlpConfig::new().with_seed(Some(seed)).init(&cl::default_device()).unwrap()
}

/// The fixture comparisons' optimizer: SGD, lr 0.01, momentum 0.9.
pub fn sgd_momentum() -> OptimizerSpec {
    OptimizerSpec::sgd(0.01).with_momentum(0.9)
}

/// Trains `builder` (batches of 32, 2 epochs, seed `seed`) on each experience of `b` and returns
/// the final test-stream accuracy with the strategy.
pub fn class_il_accuracy<M: Model>(builder: StrategyBuilder<M>, b: &Benchmark, seed: u64) -> (f64, Strategy<M>) {
    let mut s = builder.train_mb_size(32).train_epochs(2).eval_mb_size(250).seed(seed).build().unwrap();
    for exp in &b.train_stream {
        s.train(exp).unwrap();
    }
    let acc = s.eval(&b.test_stream).unwrap()[&MetricName::test_stream_accuracy(0).to_string()];
    (acc, s)
}
