//! Benchmarks from your own training loop: SplitFMNIST with no strategy, plugin or metric.
//!
//! ```text
//! cargo run --release -p cl-benchmarks --example standalone_loop [-- --data-dir DIR --max-samples N]
//! ```
//!
//! Demonstrates that `cl`'s benchmarks stand alone: this example belongs to the `cl-benchmarks`
//! crate and uses only it (the SplitFMNIST streams and, re-exported from the data model it is
//! built on, the data loader) and Burn itself — the crate does not depend on the strategies,
//! plugins, metrics or models. The model is a two-layer MLP written here with
//! `#[derive(Module)]`; the loop (1 epoch per experience, batch 128, plain SGD with lr 0.01) and
//! the accuracy are hand-written.
//!
//! Training runs on the autodiff device; evaluation runs `model.valid()` on the plain device, so
//! no forward pass leaves an unused autodiff graph behind.

use std::error::Error;
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use cl_benchmarks::data::{ClassificationDataLoader, ClassificationDataset, DataLoader, DataLoaderConfig};
use cl_benchmarks::{SplitMnistConfig, split_fmnist};

/// Mini-batch size of training and evaluation.
const BATCH: usize = 128;
/// SGD learning rate.
const LR: f64 = 0.01;
/// Seed of the weights and of the data order.
const SEED: u64 = 1;

/// A two-layer perceptron: 784 → 256 → ReLU → 10.
#[derive(Module, Debug)]
struct Mlp {
    /// The hidden layer.
    hidden: Linear,
    /// The output layer.
    out: Linear,
}

impl Mlp {
    /// A fresh model on `device` (Burn's default, PyTorch-like initialisation).
    fn new(inputs: usize, classes: usize, device: &Device) -> Self {
        Self { hidden: LinearConfig::new(inputs, 256).init(device), out: LinearConfig::new(256, classes).init(device) }
    }

    /// Logits of flattened inputs `[batch, inputs]`.
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.out.forward(relu(self.hidden.forward(x)))
    }
}

/// The first `max` samples of `dataset` (all when `max` is `None`).
fn cut(dataset: &ClassificationDataset, max: Option<usize>) -> cl_benchmarks::CoreResult<ClassificationDataset> {
    match max {
        Some(n) if n < dataset.len() => dataset.subset(&(0..n).collect::<Vec<_>>()),
        _ => Ok(dataset.clone()),
    }
}

/// Top-1 accuracy of `model` (already in `valid()` mode, on `device`) on `dataset`.
fn accuracy(model: &Mlp, dataset: &ClassificationDataset, device: &Device) -> cl_benchmarks::CoreResult<f64> {
    let mut loader = ClassificationDataLoader::new(dataset.eval(), DataLoaderConfig::eval(BATCH))?;
    loader.start_epoch();
    let (mut correct, mut seen) = (0i64, 0usize);
    while let Some(batch) = loader.next_batch(device) {
        let batch = batch?;
        let hits = model.forward(batch.x).argmax(1).reshape([batch.targets.len()]).equal(batch.y);
        correct += hits.int().sum().into_scalar::<i64>();
        seen += batch.targets.len();
    }
    Ok(correct as f64 / seen.max(1) as f64)
}

/// `--data-dir DIR` and `--max-samples N`.
fn parse_args() -> Result<(Option<String>, Option<usize>), String> {
    let (mut data_dir, mut max_samples) = (None, None);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--data-dir" => data_dir = Some(value("--data-dir")?),
            "--max-samples" => {
                max_samples = Some(value("--max-samples")?.parse().map_err(|e| format!("--max-samples: {e}"))?)
            }
            "-h" | "--help" => {
                println!("usage: standalone_loop [--data-dir DIR] [--max-samples N]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}; see --help")),
        }
    }
    Ok((data_dir, max_samples))
}

fn main() -> Result<(), Box<dyn Error>> {
    let (data_dir, max_samples) = parse_args()?;
    let mut config = SplitMnistConfig::new(5).with_seed(SEED);
    if let Some(dir) = data_dir {
        config = config.with_dataset_root(dir);
    }
    let benchmark = match split_fmnist(&config) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };

    let device = Device::flex();
    let train_device = device.clone().autodiff();
    train_device.seed(SEED);
    let inputs = benchmark.train_stream[0].dataset.sample_len();
    let mut model = Mlp::new(inputs, benchmark.n_classes, &train_device);
    let mut optim = SgdConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&train_device);
    println!(
        "SplitFMNIST, class order {:?}; MLP {inputs}-256-{}; SGD lr {LR}, batch {BATCH}, 1 epoch per experience",
        benchmark.classes_order, benchmark.n_classes
    );

    let start = Instant::now();
    for experience in &benchmark.train_stream {
        let data = cut(&experience.dataset, max_samples)?.train();
        let seed = SEED + experience.current_experience as u64;
        let mut loader = ClassificationDataLoader::new(data, DataLoaderConfig::train(BATCH, seed))?;
        loader.start_epoch();
        while let Some(batch) = loader.next_batch(&train_device) {
            let batch = batch?;
            let loss = loss_fn.forward(model.forward(batch.x), batch.y);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(LR, model, grads);
        }

        let eval_model = model.valid();
        let mut accs = Vec::with_capacity(benchmark.test_stream.len());
        for test in &benchmark.test_stream {
            accs.push(accuracy(&eval_model, &cut(&test.dataset, max_samples)?, &device)?);
        }
        let shown: Vec<String> = accs.iter().map(|a| format!("{a:.4}")).collect();
        println!(
            "after exp{} {:?}: accuracy per test experience [{}], average over seen {:.4}",
            experience.current_experience,
            experience.classes_in_this_experience,
            shown.join(", "),
            accs[..=experience.current_experience].iter().sum::<f64>() / (experience.current_experience + 1) as f64
        );
    }
    println!("done in {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
