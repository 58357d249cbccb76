//! # cl — continual learning for Rust on Burn
//!
//! The umbrella crate: re-exports the workspace crates so one dependency gives everything, and
//! picks a default device from the enabled backend feature. Each crate can also be used alone:
//!
//! - [`core`] (`cl-core`): the data model, experiences and streams, the strategy template and its
//!   plugin contract, the one configuration idiom ([`core::config`]) and the evaluation kernel
//!   (accuracy, loss, the evaluation plugin, the accuracy matrix, metric names);
//! - [`benchmarks`] (`cl-benchmarks`): dataset readers (MNIST family, CIFAR), scenario generators,
//!   the classic benchmarks (SplitMNIST/SplitFMNIST, Permuted/Rotated MNIST, SplitCIFAR);
//! - [`strategies`] (`cl-strategies`): the named strategies, each
//!   `X::builder(model, optimizer, device, XConfig)`, and [`strategies::StrategyConfig`] to name
//!   one at run time;
//! - [`plugins`] (`cl-plugins`): rehearsal, regularisation, distillation, projection and
//!   training-control plugins with their configurations;
//! - [`metrics`] (`cl-metrics`): Avalanche's other metrics and the loggers;
//! - [`models`] (`cl-models`): `SimpleMlp`, `SimpleCnn`, incremental and multi-head classifiers,
//!   NCM;
//! - [`report`] (`cl-report`): pictures of results (accuracy-matrix heatmap, accuracy curves,
//!   strategy comparison) as PNG and SVG.
//!
//! [`device`] turns a name (`flex`, `ndarray`, `libtorch-cpu`, `cuda:N`, `mps`) into a Burn
//! device at run time, naming the cargo feature to enable when a backend is not compiled in.
//!
//! ## Avalanche's training tutorial with the prelude only
//!
//! ```no_run
//! use cl::prelude::*;
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // SplitFMNIST, 5 experiences (reads the standard files; see the README for where).
//!     let benchmark = split_fmnist(&SplitMnistConfig::new(5).with_seed(1234))?;
//!     let device = cl::default_device();
//!
//!     // Naive(model, SGD(lr=0.001, momentum=0.9), CrossEntropyLoss(), train_mb_size=100,
//!     //       train_epochs=4, eval_mb_size=100)
//!     let model = SimpleMlpConfig::new().init(&device)?;
//!     let optimizer = OptimizerSpec::sgd(0.001).with_momentum(0.9);
//!     let mut strategy = Naive::builder(model, optimizer.clone(), device.clone(), NaiveConfig::default())?
//!         .train_mb_size(100)
//!         .train_epochs(4)
//!         .eval_mb_size(100)
//!         .build()?;
//!     let mut results = Vec::new();
//!     for experience in &benchmark.train_stream {
//!         strategy.train(experience)?;
//!         results.push(strategy.eval(&benchmark.test_stream)?);
//!     }
//!
//!     // SupervisedTemplate(..., plugins=[ReplayPlugin(mem_size=100), EWCPlugin(ewc_lambda=0.001)])
//!     let model = SimpleMlpConfig::new().init(&device)?;
//!     let mut strategy = Strategy::builder(model, optimizer, device)
//!         .plugin(ReplayPlugin::new(ReplayConfig::new(100))?)
//!         .plugin(EwcPlugin::new(EwcConfig::new(0.001))?)
//!         .build()?;
//!     strategy.train(&benchmark.train_stream)?;
//!     // Plugins stay reachable: the replay memory after training.
//!     let memory = strategy.plugin::<ReplayPlugin>().expect("added above").storage().len();
//!     assert!(memory <= 100);
//!     // A strategy chosen at run time, from a file.
//!     let method = StrategyConfig::from_toml("name = \"lwf\"\n[config]\nalpha = 1.0\ntemperature = 2.0\n")?;
//!     let model = SimpleMlpConfig::new().init(&cl::default_device())?;
//!     let _lwf = method.builder(model, OptimizerSpec::sgd(0.01), cl::default_device())?.build()?;
//!     // The trained model in evaluation mode (Burn's `Module`).
//!     let _eval_model = strategy.model().clone().valid();
//!     Ok(())
//! }
//! ```
#![warn(missing_docs)]

pub use burn;
pub mod device;
pub use cl_benchmarks as benchmarks;
pub use cl_core as core;
pub use cl_metrics as metrics;
pub use cl_models as models;
pub use cl_plugins as plugins;
pub use cl_report as report;
pub use cl_strategies as strategies;

use burn::tensor::Device;

/// The device of the default backend enabled by this crate's features: `flex` (pure-Rust CPU,
/// the default feature), else LibTorch on the CPU (`tch`), else ndarray.
#[allow(deprecated)] // Burn marks its LibTorch/ndarray device constructors deprecated in 0.22.
pub fn default_device() -> Device {
    #[cfg(feature = "flex")]
    return Device::flex();
    #[cfg(all(not(feature = "flex"), feature = "tch"))]
    return Device::libtorch();
    #[cfg(all(not(feature = "flex"), not(feature = "tch"), feature = "ndarray"))]
    return Device::ndarray();
    #[cfg(not(any(feature = "flex", feature = "tch", feature = "ndarray")))]
    Device::default()
}

/// A short description of the backend of [`default_device`], for result files.
pub fn default_backend_name() -> &'static str {
    if cfg!(feature = "flex") {
        "flex"
    } else if cfg!(feature = "tch") {
        "tch-cpu"
    } else if cfg!(feature = "ndarray") {
        "ndarray"
    } else {
        "burn-default"
    }
}

/// Everything a user of the tutorial needs with one `use cl::prelude::*`: every strategy with its
/// configuration, every plugin with its configuration, the models, the benchmarks, the strategy
/// template and its contract, `Result` (`cl_core::Result`, whose error type defaults to
/// [`ClError`](cl_core::ClError)), the configuration traits, and Burn's `Module` (for
/// `model.valid()`) and `Device`.
pub mod prelude {
    pub use burn::module::Module;
    pub use burn::tensor::Device;
    pub use cl_benchmarks::classic::{
        Permutations, TransformedMnistConfig, permuted_fmnist, permuted_mnist, rotated_fmnist, rotated_mnist,
    };
    pub use cl_benchmarks::{
        BenchmarkConfig, BenchmarkError, ClassIds, ClassOrder, DataError, NcConfig, SplitCifarConfig, SplitMnistConfig,
        nc_benchmark, split_cifar10, split_cifar100, split_fmnist, split_mnist,
    };
    pub use cl_core::config::{ConfigFile, Validate};
    pub use cl_core::data::{ClassificationDataset, MiniBatch};
    pub use cl_core::evaluation::{AccuracyMatrix, EvaluationPlugin, Granularity, MetricName, Phase};
    pub use cl_core::{
        Benchmark, Callback, ClError, Experience, MetricResults, Model, NonFiniteLoss, OptimizerSpec, PeriodicEval,
        Plugin, Result, StatePart, Strategy, StrategyBuilder, StrategyState, Stream, TemplateSteps, TrainingConfig,
    };
    pub use cl_metrics::{
        CsvLogger, EvaluationConfig, InteractiveLogger, JsonLinesLogger, TensorBoardLogger, TextLogger, all_metrics,
    };
    pub use cl_models::{
        IncrementalClassifier, IncrementalClassifierConfig, LatentCnn, LatentCnnConfig, ModelConfig,
        MultiHeadClassifier, MultiHeadConfig, NcmClassifier, NcmConfig, SimpleCnn, SimpleCnnConfig, SimpleMlp,
        SimpleMlpConfig,
    };
    pub use cl_plugins::regularization::{
        EwcConfig, EwcMode, EwcPlugin, MasConfig, MasPlugin, RWalkConfig, RWalkPlugin, SynapticIntelligenceConfig,
        SynapticIntelligencePlugin,
    };
    pub use cl_plugins::{
        AGemConfig, AGemPlugin, CheckpointConfig, CheckpointPlugin, CwrStarConfig, CwrStarPlugin, EarlyStoppingConfig,
        EarlyStoppingMode, EarlyStoppingPlugin, ExperienceWeight, FromScratchConfig, FromScratchPlugin, GDumbConfig,
        GDumbPlugin, GemConfig, GemPlugin, GssGreedyConfig, GssGreedyPlugin, LflConfig, LflPlugin, LrSchedulerConfig,
        LrSchedulerPlugin, LwfConfig, LwfPlugin, MirConfig, MirPlugin, ReplayConfig, ReplayPlugin, SchedulerConfig,
    };
    pub use cl_strategies::{
        AGem, Ar1, Ar1Config, Cope, CopeConfig, Cumulative, CumulativeConfig, CwrStar, Der, DerConfig, ErAce,
        ErAceConfig, ErAml, ErAmlConfig, Ewc, FromScratchTraining, GDumb, Gem, GssGreedy, JointTraining,
        JointTrainingConfig, Lfl, Lwf, Mas, Mir, Naive, NaiveConfig, RWalk, Replay, Scr, ScrConfig, StrategyConfig,
        SynapticIntelligence,
    };
}
