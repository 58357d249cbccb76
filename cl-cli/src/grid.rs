//! [`Grid`]: a base spec and axes that expand into runs (seeds × strategies × benchmarks ×
//! hyper-parameter values), each with a stable id.
//!
//! ```toml
//! base = "quickstart.toml"   # a spec file, relative to the grid (optional)
//! seeds = [1, 2, 3]          # the innermost axis
//!
//! [spec]                     # merged into the base (or the whole base spec)
//! protocol = { train_epochs = 1, train_mb_size = 128 }
//!
//! [[axis]]                   # alternatives given as sections, each merged into the base
//! name = "strategy"
//! values = [
//!   { label = "Naive", strategy = { name = "naive" } },
//!   { label = "EWC", strategy = { name = "ewc", config = { ewc_lambda = 50.0 } } },
//! ]
//!
//! [[axis]]                   # or values of one key, given by its dotted path
//! name = "lr"
//! key = "optimizer.lr"
//! values = [0.01, 0.1]
//! ```
//!
//! Sections merge key by key into the base (`protocol = { train_epochs = 5 }` keeps the base's
//! batch sizes), except a table with a `name` or a `type` — a strategy, a model, a benchmark, an
//! optimizer, a plugin — which replaces the base's whole (its fields belong to its kind). A string
//! `"${seed}"` anywhere in the spec becomes the run's seed (e.g. GDumb's
//! `config = { mem_size = 500, seed = "${seed}" }`).
//!
//! The runs are the cartesian product of the axes, the first axis outermost and the seeds
//! innermost. Each run's labels hold one entry per axis (`strategy = "EWC"`, `lr = "0.01"`):
//! `cl aggregate` groups runs by them, over seeds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::error::{CliError, Result};
use crate::spec::{Format, RunSpec, parse_as, read_text, spec_from_value};

/// A grid file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct GridFile {
    /// A spec file the grid starts from, relative to the grid file.
    #[serde(default)]
    base: Option<PathBuf>,
    /// Sections of the spec (replacing the base's).
    #[serde(default)]
    spec: Option<serde_json::Map<String, Value>>,
    /// The seeds (the innermost axis).
    #[serde(default)]
    seeds: Option<Vec<u64>>,
    /// The axes, outermost first.
    #[serde(default)]
    axis: Vec<Axis>,
}

/// One axis of a grid.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Axis {
    /// The axis' name: the label key of its values (`strategy`, `benchmark`, `lr`).
    name: String,
    /// The dotted path of the key the values are put at; without it, each value is a table of
    /// spec sections (plus its `label`).
    #[serde(default)]
    key: Option<String>,
    /// The values.
    values: Vec<Value>,
    /// Labels of the values of a keyed axis (default: the values as written).
    #[serde(default)]
    labels: Option<Vec<String>>,
}

/// One run of a grid.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRun {
    /// Its id ([`RunSpec::id`]): its directory's name.
    pub id: String,
    /// The resolved spec.
    pub spec: RunSpec,
}

/// A grid, expanded.
#[derive(Debug, Clone)]
pub struct Grid {
    /// The grid file.
    pub path: PathBuf,
    /// The runs in expansion order.
    pub runs: Vec<PlannedRun>,
}

/// Whether the file at `path` (already parsed into `value`) is a grid rather than a spec: it has
/// `axis`, `seeds`, `base` or `spec` at its top level.
pub fn is_grid(value: &Value) -> bool {
    value.as_object().is_some_and(|m| ["axis", "seeds", "base", "spec"].iter().any(|k| m.contains_key(*k)))
}

impl Grid {
    /// Reads and expands a grid file; every run's spec is validated.
    pub fn load(path: &Path) -> Result<Self> {
        let text = read_text(path)?;
        let file: GridFile = parse_as(&text, Format::of(path), path)?;
        let grid_error = |message: String| CliError::Grid { path: path.to_path_buf(), message };

        let mut base = serde_json::Map::new();
        if let Some(base_path) = &file.base {
            let full = path.parent().unwrap_or(Path::new(".")).join(base_path);
            let value: Value = parse_as(&read_text(&full)?, Format::of(&full), &full)?;
            match value {
                Value::Object(map) => base = map,
                _ => return Err(grid_error(format!("base {} is not a table of spec sections", full.display()))),
            }
        }
        let mut base = Value::Object(base);
        merge(&mut base, Value::Object(file.spec.clone().unwrap_or_default()));
        let Value::Object(base) = base else { unreachable!("merging a table into a table gives a table") };

        // Each axis as a list of (label, how it changes the spec).
        let mut axes: Vec<(String, Vec<(String, Change)>)> = Vec::new();
        for (a, axis) in file.axis.iter().enumerate() {
            if axis.name.trim().is_empty() {
                return Err(grid_error(format!("axis {} has no name: give it one (it labels its values)", a + 1)));
            }
            if axis.name == "seed" {
                return Err(grid_error("an axis named `seed`: list the seeds in `seeds = [...]` instead".into()));
            }
            if axes.iter().any(|(n, _)| *n == axis.name) {
                return Err(grid_error(format!("two axes are named `{}`: give them different names", axis.name)));
            }
            if axis.values.is_empty() {
                return Err(grid_error(format!(
                    "axis `{}` has no values, so the grid expands to zero runs: give it at least one value",
                    axis.name
                )));
            }
            if let Some(labels) = &axis.labels
                && labels.len() != axis.values.len()
            {
                return Err(grid_error(format!(
                    "axis `{}` has {} values but {} labels: give one label per value",
                    axis.name,
                    axis.values.len(),
                    labels.len()
                )));
            }
            let mut choices = Vec::new();
            for (v, value) in axis.values.iter().enumerate() {
                let choice = match &axis.key {
                    Some(key) => {
                        let label = axis.labels.as_ref().map(|l| l[v].clone()).unwrap_or_else(|| display_value(value));
                        (label, Change::At(key.clone(), value.clone()))
                    }
                    None => {
                        let Value::Object(mut sections) = value.clone() else {
                            return Err(grid_error(format!(
                                "axis `{}` value {}: without `key`, each value is a table of spec sections \
                                 (e.g. {{ label = \"EWC\", strategy = {{ name = \"ewc\" }} }}); or give the axis \
                                 a `key` such as \"optimizer.lr\"",
                                axis.name,
                                v + 1
                            )));
                        };
                        let label = match sections.remove("label") {
                            Some(Value::String(s)) => s,
                            Some(other) => display_value(&other),
                            None => match axis.labels.as_ref() {
                                Some(labels) => labels[v].clone(),
                                None => default_label(&sections).ok_or_else(|| {
                                    grid_error(format!(
                                        "axis `{}` value {} has no label: add `label = \"...\"` to it",
                                        axis.name,
                                        v + 1
                                    ))
                                })?,
                            },
                        };
                        (label, Change::Sections(sections))
                    }
                };
                choices.push(choice);
            }
            let mut seen = std::collections::BTreeSet::new();
            if let Some((dup, _)) = choices.iter().find(|(l, _)| !seen.insert(l.clone())) {
                return Err(grid_error(format!(
                    "axis `{}` has the label `{dup}` twice: give its values different labels",
                    axis.name
                )));
            }
            axes.push((axis.name.clone(), choices));
        }
        let seeds: Vec<Option<u64>> = match &file.seeds {
            Some(s) if s.is_empty() => {
                return Err(grid_error("`seeds` is empty, so the grid expands to zero runs: list at least one".into()));
            }
            Some(s) => s.iter().copied().map(Some).collect(),
            None => vec![None],
        };

        // The cartesian product, first axis outermost, seeds innermost.
        let mut combos: Vec<Vec<usize>> = vec![Vec::new()];
        for (_, choices) in &axes {
            combos = combos
                .into_iter()
                .flat_map(|c| (0..choices.len()).map(move |i| [c.clone(), vec![i]].concat()))
                .collect();
        }
        let mut runs = Vec::new();
        let mut ids: BTreeMap<String, String> = BTreeMap::new();
        for combo in &combos {
            for seed in &seeds {
                let mut spec = Value::Object(base.clone());
                let mut labels = serde_json::Map::new();
                if let Some(Value::Object(given)) = spec.get("labels") {
                    labels = given.clone();
                }
                let mut described = Vec::new();
                for ((name, choices), &i) in axes.iter().zip(combo) {
                    let (label, change) = &choices[i];
                    change.apply(&mut spec).map_err(|m| grid_error(format!("axis `{name}` value `{label}`: {m}")))?;
                    labels.insert(name.clone(), Value::String(label.clone()));
                    described.push(format!("{name}={label}"));
                }
                if let Some(seed) = seed {
                    spec["seed"] = Value::from(*seed);
                    described.push(format!("seed={seed}"));
                }
                spec["labels"] = Value::Object(labels);
                let run_name = if described.is_empty() { "the only run".to_string() } else { described.join(", ") };
                let spec = spec_from_value(spec, path, Some(&text), &run_name)?;
                let id = spec.id();
                if let Some(other) = ids.insert(id.clone(), run_name.clone()) {
                    return Err(grid_error(format!(
                        "the runs `{other}` and `{run_name}` are the same run (id {id}): remove one of the values \
                         (labels alone do not make runs different)"
                    )));
                }
                runs.push(PlannedRun { id, spec });
            }
        }
        if runs.is_empty() {
            return Err(grid_error("the grid expands to zero runs".into()));
        }
        Ok(Self { path: path.to_path_buf(), runs })
    }
}

/// How an axis value changes the spec.
#[derive(Debug, Clone)]
enum Change {
    /// A value at a dotted key path (objects created on the way).
    At(String, Value),
    /// Whole sections replacing the base's.
    Sections(serde_json::Map<String, Value>),
}

impl Change {
    fn apply(&self, spec: &mut Value) -> std::result::Result<(), String> {
        match self {
            Self::Sections(sections) => {
                merge(spec, Value::Object(sections.clone()));
                Ok(())
            }
            Self::At(key, value) => {
                let parts: Vec<&str> = key.split('.').collect();
                if parts.iter().any(|p| p.is_empty()) {
                    return Err(format!("the key `{key}` has an empty part: write it as `section.key`"));
                }
                let mut at = spec;
                for (k, part) in parts.iter().enumerate() {
                    let Value::Object(map) = at else {
                        return Err(format!("`{}` is not a table, so `{key}` cannot be set", parts[..k].join(".")));
                    };
                    if k + 1 == parts.len() {
                        map.insert(part.to_string(), value.clone());
                        return Ok(());
                    }
                    at = map.entry(part.to_string()).or_insert_with(|| Value::Object(Default::default()));
                }
                Ok(())
            }
        }
    }
}

/// Merges `over` into `base`: tables key by key, except a table with a `name` or a `type` (a
/// strategy, a model, a benchmark, an optimizer, a plugin), which replaces the base's whole;
/// anything else (numbers, strings, lists) replaces.
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) if !o.contains_key("name") && !o.contains_key("type") => {
            for (key, value) in o {
                match b.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        b.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

/// A value as a label: strings without quotes, others as JSON.
fn display_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The label of a value table of one section with a `name` or `type` (`strategy = { name =
/// "ewc" }` → `ewc`).
fn default_label(sections: &serde_json::Map<String, Value>) -> Option<String> {
    if sections.len() != 1 {
        return None;
    }
    let section = sections.values().next()?;
    section.get("name").or_else(|| section.get("type")).and_then(Value::as_str).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    const BASE: &str = r#"
[benchmark]
type = "split_fmnist"
n_experiences = 5
[model]
type = "simple_mlp"
[strategy]
name = "naive"
[optimizer]
type = "sgd"
lr = 0.01
[protocol]
train_epochs = 3
"#;

    #[test]
    fn a_grid_expands_into_the_product_with_labels_and_distinct_stable_ids() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "base.toml", BASE);
        let grid = write(
            dir.path(),
            "grid.toml",
            r#"
base = "base.toml"
seeds = [1, 2]
[spec]
protocol = { train_mb_size = 64 }
[[axis]]
name = "strategy"
values = [
  { label = "Naive", strategy = { name = "naive" } },
  { strategy = { name = "replay", config = { mem_size = 50 } } },
  { label = "GDumb", strategy = { name = "gdumb", config = { mem_size = 50, seed = "${seed}" } } },
]
[[axis]]
name = "lr"
key = "optimizer.lr"
values = [0.01, 0.1]
"#,
        );
        let g = Grid::load(&grid).unwrap();
        assert_eq!(g.runs.len(), 12);
        let first = &g.runs[0].spec;
        assert_eq!(first.labels["strategy"], "Naive");
        assert_eq!(first.labels["lr"], "0.01");
        assert_eq!(first.seed, 1);
        // `[spec]` merges into the base's sections: the base's epochs stay.
        assert_eq!((first.protocol.train_mb_size, first.protocol.train_epochs), (64, 3));
        assert_eq!(g.runs[1].spec.seed, 2);
        assert_eq!(g.runs[2].spec.optimizer.learning_rate(), 0.1);
        assert_eq!(g.runs[4].spec.labels["strategy"], "replay");
        let ids: std::collections::BTreeSet<_> = g.runs.iter().map(|r| r.id.clone()).collect();
        assert_eq!(ids.len(), 12);
        match &g.runs[9].spec.strategy {
            cl::strategies::StrategyConfig::GDumb(c) => assert_eq!((c.seed, g.runs[9].spec.seed), (2, 2)),
            other => panic!("{other:?}"),
        }
        assert!(g.runs[0].id.starts_with("split_fmnist-Naive-seed1-"), "{}", g.runs[0].id);
        // Stable: the same file gives the same ids.
        assert_eq!(Grid::load(&grid).unwrap().runs, g.runs);
    }

    #[test]
    fn bad_grids_are_errors_that_say_why() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "base.toml", BASE);
        let cases = [
            ("base = \"base.toml\"\nseeds = []\n", "zero runs"),
            ("base = \"base.toml\"\n[[axis]]\nname = \"lr\"\nkey = \"optimizer.lr\"\nvalues = []\n", "zero runs"),
            ("base = \"base.toml\"\n[[axis]]\nname = \"lr\"\nkey = \"optimizer.lr\"\nvalues = [0.1, 0.1]\n", "twice"),
            (
                "base = \"base.toml\"\n[[axis]]\nname = \"lr\"\nkey = \"optimizer.lr\"\nvalues = [0.1, 0.1]\nlabels = [\"a\", \"b\"]\n",
                "same run",
            ),
            (
                "base = \"base.toml\"\n[[axis]]\nname = \"s\"\nvalues = [{ label = \"x\", strategy = { name = \"nope\" } }]\n",
                "nope",
            ),
            ("base = \"base.toml\"\n[[axis]]\nname = \"lr\"\nkey = \"optimizer.lrr\"\nvalues = [0.1]\n", "lrr"),
            ("base = \"base.toml\"\naxes = 1\n", "axes"),
            ("base = \"missing.toml\"\n", "missing.toml"),
        ];
        for (text, expected) in cases {
            let path = write(dir.path(), "grid.toml", text);
            let err = Grid::load(&path).unwrap_err().to_string();
            assert!(
                err.contains(expected) && err.contains("grid.toml") || err.contains("missing.toml"),
                "{text}\n=> {err}"
            );
        }
    }
}
