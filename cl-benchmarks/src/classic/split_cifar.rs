//! SplitCIFAR10 and SplitCIFAR100: CIFAR split by class (Avalanche's `SplitCIFAR10` /
//! `SplitCIFAR100`), with Avalanche's default augmentation and normalisation.

use std::sync::Arc;

use cl_core::Benchmark;
use cl_core::data::ClassificationDataset;
use cl_core::data::{Normalize, RandomCrop, RandomHorizontalFlip, Transform, TransformGroups};

use crate::cifar_bin::IMAGE_SHAPE;
use crate::cifar_files::{self, CifarArrays, CifarKind};
use crate::error::BenchmarkError;
use crate::scenarios::split_classes;

/// CIFAR-10 per-channel (R, G, B) mean and standard deviation used by Avalanche's default
/// `SplitCIFAR10` transforms (`avalanche/benchmarks/classic/ccifar10.py`, avalanche-lib 0.6.0).
pub const CIFAR10_MEAN_STD: ([f32; 3], [f32; 3]) = ([0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010]);

/// CIFAR-100 per-channel (R, G, B) mean and standard deviation used by Avalanche's default
/// `SplitCIFAR100` transforms (`avalanche/benchmarks/classic/ccifar100.py`, avalanche-lib 0.6.0).
pub const CIFAR100_MEAN_STD: ([f32; 3], [f32; 3]) = ([0.5071, 0.4865, 0.4409], [0.2673, 0.2564, 0.2762]);

pub use super::split_config::SplitConfig as SplitCifarConfig;

/// The train and test datasets of CIFAR arrays: samples `[3, 32, 32]` (u8 storage, scaled to
/// `[0, 1]` when batched), targets the (fine) labels, with Avalanche's default transforms:
///
/// - train: `RandomCrop(32, padding 4)`, `RandomHorizontalFlip(0.5)`, `Normalize(mean, std)`;
/// - eval: `Normalize(mean, std)`.
///
/// The crop pads with 0 before normalisation, as torchvision pads the image with black. The
/// test dataset is returned in eval mode (as Avalanche's test streams); strategies pick the
/// view they need anyway.
pub fn cifar_datasets(
    arrays: CifarArrays,
    mean_std: ([f32; 3], [f32; 3]),
) -> Result<(ClassificationDataset, ClassificationDataset), BenchmarkError> {
    let shape = IMAGE_SHAPE.to_vec();
    let normalize: Arc<dyn Transform> = Arc::new(Normalize::new(mean_std.0.to_vec(), mean_std.1.to_vec())?);
    let crop: Arc<dyn Transform> = Arc::new(RandomCrop::new(IMAGE_SHAPE[1], IMAGE_SHAPE[2], 4)?);
    let flip: Arc<dyn Transform> = Arc::new(RandomHorizontalFlip::new(0.5)?);
    let transforms =
        TransformGroups { train: vec![crop, flip, normalize.clone()].into(), eval: vec![normalize].into() };
    let to_targets = |labels: Vec<u8>| labels.into_iter().map(u32::from).collect::<Vec<_>>();
    let train = ClassificationDataset::from_u8(arrays.train_images, shape.clone(), to_targets(arrays.train_labels))?
        .with_transforms(transforms.clone())?;
    let test = ClassificationDataset::from_u8(arrays.test_images, shape, to_targets(arrays.test_labels))?
        .with_transforms(transforms)?
        .eval();
    Ok((train, test))
}

fn split(
    kind: CifarKind,
    mean_std: ([f32; 3], [f32; 3]),
    config: &SplitCifarConfig,
) -> Result<Benchmark, BenchmarkError> {
    // Validate the arguments before reading 180 MB of data.
    let n = kind.n_classes();
    let nc = config.nc(n)?;
    let probe = ClassificationDataset::from_u8(vec![0; n], vec![1], (0..n as u32).collect())?;
    split_classes(&probe, &probe, &nc, "SplitConfig")?;
    let arrays = cifar_files::load(kind, config.dataset_root.as_deref())?;
    let (train, test) = cifar_datasets(arrays, mean_std)?;
    Ok(split_classes(&train, &test, &nc, "SplitConfig")?)
}

/// SplitCIFAR10: CIFAR-10 split by class into `n_experiences` experiences (Avalanche's
/// `SplitCIFAR10`, same default transforms: see [`cifar_datasets`] and [`CIFAR10_MEAN_STD`]).
///
/// The data (binary version) is read from `config.dataset_root` or searched for (see
/// [`files::locate`](crate::files::locate)); get it with [`files::download`](crate::files::download) or by extracting
/// `cifar-10-binary.tar.gz` by hand.
///
/// ```no_run
/// use cl_benchmarks::{SplitCifarConfig, split_cifar10};
/// let benchmark = split_cifar10(&SplitCifarConfig::new(5).with_seed(1).with_dataset_root("/data/cifar10"))?;
/// for experience in &benchmark.train_stream {
///     println!("{} {:?}", experience.current_experience, experience.classes_in_this_experience);
/// }
/// # Ok::<(), cl_benchmarks::BenchmarkError>(())
/// ```
pub fn split_cifar10(config: &SplitCifarConfig) -> Result<Benchmark, BenchmarkError> {
    split(CifarKind::Cifar10, CIFAR10_MEAN_STD, config)
}

/// SplitCIFAR100: CIFAR-100 split by fine class (Avalanche's `SplitCIFAR100`, same default
/// transforms: see [`cifar_datasets`] and [`CIFAR100_MEAN_STD`]). Common settings: 10 or 20
/// experiences, or 11 with `first_exp_with_half_classes` (50 classes, then 10 × 5).
///
/// The data (binary version) is read from `config.dataset_root` or searched for (see
/// [`files::locate`](crate::files::locate)); get it with [`files::download`](crate::files::download) or by extracting
/// `cifar-100-binary.tar.gz` by hand.
pub fn split_cifar100(config: &SplitCifarConfig) -> Result<Benchmark, BenchmarkError> {
    split(CifarKind::Cifar100, CIFAR100_MEAN_STD, config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cifar_bin::IMAGE_LEN;
    use crate::cifar_files::fixtures::{write_cifar10, write_cifar100};
    use crate::data_error::DataError;
    use burn::tensor::Device;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use std::collections::BTreeSet;

    /// The CPU device (the crate's dev-dependencies enable Burn's `flex` backend).
    fn device() -> Device {
        Device::default()
    }

    fn cifar10_dir() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        write_cifar10(&root.path().join("cifar-10-batches-bin"), 20, 10);
        root
    }

    fn rows(x: burn::tensor::Tensor<2>) -> Vec<f32> {
        x.into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
    }

    fn norm(v: f32, c: usize, (mean, std): ([f32; 3], [f32; 3])) -> f32 {
        (v - mean[c]) / std[c]
    }

    #[test]
    fn split_cifar10_partitions_classes() {
        let root = cifar10_dir();
        let b = split_cifar10(&SplitCifarConfig::new(5).with_seed(3).with_dataset_root(root.path())).unwrap();
        assert_eq!((b.n_experiences(), b.n_classes, b.seed), (5, 10, Some(3)));
        assert_eq!(b.n_classes_per_exp, vec![2; 5]);
        let mut all = BTreeSet::new();
        for (train, test) in b.train_stream.iter().zip(b.test_stream.iter()) {
            let classes = &train.classes_in_this_experience;
            assert_eq!(classes.len(), 2);
            assert_eq!(&test.classes_in_this_experience, classes, "train and test agree");
            for c in classes {
                assert!(all.insert(*c), "class {c} in two experiences");
            }
            assert_eq!(train.dataset.len(), 20);
            assert_eq!(test.dataset.len(), 2);
            assert!(train.dataset.targets().iter().all(|y| classes.contains(y)));
            assert!(test.dataset.targets().iter().all(|y| classes.contains(y)));
            assert_eq!(train.dataset.sample_shape(), &[3, 32, 32]);
            assert_eq!(train.dataset.mode(), cl_core::data::TransformMode::Train);
            assert_eq!(test.dataset.mode(), cl_core::data::TransformMode::Eval);
        }
        assert_eq!(all, (0..10).collect());
        let order: BTreeSet<u32> = b.classes_order.iter().copied().collect();
        assert_eq!(order, all);
        // Another seed, another order; the same seed, the same order.
        let again = split_cifar10(&SplitCifarConfig::new(5).with_seed(3).with_dataset_root(root.path())).unwrap();
        assert_eq!(again.classes_order, b.classes_order);

        // Task-incremental, relabelled, fixed order.
        let order: Vec<u32> = vec![9, 8, 7, 6, 5, 4, 3, 2, 1, 0];
        let config = SplitCifarConfig::new(5)
            .with_fixed_class_order(order.clone())
            .with_return_task_id(true)
            .with_class_ids_from_zero_in_each_exp(true)
            .with_dataset_root(root.path().join("cifar-10-batches-bin"));
        let b = split_cifar10(&config).unwrap();
        assert_eq!(b.classes_order, order);
        assert_eq!(b.original_classes_in_exp[0], vec![9, 8]);
        for (e, exp) in b.train_stream.iter().enumerate() {
            assert_eq!(exp.task_labels, vec![e as u32]);
            assert_eq!(exp.classes_in_this_experience, vec![0, 1]);
        }
    }

    #[test]
    fn split_cifar100_configs() {
        let root = tempfile::tempdir().unwrap();
        write_cifar100(root.path(), 200, 100);
        let at = |c: SplitCifarConfig| c.with_dataset_root(root.path());
        let b = split_cifar100(&at(SplitCifarConfig::new(11).with_first_exp_with_half_classes(true))).unwrap();
        let mut expected = vec![5; 11];
        expected[0] = 50;
        assert_eq!(b.n_classes_per_exp, expected);
        assert_eq!(b.train_stream[0].dataset.len(), 100);
        assert_eq!(b.test_stream[0].dataset.len(), 50);
        let b = split_cifar100(&at(SplitCifarConfig::new(10))).unwrap();
        assert_eq!((b.n_classes, b.n_classes_per_exp.clone()), (100, vec![10; 10]));
        let b = split_cifar100(&at(SplitCifarConfig::new(20).with_class_ids_from_zero_from_first_exp(true))).unwrap();
        assert_eq!(b.train_stream[19].classes_in_this_experience, vec![95, 96, 97, 98, 99]);

        // Invalid arguments are reported before the data is searched for (no dataset_root).
        for bad in [
            SplitCifarConfig::new(3),
            SplitCifarConfig::new(1).with_first_exp_with_half_classes(true),
            SplitCifarConfig::new(4).with_first_exp_with_half_classes(true),
            SplitCifarConfig::new(2).with_first_exp_with_half_classes(true).with_per_exp_classes([(0, 50)]),
            SplitCifarConfig::new(10).with_fixed_class_order(vec![0; 100]),
        ] {
            let err = split_cifar100(&bad).unwrap_err();
            assert!(matches!(err, BenchmarkError::Core(cl_core::ClError::InvalidConfig { .. })), "{bad:?}: {err:?}");
        }
        let err = split_cifar100(&SplitCifarConfig::new(1).with_first_exp_with_half_classes(true)).unwrap_err();
        assert!(err.to_string().contains("divisor of 50"), "{err}");
        // A missing directory is a data error naming it.
        let err = split_cifar10(&at(SplitCifarConfig::new(5))).unwrap_err();
        assert!(matches!(err, BenchmarkError::Data(DataError::MissingFiles { .. })), "{err:?}");
    }

    #[test]
    fn eval_batches_are_normalised() {
        let device = device();
        let root = cifar10_dir();
        let arrays = cifar_files::load_dir(CifarKind::Cifar10, root.path()).unwrap();
        let (train, test) = cifar_datasets(arrays.clone(), CIFAR10_MEAN_STD).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for (ds, images, n) in [(test, &arrays.test_images, 10), (train.eval(), &arrays.train_images, 100)] {
            let indices: Vec<usize> = (0..n).collect();
            let batch = ds.batch(&indices, &device, &mut rng).unwrap();
            assert_eq!(batch.x.dims(), [n, IMAGE_LEN]);
            let x = rows(batch.x);
            for (k, (&got, &pixel)) in x.iter().zip(images.iter()).enumerate() {
                let c = (k % IMAGE_LEN) / 1024;
                let want = norm(f32::from(pixel) / 255.0, c, CIFAR10_MEAN_STD);
                assert!((got - want).abs() < 1e-5, "value {k}: {got} != {want}");
            }
        }
        // Through a benchmark experience (a relabelled, re-indexed view).
        let b = split_cifar10(&SplitCifarConfig::new(2).with_seed(7).with_dataset_root(root.path())).unwrap();
        let ds = &b.test_stream[1].dataset;
        let indices: Vec<usize> = (0..ds.len()).collect();
        let x = rows(ds.batch(&indices, &device, &mut rng).unwrap().x);
        for (i, row) in x.chunks(IMAGE_LEN).enumerate() {
            let raw = ds.sample(i).unwrap().x;
            for (k, (&got, &v)) in row.iter().zip(&raw).enumerate() {
                let want = norm(v, k / 1024, CIFAR10_MEAN_STD);
                assert!((got - want).abs() < 1e-5);
            }
        }
    }

    /// The crop offset and flip that turn the normalised image `orig` (values in `[0, 1]`)
    /// into `out`, if any (zero padding of 4).
    fn find_augmentation(out: &[f32], orig: &[f32], ms: ([f32; 3], [f32; 3])) -> Option<(isize, isize, bool)> {
        for flip in [false, true] {
            for top in -4..=4isize {
                'offsets: for left in -4..=4isize {
                    for c in 0..3 {
                        for i in 0..32isize {
                            for j in 0..32isize {
                                let (si, sj) = (top + i, left + if flip { 31 - j } else { j });
                                let v = if (0..32).contains(&si) && (0..32).contains(&sj) {
                                    orig[c * 1024 + (si * 32 + sj) as usize]
                                } else {
                                    0.0
                                };
                                let got = out[c * 1024 + (i * 32 + j) as usize];
                                if (got - norm(v, c, ms)).abs() > 1e-4 {
                                    continue 'offsets;
                                }
                            }
                        }
                    }
                    return Some((top, left, flip));
                }
            }
        }
        None
    }

    #[test]
    fn train_batches_are_augmented() {
        let device = device();
        let root = cifar10_dir();
        let b = split_cifar10(&SplitCifarConfig::new(1).with_dataset_root(root.path())).unwrap();
        let ds = &b.train_stream[0].dataset;
        let indices: Vec<usize> = (0..ds.len()).collect();
        let batch = |seed: u64| ds.batch(&indices, &device, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap();
        let (b1, b1_again, b2) = (batch(1), batch(1), batch(2));
        assert_eq!(b1.x.dims(), [100, IMAGE_LEN]);
        assert_eq!(b1.targets, b2.targets);
        let (x1, x2) = (rows(b1.x), rows(b2.x));
        assert_eq!(x1, rows(b1_again.x), "same seed, same batch");
        assert_ne!(x1, x2, "another seed, other augmentations");
        // The eval view does not depend on the seed.
        let eval =
            |seed: u64| rows(ds.eval().batch(&indices, &device, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap().x);
        assert_eq!(eval(1), eval(2));
        // Every training sample is a padded crop, possibly flipped, of its image, normalised;
        // the two seeds differ only in those choices.
        let mut seen = BTreeSet::new();
        let mut differing = 0;
        for (i, (r1, r2)) in x1.chunks(IMAGE_LEN).zip(x2.chunks(IMAGE_LEN)).enumerate() {
            let orig = ds.sample(i).unwrap().x;
            let a1 = find_augmentation(r1, &orig, CIFAR10_MEAN_STD).unwrap_or_else(|| panic!("sample {i}, seed 1"));
            let a2 = find_augmentation(r2, &orig, CIFAR10_MEAN_STD).unwrap_or_else(|| panic!("sample {i}, seed 2"));
            differing += usize::from(a1 != a2);
            assert_eq!(a1 == a2, r1 == r2);
            seen.insert(a1);
            seen.insert(a2);
        }
        assert!(differing > 90, "{differing} of 100 samples augmented differently");
        assert!(seen.iter().any(|a| a.2) && seen.iter().any(|a| !a.2), "flips drawn both ways");
        assert!(seen.len() > 50, "{} distinct augmentations", seen.len());
    }
}
