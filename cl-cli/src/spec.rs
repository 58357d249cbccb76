//! [`RunSpec`]: one run as data — benchmark, model, strategy, extra plugins, optimizer, protocol,
//! evaluation, seed, device, checkpointing — read from a TOML or JSON file.
//!
//! ```toml
//! seed = 1
//! [benchmark]
//! type = "split_fmnist"
//! n_experiences = 5
//! [model]
//! type = "simple_mlp"
//! [strategy]
//! name = "ewc"
//! config = { ewc_lambda = 50.0 }
//! [optimizer]
//! type = "sgd"
//! lr = 0.01
//! momentum = 0.9
//! [protocol]
//! train_epochs = 1
//! train_mb_size = 128
//! ```
//!
//! Every section is a configuration of the library (`BenchmarkConfig`, `ModelConfig`,
//! `StrategyConfig`, `PluginConfig`, `OptimizerSpec`, `EvaluationConfig`), with the same keys and
//! defaults; unknown keys are errors.

use std::collections::BTreeMap;
use std::path::Path;

use cl::benchmarks::{BenchmarkConfig, OnlineStreamConfig};
use cl::core::config::{Validate, rule};
use cl::core::{NonFiniteLoss, OptimizerSpec, PeriodicEval, TrainingConfig};
use cl::device::DeviceChoice;
use cl::metrics::EvaluationConfig;
use cl::models::ModelConfig;
use cl::plugins::PluginConfig;
use cl::strategies::StrategyConfig;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{CliError, Result};

/// One run (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// Names for tables: `strategy` and `benchmark` (defaults: the strategy's and the
    /// benchmark's names), and one per axis of the grid that made the run. Not part of the
    /// run's id: two runs that differ only in labels are the same run.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The run's seed: the benchmark's seed (class order, permutations), the model's initial
    /// weights and the loop's seed (data order, dropout, plugins' draws). Default 0.
    #[serde(default)]
    pub seed: u64,
    /// The device (`flex`, `ndarray`, `libtorch-cpu`, `cuda:N`, `mps`); the build's default
    /// backend when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The benchmark (`type` and its configuration). Its own `seed` is replaced by the run's.
    pub benchmark: BenchmarkConfig,
    /// The model (`type` and its configuration).
    pub model: ModelConfig,
    /// The strategy (`name` and its `config`).
    pub strategy: StrategyConfig,
    /// Plugins added to the strategy's own, in order (`[[plugins]]`, each `name` and `config`).
    #[serde(default)]
    pub plugins: Vec<PluginConfig>,
    /// The optimizer (`type = "sgd" | "adam" | "adamw"` and its hyper-parameters).
    pub optimizer: OptimizerSpec,
    /// Epochs, batch sizes, periodic evaluation, the streams evaluated after each experience.
    #[serde(default)]
    pub protocol: ProtocolConfig,
    /// Metrics and loggers (Avalanche's default evaluator when left out: accuracy and loss).
    /// Relative logger paths are inside the run directory.
    #[serde(default)]
    pub evaluation: EvaluationConfig,
    /// Checkpoints in the run directory (on by default: after every experience, the last two
    /// kept).
    #[serde(default)]
    pub checkpoint: CheckpointSpec,
}

/// A stream evaluated after each training experience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalStream {
    /// The test stream (always evaluated: the accuracy matrix comes from it).
    Test,
    /// The training stream.
    Train,
}

/// The protocol of a run: the loop's settings (Avalanche's defaults) and what is evaluated.
/// JointTraining trains once on the whole stream and is evaluated once; every other strategy
/// trains on each experience in turn and is evaluated after each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProtocolConfig {
    /// Epochs per experience (default 1).
    pub train_epochs: usize,
    /// Training mini-batch size (Avalanche's default 1).
    pub train_mb_size: usize,
    /// Evaluation mini-batch size (default: `train_mb_size`).
    pub eval_mb_size: Option<usize>,
    /// Periodic evaluation on the test stream during training (default never).
    pub periodic_eval: PeriodicEval,
    /// Whether the optimizer's state is reset before each experience (default `false`).
    pub reset_optimizer_state: bool,
    /// The streams evaluated after each experience (default `["test"]`; `test` is always
    /// evaluated).
    pub eval_streams: Vec<EvalStream>,
    /// What a NaN or infinite training loss does: `error` (default: the run fails naming where),
    /// `skip_batch`, `stop_experience` or `ignore` (Avalanche's behaviour).
    pub non_finite_loss: NonFiniteLoss,
    /// The online protocol (Avalanche 0.6's `split_online_stream` examples): each training
    /// experience is cut into sub-experiences of `experience_size` samples
    /// ([`split_online_experience`](cl::benchmarks::split_online_experience)) trained on in
    /// one `train` call — every strategy's per-experience callbacks run on each sub-experience
    /// — and the evaluation runs at the original experience boundaries. The shuffle's `seed` is
    /// replaced by the run's, mixed with the experience's index; checkpoints are written at the
    /// end of each original experience. Default none: the batch protocol.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online: Option<OnlineStreamConfig>,
}

impl Default for ProtocolConfig {
    fn default() -> Self {
        let t = TrainingConfig::default();
        Self {
            train_epochs: t.train_epochs,
            train_mb_size: t.train_mb_size,
            eval_mb_size: t.eval_mb_size,
            periodic_eval: t.periodic_eval,
            reset_optimizer_state: t.reset_optimizer_state,
            eval_streams: vec![EvalStream::Test],
            non_finite_loss: t.non_finite_loss,
            online: None,
        }
    }
}

impl ProtocolConfig {
    /// The loop's settings with `seed`.
    pub fn training_config(&self, seed: u64) -> TrainingConfig {
        TrainingConfig {
            train_mb_size: self.train_mb_size,
            train_epochs: self.train_epochs,
            eval_mb_size: self.eval_mb_size,
            periodic_eval: self.periodic_eval,
            seed,
            reset_optimizer_state: self.reset_optimizer_state,
            non_finite_loss: self.non_finite_loss,
        }
    }
}

/// Checkpoints of a run, written into `checkpoints/` of its run directory; an interrupted run
/// resumes from the newest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckpointSpec {
    /// Whether to checkpoint at all (default `true`).
    pub enabled: bool,
    /// A checkpoint after every `every_experiences` training experiences (default 1).
    pub every_experiences: usize,
    /// How many checkpoints to keep (default 2).
    pub keep_last: usize,
}

impl Default for CheckpointSpec {
    fn default() -> Self {
        Self { enabled: true, every_experiences: 1, keep_last: 2 }
    }
}

impl Validate for RunSpec {
    /// The rules of every section, plus: the device is a known name; the protocol's loop settings.
    fn validate(&self) -> cl::core::Result<()> {
        self.benchmark.validate()?;
        self.model.validate()?;
        self.strategy.validate()?;
        self.plugins.iter().try_for_each(Validate::validate)?;
        self.optimizer.validate()?;
        self.evaluation.validate()?;
        let training = self.protocol.training_config(self.seed);
        let broken = training.validate_rule();
        rule("ProtocolConfig", broken.unwrap_or("protocol"), broken.is_none(), || {
            format!(
                "the protocol breaks the loop's rule `{}` (batch sizes and epochs must be at least 1, a periodic \
                 evaluation's period at least 1)",
                broken.unwrap_or_default()
            )
        })?;
        if let Some(online) = &self.protocol.online {
            online.validate()?;
            rule(
                "ProtocolConfig",
                "online_not_joint",
                !matches!(self.strategy, StrategyConfig::JointTraining(_)),
                || {
                    "JointTraining trains once on the whole stream; the online protocol (protocol.online) needs a \
                 strategy that trains experience by experience: remove protocol.online or choose another strategy"
                        .into()
                },
            )?;
        }
        if let Some(device) = &self.device {
            let parsed = device.parse::<DeviceChoice>();
            rule("RunSpec", "device_known", parsed.is_ok(), || {
                parsed.err().map(|e| e.to_string()).unwrap_or_default()
            })?;
        }
        rule("CheckpointSpec", "every_experiences_positive", self.checkpoint.every_experiences > 0, || {
            "checkpoint.every_experiences must be at least 1 (or enabled = false)".into()
        })?;
        rule("CheckpointSpec", "keep_last_positive", self.checkpoint.keep_last > 0, || {
            "checkpoint.keep_last must be at least 1 (or enabled = false)".into()
        })
    }
}

/// The revision of what the benchmark generators build from the same configuration, hashed
/// into run ids: 2 since experiences hold their samples in Avalanche's class-grouped order
/// (issue 20; 1 was the file order).
pub const DATA_REVISION: u32 = 2;

impl RunSpec {
    /// The spec as run: the benchmark's seed set to the run's seed, the labels `strategy` and
    /// `benchmark` filled in.
    pub fn resolved(mut self) -> Self {
        let seed = self.seed;
        self.benchmark = set_benchmark_seed(self.benchmark, seed);
        self.labels.entry("strategy".into()).or_insert_with(|| self.strategy.name().to_string());
        self.labels.entry("benchmark".into()).or_insert_with(|| self.benchmark.name().to_string());
        self
    }

    /// The strategy's label (`labels.strategy`, else its name).
    pub fn strategy_label(&self) -> String {
        self.labels.get("strategy").cloned().unwrap_or_else(|| self.strategy.name().to_string())
    }

    /// The benchmark's label (`labels.benchmark`, else its name).
    pub fn benchmark_label(&self) -> String {
        self.labels.get("benchmark").cloned().unwrap_or_else(|| self.benchmark.name().to_string())
    }

    /// The resolved spec as a JSON value (every default written out).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a run spec serialises to JSON")
    }

    /// The run's id: `<benchmark>-<strategy>-seed<seed>-<hash>`, the hash the first 10 hex digits
    /// of the SHA-256 of the resolved spec (as canonical JSON: sorted keys, every default written
    /// out) without what does not change the numbers — its labels, its checkpoint settings and
    /// the benchmark's `dataset_root` — so that the same run always has the same id and two
    /// different runs never share one. Stable within a version of `cl`: a new configuration
    /// field with a default changes the ids, and so does a change of the data the benchmarks
    /// build ([`DATA_REVISION`]), so that a sweep never resumes a checkpoint made on other data.
    pub fn id(&self) -> String {
        let resolved = self.clone().resolved();
        let mut value = resolved.to_value();
        if let Some(map) = value.as_object_mut() {
            map.insert("data_revision".into(), DATA_REVISION.into());
            map.remove("labels");
            map.remove("checkpoint");
            if let Some(serde_json::Value::Object(benchmark)) = map.get_mut("benchmark") {
                benchmark.remove("dataset_root");
            }
        }
        let digest = Sha256::digest(serde_json::to_string(&value).expect("JSON values serialise").as_bytes());
        let hash: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-seed{}-{hash}",
            slug(&resolved.benchmark_label()),
            slug(&resolved.strategy_label()),
            resolved.seed
        )
    }
}

/// `name` with every character that is not ASCII alphanumeric, `.`, `_` or `-` replaced by `_`
/// (for directory names): `CWR*` → `CWR_`.
pub fn slug(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).collect()
}

fn set_benchmark_seed(benchmark: BenchmarkConfig, seed: u64) -> BenchmarkConfig {
    use BenchmarkConfig as B;
    match benchmark {
        B::SplitMnist(c) => B::SplitMnist(c.with_seed(seed)),
        B::SplitFmnist(c) => B::SplitFmnist(c.with_seed(seed)),
        B::SplitCifar10(c) => B::SplitCifar10(c.with_seed(seed)),
        B::SplitCifar100(c) => B::SplitCifar100(c.with_seed(seed)),
        B::PermutedMnist(c) => B::PermutedMnist(c.with_seed(seed)),
        B::PermutedFmnist(c) => B::PermutedFmnist(c.with_seed(seed)),
        B::RotatedMnist(c) => B::RotatedMnist(c.with_seed(seed)),
        B::RotatedFmnist(c) => B::RotatedFmnist(c.with_seed(seed)),
    }
}

/// The format of a file, from its extension: `.json` is JSON, anything else TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// TOML.
    Toml,
    /// JSON.
    Json,
}

impl Format {
    /// `.json` → JSON, else TOML.
    pub fn of(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("json") => Self::Json,
            _ => Self::Toml,
        }
    }
}

/// Reads a file as text.
pub fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(CliError::io(path))
}

/// Deserialises `T` from `text` in `format`, with the failing key's path and line in the
/// error.
pub fn parse_as<T: serde::de::DeserializeOwned>(text: &str, format: Format, path: &Path) -> Result<T> {
    let error = |key: Option<String>, line: Option<usize>, message: String| CliError::Parse {
        path: path.to_path_buf(),
        key: key.filter(|k| !k.is_empty() && k != "."),
        line,
        message,
    };
    match format {
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let key = e.path().to_string();
                let inner = e.into_inner();
                let line = (inner.line() > 0).then_some(inner.line());
                error(Some(key), line, strip_position(&inner.to_string()))
            })
        }
        Format::Toml => {
            let de = toml::Deserializer::parse(text).map_err(|e| {
                let line = e.span().map(|s| line_of(text, s.start));
                error(None, line, e.message().to_string())
            })?;
            serde_path_to_error::deserialize(de).map_err(|e| {
                let key = e.path().to_string();
                let inner = e.into_inner();
                let line = inner.span().map(|s| line_of(text, s.start));
                error(Some(key), line, inner.message().to_string())
            })
        }
    }
}

/// A generic value from `text` (TOML converted to JSON), with the line of a syntax error.
pub fn parse_value(text: &str, format: Format, path: &Path) -> Result<serde_json::Value> {
    parse_as(text, format, path)
}

/// serde_json's message without its ` at line L column C` tail (the line is reported apart).
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// The 1-based line of byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Reads, parses and validates a spec file; the spec returned is [`resolved`](RunSpec::resolved).
pub fn load_spec(path: &Path) -> Result<RunSpec> {
    let text = read_text(path)?;
    let value = parse_value(&text, Format::of(path), path)?;
    let spec = deserialize_spec(value, path, Some(&text), None)?;
    check_spec(spec, path, None)
}

/// Validates `spec` (an error naming `path` and, from a grid, the run) and resolves it.
///
/// A permutations file of a permuted benchmark is read here (relative to `path`'s directory)
/// and recorded as its lists: the run's id and `spec.json` are then the permutations
/// themselves, and a missing or bad file is an error before any run starts.
pub fn check_spec(mut spec: RunSpec, path: &Path, run: Option<String>) -> Result<RunSpec> {
    let invalid = |source| CliError::Invalid { path: path.to_path_buf(), run: run.clone(), source: Box::new(source) };
    if let BenchmarkConfig::PermutedMnist(c) | BenchmarkConfig::PermutedFmnist(c) = &mut spec.benchmark {
        c.inline_permutations(path.parent().unwrap_or(Path::new("."))).map_err(invalid)?;
    }
    spec.validate().map_err(invalid)?;
    Ok(spec.resolved())
}

/// A spec from a JSON value (a grid's expanded run, or a file's contents): `config` may be left
/// out of the strategy and of plugins that have nothing to set; the failing key's path (and its
/// line in `text`, the file it came from) in the error.
pub fn deserialize_spec(
    mut value: serde_json::Value,
    path: &Path,
    text: Option<&str>,
    run: Option<&str>,
) -> Result<RunSpec> {
    normalise(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let key = e.path().to_string();
        let message = e.into_inner().to_string();
        let line = text.and_then(|t| locate(t, &key, &message));
        CliError::Parse {
            path: path.to_path_buf(),
            key: Some(key).filter(|k| k != "."),
            line,
            message: match run {
                Some(run) => format!("{message} (run {run})"),
                None => message,
            },
        }
    })
}

/// A spec from a grid's expanded run, validated and resolved.
pub fn spec_from_value(value: serde_json::Value, path: &Path, text: Option<&str>, run: &str) -> Result<RunSpec> {
    let spec = deserialize_spec(value, path, text, Some(run))?;
    check_spec(spec, path, Some(run.to_string()))
}

/// The placeholder of the run's seed: a string `"${seed}"` anywhere in a spec (or a grid)
/// becomes the run's seed (e.g. GDumb's `config = { mem_size = 500, seed = "${seed}" }`).
pub const SEED_PLACEHOLDER: &str = "${seed}";

/// Replaces every string [`SEED_PLACEHOLDER`] in `value` by `seed`.
fn substitute_seed(value: &mut serde_json::Value, seed: &serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(s) if s == SEED_PLACEHOLDER => *value = seed.clone(),
        Value::Array(items) => items.iter_mut().for_each(|v| substitute_seed(v, seed)),
        Value::Object(map) => map.values_mut().for_each(|v| substitute_seed(v, seed)),
        _ => {}
    }
}

/// Adds `config = {}` to the strategy and to plugins written with their name only; gives the
/// model the run's seed when it has none and has weights (its initial weights then follow the
/// run's seed);
/// replaces [`SEED_PLACEHOLDER`] by the run's seed.
fn normalise(value: &mut serde_json::Value) {
    let seed = value.get("seed").cloned().unwrap_or(serde_json::Value::from(0));
    substitute_seed(value, &seed);
    // `flatten` has no weights, hence no seed.
    if let Some(serde_json::Value::Object(model)) = value.get_mut("model")
        && !model.contains_key("seed")
        && model.get("type").and_then(serde_json::Value::as_str) != Some("flatten")
    {
        model.insert("seed".into(), seed.clone());
    }
    let add_config = |v: &mut serde_json::Value| {
        if let Some(map) = v.as_object_mut()
            && map.contains_key("name")
            && !map.contains_key("config")
        {
            map.insert("config".into(), serde_json::Value::Object(Default::default()));
        }
    };
    if let Some(strategy) = value.get_mut("strategy") {
        add_config(strategy);
    }
    if let Some(serde_json::Value::Array(plugins)) = value.get_mut("plugins") {
        plugins.iter_mut().for_each(add_config);
    }
}

/// The line of the key an error is about: the key path followed section by section through
/// `text` (each part searched from the line of the previous one), ending at the name in
/// backquotes of an unknown field or variant, else at the path's last part.
fn locate(text: &str, key: &str, message: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().map(|l| l.split('#').next().unwrap_or("")).collect();
    let find = |needle: &str, from: usize| -> Option<usize> {
        let patterns = [
            format!("{needle} ="),
            format!("{needle}="),
            format!("\"{needle}\""),
            format!(".{needle}]"),
            format!("[{needle}]"),
            format!("[[{needle}]]"),
        ];
        (from..lines.len()).find(|&i| {
            let l = lines[i];
            patterns.iter().any(|p| l.contains(p.as_str())) || l.trim_start().starts_with(&format!("{needle} "))
        })
    };
    let parts: Vec<&str> = key.split('.').filter(|p| !p.is_empty() && !p.starts_with('[') && *p != "?").collect();
    let mut at = 0;
    for part in &parts {
        if let Some(i) = find(part, at) {
            at = i;
        }
    }
    let quoted = message.split('`').nth(1).filter(|_| message.contains("unknown"));
    match quoted {
        Some(name) => find(name, at).or_else(|| find(name, 0)),
        None => parts.last().and_then(|last| find(last, at).or_else(|| find(last, 0))),
    }
    .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
seed = 3
[benchmark]
type = "split_fmnist"
n_experiences = 5
[model]
type = "simple_mlp"
[strategy]
name = "ewc"
config = { ewc_lambda = 50.0 }
[optimizer]
type = "sgd"
lr = 0.01
momentum = 0.9
[protocol]
train_mb_size = 128
"#;

    fn parse(text: &str) -> Result<RunSpec> {
        let path = Path::new("spec.toml");
        let value = parse_value(text, Format::Toml, path)?;
        check_spec(deserialize_spec(value, path, Some(text), None)?, path, None)
    }

    #[test]
    fn a_permutations_file_is_read_relative_to_the_spec_and_recorded_as_lists() {
        let dir = tempfile::tempdir().unwrap();
        let perms: Vec<Vec<usize>> = vec![(0..784).collect(), (0..784).rev().collect()];
        std::fs::create_dir(dir.path().join("specs")).unwrap();
        std::fs::write(dir.path().join("specs/perms.json"), serde_json::to_string(&perms).unwrap()).unwrap();
        let text = SPEC.replace(
            "type = \"split_fmnist\"\nn_experiences = 5",
            "type = \"permuted_fmnist\"\nn_experiences = 2\npermutations = { file = \"perms.json\" }",
        );
        let path = dir.path().join("specs/spec.toml");
        std::fs::write(&path, &text).unwrap();
        let spec = load_spec(&path).unwrap();
        let BenchmarkConfig::PermutedFmnist(c) = &spec.benchmark else { panic!("{:?}", spec.benchmark) };
        assert_eq!(c.permutations, Some(cl::benchmarks::classic::Permutations::Lists(perms.clone())));
        // Same permutations inline: same run.
        let inline = SPEC.replace(
            "type = \"split_fmnist\"\nn_experiences = 5",
            &format!("type = \"permuted_fmnist\"\nn_experiences = 2\npermutations = {:?}", perms),
        );
        assert_eq!(parse(&inline).unwrap().id(), spec.id());
        // Other contents in the file: another run.
        std::fs::write(dir.path().join("specs/perms.json"), serde_json::to_string(&[&perms[1], &perms[0]]).unwrap())
            .unwrap();
        assert_ne!(load_spec(&path).unwrap().id(), spec.id());
        // A missing file is an error when the spec is loaded.
        std::fs::remove_file(dir.path().join("specs/perms.json")).unwrap();
        let err = load_spec(&path).unwrap_err().to_string();
        assert!(err.contains("cannot read the permutations file") && err.contains("perms.json"), "{err}");
    }

    #[test]
    fn a_spec_resolves_its_seed_and_labels_and_round_trips() {
        let spec = parse(SPEC).unwrap();
        assert_eq!(spec.seed, 3);
        assert_eq!(spec.labels["strategy"], "ewc");
        assert_eq!(spec.labels["benchmark"], "split_fmnist");
        match &spec.benchmark {
            BenchmarkConfig::SplitFmnist(c) => assert_eq!(c.seed, 3),
            other => panic!("{other:?}"),
        }
        let json = serde_json::to_string(&spec).unwrap();
        let back: RunSpec = parse_as(&json, Format::Json, Path::new("spec.json")).unwrap();
        // `config` may be left out where there is nothing to set.
        let naive = parse(&SPEC.replace("name = \"ewc\"\nconfig = { ewc_lambda = 50.0 }", "name = \"naive\"")).unwrap();
        assert_eq!(naive.strategy.name(), "naive");
        assert_eq!(back, spec);
        assert_eq!(back.id(), spec.id());
    }

    #[test]
    fn the_id_is_stable_ignores_labels_and_defaults_and_changes_with_the_run() {
        let spec = parse(SPEC).unwrap();
        let id = spec.id();
        assert!(id.starts_with("split_fmnist-ewc-seed3-"), "{id}");
        // Writing a default out does not change the run.
        let explicit = parse(&SPEC.replace("train_mb_size = 128", "train_mb_size = 128\ntrain_epochs = 1")).unwrap();
        assert_eq!(explicit.id(), id);
        // Labels do not either (only the readable prefix).
        let mut labelled = spec.clone();
        labelled.labels.insert("lr".into(), "0.01".into());
        assert_eq!(labelled.id(), id);
        // Anything that changes the run changes the hash.
        let other = parse(&SPEC.replace("ewc_lambda = 50.0", "ewc_lambda = 51.0")).unwrap();
        assert_ne!(other.id(), id);
        assert_eq!(slug("CWR*"), "CWR_");
    }

    #[test]
    fn bad_specs_name_the_key_the_line_and_the_accepted_values() {
        let err = parse(&SPEC.replace("name = \"ewc\"", "name = \"ewcc\"")).unwrap_err().to_string();
        assert!(err.contains("spec.toml") && err.contains("ewcc") && err.contains("synaptic_intelligence"), "{err}");
        assert!(err.contains("line 9"), "{err}");

        let err = parse(&SPEC.replace("ewc_lambda = 50.0", "ewc_lamda = 50.0")).unwrap_err().to_string();
        assert!(err.contains("ewc_lamda") && err.contains("ewc_lambda") && err.contains("strategy"), "{err}");

        let err = parse(&SPEC.replace("train_mb_size = 128", "train_mb_size = \"128\"")).unwrap_err().to_string();
        assert!(err.contains("key `protocol.train_mb_size`") && err.contains("line 16"), "{err}");

        let err = parse(&SPEC.replace("type = \"split_fmnist\"", "type = \"split_fminst\"")).unwrap_err().to_string();
        assert!(err.contains("split_fminst") && err.contains("permuted_fmnist"), "{err}");

        let err = parse(&format!("seeed = 2\n{SPEC}")).unwrap_err().to_string();
        assert!(err.contains("seeed") && err.contains("`seed`") && err.contains("line 1"), "{err}");

        // A rule of a configuration: named with its fix.
        let err = parse(&SPEC.replace("ewc_lambda = 50.0", "ewc_lambda = -1.0")).unwrap_err();
        assert!(matches!(&err, CliError::Invalid { source, .. } if source.rule().is_some()), "{err}");

        let err = parse(&SPEC.replace("train_mb_size = 128", "train_mb_size = 0")).unwrap_err();
        assert!(err.to_string().contains("train_mb_size_positive"), "{err}");

        let err = parse(&format!("device = \"cuda:x\"\n{SPEC}")).unwrap_err().to_string();
        assert!(err.contains("cuda:x"), "{err}");

        // A key inside a section is found in that section, not at a same-named key above.
        let err = parse(&format!("{SPEC}[labels]\nseed = 3\n")).unwrap_err().to_string();
        assert!(err.contains("key `labels.seed`") && err.contains("line 18"), "{err}");

        let err = parse("seed = [").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}
