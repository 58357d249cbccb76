//! Class-incremental (new classes) splitting, Avalanche's `nc_benchmark`.

use std::collections::{BTreeMap, BTreeSet};

use cl_core::config::{Validate, rule};
use cl_core::data::ClassificationDataset;
use cl_core::{Benchmark, ClError, Experience, Result, Stream};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::common::{MAX_CLASS_ID, cpython_set_order};

/// The order in which classes are assigned to experiences: Avalanche's `shuffle` and
/// `fixed_class_order` arguments, which exclude each other.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassOrder {
    /// Shuffled with the config's `seed` (Avalanche's default, `shuffle=True`).
    #[default]
    Shuffled,
    /// In increasing class-id order (`shuffle=False`).
    Sorted,
    /// This order, a permutation of the dataset's classes (`fixed_class_order=[...]`).
    Fixed {
        /// The classes, first experience first.
        order: Vec<u32>,
    },
}

/// How class labels are renumbered: Avalanche's `class_ids_from_zero_in_each_exp` and
/// `class_ids_from_zero_from_first_exp`, which exclude each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassIds {
    /// The original class ids (Avalanche's default: both flags `False`).
    #[default]
    Original,
    /// The classes of each experience become 0, 1, ... in class order
    /// (`class_ids_from_zero_in_each_exp=True`; task-incremental heads).
    FromZeroInEachExp,
    /// All classes become 0, 1, ... in class order (`class_ids_from_zero_from_first_exp=True`).
    FromZeroFromFirstExp,
}

impl ClassIds {
    fn relabels(self) -> bool {
        self != ClassIds::Original
    }
}

/// Options of a class-incremental split ([`nc_benchmark`], [`nc_benchmark_multi`]):
/// Avalanche's `nc_benchmark` arguments.
///
/// Differences from Avalanche: the seed is always explicit (default 0, Avalanche's `seed=None`
/// draws one); `shuffle` and `fixed_class_order` are one [`ClassOrder`], the two
/// `class_ids_from_zero_*` flags one [`ClassIds`]; an experience of 0 classes and classes left
/// over by `per_exp_classes` are errors.
///
/// ```
/// use cl_benchmarks::{ClassIds, NcConfig};
/// let config = NcConfig::new(5, true).with_seed(1).with_class_ids(ClassIds::FromZeroInEachExp);
/// assert_eq!(config.n_experiences, 5);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[doc(alias = "nc_benchmark")]
pub struct NcConfig {
    /// Number of experiences (required).
    pub n_experiences: usize,
    /// Task label of each sample = index of its experience (task-incremental); otherwise 0
    /// (required, as in Avalanche).
    pub task_labels: bool,
    /// The class order (default [`ClassOrder::Shuffled`]).
    #[serde(default)]
    #[doc(alias = "shuffle")]
    #[doc(alias = "fixed_class_order")]
    pub class_order: ClassOrder,
    /// Seed of the shuffled class order (default 0).
    #[serde(default)]
    pub seed: u64,
    /// Classes of some experiences (experience index → count), as Avalanche's
    /// `per_exp_classes` dict: the other experiences share the remaining classes evenly.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "per_exp_keys")]
    pub per_exp_classes: Option<BTreeMap<usize, usize>>,
    /// How the classes are renumbered (default [`ClassIds::Original`]).
    #[serde(default)]
    #[doc(alias = "class_ids_from_zero_in_each_exp")]
    #[doc(alias = "class_ids_from_zero_from_first_exp")]
    pub class_ids: ClassIds,
    /// With several datasets ([`nc_benchmark_multi`]): each dataset is one experience (the
    /// experience order is shuffled with `seed` unless the class order is
    /// [`ClassOrder::Sorted`]); excludes `per_exp_classes` and a fixed class order, and
    /// overrides `n_experiences` (default `false`).
    #[serde(default)]
    pub one_dataset_per_exp: bool,
}

impl NcConfig {
    /// `n_experiences` experiences with task labels or not (Avalanche's two required
    /// arguments); shuffled class order with seed 0, original labels.
    pub fn new(n_experiences: usize, task_labels: bool) -> Self {
        Self {
            n_experiences,
            task_labels,
            class_order: ClassOrder::Shuffled,
            seed: 0,
            per_exp_classes: None,
            class_ids: ClassIds::Original,
            one_dataset_per_exp: false,
        }
    }

    /// Task label = experience index, or 0.
    pub fn with_task_labels(mut self, on: bool) -> Self {
        self.task_labels = on;
        self
    }

    /// The class order.
    pub fn with_class_order(mut self, order: ClassOrder) -> Self {
        self.class_order = order;
        self
    }

    /// The seed of the shuffled class order.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Classes of some experiences, e.g. `[(0, 5)]` for half of ten classes in the first
    /// experience; the others share the rest evenly.
    pub fn with_per_exp_classes(mut self, counts: impl IntoIterator<Item = (usize, usize)>) -> Self {
        self.per_exp_classes = Some(counts.into_iter().collect());
        self
    }

    /// How the classes are renumbered.
    pub fn with_class_ids(mut self, class_ids: ClassIds) -> Self {
        self.class_ids = class_ids;
        self
    }

    /// Each dataset of [`nc_benchmark_multi`] is one experience.
    pub fn with_one_dataset_per_exp(mut self, on: bool) -> Self {
        self.one_dataset_per_exp = on;
        self
    }

    /// The seed recorded in the benchmark: `Some(seed)` when the order is shuffled.
    fn benchmark_seed(&self) -> Option<u64> {
        matches!(self.class_order, ClassOrder::Shuffled).then_some(self.seed)
    }

    /// The class order and the classes per experience for a dataset whose classes are
    /// `classes` (sorted), checking the rules that depend on them; `config` names the config in
    /// errors.
    pub(crate) fn plan(&self, config: &'static str, classes: &[u32]) -> Result<(Vec<u32>, Vec<usize>)> {
        let n_classes = classes.len();
        let order = match &self.class_order {
            ClassOrder::Fixed { order } => {
                let given: BTreeSet<u32> = order.iter().copied().collect();
                let have: BTreeSet<u32> = classes.iter().copied().collect();
                rule(config, "class_order_permutation", given == have && order.len() == n_classes, || {
                    format!("the fixed order {order:?} is not a permutation of the dataset's classes {classes:?}")
                })?;
                order.clone()
            }
            ClassOrder::Shuffled => {
                let mut order = classes.to_vec();
                order.shuffle(&mut ChaCha8Rng::seed_from_u64(self.seed));
                order
            }
            ClassOrder::Sorted => classes.to_vec(),
        };
        let counts = per_exp_counts(config, n_classes, self.n_experiences, self.per_exp_classes.as_ref())?;
        Ok((order, counts))
    }
}

impl Validate for NcConfig {
    fn validate(&self) -> Result<()> {
        validate_split("NcConfig", self.n_experiences, &self.class_order, self.per_exp_classes.as_ref())?;
        rule(
            "NcConfig",
            "one_dataset_per_exp_alone",
            !self.one_dataset_per_exp
                || (self.per_exp_classes.is_none() && !matches!(self.class_order, ClassOrder::Fixed { .. })),
            || {
                "one_dataset_per_exp makes each dataset one experience: it cannot be combined with \
                 per_exp_classes or a fixed class order; drop them, or set one_dataset_per_exp = false"
                    .to_string()
            },
        )
    }
}

/// The dataset-independent rules of a class split, shared by [`NcConfig`] and
/// [`SplitConfig`](crate::SplitConfig).
pub(crate) fn validate_split(
    config: &'static str,
    n_experiences: usize,
    class_order: &ClassOrder,
    per_exp_classes: Option<&BTreeMap<usize, usize>>,
) -> Result<()> {
    rule(config, "n_experiences_positive", n_experiences > 0, || {
        "n_experiences = 0: there must be at least 1 experience".to_string()
    })?;
    if let ClassOrder::Fixed { order } = class_order {
        let distinct: BTreeSet<u32> = order.iter().copied().collect();
        rule(config, "class_order_no_duplicates", distinct.len() == order.len(), || {
            format!("the fixed class order {order:?} lists a class twice; list each class once")
        })?;
    }
    if let Some(given) = per_exp_classes {
        rule(config, "per_exp_classes_positive", given.values().all(|&c| c > 0), || {
            format!("per_exp_classes {given:?} gives an experience 0 classes; every experience needs at least one")
        })?;
        rule(config, "per_exp_classes_in_range", given.keys().all(|&e| e < n_experiences), || {
            format!(
                "per_exp_classes {given:?} names an experience that does not exist: ids must be in 0..{n_experiences}"
            )
        })?;
    }
    Ok(())
}

/// Classes per experience (Avalanche's `NCScenario` rule): the given counts, and the remaining
/// classes split evenly over the other experiences. Unlike Avalanche, classes left over (all
/// experiences given, counts summing to less) are an error.
fn per_exp_counts(
    config: &'static str,
    n_classes: usize,
    n_experiences: usize,
    given: Option<&BTreeMap<usize, usize>>,
) -> Result<Vec<usize>> {
    let given = match given {
        Some(g) if !g.is_empty() => g,
        _ => {
            rule(
                config,
                "n_experiences_divides_classes",
                n_experiences <= n_classes && n_classes.is_multiple_of(n_experiences),
                || {
                    format!(
                        "{n_experiences} experiences cannot split {n_classes} classes evenly; choose a divisor of \
                         {n_classes} or give per_exp_classes"
                    )
                },
            )?;
            return Ok(vec![n_classes / n_experiences; n_experiences]);
        }
    };
    let assigned: usize = given.values().sum();
    let remaining_exps = n_experiences - given.len();
    rule(config, "per_exp_classes_at_most_classes", assigned <= n_classes, || {
        format!("per_exp_classes asks for {assigned} classes, the dataset has {n_classes}")
    })?;
    let remaining = n_classes - assigned;
    let default = match remaining_exps {
        0 => {
            rule(config, "per_exp_classes_cover_classes", remaining == 0, || {
                format!("{remaining} classes would belong to no experience; the counts must sum to {n_classes}")
            })?;
            0
        }
        r => {
            rule(config, "per_exp_classes_rest_divisible", remaining.is_multiple_of(r) && remaining >= r, || {
                format!("the {remaining} remaining classes cannot be split evenly over the other {r} experiences")
            })?;
            remaining / r
        }
    };
    Ok((0..n_experiences).map(|e| given.get(&e).copied().unwrap_or(default)).collect())
}

/// Splits a train and a test dataset into a class-incremental benchmark: experience `i` holds
/// the samples of the `i`-th group of classes of the class order, in both streams.
///
/// Experiences are index views of the given datasets (no copy). `n_classes` is the number of
/// classes of the benchmark (the classes present in `train`).
///
/// **Sample order** (Avalanche's): an experience holds its classes one after the other, each
/// class's samples in dataset order, the classes in the order CPython iterates the experience's
/// `set` of class ids — ascending when the ids are small (the first experience of SplitFMNIST
/// with class order `[5, 6, …]` is every 5, then every 6), but not always (`{9, 3}` is visited
/// 9 then 3; see `cpython_set_order`). Training loaders shuffle, so this matters to the passes
/// that read an experience in order: EWC's Fisher and MAS's importance see single-class
/// mini-batches, as in Avalanche.
///
/// Errors ([`ClError::InvalidConfig`]): the rules of `config` ([`Validate`]) and those that
/// depend on the data (`class_order_permutation`, `n_experiences_divides_classes`,
/// `per_exp_classes_*`); an empty `train`, a test class absent from `train`, class ids
/// `>= 2^24` (arguments `train`, `test`); `one_dataset_per_exp` (rule
/// `one_dataset_per_exp_needs_several_datasets`: use [`nc_benchmark_multi`]).
pub fn nc_benchmark(
    train: &ClassificationDataset,
    test: &ClassificationDataset,
    config: &NcConfig,
) -> Result<Benchmark> {
    config.validate()?;
    rule("NcConfig", "one_dataset_per_exp_needs_several_datasets", !config.one_dataset_per_exp, || {
        "one_dataset_per_exp needs several datasets: call nc_benchmark_multi with one train and one test dataset \
         per experience"
            .to_string()
    })?;
    split_classes(train, test, config, "NcConfig")
}

/// [`nc_benchmark`] of a validated config; `name` names the config in errors.
pub(crate) fn split_classes(
    train: &ClassificationDataset,
    test: &ClassificationDataset,
    config: &NcConfig,
    name: &'static str,
) -> Result<Benchmark> {
    let train_targets = train.targets();
    let test_targets = test.targets();
    let classes: Vec<u32> = train_targets.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
    if classes.is_empty() {
        return Err(ClError::config("train", "the training dataset is empty"));
    }
    if test.is_empty() {
        return Err(ClError::config(
            "test",
            "the test dataset is empty: every experience would have an empty test experience (give test samples of \
             every class)",
        ));
    }
    if train.sample_shape() != test.sample_shape() {
        return Err(ClError::config(
            "test",
            format!(
                "test samples have shape {:?} but training samples {:?}: give train and test sets of the same kind",
                test.sample_shape(),
                train.sample_shape()
            ),
        ));
    }
    let test_classes: BTreeSet<u32> = test_targets.iter().copied().collect();
    if let Some(c) = test_classes.iter().find(|c| classes.binary_search(c).is_err()) {
        return Err(ClError::config("test", format!("test class {c} does not occur in the training data")));
    }
    let max_class = *classes.last().unwrap() as usize;
    if max_class >= MAX_CLASS_ID {
        return Err(ClError::config(
            "train",
            format!("class id {max_class} is too large (ids must be < {MAX_CLASS_ID}); relabel the classes 0..n first"),
        ));
    }
    let (order, counts) = config.plan(name, &classes)?;

    // Groups of original classes and the label mapping.
    let mut groups: Vec<Vec<u32>> = Vec::with_capacity(counts.len());
    let mut start = 0;
    for &k in &counts {
        groups.push(order[start..start + k].to_vec());
        start += k;
    }
    // Every experience needs test samples of each of its classes: an absent class would make an
    // empty (or partial) test experience that evaluates to nothing.
    for (e, group) in groups.iter().enumerate() {
        let missing: Vec<u32> = group.iter().copied().filter(|c| !test_classes.contains(c)).collect();
        if !missing.is_empty() {
            return Err(ClError::config(
                "test",
                format!(
                    "the test set has no sample of class(es) {missing:?} of experience {e}: give a test set with \
                     every training class (or leave these classes out of the training set)"
                ),
            ));
        }
    }
    let mut mapping: Vec<u32> = (0..=max_class as u32).collect();
    match config.class_ids {
        ClassIds::FromZeroFromFirstExp => {
            for (new, &c) in order.iter().enumerate() {
                mapping[c as usize] = new as u32;
            }
        }
        ClassIds::FromZeroInEachExp => {
            for g in &groups {
                for (new, &c) in g.iter().enumerate() {
                    mapping[c as usize] = new as u32;
                }
            }
        }
        ClassIds::Original => {}
    }
    let relabel = config.class_ids.relabels();

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
            // Avalanche's order: class by class, in the order CPython iterates the experience's
            // set of classes, each class's samples in dataset order.
            let visit = cpython_set_order(&group.iter().map(|&c| u64::from(c)).collect::<Vec<_>>());
            let indices: Vec<usize> = visit.iter().flat_map(|&c| idx[c as usize].iter().copied()).collect();
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
        Ok::<_, ClError>(Stream::new(name, experiences))
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
        seed: config.benchmark_seed(),
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
) -> Result<Benchmark> {
    config.validate()?;
    if train.is_empty() || train.len() != test.len() {
        return Err(ClError::config(
            "train",
            format!("{} train and {} test datasets: give one test dataset per train dataset", train.len(), test.len()),
        ));
    }
    let mut offset = 0u32;
    let mut class_lists: Vec<Vec<u32>> = Vec::with_capacity(train.len());
    let (mut train_all, mut test_all): (Option<ClassificationDataset>, Option<ClassificationDataset>) = (None, None);
    for (i, (tr, te)) in train.iter().zip(test).enumerate() {
        let classes: Vec<u32> = tr.classes().into_iter().collect();
        let Some(&max) = classes.last() else {
            return Err(ClError::config("train", format!("train dataset {i} is empty")));
        };
        if max as usize >= MAX_CLASS_ID {
            return Err(ClError::config("train", format!("class id {max} of dataset {i} is too large")));
        }
        if let Some(c) = te.classes().into_iter().find(|c| classes.binary_search(c).is_err()) {
            return Err(ClError::config("test", format!("class {c} of test dataset {i} is not in train dataset {i}")));
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
        return split_classes(&train_all, &test_all, config, "NcConfig");
    }
    let mut order: Vec<usize> = (0..train.len()).collect();
    let shuffled = matches!(config.class_order, ClassOrder::Shuffled);
    if shuffled {
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(config.seed));
    }
    let mut per_dataset = config.clone();
    per_dataset.one_dataset_per_exp = false;
    per_dataset.n_experiences = train.len();
    per_dataset.class_order =
        ClassOrder::Fixed { order: order.iter().flat_map(|&d| class_lists[d].iter().copied()).collect() };
    per_dataset.per_exp_classes = Some(order.iter().enumerate().map(|(pos, &d)| (pos, class_lists[d].len())).collect());
    let mut benchmark = split_classes(&train_all, &test_all, &per_dataset, "NcConfig")?;
    benchmark.seed = shuffled.then_some(config.seed);
    Ok(benchmark)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cl_core::config::{ConfigFile, assert_rule};
    use proptest::prelude::*;

    /// `n` samples over `k` classes (class ids scattered: 3·c + 1), round-robin.
    fn data(n: usize, k: usize) -> ClassificationDataset {
        let targets: Vec<u32> = (0..n).map(|i| 3 * (i % k) as u32 + 1).collect();
        ClassificationDataset::from_f32((0..n).map(|i| i as f32).collect(), vec![1], targets).unwrap()
    }

    fn divisors(k: usize) -> Vec<usize> {
        (1..=k).filter(|d| k.is_multiple_of(*d)).collect()
    }

    proptest! {
        #[test]
        fn experiences_partition_the_classes_and_samples(k in 2usize..12, pick in 0usize..12, seed in 0u64..1000) {
            let ds = data(6 * k, k);
            let ds_test = data(2 * k, k);
            let n_exp = divisors(k)[pick % divisors(k).len()];
            let b = nc_benchmark(&ds, &ds_test, &NcConfig::new(n_exp, false).with_seed(seed)).unwrap();
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
            let a = nc_benchmark(&ds, &ds, &NcConfig::new(1, false).with_seed(seed)).unwrap();
            let b = nc_benchmark(&ds, &ds, &NcConfig::new(1, false).with_seed(seed)).unwrap();
            prop_assert_eq!(&a.classes_order, &b.classes_order);
            // Orders of ≥ 6 classes: the next 3 seeds cannot all give the same order by chance
            // (probability < 1/720³).
            let others: Vec<Vec<u32>> = (1..4)
                .map(|d| nc_benchmark(&ds, &ds, &NcConfig::new(1, false).with_seed(seed + d)).unwrap().classes_order)
                .collect();
            prop_assert!(others.iter().any(|o| *o != a.classes_order));
        }

        #[test]
        fn class_id_remapping_round_trips(k in 2usize..12, seed in 0u64..1000, per_exp in any::<bool>()) {
            let ds = data(2 * k, k);
            let n_exp = if k % 2 == 0 { 2 } else { 1 };
            let class_ids = if per_exp { ClassIds::FromZeroInEachExp } else { ClassIds::FromZeroFromFirstExp };
            let config = NcConfig::new(n_exp, false).with_seed(seed).with_class_ids(class_ids);
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
            // Class by class, in CPython's set order (Avalanche's sample order).
            let visit = cpython_set_order(&first.iter().map(|&c| u64::from(c)).collect::<Vec<_>>());
            let orig0: Vec<u32> =
                visit.iter().flat_map(|&c| originals.iter().copied().filter(move |&o| u64::from(o) == c)).collect();
            let mapped: Vec<u32> = orig0.iter().map(|&c| b.class_mapping[c as usize]).collect();
            prop_assert_eq!(exp0.targets(), mapped);
        }
    }

    #[test]
    fn several_datasets_are_renumbered_and_can_be_one_experience_each() {
        let a = data(8, 2); // classes 1, 4
        let b = data(9, 3); // classes 1, 4, 7
        let multi =
            nc_benchmark_multi(&[a.clone(), b.clone()], &[a.clone(), b.clone()], &NcConfig::new(5, false).with_seed(2))
                .unwrap();
        assert_eq!(multi.n_classes, 5);
        assert_eq!(multi.train_stream.iter().map(|e| e.dataset.len()).sum::<usize>(), 17);
        let per = nc_benchmark_multi(
            &[a.clone(), b.clone()],
            &[a.clone(), b.clone()],
            &NcConfig::new(1, false).with_class_order(ClassOrder::Sorted).with_one_dataset_per_exp(true),
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
                    &NcConfig::new(1, false).with_seed(seed).with_one_dataset_per_exp(true),
                )
                .unwrap();
                b2.train_stream.iter().map(|e| e.classes_in_this_experience.clone()).collect()
            })
            .collect();
        assert_eq!(orders.len(), 2, "{orders:?}");
        let both = NcConfig::new(1, false).with_one_dataset_per_exp(true).with_per_exp_classes([(0, 1)]);
        assert_rule(
            nc_benchmark_multi(&[a.clone(), b.clone()], &[a.clone(), b.clone()], &both),
            "one_dataset_per_exp_alone",
        );
        assert_rule(
            nc_benchmark(&a, &a, &NcConfig::new(1, false).with_one_dataset_per_exp(true)),
            "one_dataset_per_exp_needs_several_datasets",
        );
        assert_rule(nc_benchmark_multi(std::slice::from_ref(&a), &[], &NcConfig::new(1, false)), "train");
    }

    #[test]
    fn argument_errors() {
        let ds = data(20, 10);
        let run = |c: NcConfig| nc_benchmark(&ds, &ds, &c);
        assert_rule(run(NcConfig::new(0, false)), "n_experiences_positive");
        assert_rule(run(NcConfig::new(3, false)), "n_experiences_divides_classes");
        assert_rule(run(NcConfig::new(11, false)), "n_experiences_divides_classes");
        let fixed = |order: Vec<u32>| NcConfig::new(2, false).with_class_order(ClassOrder::Fixed { order });
        assert_rule(run(fixed(vec![1, 4])), "class_order_permutation");
        assert_rule(run(fixed(vec![1, 4, 7, 10, 13, 16, 19, 22, 25, 25])), "class_order_no_duplicates");
        let empty = ClassificationDataset::from_f32(vec![], vec![1], vec![]).unwrap();
        assert_rule(nc_benchmark(&empty, &ds, &NcConfig::new(1, false)), "train");
        let foreign = data(4, 2).with_class_mapping(&[0, 0, 0, 0, 9]).unwrap();
        assert_rule(nc_benchmark(&data(4, 2), &foreign, &NcConfig::new(1, false)), "test");
    }

    #[test]
    fn every_rule() {
        let ds = data(20, 10);
        let per = |counts: &[(usize, usize)]| NcConfig::new(3, false).with_per_exp_classes(counts.iter().copied());
        let cases: Vec<(NcConfig, &str)> = vec![
            (NcConfig::new(0, false), "n_experiences_positive"),
            (
                NcConfig::new(2, false).with_class_order(ClassOrder::Fixed { order: vec![1, 1] }),
                "class_order_no_duplicates",
            ),
            (per(&[(0, 0)]), "per_exp_classes_positive"),
            (per(&[(3, 2)]), "per_exp_classes_in_range"),
            (
                NcConfig::new(1, false).with_one_dataset_per_exp(true).with_per_exp_classes([(0, 1)]),
                "one_dataset_per_exp_alone",
            ),
            (
                NcConfig::new(1, false)
                    .with_one_dataset_per_exp(true)
                    .with_class_order(ClassOrder::Fixed { order: vec![1] }),
                "one_dataset_per_exp_alone",
            ),
        ];
        for (config, name) in cases {
            assert_rule(config.validate(), name);
        }
        // The rules that depend on the dataset's classes (10 here).
        let data_cases: Vec<(NcConfig, &str)> = vec![
            (NcConfig::new(4, false), "n_experiences_divides_classes"),
            (
                NcConfig::new(2, false).with_class_order(ClassOrder::Fixed { order: vec![1, 4] }),
                "class_order_permutation",
            ),
            (per(&[(0, 11)]), "per_exp_classes_at_most_classes"),
            (per(&[(0, 3), (1, 3), (2, 3)]), "per_exp_classes_cover_classes"),
            (per(&[(0, 5)]), "per_exp_classes_rest_divisible"),
            (NcConfig::new(1, false).with_one_dataset_per_exp(true), "one_dataset_per_exp_needs_several_datasets"),
        ];
        for (config, name) in data_cases {
            config.validate().unwrap();
            assert_rule(nc_benchmark(&ds, &ds, &config), name);
        }
    }

    #[test]
    fn config_round_trips() {
        for config in [
            NcConfig::new(5, true)
                .with_seed(42)
                .with_class_order(ClassOrder::Fixed { order: vec![4, 3, 2, 1, 0] })
                .with_per_exp_classes([(0, 2), (3, 1)])
                .with_class_ids(ClassIds::FromZeroInEachExp),
            NcConfig::new(2, false).with_class_order(ClassOrder::Sorted).with_class_ids(ClassIds::FromZeroFromFirstExp),
            NcConfig::new(1, false).with_one_dataset_per_exp(true).with_seed(3),
        ] {
            assert_eq!(NcConfig::from_json(&config.to_json()).unwrap(), config);
            assert_eq!(NcConfig::from_toml(&config.to_toml().unwrap()).unwrap(), config);
        }
        // Avalanche's defaults for what is not given.
        let c = NcConfig::from_toml("n_experiences = 5\ntask_labels = false").unwrap();
        assert_eq!(c, NcConfig::new(5, false));
        assert!(NcConfig::from_toml("n_experiences = 5").is_err(), "task_labels is required");
    }
}

/// Serde of `per_exp_classes` maps: experience ids are written as string keys (what JSON and
/// TOML tables hold) and read back from strings, also when the map is buffered inside a tagged
/// enum (where serde cannot turn a string key into an integer by itself).
pub(crate) mod per_exp_keys {
    use std::collections::BTreeMap;

    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(map: &Option<BTreeMap<usize, usize>>, s: S) -> Result<S::Ok, S::Error> {
        map.as_ref()
            .map(|m| m.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<String, usize>>())
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BTreeMap<usize, usize>>, D::Error> {
        let Some(map) = Option::<BTreeMap<String, usize>>::deserialize(d)? else {
            return Ok(None);
        };
        map.into_iter()
            .map(|(k, v)| {
                k.parse::<usize>()
                    .map(|k| (k, v))
                    .map_err(|_| D::Error::custom(format!("per_exp_classes key `{k}` is not an experience index")))
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }
}
