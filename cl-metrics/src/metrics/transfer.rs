//! Forgetting, backward transfer, forward transfer and the accuracy matrix: metrics built on the
//! accuracy of each evaluated experience at different points of training.

use std::collections::BTreeMap;

use burn::tensor::{Int, Tensor};
use cl_core::checkpoint::StateDict;
use cl_core::config::Validate;
use cl_core::evaluation::{Metric, MetricContext, MetricData, MetricName, MetricOutput};
use cl_core::{Callback, Result};
use serde::{Deserialize, Serialize};

use super::state;

/// The configuration of [`Forgetting`], backward transfer ([`Forgetting::bwt`]) and
/// [`ForwardTransfer`]: Avalanche's `forgetting_metrics(experience, stream)`,
/// `bwt_metrics(experience, stream)` and `forward_transfer_metrics(experience, stream)`.
///
/// Avalanche defaults both flags to `False` (no value); the default here is both on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransferConfig {
    /// One value per evaluated experience (`Experience...`).
    pub experience: bool,
    /// The mean over the evaluated stream (`Stream...`).
    pub stream: bool,
}

impl Default for TransferConfig {
    fn default() -> Self {
        Self { experience: true, stream: true }
    }
}

impl TransferConfig {
    /// Sets whether the per-experience values are emitted.
    pub fn with_experience(mut self, on: bool) -> Self {
        self.experience = on;
        self
    }

    /// Sets whether the stream value is emitted.
    pub fn with_stream(mut self, on: bool) -> Self {
        self.stream = on;
        self
    }
}

impl Validate for TransferConfig {
    /// Every combination is valid (both off emits nothing, as in Avalanche).
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// Top-1 accuracy over one evaluated experience, summed on the device.
#[derive(Debug, Default)]
struct ExpAccuracy {
    hits: Option<Tensor<1, Int>>,
    /// Hits restored from a checkpoint (read back to the host: an exact integer), added to the
    /// next batch's on its device.
    restored: Option<i64>,
    count: usize,
}

impl ExpAccuracy {
    fn reset(&mut self) {
        *self = Self::default();
    }

    fn update(&mut self, ctx: &MetricContext<'_>) {
        let (Some(batch), Some(hits)) = (ctx.batch, ctx.hits()) else { return };
        let s = hits.sum();
        self.hits = Some(match (self.hits.take(), self.restored.take()) {
            (Some(h), _) => h + s,
            (None, Some(r)) => s.add_scalar(r),
            (None, None) => s,
        });
        self.count += batch.len();
    }

    fn hits(&self) -> Option<i64> {
        match &self.hits {
            Some(h) => Some(h.clone().into_scalar::<i64>()),
            None => self.restored,
        }
    }

    /// One transfer.
    fn read(&self) -> Option<f64> {
        let h = self.hits()?;
        (self.count > 0).then(|| h as f64 / self.count as f64)
    }

    fn save_state(&self, out: &mut StateDict, key: &str) -> Result<()> {
        out.put(key, &(self.hits(), self.count))
    }

    fn load_state(&mut self, state: &StateDict, key: &str) -> Result<()> {
        let (hits, count) = state.get(key)?;
        *self = Self { hits: None, restored: hits, count };
        Ok(())
    }
}

/// What a forgetting or forward-transfer metric saves besides its reference accuracies.
fn save_common(
    out: &mut StateDict,
    current: &ExpAccuracy,
    train_exp: Option<usize>,
    stream_sum: f64,
    stream_n: usize,
) -> Result<()> {
    current.save_state(out, "current")?;
    out.put("train_exp", &train_exp)?;
    state::put_f64(out, "stream_sum", stream_sum)?;
    out.put("stream_n", &stream_n)
}

/// Forgetting (`ExperienceForgetting/eval_phase/test_stream/Task000/Exp000`,
/// `StreamForgetting/eval_phase/test_stream`) or, built with [`Forgetting::bwt`], backward
/// transfer (`ExperienceBWT/...`, `StreamBWT/...`), as Avalanche computes them:
///
/// - the *initial* accuracy of experience `k` is its accuracy in an evaluation run while (or
///   after) training experience `k` — the last such evaluation;
/// - the *last* accuracy is its accuracy in the current evaluation;
/// - experience forgetting = initial − last (BWT = last − initial), emitted for experiences
///   that have both, i.e. not for the experience just trained;
/// - stream forgetting = mean over the experiences of this evaluation that have both (0 if none).
///
/// Pooled top-1 accuracy over all the experience's samples (Avalanche uses task 0 throughout).
#[derive(Debug)]
pub struct Forgetting {
    experience: bool,
    stream: bool,
    bwt: bool,
    current: ExpAccuracy,
    train_exp: Option<usize>,
    initial: BTreeMap<usize, f64>,
    last: BTreeMap<usize, f64>,
    stream_sum: f64,
    stream_n: usize,
}

impl Forgetting {
    /// Forgetting per experience and/or averaged over the stream (Avalanche's
    /// `forgetting_metrics`; every configuration is valid).
    pub fn new(config: TransferConfig) -> Self {
        Self {
            experience: config.experience,
            stream: config.stream,
            bwt: false,
            current: ExpAccuracy::default(),
            train_exp: None,
            initial: BTreeMap::new(),
            last: BTreeMap::new(),
            stream_sum: 0.0,
            stream_n: 0,
        }
    }

    /// Backward transfer (negated forgetting) per experience and/or over the stream
    /// (Avalanche's `bwt_metrics`: `ExperienceBWT`, `StreamBWT`).
    #[doc(alias = "BWT")]
    #[doc(alias = "bwt_metrics")]
    pub fn bwt(config: TransferConfig) -> Self {
        Self { bwt: true, ..Self::new(config) }
    }

    fn names(&self) -> (&'static str, &'static str) {
        if self.bwt { ("ExperienceBWT", "StreamBWT") } else { ("ExperienceForgetting", "StreamForgetting") }
    }

    /// The configuration and the kind (forgetting or BWT), checked on resume.
    fn config(&self) -> (TransferConfig, bool) {
        (TransferConfig { experience: self.experience, stream: self.stream }, self.bwt)
    }
}

impl Metric for Forgetting {
    fn name(&self) -> String {
        if self.bwt { "BWT".into() } else { "Forgetting".into() }
    }

    /// Saves the initial and last accuracies of every experience, the open experience's hits and
    /// the stream's running sum.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config())?;
        save_common(out, &self.current, self.train_exp, self.stream_sum, self.stream_n)?;
        state::put_f64_map(out, "initial", &self.initial)?;
        state::put_f64_map(out, "last", &self.last)
    }

    fn load_state(&mut self, st: &StateDict) -> Result<()> {
        st.check_config("config", &self.config())?;
        self.current.load_state(st, "current")?;
        self.train_exp = st.get("train_exp")?;
        self.stream_sum = state::f64(st, "stream_sum")?;
        self.stream_n = st.get("stream_n")?;
        self.initial = state::f64_map(st, "initial")?;
        self.last = state::f64_map(st, "last")?;
        Ok(())
    }

    fn on(&mut self, ctx: &MetricContext<'_>, out: &mut MetricOutput) {
        match ctx.callback {
            Callback::BeforeTrainingExp => self.train_exp = ctx.experience_id(),
            Callback::BeforeEval => {
                self.last.clear();
                self.stream_sum = 0.0;
                self.stream_n = 0;
            }
            Callback::BeforeEvalExp => self.current.reset(),
            Callback::AfterEvalIteration => self.current.update(ctx),
            Callback::AfterEvalExp => {
                let (Some(k), Some(acc)) = (ctx.experience_id(), self.current.read()) else { return };
                if self.train_exp == Some(k) {
                    self.initial.insert(k, acc);
                } else {
                    self.last.insert(k, acc);
                }
                let (Some(i), Some(l)) = (self.initial.get(&k), self.last.get(&k)) else { return };
                let value = if self.bwt { l - i } else { i - l };
                self.stream_sum += value;
                self.stream_n += 1;
                if self.experience {
                    out.scalar(ctx.exp_name(self.names().0), value);
                }
            }
            Callback::AfterEval if self.stream => {
                let mean = if self.stream_n > 0 { self.stream_sum / self.stream_n as f64 } else { 0.0 };
                out.scalar(ctx.stream_name(self.names().1), mean);
            }
            _ => {}
        }
    }
}

/// Forward transfer (`ExperienceForwardTransfer/eval_phase/test_stream/Task000/Exp001`,
/// `StreamForwardTransfer/eval_phase/test_stream`), as Avalanche computes it: the accuracy on
/// experience `k` after training experience `k − 1`, minus its accuracy at initialisation.
///
/// **It needs an evaluation of the untrained model**: the evaluations run before any training
/// (no training experience finished and no training iteration run, from the loop's clock)
/// record the initial accuracies. Call `strategy.eval(&benchmark.test_stream)` once before
/// training, or train with periodic evaluation (`eval_every`), whose evaluation before training
/// serves. Those evaluations emit a stream value of 0 (as Avalanche). If the first evaluation
/// comes after training, the metric emits nothing for the whole run and logs one warning
/// (post-training accuracies are not used as initial ones).
#[derive(Debug)]
pub struct ForwardTransfer {
    experience: bool,
    stream: bool,
    /// The current evaluation runs before any training: it records initial accuracies.
    recording: bool,
    /// No evaluation before training: nothing is emitted.
    disabled: bool,
    current: ExpAccuracy,
    train_exp: Option<usize>,
    initial: BTreeMap<usize, f64>,
    previous: BTreeMap<usize, f64>,
    stream_sum: f64,
    stream_n: usize,
}

impl ForwardTransfer {
    /// Forward transfer per experience and/or averaged over the stream (Avalanche's
    /// `forward_transfer_metrics`; every configuration is valid).
    pub fn new(config: TransferConfig) -> Self {
        Self {
            experience: config.experience,
            stream: config.stream,
            recording: false,
            disabled: false,
            current: ExpAccuracy::default(),
            train_exp: None,
            initial: BTreeMap::new(),
            previous: BTreeMap::new(),
            stream_sum: 0.0,
            stream_n: 0,
        }
    }
}

impl Metric for ForwardTransfer {
    fn name(&self) -> String {
        "ForwardTransfer".into()
    }

    /// Saves the accuracies at initialisation and after the previous experience, whether the
    /// metric records or is disabled, the open experience's hits and the stream's running sum.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &TransferConfig { experience: self.experience, stream: self.stream })?;
        save_common(out, &self.current, self.train_exp, self.stream_sum, self.stream_n)?;
        out.put("recording", &self.recording)?;
        out.put("disabled", &self.disabled)?;
        state::put_f64_map(out, "initial", &self.initial)?;
        state::put_f64_map(out, "previous", &self.previous)
    }

    fn load_state(&mut self, st: &StateDict) -> Result<()> {
        st.check_config("config", &TransferConfig { experience: self.experience, stream: self.stream })?;
        self.current.load_state(st, "current")?;
        self.train_exp = st.get("train_exp")?;
        self.stream_sum = state::f64(st, "stream_sum")?;
        self.stream_n = st.get("stream_n")?;
        self.recording = st.get("recording")?;
        self.disabled = st.get("disabled")?;
        self.initial = state::f64_map(st, "initial")?;
        self.previous = state::f64_map(st, "previous")?;
        Ok(())
    }

    fn on(&mut self, ctx: &MetricContext<'_>, out: &mut MetricOutput) {
        match ctx.callback {
            Callback::BeforeTrainingExp => self.train_exp = ctx.experience_id(),
            _ if self.disabled => {}
            Callback::BeforeEval => {
                self.stream_sum = 0.0;
                self.stream_n = 0;
                self.recording = ctx.clock.train_exp_counter == 0 && ctx.clock.train_iterations == 0;
                if !self.recording && self.initial.is_empty() {
                    self.disabled = true;
                    tracing::warn!(
                        "ForwardTransfer: the first evaluation comes after training, so there are no \
                         initial accuracies; forward transfer needs an evaluation before training \
                         (call eval on the test stream before train, or use periodic evaluation) \
                         and will not be reported"
                    );
                }
            }
            Callback::BeforeEvalExp => self.current.reset(),
            Callback::AfterEvalIteration => self.current.update(ctx),
            Callback::AfterEvalExp => {
                let (Some(k), Some(acc)) = (ctx.experience_id(), self.current.read()) else { return };
                if self.recording {
                    self.initial.insert(k, acc);
                    return;
                }
                let updated = k > 0 && self.train_exp == Some(k - 1);
                if updated {
                    self.previous.insert(k, acc);
                }
                let (Some(p), Some(i)) = (self.previous.get(&k), self.initial.get(&k)) else { return };
                self.stream_sum += p - i;
                self.stream_n += 1;
                if updated && self.experience {
                    out.scalar(ctx.exp_name("ExperienceForwardTransfer"), p - i);
                }
            }
            Callback::AfterEval if self.stream => {
                let mean = if self.stream_n > 0 { self.stream_sum / self.stream_n as f64 } else { 0.0 };
                out.scalar(ctx.stream_name("StreamForwardTransfer"), mean);
            }
            _ => {}
        }
    }
}

/// The accuracy matrix of each evaluated stream, named `EvalStream/Acc_Matrix` as Avalanche's
/// `accuracy_matrix_metrics` (no phase or stream in the name: it is the matrix of the stream
/// just evaluated):
/// `R[i][j]` = accuracy on experience `j` in the last evaluation run while or after training
/// experience `i` (so, with periodic evaluation, at the end of experience `i`). Emitted after
/// each `eval` as [`MetricData::Matrix`] (`NaN`/`null` where not measured), with the mean of
/// the measured entries of the current row as the scalar value. Evaluations before any
/// training are not recorded. The name is [`MetricName::accuracy_matrix`];
/// [`AccuracyMatrix::from_rows`](cl_core::evaluation::AccuracyMatrix::from_rows) turns the rows
/// into an [`AccuracyMatrix`](cl_core::evaluation::AccuracyMatrix).
#[derive(Debug, Default)]
pub struct AccuracyMatrixMetric {
    current: ExpAccuracy,
    train_exp: Option<usize>,
    rows: BTreeMap<String, Vec<Vec<f64>>>,
}

impl AccuracyMatrixMetric {
    /// The metric (it has no option; Avalanche's `accuracy_matrix_metrics()`).
    pub fn new() -> Self {
        Self::default()
    }
}

impl Metric for AccuracyMatrixMetric {
    fn name(&self) -> String {
        "AccuracyMatrix".into()
    }

    /// Saves the matrix of every stream (`NaN` entries kept), the last trained experience and
    /// the open experience's hits.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        self.current.save_state(out, "current")?;
        out.put("train_exp", &self.train_exp)?;
        let rows: BTreeMap<&String, Vec<Vec<u64>>> =
            self.rows.iter().map(|(s, rows)| (s, rows.iter().map(|r| state::bits(r)).collect())).collect();
        out.put("rows", &rows)
    }

    fn load_state(&mut self, st: &StateDict) -> Result<()> {
        self.current.load_state(st, "current")?;
        self.train_exp = st.get("train_exp")?;
        let rows: BTreeMap<String, Vec<Vec<u64>>> = st.get("rows")?;
        self.rows = rows.into_iter().map(|(s, rows)| (s, rows.into_iter().map(state::from_bits).collect())).collect();
        Ok(())
    }

    fn on(&mut self, ctx: &MetricContext<'_>, out: &mut MetricOutput) {
        match ctx.callback {
            Callback::BeforeTrainingExp => self.train_exp = ctx.experience_id(),
            Callback::BeforeEvalExp => self.current.reset(),
            Callback::AfterEvalIteration => self.current.update(ctx),
            Callback::AfterEvalExp => {
                let (Some(i), Some(j), Some(acc)) = (self.train_exp, ctx.experience_id(), self.current.read()) else {
                    return;
                };
                let rows = self.rows.entry(ctx.stream().to_string()).or_default();
                let n = rows.len().max(i + 1).max(j + 1);
                rows.resize(n, Vec::new());
                for r in rows.iter_mut() {
                    r.resize(n, f64::NAN);
                }
                rows[i][j] = acc;
            }
            Callback::AfterEval => {
                let (Some(i), Some(rows)) = (self.train_exp, self.rows.get(ctx.stream())) else { return };
                let measured: Vec<f64> = rows.get(i).into_iter().flatten().copied().filter(|v| !v.is_nan()).collect();
                let mean =
                    if measured.is_empty() { f64::NAN } else { measured.iter().sum::<f64>() / measured.len() as f64 };
                out.with_data(MetricName::accuracy_matrix(), mean, MetricData::Matrix { rows: rows.clone() });
            }
            _ => {}
        }
    }
}
