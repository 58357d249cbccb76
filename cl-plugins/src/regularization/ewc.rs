//! [`EwcPlugin`]: Elastic Weight Consolidation (Avalanche's `EWCPlugin`).

use std::collections::BTreeMap;

use burn::module::ParamId;
use burn::tensor::{Device, Tensor};
use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, finite_non_negative, rule};
use cl_core::{Model, Plugin, Result, StatePart, StrategyState};
use serde::{Deserialize, Serialize};

use super::params::{ParamTensors, all_params, pad_to, params, put_params, weighted_sq_distance};
use super::quadratic::{PenaltyCache, QuadraticPenalty};
use super::{GradReduce, eval_mode_autodiff_copy, importance_pass};

/// How EWC keeps the importances of past experiences (Avalanche's `mode` and `decay_factor`,
/// which only the online mode takes).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EwcMode {
    /// `mode="separate"` (Avalanche's default): one penalty term per past experience, each
    /// with its own Fisher and θ*.
    #[default]
    Separate,
    /// `mode="online"`: one running Fisher `F ← decay_factor·F + F_new` and θ* = the
    /// parameters after the latest experience.
    Online {
        /// The decay of the running Fisher (a finite number `>= 0`).
        decay_factor: f64,
    },
}

/// The hyper-parameters of EWC: Avalanche's `EWCPlugin(ewc_lambda, mode="separate",
/// decay_factor=None, keep_importance_data=False)`, with `mode` and `decay_factor` one enum
/// ([`EwcMode`]) since only the online mode has a decay.
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_plugins::regularization::{EwcConfig, EwcMode, EwcPlugin};
/// let separate = EwcPlugin::new(EwcConfig::new(0.4))?; // EWCPlugin(ewc_lambda=0.4)
/// let online = EwcConfig::new(0.4).with_mode(EwcMode::Online { decay_factor: 0.9 });
/// assert_eq!(EwcConfig::from_toml("ewc_lambda = 0.4\n[mode.online]\ndecay_factor = 0.9")?, online);
/// assert!(EwcPlugin::new(EwcConfig::new(-1.0)).is_err());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "EWCPlugin")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EwcConfig {
    /// Weight λ of the penalty `λ·Σ F·(θ−θ*)²` (a finite number `>= 0`; required, as in
    /// Avalanche).
    pub ewc_lambda: f64,
    /// Separate (default) or online with a decay factor.
    #[serde(default)]
    pub mode: EwcMode,
    /// Keep the Fisher and θ* of every experience in online mode too (default `false`); the
    /// separate mode always keeps them, as Avalanche.
    #[serde(default)]
    pub keep_importance_data: bool,
}

impl EwcConfig {
    /// Separate mode with weight `ewc_lambda`, as `EWCPlugin(ewc_lambda)`.
    pub fn new(ewc_lambda: f64) -> Self {
        Self { ewc_lambda, mode: EwcMode::Separate, keep_importance_data: false }
    }

    /// Sets `ewc_lambda`.
    pub fn with_ewc_lambda(mut self, ewc_lambda: f64) -> Self {
        self.ewc_lambda = ewc_lambda;
        self
    }

    /// Sets the mode (and, for the online mode, its decay factor).
    pub fn with_mode(mut self, mode: EwcMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets `keep_importance_data`.
    pub fn with_keep_importance_data(mut self, keep: bool) -> Self {
        self.keep_importance_data = keep;
        self
    }
}

impl Validate for EwcConfig {
    fn validate(&self) -> Result<()> {
        const C: &str = "EwcConfig";
        rule(C, "ewc_lambda_finite_non_negative", finite_non_negative(self.ewc_lambda), || {
            format!("ewc_lambda = {} must be a finite number >= 0", self.ewc_lambda)
        })?;
        if let EwcMode::Online { decay_factor } = self.mode {
            rule(C, "decay_factor_finite_non_negative", finite_non_negative(decay_factor), || {
                format!("the online mode's decay_factor = {decay_factor} must be a finite number >= 0")
            })?;
        }
        Ok(())
    }
}

/// Elastic Weight Consolidation (Kirkpatrick et al. 2017): Avalanche's `EWCPlugin`
/// (`avalanche/training/plugins/ewc.py`), the plugin of the `Ewc` strategy.
///
/// After each experience (`after_training_exp`) the diagonal Fisher is estimated on the
/// experience's training data — batches of `train_mb_size`, in order, the model in evaluation
/// mode: the squared gradient of the criterion's (batch-mean) loss of each mini-batch, averaged
/// over the mini-batches (Avalanche's `compute_importances`) — and the parameters are
/// snapshotted as θ*. From the second experience on, `before_backward` adds
/// `λ·Σ_k Σ_i F_k,i·(θ_i − θ*_k,i)²` to the loss: one term per past experience `k` in
/// [`EwcMode::Separate`], one term with the running Fisher and the latest θ* in
/// [`EwcMode::Online`] (`F ← decay_factor·F + F_new`).
///
/// The terms are folded once per experience into one quadratic per parameter
/// ([`QuadraticPenalty`]: `Σ_k F_k·(θ − θ*_k)² = A·(θ − m)² + const`), and each step adds the
/// penalty's value to the loss and its gradient `2λ·A·(θ − m)` directly to the gradients
/// ([`StrategyState::add_loss_with_gradient`]), instead of back-propagating through
/// `k` terms: a few passes over the parameters per step, whatever the number of experiences.
/// [`penalty`](Self::penalty) builds the same penalty through autodiff.
///
/// Parameters that appear later (new heads) are not penalised; a parameter that grew is
/// penalised on its old part (Avalanche's `ParamData.expand`).
///
/// # Differences from Avalanche
///
/// None in the penalty, the Fisher or the modes: the penalty is Avalanche's `λ·Σ F·(θ−θ*)²`
/// (no ½; `EwcConfig::new(0.4)` is `EWCPlugin(ewc_lambda=0.4)`). Before this crate followed
/// Avalanche it used `λ/2·Σ F·(θ−θ*)²`: a λ tuned for that convention is halved here.
/// Avalanche's asserts on `mode`/`decay_factor` are the [`EwcMode`] enum. A parameter
/// without a gradient in the Fisher pass gets a zero Fisher, as Avalanche's zero-initialised
/// importances.
///
/// ```
/// use burn::tensor::Device;
/// use cl_core::{OptimizerSpec, Strategy};
/// use cl_models::SimpleMlpConfig;
/// use cl_plugins::regularization::{EwcConfig, EwcMode, EwcPlugin};
/// let device = Device::default();
/// let model = SimpleMlpConfig::new().init(&device)?;
/// let ewc = EwcPlugin::new(EwcConfig::new(0.4).with_mode(EwcMode::Online { decay_factor: 0.9 }))?;
/// let strategy = Strategy::builder(model, OptimizerSpec::sgd(0.01), device).plugin(ewc).build()?;
/// assert!(strategy.plugin::<EwcPlugin>().is_some());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "EWCPlugin")]
#[derive(Debug, Clone)]
pub struct EwcPlugin {
    config: EwcConfig,
    saved_params: BTreeMap<u64, ParamTensors>,
    importances: BTreeMap<u64, ParamTensors>,
    folded: PenaltyCache,
}

impl EwcPlugin {
    /// An EWC plugin; an error ([`ClError::InvalidConfig`](cl_core::ClError::InvalidConfig))
    /// if `config` breaks one of its rules ([`EwcConfig::validate`](Validate::validate)).
    pub fn new(config: EwcConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            saved_params: BTreeMap::new(),
            importances: BTreeMap::new(),
            folded: PenaltyCache::default(),
        })
    }

    /// The hyper-parameters, as given.
    pub fn config(&self) -> &EwcConfig {
        &self.config
    }

    /// Whether the Fisher and θ* of every experience are kept: always in separate mode (as
    /// Avalanche), in online mode with `keep_importance_data`.
    pub fn keeps_importance_data(&self) -> bool {
        self.config.mode == EwcMode::Separate || self.config.keep_importance_data
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
        self.folded.invalidate();
    }

    /// The experiences whose Fisher and θ* enter the penalty while training experience
    /// `exp_counter`: all past ones in separate mode, the latest in online mode.
    fn penalised_experiences(&self, exp_counter: u64) -> Vec<u64> {
        match self.config.mode {
            _ if exp_counter == 0 => Vec::new(),
            EwcMode::Separate => (0..exp_counter).collect(),
            EwcMode::Online { .. } => vec![exp_counter - 1],
        }
    }

    /// The penalty of [`penalty`](Self::penalty) folded into one quadratic per parameter
    /// ([`QuadraticPenalty`]), as the plugin applies it: `None` on the first experience.
    pub fn folded_penalty(&self, exp_counter: u64, device: &Device) -> Option<QuadraticPenalty> {
        let terms: Vec<(&ParamTensors, &ParamTensors)> = self
            .penalised_experiences(exp_counter)
            .into_iter()
            .filter_map(|e| Some((self.importances.get(&e)?, self.saved_params.get(&e)?)))
            .collect();
        (!terms.is_empty()).then(|| QuadraticPenalty::fold(self.config.ewc_lambda, &terms, device))
    }

    /// The penalty `λ·Σ F·(θ−θ*)²` for `model` while training experience `exp_counter`
    /// (`None` on the first experience), differentiable w.r.t. the model's parameters; its
    /// gradient is `2λ·F·(θ−θ*)`.
    pub fn penalty<M: Model>(&self, model: &M, exp_counter: u64, device: &Device) -> Option<Tensor<1>> {
        let mut total: Option<Tensor<1>> = None;
        for e in self.penalised_experiences(exp_counter) {
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
        total.map(|t| t.mul_scalar(self.config.ewc_lambda))
    }

    fn update_importances(&mut self, new: ParamTensors, t: u64, device: &Device) {
        let decay = match self.config.mode {
            EwcMode::Online { decay_factor } if t > 0 => decay_factor,
            _ => {
                self.importances.insert(t, new);
                return;
            }
        };
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
        if !self.keeps_importance_data() {
            self.importances.remove(&(t - 1));
        }
    }
}

impl<M: Model> Plugin<M> for EwcPlugin {
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::Loss]
    }

    fn before_backward(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let exp = state.clock().train_exp_counter;
        let mut folded = std::mem::take(&mut self.folded);
        let result = folded.add_to_loss(state, exp, |device| self.folded_penalty(exp, device));
        self.folded = folded;
        result
    }

    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let t = state.clock().train_exp_counter;
        let model = eval_mode_autodiff_copy(state.model());
        let fisher = importance_pass(state, &model, GradReduce::Square, |m, batch, s| {
            s.settings().criterion().loss(m.forward(batch), batch.y.clone())
        })?;
        let store = state.settings().eval_device().clone();
        self.update_importances(fisher, t, &store);
        self.folded.invalidate();
        self.saved_params.insert(t, ParamTensors::values_of(state.model(), &store, &all_params));
        if t > 0 && !self.keeps_importance_data() {
            self.saved_params.remove(&(t - 1));
        }
        Ok(())
    }

    /// The configuration (checked on load), and the Fisher and θ* of every experience kept
    /// (separate mode: all; online mode: the running Fisher and the latest θ*), exactly.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config)?;
        for (key, map) in [("importances", &self.importances), ("saved_params", &self.saved_params)] {
            out.put(&format!("{key}/experiences"), &map.keys().copied().collect::<Vec<u64>>())?;
            for (exp, t) in map {
                put_params(out, &format!("{key}/{exp}"), t)?;
            }
        }
        Ok(())
    }

    fn load_state(&mut self, state: &StateDict, strategy: &StrategyState<M>) -> Result<()> {
        state.check_config("config", &self.config)?;
        let device = strategy.settings().eval_device();
        let read = |key: &str| -> Result<BTreeMap<u64, ParamTensors>> {
            let exps: Vec<u64> = state.get(&format!("{key}/experiences"))?;
            exps.into_iter().map(|e| Ok((e, params(state, &format!("{key}/{e}"), device)?))).collect()
        };
        self.importances = read("importances")?;
        self.saved_params = read("saved_params")?;
        self.folded.invalidate();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use burn::module::Module;
    use burn::optim::GradientsParams;
    use cl_core::config::{ConfigFile, assert_rule};

    use super::*;
    use crate::regularization::flat_grads;
    use crate::regularization::test_support::{Tiny, device};

    /// Separate and online: every Fisher and θ* kept comes back bit for bit (so the penalty
    /// does too); a checkpoint of another configuration is refused.
    #[test]
    fn checkpoint_restores_fishers_and_anchors_exactly() {
        use crate::persist::test_util::{assert_mismatch, assert_same_params, restore};
        use crate::regularization::test_support::{sgd, stream};
        use cl_core::Strategy;
        for (config, kept) in
            [(EwcConfig::new(0.5), 3), (EwcConfig::new(0.5).with_mode(EwcMode::Online { decay_factor: 0.9 }), 1)]
        {
            let mut s = Strategy::builder(Tiny::new(6), sgd(0.1), device())
                .train_mb_size(3)
                .plugin(EwcPlugin::new(config.clone()).unwrap())
                .build()
                .unwrap();
            s.train(&stream(3, 6)).unwrap();
            let ewc = s.plugin::<EwcPlugin>().unwrap();
            let mut fresh = EwcPlugin::new(config.clone()).unwrap();
            let state = restore::<Tiny, _>(ewc, &mut fresh, s.state());
            let exps: Vec<u64> = ewc.importances.keys().copied().collect();
            assert_eq!(exps.len(), kept, "{config:?}");
            assert_eq!(fresh.importances.keys().copied().collect::<Vec<_>>(), exps);
            assert_eq!(fresh.saved_params.keys().collect::<Vec<_>>(), ewc.saved_params.keys().collect::<Vec<_>>());
            for e in exps {
                assert_same_params(ewc.importance(e).unwrap(), fresh.importance(e).unwrap());
                assert_same_params(ewc.saved_params(e).unwrap(), fresh.saved_params(e).unwrap());
            }
            let dev = s.state().settings().device();
            let penalty = |p: &EwcPlugin| p.penalty(s.model(), 3, dev).unwrap().into_data();
            assert_eq!(penalty(ewc), penalty(&fresh));
            assert_mismatch::<Tiny, _>(&state, &mut EwcPlugin::new(config.with_ewc_lambda(0.25)).unwrap(), s.state());
        }
    }

    #[test]
    fn config_round_trips() {
        for c in [
            EwcConfig::new(0.4).with_keep_importance_data(true),
            EwcConfig::new(2.5).with_mode(EwcMode::Online { decay_factor: 0.9 }).with_keep_importance_data(true),
        ] {
            assert_eq!(EwcConfig::from_json(&c.to_json()).unwrap(), c);
            assert_eq!(EwcConfig::from_toml(&c.to_toml().unwrap()).unwrap(), c);
        }
        assert_eq!(EwcConfig::from_json(r#"{"ewc_lambda": 0.4}"#).unwrap(), EwcConfig::new(0.4));
        let online = EwcConfig::from_json(r#"{"ewc_lambda": 0.4, "mode": {"online": {"decay_factor": 0.5}}}"#);
        assert_eq!(online.unwrap().mode, EwcMode::Online { decay_factor: 0.5 });
        assert!(EwcConfig::from_json(r#"{"mode": "separate"}"#).is_err(), "ewc_lambda is required");
        assert!(EwcConfig::from_json(r#"{"ewc_lambda": 1, "decay_factor": 0.5}"#).is_err(), "decay only in online");
    }

    #[test]
    fn every_validation_rule() {
        let ok = EwcConfig::new(1.0);
        for (bad, rule) in [
            (ok.clone().with_ewc_lambda(-1.0), "ewc_lambda_finite_non_negative"),
            (ok.clone().with_ewc_lambda(f64::NAN), "ewc_lambda_finite_non_negative"),
            (ok.clone().with_mode(EwcMode::Online { decay_factor: -0.5 }), "decay_factor_finite_non_negative"),
            (ok.clone().with_mode(EwcMode::Online { decay_factor: f64::INFINITY }), "decay_factor_finite_non_negative"),
        ] {
            assert_rule(bad.validate(), rule);
            assert_rule(EwcPlugin::new(bad).map(|_| ()), rule);
        }
    }

    #[test]
    fn separate_mode_keeps_everything() {
        let separate = EwcPlugin::new(EwcConfig::new(1.0)).unwrap();
        let online = EwcPlugin::new(EwcConfig::new(1.0).with_mode(EwcMode::Online { decay_factor: 1.0 })).unwrap();
        assert!(separate.keeps_importance_data() && !online.keeps_importance_data());
    }

    /// Avalanche's penalty `λ·Σ_k Σ_i F_k,i·(θ_i − θ*_k,i)²` (no ½) and its gradient
    /// `2λ·Σ_k F_k·(θ − θ*_k)`, on known Fishers and anchors.
    #[test]
    fn penalty_and_its_gradient_follow_avalanche() {
        let dev = device().autodiff();
        let model = Tiny::new(3).to_device(&dev).train();
        let store = dev.clone().without_autodiff();
        let theta = ParamTensors::values_of(&model, &store, &all_params);
        assert_eq!(theta.len(), 4, "two weights and two biases");
        let lambda = 0.7;
        let mut fisher = [ParamTensors::default(), ParamTensors::default()];
        let mut anchor = [ParamTensors::default(), ParamTensors::default()];
        // Per experience k: F_k and θ*_k = θ − δ_k, known; the expected sums are accumulated.
        let mut value = [0.0f64; 2];
        let mut grad: [HashMap<ParamId, Vec<f64>>; 2] = [HashMap::new(), HashMap::new()];
        for (k, (id, e)) in theta.iter().enumerate() {
            let th = theta.to_vec(id).unwrap();
            let n = th.len();
            for exp in 0..2 {
                let f: Vec<f32> = (0..n).map(|i| 0.1 + ((i + k + exp) % 5) as f32 * 0.3).collect();
                let d: Vec<f32> = (0..n).map(|i| ((i * 7 + k + 3 * exp) % 11) as f32 * 0.05 - 0.25).collect();
                let star: Vec<f32> = th.iter().zip(&d).map(|(t, d)| t - d).collect();
                // δ as the model sees it: θ − θ* in f32.
                let delta: Vec<f64> = th.iter().zip(&star).map(|(t, s)| (t - s) as f64).collect();
                value[exp] += f.iter().zip(&delta).map(|(f, d)| *f as f64 * d * d).sum::<f64>();
                grad[exp].insert(id, f.iter().zip(&delta).map(|(f, d)| 2.0 * lambda * *f as f64 * d).collect());
                fisher[exp].insert(id, e.name.clone(), e.dims.clone(), Tensor::from_floats(f.as_slice(), &store));
                anchor[exp].insert(id, e.name.clone(), e.dims.clone(), Tensor::from_floats(star.as_slice(), &store));
            }
        }
        let vec_of = |t: &Tensor<1>| t.clone().into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        let close = |got: &[f32], want: &[f64], what: &str| {
            assert_eq!(got.len(), want.len(), "{what}: length");
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                assert!((*g as f64 - w).abs() <= 1e-6 + 1e-4 * w.abs(), "{what}[{i}]: got {g}, want {w}");
            }
        };
        for mode in [EwcMode::Separate, EwcMode::Online { decay_factor: 0.5 }] {
            let mut ewc = EwcPlugin::new(EwcConfig::new(lambda).with_mode(mode)).unwrap();
            for exp in 0..2 {
                ewc.set_importance_data(exp as u64, fisher[exp].clone(), anchor[exp].clone());
            }
            assert!(ewc.penalty(&model, 0, &dev).is_none(), "no penalty on the first experience");
            // Training experience 1: only experience 0's term.
            let p = ewc.penalty(&model, 1, &dev).unwrap();
            let v = p.clone().into_scalar::<f64>();
            assert!((v - lambda * value[0]).abs() < 1e-4 * value[0], "{mode:?}: {v} vs {}", lambda * value[0]);
            let g = GradientsParams::from_grads(p.backward(), &model);
            let flat = flat_grads(&model, &g);
            assert_eq!(flat.len(), 4, "every parameter gets a gradient");
            for (id, t) in flat {
                close(&vec_of(&t), &grad[0][&id], "∂penalty/∂θ = 2λ·F·(θ−θ*)");
            }
            // Training experience 2: separate sums both terms, online uses the latest only.
            let p = ewc.penalty(&model, 2, &dev).unwrap();
            let v = p.clone().into_scalar::<f64>();
            let want = match mode {
                EwcMode::Separate => lambda * (value[0] + value[1]),
                EwcMode::Online { .. } => lambda * value[1],
            };
            assert!((v - want).abs() < 1e-4 * want, "{mode:?}: {v} vs {want}");
            let g = GradientsParams::from_grads(p.backward(), &model);
            for (id, t) in flat_grads(&model, &g) {
                let want: Vec<f64> = match mode {
                    EwcMode::Separate => grad[0][&id].iter().zip(&grad[1][&id]).map(|(a, b)| a + b).collect(),
                    EwcMode::Online { .. } => grad[1][&id].clone(),
                };
                close(&vec_of(&t), &want, "gradient at experience 2");
            }
        }
    }
}
