//! The sweep part of `bench --sweep`: the 13-strategy × 3-seed SplitFMNIST grid
//! (`specs/strategies-split-fmnist.toml`) through `cl sweep --jobs 2`, from nothing, its wall
//! time against the sum of its runs' process times (speed-up and parallel efficiency). Written
//! as `target/bench/sweep.json` and a table in `summary.md`; the mean ± std table of the sweep
//! is in `target/bench/sweep/aggregate.md`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::bench::BenchError;
use crate::provenance::Provenance;

/// The grid measured, relative to the workspace.
pub const GRID: &str = "specs/strategies-split-fmnist.toml";

/// What `cl sweep` writes in `timing.json` (the fields read here).
#[derive(Debug, Clone, Deserialize)]
struct Timing {
    jobs: usize,
    threads_per_job: usize,
    wall_time_s: f64,
    sum_of_runs_s: f64,
    parallel_efficiency: f64,
    speedup: f64,
    runs: Vec<(String, f64)>,
}

/// The measurement.
#[derive(Debug, Clone, Serialize)]
pub struct SweepCostRecord {
    /// The grid file.
    pub grid: String,
    /// Runs of the grid.
    pub runs: usize,
    /// Worker processes at once.
    pub jobs: usize,
    /// Threads per run.
    pub threads_per_job: usize,
    /// Wall time of the sweep (runs only; the aggregation is not included).
    pub wall_time_s: f64,
    /// The sum of the runs' process times (loading the data included).
    pub sum_of_runs_s: f64,
    /// `sum_of_runs_s / wall_time_s`.
    pub speedup: f64,
    /// `sum_of_runs_s / (jobs · wall_time_s)`.
    pub parallel_efficiency: f64,
    /// Versions, commit and machine.
    #[serde(flatten)]
    pub provenance: Provenance,
}

/// Runs the grid with `jobs` workers into `out` (emptied first) with the `cl` binary built next
/// to this `xtask`.
pub fn run(
    root: &Path,
    out: &Path,
    jobs: usize,
    data_dir: Option<&Path>,
    provenance: &Provenance,
) -> Result<SweepCostRecord, BenchError> {
    let exe: PathBuf = std::env::current_exe()
        .ok()
        .and_then(|x| x.parent().map(|d| d.join("cl")))
        .filter(|p| p.is_file())
        .ok_or_else(|| {
            BenchError::Write(
                PathBuf::from("cl"),
                "the `cl` binary is not built next to xtask: `cargo build --release --workspace --bins` first".into(),
            )
        })?;
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(|e| BenchError::Write(out.to_path_buf(), e.to_string()))?;
    }
    let mut command = Command::new(&exe);
    command.arg("sweep").arg(root.join(GRID)).arg("--out").arg(out).arg("--jobs").arg(jobs.to_string()).arg("--quiet");
    if let Some(dir) = data_dir {
        command.arg("--data-dir").arg(dir);
    }
    println!("\n== sweep: {GRID} with --jobs {jobs} ({}) ==", exe.display());
    let status = command.status().map_err(|e| BenchError::Write(exe.clone(), e.to_string()))?;
    if !status.success() {
        return Err(BenchError::Write(
            out.to_path_buf(),
            format!("`cl sweep` failed ({status}); see its output above"),
        ));
    }
    let timing_path = out.join("timing.json");
    let text =
        std::fs::read_to_string(&timing_path).map_err(|e| BenchError::Write(timing_path.clone(), e.to_string()))?;
    let timing: Timing = serde_json::from_str(&text).map_err(|e| BenchError::Write(timing_path, e.to_string()))?;
    Ok(SweepCostRecord {
        grid: GRID.into(),
        runs: timing.runs.len(),
        jobs: timing.jobs,
        threads_per_job: timing.threads_per_job,
        wall_time_s: timing.wall_time_s,
        sum_of_runs_s: timing.sum_of_runs_s,
        speedup: timing.speedup,
        parallel_efficiency: timing.parallel_efficiency,
        provenance: provenance.clone(),
    })
}

/// The markdown section of `summary.md`.
pub fn markdown(r: &SweepCostRecord) -> String {
    format!(
        "\n### Sweep ({})\n\n| runs | jobs × threads | wall time (s) | sum of runs (s) | speed-up | parallel efficiency |\n|---|---|---|---|---|---|\n| {} | {} × {} | {:.1} | {:.1} | {:.2}× | {:.0} % |\n",
        r.grid,
        r.runs,
        r.jobs,
        r.threads_per_job,
        r.wall_time_s,
        r.sum_of_runs_s,
        r.speedup,
        r.parallel_efficiency * 100.0
    )
}
