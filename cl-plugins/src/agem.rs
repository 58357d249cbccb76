//! [`AGemPlugin`]: Averaged Gradient Episodic Memory (Chaudhry et al., 2019; Avalanche's
//! `AGEMPlugin`), and the flatten / write-back of gradients it relies on.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, rule};
use cl_core::data::ClassificationDataset;
use cl_core::{ClError, Model, Plugin, Result, StatePart, StrategyState};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::persist::{bad_entry, datasets, opt_tensor, put_datasets, put_opt_tensor};

/// The default `sample_size`: Avalanche's `AGEM` strategy's (the plugin has none).
fn default_sample_size() -> usize {
    64
}

/// A-GEM's hyper-parameters: Avalanche's `AGEMPlugin(patterns_per_experience, sample_size)`
/// (`patterns_per_experience` is also accepted as the field's name in files) with the `AGEM`
/// strategy's default `sample_size = 64`.
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_plugins::{AGemConfig, AGemPlugin};
/// let agem = AGemPlugin::new(AGemConfig::new(256).with_sample_size(256))?;
/// assert_eq!(AGemConfig::from_toml("patterns_per_exp = 100")?.sample_size, 64);
/// assert!(AGemPlugin::new(AGemConfig::new(100).with_sample_size(0)).is_err());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "AGEMPlugin")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AGemConfig {
    /// Samples stored per experience (`>= 1`; required, as in Avalanche).
    #[serde(alias = "patterns_per_experience")]
    pub patterns_per_exp: usize,
    /// Memory samples per reference gradient, split evenly over the experiences' memories
    /// (`>= 1`; default 64, as Avalanche's `AGEM` strategy).
    #[serde(default = "default_sample_size")]
    pub sample_size: usize,
}

impl AGemConfig {
    /// `patterns_per_exp` samples per experience, with `sample_size = 64`.
    pub fn new(patterns_per_exp: usize) -> Self {
        Self { patterns_per_exp, sample_size: default_sample_size() }
    }

    /// Sets `patterns_per_exp`.
    pub fn with_patterns_per_exp(mut self, patterns_per_exp: usize) -> Self {
        self.patterns_per_exp = patterns_per_exp;
        self
    }

    /// Sets `sample_size`.
    pub fn with_sample_size(mut self, sample_size: usize) -> Self {
        self.sample_size = sample_size;
        self
    }
}

impl Validate for AGemConfig {
    fn validate(&self) -> Result<()> {
        const C: &str = "AGemConfig";
        rule(C, "patterns_per_exp_positive", self.patterns_per_exp >= 1, || {
            "patterns_per_exp must be at least 1".into()
        })?;
        rule(C, "sample_size_positive", self.sample_size >= 1, || "sample_size must be at least 1".into())
    }
}

/// Averaged Gradient Episodic Memory: Avalanche's `AGEMPlugin`
/// (`avalanche/training/plugins/agem.py`), the plugin of the `AGem` strategy.
///
/// An episodic memory of `patterns_per_exp` random samples of each trained experience (a
/// random subset, kept in that random order, as Avalanche's `update_memory`); from the second
/// experience on, before every training iteration the current model's gradient of the
/// criterion on a sample of the memory is computed (the reference gradient `g_ref`, a forward
/// *and* backward pass on the training model, as Avalanche), and in `after_backward`
/// (Avalanche's callback) the mini-batch gradient `g` (all parameters flattened into one
/// vector, a parameter without a gradient counting as zero) is projected when it conflicts
/// with it:
///
/// if `⟨g, g_ref⟩ < 0`: `g ← g − (⟨g, g_ref⟩ / ⟨g_ref, g_ref⟩) · g_ref`
///
/// and written back per parameter id into `state.grads`. The sample is Avalanche's
/// `GroupBalancedInfiniteDataLoader` over the `n` memories with per-memory batch
/// `sample_size / n`: each memory is read sequentially in its stored order, the last batch of
/// a pass being the rest of the memory, then again from its start; the positions restart
/// whenever a memory is added. As in Avalanche the memories are dataset views: the training
/// transforms are applied each time a reference batch is built.
///
/// Declares [`StatePart::GradientProjection`]: GEM and A-GEM cannot be combined.
///
/// # Differences from Avalanche
///
/// - With more memories than `sample_size` (`sample_size / n == 0`), one sample per memory is
///   taken; Avalanche fails (a data loader with batch size 0).
/// - The memory is drawn from a generator seeded from the strategy seed (reproducible).
///
/// ```
/// use burn::tensor::Device;
/// use cl_core::{OptimizerSpec, Strategy};
/// use cl_models::SimpleMlpConfig;
/// use cl_plugins::{AGemConfig, AGemPlugin};
/// let device = Device::default();
/// let model = SimpleMlpConfig::new().init(&device)?;
/// let agem = AGemPlugin::new(AGemConfig::new(256).with_sample_size(256))?;
/// let strategy = Strategy::builder(model, OptimizerSpec::sgd(0.01), device).plugin(agem).build()?;
/// assert!(strategy.plugin::<AGemPlugin>().is_some());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "AGEMPlugin")]
pub struct AGemPlugin {
    config: AGemConfig,
    /// One memory per trained experience.
    buffers: Vec<ClassificationDataset>,
    /// All memories concatenated, and the first index of each in it.
    memory: Option<ClassificationDataset>,
    offsets: Vec<usize>,
    /// Per memory: the position of the next sample.
    positions: Vec<usize>,
    rng: ChaCha8Rng,
    reference: Option<Tensor<1>>,
}

impl AGemPlugin {
    /// An A-GEM plugin; an error ([`ClError::InvalidConfig`]) if `config` breaks one of its
    /// rules.
    pub fn new(config: AGemConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            buffers: Vec::new(),
            memory: None,
            offsets: Vec::new(),
            positions: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(0),
            reference: None,
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AGemConfig {
        &self.config
    }

    /// The memories, one per trained experience.
    pub fn buffers(&self) -> &[ClassificationDataset] {
        &self.buffers
    }

    /// All gradients of `model` in `grads` as one vector, in the module's visiting order; a
    /// parameter without a gradient (e.g. an unused head) contributes zeros. The vector lives
    /// on `device` (the gradients' device: the training device without autodiff).
    pub fn flatten_gradients<M: Module>(model: &M, grads: &GradientsParams, device: &Device) -> Tensor<1> {
        let mut visitor = Flatten { grads, parts: Vec::new(), device: device.clone() };
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

    /// The indices (into the concatenated memory) of the next reference sample: per memory,
    /// the next `max(sample_size / n, 1)` samples in order, fewer at the end of a pass (a
    /// sequential batch sampler that restarts when exhausted).
    fn next_indices(&mut self) -> Vec<usize> {
        let per_group = (self.config.sample_size / self.buffers.len()).max(1);
        let mut indices = Vec::with_capacity(per_group * self.buffers.len());
        for (g, pos) in self.positions.iter_mut().enumerate() {
            let len = self.buffers[g].len();
            if *pos >= len {
                *pos = 0;
            }
            let end = (*pos + per_group).min(len);
            indices.extend((*pos..end).map(|i| self.offsets[g] + i));
            *pos = end;
        }
        indices
    }
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

/// The current model's flattened gradient of the criterion on `memory`'s samples at
/// `indices` (a forward and backward pass on the training model).
pub(crate) fn memory_gradient<M: Model>(
    state: &StrategyState<M>,
    memory: &ClassificationDataset,
    indices: &[usize],
    rng: &mut ChaCha8Rng,
) -> Result<Tensor<1>> {
    let settings = state.settings();
    let batch = memory.batch(indices, settings.device(), rng)?;
    let model = state.model();
    let out = model.forward(&batch);
    cl_core::check_labels(&batch.targets, out.dims()[1])?;
    let loss = settings.criterion().loss(out, batch.y.clone());
    let grads = GradientsParams::from_grads(loss.backward(), model);
    Ok(AGemPlugin::flatten_gradients(model, &grads, settings.eval_device()))
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
    let g = AGemPlugin::flatten_gradients(state.model(), grads, state.settings().eval_device());
    if g.dims()[0] != expected_len {
        return Err(ClError::config("model", format!("the parameters changed between the {what} and the update")));
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
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::GradientProjection]
    }

    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        self.rng = ChaCha8Rng::seed_from_u64(state.experience_seed() ^ 0xA6E3);
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

    fn after_backward(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let Some(g_ref) = self.reference.take() else {
            return Ok(());
        };
        let [len] = g_ref.dims();
        project_gradients(state, len, "reference gradient", |g| Ok(Self::project(g, g_ref)))
    }

    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let data = state.current_experience()?.dataset.train();
        let mut rng = ChaCha8Rng::seed_from_u64(state.experience_seed() ^ 0x3E3A);
        let buffer = random_memory(data, self.config.patterns_per_exp, &mut rng)?;
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
        self.buffers.push(buffer);
        // A new loader over all memories (Avalanche's `update_memory`): every memory restarts.
        self.positions = vec![0; self.buffers.len()];
        Ok(())
    }

    /// The configuration (checked on load), the memories (samples, labels, transforms; their
    /// concatenation is rebuilt on load), each memory's read position, the generator at its
    /// exact position and the pending reference gradient (none at an experience boundary).
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config)?;
        put_datasets(out, "buffers", &self.buffers)?;
        out.put("positions", &self.positions)?;
        out.put_rng("rng", &self.rng)?;
        put_opt_tensor(out, "reference", self.reference.as_ref())
    }

    fn load_state(&mut self, state: &StateDict, strategy: &StrategyState<M>) -> Result<()> {
        state.check_config("config", &self.config)?;
        let buffers = datasets(state, "buffers")?;
        let positions: Vec<usize> = state.get("positions")?;
        if positions.len() != buffers.len() {
            return Err(bad_entry(
                state,
                "positions",
                format!("{} positions for {} memories", positions.len(), buffers.len()),
            ));
        }
        let mut memory: Option<ClassificationDataset> = None;
        let mut offsets = Vec::with_capacity(buffers.len());
        for b in &buffers {
            offsets.push(memory.as_ref().map_or(0, ClassificationDataset::len));
            memory = Some(match memory {
                Some(m) => m.concat(b)?,
                None => b.clone(),
            });
        }
        self.rng = state.rng("rng")?;
        self.reference = opt_tensor(state, "reference", strategy.settings().eval_device())?;
        self.buffers = buffers;
        self.memory = memory;
        self.offsets = offsets;
        self.positions = positions;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regularization::test_support::{Tiny, device, generated, sgd};
    use crate::{GemConfig, GemPlugin};
    use cl_core::Strategy;
    use cl_core::config::{ConfigFile, assert_rule};

    #[test]
    fn defaults_are_avalanches() {
        assert_eq!(AGemConfig::new(10).sample_size, 64);
        assert_eq!(AGemConfig::from_json(r#"{"patterns_per_experience": 10}"#).unwrap(), AGemConfig::new(10));
    }

    #[test]
    fn config_round_trips() {
        let c = AGemConfig::new(100).with_sample_size(32);
        assert_eq!(AGemConfig::from_json(&c.to_json()).unwrap(), c);
        assert_eq!(AGemConfig::from_toml(&c.to_toml().unwrap()).unwrap(), c);
        assert!(AGemConfig::from_json(r#"{"sample_size": 3}"#).is_err(), "patterns_per_exp is required");
    }

    #[test]
    fn every_validation_rule() {
        let ok = AGemConfig::new(10);
        for (bad, rule) in [
            (ok.clone().with_patterns_per_exp(0), "patterns_per_exp_positive"),
            (ok.clone().with_sample_size(0), "sample_size_positive"),
        ] {
            assert_rule(bad.validate(), rule);
            assert_rule(AGemPlugin::new(bad).map(|_| ()), rule);
        }
    }

    #[test]
    fn gem_and_agem_both_project_the_gradients_and_are_rejected_together() {
        let gem = || GemPlugin::new(GemConfig::new(4)).unwrap();
        let agem = || AGemPlugin::new(AGemConfig::new(4)).unwrap();
        assert_eq!(Plugin::<Tiny>::writes(&gem()), vec![StatePart::GradientProjection]);
        assert_eq!(Plugin::<Tiny>::writes(&agem()), vec![StatePart::GradientProjection]);
        let both = Strategy::builder(Tiny::new(2), sgd(0.1), device()).plugin(gem()).plugin(agem()).build();
        let err = both.err().expect("GEM + A-GEM must not build");
        assert!(
            matches!(&err, ClError::IncompatiblePlugins(m) if m.contains("GemPlugin") && m.contains("AGemPlugin")),
            "{err:?}"
        );
        assert!(Strategy::builder(Tiny::new(2), sgd(0.1), device()).plugin(agem()).build().is_ok());
    }

    /// The memories, their concatenation, the read positions and the generator come back
    /// exactly (the next reference samples are the same); another configuration is refused.
    #[test]
    fn checkpoint_restores_memories_positions_and_generator() {
        use crate::persist::test_util::{assert_mismatch, assert_same_dataset, assert_same_rng, restore};
        use crate::regularization::test_support::stream;
        let config = AGemConfig::new(5).with_sample_size(4);
        let mut s = Strategy::builder(Tiny::new(6), sgd(0.1), device())
            .train_mb_size(3)
            .plugin(AGemPlugin::new(config.clone()).unwrap())
            .build()
            .unwrap();
        s.train(&stream(3, 6)).unwrap();
        let agem = s.plugin_mut::<AGemPlugin>().unwrap();
        agem.next_indices(); // positions away from 0
        let agem = s.plugin::<AGemPlugin>().unwrap();
        let mut fresh = AGemPlugin::new(config).unwrap();
        let state = restore::<Tiny, _>(agem, &mut fresh, s.state());
        assert_eq!(fresh.buffers().len(), 3);
        for (a, b) in agem.buffers().iter().zip(fresh.buffers()) {
            assert_same_dataset(a, b);
        }
        assert_same_dataset(agem.memory.as_ref().unwrap(), fresh.memory.as_ref().unwrap());
        assert_eq!((&fresh.offsets, &fresh.positions), (&agem.offsets, &agem.positions));
        assert_same_rng(&agem.rng, &fresh.rng);
        let mut other = AGemPlugin::new(AGemConfig::new(5).with_sample_size(8)).unwrap();
        assert_mismatch::<Tiny, _>(&state, &mut other, s.state());
        let original = s.plugin_mut::<AGemPlugin>().unwrap();
        assert_eq!(
            (0..5).map(|_| original.next_indices()).collect::<Vec<_>>(),
            (0..5).map(|_| fresh.next_indices()).collect::<Vec<_>>()
        );
    }

    /// Avalanche's `GroupBalancedInfiniteDataLoader` without shuffling: per memory, batches of
    /// `sample_size / n` in order, a shorter last batch, then from the start again.
    #[test]
    fn the_reference_sample_cycles_through_each_memory_in_order() {
        let mut agem = AGemPlugin::new(AGemConfig::new(5).with_sample_size(6)).unwrap();
        let (a, b) = (generated(5, &[0, 1], 0), generated(2, &[2], 1));
        agem.memory = Some(a.concat(&b).unwrap());
        agem.offsets = vec![0, 5];
        agem.buffers = vec![a, b];
        agem.positions = vec![0, 0];
        let draws: Vec<Vec<usize>> = (0..4).map(|_| agem.next_indices()).collect();
        assert_eq!(
            draws,
            vec![vec![0, 1, 2, 5, 6], vec![3, 4, 5, 6], vec![0, 1, 2, 5, 6], vec![3, 4, 5, 6]],
            "3 per memory (6 / 2): memory 0 in order then its rest, memory 1 (2 samples) whole"
        );
        // More memories than samples: one per memory (Avalanche would fail on a batch size 0).
        agem.config.sample_size = 1;
        agem.positions = vec![0, 0];
        assert_eq!(agem.next_indices(), vec![0, 5]);
    }
}
