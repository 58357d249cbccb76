//! [`GemPlugin`]: Gradient Episodic Memory (Lopez-Paz & Ranzato, 2017; Avalanche's
//! `GEMPlugin`), and [`gem_project`], its projection of a gradient by the dual quadratic
//! program, solved with the `clarabel` interior-point solver.

use burn::tensor::{Device, Tensor};
use cl_core::{ClError, ClassificationDataset, Model, Plugin, Result, StatePart, StrategyState};
use clarabel::algebra::CscMatrix;
use clarabel::solver::{DefaultSettings, DefaultSolver, IPSolver, NonnegativeConeT, SolverStatus};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::agem::{memory_gradient, mix, project_gradients, random_memory};

/// The ridge Avalanche (and the authors' code) add to `G Gᵀ` before solving the dual.
pub const GEM_DEFAULT_RIDGE: f64 = 1e-3;

/// GEM: an episodic memory of `patterns_per_exp` random samples of each trained experience;
/// from the second experience on, before every training iteration the current model's
/// gradient of `state.criterion` on each experience's memory is computed (one forward *and*
/// backward pass per past experience, as Avalanche's `before_training_iteration`), giving
/// `G = [g_1; …; g_k]`. In `after_backward` (Avalanche's callback), if the mini-batch gradient
/// `g` (all parameters flattened, a missing gradient counting as zero) violates any
/// constraint `⟨g, g_k⟩ ≥ 0`, it is replaced by `g̃ = Gᵀv* + g` where `v*` solves the dual
///
/// `min_v ½ vᵀ(G Gᵀ + ridge·I)v + (G g)ᵀv   s.t.   v ≥ memory_strength`
///
/// exactly as Avalanche's `solve_quadprog` (ridge 1e-3 by default, see
/// [`with_ridge`](Self::with_ridge)), and written back per parameter id into `state.grads`.
/// With `ridge = 0` and `memory_strength = γ`, `g̃` is the Euclidean projection of
/// `g + γ Σ_k g_k` onto `{x : G x ≥ 0}`.
///
/// ```ignore
/// let gem = GemPlugin::new(256, 0.5)?;
/// let strategy = Naive::builder(model, optimizer, device).plugin(gem).build()?;
/// ```
pub struct GemPlugin {
    patterns_per_exp: usize,
    memory_strength: f64,
    ridge: f64,
    /// One memory per trained experience.
    memories: Vec<ClassificationDataset>,
    /// The reference gradients `G` `[k, parameters]` of the current iteration.
    reference: Option<Tensor<2>>,
    rng: ChaCha8Rng,
}

impl GemPlugin {
    /// A GEM plugin storing `patterns_per_exp` (≥ 1) samples per experience, with margin
    /// `memory_strength` (γ ≥ 0; Avalanche's examples use 0.5).
    pub fn new(patterns_per_exp: usize, memory_strength: f64) -> Result<Self> {
        if patterns_per_exp == 0 {
            return Err(ClError::config("patterns_per_exp", "must be at least 1"));
        }
        if !(memory_strength >= 0.0) || !memory_strength.is_finite() {
            return Err(ClError::config("memory_strength", "must be a finite number ≥ 0"));
        }
        Ok(Self {
            patterns_per_exp,
            memory_strength,
            ridge: GEM_DEFAULT_RIDGE,
            memories: Vec::new(),
            reference: None,
            rng: ChaCha8Rng::seed_from_u64(0),
        })
    }

    /// Sets the ridge added to `G Gᵀ` (default [`GEM_DEFAULT_RIDGE`], as Avalanche; 0 gives
    /// the exact projection). An error if negative or not finite.
    pub fn with_ridge(mut self, ridge: f64) -> Result<Self> {
        if !(ridge >= 0.0) || !ridge.is_finite() {
            return Err(ClError::config("ridge", "must be a finite number ≥ 0"));
        }
        self.ridge = ridge;
        Ok(self)
    }

    /// Samples stored per experience.
    pub fn patterns_per_exp(&self) -> usize {
        self.patterns_per_exp
    }

    /// The margin γ of the dual constraint `v ≥ γ`.
    pub fn memory_strength(&self) -> f64 {
        self.memory_strength
    }

    /// The ridge added to `G Gᵀ`.
    pub fn ridge(&self) -> f64 {
        self.ridge
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
    let settings = DefaultSettings::<f64> {
        verbose: false,
        ..DefaultSettings::default()
    };
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
    ClError::Plugin {
        plugin: "GemPlugin".into(),
        callback,
        message,
    }
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
    if !(margin >= 0.0) {
        return Err(ClError::config("margin", "must be ≥ 0"));
    }
    if !(ridge >= 0.0) {
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
        let v = solve_dual(&pp, &dots, self.memory_strength, self.ridge).map_err(|m| solver_error("after_backward", m))?;
        let v: Vec<f32> = v.into_iter().map(|x| x as f32).collect();
        let v = Tensor::<1>::from_floats(v.as_slice(), device).reshape([1, k]);
        Ok(Some(g + v.matmul(gm).reshape([p])))
    }
}

impl<M: Model> Plugin<M> for GemPlugin {
    fn name(&self) -> String {
        "GemPlugin".into()
    }

    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::Gradients]
    }

    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        self.rng = ChaCha8Rng::seed_from_u64(mix(state.seed, state.clock.train_exp_counter, 0x6E3));
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
        let device = state.eval_device.clone();
        project_gradients(state, len, "reference gradients", |g| self.project_on_device(g, gm, &device))
    }

    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        // As Avalanche's `update_memory`: the first `patterns_per_exp` samples of a shuffled
        // pass over the experience's (non-adapted) training data.
        let data = state.current_experience()?.dataset.train();
        let mut rng = ChaCha8Rng::seed_from_u64(mix(state.seed, state.clock.train_exp_counter, 0x6E3E));
        let memory = random_memory(data, self.patterns_per_exp, &mut rng)?;
        if !memory.is_empty() {
            self.memories.push(memory);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dual_of_a_single_constraint_matches_the_closed_form() {
        // k = 1: v* = max(margin, −⟨g, m⟩/|m|²).
        let v = solve_dual(&[2.0], &[-1.0], 0.0, 0.0).unwrap();
        assert!((v[0] - 0.5).abs() < 1e-7, "{v:?}");
        let v = solve_dual(&[2.0], &[-1.0], 0.8, 0.0).unwrap();
        assert!((v[0] - 0.8).abs() < 1e-7, "{v:?}");
    }

    #[test]
    fn invalid_hyper_parameters() {
        assert!(GemPlugin::new(0, 0.5).is_err());
        assert!(GemPlugin::new(1, -0.1).is_err());
        assert!(GemPlugin::new(1, f64::NAN).is_err());
        assert!(GemPlugin::new(1, 0.0).unwrap().with_ridge(-1.0).is_err());
    }
}
