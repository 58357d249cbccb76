//! The run settings of a strategy: [`TrainingConfig`] (serialisable: batch sizes, epochs,
//! periodic evaluation, seed, optimizer-state policy) and [`Settings`], what plugins read of
//! them (read-only) together with the optimizer, the criterion and the devices.

use std::sync::Arc;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::config::{Validate, rule};
use crate::criterion::Criterion;
use crate::error::Result;
use crate::optim::OptimizerSpec;

/// What a periodic evaluation step counts (Avalanche's `peval_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PevalMode {
    /// Epochs (`clock.train_exp_epochs`).
    #[default]
    Epoch,
    /// Iterations (`clock.train_exp_iterations`).
    Iteration,
}

/// What the loop does when a training iteration's loss (the criterion plus every plugin's
/// penalty, read before the backward pass) is NaN or infinite — the model has diverged, or is
/// about to. Not in Avalanche, which trains on and reports NaN metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NonFiniteLoss {
    /// Stop with [`ClError::NonFiniteLoss`](crate::ClError::NonFiniteLoss) naming the experience,
    /// epoch and iteration (the default): a diverged run is an error, not a result.
    #[default]
    Error,
    /// Skip the batch: no backward pass, no update (a warning per skipped batch).
    SkipBatch,
    /// Stop training the current experience (a warning); the next `train` call goes on.
    StopExperience,
    /// Train on (Avalanche's behaviour): NaN spreads into the weights.
    Ignore,
}

/// Periodic evaluation during `train_with_eval` (Avalanche's `eval_every` and `peval_mode`,
/// whose values -1, 0 and k > 0 are the three variants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodicEval {
    /// Never (`eval_every=-1`, Avalanche's default).
    #[default]
    Never,
    /// Before training and at the end of each experience (`eval_every=0`).
    AfterExperience,
    /// Before training, every `every` epochs or iterations, and at the end of each experience
    /// unless (epochs) its last epoch was just evaluated (`eval_every=k`).
    Every {
        /// The period (> 0).
        every: usize,
        /// What the period counts.
        #[serde(default)]
        mode: PevalMode,
    },
}

impl PeriodicEval {
    /// From Avalanche's `eval_every` (`None` is -1): `Some(0)` after each experience, `Some(k)`
    /// every `k` epochs.
    pub fn from_eval_every(eval_every: Option<usize>) -> Self {
        match eval_every {
            None => Self::Never,
            Some(0) => Self::AfterExperience,
            Some(every) => Self::Every { every, mode: PevalMode::Epoch },
        }
    }
}

/// The strategy template's own arguments (Avalanche's `train_mb_size`, `train_epochs`,
/// `eval_mb_size`, `eval_every`/`peval_mode`, plus the seed and the optimizer-state policy),
/// with Avalanche's defaults. Serialisable; validated by `StrategyBuilder::build`.
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_core::TrainingConfig;
/// let config = TrainingConfig::new().with_train_mb_size(128).with_eval_mb_size(1000).with_seed(3);
/// assert_eq!(TrainingConfig::from_toml(&config.to_toml().unwrap()).unwrap(), config);
/// assert_eq!(TrainingConfig::new().with_train_mb_size(0).validate_rule(), Some("train_mb_size_positive"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingConfig {
    /// Training mini-batch size (Avalanche's default 1).
    pub train_mb_size: usize,
    /// Epochs per training experience (default 1).
    pub train_epochs: usize,
    /// Evaluation mini-batch size (default: `train_mb_size`).
    pub eval_mb_size: Option<usize>,
    /// Periodic evaluation (default: never).
    pub periodic_eval: PeriodicEval,
    /// Seed of the data order, dropout masks and every other random draw of the loop and its
    /// plugins (default 0).
    pub seed: u64,
    /// Whether the optimizer state (momentum, Adam moments) is reset before each experience.
    /// Default `false`, as Avalanche ≥ 0.4: the state is created once and kept.
    pub reset_optimizer_state: bool,
    /// What a NaN or infinite training loss does (default: an error).
    pub non_finite_loss: NonFiniteLoss,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            train_mb_size: 1,
            train_epochs: 1,
            eval_mb_size: None,
            periodic_eval: PeriodicEval::Never,
            seed: 0,
            reset_optimizer_state: false,
            non_finite_loss: NonFiniteLoss::Error,
        }
    }
}

impl TrainingConfig {
    /// Avalanche's defaults: batch 1, 1 epoch, evaluation batch = training batch, no periodic
    /// evaluation, seed 0, optimizer state kept.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the training mini-batch size.
    pub fn with_train_mb_size(mut self, n: usize) -> Self {
        self.train_mb_size = n;
        self
    }

    /// Sets the epochs per experience.
    pub fn with_train_epochs(mut self, n: usize) -> Self {
        self.train_epochs = n;
        self
    }

    /// Sets the evaluation mini-batch size.
    pub fn with_eval_mb_size(mut self, n: usize) -> Self {
        self.eval_mb_size = Some(n);
        self
    }

    /// Sets the periodic evaluation.
    pub fn with_periodic_eval(mut self, periodic_eval: PeriodicEval) -> Self {
        self.periodic_eval = periodic_eval;
        self
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets whether the optimizer state is reset before each experience.
    pub fn with_reset_optimizer_state(mut self, reset: bool) -> Self {
        self.reset_optimizer_state = reset;
        self
    }

    /// Sets what a NaN or infinite training loss does.
    pub fn with_non_finite_loss(mut self, policy: NonFiniteLoss) -> Self {
        self.non_finite_loss = policy;
        self
    }

    /// The evaluation mini-batch size in effect.
    pub fn resolved_eval_mb_size(&self) -> usize {
        self.eval_mb_size.unwrap_or(self.train_mb_size)
    }

    /// The name of the first failed rule, if any (a shorthand for tests and docs).
    pub fn validate_rule(&self) -> Option<&'static str> {
        self.validate().err().and_then(|e| e.rule())
    }
}

impl Validate for TrainingConfig {
    fn validate(&self) -> Result<()> {
        const C: &str = "TrainingConfig";
        rule(C, "train_mb_size_positive", self.train_mb_size > 0, || "train_mb_size must be at least 1".into())?;
        rule(C, "train_epochs_positive", self.train_epochs > 0, || "train_epochs must be at least 1".into())?;
        rule(C, "eval_mb_size_positive", self.eval_mb_size != Some(0), || {
            "eval_mb_size must be at least 1 (or unset: the training mini-batch size)".into()
        })?;
        rule(
            C,
            "periodic_eval_period_positive",
            !matches!(self.periodic_eval, PeriodicEval::Every { every: 0, .. }),
            || "PeriodicEval::Every needs every >= 1 (use AfterExperience for Avalanche's eval_every=0)".into(),
        )
    }
}

/// The settings of a running strategy, read-only for plugins ([`StrategyState::settings`]):
/// the [`TrainingConfig`], the optimizer recipe, the criterion and the devices.
///
/// [`StrategyState::settings`]: super::StrategyState::settings
#[derive(Clone)]
pub struct Settings {
    config: TrainingConfig,
    optimizer: OptimizerSpec,
    criterion: Arc<dyn Criterion>,
    device: Device,
    eval_device: Device,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("config", &self.config)
            .field("optimizer", &self.optimizer)
            .field("criterion", &self.criterion.name())
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Settings for a strategy on `device` (the autodiff device; evaluation uses the same
    /// device without autodiff).
    pub(crate) fn new(
        config: TrainingConfig,
        optimizer: OptimizerSpec,
        criterion: Arc<dyn Criterion>,
        device: Device,
    ) -> Self {
        let eval_device = device.clone().without_autodiff();
        Self { config, optimizer, criterion, device, eval_device }
    }

    /// The template's configuration.
    pub fn config(&self) -> &TrainingConfig {
        &self.config
    }

    /// Training mini-batch size.
    pub fn train_mb_size(&self) -> usize {
        self.config.train_mb_size
    }

    /// Epochs per training experience.
    pub fn train_epochs(&self) -> usize {
        self.config.train_epochs
    }

    /// Evaluation mini-batch size.
    pub fn eval_mb_size(&self) -> usize {
        self.config.resolved_eval_mb_size()
    }

    /// The strategy's seed.
    pub fn seed(&self) -> u64 {
        self.config.seed
    }

    /// What a NaN or infinite training loss does.
    pub fn non_finite_loss(&self) -> NonFiniteLoss {
        self.config.non_finite_loss
    }

    /// Whether `make_optimizer` resets the optimizer state before each experience.
    pub fn reset_optimizer_state(&self) -> bool {
        self.config.reset_optimizer_state
    }

    /// How the optimizer is built (and its initial learning rate).
    pub fn optimizer(&self) -> &OptimizerSpec {
        &self.optimizer
    }

    /// The loss function.
    pub fn criterion(&self) -> &dyn Criterion {
        self.criterion.as_ref()
    }

    /// The device used for training (autodiff enabled).
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The device used for evaluation (the same device without autodiff).
    pub fn eval_device(&self) -> &Device {
        &self.eval_device
    }
}

/// A seed derived from `seed` and `key` (SplitMix64's finaliser): independent streams for the
/// experiences, groups of a buffer and plugins of one run, all reproducible from the one seed.
pub fn derive_seed(seed: u64, key: u64) -> u64 {
    let mut z = seed ^ 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(key.wrapping_add(1));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
