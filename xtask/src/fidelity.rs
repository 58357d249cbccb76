//! `cargo xtask fidelity`: `cl`'s side of the comparisons with Avalanche 0.6, on the real data,
//! next to Avalanche's own numbers when a results file of `scripts/avalanche_fidelity.py` is
//! given. A later change that moves a strategy away from Avalanche shows in its table.
//!
//! The protocol is the script's: PermutedFMNIST and class-incremental SplitFMNIST, 5
//! experiences, SimpleMlp (weights from the seed), SGD(lr 0.01, momentum 0.9), batch 128, eval
//! batch 1000, 1 epoch per experience, the whole test stream evaluated after each experience.
//! With `--avalanche FILE`, each seed runs on the tasks Avalanche drew for it: the pixel
//! permutations of its `PermutedMNIST` and the class order of its `SplitFMNIST` (without it,
//! `cl`'s own seeded ones, so the numbers compare in distribution only). Forgetting is computed
//! from each side's accuracy matrix in the same way ([`AccuracyMatrix::forgetting`], Avalanche's
//! `StreamForgetting`). With `--fisher`, EWC's importance after the first experience is
//! summarised per parameter tensor (mean, max) and set against Avalanche's.
//!
//! Writes `target/fidelity/fidelity.json` (every run, the summary, provenance) and
//! `target/fidelity/fidelity.md` (the tables).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cl::benchmarks::classic::{Permutations, TransformedMnistConfig, permuted_fmnist};
use cl::benchmarks::{OnlineStreamConfig, SplitConfig, online_split_seed, split_online_experience};
use cl::core::evaluation::{AccuracyMatrix, MetricName};
use cl::models::{ColumnPolicy, FlattenConfig, LatentCnnConfig, PnnConfig};
use cl::plugins::regularization::{EwcConfig, EwcPlugin, MasConfig, RWalkConfig, SynapticIntelligenceConfig};
use cl::plugins::{CwrStarConfig, GssGreedyConfig, LflConfig, MirConfig, ReplayConfig, ScoringGradient};
use cl::prelude::*;
use cl::strategies::{
    Ar1Config, BicConfig, CopeConfig, DerConfig, ErAceConfig, ErAmlConfig, GenerativeReplayConfig, IcarlConfig,
    LaMamlConfig, NaiveConfig, PackNetConfig, PnnStrategyConfig, PruneProportion, ReplayLabels, ScrConfig,
    StrategyConfig, StreamingLdaConfig,
};
use serde::{Deserialize, Serialize};

use crate::bench::{BenchError, metric};
use crate::provenance::Provenance;
use crate::strategies::{ONLINE_EXPERIENCE_SIZE, ONLINE_MB, PACKNET_EPOCHS, RWALK_ALPHA_DELTA_T, SCR_PROJECTION};

/// The runs of the fidelity table, `<benchmark>/<strategy>` (the script's default list).
pub const DEFAULT_RUNS: [&str; 29] = [
    "PermutedFMNIST/naive",
    "PermutedFMNIST/ewc:10",
    "PermutedFMNIST/ewc:100",
    "PermutedFMNIST/ewc:1000",
    "PermutedFMNIST/mas:0.1",
    "PermutedFMNIST/mas:1",
    "PermutedFMNIST/si:1",
    "PermutedFMNIST/rwalk:10",
    "PermutedFMNIST/cwr",
    "SplitFMNIST/naive",
    "SplitFMNIST/si:1",
    "SplitFMNIST/cwr",
    "SplitFMNIST/lfl:1",
    "SplitFMNIST/der:500",
    "SplitFMNIST/er_ace:500",
    "SplitFMNIST/mir:500",
    "SplitFMNIST/er_aml:2000",
    "SplitFMNIST/scr:500",
    "SplitFMNIST/bic:500",
    "SplitFMNIST/slda:0.0001",
    "SplitFMNIST/icarl:2000",
    "SplitFMNIST/gss:1000",
    "SplitFMNIST/ar1:1500",
    "SplitFMNIST-online/naive",
    "SplitFMNIST-online/er_ace:500",
    "SplitFMNIST-online/scr:500",
    "SplitFMNIST-online/cope:500",
    "SplitFMNIST-task/packnet:0.5",
    "SplitFMNIST-task/pnn",
];
const N_EXPERIENCES: usize = 5;
const LR: f64 = 0.01;
const MOMENTUM: f64 = 0.9;
const TRAIN_MB: usize = 128;
/// CoPE's embedding width (Avalanche's default `p_size`): SimpleMlp's output width for CoPE.
const COPE_P_SIZE: usize = 100;
/// AR1's learning rates (first experience, later ones) and epochs per experience (its own
/// optimizer: SGD, momentum 0.9, weight decay 0.0005; batch 128).
const AR1_LR_INC_LR_EPOCHS: (f64, f64, usize) = (0.001, 5e-5, 4);
const EVAL_MB: usize = 1000;
const MAS_ALPHA: f64 = 0.5;
/// MIR's subsample and replayed samples per iteration in the comparison.
const MIR_SUBSAMPLE_BATCH: (usize, usize) = (50, 10);
/// PackNet's epochs after pruning in the comparison (of [`PACKNET_EPOCHS`] per experience).
pub const PACKNET_POST_PRUNE_EPOCHS: usize = 1;
/// Final accuracy at or below which a run counts as diverged (chance is 0.10).
const DIVERGED_BELOW: f64 = 0.15;
/// The agreement the fidelity target asks for, in accuracy points.
const TARGET_POINTS: f64 = 1.5;

/// The usage of `fidelity`, part of `cargo xtask --help`.
pub const USAGE: &str = "\
fidelity options:
  --avalanche FILE  results of scripts/avalanche_fidelity.py: its numbers go next to cl's, and
                    each seed runs on the permutations and class order Avalanche drew for it
                    (may be given several times: the files' runs are merged)
  --seeds LIST      comma-separated seeds (default 1,2,3)
  --runs LIST       comma-separated <benchmark>/<strategy>: benchmark PermutedFMNIST,
                    SplitFMNIST, SplitFMNIST-online or SplitFMNIST-task (task labels); strategy
                    naive, ewc:<lambda>, mas:<lambda>, si:<lambda>, rwalk:<lambda>, lfl:<lambda>, cwr,
                    der:<mem>, er_ace:<mem>, er_aml:<mem>, mir:<mem>, replay:<mem>, scr:<mem>, bic:<mem>,
                    lamaml:<mem>, generative_replay, packnet:<proportion>, slda:<shrinkage>, icarl:<mem>, pnn, pnn:training,
                    gss:<mem> (Avalanche's scoring gradient), gss:<mem>:discard, cope:<mem> (Avalanche's
                    skipped sub-experiences), cope:<mem>:every, ar1:<rm_sz> (Avalanche's replay
                    labels), ar1:<rm_sz>:own
                    (default: every run of the README's table)
  --fisher          also compare EWC's Fisher after the first experience, per parameter tensor
  --data-dir DIR    directory holding the four Fashion-MNIST IDX files (default: searched for)
  --reuse FILE      an earlier target/fidelity/fidelity.json: its cl runs (same run, seed and
                    tasks) are kept instead of run again";

/// Options of `fidelity`.
#[derive(Debug, Clone, PartialEq)]
pub struct FidelityOptions {
    /// The Avalanche results files (their runs merged).
    pub avalanche: Vec<PathBuf>,
    /// The seeds.
    pub seeds: Vec<u64>,
    /// The runs.
    pub runs: Vec<RunSpec>,
    /// Compare EWC's Fisher after the first experience.
    pub fisher: bool,
    /// Directory of the Fashion-MNIST files.
    pub data_dir: Option<PathBuf>,
    /// An earlier `fidelity.json` whose cl runs are kept (not run again).
    pub reuse: Option<PathBuf>,
}

impl Default for FidelityOptions {
    fn default() -> Self {
        Self {
            avalanche: Vec::new(),
            seeds: vec![1, 2, 3],
            runs: DEFAULT_RUNS.iter().map(|r| r.parse().expect("the default runs parse")).collect(),
            fisher: false,
            data_dir: None,
            reuse: None,
        }
    }
}

/// A benchmark of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Bench {
    /// PermutedFMNIST (5 experiences, domain-incremental).
    PermutedFMNIST,
    /// SplitFMNIST (5 experiences, class-incremental).
    SplitFMNIST,
    /// SplitFMNIST on the online protocol: each experience cut into sub-experiences of
    /// [`ONLINE_EXPERIENCE_SIZE`] samples trained on in one call, mini-batches of
    /// [`ONLINE_MB`], evaluation at the experience boundaries (Avalanche's
    /// `examples/online_replay.py`).
    #[serde(rename = "SplitFMNIST-online")]
    SplitFMNISTOnline,
    /// Task-incremental SplitFMNIST (Avalanche's `SplitFMNIST(return_task_id=True)`): the
    /// class-incremental tasks with task label `i` on experience `i`, original class labels,
    /// one 10-unit head; accuracy of test experience `i` is read under task `i`.
    #[serde(rename = "SplitFMNIST-task")]
    SplitFMNISTTask,
}

impl Bench {
    /// The name in run names (`SplitFMNIST-online/naive`) and the script's records.
    pub fn name(self) -> &'static str {
        match self {
            Bench::PermutedFMNIST => "PermutedFMNIST",
            Bench::SplitFMNIST => "SplitFMNIST",
            Bench::SplitFMNISTOnline => "SplitFMNIST-online",
            Bench::SplitFMNISTTask => "SplitFMNIST-task",
        }
    }

    /// The benchmark whose tasks (class order, permutations) this one trains on.
    fn tasks(self) -> Bench {
        match self {
            Bench::SplitFMNISTOnline | Bench::SplitFMNISTTask => Bench::SplitFMNIST,
            b => b,
        }
    }
}

/// A strategy of the comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    /// Naive fine-tuning.
    Naive,
    /// EWC (separate mode) with this λ.
    Ewc(f64),
    /// MAS with this λ (α 0.5).
    Mas(f64),
    /// Synaptic Intelligence with this λ and its other defaults (importances floored at 0).
    Si(f64),
    /// LFL with this λ_e, in Avalanche's mode (evaluation mode once the penalty applies).
    Lfl(f64),
    /// RWalk with this λ, α 0.9, Δt 10, in Avalanche's mode (evaluation mode from the first
    /// gradient pass of each experience).
    RWalk(f64),
    /// CWR* on the classifier, the rest frozen from the second experience.
    Cwr,
    /// DER++ with this memory size and Avalanche's other defaults (α 0.1, β 0.5, memory batch =
    /// train_mb_size).
    Der(usize),
    /// ER-ACE with this memory size and Avalanche's other defaults (memory batch 10).
    ErAce(usize),
    /// ER-AML with this memory size and Avalanche's other defaults (memory batch 10,
    /// temperatures 0.1 / 0.07).
    ErAml(usize),
    /// Replay (Avalanche's `ReplayPlugin(mem_size)`: experience-balanced memory, memory batch =
    /// train_mb_size).
    Replay(usize),
    /// SCR with this memory size and Avalanche's other defaults (memory batch 100, temperature
    /// 0.1, identity augmentation), on [`SimpleMlpConfig::init_scr`]`(SCR_PROJECTION)`.
    Scr(usize),
    /// MIR with this memory size, subsample 50 and 10 replayed samples per iteration.
    Mir(usize),
    /// BiC with this memory size and Avalanche's other defaults (10 % held out, 200 stage-2
    /// epochs at lr 0.1, λ = old / all classes).
    Bic(usize),
    /// LaMAML (first order) with a reservoir of this size and Avalanche's other defaults.
    LaMaml(usize),
    /// Generative replay with Avalanche's default VAE generator.
    GenerativeReplay,
    /// PackNet pruning this proportion per task, [`PACKNET_EPOCHS`] epochs per experience of
    /// which the last [`PACKNET_POST_PRUNE_EPOCHS`] after pruning.
    PackNet(f64),
    /// Streaming LDA with this shrinkage on the normalised pixels ([`cl::models::Flatten`] as
    /// the feature extractor, 10 classes, streaming covariance): no training of a network.
    Slda(f64),
    /// iCaRL with this fixed memory and Avalanche's other defaults (no buffer transform,
    /// teacher in training mode) on SimpleMLP (its hidden layers are the feature extractor).
    Icarl(usize),
    /// PNNStrategy on a PNN with Avalanche's defaults (1 layer, 100 hidden units per column, MLP
    /// adapters) and this column policy: `pnn` is Avalanche's (columns added at evaluation too),
    /// `pnn:training` cl's default.
    Pnn(ColumnPolicy),
    /// GSS-greedy with this memory and Avalanche's other defaults (mem_strength 1, 32 replayed
    /// per mini-batch, input_size [1, 28, 28]) and this scoring gradient: `gss:<mem>` is
    /// Avalanche's (the last scoring gradient joins the update), `gss:<mem>:discard` cl's
    /// default.
    Gss(usize, ScoringGradient),
    /// CoPE with this memory and Avalanche's other defaults (10 classes, alpha 0.99, T 0.1, one
    /// iteration per experience) on SimpleMlp with [`COPE_P_SIZE`] outputs (the embedding), and
    /// whether the sub-experience after a stopped one is skipped: `cope:<mem>` is Avalanche's
    /// (skipped, its template's carried-over stop flag), `cope:<mem>:every` cl's default.
    Cope(usize, bool),
    /// AR1 with this latent memory, Avalanche's other defaults and the learning rates and
    /// epochs of [`AR1_LR_INC_LR_EPOCHS`], on [`LatentCnnConfig`]'s default network; the replay
    /// labels: `ar1:<rm_sz>` Avalanche's (dataset order), `ar1:<rm_sz>:own` cl's default.
    Ar1(usize, ReplayLabels),
}

/// One `<benchmark>/<strategy>` of the comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    /// The benchmark.
    pub bench: Bench,
    /// The strategy.
    pub method: Method,
    /// The text it was parsed from (the key shared with the script's records).
    pub name: String,
}

impl std::str::FromStr for RunSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (bench, strategy) = s
            .split_once('/')
            .ok_or_else(|| format!("run `{s}`: write <benchmark>/<strategy>, e.g. PermutedFMNIST/ewc:100"))?;
        let bench = match bench {
            "PermutedFMNIST" => Bench::PermutedFMNIST,
            "SplitFMNIST" => Bench::SplitFMNIST,
            "SplitFMNIST-online" => Bench::SplitFMNISTOnline,
            "SplitFMNIST-task" => Bench::SplitFMNISTTask,
            other => {
                return Err(format!(
                    "run `{s}`: unknown benchmark `{other}` (PermutedFMNIST, SplitFMNIST, SplitFMNIST-online, \
                     SplitFMNIST-task)"
                ));
            }
        };
        let (name, value) = strategy.split_once(':').map_or((strategy, None), |(n, v)| (n, Some(v)));
        let lambda = |v: Option<&str>| -> Result<f64, String> {
            let v = v.ok_or_else(|| format!("run `{s}`: give λ, e.g. {name}:100"))?;
            match v.parse::<f64>() {
                Ok(l) if l.is_finite() && l >= 0.0 => Ok(l),
                _ => Err(format!("run `{s}`: λ `{v}` is not a non-negative number")),
            }
        };
        let mem = |v: Option<&str>| -> Result<usize, String> {
            let v = v.ok_or_else(|| format!("run `{s}`: give the memory size, e.g. {name}:500"))?;
            match v.parse::<usize>() {
                Ok(m) if m > 0 => Ok(m),
                _ => Err(format!("run `{s}`: memory size `{v}` is not a positive integer")),
            }
        };
        let method = match (name, value) {
            ("naive", None) => Method::Naive,
            ("cwr", None) => Method::Cwr,
            ("generative_replay", None) => Method::GenerativeReplay,
            ("pnn", None) => Method::Pnn(ColumnPolicy::Avalanche),
            ("pnn", Some("training")) => Method::Pnn(ColumnPolicy::Training),
            ("ewc", v) => Method::Ewc(lambda(v)?),
            ("mas", v) => Method::Mas(lambda(v)?),
            ("si", v) => Method::Si(lambda(v)?),
            ("lfl", v) => Method::Lfl(lambda(v)?),
            ("rwalk", v) => Method::RWalk(lambda(v)?),
            ("der", v) => Method::Der(mem(v)?),
            ("er_ace", v) => Method::ErAce(mem(v)?),
            ("er_aml", v) => Method::ErAml(mem(v)?),
            ("replay", v) => Method::Replay(mem(v)?),
            ("scr", v) => Method::Scr(mem(v)?),
            ("mir", v) => Method::Mir(mem(v)?),
            ("bic", v) => Method::Bic(mem(v)?),
            ("lamaml", v) => Method::LaMaml(mem(v)?),
            ("icarl", v) => Method::Icarl(mem(v)?),
            ("gss", Some(v)) if v.ends_with(":discard") => {
                Method::Gss(mem(v.strip_suffix(":discard"))?, ScoringGradient::Discard)
            }
            ("gss", v) => Method::Gss(mem(v)?, ScoringGradient::AddToStep),
            ("cope", Some(v)) if v.ends_with(":every") => Method::Cope(mem(v.strip_suffix(":every"))?, false),
            ("cope", v) => Method::Cope(mem(v)?, true),
            ("ar1", Some(v)) if v.ends_with(":own") => Method::Ar1(mem(v.strip_suffix(":own"))?, ReplayLabels::Own),
            ("ar1", v) => Method::Ar1(mem(v)?, ReplayLabels::DatasetOrder),
            ("slda", v) => {
                let v = v.ok_or_else(|| format!("run `{s}`: give the shrinkage, e.g. slda:0.0001"))?;
                match v.parse::<f64>() {
                    Ok(p) if p > 0.0 && p <= 1.0 => Method::Slda(p),
                    _ => return Err(format!("run `{s}`: shrinkage `{v}` is not a number in (0, 1]")),
                }
            }
            ("packnet", v) => {
                let v = v.ok_or_else(|| format!("run `{s}`: give the proportion pruned, e.g. packnet:0.5"))?;
                match v.parse::<f64>() {
                    Ok(p) if (0.0..=1.0).contains(&p) => Method::PackNet(p),
                    _ => return Err(format!("run `{s}`: proportion `{v}` is not a number in [0, 1]")),
                }
            }
            _ => {
                return Err(format!(
                    "run `{s}`: unknown strategy `{strategy}` (naive, ewc:<λ>, mas:<λ>, si:<λ>, rwalk:<λ>, lfl:<λ>, cwr, der:<mem>, \
                     er_ace:<mem>, er_aml:<mem>, mir:<mem>, bic:<mem>, lamaml:<mem>, generative_replay, packnet:<proportion>, replay:<mem>, scr:<mem>, slda:<shrinkage>, icarl:<mem>, pnn, pnn:training, gss:<mem>, gss:<mem>:discard, cope:<mem>, cope:<mem>:every, ar1:<rm_sz>, ar1:<rm_sz>:own)"
                ));
            }
        };
        Ok(Self { bench, method, name: s.to_string() })
    }
}

/// Parses the options of `fidelity` (`--flag value` or `--flag=value`); `Ok(None)` for `--help`.
pub fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<FidelityOptions>, String> {
    let mut o = FidelityOptions::default();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--fisher" => {
                o.fisher = true;
                continue;
            }
            _ => {}
        }
        let (flag, value) = crate::option_value(
            &arg,
            &["--avalanche", "--seeds", "--runs", "--data-dir", "--reuse"],
            "fidelity",
            &mut it,
        )?;
        match flag.as_str() {
            "--avalanche" => o.avalanche.push(PathBuf::from(value)),
            "--seeds" => {
                o.seeds = value
                    .split(',')
                    .map(|s| s.trim().parse::<u64>().map_err(|e| format!("--seeds `{s}`: {e}")))
                    .collect::<Result<Vec<u64>, _>>()?;
                let mut seen = std::collections::BTreeSet::new();
                o.seeds.retain(|s| seen.insert(*s));
            }
            "--runs" => o.runs = value.split(',').map(str::parse).collect::<Result<_, _>>()?,
            "--reuse" => o.reuse = Some(PathBuf::from(value)),
            _ => o.data_dir = Some(PathBuf::from(value)),
        }
    }
    Ok(Some(o))
}

/// One run of the script's results file (the fields read here).
#[derive(Debug, Clone, Deserialize)]
struct AvalancheRun {
    benchmark: Bench,
    strategy: String,
    seed: u64,
    final_accuracy: f64,
    accuracy_matrix: Vec<Vec<f64>>,
    #[serde(default)]
    permutations: Option<Vec<Vec<usize>>>,
    #[serde(default)]
    class_order: Option<Vec<u32>>,
    #[serde(default)]
    fisher_exp0: Option<BTreeMap<String, TensorStats>>,
}

/// The script's results file.
#[derive(Debug, Clone, Deserialize)]
struct AvalancheFile {
    avalanche_version: String,
    torch_version: String,
    runs: Vec<AvalancheRun>,
}

/// Mean and max of one importance tensor.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TensorStats {
    /// Mean over the tensor's values.
    pub mean: f64,
    /// Largest value.
    pub max: f64,
}

/// One side's outcome of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    /// Library (`cl` or `avalanche`).
    pub library: String,
    /// `<benchmark>/<strategy>`.
    pub run: String,
    /// The seed.
    pub seed: u64,
    /// Mean over test experiences after the last experience; `None` if the run failed.
    pub final_accuracy: Option<f64>,
    /// [`AccuracyMatrix::forgetting`] of the accuracy matrix.
    pub forgetting: Option<f64>,
    /// Accuracy on each test experience after each training experience.
    pub accuracy_matrix: Vec<Vec<f64>>,
    /// Why the run failed (cl: e.g. a non-finite loss).
    pub error: Option<String>,
    /// EWC's importance after the first experience, per tensor (Avalanche's names).
    pub fisher_exp0: Option<BTreeMap<String, TensorStats>>,
    /// Training plus evaluation, seconds (cl only).
    pub seconds: Option<f64>,
    /// Whose tasks the run trained on (cl only): Avalanche's permutations or class order, or
    /// cl's seeded ones.
    #[serde(default)]
    pub tasks: String,
}

impl Outcome {
    fn diverged(&self) -> bool {
        self.error.is_some() || self.final_accuracy.is_none_or(|a| a.is_nan() || a <= DIVERGED_BELOW)
    }
}

/// Mean and sample standard deviation.
fn mean_std(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    Some((mean, var.sqrt()))
}

/// Avalanche's name of a `cl` SimpleMlp parameter (`features.0.linear.weight` →
/// `features.0.weight`; the classifier's is the same).
fn avalanche_param_name(cl_name: &str) -> String {
    cl_name.replace(".linear.", ".")
}

/// The accuracy matrix as an [`AccuracyMatrix`] (for its forgetting).
fn forgetting_of(rows: &[Vec<f64>]) -> Option<f64> {
    let mut m = AccuracyMatrix::new(rows.first().map_or(0, Vec::len));
    for (i, row) in rows.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            m.set(i, j, *v);
        }
    }
    m.forgetting()
}

fn strategy_config(method: &Method) -> StrategyConfig {
    match method {
        Method::Naive => StrategyConfig::Naive(NaiveConfig::default()),
        Method::Ewc(l) => StrategyConfig::Ewc(EwcConfig::new(*l)),
        Method::Mas(l) => StrategyConfig::Mas(MasConfig::default().with_lambda_reg(*l).with_alpha(MAS_ALPHA)),
        Method::Si(l) => StrategyConfig::SynapticIntelligence(SynapticIntelligenceConfig::new(*l)),
        Method::Lfl(l) => StrategyConfig::Lfl(LflConfig::new(*l)),
        Method::RWalk(l) => StrategyConfig::RWalk(
            RWalkConfig::default()
                .with_ewc_lambda(*l)
                .with_ewc_alpha(RWALK_ALPHA_DELTA_T.0)
                .with_delta_t(RWALK_ALPHA_DELTA_T.1),
        ),
        Method::Cwr => StrategyConfig::CwrStar(CwrStarConfig::default().with_cwr_layer_name("classifier")),
        Method::Der(m) => StrategyConfig::Der(DerConfig::new(*m)),
        Method::ErAce(m) => StrategyConfig::ErAce(ErAceConfig::new(*m)),
        Method::ErAml(m) => StrategyConfig::ErAml(ErAmlConfig::new(*m)),
        Method::Replay(m) => StrategyConfig::Replay(ReplayConfig::new(*m)),
        Method::Scr(m) => StrategyConfig::Scr(ScrConfig::new(*m)),
        Method::Mir(m) => StrategyConfig::Mir(
            MirConfig::new(*m).with_subsample(MIR_SUBSAMPLE_BATCH.0).with_batch_size_mem(MIR_SUBSAMPLE_BATCH.1),
        ),
        Method::Bic(m) => StrategyConfig::Bic(BicConfig::new(*m)),
        Method::GenerativeReplay => StrategyConfig::GenerativeReplay(GenerativeReplayConfig::default()),
        Method::LaMaml(m) => StrategyConfig::LaMaml(LaMamlConfig::default().with_max_buffer_size(*m)),
        Method::PackNet(p) => {
            StrategyConfig::PackNet(PackNetConfig::new(PACKNET_POST_PRUNE_EPOCHS, PruneProportion::Constant(*p)))
        }
        Method::Slda(s) => StrategyConfig::StreamingLda(StreamingLdaConfig::new(10).with_shrinkage(*s)),
        Method::Icarl(m) => StrategyConfig::Icarl(IcarlConfig::new(*m)),
        Method::Pnn(_) => StrategyConfig::Pnn(PnnStrategyConfig::default()),
        Method::Cope(m, skip) => {
            StrategyConfig::Cope(CopeConfig::new(*m).with_p_size(COPE_P_SIZE).with_skip_after_stop(*skip))
        }
        Method::Ar1(m, labels) => StrategyConfig::Ar1(
            Ar1Config::new().with_rm_sz(*m).with_inc_lr(AR1_LR_INC_LR_EPOCHS.1).with_replay_labels(*labels),
        ),
        Method::Gss(m, scoring) => StrategyConfig::GssGreedy(
            GssGreedyConfig::new(*m).with_input_size(vec![1, 28, 28]).with_scoring_gradient(*scoring),
        ),
    }
}

/// Runs one spec with one seed on `benchmark`: the protocol of the module docs.
fn run_cl(spec: &RunSpec, seed: u64, benchmark: &Benchmark, fisher: bool) -> Outcome {
    let mut outcome = Outcome {
        library: "cl".into(),
        run: spec.name.clone(),
        seed,
        final_accuracy: None,
        forgetting: None,
        accuracy_matrix: Vec::new(),
        error: None,
        fisher_exp0: None,
        seconds: None,
        tasks: String::new(),
    };
    let start = Instant::now();
    let device = cl::default_device();
    let config = SimpleMlpConfig::new().with_num_classes(benchmark.n_classes).with_seed(Some(seed));
    let result = match spec.method {
        Method::Cope(..) => config
            .with_num_classes(COPE_P_SIZE)
            .init(&device)
            .map_err(BenchError::from)
            .and_then(|model| train_cl(spec, seed, benchmark, fisher, model, &mut outcome)),
        Method::Scr(_) => config
            .init_scr(SCR_PROJECTION, &device)
            .map_err(BenchError::from)
            .and_then(|model| train_cl(spec, seed, benchmark, fisher, model, &mut outcome)),
        Method::Pnn(policy) => PnnConfig::new()
            .with_columns(policy)
            .with_seed(seed)
            .init(&device)
            .map_err(BenchError::from)
            .and_then(|model| train_cl(spec, seed, benchmark, fisher, model, &mut outcome)),
        Method::Ar1(..) => LatentCnnConfig::new()
            .with_num_classes(benchmark.n_classes)
            .with_seed(seed)
            .init(&device)
            .map_err(BenchError::from)
            .and_then(|model| train_cl(spec, seed, benchmark, fisher, model, &mut outcome)),
        Method::Slda(_) => FlattenConfig::new(784)
            .init()
            .map_err(BenchError::from)
            .and_then(|model| train_cl(spec, seed, benchmark, fisher, model, &mut outcome)),
        _ => config
            .init(&device)
            .map_err(BenchError::from)
            .and_then(|model| train_cl(spec, seed, benchmark, fisher, model, &mut outcome)),
    };
    outcome.seconds = Some(start.elapsed().as_secs_f64());
    match result {
        Ok(()) => {
            let last = outcome.accuracy_matrix.last().cloned().unwrap_or_default();
            outcome.final_accuracy = Some(last.iter().sum::<f64>() / last.len().max(1) as f64);
            outcome.forgetting = forgetting_of(&outcome.accuracy_matrix);
        }
        Err(e) => outcome.error = Some(e.to_string()),
    }
    outcome
}

/// The protocol of the module docs for one run of `model`, filling `outcome`'s accuracy matrix
/// (and Fisher summary).
fn train_cl<M: Model>(
    spec: &RunSpec,
    seed: u64,
    benchmark: &Benchmark,
    fisher: bool,
    model: M,
    outcome: &mut Outcome,
) -> Result<(), BenchError> {
    let device = cl::default_device();
    let ar1 = matches!(spec.method, Method::Ar1(..));
    let optimizer = if ar1 {
        Ar1Config::avalanche_optimizer().with_lr(AR1_LR_INC_LR_EPOCHS.0)
    } else {
        OptimizerSpec::sgd(LR).with_momentum(MOMENTUM)
    };
    let online = spec.bench == Bench::SplitFMNISTOnline;
    let task_il = spec.bench == Bench::SplitFMNISTTask;
    let epochs = match spec.method {
        Method::PackNet(_) => PACKNET_EPOCHS,
        Method::Ar1(..) => AR1_LR_INC_LR_EPOCHS.2,
        _ => 1,
    };
    let mut strategy = strategy_config(&spec.method)
        .builder(model, optimizer, device)?
        .train_mb_size(if online { ONLINE_MB } else { TRAIN_MB })
        .train_epochs(epochs)
        .eval_mb_size(EVAL_MB)
        .seed(seed)
        .build()?;
    for experience in &benchmark.train_stream {
        if online {
            let config = OnlineStreamConfig::new(ONLINE_EXPERIENCE_SIZE)
                .with_seed(online_split_seed(seed, experience.current_experience));
            strategy.train(&split_online_experience(experience, &config)?)?;
        } else {
            strategy.train(experience)?;
        }
        if fisher && experience.current_experience == 0 {
            outcome.fisher_exp0 = strategy.plugin::<EwcPlugin>().and_then(|p| p.importance(0)).map(|imp| {
                imp.iter()
                    .map(|(id, entry)| {
                        let v = imp.to_vec(id).unwrap_or_default();
                        let mean = v.iter().map(|x| *x as f64).sum::<f64>() / v.len().max(1) as f64;
                        let max = v.iter().fold(f64::NEG_INFINITY, |m, x| m.max(*x as f64));
                        (avalanche_param_name(&entry.name), TensorStats { mean, max })
                    })
                    .collect()
            });
        }
        let results = strategy.eval(&benchmark.test_stream)?;
        let row = (0..benchmark.test_stream.len())
            .map(|j| metric(&results, &MetricName::test_exp_accuracy(if task_il { j as u32 } else { 0 }, j)))
            .collect::<Result<Vec<_>, _>>()?;
        outcome.accuracy_matrix.push(row);
    }
    Ok(())
}

/// One line of the accuracy table.
#[derive(Debug, Clone, Serialize)]
pub struct SummaryRow {
    /// `<benchmark>/<strategy>`.
    pub run: String,
    /// Avalanche's final accuracy, mean and sample std over the seeds that did not diverge.
    pub avalanche: Option<(f64, f64)>,
    /// cl's, likewise.
    pub cl: Option<(f64, f64)>,
    /// Forgetting, Avalanche then cl (means over the seeds that did not diverge).
    pub forgetting: (Option<f64>, Option<f64>),
    /// Seeds that diverged, Avalanche then cl (out of `seeds`).
    pub diverged: (usize, usize),
    /// Seeds run on each side.
    pub seeds: (usize, usize),
    /// cl − Avalanche, accuracy points.
    pub difference_points: Option<f64>,
    /// `within 1.5` / `differs` / `both diverge` / `divergence differs` / `no Avalanche runs`.
    pub verdict: String,
}

fn summarise(run: &str, avalanche: &[&Outcome], cl: &[&Outcome]) -> SummaryRow {
    // Only the seeds both sides ran are compared (all of cl's while Avalanche has none).
    let (avalanche, cl) = shared_seeds(avalanche, cl);
    let (avalanche, cl) = (avalanche.as_slice(), cl.as_slice());
    let ok =
        |o: &[&Outcome]| -> Vec<f64> { o.iter().filter(|o| !o.diverged()).filter_map(|o| o.final_accuracy).collect() };
    let forgetting = |o: &[&Outcome]| {
        let f: Vec<f64> = o.iter().filter(|o| !o.diverged()).filter_map(|o| o.forgetting).collect();
        mean_std(&f).map(|(m, _)| m)
    };
    let diverged = |o: &[&Outcome]| o.iter().filter(|o| o.diverged()).count();
    let (a, c) = (mean_std(&ok(avalanche)), mean_std(&ok(cl)));
    let difference_points = a.zip(c).map(|(a, c)| (c.0 - a.0) * 100.0);
    let (da, dc) = (diverged(avalanche), diverged(cl));
    let verdict = if avalanche.is_empty() {
        "no Avalanche runs".to_string()
    } else if da == avalanche.len() && dc == cl.len() {
        "both diverge".to_string()
    } else if da != dc {
        format!("divergence differs ({da} vs {dc} seeds)")
    } else {
        match difference_points {
            Some(d) if d.abs() <= TARGET_POINTS => format!("within {TARGET_POINTS}"),
            Some(_) => "differs".to_string(),
            None => "incomplete".to_string(),
        }
    };
    SummaryRow {
        run: run.to_string(),
        avalanche: a,
        cl: c,
        forgetting: (forgetting(avalanche), forgetting(cl)),
        diverged: (da, dc),
        seeds: (avalanche.len(), cl.len()),
        difference_points,
        verdict,
    }
}

/// The outcomes of each side for the seeds both have (`cl`'s all when `avalanche` is empty).
fn shared_seeds<'a>(avalanche: &[&'a Outcome], cl: &[&'a Outcome]) -> (Vec<&'a Outcome>, Vec<&'a Outcome>) {
    if avalanche.is_empty() {
        return (Vec::new(), cl.to_vec());
    }
    let has = |side: &[&Outcome], seed: u64| side.iter().any(|o| o.seed == seed);
    (
        avalanche.iter().copied().filter(|o| has(cl, o.seed)).collect(),
        cl.iter().copied().filter(|o| has(avalanche, o.seed)).collect(),
    )
}

/// One line of the Fisher table: a parameter tensor's mean importance on each side (averaged
/// over seeds) and their ratio.
#[derive(Debug, Clone, Serialize)]
pub struct FisherRow {
    /// Avalanche's name of the tensor.
    pub tensor: String,
    /// Mean importance, Avalanche (mean over seeds).
    pub avalanche_mean: f64,
    /// Mean importance, cl (mean over seeds).
    pub cl_mean: f64,
    /// Avalanche / cl.
    pub ratio: f64,
    /// Largest importance, Avalanche then cl (max over seeds).
    pub max: (f64, f64),
}

fn fisher_rows(avalanche: &[&Outcome], cl: &[&Outcome]) -> Vec<FisherRow> {
    let (avalanche, cl) = shared_seeds(avalanche, cl);
    let (avalanche, cl) = (avalanche.as_slice(), cl.as_slice());
    let gather = |o: &[&Outcome]| {
        let mut by: BTreeMap<String, Vec<TensorStats>> = BTreeMap::new();
        for f in o.iter().filter_map(|o| o.fisher_exp0.as_ref()) {
            for (k, v) in f {
                by.entry(k.clone()).or_default().push(*v);
            }
        }
        by
    };
    let (a, c) = (gather(avalanche), gather(cl));
    a.iter()
        .filter_map(|(name, av)| {
            let cv = c.get(name)?;
            let m = |v: &[TensorStats]| v.iter().map(|s| s.mean).sum::<f64>() / v.len() as f64;
            let mx = |v: &[TensorStats]| v.iter().map(|s| s.max).fold(f64::NEG_INFINITY, f64::max);
            let (am, cm) = (m(av), m(cv));
            Some(FisherRow {
                tensor: name.clone(),
                avalanche_mean: am,
                cl_mean: cm,
                ratio: am / cm,
                max: (mx(av), mx(cv)),
            })
        })
        .collect()
}

/// The outcomes of run `name`.
fn of_run<'a>(outcomes: &'a [Outcome], name: &str) -> Vec<&'a Outcome> {
    outcomes.iter().filter(|o| o.run == name).collect()
}

/// The first PermutedFMNIST run with a Fisher summary of each seed (the Fisher after the first
/// experience does not depend on EWC's λ).
fn fisher_runs(outcomes: &[Outcome]) -> Vec<&Outcome> {
    let mut seen = Vec::new();
    outcomes
        .iter()
        .filter(|o| o.fisher_exp0.is_some() && o.run.starts_with("PermutedFMNIST/"))
        .filter(|o| {
            let first = !seen.contains(&o.seed);
            seen.push(o.seed);
            first
        })
        .collect()
}

fn load_avalanche(path: &Path) -> Result<AvalancheFile, BenchError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        BenchError::Input(format!("reading {}: {e} (make it with scripts/avalanche_fidelity.py)", path.display()))
    })?;
    serde_json::from_str(&text).map_err(|e| {
        BenchError::Input(format!("{}: not a results file of scripts/avalanche_fidelity.py: {e}", path.display()))
    })
}

/// The benchmark `bench` for `seed`: Avalanche's tasks for that seed when `avalanche` has them.
fn load_benchmark(
    bench: Bench,
    seed: u64,
    avalanche: Option<&AvalancheFile>,
    data_dir: Option<&Path>,
) -> Result<(Benchmark, &'static str), BenchError> {
    let drawn =
        avalanche.into_iter().flat_map(|f| &f.runs).filter(|r| r.seed == seed && r.benchmark.tasks() == bench.tasks());
    match bench {
        Bench::PermutedFMNIST => {
            let mut config = TransformedMnistConfig::new(N_EXPERIENCES).with_seed(seed);
            let mut origin = "cl's seeded permutations";
            if let Some(p) = drawn.filter_map(|r| r.permutations.clone()).next() {
                config = config.with_permutations(Permutations::Lists(p));
                origin = "Avalanche's permutations";
            }
            if let Some(dir) = data_dir {
                config = config.with_dataset_root(dir);
            }
            Ok((permuted_fmnist(&config).map_err(BenchError::Data)?, origin))
        }
        Bench::SplitFMNIST | Bench::SplitFMNISTOnline | Bench::SplitFMNISTTask => {
            let mut config =
                SplitConfig::new(N_EXPERIENCES).with_seed(seed).with_return_task_id(bench == Bench::SplitFMNISTTask);
            let mut origin = "cl's seeded class order";
            if let Some(order) = drawn.filter_map(|r| r.class_order.clone()).next() {
                config = config.with_fixed_class_order(order);
                origin = "Avalanche's class order";
            }
            if let Some(dir) = data_dir {
                config = config.with_dataset_root(dir);
            }
            Ok((cl::benchmarks::split_fmnist(&config).map_err(BenchError::Data)?, origin))
        }
    }
}

fn fmt_acc(v: Option<(f64, f64)>) -> String {
    v.map_or("–".into(), |(m, s)| format!("{m:.4} ± {s:.4}"))
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.4}"))
}

/// The markdown tables.
fn markdown(rows: &[SummaryRow], fisher: &[FisherRow], header: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "{header}\n");
    let _ = writeln!(
        md,
        "| run | Avalanche accuracy | cl accuracy | cl − Avalanche (points) | forgetting Avalanche / cl | diverged (Avalanche / cl) | verdict |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---|");
    for r in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} / {} | {}/{} / {}/{} | {} |",
            r.run,
            fmt_acc(r.avalanche),
            fmt_acc(r.cl),
            r.difference_points.map_or("–".into(), |d| format!("{d:+.2}")),
            fmt_opt(r.forgetting.0),
            fmt_opt(r.forgetting.1),
            r.diverged.0,
            r.seeds.0,
            r.diverged.1,
            r.seeds.1,
            r.verdict
        );
    }
    if !fisher.is_empty() {
        let _ = writeln!(
            md,
            "\nEWC's Fisher after the first PermutedFMNIST experience (mean over the tensor, averaged over seeds):\n"
        );
        let _ = writeln!(md, "| tensor | Avalanche mean | cl mean | Avalanche / cl | max Avalanche / cl |");
        let _ = writeln!(md, "|---|---:|---:|---:|---:|");
        for f in fisher {
            let _ = writeln!(
                md,
                "| {} | {:.3e} | {:.3e} | {:.2} | {:.3e} / {:.3e} |",
                f.tensor, f.avalanche_mean, f.cl_mean, f.ratio, f.max.0, f.max.1
            );
        }
    }
    md
}

/// Runs the comparison, prints the tables and writes `target/fidelity/`.
pub fn run(options: &FidelityOptions, workspace_root: &Path) -> Result<(), BenchError> {
    let mut avalanche: Option<AvalancheFile> = None;
    for path in &options.avalanche {
        let file = load_avalanche(path)?;
        match &mut avalanche {
            Some(merged) => merged.runs.extend(file.runs),
            None => avalanche = Some(file),
        }
    }
    if let Some(merged) = &mut avalanche {
        // A run given by several files counts once: the last file's.
        let mut seen = std::collections::BTreeSet::new();
        let mut runs = std::mem::take(&mut merged.runs);
        runs.reverse();
        runs.retain(|r| seen.insert((r.benchmark.name(), r.strategy.clone(), r.seed)));
        runs.reverse();
        merged.runs = runs;
    }
    let provenance = Provenance::collect(workspace_root);
    let reusable: Vec<Outcome> = match &options.reuse {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| BenchError::Input(format!("reading {}: {e}", path.display())))?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| BenchError::Input(format!("{}: not a fidelity.json: {e}", path.display())))?;
            serde_json::from_value(value.get("cl_runs").cloned().unwrap_or_default()).map_err(|e| {
                BenchError::Input(format!(
                    "{}: its cl_runs are not runs of `cargo xtask fidelity`: {e}",
                    path.display()
                ))
            })?
        }
        None => Vec::new(),
    };
    // A run that failed for another reason than divergence (an interrupted or broken run) is
    // run again.
    let reusable: Vec<Outcome> =
        reusable.into_iter().filter(|o| o.error.as_deref().is_none_or(|e| e.contains("the model diverged"))).collect();
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut origins = BTreeMap::new();
    for &seed in &options.seeds {
        for bench in [Bench::PermutedFMNIST, Bench::SplitFMNIST, Bench::SplitFMNISTOnline, Bench::SplitFMNISTTask] {
            let specs: Vec<&RunSpec> = options.runs.iter().filter(|r| r.bench == bench).collect();
            if specs.is_empty() {
                continue;
            }
            let (benchmark, origin) = load_benchmark(bench, seed, avalanche.as_ref(), options.data_dir.as_deref())?;
            origins.insert(format!("{} seed {seed}", bench.name()), origin);
            for spec in specs {
                let fisher = options.fisher && matches!(spec.method, Method::Ewc(_));
                let kept = reusable.iter().find(|o| {
                    o.run == spec.name && o.seed == seed && o.tasks == origin && (!fisher || o.fisher_exp0.is_some())
                });
                let o = match kept {
                    Some(o) => {
                        println!(
                            "{} seed {seed}: kept from {}",
                            spec.name,
                            options.reuse.as_deref().unwrap_or(Path::new("")).display()
                        );
                        o.clone()
                    }
                    None => {
                        let mut o = run_cl(spec, seed, &benchmark, fisher);
                        o.tasks = origin.to_string();
                        o
                    }
                };
                match (&o.error, o.final_accuracy) {
                    (Some(e), _) => println!("{} seed {seed}: FAILED ({e})", spec.name),
                    (None, acc) => println!(
                        "{} seed {seed} ({origin}): accuracy {}, forgetting {}, {:.1} s",
                        spec.name,
                        fmt_opt(acc),
                        fmt_opt(o.forgetting),
                        o.seconds.unwrap_or(f64::NAN)
                    ),
                }
                outcomes.push(o);
            }
        }
    }
    let avalanche_outcomes: Vec<Outcome> = avalanche
        .iter()
        .flat_map(|f| &f.runs)
        .filter(|r| options.seeds.contains(&r.seed))
        .map(|r| Outcome {
            library: "avalanche".into(),
            run: format!("{}/{}", r.benchmark.name(), r.strategy),
            seed: r.seed,
            final_accuracy: Some(r.final_accuracy),
            forgetting: forgetting_of(&r.accuracy_matrix),
            accuracy_matrix: r.accuracy_matrix.clone(),
            error: None,
            fisher_exp0: r.fisher_exp0.clone(),
            seconds: None,
            tasks: "Avalanche's".into(),
        })
        .collect();
    let rows: Vec<SummaryRow> = options
        .runs
        .iter()
        .map(|spec| summarise(&spec.name, &of_run(&avalanche_outcomes, &spec.name), &of_run(&outcomes, &spec.name)))
        .collect();
    let fisher = if options.fisher {
        fisher_rows(&fisher_runs(&avalanche_outcomes), &fisher_runs(&outcomes))
    } else {
        Vec::new()
    };
    let header = match &avalanche {
        Some(f) => format!(
            "Fidelity: cl {} vs Avalanche {} (torch {}), seeds {:?}; tasks: {}",
            env!("CARGO_PKG_VERSION"),
            f.avalanche_version,
            f.torch_version,
            options.seeds,
            origins
                .values()
                .copied()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => format!("Fidelity: cl only (no --avalanche file), seeds {:?}", options.seeds),
    };
    let md = markdown(&rows, &fisher, &header);
    println!("\n{md}");
    let dir = workspace_root.join("target/fidelity");
    std::fs::create_dir_all(&dir).map_err(|e| BenchError::Write(dir.clone(), e.to_string()))?;
    let json = serde_json::json!({
        "protocol": {
            "model": "SimpleMlp (784-512-10, dropout 0.5), weights from the seed",
            "optimizer": format!("SGD(lr={LR}, momentum={MOMENTUM})"),
            "train_mb_size": TRAIN_MB, "eval_mb_size": EVAL_MB, "train_epochs": 1,
            "n_experiences": N_EXPERIENCES, "mas_alpha": MAS_ALPHA,
        },
        "seeds": options.seeds,
        "tasks": origins,
        "avalanche_file": options.avalanche,
        "summary": rows,
        "fisher": fisher,
        "cl_runs": outcomes,
        "avalanche_runs": avalanche_outcomes,
        "provenance": provenance,
    });
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| BenchError::Write(path.clone(), e.to_string()))
    };
    write("fidelity.json", serde_json::to_string_pretty(&json).unwrap_or_default())?;
    write("fidelity.md", md)?;
    println!("written {} and fidelity.md", dir.join("fidelity.json").display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Option<FidelityOptions>, String> {
        parse_args(s.split_whitespace().map(String::from))
    }

    #[test]
    fn runs_parse_and_bad_ones_say_what_is_expected() {
        let o = args("--runs PermutedFMNIST/ewc:100,SplitFMNIST/cwr --seeds 4,5 --fisher").unwrap().unwrap();
        assert_eq!(o.runs[0].method, Method::Ewc(100.0));
        assert_eq!((o.runs[1].bench, &o.runs[1].method), (Bench::SplitFMNIST, &Method::Cwr));
        assert_eq!((o.seeds.as_slice(), o.fisher), (&[4, 5][..], true));
        let o = args("--runs SplitFMNIST/der:500,SplitFMNIST/er_ace:200").unwrap().unwrap();
        assert_eq!((&o.runs[0].method, &o.runs[1].method), (&Method::Der(500), &Method::ErAce(200)));
        assert_eq!(FidelityOptions::default().runs.len(), DEFAULT_RUNS.len());
        for (bad, needle) in [
            ("--runs ewc:100", "<benchmark>/<strategy>"),
            ("--runs MNIST/naive", "unknown benchmark"),
            ("--runs SplitFMNIST/ewc", "give λ"),
            ("--runs SplitFMNIST/ewc:-1", "non-negative"),
            ("--runs SplitFMNIST/lwf", "unknown strategy"),
            ("--runs SplitFMNIST/der:0", "positive integer"),
            ("--runs SplitFMNIST/er_ace", "give the memory size"),
            ("--seeds x", "--seeds"),
            ("--frob", "unknown option"),
        ] {
            let e = args(bad).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
        assert_eq!(args("--help").unwrap(), None);
    }

    fn outcome(run: &str, seed: u64, acc: Option<f64>, error: Option<&str>) -> Outcome {
        Outcome {
            library: "cl".into(),
            run: run.into(),
            seed,
            final_accuracy: acc,
            forgetting: acc.map(|a| 1.0 - a),
            accuracy_matrix: Vec::new(),
            error: error.map(String::from),
            fisher_exp0: None,
            seconds: None,
            tasks: String::new(),
        }
    }

    #[test]
    fn verdicts() {
        let a = [outcome("r", 1, Some(0.80), None), outcome("r", 2, Some(0.82), None)];
        let c = [outcome("r", 1, Some(0.805), None), outcome("r", 2, Some(0.82), None)];
        let row = summarise("r", &a.iter().collect::<Vec<_>>(), &c.iter().collect::<Vec<_>>());
        assert_eq!(row.verdict, "within 1.5");
        assert!((row.difference_points.unwrap() - 0.25).abs() < 1e-9);
        assert!((row.avalanche.unwrap().1 - 0.02f64.hypot(0.0) / 2f64.sqrt()).abs() < 1e-9, "sample std");
        let far = [outcome("r", 1, Some(0.70), None), outcome("r", 2, Some(0.72), None)];
        assert_eq!(summarise("r", &a.iter().collect::<Vec<_>>(), &far.iter().collect::<Vec<_>>()).verdict, "differs");
        let div_a = [outcome("r", 1, Some(0.10), None)];
        let div_c = [outcome("r", 1, None, Some("non-finite loss"))];
        let both = summarise("r", &div_a.iter().collect::<Vec<_>>(), &div_c.iter().collect::<Vec<_>>());
        assert_eq!((both.verdict.as_str(), both.diverged), ("both diverge", (1, 1)));
        let one = summarise("r", &div_a.iter().collect::<Vec<_>>(), &a[..1].iter().collect::<Vec<_>>());
        assert!(one.verdict.starts_with("divergence differs"), "{}", one.verdict);
        assert_eq!(summarise("r", &[], &c.iter().collect::<Vec<_>>()).verdict, "no Avalanche runs");
        // Divergence counts are compared first: 3/3 vs 1/3 and 1/3 vs 2/3 are not agreements.
        let three = |accs: [Option<f64>; 3]| -> Vec<Outcome> {
            accs.iter().enumerate().map(|(i, a)| outcome("r", i as u64 + 1, *a, None)).collect()
        };
        let all_div = three([Some(0.1), Some(0.1), Some(0.1)]);
        let one_div = three([Some(0.1), Some(0.8), Some(0.8)]);
        let two_div = three([Some(0.1), Some(0.1), Some(0.8)]);
        let v = |a: &[Outcome], c: &[Outcome]| {
            summarise("r", &a.iter().collect::<Vec<_>>(), &c.iter().collect::<Vec<_>>()).verdict
        };
        assert_eq!(v(&all_div, &one_div), "divergence differs (3 vs 1 seeds)");
        assert_eq!(v(&one_div, &two_div), "divergence differs (1 vs 2 seeds)");
        // Only shared seeds count: Avalanche's extra seed 3 is left out.
        let av = three([Some(0.80), Some(0.82), Some(0.20)]);
        let row = summarise("r", &av.iter().collect::<Vec<_>>(), &c.iter().collect::<Vec<_>>());
        assert_eq!((row.seeds, row.verdict.as_str()), ((2, 2), "within 1.5"));
    }

    #[test]
    fn seeds_are_deduplicated_in_order() {
        assert_eq!(args("--seeds 3,1,3,2,1").unwrap().unwrap().seeds, vec![3, 1, 2]);
    }

    #[test]
    fn forgetting_matches_avalanches_stream_forgetting() {
        // Avalanche 0.6, PermutedFMNIST EWC λ=100 seed 1: StreamForgetting 0.0266.
        let m = vec![
            vec![0.8423, 0.1106, 0.1267, 0.1494, 0.1693],
            vec![0.8338, 0.8334, 0.1721, 0.1763, 0.1716],
            vec![0.8314, 0.8185, 0.8375, 0.21, 0.1807],
            vec![0.8273, 0.8106, 0.8121, 0.8335, 0.1907],
            vec![0.8303, 0.8102, 0.8028, 0.7969, 0.8351],
        ];
        assert!((forgetting_of(&m).unwrap() - 0.0266).abs() < 5e-5);
    }

    /// The script's default list is this one, in the same order (the two sides of one table).
    #[test]
    fn the_script_runs_the_same_default_list() {
        let script = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/avalanche_fidelity.py"))
            .expect("scripts/avalanche_fidelity.py");
        let block = script.split("DEFAULT_RUNS = [").nth(1).and_then(|b| b.split(']').next()).expect("DEFAULT_RUNS");
        let listed: Vec<&str> = block.split('"').skip(1).step_by(2).collect();
        assert_eq!(listed, DEFAULT_RUNS);
        for constant in [
            "N_EXPERIENCES = 5",
            "LR, MOMENTUM, TRAIN_MB, EVAL_MB, EPOCHS = 0.01, 0.9, 128, 1000, 1",
            "MAS_ALPHA = 0.5",
            "MIR_SUBSAMPLE, MIR_BATCH_SIZE_MEM = 50, 10",
        ] {
            assert!(script.contains(constant), "the script's protocol: {constant}");
        }
    }

    #[test]
    fn parameter_names_map_to_avalanches() {
        assert_eq!(avalanche_param_name("features.0.linear.weight"), "features.0.weight");
        assert_eq!(avalanche_param_name("classifier.bias"), "classifier.bias");
    }
}
