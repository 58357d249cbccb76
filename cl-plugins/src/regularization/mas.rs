//! [`MasPlugin`]: Memory Aware Synapses (Avalanche's `MASPlugin`).

use burn::tensor::{Device, Tensor};
use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, finite_non_negative, rule};
use cl_core::{ClError, Model, Plugin, Result, StatePart, StrategyState};
use serde::{Deserialize, Serialize};

use super::params::{ParamTensors, all_params, opt_params, pad_to, put_opt_params, weighted_sq_distance};
use super::quadratic::{PenaltyCache, QuadraticPenalty};
use super::{GradReduce, importance_pass};

/// The hyper-parameters of MAS, with Avalanche's defaults: `MASPlugin(lambda_reg=1.0,
/// alpha=0.5)`.
///
/// ```
/// use cl_plugins::regularization::{MasConfig, MasPlugin};
/// let mas = MasPlugin::new(MasConfig::default())?; // λ = 1, α = 0.5
/// assert!(MasPlugin::new(MasConfig::default().with_lambda_reg(-1.0)).is_err());
/// assert!(MasPlugin::new(MasConfig::default().with_alpha(1.5)).is_err());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "MASPlugin")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MasConfig {
    /// Weight λ of the penalty `λ·Σ Ω·(θ−θ*)²` (a finite number `>= 0`; default 1).
    pub lambda_reg: f64,
    /// Weight of the old importance in `Ω ← α·Ω + (1−α)·Ω_new` (in [0, 1]; default 0.5).
    pub alpha: f64,
}

impl Default for MasConfig {
    /// Avalanche's defaults: `lambda_reg = 1.0`, `alpha = 0.5`.
    fn default() -> Self {
        Self { lambda_reg: 1.0, alpha: 0.5 }
    }
}

impl MasConfig {
    /// Sets `lambda_reg`.
    pub fn with_lambda_reg(mut self, lambda_reg: f64) -> Self {
        self.lambda_reg = lambda_reg;
        self
    }

    /// Sets `alpha`.
    pub fn with_alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }
}

impl Validate for MasConfig {
    fn validate(&self) -> Result<()> {
        const C: &str = "MasConfig";
        rule(C, "lambda_reg_finite_non_negative", finite_non_negative(self.lambda_reg), || {
            format!("lambda_reg = {} must be a finite number >= 0", self.lambda_reg)
        })?;
        rule(C, "alpha_in_unit_interval", (0.0..=1.0).contains(&self.alpha), || {
            format!("alpha = {} must be in [0, 1]", self.alpha)
        })
    }
}

/// Memory Aware Synapses (Aljundi et al. 2018): Avalanche's `MASPlugin`
/// (`avalanche/training/plugins/mas.py`, after FACIL), the plugin of the `Mas` strategy.
///
/// After each experience the importance of each parameter is the absolute gradient of the
/// squared L2 norm of the model's output, averaged over the mini-batch (`mean_b ‖f(x_b)‖²`),
/// then averaged over the mini-batches of the experience's training data (in order,
/// `train_mb_size`, the model in training mode as Avalanche); it is merged as
/// `Ω ← α·Ω + (1−α)·Ω_new` (the first experience sets Ω; a parameter new since then starts at
/// `Ω_new`), and θ* ← θ. From the second experience on, `before_backward` adds
/// `λ·Σ Ω·(θ−θ*)²` to the loss, with its closed-form gradient `2λ·Ω·(θ−θ*)` added directly to
/// the gradients ([`QuadraticPenalty`], no autodiff graph).
///
/// # Differences from Avalanche
///
/// None in the importance, the merge or the penalty (the same `λ·Σ Ω·(θ−θ*)²`, no ½). A
/// parameter without a gradient in the importance pass gets zero importance, as Avalanche's
/// zero-initialised dictionary; Avalanche's `verbose` progress bar is not reproduced.
///
/// ```
/// use burn::tensor::Device;
/// use cl_core::{OptimizerSpec, Strategy};
/// use cl_models::SimpleMlpConfig;
/// use cl_plugins::regularization::{MasConfig, MasPlugin};
/// let device = Device::default();
/// let model = SimpleMlpConfig::new().init(&device)?;
/// let mas = MasPlugin::new(MasConfig::default())?;
/// let strategy = Strategy::builder(model, OptimizerSpec::sgd(0.01), device).plugin(mas).build()?;
/// assert!(strategy.plugin::<MasPlugin>().is_some());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "MASPlugin")]
#[derive(Debug, Clone)]
pub struct MasPlugin {
    config: MasConfig,
    params: Option<ParamTensors>,
    importance: Option<ParamTensors>,
    folded: PenaltyCache,
}

impl MasPlugin {
    /// A MAS plugin; an error ([`ClError::InvalidConfig`]) if `config` breaks one of its rules.
    pub fn new(config: MasConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config, params: None, importance: None, folded: PenaltyCache::default() })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &MasConfig {
        &self.config
    }

    /// The importance Ω (after the first experience).
    pub fn importance(&self) -> Option<&ParamTensors> {
        self.importance.as_ref()
    }

    /// θ* (after the first experience).
    pub fn saved_params(&self) -> Option<&ParamTensors> {
        self.params.as_ref()
    }

    /// The importance of `model` on the current experience's training data (one pass, no
    /// merge): mean over mini-batches of `|∂ mean_b ‖f(x_b)‖² / ∂θ|`.
    pub fn compute_importance<M: Model>(&self, state: &StrategyState<M>) -> Result<ParamTensors> {
        let model = state.model().clone();
        importance_pass(state, &model, GradReduce::Abs, |m, batch, _| m.forward(batch).powi_scalar(2).sum_dim(1).mean())
    }

    /// The penalty `λ·Σ Ω·(θ−θ*)²` for `model` while training experience `exp`.
    pub fn penalty<M: Model>(&self, model: &M, exp: u64, device: &Device) -> Option<Tensor<1>> {
        if exp == 0 {
            return None;
        }
        let (imp, params) = (self.importance.as_ref()?, self.params.as_ref()?);
        weighted_sq_distance(model, imp, params, device).map(|p| p.mul_scalar(self.config.lambda_reg))
    }

    /// [`penalty`](Self::penalty) folded into one quadratic per parameter
    /// ([`QuadraticPenalty`]), as the plugin applies it (value and closed-form gradient).
    pub fn folded_penalty(&self, exp: u64, device: &Device) -> Option<QuadraticPenalty> {
        if exp == 0 {
            return None;
        }
        let (imp, params) = (self.importance.as_ref()?, self.params.as_ref()?);
        Some(QuadraticPenalty::fold(self.config.lambda_reg, &[(imp, params)], device))
    }
}

impl<M: Model> Plugin<M> for MasPlugin {
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::Loss]
    }

    fn before_backward(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let exp = state.clock().train_exp_counter;
        if exp > 0 && (self.importance.is_none() || self.params.is_none()) {
            return Err(ClError::MissingState("MAS importance (train the experiences in order)"));
        }
        let mut folded = std::mem::take(&mut self.folded);
        let result = folded.add_to_loss(state, exp, |device| self.folded_penalty(exp, device));
        self.folded = folded;
        result
    }

    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let store = state.settings().eval_device().clone();
        self.params = Some(ParamTensors::values_of(state.model(), &store, &all_params));
        let mut curr = self.compute_importance(state)?;
        let alpha = self.config.alpha;
        if let Some(old) = self.importance.take() {
            for id in curr.ids() {
                let (Some(o), Some(n)) = (old.get(id), curr.get(id)) else { continue };
                let dims = n.dims.clone();
                if let Some(o) = pad_to(o.values.clone(), &o.dims, &dims, &store) {
                    curr.update(id, |n| o.mul_scalar(alpha) + n.mul_scalar(1.0 - alpha));
                }
            }
        }
        self.importance = Some(curr);
        self.folded.invalidate();
        Ok(())
    }

    /// The configuration (checked on load), Ω and θ*, exactly.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config)?;
        put_opt_params(out, "importance", self.importance.as_ref())?;
        put_opt_params(out, "params", self.params.as_ref())
    }

    fn load_state(&mut self, state: &StateDict, strategy: &StrategyState<M>) -> Result<()> {
        state.check_config("config", &self.config)?;
        let device = strategy.settings().eval_device();
        self.importance = opt_params(state, "importance", device)?;
        self.params = opt_params(state, "params", device)?;
        self.folded.invalidate();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cl_core::config::{ConfigFile, assert_rule};

    /// Ω and θ* come back bit for bit; a checkpoint of another configuration is refused.
    #[test]
    fn checkpoint_restores_importance_and_anchor_exactly() {
        use crate::persist::test_util::{assert_mismatch, assert_same_params, restore};
        use crate::regularization::test_support::{Tiny, device, sgd, stream};
        use cl_core::Strategy;
        let config = MasConfig::default().with_alpha(0.25);
        let mut s = Strategy::builder(Tiny::new(6), sgd(0.1), device())
            .train_mb_size(3)
            .plugin(MasPlugin::new(config.clone()).unwrap())
            .build()
            .unwrap();
        s.train(&stream(2, 6)).unwrap();
        let mas = s.plugin::<MasPlugin>().unwrap();
        let mut fresh = MasPlugin::new(config.clone()).unwrap();
        let state = restore::<Tiny, _>(mas, &mut fresh, s.state());
        assert_same_params(mas.importance().unwrap(), fresh.importance().unwrap());
        assert_same_params(mas.saved_params().unwrap(), fresh.saved_params().unwrap());
        // Before any experience: nothing saved, nothing restored.
        let mut empty = MasPlugin::new(config.clone()).unwrap();
        restore::<Tiny, _>(&MasPlugin::new(config.clone()).unwrap(), &mut empty, s.state());
        assert!(empty.importance().is_none() && empty.saved_params().is_none());
        assert_mismatch::<Tiny, _>(&state, &mut MasPlugin::new(config.with_lambda_reg(2.0)).unwrap(), s.state());
    }

    #[test]
    fn defaults_are_avalanches() {
        assert_eq!(MasConfig::default(), MasConfig { lambda_reg: 1.0, alpha: 0.5 });
        assert_eq!(MasConfig::from_json("{}").unwrap(), MasConfig::default());
    }

    #[test]
    fn config_round_trips() {
        let c = MasConfig::default().with_lambda_reg(3.5).with_alpha(0.25);
        assert_eq!(MasConfig::from_json(&c.to_json()).unwrap(), c);
        assert_eq!(MasConfig::from_toml(&c.to_toml().unwrap()).unwrap(), c);
        assert!(MasConfig::from_toml("lambda = 1.0").is_err(), "unknown field");
    }

    #[test]
    fn every_validation_rule() {
        let ok = MasConfig::default();
        for (bad, rule) in [
            (ok.clone().with_lambda_reg(-1.0), "lambda_reg_finite_non_negative"),
            (ok.clone().with_lambda_reg(f64::INFINITY), "lambda_reg_finite_non_negative"),
            (ok.clone().with_alpha(1.5), "alpha_in_unit_interval"),
            (ok.clone().with_alpha(f64::NAN), "alpha_in_unit_interval"),
        ] {
            assert_rule(bad.validate(), rule);
            assert_rule(MasPlugin::new(bad).map(|_| ()), rule);
        }
    }
}
