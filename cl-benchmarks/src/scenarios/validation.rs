//! A validation stream split off the training stream, Avalanche's
//! `benchmark_with_validation_stream` with `split_validation_random` /
//! `split_validation_class_balanced`.

use std::collections::BTreeMap;

use cl_core::config::{Validate, rule};
use cl_core::data::ClassificationDataset;
use cl_core::{Benchmark, ClError, Experience, Result, Stream};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::common::set_timeline;

/// How many samples of each training experience go to the validation stream: Avalanche's
/// `validation_size: Union[int, float]`, written the same way (`validation_size = 0.2` or
/// `validation_size = 100`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ValidationSize {
    /// This many samples of each experience (fewer than the experience has).
    Count(usize),
    /// This fraction, in `(0, 1)`, of each experience (rounded down; per class when
    /// class-balanced).
    Fraction(f64),
}

impl Default for ValidationSize {
    /// Half of each experience (Avalanche's default `validation_size=0.5`).
    fn default() -> Self {
        Self::Fraction(0.5)
    }
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

/// Options of [`benchmark_with_validation_stream`]: Avalanche's
/// `benchmark_with_validation_stream(validation_size=0.5, shuffle=False, seed=None,
/// split_strategy=None)`, the split strategy being `split_validation_random` or, with
/// `class_balanced`, `split_validation_class_balanced`.
///
/// Differences from Avalanche: the seed is always explicit (default 0; Avalanche's `seed=None`
/// draws one); a custom split strategy is not supported.
///
/// ```
/// use cl_benchmarks::ValidationStreamConfig;
/// use cl_core::config::ConfigFile;
/// let config = ValidationStreamConfig::default().with_validation_size(0.2).with_class_balanced(true);
/// assert_eq!(ValidationStreamConfig::from_toml("validation_size = 0.2\nclass_balanced = true").unwrap(), config);
/// let by_count = ValidationStreamConfig::from_toml("validation_size = 100").unwrap();
/// assert_eq!(by_count, ValidationStreamConfig::default().with_validation_size(100usize));
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[doc(alias = "split_validation_random")]
#[doc(alias = "split_validation_class_balanced")]
pub struct ValidationStreamConfig {
    /// A fraction in `(0, 1)` of each experience (rounded down) or a count smaller than every
    /// experience (default 0.5).
    pub validation_size: ValidationSize,
    /// Each class of an experience gives the same fraction of its samples (a count is shared in
    /// proportion to the class sizes), as Avalanche's `split_validation_class_balanced`;
    /// otherwise the split ignores classes, as `split_validation_random` (default `false`).
    pub class_balanced: bool,
    /// Draw the validation samples at random (one `ChaCha8Rng::seed_from_u64(seed)` across
    /// the experiences in order); without, the last samples (of each class, when
    /// class-balanced) go to validation, as Avalanche does with `shuffle=False` (default
    /// `false`).
    pub shuffle: bool,
    /// Seed of the shuffle (default 0).
    pub seed: u64,
}

impl ValidationStreamConfig {
    /// A fraction (`0.2`) or a count (`100usize`) of each experience.
    pub fn with_validation_size(mut self, size: impl Into<ValidationSize>) -> Self {
        self.validation_size = size.into();
        self
    }

    /// Whether each class gives the same fraction of its samples.
    pub fn with_class_balanced(mut self, on: bool) -> Self {
        self.class_balanced = on;
        self
    }

    /// Whether the validation samples are drawn at random.
    pub fn with_shuffle(mut self, on: bool) -> Self {
        self.shuffle = on;
        self
    }

    /// The seed of the shuffle.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

const C: &str = "ValidationStreamConfig";

impl Validate for ValidationStreamConfig {
    /// The rules that need no data; `validation_size_below_experience_size` (a count must
    /// leave a training sample in every experience) is checked against the benchmark.
    fn validate(&self) -> Result<()> {
        match self.validation_size {
            ValidationSize::Fraction(f) => rule(C, "validation_size_fraction_in_range", f > 0.0 && f < 1.0, || {
                format!("validation_size = {f} is not a fraction in (0, 1); give e.g. 0.1, or a sample count")
            }),
            ValidationSize::Count(k) => rule(C, "validation_size_count_positive", k > 0, || {
                "validation_size = 0 samples: give a count of at least 1, or a fraction in (0, 1)".to_string()
            }),
        }
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
/// stream, and a validation part, which forms experience `i` of the new `valid` stream (see
/// [`ValidationStreamConfig`] for how the samples are chosen).
///
/// The test stream and the class bookkeeping are kept; the class timelines of both streams are
/// recomputed from their data (Avalanche's `with_classes_timeline`).
///
/// Errors ([`ClError::InvalidConfig`]): the rules of `config`, and
/// `validation_size_below_experience_size` (a count must be smaller than every training
/// experience); a benchmark without training experience (argument `benchmark`).
pub fn benchmark_with_validation_stream(
    benchmark: &Benchmark,
    config: &ValidationStreamConfig,
) -> Result<BenchmarkWithValidation> {
    config.validate()?;
    let size = config.validation_size;
    if benchmark.train_stream.is_empty() {
        return Err(ClError::config("benchmark", "the training stream has no experience"));
    }
    if let ValidationSize::Count(k) = size {
        let small = benchmark.train_stream.iter().find(|e| e.dataset.len() <= k);
        rule(C, "validation_size_below_experience_size", small.is_none(), || {
            let exp = small.expect("the rule failed");
            format!(
                "{k} validation samples leave no training sample in experience {} ({} samples); \
                 use a count below the smallest experience or a fraction",
                exp.current_experience,
                exp.dataset.len()
            )
        })?;
    }

    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let train_name = benchmark.train_stream.name();
    let (mut train_exps, mut valid_exps): (Vec<Experience>, Vec<Experience>) = (Vec::new(), Vec::new());
    for (e, exp) in benchmark.train_stream.iter().enumerate() {
        let (train_idx, valid_idx) = split_one(&exp.dataset, size, config.class_balanced, config.shuffle, &mut rng);
        if valid_idx.is_empty() || train_idx.is_empty() {
            let which = if valid_idx.is_empty() { "validation" } else { "training" };
            return Err(ClError::config(
                "validation_size",
                format!(
                    "{size:?} of experience {e} ({} samples) leaves an empty {which} experience: use a larger fraction \
                     or count (at least one sample of each), or a smaller one",
                    exp.dataset.len()
                ),
            ));
        }
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
    use cl_core::config::{ConfigFile, assert_rule};
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
            let config = ValidationStreamConfig::default()
                .with_validation_size(size)
                .with_class_balanced(class_balanced)
                .with_shuffle(shuffle)
                .with_seed(seed);
            let r = benchmark_with_validation_stream(&b, &config);
            if use_count && count_k >= min_len {
                prop_assert!(r.is_err());
                return Ok(());
            }
            // A fraction that rounds to no sample in some experience is an error, not an empty
            // validation experience.
            if let Err(e) = &r {
                prop_assert!(!use_count && e.to_string().contains("leaves an empty validation experience"), "{e}");
                return Ok(());
            }
            let v = r.unwrap();
            prop_assert!(v.valid_stream.iter().all(|e| !e.dataset.is_empty()));
            prop_assert_eq!(v.valid_stream.len(), b.n_experiences());
            prop_assert_eq!(v.valid_stream.name(), "valid");
            for (e, orig) in b.train_stream.iter().enumerate() {
                let t = &v.benchmark.train_stream[e];
                let va = &v.valid_stream[e];
                let mut all = ids(&t.dataset);
                all.sort_unstable();
                let vids = ids(&va.dataset);
                prop_assert!(vids.iter().all(|i| all.binary_search(i).is_err()));
                all.extend(vids);
                all.sort_unstable();
                let mut want = ids(&orig.dataset);
                want.sort_unstable();
                prop_assert_eq!(all, want);
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
            let again = benchmark_with_validation_stream(&b, &config).unwrap();
            for (x, y) in v.valid_stream.iter().zip(again.valid_stream.iter()) {
                prop_assert_eq!(ids(&x.dataset), ids(&y.dataset));
            }
        }
    }

    /// The config of a split: `size`, class-balanced or not, shuffled or not, `seed`.
    fn cfg(size: impl Into<ValidationSize>, class_balanced: bool, shuffle: bool, seed: u64) -> ValidationStreamConfig {
        ValidationStreamConfig::default()
            .with_validation_size(size)
            .with_class_balanced(class_balanced)
            .with_shuffle(shuffle)
            .with_seed(seed)
    }

    #[test]
    fn unshuffled_takes_the_last_samples_and_seeds_differ() {
        let ds = indexed((0..10).map(|i| i % 2).collect());
        // One experience in dataset order (an unshuffled NI split keeps it).
        let b = ni_benchmark(&ds, &ds, &NiConfig::new(1).with_assignment(crate::ExpAssignment::DatasetOrder)).unwrap();
        let v = benchmark_with_validation_stream(&b, &cfg(0.3, false, false, 0)).unwrap();
        assert_eq!(ids(&v.valid_stream[0].dataset), vec![7, 8, 9]);
        let v = benchmark_with_validation_stream(&b, &cfg(2usize, true, false, 0)).unwrap();
        assert_eq!(ids(&v.valid_stream[0].dataset), vec![8, 9]);
        let big = bench(600);
        let a = benchmark_with_validation_stream(&big, &cfg(0.2, false, true, 1)).unwrap();
        let c = benchmark_with_validation_stream(&big, &cfg(0.2, false, true, 2)).unwrap();
        assert_ne!(ids(&a.valid_stream[0].dataset), ids(&c.valid_stream[0].dataset));
        // Avalanche's defaults: half of each experience, the last samples, classes ignored.
        let v = benchmark_with_validation_stream(&b, &ValidationStreamConfig::default()).unwrap();
        assert_eq!(ids(&v.valid_stream[0].dataset), vec![5, 6, 7, 8, 9]);
    }

    #[test]
    fn keeps_the_rest_of_the_benchmark_and_fills_timelines() {
        let b = bench(60);
        let v = benchmark_with_validation_stream(&b, &cfg(0.5, true, true, 3)).unwrap();
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
    fn rule_validation_size_fraction_in_range() {
        for f in [0.0, 1.0, -0.5, 1.5, f64::NAN, f64::INFINITY] {
            assert_rule(cfg(f, false, true, 0).validate(), "validation_size_fraction_in_range");
            assert_rule(
                benchmark_with_validation_stream(&bench(30), &cfg(f, false, true, 0)),
                "validation_size_fraction_in_range",
            );
        }
        cfg(0.999, false, false, 0).validate().unwrap();
    }

    #[test]
    fn rule_validation_size_count_positive() {
        assert_rule(cfg(0usize, false, true, 0).validate(), "validation_size_count_positive");
        assert_rule(
            benchmark_with_validation_stream(&bench(30), &cfg(0usize, false, true, 0)),
            "validation_size_count_positive",
        );
    }

    #[test]
    fn rule_validation_size_below_experience_size() {
        let b = bench(30); // experiences of 10 samples
        cfg(10usize, true, true, 0).validate().unwrap();
        assert_rule(
            benchmark_with_validation_stream(&b, &cfg(10usize, true, true, 0)),
            "validation_size_below_experience_size",
        );
        assert!(benchmark_with_validation_stream(&b, &cfg(9usize, true, true, 0)).is_ok());
    }

    #[test]
    fn argument_errors() {
        let mut empty = bench(30);
        empty.train_stream = empty.train_stream.slice(0..0);
        assert_rule(benchmark_with_validation_stream(&empty, &cfg(0.5, false, true, 0)), "benchmark");
    }

    #[test]
    fn config_round_trips() {
        for config in [
            ValidationStreamConfig::default(),
            cfg(0.25, true, true, 9),
            cfg(100usize, false, true, u64::MAX),
            cfg(0.5, false, false, 0).with_validation_size(1usize),
        ] {
            assert_eq!(ValidationStreamConfig::from_json(&config.to_json()).unwrap(), config);
            assert_eq!(ValidationStreamConfig::from_toml(&config.to_toml().unwrap()).unwrap(), config);
        }
        // A number with a fractional part is a fraction, an integer a count (as in Avalanche).
        let c = ValidationStreamConfig::from_json(r#"{"validation_size": 3}"#).unwrap();
        assert_eq!(c.validation_size, ValidationSize::Count(3));
        let c = ValidationStreamConfig::from_toml("validation_size = 0.1\nshuffle = true").unwrap();
        assert_eq!(c, cfg(0.1, false, true, 0));
        assert_eq!(ValidationStreamConfig::from_toml("").unwrap(), ValidationStreamConfig::default());
        assert!(ValidationStreamConfig::from_toml("validation = 0.1").is_err(), "unknown fields are refused");
        // Reading validates.
        assert_rule(ValidationStreamConfig::from_toml("validation_size = 1.5"), "validation_size_fraction_in_range");
    }
}
