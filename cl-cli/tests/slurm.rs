//! `cl sweep --executor slurm` on a real Slurm cluster: the sweep's numbers equal the local
//! executor's bit for bit, and a requeued array task resumes its run from its checkpoint to the
//! same result.
//!
//! Needs a cluster that answers `sinfo` (this machine as a single-node cluster:
//! `bash scripts/slurm-local.sh up`, which `.ci/run` does). Without one the tests say so and
//! pass, unless `CL_TEST_SLURM=1` (set by `.ci/run`), where a missing cluster is a failure.

mod common;

use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;

/// Epochs per experience of the requeued run (about 5 s on one core of the fixture).
const EPOCHS: usize = 300;

/// The cluster has few CPUs: one test at a time.
static CLUSTER: Mutex<()> = Mutex::new(());

fn slurm_available() -> bool {
    let answers = Command::new("sinfo").arg("-h").output().map(|o| o.status.success()).unwrap_or(false);
    if !answers {
        assert!(
            std::env::var("CL_TEST_SLURM").as_deref() != Ok("1"),
            "CL_TEST_SLURM=1 but no Slurm cluster answers `sinfo`: start one with `bash scripts/slurm-local.sh up`"
        );
        eprintln!("skipped: no Slurm cluster answers `sinfo` (start one with `bash scripts/slurm-local.sh up`)");
    }
    answers
}

/// Waits until `done()` or `limit`, polling.
fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether Slurm still has job `job` queued or running.
fn in_queue(job: &str) -> bool {
    let out = Command::new("squeue").args(["-h", "-r", "-j", job, "-o", "%i %T"]).output().unwrap();
    out.status.success() && !String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

#[test]
fn a_slurm_sweep_in_packs_of_two_runs_gives_the_local_executors_numbers_bit_for_bit() {
    if !slurm_available() {
        return;
    }
    let _cluster = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "grid.toml", &small_grid(2));
    let data = fixture();
    let data = data.to_str().unwrap();
    let local = run_in(
        dir.path(),
        &["sweep", "grid.toml", "--out", "local", "--jobs", "2", "--threads-per-job", "1", "--data-dir", data],
    );
    assert!(local.status.success(), "{}", text(&local));

    let slurm = run_in(
        dir.path(),
        &[
            "sweep",
            "grid.toml",
            "--out",
            "slurm",
            "--executor",
            "slurm",
            "--max-parallel",
            "2",
            "--runs-per-task",
            "2",
            "--cpus-per-task",
            "1",
            "--poll",
            "0.5",
            "--data-dir",
            data,
        ],
    );
    let printed = text(&slurm);
    assert!(slurm.status.success(), "{printed}");
    assert!(printed.contains("submitted") && printed.contains("Slurm job"), "{printed}");
    let out = dir.path().join("slurm");
    let script = sbatch_script(&out);
    // Two array tasks of two runs each, both at once.
    assert!(script.contains("#SBATCH --array=0-1%2") && script.contains("#SBATCH --requeue"), "{script}");
    assert_eq!(std::fs::read_dir(out.join("slurm/logs")).unwrap().count(), 2, "one log per array task");

    assert_eq!(matrices(&out).len(), 4);
    assert_eq!(matrices(&out), matrices(&dir.path().join("local")));
    assert_eq!(aggregate_numbers(&out), aggregate_numbers(&dir.path().join("local")));
    // Each run knows the array task that ran it.
    for (id, _) in matrices(&out) {
        let r = results(&out.join("runs").join(&id));
        assert!(r["provenance"]["slurm_job"].as_str().is_some_and(|j| j.contains('_')), "{r}");
    }
    // Again: everything is complete, nothing is submitted.
    let again =
        run_in(dir.path(), &["sweep", "grid.toml", "--out", "slurm", "--executor", "slurm", "--data-dir", data]);
    assert!(again.status.success() && !text(&again).contains("submitted"), "{}", text(&again));
}

#[test]
fn a_requeued_task_resumes_from_its_checkpoint_to_the_same_result() {
    if !slurm_available() {
        return;
    }
    let _cluster = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // One run, long enough to be requeued in the middle.
    let grid = small_grid(EPOCHS)
        .replace("seeds = [1, 2]", "seeds = [3]")
        .replace("  { label = \"Replay\", strategy = { name = \"replay\", config = { mem_size = 100 } } },\n", "");
    write(dir.path(), "grid.toml", &grid);
    let data = fixture();
    let data = data.to_str().unwrap();
    let local = run_in(
        dir.path(),
        &["sweep", "grid.toml", "--out", "local", "--jobs", "1", "--threads-per-job", "1", "--data-dir", data],
    );
    assert!(local.status.success(), "{}", text(&local));
    let reference = matrices(&dir.path().join("local"));
    assert_eq!(reference.len(), 1);
    let id = reference.keys().next().unwrap().clone();

    let submitted = run_in(
        dir.path(),
        &["sweep", "grid.toml", "--out", "slurm", "--executor", "slurm", "--no-wait", "--data-dir", data],
    );
    let printed = text(&submitted);
    assert!(submitted.status.success(), "{printed}");
    let job = printed
        .split("as Slurm job ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no job id in: {printed}"))
        .to_string();
    let run_dir = dir.path().join("slurm/runs").join(&id);

    // Requeue the task once it has written a checkpoint (it is then in the middle of its run).
    wait_for("the first checkpoint", Duration::from_secs(180), || {
        std::fs::read_dir(run_dir.join("checkpoints")).map(|d| d.count() > 0).unwrap_or(false)
    });
    assert!(!run_dir.join("results.json").exists(), "the run ended before the requeue: make it longer");
    let requeue = Command::new("scontrol").args(["requeue", &format!("{job}_0")]).output().unwrap();
    assert!(requeue.status.success(), "{}", String::from_utf8_lossy(&requeue.stderr));

    wait_for("the job to end", Duration::from_secs(300), || !in_queue(&job));
    let r = results(&run_dir);
    assert_eq!(r["accuracy_matrix"], reference[&id], "the requeued run's numbers");
    assert!(r["resumed_calls"].as_u64().unwrap() > 0, "the second attempt resumed from a checkpoint: {r}");
    let status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("status.json")).unwrap()).unwrap();
    assert_eq!(status["attempts"], 2, "{status}");
    let log_dir = dir.path().join("slurm/slurm/logs");
    let log: String =
        std::fs::read_dir(&log_dir).unwrap().map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect();
    assert!(log.contains("restart 1"), "the task's log shows its restart: {log}");
    // `cl aggregate` on the Slurm sweep gives the local numbers.
    let aggregated = run_in(dir.path(), &["aggregate", "slurm"]);
    assert!(aggregated.status.success(), "{}", text(&aggregated));
    assert_eq!(aggregate_numbers(&dir.path().join("slurm")), aggregate_numbers(&dir.path().join("local")));
}
