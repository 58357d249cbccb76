//! [`NcmClassifier`]: nearest class mean on features (Avalanche's `NCMClassifier`).

use std::collections::BTreeMap;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, rule};
use cl_core::data::{ClassificationDataLoader, ClassificationDataset, DataLoader, DataLoaderConfig, MiniBatch};
use cl_core::{Adaptation, ClError, Result};
use serde::{Deserialize, Serialize};

use crate::dynamic::incremental::host_values;
use crate::headed::{Backbone, Head, HeadedModel};

/// Configuration of an [`NcmClassifier`]: Avalanche's `NCMClassifier(normalize=True)`, plus the
/// width of the features (Avalanche infers it from the first means).
///
/// ```
/// use cl_core::config::{ConfigFile, Validate};
/// use cl_models::NcmConfig;
/// let config = NcmConfig::new(64).with_normalize(false);
/// assert_eq!(NcmConfig::from_toml("feature_size = 64\nnormalize = false").unwrap(), config);
/// assert_eq!(NcmConfig::new(0).validate().unwrap_err().rule(), Some("feature_size_positive"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NcmConfig {
    /// Width of the features (and of the class means); required.
    pub feature_size: usize,
    /// Whether the features are scaled to unit L2 norm before the distances (true).
    #[serde(default = "default_normalize")]
    pub normalize: bool,
}

impl NcmConfig {
    /// A configuration for `feature_size`-wide features, with Avalanche's default
    /// (`normalize = true`).
    pub fn new(feature_size: usize) -> Self {
        Self { feature_size, normalize: default_normalize() }
    }

    /// Sets [`feature_size`](Self::feature_size).
    pub fn with_feature_size(mut self, feature_size: usize) -> Self {
        self.feature_size = feature_size;
        self
    }

    /// Sets [`normalize`](Self::normalize).
    pub fn with_normalize(mut self, normalize: bool) -> Self {
        self.normalize = normalize;
        self
    }

    /// The classifier, with no class means yet (after [`validate`](Validate::validate)). It has
    /// no parameters, hence no device.
    pub fn init(&self) -> Result<NcmClassifier> {
        self.validate()?;
        Ok(NcmClassifier { means: BTreeMap::new(), feature_size: self.feature_size, normalize: self.normalize })
    }
}

fn default_normalize() -> bool {
    true
}

impl Validate for NcmConfig {
    fn validate(&self) -> Result<()> {
        rule("NcmConfig", "feature_size_positive", self.feature_size > 0, || "feature_size must be at least 1".into())
    }
}

/// Nearest-class-mean classifier (Avalanche's `NCMClassifier`), built by [`NcmConfig::init`]:
/// the logit of class `c` is `−‖x − μ_c‖₂`. With `normalize`, the features are scaled to unit
/// L2 norm first (the stored means are used as given, as in Avalanche: compute them from
/// normalised features if that is what you want).
///
/// Its outputs cover classes `0..=max class with a mean`; a class below that without a mean
/// has a zero mean, and adaptation before evaluation gives the experience's classes without a
/// mean a zero mean (Avalanche's `init_missing_classes` / `eval_adaptation`). The means are
/// updated from a dataset or a buffer with [`class_means`] and
/// [`update_class_means`](Self::update_class_means) /
/// [`replace_class_means`](Self::replace_class_means); the classifier has no parameters. The
/// means table is uploaded at each forward pass (a `classes × features` copy: NCM is meant for
/// evaluation).
///
/// ```
/// use std::collections::BTreeMap;
/// use cl_models::NcmConfig;
/// let mut ncm = NcmConfig::new(2).with_normalize(false).init().unwrap();
/// ncm.replace_class_means(BTreeMap::from([(0, vec![0.0, 0.0]), (1, vec![1.0, 1.0])])).unwrap();
/// assert_eq!(ncm.num_classes(), 2);
/// ```
#[doc(alias = "NCMClassifier")]
#[derive(Module, Debug)]
pub struct NcmClassifier {
    #[module(skip)]
    means: BTreeMap<u32, Vec<f32>>,
    #[module(skip)]
    feature_size: usize,
    #[module(skip)]
    normalize: bool,
}

impl NcmClassifier {
    /// Width of the features.
    pub fn feature_size(&self) -> usize {
        self.feature_size
    }

    /// Whether the features are scaled to unit L2 norm.
    pub fn normalize(&self) -> bool {
        self.normalize
    }

    /// Number of outputs: the largest class with a mean, plus one (0 without means).
    pub fn num_classes(&self) -> usize {
        self.means.keys().next_back().map_or(0, |&c| c as usize + 1)
    }

    /// The stored class means (normalised if `normalize`).
    pub fn class_means(&self) -> &BTreeMap<u32, Vec<f32>> {
        &self.means
    }

    fn check(&self, means: &BTreeMap<u32, Vec<f32>>) -> Result<()> {
        for (c, m) in means {
            if m.len() != self.feature_size {
                return Err(ClError::config(
                    "class_means",
                    format!("the mean of class {c} has {} values; the features have {}", m.len(), self.feature_size),
                ));
            }
            if m.iter().any(|v| !v.is_finite()) {
                return Err(ClError::config("class_means", format!("the mean of class {c} is not finite")));
            }
        }
        Ok(())
    }

    fn store(&mut self, class: u32, mean: Vec<f32>) {
        self.means.insert(class, mean);
    }

    /// Replaces all class means.
    pub fn replace_class_means(&mut self, means: BTreeMap<u32, Vec<f32>>) -> Result<()> {
        self.check(&means)?;
        self.means.clear();
        for (c, m) in means {
            self.store(c, m);
        }
        Ok(())
    }

    /// Sets the means of new classes (and of classes whose mean is all zeros) and moves those of
    /// known classes towards the new values: `μ ← momentum·μ_new + (1 − momentum)·μ` — 1 replaces,
    /// 0 keeps (Avalanche's `update_class_means_dict`, momentum 0.5 by default there).
    pub fn update_class_means(&mut self, means: BTreeMap<u32, Vec<f32>>, momentum: f32) -> Result<()> {
        self.check(&means)?;
        if !(0.0..=1.0).contains(&momentum) {
            return Err(ClError::config("momentum", format!("{momentum} is not in [0, 1]")));
        }
        for (c, new) in means {
            let mean = match self.means.get(&c) {
                Some(old) if old.iter().any(|&v| v != 0.0) => {
                    old.iter().zip(&new).map(|(o, n)| momentum * n + (1.0 - momentum) * o).collect()
                }
                _ => new,
            };
            self.store(c, mean);
        }
        Ok(())
    }

    /// Logits `[batch, num_classes]` of features `[batch, feature_size]`.
    pub fn forward_features(&self, features: Tensor<2>) -> Tensor<2> {
        let [batch, f] = features.dims();
        let device = features.device();
        let classes = self.num_classes();
        if classes == 0 {
            return Tensor::zeros([batch, 0], &device);
        }
        let mut table = vec![0.0f32; classes * f];
        for (&c, m) in &self.means {
            table[c as usize * f..(c as usize + 1) * f].copy_from_slice(m);
        }
        let means = Tensor::<2>::from_data(TensorData::new(table, [classes, f]), &device);
        let x = if self.normalize {
            let norm = features.clone().powf_scalar(2.0).sum_dim(1).sqrt().clamp_min(1e-12);
            features / norm
        } else {
            features
        };
        // ‖x − μ‖² = ‖x‖² − 2·x·μᵀ + ‖μ‖²
        let x2 = x.clone().powf_scalar(2.0).sum_dim(1);
        let m2 = means.clone().powf_scalar(2.0).sum_dim(1).reshape([1, classes]);
        let d2 = (x2 - x.matmul(means.transpose()).mul_scalar(2.0) + m2).clamp_min(0.0);
        d2.sqrt().neg()
    }
}

/// Per-class means of `backbone`'s features over `dataset` (batches of `batch_size` on
/// `device`, the backbone in inference mode): one matrix product per batch on the device and one
/// read back at the end.
pub fn class_means<B: Backbone>(
    backbone: &B,
    dataset: &ClassificationDataset,
    batch_size: usize,
    device: &Device,
) -> Result<BTreeMap<u32, Vec<f32>>> {
    let model = backbone.valid().to_device(device);
    let classes: Vec<u32> = dataset.classes().into_iter().collect();
    let Some(&max) = classes.last() else {
        return Ok(BTreeMap::new());
    };
    let n_classes = max as usize + 1;
    let mut loader = ClassificationDataLoader::new(dataset.clone(), DataLoaderConfig::eval(batch_size))?;
    let mut sums: Option<Tensor<2>> = None;
    let mut counts = vec![0usize; n_classes];
    while let Some(batch) = loader.next_batch(device) {
        let batch = batch?;
        let n = batch.len();
        let mut one_hot = vec![0.0f32; n * n_classes];
        for (i, &y) in batch.targets.iter().enumerate() {
            one_hot[i * n_classes + y as usize] = 1.0;
            counts[y as usize] += 1;
        }
        let one_hot = Tensor::<2>::from_data(TensorData::new(one_hot, [n, n_classes]), device);
        let part = one_hot.transpose().matmul(model.embed(&batch));
        sums = Some(match sums {
            Some(s) => s + part,
            None => part,
        });
    }
    let Some(sums) = sums else {
        return Ok(BTreeMap::new());
    };
    let f = sums.dims()[1];
    let values = host_values(sums);
    Ok(classes
        .into_iter()
        .filter(|&c| counts[c as usize] > 0)
        .map(|c| {
            let k = counts[c as usize] as f32;
            (c, values[c as usize * f..(c as usize + 1) * f].iter().map(|v| v / k).collect())
        })
        .collect())
}

impl NcmClassifier {
    /// Gives the classes of an evaluated experience without a mean a zero mean (Avalanche's
    /// `eval_adaptation`), so that the outputs cover them.
    fn adapt(&mut self, ctx: &Adaptation<'_>) -> Result<()> {
        if !ctx.training {
            crate::dynamic::incremental::check_classes(ctx, &ctx.experience.classes_in_this_experience)?;
            for &c in &ctx.experience.classes_in_this_experience {
                self.means.entry(c).or_insert_with(|| vec![0.0; self.feature_size]);
            }
        }
        Ok(())
    }
}

impl Head for NcmClassifier {
    fn adaptation(&mut self, ctx: &Adaptation<'_>) -> Result<()> {
        self.adapt(ctx)
    }

    fn forward(&self, features: Tensor<2>, _batch: &MiniBatch) -> Tensor<2> {
        self.forward_features(features)
    }

    fn num_outputs(&self) -> Option<usize> {
        Some(self.num_classes())
    }

    fn adapts_outputs(&self) -> bool {
        true
    }

    /// The configuration (checked on load) and the class means: the classes as a value, the
    /// means as one `[classes, feature_size]` tensor (exact bits).
    fn save_extra_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &NcmConfig::new(self.feature_size).with_normalize(self.normalize))?;
        let classes: Vec<u32> = self.means.keys().copied().collect();
        let values: Vec<f32> = self.means.values().flatten().copied().collect();
        out.put("classes", &classes)?;
        out.put_data("means", TensorData::new(values, [classes.len(), self.feature_size]));
        Ok(())
    }

    /// Replaces the class means by the saved ones; a checkpoint of a classifier with another
    /// configuration is [`ClError::CheckpointMismatch`].
    fn load_extra_state(&mut self, state: &StateDict) -> Result<()> {
        state.check_config("config", &NcmConfig::new(self.feature_size).with_normalize(self.normalize))?;
        let classes: Vec<u32> = state.get("classes")?;
        let data = state.data("means")?;
        let bad = |reason: String| ClError::CheckpointEntry {
            component: state.component().to_string(),
            key: "means".into(),
            reason,
        };
        if data.shape().to_vec() != [classes.len(), self.feature_size] {
            return Err(bad(format!(
                "has shape {:?}, expected [{}, {}]",
                data.shape(),
                classes.len(),
                self.feature_size
            )));
        }
        let values = data.try_into_vec::<f32>().map_err(|e| bad(format!("is not f32: {e:?}")))?;
        // `feature_size` is at least 1 (a rule of the configuration).
        let means = classes.into_iter().zip(values.chunks_exact(self.feature_size).map(<[f32]>::to_vec)).collect();
        self.replace_class_means(means)
    }
}

impl<B: Backbone> HeadedModel<B, NcmClassifier> {
    /// Replaces the class means with those of `dataset` under the current features.
    pub fn update_from_dataset(
        &mut self,
        dataset: &ClassificationDataset,
        batch_size: usize,
        device: &Device,
    ) -> Result<()> {
        let means = class_means(&self.features, dataset, batch_size, device)?;
        self.classifier.replace_class_means(means)
    }
}
