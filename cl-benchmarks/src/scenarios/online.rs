//! Online streams of small experiences, Avalanche's `split_online_stream` with its
//! `FixedSizeExperienceSplitter` (`avalanche/benchmarks/scenarios/online.py`).

use cl_core::config::{Validate, rule};
use cl_core::{Experience, Result, Stream};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::common::{fixed_size_chunks, set_timeline};

/// Options of [`split_online_stream`]: Avalanche's `split_online_stream(original_stream,
/// experience_size, shuffle=True, drop_last=False, access_task_boundaries=False, seed=None)`.
///
/// Differences from Avalanche: the seed is always explicit (default 0; Avalanche's `seed=None`
/// draws one); a custom experience splitter is not supported.
///
/// ```
/// use cl_benchmarks::OnlineStreamConfig;
/// use cl_core::config::ConfigFile;
/// let config = OnlineStreamConfig::new(10).with_drop_last(true).with_seed(3);
/// assert!(config.shuffle, "Avalanche shuffles by default");
/// assert_eq!(OnlineStreamConfig::from_toml(&config.to_toml().unwrap()).unwrap(), config);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnlineStreamConfig {
    /// Samples per sub-experience (required, > 0).
    pub experience_size: usize,
    /// Shuffle the samples of each experience before cutting it (one
    /// `ChaCha8Rng::seed_from_u64(seed)` drawn across the experiences in order; default `true`).
    #[serde(default = "default_shuffle")]
    pub shuffle: bool,
    /// Drop the last, shorter sub-experience of an experience (default `false`).
    #[serde(default)]
    pub drop_last: bool,
    /// Whether training may use the task-boundary fields of the sub-experiences (see
    /// [`OnlineExperience::task_boundaries`]; default `false`).
    #[serde(default)]
    pub access_task_boundaries: bool,
    /// Seed of the shuffle (default 0).
    #[serde(default)]
    pub seed: u64,
}

fn default_shuffle() -> bool {
    true
}

impl OnlineStreamConfig {
    /// Sub-experiences of `experience_size` samples, shuffled with seed 0, the last one kept,
    /// task boundaries hidden.
    pub fn new(experience_size: usize) -> Self {
        Self { experience_size, shuffle: true, drop_last: false, access_task_boundaries: false, seed: 0 }
    }

    /// Whether the samples of each experience are shuffled first.
    pub fn with_shuffle(mut self, on: bool) -> Self {
        self.shuffle = on;
        self
    }

    /// Whether the last, shorter sub-experience of an experience is dropped.
    pub fn with_drop_last(mut self, on: bool) -> Self {
        self.drop_last = on;
        self
    }

    /// Whether training may use the task boundaries.
    pub fn with_access_task_boundaries(mut self, on: bool) -> Self {
        self.access_task_boundaries = on;
        self
    }

    /// The seed of the shuffle.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

impl Validate for OnlineStreamConfig {
    fn validate(&self) -> Result<()> {
        rule("OnlineStreamConfig", "experience_size_positive", self.experience_size > 0, || {
            "experience_size = 0: a sub-experience needs at least 1 sample".to_string()
        })
    }
}

/// One small experience of an online stream (Avalanche's `OnlineCLExperience`), cut from an
/// experience of the original stream.
#[derive(Debug, Clone)]
pub struct OnlineExperience {
    /// The sub-experience: its data, its position in the online stream, the stream name
    /// `<original>_online`, and the class timeline over the online stream.
    pub experience: Experience,
    /// Index of the original experience it was cut from.
    pub origin_experience: usize,
    /// First sub-experience of its original experience (the first after a drift).
    pub is_first_subexp: bool,
    /// Last sub-experience of its original experience (the last before a drift).
    pub is_last_subexp: bool,
    /// Number of samples of this sub-experience (Avalanche's `subexp_size`).
    pub sub_exp_size: usize,
    /// Number of sub-experiences cut from the same original experience.
    pub sub_stream_length: usize,
    /// Whether training may use the task-boundary fields (`is_first_subexp`,
    /// `is_last_subexp`, `origin_experience`, `sub_stream_length`). When false the split is
    /// boundary-agnostic: strategies must read them through [`Self::task_boundaries`] and
    /// leave them to logging and metrics.
    pub access_task_boundaries: bool,
}

impl OnlineExperience {
    /// `(is_first_subexp, is_last_subexp)` when the model may know the task boundaries
    /// (`access_task_boundaries`), `None` otherwise: the training-side view of the flags.
    pub fn task_boundaries(&self) -> Option<(bool, bool)> {
        self.access_task_boundaries.then_some((self.is_first_subexp, self.is_last_subexp))
    }
}

/// Splits each experience of `stream` into consecutive sub-experiences of
/// `config.experience_size` samples, in stream order, for online continual learning.
///
/// With `shuffle`, the samples of each experience are shuffled first; the last, shorter
/// sub-experience of an experience is dropped when `drop_last`. The first and last
/// sub-experience of each original experience are flagged; the flags are meant for training
/// only with `access_task_boundaries` (see [`OnlineExperience::task_boundaries`]).
/// Sub-experiences are numbered 0, 1, ... over the whole online stream, named
/// `<stream name>_online`, keep labels, task labels and `n_classes`, and get a class timeline
/// over the online stream. An experience smaller than `experience_size` with `drop_last` gives
/// no sub-experience.
///
/// Errors: the rules of `config` ([`cl_core::ClError::InvalidConfig`]), and
/// `drop_last_keeps_samples` when no sub-experience is left (every experience smaller than
/// `experience_size` with `drop_last`, or an empty stream) — as `data_incremental_benchmark`.
pub fn split_online_stream(stream: &Stream, config: &OnlineStreamConfig) -> Result<Vec<OnlineExperience>> {
    config.validate()?;
    let OnlineStreamConfig { experience_size, shuffle, drop_last, access_task_boundaries, seed } = *config;
    let name = format!("{}_online", stream.name());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out: Vec<OnlineExperience> = Vec::new();
    for (origin, exp) in stream.iter().enumerate() {
        let chunks = fixed_size_chunks(exp.dataset.len(), experience_size, shuffle, drop_last, &mut rng);
        let n_chunks = chunks.len();
        for (j, chunk) in chunks.into_iter().enumerate() {
            let view = exp.dataset.subset(&chunk)?;
            out.push(OnlineExperience {
                experience: Experience::new(out.len(), view, name.as_str(), exp.n_classes),
                origin_experience: origin,
                is_first_subexp: j == 0,
                is_last_subexp: j + 1 == n_chunks,
                sub_exp_size: chunk.len(),
                sub_stream_length: n_chunks,
                access_task_boundaries,
            });
        }
    }
    // As `data_incremental_benchmark`: a split that leaves nothing is an error, not an empty list.
    rule("OnlineStreamConfig", "drop_last_keeps_samples", !out.is_empty(), || {
        format!(
            "every experience of stream `{}` has fewer than {experience_size} samples (or there is none), so the \
             online stream is empty; lower experience_size or set drop_last = false",
            stream.name()
        )
    })?;
    let mut experiences: Vec<Experience> = out.iter().map(|o| o.experience.clone()).collect();
    set_timeline(&mut experiences);
    for (o, e) in out.iter_mut().zip(experiences) {
        o.experience = e;
    }
    Ok(out)
}

/// The seed of experience `index`'s online split in a run seeded `run_seed` (what `cl run`'s
/// `protocol.online` and `cargo xtask bench` / `fidelity` use): a different shuffle per
/// experience, the same for the same run.
pub fn online_split_seed(run_seed: u64, index: usize) -> u64 {
    run_seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The online sub-experiences of one experience, numbered from 0, ready for
/// `strategy.train(&subs)`: Avalanche 0.6's online protocol (`examples/online_replay.py`), which
/// calls `split_online_stream([exp], experience_size)` on each experience of the train stream,
/// trains on the result in one call and evaluates at the experience boundary.
///
/// The same as [`split_online_stream`] over a stream holding `experience` alone (stream name
/// `<origin>_online`, class timeline within the experience), keeping the experiences only.
///
/// ```
/// use cl_benchmarks::{NcConfig, OnlineStreamConfig, nc_benchmark, split_online_experience};
/// # let data = cl_core::data::ClassificationDataset::from_f32(
/// #     (0..40).map(|i| i as f32).collect(), vec![1], (0..40u32).map(|i| i % 4).collect())?;
/// let benchmark = nc_benchmark(&data, &data, &NcConfig::new(2, false))?;
/// let subs = split_online_experience(&benchmark.train_stream[1], &OnlineStreamConfig::new(8))?;
/// assert_eq!(subs.iter().map(|e| e.dataset.len()).collect::<Vec<_>>(), [8, 8, 4]);
/// assert_eq!(subs[0].current_experience, 0);
/// # Ok::<(), cl_core::ClError>(())
/// ```
pub fn split_online_experience(experience: &Experience, config: &OnlineStreamConfig) -> Result<Vec<Experience>> {
    let stream = Stream::new(experience.origin_stream.clone(), vec![experience.clone()]);
    Ok(split_online_stream(&stream, config)?.into_iter().map(|o| o.experience).collect())
}

#[cfg(test)]
mod tests {
    use super::super::common::testing::{ids, indexed};
    use super::*;
    use crate::{NcConfig, nc_benchmark};
    use cl_core::config::{ConfigFile, assert_rule};
    use proptest::prelude::*;

    /// The config of a split: `size`, shuffle, drop_last, access_task_boundaries, `seed`.
    fn cfg(size: usize, shuffle: bool, drop_last: bool, access: bool, seed: u64) -> OnlineStreamConfig {
        OnlineStreamConfig::new(size)
            .with_shuffle(shuffle)
            .with_drop_last(drop_last)
            .with_access_task_boundaries(access)
            .with_seed(seed)
    }

    fn stream(n: usize) -> Stream {
        let ds = indexed((0..n as u32).map(|i| i % 6).collect());
        nc_benchmark(&ds, &ds, &NcConfig::new(3, false).with_seed(5)).unwrap().train_stream
    }

    proptest! {
        #[test]
        fn sub_experiences_partition_each_experience(
            n in 6usize..90,
            size in 1usize..12,
            shuffle in any::<bool>(),
            drop_last in any::<bool>(),
            access in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let s = stream(n);
            let config = OnlineStreamConfig::new(size)
                .with_shuffle(shuffle)
                .with_drop_last(drop_last)
                .with_access_task_boundaries(access)
                .with_seed(seed);
            let result = split_online_stream(&s, &config);
            if drop_last && s.iter().all(|e| e.dataset.len() < size) {
                prop_assert_eq!(result.unwrap_err().rule(), Some("drop_last_keeps_samples"));
                return Ok(());
            }
            let online = result.unwrap();
            let mut k = 0;
            for (origin, exp) in s.iter().enumerate() {
                let len = exp.dataset.len();
                let n_sub = if drop_last { len / size } else { len.div_ceil(size) };
                let mut got = Vec::new();
                for j in 0..n_sub {
                    let o = &online[k + j];
                    prop_assert_eq!(o.origin_experience, origin);
                    prop_assert_eq!(o.is_first_subexp, j == 0);
                    prop_assert_eq!(o.is_last_subexp, j == n_sub - 1);
                    prop_assert_eq!(o.sub_stream_length, n_sub);
                    prop_assert_eq!(o.sub_exp_size, o.experience.dataset.len());
                    prop_assert!(o.sub_exp_size == size || (!drop_last && j == n_sub - 1));
                    prop_assert_eq!(o.experience.current_experience, k + j);
                    prop_assert_eq!(o.experience.origin_stream.as_str(), "train_online");
                    prop_assert_eq!(o.task_boundaries().is_some(), access);
                    got.extend(ids(&o.experience.dataset));
                }
                k += n_sub;
                got.sort_unstable();
                let mut want = ids(&exp.dataset);
                want.sort_unstable();
                if drop_last {
                    got.dedup();
                    prop_assert_eq!(got.len(), len / size * size);
                    prop_assert!(got.iter().all(|i| want.contains(i)));
                } else {
                    prop_assert_eq!(got, want);
                }
            }
            prop_assert_eq!(k, online.len());
            let again = split_online_stream(&s, &config).unwrap();
            for (a, b) in online.iter().zip(again.iter()) {
                prop_assert_eq!(ids(&a.experience.dataset), ids(&b.experience.dataset));
            }
        }
    }

    #[test]
    fn flags_timeline_and_seeds() {
        let s = stream(24); // 3 experiences of 8 samples, 2 classes each
        let online = split_online_stream(&s, &cfg(4, false, false, true, 0)).unwrap();
        assert_eq!(online.len(), 6);
        // A divisible experience still flags its last sub-experience.
        assert!(online[1].is_last_subexp && !online[1].is_first_subexp);
        assert_eq!(online[1].task_boundaries(), Some((false, true)));
        assert_eq!(online[2].experience.previous_classes, s[0].classes_in_this_experience);
        // Experiences are class by class (Avalanche's order), so the first chunk of 4 holds one
        // class, which no later chunk has: every other class is still to come.
        let first = online[0].experience.dataset.targets();
        assert!(first.iter().all(|&c| c == first[0]), "{first:?}");
        let rest: Vec<u32> = (0..6).filter(|&c| c != first[0]).collect();
        assert_eq!(online[0].experience.future_classes, rest);
        assert_eq!(online[5].experience.classes_seen_so_far, (0..6).collect::<Vec<u32>>());
        let a = split_online_stream(&stream(300), &cfg(10, true, false, false, 1)).unwrap();
        let b = split_online_stream(&stream(300), &cfg(10, true, false, false, 2)).unwrap();
        assert_ne!(ids(&a[0].experience.dataset), ids(&b[0].experience.dataset));
        assert_eq!(a[0].task_boundaries(), None);
        // drop_last with experiences smaller than the size leaves nothing: an error.
        assert_rule(split_online_stream(&s, &cfg(9, false, true, false, 0)), "drop_last_keeps_samples");
        // Avalanche's defaults: shuffled, the last sub-experience kept, boundaries hidden.
        let d = split_online_stream(&s, &OnlineStreamConfig::new(3)).unwrap();
        let e = split_online_stream(&s, &cfg(3, true, false, false, 0)).unwrap();
        assert_eq!(d.len(), 9, "8 samples per experience: 3 + 3 + 2");
        assert_eq!(d.len(), e.len());
        for (x, y) in d.iter().zip(&e) {
            assert_eq!(ids(&x.experience.dataset), ids(&y.experience.dataset));
            assert_eq!(x.task_boundaries(), None);
        }
    }

    #[test]
    fn a_split_that_leaves_nothing_is_an_error() {
        let err = split_online_stream(&stream(12), &cfg(100, false, true, false, 0)).unwrap_err();
        assert_eq!(err.rule(), Some("drop_last_keeps_samples"));
        assert!(err.to_string().contains("drop_last = false"), "{err}");
        assert_eq!(split_online_stream(&stream(12), &cfg(100, false, false, false, 0)).unwrap().len(), 3);
    }

    #[test]
    fn rule_experience_size_positive() {
        assert_rule(OnlineStreamConfig::new(0).validate(), "experience_size_positive");
        assert_rule(split_online_stream(&stream(12), &OnlineStreamConfig::new(0)), "experience_size_positive");
    }

    #[test]
    fn config_round_trips() {
        for config in [OnlineStreamConfig::new(1), cfg(10, false, true, true, 42), cfg(3, true, false, true, u64::MAX)]
        {
            assert_eq!(OnlineStreamConfig::from_json(&config.to_json()).unwrap(), config);
            assert_eq!(OnlineStreamConfig::from_toml(&config.to_toml().unwrap()).unwrap(), config);
        }
        assert_eq!(OnlineStreamConfig::from_toml("experience_size = 5").unwrap(), OnlineStreamConfig::new(5));
        assert!(OnlineStreamConfig::from_toml("shuffle = true").is_err(), "experience_size is required");
        assert_rule(OnlineStreamConfig::from_json(r#"{"experience_size": 0}"#), "experience_size_positive");
    }
}
