//! # cl-benchmarks
//!
//! Datasets, scenario generators and classic continual-learning benchmarks, usable without any
//! strategy.
//!
//! - **Dataset files**: the readers of the standard formats ([`idx`] for MNIST's IDX files,
//!   [`cifar_bin`] for CIFAR's binary batches), what each dataset's files are
//!   ([`mnist_files`], [`cifar_files`]: [`MnistKind`] and [`CifarKind`] implement
//!   [`files::DatasetFiles`]), finding and downloading them once for every dataset ([`files`]),
//!   and the checked downloader ([`download`]: mirrors, SHA-256, `.tar.gz` extraction with the
//!   `tar` crate, no member escaping the target folder). Their errors are [`DataError`]s, each
//!   naming the file or directories involved and the fix.
//! - **Scenario generators** over any [`data::ClassificationDataset`]: class-incremental
//!   [`nc_benchmark`] ([`NcConfig`]), new-instances [`ni_benchmark`] ([`NiConfig`]), one dataset
//!   per experience [`dataset_benchmark`] ([`DatasetBenchmarkConfig`]), and the transformations
//!   of a benchmark: [`benchmark_with_validation_stream`] ([`ValidationStreamConfig`]),
//!   [`data_incremental_benchmark`] ([`DataIncrementalConfig`]), [`split_online_stream`]
//!   ([`OnlineStreamConfig`]). They fail only on their configs and arguments
//!   ([`cl_core::ClError::InvalidConfig`], naming the rule).
//! - **Classic benchmarks**: SplitMNIST / SplitFMNIST ([`split_mnist`], [`split_fmnist`]),
//!   SplitCIFAR10 / SplitCIFAR100 ([`split_cifar10`], [`split_cifar100`]), all with a
//!   [`SplitConfig`], and Permuted / Rotated (F)MNIST ([`classic::permuted_mnist`], ...,
//!   with a [`classic::TransformedMnistConfig`]). [`BenchmarkConfig`] names any of them with its
//!   config, so a benchmark can be chosen from data at run time. They fail with a
//!   [`BenchmarkError`]: a config rule or a [`DataError`].
//!
//! Every config follows `cl_core`'s idiom ([`cl_core::config`]): serde, Avalanche's defaults,
//! infallible `with_*` setters, one named rule per check, validated where it is consumed.
//!
//! ```
//! use cl_benchmarks::BenchmarkConfig;
//! use cl_core::config::ConfigFile;
//! let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fashion-mnist-mini");
//! let config = BenchmarkConfig::from_toml("type = \"split_fmnist\"\nn_experiences = 5\nseed = 1")?;
//! let benchmark = config.load(fixture)?;
//! for experience in &benchmark.train_stream {
//!     println!("{} {:?}", experience.current_experience, experience.classes_in_this_experience);
//! }
//! # Ok::<(), cl_benchmarks::BenchmarkError>(())
//! ```

#![warn(missing_docs)]

pub mod cifar_bin;
pub mod cifar_files;
pub mod classic;
mod data_error;
pub mod download;
mod error;
pub mod files;
pub mod idx;
pub mod mnist_files;
mod scenarios;

pub use cifar_files::CifarKind;
/// The data model the benchmarks are made of (datasets, loaders, transforms), re-exported so that
/// a training loop needs only this crate.
pub use cl_core::data;
pub use cl_core::{Benchmark, Experience, Result as CoreResult, Stream};
pub use classic::{
    BenchmarkConfig, SplitCifarConfig, SplitConfig, SplitMnistConfig, split_cifar10, split_cifar100, split_fmnist,
    split_mnist,
};
pub use data_error::DataError;
pub use error::BenchmarkError;
pub use mnist_files::MnistKind;
pub use scenarios::{
    BenchmarkWithValidation, ClassIds, ClassOrder, DataIncrementalConfig, DatasetBenchmarkConfig, ExpAssignment,
    NcConfig, NiConfig, OnlineExperience, OnlineStreamConfig, TensorExperience, ValidationSize, ValidationStreamConfig,
    benchmark_with_validation_stream, data_incremental_benchmark, dataset_benchmark, nc_benchmark, nc_benchmark_multi,
    ni_benchmark, ni_exp_assignment, online_split_seed, split_online_experience, split_online_stream,
    tensors_benchmark,
};

#[cfg(test)]
mod tests {
    //! The inventory of the crate's configs, through their public paths: each round-trips
    //! through JSON and TOML, and reading it back validates it.

    use std::fmt::Debug;

    use cl_core::config::ConfigFile;

    use crate::classic::{Permutations, TransformedMnistConfig};
    use crate::download::CurlFetcher;
    use crate::*;

    fn round_trip<T: ConfigFile + PartialEq + Debug>(config: T) {
        let json = config.to_json();
        assert_eq!(T::from_json(&json).unwrap(), config, "{json}");
        let toml = config.to_toml().unwrap();
        assert_eq!(T::from_toml(&toml).unwrap(), config, "{toml}");
    }

    #[test]
    fn every_config_round_trips_through_json_and_toml() {
        round_trip(SplitMnistConfig::new(5).with_seed(7).with_class_order(ClassOrder::Sorted));
        round_trip(
            SplitCifarConfig::new(11)
                .with_first_exp_with_half_classes(true)
                .with_return_task_id(true)
                .with_class_ids(ClassIds::FromZeroInEachExp)
                .with_dataset_root("/data/cifar100"),
        );
        round_trip(SplitConfig::new(2).with_fixed_class_order(vec![1, 0]).with_per_exp_classes([(1, 1)]));
        round_trip(TransformedMnistConfig::new(2).with_rotations(vec![-90.0, 12.5]).with_dataset_root("/data"));
        round_trip(NcConfig::new(5, true).with_class_ids(ClassIds::FromZeroFromFirstExp).with_seed(u64::MAX));
        round_trip(NcConfig::new(1, false).with_one_dataset_per_exp(true));
        round_trip(NiConfig::new(3).with_balance_experiences(true).with_min_class_patterns_in_exp(2));
        round_trip(
            NiConfig::new(2)
                .with_task_labels(true)
                .with_assignment(ExpAssignment::Fixed { exp_assignment: vec![vec![0, 2], vec![1]] }),
        );
        round_trip(NiConfig::new(2).with_assignment(ExpAssignment::DatasetOrder));
        round_trip(DatasetBenchmarkConfig::default().with_complete_test_set_only(true));
        round_trip(ValidationStreamConfig::default().with_validation_size(0.1).with_class_balanced(true));
        round_trip(ValidationStreamConfig::default().with_validation_size(25usize).with_shuffle(true).with_seed(3));
        round_trip(OnlineStreamConfig::new(10).with_shuffle(false).with_access_task_boundaries(true));
        round_trip(DataIncrementalConfig::new(100).with_shuffle(true).with_drop_last(true).with_seed(5));
        round_trip(CurlFetcher::default().with_retry(0));
        round_trip(BenchmarkConfig::SplitCifar100(SplitCifarConfig::new(10).with_seed(2)));
        round_trip(BenchmarkConfig::RotatedFmnist(TransformedMnistConfig::new(1).with_rotations(vec![45.0])));
        round_trip(BenchmarkConfig::PermutedFmnist(
            TransformedMnistConfig::new(2)
                .with_permutations(Permutations::Lists(vec![(0..784).collect(), (0..784).rev().collect()])),
        ));
        round_trip(BenchmarkConfig::PermutedMnist(
            TransformedMnistConfig::new(2).with_permutations(Permutations::File { file: "perms.json".into() }),
        ));
    }

    #[test]
    fn defaults_are_avalanches() {
        let split = SplitConfig::new(5);
        assert_eq!(
            (split.seed, split.class_order.clone(), split.class_ids),
            (0, ClassOrder::Shuffled, ClassIds::Original)
        );
        assert!(!split.first_exp_with_half_classes && !split.return_task_id && split.per_exp_classes.is_none());
        let ni = NiConfig::new(3);
        assert_eq!(ni.assignment, ExpAssignment::Shuffled);
        assert!(!ni.task_labels && !ni.balance_experiences && ni.min_class_patterns_in_exp == 0);
        let v = ValidationStreamConfig::default();
        assert_eq!(v.validation_size, ValidationSize::Fraction(0.5));
        assert!(!v.shuffle && !v.class_balanced);
        let online = OnlineStreamConfig::new(1);
        assert!(online.shuffle && !online.drop_last && !online.access_task_boundaries);
        let di = DataIncrementalConfig::new(1);
        assert!(!di.shuffle && !di.drop_last);
    }
}
