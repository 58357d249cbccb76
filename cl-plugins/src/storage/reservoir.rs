//! [`ReservoirSamplingBuffer`]: a uniform random sample of every sample seen.

use burn::tensor::TensorData;
use cl_core::Result;
use cl_core::checkpoint::StateDict;
use cl_core::config::Validate;
use cl_core::data::ClassificationDataset;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{check_policy_name, max_size_rule, put_policy_name};
use crate::persist::{bad_entry, opt_dataset, put_opt_dataset};

/// The configuration of a [`ReservoirSamplingBuffer`]: Avalanche's
/// `ReservoirSamplingBuffer(max_size)`, plus the seed of its random weights (Avalanche draws
/// them from torch's global generator).
///
/// ```
/// use cl_plugins::storage::{ReservoirConfig, ReservoirSamplingBuffer};
/// let memory = ReservoirSamplingBuffer::new(ReservoirConfig::new(500).with_seed(1)).unwrap();
/// assert_eq!(memory.max_size(), 500);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReservoirConfig {
    /// The most samples the memory holds (required, at least 1).
    pub max_size: usize,
    /// Seed of the samples' random weights (default 0).
    #[serde(default)]
    pub seed: u64,
}

impl ReservoirConfig {
    /// A memory of `max_size` samples, seed 0.
    pub fn new(max_size: usize) -> Self {
        Self { max_size, seed: 0 }
    }

    /// Sets the most samples the memory holds.
    pub fn with_max_size(mut self, max_size: usize) -> Self {
        self.max_size = max_size;
        self
    }

    /// Sets the seed of the samples' random weights.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

impl Validate for ReservoirConfig {
    /// `max_size_positive`.
    fn validate(&self) -> Result<()> {
        max_size_rule("ReservoirConfig", self.max_size)
    }
}

/// A memory updated by reservoir sampling (Avalanche's `ReservoirSamplingBuffer`).
///
/// Every sample ever seen gets a uniform random weight; the memory keeps the `max_size`
/// samples with the highest weights, i.e. a uniform random subset of the whole stream. Only the
/// kept samples' weights are stored, so an update costs O(new samples + `max_size`), whatever
/// the length of the history. Shrinking ([`resize_to`](Self::resize_to)) drops the lowest
/// weights.
///
/// The kept samples are in stream order (Avalanche keeps them sorted by weight; the set is
/// the same), which keeps the view made of few contiguous parts.
#[derive(Debug, Clone)]
pub struct ReservoirSamplingBuffer {
    max_size: usize,
    rng: ChaCha8Rng,
    buffer: Option<ClassificationDataset>,
    /// `weights[i]` is the weight of the buffer's sample `i`.
    weights: Vec<f64>,
}

impl ReservoirSamplingBuffer {
    /// An empty memory of at most `config.max_size` samples, its weights drawn from a ChaCha8
    /// generator seeded with `config.seed`. An error if the config breaks a rule.
    pub fn new(config: ReservoirConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self::with_capacity(config.max_size, config.seed))
    }

    /// Like `new`, but a capacity of 0 is allowed (a group of a balanced buffer may get none).
    pub(crate) fn with_capacity(max_size: usize, seed: u64) -> Self {
        Self { max_size, rng: ChaCha8Rng::seed_from_u64(seed), buffer: None, weights: Vec::new() }
    }

    /// The most samples the memory holds.
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// The samples the memory holds now.
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    /// Whether the memory holds no sample.
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// The memory as a dataset view; `None` while empty.
    pub fn buffer(&self) -> Option<ClassificationDataset> {
        self.buffer.clone()
    }

    /// The memory as a dataset view, by reference; `None` while empty.
    pub fn buffer_ref(&self) -> Option<&ClassificationDataset> {
        self.buffer.as_ref()
    }

    /// Adds `new_data`'s samples to the stream: each gets a random weight and the memory keeps
    /// the `max_size` highest weights of its samples and the new ones. An error (and no
    /// change) if the sample shape differs from the memory's.
    pub fn update_from_dataset(&mut self, new_data: &ClassificationDataset) -> Result<()> {
        if new_data.is_empty() {
            return Ok(());
        }
        // Fallible step first: a shape mismatch leaves the memory unchanged.
        let combined = match &self.buffer {
            Some(b) => b.concat(new_data)?,
            None => new_data.clone(),
        };
        let mut weights = std::mem::take(&mut self.weights);
        weights.extend((0..new_data.len()).map(|_| self.rng.random::<f64>()));
        if weights.len() <= self.max_size {
            self.buffer = Some(combined);
            self.weights = weights;
            return Ok(());
        }
        let keep = top_k(&weights, self.max_size);
        self.keep(&combined, &weights, &keep)
    }

    /// Sets `max_size`; if the memory is larger, keeps the `new_size` highest weights.
    pub fn resize_to(&mut self, new_size: usize) -> Result<()> {
        self.max_size = new_size;
        if self.len() <= new_size {
            return Ok(());
        }
        let keep = top_k(&self.weights, new_size);
        let buffer = self.buffer.take().expect("a non-empty memory has a buffer");
        let weights = std::mem::take(&mut self.weights);
        self.keep(&buffer, &weights, &keep)
    }

    /// Saves the memory into a checkpoint: `max_size` (a resize may have changed it), the
    /// generator at its exact position, the kept samples and their weights (exact, as raw
    /// `f64`s).
    pub fn save_state(&self, out: &mut StateDict) -> Result<()> {
        put_policy_name(out, "ReservoirSamplingBuffer")?;
        out.put("max_size", &self.max_size)?;
        out.put_rng("rng", &self.rng)?;
        out.put_data("weights", TensorData::new(self.weights.clone(), [self.weights.len()]));
        put_opt_dataset(out, "buffer", self.buffer.as_ref())
    }

    /// Restores what [`save_state`](Self::save_state) saved (an error if it was written by
    /// another policy, or if the samples and weights disagree).
    pub fn load_state(&mut self, state: &StateDict) -> Result<()> {
        check_policy_name(state, "ReservoirSamplingBuffer")?;
        let max_size: usize = state.get("max_size")?;
        let rng = state.rng("rng")?;
        let weights =
            state.data("weights")?.try_into_vec::<f64>().map_err(|e| bad_entry(state, "weights", format!("{e:?}")))?;
        let buffer = opt_dataset(state, "buffer")?;
        if buffer.as_ref().map_or(0, ClassificationDataset::len) != weights.len() || weights.len() > max_size {
            return Err(bad_entry(
                state,
                "weights",
                format!(
                    "{} weights for {} samples (max_size {max_size})",
                    weights.len(),
                    buffer.as_ref().map_or(0, ClassificationDataset::len)
                ),
            ));
        }
        *self = Self { max_size, rng, buffer, weights };
        Ok(())
    }

    /// Keeps `data`'s samples at the (increasing) indices `keep`.
    fn keep(&mut self, data: &ClassificationDataset, weights: &[f64], keep: &[usize]) -> Result<()> {
        if keep.is_empty() {
            self.buffer = None;
            self.weights = Vec::new();
        } else {
            self.buffer = Some(data.subset(keep)?);
            self.weights = keep.iter().map(|&i| weights[i]).collect();
        }
        Ok(())
    }
}

/// Indices of the `k` largest weights (ties: lower index first), in increasing order. O(n).
fn top_k(weights: &[f64], k: usize) -> Vec<usize> {
    if k == 0 {
        return Vec::new();
    }
    let mut idx: Vec<usize> = (0..weights.len()).collect();
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, |&a, &b| weights[b].total_cmp(&weights[a]).then(a.cmp(&b)));
        idx.truncate(k);
    }
    idx.sort_unstable();
    idx
}

storage_policy_from_inherent!(ReservoirSamplingBuffer);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_util::{data, experience, ids};
    use crate::storage::{StorageContext, StoragePolicy};
    use cl_core::ClError;
    use cl_core::config::{ConfigFile, assert_rule};
    use proptest::prelude::*;

    fn reservoir(max_size: usize, seed: u64) -> ReservoirSamplingBuffer {
        ReservoirSamplingBuffer::new(ReservoirConfig::new(max_size).with_seed(seed)).unwrap()
    }

    #[test]
    fn config_round_trips_and_rules() {
        let c = ReservoirConfig::new(42).with_seed(7);
        assert_eq!(ReservoirConfig::from_json(&c.to_json()).unwrap(), c);
        assert_eq!(ReservoirConfig::from_toml(&c.to_toml().unwrap()).unwrap(), c);
        assert_eq!(ReservoirConfig::from_toml("max_size = 3").unwrap(), ReservoirConfig::new(3));
        assert!(ReservoirConfig::from_toml("seed = 3").is_err(), "max_size is required");
        assert_rule(ReservoirConfig::new(0).validate(), "max_size_positive");
        assert_rule(ReservoirSamplingBuffer::new(ReservoirConfig::new(0)), "max_size_positive");
    }

    #[test]
    fn keeps_everything_until_full_then_max_size() {
        let mut b = reservoir(10, 3);
        assert!(b.buffer().is_none() && b.is_empty());
        b.update_from_dataset(&data(0, vec![0; 6])).unwrap();
        assert_eq!(ids(&b.buffer().unwrap()), (0..6).collect::<Vec<_>>());
        b.update_from_dataset(&data(6, vec![1; 6])).unwrap();
        assert_eq!(b.len(), 10);
        let kept = ids(&b.buffer().unwrap());
        assert!(kept.windows(2).all(|w| w[0] < w[1]), "stream order: {kept:?}");
        b.resize_to(4).unwrap();
        assert_eq!(b.len(), 4);
        assert_eq!(b.max_size(), 4);
        b.resize_to(0).unwrap();
        assert!(b.buffer().is_none());
    }

    #[test]
    fn shrinking_keeps_the_highest_weights() {
        // Two buffers of the same seed: one shrunk after the update, one updated with the
        // smaller size directly, keep the same samples (the top weights of the same draws).
        let mut a = reservoir(50, 9);
        let mut b = reservoir(7, 9);
        for e in 0..4 {
            let d = data(100 * e, vec![0; 60]);
            a.update_from_dataset(&d).unwrap();
            b.update_from_dataset(&d).unwrap();
        }
        a.resize_to(7).unwrap();
        assert_eq!(ids(&a.buffer().unwrap()), ids(&b.buffer().unwrap()));
    }

    #[test]
    fn update_reads_the_current_experience() {
        let mut b = reservoir(5, 0);
        let exp = experience(0, data(0, vec![1, 2, 3]));
        let ctx = StorageContext::new(&exp);
        StoragePolicy::update(&mut b, &ctx).unwrap();
        assert_eq!(b.len(), 3);
        StoragePolicy::resize(&mut b, &ctx, 2).unwrap();
        assert_eq!(StoragePolicy::len(&b), 2);
        assert_eq!(StoragePolicy::max_size(&b), 2);
        let other = ClassificationDataset::from_f32(vec![0.0; 3], vec![3], vec![0]).unwrap();
        assert!(matches!(b.update_from_dataset(&other), Err(ClError::SampleShapeMismatch { .. })));
        assert_eq!(b.len(), 2);
    }

    /// The weights (raw `f64` bits), the generator's position and the samples come back
    /// exactly; a corrupt state (weights and samples disagree) is an error, not a panic.
    #[test]
    fn checkpoint_restores_weights_generator_and_samples_exactly() {
        use crate::persist::test_util::{assert_same_dataset, assert_same_rng, encoded};
        let mut a = reservoir(7, 5);
        for e in 0..3 {
            a.update_from_dataset(&data(10 * e, vec![e as u32; 6])).unwrap();
        }
        a.resize_to(6).unwrap();
        let mut d = StateDict::new("memory");
        a.save_state(&mut d).unwrap();
        let d = encoded(&d);
        let mut b = reservoir(7, 99);
        b.load_state(&d).unwrap();
        assert_eq!(b.max_size(), 6);
        assert_eq!(
            a.weights.iter().map(|w| w.to_bits()).collect::<Vec<_>>(),
            b.weights.iter().map(|w| w.to_bits()).collect::<Vec<_>>()
        );
        assert_same_rng(&a.rng, &b.rng);
        assert_same_dataset(a.buffer_ref().unwrap(), b.buffer_ref().unwrap());
        // An empty memory round-trips too.
        let mut e = StateDict::new("memory");
        reservoir(3, 1).save_state(&mut e).unwrap();
        let mut c = reservoir(3, 2);
        c.load_state(&encoded(&e)).unwrap();
        assert!(c.buffer().is_none() && c.is_empty());
        assert_same_rng(&c.rng, &reservoir(3, 1).rng);
        // Weights of another length than the samples: a typed error.
        let mut bad = d.clone();
        bad.put_data("weights", TensorData::new(vec![0.5f64; 2], [2]));
        assert!(matches!(b.load_state(&bad), Err(ClError::CheckpointEntry { .. })));
    }

    /// Stream of N = 1000 samples in 10 updates, max_size 100, R = 400 seeds: each sample is
    /// kept in about R·p = 40 runs (p = 0.1).
    #[test]
    fn inclusion_frequencies_are_uniform() {
        const N: usize = 1000;
        const R: usize = 400;
        let chunks: Vec<ClassificationDataset> = (0..10).map(|e| data(100 * e, vec![0; 100])).collect();
        let mut counts = vec![0usize; N];
        for seed in 0..R as u64 {
            let mut b = reservoir(100, seed);
            for c in &chunks {
                b.update_from_dataset(c).unwrap();
            }
            for id in ids(&b.buffer().unwrap()) {
                counts[id] += 1;
            }
        }
        let p = 0.1;
        let mean = R as f64 * p;
        let sd = (R as f64 * p * (1.0 - p)).sqrt();
        for (i, &c) in counts.iter().enumerate() {
            assert!((c as f64 - mean).abs() <= 5.0 * sd, "sample {i} kept {c} times (mean {mean})");
        }
        // Mean absolute deviation ≈ sd·√(2/π) ≈ 4.8; normalised chi-square ≈ 1.
        let mad = counts.iter().map(|&c| (c as f64 - mean).abs()).sum::<f64>() / N as f64;
        assert!(mad < 1.2 * sd * (2.0 / std::f64::consts::PI).sqrt(), "mad {mad}");
        let chi2 = counts.iter().map(|&c| (c as f64 - mean).powi(2) / (sd * sd)).sum::<f64>() / N as f64;
        assert!((0.8..1.2).contains(&chi2), "chi2/N {chi2}");
        // Early and late samples alike.
        let first: usize = counts[..100].iter().sum();
        let last: usize = counts[900..].iter().sum();
        assert!((first as f64 - last as f64).abs() < 0.15 * first as f64, "{first} vs {last}");
    }

    proptest! {
        #[test]
        fn size_content_and_determinism(
            max_size in 1usize..40,
            sizes in proptest::collection::vec(0usize..50, 1..10),
            resize_at in proptest::option::of((0usize..10, 0usize..40)),
            seed in 0u64..1000,
        ) {
            let run = || {
                let mut b = reservoir(max_size, seed);
                let mut seen = 0;
                let mut expected = 0;
                for (u, &n) in sizes.iter().enumerate() {
                    b.update_from_dataset(&data(seen, vec![0; n])).unwrap();
                    seen += n;
                    expected = (expected + n).min(b.max_size());
                    assert_eq!(b.len(), expected);
                    if let Some((at, size)) = resize_at && at == u {
                        b.resize_to(size).unwrap();
                        expected = expected.min(size);
                        assert_eq!(b.len(), expected);
                    }
                    assert!(b.len() <= b.max_size());
                    let kept = b.buffer().map(|d| ids(&d)).unwrap_or_default();
                    assert_eq!(kept.len(), b.len());
                    assert!(kept.windows(2).all(|w| w[0] < w[1]) && kept.iter().all(|&i| i < seen));
                }
                b.buffer().map(|d| ids(&d)).unwrap_or_default()
            };
            prop_assert_eq!(run(), run());
        }
    }
}
