//! New-instances (domain-incremental) splitting, Avalanche's `ni_benchmark`.

use std::collections::{BTreeMap, BTreeSet};

use cl_core::config::{Validate, rule};
use cl_core::data::ClassificationDataset;
use cl_core::{Benchmark, ClError, Result};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::common::{check_class_ids, classes_per_experience, stream_of};

/// How training samples are assigned to experiences: Avalanche's `shuffle` and
/// `fixed_exp_assignment` arguments, which exclude each other.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpAssignment {
    /// The samples are shuffled with the config's `seed` before they are assigned
    /// (Avalanche's default, `shuffle=True`).
    #[default]
    Shuffled,
    /// The samples are assigned in dataset order (`shuffle=False`).
    DatasetOrder,
    /// These training-sample indices for each experience (`fixed_exp_assignment=[...]`), as
    /// [`ni_exp_assignment`] returns them; samples left out of every list are not used.
    Fixed {
        /// One non-empty list of distinct indices per experience.
        exp_assignment: Vec<Vec<usize>>,
    },
}

/// Options of a new-instances split ([`ni_benchmark`]): Avalanche's `ni_benchmark` arguments.
///
/// Differences from Avalanche: the seed is always explicit (default 0, Avalanche's `seed=None`
/// draws one); `shuffle` and `fixed_exp_assignment` are one [`ExpAssignment`]; a fixed
/// assignment with `balance_experiences` or `min_class_patterns_in_exp` is an error (Avalanche
/// ignores them).
///
/// ```
/// use cl_benchmarks::NiConfig;
/// let config = NiConfig::new(4).with_seed(3).with_balance_experiences(true);
/// assert_eq!(config.n_experiences, 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[doc(alias = "ni_benchmark")]
pub struct NiConfig {
    /// Number of training experiences (required).
    pub n_experiences: usize,
    /// Task label of each training sample = index of its experience; otherwise 0 (default
    /// `false`).
    #[serde(default)]
    pub task_labels: bool,
    /// How the samples are assigned (default [`ExpAssignment::Shuffled`]).
    #[serde(default)]
    #[doc(alias = "shuffle")]
    #[doc(alias = "fixed_exp_assignment")]
    pub assignment: ExpAssignment,
    /// Seed of the shuffle (default 0).
    #[serde(default)]
    pub seed: u64,
    /// Spread the samples of each class evenly: per class, experience sizes differ by at most
    /// one (and so do the total sizes) (default `false`).
    #[serde(default)]
    pub balance_experiences: bool,
    /// Every experience gets at least this many samples of every class (default 0).
    #[serde(default)]
    pub min_class_patterns_in_exp: usize,
}

impl NiConfig {
    /// `n_experiences` experiences, shuffled with seed 0, unbalanced, no minimum, one task.
    pub fn new(n_experiences: usize) -> Self {
        Self {
            n_experiences,
            task_labels: false,
            assignment: ExpAssignment::Shuffled,
            seed: 0,
            balance_experiences: false,
            min_class_patterns_in_exp: 0,
        }
    }

    /// Task label = experience index.
    pub fn with_task_labels(mut self, on: bool) -> Self {
        self.task_labels = on;
        self
    }

    /// How the samples are assigned.
    pub fn with_assignment(mut self, assignment: ExpAssignment) -> Self {
        self.assignment = assignment;
        self
    }

    /// Sets the seed of the shuffle.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Whether each class is spread evenly over the experiences.
    pub fn with_balance_experiences(mut self, on: bool) -> Self {
        self.balance_experiences = on;
        self
    }

    /// Minimum number of samples of every class in every experience.
    pub fn with_min_class_patterns_in_exp(mut self, n: usize) -> Self {
        self.min_class_patterns_in_exp = n;
        self
    }
}

impl Validate for NiConfig {
    fn validate(&self) -> Result<()> {
        const C: &str = "NiConfig";
        let n_exp = self.n_experiences;
        rule(C, "n_experiences_positive", n_exp > 0, || {
            "n_experiences = 0: there must be at least 1 experience".to_string()
        })?;
        let ExpAssignment::Fixed { exp_assignment: fixed } = &self.assignment else {
            return Ok(());
        };
        rule(C, "assignment_fixed_alone", !self.balance_experiences && self.min_class_patterns_in_exp == 0, || {
            "a fixed assignment decides every experience's samples: balance_experiences and \
             min_class_patterns_in_exp would be ignored; leave them at false and 0"
                .to_string()
        })?;
        rule(C, "assignment_one_list_per_experience", fixed.len() == n_exp, || {
            format!(
                "{} index lists for {n_exp} experiences; give one list per experience or set n_experiences to {}",
                fixed.len(),
                fixed.len()
            )
        })?;
        let empty = fixed.iter().position(Vec::is_empty);
        rule(C, "assignment_lists_non_empty", empty.is_none(), || {
            format!("experience {} has no sample; give every experience at least one index", empty.unwrap_or(0))
        })?;
        let mut used = BTreeSet::new();
        let twice =
            fixed.iter().enumerate().find_map(|(e, list)| list.iter().find(|&&i| !used.insert(i)).map(|&i| (e, i)));
        rule(C, "assignment_no_duplicates", twice.is_none(), || {
            let (e, i) = twice.unwrap_or_default();
            format!("index {i} is assigned twice (again in experience {e}); list each sample once")
        })
    }
}

/// The training-sample indices of each experience of a new-instances split, in Avalanche's
/// order (`NIScenario`): with `balance_experiences`, class by class in increasing class id,
/// each class's samples in its (shuffled) order; otherwise the `min_class_patterns_in_exp`
/// samples of every class first, then the experience's chunk of the remaining samples, then
/// its extra sample if it gets one. A fixed assignment is returned as given.
///
/// This is what [`ni_benchmark`] uses; keep it to reproduce a split exactly (pass it back as
/// [`ExpAssignment::Fixed`]), as Avalanche's `get_reproducibility_data`.
///
/// Errors ([`ClError::InvalidConfig`]): the rules of `config`, and those that depend on the
/// data: `n_experiences_at_most_samples`, `assignment_in_range` (an index past the training
/// samples), `min_class_patterns_in_exp_fits_classes`; an empty `train` (argument `train`).
pub fn ni_exp_assignment(train: &ClassificationDataset, config: &NiConfig) -> Result<Vec<Vec<usize>>> {
    config.validate()?;
    const C: &str = "NiConfig";
    let n = train.len();
    let n_exp = config.n_experiences;
    if n == 0 {
        return Err(ClError::config("train", "the training dataset is empty"));
    }
    rule(C, "n_experiences_at_most_samples", n_exp <= n, || {
        format!("{n_exp} experiences for {n} training samples; use at most {n}")
    })?;
    let shuffle = match &config.assignment {
        ExpAssignment::Fixed { exp_assignment } => {
            let out = exp_assignment.iter().enumerate().find_map(|(e, l)| l.iter().find(|&&i| i >= n).map(|&i| (e, i)));
            rule(C, "assignment_in_range", out.is_none(), || {
                let (e, i) = out.unwrap_or_default();
                format!("index {i} in experience {e} is out of range for {n} training samples; use 0..{n}")
            })?;
            return Ok(exp_assignment.clone());
        }
        ExpAssignment::Shuffled => true,
        ExpAssignment::DatasetOrder => false,
    };

    // Indices of each class, in class order.
    let mut by_class: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, y) in train.targets().into_iter().enumerate() {
        by_class.entry(y).or_default().push(i);
    }
    let min = config.min_class_patterns_in_exp;
    if min > 0 {
        let (&c, idx) = by_class.iter().min_by_key(|(_, v)| v.len()).expect("non-empty dataset");
        if idx.len() < n_exp.saturating_mul(min) {
            return Err(ClError::InvalidConfig {
                config: "NiConfig",
                rule: "min_class_patterns_in_exp_fits_classes",
                reason: format!(
                    "class {c} has only {} training samples, fewer than {n_exp} experiences x {min}; \
                     use at most {} or fewer experiences",
                    idx.len(),
                    idx.len() / n_exp
                ),
            });
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut classes: Vec<Vec<usize>> = by_class.into_values().collect();
    if shuffle {
        for idx in classes.iter_mut() {
            idx.shuffle(&mut rng);
        }
    }

    let mut exps: Vec<Vec<usize>> = vec![Vec::new(); n_exp];
    if config.balance_experiences {
        // exp_structure[e][c]: samples of class c in experience e. Each class gives
        // n_c / n_exp samples to every experience, its n_c % n_exp extra samples go to the
        // currently smallest experiences (ties: random order when shuffling, else lowest index).
        let mut totals = vec![0usize; n_exp];
        let mut structure = vec![vec![0usize; classes.len()]; n_exp];
        for (c, idx) in classes.iter().enumerate() {
            let (base, rem) = (idx.len() / n_exp, idx.len() % n_exp);
            for e in 0..n_exp {
                structure[e][c] = base;
                totals[e] += base;
            }
            if rem > 0 {
                let mut order: Vec<usize> = (0..n_exp).collect();
                if shuffle {
                    order.shuffle(&mut rng);
                }
                order.sort_by_key(|&e| totals[e]); // stable: keeps the tie order
                for &e in &order[..rem] {
                    structure[e][c] += 1;
                    totals[e] += 1;
                }
            }
        }
        let mut next = vec![0usize; classes.len()];
        for (e, exp) in exps.iter_mut().enumerate() {
            for (c, idx) in classes.iter().enumerate() {
                exp.extend_from_slice(&idx[next[c]..next[c] + structure[e][c]]);
                next[c] += structure[e][c];
            }
        }
    } else {
        // The minimum of every class first, then the rest in (shuffled) order, in equal chunks;
        // the remainder goes one sample each to random experiences (first ones if not shuffled).
        let mut assigned = vec![false; n];
        for (e, exp) in exps.iter_mut().enumerate() {
            for idx in &classes {
                for &i in &idx[e * min..(e + 1) * min] {
                    exp.push(i);
                    assigned[i] = true;
                }
            }
        }
        let mut remaining: Vec<usize> = (0..n).filter(|&i| !assigned[i]).collect();
        if shuffle {
            remaining.shuffle(&mut rng);
        }
        let avg = remaining.len() / n_exp;
        let rem = remaining.len() % n_exp;
        for (e, exp) in exps.iter_mut().enumerate() {
            exp.extend_from_slice(&remaining[e * avg..(e + 1) * avg]);
        }
        if rem > 0 {
            let mut targets: Vec<usize> = (0..n_exp).collect();
            if shuffle {
                targets.shuffle(&mut rng);
            }
            for (j, &e) in targets[..rem].iter().enumerate() {
                exps[e].push(remaining[n_exp * avg + j]);
            }
        }
    }
    Ok(exps)
}

/// Splits a training dataset into a new-instances (domain-incremental) benchmark: every
/// experience holds a part of the training samples, usually of every class; the test stream
/// is one experience with the whole test set (task label 0), as Avalanche's `NIScenario`.
///
/// Experiences are index views of `train` (no copy). Labels are kept; `n_classes` is the
/// number of training classes, `class_mapping` the identity.
pub fn ni_benchmark(
    train: &ClassificationDataset,
    test: &ClassificationDataset,
    config: &NiConfig,
) -> Result<Benchmark> {
    let assignment = ni_exp_assignment(train, config)?;
    if test.is_empty() {
        return Err(ClError::config("test", "the test dataset is empty"));
    }
    let train_targets = train.targets();
    let train_max = check_class_ids("train", &train_targets)?;
    let test_max = check_class_ids("test", &test.targets())?;
    let label_space = train_max.max(test_max).map_or(0, |m| m as usize + 1);
    let classes: Vec<u32> = train_targets.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();

    let datasets = assignment
        .iter()
        .enumerate()
        .map(|(e, idx)| {
            let t = if config.task_labels { e as u32 } else { 0 };
            Ok(train.subset(idx)?.with_task_label(t))
        })
        .collect::<Result<Vec<_>>>()?;
    let train_stream = stream_of("train", datasets, label_space);
    let test_stream = stream_of("test", vec![test.with_task_label(0)], label_space);
    let (n_classes_per_exp, original_classes_in_exp) = classes_per_experience(&train_stream);
    Ok(Benchmark {
        train_stream,
        test_stream,
        n_classes: classes.len(),
        classes_order: classes,
        n_classes_per_exp,
        original_classes_in_exp,
        class_mapping: (0..label_space as u32).collect(),
        seed: matches!(config.assignment, ExpAssignment::Shuffled).then_some(config.seed),
    })
}

#[cfg(test)]
mod tests {
    use super::super::common::testing::{ids, indexed};
    use super::*;
    use cl_core::config::{ConfigFile, assert_rule};
    use proptest::prelude::*;

    fn is_rule(r: Result<impl std::fmt::Debug>, name: &str) -> bool {
        matches!(r, Err(ClError::InvalidConfig { rule, .. }) if rule == name)
    }

    fn order(shuffle: bool) -> ExpAssignment {
        if shuffle { ExpAssignment::Shuffled } else { ExpAssignment::DatasetOrder }
    }

    fn fixed_assignment(exp_assignment: Vec<Vec<usize>>) -> ExpAssignment {
        ExpAssignment::Fixed { exp_assignment }
    }

    fn assignment_of(b: &Benchmark) -> Vec<Vec<usize>> {
        b.train_stream.iter().map(|e| ids(&e.dataset)).collect()
    }

    /// Targets: class sizes drawn per class.
    fn targets_strategy() -> impl Strategy<Value = Vec<u32>> {
        prop::collection::vec(1usize..25, 1..6).prop_map(|sizes| {
            let mut t = Vec::new();
            for (c, &s) in sizes.iter().enumerate() {
                t.extend(std::iter::repeat_n(c as u32, s));
            }
            // Interleave classes deterministically.
            let n = t.len();
            (0..n).map(|i| t[(i * 7) % n]).collect::<Vec<_>>()
        })
    }

    proptest! {
        #[test]
        fn experiences_partition_the_samples(
            targets in targets_strategy(),
            n_exp in 1usize..8,
            balance in any::<bool>(),
            shuffle in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let n = targets.len();
            prop_assume!(n_exp <= n);
            let train = indexed(targets.clone());
            let config = NiConfig::new(n_exp).with_seed(seed).with_assignment(order(shuffle)).with_balance_experiences(balance);
            let b = ni_benchmark(&train, &train, &config).unwrap();
            prop_assert_eq!(b.n_experiences(), n_exp);
            let mut all: Vec<usize> = assignment_of(&b).concat();
            all.sort_unstable();
            prop_assert_eq!(all, (0..n).collect::<Vec<_>>());
            // No experience is empty and total sizes are as even as in Avalanche.
            let sizes: Vec<usize> = b.train_stream.iter().map(|e| e.dataset.len()).collect();
            prop_assert!(sizes.iter().all(|&s| s > 0));
            prop_assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
            prop_assert_eq!(b.test_stream.len(), 1);
            prop_assert_eq!(b.test_stream[0].dataset.len(), n);
        }

        #[test]
        fn balanced_experiences_differ_by_at_most_one_per_class(
            targets in targets_strategy(),
            n_exp in 1usize..8,
            shuffle in any::<bool>(),
            seed in any::<u64>(),
        ) {
            prop_assume!(n_exp <= targets.len());
            let train = indexed(targets.clone());
            let config = NiConfig::new(n_exp).with_seed(seed).with_assignment(order(shuffle)).with_balance_experiences(true);
            let b = ni_benchmark(&train, &train, &config).unwrap();
            let classes: BTreeSet<u32> = targets.iter().copied().collect();
            for c in classes {
                let counts: Vec<usize> = b.train_stream.iter()
                    .map(|e| e.dataset.targets().iter().filter(|&&y| y == c).count())
                    .collect();
                prop_assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1, "class {} counts {:?}", c, counts);
            }
        }

        #[test]
        fn seeds_reproduce(targets in targets_strategy(), n_exp in 1usize..5, seed in any::<u64>(), balance in any::<bool>()) {
            prop_assume!(n_exp <= targets.len());
            let train = indexed(targets);
            let config = NiConfig::new(n_exp).with_seed(seed).with_balance_experiences(balance);
            let a = ni_exp_assignment(&train, &config).unwrap();
            let b = ni_benchmark(&train, &train, &config).unwrap();
            prop_assert_eq!(&a, &assignment_of(&b));
            prop_assert_eq!(a.clone(), ni_exp_assignment(&train, &config).unwrap());
            // Feeding the assignment back reproduces the benchmark.
            let fixed = ni_benchmark(&train, &train, &NiConfig::new(n_exp).with_assignment(fixed_assignment(a.clone()))).unwrap();
            prop_assert_eq!(a, assignment_of(&fixed));
        }

        #[test]
        fn min_class_patterns_are_honoured(n_per_class in 4usize..12, n_exp in 1usize..4, min in 0usize..4, balance in any::<bool>(), seed in any::<u64>()) {
            let targets: Vec<u32> = (0..3 * n_per_class).map(|i| (i % 3) as u32).collect();
            let train = indexed(targets);
            let config = NiConfig::new(n_exp).with_seed(seed).with_balance_experiences(balance).with_min_class_patterns_in_exp(min);
            let r = ni_benchmark(&train, &train, &config);
            if n_per_class < n_exp * min {
                prop_assert!(is_rule(r, "min_class_patterns_in_exp_fits_classes"));
            } else {
                let b = r.unwrap();
                for e in b.train_stream.iter() {
                    for c in 0..3 {
                        prop_assert!(e.dataset.targets().iter().filter(|&&y| y == c).count() >= min);
                    }
                }
                let mut all = assignment_of(&b).concat();
                all.sort_unstable();
                prop_assert_eq!(all, (0..3 * n_per_class).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn different_seeds_differ() {
        let train = indexed((0..200).map(|i| i % 4).collect());
        let a = ni_exp_assignment(&train, &NiConfig::new(5).with_seed(1)).unwrap();
        let b = ni_exp_assignment(&train, &NiConfig::new(5).with_seed(2)).unwrap();
        assert_ne!(a, b);
        let ab = ni_exp_assignment(&train, &NiConfig::new(5).with_seed(1).with_balance_experiences(true)).unwrap();
        let bb = ni_exp_assignment(&train, &NiConfig::new(5).with_seed(2).with_balance_experiences(true)).unwrap();
        assert_ne!(ab, bb);
    }

    #[test]
    fn unshuffled_split_is_in_dataset_order() {
        let train = indexed(vec![0, 1, 0, 1, 0, 1, 0]);
        let a = ni_exp_assignment(&train, &NiConfig::new(3).with_assignment(ExpAssignment::DatasetOrder)).unwrap();
        assert_eq!(a, vec![vec![0, 1, 6], vec![2, 3], vec![4, 5]]);
        let b = ni_benchmark(&train, &train, &NiConfig::new(3).with_assignment(ExpAssignment::DatasetOrder)).unwrap();
        assert_eq!(b.seed, None);
    }

    #[test]
    fn fields_timeline_and_task_labels() {
        let train = indexed((0..30).map(|i| i % 3).collect());
        let test = indexed(vec![0, 1, 2, 2]);
        let b = ni_benchmark(
            &train,
            &test,
            &NiConfig::new(3).with_seed(4).with_task_labels(true).with_balance_experiences(true),
        )
        .unwrap();
        assert_eq!(b.n_classes, 3);
        assert_eq!(b.classes_order, vec![0, 1, 2]);
        assert_eq!(b.n_classes_per_exp, vec![3, 3, 3]);
        assert_eq!(b.class_mapping, vec![0, 1, 2]);
        assert_eq!(b.seed, Some(4));
        for (e, exp) in b.train_stream.iter().enumerate() {
            assert_eq!(exp.task_labels, vec![e as u32]);
            assert_eq!(exp.n_classes, 3);
            assert_eq!(exp.origin_stream, "train");
            assert_eq!(exp.classes_seen_so_far, vec![0, 1, 2]);
            assert_eq!(exp.previous_classes, if e == 0 { vec![] } else { vec![0, 1, 2] });
            assert_eq!(exp.future_classes, if e == 2 { vec![] } else { vec![0, 1, 2] });
        }
        let t = &b.test_stream[0];
        assert_eq!(t.task_labels, vec![0]);
        assert_eq!(t.classes_in_this_experience, vec![0, 1, 2]);
        assert_eq!(t.origin_stream, "test");
    }

    #[test]
    fn errors() {
        let train = indexed(vec![0, 1, 0, 1]);
        assert_rule(ni_benchmark(&train, &train, &NiConfig::new(0)), "n_experiences_positive");
        assert_rule(ni_benchmark(&train, &train, &NiConfig::new(5)), "n_experiences_at_most_samples");
        assert_rule(
            ni_benchmark(&train, &train, &NiConfig::new(2).with_min_class_patterns_in_exp(2)),
            "min_class_patterns_in_exp_fits_classes",
        );
        let fixed = |a: Vec<Vec<usize>>| {
            ni_benchmark(&train, &train, &NiConfig::new(a.len().max(1)).with_assignment(fixed_assignment(a)))
        };
        assert_rule(fixed(vec![vec![0, 4]]), "assignment_in_range");
        assert_rule(fixed(vec![vec![0, 1], vec![1]]), "assignment_no_duplicates");
        assert_rule(fixed(vec![vec![0], vec![]]), "assignment_lists_non_empty");
        assert_rule(
            ni_benchmark(&train, &train, &NiConfig::new(3).with_assignment(fixed_assignment(vec![vec![0], vec![1]]))),
            "assignment_one_list_per_experience",
        );
        // A partial fixed assignment is fine (unused samples are dropped).
        let b = fixed(vec![vec![3, 0], vec![2]]).unwrap();
        assert_eq!(assignment_of(&b), vec![vec![3, 0], vec![2]]);
        assert_eq!(b.seed, None);
        let empty = ClassificationDataset::from_f32(vec![], vec![1], vec![]).unwrap();
        assert_rule(ni_benchmark(&empty, &train, &NiConfig::new(1)), "train");
        assert_rule(ni_benchmark(&train, &empty, &NiConfig::new(1)), "test");
        let huge = indexed(vec![1 << 24]);
        assert_rule(ni_benchmark(&huge, &train, &NiConfig::new(1)), "train");
    }

    #[test]
    fn every_rule() {
        let fixed = |a: Vec<Vec<usize>>| NiConfig::new(a.len()).with_assignment(fixed_assignment(a));
        let cases: Vec<(NiConfig, &str)> = vec![
            (NiConfig::new(0), "n_experiences_positive"),
            (fixed(vec![vec![0]]).with_balance_experiences(true), "assignment_fixed_alone"),
            (fixed(vec![vec![0]]).with_min_class_patterns_in_exp(1), "assignment_fixed_alone"),
            (NiConfig::new(2).with_assignment(fixed_assignment(vec![vec![0]])), "assignment_one_list_per_experience"),
            (fixed(vec![vec![0], vec![]]), "assignment_lists_non_empty"),
            (fixed(vec![vec![0, 1], vec![2, 0]]), "assignment_no_duplicates"),
        ];
        for (config, name) in cases {
            assert_rule(config.validate(), name);
        }
        // The rules that depend on the training data (4 samples of 2 classes).
        let train = indexed(vec![0, 1, 0, 1]);
        for (config, name) in [
            (NiConfig::new(5), "n_experiences_at_most_samples"),
            (fixed(vec![vec![0, 9]]), "assignment_in_range"),
            (NiConfig::new(2).with_min_class_patterns_in_exp(2), "min_class_patterns_in_exp_fits_classes"),
        ] {
            config.validate().unwrap();
            assert_rule(ni_exp_assignment(&train, &config), name);
        }
    }

    #[test]
    fn config_round_trips() {
        for config in [
            NiConfig::new(4)
                .with_task_labels(true)
                .with_seed(9)
                .with_balance_experiences(true)
                .with_min_class_patterns_in_exp(2),
            NiConfig::new(3).with_assignment(ExpAssignment::DatasetOrder),
            NiConfig::new(2).with_assignment(fixed_assignment(vec![vec![3, 0], vec![2]])),
        ] {
            assert_eq!(NiConfig::from_json(&config.to_json()).unwrap(), config);
            assert_eq!(NiConfig::from_toml(&config.to_toml().unwrap()).unwrap(), config);
        }
        assert_eq!(NiConfig::from_toml("n_experiences = 4").unwrap(), NiConfig::new(4));
    }
}
