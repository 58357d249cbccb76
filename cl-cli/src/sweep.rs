//! `cl sweep`: the runs of a [`Grid`] in a sweep directory, run by worker processes on this
//! machine ([`run_local`]) or by a Slurm array ([`crate::slurm`]).
//!
//! ```text
//! OUT/
//!   sweep.json          the grid file and its runs (ids and labels) in expansion order
//!   runs/<id>/          one run directory per run (see `cl run`), with run.log
//!   timing.json         the last local execution: wall time, each run's process time, efficiency
//!   aggregate.md/.json  mean ± std over seeds (`cl aggregate`), aggregate.png/.svg
//!   slurm/              the sbatch script, the packs of runs per array task, logs per task
//! ```
//!
//! Every run is a child process `cl run SPEC --run-dir OUT/runs/<id>`, so a crash or an abort in
//! one run is recorded with it and the sweep goes on; a complete run (its `results.json`) is
//! skipped, an interrupted one resumes from its checkpoints.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::{CliError, Result};
use crate::grid::{Grid, PlannedRun};
use crate::run::{RunState, completed_results, read_status, write_json};

/// `sweep.json`: a sweep directory's grid and runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepIndex {
    /// The grid file it was made from.
    pub grid: PathBuf,
    /// The runs in expansion order.
    pub runs: Vec<SweepEntry>,
}

/// A run of [`SweepIndex`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepEntry {
    /// The run's id (its directory in `runs/`).
    pub id: String,
    /// Its labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Its seed.
    pub seed: u64,
}

/// A slice of a sweep: `i/N` takes the runs whose index modulo `N` is `i` (0-based, as Slurm's
/// array indices).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This slice, `0..count`.
    pub index: usize,
    /// The number of slices.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("`{s}`: write the shard as i/N with 0 <= i < N, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) =
            (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

/// Whether the run at `index` of the grid belongs to `shard` (every run without one).
pub fn in_shard(shard: Option<Shard>, index: usize) -> bool {
    shard.is_none_or(|s| index % s.count == s.index)
}

/// The run directory of `id` in the sweep directory `out`.
pub fn run_dir(out: &Path, id: &str) -> PathBuf {
    out.join("runs").join(id)
}

/// Writes `sweep.json` and every run's `spec.json` (the run directories are created).
pub fn materialise(grid: &Grid, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out.join("runs")).map_err(CliError::io(out))?;
    let index = SweepIndex {
        grid: grid.path.canonicalize().unwrap_or_else(|_| grid.path.clone()),
        runs: grid
            .runs
            .iter()
            .map(|r| SweepEntry { id: r.id.clone(), labels: r.spec.labels.clone(), seed: r.spec.seed })
            .collect(),
    };
    write_json(&out.join("sweep.json"), &index)?;
    for run in &grid.runs {
        let dir = run_dir(out, &run.id);
        let spec = dir.join("spec.json");
        if !spec.exists() {
            std::fs::create_dir_all(&dir).map_err(CliError::io(&dir))?;
            write_json(&spec, &run.spec.to_value())?;
        }
    }
    Ok(())
}

/// The runs of `shard` (all without one) that are not complete, in expansion order.
pub fn pending<'g>(grid: &'g Grid, out: &Path, shard: Option<Shard>) -> Vec<&'g PlannedRun> {
    grid.runs
        .iter()
        .enumerate()
        .filter(|(i, _)| in_shard(shard, *i))
        .map(|(_, r)| r)
        .filter(|r| completed_results(&run_dir(out, &r.id)).is_none())
        .collect()
}

/// How worker processes run.
#[derive(Debug, Clone)]
pub struct Workers {
    /// The `cl` executable.
    pub exe: PathBuf,
    /// Passed on as `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `RAYON_NUM_THREADS` (and `OMP_NUM_THREADS`) of each run.
    pub threads: usize,
}

impl Workers {
    /// Workers running this executable.
    pub fn current(data_dir: Option<PathBuf>, threads: usize) -> Result<Self> {
        let exe = std::env::current_exe().map_err(CliError::io("the cl executable"))?;
        Ok(Self { exe, data_dir, threads: threads.max(1) })
    }

    /// Runs one run in a child process (output appended to its `run.log`); `Err` with the
    /// reason when it fails, which is then in its `status.json`.
    pub fn run_one(&self, out: &Path, id: &str) -> std::result::Result<f64, String> {
        let dir = run_dir(out, id);
        let log_path = dir.join("run.log");
        let start = Instant::now();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let log_err = log.try_clone().map_err(|e| format!("{}: {e}", log_path.display()))?;
        let mut command = Command::new(&self.exe);
        command.arg("run").arg(dir.join("spec.json")).arg("--run-dir").arg(&dir);
        if let Some(data) = &self.data_dir {
            command.arg("--data-dir").arg(data);
        }
        command
            .env("RAYON_NUM_THREADS", self.threads.to_string())
            .env("OMP_NUM_THREADS", self.threads.to_string())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let mut child = command.spawn().map_err(|e| format!("cannot start {}: {e}", self.exe.display()))?;
        let pid = child.id();
        let status = child.wait().map_err(|e| format!("waiting for {}: {e}", self.exe.display()))?;
        let seconds = start.elapsed().as_secs_f64();
        if status.success() {
            return Ok(seconds);
        }
        // What the child recorded, if it got as far as recording (its pid in status.json):
        // another process's status (a run directory in use) is left alone.
        let recorded = read_status(&dir).filter(|s| s.pid == pid);
        let reason = match recorded {
            Some(s) if s.state == RunState::Failed => s.error.unwrap_or_else(|| format!("ended with {status}")),
            Some(mut s) => {
                // Killed or aborted while running: record it here.
                let reason =
                    format!("the run process ended with {status}; the end of run.log:\n{}", tail(&log_path, 10));
                s.state = RunState::Failed;
                s.error = Some(reason.clone());
                s.updated = crate::run::now();
                let _ = write_json(&dir.join("status.json"), &s);
                reason
            }
            None => format!("the run process ended with {status} before it started the run: {}", tail(&log_path, 3)),
        };
        Err(reason)
    }
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// What a local execution did.
#[derive(Debug, Clone, Serialize)]
pub struct LocalTiming {
    /// Worker processes at once.
    pub jobs: usize,
    /// Threads per run.
    pub threads_per_job: usize,
    /// Wall time of the execution.
    pub wall_time_s: f64,
    /// The sum of the runs' process times.
    pub sum_of_runs_s: f64,
    /// `sum_of_runs_s / (jobs · wall_time_s)`: 1 when the workers were never idle.
    pub parallel_efficiency: f64,
    /// `sum_of_runs_s / wall_time_s`: the speed-up over running them one after another.
    pub speedup: f64,
    /// Each run's process time.
    pub runs: Vec<(String, f64)>,
}

/// Runs `runs` with `jobs` worker processes at once; prints a line per finished run. Returns
/// the failed runs with their errors, and the timing.
pub fn run_local(
    runs: &[&PlannedRun],
    out: &Path,
    jobs: usize,
    workers: &Workers,
    quiet: bool,
) -> (Vec<(String, String)>, LocalTiming) {
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    let times = Mutex::new(Vec::new());
    let done = AtomicUsize::new(0);
    let start = Instant::now();
    let jobs = jobs.max(1).min(runs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::SeqCst);
                    let Some(run) = runs.get(k) else { break };
                    let outcome = workers.run_one(out, &run.id);
                    let finished = done.fetch_add(1, Ordering::SeqCst) + 1;
                    let mut stdout = std::io::stdout().lock();
                    match outcome {
                        Ok(seconds) => {
                            times.lock().unwrap().push((run.id.clone(), seconds));
                            if !quiet {
                                let accuracy = completed_results(&run_dir(out, &run.id))
                                    .and_then(|r| r.final_average_accuracy)
                                    .map_or("-".into(), |a| format!("{a:.4}"));
                                let _ = writeln!(
                                    stdout,
                                    "[{finished}/{}] {}: complete in {seconds:.1} s, final average accuracy {accuracy}",
                                    runs.len(),
                                    run.id
                                );
                            }
                        }
                        Err(e) => {
                            let _ = writeln!(stdout, "[{finished}/{}] {}: FAILED: {e}", runs.len(), run.id);
                            failed.lock().unwrap().push((run.id.clone(), e));
                        }
                    }
                }
            });
        }
    });
    let wall_time_s = start.elapsed().as_secs_f64();
    let runs_times = times.into_inner().unwrap();
    let sum: f64 = runs_times.iter().map(|(_, s)| s).sum();
    let timing = LocalTiming {
        jobs,
        threads_per_job: workers.threads,
        wall_time_s,
        sum_of_runs_s: sum,
        parallel_efficiency: if wall_time_s > 0.0 { sum / (jobs as f64 * wall_time_s) } else { f64::NAN },
        speedup: if wall_time_s > 0.0 { sum / wall_time_s } else { f64::NAN },
        runs: runs_times,
    };
    (failed.into_inner().unwrap(), timing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_reject_nonsense() {
        assert_eq!("1/4".parse::<Shard>().unwrap(), Shard { index: 1, count: 4 });
        for bad in ["4/4", "1/0", "a/2", "3", "-1/2"] {
            assert!(bad.parse::<Shard>().unwrap_err().contains("i/N"), "{bad}");
        }
    }
}
