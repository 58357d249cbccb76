//! [`BenchmarkConfig`]: a classic benchmark as data — its name and its configuration — so that a
//! benchmark can be chosen at run time (from a spec file, a command line, a sweep).

use std::path::{Path, PathBuf};

use cl_core::Benchmark;
use cl_core::config::Validate;
use serde::{Deserialize, Serialize};

use super::{
    SplitCifarConfig, SplitMnistConfig, TransformedMnistConfig, permuted_fmnist, permuted_mnist, rotated_fmnist,
    rotated_mnist, split_cifar10, split_cifar100, split_fmnist, split_mnist,
};
use crate::error::BenchmarkError;

/// Every classic benchmark with its configuration. Serialised with a `type` field next to the
/// configuration's own fields (TOML: `type = "split_fmnist"`, `n_experiences = 5`, ...).
///
/// ```
/// use cl_benchmarks::BenchmarkConfig;
/// use cl_core::config::ConfigFile;
/// let config = BenchmarkConfig::from_toml("type = \"split_fmnist\"\nn_experiences = 5\nseed = 1\n").unwrap();
/// assert_eq!(config.name(), "split_fmnist");
/// # let _ = || -> Result<(), cl_benchmarks::BenchmarkError> {
/// let benchmark = config.build()?; // reads Fashion-MNIST (see `files::locate`)
/// # Ok(()) };
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(missing_docs)] // each variant is the benchmark function of the same name
pub enum BenchmarkConfig {
    SplitMnist(SplitMnistConfig),
    SplitFmnist(SplitMnistConfig),
    SplitCifar10(SplitCifarConfig),
    SplitCifar100(SplitCifarConfig),
    PermutedMnist(TransformedMnistConfig),
    PermutedFmnist(TransformedMnistConfig),
    RotatedMnist(TransformedMnistConfig),
    RotatedFmnist(TransformedMnistConfig),
}

impl BenchmarkConfig {
    /// The benchmark's name, as serialised in `type`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::SplitMnist(_) => "split_mnist",
            Self::SplitFmnist(_) => "split_fmnist",
            Self::SplitCifar10(_) => "split_cifar10",
            Self::SplitCifar100(_) => "split_cifar100",
            Self::PermutedMnist(_) => "permuted_mnist",
            Self::PermutedFmnist(_) => "permuted_fmnist",
            Self::RotatedMnist(_) => "rotated_mnist",
            Self::RotatedFmnist(_) => "rotated_fmnist",
        }
    }

    /// The directory of the dataset files given by the configuration (`dataset_root`); `None`
    /// when they are searched for (see [`crate::files::locate`]).
    pub fn dataset_root(&self) -> Option<&Path> {
        match self {
            Self::SplitMnist(c) | Self::SplitFmnist(c) | Self::SplitCifar10(c) | Self::SplitCifar100(c) => {
                c.dataset_root.as_deref()
            }
            Self::PermutedMnist(c) | Self::PermutedFmnist(c) | Self::RotatedMnist(c) | Self::RotatedFmnist(c) => {
                c.dataset_root.as_deref()
            }
        }
    }

    /// The same benchmark, its dataset files read from `dir` (or its parent, for CIFAR's
    /// archive directory).
    pub fn with_dataset_root(mut self, dir: impl Into<PathBuf>) -> Self {
        let dir = Some(dir.into());
        match &mut self {
            Self::SplitMnist(c) | Self::SplitFmnist(c) | Self::SplitCifar10(c) | Self::SplitCifar100(c) => {
                c.dataset_root = dir
            }
            Self::PermutedMnist(c) | Self::PermutedFmnist(c) | Self::RotatedMnist(c) | Self::RotatedFmnist(c) => {
                c.dataset_root = dir
            }
        }
        self
    }

    /// Builds the benchmark, reading its dataset files from `root_dir` whatever the
    /// configuration's `dataset_root` says (a run description names the benchmark, the machine
    /// where it runs knows where the data is).
    ///
    /// ```
    /// use cl_benchmarks::BenchmarkConfig;
    /// use cl_core::config::ConfigFile;
    /// let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fashion-mnist-mini");
    /// let config = BenchmarkConfig::from_json(r#"{"type": "split_fmnist", "n_experiences": 5, "seed": 1}"#)?;
    /// let benchmark = config.load(fixture)?;
    /// assert_eq!(benchmark.n_experiences(), 5);
    /// # Ok::<(), cl_benchmarks::BenchmarkError>(())
    /// ```
    pub fn load(&self, root_dir: impl Into<PathBuf>) -> Result<Benchmark, BenchmarkError> {
        self.clone().with_dataset_root(root_dir).build()
    }

    /// Builds the benchmark (reading its dataset files from `dataset_root`, or searching for
    /// them), as the function of the same name.
    pub fn build(&self) -> Result<Benchmark, BenchmarkError> {
        match self {
            Self::SplitMnist(c) => split_mnist(c),
            Self::SplitFmnist(c) => split_fmnist(c),
            Self::SplitCifar10(c) => split_cifar10(c),
            Self::SplitCifar100(c) => split_cifar100(c),
            Self::PermutedMnist(c) => permuted_mnist(c),
            Self::PermutedFmnist(c) => permuted_fmnist(c),
            Self::RotatedMnist(c) => rotated_mnist(c),
            Self::RotatedFmnist(c) => rotated_fmnist(c),
        }
    }
}

impl Validate for BenchmarkConfig {
    /// The rules of the benchmark's configuration (a rotation list on a permuted benchmark is
    /// rejected by [`build`](Self::build)).
    fn validate(&self) -> cl_core::Result<()> {
        match self {
            Self::SplitMnist(c) | Self::SplitFmnist(c) | Self::SplitCifar10(c) | Self::SplitCifar100(c) => c.validate(),
            Self::PermutedMnist(c) | Self::PermutedFmnist(c) | Self::RotatedMnist(c) | Self::RotatedFmnist(c) => {
                c.validate()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cl_core::config::{ConfigFile, assert_rule};

    use super::*;
    use crate::scenarios::{ClassIds, ClassOrder, NcConfig};

    fn every_benchmark() -> Vec<BenchmarkConfig> {
        let split = SplitMnistConfig::new(5).with_seed(3).with_fixed_class_order((0..10).rev().collect());
        let cifar = SplitCifarConfig::new(11)
            .with_first_exp_with_half_classes(true)
            .with_class_ids(ClassIds::FromZeroFromFirstExp)
            .with_dataset_root("/data/cifar");
        let transformed = TransformedMnistConfig::new(3).with_seed(2).with_return_task_id(true);
        vec![
            BenchmarkConfig::SplitMnist(split.clone()),
            BenchmarkConfig::SplitFmnist(split.with_per_exp_classes([(0, 2)])),
            BenchmarkConfig::SplitCifar10(SplitCifarConfig::new(5)),
            BenchmarkConfig::SplitCifar100(cifar),
            BenchmarkConfig::PermutedMnist(transformed.clone()),
            BenchmarkConfig::PermutedFmnist(TransformedMnistConfig::new(10)),
            BenchmarkConfig::RotatedMnist(transformed.clone().with_rotations(vec![0.0, 90.0, -45.5])),
            BenchmarkConfig::RotatedFmnist(transformed),
        ]
    }

    #[test]
    fn every_benchmark_config_round_trips_through_json_and_toml() {
        for config in every_benchmark() {
            let json = config.to_json();
            assert!(json.contains(&format!("\"type\": \"{}\"", config.name())), "{json}");
            assert_eq!(BenchmarkConfig::from_json(&json).unwrap(), config, "{json}");
            let toml = config.to_toml().unwrap();
            assert_eq!(BenchmarkConfig::from_toml(&toml).unwrap(), config, "{toml}");
        }
        // The scenario generator's configuration too.
        let nc = NcConfig::new(5, true).with_class_order(ClassOrder::Sorted).with_per_exp_classes([(1, 3)]);
        assert_eq!(NcConfig::from_toml(&nc.to_toml().unwrap()).unwrap(), nc);
        assert_eq!(NcConfig::from_json(&nc.to_json()).unwrap(), nc);
    }

    #[test]
    fn every_split_rule() {
        let cases = [
            (SplitMnistConfig::new(0), "n_experiences_positive"),
            (SplitMnistConfig::new(5).with_fixed_class_order(vec![0, 0, 1]), "class_order_no_duplicates"),
            (SplitMnistConfig::new(5).with_per_exp_classes([(0, 0)]), "per_exp_classes_positive"),
            (SplitMnistConfig::new(5).with_per_exp_classes([(7, 1)]), "per_exp_classes_in_range"),
            (
                SplitMnistConfig::new(5).with_first_exp_with_half_classes(true).with_per_exp_classes([(0, 5)]),
                "half_classes_alone",
            ),
        ];
        for (config, rule) in cases {
            assert_rule(config.validate(), rule);
            assert_rule(BenchmarkConfig::from_json(&BenchmarkConfig::SplitMnist(config).to_json()).map(|_| ()), rule);
        }
        // A rule that depends on the dataset's number of classes, checked before reading data.
        let err = split_fmnist(&SplitMnistConfig::new(4).with_first_exp_with_half_classes(true)).unwrap_err();
        assert_eq!(err.rule(), Some("half_classes_divisible"), "{err}");
    }

    #[test]
    fn every_transformed_rule() {
        assert_rule(TransformedMnistConfig::new(0).validate(), "n_experiences_positive");
        assert_rule(
            TransformedMnistConfig::new(2).with_rotations(vec![0.0]).validate(),
            "rotations_one_per_experience",
        );
        assert_rule(TransformedMnistConfig::new(1).with_rotations(vec![181.0]).validate(), "rotations_in_range");
        let err = permuted_mnist(&TransformedMnistConfig::new(1).with_rotations(vec![0.0])).unwrap_err();
        assert_eq!(err.rule(), Some("rotations_only_for_rotated"), "{err}");
    }

    fn fixture_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fashion-mnist-mini")
    }

    #[test]
    fn benchmarks_chosen_from_data_load_from_a_directory() {
        use crate::cifar_files::fixtures::{write_cifar10, write_cifar100};
        let cifar = tempfile::tempdir().unwrap();
        write_cifar10(&cifar.path().join("c10/cifar-10-batches-bin"), 4, 10);
        write_cifar100(&cifar.path().join("c100"), 200, 100);
        let fmnist = fixture_dir();
        // The MNIST benchmarks read any MNIST-format directory, the fixture included.
        let cases: [(&str, &Path, usize, usize); 8] = [
            (r#"{"type": "split_fmnist", "n_experiences": 5, "seed": 1}"#, &fmnist, 5, 10),
            ("type = \"split_mnist\"\nn_experiences = 2\nclass_order = \"sorted\"", &fmnist, 2, 10),
            (r#"{"type": "permuted_fmnist", "n_experiences": 3, "seed": 4}"#, &fmnist, 3, 10),
            ("type = \"permuted_mnist\"\nn_experiences = 1", &fmnist, 1, 10),
            ("type = \"rotated_fmnist\"\nn_experiences = 2\nrotations_list = [0.0, 90.0]", &fmnist, 2, 10),
            (r#"{"type": "rotated_mnist", "n_experiences": 2, "return_task_id": true}"#, &fmnist, 2, 10),
            (r#"{"type": "split_cifar10", "n_experiences": 5, "seed": 2}"#, &cifar.path().join("c10"), 5, 10),
            (
                "type = \"split_cifar100\"\nn_experiences = 11\nfirst_exp_with_half_classes = true",
                &cifar.path().join("c100"),
                11,
                100,
            ),
        ];
        for (text, root, n_experiences, n_classes) in cases {
            let config = if text.starts_with('{') {
                BenchmarkConfig::from_json(text).unwrap()
            } else {
                BenchmarkConfig::from_toml(text).unwrap()
            };
            assert_eq!(config.dataset_root(), None);
            let b = config.load(root).unwrap();
            assert_eq!((b.n_experiences(), b.n_classes), (n_experiences, n_classes), "{text}");
            let rooted = config.clone().with_dataset_root(root);
            assert_eq!(rooted.dataset_root(), Some(root));
            assert_eq!(BenchmarkConfig::from_json(&rooted.to_json()).unwrap(), rooted);
            let again = rooted.build().unwrap();
            assert_eq!(again.classes_order, b.classes_order, "{text}");
            assert_eq!(again.original_classes_in_exp, b.original_classes_in_exp, "{text}");
        }
        // A directory without the files: the data error names it.
        let err = BenchmarkConfig::SplitFmnist(SplitMnistConfig::new(5)).load(cifar.path()).unwrap_err();
        assert!(matches!(err, BenchmarkError::Data(crate::DataError::MissingFiles { .. })), "{err:?}");
        assert_eq!(err.rule(), None);
    }

    /// The class order and the samples of a seed are fixed (results and resumed runs depend
    /// on them): pinned values of the Fashion-MNIST fixture.
    #[test]
    fn split_fmnist_is_deterministic() {
        let config = SplitMnistConfig::new(5).with_seed(1).with_dataset_root(fixture_dir());
        let a = split_fmnist(&config).unwrap();
        let b = BenchmarkConfig::SplitFmnist(config.clone().with_seed(1)).build().unwrap();
        assert_eq!(a.classes_order, vec![3, 8, 5, 2, 7, 9, 6, 0, 4, 1]);
        // Classes {3, 8}: every 8, then every 3 (CPython's set order, as Avalanche).
        assert_eq!(a.train_stream[0].dataset.targets()[..12], [8; 12]);
        assert_eq!(a.train_stream[0].dataset.targets().last(), Some(&3));
        assert_eq!(a.train_stream.iter().map(|e| e.dataset.len()).collect::<Vec<_>>(), [393, 402, 415, 388, 402]);
        assert_eq!(a.classes_order, b.classes_order);
        for (x, y) in a.train_stream.iter().zip(b.train_stream.iter()) {
            assert_eq!(x.dataset.targets(), y.dataset.targets());
        }
        assert_eq!(a.seed, Some(1));
        let other = split_fmnist(&config.with_seed(2)).unwrap();
        assert_ne!(other.classes_order, a.classes_order);
    }

    #[test]
    fn unknown_benchmarks_are_parse_errors() {
        let err = BenchmarkConfig::from_json(r#"{"type": "split_imagenet", "n_experiences": 5}"#).unwrap_err();
        assert!(matches!(err, cl_core::ClError::ConfigParse { .. }), "{err}");
        assert!(err.to_string().contains("split_imagenet"), "{err}");
    }
}
