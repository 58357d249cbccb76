//! [`Ar1`]: AR1 with latent replay (Lomonaco, Maltoni & Pellegrini, "Rehearsal-Free Continual
//! Learning over Small Non-I.I.D. Batches", CVPR-W 2020, and Pellegrini et al., "Latent Replay
//! for Real-Time Continual Learning", IROS 2020; Avalanche's `AR1`,
//! `avalanche/training/supervised/ar1.py`).

use std::collections::BTreeMap;

use burn::tensor::{Device, Int, Tensor, TensorData};
use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, rule};
use cl_core::data::{ClassificationDataLoader, DataLoaderConfig, MiniBatch};
use cl_core::{
    BatchRenormSettings, ClError, LatentReplay, Model, ModelPart, OptimizerSpec, Plugin, Result, StrategyBuilder,
    StrategyState, TemplateSteps, freeze, set_training_flags, set_training_mode, step_defaults,
};
use cl_plugins::regularization::{SynapticIntelligenceConfig, SynapticIntelligencePlugin};
use cl_plugins::{CwrStarConfig, CwrStarPlugin};
use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The labels the latent activations enter the replay memory with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayLabels {
    /// Each stored activation with its own sample's label (default).
    #[default]
    Own,
    /// Avalanche 0.6's: the activations are collected in the (shuffled) loader's order but
    /// labelled with `experience.dataset.targets[i]` in the dataset's order, so the `i`-th
    /// activation of the epoch gets the label of the dataset's `i`-th sample — a random label
    /// of the experience's classes (a bug; for fidelity comparisons).
    DatasetOrder,
}

/// AR1's hyper-parameters, with the defaults of Avalanche's `AR1` (the optimizer's are in
/// [`Ar1Config::avalanche_optimizer`], `train_epochs = 4` and `train_mb_size = 128` are set by
/// [`Ar1::builder`]).
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_strategies::{Ar1Config, ReplayLabels};
/// let config = Ar1Config::new().with_rm_sz(500).with_si_lambda(0.1);
/// assert_eq!(Ar1Config::from_toml("rm_sz = 500\nsi_lambda = 0.1")?, config);
/// assert_eq!(Ar1Config::default().replay_labels, ReplayLabels::Own);
/// assert!(Ar1Config::from_toml("inc_lr = -1.0").is_err());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "AR1")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ar1Config {
    /// The learning rate from the second experience on (Avalanche's `inc_lr`, 5e-5), with a
    /// fresh optimizer (the first experience's recipe at this rate) each experience.
    pub inc_lr: f64,
    /// Momentum of the batch-renormalisation running statistics on the first experience
    /// (`init_update_rate`, 0.01).
    pub init_update_rate: f64,
    /// The same from the second experience on (`inc_update_rate`, 5e-5).
    pub inc_update_rate: f64,
    /// The limit `r_max` grows to (`max_r_max`, 1.25).
    pub max_r_max: f64,
    /// The limit `d_max` grows to (`max_d_max`, 0.5).
    pub max_d_max: f64,
    /// Growth of `r_max` and `d_max` per training sample on the first experience (`inc_step`,
    /// 4.1e-5).
    pub inc_step: f64,
    /// Size of the latent replay memory, in samples (`rm_sz`, 1500; at least 1).
    pub rm_sz: usize,
    /// λ of synaptic intelligence on every parameter but the output layer (Avalanche's
    /// `ewc_lambda`, 0: no regularisation).
    pub si_lambda: f64,
    /// The labels stored activations get (default [`ReplayLabels::Own`]).
    pub replay_labels: ReplayLabels,
    /// Seed of the memory's random choices (0).
    pub seed: u64,
}

impl Default for Ar1Config {
    fn default() -> Self {
        Self {
            inc_lr: 5e-5,
            init_update_rate: 0.01,
            inc_update_rate: 5e-5,
            max_r_max: 1.25,
            max_d_max: 0.5,
            inc_step: 4.1e-5,
            rm_sz: 1500,
            si_lambda: 0.0,
            replay_labels: ReplayLabels::Own,
            seed: 0,
        }
    }
}

impl Ar1Config {
    /// Avalanche's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Avalanche's optimizer of the first experience: SGD, lr 0.001, momentum 0.9, weight decay
    /// (`l2`) 0.0005.
    pub fn avalanche_optimizer() -> OptimizerSpec {
        OptimizerSpec::sgd(0.001).with_momentum(0.9).with_weight_decay(0.0005)
    }

    /// Sets `inc_lr`.
    pub fn with_inc_lr(mut self, inc_lr: f64) -> Self {
        self.inc_lr = inc_lr;
        self
    }

    /// Sets `rm_sz`.
    pub fn with_rm_sz(mut self, rm_sz: usize) -> Self {
        self.rm_sz = rm_sz;
        self
    }

    /// Sets `si_lambda`.
    pub fn with_si_lambda(mut self, si_lambda: f64) -> Self {
        self.si_lambda = si_lambda;
        self
    }

    /// Sets `replay_labels`.
    pub fn with_replay_labels(mut self, replay_labels: ReplayLabels) -> Self {
        self.replay_labels = replay_labels;
        self
    }

    /// Sets the batch-renormalisation settings (`init_update_rate`, `inc_update_rate`,
    /// `max_r_max`, `max_d_max`, `inc_step`).
    pub fn with_batch_renorm(
        mut self,
        init_update_rate: f64,
        inc_update_rate: f64,
        max_r_max: f64,
        max_d_max: f64,
        inc_step: f64,
    ) -> Self {
        (self.init_update_rate, self.inc_update_rate) = (init_update_rate, inc_update_rate);
        (self.max_r_max, self.max_d_max, self.inc_step) = (max_r_max, max_d_max, inc_step);
        self
    }

    /// Sets `seed`.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The batch renormalisation of the first experience (Avalanche's `replace_bn_with_brn`).
    fn initial_renorm(&self) -> BatchRenormSettings {
        BatchRenormSettings {
            momentum: self.init_update_rate,
            r_max: 1.0,
            d_max: 0.0,
            r_d_max_inc_step: self.inc_step,
            max_r_max: self.max_r_max,
            max_d_max: self.max_d_max,
        }
    }

    /// The batch renormalisation from the second experience on (Avalanche's `change_brn_pars`:
    /// the limits at their maxima, no growth).
    fn incremental_renorm(&self) -> BatchRenormSettings {
        BatchRenormSettings {
            momentum: self.inc_update_rate,
            r_max: self.max_r_max,
            d_max: self.max_d_max,
            r_d_max_inc_step: 0.0,
            max_r_max: self.max_r_max,
            max_d_max: self.max_d_max,
        }
    }
}

impl Validate for Ar1Config {
    fn validate(&self) -> Result<()> {
        const C: &str = "Ar1Config";
        let finite_nonneg = |v: f64| v.is_finite() && v >= 0.0;
        rule(C, "inc_lr_non_negative", finite_nonneg(self.inc_lr), || {
            format!("inc_lr = {} must be a finite number >= 0", self.inc_lr)
        })?;
        for (name, v) in [("init_update_rate", self.init_update_rate), ("inc_update_rate", self.inc_update_rate)] {
            rule(C, "update_rate_in_unit_interval", v.is_finite() && (0.0..=1.0).contains(&v), || {
                format!("{name} = {v}: the running statistics' update rate is in [0, 1]")
            })?;
        }
        rule(C, "max_r_max_at_least_one", self.max_r_max.is_finite() && self.max_r_max >= 1.0, || {
            format!("max_r_max = {}: r is clipped to [1/r_max, r_max], give a value >= 1", self.max_r_max)
        })?;
        rule(C, "max_d_max_non_negative", finite_nonneg(self.max_d_max), || {
            format!("max_d_max = {} must be a finite number >= 0", self.max_d_max)
        })?;
        rule(C, "inc_step_non_negative", finite_nonneg(self.inc_step), || {
            format!("inc_step = {} must be a finite number >= 0", self.inc_step)
        })?;
        rule(C, "rm_sz_positive", self.rm_sz > 0, || {
            "rm_sz is 0: AR1 replays latent activations, give a memory of at least 1 sample".into()
        })?;
        rule(C, "si_lambda_non_negative", finite_nonneg(self.si_lambda), || {
            format!("si_lambda = {} must be a finite number >= 0 (0 turns synaptic intelligence off)", self.si_lambda)
        })
    }
}

/// The template steps of [`Ar1`]: latent replay, the layer modes and freezing, batch
/// renormalisation settings, the per-experience optimizer and CWR* on the output layer.
pub struct Ar1Steps {
    config: Ar1Config,
    cwr: Option<CwrStarPlugin>,
    /// The memory: `rm_y.len()` rows of `latent_size` values.
    rm_x: Vec<f32>,
    rm_y: Vec<u32>,
    latent_size: usize,
    rng: ChaCha8Rng,
    /// The loader positions of the first epoch whose activations enter the memory, in the
    /// order they enter it, and the activations and labels collected for them.
    keep: BTreeMap<usize, usize>,
    kept_x: Vec<Vec<f32>>,
    kept_y: Vec<u32>,
    /// Samples seen in the current epoch; mini-batches done in it.
    seen: usize,
    mb_it: usize,
    replay_mb_size: usize,
}

impl std::fmt::Debug for Ar1Steps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ar1Steps")
            .field("config", &self.config)
            .field("memory", &self.rm_y.len())
            .finish_non_exhaustive()
    }
}

fn no_split() -> ClError {
    ClError::InvalidConfig {
        config: "Ar1Config",
        rule: "model_has_latent_layer",
        reason: "AR1 needs a model split at a latent layer (Model::latent_replay returns None): use \
                 cl_models::LatentCnn, or implement Model::latent_replay for your model"
            .into(),
    }
}

fn split<M: Model>(model: &M) -> Result<&dyn LatentReplay> {
    model.latent_replay().ok_or_else(no_split)
}

impl Ar1Steps {
    /// AR1's steps; an error if `config` breaks a rule.
    pub fn new(config: Ar1Config) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            config,
            cwr: None,
            rm_x: Vec::new(),
            rm_y: Vec::new(),
            latent_size: 0,
            keep: BTreeMap::new(),
            kept_x: Vec::new(),
            kept_y: Vec::new(),
            seen: 0,
            mb_it: 0,
            replay_mb_size: 0,
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &Ar1Config {
        &self.config
    }

    /// The labels of the latent replay memory, in its order.
    pub fn memory_labels(&self) -> &[u32] {
        &self.rm_y
    }

    /// The latent activations of the memory, row-major `[memory, latent_size]`.
    pub fn memory_activations(&self) -> &[f32] {
        &self.rm_x
    }

    /// The CWR* state of the output layer (after the first experience started).
    pub fn cwr(&self) -> Option<&CwrStarPlugin> {
        self.cwr.as_ref()
    }

    /// The number of memory samples in each mini-batch of the current experience.
    pub fn replay_mb_size(&self) -> usize {
        self.replay_mb_size
    }

    fn cwr_config<M: Model>(model: &M) -> Result<CwrStarConfig> {
        let output = split(model)?.output_layer();
        Ok(CwrStarConfig::default().with_cwr_layer_name(output).with_freeze_remaining_model(false))
    }

    /// `model.eval(); end_features.train(); output.train()`: the lower part's training flags off,
    /// every other flag on.
    fn set_modes<M: Model>(state: &mut StrategyState<M>, lower: &ModelPart) -> Result<()> {
        state.map_model(|m| {
            let (m, _) = set_training_mode(m, true);
            let (m, all) = set_training_mode(m, false);
            let upper: Vec<String> = all.into_iter().filter(|p| !lower.contains(p)).collect();
            set_training_flags(m, &upper, true)
        })
    }
}

impl<M: Model> TemplateSteps<M> for Ar1Steps {
    fn name(&self) -> String {
        "Ar1Steps".into()
    }

    /// The model must expose a latent layer and an output layer CWR* can use; training needs at
    /// least one epoch (the memory is filled during the first).
    fn check(&self, state: &StrategyState<M>) -> Result<()> {
        CwrStarPlugin::new(state.model(), Self::cwr_config(state.model())?)?;
        rule("Ar1Config", "train_epochs_positive", state.settings().train_epochs() > 0, || {
            "train_epochs is 0: AR1 stores latent activations during the first epoch, train at least one".into()
        })
    }

    /// Avalanche's `make_train_dataloader`: from the second experience on, mini-batches of
    /// `n // ((n + rm_sz) // train_mb_size)` current samples (at least 1), completed to
    /// `train_mb_size` by the memory, so an epoch over the data is an epoch over the memory.
    fn make_train_dataloader(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let ds = state.adapted_dataset.clone().ok_or(ClError::MissingState("adapted_dataset"))?;
        let mb = state.settings().train_mb_size();
        let mut current = mb;
        if state.clock().train_exp_counter > 0 {
            let n = ds.len();
            current = n.checked_div((n + self.config.rm_sz) / mb).unwrap_or(n);
        }
        let current = current.max(1);
        self.replay_mb_size = mb.saturating_sub(current);
        let loader = ClassificationDataLoader::new(ds, DataLoaderConfig::train(current, state.experience_seed()))?;
        state.dataloader = Some(Box::new(loader));
        Ok(())
    }

    /// The first experience: the recipe's optimizer. Later ones: a fresh optimizer of the same
    /// recipe at `inc_lr` (Avalanche builds a new `SGD` each experience).
    fn make_optimizer(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        if state.clock().train_exp_counter == 0 {
            return step_defaults::make_optimizer(state);
        }
        state.reset_optimizer()?;
        state.set_lr(self.config.inc_lr)
    }

    /// Avalanche's `AR1._before_training_exp`.
    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let (lower, latent_size) = {
            let s = split(state.model())?;
            (ModelPart::Layers(s.lower_layers()), s.latent_size())
        };
        self.latent_size = latent_size;
        Self::set_modes(state, &lower)?;
        let first = state.clock().train_exp_counter == 0;
        if first {
            split(state.model())?.set_batch_renorm(&self.config.initial_renorm());
        } else {
            // freeze_up_to(freeze_below_layer): the lower part stops training (its output is
            // replayed without gradient anyway).
            state.map_model(|m| freeze(m, &lower))?;
            split(state.model())?.set_batch_renorm(&self.config.incremental_renorm());
        }
        if self.cwr.is_none() {
            self.cwr = Some(CwrStarPlugin::new(state.model(), Self::cwr_config(state.model())?)?);
        }
        let cwr = self.cwr.as_mut().expect("set above");
        Plugin::<M>::before_training_exp(cwr, state)?;
        if !first {
            let mut counts = BTreeMap::new();
            for &y in &self.rm_y {
                *counts.entry(y).or_insert(0usize) += 1;
            }
            cwr.add_replayed_counts(&counts, state)?;
        }
        // The first epoch's samples that will enter the memory: h = min(rm_sz / (k + 1), n) of
        // them, at random (Avalanche keeps every activation and draws them at the end).
        let n = state.adapted_dataset.as_ref().map_or(0, |d| d.len());
        let k = state.clock().train_exp_counter as usize;
        let h = (self.config.rm_sz / (k + 1)).min(n);
        self.keep = sample(&mut self.rng, n, h).into_iter().enumerate().map(|(slot, pos)| (pos, slot)).collect();
        self.kept_x = vec![Vec::new(); h];
        self.kept_y = vec![0; h];
        Ok(())
    }

    fn before_training_epoch(&mut self, _state: &mut StrategyState<M>) -> Result<()> {
        self.mb_it = 0;
        self.seen = 0;
        Ok(())
    }

    /// Training: the lower part's activations (without gradient from the second experience
    /// on) followed by the memory's next `replay_mb_size` rows, through the upper part; the
    /// batch's targets are extended with the memory's labels (Avalanche's `mbatch[1]`).
    /// Evaluation: the model's forward pass.
    fn forward(&mut self, state: &mut StrategyState<M>) -> Result<Tensor<2>> {
        if !state.is_training() {
            return step_defaults::forward(state);
        }
        let first = state.clock().train_exp_counter == 0;
        let first_epoch = state.clock().train_exp_epochs == 0;
        let batch = state.current_batch()?.clone();
        let model = state.model();
        model.check_batch(&batch)?;
        let s = split(model)?;
        let lat = s.latent(&batch);
        let device = lat.device();
        let lat = if first { lat } else { lat.detach() };
        if first_epoch {
            self.collect(&lat, &batch, state)?;
        }
        let start = (self.mb_it * self.replay_mb_size).min(self.rm_y.len());
        let end = ((self.mb_it + 1) * self.replay_mb_size).min(self.rm_y.len());
        self.mb_it += 1;
        let s = split(state.model())?;
        if first || start == end {
            return Ok(s.forward_from_latent(lat));
        }
        let d = self.latent_size;
        let replay =
            Tensor::<2>::from_data(TensorData::new(self.rm_x[start * d..end * d].to_vec(), [end - start, d]), &device);
        let out = s.forward_from_latent(Tensor::cat(vec![lat, replay], 0));
        let ys = &self.rm_y[start..end];
        let extra = |v: &[u32]| {
            Tensor::<1, Int>::from_data(
                TensorData::new(v.iter().map(|&x| x as i64).collect::<Vec<_>>(), [v.len()]),
                &device,
            )
        };
        let zeros = vec![0u32; ys.len()];
        let extended = MiniBatch {
            x: batch.x.clone(),
            y: Tensor::cat(vec![batch.y.clone(), extra(ys)], 0),
            t: Tensor::cat(vec![batch.t.clone(), extra(&zeros)], 0),
            targets: [batch.targets.as_slice(), ys].concat(),
            task_labels: [batch.task_labels.as_slice(), &zeros].concat(),
            sample_shape: batch.sample_shape.clone(),
        };
        state.mbatch = Some(extended);
        Ok(out)
    }

    /// Avalanche's `_after_training_exp`: the kept activations replace random memory rows (the
    /// first experience fills the memory), then CWR* consolidates the output layer.
    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let d = self.latent_size;
        let kept: Vec<(Vec<f32>, u32)> = std::mem::take(&mut self.kept_x)
            .into_iter()
            .zip(std::mem::take(&mut self.kept_y))
            .filter(|(x, _)| x.len() == d)
            .collect();
        self.keep.clear();
        if state.clock().train_exp_counter == 0 || self.rm_y.is_empty() {
            self.rm_x = kept.iter().flat_map(|(x, _)| x.iter().copied()).collect();
            self.rm_y = kept.iter().map(|(_, y)| *y).collect();
        } else {
            let slots = sample(&mut self.rng, self.rm_y.len(), kept.len().min(self.rm_y.len()));
            for (slot, (x, y)) in slots.into_iter().zip(kept) {
                self.rm_x[slot * d..(slot + 1) * d].copy_from_slice(&x);
                self.rm_y[slot] = y;
            }
        }
        let cwr = self.cwr.as_mut().ok_or(ClError::MissingState("AR1's CWR* state"))?;
        Plugin::<M>::after_training_exp(cwr, state)
    }

    /// The configuration (checked on load), the memory, the generator and CWR*'s state.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config)?;
        out.put("latent_size", &self.latent_size)?;
        out.put_data("rm_x", TensorData::new(self.rm_x.clone(), [self.rm_x.len()]));
        out.put("rm_y", &self.rm_y)?;
        out.put_rng("rng", &self.rng)?;
        if let Some(cwr) = &self.cwr {
            let mut dict = StateDict::new("AR1's CWR*");
            Plugin::<M>::save_state(cwr, &mut dict)?;
            out.put_dict("cwr", dict);
        }
        Ok(())
    }

    fn load_state(&mut self, state: &StateDict, strategy: &StrategyState<M>) -> Result<()> {
        state.check_config("config", &self.config)?;
        let latent_size: usize = state.get("latent_size")?;
        let rm_x =
            state.data("rm_x")?.convert::<f32>().try_into_vec::<f32>().map_err(|e| ClError::CheckpointEntry {
                component: state.component().to_string(),
                key: "rm_x".into(),
                reason: format!("{e:?}"),
            })?;
        let rm_y: Vec<u32> = state.get("rm_y")?;
        if rm_x.len() != rm_y.len() * latent_size {
            return Err(ClError::CheckpointEntry {
                component: state.component().to_string(),
                key: "rm_x".into(),
                reason: format!("{} values for {} samples of {latent_size}", rm_x.len(), rm_y.len()),
            });
        }
        (self.rm_x, self.rm_y, self.latent_size) = (rm_x, rm_y, latent_size);
        self.rng = state.rng("rng")?;
        if state.contains("cwr") {
            let mut cwr = CwrStarPlugin::new(strategy.model(), Self::cwr_config(strategy.model())?)?;
            Plugin::<M>::load_state(&mut cwr, state.dict("cwr")?, strategy)?;
            self.cwr = Some(cwr);
        }
        Ok(())
    }
}

impl Ar1Steps {
    /// Keeps the activations of the batch's samples chosen for the memory, with their labels.
    fn collect<M: Model>(&mut self, lat: &Tensor<2>, batch: &MiniBatch, state: &StrategyState<M>) -> Result<()> {
        let b = batch.len();
        let (from, to) = (self.seen, self.seen + b);
        self.seen = to;
        let rows: Vec<(usize, usize)> = self.keep.range(from..to).map(|(&p, &slot)| (p, slot)).collect();
        if rows.is_empty() {
            return Ok(());
        }
        let d = self.latent_size;
        let values = lat
            .clone()
            .detach()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| ClError::InvalidUse(format!("reading AR1's latent activations back: {e:?}")))?;
        let dataset_order = self.config.replay_labels == ReplayLabels::DatasetOrder;
        for (p, slot) in rows {
            let i = p - from;
            self.kept_x[slot] = values[i * d..(i + 1) * d].to_vec();
            // Avalanche's label: the dataset's p-th sample's, not this activation's own.
            self.kept_y[slot] =
                if dataset_order { state.current_experience()?.dataset.target(p)? } else { batch.targets[i] };
        }
        Ok(())
    }
}

/// AR1 (Avalanche's `AR1`): CWR* on the output layer, latent replay at the model's latent
/// layer, batch renormalisation, and optionally synaptic intelligence on the rest. Step by step
/// as Avalanche's:
///
/// - each experience, the lower part (below the latent layer) is in evaluation mode and the
///   rest trains (`model.eval(); end_features.train(); output.train()`); from the second
///   experience on the lower part is frozen, the batch-renormalisation layers switch to
///   `inc_update_rate` with `r_max`, `d_max` at their maxima, and a fresh optimizer (the
///   recipe at `inc_lr`) replaces the first experience's;
/// - CWR* on the output layer ([`CwrStarPlugin`], the rest not frozen by it); from the second
///   experience on the memory's labels count for their classes (`cur_j`), so the replayed
///   classes' consolidated columns are loaded and trained too;
/// - from the second experience on, each mini-batch holds `n // ((n + rm_sz) // mb)` current
///   samples and the memory's next `mb` minus that many rows (in memory order, not cycled):
///   the current samples' latent activations (no gradient below) and the memory's go through
///   the upper part together, the loss on both;
/// - during the first epoch of each experience, `h = min(rm_sz / (k + 1), n)` random current
///   samples' latent activations are kept (`k` the experience's index); at its end they fill
///   the memory (first experience) or replace `h` random rows of it;
/// - with `si_lambda > 0`, a [`SynapticIntelligencePlugin`] on every parameter but the output
///   layer.
///
/// # Differences from Avalanche
/// - The backbone is a parameter: any model whose [`Model::latent_replay`] splits it
///   ([`cl_models::LatentCnn`], a small convolutional network with batch renormalisation, is
///   provided). Avalanche hard-codes an ImageNet-pretrained MobileNet v1 (50 outputs, CORe50),
///   which cannot be downloaded here; on a network trained from scratch AR1's default
///   learning rates (0.001, then 5e-5) learn slowly.
/// - Avalanche labels the stored activations by the dataset's order while collecting them in
///   the shuffled loader's order (random labels of the experience's classes):
///   [`ReplayLabels::DatasetOrder`] reproduces it, the default keeps each activation's own label.
/// - The kept samples are drawn before the epoch (memory O(h), not O(n)); with the lower part
///   frozen from the second experience, its batch-renormalisation γ, β are frozen too
///   (Avalanche leaves them trainable, but they get no gradient: no difference without SI).
/// - The optimizer is the builder's recipe (Avalanche hard-codes SGD with `lr`, `momentum`,
///   `l2`: [`Ar1Config::avalanche_optimizer`]).
///
/// ```
/// use burn::tensor::Device;
/// use cl_models::LatentCnnConfig;
/// use cl_strategies::{Ar1, Ar1Config};
/// let device = Device::flex();
/// let model = LatentCnnConfig::new().init(&device)?;
/// let strategy = Ar1::builder(model, Ar1Config::avalanche_optimizer(), device, Ar1Config::new())?.build()?;
/// assert_eq!(strategy.state().settings().train_epochs(), 4);
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "AR1")]
pub struct Ar1;

impl Ar1 {
    /// A builder with AR1's steps (and SI when `si_lambda > 0`), `train_epochs = 4` and
    /// `train_mb_size = eval_mb_size = 128` as Avalanche's; an error if `config` breaks a rule
    /// or the model has no latent layer.
    pub fn builder<M: Model>(
        model: M,
        optimizer: OptimizerSpec,
        device: Device,
        config: Ar1Config,
    ) -> Result<StrategyBuilder<M>> {
        let output = split(&model)?.output_layer();
        let si = config.si_lambda;
        let mut builder = StrategyBuilder::new(model, optimizer, device)
            .train_epochs(4)
            .train_mb_size(128)
            .eval_mb_size(128)
            .steps(Ar1Steps::new(config)?);
        if si > 0.0 {
            let si_config = SynapticIntelligenceConfig::new(si).with_excluded_parameters([output]);
            builder = builder.plugin(SynapticIntelligencePlugin::new(si_config)?);
        }
        Ok(builder)
    }
}

#[cfg(test)]
mod tests;
