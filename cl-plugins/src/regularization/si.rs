//! [`SynapticIntelligencePlugin`]: Synaptic Intelligence (Avalanche's
//! `SynapticIntelligencePlugin`).

use burn::tensor::{Device, Tensor};
use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, finite_non_negative, finite_positive, rule};
use cl_core::{ClError, Model, Plugin, Result, StatePart, StrategyState};
use serde::{Deserialize, Serialize};

use super::params::{ParamTensors, params, put_params, weighted_sq_distance};
use super::quadratic::{PenaltyCache, QuadraticPenalty};
use crate::weights::ExperienceWeight;

/// Avalanche's default `eps`.
fn default_eps() -> f64 {
    1e-7
}

/// Avalanche's hard-coded clip of the importance.
fn default_clip_to() -> f64 {
    0.001
}

/// Importances floored at zero (Avalanche has no floor; see `min_importance`).
fn default_min_importance() -> Option<f64> {
    Some(0.0)
}

/// `Option<f64>` in config files, where TOML has no null: a number, or `"none"` (JSON's
/// `null` is also read as none).
mod optional_number {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(value: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.serialize_f64(*v),
            None => s.serialize_str("none"),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged, expecting = "a number, or \"none\" for no lower clip")]
    enum Repr {
        Number(f64),
        Text(String),
        Null(()),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        match Option::<Repr>::deserialize(d)? {
            Some(Repr::Number(v)) => Ok(Some(v)),
            Some(Repr::Text(t)) if t == "none" => Ok(None),
            Some(Repr::Text(t)) => {
                Err(D::Error::custom(format!("`{t}`: expected a number or \"none\" (no lower clip)")))
            }
            Some(Repr::Null(())) | None => Ok(None),
        }
    }
}

/// The hyper-parameters of SI: Avalanche's `SynapticIntelligencePlugin(si_lambda,
/// eps=1e-7, excluded_parameters=None)`, plus two settings Avalanche hard-codes or lacks
/// (`clip_to`, default Avalanche's 0.001, and `min_importance`, default **0**, where Avalanche
/// has no lower clip: see the field).
///
/// ```
/// use cl_plugins::regularization::{SynapticIntelligenceConfig, SynapticIntelligencePlugin};
/// let si = SynapticIntelligencePlugin::new(
///     SynapticIntelligenceConfig::new(0.1).with_excluded_parameters(["classifier"]),
/// )?;
/// let per_experience = SynapticIntelligenceConfig::new(vec![0.1, 0.5]); // the last one repeats
/// assert!(SynapticIntelligencePlugin::new(SynapticIntelligenceConfig::new(-1.0)).is_err());
/// assert!(SynapticIntelligencePlugin::new(SynapticIntelligenceConfig::new(vec![])).is_err());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynapticIntelligenceConfig {
    /// λ of the penalty `λ/2·Σ Ω·(θ−θ*)²`: one number, or one per experience (the last one is
    /// used for later experiences, as Avalanche); finite and `>= 0`. Required, as in Avalanche.
    pub si_lambda: ExperienceWeight,
    /// Damping `ξ` of the normalisation `(Δθ)² + ξ` (a finite number `>= 0`; Avalanche's
    /// default 1e-7).
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Parameter name patterns (`fnmatch` globs on paths such as `features.0.linear.weight`;
    /// `p` also excludes everything under `p.`), as Avalanche's `excluded_parameters`
    /// (default none).
    #[serde(default)]
    pub excluded_parameters: Vec<String>,
    /// Upper clip of the importance (a finite number `> 0`; Avalanche hard-codes 0.001, the
    /// default; `f64::MAX` for no clip).
    #[serde(default = "default_clip_to")]
    pub clip_to: f64,
    /// Lower clip of the importance, default `Some(0.0)`: the penalty `λ/2·Σ Ω·(θ−θ*)²` stays
    /// a proper (convex) quadratic. `None` (`"none"` in a config file) is Avalanche's behaviour,
    /// no lower clip: a parameter whose steps increased the loss (with momentum `Δθ` is not
    /// `−lr·g`, so `ω = Σ g·Δθ` can have either sign) gets a negative importance, the penalty
    /// is unbounded below, and training diverges — on SplitFMNIST with SGD 0.01/0.9 and
    /// `si_lambda` = 1000, the loss reaches −∞ in the last experience for 2 of 5 seeds; with
    /// the floor, for none. Zero is also what Mammoth's SI gets by construction (it accumulates
    /// `lr·g² ≥ 0`), and the paper's importance is a sum of loss decreases.
    #[serde(default = "default_min_importance", with = "optional_number")]
    pub min_importance: Option<f64>,
}

impl SynapticIntelligenceConfig {
    /// `si_lambda` (a number, or one per experience) with Avalanche's defaults (`eps` = 1e-7,
    /// nothing excluded, importance clipped at 0.001 from above) and importances floored at 0
    /// (`with_min_importance(None)` for Avalanche's unclipped ones).
    pub fn new(si_lambda: impl Into<ExperienceWeight>) -> Self {
        Self {
            si_lambda: si_lambda.into(),
            eps: default_eps(),
            excluded_parameters: Vec::new(),
            clip_to: default_clip_to(),
            min_importance: default_min_importance(),
        }
    }

    /// Sets `si_lambda`.
    pub fn with_si_lambda(mut self, si_lambda: impl Into<ExperienceWeight>) -> Self {
        self.si_lambda = si_lambda.into();
        self
    }

    /// Sets `eps`.
    pub fn with_eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Sets the excluded parameter patterns.
    pub fn with_excluded_parameters<S: Into<String>>(mut self, p: impl IntoIterator<Item = S>) -> Self {
        self.excluded_parameters = p.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the lower clip of the importance (default `Some(0.0)`; `None`: no clip, as
    /// Avalanche, which can diverge).
    pub fn with_min_importance(mut self, min: Option<f64>) -> Self {
        self.min_importance = min;
        self
    }

    /// Sets the upper clip of the importance (`f64::MAX` for none).
    pub fn with_clip_to(mut self, clip_to: f64) -> Self {
        self.clip_to = clip_to;
        self
    }
}

impl Validate for SynapticIntelligenceConfig {
    fn validate(&self) -> Result<()> {
        const C: &str = "SynapticIntelligenceConfig";
        rule(C, "si_lambda_not_empty", !self.si_lambda.is_empty(), || {
            "si_lambda is an empty list: give a number or at least one value per experience".into()
        })?;
        rule(C, "si_lambda_finite_non_negative", self.si_lambda.all_finite_non_negative(), || {
            format!("si_lambda = {:?}: every value must be a finite number >= 0", self.si_lambda.values())
        })?;
        rule(C, "eps_finite_non_negative", finite_non_negative(self.eps), || {
            format!("eps = {} must be a finite number >= 0", self.eps)
        })?;
        rule(C, "clip_to_finite_positive", finite_positive(self.clip_to), || {
            format!("clip_to = {} must be a finite number > 0 (f64::MAX for no clip)", self.clip_to)
        })?;
        if let Some(m) = self.min_importance {
            rule(C, "min_importance_finite_at_most_clip_to", m.is_finite() && m <= self.clip_to, || {
                format!("min_importance = {m} must be a finite number <= clip_to = {}", self.clip_to)
            })?;
        }
        Ok(())
    }
}

/// Synaptic Intelligence (Zenke et al. 2017): Avalanche's `SynapticIntelligencePlugin`
/// (`avalanche/training/plugins/synaptic_intelligence.py`), the plugin of the
/// `SynapticIntelligence` strategy.
///
/// - `before_training_exp`: θ* ← θ, the path integral ω of the experience ← 0;
/// - each iteration: `ω += g·Δθ`, with `g` the gradient of the total loss (penalty included)
///   and `Δθ` the change made by the update;
/// - `after_training_exp`: `W += ω / ((θ − θ*)² + eps)` (W accumulates over experiences),
///   importance `Ω = min(−W, clip_to)` (and `max(·, min_importance)` if set), θ* ← θ;
/// - `before_backward`: adds `λ_exp/2·Σ Ω·(θ − θ*)²` (zero before the first importance), with
///   `λ_exp` the entry of `si_lambda` for the current experience (the last one past the end);
///   its gradient `λ_exp·Ω·(θ − θ*)` is added to the gradients in closed form
///   ([`QuadraticPenalty`], no autodiff graph).
///
/// With plain SGD at rate `lr`, `Δθ = −lr·g`, so `−ω = lr·Σ g²`.
///
/// Parameters of batch- and instance-normalisation layers (container type `BatchNorm*`,
/// `InstanceNorm*`) are excluded, as Avalanche excludes PyTorch's `_NormBase` layers
/// (`LayerNorm` and `GroupNorm` are not `_NormBase`: their parameters are regularised).
///
/// # Differences from Avalanche
///
/// - The penalty is Avalanche's `λ/2·Σ Ω·(θ−θ*)²` (with the ½, unlike EWC), and `c = 1` in the
///   importance (Avalanche passes 1, not the paper's 0.0015): same numbers for the same λ.
/// - `g` and `θ` before the update are read at `before_update` and `θ` after it at
///   `after_update` (Avalanche: `before_training_iteration` and `after_training_iteration`):
///   the same values unless another plugin changes the model or the gradients in between (a
///   plugin after SI that rewrites the gradients, e.g. a projection, is not seen by SI).
/// - A parameter without a gradient counts as a zero gradient (Avalanche fails on
///   `param.grad` being `None`).
/// - **Importances are floored at 0 by default** (`min_importance`; Avalanche has no lower
///   clip): Avalanche's negative importances make the penalty unbounded below and SI diverge
///   at its own settings (SplitFMNIST, SGD 0.01/0.9, λ = 1000: the loss reaches −∞ for 2 of 5
///   seeds). `min_importance = "none"` restores Avalanche's behaviour. `clip_to` is a setting
///   (default Avalanche's hard-coded 0.001); Avalanche's `device` argument is not needed (the
///   state lives on the evaluation device).
///
/// ```
/// use burn::tensor::Device;
/// use cl_core::{OptimizerSpec, Strategy};
/// use cl_models::SimpleMlpConfig;
/// use cl_plugins::regularization::{SynapticIntelligenceConfig, SynapticIntelligencePlugin};
/// let device = Device::default();
/// let model = SimpleMlpConfig::new().init(&device)?;
/// let si = SynapticIntelligencePlugin::new(SynapticIntelligenceConfig::new(1e-4))?;
/// let strategy = Strategy::builder(model, OptimizerSpec::sgd(0.01), device).plugin(si).build()?;
/// assert!(strategy.plugin::<SynapticIntelligencePlugin>().is_some());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SynapticIntelligencePlugin {
    config: SynapticIntelligenceConfig,
    patterns: Vec<String>,
    /// θ* (Avalanche's `ewc_data[0]`): θ at the start of an experience, then after it.
    theta_star: ParamTensors,
    /// Ω (Avalanche's `ewc_data[1]`).
    importance: ParamTensors,
    old_theta: ParamTensors,
    grad: ParamTensors,
    trajectory: ParamTensors,
    cum_trajectory: ParamTensors,
    has_importance: bool,
    folded: PenaltyCache,
}

/// One element of an `fnmatch` pattern.
enum GlobToken {
    /// `*`: any run of characters.
    Star,
    /// `?`: any one character.
    Any,
    /// A literal character.
    Char(char),
    /// `[seq]` / `[!seq]`: one character in (or not in) the ranges.
    Class { negated: bool, ranges: Vec<(char, char)> },
}

impl GlobToken {
    fn matches(&self, c: char) -> bool {
        match self {
            GlobToken::Star => true,
            GlobToken::Any => true,
            GlobToken::Char(x) => *x == c,
            GlobToken::Class { negated, ranges } => ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated,
        }
    }
}

/// Python's `fnmatch.translate` grammar: `*`, `?`, `[seq]`, `[!seq]` (ranges `a-z`, a `]` first
/// in the set is literal); a `[` without its `]` is literal.
fn glob_tokens(pattern: &str) -> Vec<GlobToken> {
    let p: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' => out.push(GlobToken::Star),
            '?' => out.push(GlobToken::Any),
            '[' => {
                let mut j = i + 1;
                let negated = j < p.len() && p[j] == '!';
                if negated {
                    j += 1;
                }
                let first = j;
                while j < p.len() && (p[j] != ']' || j == first) {
                    j += 1;
                }
                if j >= p.len() {
                    out.push(GlobToken::Char('['));
                } else {
                    let set = &p[first..j];
                    let mut ranges = Vec::new();
                    let mut k = 0;
                    while k < set.len() {
                        if k + 2 < set.len() && set[k + 1] == '-' {
                            ranges.push((set[k], set[k + 2]));
                            k += 3;
                        } else {
                            ranges.push((set[k], set[k]));
                            k += 1;
                        }
                    }
                    out.push(GlobToken::Class { negated, ranges });
                    i = j;
                }
            }
            c => out.push(GlobToken::Char(c)),
        }
        i += 1;
    }
    out
}

/// `fnmatch`-style glob (`*`, `?`, `[seq]`, `[!seq]`) on the whole string (case-sensitive, as
/// `fnmatch` on POSIX).
fn glob(pattern: &str, s: &str) -> bool {
    let p = glob_tokens(pattern);
    let s: Vec<char> = s.chars().collect();
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && !matches!(p[pi], GlobToken::Star) && p[pi].matches(s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && matches!(p[pi], GlobToken::Star) {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && matches!(p[pi], GlobToken::Star) {
        pi += 1;
    }
    pi == p.len()
}

impl SynapticIntelligencePlugin {
    /// An SI plugin; an error ([`ClError::InvalidConfig`]) if `config` breaks one of its rules.
    pub fn new(config: SynapticIntelligenceConfig) -> Result<Self> {
        config.validate()?;
        let mut patterns = Vec::new();
        for x in &config.excluded_parameters {
            patterns.push(x.clone());
            if !x.ends_with('*') {
                patterns.push(format!("{x}.*"));
            }
        }
        Ok(Self {
            config,
            patterns,
            theta_star: ParamTensors::default(),
            importance: ParamTensors::default(),
            old_theta: ParamTensors::default(),
            grad: ParamTensors::default(),
            trajectory: ParamTensors::default(),
            cum_trajectory: ParamTensors::default(),
            has_importance: false,
            folded: PenaltyCache::default(),
        })
    }

    /// Whether SI handles the parameter at `path` inside modules of types `containers`.
    /// Parameters of `BatchNorm*` and `InstanceNorm*` modules are excluded (PyTorch's
    /// `_NormBase`); `LayerNorm`, `GroupNorm` and `RmsNorm` parameters are regularised, as in
    /// Avalanche.
    pub fn is_allowed(&self, path: &str, containers: &[String]) -> bool {
        let norm = containers.iter().any(|c| {
            let c = c.strip_prefix("Struct:").unwrap_or(c);
            c.starts_with("BatchNorm") || c.starts_with("InstanceNorm")
        });
        !norm && !self.patterns.iter().any(|p| glob(p, path))
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &SynapticIntelligenceConfig {
        &self.config
    }

    /// The importance Ω (zeros before the first experience ends).
    pub fn importance(&self) -> &ParamTensors {
        &self.importance
    }

    /// θ*.
    pub fn theta_star(&self) -> &ParamTensors {
        &self.theta_star
    }

    /// The path integral `Σ g·Δθ` of the current experience (Avalanche's `trajectory`).
    pub fn trajectory(&self) -> &ParamTensors {
        &self.trajectory
    }

    /// The accumulated normalised path integral W (Avalanche's `cum_trajectory`).
    pub fn cum_trajectory(&self) -> &ParamTensors {
        &self.cum_trajectory
    }

    fn lambda(&self, exp: u64) -> f64 {
        self.config.si_lambda.at_or_last(exp as usize)
    }

    fn weights<M: Model>(&self, model: &M, device: &Device) -> ParamTensors {
        ParamTensors::values_of(model, device, &|p, c| self.is_allowed(p, c))
    }

    /// The penalty `λ/2·Σ Ω·(θ−θ*)²` for `model` while training experience `exp`.
    pub fn penalty<M: Model>(&self, model: &M, exp: u64, device: &Device) -> Option<Tensor<1>> {
        if !self.has_importance {
            return None;
        }
        weighted_sq_distance(model, &self.importance, &self.theta_star, device)
            .map(|p| p.mul_scalar(self.lambda(exp) / 2.0))
    }

    /// [`penalty`](Self::penalty) folded into one quadratic per parameter
    /// ([`QuadraticPenalty`]), as the plugin applies it (value and closed-form gradient).
    pub fn folded_penalty(&self, exp: u64, device: &Device) -> Option<QuadraticPenalty> {
        self.has_importance
            .then(|| QuadraticPenalty::fold(self.lambda(exp) / 2.0, &[(&self.importance, &self.theta_star)], device))
    }
}

impl<M: Model> Plugin<M> for SynapticIntelligencePlugin {
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::Loss]
    }

    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let dev = state.settings().eval_device().clone();
        // create_syn_data: new parameters get zero entries, grown ones are zero-padded.
        let mut importance = std::mem::take(&mut self.importance);
        let mut cum = std::mem::take(&mut self.cum_trajectory);
        let filter = |p: &str, c: &[String]| self.is_allowed(p, c);
        let model = state.model();
        importance.expand_like(model, &dev, &filter);
        cum.expand_like(model, &dev, &filter);
        // init_batch: θ* ← θ, trajectory ← 0.
        let theta = self.weights(model, &dev);
        let trajectory = ParamTensors::zeros_like(model, &dev, &filter);
        self.importance = importance;
        self.cum_trajectory = cum;
        self.theta_star = theta;
        self.folded.invalidate();
        self.trajectory = trajectory;
        Ok(())
    }

    fn before_backward(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let exp = state.clock().train_exp_counter;
        let mut folded = std::mem::take(&mut self.folded);
        let result = folded.add_to_loss(state, exp, |device| self.folded_penalty(exp, device));
        self.folded = folded;
        result
    }

    fn before_update(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let dev = state.settings().eval_device().clone();
        let grads = state.grads.as_ref().ok_or(ClError::MissingState("grads"))?;
        self.grad = ParamTensors::grads_of(state.model(), grads, &dev, &|p, c| self.is_allowed(p, c));
        self.old_theta = self.weights(state.model(), &dev);
        Ok(())
    }

    fn after_update(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let new_theta = self.weights(state.model(), state.settings().eval_device());
        for (id, new) in new_theta.iter() {
            let (Some(old), Some(g)) = (self.old_theta.get(id), self.grad.get(id)) else { continue };
            if old.dims != new.dims || g.dims != new.dims {
                continue;
            }
            let step = g.values.clone() * (new.values.clone() - old.values.clone());
            self.trajectory.update(id, |t| t + step);
        }
        Ok(())
    }

    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let new_theta = self.weights(state.model(), state.settings().eval_device());
        let eps = self.config.eps;
        for (id, new) in new_theta.iter() {
            let (Some(start), Some(traj)) = (self.theta_star.get(id), self.trajectory.get(id)) else { continue };
            if start.dims != new.dims {
                continue;
            }
            let denom = (new.values.clone() - start.values.clone()).powi_scalar(2).add_scalar(eps);
            let inc = traj.values.clone() / denom;
            self.cum_trajectory.update(id, |c| c + inc);
        }
        let (clip, min) = (self.config.clip_to, self.config.min_importance);
        self.importance = self.cum_trajectory.clone().map(|c| {
            let imp = c.neg();
            let imp = if clip < f32::MAX as f64 { imp.clamp_max(clip) } else { imp };
            match min {
                Some(m) => imp.clamp_min(m),
                None => imp,
            }
        });
        self.theta_star = new_theta;
        self.has_importance = true;
        self.folded.invalidate();
        Ok(())
    }

    /// The configuration (checked on load) and every accumulator, exactly: θ*, Ω, the path
    /// integral of the current experience and its running sum W, the last iteration's gradient
    /// and parameters, and whether Ω was computed.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config)?;
        out.put("has_importance", &self.has_importance)?;
        for (key, t) in self.accumulators() {
            put_params(out, key, t)?;
        }
        Ok(())
    }

    fn load_state(&mut self, state: &StateDict, strategy: &StrategyState<M>) -> Result<()> {
        state.check_config("config", &self.config)?;
        let device = strategy.settings().eval_device();
        let has_importance = state.get("has_importance")?;
        let mut loaded = Vec::with_capacity(6);
        for (key, _) in self.accumulators() {
            loaded.push(params(state, key, device)?);
        }
        let [theta_star, importance, old_theta, grad, trajectory, cum_trajectory]: [ParamTensors; 6] =
            loaded.try_into().expect("six accumulators");
        *self = Self {
            config: self.config.clone(),
            patterns: self.patterns.clone(),
            theta_star,
            importance,
            old_theta,
            grad,
            trajectory,
            cum_trajectory,
            has_importance,
            folded: PenaltyCache::default(),
        };
        Ok(())
    }
}

impl SynapticIntelligencePlugin {
    /// The accumulators, named as in a checkpoint, in the order `load_state` reads them.
    fn accumulators(&self) -> [(&'static str, &ParamTensors); 6] {
        [
            ("theta_star", &self.theta_star),
            ("importance", &self.importance),
            ("old_theta", &self.old_theta),
            ("grad", &self.grad),
            ("trajectory", &self.trajectory),
            ("cum_trajectory", &self.cum_trajectory),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cl_core::config::{ConfigFile, assert_rule};

    /// θ*, Ω, the path integrals and the last iteration's gradient and parameters come back
    /// bit for bit; a checkpoint of another configuration is refused.
    #[test]
    fn checkpoint_restores_every_accumulator_exactly() {
        use crate::persist::test_util::{assert_mismatch, assert_same_params, restore};
        use crate::regularization::test_support::{Tiny, device, sgd, stream};
        use cl_core::Strategy;
        let config = SynapticIntelligenceConfig::new(vec![0.5, 1.0]).with_excluded_parameters(["hidden.bias"]);
        let mut s = Strategy::builder(Tiny::new(6), sgd(0.1), device())
            .train_mb_size(3)
            .plugin(SynapticIntelligencePlugin::new(config.clone()).unwrap())
            .build()
            .unwrap();
        s.train(&stream(2, 6)).unwrap();
        let si = s.plugin::<SynapticIntelligencePlugin>().unwrap();
        assert!(si.has_importance && si.total_abs(&si.cum_trajectory) > 0.0);
        let mut fresh = SynapticIntelligencePlugin::new(config.clone()).unwrap();
        let state = restore::<Tiny, _>(si, &mut fresh, s.state());
        assert!(fresh.has_importance);
        for ((name, a), (_, b)) in si.accumulators().into_iter().zip(fresh.accumulators()) {
            assert!(!a.is_empty(), "{name}");
            assert_same_params(a, b);
        }
        let mut other = SynapticIntelligencePlugin::new(config.with_eps(1e-3)).unwrap();
        assert_mismatch::<Tiny, _>(&state, &mut other, s.state());
    }

    impl SynapticIntelligencePlugin {
        fn total_abs(&self, t: &ParamTensors) -> f64 {
            t.iter().map(|(_, e)| e.values.clone().abs().sum().into_scalar::<f64>()).sum()
        }
    }

    #[test]
    fn glob_matches_like_fnmatch() {
        assert!(glob("classifier.*", "classifier.weight"));
        assert!(!glob("classifier.*", "classifier"));
        assert!(glob("classifier", "classifier"));
        assert!(glob("*.bias", "features.0.linear.bias"));
        assert!(glob("f?atures*", "features.0"));
        assert!(!glob("features", "features.0.linear.weight"));
        // fnmatch's sets.
        assert!(glob("features.[0-2].*", "features.1.weight"));
        assert!(!glob("features.[0-2].*", "features.3.weight"));
        assert!(glob("features.[!0].*", "features.3.weight"));
        assert!(!glob("features.[!0].*", "features.0.weight"));
        assert!(glob("a[]]b", "a]b"));
        assert!(glob("a[b", "a[b"), "an unclosed `[` is literal");
    }

    #[test]
    fn excludes_batch_and_instance_norm_but_not_layer_or_group_norm() {
        let si = SynapticIntelligencePlugin::new(SynapticIntelligenceConfig::new(1.0)).unwrap();
        let c = |t: &str| vec!["Struct:Net".to_string(), format!("Struct:{t}")];
        assert!(!si.is_allowed("bn.gamma", &c("BatchNorm")));
        assert!(!si.is_allowed("inorm.gamma", &c("InstanceNorm")));
        assert!(si.is_allowed("ln.gamma", &c("LayerNorm")), "LayerNorm is not a _NormBase");
        assert!(si.is_allowed("gn.gamma", &c("GroupNorm")), "GroupNorm is not a _NormBase");
        assert!(si.is_allowed("fc.weight", &c("Linear")));
        let si = SynapticIntelligencePlugin::new(SynapticIntelligenceConfig::new(1.0).with_excluded_parameters(["fc"]))
            .unwrap();
        assert!(!si.is_allowed("fc.weight", &c("Linear")), "`p` also excludes `p.*`");
        assert!(si.is_allowed("fc2.weight", &c("Linear")));
    }

    #[test]
    fn defaults_are_avalanches_but_the_floor() {
        let c = SynapticIntelligenceConfig::new(0.5);
        assert_eq!((c.eps, c.clip_to, c.min_importance), (1e-7, 0.001, Some(0.0)));
        let avalanche = SynapticIntelligenceConfig::from_toml("si_lambda = 0.5\nmin_importance = \"none\"").unwrap();
        assert_eq!(avalanche.min_importance, None);
        let json = SynapticIntelligenceConfig::from_json(r#"{"si_lambda": 0.5, "min_importance": null}"#).unwrap();
        assert_eq!(json.min_importance, None);
        let err = SynapticIntelligenceConfig::from_toml("si_lambda = 0.5\nmin_importance = \"zero\"").unwrap_err();
        assert!(err.to_string().contains("\"none\""), "{err}");
        let err = SynapticIntelligenceConfig::from_toml("si_lambda = 0.5\nmin_importance = true").unwrap_err();
        assert!(err.to_string().contains("a number, or \"none\""), "{err}");
        assert!(c.excluded_parameters.is_empty());
        assert_eq!(SynapticIntelligenceConfig::from_toml("si_lambda = 0.5").unwrap(), c);
    }

    #[test]
    fn per_experience_lambda_repeats_the_last_value() {
        let si = SynapticIntelligencePlugin::new(SynapticIntelligenceConfig::new(vec![1.0, 2.0])).unwrap();
        assert_eq!((si.lambda(0), si.lambda(1), si.lambda(5)), (1.0, 2.0, 2.0));
    }

    #[test]
    fn config_round_trips() {
        for c in [
            SynapticIntelligenceConfig::new(0.25)
                .with_eps(1e-3)
                .with_excluded_parameters(["classifier", "*.bias"])
                .with_clip_to(0.5)
                .with_min_importance(Some(0.0)),
            SynapticIntelligenceConfig::new(vec![0.1, 0.2]),
            SynapticIntelligenceConfig::new(1.0).with_min_importance(None),
            SynapticIntelligenceConfig::new(1.0).with_min_importance(Some(-0.5)),
        ] {
            assert_eq!(SynapticIntelligenceConfig::from_json(&c.to_json()).unwrap(), c);
            assert_eq!(SynapticIntelligenceConfig::from_toml(&c.to_toml().unwrap()).unwrap(), c);
        }
        assert!(SynapticIntelligenceConfig::from_json("{}").is_err(), "si_lambda is required");
    }

    #[test]
    fn every_validation_rule() {
        let ok = SynapticIntelligenceConfig::new(1.0);
        assert!(ok.validate().is_ok());
        for (bad, rule) in [
            (ok.clone().with_si_lambda(vec![]), "si_lambda_not_empty"),
            (ok.clone().with_si_lambda(-1.0), "si_lambda_finite_non_negative"),
            (ok.clone().with_si_lambda(vec![1.0, f64::NAN]), "si_lambda_finite_non_negative"),
            (ok.clone().with_eps(-1e-9), "eps_finite_non_negative"),
            (ok.clone().with_clip_to(0.0), "clip_to_finite_positive"),
            (ok.clone().with_clip_to(f64::INFINITY), "clip_to_finite_positive"),
            (ok.clone().with_min_importance(Some(1.0)), "min_importance_finite_at_most_clip_to"),
            (ok.clone().with_min_importance(Some(f64::NEG_INFINITY)), "min_importance_finite_at_most_clip_to"),
        ] {
            assert_rule(bad.validate(), rule);
            assert_rule(SynapticIntelligencePlugin::new(bad).map(|_| ()), rule);
        }
    }
}
