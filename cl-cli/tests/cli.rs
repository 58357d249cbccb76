//! The `cl` command line end to end, on the shipped Fashion-MNIST subset: a run and its
//! directory, resuming a killed run, local sweeps (jobs, shards, skipping, failures),
//! aggregation, and the errors of bad files.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn a_run_writes_its_directory_and_a_rerun_finds_it_complete() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "naive.toml", &small_spec("name = \"naive\"", 1));
    let data = fixture();
    let args = ["run", "naive.toml", "--run-dir", "r", "--data-dir", data.to_str().unwrap()];
    let out = run_in(dir.path(), &args);
    assert!(out.status.success(), "{}", text(&out));
    let run = dir.path().join("r");
    for file in ["spec.json", "status.json", "results.json", "history.jsonl", "pictures/history_accuracy_matrix.png"] {
        assert!(run.join(file).exists(), "{file} missing");
    }
    assert!(std::fs::read_dir(run.join("checkpoints")).unwrap().count() >= 1);
    let r = results(&run);
    assert_eq!(r["n_experiences"], 5);
    assert_eq!(r["seed"], 1);
    assert_eq!(r["accuracy_matrix"].as_array().unwrap().len(), 5);
    let final_acc = r["final_average_accuracy"].as_f64().unwrap();
    let last_row: Vec<f64> = r["accuracy_matrix"][4].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(final_acc, last_row.iter().sum::<f64>() / 5.0);
    assert!(r["provenance"]["git_commit"].as_str().unwrap().len() >= 7);
    assert_eq!(r["provenance"]["burn_version"], "0.22.1");
    let status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("status.json")).unwrap()).unwrap();
    assert_eq!(status["state"], "complete");
    // The resolved spec: every default written out, the benchmark's seed set to the run's.
    let resolved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("spec.json")).unwrap()).unwrap();
    assert_eq!(resolved["benchmark"]["seed"], 1);
    // The model's initial weights follow the run's seed unless the spec gives the model one.
    assert_eq!(resolved["model"]["seed"], 1);
    assert_eq!(resolved["checkpoint"]["keep_last"], 2);

    // Again: nothing runs.
    let again = run_in(dir.path(), &args);
    assert!(again.status.success() && text(&again).contains("already complete"), "{}", text(&again));
    assert_eq!(results(&run), r);

    // Another spec into the same directory is refused, naming the difference.
    std::fs::write(&spec, small_spec("name = \"naive\"", 2)).unwrap();
    let other = run_in(dir.path(), &args);
    assert_eq!(other.status.code(), Some(2), "{}", text(&other));
    assert!(text(&other).contains("train_epochs") && text(&other).contains("--restart"), "{}", text(&other));
    // A directory that is not a run directory is never written into, --restart or not.
    std::fs::create_dir(dir.path().join("mine")).unwrap();
    write(&dir.path().join("mine"), "notes.txt", "my notes");
    for extra in [&[][..], &["--restart"][..]] {
        let base = ["run", "naive.toml", "--run-dir", "mine", "--data-dir", data.to_str().unwrap()];
        let refused = run_in(dir.path(), &[&base[..], extra].concat());
        assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
        assert!(text(&refused).contains("not a run directory"), "{}", text(&refused));
    }
    assert!(dir.path().join("mine/notes.txt").exists());
    // --restart starts it over.
    let restarted = run_in(dir.path(), &[&args[..], &["--restart"]].concat());
    assert!(restarted.status.success(), "{}", text(&restarted));
    let resolved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("spec.json")).unwrap()).unwrap();
    assert_eq!(resolved["protocol"]["train_epochs"], 2);

    // Labels do not make another run: a relabelled spec finds the run complete, with its new labels.
    let relabelled =
        small_spec("name = \"naive\"", 2).replace("seed = 1\n", "seed = 1\nlabels = { strategy = \"Fine-tuning\" }\n");
    std::fs::write(&spec, relabelled).unwrap();
    let again = run_in(dir.path(), &args);
    assert!(again.status.success() && text(&again).contains("already complete"), "{}", text(&again));
    let resolved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("spec.json")).unwrap()).unwrap();
    assert_eq!(resolved["labels"]["strategy"], "Fine-tuning");
}

/// `protocol.online`: each experience trained as sub-experiences of 10 samples in one call
/// (one training experience each, one mini-batch of 10 each), evaluated at the experience
/// boundaries, one checkpoint per original experience; the same spec twice gives the same
/// numbers; JointTraining with it is refused when the spec is read.
#[test]
fn an_online_run_trains_sub_experiences_and_evaluates_at_the_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let online = small_spec("name = \"er_ace\"\nconfig = { mem_size = 100 }", 1)
        .replace("train_mb_size = 32", "train_mb_size = 10\nonline = { experience_size = 10 }")
        .replace("[protocol]", "[checkpoint]\nkeep_last = 10\n[protocol]");
    write(dir.path(), "online.toml", &online);
    let data = fixture();
    let args = |run: &'static str| ["run", "online.toml", "--run-dir", run, "--data-dir", data.to_str().unwrap()];
    let out = run_in(dir.path(), &args("a"));
    assert!(out.status.success(), "{}", text(&out));
    let r = results(&dir.path().join("a"));
    assert_eq!(r["accuracy_matrix"].as_array().unwrap().len(), 5, "evaluated after each original experience");
    // The fixture's 2000 training samples: 200 sub-experiences of 10, and a shorter last one for
    // each experience whose size is not a multiple of 10.
    let iterations = r["train_iterations"].as_u64().unwrap();
    assert!((200..=205).contains(&iterations), "{iterations}: one mini-batch of 10 per sub-experience");
    let checkpoints = std::fs::read_dir(dir.path().join("a/checkpoints")).unwrap().count();
    assert_eq!(checkpoints, 5, "one checkpoint per original experience");
    assert!(r["final_average_accuracy"].as_f64().unwrap() > 0.3, "{r}");
    let again = run_in(dir.path(), &args("b"));
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(results(&dir.path().join("b"))["accuracy_matrix"], r["accuracy_matrix"]);

    let joint = small_spec("name = \"joint_training\"", 1)
        .replace("eval_mb_size", "online = { experience_size = 10 }\neval_mb_size");
    write(dir.path(), "joint.toml", &joint);
    let refused = run_in(dir.path(), &["run", "joint.toml", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("online_not_joint"), "{}", text(&refused));
}

#[test]
fn a_killed_run_resumes_from_its_checkpoint_to_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "spec.toml", &small_spec("name = \"replay\"\nconfig = { mem_size = 100 }", 40));
    let data = fixture();
    let args = ["run", "spec.toml", "--data-dir", data.to_str().unwrap(), "--run-dir"];
    // The reference, uninterrupted.
    let whole = run_in(dir.path(), &[&args[..], &["whole"]].concat());
    assert!(whole.status.success(), "{}", text(&whole));

    // Killed (SIGKILL) once a checkpoint is written, then run again without --resume.
    let mut child = cl()
        .current_dir(dir.path())
        .args([&args[..], &["killed"]].concat())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let checkpoints = dir.path().join("killed/checkpoints");
    let start = Instant::now();
    while std::fs::read_dir(&checkpoints).map(|d| d.count()).unwrap_or(0) == 0 {
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint written");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A second process on the same run directory is refused while the first runs.
    let second = run_in(dir.path(), &[&args[..], &["killed"]].concat());
    let finished_before_kill = child.try_wait().unwrap().is_some();
    if !finished_before_kill {
        assert_eq!(second.status.code(), Some(2), "{}", text(&second));
        assert!(text(&second).contains("being run by another process"), "{}", text(&second));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let resumed = run_in(dir.path(), &[&args[..], &["killed"]].concat());
    assert!(resumed.status.success(), "{}", text(&resumed));
    let (a, b) = (results(&dir.path().join("whole")), results(&dir.path().join("killed")));
    assert_eq!(a["accuracy_matrix"], b["accuracy_matrix"]);
    assert_eq!(a["train_iterations"], b["train_iterations"]);
    // 40 epochs per experience: the run is far from done when its first checkpoint appears.
    assert!(!finished_before_kill, "the run ended before it was killed: make it longer");
    assert!(b["resumed_calls"].as_u64().unwrap() > 0, "{b}");
    // --resume with nothing to resume from is an error.
    let nothing = run_in(dir.path(), &[&args[..], &["fresh", "--resume"]].concat());
    assert_eq!(nothing.status.code(), Some(2), "{}", text(&nothing));
    assert!(text(&nothing).contains("no checkpoint"), "{}", text(&nothing));
}

#[test]
fn a_local_sweep_runs_each_run_once_and_shards_give_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "grid.toml", &small_grid(1));
    let data = fixture();
    let data = data.to_str().unwrap();
    let sweep = |out: &str, extra: &[&str]| {
        let output =
            run_in(dir.path(), &[&["sweep", "grid.toml", "--out", out, "--data-dir", data][..], extra].concat());
        assert!(output.status.success(), "{}", text(&output));
        text(&output)
    };
    let printed = sweep("all", &["--jobs", "2"]);
    assert!(printed.contains("4 runs, 0 complete, 4 to run"), "{printed}");
    let all = dir.path().join("all");
    let matrices_all = matrices(&all);
    assert_eq!(matrices_all.len(), 4);
    // The table: one row per strategy, mean ± std over the two seeds.
    let md = std::fs::read_to_string(all.join("aggregate.md")).unwrap();
    assert!(md.contains("### SplitFMNIST-mini") && md.contains("| Naive |") && md.contains("| Replay |"), "{md}");
    assert!(md.contains(" ± ") && md.contains("| 1, 2 |"), "{md}");
    for picture in ["aggregate.png", "aggregate.svg", "aggregate.json", "timing.json", "sweep.json"] {
        assert!(all.join(picture).exists(), "{picture}");
    }
    let aggregate: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(all.join("aggregate.json")).unwrap()).unwrap();
    let naive = &aggregate["groups"][0];
    assert_eq!(naive["strategy"], "Naive");
    assert_eq!(naive["seeds"], serde_json::json!([1, 2]));
    let values: Vec<f64> =
        naive["final_average_accuracy"]["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let mean = (values[0] + values[1]) / 2.0;
    assert_eq!(naive["final_average_accuracy"]["mean"].as_f64().unwrap(), mean);
    let std = (((values[0] - mean).powi(2) + (values[1] - mean).powi(2)) / 1.0).sqrt();
    assert!((naive["final_average_accuracy"]["std"].as_f64().unwrap() - std).abs() < 1e-12);

    // Again: every run is complete, nothing runs, the numbers stay.
    let again = sweep("all", &["--jobs", "2"]);
    assert!(again.contains("4 complete, 0 to run"), "{again}");
    assert_eq!(matrices(&all), matrices_all);

    // Two shards into another directory: together the same runs, bit for bit.
    let first = sweep("sharded", &["--shard", "0/2"]);
    assert!(first.contains("2 runs in shard 0/2"), "{first}");
    assert_eq!(matrices(&dir.path().join("sharded")).len(), 2);
    sweep("sharded", &["--shard", "1/2"]);
    assert_eq!(matrices(&dir.path().join("sharded")), matrices_all);
    assert_eq!(aggregate_numbers(&dir.path().join("sharded")), aggregate_numbers(&all));

    // `cl aggregate` gives the same tables.
    let output = run_in(dir.path(), &["aggregate", "sharded"]);
    assert!(output.status.success() && text(&output).contains("| Replay |"), "{}", text(&output));
}

#[test]
fn a_failed_run_is_recorded_and_the_sweep_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    // CWR* on a layer the model does not have: the run fails when its strategy is built.
    let grid = small_grid(1).replace(
        "{ label = \"Replay\", strategy = { name = \"replay\", config = { mem_size = 100 } } },",
        "{ label = \"CWR*\", strategy = { name = \"cwr_star\", config = { cwr_layer_name = \"no_such_layer\" } } },",
    );
    write(dir.path(), "grid.toml", &grid);
    let data = fixture();
    let output = run_in(
        dir.path(),
        &["sweep", "grid.toml", "--out", "out", "--jobs", "2", "--data-dir", data.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let printed = text(&output);
    assert!(printed.contains("2 of 4 runs failed") && printed.contains("no_such_layer"), "{printed}");
    let out = dir.path().join("out");
    assert_eq!(matrices(&out).len(), 2, "the Naive runs completed");
    let failed: Vec<serde_json::Value> = std::fs::read_dir(out.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path().join("status.json"))
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .filter(|s: &serde_json::Value| s["state"] == "failed")
        .collect();
    assert_eq!(failed.len(), 2);
    assert!(failed[0]["error"].as_str().unwrap().contains("cwr_layer_name_in_model"), "{}", failed[0]);
    let md = std::fs::read_to_string(out.join("aggregate.md")).unwrap();
    assert!(md.contains("| CWR* |") && md.contains("(2 failed)"), "{md}");
}

#[test]
fn bad_files_are_errors_naming_the_file_the_key_and_the_accepted_values() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(String, &[&str])> = vec![
        (small_spec("name = \"ewcc\"", 1), &["ewcc", "synaptic_intelligence", "line 9"]),
        (small_spec("name = \"ewc\"\nconfig = { ewc_lamda = 1.0 }", 1), &["ewc_lamda", "ewc_lambda", "strategy"]),
        (
            small_spec("name = \"naive\"", 1).replace("train_mb_size = 32", "train_mb_size = -3"),
            &["train_mb_size", "line 16"],
        ),
        (small_spec("name = \"replay\"\nconfig = { mem_size = 0 }", 1), &["mem_size_positive"]),
        (
            small_spec("name = \"naive\"", 1).replace("type = \"split_fmnist\"", "type = \"splitfmnist\""),
            &["splitfmnist", "split_fmnist"],
        ),
        (format!("{}\n[[plugins]]\nname = \"lwff\"\n", small_spec("name = \"naive\"", 1)), &["lwff", "early_stopping"]),
        (small_spec("name = \"naive\"", 1).replace("seed = 1", "sed = 1"), &["sed", "seed"]),
        (small_spec("name = \"naive\"", 1).replace("[optimizer]", "[optimizer\n"), &["line"]),
    ];
    for (k, (text_of, expected)) in cases.iter().enumerate() {
        let name = format!("bad{k}.toml");
        write(dir.path(), &name, text_of);
        for command in ["validate", "run"] {
            let output = run_in(dir.path(), &[command, &name]);
            assert_eq!(output.status.code(), Some(2), "{command} {name}: {}", text(&output));
            let message = text(&output);
            assert!(message.contains(&name), "{message}");
            for e in *expected {
                assert!(message.contains(e), "{name}: expected `{e}` in: {message}");
            }
        }
    }
    // JSON is accepted, with its line too.
    write(dir.path(), "bad.json", "{\n  \"seed\": 1,\n  \"benchmark\": {\"type\": \"nope\"}\n}");
    let output = run_in(dir.path(), &["validate", "bad.json"]);
    assert!(text(&output).contains("nope") && text(&output).contains("benchmark"), "{}", text(&output));

    // Grids: zero runs, duplicates.
    write(dir.path(), "empty.toml", &small_grid(1).replace("seeds = [1, 2]", "seeds = []"));
    let output = run_in(dir.path(), &["validate", "empty.toml"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("zero runs"), "{}", text(&output));
    write(dir.path(), "dup.toml", &small_grid(1).replace("seeds = [1, 2]", "seeds = [1, 1]"));
    let output = run_in(dir.path(), &["sweep", "dup.toml"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("same run"), "{}", text(&output));
    // A grid given to `cl run` says to use `cl sweep`.
    write(dir.path(), "grid.toml", &small_grid(1));
    let output = run_in(dir.path(), &["run", "grid.toml"]);
    assert!(text(&output).contains("cl sweep grid.toml"), "{}", text(&output));
    // A good grid validates and lists its runs.
    let output = run_in(dir.path(), &["validate", "grid.toml"]);
    assert!(output.status.success() && text(&output).contains("a valid grid of 4 runs"), "{}", text(&output));
}

#[test]
fn the_shipped_specs_are_valid() {
    let specs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs");
    let mut files: Vec<_> = std::fs::read_dir(&specs).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 5);
    let args: Vec<&str> = std::iter::once("validate").chain(files.iter().map(|f| f.to_str().unwrap())).collect();
    let output = cl().args(&args).output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let printed = text(&output);
    assert!(printed.contains("strategies-split-fmnist.toml: a valid grid of 72 runs"), "{printed}");
    assert!(printed.contains("online-split-fmnist.toml: a valid grid of 27 runs"), "{printed}");
}

#[test]
fn a_missing_or_unreachable_slurm_says_what_is_wrong_and_how_to_fix_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "grid.toml", &small_grid(1));
    let empty = dir.path().join("no-slurm");
    std::fs::create_dir(&empty).unwrap();
    let output = run_in(dir.path(), &["sweep", "grid.toml", "--executor", "slurm", "--slurm-bin", "no-slurm"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let message = text(&output);
    assert!(message.contains("`sbatch` was not found") && message.contains("no-slurm"), "{message}");
    assert!(message.contains("apt-get install slurm-client") && message.contains("--slurm-bin"), "{message}");

    // An sbatch that cannot reach its controller (what Slurm prints then).
    let fake = dir.path().join("fake-slurm");
    std::fs::create_dir(&fake).unwrap();
    let sbatch = write(
        &fake,
        "sbatch",
        "#!/bin/sh\necho 'sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)' >&2\nexit 1\n",
    );
    std::fs::set_permissions(&sbatch, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = run_in(dir.path(), &["sweep", "grid.toml", "--executor", "slurm", "--slurm-bin", "fake-slurm"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let message = text(&output);
    assert!(message.contains("Unable to contact slurm controller") && message.contains("slurmctld"), "{message}");
    // The script was written for inspection.
    let script = sbatch_script(&dir.path().join("sweeps/grid"));
    assert!(
        script.contains("#SBATCH --array=0-3") && script.contains(" task ") && script.contains("--plan"),
        "{script}"
    );
}
