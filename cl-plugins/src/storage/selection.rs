//! [`SelectionStrategy`]: which samples a [`ParametricBuffer`](super::ParametricBuffer) keeps.

use burn::tensor::Tensor;
use cl_core::{ClError, ClassificationDataset, MiniBatch, Model, Result, StrategyState};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Ranks the samples of a dataset: the first ones are kept when a memory group is cut
/// (Avalanche's `ExemplarsSelectionStrategy`).
pub trait SelectionStrategy<M: Model>: Send {
    /// Every index of `data`, most wanted first (the last ones are dropped first).
    fn make_sorted_indices(
        &mut self,
        state: &StrategyState<M>,
        data: &ClassificationDataset,
    ) -> Result<Vec<usize>>;

    /// The first `k` (or more) indices of the ranking; strategies that can stop early (herding)
    /// override it. Defaults to [`make_sorted_indices`](Self::make_sorted_indices).
    fn make_sorted_prefix(
        &mut self,
        state: &StrategyState<M>,
        data: &ClassificationDataset,
        k: usize,
    ) -> Result<Vec<usize>> {
        let mut idx = self.make_sorted_indices(state, data)?;
        idx.truncate(k);
        Ok(idx)
    }
}

/// A random ranking, from a ChaCha8 generator seeded once (Avalanche's
/// `RandomExemplarsSelectionStrategy`).
#[derive(Debug, Clone)]
pub struct RandomSelection {
    rng: ChaCha8Rng,
}

impl RandomSelection {
    /// A random selection seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }
}

impl<M: Model> SelectionStrategy<M> for RandomSelection {
    fn make_sorted_indices(
        &mut self,
        _state: &StrategyState<M>,
        data: &ClassificationDataset,
    ) -> Result<Vec<usize>> {
        let mut idx: Vec<usize> = (0..data.len()).collect();
        idx.shuffle(&mut self.rng);
        Ok(idx)
    }
}

/// Features `[batch, dim]` of a batch, computed by the evaluation copy of the model
/// (`state.model().valid()`), e.g. `|m, b| m.features(b.x.clone())`.
pub type FeatureExtractor<M> = Box<dyn Fn(&M, &MiniBatch) -> Tensor<2> + Send>;

/// Feature extraction shared by the feature-based selections.
struct Features<M: Model> {
    extractor: FeatureExtractor<M>,
    normalize: bool,
    batch_size: usize,
}

impl<M: Model> Features<M> {
    fn new(extractor: impl Fn(&M, &MiniBatch) -> Tensor<2> + Send + 'static) -> Self {
        Self {
            extractor: Box::new(extractor),
            normalize: true,
            batch_size: 256,
        }
    }

    /// The features of every sample of `data` (`[n · dim]` row-major, and `dim`), computed on
    /// `state.eval_device` by `state.model().valid()` with the evaluation transforms, read back
    /// once, L2-normalised if `normalize`.
    fn compute(
        &self,
        state: &StrategyState<M>,
        data: &ClassificationDataset,
        who: &str,
    ) -> Result<(Vec<f32>, usize)> {
        let n = data.len();
        if n == 0 {
            return Ok((Vec::new(), 0));
        }
        let error = |message: String| ClError::Plugin {
            plugin: who.to_string(),
            callback: "make_sorted_indices",
            message,
        };
        // Never a forward pass on the autodiff model (it would leave graph state behind).
        let model = state.model().valid();
        let eval = data.eval();
        let mut rng = ChaCha8Rng::seed_from_u64(state.seed);
        let indices: Vec<usize> = (0..n).collect();
        let mut outs = Vec::with_capacity(n.div_ceil(self.batch_size));
        for chunk in indices.chunks(self.batch_size) {
            let batch = eval.batch(chunk, &state.eval_device, &mut rng)?;
            let f = (self.extractor)(&model, &batch);
            if f.dims()[0] != chunk.len() {
                return Err(error(format!(
                    "the feature extractor returned {} rows for a batch of {}",
                    f.dims()[0],
                    chunk.len()
                )));
            }
            outs.push(f);
        }
        let all = Tensor::cat(outs, 0);
        let dim = all.dims()[1];
        let mut values = all
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| error(format!("reading the features back: {e:?}")))?;
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(error(format!(
                "feature {} of sample {} is not finite",
                i % dim.max(1),
                i / dim.max(1)
            )));
        }
        if self.normalize && dim > 0 {
            // As torch.nn.functional.normalize: x / max(‖x‖, 1e-12).
            values.par_chunks_mut(dim).for_each(|row| {
                let norm = row
                    .iter()
                    .map(|&v| f64::from(v) * f64::from(v))
                    .sum::<f64>()
                    .sqrt()
                    .max(1e-12);
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
                    if b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)).is_lt() {
                        b
                    } else {
                        a
                    }
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
        .map(|row| {
            row.iter()
                .zip(&center)
                .map(|(&f, &c)| (f64::from(f) - c).powi(2))
                .sum()
        })
        .collect();
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| dist[a].total_cmp(&dist[b]).then(a.cmp(&b)));
    idx
}

macro_rules! feature_selection_options {
    () => {
        /// Whether features are L2-normalised before selection (default `true`, as iCaRL;
        /// Avalanche's storage-policy selections use raw features: give `false` for those).
        pub fn with_normalize(mut self, normalize: bool) -> Self {
            self.features.normalize = normalize;
            self
        }

        /// Samples per forward pass of the feature extractor (default 256, at least 1).
        pub fn with_batch_size(mut self, batch_size: usize) -> Self {
            self.features.batch_size = batch_size.max(1);
            self
        }
    };
}

/// Herding selection (iCaRL; Avalanche's `HerdingSelectionStrategy`): greedily ranks the
/// samples so that the mean feature of the first `i` is as close as possible to the mean of
/// all, for every `i`.
///
/// Features come from the extractor applied to `state.model().valid()` on batches built on
/// `state.eval_device` (evaluation transforms), are read back once and ranked on the host.
pub struct HerdingSelection<M: Model> {
    features: Features<M>,
}

impl<M: Model> HerdingSelection<M> {
    /// Herding over the features computed by `extractor` (a closure or a
    /// [`FeatureExtractor`]).
    pub fn new(extractor: impl Fn(&M, &MiniBatch) -> Tensor<2> + Send + 'static) -> Self {
        Self {
            features: Features::new(extractor),
        }
    }

    feature_selection_options!();
}

impl<M: Model> SelectionStrategy<M> for HerdingSelection<M> {
    fn make_sorted_indices(
        &mut self,
        state: &StrategyState<M>,
        data: &ClassificationDataset,
    ) -> Result<Vec<usize>> {
        self.make_sorted_prefix(state, data, data.len())
    }

    fn make_sorted_prefix(
        &mut self,
        state: &StrategyState<M>,
        data: &ClassificationDataset,
        k: usize,
    ) -> Result<Vec<usize>> {
        let (f, dim) = self.features.compute(state, data, "HerdingSelection")?;
        Ok(herding_order(&f, dim, k))
    }
}

/// Ranks the samples by the distance of their feature to the mean feature, closest first
/// (Avalanche's `ClosestToCenterSelectionStrategy`). Features are computed as for
/// [`HerdingSelection`].
pub struct ClosestToCenterSelection<M: Model> {
    features: Features<M>,
}

impl<M: Model> ClosestToCenterSelection<M> {
    /// Closest-to-center over the features computed by `extractor` (a closure or a
    /// [`FeatureExtractor`]).
    pub fn new(extractor: impl Fn(&M, &MiniBatch) -> Tensor<2> + Send + 'static) -> Self {
        Self {
            features: Features::new(extractor),
        }
    }

    feature_selection_options!();
}

impl<M: Model> SelectionStrategy<M> for ClosestToCenterSelection<M> {
    fn make_sorted_indices(
        &mut self,
        state: &StrategyState<M>,
        data: &ClassificationDataset,
    ) -> Result<Vec<usize>> {
        let (f, dim) = self.features.compute(state, data, "ClosestToCenterSelection")?;
        Ok(closest_to_center_order(&f, dim))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_util::{set_experience, strategy};
    use cl_models::SimpleMlp;
    use proptest::prelude::*;

    /// Avalanche's herding, transcribed (full ranking, f64).
    fn herding_reference(features: &[Vec<f64>]) -> Vec<usize> {
        let n = features.len();
        let dim = features[0].len();
        let center: Vec<f64> = (0..dim)
            .map(|d| features.iter().map(|f| f[d]).sum::<f64>() / n as f64)
            .collect();
        let mut current = vec![0.0; dim];
        let mut selected: Vec<usize> = Vec::new();
        for i in 0..n {
            let mut best = (f64::INFINITY, usize::MAX);
            for (j, f) in features.iter().enumerate() {
                if selected.contains(&j) {
                    continue;
                }
                let cand: Vec<f64> = (0..dim)
                    .map(|d| current[d] * i as f64 / (i + 1) as f64 + f[d] / (i + 1) as f64)
                    .collect();
                let dist: f64 = (0..dim).map(|d| (cand[d] - center[d]).powi(2)).sum();
                if dist < best.0 {
                    best = (dist, j);
                }
            }
            selected.push(best.1);
            let f = &features[best.1];
            current = (0..dim)
                .map(|d| current[d] * i as f64 / (i + 1) as f64 + f[d] / (i + 1) as f64)
                .collect();
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
        assert_eq!(
            closest_to_center_order(&[0.0, 10.0, 4.0, 7.0, 5.5], 1),
            vec![4, 2, 3, 1, 0]
        );
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
    fn features_are_normalised_and_come_from_the_eval_model() {
        let mut s = strategy();
        let d = ClassificationDataset::from_f32(
            vec![3.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0],
            vec![4],
            vec![0, 1],
        )
        .unwrap();
        set_experience(&mut s, 0, d.clone());
        let eval_device = s.state.eval_device.clone();
        let extractor = move |_: &SimpleMlp, b: &MiniBatch| {
            assert_eq!(b.x.device(), eval_device, "batches on the evaluation device");
            b.x.clone()
        };
        let f: Features<SimpleMlp> = Features::new(extractor);
        let (values, dim) = f.compute(&s.state, &d, "test").unwrap();
        assert_eq!(dim, 4);
        assert_eq!(values, vec![0.6, 0.8, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
        // A wrong number of rows is an error.
        let bad: Features<SimpleMlp> =
            Features::new(|_: &SimpleMlp, b: &MiniBatch| b.x.clone().narrow(0, 0, 1));
        assert!(matches!(
            bad.compute(&s.state, &d, "test"),
            Err(ClError::Plugin { .. })
        ));
        // The random selection is a seeded permutation.
        let mut r1 = RandomSelection::new(4);
        let mut r2 = RandomSelection::new(4);
        let a = SelectionStrategy::<SimpleMlp>::make_sorted_indices(&mut r1, &s.state, &d).unwrap();
        let b = SelectionStrategy::<SimpleMlp>::make_sorted_indices(&mut r2, &s.state, &d).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 2);
    }
}
