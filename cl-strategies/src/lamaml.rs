//! [`LaMaml`]: Look-ahead Meta-Learning for continual learning (Gupta et al., "La-MAML:
//! Look-ahead Meta Learning for Continual Learning", NeurIPS 2020; Avalanche 0.6's `LaMAML` in
//! `avalanche/training/supervised/lamaml_v2.py`, the `torch.func` version that runs with
//! torch ≥ 2, on its `SupervisedMetaLearningTemplate`).
//!
//! Each training iteration:
//! 1. the incoming batch is cut into `n_inner_updates` chunks of `ceil(b / n)` rows; starting
//!    from the model's weights `W₀`, each chunk takes one look-ahead SGD step with per-parameter
//!    learnable rates `α` (one per weight, initialised to `alpha_init`):
//!    `Wᵢ = Wᵢ₋₁ − α ⊙ clamp(∇ CE(chunkᵢ; Wᵢ₋₁), ±grad_clip_norm)`;
//! 2. after each step, the meta-loss `Lᵢ = CE(batch + buffer batch; Wᵢ)` — the incoming batch
//!    with `buffer_mb_size` samples drawn from a reservoir memory of `max_buffer_size`
//!    (filled after each experience; no buffer on the first experience);
//! 3. the meta-loss `(1/n) Σ Lᵢ` is differentiated with respect to `W₀` and `α`; both gradients
//!    are clipped to a global norm of `grad_clip_norm`; `α` takes an SGD step of `lr_alpha`
//!    (`learn_lr`); then the model moves by its gradient times `relu(α)` (or, `sync_update`,
//!    by the strategy's own optimizer).
//!
//! The model is re-initialised as Avalanche does (`init_kaiming_normal`: the weights of
//! `Linear` and `Conv2d` layers from `N(0, 2 / fan_in)`, biases 0), from the config's seed.
//!
//! **First order only.** Burn's autodiff has no double backward, so the look-ahead steps'
//! gradients are constants (Avalanche's `second_order=False`). Then `∂Wᵢ/∂W₀ = I` and
//! `∂Wᵢ/∂α = −Σ_{j≤i} gⱼ`, so the meta-gradients are exact from each meta-loss's gradient at its
//! own weights: `∇W₀ = (1/n) Σᵢ ∇Lᵢ(Wᵢ)`, `∇α = (1/n) Σᵢ −(Σ_{j≤i} gⱼ) ⊙ ∇Lᵢ(Wᵢ)` — what
//! torch's backward computes through Avalanche's first-order graph. Avalanche's default is
//! `second_order=True`; the comparison runs it with `second_order=False`.
//!
//! Other deliberate differences: the loss and outputs the training metrics see are the model's
//! on the batch *before* the update and its criterion (Avalanche reports the meta-loss and the
//! updated model's outputs); plugins' loss terms (`add_loss`) are not part of the
//! meta-gradient (Avalanche's meta-learning template calls no `before_backward`); an empty
//! chunk (a batch of fewer than `n_inner_updates` rows) takes no look-ahead step (Avalanche
//! steps on the mean of an empty batch, NaN); a parameter that changes shape between
//! experiences is an error (Avalanche grows its rate with `alpha_init`).

use burn::module::{ModuleMapper, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use cl_core::checkpoint::StateDict;
use cl_core::config::Validate;
use cl_core::data::{ClassificationDataLoader, DataLoaderConfig, MiniBatch};
use cl_core::{ClError, Model, OptimizerSpec, Result, StrategyBuilder, StrategyState, TemplateSteps, step_defaults};
use cl_plugins::regularization::{ParamTensors, all_params};
use cl_plugins::storage::{ReservoirConfig, ReservoirSamplingBuffer};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::generative_replay::standard_normal;

/// The configuration of [`LaMaml`]: Avalanche's `LaMAML(n_inner_updates=5, grad_clip_norm=1.0,
/// learn_lr=True, lr_alpha=0.25, sync_update=False, alpha_init=0.1, max_buffer_size=200,
/// buffer_mb_size=10)`, first order.
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_strategies::LaMamlConfig;
/// let config = LaMamlConfig::default().with_max_buffer_size(500);
/// assert_eq!(LaMamlConfig::from_toml("max_buffer_size = 500")?, config);
/// assert_eq!(config.n_inner_updates, 5);
/// assert!(LaMamlConfig::from_toml("n_inner_updates = 0").is_err());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LaMamlConfig {
    /// Look-ahead steps per iteration, one per chunk of the batch (default 5, at least 1).
    pub n_inner_updates: usize,
    /// Clamp of the look-ahead gradients and global norm of the meta-gradients (default 1).
    pub grad_clip_norm: f64,
    /// Whether the rates `α` learn (default true).
    pub learn_lr: bool,
    /// The rates' SGD learning rate (default 0.25).
    pub lr_alpha: f64,
    /// Update the model with the strategy's optimizer instead of `relu(α)` (default false).
    pub sync_update: bool,
    /// The rates' initial value (default 0.1).
    pub alpha_init: f64,
    /// Samples in the reservoir memory (default 200, at least 1).
    pub max_buffer_size: usize,
    /// Memory samples added to each meta-batch (default 10, at least 1).
    pub buffer_mb_size: usize,
    /// Re-initialise the model as Avalanche's `init_kaiming_normal` does (default true).
    pub kaiming_init: bool,
    /// Seed of the initialisation, the reservoir and the memory batches (default 0).
    pub seed: u64,
}

impl Default for LaMamlConfig {
    fn default() -> Self {
        Self {
            n_inner_updates: 5,
            grad_clip_norm: 1.0,
            learn_lr: true,
            lr_alpha: 0.25,
            sync_update: false,
            alpha_init: 0.1,
            max_buffer_size: 200,
            buffer_mb_size: 10,
            kaiming_init: true,
            seed: 0,
        }
    }
}

impl LaMamlConfig {
    /// Sets the look-ahead steps per iteration.
    pub fn with_n_inner_updates(mut self, n: usize) -> Self {
        self.n_inner_updates = n;
        self
    }

    /// Sets the gradient clamp and norm.
    pub fn with_grad_clip_norm(mut self, v: f64) -> Self {
        self.grad_clip_norm = v;
        self
    }

    /// Sets whether the rates learn.
    pub fn with_learn_lr(mut self, on: bool) -> Self {
        self.learn_lr = on;
        self
    }

    /// Sets the rates' learning rate.
    pub fn with_lr_alpha(mut self, v: f64) -> Self {
        self.lr_alpha = v;
        self
    }

    /// Sets whether the strategy's optimizer updates the model.
    pub fn with_sync_update(mut self, on: bool) -> Self {
        self.sync_update = on;
        self
    }

    /// Sets the rates' initial value.
    pub fn with_alpha_init(mut self, v: f64) -> Self {
        self.alpha_init = v;
        self
    }

    /// Sets the memory size.
    pub fn with_max_buffer_size(mut self, n: usize) -> Self {
        self.max_buffer_size = n;
        self
    }

    /// Sets the memory samples per meta-batch.
    pub fn with_buffer_mb_size(mut self, n: usize) -> Self {
        self.buffer_mb_size = n;
        self
    }

    /// Sets whether the model is re-initialised.
    pub fn with_kaiming_init(mut self, on: bool) -> Self {
        self.kaiming_init = on;
        self
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

impl Validate for LaMamlConfig {
    /// `n_inner_updates_positive`, `grad_clip_norm_positive`, `lr_alpha_finite_non_negative`,
    /// `alpha_init_finite`, `max_buffer_size_positive`, `buffer_mb_size_positive`.
    fn validate(&self) -> Result<()> {
        let fail =
            |rule: &'static str, reason: String| Err(ClError::InvalidConfig { config: "LaMamlConfig", rule, reason });
        if self.n_inner_updates == 0 {
            return fail("n_inner_updates_positive", "LaMAML takes at least one look-ahead step".into());
        }
        if !(self.grad_clip_norm.is_finite() && self.grad_clip_norm > 0.0) {
            return fail("grad_clip_norm_positive", format!("must be a positive number, got {}", self.grad_clip_norm));
        }
        if !(self.lr_alpha.is_finite() && self.lr_alpha >= 0.0) {
            return fail("lr_alpha_finite_non_negative", format!("must be a finite number ≥ 0, got {}", self.lr_alpha));
        }
        if !self.alpha_init.is_finite() {
            return fail("alpha_init_finite", format!("must be a finite number, got {}", self.alpha_init));
        }
        if self.max_buffer_size == 0 {
            return fail("max_buffer_size_positive", "the memory holds at least one sample".into());
        }
        if self.buffer_mb_size == 0 {
            return fail("buffer_mb_size_positive", "at least one memory sample per meta-batch".into());
        }
        Ok(())
    }
}

/// The rows `start..start + len` of a batch.
fn rows(batch: &MiniBatch, start: usize, len: usize) -> MiniBatch {
    MiniBatch {
        x: batch.x.clone().narrow(0, start, len),
        y: batch.y.clone().narrow(0, start, len),
        t: batch.t.clone().narrow(0, start, len),
        targets: batch.targets[start..start + len].to_vec(),
        task_labels: batch.task_labels[start..start + len].to_vec(),
        sample_shape: batch.sample_shape.clone(),
    }
}

/// Sets each parameter that has an entry in `values` to that value (a fresh leaf that tracks
/// gradients when `track`), keeping its id.
struct SetParams<'a> {
    values: &'a ParamTensors,
    track: bool,
}

impl ModuleMapper for SetParams<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(entry) = self.values.get(param.id) else {
            return param;
        };
        let track = self.track;
        param.map(|t| {
            let dims: [usize; D] = t.dims();
            let value = Tensor::<D>::from_inner(entry.values.clone().reshape(dims)).to_device(&t.device());
            if track { value.require_grad() } else { value }
        })
    }
}

/// Avalanche's `init_kaiming_normal`: `Linear`/`Conv2d` weights from `N(0, 2 / fan_in)`
/// (PyTorch's `kaiming_normal_` defaults), their biases 0, drawn from a seeded host generator.
struct KaimingInit {
    path: Vec<String>,
    parents: Vec<String>,
    rng: ChaCha8Rng,
}

impl ModuleMapper for KaimingInit {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push(name.to_string());
        self.parents.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
        self.parents.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = self.path.last().cloned().unwrap_or_default();
        let parent = self.parents.last().cloned().unwrap_or_default();
        let layer = parent.strip_prefix("Struct:").unwrap_or(&parent);
        if !matches!(layer, "Linear" | "Conv2d") || !matches!(name.as_str(), "weight" | "bias") {
            return param;
        }
        let dims: [usize; D] = param.dims();
        let n: usize = dims.iter().product();
        let values: Vec<f32> = if name == "bias" {
            vec![0.0; n]
        } else {
            // Burn's Linear weight is [in, out]; Conv2d's [out, in / groups, kh, kw].
            let fan_in = if layer == "Linear" { dims[0] } else { dims[1..].iter().product() };
            let std = (2.0 / fan_in.max(1) as f64).sqrt() as f32;
            (0..n).map(|_| standard_normal(&mut self.rng) * std).collect()
        };
        param.map(|t| {
            let device = t.device();
            let track = t.is_require_grad();
            let new = Tensor::<D>::from_data(TensorData::new(values, dims.to_vec()), &device);
            if track { new.require_grad() } else { new }
        })
    }
}

/// `Σ ‖t‖²` over the entries, then each scaled by `clip / (norm + 1e-6)` when that is below 1
/// (PyTorch's `clip_grad_norm_`).
fn clip_global_norm(grads: ParamTensors, clip: f64) -> ParamTensors {
    // One host read: the squares summed on the device.
    let total = grads
        .iter()
        .map(|(_, e)| e.values.clone().powi_scalar(2).sum())
        .reduce(|a, b| a + b)
        .map_or(0.0, |t| t.into_scalar::<f64>().sqrt());
    let coef = clip / (total + 1e-6);
    if coef < 1.0 { grads.map(|t| t.mul_scalar(coef)) } else { grads }
}

/// `a ⊙ b` entry by entry (entries of `a` missing in `b` are dropped).
fn zip_with(a: &ParamTensors, b: &ParamTensors, f: impl Fn(Tensor<1>, Tensor<1>) -> Tensor<1>) -> ParamTensors {
    let mut out = ParamTensors::default();
    for (id, e) in a.iter() {
        if let Some(other) = b.get(id) {
            out.insert(id, e.name.clone(), e.dims.clone(), f(e.values.clone(), other.values.clone()));
        }
    }
    out
}

/// `f(a, b, c)` entry by entry (entries of `a` missing in `b` or `c` are dropped).
fn zip3(
    a: &ParamTensors,
    b: &ParamTensors,
    c: &ParamTensors,
    f: impl Fn(Tensor<1>, Tensor<1>, Tensor<1>) -> Tensor<1>,
) -> ParamTensors {
    let mut out = ParamTensors::default();
    for (id, e) in a.iter() {
        if let (Some(x), Some(y)) = (b.get(id), c.get(id)) {
            out.insert(id, e.name.clone(), e.dims.clone(), f(e.values.clone(), x.values.clone(), y.values.clone()));
        }
    }
    out
}

/// The steps of [`LaMaml`]: the look-ahead steps and meta-gradients in `backward`, the rates'
/// and the model's update in `optimizer_step`, the reservoir memory after each experience.
/// Reachable after build with `strategy.steps_as::<LaMamlSteps>()`.
pub struct LaMamlSteps {
    config: LaMamlConfig,
    alpha: Option<ParamTensors>,
    /// The meta-gradient of the model's weights, waiting for the update.
    alpha_grads: Option<ParamTensors>,
    buffer: ReservoirSamplingBuffer,
    trained: usize,
    rng: ChaCha8Rng,
}

impl std::fmt::Debug for LaMamlSteps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaMamlSteps").field("config", &self.config).field("trained", &self.trained).finish()
    }
}

impl LaMamlSteps {
    /// Steps for this configuration (validated by [`LaMaml::builder`]).
    pub fn new(config: LaMamlConfig) -> Result<Self> {
        let buffer = ReservoirSamplingBuffer::new(
            ReservoirConfig::new(config.max_buffer_size).with_seed(config.seed ^ 0x1A3A_3100),
        )?;
        let rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x1A3A_3100_0000_0002);
        Ok(Self { config, alpha: None, alpha_grads: None, buffer, trained: 0, rng })
    }

    /// The configuration.
    pub fn config(&self) -> &LaMamlConfig {
        &self.config
    }

    /// The learned rates, one flattened tensor per parameter (none before training).
    pub fn rates(&self) -> Option<&ParamTensors> {
        self.alpha.as_ref()
    }

    /// The reservoir memory.
    pub fn buffer(&self) -> &ReservoirSamplingBuffer {
        &self.buffer
    }

    /// `CE(batch; weights)` and its gradient with respect to `weights` (flattened, on `device`).
    fn loss_and_grad<M: Model>(
        state: &StrategyState<M>,
        weights: &ParamTensors,
        batch: &MiniBatch,
        device: &Device,
    ) -> Result<(Tensor<1>, ParamTensors)> {
        let fast = state.model().clone().map(&mut SetParams { values: weights, track: true });
        fast.check_batch(batch)?;
        let out = fast.forward(batch);
        cl_core::check_labels(&batch.targets, out.dims()[1])?;
        let loss = state.settings().criterion().loss(out, batch.y.clone());
        // The value stays on the device (no host read per pass).
        let value = loss.clone().inner();
        let grads = GradientsParams::from_grads(loss.backward(), &fast);
        Ok((value, ParamTensors::grads_of(&fast, &grads, device, &all_params)))
    }

    /// A memory batch of `buffer_mb_size` distinct samples (Avalanche's
    /// `randperm(len)[:buffer_mb_size]`).
    fn buffer_batch(&mut self, device: &Device) -> Result<Option<MiniBatch>> {
        let Some(memory) = self.buffer.buffer().filter(|m| !m.is_empty()) else {
            return Ok(None);
        };
        let mut idx: Vec<usize> = (0..memory.len()).collect();
        idx.shuffle(&mut self.rng);
        idx.truncate(self.config.buffer_mb_size);
        memory.train().batch(&idx, device, &mut self.rng).map(Some)
    }
}

impl<M: Model> TemplateSteps<M> for LaMamlSteps {
    /// Avalanche's `drop_last=True` loader.
    fn make_train_dataloader(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let ds = state.adapted_dataset.clone().ok_or(ClError::MissingState("adapted_dataset"))?;
        let config =
            DataLoaderConfig::train(state.settings().train_mb_size(), state.experience_seed()).with_drop_last(true);
        state.dataloader = Some(Box::new(ClassificationDataLoader::new(ds, config)?));
        Ok(())
    }

    /// The rates of new parameters start at `alpha_init`.
    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let device = state.settings().eval_device().clone();
        let current = ParamTensors::values_of(state.model(), &device, &all_params);
        let alpha = self.alpha.get_or_insert_with(ParamTensors::default);
        for (id, e) in current.iter() {
            match alpha.get(id) {
                Some(a) if a.dims != e.dims => {
                    return Err(ClError::InvalidUse(format!(
                        "LaMAML: the parameter `{}` changed shape from {:?} to {:?}; LaMAML keeps one rate per weight: \
                         use a model with fixed layers",
                        e.name, a.dims, e.dims
                    )));
                }
                Some(_) => {}
                None => {
                    let n = e.dims.iter().product::<usize>();
                    let init = Tensor::<1>::full([n], self.config.alpha_init, &device);
                    alpha.insert(id, e.name.clone(), e.dims.clone(), init);
                }
            }
        }
        Ok(())
    }

    /// The look-ahead steps and the meta-gradients: `state.grads` holds the model's (clipped),
    /// the steps keep the rates'; `state.loss` becomes the meta-loss.
    fn backward(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let device = state.settings().eval_device().clone();
        let alpha = self.alpha.clone().ok_or(ClError::MissingState("LaMAML rates (before_training_exp)"))?;
        let batch = state.current_batch()?.clone();
        let mixed = match self.trained {
            0 => batch.clone(),
            _ => match self.buffer_batch(state.batch_device())? {
                Some(memory) => batch.concat(&memory)?,
                None => batch.clone(),
            },
        };
        let n = self.config.n_inner_updates;
        let b = batch.len();
        let chunk = b.div_ceil(n);
        let clip = self.config.grad_clip_norm;
        let mut weights = ParamTensors::values_of(state.model(), &device, &all_params);
        let mut steps_sum: Option<ParamTensors> = None;
        let mut model_grad: Option<ParamTensors> = None;
        let mut alpha_grad: Option<ParamTensors> = None;
        let mut meta_loss: Option<Tensor<1>> = None;
        for i in 0..n {
            let start = (i * chunk).min(b);
            let len = chunk.min(b - start);
            if len > 0 {
                let (_, g) = Self::loss_and_grad(state, &weights, &rows(&batch, start, len), &device)?;
                let g = g.map(|t| t.clamp(-clip, clip));
                weights = zip3(&weights, &alpha, &g, |w, a, g| w - a * g);
                steps_sum = Some(match steps_sum {
                    Some(s) => zip_with(&s, &g, |s, g| s + g),
                    None => g,
                });
            }
            let (value, h) = Self::loss_and_grad(state, &weights, &mixed, &device)?;
            meta_loss = Some(match meta_loss {
                Some(m) => m + value,
                None => value,
            });
            if let Some(s) = &steps_sum {
                alpha_grad = Some(match alpha_grad {
                    Some(acc) => zip3(&acc, s, &h, |a, s, h| a - s * h),
                    None => zip_with(s, &h, |s, h| (s * h).neg()),
                });
            }
            model_grad = Some(match model_grad {
                Some(acc) => zip_with(&acc, &h, |a, h| a + h),
                None => h,
            });
        }
        let scale = 1.0 / n as f64;
        let model_grad = clip_global_norm(model_grad.expect("n ≥ 1").map(|t| t.mul_scalar(scale)), clip);
        self.alpha_grads = alpha_grad.map(|g| clip_global_norm(g.map(|t| t.mul_scalar(scale)), clip));
        // The model's gradient as the optimizer (sync_update) and the plugins see it.
        let mut grads = GradientsParams::new();
        let mut register = Register { grads: &mut grads, values: &model_grad };
        state.model().visit(&mut register);
        state.grads = Some(grads);
        let meta_loss = meta_loss.expect("n ≥ 1").mul_scalar(scale);
        state.loss = Some(Tensor::<1>::from_inner(meta_loss).to_device(state.settings().device()));
        Ok(())
    }

    /// The rates' SGD step (`learn_lr`), then the model's: `W − g ⊙ relu(α)`, or the
    /// strategy's optimizer (`sync_update`).
    fn optimizer_step(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        if self.config.learn_lr
            && let (Some(alpha), Some(g)) = (self.alpha.take(), self.alpha_grads.take())
        {
            // Parameters without a meta-gradient keep their rates.
            let lr = self.config.lr_alpha;
            let mut alpha = alpha;
            for (id, g) in g.iter() {
                alpha.update(id, |a| a - g.values.clone().mul_scalar(lr));
            }
            self.alpha = Some(alpha);
        }
        self.alpha_grads = None;
        if self.config.sync_update {
            return step_defaults::optimizer_step(state);
        }
        let grads = state.grads.take().ok_or(ClError::MissingState("grads"))?;
        let device = state.settings().eval_device().clone();
        let model = state.model();
        let g = ParamTensors::grads_of(model, &grads, &device, &all_params);
        let current = ParamTensors::values_of(model, &device, &all_params);
        let alpha = self.alpha.as_ref().ok_or(ClError::MissingState("LaMAML rates"))?;
        let scaled = zip_with(&g, alpha, |g, a| g * burn::tensor::activation::relu(a));
        let updated = zip_with(&current, &scaled, |w, s| w - s);
        state.map_model(|model| model.map(&mut SetParams { values: &updated, track: true }))
    }

    /// Adds the experience's data to the reservoir memory.
    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let data = state.current_experience()?.dataset.train();
        self.buffer.update_from_dataset(&data)?;
        self.trained += 1;
        Ok(())
    }

    /// The configuration (checked on load), the rates, the memory, its generator and the
    /// experiences trained.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config)?;
        out.put("trained", &self.trained)?;
        out.put_rng("rng", &self.rng)?;
        out.put("has_rates", &self.alpha.is_some())?;
        if let Some(alpha) = &self.alpha {
            let mut dict = StateDict::new(format!("{} (rates)", out.component()));
            alpha.save_state(&mut dict)?;
            out.put_dict("rates", dict);
        }
        let mut dict = StateDict::new(format!("{} (memory)", out.component()));
        self.buffer.save_state(&mut dict)?;
        out.put_dict("memory", dict);
        Ok(())
    }

    fn load_state(&mut self, state: &StateDict, strategy: &StrategyState<M>) -> Result<()> {
        state.check_config("config", &self.config)?;
        self.trained = state.get("trained")?;
        self.rng = state.rng("rng")?;
        self.alpha = match state.get::<bool>("has_rates")? {
            true => Some(ParamTensors::load_state(state.dict("rates")?, strategy.settings().eval_device())?),
            false => None,
        };
        self.buffer.load_state(state.dict("memory")?)?;
        self.alpha_grads = None;
        Ok(())
    }
}

/// Registers the model's meta-gradient in a `GradientsParams`, per parameter with its rank.
struct Register<'a> {
    grads: &'a mut GradientsParams,
    values: &'a ParamTensors,
}

impl burn::module::ModuleVisitor for Register<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(e) = self.values.get(param.id) {
            let dims: [usize; D] = param.dims();
            let device = param.val().device();
            self.grads.register(param.id, Tensor::<D>::from_inner(e.values.clone().reshape(dims)).to_device(&device));
        }
    }
}

/// LaMAML (Avalanche's `LaMAML`, first order; see the [module docs](self)): the default
/// template with [`LaMamlSteps`]. The model is re-initialised (Kaiming normal) when
/// `kaiming_init`; the strategy's optimizer updates it only with `sync_update`.
pub struct LaMaml;

impl LaMaml {
    /// A builder with the LaMAML steps and the default evaluator.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: LaMamlConfig,
    ) -> Result<StrategyBuilder<M>> {
        config.validate()?;
        let model = match config.kaiming_init {
            true => model.map(&mut KaimingInit {
                path: Vec::new(),
                parents: Vec::new(),
                rng: ChaCha8Rng::seed_from_u64(config.seed ^ 0x004B_4149_4D49_4E47),
            }),
            false => model,
        };
        Ok(StrategyBuilder::new(model, optimizer, device).steps(LaMamlSteps::new(config)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use cl_core::data::ClassificationDataset;
    use cl_core::{Experience, Strategy};
    use cl_models::{SimpleMlp, SimpleMlpConfig};

    fn device() -> Device {
        Device::flex()
    }

    fn experience(index: usize, classes: [u32; 2], n: usize) -> Experience {
        let inputs: Vec<f32> = (0..n * 4)
            .map(|i| {
                let row = i / 4;
                let c = classes[row % 2] as f32;
                (((i * 37 + index * 11) % 13) as f32 - 6.0) / 12.0 + if i % 4 == (c as usize) % 4 { 1.5 } else { 0.0 }
            })
            .collect();
        let targets: Vec<u32> = (0..n).map(|i| classes[i % 2]).collect();
        Experience::new(index, ClassificationDataset::from_f32(inputs, vec![4], targets).unwrap(), "train", 4)
    }

    fn model() -> SimpleMlp {
        SimpleMlpConfig::new()
            .with_input_size(4)
            .with_hidden_size(16)
            .with_num_classes(4)
            .with_drop_rate(0.0)
            .init(&device())
            .unwrap()
    }

    fn accuracy(s: &mut Strategy<SimpleMlp>, exp: &Experience) -> f64 {
        let r = s.eval(exp).unwrap();
        *r.iter().find(|(k, _)| k.starts_with("Top1_Acc_Exp")).unwrap().1
    }

    #[test]
    fn learns_the_first_experience_and_its_rates_grow() {
        let exp = experience(0, [0, 1], 64);
        let mut s = LaMaml::builder(model(), OptimizerSpec::sgd(0.1), device(), LaMamlConfig::default())
            .unwrap()
            .train_mb_size(8)
            .train_epochs(5)
            .build()
            .unwrap();
        let before = accuracy(&mut s, &exp);
        s.train(&exp).unwrap();
        let after = accuracy(&mut s, &exp);
        let rates = s.steps_as::<LaMamlSteps>().unwrap().rates().unwrap();
        let mean = rates.total() / rates.iter().map(|(_, e)| e.dims.iter().product::<usize>()).sum::<usize>() as f64;
        assert!(after > before + 0.3 && after > 0.9, "accuracy {before} -> {after}");
        assert!(mean > 0.1, "the rates grow where the look-ahead steps help: mean {mean}");
    }

    /// Captures the batch of each training iteration.
    struct Batches(std::sync::Arc<std::sync::Mutex<Vec<MiniBatch>>>);

    impl cl_core::Plugin<SimpleMlp> for Batches {
        fn before_forward(&mut self, state: &mut StrategyState<SimpleMlp>) -> Result<()> {
            self.0.lock().unwrap().push(state.current_batch()?.clone());
            Ok(())
        }
    }

    /// Flattened tensors of a module's parameters, by path (autodiff leaves when `track`).
    fn flat_params(model: &SimpleMlp) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let mut out = Vec::new();
        struct V<'a>(Vec<String>, &'a mut Vec<(String, Vec<usize>, Vec<f32>)>);
        impl burn::module::ModuleVisitor for V<'_> {
            fn enter_module(&mut self, name: &str, _: &str) {
                self.0.push(name.into());
            }
            fn exit_module(&mut self, _: &str, _: &str) {
                self.0.pop();
            }
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
                let v = p.val();
                self.1.push((self.0.join("."), v.dims().to_vec(), v.into_data().try_into_vec_as::<f32>().unwrap()));
            }
        }
        model.visit(&mut V(Vec::new(), &mut out));
        out
    }

    /// Sets the parameters (in visiting order) to the given flat tensors (kept as they are: leaves
    /// or graph nodes).
    struct SetFlat(Vec<Tensor<1>>, usize);

    impl ModuleMapper for SetFlat {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let t = self.0[self.1].clone();
            self.1 += 1;
            param.map(|old| {
                let dims: [usize; D] = old.dims();
                t.reshape(dims)
            })
        }
    }

    /// One iteration of LaMAML against the first-order graph built by hand with Burn's autodiff:
    /// `Wᵢ = Wᵢ₋₁ − α ⊙ detach(∇CE(chunkᵢ; Wᵢ₋₁))`, meta-loss `mean CE(batch; Wᵢ)` backpropagated
    /// to `W₀` and `α` (what torch computes through Avalanche's `second_order=False` graph).
    #[test]
    fn one_iteration_matches_the_first_order_graph_built_by_hand() {
        let exp = experience(0, [0, 1], 6);
        let lr_alpha = 0.25;
        let config = LaMamlConfig::default().with_n_inner_updates(2).with_grad_clip_norm(1e9).with_seed(3);
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut s = LaMaml::builder(model(), OptimizerSpec::sgd(0.1), device(), config)
            .unwrap()
            .train_mb_size(6)
            .plugin(Batches(seen.clone()))
            .build()
            .unwrap();
        let w0 = flat_params(s.model());
        s.train(&exp).unwrap();
        let w1 = flat_params(s.model());
        let alpha1 = s.steps_as::<LaMamlSteps>().unwrap().rates().unwrap().clone();
        let batch = seen.lock().unwrap()[0].clone();
        assert_eq!(batch.len(), 6);

        // The graph by hand.
        let dev = device().autodiff();
        let leaves: Vec<Tensor<1>> = w0
            .iter()
            .map(|(_, _, v)| Tensor::<1>::from_data(TensorData::new(v.clone(), [v.len()]), &dev).require_grad())
            .collect();
        let alphas: Vec<Tensor<1>> =
            w0.iter().map(|(_, _, v)| Tensor::<1>::full([v.len()], 0.1, &dev).require_grad()).collect();
        let ce = |weights: Vec<Tensor<1>>, b: &MiniBatch| {
            let m = s.model().clone().map(&mut SetFlat(weights, 0));
            burn::nn::loss::CrossEntropyLossConfig::new().init(&dev).forward(m.forward_tensor(b.x.clone()), b.y.clone())
        };
        let mut weights = leaves.clone();
        let mut meta: Option<Tensor<1>> = None;
        for i in 0..2 {
            let chunk = rows(&batch, 3 * i, 3);
            let detached: Vec<Tensor<1>> = weights.iter().map(|w| w.clone().detach().require_grad()).collect();
            let loss = ce(detached.clone(), &chunk);
            let g = loss.backward();
            let grads: Vec<Tensor<1>> =
                detached.iter().map(|d| Tensor::<1>::from_inner(d.grad(&g).unwrap()).clamp(-1e9, 1e9)).collect();
            weights = weights.iter().zip(&alphas).zip(grads).map(|((w, a), g)| w.clone() - a.clone() * g).collect();
            let l = ce(weights.clone(), &batch);
            meta = Some(match meta {
                Some(m) => m + l,
                None => l,
            });
        }
        let g = meta.unwrap().div_scalar(2.0).backward();
        for (k, (name, _, v0)) in w0.iter().enumerate() {
            let gw: Vec<f32> = leaves[k].grad(&g).unwrap().into_data().try_into_vec_as::<f32>().unwrap();
            let ga: Vec<f32> = alphas[k].grad(&g).unwrap().into_data().try_into_vec_as::<f32>().unwrap();
            let (_, a1) = alpha1.iter().find(|(_, e)| &e.name == name).unwrap();
            let a1: Vec<f32> = a1.values.clone().into_data().try_into_vec_as::<f32>().unwrap();
            for j in 0..v0.len() {
                let expected_a = 0.1 - lr_alpha * ga[j];
                assert!((a1[j] - expected_a).abs() < 1e-5, "{name}[{j}] rate {} vs {expected_a}", a1[j]);
                let expected_w = v0[j] - gw[j] * expected_a.max(0.0);
                assert!((w1[k].2[j] - expected_w).abs() < 1e-5, "{name}[{j}] weight {} vs {expected_w}", w1[k].2[j]);
            }
        }
    }

    #[test]
    fn kaiming_initialisation_and_the_optimizer_path() {
        let s = LaMaml::builder(model(), OptimizerSpec::sgd(0.1), device(), LaMamlConfig::default()).unwrap();
        let built = s.build().unwrap();
        for (name, dims, values) in flat_params(built.model()) {
            if name.ends_with("bias") {
                assert!(values.iter().all(|v| *v == 0.0), "{name} is zero");
            } else {
                let n = values.len() as f64;
                let var = values.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / n;
                let expected = 2.0 / dims[0] as f64;
                assert!((var / expected - 1.0).abs() < 0.35, "{name}: variance {var} vs 2 / fan_in = {expected}");
            }
        }
        // sync_update: the strategy's optimizer applies the meta-gradient.
        let exp = experience(0, [0, 1], 16);
        let mut s =
            LaMaml::builder(model(), OptimizerSpec::sgd(0.5), device(), LaMamlConfig::default().with_sync_update(true))
                .unwrap()
                .train_mb_size(8)
                .train_epochs(3)
                .build()
                .unwrap();
        let before = flat_params(s.model());
        s.train(&exp).unwrap();
        assert_ne!(flat_params(s.model()), before);
    }

    #[test]
    fn the_configuration_rules() {
        use cl_core::config::assert_rule;
        assert_rule(LaMamlConfig::default().with_n_inner_updates(0).validate(), "n_inner_updates_positive");
        assert_rule(LaMamlConfig::default().with_grad_clip_norm(0.0).validate(), "grad_clip_norm_positive");
        assert_rule(LaMamlConfig::default().with_lr_alpha(-1.0).validate(), "lr_alpha_finite_non_negative");
        assert_rule(LaMamlConfig::default().with_alpha_init(f64::INFINITY).validate(), "alpha_init_finite");
        assert_rule(LaMamlConfig::default().with_max_buffer_size(0).validate(), "max_buffer_size_positive");
        assert_rule(LaMamlConfig::default().with_buffer_mb_size(0).validate(), "buffer_mb_size_positive");
    }
}
