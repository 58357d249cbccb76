//! The Slurm executor: the pending runs of a sweep as one `sbatch` array job (one array task per
//! pack of `runs_per_task` runs, at most `max_parallel` at once), followed with `squeue` until
//! it ends, each task's state from `sacct` when accounting is available.
//!
//! Each array task runs `cl task OUT INDEX --plan PLAN`, which runs the runs of its pack one after another
//! (as `cl run` child processes, like the local executor). The job is submitted with `--requeue`:
//! a task that Slurm requeues (preemption, node failure, `scontrol requeue`) starts again, skips
//! its complete runs and resumes the interrupted one from its newest checkpoint.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{CliError, Result};
use crate::grid::PlannedRun;
use crate::run::{read_json, write_json};
use crate::sweep::Workers;

/// The options of `--executor slurm`.
#[derive(Debug, Clone, Default)]
pub struct SlurmOptions {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--gpus-per-task`.
    pub gpus_per_task: Option<u32>,
    /// `--cpus-per-task` (also each run's thread count).
    pub cpus_per_task: usize,
    /// `--mem` (e.g. `8G`).
    pub mem: Option<String>,
    /// `--time` (e.g. `02:00:00`).
    pub time: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// At most this many array tasks at once (`--array=0-N%K`).
    pub max_parallel: Option<usize>,
    /// Runs per array task (default 1).
    pub runs_per_task: usize,
    /// More `#SBATCH` options, verbatim (`--qos=high`).
    pub extra: Vec<String>,
    /// The folder of the Slurm commands (else `CL_SLURM_BIN`, else `PATH`).
    pub bin: Option<PathBuf>,
    /// Submit and return without following the job.
    pub no_wait: bool,
    /// Seconds between two `squeue` polls.
    pub poll_s: f64,
}

/// `slurm/tasks-<stamp>.json`: the runs of each array task of one submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskPlan {
    /// `tasks[i]`: the run ids of array task `i`.
    pub tasks: Vec<Vec<String>>,
    /// Passed to the runs as `--data-dir`.
    pub data_dir: Option<PathBuf>,
}

/// Where a Slurm command is: `dir/program` with a folder given, else the first match on `PATH`.
pub fn find_program(program: &'static str, bin: Option<&Path>) -> Result<PathBuf> {
    let dirs: Vec<PathBuf> =
        match bin.map(Path::to_path_buf).or_else(|| std::env::var_os("CL_SLURM_BIN").map(PathBuf::from)) {
            Some(dir) => vec![dir],
            None => std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default(),
        };
    dirs.iter().map(|d| d.join(program)).find(|p| p.is_file()).ok_or(CliError::SlurmMissing { program, searched: dirs })
}

/// Runs a Slurm command; its standard output, or [`CliError::Slurm`] with its standard error.
fn slurm(program: &Path, args: &[&str]) -> Result<String> {
    let command_line = format!("{} {}", program.display(), args.join(" "));
    let output = Command::new(program).args(args).output().map_err(CliError::io(program))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        let hint = if stderr.contains("contact")
            || stderr.contains("Connection refused")
            || stderr.contains("Zero Bytes")
        {
            "; the Slurm controller cannot be reached: check that slurmctld runs (`sinfo`, `scontrol ping`) and that \
             SLURM_CONF points to the cluster's slurm.conf"
        } else if stderr.contains("partition") {
            "; check --partition against `sinfo -s`"
        } else {
            ""
        };
        return Err(CliError::Slurm {
            command: command_line,
            status: output.status.to_string(),
            stderr,
            hint: hint.into(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Single quotes for a shell word.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Packs `runs` into tasks of `runs_per_task`, writes the plan `slurm/tasks-<stamp>.json` and the
/// script `slurm/sweep-<stamp>.sbatch` (one pair per submission: the tasks of an earlier job still
/// queued keep their own plan); returns the script's path.
pub fn write_script(
    out: &Path,
    runs: &[&PlannedRun],
    options: &SlurmOptions,
    workers: &Workers,
    job_name: &str,
) -> Result<PathBuf> {
    let slurm_dir = out.join("slurm");
    let logs = slurm_dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(CliError::io(&logs))?;
    let out_abs = std::path::absolute(out).map_err(CliError::io(out))?;
    let shown = out_abs.display().to_string();
    if shown.chars().any(|c| c.is_whitespace() || c == '%') {
        return Err(CliError::Usage(format!(
            "{shown}: the Slurm executor needs a sweep directory whose path has no spaces and no `%` (sbatch reads \
             them in #SBATCH lines): give another --out"
        )));
    }
    let stamp = format!("{}-{}", crate::run::now(), std::process::id());
    let plan_path = slurm_dir.join(format!("tasks-{stamp}.json"));
    let per_task = options.runs_per_task.max(1);
    let plan = TaskPlan {
        tasks: runs.chunks(per_task).map(|c| c.iter().map(|r| r.id.clone()).collect()).collect(),
        data_dir: workers.data_dir.as_ref().map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone())),
    };
    write_json(&plan_path, &plan)?;
    let n = plan.tasks.len();
    let mut array = format!("0-{}", n - 1);
    if let Some(k) = options.max_parallel {
        array.push_str(&format!("%{}", k.max(1)));
    }
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!("#SBATCH --job-name={job_name}"),
        format!("#SBATCH --array={array}"),
        format!("#SBATCH --output={}/slurm/logs/%A_%a.log", out_abs.display()),
        "#SBATCH --open-mode=append".into(),
        "#SBATCH --requeue".into(),
        format!("#SBATCH --cpus-per-task={}", options.cpus_per_task.max(1)),
    ];
    let mut option = |name: &str, value: &Option<String>| {
        if let Some(v) = value {
            lines.push(format!("#SBATCH --{name}={v}"));
        }
    };
    option("partition", &options.partition);
    option("gpus-per-task", &options.gpus_per_task.map(|g| g.to_string()));
    option("mem", &options.mem);
    option("time", &options.time);
    option("account", &options.account);
    for extra in &options.extra {
        lines.push(format!("#SBATCH {extra}"));
    }
    lines.push(String::new());
    lines.push(
        "# Written by `cl sweep --executor slurm`: each array task runs its pack of runs (slurm/tasks.json);".into(),
    );
    lines.push("# a requeued task skips complete runs and resumes the interrupted one from its checkpoints.".into());
    lines.push("set -euo pipefail".into());
    lines.push("export RAYON_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"".into());
    lines.push("export OMP_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"".into());
    lines.push(
        "echo \"task $SLURM_ARRAY_TASK_ID (job ${SLURM_ARRAY_JOB_ID:-?}) on $(hostname), restart ${SLURM_RESTART_COUNT:-0}\""
            .to_string(),
    );
    lines.push(format!(
        "exec {} task {} \"$SLURM_ARRAY_TASK_ID\" --plan {}",
        shell_quote(&workers.exe.display().to_string()),
        shell_quote(&out_abs.display().to_string()),
        shell_quote(&std::path::absolute(&plan_path).unwrap_or(plan_path.clone()).display().to_string())
    ));
    let script = slurm_dir.join(format!("sweep-{stamp}.sbatch"));
    std::fs::write(&script, lines.join("\n") + "\n").map_err(CliError::io(&script))?;
    Ok(script)
}

/// Submits the script; the job id.
pub fn submit(script: &Path, options: &SlurmOptions) -> Result<String> {
    let sbatch = find_program("sbatch", options.bin.as_deref())?;
    let dir = script.parent().unwrap_or(Path::new("."));
    let script_arg = script.display().to_string();
    let output = slurm(&sbatch, &["--parsable", &format!("--chdir={}", dir.display()), &script_arg])?;
    let id = output.trim().split(';').next().unwrap_or_default().to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(CliError::Slurm {
            command: format!("{} --parsable {script_arg}", sbatch.display()),
            status: "0".into(),
            stderr: format!("unexpected output `{}` (expected a job id)", output.trim()),
            hint: String::new(),
        });
    }
    Ok(id)
}

/// The states of the job's array tasks in the queue (`squeue -r`): `(task id, state)`; empty
/// once the job has left the queue.
pub fn queued(job: &str, options: &SlurmOptions) -> Result<Vec<(String, String)>> {
    let squeue = find_program("squeue", options.bin.as_deref())?;
    match slurm(&squeue, &["-h", "-r", "-j", job, "-o", "%i %T"]) {
        Ok(text) => Ok(text
            .lines()
            .filter_map(|l| l.split_once(' ').map(|(a, b)| (a.trim().to_string(), b.trim().to_string())))
            .collect()),
        // A job that has left the controller's memory is an invalid id to squeue: it ended.
        Err(CliError::Slurm { stderr, .. }) if stderr.contains("Invalid job id") => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Each array task's final state from `sacct` (`None` when accounting is not available).
pub fn accounted(job: &str, options: &SlurmOptions) -> Option<Vec<(String, String, String)>> {
    let sacct = find_program("sacct", options.bin.as_deref()).ok()?;
    let text = slurm(&sacct, &["-n", "-P", "-X", "-j", job, "--format=JobID,State,ExitCode"]).ok()?;
    let rows: Vec<(String, String, String)> = text
        .lines()
        .filter_map(|l| {
            let mut parts = l.split('|');
            Some((parts.next()?.to_string(), parts.next()?.to_string(), parts.next()?.to_string()))
        })
        .collect();
    (!rows.is_empty()).then_some(rows)
}

/// Each array task's final state from the controller's memory of finished jobs (`squeue -t
/// all`, kept for `MinJobAge`, 300 s by default): the fallback where there is no accounting.
fn finished(job: &str, options: &SlurmOptions) -> Option<Vec<(String, String, String)>> {
    let squeue = find_program("squeue", options.bin.as_deref()).ok()?;
    let text = slurm(&squeue, &["-h", "-r", "-t", "all", "-j", job, "-o", "%i|%T|%r"]).ok()?;
    let rows: Vec<(String, String, String)> = text
        .lines()
        .filter_map(|l| {
            let mut parts = l.split('|');
            Some((parts.next()?.to_string(), parts.next()?.to_string(), format!("reason {}", parts.next()?)))
        })
        .collect();
    (!rows.is_empty()).then_some(rows)
}

/// Follows the job until it leaves the queue, printing each task's state changes.
pub fn follow(job: &str, options: &SlurmOptions) -> Result<()> {
    let mut last: std::collections::BTreeMap<String, String> = Default::default();
    let poll =
        Duration::from_secs_f64(if options.poll_s.is_finite() { options.poll_s.clamp(0.2, 3600.0) } else { 2.0 });
    loop {
        let now = queued(job, options)?;
        for (task, state) in &now {
            if last.get(task) != Some(state) {
                println!("slurm job {task}: {state}");
            }
        }
        if now.is_empty() {
            break;
        }
        last = now.into_iter().collect();
        std::thread::sleep(poll);
    }
    match accounted(job, options).or_else(|| finished(job, options)) {
        Some(rows) => {
            for (task, state, exit) in rows {
                println!("slurm job {task}: {state} (exit {exit})");
            }
        }
        None => println!("slurm job {job}: left the queue (the runs' status.json files tell how each ended)"),
    }
    Ok(())
}

/// `cl task OUT INDEX --plan FILE`: the runs of array task `index` of the plan, one after
/// another; the ids of those that failed.
pub fn run_task(out: &Path, index: usize, plan_path: &Path) -> Result<Vec<(String, String)>> {
    let plan: TaskPlan = read_json(plan_path)?;
    let runs = plan.tasks.get(index).ok_or_else(|| {
        CliError::Usage(format!(
            "task {index}: {} has {} tasks (0..{})",
            plan_path.display(),
            plan.tasks.len(),
            plan.tasks.len()
        ))
    })?;
    let threads = std::env::var("RAYON_NUM_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(1);
    let workers = Workers::current(plan.data_dir.clone(), threads)?;
    let mut failed = Vec::new();
    for id in runs {
        if crate::run::completed_results(&crate::sweep::run_dir(out, id)).is_some() {
            println!("{id}: complete (skipped)");
            continue;
        }
        match workers.run_one(out, id) {
            Ok(seconds) => println!("{id}: complete in {seconds:.1} s"),
            Err(e) => {
                println!("{id}: FAILED: {e}");
                failed.push((id.clone(), e));
            }
        }
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_slurm_says_what_to_install_and_where_it_looked() {
        let dir = tempfile::tempdir().unwrap();
        let err = find_program("sbatch", Some(dir.path())).unwrap_err().to_string();
        assert!(
            err.contains("sbatch") && err.contains("slurm-client") && err.contains(&dir.path().display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn shell_words_are_quoted() {
        assert_eq!(shell_quote("a b'c"), r"'a b'\''c'");
    }
}
