//! [`AccuracyCurves`]: per-experience accuracy over training, from a metric history.

use cl_core::evaluation::{MetricName, Phase};

use crate::history::MetricRecord;
use crate::matrix::exp_accuracies;

/// The metric of the stream curve.
const STREAM_ACCURACY: &str = "Top1_Acc_Stream";

/// Accuracy over training: one curve per evaluated experience (`Top1_Acc_Exp` on the stream) and
/// one of the stream accuracy (`Top1_Acc_Stream`); x is `x_plot` (training iterations).
///
/// ```
/// use cl_report::{AccuracyCurves, MetricRecord};
/// let r = |name: &str, value, x_plot| MetricRecord { name: name.into(), value, x_plot };
/// let curves = AccuracyCurves::from_history(&[
///     r("Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp001", 0.25, 10),
///     r("Top1_Acc_Stream/eval_phase/test_stream/Task000", 0.5, 10),
///     r("Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp001", 0.75, 20),
/// ], "test");
/// assert_eq!(curves.experiences(), &[(1, vec![(10, 0.25), (20, 0.75)])]);
/// assert_eq!(curves.stream(), &[(10, 0.5)]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AccuracyCurves {
    experiences: Vec<(usize, Vec<(u64, f64)>)>,
    stream: Vec<(u64, f64)>,
}

impl AccuracyCurves {
    /// The curves of `history` on stream `stream` (e.g. `"test"`), points in history order.
    pub fn from_history(history: &[MetricRecord], stream: &str) -> Self {
        let mut experiences: Vec<(usize, Vec<(u64, f64)>)> = Vec::new();
        for (x, j, value) in exp_accuracies(history, stream) {
            match experiences.iter_mut().find(|(e, _)| *e == j) {
                Some((_, points)) => points.push((x, value)),
                None => experiences.push((j, vec![(x, value)])),
            }
        }
        experiences.sort_by_key(|(j, _)| *j);
        let stream_points = history
            .iter()
            .filter(|r| {
                r.name.parse::<MetricName>().is_ok_and(|n| {
                    n.metric == STREAM_ACCURACY
                        && n.phase == Some(Phase::Eval)
                        && n.stream.as_deref() == Some(stream)
                        && n.experience.is_none()
                })
            })
            .map(|r| (r.x_plot, r.value))
            .collect();
        Self { experiences, stream: stream_points }
    }

    /// `(experience, points)` per evaluated experience, by experience index.
    pub fn experiences(&self) -> &[(usize, Vec<(u64, f64)>)] {
        &self.experiences
    }

    /// The stream accuracy points.
    pub fn stream(&self) -> &[(u64, f64)] {
        &self.stream
    }

    /// Whether there is no point at all.
    pub fn is_empty(&self) -> bool {
        self.experiences.is_empty() && self.stream.is_empty()
    }

    /// The largest `x_plot` of any point (0 when empty).
    pub fn max_x(&self) -> u64 {
        self.experiences
            .iter()
            .flat_map(|(_, p)| p.iter())
            .chain(self.stream.iter())
            .map(|(x, _)| *x)
            .max()
            .unwrap_or(0)
    }
}
