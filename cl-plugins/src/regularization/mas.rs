//! [`MasPlugin`]: Memory Aware Synapses (Avalanche's `MASPlugin`).

use burn::tensor::{Device, Tensor};
use cl_core::{ClError, Model, Plugin, Result, StatePart, StrategyState};

use super::params::{ParamTensors, all_params, pad_to, weighted_sq_distance};
use super::{GradReduce, check_non_negative, importance_pass};

/// The hyper-parameters of MAS (Avalanche's `MASPlugin(lambda_reg=1.0, alpha=0.5)`).
///
/// ```
/// use cl_plugins::regularization::{MasConfig, MasPlugin};
/// let mas = MasPlugin::new(MasConfig::default()).unwrap(); // λ = 1, α = 0.5
/// assert!(MasPlugin::new(MasConfig::new(-1.0, 0.5)).is_err());
/// assert!(MasPlugin::new(MasConfig::new(1.0, 1.5)).is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MasConfig {
    /// Weight λ of the penalty `λ·Σ Ω·(θ−θ*)²` (≥ 0).
    pub lambda_reg: f64,
    /// Weight of the old importance in `Ω ← α·Ω + (1−α)·Ω_new` (in [0, 1]).
    pub alpha: f64,
}

impl Default for MasConfig {
    fn default() -> Self {
        Self { lambda_reg: 1.0, alpha: 0.5 }
    }
}

impl MasConfig {
    /// `lambda_reg` and `alpha`.
    pub fn new(lambda_reg: f64, alpha: f64) -> Self {
        Self { lambda_reg, alpha }
    }
}

/// Memory Aware Synapses (Aljundi et al. 2018), as Avalanche's `MASPlugin` (after FACIL).
///
/// After each experience the importance of each parameter is the absolute gradient of the
/// squared L2 norm of the model's output, averaged over the mini-batch (`mean_b ‖f(x_b)‖²`),
/// then averaged over the mini-batches of the experience's training data (in order,
/// `train_mb_size`, the model in training mode as Avalanche); it is merged as
/// `Ω ← α·Ω + (1−α)·Ω_new` (the first experience sets Ω), and θ* ← θ. From the second
/// experience on, `before_backward` adds `λ·Σ Ω·(θ−θ*)²` to the loss.
///
/// ```ignore
/// let mas = MasPlugin::new(MasConfig::new(1.0, 0.5))?;
/// let strategy = Naive::builder(model, optimizer, device).plugin(mas).build()?;
/// ```
#[derive(Debug, Clone)]
pub struct MasPlugin {
    config: MasConfig,
    params: Option<ParamTensors>,
    importance: Option<ParamTensors>,
}

impl MasPlugin {
    /// Checks the hyper-parameters: λ ≥ 0, α in [0, 1].
    pub fn new(config: MasConfig) -> Result<Self> {
        check_non_negative("lambda_reg", config.lambda_reg)?;
        if !(0.0..=1.0).contains(&config.alpha) {
            return Err(ClError::config("alpha", format!("must be in [0, 1], got {}", config.alpha)));
        }
        Ok(Self { config, params: None, importance: None })
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
        importance_pass(state, &model, GradReduce::Abs, |m, batch, _| {
            m.forward(batch).powi_scalar(2).sum_dim(1).mean()
        })
    }

    /// The penalty `λ·Σ Ω·(θ−θ*)²` for `model` while training experience `exp`.
    pub fn penalty<M: Model>(&self, model: &M, exp: u64, device: &Device) -> Option<Tensor<1>> {
        if exp == 0 {
            return None;
        }
        let (imp, params) = (self.importance.as_ref()?, self.params.as_ref()?);
        weighted_sq_distance(model, imp, params, device).map(|p| p.mul_scalar(self.config.lambda_reg))
    }
}

impl<M: Model> Plugin<M> for MasPlugin {
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::Loss]
    }

    fn before_backward(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let exp = state.clock.train_exp_counter;
        if exp > 0 && (self.importance.is_none() || self.params.is_none()) {
            return Err(ClError::MissingState("MAS importance (train the experiences in order)"));
        }
        if let Some(p) = self.penalty(state.model(), exp, &state.device) {
            state.add_loss(p);
        }
        Ok(())
    }

    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let store = state.eval_device.clone();
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
        Ok(())
    }
}
