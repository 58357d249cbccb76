//! Helpers shared by the scenario generators: class-id checks, class timelines, fixed-size
//! chunking and the per-experience class bookkeeping of a [`Benchmark`].

use std::collections::BTreeSet;

use cl_core::data::ClassificationDataset;
use cl_core::{ClError, Experience, Result, Stream};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Class ids index dense tables (the identity class mapping); larger ids must be relabelled
/// first.
pub(crate) const MAX_CLASS_ID: usize = 1 << 24;

/// Checks that every class id in `targets` is below [`MAX_CLASS_ID`]; returns the largest.
pub(crate) fn check_class_ids(argument: &'static str, targets: &[u32]) -> Result<Option<u32>> {
    let max = targets.iter().copied().max();
    if let Some(m) = max
        && m as usize >= MAX_CLASS_ID
    {
        return Err(ClError::config(
            argument,
            format!("class id {m} is too large (ids must be < {MAX_CLASS_ID}); relabel the classes 0..n first"),
        ));
    }
    Ok(max)
}

/// Fills `previous_classes`, `classes_seen_so_far` and `future_classes` of a stream's
/// experiences from their `classes_in_this_experience`, as `nc_benchmark` does (and as
/// Avalanche's `GenericCLScenario.get_classes_timeline`): future classes are the classes of
/// every later experience, seen before or not.
pub(crate) fn set_timeline(experiences: &mut [Experience]) {
    let mut seen: BTreeSet<u32> = BTreeSet::new();
    // Suffix unions: `later[e]` = classes of experiences e.. (exclusive of nothing).
    let n = experiences.len();
    let mut later: Vec<BTreeSet<u32>> = vec![BTreeSet::new(); n + 1];
    for e in (0..n).rev() {
        let mut s = later[e + 1].clone();
        s.extend(experiences[e].classes_in_this_experience.iter().copied());
        later[e] = s;
    }
    for (e, exp) in experiences.iter_mut().enumerate() {
        exp.previous_classes = seen.iter().copied().collect();
        seen.extend(exp.classes_in_this_experience.iter().copied());
        exp.classes_seen_so_far = seen.iter().copied().collect();
        exp.future_classes = later[e + 1].iter().copied().collect();
    }
}

/// A stream named `name` with one experience per dataset, class timeline filled.
pub(crate) fn stream_of(name: &str, datasets: Vec<ClassificationDataset>, n_classes: usize) -> Stream {
    let mut experiences: Vec<Experience> =
        datasets.into_iter().enumerate().map(|(e, ds)| Experience::new(e, ds, name, n_classes)).collect();
    set_timeline(&mut experiences);
    Stream::new(name, experiences)
}

/// Splits `0..len` into consecutive chunks of `size` (after a shuffle with `rng` when
/// `shuffle`); the last, shorter chunk is dropped when `drop_last`. Each chunk is sorted, so
/// views keep the original sample order.
pub(crate) fn fixed_size_chunks(
    len: usize,
    size: usize,
    shuffle: bool,
    drop_last: bool,
    rng: &mut ChaCha8Rng,
) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..len).collect();
    if shuffle {
        order.shuffle(rng);
    }
    order
        .chunks(size)
        .filter(|c| !drop_last || c.len() == size)
        .map(|c| {
            let mut c = c.to_vec();
            c.sort_unstable();
            c
        })
        .collect()
}

/// `(n_classes_per_exp, original_classes_in_exp)` of a stream whose labels are original ids.
pub(crate) fn classes_per_experience(stream: &Stream) -> (Vec<usize>, Vec<Vec<u32>>) {
    let classes: Vec<Vec<u32>> = stream.iter().map(|e| e.classes_in_this_experience.clone()).collect();
    (classes.iter().map(Vec::len).collect(), classes)
}

/// Original classes of an experience derived from original experience `origin` of a
/// benchmark: the classes of `origin` whose mapped label occurs in `present` (the mapping is
/// one-to-one within an experience, even when labels restart from zero in each experience).
/// Falls back to `present` when the benchmark has no per-experience bookkeeping.
pub(crate) fn original_classes_of(
    original_classes_in_exp: &[Vec<u32>],
    class_mapping: &[u32],
    origin: usize,
    present: &[u32],
) -> Vec<u32> {
    match original_classes_in_exp.get(origin) {
        Some(group) => {
            let present: BTreeSet<u32> = present.iter().copied().collect();
            let mut out: Vec<u32> = group
                .iter()
                .copied()
                .filter(|&c| present.contains(&class_mapping.get(c as usize).copied().unwrap_or(c)))
                .collect();
            out.sort_unstable();
            out
        }
        None => present.to_vec(),
    }
}

/// Test helpers: datasets whose single input value is the sample's index.
#[cfg(test)]
pub(crate) mod testing {
    use cl_core::data::ClassificationDataset;

    /// A dataset of shape `[1]` whose sample `i` has input `i` and class `targets[i]`.
    pub(crate) fn indexed(targets: Vec<u32>) -> ClassificationDataset {
        let values: Vec<f32> = (0..targets.len()).map(|i| i as f32).collect();
        ClassificationDataset::from_f32(values, vec![1], targets).unwrap()
    }

    /// The original indices (input values) of the samples of a view of [`indexed`].
    pub(crate) fn ids(ds: &ClassificationDataset) -> Vec<usize> {
        (0..ds.len()).map(|i| ds.sample(i).unwrap().x[0] as usize).collect()
    }
}
