//! `cl aggregate`: mean ± standard deviation over seeds of the runs of a sweep directory, per
//! benchmark × strategy (× the other axes of the grid), as markdown, JSON and a picture.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cl::report::StrategySummary;
use serde::{Deserialize, Serialize};

use crate::error::{CliError, Result};
use crate::run::{RunResults, RunState, read_json, read_status, write_json};
use crate::sweep::SweepIndex;

/// Mean, sample standard deviation (n − 1; `None` for one value) and the values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    /// The mean (`None` when no run has the value).
    pub mean: Option<f64>,
    /// The sample standard deviation (`None` with fewer than two values).
    pub std: Option<f64>,
    /// The values, in seed order.
    pub values: Vec<f64>,
}

impl Stat {
    /// The statistics of `values`.
    pub fn of(values: Vec<f64>) -> Self {
        let n = values.len() as f64;
        let mean = (!values.is_empty()).then(|| values.iter().sum::<f64>() / n);
        let std = match mean {
            Some(m) if values.len() > 1 => {
                Some((values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1.0)).sqrt())
            }
            _ => None,
        };
        Self { mean, std, values }
    }

    /// `0.4123 ± 0.0100`, `0.4123` for one value, `—` for none.
    pub fn show(&self, digits: usize) -> String {
        match (self.mean, self.std) {
            (Some(m), Some(s)) => format!("{m:.digits$} ± {s:.digits$}"),
            (Some(m), None) => format!("{m:.digits$}"),
            _ => "—".into(),
        }
    }
}

/// One group of runs that differ only in their seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupSummary {
    /// The benchmark's label.
    pub benchmark: String,
    /// The strategy's label.
    pub strategy: String,
    /// The other labels (one per other axis of the grid).
    pub other: BTreeMap<String, String>,
    /// The seeds of the completed runs.
    pub seeds: Vec<u64>,
    /// Final average accuracy.
    pub final_average_accuracy: Stat,
    /// Average forgetting.
    pub forgetting: Stat,
    /// Training + evaluation wall time per run, over the runs that ran in one go (a resumed
    /// run's time covers its last attempt only).
    pub wall_time_s: Stat,
    /// Completed runs whose final accuracy is not a number (the model diverged): left out of
    /// the means, counted here.
    #[serde(default)]
    pub diverged: Vec<String>,
    /// Seeds that appear in more than one run of the group (runs of different specs with the
    /// same labels: give them different labels).
    #[serde(default)]
    pub duplicate_seeds: Vec<u64>,
    /// The completed runs' ids.
    pub runs: Vec<String>,
    /// Runs that failed, with their errors.
    pub failed: Vec<(String, String)>,
    /// Runs neither complete nor failed (not run yet, or running).
    pub incomplete: Vec<String>,
}

/// What a sweep directory holds, aggregated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    /// The directory.
    pub dir: PathBuf,
    /// The groups, in the order of the grid.
    pub groups: Vec<GroupSummary>,
}

/// A group's labels.
type Labels = BTreeMap<String, String>;

/// A run directory of a group and its results, when complete.
type Member = (PathBuf, Option<RunResults>);

/// The run directories of `dir`: `dir/runs/*` (in `sweep.json`'s order when there is one) or,
/// without `runs/`, the folders of `dir` that hold a `spec.json`.
fn run_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("sweep.json");
    if index.exists() {
        let index: SweepIndex = read_json(&index)?;
        return Ok(index.runs.iter().map(|r| dir.join("runs").join(&r.id)).collect());
    }
    let base = if dir.join("runs").is_dir() { dir.join("runs") } else { dir.to_path_buf() };
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&base)
        .map_err(CliError::io(&base))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("spec.json").exists())
        .collect();
    if dir.join("spec.json").exists() {
        dirs.push(dir.to_path_buf());
    }
    dirs.sort();
    Ok(dirs)
}

/// Aggregates the runs of `dir` (a sweep directory, a folder of run directories, or one run
/// directory).
pub fn aggregate(dir: &Path) -> Result<Aggregate> {
    let dirs = run_dirs(dir)?;
    if dirs.is_empty() {
        return Err(CliError::Usage(format!(
            "{} holds no run (no sweep.json, no run directory with a spec.json): give a sweep directory (the --out \
             of `cl sweep`) or a run directory",
            dir.display()
        )));
    }
    let mut groups: Vec<(Labels, Vec<Member>)> = Vec::new();
    for run_dir in dirs {
        let spec: crate::spec::RunSpec = read_json(&run_dir.join("spec.json"))?;
        let results_path = run_dir.join("results.json");
        let results = if results_path.exists() { Some(read_json::<RunResults>(&results_path)?) } else { None };
        let mut key = spec.labels.clone();
        key.entry("strategy".into()).or_insert_with(|| spec.strategy_label());
        key.entry("benchmark".into()).or_insert_with(|| spec.benchmark_label());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push((run_dir, results)),
            None => groups.push((key, vec![(run_dir, results)])),
        }
    }
    let groups = groups
        .into_iter()
        .map(|(mut key, members)| {
            let benchmark = key.remove("benchmark").unwrap_or_default();
            let strategy = key.remove("strategy").unwrap_or_default();
            let mut done: Vec<&RunResults> = members.iter().filter_map(|(_, r)| r.as_ref()).collect();
            done.sort_by_key(|r| r.seed);
            let id = |p: &PathBuf| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let mut failed = Vec::new();
            let mut incomplete = Vec::new();
            for (dir, results) in &members {
                if results.is_some() {
                    continue;
                }
                match read_status(dir) {
                    Some(s) if s.state == RunState::Failed => failed.push((id(dir), s.error.unwrap_or_default())),
                    _ => incomplete.push(id(dir)),
                }
            }
            let seeds: Vec<u64> = done.iter().map(|r| r.seed).collect();
            let mut duplicate_seeds: Vec<u64> = seeds.windows(2).filter(|w| w[0] == w[1]).map(|w| w[0]).collect();
            duplicate_seeds.dedup();
            GroupSummary {
                benchmark,
                strategy,
                other: key,
                seeds,
                final_average_accuracy: Stat::of(done.iter().filter_map(|r| r.final_average_accuracy).collect()),
                forgetting: Stat::of(done.iter().filter_map(|r| r.forgetting).collect()),
                wall_time_s: Stat::of(done.iter().filter(|r| r.resumed_calls == 0).map(|r| r.wall_time_s).collect()),
                diverged: done.iter().filter(|r| r.final_average_accuracy.is_none()).map(|r| r.id.clone()).collect(),
                duplicate_seeds,
                runs: done.iter().map(|r| r.id.clone()).collect(),
                failed,
                incomplete,
            }
        })
        .collect();
    Ok(Aggregate { dir: dir.to_path_buf(), groups })
}

impl Aggregate {
    /// One markdown table per benchmark.
    pub fn markdown(&self) -> String {
        let mut text = String::new();
        let mut benchmarks: Vec<&str> = Vec::new();
        for g in &self.groups {
            if !benchmarks.contains(&g.benchmark.as_str()) {
                benchmarks.push(&g.benchmark);
            }
        }
        for benchmark in benchmarks {
            let rows: Vec<&GroupSummary> = self.groups.iter().filter(|g| g.benchmark == benchmark).collect();
            let other_keys: Vec<String> = {
                let mut keys: Vec<String> = rows.iter().flat_map(|g| g.other.keys().cloned()).collect();
                keys.sort();
                keys.dedup();
                keys
            };
            text.push_str(&format!("\n### {benchmark}\n\n| strategy |"));
            for k in &other_keys {
                text.push_str(&format!(" {k} |"));
            }
            text.push_str(" final avg accuracy | forgetting | wall time (s) | seeds |\n|---|");
            for _ in &other_keys {
                text.push_str("---|");
            }
            text.push_str("---|---|---|---|\n");
            for g in rows {
                text.push_str(&format!("| {} |", g.strategy));
                for k in &other_keys {
                    text.push_str(&format!(" {} |", g.other.get(k).map_or("", String::as_str)));
                }
                let mut seeds = g.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
                if !g.failed.is_empty() {
                    seeds.push_str(&format!(" ({} failed)", g.failed.len()));
                }
                if !g.diverged.is_empty() {
                    seeds.push_str(&format!(" ({} diverged, not in the mean)", g.diverged.len()));
                }
                if !g.duplicate_seeds.is_empty() {
                    seeds.push_str(&format!(" (seeds {:?} twice: label the runs apart)", g.duplicate_seeds));
                }
                if !g.incomplete.is_empty() {
                    seeds.push_str(&format!(" ({} not complete)", g.incomplete.len()));
                }
                text.push_str(&format!(
                    " {} | {} | {} | {} |\n",
                    g.final_average_accuracy.show(4),
                    g.forgetting.show(4),
                    g.wall_time_s.show(1),
                    seeds
                ));
            }
        }
        text
    }

    /// Writes `aggregate.md`, `aggregate.json` and the comparison picture (`aggregate.png`,
    /// `aggregate.svg`) into `out`; returns the paths written.
    pub fn write(&self, out: &Path) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(out).map_err(CliError::io(out))?;
        let md = out.join("aggregate.md");
        std::fs::write(&md, format!("# Mean ± std over seeds: {}\n{}", self.dir.display(), self.markdown()))
            .map_err(CliError::io(&md))?;
        let json = out.join("aggregate.json");
        write_json(&json, self)?;
        let mut written = vec![md, json];
        let summaries: Vec<StrategySummary> = self
            .groups
            .iter()
            .filter(|g| g.final_average_accuracy.mean.is_some())
            .map(|g| StrategySummary {
                benchmark: g.benchmark.clone(),
                strategy: g.strategy.clone(),
                hyperparameters: (!g.other.is_empty())
                    .then(|| g.other.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")),
                final_average_accuracy: g.final_average_accuracy.mean,
                forgetting: g.forgetting.mean,
                error: None,
            })
            .collect();
        if !summaries.is_empty() {
            let pictures = cl::report::render_strategy_comparison(
                &summaries,
                "Final average accuracy and forgetting (mean over seeds)",
                &out.join("aggregate"),
            )?;
            written.extend([pictures.png, pictures.svg]);
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_is_the_sample_mean_and_std() {
        let s = Stat::of(vec![1.0, 2.0, 3.0]);
        assert_eq!(s.mean, Some(2.0));
        assert_eq!(s.std, Some(1.0));
        assert_eq!(s.show(2), "2.00 ± 1.00");
        assert_eq!(Stat::of(vec![0.5]).show(2), "0.50");
        assert_eq!(Stat::of(vec![]).show(2), "—");
    }
}
