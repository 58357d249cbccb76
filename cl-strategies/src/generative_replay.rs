//! [`GenerativeReplay`]: Deep Generative Replay (Shin et al., "Continual Learning with Deep
//! Generative Replay", NeurIPS 2017; Avalanche 0.6's `GenerativeReplay` strategy with
//! `GenerativeReplayPlugin` and `TrainGeneratorAfterExpPlugin`,
//! `avalanche/training/plugins/generative_replay.py`, generator `MlpVAE` trained by
//! `VAETraining`).
//!
//! A scholar: the solver (the strategy's model) and a generator (a [`MlpVae`], trained by a
//! second strategy of its own, [`VaeSteps`]):
//! - from the second experience, each training batch of the solver is extended with as many
//!   generated samples (or `replay_size`; `increasing_replay_size`: the batch size times the
//!   experience's index), drawn from the generator as it was at the start of the experience
//!   and labelled by the argmax of the solver as it was then (both in evaluation mode);
//! - after the solver's experience, the generator trains on the same experience (Adam, lr
//!   0.01, L2 1e-4, the solver's batch size and epochs), its batches extended in the same way
//!   with samples of its own previous copy (labels unused): its loss is [`vae_loss`].
//!
//! Deliberate differences from Avalanche: `is_weighted_replay` (the replayed samples' loss
//! weighted instead of appended) is not offered — Avalanche's default, appending, is; a
//! generator other than the default VAE is configured through [`MlpVaeConfig`] only (Avalanche
//! takes any strategy whose model has `generate`). Checkpoints hold the generator's whole
//! strategy (model with its batch-norm statistics, Adam state, clock) and the steps' generator
//! of latent codes: a resumed run ends as the uninterrupted one.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use cl_core::config::Validate;
use cl_core::data::MiniBatch;
use cl_core::evaluation::EvaluationPlugin;
use cl_core::{
    AdamSpec, ClError, Experience, Model, OptimizerSpec, Result, Strategy, StrategyBuilder, StrategyState,
    TemplateSteps, step_defaults,
};
use cl_models::{MlpVae, MlpVaeConfig, vae_loss};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The configuration of [`GenerativeReplay`]: Avalanche's `GenerativeReplay(replay_size=None,
/// increasing_replay_size=False)` with its default generator, `MlpVAE((1, 28, 28), nhid=2)`
/// trained by Adam(lr 0.01, weight decay 1e-4).
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_strategies::GenerativeReplayConfig;
/// let config = GenerativeReplayConfig::default().with_replay_size(Some(64));
/// assert_eq!(GenerativeReplayConfig::from_toml("replay_size = 64")?, config);
/// assert_eq!(config.generator.nhid, 2);
/// assert!(GenerativeReplayConfig::from_toml("replay_size = 0").is_err());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenerativeReplayConfig {
    /// The generator (default Avalanche's `MlpVAE` with 2 latent dimensions; its `input_size`
    /// must be the samples' size).
    pub generator: MlpVaeConfig,
    /// The generator's Adam learning rate (default 0.01).
    pub generator_lr: f64,
    /// The generator's L2 penalty (default 1e-4).
    pub generator_weight_decay: f64,
    /// Generated samples per batch (`None`, the default: as many as the batch holds).
    pub replay_size: Option<usize>,
    /// Replay the batch size times the experience's index (default false).
    pub increasing_replay_size: bool,
    /// Seed of the generator's initial weights and of its training (default 0).
    pub seed: u64,
}

impl Default for GenerativeReplayConfig {
    fn default() -> Self {
        Self {
            generator: MlpVaeConfig::default(),
            generator_lr: 0.01,
            generator_weight_decay: 1e-4,
            replay_size: None,
            increasing_replay_size: false,
            seed: 0,
        }
    }
}

impl GenerativeReplayConfig {
    /// Sets the generator.
    pub fn with_generator(mut self, generator: MlpVaeConfig) -> Self {
        self.generator = generator;
        self
    }

    /// Sets the generated samples per batch.
    pub fn with_replay_size(mut self, n: Option<usize>) -> Self {
        self.replay_size = n;
        self
    }

    /// Sets whether the replay grows with the experiences.
    pub fn with_increasing_replay_size(mut self, on: bool) -> Self {
        self.increasing_replay_size = on;
        self
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Generated samples for a batch of `batch` samples in experience `index`.
    fn replay_count(&self, batch: usize, index: usize) -> usize {
        match (self.replay_size, self.increasing_replay_size) {
            (Some(n), _) => n,
            (None, true) => batch * index,
            (None, false) => batch,
        }
    }
}

impl Validate for GenerativeReplayConfig {
    /// The generator's rules, `generator_lr_positive`, `generator_weight_decay_non_negative`,
    /// `replay_size_positive`.
    fn validate(&self) -> Result<()> {
        self.generator.validate()?;
        let fail = |rule: &'static str, reason: String| {
            Err(ClError::InvalidConfig { config: "GenerativeReplayConfig", rule, reason })
        };
        if !(self.generator_lr.is_finite() && self.generator_lr > 0.0) {
            return fail("generator_lr_positive", format!("must be positive, got {}", self.generator_lr));
        }
        if !(self.generator_weight_decay.is_finite() && self.generator_weight_decay >= 0.0) {
            return fail(
                "generator_weight_decay_non_negative",
                format!("must be a finite number ≥ 0, got {}", self.generator_weight_decay),
            );
        }
        if self.replay_size == Some(0) {
            return fail("replay_size_positive", "replay at least one sample, or leave replay_size unset".into());
        }
        Ok(())
    }
}

/// `n × d` draws of `N(0, 1)` from `rng` (Box-Muller), as a tensor on `device`: the latent codes
/// of generated samples come from the steps' own generator, which checkpoints save (the
/// device's generator cannot be saved).
pub(crate) fn host_normal(rng: &mut ChaCha8Rng, [n, d]: [usize; 2], device: &Device) -> Tensor<2> {
    let values: Vec<f32> = (0..n * d).map(|_| standard_normal(rng)).collect();
    Tensor::from_data(TensorData::new(values, [n, d]), device)
}

/// One draw of `N(0, 1)` from `rng` (Box-Muller), for draws that must come from a generator
/// the steps own and checkpoint.
pub(crate) fn standard_normal(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// `batch` with `x` (generated, on the batch's device) appended, labelled `labels`, with the
/// task label of the batch's first sample.
fn extend_batch(batch: &MiniBatch, x: Tensor<2>, labels: Vec<u32>) -> Result<MiniBatch> {
    let n = labels.len();
    let device = batch.x.device();
    let task = batch.task_labels.first().copied().unwrap_or(0);
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels.iter().map(|&l| i64::from(l)).collect(), [n]), &device);
    let t = Tensor::<1, Int>::from_data(TensorData::new(vec![i64::from(task); n], [n]), &device);
    let generated =
        MiniBatch { x, y, t, targets: labels, task_labels: vec![task; n], sample_shape: batch.sample_shape.clone() };
    batch.concat(&generated)
}

/// The steps of the generator's own strategy (Avalanche's `VAETraining` with its
/// `GenerativeReplayPlugin`): the forward pass keeps the latent statistics for [`vae_loss`],
/// and from the second experience each batch is extended with samples of the generator's
/// previous copy.
#[derive(Debug)]
pub struct VaeSteps {
    replay: GenerativeReplayConfig,
    previous: Option<MlpVae>,
    inputs: Option<(Tensor<2>, Tensor<2>, Tensor<2>)>,
    trained: usize,
    rng: ChaCha8Rng,
}

impl VaeSteps {
    fn new(replay: GenerativeReplayConfig) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(replay.seed ^ 0x5641_4500_0000_0001);
        Self { replay, previous: None, inputs: None, trained: 0, rng }
    }
}

impl TemplateSteps<MlpVae> for VaeSteps {
    fn before_training_exp(&mut self, state: &mut StrategyState<MlpVae>) -> Result<()> {
        self.previous = (self.trained > 0).then(|| state.model().valid());
        Ok(())
    }

    fn forward(&mut self, state: &mut StrategyState<MlpVae>) -> Result<Tensor<2>> {
        let batch = state.current_batch()?;
        let mut x = batch.x.clone();
        if let (Some(previous), true) = (&self.previous, state.is_training()) {
            let index = state.current_experience()?.current_experience;
            let n = self.replay.replay_count(batch.len(), index);
            let z = host_normal(&mut self.rng, [n, previous.nhid()], state.settings().eval_device());
            let generated = previous.decode(z);
            x = Tensor::cat(vec![x, Tensor::from_inner(generated)], 0);
        }
        let (x_hat, mean, logvar) = state.forward_model().forward_vae(x.clone());
        self.inputs = Some((x, mean, logvar));
        Ok(x_hat)
    }

    fn criterion(&mut self, state: &mut StrategyState<MlpVae>) -> Result<Tensor<1>> {
        let x_hat = state.mb_output.clone().ok_or(ClError::MissingState("mb_output"))?;
        let (x, mean, logvar) = self.inputs.take().ok_or(ClError::MissingState("the VAE's latent statistics"))?;
        Ok(vae_loss(x, x_hat, mean, logvar))
    }

    fn after_training_exp(&mut self, _state: &mut StrategyState<MlpVae>) -> Result<()> {
        self.trained += 1;
        Ok(())
    }

    /// The experiences trained (the previous copy is taken again at the next experience).
    fn save_state(&self, out: &mut cl_core::checkpoint::StateDict) -> Result<()> {
        out.put("trained", &self.trained)?;
        out.put_rng("rng", &self.rng)
    }

    fn load_state(&mut self, state: &cl_core::checkpoint::StateDict, _: &StrategyState<MlpVae>) -> Result<()> {
        self.trained = state.get("trained")?;
        self.rng = state.rng("rng")?;
        self.previous = None;
        self.inputs = None;
        Ok(())
    }
}

/// The steps of [`GenerativeReplay`]: generated samples labelled by the previous solver in each
/// training batch from the second experience, and the generator trained after each experience.
/// Reachable after build with `strategy.steps_as::<GenerativeReplaySteps<M>>()`.
pub struct GenerativeReplaySteps<M: Model> {
    config: GenerativeReplayConfig,
    generator: Option<Strategy<MlpVae>>,
    /// The generator's state after its last experience (what checkpoints hold).
    generator_state: Option<cl_core::checkpoint::StateDict>,
    previous: Option<(MlpVae, M)>,
    trained: usize,
    rng: ChaCha8Rng,
}

impl<M: Model> std::fmt::Debug for GenerativeReplaySteps<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerativeReplaySteps").field("config", &self.config).field("trained", &self.trained).finish()
    }
}

impl<M: Model> GenerativeReplaySteps<M> {
    /// Steps for this configuration (validated by [`GenerativeReplay::builder`]).
    pub fn new(config: GenerativeReplayConfig) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x4752_0000_0000_0002);
        Self { config, generator: None, generator_state: None, previous: None, trained: 0, rng }
    }

    /// The generator's strategy (built at the first training experience).
    pub fn generator(&self) -> Option<&Strategy<MlpVae>> {
        self.generator.as_ref()
    }

    /// The generator's strategy with the solver's batch size, epochs and seed.
    fn build_generator(&self, state: &StrategyState<M>) -> Result<Strategy<MlpVae>> {
        // Built on the device without autodiff: the builder moves it to the training device.
        let device: Device = state.settings().eval_device().clone();
        let vae = self.config.generator.clone().with_seed(Some(self.config.seed)).init(&device)?;
        let adam = OptimizerSpec::Adam(AdamSpec {
            lr: self.config.generator_lr,
            weight_decay: self.config.generator_weight_decay,
            ..AdamSpec::default()
        });
        StrategyBuilder::new(vae, adam, device)
            .steps(VaeSteps::new(self.config.clone()))
            .evaluator(EvaluationPlugin::empty())
            .train_mb_size(state.settings().train_mb_size())
            .train_epochs(state.settings().train_epochs())
            .seed(self.config.seed)
            .build()
    }
}

impl<M: Model> TemplateSteps<M> for GenerativeReplaySteps<M> {
    /// The generator's input size must be the samples'.
    fn check(&self, state: &StrategyState<M>) -> Result<()> {
        if let Some(n) = state.model().input_size()
            && n != self.config.generator.input_size
        {
            return Err(ClError::InvalidConfig {
                config: "GenerativeReplayConfig",
                rule: "generator_input_size_matches_model",
                reason: format!(
                    "the generator makes samples of {} values but the model takes {n}: set generator.input_size = {n}",
                    self.config.generator.input_size
                ),
            });
        }
        Ok(())
    }

    /// Copies of the generator and the solver as they are now (from the second experience).
    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        if self.generator.is_none() {
            self.generator = Some(self.build_generator(state)?);
        }
        self.previous = match (self.trained, &self.generator) {
            (0, _) | (_, None) => None,
            (_, Some(g)) => Some((g.model().valid(), state.model().valid())),
        };
        Ok(())
    }

    /// From the second experience, the batch extended with generated samples labelled by the
    /// previous solver (`state.mbatch` is replaced: metrics see the extended batch, as in
    /// Avalanche).
    fn forward(&mut self, state: &mut StrategyState<M>) -> Result<Tensor<2>> {
        if let (Some((generator, solver)), true) = (&self.previous, state.is_training()) {
            let batch = state.current_batch()?;
            let index = state.current_experience()?.current_experience;
            let n = self.config.replay_count(batch.len(), index);
            let z = host_normal(&mut self.rng, [n, generator.nhid()], state.settings().eval_device());
            let x = generator.decode(z);
            let probe = MiniBatch {
                x: x.clone(),
                y: Tensor::zeros([n], state.settings().eval_device()),
                t: Tensor::zeros([n], state.settings().eval_device()),
                targets: vec![0; n],
                task_labels: vec![batch.task_labels.first().copied().unwrap_or(0); n],
                sample_shape: batch.sample_shape.clone(),
            };
            let labels = solver.forward(&probe).argmax(1).reshape([n]);
            let labels: Vec<u32> = labels
                .into_data()
                .try_into_vec_as::<i64>()
                .map_err(|e| ClError::InvalidUse(format!("reading the replayed labels: {e:?}")))?
                .into_iter()
                .map(|l| l as u32)
                .collect();
            let extended = extend_batch(batch, Tensor::from_inner(x), labels)?;
            state.mbatch = Some(extended);
        }
        step_defaults::forward(state)
    }

    /// The configuration (checked on load), the experiences trained and the generator's whole
    /// strategy (model, Adam state, clock; [`Strategy::to_state_dict`]). The copies of the
    /// generator and the solver are taken again at the next experience.
    fn save_state(&self, out: &mut cl_core::checkpoint::StateDict) -> Result<()> {
        out.put("config", &self.config)?;
        out.put("trained", &self.trained)?;
        out.put_rng("rng", &self.rng)?;
        out.put("has_generator", &self.generator_state.is_some())?;
        if let Some(generator) = &self.generator_state {
            out.put_dict("generator", generator.clone());
        }
        Ok(())
    }

    fn load_state(&mut self, state: &cl_core::checkpoint::StateDict, strategy: &StrategyState<M>) -> Result<()> {
        state.check_config("config", &self.config)?;
        self.trained = state.get("trained")?;
        self.rng = state.rng("rng")?;
        self.previous = None;
        self.generator = match state.get::<bool>("has_generator")? {
            true => {
                let saved = state.dict("generator")?.clone();
                let mut generator = self.build_generator(strategy)?;
                generator.load_state_dict(&saved)?;
                self.generator_state = Some(saved);
                Some(generator)
            }
            false => None,
        };
        Ok(())
    }

    /// Trains the generator on the experience (Avalanche's `TrainGeneratorAfterExpPlugin`).
    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let experience: Experience = state.current_experience()?.clone();
        let generator = self.generator.as_mut().ok_or(ClError::MissingState("the generator's strategy"))?;
        generator.train(&experience)?;
        self.generator_state = Some(generator.to_state_dict()?);
        self.trained += 1;
        Ok(())
    }
}

/// Generative replay (Avalanche's `GenerativeReplay`; see the [module docs](self)): the default
/// template with [`GenerativeReplaySteps`]. Works with any solver whose inputs are flat samples
/// of `generator.input_size` values (784 for Fashion-MNIST).
pub struct GenerativeReplay;

impl GenerativeReplay {
    /// A builder with the generative replay steps and the default evaluator.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: GenerativeReplayConfig,
    ) -> Result<StrategyBuilder<M>> {
        config.validate()?;
        Ok(StrategyBuilder::new(model, optimizer, device).steps(GenerativeReplaySteps::<M>::new(config)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use cl_core::data::ClassificationDataset;
    use cl_models::{SimpleMlp, SimpleMlpConfig};

    const INPUT: usize = 6;

    fn device() -> Device {
        Device::flex()
    }

    fn experience(index: usize, classes: [u32; 2]) -> Experience {
        let n = 16;
        let inputs: Vec<f32> = (0..n * INPUT).map(|i| ((i * 7 + index * 3) % 11) as f32 / 11.0).collect();
        let targets: Vec<u32> = (0..n).map(|i| classes[i % 2]).collect();
        Experience::new(index, ClassificationDataset::from_f32(inputs, vec![INPUT], targets).unwrap(), "train", 4)
    }

    /// Records each training batch's targets and, given a solver, its argmax on the batch rows
    /// past the 8th (the generated ones).
    type Record = (Vec<u32>, Option<Vec<u32>>);
    struct Seen(Arc<Mutex<Vec<Record>>>, Arc<Mutex<Option<SimpleMlp>>>);

    impl cl_core::Plugin<SimpleMlp> for Seen {
        fn after_forward(&mut self, state: &mut StrategyState<SimpleMlp>) -> Result<()> {
            let batch = state.current_batch()?;
            let labels = self.1.lock().unwrap().as_ref().filter(|_| batch.len() > 8).map(|solver| {
                let x = batch.x.clone().inner().narrow(0, 8, batch.len() - 8);
                let out = solver.forward_tensor(x).argmax(1);
                out.into_data().try_into_vec_as::<i64>().unwrap().into_iter().map(|v| v as u32).collect()
            });
            self.0.lock().unwrap().push((batch.targets.clone(), labels));
            Ok(())
        }
    }

    #[test]
    fn batches_hold_generated_samples_labelled_by_the_previous_solver_from_the_second_experience() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let solver = Arc::new(Mutex::new(None));
        let config = GenerativeReplayConfig::default()
            .with_generator(MlpVaeConfig::default().with_input_size(INPUT))
            .with_seed(2);
        let model = SimpleMlpConfig::new()
            .with_input_size(INPUT)
            .with_hidden_size(8)
            .with_num_classes(4)
            .init(&device())
            .unwrap();
        let mut s = GenerativeReplay::builder(model, OptimizerSpec::sgd(0.1), device(), config)
            .unwrap()
            .train_mb_size(8)
            .plugin(Seen(seen.clone(), solver.clone()))
            .build()
            .unwrap();
        s.train(&experience(0, [0, 1])).unwrap();
        let first: Vec<Record> = seen.lock().unwrap().drain(..).collect();
        assert_eq!(first.iter().map(|(t, _)| t.len()).collect::<Vec<_>>(), [8, 8], "no replay on the first experience");
        let generator = s.steps_as::<GenerativeReplaySteps<SimpleMlp>>().unwrap().generator().unwrap();
        assert_eq!(generator.state().clock().train_exp_counter, 1, "the generator trained after the experience");
        *solver.lock().unwrap() = Some(s.model().valid());
        s.train(&experience(1, [2, 3])).unwrap();
        let second: Vec<Record> = seen.lock().unwrap().drain(..).collect();
        assert_eq!(second.len(), 2);
        for (targets, by_previous) in &second {
            assert_eq!(targets.len(), 16, "8 samples and 8 generated");
            assert!(targets[..8].iter().all(|&y| y == 2 || y == 3));
            assert_eq!(Some(&targets[8..].to_vec()), by_previous.as_ref(), "labels = the previous solver's argmax");
        }
        let generator = s.steps_as::<GenerativeReplaySteps<SimpleMlp>>().unwrap().generator().unwrap();
        assert_eq!(generator.state().clock().train_exp_counter, 2);
    }

    #[test]
    fn vae_loss_by_hand_and_the_rules() {
        let d = device();
        let t = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [1, 2]), &d);
        let loss = vae_loss(t(vec![1.0, 0.0]), t(vec![0.5, 1.0]), t(vec![0.5, -1.0]), t(vec![0.0, 1.0]));
        // (0.25 + 1) + 0.5·((−1 − 0 + 1 + 0.25) + (−1 − 1 + e + 1))
        let expected = 1.25 + 0.5 * (0.25 + std::f64::consts::E - 1.0);
        assert!((f64::from(loss.into_scalar::<f32>()) - expected).abs() < 1e-5);
        use cl_core::config::assert_rule;
        assert_rule(GenerativeReplayConfig::default().with_replay_size(Some(0)).validate(), "replay_size_positive");
        let model = SimpleMlpConfig::new().with_input_size(INPUT).init(&device()).unwrap();
        let built =
            GenerativeReplay::builder(model, OptimizerSpec::sgd(0.1), device(), GenerativeReplayConfig::default())
                .unwrap()
                .build();
        assert_rule(built.map(|_| ()), "generator_input_size_matches_model");
    }
}
