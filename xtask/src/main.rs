//! `cargo xtask`: developer tasks for the `cl` workspace.
//!
//! ```text
//! cargo xtask data
//! cargo xtask bench [--epochs 1,4] [--data-dir DIR] [--seed 1] [--batch 128] [--skip-strategies]
//!                   [--skip-loaders] [--methods ewc,mas,rwalk] [--sweep]
//! cargo xtask report <results.json> [--out DIR]
//! cargo xtask setup-libtorch [--venv DIR]
//! cargo run --release -p xtask --features tch -- backends [--devices flex,libtorch-cpu,cuda:0]
//! cargo xtask fuzz [--target idx,mnist-dir,cifar,archive,report] [--execs N] [--seed S] [--jobs N]
//! cargo xtask fidelity [--avalanche target/fidelity/avalanche.json] [--seeds 1,2,3] [--fisher]
//! ```
//!
//! This file parses the command line and dispatches; the work is in [`bench`] (training runs),
//! [`strategies`] (strategies comparison) and [`loaders`] (data-loading throughput).

mod backends;
mod bench;
mod checkpoint_cost;
mod compare;
mod counting_alloc;
mod data;
mod eval_cost;
mod fidelity;
mod fuzz;
mod iteration_clock;
mod loaders;
mod provenance;
mod report;
mod setup_libtorch;
mod strategies;
mod sweep_cost;

use std::path::PathBuf;
use std::process::ExitCode;

use bench::{BenchError, BenchOptions};

/// Counts heap use (for `fuzz`'s memory bounds); otherwise the system allocator.
#[global_allocator]
static ALLOCATOR: counting_alloc::Counting = counting_alloc::Counting;

/// The usage message, printed on `--help` (stdout, exit 0) and on bad arguments (stderr, exit 2).
const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  data     make Fashion-MNIST available: found, else `apt-get install dataset-fashion-mnist`
           (as root or with sudo), else downloaded (SHA-256 checked) into ~/.cache/cl
  bench    SplitFMNIST (5 experiences), SimpleMlp, Naive, SGD(lr=0.001, momentum=0.9);
           one run per --epochs value; writes target/bench/splitfmnist_naive_<E>ep.json
           and target/bench/summary.md; then compares strategies with SGD(lr=0.01,
           momentum=0.9), 1 epoch per experience: on SplitFMNIST Naive, Cumulative,
           Replay, GDumb, DER++, ER-ACE, ER-AML, SCR, MIR (memory 500), JointTraining,
           EWC, SI, MAS, RWalk, LwF, A-GEM, GEM and CWR*; on SplitFMNIST-online (sub-
           experiences of 10 samples, batch 10) Naive, Replay, ER-ACE, DER++, ER-AML,
           MIR and SCR; on SplitFMNIST-TIL and PermutedFMNIST (5 experiences) Naive and
           the last eight (target/bench/strategies.json); then times one epoch of each data loader
           with no model (target/bench/loaders.json); times the test-stream evaluation
           with all metrics against a bare forward pass (target/bench/eval_cost.json);
           measures checkpoints: size and save/load time of SimpleMLP + replay 500 +
           EWC, and the overhead of one per experience (target/bench/checkpoint.json);
           draws the strategies chart (target/bench/strategies.png and .svg)
  report   pictures (PNG and SVG) of a results file, into --out DIR (default: the file's
           directory): a metric history (JSON array of {name, value, x_plot}, or JSON
           Lines of them) gives the accuracy-matrix heatmap and the accuracy curves;
           strategy records (such as target/bench/strategies.json) give the strategies
           bar chart
  setup-libtorch  PyTorch 2.9.0 from PyPI into a virtualenv under target/ for the `tch`
           feature (LibTorch; no other download); writes target/libtorch/env.sh and prints
           its export lines: `source target/libtorch/env.sh` or
           `eval \"$(cargo xtask setup-libtorch)\"` before `cargo ... --features tch`
  backends the backends side by side in one run: SimpleMlp and SimpleCNN training steps and
           the SplitFMNIST Naive run per device, with ratios (target/bench/backends.json
           and .md); backends beyond flex need xtask built with their feature
  compare  cl against a plain PyTorch training loop (scripts/torch_loop.py) on the same machine
           in one run: SplitFMNIST, SimpleMLP, SGD(lr=0.01, momentum=0.9), batch 128, eval
           batch 1000, the two alternating --repeats times; min and median times and the
           ratio (target/bench/compare.json and .md); needs a Python with torch (--python,
           or `cargo xtask setup-libtorch`)
  fidelity cl's side of the comparisons with Avalanche 0.6 on the real data (the 23 runs of
           the README's fidelity tables on PermutedFMNIST, SplitFMNIST, SplitFMNIST-online and
           SplitFMNIST-task; 3 seeds), next to Avalanche's numbers from
           scripts/avalanche_fidelity.py when given
           (target/fidelity/fidelity.json and .md)

bench options:
  --epochs LIST     comma-separated training epochs per experience, one run each (default 1,4)
  --data-dir DIR    directory holding the four Fashion-MNIST IDX files (default: searched for)
  --seed N          seed of the class order and of the strategy (default 1)
  --batch N         training and evaluation mini-batch size (default 128)
  --skip-strategies skip the strategies comparison
  --skip-loaders    skip the data-loading measurement
  --sweep           also run specs/strategies-split-fmnist.toml (24 strategies x 3 seeds) with
                    `cl sweep --jobs 2` and report its parallel efficiency (target/bench/sweep.json;
                    needs `cargo build --release --workspace --bins` first)
  --methods LIST    comma-separated strategies of the comparison to run, any case (e.g.
                    naive,ewc,mas,rwalk); the others are skipped and absent from
                    strategies.json (default: all)
  --backend NAME    device of the Naive runs (also --device): flex (default), ndarray, tch
                    (= libtorch-cpu), cuda:N, mps; needs xtask built with its feature
                    (cargo run --release -p xtask --features tch -- bench --backend tch);
                    on a device other than flex only the Naive runs are made
  -h, --help        this message

report options:
  --out DIR         directory of the pictures (default: the results file's directory)";

/// A parsed command line.
#[derive(Debug, PartialEq)]
enum Command {
    /// `--help`: print the usage and succeed.
    Help,
    /// `data`: make Fashion-MNIST available.
    Data,
    /// `bench` with its options.
    Bench(BenchOptions),
    /// `setup-libtorch`: PyTorch 2.9.0 into a virtualenv for the `tch` feature.
    SetupLibtorch(setup_libtorch::SetupOptions),
    /// `backends`: the backends side by side.
    Backends(backends::BackendsOptions),
    /// `fuzz`: the readers of untrusted files under mutated inputs.
    Fuzz(fuzz::FuzzOptions),
    /// `fidelity`: the comparisons with Avalanche.
    Fidelity(fidelity::FidelityOptions),
    /// `compare`: cl against a plain PyTorch loop.
    Compare(compare::CompareOptions),
    /// `report <results.json> [--out DIR]`: pictures of a results file.
    Report {
        /// The results file.
        path: PathBuf,
        /// Where the pictures go; the file's directory when `None`.
        out: Option<PathBuf>,
    },
}

/// Parses the arguments after the program name. An `Err` is a message for the user; the caller
/// prints it with the usage and exits with code 2.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut it = args.into_iter();
    let command = it.next().ok_or("no command given")?;
    match command.as_str() {
        "-h" | "--help" | "help" => Ok(Command::Help),
        "bench" => parse_bench_args(it),
        "report" => parse_report_args(it),
        "setup-libtorch" => Ok(setup_libtorch::parse_args(it)?.map_or(Command::Help, Command::SetupLibtorch)),
        "backends" => Ok(backends::parse_args(it)?.map_or(Command::Help, Command::Backends)),
        "fuzz" => Ok(fuzz::parse_args(it)?.map_or(Command::Help, Command::Fuzz)),
        "fidelity" => Ok(fidelity::parse_args(it)?.map_or(Command::Help, Command::Fidelity)),
        "compare" => Ok(compare::parse_args(it)?.map_or(Command::Help, Command::Compare)),
        "data" => match it.next() {
            None => Ok(Command::Data),
            Some(extra) => Err(format!("`data` takes no argument, got `{extra}`")),
        },
        other => Err(format!("unknown command `{other}`")),
    }
}

/// Parses the options of `bench`; accepts `--flag value` and `--flag=value`.
fn parse_bench_args(mut it: impl Iterator<Item = String>) -> Result<Command, String> {
    let mut options = BenchOptions::default();
    while let Some(arg) = it.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        if arg == "--skip-loaders" {
            options.skip_loaders = true;
            continue;
        }
        if arg == "--skip-strategies" {
            options.skip_strategies = true;
            continue;
        }
        if arg == "--sweep" {
            options.sweep = true;
            continue;
        }
        let (flag, value) = option_value(
            &arg,
            &["--epochs", "--data-dir", "--seed", "--batch", "--methods", "--backend", "--device"],
            "bench",
            &mut it,
        )?;
        match flag.as_str() {
            "--epochs" => options.epochs = parse_epochs(&value)?,
            "--data-dir" => options.data_dir = Some(PathBuf::from(value)),
            "--seed" => options.seed = value.parse().map_err(|e| format!("--seed `{value}`: {e}"))?,
            "--batch" => options.batch_size = parse_positive("--batch", &value)?,
            "--methods" => options.methods = Some(parse_methods(&value)?),
            "--backend" | "--device" => options.device = Some(value.parse().map_err(|e| format!("{flag}: {e}"))?),
            _ => unreachable!("flag checked above"),
        }
    }
    Ok(Command::Bench(options))
}

/// Splits an option that takes a value (`--flag value` or `--flag=value`) among `known` options
/// of `command`: `(flag, value)`, or a message naming the unknown option or the missing value.
pub(crate) fn option_value(
    arg: &str,
    known: &[&str],
    command: &str,
    rest: &mut impl Iterator<Item = String>,
) -> Result<(String, String), String> {
    let (flag, inline) = match arg.split_once('=') {
        Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
        _ => (arg.to_string(), None),
    };
    if !known.contains(&flag.as_str()) {
        return Err(format!("unknown option `{arg}` for `{command}`"));
    }
    let value = match inline {
        Some(v) => v,
        None => rest.next().ok_or_else(|| format!("{flag} needs a value"))?,
    };
    Ok((flag, value))
}

/// Parses `report <results.json> [--out DIR]` (also `--out=DIR`).
fn parse_report_args(mut it: impl Iterator<Item = String>) -> Result<Command, String> {
    let (mut path, mut out) = (None, None);
    while let Some(arg) = it.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        if let Some(dir) = arg.strip_prefix("--out=") {
            out = Some(PathBuf::from(dir));
        } else if arg == "--out" {
            out = Some(PathBuf::from(it.next().ok_or("--out needs a value")?));
        } else if arg.starts_with("--") {
            return Err(format!("unknown option `{arg}` for `report`"));
        } else if path.replace(PathBuf::from(&arg)).is_some() {
            return Err(format!("`report` takes one results file, got a second: `{arg}`"));
        }
    }
    let path = path.ok_or("`report` needs a results file")?;
    Ok(Command::Report { path, out })
}

/// Parses `1,4`: positive integers, duplicates dropped, order kept.
fn parse_epochs(value: &str) -> Result<Vec<usize>, String> {
    let mut epochs = Vec::new();
    for part in value.split(',') {
        let e = parse_positive("--epochs", part.trim())?;
        if !epochs.contains(&e) {
            epochs.push(e);
        }
    }
    Ok(epochs)
}

/// Parses `ewc,MAS`: strategy names of the comparison in any case, as canonical names,
/// duplicates dropped; an unknown name is an error listing the known ones.
fn parse_methods(value: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for part in value.split(',') {
        let name = strategies::canonical_name(part).ok_or_else(|| {
            format!("--methods: unknown strategy `{}` (known: {})", part.trim(), strategies::STRATEGY_NAMES.join(", "))
        })?;
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// Parses a positive integer for `flag`.
fn parse_positive(flag: &str, value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(0) => Err(format!("{flag} must be positive, got 0")),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{flag} `{value}`: {e}")),
    }
}

fn main() -> ExitCode {
    let command = match parse_args(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Warnings of the library (e.g. a metric or logger problem) reach the user on stderr;
    // not while fuzzing, where mutated inputs make them by the thousand.
    let level = match command {
        Command::Fuzz(_) => tracing_subscriber::filter::LevelFilter::OFF,
        _ => tracing_subscriber::filter::LevelFilter::WARN,
    };
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(level).init();
    match command {
        Command::Help => {
            println!(
                "{USAGE}\n\n{}\n\n{}\n\n{}\n\n{}\n\n{}",
                setup_libtorch::USAGE,
                backends::USAGE,
                fuzz::USAGE,
                fidelity::USAGE,
                compare::USAGE
            );
            ExitCode::SUCCESS
        }
        Command::SetupLibtorch(options) => {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(std::path::Path::new("."));
            match setup_libtorch::run(&options, root) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Fuzz(options) => {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(std::path::Path::new("."));
            match fuzz::run(&options, root) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Fidelity(options) => {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(std::path::Path::new("."));
            match fidelity::run(&options, root) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Compare(options) => {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(std::path::Path::new("."));
            match compare::run(&options, root) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Backends(options) => match backends::run(&options) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Data => match data::ensure_fashion_mnist() {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Report { path, out } => {
            let out = out.unwrap_or_else(|| path.parent().unwrap_or(std::path::Path::new(".")).to_path_buf());
            match cl::report::render_results_file(&path, &out) {
                Ok(pictures) => {
                    for p in pictures {
                        println!("written {} and {}", p.png.display(), p.svg.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Bench(options) => match bench::run(&options) {
            // On a device other than flex `bench` skipped the strategies: no chart.
            Ok(())
                if !options.skip_strategies && options.device.is_none_or(|d| d == cl::device::DeviceChoice::Flex) =>
            {
                match report::strategies_chart(&bench::output_dir().join("strategies.json")) {
                    Ok(p) => {
                        println!("written {} and {}", p.png.display(), p.svg.display());
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
            Ok(()) => ExitCode::SUCCESS,
            Err(e @ BenchError::Data(_)) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults() {
        assert_eq!(parse(&["bench"]), Ok(Command::Bench(BenchOptions::default())));
        let d = BenchOptions::default();
        assert_eq!((d.epochs, d.seed, d.batch_size, d.data_dir), (vec![1, 4], 1, 128, None));
        assert!(!d.skip_loaders && !d.skip_strategies);
    }

    #[test]
    fn all_flags() {
        let Ok(Command::Bench(o)) =
            parse(&["bench", "--epochs", "2,1,2", "--seed=7", "--batch", "64", "--data-dir", "/d"])
        else {
            panic!("parse failed")
        };
        assert_eq!(o.epochs, vec![2, 1]);
        assert_eq!(o.seed, 7);
        assert_eq!(o.batch_size, 64);
        assert_eq!(o.data_dir, Some(PathBuf::from("/d")));
        assert!(!o.skip_loaders);
        assert!(!o.skip_strategies);
        let Ok(Command::Bench(o)) = parse(&["bench", "--skip-loaders", "--epochs=1"]) else { panic!("parse failed") };
        assert!(o.skip_loaders);
        assert!(!o.skip_strategies);
        assert_eq!(o.epochs, vec![1]);
        let Ok(Command::Bench(o)) = parse(&["bench", "--skip-strategies", "--skip-loaders"]) else {
            panic!("parse failed")
        };
        assert!(o.skip_strategies && o.skip_loaders);
        assert!(!o.sweep);
        let Ok(Command::Bench(o)) = parse(&["bench", "--sweep"]) else { panic!("parse failed") };
        assert!(o.sweep);
    }

    #[test]
    fn errors_and_help() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["frobnicate"]).is_err());
        assert!(parse(&["bench", "--nope"]).is_err());
        assert!(parse(&["bench", "--epochs"]).is_err());
        assert!(parse(&["bench", "--epochs", "0"]).is_err());
        assert!(parse(&["bench", "--epochs", "1,x"]).is_err());
        assert!(parse(&["bench", "--batch", "0"]).is_err());
        assert!(parse(&["bench", "--skip-strategies=1"]).is_err());
        assert!(USAGE.contains("--skip-strategies"));
        assert!(parse(&["bench", "--methods", "ewc,nope"]).is_err());
        assert!(parse(&["bench", "--methods"]).is_err());
        let Ok(Command::Bench(o)) = parse(&["bench", "--methods=ewc,MAS,rwalk,ewc"]) else { panic!("parse failed") };
        assert_eq!(o.methods, Some(vec!["EWC".to_string(), "MAS".to_string(), "RWalk".to_string()]));
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
        assert_eq!(parse(&["data"]), Ok(Command::Data));
        assert!(parse(&["data", "x"]).is_err());
        assert_eq!(parse(&["bench", "-h"]), Ok(Command::Help));
    }

    #[test]
    fn backend_and_libtorch_commands() {
        use cl::device::DeviceChoice;
        let Ok(Command::Bench(o)) = parse(&["bench", "--backend", "tch"]) else { panic!("parse failed") };
        assert_eq!(o.device, Some(DeviceChoice::LibTorchCpu));
        let Ok(Command::Bench(o)) = parse(&["bench", "--device=cuda:1"]) else { panic!("parse failed") };
        assert_eq!(o.device, Some(DeviceChoice::LibTorchCuda(1)));
        assert!(parse(&["bench", "--backend", "tpu"]).unwrap_err().contains("unknown device `tpu`"));
        assert!(matches!(parse(&["setup-libtorch"]), Ok(Command::SetupLibtorch(_))));
        assert_eq!(parse(&["setup-libtorch", "--help"]), Ok(Command::Help));
        assert!(parse(&["setup-libtorch", "--nope"]).is_err());
        assert!(matches!(parse(&["backends", "--skip-naive"]), Ok(Command::Backends(o)) if o.skip_naive));
        assert!(USAGE.contains("setup-libtorch") && USAGE.contains("--backend NAME"));
    }

    #[test]
    fn report_args() {
        assert_eq!(parse(&["report", "h.json"]), Ok(Command::Report { path: "h.json".into(), out: None }));
        assert_eq!(
            parse(&["report", "--out", "pics", "h.json"]),
            Ok(Command::Report { path: "h.json".into(), out: Some("pics".into()) })
        );
        assert_eq!(
            parse(&["report", "h.json", "--out=p"]),
            Ok(Command::Report { path: "h.json".into(), out: Some("p".into()) })
        );
        assert!(parse(&["report"]).is_err());
        assert!(parse(&["report", "a.json", "b.json"]).is_err());
        assert!(parse(&["report", "a.json", "--out"]).is_err());
        assert!(parse(&["report", "a.json", "--nope"]).is_err());
        assert_eq!(parse(&["report", "--help"]), Ok(Command::Help));
        assert!(USAGE.contains("--out DIR"));
    }
}
