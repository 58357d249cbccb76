//! [`Experience`]: one step of a stream.

use crate::data::ClassificationDataset;
use crate::error::{ClError, Result};

/// One experience of a stream: a dataset plus what is known about it (Avalanche's
/// `CLExperience`).
#[derive(Debug, Clone)]
pub struct Experience {
    /// Position of the experience in its stream.
    pub current_experience: usize,
    /// The classes present in this experience, sorted.
    pub classes_in_this_experience: Vec<u32>,
    /// The task labels present in this experience, sorted.
    pub task_labels: Vec<u32>,
    /// The experience's data.
    pub dataset: ClassificationDataset,
    /// Name of the stream this experience belongs to (`train`, `test`, ...).
    pub origin_stream: String,
    /// Number of class labels of the whole benchmark, i.e. the outputs a model needs (fewer
    /// than the original classes when labels restart from zero in each experience).
    pub n_classes: usize,
    /// Classes of the experiences before this one (sorted).
    pub previous_classes: Vec<u32>,
    /// Classes of this experience and the ones before (sorted).
    pub classes_seen_so_far: Vec<u32>,
    /// Classes of the experiences after this one, seen before or not (sorted; Avalanche's
    /// `future_classes`).
    pub future_classes: Vec<u32>,
}

impl Experience {
    /// An experience over `dataset`; the classes and task labels are read from the data.
    pub fn new(
        current_experience: usize,
        dataset: ClassificationDataset,
        origin_stream: impl Into<String>,
        n_classes: usize,
    ) -> Self {
        Self {
            current_experience,
            classes_in_this_experience: dataset.classes().into_iter().collect(),
            task_labels: dataset.distinct_task_labels().into_iter().collect(),
            dataset,
            origin_stream: origin_stream.into(),
            n_classes,
            previous_classes: Vec::new(),
            classes_seen_so_far: Vec::new(),
            future_classes: Vec::new(),
        }
    }

    /// The classes of each task label in the experience (from its samples; one pass over the
    /// labels, for model adaptation).
    pub fn classes_by_task(&self) -> std::collections::BTreeMap<u32, std::collections::BTreeSet<u32>> {
        let mut out: std::collections::BTreeMap<u32, std::collections::BTreeSet<u32>> = Default::default();
        if let [task] = self.task_labels.as_slice() {
            out.insert(*task, self.classes_in_this_experience.iter().copied().collect());
            return out;
        }
        for (t, y) in self.dataset.task_labels().into_iter().zip(self.dataset.targets()) {
            out.entry(t).or_default().insert(y);
        }
        out
    }

    /// The experience's single task label; an error if it holds several.
    pub fn task_label(&self) -> Result<u32> {
        match self.task_labels.as_slice() {
            [t] => Ok(*t),
            other => Err(ClError::InvalidUse(format!(
                "experience {} has task labels {other:?}; `task_label()` needs exactly one, use `task_labels`",
                self.current_experience
            ))),
        }
    }

    /// Largest class label present, if any.
    pub fn max_class(&self) -> Option<u32> {
        self.classes_in_this_experience.last().copied()
    }
}
