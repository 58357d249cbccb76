//! `cl run`: one run from a [`RunSpec`] into a run directory.
//!
//! ```text
//! RUN_DIR/
//!   spec.json        the resolved spec (every default written out)
//!   status.json      running | complete | failed (with the error), attempts, host, pid
//!   results.json     accuracy matrix, final average accuracy, forgetting, timings, provenance
//!   history.jsonl    every metric value (cl-report reads it)
//!   checkpoints/     ckpt-N after every N experiences; an interrupted run resumes from the newest
//!   pictures/        accuracy matrix and curves (PNG and SVG)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use cl::benchmarks::{online_split_seed, split_online_experience};
use cl::burn::tensor::Device;
use cl::core::checkpoint::list_checkpoints;
use cl::core::evaluation::{AccuracyMatrix, MetricName};
use cl::core::{Benchmark, MetricResults, Model, Strategy};
use cl::device::DeviceChoice;
use cl::metrics::{LoggerConfig, MetricConfig};
use cl::models::ModelVisitor;
use cl::plugins::{CheckpointConfig, CheckpointPlugin, CheckpointUnit};
use cl::strategies::StrategyConfig;
use serde::{Deserialize, Serialize};

use crate::error::{CliError, Result};
use crate::spec::{EvalStream, RunSpec};

/// The Burn version of the workspace (`=0.22.1`).
pub const BURN_VERSION: &str = "0.22.1";

/// The lock file of a run directory (held by the process running it).
pub const LOCK_FILE: &str = ".lock";

/// What `cl run` does besides running the spec.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The folder of the dataset files (the machine knows where its data is; the spec does not).
    pub data_dir: Option<PathBuf>,
    /// Require a checkpoint to resume from (an error if there is none).
    pub resume: bool,
    /// Delete what the run directory holds and start over.
    pub restart: bool,
    /// Print nothing but errors.
    pub quiet: bool,
}

/// Where and with what a run ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Version of `cl`.
    pub cl_version: String,
    /// Version of Burn.
    pub burn_version: String,
    /// The commit the `cl` binary was built from (`-dirty` with uncommitted changes).
    pub git_commit: String,
    /// The backend and device (`flex`, `tch-cuda:0`, ...).
    pub backend: String,
    /// Threads of the CPU pool (rayon).
    pub threads: usize,
    /// The machine's host name.
    pub hostname: Option<String>,
    /// The CPU model (from /proc/cpuinfo).
    pub cpu: Option<String>,
    /// Logical CPUs of the machine.
    pub cpus: usize,
    /// `linux-x86_64`, ...
    pub os: String,
    /// The Slurm job and array task, when run by Slurm (`12345_3`).
    pub slurm_job: Option<String>,
}

impl Provenance {
    /// The facts of this process on `backend`.
    pub fn collect(backend: String) -> Self {
        let read = |p: &str| std::fs::read_to_string(p).ok();
        let slurm_job = std::env::var("SLURM_ARRAY_JOB_ID")
            .ok()
            .map(|job| format!("{job}_{}", std::env::var("SLURM_ARRAY_TASK_ID").unwrap_or_default()))
            .or_else(|| std::env::var("SLURM_JOB_ID").ok());
        Self {
            cl_version: env!("CARGO_PKG_VERSION").into(),
            burn_version: BURN_VERSION.into(),
            git_commit: env!("CL_GIT_COMMIT").into(),
            backend,
            threads: rayon::current_num_threads(),
            hostname: hostname(),
            cpu: read("/proc/cpuinfo").and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            }),
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            os: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
            slurm_job,
        }
    }
}

/// The machine's host name, if it can be read.
fn hostname() -> Option<String> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    read("/proc/sys/kernel/hostname")
        .or_else(|| read("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// `results.json`: what a completed run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResults {
    /// The run's id.
    pub id: String,
    /// Its labels (strategy, benchmark, one per grid axis).
    pub labels: BTreeMap<String, String>,
    /// The strategy's name (`ewc`).
    pub strategy: String,
    /// The benchmark's name (`split_fmnist`).
    pub benchmark: String,
    /// The run's seed.
    pub seed: u64,
    /// Experiences of the benchmark.
    pub n_experiences: usize,
    /// The benchmark's class order.
    pub classes_order: Vec<u32>,
    /// `accuracy_matrix[i][j]`: accuracy on test experience `j` after training experience `i`
    /// (JointTraining: one row, after its single training); `null` where not measured.
    pub accuracy_matrix: Vec<Vec<Option<f64>>>,
    /// Mean of the last row (`null` if undefined).
    pub final_average_accuracy: Option<f64>,
    /// Average forgetting after the last experience (`null` for JointTraining).
    pub forgetting: Option<f64>,
    /// Loading the benchmark.
    pub load_time_s: f64,
    /// The `train` calls (this process only: calls restored from a checkpoint take no time).
    pub train_time_s: f64,
    /// The `eval` calls (this process only).
    pub eval_time_s: f64,
    /// Training and evaluation (this process only).
    pub wall_time_s: f64,
    /// Training iterations over the whole run.
    pub train_iterations: u64,
    /// Top-level calls restored from a checkpoint (0 when the run was not resumed).
    pub resumed_calls: usize,
    /// Seconds since the Unix epoch when the run completed.
    pub finished_at: u64,
    /// Versions, commit, machine.
    pub provenance: Provenance,
}

/// `status.json`: where a run stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStatus {
    /// `running`, `complete` or `failed`.
    pub state: RunState,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
    /// How many times the run was started.
    pub attempts: u32,
    /// The host of the last attempt.
    #[serde(default)]
    pub host: Option<String>,
    /// The process of the last attempt.
    pub pid: u32,
    /// Seconds since the Unix epoch of the last change.
    pub updated: u64,
}

/// The state of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Started and not finished (or killed: it resumes from its checkpoints).
    Running,
    /// `results.json` is written.
    Complete,
    /// It stopped with an error (`error`).
    Failed,
}

/// What `cl run` did.
#[derive(Debug, Clone)]
pub enum RunOutcome {
    /// The run ran (from the start or from a checkpoint) and completed.
    Completed(RunResults),
    /// The run directory already held the completed run.
    AlreadyComplete(RunResults),
}

impl RunOutcome {
    /// The results.
    pub fn results(&self) -> &RunResults {
        match self {
            Self::Completed(r) | Self::AlreadyComplete(r) => r,
        }
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Writes `value` as pretty JSON to `path` atomically (a temporary file renamed over it).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    // A temporary name of this process and call: two processes (two shards of a sweep) writing
    // the same file never rename each other's temporary file.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("json.tmp-{}-{call}", std::process::id()));
    let text = serde_json::to_string_pretty(value).expect("results serialise to JSON");
    std::fs::write(&tmp, text + "\n").map_err(CliError::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(CliError::io(path))
}

/// Reads a JSON file into `T`.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(CliError::io(path))?;
    serde_json::from_str(&text).map_err(|e| CliError::Parse {
        path: path.to_path_buf(),
        key: None,
        line: Some(e.line()),
        message: e.to_string(),
    })
}

/// The completed results in `run_dir`, if any.
pub fn completed_results(run_dir: &Path) -> Option<RunResults> {
    let path = run_dir.join("results.json");
    path.exists().then(|| read_json(&path).ok()).flatten()
}

/// The status in `run_dir`, if any.
pub fn read_status(run_dir: &Path) -> Option<RunStatus> {
    read_json(&run_dir.join("status.json")).ok()
}

fn write_status(run_dir: &Path, state: RunState, error: Option<String>, attempts: u32) -> Result<()> {
    let status = RunStatus { state, error, attempts, host: hostname(), pid: std::process::id(), updated: now() };
    write_json(&run_dir.join("status.json"), &status)
}

/// Runs `spec` (resolved) into `run_dir`: skips it when complete, resumes it from its newest
/// checkpoint when interrupted, records a failure in `status.json` before returning the error.
pub fn execute(spec: &RunSpec, run_dir: &Path, options: &RunOptions) -> Result<RunOutcome> {
    // One process per run directory: a lock held until this process ends (released by the
    // system when it is killed, so a killed run never leaves a stale lock).
    std::fs::create_dir_all(run_dir).map_err(CliError::io(run_dir))?;
    let lock_path = run_dir.join(LOCK_FILE);
    let lock = std::fs::File::create(&lock_path).map_err(CliError::io(&lock_path))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = read_status(run_dir).map(|s| format!(" (pid {} on {})", s.pid, s.host.unwrap_or_default()));
            return Err(CliError::RunDirBusy { dir: run_dir.to_path_buf(), holder: holder.unwrap_or_default() });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(CliError::io(&lock_path)(e)),
    }
    prepare_dir(spec, run_dir, options)?;
    if let Some(results) = completed_results(run_dir) {
        return Ok(RunOutcome::AlreadyComplete(results));
    }
    let checkpoints = run_dir.join("checkpoints");
    if options.resume && list_checkpoints(&checkpoints).map(|l| l.is_empty()).unwrap_or(true) {
        return Err(CliError::NothingToResume { dir: checkpoints });
    }
    let attempts = read_status(run_dir).map_or(0, |s| s.attempts) + 1;
    write_status(run_dir, RunState::Running, None, attempts)?;
    match run_spec(spec, run_dir, options) {
        Ok(results) => {
            write_json(&run_dir.join("results.json"), &results)?;
            write_status(run_dir, RunState::Complete, None, attempts)?;
            if let Err(e) = draw_pictures(run_dir)
                && !options.quiet
            {
                eprintln!("warning: {}: pictures not drawn: {e}", run_dir.display());
            }
            Ok(RunOutcome::Completed(results))
        }
        Err(e) => {
            // The error is kept with the run; the original error is what the caller sees.
            let _ = write_status(run_dir, RunState::Failed, Some(e.to_string()), attempts);
            Err(e)
        }
    }
}

/// Checks that the run directory holds this run (or is new), or empties it on `restart`;
/// writes `spec.json` (with this spec's labels: labels do not make another run).
fn prepare_dir(spec: &RunSpec, run_dir: &Path, options: &RunOptions) -> Result<()> {
    let spec_path = run_dir.join("spec.json");
    let value = spec.to_value();
    let others = || -> Result<Vec<PathBuf>> {
        Ok(std::fs::read_dir(run_dir)
            .map_err(CliError::io(run_dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.file_name().is_some_and(|n| n != "run.log" && n != LOCK_FILE))
            .collect())
    };
    let is_run_dir = spec_path.exists() || run_dir.join("status.json").exists();
    if !is_run_dir && !others()?.is_empty() {
        return Err(CliError::NotARunDir { dir: run_dir.to_path_buf() });
    }
    if options.restart && is_run_dir {
        for path in others()? {
            let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            removed.map_err(CliError::io(&path))?;
        }
    }
    if spec_path.exists() {
        let without_labels = |v: &serde_json::Value| {
            let mut v = v.clone();
            if let Some(map) = v.as_object_mut() {
                map.remove("labels");
            }
            v
        };
        let existing: serde_json::Value = read_json(&spec_path)?;
        if let Some(difference) = first_difference(&without_labels(&existing), &without_labels(&value), "") {
            return Err(CliError::RunDirMismatch { dir: run_dir.to_path_buf(), difference });
        }
        if existing == value {
            return Ok(());
        }
    }
    write_json(&spec_path, &value)
}

/// The first key where two JSON values differ (`protocol.train_epochs: 1 ≠ 2`).
pub fn first_difference(a: &serde_json::Value, b: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let path = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => first_difference(p, q, &path),
                    (p, q) => Some(format!("{path}: {} ≠ {}", show(p), show(q))),
                }
            })
        }
        _ if a == b => None,
        _ => Some(format!("{}: {a} ≠ {b}", if at.is_empty() { "the spec" } else { at })),
    }
}

fn show(v: Option<&serde_json::Value>) -> String {
    v.map_or("(absent)".into(), |v| v.to_string())
}

/// Draws the accuracy matrix and curves of `run_dir/history.jsonl` into `run_dir/pictures`.
pub fn draw_pictures(run_dir: &Path) -> Result<()> {
    let history = run_dir.join("history.jsonl");
    let out = run_dir.join("pictures");
    std::fs::create_dir_all(&out).map_err(CliError::io(&out))?;
    cl::report::render_history_file(&history, &out)?;
    Ok(())
}

/// The device of `spec` and the backend's name.
fn device_of(spec: &RunSpec) -> Result<(Device, String)> {
    match &spec.device {
        None => Ok((cl::default_device(), cl::default_backend_name().to_string())),
        Some(name) => {
            let choice: DeviceChoice = name.parse()?;
            Ok((choice.device()?, choice.backend_name()))
        }
    }
}

/// Builds the spec's model and strategy on its device without loading data or writing files
/// (no loggers, no checkpoints): what `cl validate` checks beyond the configurations' rules —
/// a device this build lacks, a CWR* layer the model does not have, plugins that conflict.
pub fn check_buildable(spec: &RunSpec) -> Result<()> {
    struct Build<'a>(&'a RunSpec, Device);
    impl ModelVisitor for Build<'_> {
        type Output = Result<()>;
        fn visit<M: Model>(self, model: M) -> cl::core::Result<Result<()>> {
            let Build(spec, device) = self;
            let plugins = spec.plugins.iter().map(|p| p.build(&model)).collect::<cl::core::Result<Vec<_>>>()?;
            let mut evaluation = spec.evaluation.clone();
            evaluation.loggers.clear();
            let mut builder = spec
                .strategy
                .builder(model, spec.optimizer.clone(), device)?
                .config(spec.protocol.training_config(spec.seed))
                .evaluator(evaluation.build()?);
            for plugin in plugins {
                builder = builder.boxed_plugin(plugin);
            }
            builder.build()?;
            Ok(Ok(()))
        }
    }
    let (device, _) = device_of(spec)?;
    spec.model.init_with(&device, Build(spec, device.clone()))?
}

/// Loads the benchmark and runs the spec's protocol.
fn run_spec(spec: &RunSpec, run_dir: &Path, options: &RunOptions) -> Result<RunResults> {
    let (device, backend) = device_of(spec)?;
    let start = Instant::now();
    let benchmark = match &options.data_dir {
        Some(dir) => spec.benchmark.load(dir)?,
        None => spec.benchmark.build()?,
    };
    let load_time_s = start.elapsed().as_secs_f64();
    // The model's initial weights come from the device's generator.
    device.seed(spec.seed);
    let measured = spec.model.init_with(
        &device,
        Protocol { spec, run_dir, benchmark: &benchmark, device: device.clone(), quiet: options.quiet },
    )??;
    let matrix = &measured.matrix;
    let finite = |x: Option<f64>| x.filter(|v| v.is_finite());
    Ok(RunResults {
        id: spec.id(),
        labels: spec.labels.clone(),
        strategy: spec.strategy.name().into(),
        benchmark: spec.benchmark.name().into(),
        seed: spec.seed,
        n_experiences: benchmark.n_experiences(),
        classes_order: benchmark.classes_order.clone(),
        accuracy_matrix: if measured.joint { matrix.measured_rows()[..1].to_vec() } else { matrix.measured_rows() },
        final_average_accuracy: finite(if measured.joint {
            matrix.average_accuracy(0)
        } else {
            matrix.final_average_accuracy()
        }),
        forgetting: if measured.joint { None } else { finite(matrix.forgetting()) },
        load_time_s,
        train_time_s: measured.train_time_s,
        eval_time_s: measured.eval_time_s,
        wall_time_s: measured.wall_time_s,
        train_iterations: measured.train_iterations,
        resumed_calls: measured.resumed_calls,
        finished_at: now(),
        provenance: Provenance::collect(backend),
    })
}

/// What the protocol measured.
struct Measured {
    matrix: AccuracyMatrix,
    joint: bool,
    train_time_s: f64,
    eval_time_s: f64,
    wall_time_s: f64,
    train_iterations: u64,
    resumed_calls: usize,
}

/// The protocol over a model of any type (see [`ModelVisitor`]).
struct Protocol<'a> {
    spec: &'a RunSpec,
    run_dir: &'a Path,
    benchmark: &'a Benchmark,
    device: Device,
    quiet: bool,
}

impl ModelVisitor for Protocol<'_> {
    type Output = Result<Measured>;

    fn visit<M: Model>(self, model: M) -> cl::core::Result<Result<Measured>> {
        Ok(self.run(model))
    }
}

impl Protocol<'_> {
    fn strategy<M: Model>(&self, model: M) -> Result<Strategy<M>> {
        let spec = self.spec;
        let plugins = spec.plugins.iter().map(|p| p.build(&model)).collect::<cl::core::Result<Vec<_>>>()?;
        let mut builder = spec
            .strategy
            .builder(model, spec.optimizer.clone(), self.device.clone())?
            .config(spec.protocol.training_config(spec.seed))
            .evaluator(self.evaluation().build()?);
        for plugin in plugins {
            builder = builder.boxed_plugin(plugin);
        }
        if spec.checkpoint.enabled {
            let dir = self.run_dir.join("checkpoints");
            let mut config = CheckpointConfig::new(&dir)
                .with_every_experiences(spec.checkpoint.every_experiences)
                .with_keep_last(spec.checkpoint.keep_last);
            if spec.protocol.online.is_some() {
                // One checkpoint per original experience, not one per sub-experience.
                config = config.with_unit(CheckpointUnit::TrainCall);
            }
            builder = builder.plugin(CheckpointPlugin::new(config)?).resume_latest(&dir);
        }
        Ok(builder.build()?)
    }

    /// The spec's evaluation with the accuracy metric (added first when missing), logger paths
    /// inside the run directory, and the history logger (`history.jsonl`).
    fn evaluation(&self) -> cl::metrics::EvaluationConfig {
        let mut evaluation = self.spec.evaluation.clone();
        if !evaluation.metrics.iter().any(|m| matches!(m, MetricConfig::Accuracy(_))) {
            evaluation.metrics.insert(0, MetricConfig::Accuracy(Default::default()));
        }
        let inside = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { self.run_dir.join(p) };
        for logger in &mut evaluation.loggers {
            *logger = match logger.clone() {
                LoggerConfig::Csv { folder } => LoggerConfig::Csv { folder: inside(&folder) },
                LoggerConfig::JsonLines { path } => LoggerConfig::JsonLines { path: inside(&path) },
                LoggerConfig::Text { file } => LoggerConfig::Text { file: file.map(|f| inside(&f)) },
                LoggerConfig::TensorBoard { folder } => LoggerConfig::TensorBoard { folder: inside(&folder) },
                LoggerConfig::Interactive => LoggerConfig::Interactive,
            };
        }
        evaluation.loggers.push(LoggerConfig::JsonLines { path: self.run_dir.join("history.jsonl") });
        evaluation
    }

    fn run<M: Model>(self, model: M) -> Result<Measured> {
        let mut strategy = self.strategy(model)?;
        let resumed_calls = strategy.journal().len();
        if resumed_calls > 0 && !self.quiet {
            println!("resuming {} from its checkpoint ({resumed_calls} calls done)", self.run_dir.display());
        }
        let benchmark = self.benchmark;
        let n = benchmark.n_experiences();
        let mut matrix = AccuracyMatrix::new(n);
        let (mut train_time_s, mut eval_time_s) = (0.0, 0.0);
        let wall = Instant::now();
        let joint = matches!(self.spec.strategy, StrategyConfig::JointTraining(_));
        let periodic = self.spec.protocol.periodic_eval != cl::core::PeriodicEval::Never;
        let eval_train = self.spec.protocol.eval_streams.contains(&EvalStream::Train);
        let mut train = |strategy: &mut Strategy<M>,
                         f: &dyn Fn(&mut Strategy<M>) -> cl::core::Result<MetricResults>| {
            let t = Instant::now();
            let r = f(strategy);
            train_time_s += t.elapsed().as_secs_f64();
            r
        };
        let rows: Vec<usize> = if joint { vec![0] } else { (0..n).collect() };
        for i in rows {
            if joint && periodic {
                train(&mut strategy, &|s| s.train_with_eval(&benchmark.train_stream, &[&benchmark.test_stream]))?;
            } else if joint {
                train(&mut strategy, &|s| s.train(&benchmark.train_stream))?;
            } else {
                let experience = &benchmark.train_stream[i];
                let online = match &self.spec.protocol.online {
                    Some(online) => Some(split_online_experience(
                        experience,
                        &online.clone().with_seed(online_split_seed(self.spec.seed, i)),
                    )?),
                    None => None,
                };
                let experiences = online.as_deref().unwrap_or(std::slice::from_ref(experience));
                if periodic {
                    train(&mut strategy, &|s| s.train_with_eval(experiences, &[&benchmark.test_stream]))?;
                } else {
                    train(&mut strategy, &|s| s.train(experiences))?;
                }
            }
            let t = Instant::now();
            let results = strategy.eval(&benchmark.test_stream)?;
            if eval_train {
                strategy.eval(&benchmark.train_stream)?;
            }
            eval_time_s += t.elapsed().as_secs_f64();
            for (j, test) in benchmark.test_stream.iter().enumerate() {
                let task = test.task_labels.first().copied().unwrap_or(0);
                let name = MetricName::test_exp_accuracy(task, j).to_string();
                let accuracy = results.get(&name).copied().ok_or_else(|| {
                    CliError::Results(format!(
                        "the evaluation emitted no `{name}`: keep the accuracy metric at experience granularity in \
                         [evaluation] (results.json's accuracy matrix is read from it)"
                    ))
                })?;
                matrix.set(i, j, accuracy);
            }
            if !self.quiet {
                let what = if joint { "the whole stream".to_string() } else { format!("experience {}/{n}", i + 1) };
                println!(
                    "{} {}: after {what}: average accuracy {:.4}",
                    self.spec.strategy_label(),
                    self.spec.benchmark_label(),
                    matrix.average_accuracy(i).unwrap_or(f64::NAN)
                );
            }
        }
        Ok(Measured {
            matrix,
            joint,
            train_time_s,
            eval_time_s,
            wall_time_s: wall.elapsed().as_secs_f64(),
            train_iterations: strategy.state().clock().train_iterations,
            resumed_calls,
        })
    }
}
