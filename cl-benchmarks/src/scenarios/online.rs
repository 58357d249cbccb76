//! Online streams of small experiences, Avalanche's `split_online_stream` with its
//! `FixedSizeExperienceSplitter` (`avalanche/benchmarks/scenarios/online.py`).

use cl_core::{Experience, Stream};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::common::{fixed_size_chunks, set_timeline};
use crate::error::BenchmarkError;

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

/// Splits each experience of `stream` into consecutive sub-experiences of `experience_size`
/// samples, in stream order, for online continual learning.
///
/// With `shuffle`, the samples of each experience are shuffled first (one
/// `ChaCha8Rng::seed_from_u64(seed)` drawn across the experiences in order); the last, shorter
/// sub-experience of an experience is dropped when `drop_last`. The first and last
/// sub-experience of each original experience are flagged; the flags are meant for training
/// only with `access_task_boundaries` (see [`OnlineExperience::task_boundaries`]).
/// Sub-experiences are numbered 0, 1, ... over the whole online stream, named
/// `<stream name>_online`, keep labels, task labels and `n_classes`, and get a class timeline
/// over the online stream. An experience smaller than `experience_size` with `drop_last` gives
/// no sub-experience.
pub fn split_online_stream(
    stream: &Stream,
    experience_size: usize,
    shuffle: bool,
    drop_last: bool,
    access_task_boundaries: bool,
    seed: u64,
) -> Result<Vec<OnlineExperience>, BenchmarkError> {
    if experience_size == 0 {
        return Err(BenchmarkError::arg("experience_size", "must be at least 1"));
    }
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
    let mut experiences: Vec<Experience> = out.iter().map(|o| o.experience.clone()).collect();
    set_timeline(&mut experiences);
    for (o, e) in out.iter_mut().zip(experiences) {
        o.experience = e;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::common::testing::{ids, indexed};
    use super::*;
    use crate::{NcConfig, nc_benchmark};
    use proptest::prelude::*;

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
            let online = split_online_stream(&s, size, shuffle, drop_last, access, seed).unwrap();
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
                let want = ids(&exp.dataset);
                if drop_last {
                    got.dedup();
                    prop_assert_eq!(got.len(), len / size * size);
                    prop_assert!(got.iter().all(|i| want.contains(i)));
                } else {
                    prop_assert_eq!(got, want);
                }
            }
            prop_assert_eq!(k, online.len());
            let again = split_online_stream(&s, size, shuffle, drop_last, access, seed).unwrap();
            for (a, b) in online.iter().zip(again.iter()) {
                prop_assert_eq!(ids(&a.experience.dataset), ids(&b.experience.dataset));
            }
        }
    }

    #[test]
    fn flags_timeline_and_seeds() {
        let s = stream(24); // 3 experiences of 8 samples, 2 classes each
        let online = split_online_stream(&s, 4, false, false, true, 0).unwrap();
        assert_eq!(online.len(), 6);
        // A divisible experience still flags its last sub-experience.
        assert!(online[1].is_last_subexp && !online[1].is_first_subexp);
        assert_eq!(online[1].task_boundaries(), Some((false, true)));
        assert_eq!(online[2].experience.previous_classes, s[0].classes_in_this_experience);
        // Chunks of 4 interleave both classes of their experience: every class is still to come.
        assert_eq!(online[0].experience.future_classes, (0..6).collect::<Vec<u32>>());
        assert_eq!(online[5].experience.classes_seen_so_far, (0..6).collect::<Vec<u32>>());
        let a = split_online_stream(&stream(300), 10, true, false, false, 1).unwrap();
        let b = split_online_stream(&stream(300), 10, true, false, false, 2).unwrap();
        assert_ne!(ids(&a[0].experience.dataset), ids(&b[0].experience.dataset));
        assert_eq!(a[0].task_boundaries(), None);
        // drop_last with experiences smaller than the size gives nothing.
        assert!(split_online_stream(&s, 9, false, true, false, 0).unwrap().is_empty());
    }

    #[test]
    fn errors() {
        assert!(matches!(
            split_online_stream(&stream(12), 0, true, false, false, 0),
            Err(BenchmarkError::Core(cl_core::ClError::InvalidConfig { rule: "experience_size", .. }))
        ));
    }
}
