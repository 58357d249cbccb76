//! [`EvaluationConfig`]: the evaluator as data — its metric families with their options
//! ([`MetricConfig`]) and its loggers with their paths ([`LoggerConfig`]).

use std::path::{Path, PathBuf};

use cl_core::config::{Validate, rule};
use cl_core::evaluation::{
    AccuracyConfig, AccuracyMetrics, EvaluationPlugin, Granularity, Logger, Metric, TopkAccuracy, TopkConfig,
};
use cl_core::{ClError, Result};
use serde::{Deserialize, Serialize};

use crate::loggers::{CsvLogger, InteractiveLogger, JsonLinesLogger, TensorBoardLogger, TextLogger};
use crate::metrics::{
    AccuracyMatrixMetric, Amca, AmcaConfig, ClassAccuracy, ClassAccuracyConfig, ConfusionMatrixConfig,
    ConfusionMatrixMetric, CpuUsage, CpuUsageConfig, Forgetting, ForwardTransfer, MacConfig, MacMetric, MaxRam,
    MaxRamConfig, ModelSize, Timing, TimingConfig, TransferConfig,
};

/// One metric family with its options: Avalanche's `*_metrics` helpers. Serialised with a
/// `kind` field (`{"kind": "forgetting", "experience": true, "stream": false}`; in TOML an
/// entry of `[[metrics]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MetricConfig {
    /// Top-1 accuracy and loss ([`AccuracyMetrics`]: `accuracy_metrics` and `loss_metrics`).
    Accuracy(AccuracyConfig),
    /// Top-k accuracy ([`TopkAccuracy`]: `topk_acc_metrics`).
    Topk(TopkConfig),
    /// Per-class accuracy ([`ClassAccuracy`]: `class_accuracy_metrics`).
    ClassAccuracy(ClassAccuracyConfig),
    /// Average mean-class accuracy ([`Amca`]: `amca_metrics`).
    Amca(AmcaConfig),
    /// Forgetting ([`Forgetting`]: `forgetting_metrics`).
    Forgetting(TransferConfig),
    /// Backward transfer ([`Forgetting::bwt`]: `bwt_metrics`).
    Bwt(TransferConfig),
    /// Forward transfer ([`ForwardTransfer`]: `forward_transfer_metrics`).
    ForwardTransfer(TransferConfig),
    /// The accuracy matrix ([`AccuracyMatrixMetric`]: `accuracy_matrix_metrics`).
    AccuracyMatrix,
    /// The stream confusion matrix ([`ConfusionMatrixMetric`]: `confusion_matrix_metrics`).
    ConfusionMatrix(ConfusionMatrixConfig),
    /// Wall-clock time ([`Timing`]: `timing_metrics`).
    Timing(TimingConfig),
    /// Peak resident memory ([`MaxRam`]: `ram_usage_metrics`).
    MaxRam(MaxRamConfig),
    /// CPU usage ([`CpuUsage`]: `cpu_usage_metrics`).
    CpuUsage(CpuUsageConfig),
    /// Parameter count and bytes ([`ModelSize`]; not in Avalanche).
    ModelSize,
    /// Multiply-accumulates of a forward pass ([`MacMetric`]: `MAC_metrics`).
    Mac(MacConfig),
}

impl MetricConfig {
    /// The metric; an error if the configuration breaks a rule.
    pub fn build(&self) -> Result<Box<dyn Metric>> {
        Ok(match self {
            Self::Accuracy(c) => Box::new(AccuracyMetrics::new(*c)),
            Self::Topk(c) => Box::new(TopkAccuracy::new(*c)?),
            Self::ClassAccuracy(c) => Box::new(ClassAccuracy::new(*c)?),
            Self::Amca(c) => Box::new(Amca::new(c.clone())?),
            Self::Forgetting(c) => Box::new(Forgetting::new(*c)),
            Self::Bwt(c) => Box::new(Forgetting::bwt(*c)),
            Self::ForwardTransfer(c) => Box::new(ForwardTransfer::new(*c)),
            Self::AccuracyMatrix => Box::new(AccuracyMatrixMetric::new()),
            Self::ConfusionMatrix(c) => Box::new(ConfusionMatrixMetric::new(*c)?),
            Self::Timing(c) => Box::new(Timing::new(*c)),
            Self::MaxRam(c) => Box::new(MaxRam::new(*c)?),
            Self::CpuUsage(c) => Box::new(CpuUsage::new(*c)),
            Self::ModelSize => Box::new(ModelSize::new()),
            Self::Mac(c) => Box::new(MacMetric::new(c.clone())?),
        })
    }
}

impl Validate for MetricConfig {
    /// The rules of the family's configuration.
    fn validate(&self) -> Result<()> {
        match self {
            Self::Accuracy(c) => c.validate(),
            Self::Topk(c) => c.validate(),
            Self::ClassAccuracy(c) => c.validate(),
            Self::Amca(c) => c.validate(),
            Self::Forgetting(c) | Self::Bwt(c) | Self::ForwardTransfer(c) => c.validate(),
            Self::ConfusionMatrix(c) => c.validate(),
            Self::Timing(c) => c.validate(),
            Self::MaxRam(c) => c.validate(),
            Self::CpuUsage(c) => c.validate(),
            Self::Mac(c) => c.validate(),
            Self::AccuracyMatrix | Self::ModelSize => Ok(()),
        }
    }
}

fn csv_folder() -> PathBuf {
    PathBuf::from("csvlogs")
}

fn tb_folder() -> PathBuf {
    PathBuf::from("tb_data")
}

/// One logger with where it writes: Avalanche's loggers. Serialised with a `kind` field
/// (`{"kind": "csv", "folder": "csvlogs"}`; in TOML an entry of `[[loggers]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LoggerConfig {
    /// [`CsvLogger`]: Avalanche's `CSVLogger(log_folder="csvlogs")`.
    Csv {
        /// The folder of `training_results.csv` and `eval_results.csv` (default `csvlogs`).
        #[serde(default = "csv_folder")]
        folder: PathBuf,
    },
    /// [`JsonLinesLogger`]: every value as a line of JSON (not in Avalanche).
    JsonLines {
        /// The file (required).
        path: PathBuf,
    },
    /// [`TextLogger`]: Avalanche's `TextLogger(file=sys.stdout)`.
    Text {
        /// The file; standard output when left out.
        #[serde(default)]
        file: Option<PathBuf>,
    },
    /// [`InteractiveLogger`]: Avalanche's `InteractiveLogger()` (progress bars on a terminal).
    Interactive,
    /// [`TensorBoardLogger`]: Avalanche's `TensorboardLogger(tb_log_dir="./tb_data")`.
    #[serde(rename = "tensorboard")]
    TensorBoard {
        /// The folder of the event file (default `tb_data`).
        #[serde(default = "tb_folder")]
        folder: PathBuf,
    },
}

impl LoggerConfig {
    /// A CSV logger writing into Avalanche's default folder, `csvlogs`.
    pub fn csv() -> Self {
        Self::Csv { folder: csv_folder() }
    }

    /// A TensorBoard logger writing into Avalanche's default folder, `tb_data`.
    pub fn tensorboard() -> Self {
        Self::TensorBoard { folder: tb_folder() }
    }

    /// The logger: creates its folder and files; an error if the configuration breaks a rule
    /// or a file cannot be created ([`ClError::Io`]).
    pub fn build(&self) -> Result<Box<dyn Logger>> {
        self.validate()?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ClError::Io { path, source }
        };
        Ok(match self {
            Self::Csv { folder } => Box::new(CsvLogger::new(folder).map_err(io(folder))?),
            Self::JsonLines { path } => Box::new(JsonLinesLogger::new(path).map_err(io(path))?),
            Self::Text { file: Some(file) } => Box::new(TextLogger::to_file(file).map_err(io(file))?),
            Self::Text { file: None } => Box::new(TextLogger::stdout()),
            Self::Interactive => Box::new(InteractiveLogger::new()),
            Self::TensorBoard { folder } => Box::new(TensorBoardLogger::new(folder).map_err(io(folder))?),
        })
    }

    /// The files the logger writes (none for standard output); the TensorBoard event file is
    /// named by its folder.
    fn outputs(&self) -> Vec<PathBuf> {
        match self {
            Self::Csv { folder } => vec![folder.join("training_results.csv"), folder.join("eval_results.csv")],
            Self::JsonLines { path } => vec![path.clone()],
            Self::Text { file } => file.iter().cloned().collect(),
            Self::Interactive => Vec::new(),
            Self::TensorBoard { folder } => vec![folder.join("events.out.tfevents")],
        }
    }
}

impl Validate for LoggerConfig {
    /// `csv_folder_not_empty`, `json_lines_path_not_empty`, `text_file_not_empty`,
    /// `tensorboard_folder_not_empty`.
    fn validate(&self) -> Result<()> {
        const C: &str = "LoggerConfig";
        let given = |p: &Path| !p.as_os_str().is_empty();
        match self {
            Self::Csv { folder } => rule(C, "csv_folder_not_empty", given(folder), || {
                "the CSV logger's folder is empty: give a folder (Avalanche's default is `csvlogs`)".into()
            }),
            Self::JsonLines { path } => rule(C, "json_lines_path_not_empty", given(path), || {
                "the JSON lines logger's path is empty: give a file".into()
            }),
            Self::Text { file: Some(file) } => rule(C, "text_file_not_empty", given(file), || {
                "the text logger's file is empty: give a file, or leave it out for standard output".into()
            }),
            Self::Text { file: None } | Self::Interactive => Ok(()),
            Self::TensorBoard { folder } => rule(C, "tensorboard_folder_not_empty", given(folder), || {
                "the TensorBoard logger's folder is empty: give a folder (Avalanche's default is `tb_data`)".into()
            }),
        }
    }
}

/// The evaluator as data (Avalanche's `EvaluationPlugin(*metrics, loggers=[...])`): the metric
/// families with their options and the loggers with their paths. [`build`](Self::build) makes
/// the [`EvaluationPlugin`]; result files can embed the configuration that produced them.
///
/// The default is Avalanche's default evaluator: accuracy and loss per epoch, experience and
/// stream ([`EvaluationPlugin::default`]), without its `InteractiveLogger` (a library does not
/// print unless asked). [`all`](Self::all) is every family ([`all_metrics`]).
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_metrics::{EvaluationConfig, LoggerConfig, MetricConfig, TransferConfig};
/// // EvaluationPlugin(accuracy_metrics(epoch=True, experience=True, stream=True),
/// //                  loss_metrics(...), forgetting_metrics(experience=True), loggers=[CSVLogger()])
/// let toml = r#"
/// [[metrics]]
/// kind = "accuracy"
///
/// [[metrics]]
/// kind = "forgetting"
/// stream = false
///
/// [[loggers]]
/// kind = "csv"
/// "#;
/// let config = EvaluationConfig::from_toml(toml)?;
/// assert_eq!(config.metrics[1], MetricConfig::Forgetting(TransferConfig::default().with_stream(false)));
/// assert_eq!(config.loggers, [LoggerConfig::csv()]);
/// let evaluator = EvaluationConfig::default().build()?;
/// assert_eq!(evaluator.metric_names(), ["Accuracy/Loss"]);
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvaluationConfig {
    /// The metric families, in call order.
    pub metrics: Vec<MetricConfig>,
    /// The loggers, in call order.
    pub loggers: Vec<LoggerConfig>,
}

impl Default for EvaluationConfig {
    fn default() -> Self {
        Self { metrics: vec![MetricConfig::Accuracy(AccuracyConfig::default())], loggers: Vec::new() }
    }
}

impl EvaluationConfig {
    /// Every metric family at its usual granularities, no logger: accuracy and loss (epoch,
    /// running epoch, experience, stream, trained experiences), top-5 accuracy, per-class
    /// accuracy and AMCA, forgetting and BWT, forward transfer, the accuracy matrix, the stream
    /// confusion matrix, timing, peak RAM, CPU usage, model size and MACs (Linear layers; see
    /// [`MacConfig`] for convolutions). No minibatch values (each costs a device → host
    /// transfer per iteration).
    pub fn all() -> Self {
        let no_mb = Granularity { minibatch: false, ..Granularity::ALL };
        let accuracy = AccuracyConfig::default()
            .with_accuracy(no_mb)
            .with_loss(no_mb)
            .with_running_accuracy(true)
            .with_running_loss(true)
            .with_trained_experience(true);
        Self {
            metrics: vec![
                MetricConfig::Accuracy(accuracy),
                MetricConfig::Topk(TopkConfig::new(5).with_granularity(no_mb)),
                MetricConfig::ClassAccuracy(ClassAccuracyConfig::default().with_granularity(no_mb)),
                MetricConfig::Amca(AmcaConfig::default()),
                MetricConfig::Forgetting(TransferConfig::default()),
                MetricConfig::Bwt(TransferConfig::default()),
                MetricConfig::ForwardTransfer(TransferConfig::default()),
                MetricConfig::AccuracyMatrix,
                MetricConfig::ConfusionMatrix(ConfusionMatrixConfig::default()),
                MetricConfig::Timing(TimingConfig::default().with_granularity(no_mb)),
                MetricConfig::MaxRam(MaxRamConfig::default().with_granularity(no_mb)),
                MetricConfig::CpuUsage(CpuUsageConfig::default().with_granularity(no_mb)),
                MetricConfig::ModelSize,
                MetricConfig::Mac(MacConfig::default()),
            ],
            loggers: Vec::new(),
        }
    }

    /// Sets the metric families.
    pub fn with_metrics(mut self, metrics: Vec<MetricConfig>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Sets the loggers.
    pub fn with_loggers(mut self, loggers: Vec<LoggerConfig>) -> Self {
        self.loggers = loggers;
        self
    }

    /// The evaluator: validates the configuration, then builds the metrics and the loggers
    /// (which create their files: [`ClError::Io`] if one cannot be created).
    pub fn build(&self) -> Result<EvaluationPlugin> {
        self.validate()?;
        let metrics = self.metrics.iter().map(MetricConfig::build).collect::<Result<_>>()?;
        let loggers = self.loggers.iter().map(LoggerConfig::build).collect::<Result<_>>()?;
        Ok(EvaluationPlugin::with(metrics, loggers))
    }
}

impl Validate for EvaluationConfig {
    /// The rules of every metric and logger, and `logger_outputs_distinct`.
    fn validate(&self) -> Result<()> {
        self.metrics.iter().try_for_each(Validate::validate)?;
        self.loggers.iter().try_for_each(Validate::validate)?;
        let mut outputs: Vec<PathBuf> = self.loggers.iter().flat_map(LoggerConfig::outputs).collect();
        outputs.sort();
        let twice = outputs.windows(2).find(|w| w[0] == w[1]).map(|w| w[0].clone());
        rule("EvaluationConfig", "logger_outputs_distinct", twice.is_none(), || {
            format!("two loggers write {}: give them different files or folders", twice.unwrap_or_default().display())
        })
    }
}

/// The evaluator of [`EvaluationConfig::all`]: every metric family at its usual granularities,
/// no logger.
pub fn all_metrics() -> EvaluationPlugin {
    EvaluationConfig::all().build().expect("the `all` preset is valid and has no logger")
}
