//! The strategies part of `bench`: Naive, Cumulative, Replay, GDumb and JointTraining on the
//! full SplitFMNIST stream under one configuration (SimpleMLP, SGD lr 0.01 momentum 0.9,
//! 1 epoch per experience), timed, written as `target/bench/strategies.json`.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use cl::metrics::names::test_exp_accuracy;
use cl::prelude::*;
use cl::strategies::{GDumb, JointTraining, Replay};
use serde::Serialize;

use crate::bench::{BenchError, metric};
use crate::provenance::Provenance;

/// Name of the benchmark in records.
const BENCHMARK: &str = "SplitFMNIST";
/// SGD learning rate of the comparison.
pub const LR: f64 = 0.01;
/// SGD momentum of the comparison.
pub const MOMENTUM: f64 = 0.9;
/// Training epochs per experience (JointTraining: epochs over the union).
pub const EPOCHS: usize = 1;
/// Memory size of Replay and GDumb.
pub const MEM_SIZE: usize = 500;

/// One strategy over the stream: configuration, timings, accuracies and provenance.
#[derive(Debug, Clone, Serialize)]
pub struct StrategyRecord {
    /// `SplitFMNIST`.
    pub benchmark: &'static str,
    /// `Naive`, `Cumulative`, `Replay`, `GDumb` or `JointTraining`.
    pub strategy: &'static str,
    /// Number of experiences (5).
    pub n_experiences: usize,
    /// The class order drawn from the seed.
    pub classes_order: Vec<u32>,
    /// Training epochs per experience (JointTraining: over the union).
    pub epochs: usize,
    /// Training and evaluation mini-batch size.
    pub batch_size: usize,
    /// Seed of the class order, of the model initialisation and of the strategy.
    pub seed: u64,
    /// SGD learning rate.
    pub lr: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// Memory size (Replay and GDumb only).
    pub mem_size: Option<usize>,
    /// Loading the benchmark (shared by all runs of one invocation; not in `wall_time_s`).
    pub load_time_s: f64,
    /// Training plus evaluation over the stream (no data loading, no model construction).
    pub wall_time_s: f64,
    /// Sum of the `train` calls.
    pub train_time_s: f64,
    /// Sum of the `eval(test_stream)` calls.
    pub eval_time_s: f64,
    /// Training iterations (mini-batches) over the stream.
    pub train_iterations: u64,
    /// Mean over test experiences of `Top1_Acc_Exp` after the last experience (JointTraining:
    /// after its single training).
    pub final_average_accuracy: f64,
    /// Average forgetting after the last experience ([`AccuracyMatrix::forgetting`]); NaN for
    /// JointTraining (written as `null` in JSON).
    pub forgetting: f64,
    /// `accuracy_matrix[i][j]`: accuracy on test experience `j` after training on experience
    /// `i`; JointTraining has a single row (its one evaluation).
    pub accuracy_matrix: Vec<Vec<f64>>,
    /// Start of the run, seconds since the Unix epoch.
    pub timestamp: u64,
    /// Versions, commit and machine.
    #[serde(flatten)]
    pub provenance: Provenance,
}

/// Timings and accuracies of one run, before they become a [`StrategyRecord`].
struct Measured {
    rows: Vec<Vec<f64>>,
    forgetting: f64,
    train_time_s: f64,
    eval_time_s: f64,
    wall_time_s: f64,
    train_iterations: u64,
}

/// Runs the five strategies in turn on `benchmark`, printing each result, and returns their
/// records.
pub fn run(
    benchmark: &Benchmark,
    batch_size: usize,
    seed: u64,
    load_time_s: f64,
    provenance: &Provenance,
) -> Result<Vec<StrategyRecord>, BenchError> {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    println!(
        "\n== strategies: SimpleMLP, SGD(lr={LR}, momentum={MOMENTUM}), {EPOCHS} epoch(s) per \
         experience, batch {batch_size}, seed {seed}, memory {MEM_SIZE} (Replay, GDumb) =="
    );
    let device = cl::default_device();
    let optimizer = OptimizerSpec::sgd(LR, MOMENTUM, 0.0)?;
    // Each model is built right after seeding the device, so all start from the same weights.
    let model = || -> Result<SimpleMLP, BenchError> {
        device.seed(seed);
        Ok(SimpleMLPConfig::new()
            .with_num_classes(benchmark.n_classes)
            .init(&device)?)
    };

    let mut runs: Vec<(&'static str, Option<usize>, Measured)> = Vec::new();
    let naive = Naive::builder(model()?, optimizer.clone(), device.clone());
    let naive = configure(naive, batch_size, seed).build()?;
    runs.push(("Naive", None, over_stream("Naive", naive, benchmark)?));
    let cumulative = Cumulative::builder(model()?, optimizer.clone(), device.clone());
    let cumulative = configure(cumulative, batch_size, seed).build()?;
    runs.push((
        "Cumulative",
        None,
        over_stream("Cumulative", cumulative, benchmark)?,
    ));
    let replay = Replay::builder(model()?, optimizer.clone(), device.clone(), MEM_SIZE)?;
    let replay = configure(replay, batch_size, seed).build()?;
    runs.push((
        "Replay",
        Some(MEM_SIZE),
        over_stream("Replay", replay, benchmark)?,
    ));
    let gdumb = GDumb::builder(model()?, optimizer.clone(), device.clone(), MEM_SIZE, seed)?;
    let gdumb = configure(gdumb, batch_size, seed).build()?;
    runs.push((
        "GDumb",
        Some(MEM_SIZE),
        over_stream("GDumb", gdumb, benchmark)?,
    ));
    let joint = JointTraining::builder(model()?, optimizer, device.clone());
    let joint = JointTraining::new(configure(joint, batch_size, seed).build()?);
    runs.push(("JointTraining", None, joint_run(joint, benchmark)?));

    let records = runs
        .into_iter()
        .map(|(strategy, mem_size, m)| StrategyRecord {
            benchmark: BENCHMARK,
            strategy,
            n_experiences: benchmark.n_experiences(),
            classes_order: benchmark.classes_order.clone(),
            epochs: EPOCHS,
            batch_size,
            seed,
            lr: LR,
            momentum: MOMENTUM,
            mem_size,
            load_time_s,
            wall_time_s: m.wall_time_s,
            train_time_s: m.train_time_s,
            eval_time_s: m.eval_time_s,
            train_iterations: m.train_iterations,
            final_average_accuracy: m.rows.last().map_or(f64::NAN, |r| mean(r)),
            forgetting: m.forgetting,
            accuracy_matrix: m.rows,
            timestamp,
            provenance: provenance.clone(),
        })
        .collect::<Vec<_>>();
    for r in &records {
        println!(
            "{:<13} final average accuracy {:.4}, forgetting {}, wall {:.2} s (train {:.2} s, eval {:.2} s), {} iterations",
            r.strategy,
            r.final_average_accuracy,
            format_forgetting(r.forgetting),
            r.wall_time_s,
            r.train_time_s,
            r.eval_time_s,
            r.train_iterations
        );
    }
    Ok(records)
}

/// The settings shared by all strategies: batch sizes, epochs, seed.
fn configure<S: TemplateSteps<SimpleMLP>>(
    builder: StrategyBuilder<SimpleMLP, S>,
    batch_size: usize,
    seed: u64,
) -> StrategyBuilder<SimpleMLP, S> {
    builder
        .train_mb_size(batch_size)
        .train_epochs(EPOCHS)
        .eval_mb_size(batch_size)
        .seed(seed)
}

/// Trains on each experience in turn, evaluating on the whole test stream after each.
fn over_stream<S: TemplateSteps<SimpleMLP>>(
    name: &str,
    mut strategy: Strategy<SimpleMLP, S>,
    benchmark: &Benchmark,
) -> Result<Measured, BenchError> {
    let n = benchmark.n_experiences();
    let mut matrix = AccuracyMatrix::new(n);
    let (mut train_time_s, mut eval_time_s) = (0.0, 0.0);
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
            matrix.set(i, j, metric(&results, &test_exp_accuracy(0, j))?);
        }
        println!("{name} after exp{i}: avg {:.4}", matrix.average_accuracy(i));
    }
    let wall_time_s = wall.elapsed().as_secs_f64();
    Ok(Measured {
        rows: matrix.rows().to_vec(),
        forgetting: matrix.forgetting(),
        train_time_s,
        eval_time_s,
        wall_time_s,
        train_iterations: strategy.state.clock.train_iterations,
    })
}

/// One training on the whole stream, then one evaluation on the test stream.
fn joint_run(
    mut joint: JointTraining<SimpleMLP>,
    benchmark: &Benchmark,
) -> Result<Measured, BenchError> {
    let n = benchmark.n_experiences();
    let wall = Instant::now();
    let t = Instant::now();
    joint.train(&benchmark.train_stream)?;
    let train_time_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let results = joint.eval(&benchmark.test_stream)?;
    let eval_time_s = t.elapsed().as_secs_f64();
    let wall_time_s = wall.elapsed().as_secs_f64();
    let row = (0..n)
        .map(|j| metric(&results, &test_exp_accuracy(0, j)))
        .collect::<Result<Vec<_>, _>>()?;
    println!("JointTraining after the union: avg {:.4}", mean(&row));
    Ok(Measured {
        rows: vec![row],
        forgetting: f64::NAN,
        train_time_s,
        eval_time_s,
        wall_time_s,
        train_iterations: joint.strategy().state.clock.train_iterations,
    })
}

/// Mean of `values` (NaN when empty).
fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// `0.1234`, or `—` when not defined (JointTraining).
pub fn format_forgetting(forgetting: f64) -> String {
    if forgetting.is_nan() {
        "—".into()
    } else {
        format!("{forgetting:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgetting_dash_for_nan() {
        assert_eq!(format_forgetting(f64::NAN), "—");
        assert_eq!(format_forgetting(0.25), "0.2500");
    }

    #[test]
    fn mean_of_row() {
        assert!((mean(&[0.5, 1.0]) - 0.75).abs() < 1e-12);
    }
}
