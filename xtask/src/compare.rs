//! `cargo xtask compare`: `cl` against a plain PyTorch training loop on the same machine, in
//! the same run — the measurement behind the README's speed claims.
//!
//! The PyTorch side is `scripts/torch_loop.py` (in-memory float tensors, no DataLoader, no
//! Avalanche): SplitFMNIST with `cl`'s class order, SimpleMLP, SGD, batch 128, evaluation on
//! the test stream after each experience in batches of 1000, `OMP_WAIT_POLICY=PASSIVE` and
//! the same number of threads as `cl`'s rayon pool. The `cl` side is Naive with the same
//! settings, in this process. The two alternate, `--repeats` times each (PyTorch first), so
//! that a slower period of the machine hits both; each side's data loading is outside its
//! times. Min and median of wall, train and eval time per side and their ratios are printed
//! and written to `target/bench/compare.json` and `compare.md`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use cl::benchmarks::MnistKind;
use cl::benchmarks::files::locate;
use cl::core::evaluation::{AccuracyMatrix, MetricName};
use cl::prelude::*;
use serde::{Deserialize, Serialize};

use crate::bench::{BenchError, metric, output_dir};
use crate::provenance::Provenance;

/// The options of `compare`.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareOptions {
    /// The Python with torch; searched for when `None` ([`find_python`]).
    pub python: Option<PathBuf>,
    /// Runs per side.
    pub repeats: usize,
    /// Training epochs per experience.
    pub epochs: usize,
    /// Training mini-batch.
    pub batch_size: usize,
    /// Evaluation mini-batch.
    pub eval_batch_size: usize,
    /// SGD learning rate.
    pub lr: f64,
    /// The Fashion-MNIST directory; searched for when `None`.
    pub data_dir: Option<PathBuf>,
    /// Seed of the class order (both sides) and of `cl`'s run.
    pub seed: u64,
}

impl Default for CompareOptions {
    fn default() -> Self {
        Self {
            python: None,
            repeats: 3,
            epochs: 1,
            batch_size: 128,
            eval_batch_size: 1000,
            lr: 0.01,
            data_dir: None,
            seed: 1,
        }
    }
}

/// The help of `compare`'s options.
pub const USAGE: &str = "\
compare options (cargo xtask compare):
  --python PY       the Python with torch (default: $CL_LIBTORCH_VENV/bin/python, else
                    target/libtorch/venv/bin/python from `cargo xtask setup-libtorch`)
  --repeats N       runs per side, alternating PyTorch and cl (default 3)
  --epochs N        training epochs per experience (default 1)
  --batch N         training mini-batch (default 128)
  --eval-batch N    evaluation mini-batch (default 1000)
  --lr X            SGD learning rate, momentum 0.9 (default 0.01)
  --data-dir DIR    directory holding the four Fashion-MNIST IDX files (default: searched for)
  --seed N          seed of the class order and of cl's run (default 1)";

/// Parses the options of `compare`; `None` for `--help`.
pub fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<CompareOptions>, String> {
    let mut o = CompareOptions::default();
    while let Some(arg) = it.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        let (flag, value) = crate::option_value(
            &arg,
            &["--python", "--repeats", "--epochs", "--batch", "--eval-batch", "--lr", "--data-dir", "--seed"],
            "compare",
            &mut it,
        )?;
        let positive = |v: &str| match v.parse::<usize>() {
            Ok(0) => Err(format!("{flag} must be positive, got 0")),
            Ok(n) => Ok(n),
            Err(e) => Err(format!("{flag} `{v}`: {e}")),
        };
        match flag.as_str() {
            "--python" => o.python = Some(PathBuf::from(value)),
            "--repeats" => o.repeats = positive(&value)?,
            "--epochs" => o.epochs = positive(&value)?,
            "--batch" => o.batch_size = positive(&value)?,
            "--eval-batch" => o.eval_batch_size = positive(&value)?,
            "--lr" => {
                o.lr = match value.parse::<f64>() {
                    Ok(lr) if lr.is_finite() && lr > 0.0 => lr,
                    _ => return Err(format!("--lr `{value}` must be a positive number")),
                }
            }
            "--data-dir" => o.data_dir = Some(PathBuf::from(value)),
            _ => o.seed = value.parse().map_err(|e| format!("--seed `{value}`: {e}"))?,
        }
    }
    Ok(Some(o))
}

/// One run of one side.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SideRun {
    /// Training plus evaluation over the stream (data loading excluded).
    pub wall_s: f64,
    /// The training part.
    pub train_s: f64,
    /// The evaluation part.
    pub eval_s: f64,
    /// Training iterations.
    pub iterations: u64,
    /// Mean accuracy over the test experiences after the last one.
    pub final_average_accuracy: f64,
}

/// Min and median of one side's runs.
#[derive(Debug, Clone, Serialize)]
pub struct SideSummary {
    /// Every run, in order.
    pub runs: Vec<SideRun>,
    /// Fastest wall time.
    pub min_wall_s: f64,
    /// Median wall time.
    pub median_wall_s: f64,
    /// Fastest training time.
    pub min_train_s: f64,
    /// Median training time.
    pub median_train_s: f64,
    /// Fastest evaluation time.
    pub min_eval_s: f64,
    /// Median evaluation time.
    pub median_eval_s: f64,
}

impl SideSummary {
    fn of(runs: Vec<SideRun>) -> Self {
        let stat = |f: fn(&SideRun) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            (v[0], median(&v))
        };
        let (min_wall_s, median_wall_s) = stat(|r| r.wall_s);
        let (min_train_s, median_train_s) = stat(|r| r.train_s);
        let (min_eval_s, median_eval_s) = stat(|r| r.eval_s);
        Self { runs, min_wall_s, median_wall_s, min_train_s, median_train_s, min_eval_s, median_eval_s }
    }
}

/// The median of sorted values.
fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 { sorted[n / 2] } else { 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]) }
}

/// `compare.json`.
#[derive(Debug, Clone, Serialize)]
pub struct CompareRecord {
    /// `SplitFMNIST`.
    pub benchmark: &'static str,
    /// The class order both sides used.
    pub classes_order: Vec<u32>,
    /// Epochs per experience.
    pub epochs: usize,
    /// Training mini-batch.
    pub batch_size: usize,
    /// Evaluation mini-batch.
    pub eval_batch_size: usize,
    /// SGD learning rate (momentum 0.9).
    pub lr: f64,
    /// Seed of the class order and of cl's run.
    pub seed: u64,
    /// The Python that ran the PyTorch loop.
    pub python: String,
    /// `torch.__version__`.
    pub torch_version: String,
    /// Threads of both sides.
    pub threads: usize,
    /// The PyTorch loop's runs.
    pub pytorch: SideSummary,
    /// cl's runs.
    pub cl: SideSummary,
    /// cl's min wall time over PyTorch's.
    pub ratio_min_wall: f64,
    /// cl's median wall time over PyTorch's.
    pub ratio_median_wall: f64,
    /// cl's min training time over PyTorch's.
    pub ratio_min_train: f64,
    /// cl's min evaluation time over PyTorch's.
    pub ratio_min_eval: f64,
    /// Versions, commit and machine.
    #[serde(flatten)]
    pub provenance: Provenance,
}

/// The Python to run the loop with: `explicit`, else `$CL_LIBTORCH_VENV/bin/python`, else the
/// LibTorch lane's `target/libtorch/venv/bin/python`; it must import torch. The error says how
/// to get one.
pub fn find_python(explicit: Option<&Path>, root: &Path) -> Result<(PathBuf, String), BenchError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    match explicit {
        Some(p) => candidates.push(p.to_path_buf()),
        None => {
            if let Some(venv) = std::env::var_os("CL_LIBTORCH_VENV") {
                candidates.push(PathBuf::from(venv).join("bin").join("python"));
            }
            candidates.push(root.join("target").join("libtorch").join("venv").join("bin").join("python"));
        }
    }
    let mut tried = Vec::new();
    for python in &candidates {
        let out = Command::new(python).args(["-c", "import torch; print(torch.__version__)"]).output();
        match out {
            Ok(o) if o.status.success() => {
                return Ok((python.clone(), String::from_utf8_lossy(&o.stdout).trim().to_string()));
            }
            Ok(o) => tried.push(format!(
                "{} (no torch: {})",
                python.display(),
                String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("").trim()
            )),
            Err(e) => tried.push(format!("{} ({e})", python.display())),
        }
    }
    Err(BenchError::Input(format!(
        "no Python with torch for the PyTorch side; tried: {}. Fix: `cargo xtask setup-libtorch` (a virtualenv \
         target/libtorch/venv with torch 2.9.0 from PyPI), or pass `--python PY` for a Python that has torch \
         (e.g. `python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch==2.9.0`)",
        tried.join("; ")
    )))
}

/// Runs the comparison and writes `compare.json` and `compare.md` under `target/bench/`.
pub fn run(options: &CompareOptions, root: &Path) -> Result<CompareRecord, BenchError> {
    let (python, torch_version) = find_python(options.python.as_deref(), root)?;
    let data_dir =
        locate(MnistKind::FashionMnist, options.data_dir.as_deref()).map_err(|e| BenchError::Input(e.to_string()))?;
    let config = SplitMnistConfig::new(5).with_seed(options.seed).with_dataset_root(&data_dir);
    let benchmark = split_fmnist(&config).map_err(BenchError::Data)?;
    let threads = rayon::current_num_threads();
    let script = root.join("scripts").join("torch_loop.py");
    let order: Vec<String> = benchmark.classes_order.iter().map(u32::to_string).collect();
    println!(
        "SplitFMNIST, class order {:?}, SimpleMLP, SGD(lr={}, momentum=0.9), batch {}, eval batch {}, {} epoch(s); \
         {threads} threads; PyTorch {torch_version} ({}) and cl alternating, {} runs each",
        benchmark.classes_order,
        options.lr,
        options.batch_size,
        options.eval_batch_size,
        options.epochs,
        python.display(),
        options.repeats
    );
    let (mut torch_runs, mut cl_runs) = (Vec::new(), Vec::new());
    for i in 0..options.repeats {
        let out = Command::new(&python)
            .arg(&script)
            .args(["--data-dir", &data_dir.to_string_lossy(), "--classes-order", &order.join(",")])
            .args(["--epochs", &options.epochs.to_string(), "--batch", &options.batch_size.to_string()])
            .args(["--eval-batch", &options.eval_batch_size.to_string(), "--lr", &options.lr.to_string()])
            .args(["--threads", &threads.to_string(), "--seed", &options.seed.to_string()])
            .env("OMP_WAIT_POLICY", "PASSIVE")
            .output()
            .map_err(|e| BenchError::Input(format!("running {}: {e}", python.display())))?;
        if !out.status.success() {
            return Err(BenchError::Input(format!(
                "{} {} failed: {}",
                python.display(),
                script.display(),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().last().unwrap_or("");
        let torch: SideRun = serde_json::from_str(line)
            .map_err(|e| BenchError::Input(format!("the PyTorch loop printed `{line}`, not its JSON result: {e}")))?;
        let ours = cl_side(&benchmark, options)?;
        println!(
            "run {}: PyTorch wall {:.3} s (train {:.3}, eval {:.3}, acc {:.4}) | cl wall {:.3} s (train {:.3}, eval {:.3}, \
             acc {:.4}) | cl/PyTorch {:.2}",
            i + 1,
            torch.wall_s,
            torch.train_s,
            torch.eval_s,
            torch.final_average_accuracy,
            ours.wall_s,
            ours.train_s,
            ours.eval_s,
            ours.final_average_accuracy,
            ours.wall_s / torch.wall_s
        );
        torch_runs.push(torch);
        cl_runs.push(ours);
    }
    let (pytorch, cl) = (SideSummary::of(torch_runs), SideSummary::of(cl_runs));
    let record = CompareRecord {
        benchmark: "SplitFMNIST",
        classes_order: benchmark.classes_order.clone(),
        epochs: options.epochs,
        batch_size: options.batch_size,
        eval_batch_size: options.eval_batch_size,
        lr: options.lr,
        seed: options.seed,
        python: python.display().to_string(),
        torch_version,
        threads,
        ratio_min_wall: cl.min_wall_s / pytorch.min_wall_s,
        ratio_median_wall: cl.median_wall_s / pytorch.median_wall_s,
        ratio_min_train: cl.min_train_s / pytorch.min_train_s,
        ratio_min_eval: cl.min_eval_s / pytorch.min_eval_s,
        pytorch,
        cl,
        provenance: Provenance::collect(root),
    };
    let dir = output_dir();
    std::fs::create_dir_all(&dir).map_err(|e| BenchError::Write(dir.clone(), e.to_string()))?;
    let json = dir.join("compare.json");
    let text = serde_json::to_string_pretty(&record).map_err(|e| BenchError::Write(json.clone(), e.to_string()))?;
    std::fs::write(&json, text).map_err(|e| BenchError::Write(json.clone(), e.to_string()))?;
    let md = dir.join("compare.md");
    let table = markdown(&record);
    std::fs::write(&md, &table).map_err(|e| BenchError::Write(md.clone(), e.to_string()))?;
    println!("\n{table}\nwritten {} and {}", json.display(), md.display());
    Ok(record)
}

/// `cl`'s side: Naive with the comparison's settings, timed as the PyTorch loop times itself.
fn cl_side(benchmark: &Benchmark, options: &CompareOptions) -> Result<SideRun, BenchError> {
    let device = cl::default_device();
    device.seed(options.seed);
    let model = SimpleMlpConfig::new().with_num_classes(benchmark.n_classes).init(&device)?;
    let mut strategy =
        Naive::builder(model, OptimizerSpec::sgd(options.lr).with_momentum(0.9), device, NaiveConfig::default())?
            .train_mb_size(options.batch_size)
            .train_epochs(options.epochs)
            .eval_mb_size(options.eval_batch_size)
            .seed(options.seed)
            .build()?;
    let n = benchmark.n_experiences();
    let mut matrix = AccuracyMatrix::new(n);
    let (mut train_s, mut eval_s) = (0.0, 0.0);
    let wall = Instant::now();
    for experience in &benchmark.train_stream {
        let t = Instant::now();
        strategy.train(experience)?;
        train_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let results = strategy.eval(&benchmark.test_stream)?;
        eval_s += t.elapsed().as_secs_f64();
        for j in 0..n {
            matrix.set(experience.current_experience, j, metric(&results, &MetricName::test_exp_accuracy(0, j))?);
        }
    }
    Ok(SideRun {
        wall_s: wall.elapsed().as_secs_f64(),
        train_s,
        eval_s,
        iterations: strategy.state().clock().train_iterations,
        final_average_accuracy: matrix.final_average_accuracy().unwrap_or(f64::NAN),
    })
}

/// The table of `compare.md`.
fn markdown(r: &CompareRecord) -> String {
    let row = |name: &str, s: &SideSummary| {
        format!(
            "| {name} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.4} |\n",
            s.min_wall_s,
            s.median_wall_s,
            s.min_train_s,
            s.median_train_s,
            s.min_eval_s,
            s.median_eval_s,
            s.runs.iter().map(|x| x.final_average_accuracy).sum::<f64>() / s.runs.len() as f64
        )
    };
    format!(
        "## cl vs a plain PyTorch loop\n\nSplitFMNIST (class order {:?}), SimpleMLP, SGD(lr={}, momentum=0.9), batch {}, \
         eval batch {}, {} epoch(s) per experience, evaluation on the test stream after each experience; {} threads, \
         PyTorch {} with OMP_WAIT_POLICY=PASSIVE; {} alternating runs per side (seconds; data loading excluded).\n\n\
         | side | min wall | median wall | min train | median train | min eval | median eval | mean final acc |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n{}{}\n\
         cl / PyTorch: **{:.2}×** min wall, {:.2}× median wall, {:.2}× min train, {:.2}× min eval.\n",
        r.classes_order,
        r.lr,
        r.batch_size,
        r.eval_batch_size,
        r.epochs,
        r.threads,
        r.torch_version,
        r.cl.runs.len(),
        row("PyTorch loop", &r.pytorch),
        row("cl Naive", &r.cl),
        r.ratio_min_wall,
        r.ratio_median_wall,
        r.ratio_min_train,
        r.ratio_min_eval
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<CompareOptions>, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn options() {
        assert_eq!(parse(&[]).unwrap().unwrap(), CompareOptions::default());
        let o =
            parse(&["--repeats", "5", "--python=/x/python", "--eval-batch", "100", "--lr", "0.1"]).unwrap().unwrap();
        assert_eq!((o.repeats, o.eval_batch_size, o.lr), (5, 100, 0.1));
        assert_eq!(o.python, Some(PathBuf::from("/x/python")));
        assert!(parse(&["--repeats", "0"]).unwrap_err().contains("positive"));
        assert!(parse(&["--lr", "-1"]).unwrap_err().contains("positive"));
        assert!(parse(&["--bogus"]).unwrap_err().contains("unknown option"));
        assert_eq!(parse(&["--help"]).unwrap(), None);
    }

    /// A Python without torch (or none at all) is an error naming what was tried and the fix.
    #[test]
    fn missing_python_names_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let err = find_python(Some(&dir.path().join("no-python")), dir.path()).unwrap_err().to_string();
        assert!(err.contains("no-python") && err.contains("setup-libtorch") && err.contains("--python"), "{err}");
    }

    #[test]
    fn min_and_median() {
        let run = |w: f64| SideRun {
            wall_s: w,
            train_s: w / 2.0,
            eval_s: w / 4.0,
            iterations: 1,
            final_average_accuracy: 0.5,
        };
        let s = SideSummary::of(vec![run(3.0), run(1.0), run(2.0), run(10.0)]);
        assert_eq!((s.min_wall_s, s.median_wall_s, s.min_train_s), (1.0, 2.5, 0.5));
        assert!(
            markdown(&CompareRecord {
                benchmark: "SplitFMNIST",
                classes_order: vec![0, 1],
                epochs: 1,
                batch_size: 128,
                eval_batch_size: 1000,
                lr: 0.01,
                seed: 1,
                python: "py".into(),
                torch_version: "2.9.0".into(),
                threads: 2,
                pytorch: s.clone(),
                cl: s,
                ratio_min_wall: 1.0,
                ratio_median_wall: 1.0,
                ratio_min_train: 1.0,
                ratio_min_eval: 1.0,
                provenance: Provenance::collect(Path::new(".")),
            })
            .contains("**1.00×** min wall")
        );
    }
}
