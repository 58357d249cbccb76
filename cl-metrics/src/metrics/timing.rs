//! Wall-clock time (`Time_MB`, `Time_Epoch`, `RunningTime_Epoch`, `Time_Exp`, `Time_Stream`).

use std::time::{Duration, Instant};

use cl_core::checkpoint::StateDict;
use cl_core::config::Validate;
use cl_core::evaluation::{Granularity, Metric, MetricContext, MetricOutput};
use cl_core::{Callback, Result};
use serde::{Deserialize, Serialize};

use super::state;

/// The configuration of [`Timing`]: Avalanche's `timing_metrics(minibatch, epoch,
/// epoch_running, experience, stream)`.
///
/// Avalanche defaults every flag to `False`; the default here is epoch, experience and stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimingConfig {
    /// When the elapsed time is emitted (`Time_MB`, `Time_Epoch`, `Time_Exp`, `Time_Stream`).
    pub granularity: Granularity,
    /// The mean iteration time of the epoch so far, every iteration (`RunningTime_Epoch`;
    /// Avalanche's `epoch_running`).
    pub running_epoch: bool,
}

impl Default for TimingConfig {
    fn default() -> Self {
        Self { granularity: Granularity::DEFAULT, running_epoch: false }
    }
}

impl TimingConfig {
    /// Sets when the elapsed time is emitted.
    pub fn with_granularity(mut self, granularity: Granularity) -> Self {
        self.granularity = granularity;
        self
    }

    /// Sets whether `RunningTime_Epoch` is emitted every iteration.
    pub fn with_running_epoch(mut self, on: bool) -> Self {
        self.running_epoch = on;
        self
    }
}

impl Validate for TimingConfig {
    /// Every combination is valid.
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// Elapsed seconds, as Avalanche's `timing_metrics`: per training iteration (`Time_MB`), per
/// training epoch (`Time_Epoch`), the mean iteration time of the epoch so far, every iteration
/// (`RunningTime_Epoch`), per evaluated experience
/// (`Time_Exp`) and per evaluated stream (`Time_Stream`), as configured by a [`TimingConfig`].
///
/// Host wall-clock time: on an asynchronous device (GPU) an iteration's time is the time to
/// queue its work, and the work surfaces where a value is read back (epoch and experience ends).
#[derive(Debug)]
pub struct Timing {
    granularity: Granularity,
    running: bool,
    iteration: Option<Instant>,
    epoch: Option<Instant>,
    experience: Option<Instant>,
    stream: Option<Instant>,
    running_sum: f64,
    running_n: usize,
}

impl Timing {
    /// Timing as configured (every configuration is valid).
    pub fn new(config: TimingConfig) -> Self {
        Self {
            granularity: config.granularity,
            running: config.running_epoch,
            iteration: None,
            epoch: None,
            experience: None,
            stream: None,
            running_sum: 0.0,
            running_n: 0,
        }
    }
}

impl Timing {
    fn periods(&self) -> [(&'static str, Option<Instant>); 4] {
        [("iteration", self.iteration), ("epoch", self.epoch), ("experience", self.experience), ("stream", self.stream)]
    }
}

fn secs(start: Option<Instant>) -> Option<f64> {
    start.map(|s| s.elapsed().as_secs_f64())
}

/// The start of a period that had run for `elapsed` seconds when it was saved: that long before
/// now (the time between the save and the resume is not counted).
pub(crate) fn resumed_start(elapsed: f64) -> Instant {
    let now = Instant::now();
    Duration::try_from_secs_f64(elapsed).ok().and_then(|d| now.checked_sub(d)).unwrap_or(now)
}

impl Metric for Timing {
    fn name(&self) -> String {
        "Timing".into()
    }

    /// Saves the running iteration-time sum of the epoch and how long the open periods have
    /// run; on resume they continue from there (the time the run was stopped is not counted).
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &TimingConfig { granularity: self.granularity, running_epoch: self.running })?;
        state::put_f64(out, "running_sum", self.running_sum)?;
        out.put("running_n", &self.running_n)?;
        for (key, start) in self.periods() {
            state::put_opt_f64(out, key, secs(start))?;
        }
        Ok(())
    }

    fn load_state(&mut self, st: &StateDict) -> Result<()> {
        st.check_config("config", &TimingConfig { granularity: self.granularity, running_epoch: self.running })?;
        self.running_sum = state::f64(st, "running_sum")?;
        self.running_n = st.get("running_n")?;
        let [i, e, x, s] = ["iteration", "epoch", "experience", "stream"]
            .map(|key| state::opt_f64(st, key).map(|v| v.map(resumed_start)));
        (self.iteration, self.epoch, self.experience, self.stream) = (i?, e?, x?, s?);
        Ok(())
    }

    fn on(&mut self, ctx: &MetricContext<'_>, out: &mut MetricOutput) {
        let g = self.granularity;
        match ctx.callback {
            Callback::BeforeTrainingEpoch => {
                self.epoch = Some(Instant::now());
                self.running_sum = 0.0;
                self.running_n = 0;
            }
            Callback::BeforeTrainingIteration => self.iteration = Some(Instant::now()),
            Callback::AfterTrainingIteration => {
                let Some(t) = secs(self.iteration) else { return };
                if g.minibatch {
                    out.scalar(ctx.task_name("Time_MB"), t);
                }
                if self.running {
                    self.running_sum += t;
                    self.running_n += 1;
                    out.scalar(ctx.task_name("RunningTime_Epoch"), self.running_sum / self.running_n as f64);
                }
            }
            Callback::AfterTrainingEpoch if g.epoch => {
                if let Some(t) = secs(self.epoch) {
                    out.scalar(ctx.task_name("Time_Epoch"), t);
                }
            }
            Callback::BeforeEval => self.stream = Some(Instant::now()),
            Callback::BeforeEvalExp => self.experience = Some(Instant::now()),
            Callback::AfterEvalExp if g.experience => {
                if let Some(t) = secs(self.experience) {
                    out.scalar(ctx.exp_name("Time_Exp"), t);
                }
            }
            Callback::AfterEval if g.stream => {
                if let Some(t) = secs(self.stream) {
                    out.scalar(ctx.task_name("Time_Stream"), t);
                }
            }
            _ => {}
        }
    }
}
