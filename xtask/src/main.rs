//! `cargo xtask`: developer tasks for the `cl` workspace.
//!
//! ```text
//! cargo xtask data
//! cargo xtask bench [--epochs 1,4] [--data-dir DIR] [--seed 1] [--batch 128] [--skip-strategies]
//!                   [--skip-loaders]
//! ```
//!
//! This file parses the command line and dispatches; the work is in [`bench`] (training runs),
//! [`strategies`] (strategies comparison) and [`loaders`] (data-loading throughput).

mod bench;
mod data;
mod loaders;
mod provenance;
mod report;
mod strategies;

use std::path::PathBuf;
use std::process::ExitCode;

use bench::{BenchError, BenchOptions};

/// The usage message, printed on `--help` (stdout, exit 0) and on bad arguments (stderr, exit 2).
const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  data     make Fashion-MNIST available: found, else `apt-get install dataset-fashion-mnist`
           (as root or with sudo), else downloaded (SHA-256 checked) into ~/.cache/cl
  bench    SplitFMNIST (5 experiences), SimpleMLP, Naive, SGD(lr=0.001, momentum=0.9);
           one run per --epochs value; writes target/bench/splitfmnist_naive_<E>ep.json
           and target/bench/summary.md; then compares strategies with SGD(lr=0.01,
           momentum=0.9), 1 epoch per experience: on SplitFMNIST Naive, Cumulative,
           Replay (500), GDumb (500), JointTraining, EWC, SI, MAS, LwF, A-GEM, GEM and
           CWR*; on PermutedFMNIST (5 experiences) Naive and the last seven
           (target/bench/strategies.json); then times one epoch of each data loader
           with no model (target/bench/loaders.json)

bench options:
  --epochs LIST     comma-separated training epochs per experience, one run each (default 1,4)
  --data-dir DIR    directory holding the four Fashion-MNIST IDX files (default: searched for)
  --seed N          seed of the class order and of the strategy (default 1)
  --batch N         training and evaluation mini-batch size (default 128)
  --skip-strategies skip the strategies comparison
  --skip-loaders    skip the data-loading measurement
  -h, --help        this message";

/// A parsed command line.
#[derive(Debug, PartialEq)]
enum Command {
    /// `--help`: print the usage and succeed.
    Help,
    /// `data`: make Fashion-MNIST available.
    Data,
    /// `bench` with its options.
    Bench(BenchOptions),
}

/// Parses the arguments after the program name. An `Err` is a message for the user; the caller
/// prints it with the usage and exits with code 2.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut it = args.into_iter();
    let command = it.next().ok_or("no command given")?;
    match command.as_str() {
        "-h" | "--help" | "help" => Ok(Command::Help),
        "bench" => parse_bench_args(it),
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
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        if !matches!(
            flag.as_str(),
            "--epochs" | "--data-dir" | "--seed" | "--batch"
        ) {
            return Err(format!("unknown option `{arg}` for `bench`"));
        }
        let value = match inline {
            Some(v) => v,
            None => it.next().ok_or_else(|| format!("{flag} needs a value"))?,
        };
        match flag.as_str() {
            "--epochs" => options.epochs = parse_epochs(&value)?,
            "--data-dir" => options.data_dir = Some(PathBuf::from(value)),
            "--seed" => {
                options.seed = value
                    .parse()
                    .map_err(|e| format!("--seed `{value}`: {e}"))?
            }
            "--batch" => options.batch_size = parse_positive("--batch", &value)?,
            _ => unreachable!("flag checked above"),
        }
    }
    Ok(Command::Bench(options))
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
    match command {
        Command::Help => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Command::Data => match data::ensure_fashion_mnist() {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Bench(options) => match bench::run(&options) {
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
        assert_eq!(
            parse(&["bench"]),
            Ok(Command::Bench(BenchOptions::default()))
        );
        let d = BenchOptions::default();
        assert_eq!(
            (d.epochs, d.seed, d.batch_size, d.data_dir),
            (vec![1, 4], 1, 128, None)
        );
        assert!(!d.skip_loaders && !d.skip_strategies);
    }

    #[test]
    fn all_flags() {
        let Ok(Command::Bench(o)) = parse(&[
            "bench",
            "--epochs",
            "2,1,2",
            "--seed=7",
            "--batch",
            "64",
            "--data-dir",
            "/d",
        ]) else {
            panic!("parse failed")
        };
        assert_eq!(o.epochs, vec![2, 1]);
        assert_eq!(o.seed, 7);
        assert_eq!(o.batch_size, 64);
        assert_eq!(o.data_dir, Some(PathBuf::from("/d")));
        assert!(!o.skip_loaders);
        assert!(!o.skip_strategies);
        let Ok(Command::Bench(o)) = parse(&["bench", "--skip-loaders", "--epochs=1"]) else {
            panic!("parse failed")
        };
        assert!(o.skip_loaders);
        assert!(!o.skip_strategies);
        assert_eq!(o.epochs, vec![1]);
        let Ok(Command::Bench(o)) = parse(&["bench", "--skip-strategies", "--skip-loaders"]) else {
            panic!("parse failed")
        };
        assert!(o.skip_strategies && o.skip_loaders);
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
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
        assert_eq!(parse(&["data"]), Ok(Command::Data));
        assert!(parse(&["data", "x"]).is_err());
        assert_eq!(parse(&["bench", "-h"]), Ok(Command::Help));
    }
}
