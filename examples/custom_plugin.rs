//! The worked example of the docs: a replay plugin written by a user, outside the library.
//!
//! ```text
//! cargo run --release --example custom_plugin [-- --data-dir DIR]
//! ```
//!
//! Avalanche's tutorial writes `ReplayP`, a plugin that keeps a reservoir-sampled memory and
//! swaps the strategy's dataloader for a `ReplayDataLoader` once the memory holds samples. The
//! same plugin in Rust needs only public API: the `Plugin` trait, the state it receives, a
//! storage policy and the replay loader. It runs on SplitFMNIST next to plain Naive.

use std::error::Error;

use cl::core::data::{DataLoaderConfig, ReplayDataLoader, ReplayDataLoaderConfig};
use cl::plugins::storage::{ReservoirConfig, ReservoirSamplingBuffer, StorageContext, StoragePolicy};
use cl::prelude::*;

/// Avalanche's tutorial plugin `ReplayP`, in Rust.
struct ReplayP {
    buffer: ReservoirSamplingBuffer,
}

impl ReplayP {
    fn new(mem_size: usize) -> Result<Self> {
        Ok(Self { buffer: ReservoirSamplingBuffer::new(ReservoirConfig::new(mem_size))? })
    }
}

impl<M: Model> Plugin<M> for ReplayP {
    /// Declares that the plugin replaces the training data, so that the strategy rejects a
    /// second plugin doing the same.
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::TrainingData]
    }

    /// Use a custom dataloader to combine samples from the current data and the memory.
    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let Some(memory) = self.buffer.buffer() else {
            return Ok(()); // first experience: nothing to replay yet
        };
        let current = state.adapted_dataset.as_ref().expect("set by the dataset adaptation");
        let settings = state.settings();
        let config = ReplayDataLoaderConfig::new(DataLoaderConfig::train(settings.train_mb_size(), settings.seed()))
            .with_oversample_small_tasks(true);
        state.dataloader = Some(Box::new(ReplayDataLoader::new(current, Some(&memory), config)?));
        Ok(())
    }

    /// Update the buffer with the experience just trained on.
    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        self.buffer.update(&StorageContext::new(state.current_experience()?))
    }
}

fn final_accuracy(results: &MetricResults, n: usize) -> f64 {
    (0..n).map(|j| results[&MetricName::test_exp_accuracy(0, j).to_string()]).sum::<f64>() / n as f64
}

fn main() -> std::result::Result<(), Box<dyn Error>> {
    // The library reports warnings through `tracing`: print them.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .init();
    let mut config = SplitMnistConfig::new(5).with_seed(1);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--data-dir" => config = config.with_dataset_root(args.next().ok_or("--data-dir needs a value")?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let benchmark = match split_fmnist(&config) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let device = cl::default_device();
    let n = benchmark.n_experiences();
    for (name, with_replay) in [("Naive", false), ("Naive + ReplayP(500)", true)] {
        device.seed(1);
        let model = SimpleMlpConfig::new().init(&device)?;
        let mut builder =
            Naive::builder(model, OptimizerSpec::sgd(0.01).with_momentum(0.9), device.clone(), NaiveConfig::default())?
                .train_mb_size(128)
                .seed(1);
        if with_replay {
            builder = builder.plugin(ReplayP::new(500)?);
        }
        let mut strategy = builder.build()?;
        let mut results = MetricResults::new();
        for experience in &benchmark.train_stream {
            strategy.train(experience)?;
            results = strategy.eval(&benchmark.test_stream)?;
        }
        println!("{name:<22} final average accuracy {:.4}", final_accuracy(&results, n));
    }
    Ok(())
}
