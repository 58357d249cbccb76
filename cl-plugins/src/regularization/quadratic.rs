//! [`QuadraticPenalty`]: the penalties of EWC, SI, MAS and RWalk folded into one quadratic
//! per parameter, with their closed-form gradient.

use burn::module::{Module, ParamId};
use burn::tensor::{Device, Tensor};

use cl_core::{Model, Result, StrategyState};

use super::params::{ParamTensors, for_each_param, pad_to};

/// One parameter's folded quadratic: `½·Σ w·(θ − m)²`, with `w = 2·scale·Σ_k Ω_k` (so the
/// gradient is `w·(θ − m)`) and `m = Σ_k Ω_k·θ*_k / Σ_k Ω_k` (0 where `Σ_k Ω_k = 0`).
#[derive(Debug, Clone)]
struct Folded {
    dims: Vec<usize>,
    weight: Tensor<1>,
    centre: Tensor<1>,
}

/// `scale · Σ_k Σ_i Ω_k,i·(θ_i − θ*_k,i)²` — a sum of weighted squared distances to anchors,
/// the penalty of EWC (one term per past experience in separate mode), SI, MAS and RWalk —
/// folded once into one quadratic per parameter:
///
/// `Σ_k Ω_k·(θ − θ*_k)² = A·(θ − m)² + Σ_k Ω_k·(θ*_k − m)²`, with `A = Σ_k Ω_k` and
/// `m = Σ_k Ω_k·θ*_k / A`,
///
/// so that each training step computes the penalty's value and its gradient
/// `2·scale·A·(θ − m)` in a few passes over the parameters, without an autodiff graph
/// ([`value_and_gradient`](Self::value_and_gradient), handed to
/// [`StrategyState::add_loss_with_gradient`](cl_core::StrategyState::add_loss_with_gradient)),
/// whatever the number of terms. The constant `Σ_k Ω_k·(θ*_k − m)²` is computed once, as a
/// sum of non-negative numbers (no cancellation), so the value equals the unfolded sum up to
/// rounding.
///
/// A parameter that grew since a term was recorded (a grown head) is penalised on the term's
/// part only (its new units get `Ω = 0`), as [`weighted_sq_distance`](super::weighted_sq_distance)
/// and Avalanche's `ParamData.expand`; the model's parameters without a term are not penalised.
#[derive(Debug, Clone, Default)]
pub struct QuadraticPenalty {
    order: Vec<ParamId>,
    folded: std::collections::HashMap<ParamId, Folded>,
    constant: f64,
}

impl QuadraticPenalty {
    /// Folds `scale · Σ_k Σ Ω_k·(θ − θ*_k)²` over the pairs `(Ω_k, θ*_k)` of `terms`, onto
    /// `device` (the training device; the folded tensors carry no autodiff). A pair whose
    /// importance and anchor of a parameter differ in shape contributes nothing for it.
    pub fn fold(scale: f64, terms: &[(&ParamTensors, &ParamTensors)], device: &Device) -> Self {
        let device = device.clone().without_autodiff();
        let mut out = Self::default();
        // The shape of each parameter: that of its largest entry (shapes only grow).
        let mut shapes: Vec<(ParamId, Vec<usize>)> = Vec::new();
        for (imp, theta) in terms {
            for (id, e) in imp.iter() {
                if theta.get(id).is_none_or(|t| t.dims != e.dims) {
                    continue;
                }
                let n: usize = e.dims.iter().product();
                match shapes.iter_mut().find(|(i, _)| *i == id) {
                    Some((_, dims)) if dims.iter().product::<usize>() < n => *dims = e.dims.clone(),
                    Some(_) => {}
                    None => shapes.push((id, e.dims.clone())),
                }
            }
        }
        let mut constant = 0.0;
        for (id, dims) in shapes {
            let mut sum_w: Option<Tensor<1>> = None;
            let mut sum_wt: Option<Tensor<1>> = None;
            let mut parts: Vec<(Tensor<1>, Tensor<1>)> = Vec::new();
            for (imp, theta) in terms {
                let (Some(i), Some(t)) = (imp.get(id), theta.get(id)) else { continue };
                if i.dims != t.dims {
                    continue;
                }
                let (Some(i), Some(t)) = (
                    pad_to(i.values.clone().to_device(&device), &i.dims, &dims, &device),
                    pad_to(t.values.clone().to_device(&device), &t.dims, &dims, &device),
                ) else {
                    continue;
                };
                let wt = i.clone() * t.clone();
                sum_w = Some(match sum_w.take() {
                    Some(s) => s + i.clone(),
                    None => i.clone(),
                });
                sum_wt = Some(match sum_wt.take() {
                    Some(s) => s + wt,
                    None => wt,
                });
                parts.push((i, t));
            }
            let (Some(a), Some(b)) = (sum_w, sum_wt) else { continue };
            let empty = a.clone().equal_elem(0.0);
            let centre = (b / a.clone().mask_fill(empty.clone(), 1.0)).mask_fill(empty, 0.0);
            for (i, t) in parts {
                constant += (i * (t - centre.clone()).powi_scalar(2)).sum().into_scalar::<f64>();
            }
            out.order.push(id);
            out.folded.insert(id, Folded { dims, weight: a.mul_scalar(2.0 * scale), centre });
        }
        out.constant = scale * constant;
        out
    }

    /// Whether no parameter is penalised.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The penalty's value on `model`'s current parameters (a scalar on the training device,
    /// without autodiff) and its gradient per parameter, flattened, keyed by id — what
    /// [`StrategyState::add_loss_with_gradient`](cl_core::StrategyState::add_loss_with_gradient)
    /// takes. `None` when no parameter of `model` is penalised. A parameter that grew since the
    /// fold is handled by zero-padding the fold (once).
    pub fn value_and_gradient<M: Module>(&mut self, model: &M) -> Option<(Tensor<1>, Vec<(ParamId, Tensor<1>)>)> {
        let mut grads = Vec::with_capacity(self.order.len());
        let mut value: Option<Tensor<1>> = None;
        let folded = &mut self.folded;
        for_each_param(model, |_, _, id, dims, current| {
            let Some(f) = folded.get_mut(&id) else { return };
            if f.dims != dims {
                let device = f.weight.device();
                let (Some(w), Some(c)) = (
                    pad_to(f.weight.clone(), &f.dims, &dims, &device),
                    pad_to(f.centre.clone(), &f.dims, &dims, &device),
                ) else {
                    return;
                };
                *f = Folded { dims: dims.clone(), weight: w, centre: c };
            }
            let d = current.without_autodiff() - f.centre.clone();
            let g = f.weight.clone() * d.clone();
            // Σ g·d as a [1, n]·[n, 1] product: one pass, no n-sized temporary.
            let n = d.dims()[0];
            let v = g.clone().reshape([1, n]).matmul(d.reshape([n, 1])).reshape([1]);
            value = Some(match value.take() {
                Some(s) => s + v,
                None => v,
            });
            grads.push((id, g));
        });
        let value = value?.mul_scalar(0.5).add_scalar(self.constant);
        Some((value, grads))
    }
}

/// A plugin's [`QuadraticPenalty`] for the experience being trained: folded at the first
/// step of the experience, reused by every step of it, dropped when the plugin's importances
/// or anchors change ([`invalidate`](Self::invalidate)).
#[derive(Debug, Clone, Default)]
pub(crate) struct PenaltyCache(Option<(u64, Option<QuadraticPenalty>)>);

impl PenaltyCache {
    /// Forgets the folded penalty (the terms changed).
    pub(crate) fn invalidate(&mut self) {
        self.0 = None;
    }

    /// Adds the penalty of experience `exp` to the loss with its closed-form gradient, folding
    /// it with `fold` first if this experience has not been folded yet (`fold` returns `None`
    /// when there is no penalty).
    pub(crate) fn add_to_loss<M: Model>(
        &mut self,
        state: &mut StrategyState<M>,
        exp: u64,
        fold: impl FnOnce(&Device) -> Option<QuadraticPenalty>,
    ) -> Result<()> {
        if self.0.as_ref().is_none_or(|(e, _)| *e != exp) {
            self.0 = Some((exp, fold(state.settings().device())));
        }
        let Some((_, Some(penalty))) = self.0.as_mut() else { return Ok(()) };
        match penalty.value_and_gradient(state.model()) {
            Some((value, gradient)) => state.add_loss_with_gradient(value, gradient),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use burn::module::Module;
    use burn::optim::GradientsParams;

    use super::*;
    use crate::regularization::test_support::{Tiny, device};
    use crate::regularization::{all_params, flat_grads, weighted_sq_distance};

    fn vec_of(t: Tensor<1>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    /// Three terms (one recorded before the head grew): the folded value and gradient equal
    /// the autodiff of the unfolded sum `scale·Σ_k Σ Ω_k·(θ − θ*_k)²`.
    #[test]
    fn folded_value_and_gradient_equal_the_unfolded_sum() {
        let dev = device().autodiff();
        let store = dev.clone().without_autodiff();
        let small = Tiny::new(2).to_device(&dev).train();
        let model = Tiny::new(3).to_device(&dev).train();
        let scale = 0.35;
        let make = |m: &Tiny, k: usize| {
            let theta = ParamTensors::values_of(m, &store, &all_params);
            let mut imp = ParamTensors::default();
            let mut anchor = ParamTensors::default();
            for (j, (id, e)) in theta.iter().enumerate() {
                let n: usize = e.dims.iter().product();
                let w: Vec<f32> = (0..n).map(|i| ((i * 3 + j + k) % 4) as f32 * 0.25).collect();
                let a: Vec<f32> = (0..n).map(|i| ((i * 5 + 2 * j + k) % 7) as f32 * 0.1 - 0.3).collect();
                imp.insert(id, e.name.clone(), e.dims.clone(), Tensor::from_floats(w.as_slice(), &store));
                anchor.insert(id, e.name.clone(), e.dims.clone(), Tensor::from_floats(a.as_slice(), &store));
            }
            (imp, anchor)
        };
        // The small model's parameters carry the big one's ids: the head grew.
        let ids: Vec<ParamId> = ParamTensors::values_of(&model, &store, &all_params).ids();
        let (small_imp, small_anchor) = make(&small, 0);
        let (mut imp0, mut anchor0) = (ParamTensors::default(), ParamTensors::default());
        for (pos, ((_, i), (_, a))) in small_imp.iter().zip(small_anchor.iter()).enumerate() {
            imp0.insert(ids[pos], i.name.clone(), i.dims.clone(), i.values.clone());
            anchor0.insert(ids[pos], a.name.clone(), a.dims.clone(), a.values.clone());
        }
        let (imp1, anchor1) = make(&model, 1);
        let (imp2, anchor2) = make(&model, 2);
        let terms = [(&imp0, &anchor0), (&imp1, &anchor1), (&imp2, &anchor2)];

        let mut reference: Option<Tensor<1>> = None;
        for (i, a) in terms {
            let t = weighted_sq_distance(&model, i, a, &dev).unwrap();
            reference = Some(match reference.take() {
                Some(r) => r + t,
                None => t,
            });
        }
        let reference = reference.unwrap().mul_scalar(scale);
        let want_value = reference.clone().into_scalar::<f64>();
        let want: HashMap<ParamId, Vec<f32>> =
            flat_grads(&model, &GradientsParams::from_grads(reference.backward(), &model))
                .into_iter()
                .map(|(id, g)| (id, vec_of(g)))
                .collect();

        let mut folded = QuadraticPenalty::fold(scale, &terms, &dev);
        let (value, grads) = folded.value_and_gradient(&model).unwrap();
        let value = value.into_scalar::<f64>();
        assert!((value - want_value).abs() <= 1e-5 * want_value.abs(), "value {value} vs {want_value}");
        assert_eq!(grads.len(), want.len(), "a gradient per penalised parameter");
        for (id, g) in grads {
            let (got, want) = (vec_of(g), &want[&id]);
            assert_eq!(got.len(), want.len());
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                assert!((g - w).abs() <= 1e-5 + 1e-4 * w.abs(), "gradient[{i}]: {g} vs {w}");
            }
        }
    }

    /// A term whose importance is zero everywhere gives a zero gradient and contributes no
    /// constant; no term at all gives no penalty.
    #[test]
    fn zero_importance_and_no_terms() {
        let dev = device();
        let model = Tiny::new(2);
        let theta = ParamTensors::values_of(&model, &dev, &all_params);
        let zeros = ParamTensors::zeros_like(&model, &dev, &all_params);
        let mut p = QuadraticPenalty::fold(3.0, &[(&zeros, &theta)], &dev);
        let (value, grads) = p.value_and_gradient(&model).unwrap();
        assert_eq!(value.into_scalar::<f64>(), 0.0);
        assert!(grads.into_iter().all(|(_, g)| vec_of(g).iter().all(|x| *x == 0.0)));
        let mut none = QuadraticPenalty::fold(3.0, &[], &dev);
        assert!(none.is_empty() && none.value_and_gradient(&model).is_none());
    }
}
