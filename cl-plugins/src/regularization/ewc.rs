//! [`EwcPlugin`]: Elastic Weight Consolidation (Avalanche's `EWCPlugin`).

use std::collections::BTreeMap;

use burn::module::ParamId;
use cl_core::{ClError, Model, Plugin, Result, StatePart, StrategyState};

use super::params::{ParamTensors, all_params, pad_to, weighted_sq_distance};
use super::{GradReduce, check_non_negative, eval_mode_autodiff_copy, importance_pass};

/// How EWC keeps the importances of past experiences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EwcMode {
    /// One penalty term per past experience, each with its own Fisher and θ*.
    #[default]
    Separate,
    /// One running Fisher `F ← decay_factor·F + F_new` and θ* = the parameters after the
    /// latest experience.
    Online,
}

/// The hyper-parameters of EWC (Avalanche's `EWCPlugin(ewc_lambda, mode, decay_factor,
/// keep_importance_data)`).
///
/// ```
/// use cl_plugins::regularization::{EwcConfig, EwcMode, EwcPlugin};
/// let separate = EwcPlugin::new(EwcConfig::new(0.4)).unwrap();
/// let online = EwcPlugin::new(EwcConfig::online(0.4, 0.9)).unwrap();
/// assert!(EwcPlugin::new(EwcConfig { mode: EwcMode::Online, ..EwcConfig::new(1.0) }).is_err());
/// assert!(EwcPlugin::new(EwcConfig::new(-1.0)).is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct EwcConfig {
    /// Weight λ of the penalty `λ/2·Σ F·(θ−θ*)²` (≥ 0).
    pub ewc_lambda: f64,
    /// Separate or online.
    pub mode: EwcMode,
    /// Decay of the running Fisher: required in online mode, not allowed in separate mode.
    pub decay_factor: Option<f64>,
    /// Keep the Fisher and θ* of every experience (always true in separate mode).
    pub keep_importance_data: bool,
}

impl EwcConfig {
    /// Separate mode with weight `ewc_lambda`.
    pub fn new(ewc_lambda: f64) -> Self {
        Self { ewc_lambda, mode: EwcMode::Separate, decay_factor: None, keep_importance_data: false }
    }

    /// Online mode with weight `ewc_lambda` and decay `decay_factor`.
    pub fn online(ewc_lambda: f64, decay_factor: f64) -> Self {
        Self { ewc_lambda, mode: EwcMode::Online, decay_factor: Some(decay_factor), keep_importance_data: false }
    }

    /// Sets `keep_importance_data`.
    pub fn with_keep_importance_data(mut self, keep: bool) -> Self {
        self.keep_importance_data = keep;
        self
    }
}

/// Elastic Weight Consolidation (Kirkpatrick et al. 2017), as Avalanche's `EWCPlugin`.
///
/// After each experience (`after_training_exp`) the diagonal Fisher is estimated on the
/// experience's training data — batches of `train_mb_size`, in order, the model in evaluation
/// mode: the squared gradient of the loss of each mini-batch, averaged over the mini-batches —
/// and the parameters are snapshotted as θ*. From the second experience on, `before_backward`
/// adds `λ/2·Σ_k Σ_i F_k,i·(θ_i − θ*_k,i)²` to the loss: one term per past experience `k` in
/// [`EwcMode::Separate`], one term with the running Fisher and the latest θ* in
/// [`EwcMode::Online`] (`F ← decay_factor·F + F_new`).
///
/// Parameters that appear later (new heads) are not penalised; a parameter that grew is
/// penalised on its old part.
///
/// ```ignore
/// let ewc = EwcPlugin::new(EwcConfig::online(100.0, 0.9))?;
/// let strategy = Naive::builder(model, optimizer, device).plugin(ewc).build()?;
/// ```
#[derive(Debug, Clone)]
pub struct EwcPlugin {
    config: EwcConfig,
    saved_params: BTreeMap<u64, ParamTensors>,
    importances: BTreeMap<u64, ParamTensors>,
}

impl EwcPlugin {
    /// Checks the hyper-parameters: λ ≥ 0; online mode needs a decay factor ≥ 0, separate
    /// mode takes none.
    pub fn new(config: EwcConfig) -> Result<Self> {
        let mut config = config;
        check_non_negative("ewc_lambda", config.ewc_lambda)?;
        match (config.mode, config.decay_factor) {
            (EwcMode::Online, None) => {
                return Err(ClError::config("decay_factor", "online mode needs a decay_factor"));
            }
            (EwcMode::Separate, Some(_)) => {
                return Err(ClError::config("decay_factor", "only the online mode uses a decay_factor"));
            }
            (EwcMode::Online, Some(d)) => check_non_negative("decay_factor", d)?,
            (EwcMode::Separate, None) => config.keep_importance_data = true,
        }
        Ok(Self { config, saved_params: BTreeMap::new(), importances: BTreeMap::new() })
    }

    /// The hyper-parameters (in separate mode `keep_importance_data` is true).
    pub fn config(&self) -> &EwcConfig {
        &self.config
    }

    /// The Fisher stored for experience `exp` (in online mode: the running Fisher after it).
    pub fn importance(&self, exp: u64) -> Option<&ParamTensors> {
        self.importances.get(&exp)
    }

    /// θ* stored for experience `exp`.
    pub fn saved_params(&self, exp: u64) -> Option<&ParamTensors> {
        self.saved_params.get(&exp)
    }

    /// Sets the Fisher and θ* of experience `exp` (e.g. to restore a checkpoint or in tests);
    /// the penalty of the experiences after `exp` uses them.
    pub fn set_importance_data(&mut self, exp: u64, importance: ParamTensors, saved_params: ParamTensors) {
        self.importances.insert(exp, importance);
        self.saved_params.insert(exp, saved_params);
    }

    /// The penalty `λ/2·Σ F·(θ−θ*)²` for `model` while training experience `exp_counter`
    /// (`None` on the first experience), differentiable w.r.t. the model's parameters.
    pub fn penalty<M: Model>(&self, model: &M, exp_counter: u64, device: &burn::tensor::Device) -> Option<burn::tensor::Tensor<1>> {
        if exp_counter == 0 {
            return None;
        }
        let exps: Vec<u64> = match self.config.mode {
            EwcMode::Separate => (0..exp_counter).collect(),
            EwcMode::Online => vec![exp_counter - 1],
        };
        let mut total: Option<burn::tensor::Tensor<1>> = None;
        for e in exps {
            let (Some(imp), Some(theta)) = (self.importances.get(&e), self.saved_params.get(&e)) else {
                continue;
            };
            if let Some(term) = weighted_sq_distance(model, imp, theta, device) {
                total = Some(match total.take() {
                    Some(t) => t + term,
                    None => term,
                });
            }
        }
        total.map(|t| t.mul_scalar(self.config.ewc_lambda / 2.0))
    }

    fn update_importances(&mut self, new: ParamTensors, t: u64, device: &burn::tensor::Device) {
        if self.config.mode == EwcMode::Separate || t == 0 {
            self.importances.insert(t, new);
            return;
        }
        let decay = self.config.decay_factor.unwrap_or(0.0);
        let mut merged = new;
        if let Some(old) = self.importances.get(&(t - 1)) {
            let ids: Vec<ParamId> = merged.ids();
            for id in ids {
                let (Some(o), Some(n)) = (old.get(id), merged.get(id)) else { continue };
                let new_dims = n.dims.clone();
                if let Some(o) = pad_to(o.values.clone(), &o.dims, &new_dims, device) {
                    merged.update(id, |n| o.mul_scalar(decay) + n);
                }
            }
        }
        self.importances.insert(t, merged);
        if !self.config.keep_importance_data {
            self.importances.remove(&(t - 1));
        }
    }
}

impl<M: Model> Plugin<M> for EwcPlugin {
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::Loss]
    }

    fn before_backward(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let exp = state.clock.train_exp_counter;
        if let Some(p) = self.penalty(state.model(), exp, &state.device) {
            state.add_loss(p);
        }
        Ok(())
    }

    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let t = state.clock.train_exp_counter;
        let model = eval_mode_autodiff_copy(state.model());
        let fisher = importance_pass(state, &model, GradReduce::Square, |m, batch, s| {
            s.criterion.loss(m.forward(batch), batch.y.clone())
        })?;
        let store = state.eval_device.clone();
        self.update_importances(fisher, t, &store);
        self.saved_params.insert(t, ParamTensors::values_of(state.model(), &store, &all_params));
        if t > 0 && !self.config.keep_importance_data {
            self.saved_params.remove(&(t - 1));
        }
        Ok(())
    }
}
