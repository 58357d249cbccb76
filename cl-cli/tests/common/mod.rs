//! What the `cl` command-line tests share: the binary, the fixture, small specs and grids.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `cl` binary built for these tests.
pub fn cl() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cl"));
    // One thread per run, as the local executor with --jobs 2 on 2 cores and Slurm's
    // --cpus-per-task=1 give: the numbers are compared bit for bit between executors.
    command.env("RAYON_NUM_THREADS", "1");
    command
}

/// The shipped Fashion-MNIST subset (real images cut from Debian's files).
pub fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cl-benchmarks/tests/fixtures/fashion-mnist-mini")
}

/// Runs `cl` with `args` in `dir`; the output.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    cl().current_dir(dir).args(args).output().expect("cl starts")
}

/// Standard output and error as text.
pub fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// A small spec on the fixture: SplitFMNIST (5 experiences), a 64-unit MLP, `epochs` epochs.
pub fn small_spec(strategy: &str, epochs: usize) -> String {
    format!(
        r#"seed = 1
[benchmark]
type = "split_fmnist"
n_experiences = 5
[model]
type = "simple_mlp"
hidden_size = 64
[strategy]
{strategy}
[optimizer]
type = "sgd"
lr = 0.01
momentum = 0.9
[protocol]
train_epochs = {epochs}
train_mb_size = 32
eval_mb_size = 256
"#
    )
}

/// A grid of 2 strategies × 2 seeds over [`small_spec`] with `epochs` epochs.
pub fn small_grid(epochs: usize) -> String {
    format!(
        r#"seeds = [1, 2]
[spec]
labels = {{ benchmark = "SplitFMNIST-mini" }}
benchmark = {{ type = "split_fmnist", n_experiences = 5 }}
model = {{ type = "simple_mlp", hidden_size = 64 }}
strategy = {{ name = "naive" }}
optimizer = {{ type = "sgd", lr = 0.01, momentum = 0.9 }}
protocol = {{ train_epochs = {epochs}, train_mb_size = 32, eval_mb_size = 256 }}

[[axis]]
name = "strategy"
values = [
  {{ label = "Naive", strategy = {{ name = "naive" }} }},
  {{ label = "Replay", strategy = {{ name = "replay", config = {{ mem_size = 100 }} }} }},
]
"#
    )
}

/// Writes `text` to `dir/name`; the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `results.json` of a run directory as JSON.
pub fn results(run_dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run_dir.join("results.json")).unwrap()).unwrap()
}

/// The accuracy matrices of every run of a sweep directory, by run id (bit-exact: f64 written
/// with serde_json's round-trip formatting).
pub fn matrices(out: &Path) -> std::collections::BTreeMap<String, serde_json::Value> {
    std::fs::read_dir(out.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("results.json").exists())
        .map(|p| {
            let r = results(&p);
            (r["id"].as_str().unwrap().to_string(), r["accuracy_matrix"].clone())
        })
        .collect()
}

/// The groups of `aggregate.json` without the wall times (which differ between executions).
pub fn aggregate_numbers(out: &Path) -> serde_json::Value {
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("aggregate.json")).unwrap()).unwrap();
    for group in value["groups"].as_array_mut().unwrap() {
        group.as_object_mut().unwrap().remove("wall_time_s");
    }
    value["groups"].clone()
}

/// The sbatch script a Slurm sweep wrote into `out` (the newest, if several).
pub fn sbatch_script(out: &Path) -> String {
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(out.join("slurm"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sbatch"))
        .collect();
    scripts.sort();
    std::fs::read_to_string(scripts.last().expect("an sbatch script")).unwrap()
}
