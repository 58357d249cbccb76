//! `cargo xtask bench`: SplitFMNIST with Naive fine-tuning, timed, one run per epochs value,
//! written as [`BenchRecord`] JSON files plus a markdown summary; then the strategies comparison
//! of [`strategies`] and the data-loading measurement of [`loaders`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use cl::benchmarks::BenchmarkError;
use cl::core::evaluation::{AccuracyMatrix, MetricName};
use cl::core::{ClError, MetricResults, Model, Plugin, StrategyState};
use cl::device::{DeviceChoice, DeviceError};
use cl::prelude::*;
use cl::strategies::NaiveConfig;
use serde::Serialize;

use crate::loaders;
use crate::provenance::Provenance;
use crate::report;
use crate::strategies;

/// Name of the benchmark in records and file names.
const BENCHMARK: &str = "SplitFMNIST";
/// Name of the strategy in records and file names.
const STRATEGY: &str = "Naive";
/// Experiences of SplitFMNIST.
const N_EXPERIENCES: usize = 5;
/// SGD learning rate.
const LR: f64 = 0.001;
/// SGD momentum.
const MOMENTUM: f64 = 0.9;

/// Options of `bench`, from the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchOptions {
    /// Training epochs per experience; one run for each value.
    pub epochs: Vec<usize>,
    /// Directory of the Fashion-MNIST IDX files; searched for when `None`.
    pub data_dir: Option<PathBuf>,
    /// Seed of the class order and of the strategy.
    pub seed: u64,
    /// Training and evaluation mini-batch size.
    pub batch_size: usize,
    /// Skip the data-loading measurement ([`loaders`]).
    pub skip_loaders: bool,
    /// Skip the strategies comparison ([`strategies`]).
    pub skip_strategies: bool,
    /// Run only these strategies of the comparison (canonical names); all when `None`.
    pub methods: Option<Vec<String>>,
    /// `--sweep`: also run the 13-strategy × 3-seed SplitFMNIST grid through `cl sweep --jobs 2`
    /// and measure its parallel efficiency ([`crate::sweep_cost`]).
    pub sweep: bool,
    /// `--backend`/`--device`: the device of the Naive runs; the default backend's when `None`.
    /// On another device than `flex` the strategies comparison, the loaders and the
    /// evaluation cost (measured on the default backend) are skipped.
    pub device: Option<DeviceChoice>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            epochs: vec![1, 4],
            data_dir: None,
            seed: 1,
            batch_size: 128,
            skip_loaders: false,
            skip_strategies: false,
            sweep: false,
            methods: None,
            device: None,
        }
    }
}

/// Why `bench` failed.
#[derive(Debug)]
pub enum BenchError {
    /// The dataset could not be loaded (the message says how to install it); exit code 2.
    Data(BenchmarkError),
    /// Building or running the strategy failed.
    Run(ClError),
    /// A metric expected from the evaluator is missing.
    MissingMetric(String),
    /// Writing a result file failed.
    Write(PathBuf, String),
    /// The device asked for is not available in this build.
    Device(DeviceError),
    /// An input file (e.g. another library's results) is missing or malformed; the message
    /// names the file and how to make it.
    Input(String),
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Data(e) => write!(f, "{e}"),
            Self::Run(e) => write!(f, "the run failed: {e}"),
            Self::MissingMetric(name) => write!(f, "the evaluator did not report `{name}`"),
            Self::Write(path, e) => write!(f, "cannot write {}: {e}", path.display()),
            Self::Device(e) => write!(f, "{e} (xtask: `cargo run --release -p xtask --features tch -- bench ...`)"),
            Self::Input(message) => write!(f, "{message}"),
        }
    }
}

impl std::error::Error for BenchError {}

impl From<ClError> for BenchError {
    fn from(e: ClError) -> Self {
        Self::Run(e)
    }
}

/// The result of one run: configuration, timings, accuracies and provenance. Serialised as
/// `target/bench/splitfmnist_naive_<E>ep.json`.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRecord {
    /// `SplitFMNIST`.
    pub benchmark: &'static str,
    /// `Naive`.
    pub strategy: &'static str,
    /// The strategy's configuration, as [`StrategyConfig`] serialises it
    /// (`{"name": "naive", "config": {}}`).
    pub config: serde_json::Value,
    /// Number of experiences (5).
    pub n_experiences: usize,
    /// The class order drawn from the seed.
    pub classes_order: Vec<u32>,
    /// Training epochs per experience.
    pub epochs: usize,
    /// Training and evaluation mini-batch size.
    pub batch_size: usize,
    /// Seed of the class order and of the strategy.
    pub seed: u64,
    /// Loading the benchmark (shared by all runs of one invocation; not in `wall_time_s`).
    pub load_time_s: f64,
    /// The whole stream, training and evaluation after each experience (no data loading).
    pub wall_time_s: f64,
    /// Sum of the `strategy.train(experience)` calls.
    pub train_time_s: f64,
    /// Sum of the `strategy.eval(test_stream)` calls.
    pub eval_time_s: f64,
    /// Training iterations (mini-batches) over the stream.
    pub train_iterations: u64,
    /// Samples seen in training over the stream (all epochs).
    pub train_samples: u64,
    /// `train_iterations / train_time_s`.
    pub train_iterations_per_s: f64,
    /// `train_samples / train_time_s`.
    pub train_samples_per_s: f64,
    /// Mean over test experiences of `Top1_Acc_Exp` after the last experience.
    pub final_average_accuracy: f64,
    /// `Top1_Acc_Stream/eval_phase/test_stream/Task000` of the final evaluation.
    pub final_stream_accuracy: f64,
    /// Average forgetting after the last experience.
    pub forgetting: f64,
    /// `accuracy_matrix[i][j]`: accuracy on test experience `j` after training on experience `i`.
    pub accuracy_matrix: Vec<Vec<f64>>,
    /// Start of the run, seconds since the Unix epoch.
    pub timestamp: u64,
    /// Versions, commit and machine.
    #[serde(flatten)]
    pub provenance: Provenance,
}

/// Counts the samples of every training mini-batch, so throughput uses what was really seen.
struct SampleCounter(Arc<AtomicU64>);

impl<M: Model> Plugin<M> for SampleCounter {
    fn after_training_iteration(&mut self, state: &mut StrategyState<M>) -> cl::core::Result<()> {
        if let Some(batch) = &state.mbatch {
            self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// `<workspace root>/target/bench`, from this crate's manifest directory (not
/// `CARGO_TARGET_DIR`, which CI may point elsewhere).
pub fn output_dir() -> PathBuf {
    workspace_root().join("target").join("bench")
}

/// The workspace root, the parent of this crate's directory.
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Runs `bench`: loads SplitFMNIST once, runs Naive for each epochs value, prints a summary
/// and writes one JSON file per run and `summary.md` with the rows of this invocation.
pub fn run(options: &BenchOptions) -> Result<(), BenchError> {
    let mut config = SplitMnistConfig::new(N_EXPERIENCES).with_seed(options.seed);
    if let Some(dir) = &options.data_dir {
        config = config.with_dataset_root(dir);
    }
    let start = Instant::now();
    let benchmark = split_fmnist(&config).map_err(BenchError::Data)?;
    let load_time_s = start.elapsed().as_secs_f64();

    let mut provenance = Provenance::collect(&workspace_root());
    let mut options = options.clone();
    if let Some(choice) = options.device {
        choice.device().map_err(BenchError::Device)?;
        let policy = std::env::var("OMP_WAIT_POLICY").ok();
        if let Some(warning) = cl::device::libtorch_threads_warning(choice, policy.as_deref()) {
            eprintln!("{warning}");
        }
        provenance.backend = crate::backends::backend_label(choice);
        if choice != DeviceChoice::Flex {
            println!("device {choice}: the Naive runs only (strategies, loaders and evaluation cost run on flex)");
            (options.skip_strategies, options.skip_loaders) = (true, true);
        }
    }
    let options = &options;
    let out_dir = output_dir();
    std::fs::create_dir_all(&out_dir).map_err(|e| BenchError::Write(out_dir.clone(), e.to_string()))?;
    println!(
        "{BENCHMARK}: {} experiences, class order {:?}, seed {}, loaded in {load_time_s:.2} s; \
         {STRATEGY}, SimpleMlp, SGD(lr={LR}, momentum={MOMENTUM}), batch {}; backend {}, {} threads",
        benchmark.n_experiences(),
        benchmark.classes_order,
        options.seed,
        options.batch_size,
        provenance.backend,
        provenance.threads
    );

    let mut records = Vec::new();
    for &epochs in &options.epochs {
        let record = run_one(&benchmark, options, epochs, load_time_s, &provenance)?;
        report::print_record(&record);
        let path = out_dir.join(format!("{}_{}_{epochs}ep.json", BENCHMARK.to_lowercase(), STRATEGY.to_lowercase()));
        write_json(&path, &record)?;
        println!("written {}", path.display());
        records.push(record);
    }

    let mut summary = report::markdown_table(&records);
    if !options.skip_strategies {
        let strategy_records = strategies::run(
            &benchmark,
            load_time_s,
            options.data_dir.as_deref(),
            options.batch_size,
            options.seed,
            &provenance,
            options.methods.as_deref(),
        )?;
        let path = out_dir.join("strategies.json");
        write_json(&path, &strategy_records)?;
        println!("written {}", path.display());
        summary.push_str(&report::strategies_table(&strategy_records));
    }
    if !options.skip_loaders {
        // Compared with the 1-epoch run's training throughput, else the first run's.
        let training = records
            .iter()
            .find(|r| r.epochs == 1)
            .or(records.first())
            .map(|r| (format!("{STRATEGY} {}ep run", r.epochs), r.train_samples_per_s));
        let loader_records = loaders::run(&benchmark, options.batch_size, options.seed, training, &provenance)?;
        let path = out_dir.join("loaders.json");
        write_json(&path, &loader_records)?;
        println!("written {}", path.display());
        summary.push_str(&report::loaders_table(&loader_records));
    }
    // Evaluation with all metrics vs a bare forward pass (target/bench/eval_cost.json).
    if options.device.is_none_or(|d| d == DeviceChoice::Flex) {
        let eval_cost = crate::eval_cost::run(&benchmark, options.batch_size, &provenance)?;
        let path = out_dir.join("eval_cost.json");
        write_json(&path, &eval_cost)?;
        println!("written {}", path.display());
        summary.push_str(&crate::eval_cost::markdown(&eval_cost));
    }
    // Checkpoint size, save/load time and the overhead of a checkpoint per experience
    // (target/bench/checkpoint.json).
    if options.device.is_none_or(|d| d == DeviceChoice::Flex) {
        let cost = crate::checkpoint_cost::run(&benchmark, options.batch_size, options.seed, &provenance)?;
        let path = out_dir.join("checkpoint.json");
        write_json(&path, &cost)?;
        println!("written {}", path.display());
        summary.push_str(&crate::checkpoint_cost::markdown(&cost));
    }
    if options.sweep {
        let record = crate::sweep_cost::run(
            &workspace_root(),
            &out_dir.join("sweep"),
            2,
            options.data_dir.as_deref(),
            &provenance,
        )?;
        let path = out_dir.join("sweep.json");
        write_json(&path, &record)?;
        println!("written {}", path.display());
        summary.push_str(&crate::sweep_cost::markdown(&record));
    }
    let path = out_dir.join("summary.md");
    std::fs::write(&path, &summary).map_err(|e| BenchError::Write(path.clone(), e.to_string()))?;
    println!("\n{summary}\nwritten {}", path.display());
    Ok(())
}

/// One run over the stream with `epochs` epochs per experience, evaluating on the whole test
/// stream after each experience.
pub(crate) fn run_one(
    benchmark: &Benchmark,
    options: &BenchOptions,
    epochs: usize,
    load_time_s: f64,
    provenance: &Provenance,
) -> Result<BenchRecord, BenchError> {
    let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let device = match options.device {
        Some(choice) => choice.device().map_err(BenchError::Device)?,
        None => cl::default_device(),
    };
    let model = SimpleMlpConfig::new().with_num_classes(benchmark.n_classes).init(&device)?;
    let samples = Arc::new(AtomicU64::new(0));
    let config = StrategyConfig::Naive(NaiveConfig::default());
    let mut strategy = config
        .builder(model, OptimizerSpec::sgd(LR).with_momentum(MOMENTUM), device)?
        .train_mb_size(options.batch_size)
        .train_epochs(epochs)
        .eval_mb_size(options.batch_size)
        .seed(options.seed)
        .plugin(SampleCounter(samples.clone()))
        .build()?;

    let n = benchmark.n_experiences();
    let mut matrix = AccuracyMatrix::new(n);
    let mut train_time_s = 0.0;
    let mut eval_time_s = 0.0;
    let mut stream_accuracy = f64::NAN;
    println!("\n== {STRATEGY}, {epochs} epoch(s) per experience ==");
    let wall = Instant::now();
    for experience in &benchmark.train_stream {
        let t = Instant::now();
        strategy.train(experience)?;
        train_time_s += t.elapsed().as_secs_f64();

        let t = Instant::now();
        let results = strategy.eval(&benchmark.test_stream)?;
        eval_time_s += t.elapsed().as_secs_f64();

        let i = experience.current_experience;
        for j in 0..n {
            matrix.set(i, j, metric(&results, &MetricName::test_exp_accuracy(0, j))?);
        }
        stream_accuracy = metric(&results, &MetricName::test_stream_accuracy(0))?;
        println!(
            "after exp{i} {:<8} acc per exp {:?}  avg {:.4}  stream {:.4}",
            format!("{:?}", experience.classes_in_this_experience),
            matrix.rows()[i].iter().map(|a| (a * 1e4).round() / 1e4).collect::<Vec<_>>(),
            matrix.average_accuracy(i).unwrap_or(f64::NAN),
            stream_accuracy
        );
    }
    let wall_time_s = wall.elapsed().as_secs_f64();

    let train_iterations = strategy.state().clock().train_iterations;
    let train_samples = samples.load(Ordering::Relaxed);
    Ok(BenchRecord {
        benchmark: BENCHMARK,
        strategy: STRATEGY,
        config: strategies::config_json(&config),
        n_experiences: n,
        classes_order: benchmark.classes_order.clone(),
        epochs,
        batch_size: options.batch_size,
        seed: options.seed,
        load_time_s,
        wall_time_s,
        train_time_s,
        eval_time_s,
        train_iterations,
        train_samples,
        train_iterations_per_s: per_second(train_iterations, train_time_s),
        train_samples_per_s: per_second(train_samples, train_time_s),
        final_average_accuracy: matrix.final_average_accuracy().unwrap_or(f64::NAN),
        final_stream_accuracy: stream_accuracy,
        forgetting: matrix.forgetting().unwrap_or(f64::NAN),
        accuracy_matrix: matrix.rows().to_vec(),
        timestamp,
        provenance: provenance.clone(),
    })
}

/// `results[name]`, or an error naming the missing metric.
pub fn metric(results: &MetricResults, name: &MetricName) -> Result<f64, BenchError> {
    name.value_in(results).ok_or_else(|| BenchError::MissingMetric(name.to_string()))
}

/// `count / seconds`, 0 when no time was measured.
fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 { count as f64 / seconds } else { 0.0 }
}

/// Writes `record` as pretty JSON.
fn write_json<T: Serialize + ?Sized>(path: &Path, record: &T) -> Result<(), BenchError> {
    let json =
        serde_json::to_string_pretty(record).map_err(|e| BenchError::Write(path.to_path_buf(), e.to_string()))?;
    std::fs::write(path, json + "\n").map_err(|e| BenchError::Write(path.to_path_buf(), e.to_string()))
}
