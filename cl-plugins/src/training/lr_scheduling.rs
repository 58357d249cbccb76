//! [`LrSchedulerPlugin`]: Avalanche's `LrSchedulerPlugin` over Burn's schedulers.

use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::lr_scheduler::exponential::ExponentialLrSchedulerConfig;
use burn::lr_scheduler::linear::LinearLrSchedulerConfig;
use burn::lr_scheduler::module_lr_scheduler::{ModuleLrScheduler, ModuleLrSchedulerConfig};
use burn::lr_scheduler::step::StepLrSchedulerConfig;
use burn::lr_scheduler::{DynLrScheduler, LrScheduler, LrSchedulerConfig};
use cl_core::{ClError, Model, Plugin, Result, StatePart, StrategyState};

/// A learning-rate schedule: each call to `step` returns the learning rate of the next epoch
/// (or iteration), the first call the rate of the first one.
///
/// Burn 0.22's configs build [`ModuleLrScheduler`]s (their concrete schedulers' `build` is
/// private and `ModuleLrScheduler` is not a [`LrScheduler`]), so this trait adapts both:
/// it is implemented for [`ModuleLrScheduler`] (its base rate), [`DynLrScheduler`], boxed
/// [`LrScheduler`]s and [`FnSchedule`].
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

/// A schedule given by a closure of the step index (0 for the first epoch/iteration), e.g.
/// PyTorch's `LambdaLR` (`base_lr * lambda(epoch)`) or `MultiStepLR`.
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

/// How often the schedule advances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StepGranularity {
    /// After every training epoch (Avalanche's default).
    #[default]
    Epoch,
    /// After every training iteration.
    Iteration,
}

/// Builds a schedule from the optimizer's initial learning rate.
type Factory = Box<dyn Fn(f64) -> Result<Box<dyn LrSchedule>> + Send>;

/// Learning-rate scheduling (Avalanche's `LrSchedulerPlugin`), writing [`StrategyState::lr`].
///
/// The schedule is built from a factory given the optimizer's initial learning rate
/// (`state.optimizer_spec.learning_rate()`, PyTorch's `base_lr`). As in Avalanche:
/// - the first experience starts at the schedule's first rate (PyTorch's schedulers set it when
///   constructed);
/// - the schedule steps in `after_training_epoch` (or `after_training_iteration`) and the new
///   rate is used from the next epoch (iteration) on;
/// - in `after_training_exp`, `reset_lr` (default `true`) restores the initial rate and
///   `reset_scheduler` (default `true`) restarts the schedule: the next experience rebuilds it
///   from the factory and, with `reset_lr`, starts again at its first rate — each experience then
///   sees the same sequence. Without `reset_lr` the next experience starts at the last rate and
///   the restarted schedule applies from its first step (PyTorch's chainable schedulers would
///   instead rescale it by the current rate). Without `reset_scheduler` the schedule continues
///   across experiences;
/// - `first_epoch_only` / `first_exp_only` step only in the first epoch of each experience /
///   in the first experience (`clock.train_exp_epochs == 0` / `clock.train_exp_counter == 0`).
///
/// Metric-driven schedules (`ReduceLROnPlateau`) are not provided: Burn has none.
///
/// Burn's schedulers require `0 < lr ≤ 1` (and `gamma ≤ 1` for the exponential one); a rate
/// outside is reported by `train` as a configuration error.
///
/// ```
/// use cl_plugins::training::{LrSchedulerPlugin, StepGranularity};
/// // StepLR(optimizer, step_size=2, gamma=0.1), stepped after every epoch:
/// let plugin = LrSchedulerPlugin::step(2, 0.1).unwrap();
/// // CosineAnnealingLR(optimizer, T_max=100, eta_min=1e-4), stepped after every iteration:
/// let cosine = LrSchedulerPlugin::cosine(100, 1e-4).unwrap().step_granularity(StepGranularity::Iteration);
/// // LambdaLR(optimizer, lambda e: 0.5 ** e), keeping the schedule across experiences:
/// let lambda = LrSchedulerPlugin::lambda(|e| 0.5f64.powi(e as i32)).reset_scheduler(false);
/// // Any Burn config, e.g. a linear warm-up of 5 steps followed by cosine annealing:
/// use cl_core::burn::lr_scheduler::{LrSchedulerConfig, sequential::SequentialLrSchedulerConfig,
///     linear::LinearLrSchedulerConfig, cosine::CosineAnnealingLrSchedulerConfig};
/// let warmup = LrSchedulerPlugin::from_config(|lr| SequentialLrSchedulerConfig::new(
///     vec![
///         LrSchedulerConfig::Linear(LinearLrSchedulerConfig::new(lr / 10.0, lr, 5)),
///         LrSchedulerConfig::Cosine(CosineAnnealingLrSchedulerConfig::new(lr, 95)),
///     ],
///     vec![5],
/// ));
/// // Used as Naive::builder(model, optimizer, device).plugin(plugin).build()?
/// ```
pub struct LrSchedulerPlugin {
    factory: Factory,
    schedule: Option<Box<dyn LrSchedule>>,
    granularity: StepGranularity,
    reset_scheduler: bool,
    reset_lr: bool,
    first_epoch_only: bool,
    first_exp_only: bool,
    started: bool,
}

impl std::fmt::Debug for LrSchedulerPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LrSchedulerPlugin")
            .field("granularity", &self.granularity)
            .field("reset_scheduler", &self.reset_scheduler)
            .field("reset_lr", &self.reset_lr)
            .field("first_epoch_only", &self.first_epoch_only)
            .field("first_exp_only", &self.first_exp_only)
            .finish_non_exhaustive()
    }
}

fn scheduler_error(e: String) -> ClError {
    ClError::config("lr_scheduler", e)
}

fn check_positive(field: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(ClError::config(field, format!("{v} is not a finite value > 0")))
    }
}

impl LrSchedulerPlugin {
    /// A plugin over any schedule: `factory(initial_lr)` builds it at the first experience and
    /// again at each reset.
    pub fn new(factory: impl Fn(f64) -> Result<Box<dyn LrSchedule>> + Send + 'static) -> Self {
        Self {
            factory: Box::new(factory),
            schedule: None,
            granularity: StepGranularity::Epoch,
            reset_scheduler: true,
            reset_lr: true,
            first_epoch_only: false,
            first_exp_only: false,
            started: false,
        }
    }

    /// A plugin over any Burn scheduler config, built from the initial learning rate (the base
    /// rate of a [`ModuleLrScheduler`]).
    pub fn from_config<C: Into<LrSchedulerConfig>>(config: impl Fn(f64) -> C + Send + 'static) -> Self {
        Self::new(move |lr| {
            let scheduler = ModuleLrSchedulerConfig::new(config(lr).into()).init().map_err(scheduler_error)?;
            Ok(Box::new(scheduler) as Box<dyn LrSchedule>)
        })
    }

    /// PyTorch's `StepLR(step_size, gamma)`: `lr = base_lr * gamma^(t / step_size)` (Burn's
    /// `StepLrScheduler`).
    pub fn step(step_size: usize, gamma: f64) -> Result<Self> {
        if step_size == 0 {
            return Err(ClError::config("step_size", "must be at least 1"));
        }
        check_positive("gamma", gamma)?;
        Ok(Self::from_config(move |lr| StepLrSchedulerConfig::new(lr, step_size).with_gamma(gamma)))
    }

    /// PyTorch's `MultiStepLR(milestones, gamma)`: the rate is multiplied by `gamma` at each
    /// milestone (in steps).
    pub fn multi_step(milestones: Vec<usize>, gamma: f64) -> Result<Self> {
        check_positive("gamma", gamma)?;
        if milestones.windows(2).any(|w| w[0] > w[1]) {
            return Err(ClError::config("milestones", "must be sorted"));
        }
        Ok(Self::new(move |lr| {
            let milestones = milestones.clone();
            Ok(Box::new(FnSchedule::new(move |t| {
                lr * gamma.powi(milestones.iter().filter(|&&m| m <= t).count() as i32)
            })))
        }))
    }

    /// PyTorch's `ExponentialLR(gamma)`: `lr = base_lr * gamma^t` (Burn's
    /// `ExponentialLrScheduler`, which needs `0 < gamma ≤ 1`).
    pub fn exponential(gamma: f64) -> Result<Self> {
        if !(gamma > 0.0 && gamma <= 1.0) {
            return Err(ClError::config("gamma", format!("{gamma} is not in (0, 1]")));
        }
        Ok(Self::from_config(move |lr| ExponentialLrSchedulerConfig::new(lr, gamma)))
    }

    /// PyTorch's `CosineAnnealingLR(T_max, eta_min)`:
    /// `lr = eta_min + (base_lr - eta_min) (1 + cos(pi t / T_max)) / 2` (Burn's
    /// `CosineAnnealingLrScheduler`; past `T_max` it continues along the cosine, as PyTorch).
    pub fn cosine(t_max: usize, eta_min: f64) -> Result<Self> {
        if t_max == 0 {
            return Err(ClError::config("t_max", "must be at least 1"));
        }
        if !(eta_min.is_finite() && eta_min >= 0.0) {
            return Err(ClError::config("eta_min", format!("{eta_min} is not a finite value >= 0")));
        }
        Ok(Self::from_config(move |lr| {
            CosineAnnealingLrSchedulerConfig::new(lr, t_max).with_min_lr(eta_min)
        }))
    }

    /// PyTorch's `LinearLR(start_factor, end_factor, total_iters)`: from `base_lr *
    /// start_factor` to `base_lr * end_factor` in `total_iters` steps, then constant (Burn's
    /// `LinearLrScheduler`). With `end_factor = 1` it is a linear warm-up.
    pub fn linear(start_factor: f64, end_factor: f64, total_iters: usize) -> Result<Self> {
        check_positive("start_factor", start_factor)?;
        if !(end_factor.is_finite() && end_factor >= 0.0) {
            return Err(ClError::config("end_factor", format!("{end_factor} is not a finite value >= 0")));
        }
        if total_iters == 0 {
            return Err(ClError::config("total_iters", "must be at least 1"));
        }
        Ok(Self::from_config(move |lr| {
            LinearLrSchedulerConfig::new(lr * start_factor, lr * end_factor, total_iters)
        }))
    }

    /// PyTorch's `LambdaLR(lr_lambda)`: `lr = base_lr * lr_lambda(t)`.
    pub fn lambda(lr_lambda: impl Fn(usize) -> f64 + Send + Sync + Clone + 'static) -> Self {
        Self::new(move |lr| {
            let f = lr_lambda.clone();
            Ok(Box::new(FnSchedule::new(move |t| lr * f(t))))
        })
    }

    /// Whether the schedule steps after every epoch (default) or iteration.
    pub fn step_granularity(mut self, granularity: StepGranularity) -> Self {
        self.granularity = granularity;
        self
    }

    /// Whether the schedule restarts at each experience (default `true`).
    pub fn reset_scheduler(mut self, reset: bool) -> Self {
        self.reset_scheduler = reset;
        self
    }

    /// Whether the initial learning rate is restored at the end of each experience (default
    /// `true`).
    pub fn reset_lr(mut self, reset: bool) -> Self {
        self.reset_lr = reset;
        self
    }

    /// Step only during the first epoch of each experience (default `false`).
    pub fn first_epoch_only(mut self, only: bool) -> Self {
        self.first_epoch_only = only;
        self
    }

    /// Step only during the first experience (default `false`).
    pub fn first_exp_only(mut self, only: bool) -> Self {
        self.first_exp_only = only;
        self
    }

    fn should_step<M: Model>(&self, state: &StrategyState<M>) -> bool {
        state.is_training
            && !(self.first_exp_only && state.clock.train_exp_counter > 0)
            && !(self.first_epoch_only && state.clock.train_exp_epochs > 0)
    }

    fn step_schedule<M: Model>(&mut self, state: &mut StrategyState<M>) {
        if self.should_step(state)
            && let Some(schedule) = self.schedule.as_mut()
        {
            state.lr = schedule.step();
        }
    }
}

impl<M: Model> Plugin<M> for LrSchedulerPlugin {
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::LearningRate]
    }

    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        if self.schedule.is_none() {
            let mut schedule = (self.factory)(state.optimizer_spec.learning_rate())?;
            let first = schedule.step();
            if !self.started || self.reset_lr {
                state.lr = first;
            }
            self.schedule = Some(schedule);
            self.started = true;
        }
        Ok(())
    }

    fn after_training_epoch(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        if self.granularity == StepGranularity::Epoch {
            self.step_schedule(state);
        }
        Ok(())
    }

    fn after_training_iteration(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        if self.granularity == StepGranularity::Iteration {
            self.step_schedule(state);
        }
        Ok(())
    }

    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        if self.reset_lr {
            state.lr = state.optimizer_spec.learning_rate();
        }
        if self.reset_scheduler {
            self.schedule = None;
        }
        Ok(())
    }
}
