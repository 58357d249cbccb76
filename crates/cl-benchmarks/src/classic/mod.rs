//! Classic benchmarks built from standard dataset files.

mod split_mnist;

pub use split_mnist::{FMNIST_MEAN_STD, MNIST_MEAN_STD, SplitMnistConfig, mnist_datasets, split_fmnist, split_mnist};
