//! SplitFMNIST on the shipped Fashion-MNIST fixture: semantics, determinism, bad arguments.

use std::collections::BTreeSet;

use crate::common::*;
use cl::prelude::*;

fn sample_sets(b: &Benchmark) -> Vec<Vec<u32>> {
    b.train_stream.iter().map(|e| e.dataset.targets()).collect()
}

#[test]
fn same_seed_same_split_and_different_seed_different_order() {
    let a = fixture_benchmark(1);
    let b = fixture_benchmark(1);
    assert_eq!(a.classes_order, b.classes_order);
    assert_eq!(sample_sets(&a), sample_sets(&b));
    for (ea, eb) in a.train_stream.iter().zip(b.train_stream.iter()) {
        assert_eq!(ea.dataset.sample(0).unwrap(), eb.dataset.sample(0).unwrap());
    }
    let orders: BTreeSet<Vec<u32>> = (0..5).map(|s| fixture_benchmark(s).classes_order).collect();
    assert!(orders.len() > 1, "different seeds give different class orders");
    assert_eq!(a.seed, Some(1));
}

#[test]
fn classes_partition_0_to_9_and_streams_agree() {
    let b = fixture_benchmark(7);
    assert_eq!(b.n_classes, 10);
    assert_eq!(b.n_experiences(), 5);
    assert_eq!(b.test_stream.len(), 5);
    let mut all = Vec::new();
    for (tr, te) in b.train_stream.iter().zip(b.test_stream.iter()) {
        assert_eq!(tr.classes_in_this_experience.len(), 2);
        assert_eq!(tr.classes_in_this_experience, te.classes_in_this_experience);
        assert_eq!(tr.dataset.classes().into_iter().collect::<Vec<_>>(), tr.classes_in_this_experience);
        assert_eq!(te.dataset.classes().into_iter().collect::<Vec<_>>(), te.classes_in_this_experience);
        assert_eq!(tr.task_labels, vec![0]);
        assert_eq!(tr.origin_stream, "train");
        assert_eq!(te.origin_stream, "test");
        all.extend(tr.classes_in_this_experience.iter().copied());
    }
    all.sort();
    assert_eq!(all, (0..10).collect::<Vec<u32>>());
    // Every sample of the fixture is in exactly one experience.
    let total: usize = b.train_stream.iter().map(|e| e.dataset.len()).sum();
    assert_eq!(total, 2000);
    let total_test: usize = b.test_stream.iter().map(|e| e.dataset.len()).sum();
    assert_eq!(total_test, 500);
    // The class timeline.
    let e2 = &b.train_stream[2];
    assert_eq!(e2.previous_classes.len(), 4);
    assert_eq!(e2.classes_seen_so_far.len(), 6);
    assert_eq!(e2.future_classes.len(), 4);
    assert_eq!(b.original_classes_in_exp[2].len(), 2);
}

#[test]
fn fixed_class_order_task_labels_and_relabelling() {
    let order = vec![9, 8, 7, 6, 5, 4, 3, 2, 1, 0];
    let b = split_fmnist(
        &SplitMnistConfig::new(5)
            .with_fixed_class_order(order.clone())
            .with_return_task_id(true)
            .with_class_ids_from_zero_in_each_exp(true)
            .with_dataset_root(fixture_dir()),
    )
    .unwrap();
    assert_eq!(b.classes_order, order);
    assert_eq!(b.seed, None);
    for (e, exp) in b.train_stream.iter().enumerate() {
        assert_eq!(exp.task_labels, vec![e as u32]);
        assert_eq!(exp.classes_in_this_experience, vec![0, 1]);
        assert_eq!(exp.n_classes, 2, "a model with 2 outputs per head suffices");
        assert_eq!(b.original_classes_in_exp[e], vec![order[2 * e], order[2 * e + 1]]);
    }
    // Class 9 (first in the order) became label 0 of experience 0.
    let exp0 = &b.train_stream[0];
    let raw =
        split_fmnist(&SplitMnistConfig::new(5).with_fixed_class_order(order.clone()).with_dataset_root(fixture_dir()))
            .unwrap();
    let raw_targets = raw.train_stream[0].dataset.targets();
    let mapped: Vec<u32> = raw_targets.iter().map(|&y| if y == 9 { 0 } else { 1 }).collect();
    assert_eq!(exp0.dataset.targets(), mapped);
}

#[test]
fn bad_arguments_are_errors() {
    for n in [0, 3, 11] {
        let err = split_fmnist(&SplitMnistConfig::new(n).with_dataset_root(fixture_dir())).unwrap_err();
        assert!(err.rule().is_some_and(|r| r.starts_with("n_experiences")), "n_experiences = {n}: {err}");
    }
    // 3 experiences work when the first gets 4 classes (the others share the 6 left).
    let b = split_fmnist(&SplitMnistConfig::new(3).with_per_exp_classes([(0, 4)]).with_dataset_root(fixture_dir()))
        .unwrap();
    assert_eq!(b.n_classes_per_exp, vec![4, 3, 3]);
    let b = split_fmnist(&SplitMnistConfig::new(2).with_per_exp_classes([(1, 2)]).with_dataset_root(fixture_dir()))
        .unwrap();
    assert_eq!(b.n_classes_per_exp, vec![8, 2]);
    for bad in [vec![(3, 2)], vec![(0, 0)], vec![(0, 11)], vec![(0, 3), (1, 3), (2, 3)], vec![(0, 5)]] {
        let err =
            split_fmnist(&SplitMnistConfig::new(3).with_per_exp_classes(bad.clone()).with_dataset_root(fixture_dir()))
                .unwrap_err();
        assert!(err.rule().is_some_and(|r| r.starts_with("per_exp_classes")), "{bad:?}: {err}");
    }
    let err =
        split_fmnist(&SplitMnistConfig::new(2).with_fixed_class_order(vec![0, 1, 2]).with_dataset_root(fixture_dir()))
            .unwrap_err();
    assert_eq!(err.rule(), Some("class_order_permutation"), "{err}");
}

#[test]
fn missing_data_directory_error_names_the_directory() {
    let dir = std::env::temp_dir().join("cl-test-no-such-dir");
    let err = split_fmnist(&SplitMnistConfig::new(5).with_dataset_root(&dir)).unwrap_err();
    assert!(matches!(err, BenchmarkError::Data(_)), "{err}");
    assert!(err.to_string().contains("cl-test-no-such-dir"), "{err}");
}

#[test]
fn batches_are_normalised_like_avalanche() {
    let b = fixture_benchmark(1);
    let ds = &b.train_stream[0].dataset;
    let raw = ds.sample(0).unwrap().x; // in [0, 1]
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    let batch = ds.eval().batch(&[0], &cl::default_device(), &mut rng).unwrap();
    let x = batch.x.into_data().try_to_vec::<f32>().unwrap();
    for (r, n) in raw.iter().zip(&x) {
        assert!((((r - 0.2860) / 0.3530) - n).abs() < 1e-5);
    }
    assert_eq!(&*batch.sample_shape, &[1, 28, 28]);
}

/// The labels of `targets` as (label, run length) blocks.
fn blocks(targets: &[u32]) -> Vec<(u32, usize)> {
    let mut out: Vec<(u32, usize)> = Vec::new();
    for &t in targets {
        match out.last_mut() {
            Some((label, n)) if *label == t => *n += 1,
            _ => out.push((t, 1)),
        }
    }
    out
}

/// As Avalanche's `nc_benchmark`: each experience is its classes one after the other, in the
/// order CPython iterates the set of their ids (`{9, 3}` gives 9 then 3, `{7, 4}` 4 then 7),
/// each class's samples in file order.
#[test]
fn experiences_hold_their_classes_in_avalanches_order() {
    let order = vec![5, 6, 1, 2, 0, 8, 9, 3, 7, 4];
    let b =
        split_fmnist(&SplitMnistConfig::new(5).with_fixed_class_order(order).with_dataset_root(fixture_dir())).unwrap();
    let raw = cl::benchmarks::mnist_files::load_dir(cl::benchmarks::MnistKind::FashionMnist, &fixture_dir()).unwrap();
    let count = |labels: &[u8], c: u32| labels.iter().filter(|&&l| u32::from(l) == c).count();
    let expected_visits = [[5, 6], [1, 2], [0, 8], [9, 3], [4, 7]];
    for (e, visit) in expected_visits.iter().enumerate() {
        for (stream, labels) in [(&b.train_stream, &raw.train_labels), (&b.test_stream, &raw.test_labels)] {
            let ds = &stream[e].dataset;
            let expected: Vec<(u32, usize)> = visit.iter().map(|&c| (c, count(labels, c))).collect();
            assert_eq!(blocks(&ds.targets()), expected, "experience {e} of {}", stream.name());
        }
        // Within a class, file order: the first sample of the experience is the first file
        // sample of its first class.
        let first = raw.train_labels.iter().position(|&l| u32::from(l) == visit[0]).unwrap();
        let image = raw.rows * raw.cols;
        let x: Vec<u8> =
            b.train_stream[e].dataset.sample(0).unwrap().x.iter().map(|&v| (v * 255.0).round() as u8).collect();
        assert_eq!(x, raw.train_images[first * image..(first + 1) * image], "experience {e}");
    }
}
