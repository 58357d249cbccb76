//! The stream confusion matrix (`ConfusionMatrix_Stream/eval_phase/test_stream`).

use burn::tensor::{Tensor, TensorData};
use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, rule};
use cl_core::evaluation::{Metric, MetricContext, MetricData, MetricOutput, label_width, one_hot, pad};
use cl_core::{Callback, Result};
use serde::{Deserialize, Serialize};

/// The configuration of [`ConfusionMatrixMetric`]: Avalanche's
/// `confusion_matrix_metrics(num_classes=None, stream=True)` (the image, normalisation and
/// class-name options are left to the report).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfusionMatrixConfig {
    /// The least number of classes (rows and columns); `None` (default): the model's number of
    /// outputs, or more when a label is not below it.
    pub num_classes: Option<usize>,
}

impl ConfusionMatrixConfig {
    /// Sets the least number of classes.
    pub fn with_num_classes(mut self, num_classes: usize) -> Self {
        self.num_classes = Some(num_classes);
        self
    }
}

impl Validate for ConfusionMatrixConfig {
    /// `num_classes_positive`.
    fn validate(&self) -> Result<()> {
        rule("ConfusionMatrixConfig", "num_classes_positive", self.num_classes != Some(0), || {
            "num_classes = 0: give at least 1, or leave it out to size the matrix by the model's outputs".into()
        })
    }
}

/// The confusion matrix over an evaluated stream, as Avalanche's `StreamConfusionMatrix`:
/// `counts[true][predicted]`, emitted after each `eval` as [`MetricData::ConfusionMatrix`] with
/// the number of samples as the scalar value.
///
/// Accumulated on the device as `one_hot(y)ᵀ · one_hot(argmax)` per batch (a `[C, C]` matmul),
/// read back once per stream; the one-hot rows are built on the device (no host sync per
/// iteration). The size is the model's number of outputs, or more when a label is not below
/// it, or [`ConfusionMatrixConfig::num_classes`] if larger.
#[derive(Debug)]
pub struct ConfusionMatrixMetric {
    config: ConfusionMatrixConfig,
    num_classes: usize,
    device: Option<(usize, Tensor<2>)>,
    /// Device sums restored from a checkpoint (exactly, as saved), put back on the device of
    /// the next batch.
    restored: Option<(usize, TensorData)>,
    host: Vec<Vec<u64>>,
}

impl ConfusionMatrixMetric {
    /// The metric as configured; an error if `config` breaks a rule
    /// ([`ConfusionMatrixConfig`]).
    pub fn new(config: ConfusionMatrixConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            num_classes: config.num_classes.unwrap_or(0),
            device: None,
            restored: None,
            host: Vec::new(),
        })
    }

    /// The device sums as tensor data (one read), if any.
    fn device_data(&self) -> Option<(usize, TensorData)> {
        match &self.device {
            Some((c, m)) => Some((*c, m.clone().into_data())),
            None => self.restored.clone(),
        }
    }

    fn spill(&mut self) {
        if let Some((c, m)) = self.device_data() {
            self.device = None;
            self.restored = None;
            let data: Vec<f32> = m.iter::<f32>().collect();
            grow(&mut self.host, c);
            for i in 0..c {
                for j in 0..c {
                    self.host[i][j] += data[i * c + j].round() as u64;
                }
            }
        }
    }

    /// The matrix accumulated so far (reads the device sums).
    pub fn counts(&mut self) -> Vec<Vec<u64>> {
        self.spill();
        let mut m = self.host.clone();
        grow(&mut m, self.num_classes);
        m
    }
}

fn grow(m: &mut Vec<Vec<u64>>, c: usize) {
    if m.len() < c {
        for row in m.iter_mut() {
            row.resize(c, 0);
        }
        m.resize(c, vec![0; c]);
    }
}

impl Metric for ConfusionMatrixMetric {
    fn name(&self) -> String {
        "ConfusionMatrix".into()
    }

    /// Saves the counts of the open stream: those read back and the device sums, exactly.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config)?;
        out.put("host", &self.host)?;
        let device = self.device_data();
        out.put("device_classes", &device.as_ref().map(|(c, _)| *c))?;
        if let Some((_, m)) = device {
            out.put_data("device", m);
        }
        Ok(())
    }

    fn load_state(&mut self, state: &StateDict) -> Result<()> {
        state.check_config("config", &self.config)?;
        self.host = state.get("host")?;
        self.device = None;
        self.restored = match state.get::<Option<usize>>("device_classes")? {
            Some(c) => Some((c, state.data("device")?)),
            None => None,
        };
        Ok(())
    }

    fn on(&mut self, ctx: &MetricContext<'_>, out: &mut MetricOutput) {
        match ctx.callback {
            Callback::BeforeEval => {
                self.device = None;
                self.restored = None;
                self.host.clear();
            }
            Callback::AfterEvalIteration => {
                let (Some(batch), Some(o)) = (ctx.batch, ctx.output) else { return };
                let n = batch.len();
                if n == 0 {
                    return;
                }
                // Labels not below the number of outputs widen the matrix (as Avalanche's,
                // sized by the largest label or prediction); all on the device.
                let c = label_width(batch, o.dims()[1]);
                let truth = one_hot(batch.y.clone(), n, c);
                let pred = one_hot(o.clone().detach().argmax(1).reshape([n]), n, c);
                let m = truth.transpose().matmul(pred);
                if let Some((rc, data)) = self.restored.take() {
                    self.device = Some((rc, Tensor::from_data(data, &m.device())));
                }
                self.device = Some(match self.device.take() {
                    Some((dc, acc)) => {
                        let w = dc.max(c);
                        (w, pad(acc, w, w) + pad(m, w, w))
                    }
                    None => (c, m),
                });
            }
            Callback::AfterEval => {
                let counts = self.counts();
                let total: u64 = counts.iter().flatten().sum();
                out.with_data(
                    ctx.stream_name("ConfusionMatrix_Stream"),
                    total as f64,
                    MetricData::ConfusionMatrix { counts },
                );
            }
            _ => {}
        }
    }
}
