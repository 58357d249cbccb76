//! Benchmarks from one user dataset per experience, Avalanche's `dataset_benchmark`
//! (`create_multi_dataset_generic_benchmark`) and `tensors_benchmark`
//! (`create_generic_benchmark_from_tensor_lists`).

use std::collections::BTreeSet;

use cl_core::config::{Validate, rule};
use cl_core::data::ClassificationDataset;
use cl_core::{Benchmark, ClError, Result};
use serde::{Deserialize, Serialize};

use super::common::{check_class_ids, classes_per_experience, stream_of};

/// Options of [`dataset_benchmark`] and [`tensors_benchmark`]: Avalanche's
/// `dataset_benchmark(..., complete_test_set_only=False)` (the transforms are given to the
/// datasets themselves; other streams are not supported).
///
/// ```
/// use cl_benchmarks::DatasetBenchmarkConfig;
/// assert!(!DatasetBenchmarkConfig::default().complete_test_set_only);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatasetBenchmarkConfig {
    /// The test stream is one experience holding the complete test set, the only test dataset
    /// given (default `false`: one test dataset per experience).
    pub complete_test_set_only: bool,
}

impl DatasetBenchmarkConfig {
    /// Whether the test stream is one experience with the complete test set.
    pub fn with_complete_test_set_only(mut self, on: bool) -> Self {
        self.complete_test_set_only = on;
        self
    }
}

impl Validate for DatasetBenchmarkConfig {
    /// Every value is valid on its own; `complete_test_set_only` is checked against the
    /// datasets when the benchmark is built (rule `complete_test_set_only_one_test_dataset`).
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// Builds a benchmark whose experience `i` is `train_datasets[i]` (train stream) and
/// `test_datasets[i]` (test stream), or, with `complete_test_set_only`, whose test stream is
/// the single test dataset.
///
/// The datasets are used as given, task labels included (give them with
/// [`ClassificationDataset::with_task_label`]). There must be as many test as training datasets
/// (or exactly one with `complete_test_set_only`: rule
/// `complete_test_set_only_one_test_dataset`), every dataset non-empty and all of one sample
/// shape. `n_classes` counts the classes of both streams; `classes_order` lists them by first
/// appearance in the train stream (test-only classes last); `class_mapping` is the identity.
pub fn dataset_benchmark(
    train_datasets: Vec<ClassificationDataset>,
    test_datasets: Vec<ClassificationDataset>,
    config: &DatasetBenchmarkConfig,
) -> Result<Benchmark> {
    config.validate()?;
    if train_datasets.is_empty() {
        return Err(ClError::config("train_datasets", "give at least one dataset (one per experience)"));
    }
    if config.complete_test_set_only {
        rule("DatasetBenchmarkConfig", "complete_test_set_only_one_test_dataset", test_datasets.len() == 1, || {
            format!(
                "complete_test_set_only takes the complete test set as the only test dataset, got {}; give one \
                 test dataset or set complete_test_set_only = false",
                test_datasets.len()
            )
        })?;
    } else if test_datasets.len() != train_datasets.len() {
        return Err(ClError::config(
            "test_datasets",
            format!(
                "{} test datasets for {} training datasets; give one test dataset per experience",
                test_datasets.len(),
                train_datasets.len()
            ),
        ));
    }
    let shape = train_datasets[0].sample_shape().to_vec();
    let mut label_space = 0usize;
    let mut order: Vec<u32> = Vec::new();
    let mut listed: BTreeSet<u32> = BTreeSet::new();
    for (argument, list) in [("train_datasets", &train_datasets), ("test_datasets", &test_datasets)] {
        for (e, ds) in list.iter().enumerate() {
            if ds.is_empty() {
                return Err(ClError::config(argument, format!("dataset {e} is empty; every experience needs samples")));
            }
            if ds.sample_shape() != shape.as_slice() {
                return Err(ClError::config(
                    argument,
                    format!(
                        "dataset {e} has sample shape {:?}, training dataset 0 has {shape:?}; reshape them alike",
                        ds.sample_shape()
                    ),
                ));
            }
            let targets = ds.targets();
            if let Some(m) = check_class_ids(argument, &targets)? {
                label_space = label_space.max(m as usize + 1);
            }
            for c in targets.into_iter().collect::<BTreeSet<_>>() {
                if listed.insert(c) {
                    order.push(c);
                }
            }
        }
    }
    let train_stream = stream_of("train", train_datasets, label_space);
    let test_stream = stream_of("test", test_datasets, label_space);
    let (n_classes_per_exp, original_classes_in_exp) = classes_per_experience(&train_stream);
    Ok(Benchmark {
        train_stream,
        test_stream,
        n_classes: order.len(),
        classes_order: order,
        n_classes_per_exp,
        original_classes_in_exp,
        class_mapping: (0..label_space as u32).collect(),
        seed: None,
    })
}

/// The in-memory data of one experience for [`tensors_benchmark`].
#[derive(Debug, Clone, PartialEq)]
pub struct TensorExperience {
    /// Flattened inputs, `targets.len()` samples of `sample_shape` values each.
    pub inputs: Vec<f32>,
    /// Shape of one sample's input, e.g. `[1, 28, 28]`.
    pub sample_shape: Vec<usize>,
    /// Class label of each sample.
    pub targets: Vec<u32>,
    /// Task label given to every sample of the experience.
    pub task_label: u32,
}

impl TensorExperience {
    /// One experience's inputs, shape, labels and task label.
    pub fn new(inputs: Vec<f32>, sample_shape: Vec<usize>, targets: Vec<u32>, task_label: u32) -> Self {
        Self { inputs, sample_shape, targets, task_label }
    }

    fn into_dataset(self, argument: &'static str, e: usize) -> Result<ClassificationDataset> {
        let sample_len = cl_core::data::checked_sample_len(&self.sample_shape)?;
        if self.targets.len().checked_mul(sample_len) != Some(self.inputs.len()) {
            return Err(ClError::config(
                argument,
                format!(
                    "experience {e} has {} input values for {} targets of shape {:?} (needs {}); \
                     give sample_len values per target",
                    self.inputs.len(),
                    self.targets.len(),
                    self.sample_shape,
                    self.targets.len().checked_mul(sample_len).map_or("more than usize::MAX".into(), |n| n.to_string())
                ),
            ));
        }
        Ok(ClassificationDataset::from_f32(self.inputs, self.sample_shape, self.targets)?
            .with_task_label(self.task_label))
    }
}

/// Builds a benchmark from in-memory arrays, one [`TensorExperience`] per experience and
/// stream (Avalanche's `tensors_benchmark`); then as [`dataset_benchmark`].
///
/// ```
/// use cl_benchmarks::{DatasetBenchmarkConfig, TensorExperience, tensors_benchmark};
/// let exp = |t: u32| TensorExperience::new(vec![0.0, 1.0, 2.0, 3.0], vec![2], vec![t, t + 1], t);
/// let config = DatasetBenchmarkConfig::default();
/// let bench = tensors_benchmark(vec![exp(0), exp(2)], vec![exp(0), exp(2)], &config).unwrap();
/// assert_eq!(bench.n_experiences(), 2);
/// assert_eq!(bench.train_stream[1].task_labels, vec![2]);
/// ```
pub fn tensors_benchmark(
    train: Vec<TensorExperience>,
    test: Vec<TensorExperience>,
    config: &DatasetBenchmarkConfig,
) -> Result<Benchmark> {
    let train =
        train.into_iter().enumerate().map(|(e, t)| t.into_dataset("train", e)).collect::<Result<Vec<_>, _>>()?;
    let test = test.into_iter().enumerate().map(|(e, t)| t.into_dataset("test", e)).collect::<Result<Vec<_>, _>>()?;
    dataset_benchmark(train, test, config)
}

#[cfg(test)]
mod tests {
    use super::super::common::testing::indexed;
    use super::*;
    use cl_core::config::{ConfigFile, assert_rule};

    fn is_arg(r: Result<Benchmark>, name: &str) -> bool {
        matches!(r, Err(ClError::InvalidConfig { config: "argument", rule, .. }) if rule == name)
    }

    const DEFAULT: DatasetBenchmarkConfig = DatasetBenchmarkConfig { complete_test_set_only: false };

    #[test]
    fn one_dataset_per_experience() {
        let train = vec![indexed(vec![0, 1, 1]), indexed(vec![2, 3]).with_task_label(1), indexed(vec![1, 4])];
        let test = vec![indexed(vec![0]), indexed(vec![3]), indexed(vec![4, 5])];
        let b = dataset_benchmark(train, test, &DEFAULT).unwrap();
        assert_eq!(b.n_experiences(), 3);
        assert_eq!(b.n_classes, 6);
        assert_eq!(b.classes_order, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(b.n_classes_per_exp, vec![2, 2, 2]);
        assert_eq!(b.original_classes_in_exp, vec![vec![0, 1], vec![2, 3], vec![1, 4]]);
        assert_eq!(b.class_mapping, (0..6).collect::<Vec<_>>());
        assert_eq!(b.seed, None);
        let e2 = &b.train_stream[2];
        assert_eq!(e2.previous_classes, vec![0, 1, 2, 3]);
        assert_eq!(e2.classes_seen_so_far, vec![0, 1, 2, 3, 4]);
        assert!(e2.future_classes.is_empty());
        assert_eq!(b.train_stream[0].future_classes, vec![1, 2, 3, 4]);
        assert_eq!(b.train_stream[1].task_labels, vec![1]);
        assert_eq!(e2.n_classes, 6);
        assert_eq!(b.test_stream[2].classes_in_this_experience, vec![4, 5]);
        assert_eq!(b.test_stream.name(), "test");
    }

    #[test]
    fn tensors_build_datasets_with_task_labels() {
        let train = vec![
            TensorExperience::new(vec![0.0, 1.0, 2.0, 3.0], vec![2], vec![0, 1], 0),
            TensorExperience::new(vec![4.0, 5.0], vec![2], vec![2], 1),
        ];
        let test = train.clone();
        let b = tensors_benchmark(train, test, &DEFAULT).unwrap();
        assert_eq!(b.train_stream[1].dataset.sample(0).unwrap().x, vec![4.0, 5.0]);
        assert_eq!(b.train_stream[1].task_labels, vec![1]);
        assert_eq!(b.test_stream[0].classes_in_this_experience, vec![0, 1]);
    }

    #[test]
    fn errors() {
        let d = || indexed(vec![0, 1]);
        assert!(is_arg(dataset_benchmark(vec![], vec![], &DEFAULT), "train_datasets"));
        assert!(is_arg(dataset_benchmark(vec![d(), d()], vec![d()], &DEFAULT), "test_datasets"));
        let empty = ClassificationDataset::from_f32(vec![], vec![1], vec![]).unwrap();
        assert!(is_arg(dataset_benchmark(vec![d(), empty.clone()], vec![d(), d()], &DEFAULT), "train_datasets"));
        assert!(is_arg(dataset_benchmark(vec![d()], vec![empty], &DEFAULT), "test_datasets"));
        let wide = ClassificationDataset::from_f32(vec![0.0; 4], vec![2], vec![0, 1]).unwrap();
        assert!(is_arg(dataset_benchmark(vec![d(), wide.clone()], vec![d(), d()], &DEFAULT), "train_datasets"));
        assert!(is_arg(dataset_benchmark(vec![d()], vec![wide], &DEFAULT), "test_datasets"));
        assert!(is_arg(dataset_benchmark(vec![indexed(vec![1 << 24])], vec![d()], &DEFAULT), "train_datasets"));
        let bad = TensorExperience::new(vec![0.0; 3], vec![2], vec![0, 1], 0);
        let good = TensorExperience::new(vec![0.0; 4], vec![2], vec![0, 1], 0);
        assert!(is_arg(tensors_benchmark(vec![bad.clone()], vec![good.clone()], &DEFAULT), "train"));
        assert!(is_arg(tensors_benchmark(vec![good.clone()], vec![bad], &DEFAULT), "test"));
        let nan = TensorExperience::new(vec![f32::NAN; 2], vec![1], vec![0, 1], 0);
        let err = tensors_benchmark(vec![nan], vec![good], &DEFAULT).unwrap_err();
        assert!(matches!(err, ClError::DatasetLayout(_)), "{err:?}");
    }

    #[test]
    fn complete_test_set_only() {
        let config = DatasetBenchmarkConfig::default().with_complete_test_set_only(true);
        let train = vec![indexed(vec![0, 1]), indexed(vec![2, 3])];
        let b = dataset_benchmark(train.clone(), vec![indexed(vec![0, 1, 2, 3])], &config).unwrap();
        assert_eq!((b.n_experiences(), b.test_stream.len()), (2, 1));
        assert_eq!(b.test_stream[0].classes_in_this_experience, vec![0, 1, 2, 3]);
        assert_eq!(b.n_classes, 4);
        assert_rule(
            dataset_benchmark(train, vec![indexed(vec![0]), indexed(vec![2])], &config),
            "complete_test_set_only_one_test_dataset",
        );
        assert_eq!(DatasetBenchmarkConfig::from_json(&config.to_json()).unwrap(), config);
        assert_eq!(DatasetBenchmarkConfig::from_toml(&config.to_toml().unwrap()).unwrap(), config);
        assert_eq!(DatasetBenchmarkConfig::from_toml("").unwrap(), DEFAULT);
    }
}
