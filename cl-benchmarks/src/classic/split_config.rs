//! [`SplitConfig`]: the options shared by the class-split benchmarks.

use std::collections::BTreeMap;
use std::path::PathBuf;

use cl_core::config::{Validate, rule};
use serde::{Deserialize, Serialize};

use crate::scenarios::{ClassIds, ClassOrder, NcConfig, validate_split};

/// Options of the class-split benchmarks — [`split_mnist`](super::split_mnist),
/// [`split_fmnist`](super::split_fmnist), [`split_cifar10`](super::split_cifar10),
/// [`split_cifar100`](super::split_cifar100) — with Avalanche's `SplitMNIST` / `SplitCIFAR*`
/// arguments (`SplitMnistConfig` and `SplitCifarConfig` are this type). Avalanche's `shuffle`
/// and `fixed_class_order` are one [`ClassOrder`], its two `class_ids_from_zero_*` flags one
/// [`ClassIds`].
///
/// ```
/// use cl_benchmarks::SplitCifarConfig;
/// use cl_core::config::ConfigFile;
/// let config = SplitCifarConfig::new(11).with_first_exp_with_half_classes(true).with_seed(1);
/// assert_eq!(config.n_experiences, 11);
/// assert_eq!(SplitCifarConfig::from_toml(&config.to_toml().unwrap()).unwrap(), config);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitConfig {
    /// Number of experiences: a divisor of the number of classes (10 or 100), unless
    /// `per_exp_classes` is given; with
    /// `first_exp_with_half_classes`, one more than a divisor of half of them.
    pub n_experiences: usize,
    /// Seed of the class order (default 0).
    #[serde(default)]
    pub seed: u64,
    /// The class order (default [`ClassOrder::Shuffled`] with `seed`).
    #[serde(default)]
    #[doc(alias = "fixed_class_order")]
    pub class_order: ClassOrder,
    /// Classes of some experiences (experience index → count; the others share the rest
    /// evenly), as [`NcConfig::per_exp_classes`]; an extension, Avalanche's SplitCIFAR only
    /// has `first_exp_with_half_classes`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::scenarios::per_exp_keys")]
    pub per_exp_classes: Option<BTreeMap<usize, usize>>,
    /// The first experience holds half of the classes (5 or 50) and the others share the
    /// rest equally (Avalanche's `first_exp_with_half_classes`, default `false`).
    #[serde(default)]
    pub first_exp_with_half_classes: bool,
    /// Task label = experience index (task-incremental; default `false`).
    #[serde(default)]
    pub return_task_id: bool,
    /// How the classes are renumbered (default [`ClassIds::Original`]).
    #[serde(default)]
    #[doc(alias = "class_ids_from_zero_in_each_exp")]
    #[doc(alias = "class_ids_from_zero_from_first_exp")]
    pub class_ids: ClassIds,
    /// Directory holding the dataset files (or its parent); searched for when `None` (see
    /// [`crate::files::locate`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_root: Option<PathBuf>,
}

impl SplitConfig {
    /// `n_experiences` experiences, seed 0, class-incremental, data searched for.
    pub fn new(n_experiences: usize) -> Self {
        Self {
            n_experiences,
            seed: 0,
            class_order: ClassOrder::Shuffled,
            per_exp_classes: None,
            first_exp_with_half_classes: false,
            return_task_id: false,
            class_ids: ClassIds::Original,
            dataset_root: None,
        }
    }

    /// Seed of the class order.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The class order.
    pub fn with_class_order(mut self, order: ClassOrder) -> Self {
        self.class_order = order;
        self
    }

    /// A fixed class order (Avalanche's `fixed_class_order`).
    pub fn with_fixed_class_order(mut self, order: Vec<u32>) -> Self {
        self.class_order = ClassOrder::Fixed { order };
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

    /// How the classes are renumbered.
    pub fn with_class_ids(mut self, class_ids: ClassIds) -> Self {
        self.class_ids = class_ids;
        self
    }

    /// Relabel classes from zero in each experience (Avalanche's flag; `false` goes back to the
    /// original ids).
    pub fn with_class_ids_from_zero_in_each_exp(mut self, on: bool) -> Self {
        self.class_ids = if on { ClassIds::FromZeroInEachExp } else { ClassIds::Original };
        self
    }

    /// Relabel classes from zero in class order (Avalanche's flag; `false` goes back to the
    /// original ids).
    pub fn with_class_ids_from_zero_from_first_exp(mut self, on: bool) -> Self {
        self.class_ids = if on { ClassIds::FromZeroFromFirstExp } else { ClassIds::Original };
        self
    }

    /// The directory of the dataset files (or its parent).
    pub fn with_dataset_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dataset_root = Some(dir.into());
        self
    }

    /// The class-incremental split for a dataset of `n_classes` classes.
    pub(crate) fn nc(&self, n_classes: usize) -> cl_core::Result<NcConfig> {
        self.validate()?;
        let per_exp_classes = if self.first_exp_with_half_classes {
            let half = n_classes / 2;
            let rest = self.n_experiences.saturating_sub(1);
            // Avalanche gives a single experience of half the classes (dropping the others);
            // that is refused here.
            rule("SplitConfig", "half_classes_divisible", rest > 0 && half.is_multiple_of(rest), || {
                format!(
                    "with first_exp_with_half_classes, the first experience holds {half} of the \
                         {n_classes} classes and the other n_experiences - 1 share the remaining \
                         {half}: n_experiences - 1 must be a divisor of {half}, got n_experiences = {}",
                    self.n_experiences
                )
            })?;
            Some(BTreeMap::from([(0, half)]))
        } else {
            self.per_exp_classes.clone()
        };
        let mut nc = NcConfig::new(self.n_experiences, self.return_task_id)
            .with_seed(self.seed)
            .with_class_order(self.class_order.clone())
            .with_class_ids(self.class_ids);
        nc.per_exp_classes = per_exp_classes;
        Ok(nc)
    }
}

impl Validate for SplitConfig {
    fn validate(&self) -> cl_core::Result<()> {
        validate_split("SplitConfig", self.n_experiences, &self.class_order, self.per_exp_classes.as_ref())?;
        rule(
            "SplitConfig",
            "half_classes_alone",
            !(self.first_exp_with_half_classes && self.per_exp_classes.is_some()),
            || "first_exp_with_half_classes cannot be combined with per_exp_classes; choose one".to_string(),
        )
    }
}
