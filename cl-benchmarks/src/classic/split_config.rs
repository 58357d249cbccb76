//! [`SplitConfig`]: the options shared by the class-split benchmarks.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::BenchmarkError;
use crate::scenarios::NcConfig;

/// Options of the class-split benchmarks — [`split_mnist`](super::split_mnist),
/// [`split_fmnist`](super::split_fmnist), [`split_cifar10`](super::split_cifar10),
/// [`split_cifar100`](super::split_cifar100) — with Avalanche's `SplitMNIST` / `SplitCIFAR*`
/// arguments (`SplitMnistConfig` and `SplitCifarConfig` are this type).
///
/// ```
/// use cl_benchmarks::SplitCifarConfig;
/// let config = SplitCifarConfig::new(11).with_first_exp_with_half_classes(true).with_seed(1);
/// assert_eq!(config.n_experiences, 11);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SplitConfig {
    /// Number of experiences: a divisor of the number of classes (10 or 100), unless
    /// `per_exp_classes` is given; with
    /// `first_exp_with_half_classes`, one more than a divisor of half of them.
    pub n_experiences: usize,
    /// Seed of the class order.
    pub seed: u64,
    /// A fixed class order (a permutation of `0..10` or `0..100`).
    pub fixed_class_order: Option<Vec<u32>>,
    /// Classes of some experiences (experience index → count; the others share the rest
    /// evenly), as [`NcConfig::per_exp_classes`]; an extension, Avalanche's SplitCIFAR only
    /// has `first_exp_with_half_classes`.
    pub per_exp_classes: Option<BTreeMap<usize, usize>>,
    /// The first experience holds half of the classes (5 or 50) and the others share the
    /// rest equally (Avalanche's `first_exp_with_half_classes`, default `false`).
    pub first_exp_with_half_classes: bool,
    /// Task label = experience index (task-incremental).
    pub return_task_id: bool,
    /// Relabel the classes of each experience from 0.
    pub class_ids_from_zero_in_each_exp: bool,
    /// Relabel all classes as 0, 1, … in class order.
    pub class_ids_from_zero_from_first_exp: bool,
    /// Directory holding the binary files (or its parent holding `cifar-10-batches-bin` /
    /// `cifar-100-binary`); searched for when `None` (see [`cifar_files::locate`]).
    pub dataset_root: Option<PathBuf>,
}

impl SplitConfig {
    /// `n_experiences` experiences, seed 0, class-incremental, data searched for.
    pub fn new(n_experiences: usize) -> Self {
        Self {
            n_experiences,
            seed: 0,
            fixed_class_order: None,
            per_exp_classes: None,
            first_exp_with_half_classes: false,
            return_task_id: false,
            class_ids_from_zero_in_each_exp: false,
            class_ids_from_zero_from_first_exp: false,
            dataset_root: None,
        }
    }

    /// Seed of the class order.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// A fixed class order.
    pub fn with_fixed_class_order(mut self, order: Vec<u32>) -> Self {
        self.fixed_class_order = Some(order);
        self
    }

    /// Classes of some experiences, e.g. `[(0, 4)]`; the others share the rest evenly.
    pub fn with_per_exp_classes(mut self, counts: impl IntoIterator<Item = (usize, usize)>) -> Self {
        self.per_exp_classes = Some(counts.into_iter().collect());
        self
    }

    /// Half of the classes in the first experience.
    pub fn with_first_exp_with_half_classes(mut self, on: bool) -> Self {
        self.first_exp_with_half_classes = on;
        self
    }

    /// Task label = experience index.
    pub fn with_return_task_id(mut self, on: bool) -> Self {
        self.return_task_id = on;
        self
    }

    /// Relabel classes from zero in each experience.
    pub fn with_class_ids_from_zero_in_each_exp(mut self, on: bool) -> Self {
        self.class_ids_from_zero_in_each_exp = on;
        self
    }

    /// Relabel classes from zero in class order.
    pub fn with_class_ids_from_zero_from_first_exp(mut self, on: bool) -> Self {
        self.class_ids_from_zero_from_first_exp = on;
        self
    }

    /// The directory of the binary files (or its parent).
    pub fn with_dataset_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dataset_root = Some(dir.into());
        self
    }

    /// The class-incremental split for a dataset of `n_classes` classes.
    pub(crate) fn nc(&self, n_classes: usize) -> Result<NcConfig, BenchmarkError> {
        let per_exp_classes = if self.first_exp_with_half_classes {
            if self.per_exp_classes.is_some() {
                return Err(BenchmarkError::arg(
                    "first_exp_with_half_classes",
                    "cannot be combined with per_exp_classes; choose one",
                ));
            }
            let half = n_classes / 2;
            let rest = self.n_experiences.saturating_sub(1);
            // Avalanche gives a single experience of half the classes (dropping the others);
            // that is refused here.
            if rest == 0 || !half.is_multiple_of(rest) {
                return Err(BenchmarkError::arg(
                    "n_experiences",
                    format!(
                        "with first_exp_with_half_classes, the first experience holds {half} of the \
                         {n_classes} classes and the other n_experiences - 1 share the remaining \
                         {half}: n_experiences - 1 must be a divisor of {half}, got n_experiences = {}",
                        self.n_experiences
                    ),
                ));
            }
            Some(BTreeMap::from([(0, half)]))
        } else {
            self.per_exp_classes.clone()
        };
        Ok(NcConfig {
            n_experiences: self.n_experiences,
            shuffle: true,
            seed: self.seed,
            fixed_class_order: self.fixed_class_order.clone(),
            per_exp_classes,
            task_labels: self.return_task_id,
            class_ids_from_zero_in_each_exp: self.class_ids_from_zero_in_each_exp,
            class_ids_from_zero_from_first_exp: self.class_ids_from_zero_from_first_exp,
            one_dataset_per_exp: false,
        })
    }
}
