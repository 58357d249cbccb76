//! Checkpoint and resume, end to end: runs in real child processes killed with SIGKILL at
//! several points (mid-epoch, between experiences, during evaluation, during a checkpoint write)
//! and resumed from their run directory end with the final metrics, every `train`/`eval`
//! result, the weights and the JSON-lines log of the uninterrupted run, bit for bit; and the
//! typed errors of bad checkpoints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use cl::core::checkpoint::{STALL_WRITE_ENV, list_checkpoints, read_header};
use cl::core::evaluation::EvaluationPlugin;
use cl::core::{ClError, Experience, NonFiniteLoss, Stream};
use cl::metrics::JsonLinesLogger;
use cl::plugins::{CheckpointConfig, CheckpointPlugin, EarlyStoppingConfig, EarlyStoppingPlugin};
use cl::prelude::*;
use cl::strategies::StrategyConfig;
use serde::{Deserialize, Serialize};

use crate::common::fixture_dir;

/// The model a case trains.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum ModelKind {
    /// SimpleMLP (fixed 10 outputs).
    Mlp,
    /// SimpleMLP trunk with an incremental classifier (grows with the classes seen).
    Incremental,
    /// SimpleMLP trunk with a multi-head classifier (task-incremental SplitFMNIST).
    MultiHead,
    /// SimpleMLP trunk with SCR's projection head.
    Scr,
    /// A small `LatentCnn` (AR1's latent replay, batch renormalisation).
    LatentCnn,
}

/// One run configuration of the crash tests.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Case {
    strategy: StrategyConfig,
    model: ModelKind,
    /// Periodic evaluation on a validation stream every epoch, and early stopping on it.
    early_stopping: bool,
    epochs: usize,
}

impl Case {
    fn new(strategy: &str, config: serde_json::Value) -> Self {
        let strategy = StrategyConfig::from_json(&serde_json::json!({"name": strategy, "config": config}).to_string())
            .expect("a valid strategy configuration");
        Self { strategy, model: ModelKind::Mlp, early_stopping: false, epochs: 1 }
    }

    fn model(mut self, model: ModelKind) -> Self {
        self.model = model;
        self
    }

    fn early_stopping(mut self) -> Self {
        self.early_stopping = true;
        self.epochs = 3;
        self
    }
}

/// What a run produced: every call's result, the final weights and the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Outcome {
    /// The result of every `train`/`eval` call of the driver loop, in order (f64 bits: NaN
    /// compares too).
    calls: Vec<BTreeMap<String, u64>>,
    /// The model's float parameters, as bits.
    weights: Vec<u32>,
    /// The JSON-lines log, as written.
    log: String,
}

/// Stops the child at a chosen point (`CL_CKPT_PAUSE=<point>:<n>`): creates the marker file
/// `CL_CKPT_MARKER` and waits to be killed. Stateless, so checkpointable; inactive without
/// the variable (it is in every run, so every run has the same plugins).
#[derive(Default)]
struct PauseForKill {
    counts: BTreeMap<&'static str, u64>,
}

impl PauseForKill {
    fn at(&mut self, point: &'static str) {
        let n = {
            let c = self.counts.entry(point).or_default();
            *c += 1;
            *c
        };
        let Ok(spec) = std::env::var("CL_CKPT_PAUSE") else {
            return;
        };
        if spec == format!("{point}:{n}") {
            std::fs::write(std::env::var("CL_CKPT_MARKER").unwrap(), b"paused").unwrap();
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

impl<M: Model> Plugin<M> for PauseForKill {
    fn after_training_iteration(&mut self, _s: &mut StrategyState<M>) -> cl::core::Result<()> {
        self.at("iteration");
        Ok(())
    }
    fn before_training_exp(&mut self, _s: &mut StrategyState<M>) -> cl::core::Result<()> {
        self.at("before_exp");
        Ok(())
    }
    fn after_eval_iteration(&mut self, _s: &mut StrategyState<M>) -> cl::core::Result<()> {
        self.at("eval_iteration");
        Ok(())
    }
    fn save_state(&self, _out: &mut cl::core::checkpoint::StateDict) -> cl::core::Result<()> {
        Ok(())
    }
    fn load_state(
        &mut self,
        _state: &cl::core::checkpoint::StateDict,
        _strategy: &StrategyState<M>,
    ) -> cl::core::Result<()> {
        Ok(())
    }
}

/// The float parameters of a module, as bits.
fn weight_bits<Mo: Module>(module: &Mo) -> Vec<u32> {
    struct Bits(Vec<u32>);
    impl ModuleVisitor for Bits {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let values = param.val().into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
            self.0.extend(values.into_iter().map(f32::to_bits));
        }
    }
    let mut bits = Bits(Vec::new());
    module.visit(&mut bits);
    bits.0
}

fn bits(metrics: BTreeMap<String, f64>) -> BTreeMap<String, u64> {
    metrics.into_iter().map(|(k, v)| (k, v.to_bits())).collect()
}

/// A validation stream: the test experiences under the name `valid`.
fn valid_stream(test: &Stream) -> Stream {
    let exps =
        test.iter().map(|e| Experience::new(e.current_experience, e.dataset.clone(), "valid", e.n_classes)).collect();
    Stream::new("valid", exps)
}

/// The strategy of `case` over `model`, with run directory `dir`: its JSON-lines log, its
/// checkpoints (the last 2 kept) and the kill-point plugin.
fn builder<M: Model>(case: &Case, model: M, dir: &Path) -> cl::core::Result<StrategyBuilder<M>> {
    let evaluator = EvaluationPlugin::default().logger(JsonLinesLogger::new(dir.join("log.jsonl")).unwrap());
    Ok(case
        .strategy
        .builder(model, OptimizerSpec::sgd(0.05).with_momentum(0.9), cl::default_device())?
        .train_mb_size(32)
        .train_epochs(case.epochs)
        .eval_mb_size(128)
        .seed(11)
        // These runs test resumption, not convergence: whatever a case's loss does, the run
        // must resume bit for bit (SI with Avalanche's unfloored importances reaches loss -inf
        // on the fixture; see divergence.rs).
        .non_finite_loss(NonFiniteLoss::Ignore)
        .evaluator(evaluator)
        .plugin(CheckpointPlugin::new(CheckpointConfig::new(dir.join("checkpoints")).with_keep_last(2))?)
        .plugin(PauseForKill::default()))
}

/// The driver loop of a run, identical for fresh and resumed runs: train on each experience
/// (with periodic evaluation on `valid` if the case has early stopping), then evaluate the
/// test stream.
fn drive<M: Model>(model: M, case: &Case, dir: &Path, resume: bool) -> cl::core::Result<Outcome> {
    let benchmark = split_fmnist(
        &SplitMnistConfig::new(5)
            .with_seed(3)
            .with_dataset_root(fixture_dir())
            .with_return_task_id(case.model == ModelKind::MultiHead),
    )
    .unwrap();
    let log_path = dir.join("log.jsonl");
    let mut builder = builder(case, model, dir)?;
    if case.early_stopping {
        builder = builder
            .eval_every(Some(1))
            .plugin(EarlyStoppingPlugin::new(EarlyStoppingConfig::new(1, "valid").with_margin(0.002))?);
    }
    if resume {
        builder = builder.resume_latest(dir.join("checkpoints"));
    }
    let mut strategy = builder.build()?;
    let valid = valid_stream(&benchmark.test_stream);
    let mut calls = Vec::new();
    for exp in &benchmark.train_stream {
        if case.early_stopping {
            calls.push(bits(strategy.train_with_eval(exp, &[&valid])?));
        } else {
            calls.push(bits(strategy.train(exp)?));
        }
        calls.push(bits(strategy.eval(&benchmark.test_stream)?));
    }
    strategy.evaluator_as_mut::<EvaluationPlugin>().unwrap().flush().unwrap();
    let weights = weight_bits(strategy.model());
    drop(strategy);
    Ok(Outcome { calls, weights, log: std::fs::read_to_string(&log_path).unwrap() })
}

fn run_case(case: &Case, dir: &Path, resume: bool) -> cl::core::Result<Outcome> {
    let device = cl::default_device();
    let config = SimpleMlpConfig::new().with_hidden_size(32).with_drop_rate(0.2);
    match case.model {
        ModelKind::Mlp => drive(config.init(&device)?, case, dir, resume),
        ModelKind::Incremental => drive(config.with_num_classes(2).init_incremental(&device)?, case, dir, resume),
        ModelKind::MultiHead => drive(config.with_num_classes(2).init_multitask(&device)?, case, dir, resume),
        ModelKind::Scr => drive(config.init_scr(16, &device)?, case, dir, resume),
        ModelKind::LatentCnn => {
            let cnn = LatentCnnConfig::new().with_lower_channels(vec![4]).with_upper_channels(vec![8]).with_seed(2);
            drive(cnn.init(&device)?, case, dir, resume)
        }
    }
}

/// The entry point of the child processes (run by the parent with `--ignored --exact`).
#[test]
#[ignore = "the child process of the SIGKILL tests; run by them"]
fn child_main() {
    let case: Case = serde_json::from_str(&std::env::var("CL_CKPT_CASE").unwrap()).unwrap();
    let dir = PathBuf::from(std::env::var("CL_CKPT_DIR").unwrap());
    let resume = std::env::var("CL_CKPT_RESUME").is_ok();
    let outcome = run_case(&case, &dir, resume).unwrap();
    std::fs::write(dir.join("outcome.json"), serde_json::to_vec(&outcome).unwrap()).unwrap();
}

fn child(case: &Case, dir: &Path, env: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["checkpoint::child_main", "--exact", "--ignored", "--nocapture", "--test-threads", "1"])
        .env("CL_CKPT_CASE", serde_json::to_string(case).unwrap())
        .env("CL_CKPT_DIR", dir)
        .env_remove("CL_CKPT_PAUSE")
        .env_remove("CL_CKPT_RESUME")
        .env_remove(STALL_WRITE_ENV)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Waits for `marker` to appear (the child reached its kill point), then kills the child with
/// SIGKILL.
fn kill_at_marker(mut child: Child, marker: &Path, what: &str) {
    let start = Instant::now();
    while !marker.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("the child ended ({status}) before reaching {what}: {err}");
        }
        assert!(start.elapsed() < Duration::from_secs(600), "the child never reached {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
}

fn finish(child: Child) {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the resumed child failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Where a child is killed: `point:n` of [`PauseForKill`], or `write:n` (during the n-th
/// checkpoint write).
fn kill_then_resume(case: &Case, kill: &str, reference: &Outcome) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (env, marker) = match kill.strip_prefix("write:") {
        Some(n) => {
            let n: u64 = n.parse().unwrap();
            let marker = dir.join("checkpoints").join(format!("ckpt-{n:06}.stalled"));
            (vec![(STALL_WRITE_ENV, n.to_string())], marker)
        }
        None => {
            let marker = dir.join("paused");
            (vec![("CL_CKPT_PAUSE", kill.to_string()), ("CL_CKPT_MARKER", marker.display().to_string())], marker)
        }
    };
    kill_at_marker(child(case, dir, &env), &marker, kill);
    // A kill during a write leaves the previous checkpoints whole (and a torn temporary file).
    let checkpoints = list_checkpoints(&dir.join("checkpoints")).unwrap();
    assert!(!checkpoints.is_empty(), "killed at {kill} before the first checkpoint: nothing would be resumed");
    for ckpt in &checkpoints {
        read_header(ckpt).unwrap();
    }
    if kill.starts_with("write:") {
        let torn = std::fs::read_dir(dir.join("checkpoints"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains(".tmp-"))
            .count();
        assert_eq!(torn, 1, "the interrupted write left its temporary file, not a torn checkpoint");
    }
    finish(child(case, dir, &[("CL_CKPT_RESUME", "1".into())]));
    let resumed: Outcome = serde_json::from_slice(&std::fs::read(dir.join("outcome.json")).unwrap()).unwrap();
    assert_eq!(
        resumed.calls,
        reference.calls,
        "{:?} killed at {kill}: train/eval results differ",
        case.strategy.name()
    );
    assert!(resumed.weights == reference.weights, "{} killed at {kill}: weights differ", case.strategy.name());
    assert_eq!(resumed.log, reference.log, "{} killed at {kill}: the log differs", case.strategy.name());
}

fn check(case: Case, kills: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let reference = run_case(&case, tmp.path(), false).unwrap();
    assert_eq!(reference.calls.len(), 10);
    for kill in kills {
        kill_then_resume(&case, kill, &reference);
    }
}

#[test]
fn naive_killed_mid_epoch_between_experiences_in_eval_and_in_a_write_resumes_bit_identical() {
    check(Case::new("naive", serde_json::json!({})), &["iteration:20", "before_exp:3", "eval_iteration:9", "write:2"]);
}

#[test]
fn cumulative_and_replay_resume_bit_identical() {
    check(Case::new("cumulative", serde_json::json!({})), &["iteration:30"]);
    check(Case::new("replay", serde_json::json!({"mem_size": 120})), &["iteration:33", "write:3"]);
}

#[test]
fn gdumb_resumes_bit_identical() {
    check(Case::new("gdumb", serde_json::json!({"mem_size": 100})), &["iteration:12", "before_exp:4"]);
}

#[test]
fn ewc_separate_and_online_resume_bit_identical() {
    check(Case::new("ewc", serde_json::json!({"ewc_lambda": 5.0})), &["iteration:25"]);
    check(
        Case::new("ewc", serde_json::json!({"ewc_lambda": 5.0, "mode": {"online": {"decay_factor": 0.9}}})),
        &["iteration:40"],
    );
    check(
        Case::new(
            "gss_greedy",
            serde_json::json!({"mem_size": 60, "batch_size_mem": 8, "scoring_gradient": "add_to_step"}),
        ),
        &["iteration:40"],
    );
    check(Case::new("cope", serde_json::json!({"mem_size": 60, "p_size": 10, "max_it_cnt": 5})), &["iteration:12"]);
    // AR1: the latent memory, CWR*'s state, the batch-renorm limits and running statistics.
    check(
        Case::new("ar1", serde_json::json!({"rm_sz": 50, "inc_lr": 0.005, "si_lambda": 0.1, "seed": 3}))
            .model(ModelKind::LatentCnn),
        &["iteration:30", "before_exp:3"],
    );
}

#[test]
fn si_mas_rwalk_resume_bit_identical() {
    check(Case::new("synaptic_intelligence", serde_json::json!({"si_lambda": 0.1})), &["iteration:27"]);
    check(Case::new("mas", serde_json::json!({"lambda_reg": 1.0})), &["iteration:15"]);
    check(Case::new("rwalk", serde_json::json!({})), &["iteration:45"]);
}

#[test]
fn lwf_gem_agem_cwr_resume_bit_identical() {
    check(Case::new("lwf", serde_json::json!({"alpha": 1.0, "temperature": 2.0})), &["iteration:30"]);
    check(Case::new("gem", serde_json::json!({"patterns_per_exp": 20})), &["iteration:30"]);
    check(Case::new("agem", serde_json::json!({"patterns_per_exp": 20, "sample_size": 32})), &["iteration:30"]);
    check(Case::new("cwr_star", serde_json::json!({})), &["iteration:30"]);
}

#[test]
fn der_er_ace_er_aml_scr_mir_gss_cope_resume_bit_identical() {
    check(Case::new("der", serde_json::json!({"mem_size": 60, "batch_size_mem": 16})), &["iteration:30", "write:2"]);
    check(Case::new("er_ace", serde_json::json!({"mem_size": 60})), &["iteration:35"]);
    check(Case::new("er_aml", serde_json::json!({"mem_size": 60})), &["iteration:35"]);
    check(
        Case::new("scr", serde_json::json!({"mem_size": 60, "batch_size_mem": 16})).model(ModelKind::Scr),
        &["iteration:35", "eval_iteration:7"],
    );
    check(
        Case::new("mir", serde_json::json!({"mem_size": 60, "subsample": 20, "batch_size_mem": 5})),
        &["iteration:40"],
    );
}

#[test]
fn growing_models_resume_bit_identical() {
    check(Case::new("naive", serde_json::json!({})).model(ModelKind::Incremental), &["iteration:35"]);
    check(Case::new("lwf", serde_json::json!({})).model(ModelKind::MultiHead), &["iteration:35"]);
}

#[test]
fn periodic_evaluation_and_early_stopping_resume_bit_identical() {
    check(Case::new("naive", serde_json::json!({})).early_stopping(), &["iteration:50", "eval_iteration:60"]);
}

// ---- typed errors -------------------------------------------------------------------------------

fn saved_run(case: &Case) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    run_case(case, tmp.path(), false).unwrap();
    tmp
}

fn latest(dir: &Path) -> PathBuf {
    list_checkpoints(&dir.join("checkpoints")).unwrap().pop().unwrap()
}

/// A strategy of `case` (as [`drive`] builds it, run directory `dir`) resumed from `path`.
fn resume_from(case: &Case, dir: &Path, path: &Path) -> cl::core::Result<Strategy<SimpleMlp>> {
    let model = SimpleMlpConfig::new().with_hidden_size(32).with_drop_rate(0.2).init(&cl::default_device())?;
    builder(case, model, dir)?.resume_from(path).build()
}

#[test]
fn truncated_corrupt_other_version_and_other_configuration_checkpoints_are_typed_errors() {
    let case = Case::new("replay", serde_json::json!({"mem_size": 50}));
    let run = saved_run(&case);
    let path = latest(run.path());
    let bytes = std::fs::read(&path).unwrap();
    assert!(resume_from(&case, run.path(), &path).is_ok(), "the checkpoint itself resumes");

    let bad = run.path().join("bad.clckpt");
    std::fs::write(&bad, &bytes[..bytes.len() - 100]).unwrap();
    let err = resume_from(&case, run.path(), &bad).err().unwrap();
    assert!(matches!(&err, ClError::CorruptCheckpoint { problem, .. } if problem.contains("truncated")), "{err}");

    let mut flipped = bytes.clone();
    let last = flipped.len() - 10;
    flipped[last] ^= 0x40;
    std::fs::write(&bad, &flipped).unwrap();
    let err = resume_from(&case, run.path(), &bad).err().unwrap();
    assert!(matches!(&err, ClError::CorruptCheckpoint { problem, .. } if problem.contains("checksum")), "{err}");

    let mut other_version = bytes.clone();
    other_version[8..12].copy_from_slice(&99u32.to_le_bytes());
    std::fs::write(&bad, &other_version).unwrap();
    let err = resume_from(&case, run.path(), &bad).err().unwrap();
    assert!(matches!(err, ClError::CheckpointVersion { found: 99, supported: 1, .. }), "{err}");

    std::fs::write(&bad, b"not a checkpoint at all").unwrap();
    let err = resume_from(&case, run.path(), &bad).err().unwrap();
    assert!(
        matches!(&err, ClError::CorruptCheckpoint { problem, .. } if problem.contains("not a cl checkpoint")),
        "{err}"
    );

    // Another configuration: another strategy, another seed-bearing training config, another
    // plugin configuration.
    let err = resume_from(&Case::new("naive", serde_json::json!({})), run.path(), &path).err().unwrap();
    assert!(matches!(&err, ClError::CheckpointMismatch { what, .. } if what.contains("plugins")), "{err}");
    let mut epochs = case.clone();
    epochs.epochs = 2;
    let err = resume_from(&epochs, run.path(), &path).err().unwrap();
    assert!(matches!(&err, ClError::CheckpointMismatch { what, .. } if what.contains("training")), "{err}");
    let err = resume_from(&Case::new("replay", serde_json::json!({"mem_size": 60})), run.path(), &path).err().unwrap();
    assert!(matches!(&err, ClError::CheckpointMismatch { .. }), "{err}");
}

#[test]
fn strategies_without_plugins_are_told_apart_and_a_fresh_run_does_not_overwrite_another() {
    // Naive and Cumulative have no plugin: their steps differ.
    let naive = Case::new("naive", serde_json::json!({}));
    let run = saved_run(&naive);
    let err =
        resume_from(&Case::new("cumulative", serde_json::json!({})), run.path(), &latest(run.path())).err().unwrap();
    assert!(matches!(&err, ClError::CheckpointMismatch { what, .. } if what.contains("steps")), "{err}");
    // A fresh run (no resume) pointed at that run directory refuses to write into it.
    let err = run_case(&naive, run.path(), false).unwrap_err();
    assert!(matches!(&err, ClError::InvalidUse(m) if m.contains("already holds checkpoints")), "{err}");
    assert_eq!(list_checkpoints(&run.path().join("checkpoints")).unwrap().len(), 2, "the other run's files stay");
    let log = std::fs::read_to_string(run.path().join("log.jsonl")).unwrap();
    assert!(!log.is_empty(), "the refusal comes before anything is logged: the other run's log stays");
}

#[test]
fn a_newer_unreadable_checkpoint_is_skipped_by_resume_latest_and_an_empty_directory_starts_afresh() {
    let case = Case::new("naive", serde_json::json!({}));
    let tmp = tempfile::tempdir().unwrap();
    let reference = run_case(&case, tmp.path(), false).unwrap();
    // Keep-last 2: the run directory holds the last two checkpoints.
    let files = list_checkpoints(&tmp.path().join("checkpoints")).unwrap();
    assert_eq!(files.len(), 2, "{files:?}");
    // Tear the newest: resume_latest takes the previous one and still ends bit-identical.
    let newest = files.last().unwrap();
    let bytes = std::fs::read(newest).unwrap();
    std::fs::write(newest, &bytes[..bytes.len() / 3]).unwrap();
    let resumed = run_case(&case, tmp.path(), true).unwrap();
    assert_eq!(resumed.calls, reference.calls);
    assert!(resumed.weights == reference.weights);
    // An empty run directory is a fresh run.
    let fresh = tempfile::tempdir().unwrap();
    let again = run_case(&case, fresh.path(), true).unwrap();
    assert!(again.weights == reference.weights);
}

/// A plugin that keeps state and has no checkpoint hooks.
#[derive(Default)]
struct CountsIterations(u64);

impl<M: Model> Plugin<M> for CountsIterations {
    fn after_training_iteration(&mut self, _s: &mut StrategyState<M>) -> cl::core::Result<()> {
        self.0 += 1;
        Ok(())
    }
}

#[test]
fn a_stateful_plugin_without_hooks_makes_the_save_fail_naming_it_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Strategy::builder(crate::common::tiny_mlp(4), OptimizerSpec::sgd(0.1), cl::default_device())
        .plugin(CountsIterations::default())
        .build()
        .unwrap();
    s.train(&crate::common::generated_stream("train", 2, 16)).unwrap();
    let path = tmp.path().join("run.clckpt");
    let err = s.save_checkpoint(&path).unwrap_err();
    assert!(
        matches!(&err, ClError::NotCheckpointable { component, .. } if component.contains("CountsIterations")),
        "{err}"
    );
    assert!(!path.exists());
    assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none(), "no temporary file left either");
}

#[test]
fn a_resumed_run_driven_differently_is_a_typed_error() {
    let case = Case::new("naive", serde_json::json!({}));
    let run = saved_run(&case);
    let mut s = resume_from(&case, run.path(), &latest(run.path())).unwrap();
    let b = crate::common::fixture_benchmark(3);
    // The checkpointed run's first call was train(experience 0); this one evaluates first.
    let err = s.eval(&b.test_stream).unwrap_err();
    assert!(matches!(err, ClError::ResumeMismatch { .. }), "{err}");
}

#[test]
fn a_run_whose_loss_diverged_to_nan_still_checkpoints_and_resumes_exactly() {
    let stream = crate::common::generated_stream("train", 3, 24);
    let build = |dir: &Path, resume: bool| {
        let mut b = Strategy::builder(crate::common::tiny_mlp(6), OptimizerSpec::sgd(1e30), cl::default_device())
            .non_finite_loss(NonFiniteLoss::Ignore)
            .train_mb_size(8)
            .seed(2)
            .plugin(CheckpointPlugin::new(CheckpointConfig::new(dir).with_keep_last(10)).unwrap());
        if resume {
            b = b.resume_latest(dir);
        }
        b.build().unwrap()
    };
    let full_dir = tempfile::tempdir().unwrap();
    let mut full = build(full_dir.path(), false);
    let mut expected = Vec::new();
    for exp in stream.iter() {
        expected.push(bits(full.train(exp).unwrap()));
    }
    assert!(
        expected.last().unwrap().values().any(|b| f64::from_bits(*b).is_nan()),
        "the loss diverged: {:?}",
        expected.last()
    );
    // Resume from the checkpoint after the second experience (NaN metrics inside).
    let dir = tempfile::tempdir().unwrap();
    let mut first = build(dir.path(), false);
    for exp in stream.iter().take(2) {
        first.train(exp).unwrap();
    }
    drop(first);
    let mut resumed = build(dir.path(), true);
    let got: Vec<_> = stream.iter().map(|exp| bits(resumed.train(exp).unwrap())).collect();
    assert_eq!(got, expected);
    assert!(weight_bits(resumed.model()) == weight_bits(full.model()));
}
