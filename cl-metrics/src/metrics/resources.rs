//! Process resources: peak resident memory (`MaxRAMUsage_*`) and CPU usage (`CPUUsage_*`),
//! read with `sysinfo`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, finite_positive, rule};
use cl_core::evaluation::{Granularity, Metric, MetricContext, MetricOutput};
use cl_core::{Callback, Result};
use serde::{Deserialize, Serialize};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use super::timing::resumed_start;

/// Reads this process's resident memory (bytes) and accumulated CPU time (ms).
struct ProcessProbe {
    system: System,
    pid: Option<Pid>,
}

impl ProcessProbe {
    fn new() -> Self {
        Self { system: System::new(), pid: sysinfo::get_current_pid().ok() }
    }

    fn refresh(&mut self) -> Option<&sysinfo::Process> {
        let pid = self.pid?;
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            false,
            ProcessRefreshKind::nothing().with_memory().with_cpu(),
        );
        self.system.process(pid)
    }

    fn rss(&mut self) -> Option<u64> {
        self.refresh().map(|p| p.memory())
    }

    fn cpu_ms(&mut self) -> Option<u64> {
        self.refresh().map(|p| p.accumulated_cpu_time())
    }
}

/// A background thread sampling the resident memory every `every` and keeping the maximum.
struct RamSampler {
    max: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RamSampler {
    fn start(every: Duration, max: Arc<AtomicU64>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (max.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("cl-metrics-ram".into())
            .spawn(move || {
                let mut probe = ProcessProbe::new();
                while !s.load(Ordering::Relaxed) {
                    if let Some(rss) = probe.rss() {
                        m.fetch_max(rss, Ordering::Relaxed);
                    }
                    std::thread::park_timeout(every);
                }
            })
            .map_err(|e| tracing::warn!("cl-metrics: no RAM sampling thread: {e}"))
            .ok();
        Self { max, stop, thread }
    }
}

impl Drop for RamSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
        let _ = &self.max;
    }
}

/// The configuration of [`MaxRam`]: Avalanche's `ram_usage_metrics(every=1, minibatch, epoch,
/// experience, stream)`.
///
/// Differences: the default period is 0.5 s (Avalanche: 1 s), and the default granularity is
/// epoch, experience and stream (Avalanche defaults every flag to `False`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaxRamConfig {
    /// When the peak is emitted (`MaxRAMUsage_MB`, `_Epoch`, `_Experience`, `_Stream`).
    pub granularity: Granularity,
    /// Seconds between two samples of the background thread (finite, > 0; at least 1 ms is
    /// used).
    pub every: f64,
}

impl Default for MaxRamConfig {
    fn default() -> Self {
        Self { granularity: Granularity::DEFAULT, every: 0.5 }
    }
}

impl MaxRamConfig {
    /// Sets when the peak is emitted.
    pub fn with_granularity(mut self, granularity: Granularity) -> Self {
        self.granularity = granularity;
        self
    }

    /// Sets the sampling period, in seconds.
    pub fn with_every(mut self, every: f64) -> Self {
        self.every = every;
        self
    }
}

impl Validate for MaxRamConfig {
    /// `every_finite_positive`.
    fn validate(&self) -> Result<()> {
        rule("MaxRamConfig", "every_finite_positive", finite_positive(self.every), || {
            format!("every = {} must be a finite number of seconds > 0", self.every)
        })
    }
}

/// Peak resident memory of the process in MiB, as Avalanche's `ram_usage_metrics`
/// (`MaxRAMUsage_MB`, `MaxRAMUsage_Epoch`, `MaxRAMUsage_Experience`, `MaxRAMUsage_Stream`).
///
/// A background thread samples the memory every [`MaxRamConfig::every`] seconds while training
/// or evaluating, and the memory is also read at the start and the end of each period, so short
/// periods still get a value. Each period's maximum is the largest sample taken in it.
pub struct MaxRam {
    config: MaxRamConfig,
    granularity: Granularity,
    every: Duration,
    probe: ProcessProbe,
    sampler: Option<RamSampler>,
    in_train: bool,
    /// The maxima of the open periods: minibatch, epoch, experience, stream.
    maxima: [Arc<AtomicU64>; 4],
}

impl std::fmt::Debug for MaxRam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaxRam").field("granularity", &self.granularity).field("every", &self.every).finish()
    }
}

impl MaxRam {
    /// Peak RAM as configured; an error if `config` breaks a rule ([`MaxRamConfig`]).
    pub fn new(config: MaxRamConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            granularity: config.granularity,
            every: Duration::try_from_secs_f64(config.every).unwrap_or(Duration::MAX).max(Duration::from_millis(1)),
            probe: ProcessProbe::new(),
            sampler: None,
            in_train: false,
            maxima: Default::default(),
        })
    }

    /// Samples now into every open period.
    fn sample(&mut self) {
        if let Some(rss) = self.probe.rss() {
            for m in &self.maxima {
                m.fetch_max(rss, Ordering::Relaxed);
            }
        }
    }

    fn begin(&mut self, i: usize) {
        // Samples the thread took before this period belong to the periods open then: fold
        // them now, so they are not credited to period `i` when it ends.
        self.fold_sampler();
        self.maxima[i].store(0, Ordering::Relaxed);
        self.sample();
    }

    fn end(&mut self, i: usize) -> f64 {
        self.sample();
        self.maxima[i].load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0)
    }

    fn start_sampler(&mut self) {
        if self.sampler.is_none() {
            // The thread feeds a shared maximum, folded into every period at its end.
            let shared = Arc::new(AtomicU64::new(0));
            self.sampler = Some(RamSampler::start(self.every, shared));
        }
    }

    fn fold_sampler(&mut self) {
        if let Some(s) = &self.sampler {
            let v = s.max.swap(0, Ordering::Relaxed);
            for m in &self.maxima {
                m.fetch_max(v, Ordering::Relaxed);
            }
        }
    }
}

impl Metric for MaxRam {
    fn name(&self) -> String {
        "MaxRAM".into()
    }

    /// Saves the maxima of the open periods (with what the sampling thread has seen) and
    /// whether the thread runs; a resumed run restarts it.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config)?;
        let sampled = self.sampler.as_ref().map_or(0, |s| s.max.load(Ordering::Relaxed));
        let maxima = self.maxima.each_ref().map(|m| m.load(Ordering::Relaxed).max(sampled));
        out.put("maxima", &maxima)?;
        out.put("in_train", &self.in_train)?;
        out.put("sampling", &self.sampler.is_some())
    }

    fn load_state(&mut self, state: &StateDict) -> Result<()> {
        state.check_config("config", &self.config)?;
        let maxima: [u64; 4] = state.get("maxima")?;
        for (m, v) in self.maxima.iter().zip(maxima) {
            m.store(v, Ordering::Relaxed);
        }
        self.in_train = state.get("in_train")?;
        self.sampler = None;
        if state.get("sampling")? {
            self.start_sampler();
        }
        Ok(())
    }

    fn on(&mut self, ctx: &MetricContext<'_>, out: &mut MetricOutput) {
        let g = self.granularity;
        match ctx.callback {
            Callback::BeforeTraining | Callback::BeforeEval => {
                self.in_train |= ctx.callback == Callback::BeforeTraining;
                self.start_sampler();
                if ctx.callback == Callback::BeforeEval {
                    self.begin(3);
                }
            }
            Callback::AfterTraining => {
                self.in_train = false;
                self.sampler = None;
            }
            Callback::BeforeTrainingEpoch => self.begin(1),
            Callback::BeforeTrainingIteration if g.minibatch => self.begin(0),
            Callback::AfterTrainingIteration if g.minibatch => {
                self.fold_sampler();
                let v = self.end(0);
                out.scalar(ctx.task_name("MaxRAMUsage_MB"), v);
            }
            Callback::AfterTrainingEpoch if g.epoch => {
                self.fold_sampler();
                let v = self.end(1);
                out.scalar(ctx.task_name("MaxRAMUsage_Epoch"), v);
            }
            Callback::BeforeEvalExp => self.begin(2),
            Callback::AfterEvalExp if g.experience => {
                self.fold_sampler();
                let v = self.end(2);
                out.scalar(ctx.exp_name("MaxRAMUsage_Experience"), v);
            }
            Callback::AfterEval => {
                self.fold_sampler();
                let v = self.end(3);
                if g.stream {
                    out.scalar(ctx.task_name("MaxRAMUsage_Stream"), v);
                }
                if !self.in_train {
                    // Outside `train` (a plain `eval`): stop sampling.
                    self.sampler = None;
                }
            }
            _ => {}
        }
    }
}

/// The configuration of [`CpuUsage`]: Avalanche's `cpu_usage_metrics(minibatch, epoch,
/// experience, stream)` (its `epoch_running` is not offered).
///
/// Avalanche defaults every flag to `False`; the default here is epoch, experience and stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CpuUsageConfig {
    /// When the usage is emitted (`CPUUsage_MB`, `_Epoch`, `_Exp`, `_Stream`).
    pub granularity: Granularity,
}

impl Default for CpuUsageConfig {
    fn default() -> Self {
        Self { granularity: Granularity::DEFAULT }
    }
}

impl CpuUsageConfig {
    /// Sets when the usage is emitted.
    pub fn with_granularity(mut self, granularity: Granularity) -> Self {
        self.granularity = granularity;
        self
    }
}

impl Validate for CpuUsageConfig {
    /// Every granularity is valid.
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// Mean CPU usage of the process over each period, in percent of one core (so up to
/// `100 × cores`), as Avalanche's `cpu_usage_metrics` (`CPUUsage_MB`, `CPUUsage_Epoch`,
/// `CPUUsage_Exp`, `CPUUsage_Stream`): process CPU time spent in the period ÷ wall time.
///
/// The process CPU time has a millisecond resolution: minibatch values are coarse.
pub struct CpuUsage {
    granularity: Granularity,
    probe: ProcessProbe,
    /// Per open period: its start, the process CPU time then (ms), and the CPU time the period
    /// had used in an interrupted run (ms, after a resume).
    starts: [Option<(Instant, u64, u64)>; 4],
}

impl std::fmt::Debug for CpuUsage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuUsage").field("granularity", &self.granularity).finish()
    }
}

impl CpuUsage {
    /// CPU usage as configured (every configuration is valid).
    pub fn new(config: CpuUsageConfig) -> Self {
        Self { granularity: config.granularity, probe: ProcessProbe::new(), starts: [None; 4] }
    }

    fn begin(&mut self, i: usize) {
        self.starts[i] = self.probe.cpu_ms().map(|c| (Instant::now(), c, 0));
    }

    fn end(&mut self, i: usize) -> Option<f64> {
        let (t0, c0, carried) = self.starts[i].take()?;
        let c1 = self.probe.cpu_ms()?;
        let wall = t0.elapsed().as_secs_f64();
        (wall > 0.0).then(|| ((c1.saturating_sub(c0) + carried) as f64 / 1000.0) / wall * 100.0)
    }
}

impl Metric for CpuUsage {
    fn name(&self) -> String {
        "CPUUsage".into()
    }

    /// Saves, per open period, the wall time and the CPU time it has used so far; on resume
    /// the period continues from there (the time the run was stopped is not counted).
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &CpuUsageConfig { granularity: self.granularity })?;
        let now = match self.starts.iter().any(Option::is_some) {
            true => ProcessProbe::new().cpu_ms(),
            false => None,
        };
        let open: Vec<Option<(u64, u64)>> = self
            .starts
            .iter()
            .map(|s| {
                let (t0, c0, carried) = (*s)?;
                let used = now.map_or(0, |c| c.saturating_sub(c0)) + carried;
                Some((t0.elapsed().as_secs_f64().to_bits(), used))
            })
            .collect();
        out.put("open", &open)
    }

    fn load_state(&mut self, st: &StateDict) -> Result<()> {
        st.check_config("config", &CpuUsageConfig { granularity: self.granularity })?;
        let open: Vec<Option<(u64, u64)>> = st.get("open")?;
        let now = self.probe.cpu_ms();
        self.starts = [None; 4];
        for (slot, saved) in self.starts.iter_mut().zip(open) {
            if let (Some((elapsed, used)), Some(c)) = (saved, now) {
                *slot = Some((resumed_start(f64::from_bits(elapsed)), c, used));
            }
        }
        Ok(())
    }

    fn on(&mut self, ctx: &MetricContext<'_>, out: &mut MetricOutput) {
        let g = self.granularity;
        let (i, name, add_exp) = match ctx.callback {
            Callback::BeforeTrainingIteration if g.minibatch => return self.begin(0),
            Callback::BeforeTrainingEpoch if g.epoch => return self.begin(1),
            Callback::BeforeEvalExp if g.experience => return self.begin(2),
            Callback::BeforeEval if g.stream => return self.begin(3),
            Callback::AfterTrainingIteration if g.minibatch => (0, "CPUUsage_MB", false),
            Callback::AfterTrainingEpoch if g.epoch => (1, "CPUUsage_Epoch", false),
            Callback::AfterEvalExp if g.experience => (2, "CPUUsage_Exp", true),
            Callback::AfterEval if g.stream => (3, "CPUUsage_Stream", false),
            _ => return,
        };
        if let Some(v) = self.end(i) {
            out.scalar(if add_exp { ctx.exp_name(name) } else { ctx.task_name(name) }, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_before_a_period_are_not_credited_to_it() {
        let mut m = MaxRam::new(MaxRamConfig::default().with_granularity(Granularity::ALL).with_every(3600.0)).unwrap();
        assert_eq!(m.every, Duration::from_secs(3600));
        m.begin(3);
        m.start_sampler();
        // A sample the thread took before experience period 2 began (a peak far above the
        // process's real memory).
        let peak = 1u64 << 60;
        m.sampler.as_ref().unwrap().max.fetch_max(peak, Ordering::Relaxed);
        m.begin(2);
        m.fold_sampler();
        let exp = m.end(2);
        assert!(exp < (peak as f64) / (1024.0 * 1024.0), "credited to the later period: {exp}");
        assert!(exp > 0.0, "the period's own samples count");
        // The stream period, open when the sample was taken, keeps it.
        m.fold_sampler();
        assert_eq!(m.end(3), peak as f64 / (1024.0 * 1024.0));
    }
}
