//! [`LrSchedulerPlugin`]: Avalanche's `LRSchedulerPlugin` over PyTorch's schedules.

use std::f64::consts::PI;
use std::sync::Arc;

use burn::lr_scheduler::module_lr_scheduler::{ModuleLrScheduler, ModuleLrSchedulerConfig};
use burn::lr_scheduler::{DynLrScheduler, LrScheduler};
use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, finite_non_negative, finite_positive, rule};
use cl_core::{ClError, Model, Plugin, Result, StatePart, StrategyState};
use serde::{Deserialize, Serialize};

/// A learning-rate schedule: each call to `step` returns the learning rate of the next epoch
/// (or iteration), the first call the rate of the first one.
///
/// Implemented for the schedules of [`SchedulerConfig`], Burn's [`ModuleLrScheduler`] (its base
/// rate), [`DynLrScheduler`], boxed [`LrScheduler`]s and [`FnSchedule`]; a schedule of your own
/// goes to [`LrSchedulerPlugin::custom`].
pub trait LrSchedule: Send {
    /// Advances the schedule and returns the learning rate to use next.
    fn step(&mut self) -> f64;
}

impl LrSchedule for ModuleLrScheduler {
    fn step(&mut self) -> f64 {
        ModuleLrScheduler::step(self).base()
    }
}

impl LrSchedule for DynLrScheduler {
    fn step(&mut self) -> f64 {
        DynLrScheduler::step(self)
    }
}

impl LrSchedule for Box<dyn LrScheduler> {
    fn step(&mut self) -> f64 {
        self.as_mut().step()
    }
}

/// A schedule given by a closure of the step index (0 for the first epoch/iteration).
pub struct FnSchedule<F> {
    f: F,
    index: usize,
}

impl<F: FnMut(usize) -> f64 + Send> FnSchedule<F> {
    /// The schedule `f(0), f(1), ...`.
    pub fn new(f: F) -> Self {
        Self { f, index: 0 }
    }
}

impl<F: FnMut(usize) -> f64 + Send> LrSchedule for FnSchedule<F> {
    fn step(&mut self) -> f64 {
        let lr = (self.f)(self.index);
        self.index += 1;
        lr
    }
}

/// How often the schedule advances (Avalanche's `step_granularity`: `"epoch"` / `"iteration"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepGranularity {
    /// After every training epoch (Avalanche's default).
    #[default]
    Epoch,
    /// After every training iteration.
    Iteration,
}

/// Builds a schedule from the optimizer's initial learning rate.
type Factory = Arc<dyn Fn(f64) -> Result<Box<dyn LrSchedule>> + Send + Sync>;

/// A schedule built by a closure (not serialisable): [`LrSchedulerPlugin::lambda`],
/// [`from_config`](LrSchedulerPlugin::from_config), [`custom`](LrSchedulerPlugin::custom).
#[derive(Clone)]
pub struct CustomSchedule {
    name: String,
    factory: Factory,
}

impl CustomSchedule {
    /// A schedule named `name` (for messages), built by `factory(initial_lr)` at the first
    /// experience and at each reset.
    pub fn new(
        name: impl Into<String>,
        factory: impl Fn(f64) -> Result<Box<dyn LrSchedule>> + Send + Sync + 'static,
    ) -> Self {
        Self { name: name.into(), factory: Arc::new(factory) }
    }

    /// The schedule's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Debug for CustomSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomSchedule").field("name", &self.name).finish_non_exhaustive()
    }
}

impl PartialEq for CustomSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.factory, &other.factory)
    }
}

fn default_gamma() -> f64 {
    0.1
}

fn one_third() -> f64 {
    1.0 / 3.0
}

fn one() -> f64 {
    1.0
}

fn five() -> usize {
    5
}

/// A learning-rate schedule with PyTorch's semantics, argument names and defaults (the
/// `scheduler` Avalanche's `LRSchedulerPlugin` wraps), serialisable:
/// `{"type": "step", "step_size": 30, "gamma": 0.1}`. Rates are computed in closed form from the
/// optimizer's initial rate (`base_lr`) and the step index `t` (0 for the first epoch or
/// iteration). [`Custom`](Self::Custom) holds a closure (not serialisable).
///
/// PyTorch's `ReduceLROnPlateau` (Avalanche's `metric=` argument) is not provided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[doc(
    alias = "StepLR",
    alias = "MultiStepLR",
    alias = "ExponentialLR",
    alias = "CosineAnnealingLR",
    alias = "LinearLR"
)]
#[doc(alias = "ConstantLR", alias = "PolynomialLR", alias = "LambdaLR")]
pub enum SchedulerConfig {
    /// `StepLR(step_size, gamma=0.1)`: `base_lr · gamma^⌊t / step_size⌋`.
    Step {
        /// Steps between two decays (at least 1).
        step_size: usize,
        /// Multiplicative decay (finite, > 0; default 0.1).
        #[serde(default = "default_gamma")]
        gamma: f64,
    },
    /// `MultiStepLR(milestones, gamma=0.1)`: `base_lr · gamma^(number of milestones ≤ t)`.
    MultiStep {
        /// Steps at which the rate decays, in any order; a repeated milestone decays twice (as
        /// PyTorch's `Counter` of milestones).
        milestones: Vec<usize>,
        /// Multiplicative decay (finite, > 0; default 0.1).
        #[serde(default = "default_gamma")]
        gamma: f64,
    },
    /// `ExponentialLR(gamma)`: `base_lr · gamma^t`.
    Exponential {
        /// Multiplicative decay per step (finite, > 0).
        gamma: f64,
    },
    /// `CosineAnnealingLR(T_max, eta_min=0)`:
    /// `eta_min + (base_lr − eta_min) · (1 + cos(π t / T_max)) / 2` (past `T_max` it continues
    /// along the cosine, as PyTorch's closed form).
    CosineAnnealing {
        /// Half period, in steps (at least 1).
        t_max: usize,
        /// The lowest rate (finite, ≥ 0; default 0).
        #[serde(default)]
        eta_min: f64,
    },
    /// `LinearLR(start_factor=1/3, end_factor=1.0, total_iters=5)`: from `base_lr ·
    /// start_factor` to `base_lr · end_factor` in `total_iters` steps, then constant (a linear
    /// warm-up with `end_factor = 1`).
    Linear {
        /// Factor of the first step (finite, > 0; default 1/3).
        #[serde(default = "one_third")]
        start_factor: f64,
        /// Factor from `total_iters` on (finite, ≥ 0; default 1).
        #[serde(default = "one")]
        end_factor: f64,
        /// Steps of the ramp (at least 1; default 5).
        #[serde(default = "five")]
        total_iters: usize,
    },
    /// `ConstantLR(factor=1/3, total_iters=5)`: `base_lr · factor` for the first `total_iters`
    /// steps, then `base_lr`.
    Constant {
        /// Factor of the first steps (finite, ≥ 0; default 1/3).
        #[serde(default = "one_third")]
        factor: f64,
        /// Steps at the reduced rate (default 5).
        #[serde(default = "five")]
        total_iters: usize,
    },
    /// `PolynomialLR(total_iters=5, power=1.0)`: `base_lr · (1 − min(t, total_iters) /
    /// total_iters)^power`.
    Polynomial {
        /// Steps until the rate reaches 0 (at least 1; default 5).
        #[serde(default = "five")]
        total_iters: usize,
        /// Exponent of the decay (finite, ≥ 0; default 1).
        #[serde(default = "one")]
        power: f64,
    },
    /// A schedule built by a closure ([`LrSchedulerPlugin::lambda`] for PyTorch's `LambdaLR`,
    /// [`LrSchedulerPlugin::from_config`] for any Burn scheduler, [`LrSchedulerPlugin::custom`]).
    /// Not serialisable.
    #[serde(skip)]
    Custom(CustomSchedule),
}

impl SchedulerConfig {
    /// `StepLR(step_size, gamma=0.1)`.
    pub fn step(step_size: usize) -> Self {
        Self::Step { step_size, gamma: default_gamma() }
    }

    /// `CosineAnnealingLR(T_max, eta_min=0)`.
    pub fn cosine_annealing(t_max: usize) -> Self {
        Self::CosineAnnealing { t_max, eta_min: 0.0 }
    }

    /// PyTorch's `LambdaLR(lr_lambda)`: `lr = base_lr * lr_lambda(t)` (not serialisable).
    pub fn lambda(lr_lambda: impl Fn(usize) -> f64 + Send + Sync + Clone + 'static) -> Self {
        Self::Custom(CustomSchedule::new("LambdaLR", move |lr| {
            let f = lr_lambda.clone();
            Ok(Box::new(FnSchedule::new(move |t| lr * f(t))) as Box<dyn LrSchedule>)
        }))
    }

    /// Any Burn scheduler config, built from the initial learning rate (the base rate of a
    /// [`ModuleLrScheduler`]; Burn's schedulers need `0 < lr ≤ 1`, a rate outside is reported
    /// by `train` as an error). Not serialisable.
    pub fn burn<C: Into<burn::lr_scheduler::LrSchedulerConfig>>(
        config: impl Fn(f64) -> C + Send + Sync + 'static,
    ) -> Self {
        Self::Custom(CustomSchedule::new("burn", move |lr| {
            let scheduler = ModuleLrSchedulerConfig::new(config(lr).into())
                .init()
                .map_err(|e| ClError::config("lr_scheduler", e))?;
            Ok(Box::new(scheduler) as Box<dyn LrSchedule>)
        }))
    }

    /// Any [`LrSchedule`], built by `factory(initial_lr)` at the first experience and at each
    /// reset; `name` is for messages. Not serialisable.
    pub fn custom(
        name: impl Into<String>,
        factory: impl Fn(f64) -> Result<Box<dyn LrSchedule>> + Send + Sync + 'static,
    ) -> Self {
        Self::Custom(CustomSchedule::new(name, factory))
    }

    /// The rate of step `t` for a base rate `base_lr`, for the closed-form schedules (`None` for
    /// [`Custom`](Self::Custom)).
    pub fn lr_at(&self, base_lr: f64, t: usize) -> Option<f64> {
        let powi = |x: f64, n: usize| x.powi(i32::try_from(n).unwrap_or(i32::MAX));
        Some(match self {
            Self::Step { step_size, gamma } => base_lr * powi(*gamma, t / (*step_size).max(1)),
            Self::MultiStep { milestones, gamma } => {
                base_lr * powi(*gamma, milestones.iter().filter(|&&m| m <= t).count())
            }
            Self::Exponential { gamma } => base_lr * powi(*gamma, t),
            Self::CosineAnnealing { t_max, eta_min } => {
                eta_min + (base_lr - eta_min) * (1.0 + (PI * t as f64 / (*t_max).max(1) as f64).cos()) / 2.0
            }
            Self::Linear { start_factor, end_factor, total_iters } => {
                let progress = t.min(*total_iters) as f64 / (*total_iters).max(1) as f64;
                base_lr * (start_factor + (end_factor - start_factor) * progress)
            }
            Self::Constant { factor, total_iters } => {
                if t < *total_iters {
                    base_lr * factor
                } else {
                    base_lr
                }
            }
            Self::Polynomial { total_iters, power } => {
                let left = 1.0 - t.min(*total_iters) as f64 / (*total_iters).max(1) as f64;
                base_lr * left.powf(*power)
            }
            Self::Custom(_) => return None,
        })
    }

    /// The schedule for the initial rate `base_lr`.
    fn build(&self, base_lr: f64) -> Result<Box<dyn LrSchedule>> {
        match self {
            Self::Custom(custom) => (custom.factory)(base_lr),
            closed_form => {
                let config = closed_form.clone();
                Ok(Box::new(FnSchedule::new(move |t| config.lr_at(base_lr, t).expect("a closed-form schedule"))))
            }
        }
    }
}

impl Validate for SchedulerConfig {
    /// One rule per argument: `step_size_positive`, `gamma_finite_positive`,
    /// `t_max_positive`, `eta_min_finite_non_negative`,
    /// `start_factor_finite_positive`, `end_factor_finite_non_negative`, `total_iters_positive`,
    /// `factor_finite_non_negative`, `power_finite_non_negative`.
    fn validate(&self) -> Result<()> {
        const C: &str = "SchedulerConfig";
        let gamma_rule = |gamma: f64| {
            rule(C, "gamma_finite_positive", finite_positive(gamma), || {
                format!("gamma = {gamma} must be a finite number > 0")
            })
        };
        let total_iters_rule =
            |n: usize| rule(C, "total_iters_positive", n > 0, || "total_iters must be at least 1".into());
        match self {
            Self::Step { step_size, gamma } => {
                rule(C, "step_size_positive", *step_size > 0, || "step_size must be at least 1".into())?;
                gamma_rule(*gamma)
            }
            Self::MultiStep { gamma, .. } | Self::Exponential { gamma } => gamma_rule(*gamma),
            Self::CosineAnnealing { t_max, eta_min } => {
                rule(C, "t_max_positive", *t_max > 0, || "t_max must be at least 1".into())?;
                rule(C, "eta_min_finite_non_negative", finite_non_negative(*eta_min), || {
                    format!("eta_min = {eta_min} must be a finite number >= 0")
                })
            }
            Self::Linear { start_factor, end_factor, total_iters } => {
                rule(C, "start_factor_finite_positive", finite_positive(*start_factor), || {
                    format!("start_factor = {start_factor} must be a finite number > 0")
                })?;
                rule(C, "end_factor_finite_non_negative", finite_non_negative(*end_factor), || {
                    format!("end_factor = {end_factor} must be a finite number >= 0")
                })?;
                total_iters_rule(*total_iters)
            }
            Self::Constant { factor, .. } => {
                rule(C, "factor_finite_non_negative", finite_non_negative(*factor), || {
                    format!("factor = {factor} must be a finite number >= 0")
                })
            }
            Self::Polynomial { total_iters, power } => {
                total_iters_rule(*total_iters)?;
                rule(C, "power_finite_non_negative", finite_non_negative(*power), || {
                    format!("power = {power} must be a finite number >= 0")
                })
            }
            Self::Custom(_) => Ok(()),
        }
    }
}

fn yes() -> bool {
    true
}

/// The configuration of an [`LrSchedulerPlugin`]: Avalanche's `LRSchedulerPlugin(scheduler,
/// reset_scheduler=True, reset_lr=True, metric=None, step_granularity="epoch",
/// first_exp_only=False, first_epoch_only=False)`, the scheduler being a [`SchedulerConfig`]
/// (`metric`, for `ReduceLROnPlateau`, is not supported).
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_plugins::{LrSchedulerConfig, SchedulerConfig, StepGranularity};
/// // LRSchedulerPlugin(CosineAnnealingLR(optimizer, T_max=100, eta_min=1e-4),
/// //                   step_granularity="iteration")
/// let config = LrSchedulerConfig::new(SchedulerConfig::CosineAnnealing { t_max: 100, eta_min: 1e-4 })
///     .with_step_granularity(StepGranularity::Iteration);
/// assert_eq!(LrSchedulerConfig::from_json(&config.to_json()).unwrap(), config);
/// let parsed = LrSchedulerConfig::from_toml("[scheduler]\ntype = \"step\"\nstep_size = 30").unwrap();
/// assert_eq!(parsed, LrSchedulerConfig::new(SchedulerConfig::step(30)));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[doc(alias = "LRSchedulerPlugin")]
pub struct LrSchedulerConfig {
    /// The schedule (required).
    pub scheduler: SchedulerConfig,
    /// Whether the schedule steps after every epoch (default) or iteration.
    #[serde(default)]
    pub step_granularity: StepGranularity,
    /// Whether the schedule restarts at each experience (default `true`).
    #[serde(default = "yes")]
    pub reset_scheduler: bool,
    /// Whether the initial learning rate is restored at the end of each experience (default
    /// `true`).
    #[serde(default = "yes")]
    pub reset_lr: bool,
    /// Step only during the first epoch of each experience (default `false`).
    #[serde(default)]
    pub first_epoch_only: bool,
    /// Step only during the first experience (default `false`).
    #[serde(default)]
    pub first_exp_only: bool,
}

impl LrSchedulerConfig {
    /// The plugin over `scheduler` with Avalanche's defaults.
    pub fn new(scheduler: SchedulerConfig) -> Self {
        Self {
            scheduler,
            step_granularity: StepGranularity::Epoch,
            reset_scheduler: true,
            reset_lr: true,
            first_epoch_only: false,
            first_exp_only: false,
        }
    }

    /// Sets the schedule.
    pub fn with_scheduler(mut self, scheduler: SchedulerConfig) -> Self {
        self.scheduler = scheduler;
        self
    }

    /// Sets whether the schedule steps after every epoch or iteration.
    pub fn with_step_granularity(mut self, granularity: StepGranularity) -> Self {
        self.step_granularity = granularity;
        self
    }

    /// Sets whether the schedule restarts at each experience.
    pub fn with_reset_scheduler(mut self, reset: bool) -> Self {
        self.reset_scheduler = reset;
        self
    }

    /// Sets whether the initial rate is restored at the end of each experience.
    pub fn with_reset_lr(mut self, reset: bool) -> Self {
        self.reset_lr = reset;
        self
    }

    /// Sets whether the schedule steps only during the first epoch of each experience.
    pub fn with_first_epoch_only(mut self, only: bool) -> Self {
        self.first_epoch_only = only;
        self
    }

    /// Sets whether the schedule steps only during the first experience.
    pub fn with_first_exp_only(mut self, only: bool) -> Self {
        self.first_exp_only = only;
        self
    }
}

impl Validate for LrSchedulerConfig {
    /// The schedule's rules (the plugin's options have none).
    fn validate(&self) -> Result<()> {
        self.scheduler.validate()
    }
}

/// Learning-rate scheduling (Avalanche's `LRSchedulerPlugin`), setting the rate through
/// [`StrategyState::set_lr`] (declares [`StatePart::LearningRate`], exclusive: two schedulers are
/// rejected by the builder; a NaN, infinite or negative rate — e.g. from a lambda — stops
/// training with [`ClError::InvalidLearningRate`]).
///
/// The schedule is built from the optimizer's initial learning rate
/// (`state.settings().optimizer().learning_rate()`, PyTorch's `base_lr`). As in Avalanche:
/// - the first experience starts at the schedule's first rate (PyTorch's schedulers set it when
///   constructed);
/// - the schedule steps in `after_training_epoch` (or `after_training_iteration`) and the new
///   rate is used from the next epoch (iteration) on;
/// - in `after_training_exp`, `reset_lr` restores the initial rate and `reset_scheduler`
///   restarts the schedule: the next experience rebuilds it and, with `reset_lr`, starts again
///   at its first rate — each experience then sees the same sequence. Without `reset_lr` the
///   next experience starts at the last rate and the restarted schedule applies from its first
///   step (PyTorch's chainable schedulers would instead rescale it by the current rate).
///   Without `reset_scheduler` the schedule continues across experiences;
/// - `first_epoch_only` / `first_exp_only` step only in the first epoch of each experience /
///   in the first experience.
///
/// ```
/// use cl_plugins::{LrSchedulerConfig, LrSchedulerPlugin, SchedulerConfig, StepGranularity};
/// // LRSchedulerPlugin(StepLR(optimizer, step_size=2, gamma=0.5))
/// let step = LrSchedulerPlugin::new(LrSchedulerConfig::new(SchedulerConfig::Step { step_size: 2, gamma: 0.5 }))?;
/// // LambdaLR(optimizer, lambda e: 0.5 ** e):
/// let lambda = LrSchedulerPlugin::lambda(|e| 0.5f64.powi(e as i32));
/// // ... keeping the schedule across experiences:
/// let config = LrSchedulerConfig::new(SchedulerConfig::lambda(|e| 0.5f64.powi(e as i32))).with_reset_scheduler(false);
/// let lambda_kept = LrSchedulerPlugin::new(config)?;
/// // Any Burn scheduler config, e.g. a linear warm-up of 5 steps followed by cosine annealing:
/// use cl_core::burn::lr_scheduler::{LrSchedulerConfig as BurnConfig, sequential::SequentialLrSchedulerConfig,
///     linear::LinearLrSchedulerConfig, cosine::CosineAnnealingLrSchedulerConfig};
/// let warmup = LrSchedulerPlugin::from_config(|lr| SequentialLrSchedulerConfig::new(
///     vec![
///         BurnConfig::Linear(LinearLrSchedulerConfig::new(lr / 10.0, lr, 5)),
///         BurnConfig::Cosine(CosineAnnealingLrSchedulerConfig::new(lr, 95)),
///     ],
///     vec![5],
/// ));
/// // Naive::builder(..)?.plugin(step).build()?
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "LRSchedulerPlugin")]
pub struct LrSchedulerPlugin {
    config: LrSchedulerConfig,
    schedule: Option<Box<dyn LrSchedule>>,
    /// The calls to `step` made on `schedule` since it was built (how a checkpoint restores
    /// it: rebuilt and stepped as many times).
    steps: u64,
    started: bool,
}

/// What a checkpoint records of an [`LrSchedulerConfig`] to check it on load: the config, or
/// for a closure schedule (not serialisable) its name and the plugin's options.
#[derive(Serialize)]
#[serde(untagged)]
enum ConfigIdentity<'a> {
    Config(&'a LrSchedulerConfig),
    Custom {
        custom_scheduler: &'a str,
        step_granularity: StepGranularity,
        reset_scheduler: bool,
        reset_lr: bool,
        first_epoch_only: bool,
        first_exp_only: bool,
    },
}

impl LrSchedulerConfig {
    fn identity(&self) -> ConfigIdentity<'_> {
        match &self.scheduler {
            SchedulerConfig::Custom(custom) => ConfigIdentity::Custom {
                custom_scheduler: custom.name(),
                step_granularity: self.step_granularity,
                reset_scheduler: self.reset_scheduler,
                reset_lr: self.reset_lr,
                first_epoch_only: self.first_epoch_only,
                first_exp_only: self.first_exp_only,
            },
            _ => ConfigIdentity::Config(self),
        }
    }
}

impl std::fmt::Debug for LrSchedulerPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LrSchedulerPlugin")
            .field("config", &self.config)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

impl LrSchedulerPlugin {
    /// Scheduling as `config` says; an error if the config breaks a rule.
    pub fn new(config: LrSchedulerConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config, schedule: None, steps: 0, started: false })
    }

    /// A plugin over a closure schedule, with Avalanche's default options (closure schedules
    /// have no rule to check).
    fn custom_plugin(scheduler: SchedulerConfig) -> Self {
        Self { config: LrSchedulerConfig::new(scheduler), schedule: None, steps: 0, started: false }
    }

    /// PyTorch's `LambdaLR(lr_lambda)` ([`SchedulerConfig::lambda`]) with Avalanche's default
    /// options; for other options use `LrSchedulerPlugin::new(LrSchedulerConfig::new(
    /// SchedulerConfig::lambda(f)).with_..(..))`. Not serialisable.
    pub fn lambda(lr_lambda: impl Fn(usize) -> f64 + Send + Sync + Clone + 'static) -> Self {
        Self::custom_plugin(SchedulerConfig::lambda(lr_lambda))
    }

    /// Any Burn scheduler config ([`SchedulerConfig::burn`]) with Avalanche's default options.
    /// Not serialisable.
    pub fn from_config<C: Into<burn::lr_scheduler::LrSchedulerConfig>>(
        config: impl Fn(f64) -> C + Send + Sync + 'static,
    ) -> Self {
        Self::custom_plugin(SchedulerConfig::burn(config))
    }

    /// Any [`LrSchedule`] ([`SchedulerConfig::custom`]) with Avalanche's default options. Not
    /// serialisable.
    pub fn custom(
        name: impl Into<String>,
        factory: impl Fn(f64) -> Result<Box<dyn LrSchedule>> + Send + Sync + 'static,
    ) -> Self {
        Self::custom_plugin(SchedulerConfig::custom(name, factory))
    }

    /// The configuration.
    pub fn config(&self) -> &LrSchedulerConfig {
        &self.config
    }

    fn should_step<M: Model>(&self, state: &StrategyState<M>) -> bool {
        state.is_training()
            && !(self.config.first_exp_only && state.clock().train_exp_counter > 0)
            && !(self.config.first_epoch_only && state.clock().train_exp_epochs > 0)
    }

    fn step_schedule<M: Model>(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        if self.should_step(state)
            && let Some(schedule) = self.schedule.as_mut()
        {
            self.steps += 1;
            state.set_lr(schedule.step())?;
        }
        Ok(())
    }
}

impl<M: Model> Plugin<M> for LrSchedulerPlugin {
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::LearningRate]
    }

    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        if self.schedule.is_none() {
            let mut schedule = self.config.scheduler.build(state.settings().optimizer().learning_rate())?;
            let first = schedule.step();
            if !self.started || self.config.reset_lr {
                state.set_lr(first)?;
            }
            self.schedule = Some(schedule);
            self.steps = 1;
            self.started = true;
        }
        Ok(())
    }

    fn after_training_epoch(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        if self.config.step_granularity == StepGranularity::Epoch {
            self.step_schedule(state)?;
        }
        Ok(())
    }

    fn after_training_iteration(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        if self.config.step_granularity == StepGranularity::Iteration {
            self.step_schedule(state)?;
        }
        Ok(())
    }

    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        if self.config.reset_lr {
            state.set_lr(state.settings().optimizer().learning_rate())?;
        }
        if self.config.reset_scheduler {
            self.schedule = None;
            self.steps = 0;
        }
        Ok(())
    }

    /// The configuration (checked on load; a closure schedule by its name), whether the first
    /// experience started, and the schedule's position: the number of steps taken since it was
    /// built (`None` when it restarts at the next experience). The learning rate itself is
    /// saved by the strategy.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config.identity())?;
        out.put("started", &self.started)?;
        out.put("steps", &self.schedule.as_ref().map(|_| self.steps))
    }

    /// Rebuilds the schedule from the optimizer's initial rate and steps it as many times as
    /// the saved one was stepped: exact for every schedule that is a function of its steps (the
    /// closed forms, `LambdaLR`, Burn's schedulers, closures of the step index).
    fn load_state(&mut self, state: &StateDict, strategy: &StrategyState<M>) -> Result<()> {
        state.check_config("config", &self.config.identity())?;
        self.started = state.get("started")?;
        let steps: Option<u64> = state.get("steps")?;
        self.schedule = match steps {
            Some(n) => {
                // A schedule steps at most once per iteration or epoch so far.
                let clock = strategy.clock();
                let bound = 2 * clock.train_iterations + clock.train_exp_counter + 1;
                if n > bound {
                    return Err(cl_core::ClError::CheckpointEntry {
                        component: state.component().to_string(),
                        key: "steps".into(),
                        reason: format!("{n} steps after {} iterations", clock.train_iterations),
                    });
                }
                let mut schedule = self.config.scheduler.build(strategy.settings().optimizer().learning_rate())?;
                for _ in 0..n {
                    schedule.step();
                }
                Some(schedule)
            }
            None => None,
        };
        self.steps = steps.unwrap_or(0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::training::test_util::{Shared, builder, stream, tiny_mlp};
    use cl_core::config::{ConfigFile, assert_rule};
    use cl_models::SimpleMlp;

    /// A schedule kept across experiences comes back at its position (the next rates are the
    /// same), closed forms and closures alike; a reset schedule restarts as it would have; a
    /// checkpoint of another schedule or options is refused, closures by name.
    #[test]
    fn checkpoint_restores_the_schedule_position() {
        use crate::persist::test_util::{assert_mismatch, restore};
        let configs = [
            LrSchedulerConfig::new(SchedulerConfig::Step { step_size: 3, gamma: 0.5 })
                .with_reset_scheduler(false)
                .with_step_granularity(StepGranularity::Iteration),
            LrSchedulerConfig::new(SchedulerConfig::lambda(|t| 0.9f64.powi(t as i32))).with_reset_scheduler(false),
            LrSchedulerConfig::new(SchedulerConfig::burn(|lr| {
                burn::lr_scheduler::step::StepLrSchedulerConfig::new(lr, 2).with_gamma(0.5)
            }))
            .with_reset_scheduler(false),
            LrSchedulerConfig::new(SchedulerConfig::cosine_annealing(5)),
        ];
        for config in configs {
            let mut s = builder(tiny_mlp(4), 0.1, 2).plugin(plugin(config.clone())).build().unwrap();
            s.train(&stream(2, 4)).unwrap();
            let p = s.plugin::<LrSchedulerPlugin>().unwrap();
            let mut fresh = plugin(config.clone());
            restore::<SimpleMlp, _>(p, &mut fresh, s.state());
            assert_eq!(
                (fresh.started, fresh.steps, fresh.schedule.is_some()),
                (p.started, p.steps, p.schedule.is_some())
            );
            assert_eq!(fresh.schedule.is_some(), !config.reset_scheduler);
            if let Some(expected) = s.plugin_mut::<LrSchedulerPlugin>().unwrap().schedule.as_mut() {
                let expected: Vec<u64> = (0..12).map(|_| expected.step().to_bits()).collect();
                let got: Vec<u64> = (0..12).map(|_| fresh.schedule.as_mut().unwrap().step().to_bits()).collect();
                assert_eq!(got, expected, "{:?}", config.scheduler);
            }
        }
        let step = LrSchedulerConfig::new(SchedulerConfig::step(2));
        let mut s = builder(tiny_mlp(4), 0.1, 1).plugin(plugin(step.clone())).build().unwrap();
        s.train(&stream(1, 4)).unwrap();
        let state =
            restore::<SimpleMlp, _>(s.plugin::<LrSchedulerPlugin>().unwrap(), &mut plugin(step.clone()), s.state());
        for other in [
            LrSchedulerConfig::new(SchedulerConfig::step(3)),
            step.clone().with_reset_lr(false),
            LrSchedulerConfig::new(SchedulerConfig::lambda(|_| 1.0)),
        ] {
            assert_mismatch::<SimpleMlp, _>(&state, &mut plugin(other), s.state());
        }
        let lambda = LrSchedulerPlugin::lambda(|_| 1.0);
        let state = restore::<SimpleMlp, _>(&lambda, &mut LrSchedulerPlugin::lambda(|_| 2.0), s.state());
        assert_mismatch::<SimpleMlp, _>(
            &state,
            &mut LrSchedulerPlugin::from_config(|lr| burn::lr_scheduler::step::StepLrSchedulerConfig::new(lr, 1)),
            s.state(),
        );
    }

    #[test]
    fn configs_round_trip() {
        let schedulers = [
            SchedulerConfig::Step { step_size: 3, gamma: 0.5 },
            SchedulerConfig::MultiStep { milestones: vec![2, 5], gamma: 0.2 },
            SchedulerConfig::Exponential { gamma: 0.9 },
            SchedulerConfig::CosineAnnealing { t_max: 10, eta_min: 0.001 },
            SchedulerConfig::Linear { start_factor: 0.1, end_factor: 1.0, total_iters: 4 },
            SchedulerConfig::Constant { factor: 0.5, total_iters: 2 },
            SchedulerConfig::Polynomial { total_iters: 8, power: 2.0 },
        ];
        for (i, scheduler) in schedulers.into_iter().enumerate() {
            let c = LrSchedulerConfig::new(scheduler)
                .with_step_granularity(StepGranularity::Iteration)
                .with_reset_scheduler(i % 2 == 0)
                .with_reset_lr(i % 3 == 0)
                .with_first_epoch_only(i % 2 == 1)
                .with_first_exp_only(i == 4);
            assert_eq!(LrSchedulerConfig::from_json(&c.to_json()).unwrap(), c);
            assert_eq!(LrSchedulerConfig::from_toml(&c.to_toml().unwrap()).unwrap(), c);
        }
        // PyTorch's defaults.
        let c = LrSchedulerConfig::from_json(r#"{"scheduler": {"type": "linear"}}"#).unwrap();
        assert_eq!(c.scheduler, SchedulerConfig::Linear { start_factor: 1.0 / 3.0, end_factor: 1.0, total_iters: 5 });
        assert!(c.reset_lr && c.reset_scheduler && !c.first_epoch_only && !c.first_exp_only);
        let c = LrSchedulerConfig::from_json(r#"{"scheduler": {"type": "constant"}}"#).unwrap();
        assert_eq!(c.scheduler, SchedulerConfig::Constant { factor: 1.0 / 3.0, total_iters: 5 });
        assert!(LrSchedulerConfig::from_json(r#"{"scheduler": {"type": "step", "step": 3}}"#).is_err());
    }

    #[test]
    fn config_rules() {
        let v = |s: SchedulerConfig| LrSchedulerConfig::new(s).validate();
        assert_rule(v(SchedulerConfig::step(0)), "step_size_positive");
        assert_rule(v(SchedulerConfig::Step { step_size: 1, gamma: 0.0 }), "gamma_finite_positive");
        assert_rule(v(SchedulerConfig::Exponential { gamma: f64::NAN }), "gamma_finite_positive");
        assert_rule(v(SchedulerConfig::MultiStep { milestones: vec![3], gamma: -0.1 }), "gamma_finite_positive");
        assert_rule(v(SchedulerConfig::cosine_annealing(0)), "t_max_positive");
        assert_rule(v(SchedulerConfig::CosineAnnealing { t_max: 1, eta_min: -1.0 }), "eta_min_finite_non_negative");
        let linear =
            |start_factor, end_factor, total_iters| SchedulerConfig::Linear { start_factor, end_factor, total_iters };
        assert_rule(v(linear(0.0, 1.0, 2)), "start_factor_finite_positive");
        assert_rule(v(linear(0.5, f64::INFINITY, 2)), "end_factor_finite_non_negative");
        assert_rule(v(linear(0.5, 1.0, 0)), "total_iters_positive");
        assert_rule(v(SchedulerConfig::Constant { factor: -0.5, total_iters: 2 }), "factor_finite_non_negative");
        assert_rule(v(SchedulerConfig::Polynomial { total_iters: 0, power: 1.0 }), "total_iters_positive");
        assert_rule(v(SchedulerConfig::Polynomial { total_iters: 3, power: -1.0 }), "power_finite_non_negative");
        assert_rule(LrSchedulerPlugin::new(LrSchedulerConfig::new(SchedulerConfig::step(0))), "step_size_positive");
    }

    #[test]
    fn closed_forms_follow_pytorch() {
        let at = |s: SchedulerConfig, t: usize| s.lr_at(0.1, t).unwrap();
        assert!((at(SchedulerConfig::Polynomial { total_iters: 4, power: 2.0 }, 1) - 0.1 * 0.5625).abs() < 1e-15);
        assert_eq!(at(SchedulerConfig::Polynomial { total_iters: 4, power: 1.0 }, 9), 0.0);
        assert_eq!(at(SchedulerConfig::Constant { factor: 0.5, total_iters: 2 }, 1), 0.05);
        assert_eq!(at(SchedulerConfig::Constant { factor: 0.5, total_iters: 2 }, 2), 0.1);
        // Milestones in any order, a repeated one decaying twice (PyTorch's Counter).
        let multi = SchedulerConfig::MultiStep { milestones: vec![3, 1, 3], gamma: 0.5 };
        let rates: Vec<f64> = (0..5).map(|t| multi.lr_at(1.0, t).unwrap()).collect();
        assert_eq!(rates, vec![1.0, 0.5, 0.5, 0.125, 0.125]);
        assert!(LrSchedulerPlugin::lambda(|_| 1.0).config().scheduler.lr_at(0.1, 0).is_none());
    }

    /// Records `state.lr()` before each epoch and each iteration.
    struct LrProbe {
        epochs: Shared<f64>,
        iterations: Shared<f64>,
    }
    impl Plugin<SimpleMlp> for LrProbe {
        fn before_training_epoch(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
            self.epochs.lock().unwrap().push(s.lr());
            Ok(())
        }
        fn before_training_iteration(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
            self.iterations.lock().unwrap().push(s.lr());
            Ok(())
        }
    }

    /// Trains `n_exps` experiences of 6 samples (3 iterations/epoch); returns the lr seen before
    /// each epoch and each iteration, and the lr left in the state.
    fn run_lr(plugin: LrSchedulerPlugin, lr: f64, epochs: usize, n_exps: usize) -> (Vec<f64>, Vec<f64>, f64) {
        let (e, i): (Shared<f64>, Shared<f64>) = Default::default();
        let mut s = builder(tiny_mlp(2 * n_exps), lr, epochs)
            .plugin(plugin)
            .plugin(LrProbe { epochs: e.clone(), iterations: i.clone() })
            .build()
            .unwrap();
        s.train(&stream(n_exps, 6)).unwrap();
        let (e, i) = (e.lock().unwrap().clone(), i.lock().unwrap().clone());
        (e, i, s.state().lr())
    }

    fn plugin(config: LrSchedulerConfig) -> LrSchedulerPlugin {
        LrSchedulerPlugin::new(config).unwrap()
    }

    fn assert_close(actual: &[f64], expected: &[f64]) {
        assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
        for (a, e) in actual.iter().zip(expected) {
            assert!((a - e).abs() < 1e-12, "{actual:?} vs {expected:?}");
        }
    }

    #[test]
    fn steps_after_each_epoch_and_resets_per_experience() {
        // StepLR(step_size=2, gamma=0.5), lr 0.1, 5 epochs, 2 experiences.
        let step = || LrSchedulerConfig::new(SchedulerConfig::Step { step_size: 2, gamma: 0.5 });
        let per_exp = [0.1, 0.1, 0.05, 0.05, 0.025];
        let (epochs, iterations, last) = run_lr(plugin(step()), 0.1, 5, 2);
        assert_close(&epochs, &[per_exp, per_exp].concat());
        let per_iter: Vec<f64> = per_exp.iter().flat_map(|&lr| [lr; 3]).collect();
        assert_close(&iterations, &[per_iter.clone(), per_iter].concat());
        assert_eq!(last, 0.1, "reset_lr restores the initial lr after each experience");

        // Without resetting the scheduler the schedule continues; reset_lr gives the first epoch
        // of the next experience the initial lr.
        let (epochs, _, _) = run_lr(plugin(step().with_reset_scheduler(false)), 0.1, 5, 2);
        assert_close(&epochs, &[0.1, 0.1, 0.05, 0.05, 0.025, 0.1, 0.0125, 0.0125, 0.00625, 0.00625]);
        // Neither reset: the lr continues from where it was.
        let (epochs, _, last) = run_lr(plugin(step().with_reset_scheduler(false).with_reset_lr(false)), 0.1, 3, 2);
        assert_close(&epochs, &[0.1, 0.1, 0.05, 0.05, 0.025, 0.025]);
        assert!((last - 0.0125).abs() < 1e-12);

        // Cosine annealing, T_max = 4 (no upper bound on the rate: Burn's schedulers need lr <= 1).
        let (epochs, _, _) = run_lr(plugin(LrSchedulerConfig::new(SchedulerConfig::cosine_annealing(4))), 2.0, 5, 1);
        let cos = |t: f64| 1.0 * (1.0 + (std::f64::consts::PI * t / 4.0).cos());
        assert_close(&epochs, &[cos(0.0), cos(1.0), cos(2.0), cos(3.0), cos(4.0)]);

        // Linear warm-up: LinearLR(start_factor=0.25, end_factor=1, total_iters=2).
        let linear = SchedulerConfig::Linear { start_factor: 0.25, end_factor: 1.0, total_iters: 2 };
        let (epochs, _, _) = run_lr(plugin(LrSchedulerConfig::new(linear)), 0.08, 4, 1);
        assert_close(&epochs, &[0.02, 0.05, 0.08, 0.08]);

        // MultiStepLR and LambdaLR.
        let multi = SchedulerConfig::MultiStep { milestones: vec![1, 3], gamma: 0.1 };
        let (epochs, _, _) = run_lr(plugin(LrSchedulerConfig::new(multi)), 0.5, 4, 1);
        assert_close(&epochs, &[0.5, 0.05, 0.05, 0.005]);
        let (epochs, _, _) = run_lr(LrSchedulerPlugin::lambda(|t| 1.0 / (t + 1) as f64), 0.6, 3, 1);
        assert_close(&epochs, &[0.6, 0.3, 0.2]);
    }

    #[test]
    fn steps_after_each_iteration() {
        // ExponentialLR(gamma=0.5) stepped per iteration, 2 epochs of 3 iterations, 2 experiences.
        let exp = || {
            LrSchedulerConfig::new(SchedulerConfig::Exponential { gamma: 0.5 })
                .with_step_granularity(StepGranularity::Iteration)
        };
        let (epochs, iterations, _) = run_lr(plugin(exp()), 0.08, 2, 2);
        let per_exp: Vec<f64> = (0..6).map(|i| 0.08 * 0.5f64.powi(i)).collect();
        assert_close(&iterations, &[per_exp.clone(), per_exp].concat());
        assert_close(&epochs, &[0.08, 0.01, 0.08, 0.01]);

        // first_epoch_only: steps during the first epoch of each experience only.
        let (_, iterations, _) = run_lr(plugin(exp().with_first_epoch_only(true)), 0.08, 2, 1);
        assert_close(&iterations, &[0.08, 0.04, 0.02, 0.01, 0.01, 0.01]);

        // first_exp_only: the second experience keeps the initial lr.
        let step = LrSchedulerConfig::new(SchedulerConfig::Step { step_size: 1, gamma: 0.5 }).with_first_exp_only(true);
        let (epochs, _, _) = run_lr(plugin(step), 0.1, 3, 2);
        assert_close(&epochs, &[0.1, 0.05, 0.025, 0.1, 0.1, 0.1]);
    }

    #[test]
    fn closures_and_burn_configs() {
        // A lambda with options through the config.
        let config =
            LrSchedulerConfig::new(SchedulerConfig::lambda(|t| 0.5f64.powi(t as i32))).with_reset_scheduler(false);
        let (epochs, _, _) = run_lr(plugin(config), 0.4, 2, 2);
        assert_close(&epochs, &[0.4, 0.2, 0.4, 0.05]);
        // A Burn config (StepLR of Burn).
        use burn::lr_scheduler::step::StepLrSchedulerConfig;
        let burn = LrSchedulerPlugin::from_config(|lr| StepLrSchedulerConfig::new(lr, 1).with_gamma(0.5));
        let (epochs, _, _) = run_lr(burn, 0.4, 3, 1);
        assert_close(&epochs, &[0.4, 0.2, 0.1]);
        // Burn's schedulers reject lr > 1: reported when training starts.
        use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
        let burn = LrSchedulerPlugin::from_config(|lr| CosineAnnealingLrSchedulerConfig::new(lr, 4));
        let mut s = builder(tiny_mlp(2), 2.0, 1).plugin(burn).build().unwrap();
        assert!(matches!(s.train(&stream(1, 6)), Err(ClError::InvalidConfig { rule: "lr_scheduler", .. })));
        // A custom schedule: the rate goes through set_lr, so a negative rate is an error.
        let custom =
            LrSchedulerPlugin::custom("negative", |_| Ok(Box::new(FnSchedule::new(|_| -1.0)) as Box<dyn LrSchedule>));
        assert!(matches!(&custom.config().scheduler, SchedulerConfig::Custom(c) if c.name() == "negative"));
        let mut s = builder(tiny_mlp(2), 0.1, 1).plugin(custom).build().unwrap();
        let err = s.train(&stream(1, 6)).unwrap_err();
        assert!(matches!(err, ClError::InvalidLearningRate { .. }), "{err}");
        let nan = LrSchedulerPlugin::lambda(|t| if t == 0 { 1.0 } else { f64::NAN });
        let mut s = builder(tiny_mlp(2), 0.1, 2).plugin(nan).build().unwrap();
        assert!(matches!(s.train(&stream(1, 6)), Err(ClError::InvalidLearningRate { .. })));
    }

    #[test]
    fn two_schedulers_are_rejected() {
        let err = builder(tiny_mlp(2), 0.1, 1)
            .plugin(plugin(LrSchedulerConfig::new(SchedulerConfig::step(1))))
            .plugin(plugin(LrSchedulerConfig::new(SchedulerConfig::cosine_annealing(4))))
            .build()
            .err()
            .unwrap();
        assert!(matches!(err, ClError::IncompatiblePlugins(_)), "{err}");
        assert_eq!(
            <LrSchedulerPlugin as Plugin<SimpleMlp>>::writes(&LrSchedulerPlugin::lambda(|_| 1.0)),
            vec![StatePart::LearningRate]
        );
    }
}
