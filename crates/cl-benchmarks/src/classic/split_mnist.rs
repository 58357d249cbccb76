//! SplitMNIST and SplitFMNIST: MNIST-format datasets split by class.

use std::path::PathBuf;
use std::sync::Arc;

use cl_core::data::{Normalize, Transform, TransformGroups};
use cl_core::{Benchmark, ClassificationDataset};

use crate::error::BenchmarkError;
use crate::mnist_files::{self, MnistArrays, MnistKind};
use crate::scenarios::{NcConfig, nc_benchmark};

/// MNIST normalisation (torchvision / Avalanche): mean 0.1307, std 0.3081.
pub const MNIST_MEAN_STD: (f32, f32) = (0.1307, 0.3081);
/// Fashion-MNIST normalisation (Avalanche): mean 0.2860, std 0.3530.
pub const FMNIST_MEAN_STD: (f32, f32) = (0.2860, 0.3530);

/// Options of [`split_mnist`] / [`split_fmnist`] (Avalanche's `SplitMNIST` arguments).
///
/// ```
/// use cl_benchmarks::SplitMnistConfig;
/// let config = SplitMnistConfig::new(5).with_seed(1).with_return_task_id(false);
/// assert_eq!(config.n_experiences, 5);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SplitMnistConfig {
    /// Number of experiences (a divisor of 10, unless `per_exp_classes` is given).
    pub n_experiences: usize,
    /// Seed of the class order.
    pub seed: u64,
    /// A fixed class order (a permutation of 0..10).
    pub fixed_class_order: Option<Vec<u32>>,
    /// Classes of some experiences (experience → count); the others share the rest evenly.
    pub per_exp_classes: Option<std::collections::BTreeMap<usize, usize>>,
    /// Task label = experience index (task-incremental).
    pub return_task_id: bool,
    /// Relabel the classes of each experience from 0.
    pub class_ids_from_zero_in_each_exp: bool,
    /// Directory holding the four IDX files; searched for when `None` (see
    /// [`mnist_files::locate`]).
    pub dataset_root: Option<PathBuf>,
}

impl SplitMnistConfig {
    /// `n_experiences` experiences, seed 0, class-incremental, data searched for.
    pub fn new(n_experiences: usize) -> Self {
        Self {
            n_experiences,
            seed: 0,
            fixed_class_order: None,
            per_exp_classes: None,
            return_task_id: false,
            class_ids_from_zero_in_each_exp: false,
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

    /// The directory of the IDX files.
    pub fn with_dataset_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dataset_root = Some(dir.into());
        self
    }

    fn nc(&self) -> NcConfig {
        NcConfig {
            n_experiences: self.n_experiences,
            shuffle: true,
            seed: self.seed,
            fixed_class_order: self.fixed_class_order.clone(),
            per_exp_classes: self.per_exp_classes.clone(),
            task_labels: self.return_task_id,
            class_ids_from_zero_in_each_exp: self.class_ids_from_zero_in_each_exp,
            class_ids_from_zero_from_first_exp: false,
            one_dataset_per_exp: false,
        }
    }
}

/// The train and test datasets of MNIST-format arrays, samples `[1, rows, cols]` (u8 storage,
/// scaled to [0, 1] and normalised with `mean_std` when batched).
pub fn mnist_datasets(
    arrays: MnistArrays,
    mean_std: (f32, f32),
) -> Result<(ClassificationDataset, ClassificationDataset), BenchmarkError> {
    let shape = vec![1, arrays.rows, arrays.cols];
    let normalize: Arc<dyn Transform> = Arc::new(Normalize::new(vec![mean_std.0], vec![mean_std.1])?);
    let transforms = TransformGroups::same(vec![normalize]);
    let to_targets = |labels: Vec<u8>| labels.into_iter().map(u32::from).collect::<Vec<_>>();
    let train = ClassificationDataset::from_u8(arrays.train_images, shape.clone(), to_targets(arrays.train_labels))?
        .with_transforms(transforms.clone())?;
    let test = ClassificationDataset::from_u8(arrays.test_images, shape, to_targets(arrays.test_labels))?
        .with_transforms(transforms)?;
    Ok((train, test))
}

fn split(kind: MnistKind, mean_std: (f32, f32), config: &SplitMnistConfig) -> Result<Benchmark, BenchmarkError> {
    // Validate the arguments before reading 50 MB of data.
    let probe = ClassificationDataset::from_u8(vec![0; 10], vec![1], (0..10).collect())?;
    nc_benchmark(&probe, &probe, &config.nc())?;
    let arrays = mnist_files::load(kind, config.dataset_root.as_deref())?;
    let (train, test) = mnist_datasets(arrays, mean_std)?;
    nc_benchmark(&train, &test, &config.nc())
}

/// SplitMNIST: MNIST split by class into `n_experiences` experiences (Avalanche's `SplitMNIST`).
///
/// The data is read from `config.dataset_root` or searched for (see [`mnist_files::locate`]);
/// MNIST cannot be installed by a package: download it with
/// [`crate::download::download`] or copy the four IDX files into a directory.
pub fn split_mnist(config: &SplitMnistConfig) -> Result<Benchmark, BenchmarkError> {
    split(MnistKind::Mnist, MNIST_MEAN_STD, config)
}

/// SplitFMNIST: Fashion-MNIST split by class (Avalanche's `SplitFMNIST`).
///
/// ```no_run
/// use cl_benchmarks::{SplitMnistConfig, split_fmnist};
/// let benchmark = split_fmnist(&SplitMnistConfig::new(5).with_seed(1))?;
/// for experience in &benchmark.train_stream {
///     println!("{} {:?}", experience.current_experience, experience.classes_in_this_experience);
/// }
/// # Ok::<(), cl_benchmarks::BenchmarkError>(())
/// ```
pub fn split_fmnist(config: &SplitMnistConfig) -> Result<Benchmark, BenchmarkError> {
    split(MnistKind::FashionMnist, FMNIST_MEAN_STD, config)
}
