//! The strategies part of `bench`: on the full SplitFMNIST stream, Naive, Cumulative, Replay,
//! GDumb, JointTraining, EWC, SI, MAS, LwF, A-GEM, GEM and CWR*; on PermutedFMNIST
//! (5 experiences), Naive and the last seven. One configuration for all (SimpleMLP, SGD lr 0.01
//! momentum 0.9, 1 epoch per experience), timed, written as `target/bench/strategies.json`.
//!
//! A method that fails (an error or a panic) is recorded with its message in `error` and the
//! comparison goes on; the tables show the message instead of numbers.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use cl::burn::tensor::Device;
use cl::benchmarks::classic::{TransformedMnistConfig, permuted_fmnist};
use cl::core::DefaultSteps;
use cl::metrics::names::test_exp_accuracy;
use cl::plugins::{EwcConfig, LwfConfig, MasConfig, SynapticIntelligenceConfig};
use cl::prelude::*;
use cl::strategies::{AGem, CwrStar, Ewc, GDumb, Gem, JointTraining, LwF, Mas, Replay, SynapticIntelligence};
use serde::Serialize;

use crate::bench::{BenchError, metric};
use crate::provenance::Provenance;

/// Name of the class-incremental benchmark in records.
pub const SPLIT: &str = "SplitFMNIST";
/// Name of the domain-incremental benchmark in records.
pub const PERMUTED: &str = "PermutedFMNIST";
/// Experiences of PermutedFMNIST.
pub const PERMUTED_EXPERIENCES: usize = 5;
/// SGD learning rate of the comparison.
pub const LR: f64 = 0.01;
/// SGD momentum of the comparison.
pub const MOMENTUM: f64 = 0.9;
/// Training epochs per experience (JointTraining: epochs over the union).
pub const EPOCHS: usize = 1;
/// Memory size of Replay and GDumb.
pub const MEM_SIZE: usize = 500;
/// EWC λ (separate mode), the value of `tests/regularization.rs`.
pub const EWC_LAMBDA: f64 = 3000.0;
/// SI λ (importance clipped below at 0), the value of `tests/regularization.rs`.
pub const SI_LAMBDA: f64 = 1000.0;
/// MAS λ and α, the values of `tests/regularization.rs`.
pub const MAS_LAMBDA_ALPHA: (f64, f64) = (1.0, 0.5);
/// LwF α and temperature.
pub const LWF_ALPHA_T: (f64, f64) = (1.0, 2.0);
/// A-GEM patterns per experience and sample size.
pub const AGEM_SIZES: (usize, usize) = (256, 256);
/// GEM patterns per experience and memory strength.
pub const GEM_PATTERNS_STRENGTH: (usize, f64) = (256, 0.5);
/// CWR* layer (the classifier of SimpleMLP); the rest of the model is frozen after exp 0.
pub const CWR_LAYER: &str = "classifier";

/// One strategy over one benchmark: configuration, timings, accuracies and provenance.
#[derive(Debug, Clone, Serialize)]
pub struct StrategyRecord {
    /// `SplitFMNIST` or `PermutedFMNIST`.
    pub benchmark: &'static str,
    /// `Naive`, `Cumulative`, `Replay`, `GDumb`, `JointTraining`, `EWC`, `SI`, `MAS`, `LwF`,
    /// `A-GEM`, `GEM` or `CWR*`.
    pub strategy: &'static str,
    /// The strategy's own hyper-parameters, e.g. `separate, λ=3000` (empty for Naive).
    pub hyperparameters: String,
    /// Number of experiences (5).
    pub n_experiences: usize,
    /// The class order of the benchmark.
    pub classes_order: Vec<u32>,
    /// Training epochs per experience (JointTraining: over the union).
    pub epochs: usize,
    /// Training and evaluation mini-batch size.
    pub batch_size: usize,
    /// Seed of the class order or permutations, of the model initialisation and of the strategy.
    pub seed: u64,
    /// SGD learning rate.
    pub lr: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// Memory size (Replay and GDumb only).
    pub mem_size: Option<usize>,
    /// Loading the benchmark (shared by all runs on it; not in `wall_time_s`).
    pub load_time_s: f64,
    /// Training plus evaluation over the stream (no data loading, no model construction).
    pub wall_time_s: f64,
    /// `wall_time_s` over Naive's on the same benchmark (`null` if either failed).
    pub wall_time_vs_naive: Option<f64>,
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
    /// Why the run failed (error or panic message); `None` when it completed.
    pub error: Option<String>,
    /// Start of the comparison, seconds since the Unix epoch.
    pub timestamp: u64,
    /// Versions, commit and machine.
    #[serde(flatten)]
    pub provenance: Provenance,
}

/// Timings and accuracies of one run, before they become a [`StrategyRecord`].
#[derive(Debug)]
struct Measured {
    rows: Vec<Vec<f64>>,
    forgetting: f64,
    train_time_s: f64,
    eval_time_s: f64,
    wall_time_s: f64,
    train_iterations: u64,
}

/// One finished (or failed) run, before it becomes a [`StrategyRecord`].
struct Run {
    strategy: &'static str,
    hyperparameters: String,
    mem_size: Option<usize>,
    result: Result<Measured, String>,
}

/// Builds a Naive-stepped strategy builder from a fresh model.
type MakeBuilder = Box<dyn Fn(SimpleMLP) -> cl::core::Result<StrategyBuilder<SimpleMLP, DefaultSteps>>>;

/// The seven methods compared on both benchmarks: name, hyper-parameters, builder.
fn methods(optimizer: &OptimizerSpec, device: &Device) -> Vec<(&'static str, String, MakeBuilder)> {
    let (o, d) = (optimizer.clone(), device.clone());
    let (mas_lambda, mas_alpha) = MAS_LAMBDA_ALPHA;
    let (lwf_alpha, lwf_t) = LWF_ALPHA_T;
    let (agem_patterns, agem_sample) = AGEM_SIZES;
    let (gem_patterns, gem_strength) = GEM_PATTERNS_STRENGTH;
    vec![
        (
            "EWC",
            format!("separate, λ={EWC_LAMBDA}"),
            Box::new({
                let (o, d) = (o.clone(), d.clone());
                move |m| Ewc::builder(m, o.clone(), d.clone(), EwcConfig::new(EWC_LAMBDA))
            }),
        ),
        (
            "SI",
            format!("λ={SI_LAMBDA}, Ω ≥ 0"),
            Box::new({
                let (o, d) = (o.clone(), d.clone());
                move |m| {
                    let config = SynapticIntelligenceConfig::new(SI_LAMBDA).with_min_importance(Some(0.0));
                    SynapticIntelligence::builder(m, o.clone(), d.clone(), config)
                }
            }),
        ),
        (
            "MAS",
            format!("λ={mas_lambda}, α={mas_alpha}"),
            Box::new({
                let (o, d) = (o.clone(), d.clone());
                move |m| Mas::builder(m, o.clone(), d.clone(), MasConfig::new(mas_lambda, mas_alpha))
            }),
        ),
        (
            "LwF",
            format!("α={lwf_alpha}, T={lwf_t}"),
            Box::new({
                let (o, d) = (o.clone(), d.clone());
                move |m| LwF::builder(m, o.clone(), d.clone(), LwfConfig::new(lwf_alpha, lwf_t))
            }),
        ),
        (
            "A-GEM",
            format!("{agem_patterns} patterns/exp, sample {agem_sample}"),
            Box::new({
                let (o, d) = (o.clone(), d.clone());
                move |m| AGem::builder(m, o.clone(), d.clone(), agem_patterns, agem_sample)
            }),
        ),
        (
            "GEM",
            format!("{gem_patterns} patterns/exp, strength {gem_strength}"),
            Box::new({
                let (o, d) = (o.clone(), d.clone());
                move |m| Gem::builder(m, o.clone(), d.clone(), gem_patterns, gem_strength)
            }),
        ),
        (
            "CWR*",
            format!("layer {CWR_LAYER}, freeze rest"),
            Box::new(move |m| CwrStar::builder(m, o.clone(), d.clone(), CWR_LAYER, true)),
        ),
    ]
}

/// Runs `f`, turning an error or a panic into its message (printed, so it is not missed).
fn guarded(name: &str, benchmark: &str, f: impl FnOnce() -> Result<Measured, BenchError>) -> Result<Measured, String> {
    let outcome = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(m)) => return Ok(m),
        Ok(Err(e)) => e.to_string(),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic payload".into());
            format!("panicked: {message}")
        }
    };
    eprintln!("error: {name} on {benchmark}: {outcome}");
    Err(outcome)
}

/// Runs the comparison: all twelve strategies on `split` (SplitFMNIST, already loaded), then
/// loads PermutedFMNIST (same seed, IDX files from `data_dir` when given) and runs Naive and
/// the seven methods of [`methods`] on it. Prints each result and returns the records.
pub fn run(
    split: &Benchmark,
    split_load_time_s: f64,
    data_dir: Option<&Path>,
    batch_size: usize,
    seed: u64,
    provenance: &Provenance,
) -> Result<Vec<StrategyRecord>, BenchError> {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut records = run_split(split, batch_size, seed)
        .into_iter()
        .map(|r| record(SPLIT, split, split_load_time_s, r, batch_size, seed, timestamp, provenance))
        .collect::<Vec<_>>();

    let mut config = TransformedMnistConfig::new(PERMUTED_EXPERIENCES).with_seed(seed);
    if let Some(dir) = data_dir {
        config = config.with_dataset_root(dir);
    }
    let start = Instant::now();
    let permuted = permuted_fmnist(&config).map_err(BenchError::Data)?;
    let permuted_load_time_s = start.elapsed().as_secs_f64();
    println!("\n{PERMUTED}: {} experiences, seed {seed}, loaded in {permuted_load_time_s:.2} s", permuted.n_experiences());
    records.extend(
        run_permuted(&permuted, batch_size, seed)
            .into_iter()
            .map(|r| record(PERMUTED, &permuted, permuted_load_time_s, r, batch_size, seed, timestamp, provenance)),
    );
    set_time_vs_naive(&mut records);

    for r in &records {
        match &r.error {
            None => println!(
                "{:<14} {:<7} final average accuracy {:.4}, forgetting {}, wall {:.2} s ({} Naive; train {:.2} s, eval {:.2} s), {} iterations",
                r.benchmark,
                r.strategy,
                r.final_average_accuracy,
                format_forgetting(r.forgetting),
                r.wall_time_s,
                format_ratio(r.wall_time_vs_naive),
                r.train_time_s,
                r.eval_time_s,
                r.train_iterations
            ),
            Some(e) => println!("{:<14} {:<7} FAILED: {e}", r.benchmark, r.strategy),
        }
    }
    Ok(records)
}

/// The SplitFMNIST runs: the five baselines then the seven methods.
fn run_split(benchmark: &Benchmark, batch_size: usize, seed: u64) -> Vec<Run> {
    println!(
        "\n== strategies on {SPLIT}: SimpleMLP, SGD(lr={LR}, momentum={MOMENTUM}), {EPOCHS} epoch(s) per \
         experience, batch {batch_size}, seed {seed}, memory {MEM_SIZE} (Replay, GDumb) =="
    );
    let device = cl::default_device();
    let optimizer = match OptimizerSpec::sgd(LR, MOMENTUM, 0.0) {
        Ok(o) => o,
        Err(e) => unreachable!("constant SGD settings are valid: {e}"),
    };
    let model = model_factory(benchmark, &device, seed);
    let b = benchmark;
    let (o, d) = (&optimizer, &device);
    let mut runs = vec![
        Run {
            strategy: "Naive",
            hyperparameters: String::new(),
            mem_size: None,
            result: guarded("Naive", SPLIT, || {
                let s = configure(Naive::builder(model()?, o.clone(), d.clone()), batch_size, seed).build()?;
                over_stream("Naive", s, b)
            }),
        },
        Run {
            strategy: "Cumulative",
            hyperparameters: String::new(),
            mem_size: None,
            result: guarded("Cumulative", SPLIT, || {
                let s = configure(Cumulative::builder(model()?, o.clone(), d.clone()), batch_size, seed).build()?;
                over_stream("Cumulative", s, b)
            }),
        },
        Run {
            strategy: "Replay",
            hyperparameters: format!("mem {MEM_SIZE}"),
            mem_size: Some(MEM_SIZE),
            result: guarded("Replay", SPLIT, || {
                let s = Replay::builder(model()?, o.clone(), d.clone(), MEM_SIZE)?;
                over_stream("Replay", configure(s, batch_size, seed).build()?, b)
            }),
        },
        Run {
            strategy: "GDumb",
            hyperparameters: format!("mem {MEM_SIZE}"),
            mem_size: Some(MEM_SIZE),
            result: guarded("GDumb", SPLIT, || {
                let s = GDumb::builder(model()?, o.clone(), d.clone(), MEM_SIZE, seed)?;
                over_stream("GDumb", configure(s, batch_size, seed).build()?, b)
            }),
        },
        Run {
            strategy: "JointTraining",
            hyperparameters: String::new(),
            mem_size: None,
            result: guarded("JointTraining", SPLIT, || {
                let joint = JointTraining::builder(model()?, o.clone(), d.clone());
                joint_run(JointTraining::new(configure(joint, batch_size, seed).build()?), b)
            }),
        },
    ];
    runs.extend(run_methods(SPLIT, benchmark, &optimizer, &device, batch_size, seed));
    runs
}

/// The PermutedFMNIST runs: Naive then the seven methods.
fn run_permuted(benchmark: &Benchmark, batch_size: usize, seed: u64) -> Vec<Run> {
    println!(
        "\n== strategies on {PERMUTED}: SimpleMLP, SGD(lr={LR}, momentum={MOMENTUM}), {EPOCHS} epoch(s) per \
         experience, batch {batch_size}, seed {seed} =="
    );
    let device = cl::default_device();
    let optimizer = match OptimizerSpec::sgd(LR, MOMENTUM, 0.0) {
        Ok(o) => o,
        Err(e) => unreachable!("constant SGD settings are valid: {e}"),
    };
    let model = model_factory(benchmark, &device, seed);
    let mut runs = vec![Run {
        strategy: "Naive",
        hyperparameters: String::new(),
        mem_size: None,
        result: guarded("Naive", PERMUTED, || {
            let s = configure(Naive::builder(model()?, optimizer.clone(), device.clone()), batch_size, seed).build()?;
            over_stream("Naive", s, benchmark)
        }),
    }];
    runs.extend(run_methods(PERMUTED, benchmark, &optimizer, &device, batch_size, seed));
    runs
}

/// EWC, SI, MAS, LwF, A-GEM, GEM and CWR* on `benchmark`, each from the same initial weights.
fn run_methods(
    name: &'static str,
    benchmark: &Benchmark,
    optimizer: &OptimizerSpec,
    device: &Device,
    batch_size: usize,
    seed: u64,
) -> Vec<Run> {
    let model = model_factory(benchmark, device, seed);
    methods(optimizer, device)
        .into_iter()
        .map(|(strategy, hyperparameters, make)| Run {
            strategy,
            hyperparameters,
            mem_size: None,
            result: guarded(strategy, name, || {
                let s = configure(make(model()?)?, batch_size, seed).build()?;
                over_stream(strategy, s, benchmark)
            }),
        })
        .collect()
}

/// A SimpleMLP for `benchmark`, built right after seeding the device, so that every strategy
/// starts from the same weights.
fn model_factory<'a>(
    benchmark: &'a Benchmark,
    device: &'a Device,
    seed: u64,
) -> impl Fn() -> Result<SimpleMLP, BenchError> + 'a {
    move || {
        device.seed(seed);
        Ok(SimpleMLPConfig::new()
            .with_num_classes(benchmark.n_classes)
            .init(device)?)
    }
}

/// A [`StrategyRecord`] from a run.
#[allow(clippy::too_many_arguments)]
fn record(
    name: &'static str,
    benchmark: &Benchmark,
    load_time_s: f64,
    run: Run,
    batch_size: usize,
    seed: u64,
    timestamp: u64,
    provenance: &Provenance,
) -> StrategyRecord {
    let (m, error) = match run.result {
        Ok(m) => (m, None),
        Err(e) => (
            Measured {
                rows: Vec::new(),
                forgetting: f64::NAN,
                train_time_s: f64::NAN,
                eval_time_s: f64::NAN,
                wall_time_s: f64::NAN,
                train_iterations: 0,
            },
            Some(e),
        ),
    };
    StrategyRecord {
        benchmark: name,
        strategy: run.strategy,
        hyperparameters: run.hyperparameters,
        n_experiences: benchmark.n_experiences(),
        classes_order: benchmark.classes_order.clone(),
        epochs: EPOCHS,
        batch_size,
        seed,
        lr: LR,
        momentum: MOMENTUM,
        mem_size: run.mem_size,
        load_time_s,
        wall_time_s: m.wall_time_s,
        wall_time_vs_naive: None,
        train_time_s: m.train_time_s,
        eval_time_s: m.eval_time_s,
        train_iterations: m.train_iterations,
        final_average_accuracy: m.rows.last().map_or(f64::NAN, |r| mean(r)),
        forgetting: m.forgetting,
        accuracy_matrix: m.rows,
        error,
        timestamp,
        provenance: provenance.clone(),
    }
}

/// Sets `wall_time_vs_naive` of every completed record from the completed Naive record of the
/// same benchmark.
fn set_time_vs_naive(records: &mut [StrategyRecord]) {
    let naive: Vec<(&'static str, f64)> = records
        .iter()
        .filter(|r| r.strategy == "Naive" && r.error.is_none() && r.wall_time_s > 0.0)
        .map(|r| (r.benchmark, r.wall_time_s))
        .collect();
    for r in records.iter_mut().filter(|r| r.error.is_none()) {
        r.wall_time_vs_naive = naive
            .iter()
            .find(|(b, _)| *b == r.benchmark)
            .map(|(_, wall)| r.wall_time_s / wall);
    }
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

/// `1.23×`, or `—` when not defined (a failed run or a failed Naive).
pub fn format_ratio(ratio: Option<f64>) -> String {
    ratio.map_or("—".into(), |x| format!("{x:.2}×"))
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
    fn ratio_format() {
        assert_eq!(format_ratio(None), "—");
        assert_eq!(format_ratio(Some(1.5)), "1.50×");
    }

    fn blank(benchmark: &'static str, strategy: &'static str, wall: f64, error: Option<&str>) -> StrategyRecord {
        StrategyRecord {
            benchmark,
            strategy,
            hyperparameters: String::new(),
            n_experiences: 5,
            classes_order: Vec::new(),
            epochs: 1,
            batch_size: 128,
            seed: 1,
            lr: LR,
            momentum: MOMENTUM,
            mem_size: None,
            load_time_s: 0.0,
            wall_time_s: wall,
            wall_time_vs_naive: None,
            train_time_s: wall,
            eval_time_s: 0.0,
            train_iterations: 0,
            final_average_accuracy: 0.5,
            forgetting: 0.1,
            accuracy_matrix: Vec::new(),
            error: error.map(str::to_string),
            timestamp: 0,
            provenance: Provenance::collect(std::path::Path::new(".")),
        }
    }

    #[test]
    fn time_vs_naive_per_benchmark() {
        let mut records = vec![
            blank(SPLIT, "Naive", 2.0, None),
            blank(SPLIT, "EWC", 3.0, None),
            blank(SPLIT, "GEM", f64::NAN, Some("boom")),
            blank(PERMUTED, "Naive", 10.0, None),
            blank(PERMUTED, "EWC", 25.0, None),
        ];
        set_time_vs_naive(&mut records);
        let ratios: Vec<_> = records.iter().map(|r| r.wall_time_vs_naive).collect();
        assert_eq!(ratios, vec![Some(1.0), Some(1.5), None, Some(1.0), Some(2.5)]);
        let json = serde_json::to_value(&records[2]).unwrap();
        assert_eq!(json["benchmark"], SPLIT);
        assert_eq!(json["error"], "boom");
    }

    #[test]
    fn guarded_reports_errors_and_panics() {
        assert!(guarded("x", SPLIT, || Err(BenchError::MissingMetric("m".into()))).unwrap_err().contains("`m`"));
        assert_eq!(guarded("x", SPLIT, || panic!("bad")).unwrap_err(), "panicked: bad");
    }

    #[test]
    fn seven_methods() {
        let names: Vec<_> = methods(&OptimizerSpec::sgd(LR, MOMENTUM, 0.0).unwrap(), &cl::default_device())
            .into_iter()
            .map(|(n, _, _)| n)
            .collect();
        assert_eq!(names, ["EWC", "SI", "MAS", "LwF", "A-GEM", "GEM", "CWR*"]);
    }

    #[test]
    fn mean_of_row() {
        assert!((mean(&[0.5, 1.0]) - 0.75).abs() < 1e-12);
    }
}
