//! Class-incremental (new classes) splitting, Avalanche's `nc_benchmark`.

use std::collections::{BTreeMap, BTreeSet};

use cl_core::{Benchmark, ClassificationDataset, Experience, Stream};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::error::BenchmarkError;

/// Class ids index dense tables; larger ids must be relabelled first.
const MAX_CLASS_ID: usize = 1 << 24;

/// Options of a class-incremental split.
///
/// ```
/// use cl_benchmarks::NcConfig;
/// let config = NcConfig::new(5).with_seed(1).with_task_labels(true);
/// assert_eq!(config.n_experiences, 5);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NcConfig {
    /// Number of experiences.
    pub n_experiences: usize,
    /// Shuffle the class order (with `seed`) unless `fixed_class_order` is given.
    pub shuffle: bool,
    /// Seed of the class order.
    pub seed: u64,
    /// Use this class order instead of a random one (a permutation of the dataset's classes).
    pub fixed_class_order: Option<Vec<u32>>,
    /// Classes of some experiences (experience index → count), as Avalanche's
    /// `per_exp_classes` dict: the other experiences share the remaining classes evenly.
    pub per_exp_classes: Option<BTreeMap<usize, usize>>,
    /// Task label of each sample = index of its experience (task-incremental); otherwise 0.
    pub task_labels: bool,
    /// Relabel the classes of each experience as 0, 1, ... (in class order).
    pub class_ids_from_zero_in_each_exp: bool,
    /// Relabel all classes as 0, 1, ... in class order.
    pub class_ids_from_zero_from_first_exp: bool,
    /// With several datasets ([`nc_benchmark_multi`]): each dataset is one experience (the
    /// experience order is shuffled with `seed` when `shuffle`); excludes `per_exp_classes` and
    /// `fixed_class_order`, and overrides `n_experiences`.
    pub one_dataset_per_exp: bool,
}

impl NcConfig {
    /// `n_experiences` experiences, shuffled class order with seed 0, one task, original labels.
    pub fn new(n_experiences: usize) -> Self {
        Self {
            n_experiences,
            shuffle: true,
            seed: 0,
            fixed_class_order: None,
            per_exp_classes: None,
            task_labels: false,
            class_ids_from_zero_in_each_exp: false,
            class_ids_from_zero_from_first_exp: false,
            one_dataset_per_exp: false,
        }
    }

    /// Each dataset of [`nc_benchmark_multi`] is one experience.
    pub fn with_one_dataset_per_exp(mut self, on: bool) -> Self {
        self.one_dataset_per_exp = on;
        self
    }

    /// Sets the seed of the class order.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Whether the class order is shuffled.
    pub fn with_shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// A fixed class order.
    pub fn with_fixed_class_order(mut self, order: Vec<u32>) -> Self {
        self.fixed_class_order = Some(order);
        self
    }

    /// Classes of some experiences, e.g. `[(0, 5)]` for half of ten classes in the first
    /// experience; the others share the rest evenly.
    pub fn with_per_exp_classes(mut self, counts: impl IntoIterator<Item = (usize, usize)>) -> Self {
        self.per_exp_classes = Some(counts.into_iter().collect());
        self
    }

    /// Task label = experience index.
    pub fn with_task_labels(mut self, on: bool) -> Self {
        self.task_labels = on;
        self
    }

    /// Relabel classes from zero in each experience.
    pub fn with_class_ids_from_zero_in_each_exp(mut self, on: bool) -> Self {
        self.class_ids_from_zero_in_each_exp = on;
        self
    }

    /// Relabel classes from zero in class order.
    pub fn with_class_ids_from_zero_from_first_exp(mut self, on: bool) -> Self {
        self.class_ids_from_zero_from_first_exp = on;
        self
    }
}

/// The class order and the classes per experience, validated.
fn plan(classes: &[u32], config: &NcConfig) -> Result<(Vec<u32>, Vec<usize>), BenchmarkError> {
    let n_classes = classes.len();
    if config.n_experiences == 0 {
        return Err(BenchmarkError::arg("n_experiences", "must be at least 1"));
    }
    if config.class_ids_from_zero_in_each_exp && config.class_ids_from_zero_from_first_exp {
        return Err(BenchmarkError::arg(
            "class_ids_from_zero_in_each_exp",
            "cannot be combined with class_ids_from_zero_from_first_exp; choose one",
        ));
    }
    let order = match &config.fixed_class_order {
        Some(order) => {
            let given: BTreeSet<u32> = order.iter().copied().collect();
            let have: BTreeSet<u32> = classes.iter().copied().collect();
            if given != have || order.len() != n_classes {
                return Err(BenchmarkError::arg(
                    "fixed_class_order",
                    format!("{order:?} is not a permutation of the dataset's classes {classes:?}"),
                ));
            }
            order.clone()
        }
        None if config.shuffle => {
            let mut order = classes.to_vec();
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(config.seed));
            order
        }
        None => classes.to_vec(),
    };
    let counts = per_exp_counts(n_classes, config.n_experiences, config.per_exp_classes.as_ref())?;
    Ok((order, counts))
}

/// Classes per experience (Avalanche's `NCScenario` rule): the given counts, and the remaining
/// classes split evenly over the other experiences. Unlike Avalanche, an experience of 0 classes
/// and classes left over (all experiences given, counts summing to less) are errors.
fn per_exp_counts(
    n_classes: usize,
    n_experiences: usize,
    given: Option<&BTreeMap<usize, usize>>,
) -> Result<Vec<usize>, BenchmarkError> {
    let given = match given {
        Some(g) if !g.is_empty() => g,
        _ => {
            if n_experiences > n_classes || n_classes % n_experiences != 0 {
                return Err(BenchmarkError::arg(
                    "n_experiences",
                    format!(
                        "{n_experiences} experiences cannot split {n_classes} classes evenly; choose a divisor of \
                         {n_classes} or give per_exp_classes"
                    ),
                ));
            }
            return Ok(vec![n_classes / n_experiences; n_experiences]);
        }
    };
    if let Some((&e, _)) = given.iter().find(|(e, _)| **e >= n_experiences) {
        return Err(BenchmarkError::arg(
            "per_exp_classes",
            format!("experience {e} does not exist: ids must be in 0..{n_experiences}"),
        ));
    }
    if given.values().any(|&c| c == 0) {
        return Err(BenchmarkError::arg("per_exp_classes", "every experience needs at least one class"));
    }
    let assigned: usize = given.values().sum();
    let remaining_exps = n_experiences - given.len();
    let remaining = n_classes.checked_sub(assigned).ok_or_else(|| {
        BenchmarkError::arg("per_exp_classes", format!("{assigned} classes asked for, the dataset has {n_classes}"))
    })?;
    let default = match remaining_exps {
        0 if remaining > 0 => {
            return Err(BenchmarkError::arg(
                "per_exp_classes",
                format!("{remaining} classes would belong to no experience; the counts must sum to {n_classes}"),
            ));
        }
        0 => 0,
        r if remaining % r != 0 || remaining < r => {
            return Err(BenchmarkError::arg(
                "per_exp_classes",
                format!("the {remaining} remaining classes cannot be split evenly over the other {r} experiences"),
            ));
        }
        r => remaining / r,
    };
    Ok((0..n_experiences).map(|e| given.get(&e).copied().unwrap_or(default)).collect())
}

/// Splits a train and a test dataset into a class-incremental benchmark: experience `i` holds
/// the samples of the `i`-th group of classes of the class order, in both streams.
///
/// Experiences are index views of the given datasets (no copy). `n_classes` is the number of
/// classes of the benchmark (the classes present in `train`).
pub fn nc_benchmark(
    train: &ClassificationDataset,
    test: &ClassificationDataset,
    config: &NcConfig,
) -> Result<Benchmark, BenchmarkError> {
    if config.one_dataset_per_exp {
        return Err(BenchmarkError::arg(
            "one_dataset_per_exp",
            "needs several datasets: call nc_benchmark_multi with one train and one test dataset per experience",
        ));
    }
    let train_targets = train.targets();
    let test_targets = test.targets();
    let classes: Vec<u32> = train_targets.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
    if classes.is_empty() {
        return Err(BenchmarkError::arg("train", "the training dataset is empty"));
    }
    let test_classes: BTreeSet<u32> = test_targets.iter().copied().collect();
    if let Some(c) = test_classes.iter().find(|c| classes.binary_search(c).is_err()) {
        return Err(BenchmarkError::arg(
            "test",
            format!("test class {c} does not occur in the training data"),
        ));
    }
    let max_class = *classes.last().unwrap() as usize;
    if max_class >= MAX_CLASS_ID {
        return Err(BenchmarkError::arg(
            "train",
            format!("class id {max_class} is too large (ids must be < {MAX_CLASS_ID}); relabel the classes 0..n first"),
        ));
    }
    let (order, counts) = plan(&classes, config)?;

    // Groups of original classes and the label mapping.
    let mut groups: Vec<Vec<u32>> = Vec::with_capacity(counts.len());
    let mut start = 0;
    for &k in &counts {
        groups.push(order[start..start + k].to_vec());
        start += k;
    }
    let mut mapping: Vec<u32> = (0..=max_class as u32).collect();
    if config.class_ids_from_zero_from_first_exp {
        for (new, &c) in order.iter().enumerate() {
            mapping[c as usize] = new as u32;
        }
    } else if config.class_ids_from_zero_in_each_exp {
        for g in &groups {
            for (new, &c) in g.iter().enumerate() {
                mapping[c as usize] = new as u32;
            }
        }
    }
    let relabel = config.class_ids_from_zero_from_first_exp || config.class_ids_from_zero_in_each_exp;

    // Indices of each class, once (O(n)).
    let by_class = |targets: &[u32]| {
        let mut idx: Vec<Vec<usize>> = vec![Vec::new(); max_class + 1];
        for (i, &y) in targets.iter().enumerate() {
            if (y as usize) <= max_class {
                idx[y as usize].push(i);
            }
        }
        idx
    };
    let train_idx = by_class(&train_targets);
    let test_idx = by_class(&test_targets);

    let n_classes = classes.len();
    // Labels the model must output: fewer than the classes when relabelled per experience.
    let label_space = classes.iter().map(|&c| mapping[c as usize]).max().unwrap_or(0) as usize + 1;
    let make_stream = |name: &str, ds: &ClassificationDataset, idx: &[Vec<usize>]| {
        let mut experiences = Vec::with_capacity(groups.len());
        let mut seen: BTreeSet<u32> = BTreeSet::new();
        for (e, group) in groups.iter().enumerate() {
            let mut indices: Vec<usize> = group.iter().flat_map(|&c| idx[c as usize].iter().copied()).collect();
            indices.sort_unstable();
            let mut view = ds.subset(&indices)?;
            if relabel {
                view = view.with_class_mapping(&mapping)?;
            }
            view = view.with_task_label(if config.task_labels { e as u32 } else { 0 });
            let mut exp = Experience::new(e, view, name, label_space);
            let mapped: BTreeSet<u32> = group.iter().map(|&c| mapping[c as usize]).collect();
            exp.classes_in_this_experience = mapped.iter().copied().collect();
            exp.previous_classes = seen.iter().copied().collect();
            seen.extend(mapped.iter().copied());
            exp.classes_seen_so_far = seen.iter().copied().collect();
            // As Avalanche: the classes of every later experience (seen before or not).
            let future: BTreeSet<u32> = groups[e + 1..].iter().flatten().map(|&c| mapping[c as usize]).collect();
            exp.future_classes = future.into_iter().collect();
            experiences.push(exp);
        }
        Ok::<_, BenchmarkError>(Stream::new(name, experiences))
    };
    let train_stream = make_stream("train", train, &train_idx)?;
    let test_stream = make_stream("test", test, &test_idx)?;
    Ok(Benchmark {
        train_stream,
        test_stream,
        n_classes,
        classes_order: order,
        n_classes_per_exp: counts,
        original_classes_in_exp: groups,
        class_mapping: mapping,
        seed: (config.fixed_class_order.is_none() && config.shuffle).then_some(config.seed),
    })
}

/// Class-incremental benchmark over several datasets (Avalanche's `nc_benchmark` given lists).
///
/// The datasets are concatenated in order with their classes renumbered so they do not collide:
/// dataset `i`'s classes (sorted) become the next free ids. The test datasets get the same
/// renumbering (their classes must occur in the matching train dataset). Then the classes are
/// split as by [`nc_benchmark`], or, with `one_dataset_per_exp`, each dataset is one experience.
pub fn nc_benchmark_multi(
    train: &[ClassificationDataset],
    test: &[ClassificationDataset],
    config: &NcConfig,
) -> Result<Benchmark, BenchmarkError> {
    if train.is_empty() || train.len() != test.len() {
        return Err(BenchmarkError::arg(
            "train",
            format!("{} train and {} test datasets: give one test dataset per train dataset", train.len(), test.len()),
        ));
    }
    if config.one_dataset_per_exp && (config.per_exp_classes.is_some() || config.fixed_class_order.is_some()) {
        return Err(BenchmarkError::arg(
            "one_dataset_per_exp",
            "cannot be combined with per_exp_classes or fixed_class_order",
        ));
    }
    let mut offset = 0u32;
    let mut class_lists: Vec<Vec<u32>> = Vec::with_capacity(train.len());
    let (mut train_all, mut test_all): (Option<ClassificationDataset>, Option<ClassificationDataset>) = (None, None);
    for (i, (tr, te)) in train.iter().zip(test).enumerate() {
        let classes: Vec<u32> = tr.classes().into_iter().collect();
        let Some(&max) = classes.last() else {
            return Err(BenchmarkError::arg("train", format!("train dataset {i} is empty")));
        };
        if max as usize >= MAX_CLASS_ID {
            return Err(BenchmarkError::arg("train", format!("class id {max} of dataset {i} is too large")));
        }
        if let Some(c) = te.classes().into_iter().find(|c| classes.binary_search(c).is_err()) {
            return Err(BenchmarkError::arg("test", format!("class {c} of test dataset {i} is not in train dataset {i}")));
        }
        let mut mapping = vec![u32::MAX; max as usize + 1];
        for (rank, &c) in classes.iter().enumerate() {
            mapping[c as usize] = offset + rank as u32;
        }
        class_lists.push((offset..offset + classes.len() as u32).collect());
        offset += classes.len() as u32;
        let (tr, te) = (tr.with_class_mapping(&mapping)?, te.with_class_mapping(&mapping)?);
        train_all = Some(match train_all {
            Some(all) => all.concat(&tr)?,
            None => tr,
        });
        test_all = Some(match test_all {
            Some(all) => all.concat(&te)?,
            None => te,
        });
    }
    let (train_all, test_all) = (train_all.expect("non-empty"), test_all.expect("non-empty"));
    if !config.one_dataset_per_exp {
        return nc_benchmark(&train_all, &test_all, config);
    }
    let mut order: Vec<usize> = (0..train.len()).collect();
    if config.shuffle {
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(config.seed));
    }
    let mut per_dataset = config.clone();
    per_dataset.one_dataset_per_exp = false;
    per_dataset.n_experiences = train.len();
    per_dataset.fixed_class_order = Some(order.iter().flat_map(|&d| class_lists[d].iter().copied()).collect());
    per_dataset.per_exp_classes = Some(order.iter().enumerate().map(|(pos, &d)| (pos, class_lists[d].len())).collect());
    let mut benchmark = nc_benchmark(&train_all, &test_all, &per_dataset)?;
    benchmark.seed = config.shuffle.then_some(config.seed);
    Ok(benchmark)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `n` samples over `k` classes (class ids scattered: 3·c + 1), round-robin.
    fn data(n: usize, k: usize) -> ClassificationDataset {
        let targets: Vec<u32> = (0..n).map(|i| 3 * (i % k) as u32 + 1).collect();
        ClassificationDataset::from_f32((0..n).map(|i| i as f32).collect(), vec![1], targets).unwrap()
    }

    fn divisors(k: usize) -> Vec<usize> {
        (1..=k).filter(|d| k % d == 0).collect()
    }

    proptest! {
        #[test]
        fn experiences_partition_the_classes_and_samples(k in 2usize..12, pick in 0usize..12, seed in 0u64..1000) {
            let ds = data(6 * k, k);
            let ds_test = data(2 * k, k);
            let n_exp = divisors(k)[pick % divisors(k).len()];
            let b = nc_benchmark(&ds, &ds_test, &NcConfig::new(n_exp).with_seed(seed)).unwrap();
            let mut all: Vec<u32> = b.original_classes_in_exp.concat();
            all.sort_unstable();
            prop_assert_eq!(all, ds.classes().into_iter().collect::<Vec<_>>());
            let total: usize = b.train_stream.iter().map(|e| e.dataset.len()).sum();
            prop_assert_eq!(total, ds.len());
            for (e, (tr, te)) in b.train_stream.iter().zip(b.test_stream.iter()).enumerate() {
                prop_assert_eq!(&tr.classes_in_this_experience, &te.classes_in_this_experience);
                let mut orig = b.original_classes_in_exp[e].clone();
                orig.sort_unstable();
                prop_assert_eq!(&tr.classes_in_this_experience, &orig);
                prop_assert_eq!(tr.dataset.classes().into_iter().collect::<Vec<_>>(), orig);
            }
        }

        #[test]
        fn seeds_reproduce_and_differ(k in 6usize..12, seed in 0u64..1000) {
            let ds = data(3 * k, k);
            let a = nc_benchmark(&ds, &ds, &NcConfig::new(1).with_seed(seed)).unwrap();
            let b = nc_benchmark(&ds, &ds, &NcConfig::new(1).with_seed(seed)).unwrap();
            prop_assert_eq!(&a.classes_order, &b.classes_order);
            // Orders of ≥ 6 classes: the next 3 seeds cannot all give the same order by chance
            // (probability < 1/720³).
            let others: Vec<Vec<u32>> = (1..4)
                .map(|d| nc_benchmark(&ds, &ds, &NcConfig::new(1).with_seed(seed + d)).unwrap().classes_order)
                .collect();
            prop_assert!(others.iter().any(|o| *o != a.classes_order));
        }

        #[test]
        fn class_id_remapping_round_trips(k in 2usize..12, seed in 0u64..1000, per_exp in any::<bool>()) {
            let ds = data(2 * k, k);
            let n_exp = if k % 2 == 0 { 2 } else { 1 };
            let config = NcConfig::new(n_exp)
                .with_seed(seed)
                .with_class_ids_from_zero_in_each_exp(per_exp)
                .with_class_ids_from_zero_from_first_exp(!per_exp);
            let b = nc_benchmark(&ds, &ds, &config).unwrap();
            for (e, group) in b.original_classes_in_exp.iter().enumerate() {
                for (pos, &c) in group.iter().enumerate() {
                    let expected = if per_exp { pos } else { e * group.len() + pos };
                    prop_assert_eq!(b.class_mapping[c as usize] as usize, expected);
                }
            }
            // The relabelled targets are the mapping of the original ones, sample by sample.
            let originals = ds.targets();
            let exp0 = &b.train_stream[0].dataset;
            let first = b.original_classes_in_exp[0].clone();
            let orig0: Vec<u32> = originals.iter().copied().filter(|c| first.contains(c)).collect();
            let mapped: Vec<u32> = orig0.iter().map(|&c| b.class_mapping[c as usize]).collect();
            prop_assert_eq!(exp0.targets(), mapped);
        }
    }

    #[test]
    fn several_datasets_are_renumbered_and_can_be_one_experience_each() {
        let a = data(8, 2); // classes 1, 4
        let b = data(9, 3); // classes 1, 4, 7
        let multi = nc_benchmark_multi(&[a.clone(), b.clone()], &[a.clone(), b.clone()], &NcConfig::new(5).with_seed(2)).unwrap();
        assert_eq!(multi.n_classes, 5);
        assert_eq!(multi.train_stream.iter().map(|e| e.dataset.len()).sum::<usize>(), 17);
        let per = nc_benchmark_multi(
            &[a.clone(), b.clone()],
            &[a.clone(), b.clone()],
            &NcConfig::new(1).with_shuffle(false).with_one_dataset_per_exp(true),
        )
        .unwrap();
        assert_eq!(per.n_experiences(), 2);
        assert_eq!(per.train_stream[0].classes_in_this_experience, vec![0, 1]);
        assert_eq!(per.train_stream[1].classes_in_this_experience, vec![2, 3, 4]);
        assert_eq!(per.train_stream[1].dataset.len(), 9);
        assert_eq!(per.test_stream[1].classes_in_this_experience, vec![2, 3, 4]);
        // Shuffled experience order keeps each dataset's classes together.
        let orders: BTreeSet<Vec<Vec<u32>>> = (0..8)
            .map(|seed| {
                let b2 = nc_benchmark_multi(
                    &[a.clone(), b.clone()],
                    &[a.clone(), b.clone()],
                    &NcConfig::new(1).with_seed(seed).with_one_dataset_per_exp(true),
                )
                .unwrap();
                b2.train_stream.iter().map(|e| e.classes_in_this_experience.clone()).collect()
            })
            .collect();
        assert_eq!(orders.len(), 2, "{orders:?}");
        let both = NcConfig::new(1).with_one_dataset_per_exp(true).with_per_exp_classes([(0, 1)]);
        assert!(nc_benchmark_multi(&[a.clone(), b.clone()], &[a.clone(), b.clone()], &both).is_err());
        assert!(nc_benchmark(&a, &a, &NcConfig::new(1).with_one_dataset_per_exp(true)).is_err());
        assert!(nc_benchmark_multi(&[a.clone()], &[], &NcConfig::new(1)).is_err());
    }

    #[test]
    fn argument_errors() {
        let ds = data(20, 10);
        let err = |c: NcConfig| match nc_benchmark(&ds, &ds, &c) {
            Err(BenchmarkError::InvalidArgument { argument, .. }) => argument,
            other => panic!("expected an argument error, got {:?}", other.map(|b| b.n_classes_per_exp)),
        };
        assert_eq!(err(NcConfig::new(0)), "n_experiences");
        assert_eq!(err(NcConfig::new(3)), "n_experiences");
        assert_eq!(err(NcConfig::new(2).with_fixed_class_order(vec![1, 4])), "fixed_class_order");
        assert_eq!(
            err(NcConfig::new(2).with_class_ids_from_zero_in_each_exp(true).with_class_ids_from_zero_from_first_exp(true)),
            "class_ids_from_zero_in_each_exp"
        );
        let empty = ClassificationDataset::from_f32(vec![], vec![1], vec![]).unwrap();
        assert!(nc_benchmark(&empty, &ds, &NcConfig::new(1)).is_err());
        let foreign = data(4, 2).with_class_mapping(&[0, 0, 0, 0, 9]).unwrap();
        assert_eq!(
            match nc_benchmark(&data(4, 2), &foreign, &NcConfig::new(1)) {
                Err(BenchmarkError::InvalidArgument { argument, .. }) => argument,
                _ => "",
            },
            "test"
        );
    }
}
