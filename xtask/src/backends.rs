//! `cargo xtask backends`: the backends side by side, in one process on one machine: the
//! SimpleMlp and SimpleCNN training steps and the SplitFMNIST Naive run on each device, with
//! ratios to the first device. Writes `target/bench/backends.json` and `backends.md`.
//!
//! A device whose backend was not compiled in, or that fails (e.g. `cuda:0` without a GPU),
//! gets a record with its `error` and the others still run.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::Device;
use cl::core::data::ClassificationDataset;
use cl::core::{Experience, Model, Plugin, StrategyState};
use cl::device::DeviceChoice;
use cl::models::SimpleCnnConfig;
use cl::prelude::*;
use cl::strategies::NaiveConfig;
use serde::Serialize;

use crate::bench::{self, BenchError, BenchOptions};
use crate::provenance::Provenance;

/// Options of `backends`.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendsOptions {
    /// The devices to compare; every CPU backend compiled in when `None`.
    pub devices: Option<Vec<DeviceChoice>>,
    /// Timed training steps per model (after 3 warm-up steps).
    pub steps: usize,
    /// Mini-batch size of the steps and of the Naive run.
    pub batch_size: usize,
    /// Epochs per experience of the Naive run.
    pub epochs: usize,
    /// Skip the SplitFMNIST Naive run (no data set needed).
    pub skip_naive: bool,
    /// Directory of the Fashion-MNIST IDX files; searched for when `None`.
    pub data_dir: Option<PathBuf>,
    /// Seed of the class order, the data order and the weights.
    pub seed: u64,
}

impl Default for BackendsOptions {
    fn default() -> Self {
        Self { devices: None, steps: 20, batch_size: 128, epochs: 1, skip_naive: false, data_dir: None, seed: 1 }
    }
}

/// The usage of `backends`, part of `cargo xtask --help`.
pub const USAGE: &str = "\
backends options:
  --devices LIST    comma-separated devices (flex, ndarray, libtorch-cpu, cuda:N, mps); default:
                    every CPU backend compiled into xtask (build it with them:
                    cargo run --release -p xtask --features tch -- backends)
  --steps N         timed training steps per model, after 3 warm-up steps (default 20)
  --batch N         mini-batch size of the steps and of the Naive run (default 128)
  --epochs N        epochs per experience of the Naive run (default 1)
  --skip-naive      skip the SplitFMNIST Naive run (no data set needed)
  --data-dir DIR    directory holding the four Fashion-MNIST IDX files
  --seed N          seed of the data, class order and weights (default 1)";

/// Parses the options of `backends` (`--flag value` or `--flag=value`); `Ok(None)` for `--help`.
pub fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<BackendsOptions>, String> {
    let mut o = BackendsOptions::default();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--skip-naive" => {
                o.skip_naive = true;
                continue;
            }
            _ => {}
        }
        let (flag, value) = crate::option_value(
            &arg,
            &["--devices", "--steps", "--batch", "--epochs", "--data-dir", "--seed"],
            "backends",
            &mut it,
        )?;
        let positive = |v: &str| match v.parse::<usize>() {
            Ok(0) => Err(format!("{flag} must be positive, got 0")),
            Ok(n) => Ok(n),
            Err(e) => Err(format!("{flag} `{v}`: {e}")),
        };
        match flag.as_str() {
            "--devices" => {
                let mut devices = Vec::new();
                for name in value.split(',') {
                    let d: DeviceChoice = name.parse().map_err(|e| format!("--devices: {e}"))?;
                    if !devices.contains(&d) {
                        devices.push(d);
                    }
                }
                o.devices = Some(devices);
            }
            "--steps" => o.steps = positive(&value)?,
            "--batch" => o.batch_size = positive(&value)?,
            "--epochs" => o.epochs = positive(&value)?,
            "--data-dir" => o.data_dir = Some(PathBuf::from(value)),
            _ => o.seed = value.parse().map_err(|e| format!("--seed `{value}`: {e}"))?,
        }
    }
    Ok(Some(o))
}

/// One device's numbers. Serialised into `target/bench/backends.json`.
#[derive(Debug, Clone, Serialize)]
pub struct BackendRecord {
    /// The device name (`flex`, `libtorch-cpu`, `cuda:0`, ...).
    pub device: String,
    /// The backend and device as result files name them (`flex`, `tch-cpu`, `tch-cuda:0`).
    pub backend: String,
    /// Mini-batch size of the steps and of the Naive run.
    pub batch_size: usize,
    /// Timed steps per model.
    pub steps: usize,
    /// One SimpleMlp (784-512-10) training step: forward, backward, SGD with momentum (ms).
    pub mlp_step_ms: Option<f64>,
    /// One SimpleCNN (1 channel, 28 × 28) training step (ms).
    pub cnn_step_ms: Option<f64>,
    /// The SplitFMNIST Naive run of `cargo xtask bench` (SGD 0.001/0.9) on this device.
    pub naive: Option<NaiveNumbers>,
    /// Why the device (or one of its measurements) failed.
    pub error: Option<String>,
    /// Versions, commit and machine (its `backend` is this record's).
    #[serde(flatten)]
    pub provenance: Provenance,
}

/// The Naive run's numbers.
#[derive(Debug, Clone, Serialize)]
pub struct NaiveNumbers {
    /// Epochs per experience.
    pub epochs: usize,
    /// Training and evaluation of the whole stream (s).
    pub wall_time_s: f64,
    /// Training only (s).
    pub train_time_s: f64,
    /// Training iterations per second.
    pub train_iterations_per_s: f64,
    /// Final average accuracy.
    pub final_average_accuracy: f64,
}

/// A `&'static str` for a backend name (records hold `&'static str`; a handful per process).
pub fn backend_label(choice: DeviceChoice) -> &'static str {
    match choice {
        DeviceChoice::Flex => "flex",
        DeviceChoice::NdArray => "ndarray",
        DeviceChoice::LibTorchCpu => "tch-cpu",
        DeviceChoice::LibTorchMps => "tch-mps",
        DeviceChoice::LibTorchCuda(_) => Box::leak(choice.backend_name().into_boxed_str()),
    }
}

/// Reads the loss back at the end of each epoch, so GPU timings include the queued work.
struct SyncAtEpochEnd;

impl<M: Model> Plugin<M> for SyncAtEpochEnd {
    fn after_training_epoch(&mut self, state: &mut StrategyState<M>) -> cl::core::Result<()> {
        if let Some(loss) = &state.loss {
            let _ = loss.clone().into_data();
        }
        Ok(())
    }
}

/// `n` values in [0, 1) from `seed` (xorshift; the same on every machine).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

/// `n` generated samples of `shape` with labels 0..10 round-robin.
fn generated(n: usize, shape: &[usize], seed: u64) -> Result<ClassificationDataset, ClError> {
    let len: usize = shape.iter().product();
    ClassificationDataset::from_f32(values(n * len, seed), shape.to_vec(), (0..n).map(|i| (i % 10) as u32).collect())
}

/// Milliseconds per training step of `model` on batches of `shape`: 3 warm-up steps, then
/// `steps` timed ones (one epoch, so one read-back at its end).
fn step_ms<M: Model>(model: M, shape: &[usize], device: &Device, options: &BackendsOptions) -> Result<f64, ClError> {
    let b = options.batch_size;
    let warm_up = Experience::new(0, generated(3 * b, shape, options.seed)?, "train", 10);
    let timed = Experience::new(0, generated(options.steps * b, shape, options.seed + 1)?, "train", 10);
    let mut strategy =
        Naive::builder(model, OptimizerSpec::sgd(0.01).with_momentum(0.9), device.clone(), NaiveConfig::default())?
            .train_mb_size(b)
            .train_epochs(1)
            .seed(options.seed)
            .evaluator(EvaluationPlugin::empty())
            .plugin(SyncAtEpochEnd)
            .build()?;
    strategy.train(&warm_up)?;
    let start = Instant::now();
    strategy.train(&timed)?;
    Ok(start.elapsed().as_secs_f64() * 1e3 / options.steps as f64)
}

/// Measures one device; failures go into the record's `error`.
fn measure(
    choice: DeviceChoice,
    benchmark: Option<&Benchmark>,
    options: &BackendsOptions,
    provenance: &Provenance,
) -> BackendRecord {
    let mut provenance = provenance.clone();
    provenance.backend = backend_label(choice);
    let mut record = BackendRecord {
        device: choice.to_string(),
        backend: choice.backend_name(),
        batch_size: options.batch_size,
        steps: options.steps,
        mlp_step_ms: None,
        cnn_step_ms: None,
        naive: None,
        error: None,
        provenance: provenance.clone(),
    };
    let device = match choice.device() {
        Ok(d) => d,
        Err(e) => {
            record.error = Some(e.to_string());
            return record;
        }
    };
    let mut errors = Vec::new();
    println!("\n== {choice} ==");
    let mlp = SimpleMlpConfig::new().with_seed(Some(options.seed)).init(&device);
    match mlp.and_then(|m| step_ms(m, &[784], &device, options)) {
        Ok(ms) => record.mlp_step_ms = Some(ms),
        Err(e) => errors.push(format!("SimpleMlp step: {e}")),
    }
    println!("SimpleMlp step: {:?} ms", record.mlp_step_ms.map(round2));
    let cnn = SimpleCnnConfig::new().with_in_channels(1).with_seed(options.seed).init(&device);
    match cnn.and_then(|m| step_ms(m, &[1, 28, 28], &device, options)) {
        Ok(ms) => record.cnn_step_ms = Some(ms),
        Err(e) => errors.push(format!("SimpleCNN step: {e}")),
    }
    println!("SimpleCNN step: {:?} ms", record.cnn_step_ms.map(round2));
    if let Some(benchmark) = benchmark {
        let bench_options = BenchOptions {
            device: Some(choice),
            seed: options.seed,
            batch_size: options.batch_size,
            ..BenchOptions::default()
        };
        match bench::run_one(benchmark, &bench_options, options.epochs, 0.0, &provenance) {
            Ok(r) => {
                record.naive = Some(NaiveNumbers {
                    epochs: r.epochs,
                    wall_time_s: r.wall_time_s,
                    train_time_s: r.train_time_s,
                    train_iterations_per_s: r.train_iterations_per_s,
                    final_average_accuracy: r.final_average_accuracy,
                })
            }
            Err(e) => errors.push(format!("Naive run: {e}")),
        }
    }
    if !errors.is_empty() {
        record.error = Some(errors.join("; "));
    }
    record
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Runs the comparison, prints and writes `backends.json` and `backends.md`.
pub fn run(options: &BackendsOptions) -> Result<Vec<BackendRecord>, BenchError> {
    let devices = options.devices.clone().unwrap_or_else(cl::device::compiled_cpu_devices);
    let provenance = Provenance::collect(&bench::output_dir().join("../.."));
    let benchmark = if options.skip_naive {
        None
    } else {
        let mut config = SplitMnistConfig::new(5).with_seed(options.seed);
        if let Some(dir) = &options.data_dir {
            config = config.with_dataset_root(dir);
        }
        Some(split_fmnist(&config).map_err(BenchError::Data)?)
    };
    println!(
        "backends side by side: {}; batch {}, {} timed steps, {} thread(s) for the Rust backends",
        devices.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
        options.batch_size,
        options.steps,
        provenance.threads
    );
    let policy = std::env::var("OMP_WAIT_POLICY").ok();
    if let Some(warning) = devices.iter().find_map(|&d| cl::device::libtorch_threads_warning(d, policy.as_deref())) {
        eprintln!("{warning}");
    }
    let records: Vec<_> = devices.iter().map(|&d| measure(d, benchmark.as_ref(), options, &provenance)).collect();
    let out_dir = bench::output_dir();
    std::fs::create_dir_all(&out_dir).map_err(|e| BenchError::Write(out_dir.clone(), e.to_string()))?;
    let json = out_dir.join("backends.json");
    let text = serde_json::to_string_pretty(&records).map_err(|e| BenchError::Write(json.clone(), e.to_string()))?;
    std::fs::write(&json, text + "\n").map_err(|e| BenchError::Write(json.clone(), e.to_string()))?;
    let table = markdown(&records);
    let md = out_dir.join("backends.md");
    std::fs::write(&md, &table).map_err(|e| BenchError::Write(md.clone(), e.to_string()))?;
    println!("\n{table}\nwritten {} and {}", json.display(), md.display());
    Ok(records)
}

/// The side-by-side table; ratios are the first device's time over this one's (speed-up).
pub fn markdown(records: &[BackendRecord]) -> String {
    let base = records.first();
    let cell = |value: Option<f64>, base: Option<f64>, digits: usize| match (value, base) {
        (Some(v), Some(b)) if v > 0.0 => format!("{v:.digits$} ({:.2}×)", b / v),
        (Some(v), _) => format!("{v:.digits$}"),
        (None, _) => "—".into(),
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n## Backends side by side\n\n(speed-up over {} in parentheses)\n\n\
         | device | backend | SimpleMlp step (ms) | SimpleCNN step (ms) | Naive train (s) | Naive wall (s) | Naive final avg acc | error |\n\
         |---|---|---:|---:|---:|---:|---:|---|",
        base.map(|b| b.device.as_str()).unwrap_or("-")
    );
    for r in records {
        let naive = |f: fn(&NaiveNumbers) -> f64| r.naive.as_ref().map(f);
        let base_naive = |f: fn(&NaiveNumbers) -> f64| base.and_then(|b| b.naive.as_ref()).map(f);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.device,
            r.backend,
            cell(r.mlp_step_ms, base.and_then(|b| b.mlp_step_ms), 2),
            cell(r.cnn_step_ms, base.and_then(|b| b.cnn_step_ms), 1),
            cell(naive(|n| n.train_time_s), base_naive(|n| n.train_time_s), 2),
            cell(naive(|n| n.wall_time_s), base_naive(|n| n.wall_time_s), 2),
            naive(|n| n.final_average_accuracy).map(|a| format!("{a:.4}")).unwrap_or("—".into()),
            r.error.as_deref().unwrap_or("")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<BackendsOptions>, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn options() {
        assert_eq!(parse(&[]), Ok(Some(BackendsOptions::default())));
        let o = parse(&["--devices", "flex,tch,cuda:1,flex", "--steps=5", "--skip-naive", "--batch", "64"])
            .unwrap()
            .unwrap();
        assert_eq!(o.devices, Some(vec![DeviceChoice::Flex, DeviceChoice::LibTorchCpu, DeviceChoice::LibTorchCuda(1)]));
        assert_eq!((o.steps, o.batch_size, o.skip_naive), (5, 64, true));
        assert_eq!(parse(&["--help"]), Ok(None));
        assert!(parse(&["--devices", "gpu"]).unwrap_err().contains("unknown device `gpu`"));
        assert!(parse(&["--steps", "0"]).is_err());
        assert!(parse(&["--steps"]).is_err());
        assert!(parse(&["--nope"]).is_err());
    }

    #[test]
    fn generated_data_is_deterministic_and_in_range() {
        let v = values(1000, 3);
        assert_eq!(v, values(1000, 3));
        assert_ne!(v, values(1000, 4));
        assert!(v.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = v.iter().sum::<f32>() / 1000.0;
        assert!((mean - 0.5).abs() < 0.05, "{mean}");
        let d = generated(12, &[1, 2, 2], 3).unwrap();
        assert_eq!((d.len(), d.sample_shape()), (12, &[1usize, 2, 2][..]));
        assert_eq!(d.classes().into_iter().collect::<Vec<_>>(), (0..10).collect::<Vec<u32>>());
    }

    #[test]
    fn an_uncompiled_backend_is_a_record_with_its_error() {
        if DeviceChoice::NdArray.is_compiled() {
            return;
        }
        let options = BackendsOptions { skip_naive: true, ..BackendsOptions::default() };
        let provenance = Provenance::collect(std::path::Path::new("."));
        let r = measure(DeviceChoice::NdArray, None, &options, &provenance);
        assert!(r.error.as_deref().unwrap_or("").contains("--features ndarray"), "{:?}", r.error);
        assert_eq!(r.mlp_step_ms, None);
        assert!(markdown(&[r]).contains("| ndarray | ndarray | — |"));
    }

    #[test]
    fn table_has_ratios_to_the_first_device() {
        let provenance = Provenance::collect(std::path::Path::new("."));
        let rec = |device: &str, mlp: f64| BackendRecord {
            device: device.into(),
            backend: device.into(),
            batch_size: 128,
            steps: 20,
            mlp_step_ms: Some(mlp),
            cnn_step_ms: None,
            naive: None,
            error: None,
            provenance: provenance.clone(),
        };
        let table = markdown(&[rec("flex", 4.0), rec("libtorch-cpu", 2.0)]);
        assert!(table.contains("| flex | flex | 4.00 (1.00×) |"), "{table}");
        assert!(table.contains("| libtorch-cpu | libtorch-cpu | 2.00 (2.00×) |"), "{table}");
    }
}
