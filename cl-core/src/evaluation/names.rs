//! [`MetricName`]: the one typed metric name, written and read by the same code.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::callback::MetricResults;

/// The phase a value was measured in: Avalanche's `train_phase` and `eval_phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Training (`train_phase`).
    Train,
    /// Evaluation (`eval_phase`), also inside periodic evaluation.
    Eval,
}

impl Phase {
    /// `Train` while training, `Eval` otherwise.
    pub fn of(training: bool) -> Self {
        if training { Self::Train } else { Self::Eval }
    }

    /// `train` or `eval` (the name part is this followed by `_phase`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Eval => "eval",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The prefix of a name that names neither phase nor stream (Avalanche's accuracy matrix,
/// `EvalStream/Acc_Matrix`: the matrix of the stream just evaluated).
const EVAL_STREAM: &str = "EvalStream";

/// A metric name exactly as Avalanche writes it, split into typed parts.
///
/// The layout (Avalanche's `default_metric_name_template`, and the names of its metrics that
/// do not follow the template):
///
/// ```text
/// <metric>/<phase>_phase/<stream>_stream[/Task<ttt>][/Exp<eee>][/<class>]   most metrics
/// <metric>/<stream>_stream[/Task<ttt>]                                       AMCA (no phase)
/// EvalStream/<metric>                                                        the accuracy matrix
/// ```
///
/// The task label and the experience index are written with at least three digits; the class
/// id (per-class accuracy) as a plain number. [`Display`](fmt::Display) writes a name and
/// [`FromStr`] reads it back ([`MetricNameError`] says what is wrong with a name that does not
/// have the layout); they are inverse for names whose metric and stream are not empty and hold
/// no `/`. Every value the built-in metrics emit has such a name, so readers of a history
/// (the report, the bench) parse names instead of matching strings. Serialised as the string.
///
/// ```
/// use cl_core::evaluation::{MetricName, Phase};
/// let name = MetricName::new("Top1_Acc_Exp", Phase::Eval, "test").with_task(0).with_experience(2);
/// assert_eq!(name.to_string(), "Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp002");
/// assert_eq!("Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp002".parse(), Ok(name));
///
/// let class = "Top1_ClassAcc_Epoch/train_phase/train_stream/Task000/3".parse::<MetricName>().unwrap();
/// assert_eq!((class.metric.as_str(), class.phase, class.class), ("Top1_ClassAcc_Epoch", Some(Phase::Train), Some(3)));
/// assert_eq!(MetricName::accuracy_matrix().to_string(), "EvalStream/Acc_Matrix");
/// assert!("Top1_Acc_Exp/eval/test_stream".parse::<MetricName>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricName {
    /// The metric: `Top1_Acc_Exp`, `Loss_Epoch`, `StreamForgetting`, ...
    pub metric: String,
    /// The phase; `None` in the names Avalanche writes without one (AMCA, the accuracy matrix).
    pub phase: Option<Phase>,
    /// The stream (`train`, `test`, `valid`, ...), without `_stream`; `None` only for names
    /// that start with `EvalStream/` (the accuracy matrix).
    pub stream: Option<String>,
    /// The task label, when the name has one (`Task000`).
    pub task: Option<u32>,
    /// The experience index, when the name has one (`Exp002`).
    pub experience: Option<usize>,
    /// The class id of a per-class value (`.../Task000/3`).
    pub class: Option<u32>,
}

impl MetricName {
    /// `metric/phase_phase/stream_stream`, without task, experience or class.
    pub fn new(metric: impl Into<String>, phase: Phase, stream: impl Into<String>) -> Self {
        Self {
            metric: metric.into(),
            phase: Some(phase),
            stream: Some(stream.into()),
            task: None,
            experience: None,
            class: None,
        }
    }

    /// `metric/stream_stream`, with no phase (Avalanche's AMCA).
    pub fn without_phase(metric: impl Into<String>, stream: impl Into<String>) -> Self {
        Self { phase: None, ..Self::new(metric, Phase::Eval, stream) }
    }

    /// `EvalStream/metric`: a value of the stream just evaluated, named without phase or stream
    /// (Avalanche's accuracy matrix).
    pub fn evaluated_stream(metric: impl Into<String>) -> Self {
        Self { phase: None, stream: None, ..Self::new(metric, Phase::Eval, "") }
    }

    /// With the task label `task`.
    pub fn with_task(mut self, task: u32) -> Self {
        self.task = Some(task);
        self
    }

    /// With the experience index `experience`.
    pub fn with_experience(mut self, experience: usize) -> Self {
        self.experience = Some(experience);
        self
    }

    /// With the class id `class` (per-class values).
    pub fn with_class(mut self, class: u32) -> Self {
        self.class = Some(class);
        self
    }

    /// `Top1_Acc_Exp/eval_phase/test_stream/Task<task>/Exp<experience>`: the accuracy of one
    /// test experience, the most read metric.
    pub fn test_exp_accuracy(task: u32, experience: usize) -> Self {
        Self::new("Top1_Acc_Exp", Phase::Eval, "test").with_task(task).with_experience(experience)
    }

    /// `Top1_Acc_Stream/eval_phase/test_stream/Task<task>`: the accuracy over the test stream.
    pub fn test_stream_accuracy(task: u32) -> Self {
        Self::new("Top1_Acc_Stream", Phase::Eval, "test").with_task(task)
    }

    /// `EvalStream/Acc_Matrix`: Avalanche's name of the accuracy matrix value.
    pub fn accuracy_matrix() -> Self {
        Self::evaluated_stream("Acc_Matrix")
    }

    /// The value of this metric in `results` (what `train`/`eval` return), if it is there.
    pub fn value_in(&self, results: &MetricResults) -> Option<f64> {
        results.get(&self.to_string()).copied()
    }
}

impl fmt::Display for MetricName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.phase.is_none() && self.stream.is_none() {
            write!(f, "{EVAL_STREAM}/{}", self.metric)?;
        } else {
            f.write_str(&self.metric)?;
            if let Some(phase) = self.phase {
                write!(f, "/{phase}_phase")?;
            }
            if let Some(stream) = &self.stream {
                write!(f, "/{stream}_stream")?;
            }
        }
        if let Some(t) = self.task {
            write!(f, "/Task{t:03}")?;
        }
        if let Some(e) = self.experience {
            write!(f, "/Exp{e:03}")?;
        }
        if let Some(c) = self.class {
            write!(f, "/{c}")?;
        }
        Ok(())
    }
}

/// Why a string is not a [`MetricName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricNameError {
    /// The metric part (before the first `/`) is empty.
    #[error("`{name}` is not a metric name: it has no metric before its first `/`")]
    EmptyMetric {
        /// The string.
        name: String,
    },
    /// No `<phase>_phase` or `<stream>_stream` part follows the metric, and the name does not
    /// start with `EvalStream/`.
    #[error(
        "`{name}` is not a metric name: no `<phase>_phase` or `<stream>_stream` part follows the metric \
         (e.g. `Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000`)"
    )]
    NoPhaseOrStream {
        /// The string.
        name: String,
    },
    /// A `<phase>_phase` part with another phase than `train` or `eval`.
    #[error("`{name}` is not a metric name: unknown phase `{phase}` (expected `train_phase` or `eval_phase`)")]
    UnknownPhase {
        /// The string.
        name: String,
        /// The phase found.
        phase: String,
    },
    /// A part that is not `Task<digits>`, `Exp<digits>` or a class id in this order, each at
    /// most once, after the phase and stream.
    #[error(
        "`{name}` is not a metric name: unexpected part `{part}` (after the stream come `Task<ttt>`, \
         `Exp<eee>` and a class id, in this order, each at most once)"
    )]
    UnexpectedPart {
        /// The string.
        name: String,
        /// The part.
        part: String,
    },
    /// A task label, experience index or class id too large for its type.
    #[error("`{name}` is not a metric name: the number in `{part}` is out of range")]
    NumberOutOfRange {
        /// The string.
        name: String,
        /// The part.
        part: String,
    },
}

/// `Ok(Some(n))` if `digits` is a non-empty run of ASCII digits, `Ok(None)` if it is not
/// digits, an error if the number does not fit.
fn number<T: FromStr>(digits: &str, name: &str, part: &str) -> Result<Option<T>, MetricNameError> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    digits
        .parse()
        .map(Some)
        .map_err(|_| MetricNameError::NumberOutOfRange { name: name.to_string(), part: part.to_string() })
}

/// Whether `part` is a `<phase>_phase` or `<stream>_stream` part.
fn is_scope(part: &str) -> bool {
    part.strip_suffix("_phase").or_else(|| part.strip_suffix("_stream")).is_some_and(|p| !p.is_empty())
}

impl FromStr for MetricName {
    type Err = MetricNameError;

    fn from_str(name: &str) -> Result<Self, MetricNameError> {
        let empty = || MetricNameError::EmptyMetric { name: name.to_string() };
        let mut parts = name.split('/').peekable();
        let first = parts.next().filter(|m| !m.is_empty()).ok_or_else(empty)?;
        let (metric, phase, stream) = if first == EVAL_STREAM && parts.peek().is_some_and(|p| !is_scope(p)) {
            let metric = parts.next().filter(|m| !m.is_empty()).ok_or_else(empty)?;
            (metric, None, None)
        } else {
            let phase = match parts.peek().and_then(|p| p.strip_suffix("_phase")).filter(|p| !p.is_empty()) {
                Some("train") => Some(Phase::Train),
                Some("eval") => Some(Phase::Eval),
                Some(other) => {
                    return Err(MetricNameError::UnknownPhase { name: name.to_string(), phase: other.to_string() });
                }
                None => None,
            };
            if phase.is_some() {
                parts.next();
            }
            let stream =
                parts.peek().and_then(|p| p.strip_suffix("_stream")).filter(|s| !s.is_empty()).map(str::to_string);
            if stream.is_some() {
                parts.next();
            }
            if phase.is_none() && stream.is_none() {
                return Err(MetricNameError::NoPhaseOrStream { name: name.to_string() });
            }
            (first, phase, stream)
        };
        let (mut task, mut experience, mut class) = (None, None, None);
        // 0: nothing read yet; 1: task read; 2: experience read; 3: class read.
        let mut stage = 0;
        for part in parts {
            if stage < 1
                && let Some(t) = part.strip_prefix("Task")
                && let Some(t) = number(t, name, part)?
            {
                task = Some(t);
                stage = 1;
            } else if stage < 2
                && let Some(e) = part.strip_prefix("Exp")
                && let Some(e) = number(e, name, part)?
            {
                experience = Some(e);
                stage = 2;
            } else if stage < 3
                && let Some(c) = number(part, name, part)?
            {
                class = Some(c);
                stage = 3;
            } else {
                return Err(MetricNameError::UnexpectedPart { name: name.to_string(), part: part.to_string() });
            }
        }
        Ok(Self { metric: metric.to_string(), phase, stream, task, experience, class })
    }
}

impl Serialize for MetricName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MetricName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name family the metrics of `cl-core` and `cl-metrics` emit (the list checked
    /// against Avalanche in the workspace's `metrics_names` test, and the minibatch values).
    const EMITTED: &[&str] = &[
        "Top1_Acc_MB/train_phase/train_stream/Task000",
        "Loss_MB/train_phase/train_stream/Task000",
        "Top1_Acc_Epoch/train_phase/train_stream/Task000",
        "Top1_RunningAcc_Epoch/train_phase/train_stream/Task000",
        "Loss_Epoch/train_phase/train_stream/Task000",
        "RunningLoss_Epoch/train_phase/train_stream/Task000",
        "Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp001",
        "Loss_Exp/eval_phase/test_stream/Task000/Exp000",
        "Top1_Acc_Stream/eval_phase/test_stream/Task000",
        "Loss_Stream/eval_phase/test_stream/Task000",
        "Accuracy_On_Trained_Experiences/eval_phase/test_stream/Task000",
        "Topk_5_Acc_MB/train_phase/train_stream/Task000",
        "Topk_5_Acc_Epoch/train_phase/train_stream/Task000",
        "Topk_5_Acc_Exp/eval_phase/test_stream/Task000/Exp000",
        "Topk_5_Acc_Stream/eval_phase/test_stream/Task000",
        "Top1_ClassAcc_Epoch/train_phase/train_stream/Task000/0",
        "Top1_ClassAcc_Exp/eval_phase/test_stream/Task000/Exp001/3",
        "Top1_ClassAcc_Stream/eval_phase/test_stream/Task000/2",
        "Top1_AMCA_Stream/test_stream/Task000",
        "ExperienceForgetting/eval_phase/test_stream/Task000/Exp000",
        "StreamForgetting/eval_phase/test_stream",
        "ExperienceBWT/eval_phase/test_stream/Task000/Exp000",
        "StreamBWT/eval_phase/test_stream",
        "ExperienceForwardTransfer/eval_phase/test_stream/Task000/Exp001",
        "StreamForwardTransfer/eval_phase/test_stream",
        "ConfusionMatrix_Stream/eval_phase/test_stream",
        "Time_MB/train_phase/train_stream/Task000",
        "Time_Epoch/train_phase/train_stream/Task000",
        "RunningTime_Epoch/train_phase/train_stream/Task000",
        "Time_Exp/eval_phase/test_stream/Task000/Exp000",
        "Time_Stream/eval_phase/test_stream/Task000",
        "MaxRAMUsage_MB/train_phase/train_stream/Task000",
        "MaxRAMUsage_Epoch/train_phase/train_stream/Task000",
        "MaxRAMUsage_Experience/eval_phase/test_stream/Task000/Exp001",
        "MaxRAMUsage_Stream/eval_phase/test_stream/Task000",
        "CPUUsage_MB/train_phase/train_stream/Task000",
        "CPUUsage_Epoch/train_phase/train_stream/Task000",
        "CPUUsage_Exp/eval_phase/test_stream/Task000/Exp000",
        "CPUUsage_Stream/eval_phase/test_stream/Task000",
        "MAC_MB/train_phase/train_stream/Task000",
        "MAC_Epoch/train_phase/train_stream/Task000",
        "MAC_Exp/eval_phase/test_stream/Task000/Exp000",
        "EvalStream/Acc_Matrix",
        "ModelParams_Exp/train_phase/train_stream/Task000/Exp001",
        "ModelBytes_Exp/train_phase/train_stream/Task000/Exp001",
        // Experiences with several task labels: no task part.
        "Top1_Acc_Exp/eval_phase/test_stream/Exp012",
        "Loss_Epoch/train_phase/train_stream",
        // Other streams, large indices.
        "Top1_Acc_Stream/eval_phase/valid_ood_stream/Task1234",
        "Top1_AMCA_Stream/valid_stream/Task007",
        "Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp4000000000",
    ];

    #[test]
    fn every_emitted_family_round_trips() {
        for &text in EMITTED {
            let name: MetricName = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(name.to_string(), text);
            assert_eq!(name.to_string().parse::<MetricName>(), Ok(name.clone()));
            let json = serde_json::to_string(&name).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<MetricName>(&json).unwrap(), name);
        }
    }

    #[test]
    fn parts_are_typed() {
        let n: MetricName = "Top1_ClassAcc_Exp/eval_phase/test_stream/Task002/Exp001/3".parse().unwrap();
        assert_eq!(
            n,
            MetricName::new("Top1_ClassAcc_Exp", Phase::Eval, "test").with_task(2).with_experience(1).with_class(3)
        );
        let n: MetricName = "Top1_AMCA_Stream/test_stream/Task000".parse().unwrap();
        assert_eq!(n, MetricName::without_phase("Top1_AMCA_Stream", "test").with_task(0));
        let n: MetricName = "EvalStream/Acc_Matrix".parse().unwrap();
        assert_eq!(n, MetricName::accuracy_matrix());
        assert_eq!((n.metric.as_str(), n.phase, n.stream), ("Acc_Matrix", None, None));
        // A metric called `EvalStream` with a phase is an ordinary name.
        let n: MetricName = "EvalStream/train_phase/train_stream".parse().unwrap();
        assert_eq!(n, MetricName::new("EvalStream", Phase::Train, "train"));
        // Fewer than three digits read; written back with three.
        let n: MetricName = "Loss_Exp/eval_phase/test_stream/Task1/Exp2".parse().unwrap();
        assert_eq!(n.to_string(), "Loss_Exp/eval_phase/test_stream/Task001/Exp002");
        assert_eq!(
            MetricName::test_exp_accuracy(1, 4).to_string(),
            "Top1_Acc_Exp/eval_phase/test_stream/Task001/Exp004"
        );
        assert_eq!(MetricName::test_stream_accuracy(0).to_string(), "Top1_Acc_Stream/eval_phase/test_stream/Task000");
        let results = MetricResults::from([(MetricName::test_stream_accuracy(0).to_string(), 0.5)]);
        assert_eq!(MetricName::test_stream_accuracy(0).value_in(&results), Some(0.5));
        assert_eq!(MetricName::test_stream_accuracy(1).value_in(&results), None);
    }

    #[test]
    fn malformed_names_are_typed_errors() {
        use MetricNameError as E;
        let err = |s: &str| s.parse::<MetricName>().unwrap_err();
        let name = |s: &str| s.to_string();
        assert_eq!(err(""), E::EmptyMetric { name: name("") });
        assert_eq!(err("/eval_phase/test_stream"), E::EmptyMetric { name: name("/eval_phase/test_stream") });
        assert_eq!(err("EvalStream/"), E::EmptyMetric { name: name("EvalStream/") });
        for s in ["Top1_Acc_Exp", "Top1_Acc_Exp/eval/test_stream", "EvalStream", "A/_stream/Task000"] {
            assert_eq!(err(s), E::NoPhaseOrStream { name: name(s) }, "{s}");
        }
        assert_eq!(
            err("A/valid_phase/test_stream"),
            E::UnknownPhase { name: name("A/valid_phase/test_stream"), phase: name("valid") }
        );
        for (s, part) in [
            ("A/eval_phase/test_stream/Exp1/Task0", "Task0"),
            ("A/eval_phase/test_stream/Expx", "Expx"),
            ("A/eval_phase/test_stream/Foo", "Foo"),
            ("A/eval_phase/test_stream/Task1/Task2", "Task2"),
            ("A/eval_phase/test_stream/3/Exp001", "Exp001"),
            ("A/eval_phase/test_stream/Task", "Task"),
            ("A/eval_phase/test_stream/Task+1", "Task+1"),
            ("A/test_stream/eval_phase", "eval_phase"),
            ("A/eval_phase/test_stream/", ""),
        ] {
            assert_eq!(err(s), E::UnexpectedPart { name: name(s), part: name(part) }, "{s}");
        }
        assert_eq!(
            err("A/eval_phase/test_stream/Task99999999999"),
            E::NumberOutOfRange {
                name: name("A/eval_phase/test_stream/Task99999999999"),
                part: name("Task99999999999")
            }
        );
        assert!(err("Top1_Acc_Exp/eval/test_stream").to_string().contains("Top1_Acc_Exp/eval/test_stream"));
        assert!(serde_json::from_str::<MetricName>("\"nope\"").is_err());
    }
}
