//! [`RWalkPlugin`]: Riemannian Walk (Avalanche's `RWalkPlugin`).

use std::collections::HashMap;

use burn::module::{Module, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, finite_non_negative, rule};
use cl_core::{ClError, Model, Plugin, Result, StatePart, StrategyState};
use serde::{Deserialize, Serialize};

use super::eval_mode_autodiff_copy;
use super::params::{
    ParamTensors, all_params, flat_grads, for_each_param, opt_params, pad_to, params, put_opt_params, put_params,
    weighted_sq_distance,
};
use super::quadratic::{PenaltyCache, QuadraticPenalty};
use crate::mode::{EvalModeSwitch, ModeAfterPass};

/// The damping of the score's denominator: `torch.finfo(torch.float32).eps`, as Avalanche.
pub const RWALK_EPS: f64 = f32::EPSILON as f64;

/// The hyper-parameters of RWalk, with Avalanche's defaults: `RWalkPlugin(ewc_lambda=0.1,
/// ewc_alpha=0.9, delta_t=10)`.
///
/// ```
/// use cl_plugins::regularization::{RWalkConfig, RWalkPlugin};
/// let rwalk = RWalkPlugin::new(RWalkConfig::default())?; // λ 0.1, α 0.9, Δt 10
/// assert!(RWalkPlugin::new(RWalkConfig::default().with_ewc_lambda(-1.0)).is_err());
/// assert!(RWalkPlugin::new(RWalkConfig::default().with_ewc_alpha(1.5)).is_err());
/// assert!(RWalkPlugin::new(RWalkConfig::default().with_delta_t(0)).is_err());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RWalkConfig {
    /// Weight λ of the penalty `λ·Σ P·(θ−θ*)²` (a finite number `>= 0`; default 0.1).
    pub ewc_lambda: f64,
    /// Weight of the newest squared gradient in the running Fisher
    /// `F ← α·g² + (1−α)·F` (EWC++; in [0, 1]; default 0.9).
    pub ewc_alpha: f64,
    /// The scores are accumulated every `delta_t` training iterations (`>= 1`; default 10).
    pub delta_t: u64,
    /// The mode the model trains in after the gradient pass of the first iteration of each
    /// experience (default: Avalanche's, evaluation mode — its `_update_grad` calls
    /// `model.eval()` and never switches back).
    pub mode: ModeAfterPass,
}

impl Default for RWalkConfig {
    /// Avalanche's defaults: λ = 0.1, α = 0.9, Δt = 10.
    fn default() -> Self {
        Self { ewc_lambda: 0.1, ewc_alpha: 0.9, delta_t: 10, mode: ModeAfterPass::Avalanche }
    }
}

impl RWalkConfig {
    /// Sets `ewc_lambda`.
    pub fn with_ewc_lambda(mut self, ewc_lambda: f64) -> Self {
        self.ewc_lambda = ewc_lambda;
        self
    }

    /// Sets `ewc_alpha`.
    pub fn with_ewc_alpha(mut self, ewc_alpha: f64) -> Self {
        self.ewc_alpha = ewc_alpha;
        self
    }

    /// Sets `delta_t`.
    pub fn with_delta_t(mut self, delta_t: u64) -> Self {
        self.delta_t = delta_t;
        self
    }

    /// Sets the mode the model trains in after the gradient pass.
    pub fn with_mode(mut self, mode: ModeAfterPass) -> Self {
        self.mode = mode;
        self
    }
}

impl Validate for RWalkConfig {
    fn validate(&self) -> Result<()> {
        const C: &str = "RWalkConfig";
        rule(C, "ewc_lambda_finite_non_negative", finite_non_negative(self.ewc_lambda), || {
            format!("ewc_lambda = {} must be a finite number >= 0", self.ewc_lambda)
        })?;
        rule(C, "ewc_alpha_in_unit_interval", (0.0..=1.0).contains(&self.ewc_alpha), || {
            format!("ewc_alpha = {} must be in [0, 1]", self.ewc_alpha)
        })?;
        rule(C, "delta_t_positive", self.delta_t >= 1, || "delta_t must be at least 1".into())
    }
}

/// Riemannian Walk (Chaudhry et al. 2018): Avalanche's `RWalkPlugin`
/// (`avalanche/training/plugins/rwalk.py`), the plugin of the `RWalk` strategy.
///
/// Every training iteration:
/// - `before_training_iteration`: the gradient `g` of the criterion alone on the mini-batch is
///   computed on a copy of the model in evaluation mode, the running Fisher is updated,
///   `F ← α·g² + (1−α)·F` (the first iteration sets `F = g²`; `F` runs across experiences),
///   and θ is snapshotted as θ_t;
/// - `before_backward` (from the second experience on): adds `λ·Σ P·(θ − θ*)²` (no ½);
/// - `after_training_iteration`: the loss change of the step is accumulated,
///   `L −= g·(θ_{t+1} − θ_t)`; when `(train_iterations + 1) % delta_t == 0` (the global
///   iteration count, before the clock update) the window's score is added,
///   `s += L / (½·F·(θ − θ_c)² + eps)` with θ_c the parameters at the previous checkpoint and
///   `eps` = [`RWALK_EPS`], then `L ← 0` and θ_c ← θ.
///
/// `before_training` resets `L` and the scores of the current experience to 0 and θ_c to θ.
/// `after_training_exp`: `F*` = the running Fisher, θ* = θ, the experience scores become
/// `S = s` on the first experience and `S ← ½·(S + s)` afterwards, and the penalty weights
/// `P = F*/max(F*) + relu(S)/max(S)` (maxima over all parameters); `s ← 0`. From the second
/// experience on, `before_backward` adds `λ·Σ P·(θ−θ*)²` to the loss and its gradient
/// `2λ·P·(θ−θ*)` directly to the gradients ([`QuadraticPenalty`], no autodiff graph).
///
/// # Differences from Avalanche
///
/// The penalty is Avalanche's `λ·Σ P·(θ−θ*)²` (no ½) and every update above follows
/// Avalanche's code. The differences (deliberate; the first and last only matter outside
/// Avalanche's normal use):
/// - a normalising maximum that is not a positive finite number (Avalanche divides by it,
///   giving NaN when it is 0) makes that term zero;
/// - none in the mode by default: Avalanche calls `model.eval()` for the gradient and never
///   switches back, so the whole experience trains without dropout; with
///   [`ModeAfterPass::Avalanche`] (the default `mode`) the model's training flags are switched
///   off before the first gradient pass of each experience and back on after it (the gradient
///   itself is computed on a copy in evaluation mode either way); [`ModeAfterPass::Training`]
///   keeps dropout in training;
/// - parameters that appear after `before_training` get zero accumulators instead of a
///   `KeyError`. As Avalanche, parameters that appear after the first experience get no
///   score (the merge keeps the keys of `S`) and hence no penalty, a parameter that grew is
///   zero-padded (`ParamData.expand`) and penalised on its old part.
///
/// ```
/// use burn::tensor::Device;
/// use cl_core::{OptimizerSpec, Strategy};
/// use cl_models::SimpleMlpConfig;
/// use cl_plugins::regularization::{RWalkConfig, RWalkPlugin};
/// let device = Device::default();
/// let model = SimpleMlpConfig::new().init(&device)?;
/// let rwalk = RWalkPlugin::new(RWalkConfig::default().with_ewc_lambda(1.0))?;
/// let strategy = Strategy::builder(model, OptimizerSpec::sgd(0.01), device).plugin(rwalk).build()?;
/// assert!(strategy.plugin::<RWalkPlugin>().is_some());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RWalkPlugin {
    config: RWalkConfig,
    /// θ_c: the parameters at the last score checkpoint.
    checkpoint_params: ParamTensors,
    /// L: `−Σ g·Δθ` since the last checkpoint.
    checkpoint_loss: ParamTensors,
    /// s: the scores of the current experience.
    checkpoint_scores: ParamTensors,
    /// g: the criterion gradient at the start of the iteration.
    iter_grad: ParamTensors,
    /// F: the running Fisher.
    iter_importance: Option<ParamTensors>,
    /// θ_t: the parameters at the start of the iteration.
    iter_params: ParamTensors,
    exp_scores: Option<ParamTensors>,
    exp_params: Option<ParamTensors>,
    exp_importance: Option<ParamTensors>,
    exp_penalties: Option<ParamTensors>,
    folded: PenaltyCache,
    eval_mode: EvalModeSwitch,
}

/// The gradients in `grads` of the parameters of `module` that have one (Avalanche's
/// `copy_params_dict(model, copy_grad=True)` skips `grad is None`), detached, on `device`.
fn present_grads<M: Module>(module: &M, grads: &GradientsParams, device: &Device) -> ParamTensors {
    let mut g: HashMap<ParamId, Tensor<1>> = flat_grads(module, grads).into_iter().collect();
    let mut out = ParamTensors::default();
    for_each_param(module, |name, _, id, dims, _| {
        if let Some(t) = g.remove(&id) {
            out.insert(id, name, dims, t.inner().to_device(device));
        }
    });
    out
}

/// The largest element over all entries (`−∞` when empty).
fn max_of(t: &ParamTensors) -> f64 {
    t.iter().map(|(_, e)| e.values.clone().max().into_scalar::<f64>()).fold(f64::NEG_INFINITY, f64::max)
}

/// `t / max`, or zeros when `max` is not a positive finite number.
fn normalised(t: Tensor<1>, max: f64) -> Tensor<1> {
    if max.is_finite() && max > 0.0 { t.div_scalar(max) } else { t.zeros_like() }
}

impl RWalkPlugin {
    /// An RWalk plugin; an error ([`ClError::InvalidConfig`]) if `config` breaks one of its
    /// rules.
    pub fn new(config: RWalkConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            checkpoint_params: ParamTensors::default(),
            checkpoint_loss: ParamTensors::default(),
            checkpoint_scores: ParamTensors::default(),
            iter_grad: ParamTensors::default(),
            iter_importance: None,
            iter_params: ParamTensors::default(),
            exp_scores: None,
            exp_params: None,
            exp_importance: None,
            exp_penalties: None,
            folded: PenaltyCache::default(),
            eval_mode: EvalModeSwitch::default(),
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &RWalkConfig {
        &self.config
    }

    /// The running Fisher F (after the first training iteration).
    pub fn running_fisher(&self) -> Option<&ParamTensors> {
        self.iter_importance.as_ref()
    }

    /// The scores s of the current experience (zeros after `after_training_exp`).
    pub fn checkpoint_scores(&self) -> &ParamTensors {
        &self.checkpoint_scores
    }

    /// The loss change L accumulated since the last score checkpoint.
    pub fn checkpoint_loss(&self) -> &ParamTensors {
        &self.checkpoint_loss
    }

    /// The merged scores S (after the first experience).
    pub fn exp_scores(&self) -> Option<&ParamTensors> {
        self.exp_scores.as_ref()
    }

    /// The Fisher F* at the end of the last experience.
    pub fn exp_importance(&self) -> Option<&ParamTensors> {
        self.exp_importance.as_ref()
    }

    /// θ* (after the first experience).
    pub fn saved_params(&self) -> Option<&ParamTensors> {
        self.exp_params.as_ref()
    }

    /// The penalty weights `P = F*/max(F*) + relu(S)/max(S)` (after the first experience).
    pub fn penalty_weights(&self) -> Option<&ParamTensors> {
        self.exp_penalties.as_ref()
    }

    /// The penalty `λ·Σ P·(θ−θ*)²` for `model` while training experience `exp` (`None` on the
    /// first experience), differentiable w.r.t. the model's parameters.
    pub fn penalty<M: Model>(&self, model: &M, exp: u64, device: &Device) -> Option<Tensor<1>> {
        if exp == 0 {
            return None;
        }
        let (weights, params) = (self.exp_penalties.as_ref()?, self.exp_params.as_ref()?);
        weighted_sq_distance(model, weights, params, device).map(|p| p.mul_scalar(self.config.ewc_lambda))
    }

    /// [`penalty`](Self::penalty) folded into one quadratic per parameter
    /// ([`QuadraticPenalty`]), as the plugin applies it (value and closed-form gradient).
    pub fn folded_penalty(&self, exp: u64, device: &Device) -> Option<QuadraticPenalty> {
        if exp == 0 {
            return None;
        }
        let (weights, params) = (self.exp_penalties.as_ref()?, self.exp_params.as_ref()?);
        Some(QuadraticPenalty::fold(self.config.ewc_lambda, &[(weights, params)], device))
    }

    /// `F ← α·g² + (1−α)·F` over the parameters with a gradient (Avalanche's
    /// `_update_importance`: a parameter without one drops out, a new one starts at `g²`).
    fn update_importance(&mut self, grads: &ParamTensors, device: &Device) {
        let alpha = self.config.ewc_alpha;
        let mut new = grads.clone().map(|g| g.powi_scalar(2));
        if let Some(old) = self.iter_importance.take() {
            for id in new.ids() {
                let (Some(o), Some(n)) = (old.get(id), new.get(id)) else { continue };
                let dims = n.dims.clone();
                if let Some(o) = pad_to(o.values.clone(), &o.dims, &dims, device) {
                    new.update(id, |n| n.mul_scalar(alpha) + o.mul_scalar(1.0 - alpha));
                }
            }
        }
        self.iter_importance = Some(new);
    }

    /// `s += L / (½·F·(θ − θ_c)² + eps)` (Avalanche's `_update_score`).
    fn update_score(&mut self, now: &ParamTensors, device: &Device) {
        let Some(fisher) = self.iter_importance.as_ref() else { return };
        for (id, new) in now.iter() {
            let (Some(f), Some(loss), Some(old)) =
                (fisher.get(id), self.checkpoint_loss.get(id), self.checkpoint_params.get(id))
            else {
                continue;
            };
            let (Some(f), Some(old)) = (
                pad_to(f.values.clone(), &f.dims, &new.dims, device),
                pad_to(old.values.clone(), &old.dims, &new.dims, device),
            ) else {
                continue;
            };
            let denom = f.mul_scalar(0.5) * (new.values.clone() - old).powi_scalar(2);
            let inc = loss.values.clone() / denom.add_scalar(RWALK_EPS);
            self.checkpoint_scores.update(id, |s| s + inc);
        }
    }
}

impl<M: Model> Plugin<M> for RWalkPlugin {
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::Loss, StatePart::Model]
    }

    fn before_training(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let store = state.settings().eval_device().clone();
        let model = state.model();
        self.checkpoint_loss = ParamTensors::zeros_like(model, &store, &all_params);
        self.checkpoint_scores = ParamTensors::zeros_like(model, &store, &all_params);
        self.checkpoint_params = ParamTensors::values_of(model, &store, &all_params);
        Ok(())
    }

    fn before_training_iteration(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        // Avalanche's `_update_grad` calls `model.eval()` before the strategy's forward pass.
        self.eval_mode.enter(self.config.mode, state)?;
        let store = state.settings().eval_device().clone();
        let batch = state.current_batch()?;
        let model = eval_mode_autodiff_copy(state.model());
        let loss = state.settings().criterion().loss(model.forward(batch), batch.y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let g = present_grads(&model, &grads, &store);
        self.update_importance(&g, &store);
        self.iter_grad = g;
        self.iter_params = ParamTensors::values_of(state.model(), &store, &all_params);
        Ok(())
    }

    fn before_backward(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let exp = state.clock().train_exp_counter;
        if exp > 0 && (self.exp_penalties.is_none() || self.exp_params.is_none()) {
            return Err(ClError::MissingState("RWalk penalty weights (train the experiences in order)"));
        }
        let mut folded = std::mem::take(&mut self.folded);
        let result = folded.add_to_loss(state, exp, |device| self.folded_penalty(exp, device));
        self.folded = folded;
        result
    }

    fn after_training_iteration(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let store = state.settings().eval_device().clone();
        let model = state.model();
        // ParamData.expand: accumulators follow parameters that grew (or appeared).
        self.checkpoint_loss.expand_like(model, &store, &all_params);
        self.checkpoint_scores.expand_like(model, &store, &all_params);
        self.checkpoint_params.expand_like(model, &store, &all_params);
        let now = ParamTensors::values_of(model, &store, &all_params);
        for (id, new) in now.iter() {
            let (Some(g), Some(old)) = (self.iter_grad.get(id), self.iter_params.get(id)) else { continue };
            let (Some(g), Some(old)) = (
                pad_to(g.values.clone(), &g.dims, &new.dims, &store),
                pad_to(old.values.clone(), &old.dims, &new.dims, &store),
            ) else {
                continue;
            };
            let step = g * (new.values.clone() - old);
            self.checkpoint_loss.update(id, |l| l - step);
        }
        if (state.clock().train_iterations + 1).is_multiple_of(self.config.delta_t) {
            self.update_score(&now, &store);
            self.checkpoint_loss = ParamTensors::zeros_like(model, &store, &all_params);
            self.checkpoint_params = now;
        }
        Ok(())
    }

    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        // Avalanche's next `train()` call: `model.train()`.
        self.eval_mode.leave(state)?;
        let store = state.settings().eval_device().clone();
        let model = state.model();
        let fisher = self
            .iter_importance
            .clone()
            .ok_or(ClError::MissingState("RWalk running Fisher (no training iteration)"))?;
        self.exp_params = Some(ParamTensors::values_of(model, &store, &all_params));
        let current =
            std::mem::replace(&mut self.checkpoint_scores, ParamTensors::zeros_like(model, &store, &all_params));
        let scores = match self.exp_scores.take() {
            None => current,
            Some(old) => {
                let mut merged = ParamTensors::default();
                for (id, c) in current.iter() {
                    let Some(o) = old.get(id) else { continue };
                    let Some(o) = pad_to(o.values.clone(), &o.dims, &c.dims, &store) else { continue };
                    merged.insert(id, c.name.clone(), c.dims.clone(), (o + c.values.clone()).mul_scalar(0.5));
                }
                merged
            }
        };
        let (max_score, max_imp) = (max_of(&scores), max_of(&fisher));
        let mut weights = ParamTensors::default();
        for (id, s) in scores.iter() {
            let Some(f) = fisher.get(id) else { continue };
            let Some(s) = pad_to(s.values.clone(), &s.dims, &f.dims, &store) else { continue };
            let w = normalised(f.values.clone(), max_imp) + normalised(s.clamp_min(0.0), max_score);
            weights.insert(id, f.name.clone(), f.dims.clone(), w);
        }
        self.exp_scores = Some(scores);
        self.exp_importance = Some(fisher);
        self.exp_penalties = Some(weights);
        self.folded.invalidate();
        Ok(())
    }

    /// The configuration (checked on load) and every accumulator, exactly: θ_c, L, s, the
    /// running Fisher F, the last iteration's gradient and θ_t, and S, θ*, F* and P.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config)?;
        put_params(out, "checkpoint_params", &self.checkpoint_params)?;
        put_params(out, "checkpoint_loss", &self.checkpoint_loss)?;
        put_params(out, "checkpoint_scores", &self.checkpoint_scores)?;
        put_params(out, "iter_grad", &self.iter_grad)?;
        put_opt_params(out, "iter_importance", self.iter_importance.as_ref())?;
        put_params(out, "iter_params", &self.iter_params)?;
        put_opt_params(out, "exp_scores", self.exp_scores.as_ref())?;
        put_opt_params(out, "exp_params", self.exp_params.as_ref())?;
        put_opt_params(out, "exp_importance", self.exp_importance.as_ref())?;
        put_opt_params(out, "exp_penalties", self.exp_penalties.as_ref())
    }

    fn load_state(&mut self, state: &StateDict, strategy: &StrategyState<M>) -> Result<()> {
        state.check_config("config", &self.config)?;
        let d = strategy.settings().eval_device();
        *self = Self {
            config: self.config.clone(),
            checkpoint_params: params(state, "checkpoint_params", d)?,
            checkpoint_loss: params(state, "checkpoint_loss", d)?,
            checkpoint_scores: params(state, "checkpoint_scores", d)?,
            iter_grad: params(state, "iter_grad", d)?,
            iter_importance: opt_params(state, "iter_importance", d)?,
            iter_params: params(state, "iter_params", d)?,
            exp_scores: opt_params(state, "exp_scores", d)?,
            exp_params: opt_params(state, "exp_params", d)?,
            exp_importance: opt_params(state, "exp_importance", d)?,
            exp_penalties: opt_params(state, "exp_penalties", d)?,
            folded: PenaltyCache::default(),
            eval_mode: EvalModeSwitch::default(),
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cl_core::config::{ConfigFile, assert_rule};

    /// Every accumulator (θ_c, L, s, F, g, θ_t, S, θ*, F*, P) comes back bit for bit; a
    /// checkpoint of another configuration is refused.
    #[test]
    fn checkpoint_restores_every_accumulator_exactly() {
        use crate::persist::test_util::{assert_mismatch, assert_same_params, restore};
        use crate::regularization::test_support::{Tiny, device, sgd, stream};
        use cl_core::Strategy;
        let config = RWalkConfig::default().with_ewc_lambda(1.0).with_delta_t(3);
        let mut s = Strategy::builder(Tiny::new(6), sgd(0.1), device())
            .train_mb_size(2)
            .plugin(RWalkPlugin::new(config.clone()).unwrap())
            .build()
            .unwrap();
        s.train(&stream(2, 7)).unwrap();
        let rw = s.plugin::<RWalkPlugin>().unwrap();
        let mut fresh = RWalkPlugin::new(config.clone()).unwrap();
        let state = restore::<Tiny, _>(rw, &mut fresh, s.state());
        for (a, b) in [
            (&rw.checkpoint_params, &fresh.checkpoint_params),
            (&rw.checkpoint_loss, &fresh.checkpoint_loss),
            (&rw.checkpoint_scores, &fresh.checkpoint_scores),
            (&rw.iter_grad, &fresh.iter_grad),
            (&rw.iter_params, &fresh.iter_params),
        ] {
            assert!(!a.is_empty());
            assert_same_params(a, b);
        }
        for (a, b) in [
            (&rw.iter_importance, &fresh.iter_importance),
            (&rw.exp_scores, &fresh.exp_scores),
            (&rw.exp_params, &fresh.exp_params),
            (&rw.exp_importance, &fresh.exp_importance),
            (&rw.exp_penalties, &fresh.exp_penalties),
        ] {
            assert_same_params(a.as_ref().unwrap(), b.as_ref().unwrap());
        }
        assert_mismatch::<Tiny, _>(&state, &mut RWalkPlugin::new(config.with_delta_t(4)).unwrap(), s.state());
    }

    /// Avalanche's mode: the model trains in evaluation mode from the first gradient pass of
    /// every experience (Avalanche's `model.eval()` before the forward pass), training mode
    /// again after it; the training mode keeps dropout on.
    #[test]
    fn avalanche_mode_trains_in_evaluation_mode() {
        use crate::regularization::test_support::dropout_seen_with;
        for (mode, on) in [(ModeAfterPass::Avalanche, false), (ModeAfterPass::Training, true)] {
            let (seen, after) = dropout_seen_with(RWalkPlugin::new(RWalkConfig::default().with_mode(mode)).unwrap());
            assert_eq!(seen.len(), 6, "{mode:?}");
            assert!(seen.iter().all(|(_, o)| *o == on), "{mode:?}: {seen:?}");
            assert!(after, "{mode:?}: training mode after the experience");
        }
    }

    #[test]
    fn defaults_are_avalanches() {
        assert_eq!(
            RWalkConfig::default(),
            RWalkConfig { ewc_lambda: 0.1, ewc_alpha: 0.9, delta_t: 10, mode: ModeAfterPass::Avalanche }
        );
        assert_eq!(RWalkConfig::from_toml("").unwrap(), RWalkConfig::default());
    }

    #[test]
    fn config_round_trips() {
        let c = RWalkConfig::default()
            .with_ewc_lambda(2.0)
            .with_ewc_alpha(0.5)
            .with_delta_t(3)
            .with_mode(ModeAfterPass::Training);
        assert_eq!(RWalkConfig::from_json(&c.to_json()).unwrap(), c);
        assert_eq!(RWalkConfig::from_toml(&c.to_toml().unwrap()).unwrap(), c);
    }

    #[test]
    fn every_validation_rule() {
        let ok = RWalkConfig::default();
        for (bad, rule) in [
            (ok.clone().with_ewc_lambda(-0.1), "ewc_lambda_finite_non_negative"),
            (ok.clone().with_ewc_lambda(f64::NAN), "ewc_lambda_finite_non_negative"),
            (ok.clone().with_ewc_alpha(-0.1), "ewc_alpha_in_unit_interval"),
            (ok.clone().with_ewc_alpha(1.1), "ewc_alpha_in_unit_interval"),
            (ok.clone().with_delta_t(0), "delta_t_positive"),
        ] {
            assert_rule(bad.validate(), rule);
            assert_rule(RWalkPlugin::new(bad).map(|_| ()), rule);
        }
    }
}
