//! [`GemPlugin`]: Gradient Episodic Memory (Lopez-Paz & Ranzato, 2017; Avalanche's
//! `GEMPlugin`), and [`gem_project`], its projection of a gradient by the dual quadratic
//! program, solved with the `clarabel` interior-point solver.

use burn::tensor::{Device, Tensor};
use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, finite_non_negative, rule};
use cl_core::data::ClassificationDataset;
use cl_core::{ClError, Model, Plugin, Result, StatePart, StrategyState};
use clarabel::algebra::CscMatrix;
use clarabel::solver::{DefaultSettings, DefaultSolver, IPSolver, NonnegativeConeT, SolverStatus};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::agem::{memory_gradient, project_gradients, random_memory};
use crate::persist::{datasets, opt_tensor, put_datasets, put_opt_tensor};

/// The default `memory_strength`: Avalanche's `GEM` strategy's (the plugin has none).
fn default_memory_strength() -> f64 {
    0.5
}

/// The ridge Avalanche (and the authors' code) add to `G Gᵀ` before solving the dual.
fn default_ridge() -> f64 {
    1e-3
}

/// GEM's hyper-parameters: Avalanche's `GEMPlugin(patterns_per_experience, memory_strength)`
/// (`patterns_per_experience` is also accepted as the field's name in files) with the
/// `GEM` strategy's default `memory_strength = 0.5`, plus the ridge Avalanche hard-codes.
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_plugins::{GemConfig, GemPlugin};
/// let gem = GemPlugin::new(GemConfig::new(256))?; // memory_strength 0.5, ridge 1e-3
/// assert_eq!(GemConfig::from_toml("patterns_per_experience = 256")?, GemConfig::new(256));
/// assert!(GemPlugin::new(GemConfig::new(0)).is_err());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "GEMPlugin")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GemConfig {
    /// Samples stored per experience (`>= 1`; required, as in Avalanche).
    #[serde(alias = "patterns_per_experience")]
    pub patterns_per_exp: usize,
    /// The margin γ of the dual constraint `v >= γ`, favouring backward transfer (a finite
    /// number `>= 0`; default 0.5, as Avalanche's `GEM` strategy).
    #[serde(default = "default_memory_strength")]
    pub memory_strength: f64,
    /// The ridge added to `G Gᵀ` before solving the dual (a finite number `>= 0`; default
    /// 1e-3, Avalanche's hard-coded value; 0 gives the exact projection).
    #[serde(default = "default_ridge")]
    pub ridge: f64,
}

impl GemConfig {
    /// `patterns_per_exp` samples per experience, with `memory_strength = 0.5` and
    /// `ridge = 1e-3`.
    pub fn new(patterns_per_exp: usize) -> Self {
        Self { patterns_per_exp, memory_strength: default_memory_strength(), ridge: default_ridge() }
    }

    /// Sets `patterns_per_exp`.
    pub fn with_patterns_per_exp(mut self, patterns_per_exp: usize) -> Self {
        self.patterns_per_exp = patterns_per_exp;
        self
    }

    /// Sets `memory_strength`.
    pub fn with_memory_strength(mut self, memory_strength: f64) -> Self {
        self.memory_strength = memory_strength;
        self
    }

    /// Sets `ridge`.
    pub fn with_ridge(mut self, ridge: f64) -> Self {
        self.ridge = ridge;
        self
    }
}

impl Validate for GemConfig {
    fn validate(&self) -> Result<()> {
        const C: &str = "GemConfig";
        rule(C, "patterns_per_exp_positive", self.patterns_per_exp >= 1, || {
            "patterns_per_exp must be at least 1".into()
        })?;
        rule(C, "memory_strength_finite_non_negative", finite_non_negative(self.memory_strength), || {
            format!("memory_strength = {} must be a finite number >= 0", self.memory_strength)
        })?;
        rule(C, "ridge_finite_non_negative", finite_non_negative(self.ridge), || {
            format!("ridge = {} must be a finite number >= 0", self.ridge)
        })
    }
}

/// Gradient Episodic Memory: Avalanche's `GEMPlugin` (`avalanche/training/plugins/gem.py`),
/// the plugin of the `Gem` strategy.
///
/// An episodic memory of `patterns_per_exp` random samples of each trained experience (the
/// first `patterns_per_exp` of a shuffled pass over its training data, as Avalanche's
/// `update_memory`); from the second experience on, before every training iteration the
/// current model's gradient of the criterion on each experience's whole memory is computed
/// (one forward *and* backward pass per past experience, the training model in training mode,
/// as Avalanche's `before_training_iteration`), giving `G = [g_1; …; g_k]`. In `after_backward`
/// (Avalanche's callback), if the mini-batch gradient `g` (all parameters flattened, a missing
/// gradient counting as zero) violates any constraint `⟨g, g_k⟩ >= 0`, it is replaced by
/// `g̃ = Gᵀv* + g` where `v*` solves the dual
///
/// `min_v ½ vᵀ(G Gᵀ + ridge·I)v + (G g)ᵀv   s.t.   v >= memory_strength`
///
/// exactly as Avalanche's `solve_quadprog`, and written back per parameter id into
/// `state.grads` (parameters without a gradient stay without one). With `ridge = 0` and
/// `memory_strength = γ`, `g̃` is the Euclidean projection of `g + γ Σ_k g_k` onto
/// `{x : G x >= 0}`.
///
/// Declares [`StatePart::GradientProjection`]: GEM and A-GEM cannot be combined.
///
/// # Differences from Avalanche
///
/// - The dual is solved with Clarabel (interior point) instead of `quadprog` (active set):
///   the same QP, solved to the solvers' tolerances.
/// - The memory keeps the samples, and the training transforms are applied each time a
///   reference gradient is computed; Avalanche stores the transformed tensors once (one
///   augmentation draw, frozen). The same without random augmentation.
/// - The memory is drawn from a generator seeded from the strategy seed (reproducible).
/// - `ridge` is a setting (default: Avalanche's hard-coded 1e-3).
///
/// ```
/// use burn::tensor::Device;
/// use cl_core::{OptimizerSpec, Strategy};
/// use cl_models::SimpleMlpConfig;
/// use cl_plugins::{GemConfig, GemPlugin};
/// let device = Device::default();
/// let model = SimpleMlpConfig::new().init(&device)?;
/// let gem = GemPlugin::new(GemConfig::new(256).with_memory_strength(0.5))?;
/// let strategy = Strategy::builder(model, OptimizerSpec::sgd(0.01), device).plugin(gem).build()?;
/// assert!(strategy.plugin::<GemPlugin>().is_some());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "GEMPlugin")]
pub struct GemPlugin {
    config: GemConfig,
    /// One memory per trained experience.
    memories: Vec<ClassificationDataset>,
    /// The reference gradients `G` `[k, parameters]` of the current iteration.
    reference: Option<Tensor<2>>,
    rng: ChaCha8Rng,
}

impl GemPlugin {
    /// A GEM plugin; an error ([`ClError::InvalidConfig`]) if `config` breaks one of its rules.
    pub fn new(config: GemConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config, memories: Vec::new(), reference: None, rng: ChaCha8Rng::seed_from_u64(0) })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &GemConfig {
        &self.config
    }

    /// The memories, one per trained experience.
    pub fn memories(&self) -> &[ClassificationDataset] {
        &self.memories
    }
}

/// Solves `min_v ½ vᵀ(P + ridge·I)v + cᵀv s.t. v ≥ margin` for a `k × k` row-major symmetric
/// `p` (symmetrised as Avalanche: `½(P + Pᵀ)`). An error message with the solver status on
/// failure.
fn solve_dual(p: &[f64], c: &[f64], margin: f64, ridge: f64) -> std::result::Result<Vec<f64>, String> {
    let k = c.len();
    debug_assert_eq!(p.len(), k * k);
    // Upper triangle of ½(P + Pᵀ) + ridge·I, column by column (Clarabel reads the upper part).
    let mut colptr = Vec::with_capacity(k + 1);
    let mut rowval = Vec::with_capacity(k * (k + 1) / 2);
    let mut nzval = Vec::with_capacity(k * (k + 1) / 2);
    colptr.push(0);
    for j in 0..k {
        for i in 0..=j {
            let mut value = 0.5 * (p[i * k + j] + p[j * k + i]);
            if i == j {
                value += ridge;
            }
            rowval.push(i);
            nzval.push(value);
        }
        colptr.push(rowval.len());
    }
    let pm = CscMatrix::new(k, k, colptr, rowval, nzval);
    // −I v + s = −margin, s ≥ 0  ⇔  v ≥ margin.
    let a = CscMatrix::new(k, k, (0..=k).collect(), (0..k).collect(), vec![-1.0; k]);
    let b = vec![-margin; k];
    let cones = [NonnegativeConeT(k)];
    let settings = DefaultSettings::<f64> { verbose: false, ..DefaultSettings::default() };
    let mut solver =
        DefaultSolver::new(&pm, c, &a, &b, &cones, settings).map_err(|e| format!("Clarabel setup failed: {e}"))?;
    solver.solve();
    match solver.solution.status {
        SolverStatus::Solved | SolverStatus::AlmostSolved if solver.solution.x.iter().all(|v| v.is_finite()) => {
            Ok(solver.solution.x.clone())
        }
        status => Err(format!("the GEM dual QP was not solved: Clarabel status {status:?}")),
    }
}

fn solver_error(callback: &'static str, message: String) -> ClError {
    ClError::Plugin { plugin: "GemPlugin".into(), callback, message }
}

/// GEM's projection of the gradient `g` given the reference gradients `memories`
/// (`g_1 … g_k`, each as long as `g`) and the margin `margin` (γ ≥ 0), computed in `f64`
/// without ridge: `g` itself when no constraint is violated (`⟨g, g_k⟩ ≥ 0` for all `k`),
/// else `g + Σ_k v*_k g_k` with `v*` the solution of the dual
/// `min_v ½ vᵀ(G Gᵀ)v + (G g)ᵀv s.t. v ≥ margin` — the point of `{x : ⟨x, g_k⟩ ≥ 0 ∀k}`
/// closest to `g + margin·Σ_k g_k`. Errors: lengths differ or `margin` is negative
/// (`ClError::InvalidConfig`); the solver fails (`ClError::Plugin`, with its status).
pub fn gem_project(g: &[f32], memories: &[Vec<f32>], margin: f32) -> Result<Vec<f32>> {
    gem_project_with_ridge(g, memories, margin, 0.0)
}

/// [`gem_project`] with `ridge · I` added to `G Gᵀ`, as Avalanche's `solve_quadprog` (which
/// uses 1e-3): the constraints then hold up to `ridge · v*_k`.
pub fn gem_project_with_ridge(g: &[f32], memories: &[Vec<f32>], margin: f32, ridge: f64) -> Result<Vec<f32>> {
    if memories.iter().any(|m| m.len() != g.len()) {
        return Err(ClError::config("memories", "every reference gradient must be as long as the gradient"));
    }
    if margin.is_nan() || margin < 0.0 {
        return Err(ClError::config("margin", "must be ≥ 0"));
    }
    if ridge.is_nan() || ridge < 0.0 {
        return Err(ClError::config("ridge", "must be ≥ 0"));
    }
    let dot = |a: &[f32], b: &[f32]| -> f64 { a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum() };
    let c: Vec<f64> = memories.iter().map(|m| dot(m, g)).collect();
    if !c.iter().any(|d| *d < 0.0) {
        return Ok(g.to_vec());
    }
    let k = memories.len();
    let mut p = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..k {
            p[i * k + j] = dot(&memories[i], &memories[j]);
        }
    }
    let v = solve_dual(&p, &c, margin as f64, ridge).map_err(|m| solver_error("gem_project", m))?;
    let mut out: Vec<f64> = g.iter().map(|x| *x as f64).collect();
    for (vk, m) in v.iter().zip(memories) {
        for (o, x) in out.iter_mut().zip(m) {
            *o += vk * *x as f64;
        }
    }
    Ok(out.into_iter().map(|x| x as f32).collect())
}

fn to_host(t: Tensor<1>) -> Result<Vec<f64>> {
    let data = t
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| solver_error("after_backward", format!("reading gradients: {e:?}")))?;
    Ok(data.into_iter().map(f64::from).collect())
}

impl GemPlugin {
    /// `g` projected against the rows of `gm` (`[k, p]`), or `None` when no constraint is
    /// violated; products on the device, the `k`-dimensional dual on the host.
    fn project_on_device(&self, g: Tensor<1>, gm: Tensor<2>, device: &Device) -> Result<Option<Tensor<1>>> {
        let [k, p] = gm.dims();
        let dots = to_host(gm.clone().matmul(g.clone().reshape([p, 1])).reshape([k]))?;
        if !dots.iter().any(|d| *d < 0.0) {
            return Ok(None);
        }
        let pp = to_host(gm.clone().matmul(gm.clone().transpose()).reshape([k * k]))?;
        let v = solve_dual(&pp, &dots, self.config.memory_strength, self.config.ridge)
            .map_err(|m| solver_error("after_backward", m))?;
        let v: Vec<f32> = v.into_iter().map(|x| x as f32).collect();
        let v = Tensor::<1>::from_floats(v.as_slice(), device).reshape([1, k]);
        Ok(Some(g + v.matmul(gm).reshape([p])))
    }
}

impl<M: Model> Plugin<M> for GemPlugin {
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::GradientProjection]
    }

    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        self.rng = ChaCha8Rng::seed_from_u64(state.experience_seed() ^ 0x6E3);
        Ok(())
    }

    fn before_training_iteration(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        self.reference = None;
        if self.memories.is_empty() {
            return Ok(());
        }
        let mut rows = Vec::with_capacity(self.memories.len());
        for memory in &self.memories {
            let indices: Vec<usize> = (0..memory.len()).collect();
            rows.push(memory_gradient(state, memory, &indices, &mut self.rng)?);
        }
        self.reference = Some(Tensor::stack(rows, 0));
        Ok(())
    }

    fn after_backward(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let Some(gm) = self.reference.take() else {
            return Ok(());
        };
        let [_, len] = gm.dims();
        let device = state.settings().eval_device().clone();
        project_gradients(state, len, "reference gradients", |g| self.project_on_device(g, gm, &device))
    }

    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        // As Avalanche's `update_memory`: the first `patterns_per_exp` samples of a shuffled
        // pass over the experience's (non-adapted) training data.
        let data = state.current_experience()?.dataset.train();
        let mut rng = ChaCha8Rng::seed_from_u64(state.experience_seed() ^ 0x6E3E);
        let memory = random_memory(data, self.config.patterns_per_exp, &mut rng)?;
        if !memory.is_empty() {
            self.memories.push(memory);
        }
        Ok(())
    }

    /// The configuration (checked on load), the memories (samples, labels, transforms), the
    /// generator at its exact position and the pending reference gradients (none at an
    /// experience boundary).
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config)?;
        put_datasets(out, "memories", &self.memories)?;
        out.put_rng("rng", &self.rng)?;
        put_opt_tensor(out, "reference", self.reference.as_ref())
    }

    fn load_state(&mut self, state: &StateDict, strategy: &StrategyState<M>) -> Result<()> {
        state.check_config("config", &self.config)?;
        self.memories = datasets(state, "memories")?;
        self.rng = state.rng("rng")?;
        self.reference = opt_tensor(state, "reference", strategy.settings().eval_device())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The memories (sample by sample) and the generator come back exactly; a checkpoint of
    /// another configuration is refused.
    #[test]
    fn checkpoint_restores_memories_and_generator() {
        use crate::persist::test_util::{assert_mismatch, assert_same_dataset, assert_same_rng, restore};
        use crate::regularization::test_support::{Tiny, device, sgd, stream};
        use cl_core::Strategy;
        let config = GemConfig::new(4);
        let mut s = Strategy::builder(Tiny::new(6), sgd(0.1), device())
            .train_mb_size(3)
            .plugin(GemPlugin::new(config.clone()).unwrap())
            .build()
            .unwrap();
        s.train(&stream(3, 6)).unwrap();
        let gem = s.plugin::<GemPlugin>().unwrap();
        assert_eq!(gem.memories().len(), 3);
        let mut fresh = GemPlugin::new(config).unwrap();
        let state = restore::<Tiny, _>(gem, &mut fresh, s.state());
        for (a, b) in gem.memories().iter().zip(fresh.memories()) {
            assert_same_dataset(a, b);
        }
        assert_same_rng(&gem.rng, &fresh.rng);
        let mut other = GemPlugin::new(GemConfig::new(4).with_memory_strength(0.1)).unwrap();
        assert_mismatch::<Tiny, _>(&state, &mut other, s.state());
    }

    #[test]
    fn dual_of_a_single_constraint_matches_the_closed_form() {
        // k = 1: v* = max(margin, −⟨g, m⟩/|m|²).
        let v = solve_dual(&[2.0], &[-1.0], 0.0, 0.0).unwrap();
        assert!((v[0] - 0.5).abs() < 1e-7, "{v:?}");
        let v = solve_dual(&[2.0], &[-1.0], 0.8, 0.0).unwrap();
        assert!((v[0] - 0.8).abs() < 1e-7, "{v:?}");
    }

    #[test]
    fn defaults_are_avalanches() {
        let c = GemConfig::new(256);
        assert_eq!((c.memory_strength, c.ridge), (0.5, 1e-3));
    }

    #[test]
    fn config_round_trips() {
        use cl_core::config::ConfigFile;
        let c = GemConfig::new(7).with_memory_strength(0.25).with_ridge(0.0);
        assert_eq!(GemConfig::from_json(&c.to_json()).unwrap(), c);
        assert_eq!(GemConfig::from_toml(&c.to_toml().unwrap()).unwrap(), c);
        assert_eq!(GemConfig::from_json(r#"{"patterns_per_experience": 7}"#).unwrap(), GemConfig::new(7));
        assert!(GemConfig::from_json(r#"{"patterns_per_exp": 7, "gamma": 1.0}"#).is_err(), "unknown field");
    }

    #[test]
    fn every_validation_rule() {
        use cl_core::config::assert_rule;
        let ok = GemConfig::new(4);
        assert!(ok.validate().is_ok());
        for (bad, rule) in [
            (ok.clone().with_patterns_per_exp(0), "patterns_per_exp_positive"),
            (ok.clone().with_memory_strength(-0.1), "memory_strength_finite_non_negative"),
            (ok.clone().with_memory_strength(f64::NAN), "memory_strength_finite_non_negative"),
            (ok.clone().with_ridge(-1.0), "ridge_finite_non_negative"),
            (ok.clone().with_ridge(f64::INFINITY), "ridge_finite_non_negative"),
        ] {
            assert_rule(bad.validate(), rule);
            assert_rule(GemPlugin::new(bad).map(|_| ()), rule);
        }
    }
}
