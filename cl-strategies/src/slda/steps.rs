//! [`StreamingLdaSteps`]: the template's steps of [`StreamingLda`](super::StreamingLda).

use burn::tensor::{Device, Tensor, TensorData};
use cl_core::checkpoint::StateDict;
use cl_core::config::Validate;
use cl_core::data::MiniBatch;
use cl_core::{ClError, Model, Result, StrategyState, TemplateSteps};

use super::lda::{LdaWeights, SldaStatistics};
use super::{SldaFeatures, StreamingLdaConfig};

/// The steps of [`StreamingLda`](super::StreamingLda): features from the model in evaluation
/// mode, the LDA scores as the output, the fit of the statistics in the optimizer step's place,
/// no backward pass, no optimizer.
#[derive(Debug)]
pub struct StreamingLdaSteps {
    config: StreamingLdaConfig,
    /// Built at the first features (their width fixes `input_size` when the config leaves it
    /// open).
    statistics: Option<SldaStatistics>,
    /// The classifier of the statistics at `num_updates`, reused until they change.
    weights: Option<LdaWeights>,
    /// The training batch's features (host, row-major) and labels, fitted at the update.
    pending: Option<(Vec<f32>, Vec<u32>)>,
}

impl StreamingLdaSteps {
    /// No statistics yet; an error if `config` breaks a rule.
    pub fn new(config: StreamingLdaConfig) -> Result<Self> {
        config.validate()?;
        let statistics = match config.input_size {
            Some(d) => {
                Some(SldaStatistics::new(config.num_classes, d, config.shrinkage, config.streaming_update_sigma)?)
            }
            None => None,
        };
        Ok(Self { config, statistics, weights: None, pending: None })
    }

    /// The configuration.
    pub fn config(&self) -> &StreamingLdaConfig {
        &self.config
    }

    /// The statistics (class means, counts, covariance), once the features' width is known.
    pub fn statistics(&self) -> Option<&SldaStatistics> {
        self.statistics.as_ref()
    }

    /// The statistics, to change by hand (e.g. an offline covariance,
    /// [`SldaStatistics::set_covariance`]); `None` before the features' width is known (set
    /// [`StreamingLdaConfig::input_size`] to have them from the start).
    pub fn statistics_mut(&mut self) -> Option<&mut SldaStatistics> {
        self.weights = None;
        self.statistics.as_mut()
    }

    fn statistics_for(&mut self, width: usize) -> Result<&mut SldaStatistics> {
        if let Some(s) = &self.statistics
            && s.input_size() != width
        {
            return Err(ClError::InvalidUse(format!(
                "StreamingLDA: the features have {width} values but its statistics have {} (StreamingLdaConfig::\
                 input_size, or the width of the first features): use a feature extractor of fixed width, or set \
                 input_size to its width",
                s.input_size()
            )));
        }
        if self.statistics.is_none() {
            let c = &self.config;
            self.statistics = Some(SldaStatistics::new(c.num_classes, width, c.shrinkage, c.streaming_update_sigma)?);
        }
        Ok(self.statistics.as_mut().expect("set above"))
    }

    /// The feature vectors of a batch by `model` (already in evaluation mode).
    fn features<M: Model>(&self, model: &M, batch: &MiniBatch) -> Result<Tensor<2>> {
        model.check_batch(batch)?;
        match self.config.features {
            SldaFeatures::Output => Ok(model.forward(batch)),
            SldaFeatures::Features => model.features(batch).ok_or_else(|| {
                ClError::InvalidUse(
                    "StreamingLDA reads the model's features (SldaFeatures::Features) but Model::features returns \
                     None for this model: implement it, or read the forward output (SldaFeatures::Output)"
                        .into(),
                )
            }),
        }
    }

    /// The scores `x·Wᵀ − c` of `[batch, input_size]` features on `device` (theirs), with the
    /// classifier of the statistics now (solved again only when they changed); builds the
    /// statistics at the first call if the configuration leaves `input_size` open.
    pub fn scores(&mut self, features: Tensor<2>, device: &Device) -> Result<Tensor<2>> {
        let [_, width] = features.dims();
        let statistics = self.statistics_for(width)?;
        let updates = statistics.num_updates();
        if self.weights.as_ref().is_none_or(|w| w.num_updates != updates) {
            let statistics = self.statistics.as_ref().expect("built above");
            self.weights = Some(statistics.weights()?);
        }
        let w = self.weights.as_ref().expect("set above");
        let classes = self.config.num_classes;
        // Wᵀ as [width, classes]: column k is W_k.
        let mut transposed = vec![0.0f32; width * classes];
        for (k, row) in w.weights.chunks_exact(width).enumerate() {
            for (i, v) in row.iter().enumerate() {
                transposed[i * classes + k] = *v as f32;
            }
        }
        let weights = Tensor::<2>::from_data(TensorData::new(transposed, [width, classes]), device);
        let bias = w.bias.iter().map(|&b| b as f32).collect::<Vec<f32>>();
        let bias = Tensor::<2>::from_data(TensorData::new(bias, [1, classes]), device);
        Ok(features.matmul(weights).sub(bias))
    }

    fn check_labels(&self, targets: &[u32]) -> Result<()> {
        match targets.iter().find(|&&y| y as usize >= self.config.num_classes) {
            Some(&y) => Err(ClError::InvalidUse(format!(
                "StreamingLDA has num_classes = {} but the batch holds class {y}: set StreamingLdaConfig::num_classes \
                 to the number of classes of the whole stream",
                self.config.num_classes
            ))),
            None => Ok(()),
        }
    }
}

impl<M: Model> TemplateSteps<M> for StreamingLdaSteps {
    fn name(&self) -> String {
        "StreamingLdaSteps".into()
    }

    /// The model's outputs are features, not classes: the labels are checked against
    /// `num_classes` by the forward step, with an error naming that setting.
    fn num_outputs(&self, _state: &StrategyState<M>) -> Option<usize> {
        None
    }

    /// No optimizer: SLDA does not back-propagate (Avalanche's `make_optimizer` does nothing).
    fn make_optimizer(&mut self, _state: &mut StrategyState<M>) -> Result<()> {
        Ok(())
    }

    /// The scores of the batch's features (model in evaluation mode, no gradients) by the
    /// statistics so far; while training, the features are kept for the fit.
    fn forward(&mut self, state: &mut StrategyState<M>) -> Result<Tensor<2>> {
        let batch = state.current_batch()?;
        self.check_labels(&batch.targets)?;
        let features = if state.is_training() {
            // The training model as Avalanche's `model.eval()` under `no_grad`.
            self.features(&state.model().valid(), batch)?
        } else {
            self.features(state.forward_model(), batch)?
        };
        if state.is_training() {
            let [rows, width] = features.dims();
            let host = features
                .clone()
                .into_data()
                .try_into_vec_as::<f32>()
                .map_err(|e| ClError::InvalidUse(format!("reading StreamingLDA's features back: {e:?}")))?;
            debug_assert_eq!(host.len(), rows * width);
            self.pending = Some((host, batch.targets.clone()));
        }
        let device = features.device();
        self.scores(features, &device)
    }

    /// Nothing to back-propagate.
    fn backward(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        state.grads = None;
        Ok(())
    }

    /// The fit of the batch's samples, in order (Avalanche's per-sample `fit` between
    /// `before_update` and `after_update`).
    fn optimizer_step(&mut self, _state: &mut StrategyState<M>) -> Result<()> {
        let (features, targets) = self.pending.take().ok_or(ClError::MissingState("StreamingLDA's batch features"))?;
        if targets.is_empty() {
            return Ok(());
        }
        let width = features.len() / targets.len();
        self.statistics_for(width)?.fit(&features, &targets)
    }

    /// The configuration (checked on load) and the statistics.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config)?;
        match &self.statistics {
            Some(s) => {
                let (c, d) = (s.num_classes(), s.input_size());
                out.put("input_size", &d)?;
                out.put("counts", &s.counts().to_vec())?;
                out.put("num_updates", &s.num_updates())?;
                out.put_data("means", TensorData::new(s.means().to_vec(), [c * d]));
                out.put_data("covariance", TensorData::new(s.covariance().to_vec(), [d * d]));
            }
            None => out.put("input_size", &0usize)?,
        }
        Ok(())
    }

    fn load_state(&mut self, state: &StateDict, _strategy: &StrategyState<M>) -> Result<()> {
        state.check_config("config", &self.config)?;
        self.weights = None;
        self.pending = None;
        let d: usize = state.get("input_size")?;
        if d == 0 {
            self.statistics = None;
            return Ok(());
        }
        let read = |key: &str| -> Result<Vec<f64>> {
            state.data(key)?.convert::<f64>().try_into_vec::<f64>().map_err(|e| ClError::CheckpointEntry {
                component: state.component().to_string(),
                key: key.into(),
                reason: format!("{e:?}"),
            })
        };
        let c = &self.config;
        let mut statistics = SldaStatistics::new(c.num_classes, d, c.shrinkage, c.streaming_update_sigma)?;
        statistics.restore(read("means")?, state.get("counts")?, read("covariance")?, state.get("num_updates")?)?;
        self.statistics = Some(statistics);
        Ok(())
    }
}
