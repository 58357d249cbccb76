//! Typed errors of the core crate.

use std::path::PathBuf;

/// Result alias used throughout `cl-core`.
pub type Result<T, E = ClError> = std::result::Result<T, E>;

/// Everything that can go wrong in the core data model and training loop.
///
/// Each variant names the problem and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum ClError {
    /// A configuration breaks one of its validation rules (see [`crate::config`]).
    #[error("invalid {config}: rule `{rule}`: {reason}")]
    InvalidConfig {
        /// The configuration's type (`EwcConfig`, ...), or `argument` for a plain argument.
        config: &'static str,
        /// The rule that failed (`ewc_lambda_non_negative`, ...); for a plain argument, its name.
        rule: &'static str,
        /// Why the value is rejected and what is accepted.
        reason: String,
    },
    /// A configuration file could not be parsed.
    #[error("cannot read {config} from {format}: {reason}")]
    ConfigParse {
        /// `JSON` or `TOML`.
        format: &'static str,
        /// The configuration's type.
        config: &'static str,
        /// The parser's message (line, column, unknown or missing field).
        reason: String,
    },
    /// A plugin used a request of the strategy state for a part it did not declare in
    /// [`Plugin::writes`](crate::strategy::Plugin::writes).
    #[error(
        "plugin `{plugin}` changed {part} without declaring it: return `StatePart::{variant}` from its \
         `Plugin::writes` (so that conflicting plugins are rejected when the strategy is built)"
    )]
    UndeclaredWrite {
        /// The plugin's name.
        plugin: String,
        /// What it changed.
        part: &'static str,
        /// The `StatePart` variant to declare.
        variant: &'static str,
    },
    /// A training loss that is NaN or infinite (with [`NonFiniteLoss::Error`](crate::NonFiniteLoss),
    /// the default): the model diverged.
    #[error(
        "the training loss is {loss} at experience {experience}, epoch {epoch}, iteration {iteration} (learning rate \
         {lr}): the model diverged. Lower the learning rate or the regularisation strength (λ); or set \
         TrainingConfig::non_finite_loss to skip_batch, stop_experience or ignore"
    )]
    NonFiniteLoss {
        /// The loss value (NaN or ±inf).
        loss: f64,
        /// The training experience (`current_experience`).
        experience: usize,
        /// The epoch within the experience (from 0).
        epoch: u64,
        /// The iteration within the epoch (from 0).
        iteration: u64,
        /// The learning rate of the iteration.
        lr: f64,
    },
    /// A learning rate that is not a finite number `>= 0` (from a scheduler or a plugin).
    #[error("learning rate {lr} rejected (from {origin}): it must be a finite number >= 0")]
    InvalidLearningRate {
        /// The value.
        lr: f64,
        /// Who set it.
        origin: String,
    },
    /// A sample index is past the end of a dataset.
    #[error("index {index} is out of bounds for a dataset of {len} samples")]
    IndexOutOfBounds {
        /// The index asked for.
        index: usize,
        /// The dataset length.
        len: usize,
    },
    /// Buffers handed to a dataset constructor have inconsistent lengths.
    #[error("dataset buffers disagree: {0}")]
    DatasetLayout(String),
    /// Two datasets with different sample shapes were combined.
    #[error("cannot combine datasets with sample shapes {left:?} and {right:?}")]
    SampleShapeMismatch {
        /// Shape of the first dataset's samples.
        left: Vec<usize>,
        /// Shape of the second dataset's samples.
        right: Vec<usize>,
    },
    /// The model produces fewer outputs than the classes of the data need.
    #[error(
        "the model outputs {model_outputs} classes but experience {experience} of stream `{stream}` \
         needs {needed} (the benchmark has {benchmark_classes} class labels; the experience's largest \
         is {max_class}): build the model with at least {needed} outputs \
         (e.g. SimpleMlpConfig::new().with_num_classes({needed}))"
    )]
    ModelOutputMismatch {
        /// Outputs of the model's classifier.
        model_outputs: usize,
        /// Largest class label in the experience.
        max_class: u32,
        /// Number of outputs needed.
        needed: usize,
        /// Number of classes of the whole benchmark.
        benchmark_classes: usize,
        /// The experience's index.
        experience: usize,
        /// The experience's stream name.
        stream: String,
    },
    /// The model expects inputs of another size than the samples have.
    #[error(
        "the model expects {model_input} input features but samples of experience {experience} have \
         shape {sample_shape:?} ({sample_len} values): build the model with input_size = {sample_len}"
    )]
    InputShapeMismatch {
        /// Input features the model expects.
        model_input: usize,
        /// The samples' shape.
        sample_shape: Vec<usize>,
        /// Values per sample.
        sample_len: usize,
        /// The experience's index.
        experience: usize,
    },
    /// An experience holds a class label beyond the number of classes of its benchmark (a
    /// dynamic classifier would grow to it).
    #[error(
        "experience {experience} holds class label {class} but its benchmark has {n_classes} classes \
         (labels 0..{n_classes}): check the labels or the benchmark's n_classes"
    )]
    ClassOutOfRange {
        /// The class label.
        class: u32,
        /// The benchmark's number of classes.
        n_classes: usize,
        /// The experience's index.
        experience: usize,
    },
    /// A batch holds a task label the (multi-head) model has no head for.
    #[error(
        "no head for task label {task} (heads exist for tasks {known:?}): run model adaptation on an \
         experience of that task first (the strategies do it before training and evaluation)"
    )]
    UnknownTask {
        /// The task label.
        task: u32,
        /// The task labels that have a head.
        known: Vec<u32>,
    },
    /// The samples' shape does not fit the model (e.g. 3-channel images for a 1-channel CNN).
    #[error("experience {experience}: samples of shape {sample_shape:?} do not fit the model: {expected}")]
    ModelInputMismatch {
        /// What the model expects, and the fix.
        expected: String,
        /// The samples' shape.
        sample_shape: Vec<usize>,
        /// The experience's index.
        experience: usize,
    },
    /// A batch holds a class label the model has no output for.
    #[error("class label {label} in the batch but the model has only {outputs} outputs")]
    LabelOutOfRange {
        /// The label.
        label: u32,
        /// The model's outputs.
        outputs: usize,
    },
    /// A step of the template ran while a piece of state it needs was not set.
    #[error("strategy state `{0}` is not set at this point of the loop (a plugin or an overridden step removed it?)")]
    MissingState(&'static str),
    /// A training or evaluation call was given no experience.
    #[error("{0} was called with no experience")]
    NoExperience(&'static str),
    /// An experience has no samples.
    #[error("experience {experience} of stream `{stream}` has no samples")]
    EmptyExperience {
        /// The experience's index.
        experience: usize,
        /// The stream it comes from.
        stream: String,
    },
    /// Plugins that cannot be combined.
    #[error("incompatible plugins: {0}")]
    IncompatiblePlugins(String),
    /// A plugin failed in one of its callbacks.
    #[error("plugin `{plugin}` failed in `{callback}`: {message}")]
    Plugin {
        /// The plugin's name.
        plugin: String,
        /// The callback that failed.
        callback: &'static str,
        /// What went wrong.
        message: String,
    },
    /// A strategy that may be trained only once was trained again.
    #[error("{0}")]
    InvalidUse(String),
    /// A component of the run keeps state but cannot save it, so a checkpoint would be partial:
    /// `save_checkpoint` refuses rather than write it.
    #[error(
        "cannot checkpoint {component}: it keeps state but does not implement `{hook}`; implement it \
         (save everything that influences later numbers, see the README's \"Checkpoint and resume\") \
         or leave the component out of a run that needs checkpoints"
    )]
    NotCheckpointable {
        /// The component (`plugin \`MyPlugin\``, `transform \`MyTransform\``, ...).
        component: String,
        /// The method to implement (`Plugin::save_state`/`Plugin::load_state`, ...).
        hook: &'static str,
    },
    /// A checkpoint file is unreadable: truncated, corrupt (checksum mismatch), or not a
    /// checkpoint at all.
    #[error(
        "checkpoint {path} is {problem}; it cannot be used: resume from an earlier checkpoint of the run \
         directory (`Strategy::builder(..).resume_latest(dir)` skips unreadable ones) or start the run afresh"
    )]
    CorruptCheckpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong (`truncated: 120 of 4096 bytes`, `corrupt: checksum mismatch`, ...).
        problem: String,
    },
    /// A checkpoint written by another format version than this library reads.
    #[error(
        "checkpoint {path} has format version {found} (written by cl {writer}); this cl ({library}) reads \
         format version {supported}: resume it with the cl version that wrote it, or start the run afresh"
    )]
    CheckpointVersion {
        /// The file.
        path: PathBuf,
        /// The file's format version.
        found: u32,
        /// The version this library reads.
        supported: u32,
        /// The library version that wrote it.
        writer: String,
        /// This library's version.
        library: String,
    },
    /// A checkpoint taken from a run with another configuration (training settings, optimizer,
    /// plugins, model) than the strategy resuming it.
    #[error(
        "checkpoint {path} belongs to another run: its {what} is {checkpoint}, this strategy's is {current}; \
         build the strategy with the configuration of the run that wrote it (its `config` is in the \
         checkpoint header: `cl_core::checkpoint::read_header`) or start a new run directory"
    )]
    CheckpointMismatch {
        /// The file.
        path: PathBuf,
        /// What differs (`training configuration`, `plugins`, `model`, ...).
        what: String,
        /// The checkpoint's value.
        checkpoint: String,
        /// This strategy's value.
        current: String,
    },
    /// A part of a checkpoint is missing or does not decode (a component's `load_state`).
    #[error("checkpoint entry `{key}` of {component}: {reason}")]
    CheckpointEntry {
        /// The component whose state was read.
        component: String,
        /// The entry.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A resumed strategy was asked to do something else than the run it resumes did next.
    #[error(
        "resumed run diverges from its checkpoint: the checkpointed run's next call was {expected}, this one \
         is {found}; drive the resumed strategy with the same calls, in the same order, as the original run"
    )]
    ResumeMismatch {
        /// What the checkpointed run did.
        expected: String,
        /// What was called.
        found: String,
    },
    /// Reading or writing a file failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl ClError {
    /// A plain argument (not a config field) out of its valid range:
    /// [`ClError::InvalidConfig`] with `config = "argument"` and the argument's name as the rule.
    pub fn config(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidConfig { config: "argument", rule: field, reason: reason.into() }
    }

    /// The name of the failed validation rule, for [`ClError::InvalidConfig`].
    pub fn rule(&self) -> Option<&'static str> {
        match self {
            Self::InvalidConfig { rule, .. } => Some(rule),
            _ => None,
        }
    }
}
