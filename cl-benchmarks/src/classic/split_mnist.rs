//! SplitMNIST and SplitFMNIST: MNIST-format datasets split by class.

use std::sync::Arc;

use cl_core::Benchmark;
use cl_core::data::ClassificationDataset;
use cl_core::data::{Normalize, Transform, TransformGroups};

use crate::error::BenchmarkError;
use crate::mnist_files::{self, MnistArrays, MnistKind};
use crate::scenarios::split_classes;

/// MNIST normalisation (torchvision / Avalanche): mean 0.1307, std 0.3081.
pub const MNIST_MEAN_STD: (f32, f32) = (0.1307, 0.3081);
/// Fashion-MNIST normalisation (Avalanche): mean 0.2860, std 0.3530.
pub const FMNIST_MEAN_STD: (f32, f32) = (0.2860, 0.3530);

pub use super::split_config::SplitConfig as SplitMnistConfig;

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
    let nc = config.nc(10)?;
    let probe = ClassificationDataset::from_u8(vec![0; 10], vec![1], (0..10).collect())?;
    split_classes(&probe, &probe, &nc, "SplitConfig")?;
    let arrays = mnist_files::load(kind, config.dataset_root.as_deref())?;
    let (train, test) = mnist_datasets(arrays, mean_std)?;
    // The files must hold the ten classes: a subset would quietly make a smaller benchmark.
    let present: std::collections::BTreeSet<u32> = train.targets().iter().copied().collect();
    if present.len() != 10 {
        let missing: Vec<u32> = (0..10).filter(|c| !present.contains(c)).collect();
        return Err(cl_core::ClError::config(
            "dataset_root",
            format!(
                "the {kind:?} training files hold {} of the 10 classes (missing {missing:?}): they are not the full \
                 data set; give the directory of the complete files",
                present.len()
            ),
        )
        .into());
    }
    Ok(split_classes(&train, &test, &nc, "SplitConfig")?)
}

/// SplitMNIST: MNIST split by class into `n_experiences` experiences (Avalanche's `SplitMNIST`).
///
/// The data is read from `config.dataset_root` or searched for (see [`files::locate`](crate::files::locate));
/// MNIST cannot be installed by a package: download it with
/// [`files::download`](crate::files::download) or copy the four IDX files into a directory.
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
