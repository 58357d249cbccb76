//! Class-incremental (new classes) splitting, Avalanche's `nc_benchmark`.

use std::collections::BTreeSet;

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
    /// Classes per experience; needed when `n_experiences` does not divide the classes.
    pub per_exp_classes: Option<Vec<usize>>,
    /// Task label of each sample = index of its experience (task-incremental); otherwise 0.
    pub task_labels: bool,
    /// Relabel the classes of each experience as 0, 1, ... (in class order).
    pub class_ids_from_zero_in_each_exp: bool,
    /// Relabel all classes as 0, 1, ... in class order.
    pub class_ids_from_zero_from_first_exp: bool,
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
        }
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

    /// Classes per experience.
    pub fn with_per_exp_classes(mut self, counts: Vec<usize>) -> Self {
        self.per_exp_classes = Some(counts);
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
    let counts = match &config.per_exp_classes {
        Some(counts) => {
            if counts.len() != config.n_experiences {
                return Err(BenchmarkError::arg(
                    "per_exp_classes",
                    format!("{} counts for {} experiences", counts.len(), config.n_experiences),
                ));
            }
            if counts.contains(&0) || counts.iter().sum::<usize>() != n_classes {
                return Err(BenchmarkError::arg(
                    "per_exp_classes",
                    format!("{counts:?} must be positive and sum to the {n_classes} classes"),
                ));
            }
            counts.clone()
        }
        None => {
            if config.n_experiences > n_classes || n_classes % config.n_experiences != 0 {
                return Err(BenchmarkError::arg(
                    "n_experiences",
                    format!(
                        "{} experiences cannot split {n_classes} classes evenly; choose a divisor of \
                         {n_classes} or give per_exp_classes",
                        config.n_experiences
                    ),
                ));
            }
            vec![n_classes / config.n_experiences; config.n_experiences]
        }
    };
    Ok((order, counts))
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
