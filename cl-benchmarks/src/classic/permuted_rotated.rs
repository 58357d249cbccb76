//! PermutedMNIST/PermutedFMNIST and RotatedMNIST/RotatedFMNIST: every experience is the whole
//! dataset seen through its own fixed pixel permutation or rotation (domain-incremental, labels
//! 0..9 in every experience).

use std::path::PathBuf;
use std::sync::Arc;

use cl_core::config::{Validate, rule};
use cl_core::data::ClassificationDataset;
use cl_core::data::{Normalize, PixelPermutation, Rotation, Transform, TransformGroups};
use cl_core::{Benchmark, Experience, Stream};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::split_mnist::{FMNIST_MEAN_STD, MNIST_MEAN_STD, mnist_datasets};
use crate::error::BenchmarkError;
use crate::mnist_files::{self, MnistKind};
use crate::scenarios::common::cpython_set_order;

/// Options of [`permuted_mnist`] / [`rotated_mnist`] and their Fashion-MNIST variants
/// (Avalanche's `PermutedMNIST(n_experiences, return_task_id, seed)` and
/// `RotatedMNIST(..., rotations_list)`).
///
/// ```
/// use cl_benchmarks::classic::TransformedMnistConfig;
/// let config = TransformedMnistConfig::new(10).with_seed(3).with_rotations(vec![0.0; 10]);
/// assert_eq!(config.n_experiences, 10);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformedMnistConfig {
    /// Number of experiences (> 0).
    pub n_experiences: usize,
    /// Seed of the permutations or angles (default 0).
    #[serde(default)]
    pub seed: u64,
    /// Task label = experience index (task-incremental); otherwise 0 (default `false`).
    #[serde(default)]
    pub return_task_id: bool,
    /// For the rotated benchmarks: the angle of each experience in degrees, in [-180, 180];
    /// drawn uniformly among the integers of that range when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotations_list: Option<Vec<f32>>,
    /// For the permuted benchmarks: the pixel permutation of each experience (`out[i] =
    /// in[p[i]]`, each a permutation of `0..784`), inline or in a JSON file (e.g. the
    /// permutations of an Avalanche run, to compare on the same stream); drawn with `seed`
    /// when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permutations: Option<Permutations>,
    /// Directory of the IDX files; searched for when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_root: Option<PathBuf>,
}

impl TransformedMnistConfig {
    /// `n_experiences` experiences, seed 0, one task, data searched for.
    pub fn new(n_experiences: usize) -> Self {
        Self {
            n_experiences,
            seed: 0,
            return_task_id: false,
            rotations_list: None,
            permutations: None,
            dataset_root: None,
        }
    }

    /// Seed of the permutations or angles.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Task label = experience index.
    pub fn with_return_task_id(mut self, on: bool) -> Self {
        self.return_task_id = on;
        self
    }

    /// The rotation angle of each experience.
    pub fn with_rotations(mut self, degrees: Vec<f32>) -> Self {
        self.rotations_list = Some(degrees);
        self
    }

    /// The pixel permutation of each experience (instead of drawing them with the seed).
    pub fn with_permutations(mut self, permutations: Permutations) -> Self {
        self.permutations = Some(permutations);
        self
    }

    /// The directory of the IDX files.
    pub fn with_dataset_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dataset_root = Some(dir.into());
        self
    }

    fn validate_for(&self, rotated: bool) -> cl_core::Result<()> {
        self.validate()?;
        rule(C, "rotations_only_for_rotated", rotated || self.rotations_list.is_none(), || {
            "rotations_list is set, but only the rotated benchmarks take angles; remove it".to_string()
        })?;
        rule(C, "permutations_only_for_permuted", !rotated || self.permutations.is_none(), || {
            "permutations is set, but only the permuted benchmarks take permutations; remove it".to_string()
        })
    }

    /// Replaces a permutations file by the lists it holds (checked), a relative path taken from
    /// `base_dir`: what a run spec records, so that a run's identity is the permutations
    /// themselves, not a path whose contents can change (`cl` does this when it loads a spec).
    pub fn inline_permutations(&mut self, base_dir: &std::path::Path) -> cl_core::Result<()> {
        if let Some(Permutations::File { file }) = &self.permutations {
            let mut with_base = self.clone();
            with_base.permutations = Some(Permutations::File { file: base_dir.join(file) });
            self.permutations = with_base.resolve_permutations(MNIST_PIXELS)?.map(Permutations::Lists);
        }
        Ok(())
    }

    /// The permutations of the experiences, read from their file if needed and checked
    /// against the sample length; `None` when they are to be drawn with the seed.
    fn resolve_permutations(&self, sample_len: usize) -> cl_core::Result<Option<Vec<Vec<usize>>>> {
        let lists = match &self.permutations {
            None => return Ok(None),
            Some(Permutations::Lists(lists)) => lists.clone(),
            Some(Permutations::File { file }) => {
                let text = std::fs::read_to_string(file).map_err(|e| {
                    cl_core::ClError::config(
                        "permutations",
                        format!("cannot read the permutations file {}: {e}", file.display()),
                    )
                })?;
                serde_json::from_str(&text).map_err(|e| {
                    cl_core::ClError::config(
                        "permutations",
                        format!(
                            "{}: {e}; the file must hold a JSON array of {} arrays, one permutation of 0..{sample_len} \
                             per experience",
                            file.display(),
                            self.n_experiences
                        ),
                    )
                })?
            }
        };
        check_permutations(&lists, self.n_experiences, Some(sample_len)).map_err(|m| {
            let from = match &self.permutations {
                Some(Permutations::File { file }) => format!(" (in {})", file.display()),
                _ => String::new(),
            };
            cl_core::ClError::config("permutations", format!("{m}{from}"))
        })?;
        Ok(Some(lists))
    }
}

/// Explicit pixel permutations of the permuted benchmarks: one list per experience, inline or
/// in a JSON file (`permutations = { file = "perms.json" }` in a config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "one array of 0..784 per experience, or { file = \"perms.json\" } (a JSON file of such arrays)"
)]
pub enum Permutations {
    /// One permutation of `0..784` per experience.
    Lists(Vec<Vec<usize>>),
    /// A JSON file holding an array of them.
    File {
        /// The file (relative paths from the working directory).
        file: PathBuf,
    },
}

/// Checks that `lists` holds `n` permutations of `0..len` (of `0..lists[0].len()` when `len`
/// is unknown); the message names the experience and the fix.
fn check_permutations(lists: &[Vec<usize>], n: usize, len: Option<usize>) -> Result<(), String> {
    if lists.len() != n {
        return Err(format!("{} permutations for {n} experiences: give one per experience", lists.len()));
    }
    let len = len.unwrap_or_else(|| lists.first().map_or(0, Vec::len));
    for (e, p) in lists.iter().enumerate() {
        if p.len() != len {
            return Err(format!(
                "the permutation of experience {e} has {} entries; it must have {len}, one per pixel",
                p.len()
            ));
        }
        let mut seen = vec![false; len];
        for (i, &v) in p.iter().enumerate() {
            if v >= len {
                return Err(format!(
                    "the permutation of experience {e} is not a permutation of 0..{len}: entry {i} is {v}"
                ));
            }
            if std::mem::replace(&mut seen[v], true) {
                for &w in &p[i + 1..] {
                    if w < len {
                        seen[w] = true;
                    }
                }
                let missing = seen.iter().position(|s| !s).unwrap_or(0);
                return Err(format!(
                    "the permutation of experience {e} is not a permutation of 0..{len}: {v} appears twice \
                     (again at entry {i}) and {missing} is missing"
                ));
            }
        }
    }
    Ok(())
}

const C: &str = "TransformedMnistConfig";

/// Pixels of an MNIST / Fashion-MNIST image.
const MNIST_PIXELS: usize = 28 * 28;

impl Validate for TransformedMnistConfig {
    fn validate(&self) -> cl_core::Result<()> {
        rule(C, "n_experiences_positive", self.n_experiences > 0, || {
            "n_experiences = 0: there must be at least 1 experience".to_string()
        })?;
        if let Some(Permutations::Lists(lists)) = &self.permutations {
            // MNIST and Fashion-MNIST images: 784 pixels.
            let check = check_permutations(lists, self.n_experiences, Some(MNIST_PIXELS));
            rule(C, "permutations_valid", check.is_ok(), || check.clone().unwrap_err())?;
        }
        if let Some(list) = &self.rotations_list {
            rule(C, "rotations_one_per_experience", list.len() == self.n_experiences, || {
                format!("{} angles for {} experiences: give one angle per experience", list.len(), self.n_experiences)
            })?;
            rule(C, "rotations_in_range", list.iter().all(|a| (-180.0..=180.0).contains(a)), || {
                format!("the angles {list:?} must all be in [-180, 180] degrees")
            })?;
        }
        Ok(())
    }
}

/// Builds a benchmark whose experience `e` is the whole train/test set seen through
/// `transform(e)`, followed by the normalisation. The samples are shared, not copied.
///
/// **Sample order** (Avalanche's, whose `PermutedMNIST`/`RotatedMNIST` are `nc_benchmark` over
/// the transformed datasets concatenated with `one_dataset_per_exp`): each experience holds
/// its classes one after the other, each class's samples in dataset order. Dataset `e`'s `k`
/// classes become the ids `e·k .. e·k + k` in the concatenation, and the classes are visited in
/// the order CPython iterates that `set`: ascending for the first experiences, rotated for later
/// ones (experience 3 of PermutedMNIST, ids 30..39 in a 32-slot table, is visited 2, 3, …, 9,
/// 0, 1).
pub fn transformed_benchmark(
    train: &ClassificationDataset,
    test: &ClassificationDataset,
    n_experiences: usize,
    return_task_id: bool,
    normalize: Normalize,
    seed: Option<u64>,
    mut transform: impl FnMut(usize) -> Result<Arc<dyn Transform>, BenchmarkError>,
) -> Result<Benchmark, BenchmarkError> {
    if n_experiences == 0 {
        return Err(BenchmarkError::arg("n_experiences", "must be at least 1"));
    }
    let classes: Vec<u32> = train.classes().into_iter().collect();
    let n_classes = classes.last().map_or(0, |&c| c as usize + 1);
    let normalize: Arc<dyn Transform> = Arc::new(normalize);
    let mut train_exps = Vec::with_capacity(n_experiences);
    let mut test_exps = Vec::with_capacity(n_experiences);
    for e in 0..n_experiences {
        let t = transform(e)?;
        let groups = TransformGroups::same(vec![t, normalize.clone()]);
        let task = if return_task_id { e as u32 } else { 0 };
        for (ds, name, out) in [(train, "train", &mut train_exps), (test, "test", &mut test_exps)] {
            let order = avalanche_order(ds, &classes, e);
            let view = ds.with_transforms(groups.clone())?.subset(&order)?.with_task_label(task);
            let mut exp = Experience::new(e, view, name, n_classes);
            exp.previous_classes = if e > 0 { classes.clone() } else { Vec::new() };
            exp.classes_seen_so_far = classes.clone();
            exp.future_classes = if e + 1 < n_experiences { classes.clone() } else { Vec::new() };
            out.push(exp);
        }
    }
    Ok(Benchmark {
        train_stream: Stream::new("train", train_exps),
        test_stream: Stream::new("test", test_exps),
        n_classes: classes.len(),
        classes_order: classes.clone(),
        n_classes_per_exp: vec![classes.len(); n_experiences],
        original_classes_in_exp: vec![classes.clone(); n_experiences],
        class_mapping: (0..n_classes as u32).collect(),
        seed,
    })
}

/// The sample order of experience `e` (see [`transformed_benchmark`]): the indices of `ds`
/// class by class, classes visited as CPython iterates the set of their ids in Avalanche's
/// concatenation (`e·k + rank`, `k = classes.len()`); samples of other classes last.
fn avalanche_order(ds: &ClassificationDataset, classes: &[u32], e: usize) -> Vec<usize> {
    let k = classes.len();
    let mut by_rank: Vec<Vec<usize>> = vec![Vec::new(); k + 1];
    for (i, t) in ds.targets().into_iter().enumerate() {
        by_rank[classes.binary_search(&t).unwrap_or(k)].push(i);
    }
    let base = (e as u64) * (k as u64);
    let ids: Vec<u64> = (0..k as u64).map(|r| base + r).collect();
    cpython_set_order(&ids)
        .into_iter()
        .map(|id| (id - base) as usize)
        .chain(std::iter::once(k))
        .flat_map(|r| std::mem::take(&mut by_rank[r]))
        .collect()
}

fn load(
    kind: MnistKind,
    config: &TransformedMnistConfig,
) -> Result<(ClassificationDataset, ClassificationDataset, Normalize), BenchmarkError> {
    let mean_std = match kind {
        MnistKind::Mnist => MNIST_MEAN_STD,
        MnistKind::FashionMnist => FMNIST_MEAN_STD,
    };
    let arrays = mnist_files::load(kind, config.dataset_root.as_deref())?;
    // Raw datasets: the per-experience transform comes before the normalisation.
    let (train, test) = mnist_datasets(arrays, mean_std)?;
    let plain = TransformGroups::default();
    Ok((
        train.with_transforms(plain.clone())?,
        test.with_transforms(plain)?,
        Normalize::new(vec![mean_std.0], vec![mean_std.1])?,
    ))
}

fn permuted(kind: MnistKind, config: &TransformedMnistConfig) -> Result<Benchmark, BenchmarkError> {
    config.validate_for(false)?;
    let (train, test, normalize) = load(kind, config)?;
    let len = train.sample_len();
    let given = config.resolve_permutations(len)?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let seed = given.is_none().then_some(config.seed);
    transformed_benchmark(&train, &test, config.n_experiences, config.return_task_id, normalize, seed, |e| {
        let permutation = match &given {
            Some(lists) => PixelPermutation::new(lists[e].clone())?,
            None => PixelPermutation::random(len, &mut rng),
        };
        Ok(Arc::new(permutation) as Arc<dyn Transform>)
    })
}

fn rotated(kind: MnistKind, config: &TransformedMnistConfig) -> Result<Benchmark, BenchmarkError> {
    config.validate_for(true)?;
    let (train, test, normalize) = load(kind, config)?;
    let shape = train.sample_shape().to_vec();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let angles: Vec<f32> = match &config.rotations_list {
        Some(list) => list.clone(),
        None => (0..config.n_experiences).map(|_| rng.random_range(-180..=180) as f32).collect(),
    };
    let seed = config.rotations_list.is_none().then_some(config.seed);
    transformed_benchmark(&train, &test, config.n_experiences, config.return_task_id, normalize, seed, |e| {
        Ok(Arc::new(Rotation::new(angles[e], &shape)?) as Arc<dyn Transform>)
    })
}

/// PermutedMNIST: each experience applies its own seeded pixel permutation to all of MNIST.
pub fn permuted_mnist(config: &TransformedMnistConfig) -> Result<Benchmark, BenchmarkError> {
    permuted(MnistKind::Mnist, config)
}

/// PermutedFMNIST: each experience applies its own seeded pixel permutation to Fashion-MNIST.
pub fn permuted_fmnist(config: &TransformedMnistConfig) -> Result<Benchmark, BenchmarkError> {
    permuted(MnistKind::FashionMnist, config)
}

/// RotatedMNIST: each experience rotates all of MNIST by its own angle.
pub fn rotated_mnist(config: &TransformedMnistConfig) -> Result<Benchmark, BenchmarkError> {
    rotated(MnistKind::Mnist, config)
}

/// RotatedFMNIST: each experience rotates Fashion-MNIST by its own angle.
pub fn rotated_fmnist(config: &TransformedMnistConfig) -> Result<Benchmark, BenchmarkError> {
    rotated(MnistKind::FashionMnist, config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    /// Samples of 16 distinct values each, so a transform's map can be read off exactly.
    fn distinct(n: usize, offset: f32) -> ClassificationDataset {
        let values: Vec<f32> = (0..n * 16).map(|v| offset + v as f32).collect();
        ClassificationDataset::from_f32(values, vec![1, 4, 4], (0..n as u32).map(|i| i % 2).collect()).unwrap()
    }

    fn first_row(ds: &ClassificationDataset) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let b = ds.eval().batch(&[0], &Device::default(), &mut rng).unwrap();
        b.x.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn each_experience_permutes_train_and_test_by_one_bijection() {
        let (train, test) = (distinct(3, 0.0), distinct(2, 1000.0));
        let normalize = Normalize::new(vec![0.0], vec![1.0]).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut perms = Vec::new();
        let b = transformed_benchmark(&train, &test, 3, true, normalize.clone(), Some(7), |_| {
            let p = PixelPermutation::random(16, &mut rng);
            perms.push(p.permutation().to_vec());
            Ok(Arc::new(p) as Arc<dyn Transform>)
        })
        .unwrap();
        for (e, perm) in perms.iter().enumerate() {
            let mut sorted = perm.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..16).collect::<Vec<_>>(), "a bijection");
            // out[i] = in[perm[i]], for train and test alike.
            let tr = first_row(&b.train_stream[e].dataset);
            let te = first_row(&b.test_stream[e].dataset);
            for i in 0..16 {
                assert_eq!(tr[i], perm[i] as f32);
                assert_eq!(te[i], 1000.0 + perm[i] as f32);
            }
            assert_eq!(b.train_stream[e].task_labels, vec![e as u32]);
        }
        assert_ne!(perms[0], perms[1]);
        assert!(transformed_benchmark(&train, &test, 0, false, normalize, None, |_| unreachable!()).is_err());
    }
}
