//! Data-incremental splitting of a benchmark, Avalanche's `data_incremental_benchmark`.

use cl_core::{Benchmark, Experience, Stream};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::common::{fixed_size_chunks, original_classes_of, set_timeline};
use crate::error::BenchmarkError;

/// Splits every training experience of `benchmark` into consecutive experiences of
/// `experience_size` samples (Avalanche's `data_incremental_benchmark` with its default
/// `FixedSizeExperienceSplitter`); the test stream is kept.
///
/// With `shuffle`, the samples of each experience are shuffled first (one
/// `ChaCha8Rng::seed_from_u64(seed)` drawn across the experiences in order); otherwise chunks
/// follow the dataset order. The last, shorter chunk of an experience is dropped when
/// `drop_last`. Chunks keep their samples' labels and task labels; the class timeline, the
/// classes per experience and `original_classes_in_exp` are recomputed for the new
/// experiences; `seed` becomes the benchmark's seed if it had none and `shuffle` is set.
pub fn data_incremental_benchmark(
    benchmark: &Benchmark,
    experience_size: usize,
    shuffle: bool,
    drop_last: bool,
    seed: u64,
) -> Result<Benchmark, BenchmarkError> {
    if experience_size == 0 {
        return Err(BenchmarkError::arg("experience_size", "must be at least 1"));
    }
    if benchmark.train_stream.is_empty() {
        return Err(BenchmarkError::arg("benchmark", "the training stream has no experience"));
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
    if experiences.is_empty() {
        return Err(BenchmarkError::arg(
            "experience_size",
            format!(
                "every training experience has fewer than {experience_size} samples, so drop_last leaves \
                 nothing; lower experience_size or set drop_last = false"
            ),
        ));
    }
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
    use proptest::prelude::*;

    fn bench(n: usize) -> Benchmark {
        let ds = indexed((0..n as u32).map(|i| i % 4).collect());
        nc_benchmark(&ds, &ds, &NcConfig::new(2, false).with_class_order(crate::ClassOrder::Sorted)).unwrap()
    }

    proptest! {
        #[test]
        fn chunks_partition_each_experience(n in 4usize..60, size in 1usize..10, shuffle in any::<bool>(), drop_last in any::<bool>(), seed in any::<u64>()) {
            let b = bench(n);
            let r = data_incremental_benchmark(&b, size, shuffle, drop_last, seed);
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
            let again = data_incremental_benchmark(&b, size, shuffle, drop_last, seed).unwrap();
            for (x, y) in d.train_stream.iter().zip(again.train_stream.iter()) {
                prop_assert_eq!(ids(&x.dataset), ids(&y.dataset));
            }
        }
    }

    #[test]
    fn unshuffled_chunks_follow_the_data_and_timeline_is_filled() {
        let b = bench(12); // experience 0: classes {0,1} = samples 0,1,4,5,8,9
        let d = data_incremental_benchmark(&b, 4, false, false, 0).unwrap();
        assert_eq!(d.n_experiences(), 4);
        assert_eq!(ids(&d.train_stream[0].dataset), vec![0, 1, 4, 5]);
        assert_eq!(ids(&d.train_stream[1].dataset), vec![8, 9]);
        assert_eq!(d.train_stream[2].previous_classes, vec![0, 1]);
        assert_eq!(d.train_stream[1].future_classes, vec![2, 3]);
        assert_eq!(d.test_stream.len(), 2);
        assert_eq!(d.train_stream.name(), "train");
        assert_eq!(d.seed, None);
        let s = data_incremental_benchmark(&b, 4, true, true, 7).unwrap();
        assert_eq!(s.n_experiences(), 2);
        assert_eq!(s.seed, Some(7));
        let other = data_incremental_benchmark(&bench(400), 10, true, false, 8).unwrap();
        let one = data_incremental_benchmark(&bench(400), 10, true, false, 7).unwrap();
        assert_ne!(ids(&other.train_stream[0].dataset), ids(&one.train_stream[0].dataset));
    }

    #[test]
    fn errors() {
        let b = bench(8);
        assert!(matches!(
            data_incremental_benchmark(&b, 0, false, false, 0),
            Err(BenchmarkError::Core(cl_core::ClError::InvalidConfig { rule: "experience_size", .. }))
        ));
        assert!(matches!(
            data_incremental_benchmark(&b, 5, false, true, 0),
            Err(BenchmarkError::Core(cl_core::ClError::InvalidConfig { rule: "experience_size", .. }))
        ));
        let mut empty = b.clone();
        empty.train_stream = empty.train_stream.slice(0..0);
        assert!(matches!(
            data_incremental_benchmark(&empty, 1, false, false, 0),
            Err(BenchmarkError::Core(cl_core::ClError::InvalidConfig { rule: "benchmark", .. }))
        ));
    }
}
