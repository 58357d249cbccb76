//! Per-class accuracy (`Top1_ClassAcc_*`) and the average mean-class accuracy
//! (`Top1_AMCA_Stream`).

use std::collections::{BTreeMap, BTreeSet};

use burn::tensor::{Tensor, TensorData};
use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, rule};
use cl_core::data::MiniBatch;
use cl_core::evaluation::{Granularity, Metric, MetricContext, MetricName, MetricOutput, label_width, one_hot, pad};
use cl_core::{Callback, Result};
use serde::{Deserialize, Serialize};

use super::state;

/// Correct and total counts per class and task, on the device.
#[derive(Debug, Default)]
pub(crate) struct ClassSums {
    /// task → (classes, correct `[1, C]`, total `[1, C]`); `C` grows (zero-padded on the
    /// device) when a model's head grows or a label is not below the number of outputs.
    device: BTreeMap<u32, (usize, Tensor<2>, Tensor<2>)>,
    /// Sums restored from a checkpoint (exactly, as saved), put back on the device of the next
    /// batch of their task (the sums do not know the device).
    restored: BTreeMap<u32, (usize, TensorData, TensorData)>,
}

impl ClassSums {
    pub(crate) fn reset(&mut self) {
        self.device.clear();
        self.restored.clear();
    }

    /// Adds a batch: `hits` are its top-1 hits, `outputs` the model's number of logits.
    pub(crate) fn update(&mut self, batch: &MiniBatch, hits: Tensor<1, burn::tensor::Int>, outputs: usize) {
        let n = batch.len();
        if n == 0 {
            return;
        }
        let classes = label_width(batch, outputs);
        let one_hot = one_hot(batch.y.clone(), n, classes);
        let hit_rows = one_hot.clone() * hits.float().reshape([n, 1]);
        let device = hit_rows.device();
        let mut add = |task: u32, correct: Tensor<2>, total: Tensor<2>| {
            let previous = self.device.remove(&task).or_else(|| {
                self.restored
                    .remove(&task)
                    .map(|(c, cor, tot)| (c, Tensor::from_data(cor, &device), Tensor::from_data(tot, &device)))
            });
            let entry = match previous {
                Some((c, cor, tot)) => {
                    let w = c.max(classes);
                    (w, pad(cor, 1, w) + pad(correct, 1, w), pad(tot, 1, w) + pad(total, 1, w))
                }
                None => (classes, correct, total),
            };
            self.device.insert(task, entry);
        };
        match batch.single_task() {
            Some(t) => add(t, hit_rows.sum_dim(0), one_hot.sum_dim(0)),
            None => {
                let mut tasks = batch.task_labels.clone();
                tasks.sort_unstable();
                tasks.dedup();
                for t in tasks {
                    let mask = batch.t.clone().equal_elem(t as i64).float().reshape([n, 1]);
                    add(t, (hit_rows.clone() * mask.clone()).sum_dim(0), (one_hot.clone() * mask).sum_dim(0));
                }
            }
        }
    }

    /// task → (classes, correct, total) as tensor data (one read per tensor on the device).
    fn data(&self) -> BTreeMap<u32, (usize, TensorData, TensorData)> {
        let mut all = self.restored.clone();
        for (&t, (c, cor, tot)) in &self.device {
            all.insert(t, (*c, cor.clone().into_data(), tot.clone().into_data()));
        }
        all
    }

    /// task → class → (correct, total), classes with at least one sample (one read per task).
    pub(crate) fn read(&self) -> BTreeMap<u32, BTreeMap<u32, (f64, f64)>> {
        let read = |x: &TensorData| -> Vec<f64> { x.iter::<f32>().map(f64::from).collect() };
        self.data()
            .iter()
            .map(|(&t, (_, cor, tot))| {
                let (cor, tot) = (read(cor), read(tot));
                let classes = cor
                    .iter()
                    .zip(&tot)
                    .enumerate()
                    .filter(|(_, (_, n))| **n > 0.0)
                    .map(|(c, (k, n))| (c as u32, (*k, *n)))
                    .collect();
                (t, classes)
            })
            .collect()
    }

    /// Saves the sums exactly (their tensor data).
    pub(crate) fn save_state(&self, out: &mut StateDict) -> Result<()> {
        let data = self.data();
        out.put("tasks", &data.iter().map(|(t, (c, _, _))| (*t, *c)).collect::<Vec<_>>())?;
        for (t, (_, cor, tot)) in data {
            out.put_data(&format!("{t}/correct"), cor);
            out.put_data(&format!("{t}/total"), tot);
        }
        Ok(())
    }

    /// Restores [`save_state`](Self::save_state)'s sums.
    pub(crate) fn load_state(&mut self, state: &StateDict) -> Result<()> {
        self.reset();
        let tasks: Vec<(u32, usize)> = state.get("tasks")?;
        for (t, c) in tasks {
            let (cor, tot) = (state.data(&format!("{t}/correct"))?, state.data(&format!("{t}/total"))?);
            self.restored.insert(t, (c, cor, tot));
        }
        Ok(())
    }
}

/// Saves `sums` as the nested dictionary `key`.
fn put_sums(out: &mut StateDict, key: &str, sums: &ClassSums) -> Result<()> {
    let mut d = StateDict::new(format!("{} (class counts `{key}`)", out.component()));
    sums.save_state(&mut d)?;
    out.put_dict(key, d);
    Ok(())
}

/// The configuration of [`ClassAccuracy`]: Avalanche's `class_accuracy_metrics(epoch,
/// experience, stream)` (its `minibatch` and `epoch_running` are not offered).
///
/// Avalanche defaults every granularity to `False`; the default here is epoch, experience and
/// stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassAccuracyConfig {
    /// When the values are emitted (`minibatch` must be off).
    pub granularity: Granularity,
}

impl Default for ClassAccuracyConfig {
    fn default() -> Self {
        Self { granularity: Granularity::DEFAULT }
    }
}

impl ClassAccuracyConfig {
    /// Sets when the values are emitted.
    pub fn with_granularity(mut self, granularity: Granularity) -> Self {
        self.granularity = granularity;
        self
    }
}

impl Validate for ClassAccuracyConfig {
    /// `granularity_minibatch_off`.
    fn validate(&self) -> Result<()> {
        rule("ClassAccuracyConfig", "granularity_minibatch_off", !self.granularity.minibatch, || {
            "per-class accuracy is not offered per minibatch: set granularity.minibatch = false".into()
        })
    }
}

/// Accuracy per class (`Top1_ClassAcc_Epoch/train_phase/train_stream/Task000/3`,
/// `Top1_ClassAcc_Exp/eval_phase/test_stream/Task000/Exp000/3`, `Top1_ClassAcc_Stream/...`), one
/// value per task and class present, as Avalanche's `class_accuracy_metrics`.
#[derive(Debug)]
pub struct ClassAccuracy {
    granularity: Granularity,
    epoch: ClassSums,
    experience: ClassSums,
    stream: ClassSums,
}

impl ClassAccuracy {
    /// Per-class accuracy as configured; an error if `config` breaks a rule
    /// ([`ClassAccuracyConfig`]).
    pub fn new(config: ClassAccuracyConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            granularity: config.granularity,
            epoch: ClassSums::default(),
            experience: ClassSums::default(),
            stream: ClassSums::default(),
        })
    }

    fn emit(sums: &ClassSums, level: &str, add_exp: bool, ctx: &MetricContext<'_>, out: &mut MetricOutput) {
        let metric = format!("Top1_ClassAcc_{level}");
        let name = if add_exp { ctx.exp_name(&metric) } else { ctx.stream_name(&metric) };
        for (t, classes) in sums.read() {
            for (c, (k, n)) in classes {
                out.scalar(name.clone().with_task(t).with_class(c), k / n);
            }
        }
    }
}

impl Metric for ClassAccuracy {
    fn name(&self) -> String {
        "ClassAccuracy".into()
    }

    /// Saves the class counts of the open epoch, experience and stream.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &ClassAccuracyConfig { granularity: self.granularity })?;
        put_sums(out, "epoch", &self.epoch)?;
        put_sums(out, "experience", &self.experience)?;
        put_sums(out, "stream", &self.stream)
    }

    fn load_state(&mut self, state: &StateDict) -> Result<()> {
        state.check_config("config", &ClassAccuracyConfig { granularity: self.granularity })?;
        self.epoch.load_state(state.dict("epoch")?)?;
        self.experience.load_state(state.dict("experience")?)?;
        self.stream.load_state(state.dict("stream")?)
    }

    fn on(&mut self, ctx: &MetricContext<'_>, out: &mut MetricOutput) {
        let g = self.granularity;
        let update = |sums: &mut ClassSums| {
            if let (Some(batch), Some(hits), Some(o)) = (ctx.batch, ctx.hits(), ctx.output) {
                sums.update(batch, hits, o.dims()[1]);
            }
        };
        match ctx.callback {
            Callback::BeforeTrainingEpoch => self.epoch.reset(),
            Callback::AfterTrainingIteration if g.epoch => update(&mut self.epoch),
            Callback::AfterTrainingEpoch if g.epoch => Self::emit(&self.epoch, "Epoch", false, ctx, out),
            Callback::BeforeEval => self.stream.reset(),
            Callback::BeforeEvalExp => self.experience.reset(),
            Callback::AfterEvalIteration => {
                if g.experience {
                    update(&mut self.experience);
                }
                if g.stream {
                    update(&mut self.stream);
                }
            }
            Callback::AfterEvalExp if g.experience => Self::emit(&self.experience, "Exp", true, ctx, out),
            Callback::AfterEval if g.stream => Self::emit(&self.stream, "Stream", false, ctx, out),
            _ => {}
        }
    }
}

/// Average mean-class accuracy (`Top1_AMCA_Stream/test_stream/Task000`, without phase), as
/// Avalanche's `amca_metrics` (`AMCAPluginMetric`, never reset):
///
/// - per tracked stream and task, the class accuracies are pooled over all the samples of an
///   eval phase (`eval` call); a class seen in an earlier phase and absent from this one counts
///   as 0 (Avalanche keeps the classes it has seen);
/// - the mean-class accuracy of a phase is the mean over those classes;
/// - after each eval phase the metric emits, per tracked stream ever evaluated and task, the
///   mean over the eval phases so far of their mean-class accuracies (the current phase
///   included; a stream not evaluated in this phase counts this phase as 0, as Avalanche).
///
/// Only the `test` stream is tracked by default (Avalanche's `streams=("test",)`); see
/// [`AmcaConfig`]. Evaluations run inside `train` (periodic validation) are ignored, as
/// Avalanche's default `ignore_validation=True`.
#[derive(Debug)]
pub struct Amca {
    /// Tracked streams; `None`: all.
    streams: Option<BTreeSet<String>>,
    /// stream → its running AMCA.
    amcas: BTreeMap<String, StreamAmca>,
    /// Tracked streams evaluated in the current eval phase.
    in_phase: BTreeSet<String>,
    /// The tracked stream being evaluated.
    current: Option<String>,
    in_training: bool,
}

/// Avalanche's `AverageMeanClassAccuracy` for one stream.
#[derive(Debug, Default)]
struct StreamAmca {
    /// Class counts of the current eval phase.
    sums: ClassSums,
    /// task → classes seen in earlier phases.
    known: BTreeMap<u32, BTreeSet<u32>>,
    /// task → mean-class accuracy of each earlier phase.
    prev: BTreeMap<u32, Vec<f64>>,
    updated_once: bool,
}

impl StreamAmca {
    /// task → mean-class accuracy of the current phase, from `read` (`ClassSums::read`).
    fn current(&self, read: &BTreeMap<u32, BTreeMap<u32, (f64, f64)>>) -> BTreeMap<u32, f64> {
        let tasks: BTreeSet<u32> = self.known.keys().chain(read.keys()).copied().collect();
        let empty = BTreeMap::new();
        tasks
            .into_iter()
            .filter_map(|t| {
                let seen = read.get(&t).unwrap_or(&empty);
                let classes: BTreeSet<u32> =
                    self.known.get(&t).into_iter().flatten().chain(seen.keys()).copied().collect();
                let accs: Vec<f64> = classes.iter().map(|c| seen.get(c).map_or(0.0, |(k, n)| k / n)).collect();
                (!accs.is_empty()).then(|| (t, accs.iter().sum::<f64>() / accs.len() as f64))
            })
            .collect()
    }

    /// Consolidates the current phase (Avalanche's `next_experience`).
    fn next_phase(&mut self) {
        if !self.updated_once {
            return;
        }
        let read = self.sums.read();
        for (t, acc) in self.current(&read) {
            self.prev.entry(t).or_default().push(acc);
        }
        for (t, classes) in read {
            self.known.entry(t).or_default().extend(classes.keys());
        }
        self.sums.reset();
    }

    /// task → running AMCA: mean of the earlier phases and the current one.
    fn result(&self) -> BTreeMap<u32, f64> {
        let current = self.current(&self.sums.read());
        let tasks: BTreeSet<u32> = self.prev.keys().chain(current.keys()).copied().collect();
        tasks
            .into_iter()
            .map(|t| {
                let prev = self.prev.get(&t).map_or(&[][..], Vec::as_slice);
                let sum = prev.iter().sum::<f64>() + current.get(&t).copied().unwrap_or(0.0);
                (t, sum / (prev.len() + 1) as f64)
            })
            .collect()
    }
}

/// The streams an [`Amca`] tracks: Avalanche's `streams` argument of `amca_metrics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmcaStreams {
    /// Every evaluated stream (Avalanche's `streams=None`).
    All,
    /// These streams, by name (`test`, `valid`, ...).
    Only(Vec<String>),
}

/// The configuration of [`Amca`]: Avalanche's `amca_metrics(streams=("test",))`.
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_metrics::{AmcaConfig, AmcaStreams};
/// let config = AmcaConfig::from_toml("streams = \"all\"").unwrap();
/// assert_eq!(config, AmcaConfig::default().with_streams(AmcaStreams::All));
/// assert_eq!(AmcaConfig::default().streams, AmcaStreams::Only(vec!["test".into()]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmcaConfig {
    /// The tracked streams (default: `test`).
    pub streams: AmcaStreams,
}

impl Default for AmcaConfig {
    fn default() -> Self {
        Self { streams: AmcaStreams::Only(vec!["test".into()]) }
    }
}

impl AmcaConfig {
    /// Sets the tracked streams.
    pub fn with_streams(mut self, streams: AmcaStreams) -> Self {
        self.streams = streams;
        self
    }
}

impl Validate for AmcaConfig {
    /// `streams_not_empty`, `stream_names_not_empty`.
    fn validate(&self) -> Result<()> {
        const C: &str = "AmcaConfig";
        let named = match &self.streams {
            AmcaStreams::All => return Ok(()),
            AmcaStreams::Only(streams) => streams,
        };
        rule(C, "streams_not_empty", !named.is_empty(), || {
            "streams = { only = [] } tracks nothing: name at least one stream, or use `all`".into()
        })?;
        rule(C, "stream_names_not_empty", named.iter().all(|s| !s.is_empty()), || {
            format!("streams = {named:?}: a stream name is empty (names are `test`, `valid`, ...)")
        })
    }
}

impl Amca {
    /// The metric as configured; an error if `config` breaks a rule ([`AmcaConfig`]).
    pub fn new(config: AmcaConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            streams: match config.streams {
                AmcaStreams::All => None,
                AmcaStreams::Only(s) => Some(s.into_iter().collect()),
            },
            amcas: BTreeMap::new(),
            in_phase: BTreeSet::new(),
            current: None,
            in_training: false,
        })
    }

    fn tracked(&self, stream: &str) -> bool {
        self.streams.as_ref().is_none_or(|s| s.contains(stream))
    }

    /// The tracked streams, as checked on resume.
    fn config(&self) -> AmcaStreams {
        match &self.streams {
            None => AmcaStreams::All,
            Some(s) => AmcaStreams::Only(s.iter().cloned().collect()),
        }
    }
}

impl Metric for Amca {
    fn name(&self) -> String {
        "AMCA".into()
    }

    /// Saves, per tracked stream, the class counts of the open eval phase, the classes seen
    /// and the mean-class accuracies of the earlier phases; and where the metric is in the loop.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config())?;
        out.put("streams", &self.amcas.keys().collect::<Vec<_>>())?;
        for (i, a) in self.amcas.values().enumerate() {
            let mut d = StateDict::new(format!("{} (stream {i})", out.component()));
            put_sums(&mut d, "sums", &a.sums)?;
            d.put("known", &a.known)?;
            let prev: BTreeMap<u32, Vec<u64>> = a.prev.iter().map(|(t, v)| (*t, state::bits(v))).collect();
            d.put("prev", &prev)?;
            d.put("updated_once", &a.updated_once)?;
            out.put_dict(&format!("stream/{i}"), d);
        }
        out.put("in_phase", &self.in_phase)?;
        out.put("current", &self.current)?;
        out.put("in_training", &self.in_training)
    }

    fn load_state(&mut self, st: &StateDict) -> Result<()> {
        st.check_config("config", &self.config())?;
        let streams: Vec<String> = st.get("streams")?;
        self.amcas.clear();
        for (i, stream) in streams.into_iter().enumerate() {
            let d = st.dict(&format!("stream/{i}"))?;
            let mut a = StreamAmca::default();
            a.sums.load_state(d.dict("sums")?)?;
            a.known = d.get("known")?;
            let prev: BTreeMap<u32, Vec<u64>> = d.get("prev")?;
            a.prev = prev.into_iter().map(|(t, v)| (t, state::from_bits(v))).collect();
            a.updated_once = d.get("updated_once")?;
            self.amcas.insert(stream, a);
        }
        self.in_phase = st.get("in_phase")?;
        self.current = st.get("current")?;
        self.in_training = st.get("in_training")?;
        Ok(())
    }

    fn on(&mut self, ctx: &MetricContext<'_>, out: &mut MetricOutput) {
        match ctx.callback {
            Callback::BeforeTraining => self.in_training = true,
            Callback::AfterTraining => self.in_training = false,
            _ if self.in_training => {}
            Callback::BeforeEval => {
                for s in std::mem::take(&mut self.in_phase) {
                    if let Some(a) = self.amcas.get_mut(&s) {
                        a.next_phase();
                    }
                }
            }
            Callback::BeforeEvalExp => {
                let stream = ctx.stream().to_string();
                self.current = None;
                if self.tracked(&stream) {
                    self.amcas.entry(stream.clone()).or_default();
                    self.in_phase.insert(stream.clone());
                    self.current = Some(stream);
                }
            }
            Callback::AfterEvalIteration => {
                let Some(a) = self.current.as_ref().and_then(|s| self.amcas.get_mut(s)) else { return };
                if let (Some(batch), Some(hits), Some(o)) = (ctx.batch, ctx.hits(), ctx.output) {
                    a.sums.update(batch, hits, o.dims()[1]);
                    a.updated_once = true;
                }
            }
            Callback::AfterEval => {
                for (stream, a) in &self.amcas {
                    for (t, v) in a.result() {
                        out.scalar(MetricName::without_phase("Top1_AMCA_Stream", stream.as_str()).with_task(t), v);
                    }
                }
            }
            _ => {}
        }
    }
}
