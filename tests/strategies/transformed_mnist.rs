//! PermutedFMNIST and RotatedFMNIST on the shipped fixture.

use crate::common::*;
use cl::benchmarks::classic::{TransformedMnistConfig, permuted_fmnist, rotated_fmnist};
use cl::core::data::ClassificationDataset;
use cl::prelude::*;
use rand::SeedableRng;

/// Eval-view batch of the first `n` samples, as host values.
fn values(ds: &ClassificationDataset, n: usize) -> Vec<Vec<f32>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let idx: Vec<usize> = (0..n).collect();
    let b = ds.eval().batch(&idx, &cl::default_device(), &mut rng).unwrap();
    b.x.into_data().try_to_vec::<f32>().unwrap().chunks(784).map(<[f32]>::to_vec).collect()
}

fn normalized_raw(ds: &ClassificationDataset, i: usize) -> Vec<f32> {
    ds.sample(i).unwrap().x.iter().map(|v| (v - 0.2860) / 0.3530).collect()
}

fn config(n: usize) -> TransformedMnistConfig {
    TransformedMnistConfig::new(n).with_dataset_root(fixture_dir())
}

#[test]
fn permuted_experiences_hold_all_samples_under_one_permutation_each() {
    let b = permuted_fmnist(&config(3).with_seed(4)).unwrap();
    assert_eq!(b.n_experiences(), 3);
    assert_eq!(b.n_classes, 10);
    let mut perms = Vec::new();
    for e in 0..3 {
        let (tr, te) = (&b.train_stream[e].dataset, &b.test_stream[e].dataset);
        assert_eq!((tr.len(), te.len()), (2000, 500));
        assert_eq!(b.train_stream[e].classes_in_this_experience, (0..10).collect::<Vec<u32>>());
        // Recover the permutation from sample 0 of train and check it on train and test.
        let out = &values(tr, 1)[0];
        let raw = normalized_raw(tr, 0);
        let mut sorted_out = out.clone();
        let mut sorted_raw = raw.clone();
        sorted_out.sort_by(f32::total_cmp);
        sorted_raw.sort_by(f32::total_cmp);
        assert_eq!(sorted_out, sorted_raw, "a permutation moves values, it does not change them");
        perms.push(out.clone());
        let test_out = &values(te, 1)[0];
        let test_raw = normalized_raw(te, 0);
        let mut a = test_out.clone();
        let mut c = test_raw.clone();
        a.sort_by(f32::total_cmp);
        c.sort_by(f32::total_cmp);
        assert_eq!(a, c);
    }
    assert_ne!(perms[0], perms[1]);
    assert_ne!(perms[1], perms[2]);
    // Same seed, same permutations; another seed, others.
    let again = permuted_fmnist(&config(3).with_seed(4)).unwrap();
    assert_eq!(values(&again.train_stream[1].dataset, 1)[0], perms[1]);
    let other = permuted_fmnist(&config(3).with_seed(5)).unwrap();
    assert_ne!(values(&other.train_stream[1].dataset, 1)[0], perms[1]);
}

#[test]
fn the_same_permutation_is_applied_to_train_and_test_of_an_experience() {
    // Find where pixel k of the input goes in train sample 0, then check test sample 0 obeys
    // the same map: out[i] = in[p[i]] for one p shared by both.
    let b = permuted_fmnist(&config(2).with_seed(9)).unwrap();
    let exp = 1;
    let (tr, te) = (&b.train_stream[exp].dataset, &b.test_stream[exp].dataset);
    let (tr_in, te_in) = (normalized_raw(tr, 0), normalized_raw(te, 0));
    let (tr_out, te_out) = (&values(tr, 1)[0], &values(te, 1)[0]);
    for i in 0..784 {
        // Candidates p with in[p] == out[i] in train; at least one must also match in test.
        let ok = (0..784).any(|p| tr_in[p] == tr_out[i] && te_in[p] == te_out[i]);
        assert!(ok, "output pixel {i} has no common source");
    }
}

#[test]
fn rotations_by_given_angles() {
    let b = rotated_fmnist(&config(3).with_rotations(vec![0.0, 90.0, -90.0]).with_return_task_id(true)).unwrap();
    assert_eq!(b.seed, None);
    let ds0 = &b.train_stream[0].dataset;
    assert_eq!(values(ds0, 1)[0], normalized_raw(ds0, 0), "0 degrees is the identity");
    let raw = normalized_raw(ds0, 0);
    let r90 = &values(&b.train_stream[1].dataset, 1)[0];
    let r270 = &values(&b.train_stream[2].dataset, 1)[0];
    for i in 0..28 {
        for j in 0..28 {
            // Counter-clockwise quarter turn: out[i][j] = in[j][27 - i].
            assert_eq!(r90[i * 28 + j], raw[j * 28 + (27 - i)]);
            assert_eq!(r270[i * 28 + j], raw[(27 - j) * 28 + i]);
        }
    }
    assert_eq!(b.train_stream[2].task_labels, vec![2]);
    assert_eq!(b.test_stream[2].task_labels, vec![2]);
    // Random angles are seeded.
    let a = rotated_fmnist(&config(2).with_seed(1)).unwrap();
    let c = rotated_fmnist(&config(2).with_seed(1)).unwrap();
    assert_eq!(values(&a.test_stream[1].dataset, 2), values(&c.test_stream[1].dataset, 2));
}

#[test]
fn bad_arguments_are_errors() {
    let arg = |r: Result<Benchmark, BenchmarkError>| match r {
        Err(e) if e.rule().is_some() => e.rule().unwrap(),
        other => panic!("expected an argument error, got {other:?}"),
    };
    assert_eq!(arg(permuted_fmnist(&config(0))), "n_experiences_positive");
    assert_eq!(arg(rotated_fmnist(&config(2).with_rotations(vec![10.0]))), "rotations_one_per_experience");
    assert_eq!(arg(rotated_fmnist(&config(1).with_rotations(vec![200.0]))), "rotations_in_range");
    assert_eq!(arg(permuted_fmnist(&config(1).with_rotations(vec![0.0]))), "rotations_only_for_rotated");
}

#[test]
fn explicit_permutations_from_a_json_file_are_applied_and_checked() {
    use cl::benchmarks::classic::Permutations;
    let dir = tempfile::tempdir().unwrap();
    // Experience 0: the identity; experience 1: the pixels reversed.
    let identity: Vec<usize> = (0..784).collect();
    let reversed: Vec<usize> = (0..784).rev().collect();
    let file = dir.path().join("perms.json");
    std::fs::write(&file, serde_json::to_string(&vec![identity.clone(), reversed.clone()]).unwrap()).unwrap();
    let b = permuted_fmnist(&config(2).with_permutations(Permutations::File { file: file.clone() })).unwrap();
    assert_eq!(b.seed, None, "nothing was drawn");
    for (e, perm) in [identity.clone(), reversed.clone()].iter().enumerate() {
        for ds in [&b.train_stream[e].dataset, &b.test_stream[e].dataset] {
            let out = &values(ds, 1)[0];
            let raw = normalized_raw(ds, 0);
            for i in 0..784 {
                assert!((out[i] - raw[perm[i]]).abs() < 1e-5, "experience {e}, pixel {i}");
            }
        }
    }
    // Inline lists give the same benchmark.
    let inline =
        permuted_fmnist(&config(2).with_permutations(Permutations::Lists(vec![identity.clone(), reversed]))).unwrap();
    assert_eq!(values(&inline.train_stream[1].dataset, 2), values(&b.train_stream[1].dataset, 2));

    // Errors name the experience and the fix.
    let error = |perms: Permutations, n: usize| {
        permuted_fmnist(&config(n).with_permutations(perms)).map(|_| ()).unwrap_err().to_string()
    };
    let mut twice = identity.clone();
    twice[10] = 3;
    let e = error(Permutations::Lists(vec![identity.clone(), twice]), 2);
    assert!(e.contains("experience 1") && e.contains("3 appears twice") && e.contains("10 is missing"), "{e}");
    let e = error(Permutations::Lists(vec![identity.clone()]), 2);
    assert!(e.contains("1 permutations for 2 experiences"), "{e}");
    let short: Vec<usize> = (0..783).collect();
    std::fs::write(&file, serde_json::to_string(&vec![identity.clone(), short]).unwrap()).unwrap();
    let e = error(Permutations::File { file: file.clone() }, 2);
    assert!(e.contains("experience 1 has 783 entries") && e.contains("784"), "{e}");
    std::fs::write(&file, "[[0, 1], oops").unwrap();
    let e = error(Permutations::File { file: file.clone() }, 2);
    assert!(e.contains("perms.json") && e.contains("JSON array"), "{e}");
    let e = error(Permutations::File { file: dir.path().join("absent.json") }, 2);
    assert!(e.contains("cannot read the permutations file"), "{e}");
    // Only the permuted benchmarks take permutations.
    let err = rotated_fmnist(&config(2).with_permutations(Permutations::Lists(vec![identity.clone(), identity])))
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("only the permuted benchmarks"), "{err}");
}

/// As Avalanche's PermutedMNIST (`nc_benchmark` over the concatenated permuted datasets, one
/// dataset per experience): each experience is class by class, the classes visited as CPython
/// iterates the set of their concatenation ids — 30..39 for experience 3, in a 32-slot table:
/// 32..39 first, then 30, 31, i.e. classes 2..9, 0, 1.
#[test]
fn permuted_experiences_hold_their_classes_in_avalanches_order() {
    let b = permuted_fmnist(&config(4).with_seed(1)).unwrap();
    let visit_of = |targets: Vec<u32>| {
        let mut v: Vec<u32> = Vec::new();
        for t in targets {
            if v.last() != Some(&t) {
                assert!(!v.contains(&t), "class {t} in two blocks");
                v.push(t);
            }
        }
        v
    };
    for e in 0..4 {
        let expected: Vec<u32> = if e < 3 { (0..10).collect() } else { (2..10).chain(0..2).collect() };
        assert_eq!(visit_of(b.train_stream[e].dataset.targets()), expected, "train experience {e}");
        assert_eq!(visit_of(b.test_stream[e].dataset.targets()), expected, "test experience {e}");
    }
}
