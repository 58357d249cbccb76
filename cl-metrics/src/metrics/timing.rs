//! Wall-clock time (`Time_MB`, `Time_Epoch`, `RunningTime_Epoch`, `Time_Exp`, `Time_Stream`).

use std::time::Instant;

use cl_core::Callback;

use super::Granularity;
use crate::metric::{Metric, MetricContext, MetricOutput};

/// Elapsed seconds, as Avalanche's `timing_metrics`: per training iteration (`Time_MB`), per
/// training epoch (`Time_Epoch`), the mean iteration time of the epoch so far, every iteration
/// (`RunningTime_Epoch`, with [`running_epoch`](Self::running_epoch)), per evaluated experience
/// (`Time_Exp`) and per evaluated stream (`Time_Stream`).
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
    /// Timing at the given granularities.
    pub fn new(granularity: Granularity) -> Self {
        Self {
            granularity,
            running: false,
            iteration: None,
            epoch: None,
            experience: None,
            stream: None,
            running_sum: 0.0,
            running_n: 0,
        }
    }

    /// Also emits `RunningTime_Epoch` every iteration.
    pub fn running_epoch(mut self) -> Self {
        self.running = true;
        self
    }
}

fn secs(start: Option<Instant>) -> Option<f64> {
    start.map(|s| s.elapsed().as_secs_f64())
}

impl Metric for Timing {
    fn name(&self) -> String {
        "Timing".into()
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
                    out.scalar(ctx.name("Time_MB", true, false), t);
                }
                if self.running {
                    self.running_sum += t;
                    self.running_n += 1;
                    out.scalar(ctx.name("RunningTime_Epoch", true, false), self.running_sum / self.running_n as f64);
                }
            }
            Callback::AfterTrainingEpoch if g.epoch => {
                if let Some(t) = secs(self.epoch) {
                    out.scalar(ctx.name("Time_Epoch", true, false), t);
                }
            }
            Callback::BeforeEval => self.stream = Some(Instant::now()),
            Callback::BeforeEvalExp => self.experience = Some(Instant::now()),
            Callback::AfterEvalExp if g.experience => {
                if let Some(t) = secs(self.experience) {
                    out.scalar(ctx.name("Time_Exp", true, true), t);
                }
            }
            Callback::AfterEval if g.stream => {
                if let Some(t) = secs(self.stream) {
                    out.scalar(ctx.name("Time_Stream", true, false), t);
                }
            }
            _ => {}
        }
    }
}
