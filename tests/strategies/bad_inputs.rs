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

#[test]
fn an_empty_experience_built_by_hand_is_evaluated_as_nan_under_its_key() {
    let benchmark = fixture_benchmark(1);
    let device = cl::default_device();
    let model = SimpleMlpConfig::new().with_hidden_size(16).init(&device).unwrap();
    let mut strategy =
        Naive::builder(model, OptimizerSpec::sgd(0.01), device, NaiveConfig::default()).unwrap().build().unwrap();
    strategy.train(&benchmark.train_stream[0]).unwrap();
    let mut stream: Vec<Experience> = benchmark.test_stream.iter().cloned().collect();
    stream[1].dataset = stream[1].dataset.subset(&[]).unwrap();
    assert!(stream[1].dataset.is_empty());
    let results = strategy.eval(&stream).unwrap();
    let value = |name: String| results.get(&name).copied().unwrap_or_else(|| panic!("no key {name}"));
    assert!(value(MetricName::test_exp_accuracy(0, 1).to_string()).is_nan(), "empty experience: NaN");
    assert!(value(MetricName::test_exp_accuracy(0, 0).to_string()).is_finite());
    assert!(value(MetricName::test_exp_accuracy(0, 2).to_string()).is_finite());
    // Training on it is refused.
    let err = strategy.train(&stream[1]).unwrap_err();
    assert!(matches!(err, ClError::EmptyExperience { experience: 1, .. }), "{err}");
}

#[test]
fn a_split_fmnist_over_files_lacking_classes_is_an_error_not_a_smaller_benchmark() {
    // The fixture's files, keeping only classes 0..5 (IDX written uncompressed under the usual
    // names: compression is told by the magic bytes, not the name).
    let arrays =
        cl::benchmarks::mnist_files::load_dir(cl::benchmarks::MnistKind::FashionMnist, &crate::common::fixture_dir())
            .unwrap();
    let image = arrays.rows * arrays.cols;
    let keep = |labels: &[u8], images: &[u8]| -> (Vec<u8>, Vec<u8>) {
        let idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] < 5).collect();
        (
            idx.iter().map(|&i| labels[i]).collect(),
            idx.iter().flat_map(|&i| images[i * image..(i + 1) * image].to_vec()).collect(),
        )
    };
    let idx_file = |dims: &[usize], data: &[u8]| {
        let mut v = vec![0u8, 0, 8, dims.len() as u8];
        for &d in dims {
            v.extend_from_slice(&(d as u32).to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    };
    let dir = tempfile::tempdir().unwrap();
    let (train_y, train_x) = keep(&arrays.train_labels, &arrays.train_images);
    let (test_y, test_x) = keep(&arrays.test_labels, &arrays.test_images);
    let (r, c) = (arrays.rows, arrays.cols);
    for (name, bytes) in [
        ("train-images-idx3-ubyte.gz", idx_file(&[train_y.len(), r, c], &train_x)),
        ("train-labels-idx1-ubyte.gz", idx_file(&[train_y.len()], &train_y)),
        ("t10k-images-idx3-ubyte.gz", idx_file(&[test_y.len(), r, c], &test_x)),
        ("t10k-labels-idx1-ubyte.gz", idx_file(&[test_y.len()], &test_y)),
    ] {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let err = split_fmnist(&SplitMnistConfig::new(5).with_dataset_root(dir.path())).map(|_| ()).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("hold 5 of the 10 classes") && message.contains("missing [5, 6, 7, 8, 9]"), "{message}");
    assert!(message.contains("complete files"), "names the fix: {message}");
}
