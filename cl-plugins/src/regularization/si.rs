//! [`SynapticIntelligencePlugin`]: Synaptic Intelligence (Avalanche's
//! `SynapticIntelligencePlugin`).

use burn::tensor::{Device, Tensor};
use cl_core::{ClError, Model, Plugin, Result, StatePart, StrategyState};

use super::check_non_negative;
use super::params::{ParamTensors, weighted_sq_distance};

/// The hyper-parameters of SI (Avalanche's `SynapticIntelligencePlugin(si_lambda, eps,
/// excluded_parameters)`).
///
/// ```
/// use cl_plugins::regularization::{SynapticIntelligenceConfig, SynapticIntelligencePlugin};
/// let si = SynapticIntelligencePlugin::new(
///     SynapticIntelligenceConfig::new(0.1).with_excluded_parameters(["classifier"]),
/// ).unwrap();
/// assert!(SynapticIntelligencePlugin::new(SynapticIntelligenceConfig::new(-1.0)).is_err());
/// assert!(SynapticIntelligencePlugin::new(SynapticIntelligenceConfig::per_experience(vec![])).is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SynapticIntelligenceConfig {
    /// λ per experience (the last one is used for later experiences); one value for all.
    pub si_lambda: Vec<f64>,
    /// Damping `ξ` of the normalisation `(Δθ)² + ξ` (Avalanche's default 1e-7).
    pub eps: f64,
    /// Parameter name patterns (`fnmatch` globs on paths such as `features.0.linear.weight`;
    /// `p` also excludes everything under `p.`), as Avalanche's `excluded_parameters`.
    pub excluded_parameters: Vec<String>,
    /// Upper clip of the importance (Avalanche hard-codes 0.001).
    pub clip_to: f64,
    /// Lower clip of the importance: `None` as Avalanche (negative importances are possible
    /// when a step increased the loss, e.g. with momentum, and make the penalty unbounded
    /// below); `Some(0.0)` keeps the penalty a proper (convex) quadratic.
    pub min_importance: Option<f64>,
}

impl SynapticIntelligenceConfig {
    /// One λ for every experience, `eps` = 1e-7, nothing excluded, importance clipped at 0.001.
    pub fn new(si_lambda: f64) -> Self {
        Self::per_experience(vec![si_lambda])
    }

    /// One λ per experience (the last one repeats).
    pub fn per_experience(si_lambda: Vec<f64>) -> Self {
        Self { si_lambda, eps: 1e-7, excluded_parameters: Vec::new(), clip_to: 0.001, min_importance: None }
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

    /// Sets the lower clip of the importance (`None`: no clip, as Avalanche).
    pub fn with_min_importance(mut self, min: Option<f64>) -> Self {
        self.min_importance = min;
        self
    }

    /// Sets the upper clip of the importance (`f64::INFINITY` for none).
    pub fn with_clip_to(mut self, clip_to: f64) -> Self {
        self.clip_to = clip_to;
        self
    }
}

/// Synaptic Intelligence (Zenke et al. 2017), as Avalanche's `SynapticIntelligencePlugin`.
///
/// - `before_training_exp`: θ_start ← θ, the path integral ω of the experience ← 0;
/// - each iteration: `ω += g·Δθ`, with `g` the gradient of the total loss read before the
///   update (`before_update`) and `Δθ` the change made by the update (`after_update`);
/// - `after_training_exp`: `W += ω / ((θ − θ_start)² + eps)` (W accumulates over experiences),
///   importance `Ω = min(−W, clip_to)`, θ* ← θ;
/// - `before_backward`: adds `λ_exp/2·Σ Ω·(θ − θ*)²` (zero before the first importance).
///
/// With plain SGD at rate `lr`, `Δθ = −lr·g`, so `−ω = lr·Σ g²`.
///
/// Parameters of batch-norm-like layers (container type `BatchNorm*`, `InstanceNorm*`,
/// `GroupNorm`, `LayerNorm`) are excluded, as Avalanche excludes `_NormBase` layers.
///
/// ```ignore
/// let si = SynapticIntelligencePlugin::new(SynapticIntelligenceConfig::new(1e-4))?;
/// let strategy = Naive::builder(model, optimizer, device).plugin(si).build()?;
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
}

/// `fnmatch`-style glob (`*`, `?`) on the whole string.
fn glob(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
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
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

impl SynapticIntelligencePlugin {
    /// Checks the hyper-parameters: at least one λ, every λ ≥ 0, eps ≥ 0, clip_to > 0.
    pub fn new(config: SynapticIntelligenceConfig) -> Result<Self> {
        if config.si_lambda.is_empty() {
            return Err(ClError::config("si_lambda", "needs at least one value"));
        }
        for &l in &config.si_lambda {
            check_non_negative("si_lambda", l)?;
        }
        check_non_negative("eps", config.eps)?;
        if config.clip_to.is_nan() || config.clip_to <= 0.0 {
            return Err(ClError::config("clip_to", "must be > 0"));
        }
        if config.min_importance.is_some_and(|m| !m.is_finite() || m > config.clip_to) {
            return Err(ClError::config("min_importance", "must be finite and ≤ clip_to"));
        }
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
        })
    }

    /// Whether SI handles the parameter at `path` inside modules of types `containers`.
    pub fn is_allowed(&self, path: &str, containers: &[String]) -> bool {
        let norm = containers.iter().any(|c| {
            let c = c.strip_prefix("Struct:").unwrap_or(c);
            c.starts_with("BatchNorm") || c.starts_with("InstanceNorm") || c == "GroupNorm" || c == "LayerNorm"
        });
        !norm && !self.patterns.iter().any(|p| glob(p, path))
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
        let l = &self.config.si_lambda;
        *l.get(exp as usize).unwrap_or(l.last().expect("checked non-empty"))
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
}

impl<M: Model> Plugin<M> for SynapticIntelligencePlugin {
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::Loss]
    }

    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let dev = state.eval_device.clone();
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
        self.trajectory = trajectory;
        Ok(())
    }

    fn before_backward(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        if let Some(p) = self.penalty(state.model(), state.clock.train_exp_counter, &state.device) {
            state.add_loss(p);
        }
        Ok(())
    }

    fn before_update(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let dev = state.eval_device.clone();
        let grads = state.grads.as_ref().ok_or(ClError::MissingState("grads"))?;
        self.grad = ParamTensors::grads_of(state.model(), grads, &dev, &|p, c| self.is_allowed(p, c));
        self.old_theta = self.weights(state.model(), &dev);
        Ok(())
    }

    fn after_update(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let new_theta = self.weights(state.model(), &state.eval_device);
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
        let new_theta = self.weights(state.model(), &state.eval_device);
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
            let imp = if clip.is_finite() { imp.clamp_max(clip) } else { imp };
            match min {
                Some(m) => imp.clamp_min(m),
                None => imp,
            }
        });
        self.theta_star = new_theta;
        self.has_importance = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn glob_matches_like_fnmatch() {
        assert!(glob("classifier.*", "classifier.weight"));
        assert!(!glob("classifier.*", "classifier"));
        assert!(glob("classifier", "classifier"));
        assert!(glob("*.bias", "features.0.linear.bias"));
        assert!(glob("f?atures*", "features.0"));
        assert!(!glob("features", "features.0.linear.weight"));
    }
}
