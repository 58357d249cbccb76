//! Classic benchmarks built from standard dataset files.

mod benchmark_config;
mod permuted_rotated;
mod split_cifar;
mod split_config;
mod split_mnist;

pub use benchmark_config::BenchmarkConfig;
pub use permuted_rotated::{
    Permutations, TransformedMnistConfig, permuted_fmnist, permuted_mnist, rotated_fmnist, rotated_mnist,
    transformed_benchmark,
};
pub use split_cifar::{
    CIFAR10_MEAN_STD, CIFAR100_MEAN_STD, SplitCifarConfig, cifar_datasets, split_cifar10, split_cifar100,
};
pub use split_config::SplitConfig;
pub use split_mnist::{FMNIST_MEAN_STD, MNIST_MEAN_STD, SplitMnistConfig, mnist_datasets, split_fmnist, split_mnist};
