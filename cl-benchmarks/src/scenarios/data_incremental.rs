//! Data-incremental splitting of a benchmark, Avalanche's `data_incremental_benchmark`.

use cl_core::config::{Validate, rule};
use cl_core::{Benchmark, ClError, Experience, Result, Stream};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::common::{fixed_size_chunks, original_classes_of, set_timeline};

/// Options of [`data_incremental_benchmark`]: Avalanche's
/// `data_incremental_benchmark(benchmark, experience_size, shuffle=False, drop_last=False)` with
/// its default `FixedSizeExperienceSplitter` (the train stream is split).
///
/// Differences from Avalanche: the seed of the shuffle is explicit (default 0); a custom split
/// strategy and other streams are not supported.
///
/// ```
/// use cl_benchmarks::DataIncrementalConfig;
/// use cl_core::config::ConfigFile;
/// let config = DataIncrementalConfig::new(100).with_shuffle(true).with_seed(1);
/// assert_eq!(DataIncrementalConfig::from_toml(&config.to_toml().unwrap()).unwrap(), config);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataIncrementalConfig {
    /// Samples per new experience (required, > 0).
    pub experience_size: usize,
    /// Shuffle the samples of each experience before cutting it (one
    /// `ChaCha8Rng::seed_from_u64(seed)` drawn across the experiences in order); otherwise
    /// chunks follow the dataset order (default `false`).
    #[serde(default)]
    pub shuffle: bool,
    /// Drop the last, shorter chunk of an experience (default `false`).
    #[serde(default)]
    pub drop_last: bool,
    /// Seed of the shuffle (default 0); it becomes the benchmark's seed if it had none and
    /// `shuffle` is set.
    #[serde(default)]
    pub seed: u64,
}

impl DataIncrementalConfig {
    /// Experiences of `experience_size` samples in dataset order, the last one kept.
    pub fn new(experience_size: usize) -> Self {
        Self { experience_size, shuffle: false, drop_last: false, seed: 0 }
    }

    /// Whether the samples of each experience are shuffled first.
    pub fn with_shuffle(mut self, on: bool) -> Self {
        self.shuffle = on;
        self
    }

    /// Whether the last, shorter chunk of an experience is dropped.
    pub fn with_drop_last(mut self, on: bool) -> Self {
        self.drop_last = on;
        self
    }

    /// The seed of the shuffle.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

const C: &str = "DataIncrementalConfig";

impl Validate for DataIncrementalConfig {
    /// The rule that needs no data; `drop_last_keeps_samples` is checked against the benchmark.
    fn validate(&self) -> Result<()> {
        rule(C, "experience_size_positive", self.experience_size > 0, || {
            "experience_size = 0: an experience needs at least 1 sample".to_string()
        })
    }
}

/// Splits every training experience of `benchmark` into consecutive experiences of
/// `config.experience_size` samples (Avalanche's `data_incremental_benchmark`); the test stream
/// is kept.
///
/// Chunks keep their samples' labels and task labels; the class timeline, the classes per
/// experience and `original_classes_in_exp` are recomputed for the new experiences.
///
/// Errors ([`ClError::InvalidConfig`]): the rules of `config`, and `drop_last_keeps_samples`
/// (with `drop_last`, some experience must hold at least `experience_size` samples); a
/// benchmark without training experience (argument `benchmark`).
pub fn data_incremental_benchmark(benchmark: &Benchmark, config: &DataIncrementalConfig) -> Result<Benchmark> {
    config.validate()?;
    let DataIncrementalConfig { experience_size, shuffle, drop_last, seed } = *config;
    if benchmark.train_stream.is_empty() {
        return Err(ClError::config("benchmark", "the training stream has no experience"));
    }
    let name = benchmark.train_stream.name().to_string();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut experiences: Vec<Experience> = Vec::new();
    let mut original_classes_in_exp: Vec<Vec<u32>> = Vec::new();
    for (origin, exp) in benchmark.train_stream.iter().enumerate() {
        for chunk in fixed_size_chunks(exp.dataset.len(), experience_size, shuffle, drop_last, &mut rng) {
            let view = exp.dataset.subset(&chunk)?;
            let new = Experience::new(experiences.len(), view, name.as_str(), exp.n_classes);
            original_classes_in_exp.push(original_classes_of(
                &benchmark.original_classes_in_exp,
                &benchmark.class_mapping,
                origin,
                &new.classes_in_this_experience,
            ));
            experiences.push(new);
        }
    }
    rule(C, "drop_last_keeps_samples", !experiences.is_empty(), || {
        format!(
            "every training experience has fewer than {experience_size} samples, so drop_last leaves nothing; \
             lower experience_size or set drop_last = false"
        )
    })?;
    set_timeline(&mut experiences);
    Ok(Benchmark {
        train_stream: Stream::new(name, experiences),
        test_stream: benchmark.test_stream.clone(),
        n_classes: benchmark.n_classes,
        classes_order: benchmark.classes_order.clone(),
        n_classes_per_exp: original_classes_in_exp.iter().map(Vec::len).collect(),
        original_classes_in_exp,
        class_mapping: benchmark.class_mapping.clone(),
        seed: benchmark.seed.or(shuffle.then_some(seed)),
    })
}

#[cfg(test)]
mod tests {
    use super::super::common::testing::{ids, indexed};
    use super::*;
    use crate::{NcConfig, nc_benchmark};
    use cl_core::config::{ConfigFile, assert_rule};
    use proptest::prelude::*;

    /// The config of a split: `size`, shuffle, drop_last, `seed`.
    fn cfg(size: usize, shuffle: bool, drop_last: bool, seed: u64) -> DataIncrementalConfig {
        DataIncrementalConfig::new(size).with_shuffle(shuffle).with_drop_last(drop_last).with_seed(seed)
    }

    fn bench(n: usize) -> Benchmark {
        let ds = indexed((0..n as u32).map(|i| i % 4).collect());
        nc_benchmark(&ds, &ds, &NcConfig::new(2, false).with_class_order(crate::ClassOrder::Sorted)).unwrap()
    }

    proptest! {
        #[test]
        fn chunks_partition_each_experience(n in 4usize..60, size in 1usize..10, shuffle in any::<bool>(), drop_last in any::<bool>(), seed in any::<u64>()) {
            let b = bench(n);
            let config = cfg(size, shuffle, drop_last, seed);
            let r = data_incremental_benchmark(&b, &config);
            let lens: Vec<usize> = b.train_stream.iter().map(|e| e.dataset.len()).collect();
            if drop_last && lens.iter().all(|&l| l < size) {
                prop_assert!(r.is_err());
                return Ok(());
            }
            let d = r.unwrap();
            let mut k = 0;
            for (origin, exp) in b.train_stream.iter().enumerate() {
                let len = exp.dataset.len();
                let n_chunks = if drop_last { len / size } else { len.div_ceil(size) };
                let mut got: Vec<usize> = Vec::new();
                for j in 0..n_chunks {
                    let c = &d.train_stream[k + j];
                    prop_assert_eq!(c.current_experience, k + j);
                    prop_assert!(c.dataset.len() == size || (!drop_last && j == n_chunks - 1));
                    let cls: Vec<u32> = c.classes_in_this_experience.clone();
                    prop_assert!(cls.iter().all(|x| b.original_classes_in_exp[origin].contains(x)));
                    prop_assert_eq!(&d.original_classes_in_exp[k + j], &cls);
                    got.extend(ids(&c.dataset));
                }
                k += n_chunks;
                got.sort_unstable();
                let mut want = ids(&exp.dataset);
                want.sort_unstable();
                if drop_last {
                    prop_assert_eq!(got.len(), len / size * size);
                    prop_assert!(got.iter().all(|i| want.binary_search(i).is_ok()));
                    got.dedup();
                    prop_assert_eq!(got.len(), len / size * size);
                } else {
                    prop_assert_eq!(got, want);
                }
            }
            prop_assert_eq!(k, d.n_experiences());
            prop_assert_eq!(d.n_classes_per_exp.len(), d.n_experiences());
            // Same seed, same split.
            let again = data_incremental_benchmark(&b, &config).unwrap();
            for (x, y) in d.train_stream.iter().zip(again.train_stream.iter()) {
                prop_assert_eq!(ids(&x.dataset), ids(&y.dataset));
            }
        }
    }

    #[test]
    fn unshuffled_chunks_follow_the_data_and_timeline_is_filled() {
        // Experience 0: classes {0,1} = samples 0,4,8 then 1,5,9 (class by class, as Avalanche).
        let b = bench(12);
        let d = data_incremental_benchmark(&b, &DataIncrementalConfig::new(4)).unwrap();
        assert_eq!(d.n_experiences(), 4);
        assert_eq!(ids(&d.train_stream[0].dataset), vec![0, 4, 8, 1]);
        assert_eq!(ids(&d.train_stream[1].dataset), vec![5, 9]);
        assert_eq!(d.train_stream[2].previous_classes, vec![0, 1]);
        assert_eq!(d.train_stream[1].future_classes, vec![2, 3]);
        assert_eq!(d.test_stream.len(), 2);
        assert_eq!(d.train_stream.name(), "train");
        assert_eq!(d.seed, None);
        let s = data_incremental_benchmark(&b, &cfg(4, true, true, 7)).unwrap();
        assert_eq!(s.n_experiences(), 2);
        assert_eq!(s.seed, Some(7));
        let other = data_incremental_benchmark(&bench(400), &cfg(10, true, false, 8)).unwrap();
        let one = data_incremental_benchmark(&bench(400), &cfg(10, true, false, 7)).unwrap();
        assert_ne!(ids(&other.train_stream[0].dataset), ids(&one.train_stream[0].dataset));
    }

    #[test]
    fn rule_experience_size_positive() {
        assert_rule(DataIncrementalConfig::new(0).validate(), "experience_size_positive");
        assert_rule(data_incremental_benchmark(&bench(8), &DataIncrementalConfig::new(0)), "experience_size_positive");
    }

    #[test]
    fn rule_drop_last_keeps_samples() {
        let b = bench(8); // experiences of 4 samples
        let config = cfg(5, false, true, 0);
        config.validate().unwrap();
        assert_rule(data_incremental_benchmark(&b, &config), "drop_last_keeps_samples");
        assert_eq!(data_incremental_benchmark(&b, &cfg(4, false, true, 0)).unwrap().n_experiences(), 2);
    }

    #[test]
    fn argument_errors() {
        let mut empty = bench(8);
        empty.train_stream = empty.train_stream.slice(0..0);
        assert_rule(data_incremental_benchmark(&empty, &DataIncrementalConfig::new(1)), "benchmark");
    }

    #[test]
    fn config_round_trips() {
        for config in [DataIncrementalConfig::new(1), cfg(10, true, true, 42), cfg(3, false, true, u64::MAX)] {
            assert_eq!(DataIncrementalConfig::from_json(&config.to_json()).unwrap(), config);
            assert_eq!(DataIncrementalConfig::from_toml(&config.to_toml().unwrap()).unwrap(), config);
        }
        assert_eq!(DataIncrementalConfig::from_toml("experience_size = 5").unwrap(), DataIncrementalConfig::new(5));
        assert!(DataIncrementalConfig::from_toml("shuffle = true").is_err(), "experience_size is required");
        assert_rule(DataIncrementalConfig::from_json(r#"{"experience_size": 0}"#), "experience_size_positive");
    }
}
