//! The checkpoint part of `bench`: size, save and load time of a checkpoint of SimpleMLP with a
//! replay buffer of 500 samples and EWC's state, and the overhead of checkpointing after every
//! experience on the SplitFMNIST Naive run. Written as `target/bench/checkpoint.json` and a
//! table in `summary.md`.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use cl::core::ClError;
use cl::plugins::regularization::{EwcConfig, EwcPlugin};
use cl::plugins::{CheckpointConfig, CheckpointPlugin, ReplayConfig, ReplayPlugin};
use cl::prelude::*;
use cl::strategies::NaiveConfig;
use serde::Serialize;

use crate::provenance::Provenance;

/// Timed repetitions (the minimum and the median are reported).
const REPEATS: usize = 5;
/// Repetitions of the whole SplitFMNIST run with and without checkpoints (interleaved).
const RUN_REPEATS: usize = 3;

/// The measurement.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointCostRecord {
    /// What the timed checkpoint holds.
    pub state: &'static str,
    /// Checkpoint size in bytes.
    pub bytes: u64,
    /// Save time (collect, encode, write, fsync, rename): fastest and median, milliseconds.
    pub save_ms_min: f64,
    /// Median save time, milliseconds.
    pub save_ms_median: f64,
    /// Load time (read, verify, decode, rebuild the strategy): fastest, milliseconds.
    pub load_ms_min: f64,
    /// Median load time, milliseconds.
    pub load_ms_median: f64,
    /// The SplitFMNIST Naive run (1 epoch, batch as `bench`) without checkpoints, fastest, s.
    pub run_s: f64,
    /// The same run with a checkpoint after every experience, fastest, s.
    pub run_with_checkpoints_s: f64,
    /// `run_with_checkpoints_s / run_s - 1`, percent (two noisy wall times differenced).
    pub overhead_percent: f64,
    /// Seconds spent in the checkpoint saves of the fastest run with checkpoints.
    pub saves_s: f64,
    /// `saves_s` as a share of the run without checkpoints, percent (the direct measure).
    pub saves_percent: f64,
    /// Size of one checkpoint of that run (SimpleMLP, SGD with momentum, default metrics).
    pub run_checkpoint_bytes: u64,
    /// Start of the measurement, seconds since the Unix epoch.
    pub timestamp: u64,
    /// Versions, commit and machine.
    #[serde(flatten)]
    pub provenance: Provenance,
}

fn stats(mut times: Vec<f64>) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    (times[0], times[times.len() / 2])
}

/// A Naive SimpleMLP strategy with a replay plugin of 500 samples and EWC.
fn replay_ewc(benchmark: &Benchmark, seed: u64) -> Result<StrategyBuilder<SimpleMlp>, ClError> {
    let model = SimpleMlpConfig::new().with_num_classes(benchmark.n_classes).init(&cl::default_device())?;
    Ok(Naive::builder(
        model,
        OptimizerSpec::sgd(0.01).with_momentum(0.9),
        cl::default_device(),
        NaiveConfig::default(),
    )?
    .train_mb_size(128)
    .seed(seed)
    .plugin(ReplayPlugin::new(ReplayConfig::new(500))?)
    .plugin(EwcPlugin::new(EwcConfig::new(50.0))?))
}

/// The SplitFMNIST Naive run, with or without a checkpoint after every experience; seconds, the
/// seconds spent in the saves and the size of the last checkpoint.
fn naive_run(
    benchmark: &Benchmark,
    batch_size: usize,
    seed: u64,
    checkpoints: bool,
) -> Result<(f64, f64, u64), ClError> {
    let dir = tempfile::tempdir().map_err(|e| ClError::Io { path: std::env::temp_dir(), source: e })?;
    let model = SimpleMlpConfig::new().with_num_classes(benchmark.n_classes).init(&cl::default_device())?;
    let mut builder = Naive::builder(
        model,
        OptimizerSpec::sgd(0.001).with_momentum(0.9),
        cl::default_device(),
        NaiveConfig::default(),
    )?
    .train_mb_size(batch_size)
    .eval_mb_size(batch_size)
    .seed(seed);
    if checkpoints {
        builder = builder.plugin(CheckpointPlugin::new(CheckpointConfig::new(dir.path()).with_keep_last(2))?);
    }
    let mut strategy = builder.build()?;
    let t = Instant::now();
    let mut saves = 0.0;
    for exp in &benchmark.train_stream {
        strategy.train(exp)?;
        saves += strategy.last_checkpoint().map_or(0.0, |c| c.seconds);
        strategy.eval(&benchmark.test_stream)?;
    }
    let seconds = t.elapsed().as_secs_f64();
    let bytes = cl::core::checkpoint::list_checkpoints(dir.path())?
        .last()
        .and_then(|p| std::fs::metadata(p).ok())
        .map_or(0, |m| m.len());
    Ok((seconds, saves, bytes))
}

/// Measures and prints; returns the record.
pub fn run(
    benchmark: &Benchmark,
    batch_size: usize,
    seed: u64,
    provenance: &Provenance,
) -> Result<CheckpointCostRecord, ClError> {
    let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    println!(
        "\n== checkpoint cost: SimpleMLP + replay 500 + EWC; SplitFMNIST Naive with a checkpoint per experience =="
    );
    let dir = tempfile::tempdir().map_err(|e| ClError::Io { path: std::env::temp_dir(), source: e })?;
    let path = dir.path().join("replay_ewc.clckpt");
    let mut strategy = replay_ewc(benchmark, seed)?.build()?;
    strategy.train(&benchmark.train_stream.experiences()[..2])?;
    let mut saves = Vec::new();
    let mut bytes = 0;
    for _ in 0..REPEATS {
        let info = strategy.save_checkpoint(&path)?;
        saves.push(info.seconds * 1e3);
        bytes = info.bytes;
    }
    let mut loads = Vec::new();
    for _ in 0..REPEATS {
        let builder = replay_ewc(benchmark, seed)?;
        let t = Instant::now();
        let resumed = builder.resume_from(&path).build()?;
        loads.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(resumed);
    }
    let (save_min, save_median) = stats(saves);
    let (load_min, load_median) = stats(loads);
    println!(
        "checkpoint {bytes} bytes; save {save_min:.1} ms (median {save_median:.1}); load {load_min:.1} ms (median {load_median:.1})"
    );

    // Warm-up, then interleaved runs with and without checkpoints.
    naive_run(benchmark, batch_size, seed, false)?;
    let (mut plain, mut with) = (Vec::new(), Vec::new());
    let mut run_bytes = 0;
    let mut saves_s = f64::INFINITY;
    for _ in 0..RUN_REPEATS {
        plain.push(naive_run(benchmark, batch_size, seed, false)?.0);
        let (s, saves, b) = naive_run(benchmark, batch_size, seed, true)?;
        with.push(s);
        saves_s = saves_s.min(saves);
        run_bytes = b;
    }
    let (run_s, run_ckpt_s) = (stats(plain).0, stats(with).0);
    let overhead = (run_ckpt_s / run_s - 1.0) * 100.0;
    let saves_percent = saves_s / run_s * 100.0;
    println!(
        "SplitFMNIST Naive: {run_s:.2} s, with a checkpoint per experience {run_ckpt_s:.2} s ({overhead:+.1} %); \
         the saves took {:.0} ms ({saves_percent:.1} % of the run)",
        saves_s * 1e3
    );
    Ok(CheckpointCostRecord {
        state: "SimpleMLP (512 hidden), SGD momentum, replay buffer 500 samples, EWC importances and parameters",
        bytes,
        save_ms_min: save_min,
        save_ms_median: save_median,
        load_ms_min: load_min,
        load_ms_median: load_median,
        run_s,
        run_with_checkpoints_s: run_ckpt_s,
        overhead_percent: overhead,
        saves_s,
        saves_percent,
        run_checkpoint_bytes: run_bytes,
        timestamp,
        provenance: provenance.clone(),
    })
}

/// The markdown table of `summary.md`.
pub fn markdown(r: &CheckpointCostRecord) -> String {
    format!(
        "\n## Checkpoints\n\n| measure | value |\n|---|---:|\n\
         | checkpoint of SimpleMLP + replay 500 + EWC | {:.1} MB |\n\
         | save (best / median) | {:.1} / {:.1} ms |\n\
         | load and rebuild (best / median) | {:.1} / {:.1} ms |\n\
         | SplitFMNIST Naive run | {:.2} s |\n\
         | same, checkpoint after every experience | {:.2} s ({:+.1} %) |\n\
         | time in the 5 saves of that run | {:.0} ms ({:.1} % of the run) |\n\
         | one checkpoint of that run | {:.1} MB |\n",
        r.bytes as f64 / 1e6,
        r.save_ms_min,
        r.save_ms_median,
        r.load_ms_min,
        r.load_ms_median,
        r.run_s,
        r.run_with_checkpoints_s,
        r.overhead_percent,
        r.saves_s * 1e3,
        r.saves_percent,
        r.run_checkpoint_bytes as f64 / 1e6
    )
}
