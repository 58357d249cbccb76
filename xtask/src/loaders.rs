//! The data-loading part of `bench`: samples per second through each data loader with no model,
//! compared with what training consumes. Written as `target/bench/loaders.json`.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use cl::core::data::{
    ClassificationDataLoader, DataLoader, DataLoaderConfig, GroupBalancedDataLoaderConfig, ReplayDataLoader,
    ReplayDataLoaderConfig, TaskBalancedDataLoader,
};
use cl::prelude::*;
use serde::Serialize;

use crate::provenance::Provenance;

/// Samples of experience 0 kept as the replay memory.
const MEMORY_SIZE: usize = 2000;
/// Memory samples per replay mini-batch.
const BATCH_SIZE_MEM: usize = 128;

/// One loader's epoch: what was loaded, how fast, and how that compares with training.
#[derive(Debug, Clone, Serialize)]
pub struct LoaderRecord {
    /// `SplitFMNIST`.
    pub benchmark: &'static str,
    /// The loader type, e.g. `ReplayDataLoader`.
    pub loader: &'static str,
    /// The data iterated, in words.
    pub data: String,
    /// Mini-batch size (current data only, for the replay loader).
    pub batch_size: usize,
    /// Memory samples per mini-batch (replay loader only).
    pub batch_size_mem: Option<usize>,
    /// Mini-batches of the epoch.
    pub batches: u64,
    /// Samples of the epoch (all mini-batches together).
    pub samples: u64,
    /// Time spent in `next_batch` (gather, u8 → f32, upload, transforms), summed over the epoch.
    pub seconds: f64,
    /// `samples / seconds`.
    pub samples_per_s: f64,
    /// Training samples per second of the run compared against (the 1-epoch run if any), if one ran.
    pub training_samples_per_s: Option<f64>,
    /// `samples_per_s / training_samples_per_s`: how many times faster the loader is than training.
    pub ratio_to_training: Option<f64>,
    /// Start of the measurement, seconds since the Unix epoch.
    pub timestamp: u64,
    /// Versions, commit and machine.
    #[serde(flatten)]
    pub provenance: Provenance,
}

/// Times one epoch of each loader over `benchmark` on the default (flex) device, prints each
/// rate next to `training` (label and samples/s of the training run compared against) and
/// returns the records.
pub fn run(
    benchmark: &Benchmark,
    batch_size: usize,
    seed: u64,
    training: Option<(String, f64)>,
    provenance: &Provenance,
) -> Result<Vec<LoaderRecord>, ClError> {
    let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let exp0 = benchmark.train_stream[0].dataset.train();
    let exp1 = benchmark.train_stream[1].dataset.train();
    let loader_config = DataLoaderConfig::train(batch_size, seed);

    let mut plain = ClassificationDataLoader::new(exp1.clone(), loader_config)?;
    // Two tasks of 12 000 samples: the batch is split 50/50 between them.
    let two_tasks = exp0.with_task_label(0).concat(&exp1.with_task_label(1))?;
    let mut task_balanced = TaskBalancedDataLoader::new(&two_tasks, GroupBalancedDataLoaderConfig::new(loader_config))?;
    // An evenly spread subset of experience 0 as the memory.
    let stride = (exp0.len() / MEMORY_SIZE).max(1);
    let memory_indices: Vec<usize> = (0..exp0.len()).step_by(stride).take(MEMORY_SIZE).collect();
    let memory = exp0.subset(&memory_indices)?;
    let replay_config = ReplayDataLoaderConfig::new(loader_config).with_batch_size_mem(BATCH_SIZE_MEM);
    let mut replay = ReplayDataLoader::new(&exp1, Some(&memory), replay_config)?;

    let device = cl::default_device();
    let cases: [(&'static str, String, Option<usize>, &mut dyn DataLoader); 3] = [
        ("ClassificationDataLoader", format!("exp1 train ({} samples), shuffled", exp1.len()), None, &mut plain),
        (
            "TaskBalancedDataLoader",
            format!("exp0 as task 0 + exp1 as task 1 ({} samples)", two_tasks.len()),
            None,
            &mut task_balanced,
        ),
        (
            "ReplayDataLoader",
            format!("exp1 train ({}) + memory of {} exp0 samples", exp1.len(), memory.len()),
            Some(BATCH_SIZE_MEM),
            &mut replay,
        ),
    ];
    println!(
        "\n== data loading: one epoch per loader, no model, batch {batch_size}, backend {} ==",
        provenance.backend
    );
    if let Some((label, sps)) = &training {
        println!("training consumption ({label}): {sps:.0} samples/s");
    }
    let mut records = Vec::new();
    for (name, data, batch_size_mem, loader) in cases {
        let (batches, samples, seconds) = time_epoch(loader, &device)?;
        let samples_per_s = if seconds > 0.0 { samples as f64 / seconds } else { 0.0 };
        let training_sps = training.as_ref().map(|(_, sps)| *sps);
        let ratio = training_sps.filter(|&t| t > 0.0).map(|t| samples_per_s / t);
        println!(
            "{name:<25} {batches:>4} batches, {samples:>6} samples in {seconds:.3} s: {samples_per_s:>9.0} samples/s{}",
            ratio
                .map(|r| format!(", {r:.1}× the training consumption ({:.1} % of training time)", 100.0 / r))
                .unwrap_or_default()
        );
        records.push(LoaderRecord {
            benchmark: "SplitFMNIST",
            loader: name,
            data,
            batch_size,
            batch_size_mem,
            batches,
            samples,
            seconds,
            samples_per_s,
            training_samples_per_s: training_sps,
            ratio_to_training: ratio,
            timestamp,
            provenance: provenance.clone(),
        });
    }
    Ok(records)
}

/// One epoch of `loader`: (batches, samples, seconds spent inside `next_batch`).
fn time_epoch(loader: &mut dyn DataLoader, device: &cl::burn::tensor::Device) -> Result<(u64, u64, f64), ClError> {
    loader.start_epoch();
    let (mut batches, mut samples, mut seconds) = (0u64, 0u64, 0.0f64);
    loop {
        let t = Instant::now();
        let next = loader.next_batch(device);
        seconds += t.elapsed().as_secs_f64();
        let Some(batch) = next else { break };
        let batch = batch?;
        batches += 1;
        samples += batch.len() as u64;
    }
    Ok((batches, samples, seconds))
}
