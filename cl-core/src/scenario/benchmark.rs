//! [`Benchmark`]: the train and test streams of a scenario.

use super::stream::Stream;

/// A continual-learning benchmark: its streams and class bookkeeping (Avalanche's
/// `CLScenario`/`NCScenario`).
#[derive(Debug, Clone)]
pub struct Benchmark {
    /// The training stream.
    pub train_stream: Stream,
    /// The test stream (same classes per experience as the training stream).
    pub test_stream: Stream,
    /// Number of classes over the whole benchmark.
    pub n_classes: usize,
    /// Original class ids in the order they are presented.
    pub classes_order: Vec<u32>,
    /// Number of classes in each experience.
    pub n_classes_per_exp: Vec<usize>,
    /// Original classes of each experience.
    pub original_classes_in_exp: Vec<Vec<u32>>,
    /// `class_mapping[original] = label used in the streams` (identity unless relabelled).
    pub class_mapping: Vec<u32>,
    /// Seed used to build the benchmark, if it was random.
    pub seed: Option<u64>,
}

impl Benchmark {
    /// Number of experiences of the training stream.
    pub fn n_experiences(&self) -> usize {
        self.train_stream.len()
    }
}
