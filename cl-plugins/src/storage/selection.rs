//! [`SelectionStrategy`]: which samples a [`ParametricBuffer`](super::ParametricBuffer) keeps,
//! and its serialisable choice, [`SelectionConfig`].

use std::any::Any;

use burn::tensor::Tensor;
use cl_core::checkpoint::StateDict;
use cl_core::data::ClassificationDataset;
use cl_core::{ClError, Result};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::StorageContext;

/// Ranks the samples of a dataset: the first ones are kept when a memory group is cut
/// (Avalanche's `ExemplarsSelectionStrategy`). Not generic over the model: feature-based
/// strategies run the context's [`InferenceModel`](super::InferenceModel).
#[doc(alias = "ExemplarsSelectionStrategy")]
pub trait SelectionStrategy: Any + Send {
    /// Every index of `data`, most wanted first (the last ones are dropped first).
    fn make_sorted_indices(&mut self, ctx: &StorageContext<'_>, data: &ClassificationDataset) -> Result<Vec<usize>>;

    /// The first `k` (or more) indices of the ranking; strategies that can stop early (herding)
    /// override it. Defaults to [`make_sorted_indices`](Self::make_sorted_indices).
    fn make_sorted_prefix(
        &mut self,
        ctx: &StorageContext<'_>,
        data: &ClassificationDataset,
        k: usize,
    ) -> Result<Vec<usize>> {
        let mut idx = self.make_sorted_indices(ctx, data)?;
        idx.truncate(k);
        Ok(idx)
    }

    /// Saves the strategy's state into a checkpoint (a random generator's position; nothing
    /// for a deterministic ranking). The default refuses with
    /// [`ClError::NotCheckpointable`]: a strategy of your own implements both hooks (a
    /// stateless one returns `Ok(())`) to be checkpointed.
    fn save_state(&self, _out: &mut StateDict) -> Result<()> {
        Err(crate::persist::not_checkpointable(
            format!("selection strategy `{}`", cl_core::config::short_type_name::<Self>()),
            "SelectionStrategy::save_state and SelectionStrategy::load_state",
        ))
    }

    /// Restores what [`save_state`](Self::save_state) saved.
    fn load_state(&mut self, _state: &StateDict) -> Result<()> {
        Err(crate::persist::not_checkpointable(
            format!("selection strategy `{}`", cl_core::config::short_type_name::<Self>()),
            "SelectionStrategy::save_state and SelectionStrategy::load_state",
        ))
    }
}

/// Which representation of the samples feature-based selection ranks.
///
/// Avalanche's feature-based strategies take `(model, layer_name)` and read that layer through
/// a `FeatureExtractorBackbone`; Burn modules have no named-layer hooks, so the choice is
/// between the model's penultimate representation and its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[doc(alias = "layer_name")]
pub enum FeatureSource {
    /// [`Model::features`](cl_core::Model::features), the penultimate representation (the input
    /// of the output layer, Avalanche's usual `layer_name`). A model that returns `None` there
    /// is an error naming the fix.
    #[default]
    Features,
    /// The logits ([`Model::forward`](cl_core::Model::forward)), for models without a
    /// penultimate representation.
    Logits,
}

/// The choice of a [`ParametricBuffer`](super::ParametricBuffer)'s selection strategy
/// (Avalanche's `selection_strategy` argument, whose default is random), serialisable:
/// `{"type": "herding", "features": "features"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SelectionConfig {
    /// [`RandomSelection`] (Avalanche's `RandomExemplarsSelectionStrategy`).
    Random {
        /// Seed of the random ranking (Avalanche uses torch's global generator; default 0).
        #[serde(default)]
        seed: u64,
    },
    /// [`HerdingSelection`] (Avalanche's `HerdingSelectionStrategy`).
    Herding {
        /// What is ranked (default: [`FeatureSource::Features`]).
        #[serde(default)]
        features: FeatureSource,
        /// Whether the features are L2-normalised first (default `false`, as Avalanche's
        /// storage policy; iCaRL normalises).
        #[serde(default)]
        normalize: bool,
    },
    /// [`ClosestToCenterSelection`] (Avalanche's `ClosestToCenterSelectionStrategy`).
    ClosestToCenter {
        /// What is ranked (default: [`FeatureSource::Features`]).
        #[serde(default)]
        features: FeatureSource,
        /// Whether the features are L2-normalised first (default `false`, as Avalanche).
        #[serde(default)]
        normalize: bool,
    },
}

impl Default for SelectionConfig {
    /// Random, seed 0 (Avalanche's default for `ParametricBuffer`).
    fn default() -> Self {
        Self::Random { seed: 0 }
    }
}

impl SelectionConfig {
    /// Herding over `features`, unnormalised (Avalanche's).
    pub fn herding(features: FeatureSource) -> Self {
        Self::Herding { features, normalize: false }
    }

    /// Closest-to-center over `features`, unnormalised (Avalanche's).
    pub fn closest_to_center(features: FeatureSource) -> Self {
        Self::ClosestToCenter { features, normalize: false }
    }

    /// The selection strategy this config describes.
    pub fn build(&self) -> Box<dyn SelectionStrategy> {
        match *self {
            Self::Random { seed } => Box::new(RandomSelection::new(seed)),
            Self::Herding { features, normalize } => {
                Box::new(HerdingSelection::new(features).with_normalize(normalize))
            }
            Self::ClosestToCenter { features, normalize } => {
                Box::new(ClosestToCenterSelection::new(features).with_normalize(normalize))
            }
        }
    }
}

/// A random ranking, from a ChaCha8 generator seeded once (Avalanche's
/// `RandomExemplarsSelectionStrategy`, which draws from torch's global generator).
#[derive(Debug, Clone)]
#[doc(alias = "RandomExemplarsSelectionStrategy")]
pub struct RandomSelection {
    rng: ChaCha8Rng,
}

impl RandomSelection {
    /// A random selection seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { rng: ChaCha8Rng::seed_from_u64(seed) }
    }
}

impl SelectionStrategy for RandomSelection {
    fn make_sorted_indices(&mut self, _ctx: &StorageContext<'_>, data: &ClassificationDataset) -> Result<Vec<usize>> {
        let mut idx: Vec<usize> = (0..data.len()).collect();
        idx.shuffle(&mut self.rng);
        Ok(idx)
    }

    /// The generator, at its exact position.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put_rng("rng", &self.rng)
    }

    fn load_state(&mut self, state: &StateDict) -> Result<()> {
        self.rng = state.rng("rng")?;
        Ok(())
    }
}

/// Feature extraction shared by the feature-based selections.
#[derive(Debug, Clone, Copy)]
struct Features {
    source: FeatureSource,
    normalize: bool,
}

impl Features {
    /// The features of every sample of `data` (`[n · dim]` row-major, and `dim`), computed on
    /// the context's device by the context's model (the evaluation copy) with the evaluation
    /// transforms, in batches of the context's batch size, read back once, L2-normalised if
    /// `normalize`.
    fn compute(&self, ctx: &StorageContext<'_>, data: &ClassificationDataset, who: &str) -> Result<(Vec<f32>, usize)> {
        let n = data.len();
        if n == 0 {
            return Ok((Vec::new(), 0));
        }
        let error =
            |message: String| ClError::Plugin { plugin: who.to_string(), callback: "make_sorted_indices", message };
        let (model, device) = ctx.require_model(who)?;
        let eval = data.eval();
        let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed());
        let indices: Vec<usize> = (0..n).collect();
        let batch_size = ctx.batch_size().max(1);
        let mut outs = Vec::with_capacity(n.div_ceil(batch_size));
        for chunk in indices.chunks(batch_size) {
            let batch = eval.batch(chunk, device, &mut rng)?;
            let f = match self.source {
                FeatureSource::Logits => model.infer_logits(&batch),
                FeatureSource::Features => model.infer_features(&batch).ok_or_else(|| {
                    error(format!(
                        "FeatureSource::Features needs the penultimate representation, but `{}` returns None \
                         from Model::features: implement `Model::features` for it, or select on \
                         FeatureSource::Logits",
                        model.model_name()
                    ))
                })?,
            };
            if f.dims()[0] != chunk.len() {
                return Err(error(format!(
                    "the model returned {} feature rows for a batch of {}",
                    f.dims()[0],
                    chunk.len()
                )));
            }
            outs.push(f);
        }
        let all = Tensor::cat(outs, 0);
        let dim = all.dims()[1];
        let mut values =
            all.into_data().try_into_vec_as::<f32>().map_err(|e| error(format!("reading the features back: {e:?}")))?;
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(error(format!("feature {} of sample {} is not finite", i % dim.max(1), i / dim.max(1))));
        }
        if self.normalize && dim > 0 {
            // As torch.nn.functional.normalize: x / max(‖x‖, 1e-12).
            values.par_chunks_mut(dim).for_each(|row| {
                let norm = row.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt().max(1e-12);
                row.iter_mut().for_each(|v| *v = (f64::from(*v) / norm) as f32);
            });
        }
        Ok((values, dim))
    }
}

/// The mean of the `n` rows of `features` (`dim` columns), in f64.
fn mean(features: &[f32], dim: usize) -> Vec<f64> {
    let n = features.len() / dim.max(1);
    let mut c = vec![0.0f64; dim];
    for row in features.chunks(dim.max(1)) {
        for (a, &v) in c.iter_mut().zip(row) {
            *a += f64::from(v);
        }
    }
    c.iter_mut().for_each(|a| *a /= n.max(1) as f64);
    c
}

/// iCaRL's herding: greedily picks the sample that brings the mean of the picked ones closest
/// to the mean of all (Avalanche's `HerdingSelectionStrategy`); stops after `k` picks.
/// Ties go to the lower index. O(k · n · dim).
pub(crate) fn herding_order(features: &[f32], dim: usize, k: usize) -> Vec<usize> {
    let n = features.len().checked_div(dim).unwrap_or(0);
    let k = k.min(n);
    let center = mean(features, dim);
    let mut sum = vec![0.0f64; dim];
    let mut selected = vec![false; n];
    let mut order = Vec::with_capacity(k);
    for i in 0..k {
        let scale = 1.0 / (i + 1) as f64;
        let (_, best) = (0..n)
            .into_par_iter()
            .filter(|&j| !selected[j])
            .map(|j| {
                let row = &features[j * dim..(j + 1) * dim];
                let d: f64 = row
                    .iter()
                    .zip(&sum)
                    .zip(&center)
                    .map(|((&f, &s), &c)| {
                        let x = (s + f64::from(f)) * scale - c;
                        x * x
                    })
                    .sum();
                (d, j)
            })
            .reduce(
                || (f64::INFINITY, usize::MAX),
                |a, b| {
                    if b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)).is_lt() { b } else { a }
                },
            );
        selected[best] = true;
        order.push(best);
        for (s, &f) in sum.iter_mut().zip(&features[best * dim..(best + 1) * dim]) {
            *s += f64::from(f);
        }
    }
    order
}

/// Every index, by increasing distance to the mean (ties: lower index first).
pub(crate) fn closest_to_center_order(features: &[f32], dim: usize) -> Vec<usize> {
    let n = features.len().checked_div(dim).unwrap_or(0);
    let center = mean(features, dim);
    let dist: Vec<f64> = features
        .par_chunks(dim.max(1))
        .map(|row| row.iter().zip(&center).map(|(&f, &c)| (f64::from(f) - c).powi(2)).sum())
        .collect();
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| dist[a].total_cmp(&dist[b]).then(a.cmp(&b)));
    idx
}

/// Herding selection (iCaRL; Avalanche's `HerdingSelectionStrategy`): greedily ranks the
/// samples so that the mean feature of the first `i` is as close as possible to the mean of
/// all, for every `i`.
///
/// Features come from the context's model (the evaluation copy,
/// [`StorageContext::from_state`]) on batches of the context's batch size (Avalanche's
/// `eval_mb_size`) with the evaluation transforms, are read back once and ranked on the host.
/// Unlike Avalanche, the ranking stops after the samples a group keeps.
#[derive(Debug, Clone)]
#[doc(alias = "HerdingSelectionStrategy")]
pub struct HerdingSelection {
    features: Features,
}

impl HerdingSelection {
    /// Herding over `source`, unnormalised (as Avalanche's storage policy).
    pub fn new(source: FeatureSource) -> Self {
        Self { features: Features { source, normalize: false } }
    }

    /// Whether features are L2-normalised before selection (default `false`, as Avalanche's
    /// storage policy; iCaRL normalises).
    pub fn with_normalize(mut self, normalize: bool) -> Self {
        self.features.normalize = normalize;
        self
    }
}

impl SelectionStrategy for HerdingSelection {
    fn make_sorted_indices(&mut self, ctx: &StorageContext<'_>, data: &ClassificationDataset) -> Result<Vec<usize>> {
        self.make_sorted_prefix(ctx, data, data.len())
    }

    fn make_sorted_prefix(
        &mut self,
        ctx: &StorageContext<'_>,
        data: &ClassificationDataset,
        k: usize,
    ) -> Result<Vec<usize>> {
        let (f, dim) = self.features.compute(ctx, data, "HerdingSelection")?;
        Ok(herding_order(&f, dim, k))
    }

    /// Stateless (the ranking depends on the data and the model only).
    fn save_state(&self, _out: &mut StateDict) -> Result<()> {
        Ok(())
    }

    fn load_state(&mut self, _state: &StateDict) -> Result<()> {
        Ok(())
    }
}

/// Ranks the samples by the distance of their feature to the mean feature, closest first
/// (Avalanche's `ClosestToCenterSelectionStrategy`). Features are computed as for
/// [`HerdingSelection`].
#[derive(Debug, Clone)]
#[doc(alias = "ClosestToCenterSelectionStrategy")]
pub struct ClosestToCenterSelection {
    features: Features,
}

impl ClosestToCenterSelection {
    /// Closest-to-center over `source`, unnormalised (as Avalanche).
    pub fn new(source: FeatureSource) -> Self {
        Self { features: Features { source, normalize: false } }
    }

    /// Whether features are L2-normalised before selection (default `false`, as Avalanche).
    pub fn with_normalize(mut self, normalize: bool) -> Self {
        self.features.normalize = normalize;
        self
    }
}

impl SelectionStrategy for ClosestToCenterSelection {
    fn make_sorted_indices(&mut self, ctx: &StorageContext<'_>, data: &ClassificationDataset) -> Result<Vec<usize>> {
        let (f, dim) = self.features.compute(ctx, data, "ClosestToCenterSelection")?;
        Ok(closest_to_center_order(&f, dim))
    }

    /// Stateless (the ranking depends on the data and the model only).
    fn save_state(&self, _out: &mut StateDict) -> Result<()> {
        Ok(())
    }

    fn load_state(&mut self, _state: &StateDict) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_util::{InputModel, experience};
    use burn::tensor::Device;
    use cl_core::config::ConfigFile;
    use proptest::prelude::*;

    /// Avalanche's herding, transcribed (full ranking, f64).
    fn herding_reference(features: &[Vec<f64>]) -> Vec<usize> {
        let n = features.len();
        let dim = features[0].len();
        let center: Vec<f64> = (0..dim).map(|d| features.iter().map(|f| f[d]).sum::<f64>() / n as f64).collect();
        let mut current = vec![0.0; dim];
        let mut selected: Vec<usize> = Vec::new();
        for i in 0..n {
            let mut best = (f64::INFINITY, usize::MAX);
            for (j, f) in features.iter().enumerate() {
                if selected.contains(&j) {
                    continue;
                }
                let cand: Vec<f64> =
                    (0..dim).map(|d| current[d] * i as f64 / (i + 1) as f64 + f[d] / (i + 1) as f64).collect();
                let dist: f64 = (0..dim).map(|d| (cand[d] - center[d]).powi(2)).sum();
                if dist < best.0 {
                    best = (dist, j);
                }
            }
            selected.push(best.1);
            let f = &features[best.1];
            current = (0..dim).map(|d| current[d] * i as f64 / (i + 1) as f64 + f[d] / (i + 1) as f64).collect();
        }
        selected
    }

    #[test]
    fn herding_known_answer() {
        // e1, e2, -e1, -e2: mean 0; the first pick is a tie (index 0), then its opposite
        // brings the mean back to 0.
        let f = [1.0, 0.0, 0.0, 1.0, -1.0, 0.0, 0.0, -1.0];
        assert_eq!(herding_order(&f, 2, 4), vec![0, 2, 1, 3]);
        assert_eq!(herding_order(&f, 2, 2), vec![0, 2]);
        // 1-D: values 0, 11, 4, 6 (mean 5.25): 6 (nearest), then 4 (pair mean 5), then 11
        // (triple mean 7 vs 3.33 with 0), then 0.
        assert_eq!(herding_order(&[0.0, 11.0, 4.0, 6.0], 1, 4), vec![3, 2, 1, 0]);
    }

    #[test]
    fn closest_to_center_known_answer() {
        // 1-D values 0, 10, 4, 7, 5.5: mean 5.3; distances 5.3, 4.7, 1.3, 1.7, 0.2.
        assert_eq!(closest_to_center_order(&[0.0, 10.0, 4.0, 7.0, 5.5], 1), vec![4, 2, 3, 1, 0]);
    }

    proptest! {
        #[test]
        fn herding_matches_avalanche(rows in proptest::collection::vec(proptest::collection::vec(-1.0f32..1.0, 3), 1..25)) {
            let flat: Vec<f32> = rows.concat();
            let reference = herding_reference(&rows.iter().map(|r| r.iter().map(|&v| f64::from(v)).collect()).collect::<Vec<_>>());
            prop_assert_eq!(herding_order(&flat, 3, rows.len()), reference.clone());
            let k = rows.len() / 2;
            prop_assert_eq!(herding_order(&flat, 3, k), reference[..k].to_vec());
        }

        #[test]
        fn closest_to_center_is_sorted_by_distance(rows in proptest::collection::vec(proptest::collection::vec(-1.0f32..1.0, 3), 1..25)) {
            let flat: Vec<f32> = rows.concat();
            let order = closest_to_center_order(&flat, 3);
            let c = mean(&flat, 3);
            let dist = |i: usize| rows[i].iter().zip(&c).map(|(&f, &m)| (f64::from(f) - m).powi(2)).sum::<f64>();
            let mut sorted = order.clone();
            sorted.sort_unstable();
            prop_assert_eq!(sorted, (0..rows.len()).collect::<Vec<_>>());
            prop_assert!(order.windows(2).all(|w| dist(w[0]) <= dist(w[1])));
        }
    }

    #[test]
    fn selection_configs_round_trip_and_build() {
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Holder {
            selection: SelectionConfig,
        }
        impl cl_core::config::Validate for Holder {
            fn validate(&self) -> Result<()> {
                Ok(())
            }
        }
        for selection in [
            SelectionConfig::Random { seed: 5 },
            SelectionConfig::herding(FeatureSource::Logits),
            SelectionConfig::ClosestToCenter { features: FeatureSource::Features, normalize: true },
        ] {
            let h = Holder { selection };
            assert_eq!(Holder::from_json(&h.to_json()).unwrap(), h);
            assert_eq!(Holder::from_toml(&h.to_toml().unwrap()).unwrap(), h);
        }
        let h = Holder::from_json(r#"{"selection": {"type": "herding"}}"#).unwrap();
        assert_eq!(h.selection, SelectionConfig::herding(FeatureSource::Features));
        assert!(Holder::from_json(r#"{"selection": {"type": "herding", "layer_name": "x"}}"#).is_err());
        assert_eq!(SelectionConfig::default(), SelectionConfig::Random { seed: 0 });
        let b = SelectionConfig::herding(FeatureSource::Features).build();
        assert!((b.as_ref() as &dyn Any).downcast_ref::<HerdingSelection>().is_some());
    }

    #[test]
    fn features_come_from_the_context_model_on_its_device() {
        let d =
            ClassificationDataset::from_f32(vec![3.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0], vec![4], vec![0, 1]).unwrap();
        let exp = experience(0, d.clone());
        let device = Device::default();
        let model = InputModel::new(&device);
        let ctx = StorageContext::new(&exp).with_model(&model, &device).with_batch_size(1);
        let normalized = Features { source: FeatureSource::Features, normalize: true };
        let (values, dim) = normalized.compute(&ctx, &d, "test").unwrap();
        assert_eq!(dim, 4);
        assert_eq!(values, vec![0.6, 0.8, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
        assert_eq!(model.batches(), 2, "one forward pass per batch of the context's size");
        let raw = Features { source: FeatureSource::Logits, normalize: false };
        let (values, _) = raw.compute(&ctx, &d, "test").unwrap();
        assert_eq!(values, vec![6.0, 8.0, 0.0, 0.0, 0.0, 0.0, 0.0, 4.0], "logits are 2x");
        // A wrong number of rows is an error.
        let bad = InputModel::new(&device).with_rows(1);
        let ctx_bad = StorageContext::new(&exp).with_model(&bad, &device);
        assert!(matches!(raw.compute(&ctx_bad, &d, "test"), Err(ClError::Plugin { .. })));
        // No model in the context: an error that says how to give one.
        let err = raw.compute(&StorageContext::new(&exp), &d, "test").unwrap_err();
        assert!(err.to_string().contains("from_state"), "{err}");
        // No Model::features: an error that names the fix.
        let no_features = InputModel::new(&device).without_features();
        let ctx_nf = StorageContext::new(&exp).with_model(&no_features, &device);
        let err = HerdingSelection::new(FeatureSource::Features).make_sorted_indices(&ctx_nf, &d).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("Model::features") && msg.contains("FeatureSource::Logits"), "{msg}");
        assert!(HerdingSelection::new(FeatureSource::Logits).make_sorted_indices(&ctx_nf, &d).is_ok());
        // The random selection is a seeded permutation and needs no model.
        let ctx = StorageContext::new(&exp);
        let a = RandomSelection::new(4).make_sorted_indices(&ctx, &d).unwrap();
        let b = RandomSelection::new(4).make_sorted_indices(&ctx, &d).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 2);
    }
}
