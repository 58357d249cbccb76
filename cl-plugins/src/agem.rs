//! [`AGemPlugin`]: Averaged Gradient Episodic Memory (Chaudhry et al., 2019; Avalanche's
//! `AGEMPlugin`), and the flatten / write-back of gradients it relies on.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use cl_core::{ClError, ClassificationDataset, Model, Plugin, Result, StatePart, StrategyState};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// A-GEM: an episodic memory of `patterns_per_exp` random samples of each trained experience;
/// from the second experience on, before every training iteration the current model's
/// gradient of `state.criterion` on a sample of the memory is computed (the reference
/// gradient `g_ref`, a forward *and* backward pass on the training model, as Avalanche), and
/// before the update the mini-batch gradient `g` (all parameters flattened into one vector, a
/// parameter without a gradient counting as zero) is projected when it conflicts with it:
///
/// if `⟨g, g_ref⟩ < 0`: `g ← g − (⟨g, g_ref⟩ / ⟨g_ref, g_ref⟩) · g_ref`
///
/// and written back per parameter id into `state.grads`. As Avalanche's
/// `GroupBalancedInfiniteDataLoader`, the sample takes `sample_size / n` patterns (at least one)
/// from each of the `n` experience memories, cycling through each memory in a reshuffled order.
/// Memory selection and sampling are seeded from the strategy seed.
///
/// ```ignore
/// let agem = AGemPlugin::new(256, 256)?;
/// let strategy = Naive::builder(model, optimizer, device).plugin(agem).build()?;
/// ```
pub struct AGemPlugin {
    patterns_per_exp: usize,
    sample_size: usize,
    /// One memory per trained experience.
    buffers: Vec<ClassificationDataset>,
    /// All memories concatenated, and the first index of each in it.
    memory: Option<ClassificationDataset>,
    offsets: Vec<usize>,
    /// Per memory: a shuffled order and the position in it.
    orders: Vec<(Vec<usize>, usize)>,
    rng: ChaCha8Rng,
    reference: Option<Tensor<1>>,
}

impl AGemPlugin {
    /// An A-GEM plugin storing `patterns_per_exp` (≥ 1) samples per experience and computing
    /// the reference gradient on `sample_size` (≥ 1) memory samples.
    pub fn new(patterns_per_exp: usize, sample_size: usize) -> Result<Self> {
        if patterns_per_exp == 0 {
            return Err(ClError::config("patterns_per_exp", "must be at least 1"));
        }
        if sample_size == 0 {
            return Err(ClError::config("sample_size", "must be at least 1"));
        }
        Ok(Self {
            patterns_per_exp,
            sample_size,
            buffers: Vec::new(),
            memory: None,
            offsets: Vec::new(),
            orders: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(0),
            reference: None,
        })
    }

    /// Samples stored per experience.
    pub fn patterns_per_exp(&self) -> usize {
        self.patterns_per_exp
    }

    /// Memory samples per reference gradient.
    pub fn sample_size(&self) -> usize {
        self.sample_size
    }

    /// The memories, one per trained experience.
    pub fn buffers(&self) -> &[ClassificationDataset] {
        &self.buffers
    }

    /// All gradients of `model` in `grads` as one vector, in the module's visiting order; a
    /// parameter without a gradient (e.g. an unused head) contributes zeros. The vector lives
    /// on `device` (the gradients' device: the training device without autodiff).
    pub fn flatten_gradients<M: Module>(model: &M, grads: &GradientsParams, device: &Device) -> Tensor<1> {
        let mut visitor = Flatten {
            grads,
            parts: Vec::new(),
            device: device.clone(),
        };
        model.visit(&mut visitor);
        if visitor.parts.is_empty() {
            return Tensor::zeros([0], device);
        }
        Tensor::cat(visitor.parts, 0)
    }

    /// Writes `flat` (laid out as [`flatten_gradients`](Self::flatten_gradients)) back into
    /// `grads`, reshaped per parameter; parameters without a gradient entry stay without one
    /// (as Avalanche, which skips parameters whose `grad` is `None`).
    pub fn write_gradients<M: Module>(model: &M, flat: Tensor<1>, grads: &mut GradientsParams) {
        let mut visitor = WriteBack { flat, offset: 0, grads };
        model.visit(&mut visitor);
    }

    /// `g` projected against `g_ref` when they conflict (`⟨g, g_ref⟩ < 0`), or `None` when `g`
    /// is kept as is.
    pub fn project(g: Tensor<1>, g_ref: Tensor<1>) -> Option<Tensor<1>> {
        let dot = g.clone().mul(g_ref.clone()).sum().into_scalar::<f32>() as f64;
        if dot.is_nan() || dot >= 0.0 {
            return None;
        }
        let norm = g_ref.clone().mul(g_ref.clone()).sum().into_scalar::<f32>() as f64;
        Some(g - g_ref.mul_scalar(dot / norm))
    }

    fn next_indices(&mut self) -> Vec<usize> {
        let per_group = (self.sample_size / self.buffers.len()).max(1);
        let mut indices = Vec::with_capacity(per_group * self.buffers.len());
        for (g, (order, pos)) in self.orders.iter_mut().enumerate() {
            for _ in 0..per_group {
                if *pos == order.len() {
                    order.shuffle(&mut self.rng);
                    *pos = 0;
                }
                indices.push(self.offsets[g] + order[*pos]);
                *pos += 1;
            }
        }
        indices
    }
}

/// A seed from the strategy seed, the experience counter and a per-use salt.
pub(crate) fn mix(seed: u64, counter: u64, salt: u64) -> u64 {
    seed.wrapping_add(counter.wrapping_mul(0x9E37_79B9_7F4A_7C15)) ^ salt
}

/// An episodic memory of `data`: the first `n` samples of a shuffled pass (all of `data` if
/// it has at most `n`), as Avalanche's `update_memory`.
pub(crate) fn random_memory(
    data: ClassificationDataset,
    n: usize,
    rng: &mut ChaCha8Rng,
) -> Result<ClassificationDataset> {
    if data.len() <= n {
        return Ok(data);
    }
    let mut indices: Vec<usize> = (0..data.len()).collect();
    indices.shuffle(rng);
    indices.truncate(n);
    data.subset(&indices)
}

/// The current model's flattened gradient of `state.criterion` on `memory`'s samples at
/// `indices` (a forward and backward pass on the training model).
pub(crate) fn memory_gradient<M: Model>(
    state: &StrategyState<M>,
    memory: &ClassificationDataset,
    indices: &[usize],
    rng: &mut ChaCha8Rng,
) -> Result<Tensor<1>> {
    let batch = memory.batch(indices, &state.device, rng)?;
    let model = state.model();
    let out = model.forward(&batch);
    let [_, outputs] = out.dims();
    if let Some(&label) = batch.targets.iter().find(|&&y| y as usize >= outputs) {
        return Err(ClError::LabelOutOfRange { label, outputs });
    }
    let loss = state.criterion.loss(out, batch.y.clone());
    let grads = GradientsParams::from_grads(loss.backward(), model);
    Ok(AGemPlugin::flatten_gradients(model, &grads, &state.eval_device))
}

/// Flattens `state.grads` and, if `project` returns a new gradient, writes it back. An error
/// if there are no gradients, or if they are not `expected_len` long (`what`: the reference
/// the length comes from).
pub(crate) fn project_gradients<M: Model>(
    state: &mut StrategyState<M>,
    expected_len: usize,
    what: &str,
    project: impl FnOnce(Tensor<1>) -> Result<Option<Tensor<1>>>,
) -> Result<()> {
    let grads = state.grads.as_ref().ok_or(ClError::MissingState("grads"))?;
    let g = AGemPlugin::flatten_gradients(state.model(), grads, &state.eval_device);
    if g.dims()[0] != expected_len {
        return Err(ClError::config(
            "model",
            format!("the parameters changed between the {what} and the update"),
        ));
    }
    if let Some(projected) = project(g)? {
        let mut grads = state.grads.take().expect("checked above");
        AGemPlugin::write_gradients(state.model(), projected, &mut grads);
        state.grads = Some(grads);
    }
    Ok(())
}

struct Flatten<'a> {
    grads: &'a GradientsParams,
    parts: Vec<Tensor<1>>,
    device: Device,
}

impl ModuleVisitor for Flatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let n = param.val().shape().num_elements();
        let part = match self.grads.get::<D>(param.id) {
            Some(g) => g.reshape([n]),
            None => Tensor::zeros([n], &self.device),
        };
        self.parts.push(part);
    }
}

struct WriteBack<'a> {
    flat: Tensor<1>,
    offset: usize,
    grads: &'a mut GradientsParams,
}

impl ModuleVisitor for WriteBack<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let dims: [usize; D] = param.val().dims();
        let n: usize = dims.iter().product();
        if self.grads.get::<D>(param.id).is_some() {
            let part = self.flat.clone().narrow(0, self.offset, n).reshape(dims);
            self.grads.register(param.id, part);
        }
        self.offset += n;
    }
}

impl<M: Model> Plugin<M> for AGemPlugin {
    fn name(&self) -> String {
        "AGemPlugin".into()
    }

    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::Gradients]
    }

    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        self.rng = ChaCha8Rng::seed_from_u64(mix(state.seed, state.clock.train_exp_counter, 0xA6E3));
        Ok(())
    }

    fn before_training_iteration(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        self.reference = None;
        let Some(memory) = self.memory.clone() else {
            return Ok(());
        };
        let indices = self.next_indices();
        self.reference = Some(memory_gradient(state, &memory, &indices, &mut self.rng)?);
        Ok(())
    }

    fn before_update(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let Some(g_ref) = self.reference.take() else {
            return Ok(());
        };
        let [len] = g_ref.dims();
        project_gradients(state, len, "reference gradient", |g| Ok(Self::project(g, g_ref)))
    }

    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let data = state.current_experience()?.dataset.train();
        let mut rng = ChaCha8Rng::seed_from_u64(mix(state.seed, state.clock.train_exp_counter, 0x3E3A));
        let buffer = random_memory(data, self.patterns_per_exp, &mut rng)?;
        if buffer.is_empty() {
            return Ok(());
        }
        self.memory = Some(match &self.memory {
            Some(m) => m.concat(&buffer)?,
            None => buffer.clone(),
        });
        self.offsets = std::iter::once(0)
            .chain(self.buffers.iter().chain(std::iter::once(&buffer)).scan(0, |acc, b| {
                *acc += b.len();
                Some(*acc)
            }))
            .take(self.buffers.len() + 1)
            .collect();
        let mut order: Vec<usize> = (0..buffer.len()).collect();
        order.shuffle(&mut rng);
        self.orders.push((order, 0));
        self.buffers.push(buffer);
        Ok(())
    }
}
