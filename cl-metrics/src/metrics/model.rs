//! Model size (`ModelParams_Exp`, `ModelBytes_Exp`) and multiply-accumulate count of a forward
//! pass (`MAC_MB`, `MAC_Epoch`, `MAC_Exp`).

use std::sync::Arc;

use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, rule};
use cl_core::evaluation::{Granularity, LayerInfo, LayerKind, Metric, MetricContext, MetricOutput, linear_macs};
use cl_core::{Callback, Result};
use serde::{Deserialize, Serialize};

/// Model size after each training experience: number of parameters
/// (`ModelParams_Exp/train_phase/train_stream/Task000/Exp000`) and their bytes
/// (`ModelBytes_Exp/...`). Avalanche has no such metric; the names follow its scheme.
#[derive(Debug, Default)]
pub struct ModelSize;

impl ModelSize {
    /// The metric (it has no option).
    pub fn new() -> Self {
        Self
    }
}

impl Metric for ModelSize {
    fn name(&self) -> String {
        "ModelSize".into()
    }

    /// No state: the values are read from the model.
    fn save_state(&self, _out: &mut StateDict) -> Result<()> {
        Ok(())
    }

    fn load_state(&mut self, _state: &StateDict) -> Result<()> {
        Ok(())
    }

    fn on(&mut self, ctx: &MetricContext<'_>, out: &mut MetricOutput) {
        if ctx.callback == Callback::AfterTrainingExp {
            out.scalar(ctx.exp_name("ModelParams_Exp"), ctx.model.param_count() as f64);
            out.scalar(ctx.exp_name("ModelBytes_Exp"), ctx.model.param_bytes() as f64);
        }
    }
}

/// A custom MAC counter: the model's layers and one sample's shape → MACs of one forward pass.
pub type MacCounter = Arc<dyn Fn(&[LayerInfo], &[usize]) -> u64 + Send + Sync>;

/// The configuration of [`MacMetric`]: Avalanche's `MAC_metrics(minibatch, epoch,
/// experience)`, and the output sizes of the model's convolutions (which the parameters do not
/// tell). A custom counter is not data: give it with [`MacMetric::with_counter`].
///
/// Avalanche defaults every flag to `False`; the default here is epoch and experience.
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_metrics::MacConfig;
/// // cl-models' SimpleCNN on 32 × 32 images: conv1 (padding 1) and conv2 (none) output 32 and
/// // 30 pixels a side, pooling halves to 15, conv3 and conv4 output 15 and 13, pooling to 6,
/// // and the 1 × 1 conv5 outputs 6.
/// let config = MacConfig::default().with_conv_output_sizes(vec![[32, 32], [30, 30], [15, 15], [13, 13], [6, 6]]);
/// assert_eq!(MacConfig::from_toml(&config.to_toml()?)?, config);
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MacConfig {
    /// When the count is emitted: `MAC_MB` (minibatch), `MAC_Epoch` (epoch), `MAC_Exp`
    /// (experience); `stream` must be off.
    pub granularity: Granularity,
    /// The spatial output sizes `[h, w]` of the model's convolutions, in declaration order
    /// (each at least 1 × 1); convolutions without one are left out of the count.
    pub conv_output_sizes: Vec<[usize; 2]>,
}

impl Default for MacConfig {
    fn default() -> Self {
        Self {
            granularity: Granularity { minibatch: false, epoch: true, experience: true, stream: false },
            conv_output_sizes: Vec::new(),
        }
    }
}

impl MacConfig {
    /// Sets when the count is emitted.
    pub fn with_granularity(mut self, granularity: Granularity) -> Self {
        self.granularity = granularity;
        self
    }

    /// Sets the output sizes of the convolutions.
    pub fn with_conv_output_sizes(mut self, sizes: Vec<[usize; 2]>) -> Self {
        self.conv_output_sizes = sizes;
        self
    }
}

impl Validate for MacConfig {
    /// `granularity_stream_off`, `conv_output_sizes_positive`.
    fn validate(&self) -> Result<()> {
        const C: &str = "MacConfig";
        rule(C, "granularity_stream_off", !self.granularity.stream, || {
            "MACs are not offered per stream: set granularity.stream = false".into()
        })?;
        rule(C, "conv_output_sizes_positive", self.conv_output_sizes.iter().flatten().all(|&s| s > 0), || {
            format!("conv_output_sizes = {:?}: every size must be at least 1 × 1", self.conv_output_sizes)
        })
    }
}

/// Multiply-accumulate operations of a forward pass on **one** sample, as Avalanche's
/// `MAC_metrics` (`MAC_MB` every training iteration, `MAC_Epoch` every epoch, `MAC_Exp` every
/// evaluated experience).
///
/// The model's layers are found by visiting its Burn module (`burn::nn::Linear` and
/// `burn::nn::conv::Conv2d`, wherever they are nested). A Linear layer counts `d_in · d_out`,
/// exactly, whatever the input. A convolution's count depends on its output's spatial size,
/// which the parameters do not tell (stride, padding and pooling between layers are not
/// visited): give the output sizes of the convolutions, in declaration order, in
/// [`MacConfig::conv_output_sizes`], or a whole counter with [`with_counter`](Self::with_counter)
/// (see [`conv2d_macs`](cl_core::evaluation::conv2d_macs)). Without either, convolutions are
/// left out and a warning is logged once. Unlike Avalanche (which omits the input channels of a
/// convolution), a convolution counts `c_out · c_in/groups · kh · kw · h_out · w_out`.
///
/// ```
/// use cl_metrics::{MacConfig, MacMetric};
/// let mac = MacMetric::new(MacConfig::default().with_conv_output_sizes(vec![[26, 26]]))?;
/// # let _ = mac;
/// # Ok::<(), cl_core::ClError>(())
/// ```
pub struct MacMetric {
    minibatch: bool,
    epoch: bool,
    experience: bool,
    conv_sizes: Vec<[usize; 2]>,
    counter: Option<MacCounter>,
    cache: Option<(Vec<LayerInfo>, u64)>,
    stale: bool,
    warned: bool,
}

impl std::fmt::Debug for MacMetric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MacMetric")
            .field("minibatch", &self.minibatch)
            .field("epoch", &self.epoch)
            .field("experience", &self.experience)
            .field("conv_sizes", &self.conv_sizes)
            .finish()
    }
}

impl MacMetric {
    /// The metric as configured; an error if `config` breaks a rule ([`MacConfig`]).
    pub fn new(config: MacConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            minibatch: config.granularity.minibatch,
            epoch: config.granularity.epoch,
            experience: config.granularity.experience,
            conv_sizes: config.conv_output_sizes,
            counter: None,
            cache: None,
            stale: false,
            warned: false,
        })
    }

    /// A custom counter (layers, sample shape → MACs), replacing the built-in one.
    pub fn with_counter(mut self, counter: impl Fn(&[LayerInfo], &[usize]) -> u64 + Send + Sync + 'static) -> Self {
        self.counter = Some(Arc::new(counter));
        self
    }

    /// MACs of one forward pass given the layers (the built-in counter).
    pub fn count(&mut self, layers: &[LayerInfo], sample_shape: &[usize]) -> u64 {
        if let Some(c) = &self.counter {
            return c(layers, sample_shape);
        }
        let mut convs = 0;
        let mut total = 0;
        for l in layers {
            match &l.kind {
                LayerKind::Linear { d_in, d_out } => total += linear_macs(*d_in, *d_out),
                LayerKind::Conv2d { c_out, c_in_per_group, kernel } => {
                    match self.conv_sizes.get(convs) {
                        Some([h, w]) => total += (c_out * c_in_per_group * kernel[0] * kernel[1] * h * w) as u64,
                        None if !self.warned => {
                            tracing::warn!(
                                layer = %l.path,
                                "MAC count: no output size for this convolution (MacConfig::conv_output_sizes); left out"
                            );
                            self.warned = true;
                        }
                        None => {}
                    }
                    convs += 1;
                }
            }
        }
        total
    }

    /// The configuration (and whether a custom counter replaces the built-in one), checked on
    /// resume.
    fn config(&self) -> (MacConfig, bool) {
        let granularity =
            Granularity { minibatch: self.minibatch, epoch: self.epoch, experience: self.experience, stream: false };
        (MacConfig { granularity, conv_output_sizes: self.conv_sizes.clone() }, self.counter.is_some())
    }

    fn macs(&mut self, ctx: &MetricContext<'_>) -> Option<u64> {
        let shape = ctx.batch?.sample_shape.clone();
        let layers = ctx.model.layers();
        if let Some((cached, v)) = &self.cache
            && *cached == layers
        {
            return Some(*v);
        }
        let v = self.count(&layers, &shape);
        self.cache = Some((layers, v));
        Some(v)
    }
}

impl Metric for MacMetric {
    fn name(&self) -> String {
        "MAC".into()
    }

    /// Saves the last count with the layers it was computed for, and whether it must be
    /// computed again.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config())?;
        out.put("cache", &self.cache)?;
        out.put("stale", &self.stale)?;
        out.put("warned", &self.warned)
    }

    fn load_state(&mut self, state: &StateDict) -> Result<()> {
        state.check_config("config", &self.config())?;
        self.cache = state.get("cache")?;
        self.stale = state.get("stale")?;
        self.warned = state.get("warned")?;
        Ok(())
    }

    fn on(&mut self, ctx: &MetricContext<'_>, out: &mut MetricOutput) {
        // The layers are visited once per epoch / evaluated experience (every iteration only for
        // `MAC_MB`), at the first iteration, where the sample shape is known.
        match ctx.callback {
            Callback::BeforeTrainingEpoch | Callback::BeforeEvalExp => self.stale = true,
            Callback::AfterTrainingIteration if self.minibatch || self.epoch => {
                if self.stale || self.minibatch {
                    self.stale = self.macs(ctx).is_none();
                }
                if self.minibatch
                    && let Some((_, v)) = &self.cache
                {
                    out.scalar(ctx.task_name("MAC_MB"), *v as f64);
                }
            }
            Callback::AfterTrainingEpoch if self.epoch => {
                if let Some((_, v)) = &self.cache {
                    out.scalar(ctx.task_name("MAC_Epoch"), *v as f64);
                }
            }
            Callback::AfterEvalIteration if self.experience && self.stale => {
                self.stale = self.macs(ctx).is_none();
            }
            Callback::AfterEvalExp if self.experience => {
                if let Some((_, v)) = &self.cache {
                    out.scalar(ctx.exp_name("MAC_Exp"), *v as f64);
                }
            }
            _ => {}
        }
    }
}
