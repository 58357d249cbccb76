//! A validation stream split off the training stream, Avalanche's
//! `benchmark_with_validation_stream` with `split_validation_random` /
//! `split_validation_class_balanced`.

use std::collections::BTreeMap;

use cl_core::data::ClassificationDataset;
use cl_core::{Benchmark, Experience, Stream};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::common::set_timeline;
use crate::error::BenchmarkError;

/// How many samples of each training experience go to the validation stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValidationSize {
    /// This fraction, in `(0, 1)`, of each experience (rounded down; per class when
    /// class-balanced).
    Fraction(f64),
    /// This many samples of each experience (fewer than the experience has).
    Count(usize),
}

impl From<f64> for ValidationSize {
    fn from(f: f64) -> Self {
        Self::Fraction(f)
    }
}

impl From<usize> for ValidationSize {
    fn from(n: usize) -> Self {
        Self::Count(n)
    }
}

/// A benchmark whose training stream lost its validation samples, and the validation stream
/// (named `valid`, as in Avalanche) with one experience per training experience.
#[derive(Debug, Clone)]
pub struct BenchmarkWithValidation {
    /// The benchmark; its `train_stream` holds only the remaining training samples.
    pub benchmark: Benchmark,
    /// The validation stream: experience `i` holds the samples taken from training experience `i`.
    pub valid_stream: Stream,
}

/// Number of validation samples of each class (`counts[c]` samples of class `c`): `frac` of
/// each class rounded down, or `count` shared in proportion to the class sizes (largest
/// remainders, ties to the smaller class id).
fn per_class_sizes(counts: &[usize], size: ValidationSize) -> Vec<usize> {
    match size {
        ValidationSize::Fraction(f) => counts.iter().map(|&n| (f * n as f64) as usize).collect(),
        ValidationSize::Count(k) => {
            let total: usize = counts.iter().sum();
            let exact: Vec<(usize, u128)> = counts
                .iter()
                .map(|&n| {
                    let p = k as u128 * n as u128;
                    ((p / total as u128) as usize, p % total as u128)
                })
                .collect();
            let mut out: Vec<usize> = exact.iter().map(|e| e.0).collect();
            let left = k - out.iter().sum::<usize>();
            let mut order: Vec<usize> = (0..counts.len()).collect();
            order.sort_by(|&a, &b| exact[b].1.cmp(&exact[a].1).then(a.cmp(&b)));
            for &c in &order[..left] {
                out[c] += 1;
            }
            out
        }
    }
}

/// Local indices (train, valid) of one experience's dataset.
fn split_one(
    ds: &ClassificationDataset,
    size: ValidationSize,
    class_balanced: bool,
    shuffle: bool,
    rng: &mut ChaCha8Rng,
) -> (Vec<usize>, Vec<usize>) {
    let n = ds.len();
    let (mut train, mut valid) = if class_balanced {
        let mut by_class: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (i, y) in ds.targets().into_iter().enumerate() {
            by_class.entry(y).or_default().push(i);
        }
        let groups: Vec<Vec<usize>> = by_class.into_values().collect();
        let sizes = per_class_sizes(&groups.iter().map(Vec::len).collect::<Vec<_>>(), size);
        let (mut train, mut valid) = (Vec::with_capacity(n), Vec::new());
        for (mut idx, k) in groups.into_iter().zip(sizes) {
            if shuffle {
                idx.shuffle(rng);
            }
            let cut = idx.len() - k;
            train.extend_from_slice(&idx[..cut]);
            valid.extend_from_slice(&idx[cut..]);
        }
        (train, valid)
    } else {
        let mut order: Vec<usize> = (0..n).collect();
        if shuffle {
            order.shuffle(rng);
        }
        let k = match size {
            ValidationSize::Fraction(f) => (f * n as f64) as usize,
            ValidationSize::Count(k) => k,
        };
        let valid = order.split_off(n - k);
        (order, valid)
    };
    train.sort_unstable();
    valid.sort_unstable();
    (train, valid)
}

/// Splits every training experience of `benchmark` into a training part, kept in the train
/// stream, and a validation part, which forms experience `i` of the new `valid` stream.
///
/// `validation_size` is a fraction in `(0, 1)` of each experience (rounded down) or a count
/// smaller than every experience (`0.2` and `100usize` convert). With `class_balanced`, each
/// class of an experience gives the same fraction of its samples (a count is shared in
/// proportion to the class sizes), as Avalanche's `split_validation_class_balanced`; otherwise
/// the split ignores classes, as `split_validation_random`. With `shuffle`, samples are drawn at
/// random (one `ChaCha8Rng::seed_from_u64(seed)` across the experiences in order); without, the
/// last samples (of each class, when class-balanced) go to validation, as Avalanche does with
/// `shuffle=False`. The test stream and the class bookkeeping are kept; the class timelines
/// of both streams are recomputed from their data (Avalanche's `with_classes_timeline`).
pub fn benchmark_with_validation_stream(
    benchmark: &Benchmark,
    validation_size: impl Into<ValidationSize>,
    class_balanced: bool,
    shuffle: bool,
    seed: u64,
) -> Result<BenchmarkWithValidation, BenchmarkError> {
    let size = validation_size.into();
    if benchmark.train_stream.is_empty() {
        return Err(BenchmarkError::arg("benchmark", "the training stream has no experience"));
    }
    match size {
        ValidationSize::Fraction(f) if !(f > 0.0 && f < 1.0) => {
            return Err(BenchmarkError::arg(
                "validation_size",
                format!("fraction {f} is not in (0, 1); give e.g. 0.1, or a sample count"),
            ));
        }
        ValidationSize::Count(0) => {
            return Err(BenchmarkError::arg("validation_size", "a count must be at least 1"));
        }
        ValidationSize::Count(k) => {
            if let Some(exp) = benchmark.train_stream.iter().find(|e| e.dataset.len() <= k) {
                return Err(BenchmarkError::arg(
                    "validation_size",
                    format!(
                        "{k} validation samples leave no training sample in experience {} ({} samples); \
                         use a count below the smallest experience or a fraction",
                        exp.current_experience,
                        exp.dataset.len()
                    ),
                ));
            }
        }
        ValidationSize::Fraction(_) => {}
    }

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let train_name = benchmark.train_stream.name();
    let (mut train_exps, mut valid_exps): (Vec<Experience>, Vec<Experience>) = (Vec::new(), Vec::new());
    for (e, exp) in benchmark.train_stream.iter().enumerate() {
        let (train_idx, valid_idx) = split_one(&exp.dataset, size, class_balanced, shuffle, &mut rng);
        train_exps.push(Experience::new(e, exp.dataset.subset(&train_idx)?, train_name, exp.n_classes));
        valid_exps.push(Experience::new(e, exp.dataset.subset(&valid_idx)?, "valid", exp.n_classes));
    }
    set_timeline(&mut train_exps);
    set_timeline(&mut valid_exps);
    let mut out = benchmark.clone();
    out.train_stream = Stream::new(train_name, train_exps);
    Ok(BenchmarkWithValidation { benchmark: out, valid_stream: Stream::new("valid", valid_exps) })
}

#[cfg(test)]
mod tests {
    use super::super::common::testing::{ids, indexed};
    use super::*;
    use crate::{NiConfig, ni_benchmark};
    use proptest::prelude::*;

    /// `n` samples, class sizes skewed (class c has about (c + 1) parts), 3 NI experiences.
    fn bench(n: usize) -> Benchmark {
        let targets: Vec<u32> = (0..n).map(|i| [0, 1, 1, 2, 2, 2][i % 6]).collect();
        let ds = indexed(targets);
        ni_benchmark(&ds, &ds, &NiConfig::new(3).with_balance_experiences(true)).unwrap()
    }

    fn count(ds: &ClassificationDataset, c: u32) -> usize {
        ds.targets().iter().filter(|&&y| y == c).count()
    }

    proptest! {
        #[test]
        fn split_is_disjoint_and_sized(
            n in 6usize..120,
            frac in 0.01f64..0.99,
            count_k in 1usize..10,
            use_count in any::<bool>(),
            class_balanced in any::<bool>(),
            shuffle in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let b = bench(n);
            let size = if use_count { ValidationSize::Count(count_k) } else { ValidationSize::Fraction(frac) };
            let min_len = b.train_stream.iter().map(|e| e.dataset.len()).min().unwrap();
            let r = benchmark_with_validation_stream(&b, size, class_balanced, shuffle, seed);
            if use_count && count_k >= min_len {
                prop_assert!(r.is_err());
                return Ok(());
            }
            let v = r.unwrap();
            prop_assert_eq!(v.valid_stream.len(), b.n_experiences());
            prop_assert_eq!(v.valid_stream.name(), "valid");
            for (e, orig) in b.train_stream.iter().enumerate() {
                let t = &v.benchmark.train_stream[e];
                let va = &v.valid_stream[e];
                let mut all = ids(&t.dataset);
                let vids = ids(&va.dataset);
                prop_assert!(vids.iter().all(|i| all.binary_search(i).is_err()));
                all.extend(vids);
                all.sort_unstable();
                prop_assert_eq!(all, ids(&orig.dataset));
                let len = orig.dataset.len();
                prop_assert!(!t.dataset.is_empty());
                if class_balanced {
                    for c in orig.classes_in_this_experience.iter().copied() {
                        let nc = count(&orig.dataset, c);
                        let vc = count(&va.dataset, c);
                        match size {
                            ValidationSize::Fraction(f) => prop_assert_eq!(vc, (f * nc as f64) as usize),
                            ValidationSize::Count(k) => {
                                // Within one sample of the exact share.
                                let exact = k as f64 * nc as f64 / len as f64;
                                prop_assert!((vc as f64 - exact).abs() < 1.0, "class {} got {} of share {}", c, vc, exact);
                            }
                        }
                    }
                }
                let want = match size {
                    ValidationSize::Fraction(f) if !class_balanced => (f * len as f64) as usize,
                    ValidationSize::Count(k) => k,
                    ValidationSize::Fraction(_) => va.dataset.len(),
                };
                prop_assert_eq!(va.dataset.len(), want);
            }
            // Same seed, same split.
            let again = benchmark_with_validation_stream(&b, size, class_balanced, shuffle, seed).unwrap();
            for (x, y) in v.valid_stream.iter().zip(again.valid_stream.iter()) {
                prop_assert_eq!(ids(&x.dataset), ids(&y.dataset));
            }
        }
    }

    #[test]
    fn unshuffled_takes_the_last_samples_and_seeds_differ() {
        let ds = indexed((0..10).map(|i| i % 2).collect());
        let b = ni_benchmark(&ds, &ds, &NiConfig::new(1)).unwrap();
        let v = benchmark_with_validation_stream(&b, 0.3, false, false, 0).unwrap();
        assert_eq!(ids(&v.valid_stream[0].dataset), vec![7, 8, 9]);
        let v = benchmark_with_validation_stream(&b, 2usize, true, false, 0).unwrap();
        assert_eq!(ids(&v.valid_stream[0].dataset), vec![8, 9]);
        let big = bench(600);
        let a = benchmark_with_validation_stream(&big, 0.2, false, true, 1).unwrap();
        let c = benchmark_with_validation_stream(&big, 0.2, false, true, 2).unwrap();
        assert_ne!(ids(&a.valid_stream[0].dataset), ids(&c.valid_stream[0].dataset));
    }

    #[test]
    fn keeps_the_rest_of_the_benchmark_and_fills_timelines() {
        let b = bench(60);
        let v = benchmark_with_validation_stream(&b, 0.5, true, true, 3).unwrap();
        assert_eq!(v.benchmark.test_stream.len(), 1);
        assert_eq!(v.benchmark.n_classes, b.n_classes);
        assert_eq!(v.benchmark.seed, b.seed);
        let last = &v.valid_stream[2];
        assert_eq!(last.origin_stream, "valid");
        assert_eq!(last.previous_classes, vec![0, 1, 2]);
        assert_eq!(last.classes_seen_so_far, vec![0, 1, 2]);
        assert_eq!(v.valid_stream[0].future_classes, vec![0, 1, 2]);
        assert_eq!(v.benchmark.train_stream[1].origin_stream, "train");
        assert_eq!(v.benchmark.train_stream[1].current_experience, 1);
    }

    #[test]
    fn errors() {
        let b = bench(30); // experiences of 10 samples
        let arg = |r: Result<BenchmarkWithValidation, BenchmarkError>, name: &str| matches!(r, Err(BenchmarkError::Core(cl_core::ClError::InvalidConfig { rule, .. })) if rule == name);
        for f in [0.0, 1.0, -0.5, 1.5, f64::NAN] {
            assert!(arg(benchmark_with_validation_stream(&b, f, false, true, 0), "validation_size"));
        }
        assert!(arg(benchmark_with_validation_stream(&b, 0usize, false, true, 0), "validation_size"));
        assert!(arg(benchmark_with_validation_stream(&b, 10usize, true, true, 0), "validation_size"));
        assert!(benchmark_with_validation_stream(&b, 9usize, true, true, 0).is_ok());
        let mut empty = b.clone();
        empty.train_stream = empty.train_stream.slice(0..0);
        assert!(arg(benchmark_with_validation_stream(&empty, 0.5, false, true, 0), "benchmark"));
    }
}
