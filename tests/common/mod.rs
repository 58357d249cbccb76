//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cl::core::{ClassificationDataset, Experience, Stream};
use cl::prelude::*;

/// The Fashion-MNIST cut shipped in the repo (2000 train, 500 test samples).
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crates/cl-benchmarks/tests/fixtures/fashion-mnist-mini")
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
pub fn tiny_mlp(num_classes: usize) -> SimpleMLP {
    SimpleMLPConfig::new()
        .with_input_size(4)
        .with_hidden_size(8)
        .with_num_classes(num_classes)
        .with_drop_rate(0.0)
        .init(&cl::default_device())
        .unwrap()
}

/// A shared log written by test plugins.
pub type Log = Arc<Mutex<Vec<String>>>;

/// Flattened values of a model's classifier weight.
pub fn classifier_weight(model: &SimpleMLP) -> Vec<f32> {
    model.classifier.weight.val().into_data().try_to_vec::<f32>().unwrap()
}
