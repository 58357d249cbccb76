//! The catalogue of bad or extreme inputs of issue 15 that the loop meets: each gives a typed
//! error naming the problem, or (for valid extremes) simply works — never a panic or an abort.

use cl::prelude::*;

use crate::common::fixture_benchmark;

#[test]
fn a_batch_size_larger_than_the_data_is_one_batch_not_an_abort() {
    let benchmark = fixture_benchmark(1);
    for (train, eval) in [(usize::MAX, usize::MAX), (1 << 36, 1 << 40)] {
        let device = cl::default_device();
        let model = SimpleMlpConfig::new().with_hidden_size(16).init(&device).unwrap();
        let mut strategy = Replay::builder(model, OptimizerSpec::sgd(0.01), device, ReplayConfig::new(50))
            .unwrap()
            .train_mb_size(train)
            .eval_mb_size(eval)
            .build()
            .unwrap();
        strategy.train(&benchmark.train_stream[0]).unwrap();
        assert_eq!(strategy.state().clock().train_iterations, 1, "one batch of the whole experience");
        strategy.train(&benchmark.train_stream[1]).unwrap();
        let results = strategy.eval(&benchmark.test_stream).unwrap();
        assert!(results.contains_key(&MetricName::test_exp_accuracy(0, 4).to_string()));
    }
}

/// `n` generated samples of `shape` with labels `classes` round-robin.
fn data(n: usize, shape: Vec<usize>, classes: &[u32]) -> ClassificationDataset {
    let len: usize = shape.iter().product();
    let targets: Vec<u32> = (0..n).map(|i| classes[i % classes.len()]).collect();
    ClassificationDataset::from_f32(vec![0.5; n * len], shape, targets).unwrap()
}

fn nc_error(train: &ClassificationDataset, test: &ClassificationDataset) -> String {
    let config = NcConfig::new(2, false).with_class_order(ClassOrder::Sorted);
    nc_benchmark(train, test, &config).map(|_| ()).unwrap_err().to_string()
}

#[test]
fn empty_or_inconsistent_test_data_is_an_error_where_the_benchmark_is_built() {
    let train = data(40, vec![4], &[0, 1, 2, 3]);
    // A test set without the classes of the second experience.
    let err = nc_error(&train, &data(20, vec![4], &[0, 1]));
    assert!(err.contains("no sample of class(es) [2, 3] of experience 1"), "{err}");
    // An empty test set.
    let err = nc_error(&train, &data(0, vec![4], &[0]));
    assert!(err.contains("test dataset is empty"), "{err}");
    // Train and test samples of different shapes.
    let err = nc_error(&train, &data(20, vec![2, 2], &[0, 1, 2, 3]));
    assert!(err.contains("shape [2, 2]") && err.contains("[4]"), "{err}");
    // The consistent case builds.
    let config = NcConfig::new(2, false).with_class_order(ClassOrder::Sorted);
    assert_eq!(nc_benchmark(&train, &data(20, vec![4], &[0, 1, 2, 3]), &config).unwrap().n_experiences(), 2);
}

#[test]
fn a_validation_split_that_leaves_an_experience_empty_is_an_error() {
    use cl::benchmarks::{ValidationStreamConfig, benchmark_with_validation_stream};
    let benchmark = fixture_benchmark(1);
    let err =
        benchmark_with_validation_stream(&benchmark, &ValidationStreamConfig::default().with_validation_size(1e-6))
            .map(|_| ())
            .unwrap_err()
            .to_string();
    assert!(err.contains("empty validation experience") && err.contains("experience 0"), "{err}");
}

#[test]
fn sizes_that_overflow_are_errors_not_wrapped_products() {
    use cl::core::data::{RandomCrop, Transform, checked_sample_len};
    // A shape whose product overflows usize: a layout error, not a wrapped (small) product.
    let err = ClassificationDataset::from_f32(vec![0.0; 4], vec![usize::MAX, 2], vec![0]).unwrap_err();
    assert!(matches!(&err, ClError::DatasetLayout(m) if m.contains("more than usize::MAX")), "{err}");
    assert!(checked_sample_len(&[1 << 40, 1 << 40]).is_err());
    assert_eq!(checked_sample_len(&[1, 28, 28]).unwrap(), 784);
    // A padding so large the padded size would wrap: refused, instead of zeroing every image.
    let err = RandomCrop::new(28, 28, usize::MAX).unwrap_err();
    assert!(err.to_string().contains("padding"), "{err}");
    let crop = RandomCrop::new(28, 28, (isize::MAX as usize) / 4).unwrap();
    assert!(crop.check(&[1, 28, 28]).is_ok());
}
