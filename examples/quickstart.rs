//! Quickstart: SplitFMNIST (5 experiences), SimpleMlp, Naive and Cumulative.
//!
//! ```text
//! cargo run --release --example quickstart [-- --epochs 4 --seed 1 --data-dir DIR --device flex --run-dir DIR]
//! cargo run --release --features tch --example quickstart -- --device libtorch-cpu   # or cuda:0
//! ```
//!
//! Prints the accuracy on each test experience after each training experience, the final
//! average accuracy and forgetting, and writes `target/quickstart/results.json`. With
//! `--run-dir DIR` each strategy checkpoints after every experience into `DIR/<strategy>` and a
//! rerun resumes from there (kill it, run it again: it continues where it stopped and prints the
//! same table).

use std::error::Error;
use std::time::Instant;

use cl::device::{DEVICE_NAMES, DeviceChoice};
use cl::prelude::*;

struct Args {
    epochs: usize,
    seed: u64,
    data_dir: Option<String>,
    /// `--device`; the default backend's device when `None`.
    device: Option<DeviceChoice>,
    /// `--run-dir`: checkpoint every experience there and resume from it.
    run_dir: Option<std::path::PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { epochs: 4, seed: 1, data_dir: None, device: None, run_dir: None };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--epochs" => args.epochs = value("--epochs")?.parse().map_err(|e| format!("--epochs: {e}"))?,
            "--seed" => args.seed = value("--seed")?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--data-dir" => args.data_dir = Some(value("--data-dir")?),
            "--run-dir" => args.run_dir = Some(value("--run-dir")?.into()),
            "--device" => args.device = Some(value("--device")?.parse().map_err(|e| format!("--device: {e}"))?),
            "-h" | "--help" => {
                println!(
                    "usage: quickstart [--epochs N] [--seed S] [--data-dir DIR] [--device NAME] [--run-dir DIR]\n  \
                     devices: {DEVICE_NAMES}\n  --run-dir: checkpoint after every experience into DIR and resume from it"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}; see --help")),
        }
    }
    Ok(args)
}

struct RunResult {
    method: StrategyConfig,
    matrix: AccuracyMatrix,
    seconds: f64,
    iterations: u64,
}

fn run(
    method: &StrategyConfig,
    mut strategy: Strategy<SimpleMlp>,
    benchmark: &Benchmark,
) -> Result<RunResult, Box<dyn Error>> {
    let name = method.name();
    let n = benchmark.n_experiences();
    let mut matrix = AccuracyMatrix::new(n);
    println!("\n== {name} ==");
    print!("{:<22}", "after training on");
    for j in 0..n {
        print!("  exp{j} {:<6}", format!("{:?}", benchmark.test_stream[j].classes_in_this_experience));
    }
    println!("   avg");
    let start = Instant::now();
    for experience in &benchmark.train_stream {
        strategy.train(experience)?;
        let results = strategy.eval(&benchmark.test_stream)?;
        let i = experience.current_experience;
        print!("{:<22}", format!("exp{i} {:?}", experience.classes_in_this_experience));
        for j in 0..n {
            let acc = results[&MetricName::test_exp_accuracy(0, j).to_string()];
            matrix.set(i, j, acc);
            print!("  {:>11.4}", acc);
        }
        println!("   {:.4}", matrix.average_accuracy(i).unwrap_or(f64::NAN));
    }
    let seconds = start.elapsed().as_secs_f64();
    let iterations = strategy.state().clock().train_iterations;
    println!(
        "{name}: final average accuracy {:.4}, forgetting {:.4}, {seconds:.1} s, {:.0} training it/s",
        matrix.final_average_accuracy().unwrap_or(f64::NAN),
        matrix.forgetting().unwrap_or(f64::NAN),
        iterations as f64 / seconds
    );
    Ok(RunResult { method: method.clone(), matrix, seconds, iterations })
}

fn main() -> Result<(), Box<dyn Error>> {
    // The library reports warnings through `tracing`: print them.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .init();
    let args = parse_args()?;
    let mut config = SplitMnistConfig::new(5).with_seed(args.seed);
    if let Some(dir) = &args.data_dir {
        config = config.with_dataset_root(dir);
    }
    let benchmark = match split_fmnist(&config) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let (device, backend) = match args.device {
        None => (cl::default_device(), cl::default_backend_name().to_string()),
        Some(choice) => match choice.device() {
            Ok(device) => {
                let policy = std::env::var("OMP_WAIT_POLICY").ok();
                if let Some(warning) = cl::device::libtorch_threads_warning(choice, policy.as_deref()) {
                    eprintln!("{warning}");
                }
                (device, choice.backend_name())
            }
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(2);
            }
        },
    };
    // Seed the backend's RNG before building the models: their initial weights are drawn from it.
    device.seed(args.seed);
    println!(
        "SplitFMNIST: {} experiences, class order {:?}, seed {}; SimpleMlp; SGD(lr=0.001, momentum=0.9); \
         {} epochs, batch 100; backend {}",
        benchmark.n_experiences(),
        benchmark.classes_order,
        args.seed,
        args.epochs,
        backend
    );

    // The run as data: the optimizer, the loop's settings and the strategies are configurations,
    // embedded as they are in the result file.
    let optimizer = OptimizerSpec::sgd(0.001).with_momentum(0.9);
    let training = TrainingConfig::default()
        .with_train_mb_size(100)
        .with_train_epochs(args.epochs)
        .with_eval_mb_size(100)
        .with_seed(args.seed);
    let methods =
        [StrategyConfig::Naive(NaiveConfig::default()), StrategyConfig::Cumulative(CumulativeConfig::default())];
    let mut results = Vec::new();
    for method in &methods {
        let model = SimpleMlpConfig::new().with_num_classes(10).init(&device)?;
        let mut builder = method.builder(model, optimizer.clone(), device.clone())?.config(training.clone());
        if let Some(dir) = &args.run_dir {
            // A checkpoint after every experience; a rerun resumes from the newest one and
            // skips the calls it already holds (they return what they returned).
            let dir = dir.join(method.name());
            builder = builder.plugin(CheckpointPlugin::new(CheckpointConfig::new(&dir))?).resume_latest(&dir);
        }
        let strategy = builder.build()?;
        results.push(run(method, strategy, &benchmark)?);
    }

    println!("\n| strategy | final avg accuracy | forgetting | wall time (s) | training it/s |");
    println!("|---|---|---|---|---|");
    for r in &results {
        println!(
            "| {} | {:.4} | {:.4} | {:.1} | {:.0} |",
            r.method.name(),
            r.matrix.final_average_accuracy().unwrap_or(f64::NAN),
            r.matrix.forgetting().unwrap_or(f64::NAN),
            r.seconds,
            r.iterations as f64 / r.seconds
        );
    }

    let out_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/quickstart");
    std::fs::create_dir_all(&out_dir)?;
    let runs: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            serde_json::json!({
                "strategy": r.method.to_json_value(),
                "accuracy_matrix": r.matrix.rows(),
                "final_average_accuracy": r.matrix.final_average_accuracy(),
                "forgetting": r.matrix.forgetting(),
                "seconds": r.seconds,
                "train_iterations": r.iterations,
            })
        })
        .collect();
    let json = serde_json::to_string_pretty(&serde_json::json!({
        "benchmark": "SplitFMNIST",
        "benchmark_config": serde_json::to_value(&config)?,
        "n_experiences": benchmark.n_experiences(),
        "classes_order": benchmark.classes_order,
        "seed": args.seed,
        "backend": backend,
        "cl_version": env!("CARGO_PKG_VERSION"),
        "burn_version": "0.22.1",
        "optimizer": optimizer.to_json_value(),
        "training": training.to_json_value(),
        "runs": runs,
    }))?;
    std::fs::write(out_dir.join("results.json"), json)?;
    println!("results written to {}", out_dir.join("results.json").display());
    Ok(())
}
