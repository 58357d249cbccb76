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

/// The order in which CPython iterates `set(items)` for class ids (non-negative integers, whose
/// hash is themselves): the order in which Avalanche's `nc_benchmark` visits the classes of an
/// experience (`for sc in original_classes_in_exp[exp_id]`, a `set`), and so the order of the
/// class blocks in its experiences. It is ascending when every id is below the table size
/// (8 slots up to 4 classes, 32 up to 18, ...), otherwise not: `set([9, 3])` iterates 9, 3.
///
/// This replays CPython's open addressing (`Objects/setobject.c`, unchanged since 3.7): slot
/// `hash & mask`, up to 9 linear probes, then `i = 5i + 1 + perturb` with `perturb >>= 5`; the
/// table starts at 8 slots and is rebuilt at `4 × used` (rounded up to a power of two) when
/// `5 × fill >= 3 × mask`, re-inserting in slot order. Duplicates are dropped.
pub(crate) fn cpython_set_order(items: &[u64]) -> Vec<u64> {
    const LINEAR_PROBES: usize = 9;
    /// Places `key` (or finds it); `true` if it was inserted.
    fn insert(table: &mut [Option<u64>], key: u64) -> bool {
        let mask = table.len() - 1;
        let mut perturb = key as usize;
        let mut i = perturb & mask;
        loop {
            let probes = if i + LINEAR_PROBES <= mask { LINEAR_PROBES } else { 0 };
            for slot in &mut table[i..=i + probes] {
                match slot {
                    None => {
                        *slot = Some(key);
                        return true;
                    }
                    Some(k) if *k == key => return false,
                    Some(_) => {}
                }
            }
            perturb >>= 5;
            // `size_t` arithmetic in CPython: it wraps.
            i = i.wrapping_mul(5).wrapping_add(1).wrapping_add(perturb) & mask;
        }
    }
    let mut table: Vec<Option<u64>> = vec![None; 8];
    let mut used = 0usize;
    for &key in items {
        if !insert(&mut table, key) {
            continue;
        }
        used += 1;
        if used * 5 >= (table.len() - 1) * 3 {
            let min_used = if used > 50_000 { used * 2 } else { used * 4 };
            let mut size = 8;
            while size <= min_used {
                size <<= 1;
            }
            let old = std::mem::replace(&mut table, vec![None; size]);
            for key in old.into_iter().flatten() {
                insert(&mut table, key);
            }
        }
    }
    table.into_iter().flatten().collect()
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

#[cfg(test)]
mod set_order_tests {
    use super::cpython_set_order;

    /// Expected orders printed by CPython 3.11 (`list(set(l))`).
    #[test]
    fn replays_cpython_set_iteration_order() {
        let cases: [(&[u64], &[u64]); 8] = [
            (&[9, 3], &[9, 3]),
            (&[0, 8], &[0, 8]),
            (&[8, 0], &[8, 0]),
            (&[5, 6, 1, 2, 0, 8, 9, 3, 7, 4], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
            (&[49, 97, 53, 5, 33, 65, 62, 51, 38, 61], &[97, 33, 65, 5, 38, 49, 51, 53, 61, 62]),
            (&[71, 12, 45, 55, 40], &[71, 40, 12, 45, 55]),
            (
                &[45, 74, 27, 64, 17, 36, 96, 12, 79, 32, 68, 90, 77, 18, 39, 93, 9, 87, 42, 60],
                &[9, 12, 17, 18, 27, 32, 36, 39, 42, 45, 60, 64, 68, 74, 77, 79, 87, 90, 93, 96],
            ),
            (
                &[
                    266, 367, 926, 749, 481, 858, 923, 940, 583, 173, 714, 688, 208, 989, 785, 59, 807, 692, 162, 865,
                    165, 350, 542, 256, 120, 611, 943, 452, 681, 179,
                ],
                &[
                    256, 266, 785, 923, 926, 542, 162, 165, 807, 681, 940, 173, 943, 688, 179, 692, 59, 452, 583, 714,
                    208, 858, 989, 350, 481, 865, 611, 749, 367, 120,
                ],
            ),
        ];
        for (items, expected) in cases {
            assert_eq!(cpython_set_order(items), expected, "set({items:?})");
        }
        assert_eq!(cpython_set_order(&[3, 3, 1]), [1, 3], "duplicates dropped");
        assert_eq!(cpython_set_order(&(0..100).rev().collect::<Vec<_>>()), (0..100).collect::<Vec<_>>());
    }
}
