//! [`CwrStarPlugin`]: CWR* (Lomonaco & Maltoni, 2017/2019; Avalanche's `CWRStarPlugin`),
//! consolidation of the output layer's per-class weights across experiences.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Tensor, TensorData};
use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, rule};
use cl_core::{ClError, Model, ModelPart, Plugin, Result, StatePart, StrategyState, freeze};
use serde::{Deserialize, Serialize};

use crate::persist::bad_entry;
use crate::regularization::{for_each_param, last_linear_layer};

/// CWR*'s hyper-parameters, with the defaults of Avalanche's `CWRStarPlugin(model,
/// cwr_layer_name=None, freeze_remaining_model=True)`.
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_plugins::CwrStarConfig;
/// let auto = CwrStarConfig::default(); // the last linear layer, the rest frozen
/// let named = CwrStarConfig::default().with_cwr_layer_name("classifier");
/// assert_eq!(CwrStarConfig::from_toml("cwr_layer_name = \"classifier\"")?, named);
/// assert!(CwrStarConfig::from_toml("cwr_layer_name = \"\"").is_err());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "CWRStarPlugin")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CwrStarConfig {
    /// The path of the CWR layer in the model (`classifier` for `SimpleMlp`), a
    /// `burn::nn::Linear`; `None` (default, as Avalanche) picks the model's last linear layer
    /// (Avalanche's `get_last_fc_layer`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwr_layer_name: Option<String>,
    /// Train only the CWR layer from the second experience on, the rest of the model frozen as
    /// Avalanche freezes it (no gradient, evaluation mode: [`cl_core::freeze`]; default `true`).
    pub freeze_remaining_model: bool,
}

impl Default for CwrStarConfig {
    /// Avalanche's defaults: the last linear layer, the rest of the model frozen.
    fn default() -> Self {
        Self { cwr_layer_name: None, freeze_remaining_model: true }
    }
}

impl CwrStarConfig {
    /// Names the CWR layer (its path in the model).
    pub fn with_cwr_layer_name(mut self, cwr_layer_name: impl Into<String>) -> Self {
        self.cwr_layer_name = Some(cwr_layer_name.into());
        self
    }

    /// Sets `freeze_remaining_model`.
    pub fn with_freeze_remaining_model(mut self, freeze: bool) -> Self {
        self.freeze_remaining_model = freeze;
        self
    }
}

impl Validate for CwrStarConfig {
    /// The rules that do not need the model; [`CwrStarPlugin::new`] also checks
    /// `cwr_layer_name_in_model` (the layer exists in the model).
    fn validate(&self) -> Result<()> {
        const C: &str = "CwrStarConfig";
        rule(C, "cwr_layer_name_not_empty", self.cwr_layer_name.as_ref().is_none_or(|n| !n.is_empty()), || {
            "cwr_layer_name is empty: give the layer's path (e.g. `classifier`), or leave it out for the \
             model's last linear layer"
                .into()
        })
    }
}

/// CWR*: Avalanche's `CWRStarPlugin` (`avalanche/training/plugins/cwr_star.py`), the plugin of
/// the `CwrStar` strategy, step by step. The CWR layer is a linear layer named by its path in
/// the model, or the model's last linear layer; its weight is `{name}.weight`, a rank-2 Burn
/// `Linear` weight `[d_in, d_out]`, so class `c` is **column** `c` (Avalanche's row `c` of the
/// PyTorch weight). As in Avalanche the bias is never touched.
///
/// - `before_training_exp`: counts the patterns of each class in the experience's dataset
///   (`cur_j`, the classes with a count > 0 being the current classes); then, as Avalanche's
///   `reset_weights`, sets the **whole** weight to 0 and loads the consolidated column of each
///   current class that was already consolidated (so in an experience with only new classes
///   the whole weight is 0). From the second experience on, with `freeze_remaining_model`,
///   everything but the CWR layer is frozen as Avalanche's `freeze_other_layers` freezes it
///   (`freeze_everything` then `unfreeze_everything(cwr_layer)`), through [`cl_core::freeze`]:
///   the frozen layers get no gradient (so no optimizer step: no momentum or weight decay
///   either) and behave as in evaluation — dropout off, batch-norm running statistics used and
///   kept — while the CWR layer trains. As in Avalanche nothing is unfrozen afterwards (a
///   model rebuilt from a checkpoint is frozen again at the next experience).
/// - `after_training_exp`: consolidation. With `avg` the mean of all the weights of the
///   current classes' columns, for each current class `j`: `w'_j = w_j − avg`; if `j` was
///   consolidated before, `wpast_j = √(past_j / cur_j)`,
///   `cw_j ← (cw_j·wpast_j + w'_j) / (wpast_j + 1)` and `past_j += cur_j`; otherwise
///   `cw_j = w'_j` and `past_j = cur_j`. Then every consolidated column is loaded into the
///   layer (`set_consolidate_weights`), which is what evaluation then uses; columns of classes
///   never trained keep the value they had (0 after a reset).
///
/// The layer is modified through a [`ModuleMapper`] that replaces the weight tensor with
/// [`Param::map`], keeping its id (optimizer state stays attached) and its `require_grad`.
/// Declares [`StatePart::Model`] (the weight resets and loads and the freezing, through
/// `map_model`).
///
/// # Differences from Avalanche
///
/// - Avalanche stores the consolidation state on the model (`model.saved_weights`, ...); here
///   it lives in the plugin ([`consolidated_weights`](Self::consolidated_weights), ...).
///
/// ```
/// use burn::tensor::Device;
/// use cl_core::{OptimizerSpec, Strategy};
/// use cl_models::SimpleMlpConfig;
/// use cl_plugins::{CwrStarConfig, CwrStarPlugin};
/// let device = Device::default();
/// let model = SimpleMlpConfig::new().init(&device)?;
/// let cwr = CwrStarPlugin::new(&model, CwrStarConfig::default())?;
/// assert_eq!(cwr.layer_name(), "classifier"); // SimpleMlp's last linear layer
/// let strategy = Strategy::builder(model, OptimizerSpec::sgd(0.01), device).plugin(cwr).build()?;
/// assert!(strategy.plugin::<CwrStarPlugin>().is_some());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "CWRStarPlugin")]
pub struct CwrStarPlugin {
    config: CwrStarConfig,
    layer: String,
    saved_weights: BTreeMap<u32, Vec<f32>>,
    past_j: BTreeMap<u32, usize>,
    cur_j: BTreeMap<u32, usize>,
    cur_class: Vec<u32>,
    freeze_now: bool,
}

/// The weight of the CWR layer read back to the host: row-major `[d_in, d_out]`.
struct LayerWeight {
    values: Vec<f32>,
    d_in: usize,
    d_out: usize,
}

impl LayerWeight {
    fn column(&self, c: usize) -> Vec<f32> {
        (0..self.d_in).map(|i| self.values[i * self.d_out + c]).collect()
    }

    fn set_column(&mut self, c: usize, col: &[f32]) {
        for (i, v) in col.iter().enumerate() {
            self.values[i * self.d_out + c] = *v;
        }
    }
}

fn weight_path(layer: &str) -> String {
    if layer.is_empty() { "weight".to_string() } else { format!("{layer}.weight") }
}

fn unknown_layer(layer: &str) -> ClError {
    ClError::InvalidConfig {
        config: "CwrStarConfig",
        rule: "cwr_layer_name_in_model",
        reason: format!("the model has no linear layer `{layer}` (no rank-2 parameter `{}`)", weight_path(layer)),
    }
}

/// Replaces the rank-2 parameter at `path` by `values` (same shape, device and
/// `require_grad`; same id).
struct ReplaceWeight<'a> {
    target: &'a str,
    path: Vec<String>,
    values: Option<Vec<f32>>,
}

impl ModuleMapper for ReplaceWeight<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if D != 2 || self.path.join(".") != self.target {
            return param;
        }
        let Some(values) = self.values.take() else {
            return param;
        };
        param.map(|t| {
            let dims = t.dims();
            let device = t.device();
            let track = t.is_require_grad();
            let new = Tensor::<D>::from_data(TensorData::new(values, dims.to_vec()), &device);
            if track { new.require_grad() } else { new }
        })
    }
}

impl CwrStarPlugin {
    /// A CWR* plugin for `model` (the model the strategy will train: only its layout is
    /// read). An error ([`ClError::InvalidConfig`]) if `config` breaks one of its rules, or
    /// (rule `cwr_layer_name_in_model`) if `model` has no rank-2 parameter
    /// `{cwr_layer_name}.weight` — without a name, no `burn::nn::Linear` layer.
    pub fn new<M: Module>(model: &M, config: CwrStarConfig) -> Result<Self> {
        config.validate()?;
        let layer = match &config.cwr_layer_name {
            Some(name) => name.clone(),
            None => last_linear_layer(model).ok_or_else(|| ClError::InvalidConfig {
                config: "CwrStarConfig",
                rule: "cwr_layer_name_in_model",
                reason: "the model has no `burn::nn::Linear` layer to use as the CWR layer: name the layer \
                         (cwr_layer_name)"
                    .into(),
            })?,
        };
        let plugin = Self {
            config,
            layer,
            saved_weights: BTreeMap::new(),
            past_j: BTreeMap::new(),
            cur_j: BTreeMap::new(),
            cur_class: Vec::new(),
            freeze_now: false,
        };
        plugin.read_weight(model)?;
        Ok(plugin)
    }

    /// The hyper-parameters, as given.
    pub fn config(&self) -> &CwrStarConfig {
        &self.config
    }

    /// The CWR layer's path (the configured one, or the detected last linear layer; `""` when
    /// the model itself is a `Linear`).
    pub fn layer_name(&self) -> &str {
        &self.layer
    }

    /// The consolidated column (length `d_in`) of each consolidated class.
    pub fn consolidated_weights(&self) -> &BTreeMap<u32, Vec<f32>> {
        &self.saved_weights
    }

    /// The number of patterns seen so far per consolidated class (`past_j`).
    pub fn past_counts(&self) -> &BTreeMap<u32, usize> {
        &self.past_j
    }

    /// The number of patterns per class in the current (or last) experience (`cur_j`).
    pub fn current_counts(&self) -> &BTreeMap<u32, usize> {
        &self.cur_j
    }

    fn read_weight<M: Module>(&self, model: &M) -> Result<LayerWeight> {
        let target = weight_path(&self.layer);
        let mut found: Option<(Vec<usize>, Tensor<1>)> = None;
        for_each_param(model, |name, _, _, dims, t| {
            if found.is_none() && name == target && dims.len() == 2 {
                found = Some((dims, t));
            }
        });
        let (dims, t) = found.ok_or_else(|| unknown_layer(&self.layer))?;
        let values = t
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| ClError::config("cwr_layer_name", format!("reading `{target}`: {e:?}")))?;
        Ok(LayerWeight { values, d_in: dims[0], d_out: dims[1] })
    }

    fn write_weight<M: Model>(&self, state: &mut StrategyState<M>, w: LayerWeight) -> Result<()> {
        let target = weight_path(&self.layer);
        let mut mapper = ReplaceWeight { target: &target, path: Vec::new(), values: Some(w.values) };
        state.map_model(|m| m.map(&mut mapper))
    }

    fn check_classes(&self, w: &LayerWeight) -> Result<()> {
        match self.cur_class.iter().find(|&&c| c as usize >= w.d_out) {
            Some(&label) => Err(ClError::LabelOutOfRange { label, outputs: w.d_out }),
            None => Ok(()),
        }
    }

    /// Avalanche's `reset_weights(cur_class)`: the whole weight to 0, then the consolidated
    /// columns of the current classes.
    fn reset_weights<M: Model>(&self, state: &mut StrategyState<M>) -> Result<()> {
        let mut w = self.read_weight(state.model())?;
        self.check_classes(&w)?;
        w.values.iter_mut().for_each(|v| *v = 0.0);
        for c in &self.cur_class {
            if let Some(saved) = self.saved_weights.get(c) {
                w.set_column(*c as usize, saved);
            }
        }
        self.write_weight(state, w)
    }

    /// AR1's addition after `before_training_exp` (Avalanche's `AR1._before_training_exp`):
    /// the patterns replayed during the experience count for their classes
    /// (`cur_j[c] += counts[c]`), the current classes become every class with a count, and the
    /// weight is reset again for them (so the replayed classes' consolidated columns are
    /// loaded, trained and consolidated with the new ones).
    pub fn add_replayed_counts<M: Model>(
        &mut self,
        counts: &BTreeMap<u32, usize>,
        state: &mut StrategyState<M>,
    ) -> Result<()> {
        for (&c, &n) in counts {
            *self.cur_j.entry(c).or_insert(0) += n;
        }
        self.cur_class = self.cur_j.iter().filter(|(_, n)| **n > 0).map(|(c, _)| *c).collect();
        self.reset_weights(state)
    }

    /// Avalanche's `consolidate_weights`.
    fn consolidate(&mut self, w: &LayerWeight) {
        if self.cur_class.is_empty() {
            return;
        }
        let cols: Vec<Vec<f32>> = self.cur_class.iter().map(|&c| w.column(c as usize)).collect();
        let n = (cols.len() * w.d_in).max(1) as f64;
        let globavg = (cols.iter().flatten().map(|v| *v as f64).sum::<f64>() / n) as f32;
        for (&c, col) in self.cur_class.iter().zip(cols) {
            let new_w: Vec<f32> = col.iter().map(|v| v - globavg).collect();
            let cur = self.cur_j[&c];
            match self.saved_weights.get_mut(&c) {
                Some(saved) => {
                    let wpast = ((self.past_j[&c] as f64) / (cur as f64)).sqrt() as f32;
                    for (s, nw) in saved.iter_mut().zip(&new_w) {
                        *s = (*s * wpast + nw) / (wpast + 1.0);
                    }
                    *self.past_j.get_mut(&c).expect("consolidated classes have a count") += cur;
                }
                None => {
                    self.saved_weights.insert(c, new_w);
                    self.past_j.insert(c, cur);
                }
            }
        }
    }
}

impl<M: Model> Plugin<M> for CwrStarPlugin {
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::Model]
    }

    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        self.freeze_now = self.config.freeze_remaining_model && state.clock().train_exp_counter > 0;
        let targets = state.current_experience()?.dataset.targets();
        let mut counts = BTreeMap::new();
        for t in targets {
            *counts.entry(t).or_insert(0usize) += 1;
        }
        self.cur_class = counts.iter().filter(|(_, n)| **n > 0).map(|(c, _)| *c).collect();
        self.cur_j = counts;
        self.reset_weights(state)?;
        if self.freeze_now {
            // freeze_other_layers: freeze_everything(model); unfreeze_everything(cwr_layer).
            let part = ModelPart::all_but([self.layer.as_str()]);
            state.map_model(|m| freeze(m, &part))?;
        }
        Ok(())
    }

    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let mut w = self.read_weight(state.model())?;
        self.check_classes(&w)?;
        self.consolidate(&w);
        // set_consolidate_weights
        for (c, saved) in &self.saved_weights {
            if (*c as usize) < w.d_out {
                w.set_column(*c as usize, saved);
            }
        }
        self.write_weight(state, w)?;
        self.freeze_now = false;
        Ok(())
    }

    /// The configuration and the CWR layer's path (both checked on load), the consolidated
    /// column of every class (exact `f32`s), the pattern counts (`past_j`, `cur_j`), the
    /// current classes and whether the rest of the model is frozen now.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config)?;
        out.put("layer", &self.layer)?;
        out.put("classes", &self.saved_weights.keys().copied().collect::<Vec<u32>>())?;
        for (c, col) in &self.saved_weights {
            out.put_data(&format!("saved_weights/{c}"), TensorData::new(col.clone(), [col.len()]));
        }
        out.put("past_j", &self.past_j)?;
        out.put("cur_j", &self.cur_j)?;
        out.put("cur_class", &self.cur_class)?;
        out.put("freeze_now", &self.freeze_now)
    }

    fn load_state(&mut self, state: &StateDict, _strategy: &StrategyState<M>) -> Result<()> {
        state.check_config("config", &self.config)?;
        state.check_config("layer", &self.layer)?;
        let classes: Vec<u32> = state.get("classes")?;
        let mut saved_weights = BTreeMap::new();
        for c in classes {
            let key = format!("saved_weights/{c}");
            let col = state.data(&key)?.try_into_vec::<f32>().map_err(|e| bad_entry(state, &key, format!("{e:?}")))?;
            saved_weights.insert(c, col);
        }
        self.saved_weights = saved_weights;
        self.past_j = state.get("past_j")?;
        self.cur_j = state.get("cur_j")?;
        self.cur_class = state.get("cur_class")?;
        self.freeze_now = state.get("freeze_now")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regularization::test_support::Tiny;
    use cl_core::config::{ConfigFile, assert_rule};

    /// The consolidated columns (exact `f32`s), the counts and the current classes come back;
    /// another configuration, or another CWR layer, is refused.
    #[test]
    fn checkpoint_restores_the_consolidated_weights_and_counts() {
        use crate::persist::test_util::{assert_mismatch, restore};
        use crate::regularization::test_support::{device, sgd, stream};
        use cl_core::Strategy;
        let model = Tiny::new(6);
        let config = CwrStarConfig::default();
        let cwr = CwrStarPlugin::new(&model, config.clone()).unwrap();
        let mut s = Strategy::builder(model, sgd(0.1), device()).train_mb_size(3).plugin(cwr).build().unwrap();
        s.train(&stream(3, 6)).unwrap();
        let cwr = s.plugin::<CwrStarPlugin>().unwrap();
        assert_eq!(cwr.consolidated_weights().len(), 6);
        let mut fresh = CwrStarPlugin::new(s.model(), config.clone()).unwrap();
        let state = restore::<Tiny, _>(cwr, &mut fresh, s.state());
        let bits = |p: &CwrStarPlugin| -> Vec<(u32, Vec<u32>)> {
            p.consolidated_weights().iter().map(|(c, w)| (*c, w.iter().map(|v| v.to_bits()).collect())).collect()
        };
        assert_eq!(bits(&fresh), bits(cwr));
        assert_eq!((fresh.past_counts(), fresh.current_counts()), (cwr.past_counts(), cwr.current_counts()));
        assert_eq!((&fresh.cur_class, fresh.freeze_now), (&cwr.cur_class, cwr.freeze_now));
        let mut other = CwrStarPlugin::new(s.model(), config.clone().with_freeze_remaining_model(false)).unwrap();
        assert_mismatch::<Tiny, _>(&state, &mut other, s.state());
        // The same config naming another layer of the model.
        let mut hidden = CwrStarPlugin::new(s.model(), config.with_cwr_layer_name("hidden")).unwrap();
        assert_mismatch::<Tiny, _>(&state, &mut hidden, s.state());
    }

    #[test]
    fn defaults_are_avalanches() {
        assert_eq!(CwrStarConfig::default(), CwrStarConfig { cwr_layer_name: None, freeze_remaining_model: true });
        assert_eq!(CwrStarConfig::from_toml("").unwrap(), CwrStarConfig::default());
    }

    #[test]
    fn config_round_trips() {
        for c in [
            CwrStarConfig::default().with_cwr_layer_name("classifier").with_freeze_remaining_model(false),
            CwrStarConfig::default().with_freeze_remaining_model(false),
        ] {
            assert_eq!(CwrStarConfig::from_json(&c.to_json()).unwrap(), c);
            assert_eq!(CwrStarConfig::from_toml(&c.to_toml().unwrap()).unwrap(), c);
        }
    }

    #[test]
    fn every_validation_rule() {
        let model = Tiny::new(2);
        let bad = CwrStarConfig::default().with_cwr_layer_name("");
        assert_rule(bad.validate(), "cwr_layer_name_not_empty");
        assert_rule(CwrStarPlugin::new(&model, bad).map(|_| ()), "cwr_layer_name_not_empty");
        for name in ["head", "hidden.weight", "classifie"] {
            let bad = CwrStarConfig::default().with_cwr_layer_name(name);
            assert!(bad.validate().is_ok(), "the model is needed to check {name}");
            assert_rule(CwrStarPlugin::new(&model, bad).map(|_| ()), "cwr_layer_name_in_model");
        }
        #[derive(Module, Debug)]
        struct NoLinear {
            w: Param<Tensor<2>>,
        }
        let no_linear = NoLinear { w: Param::from_tensor(Tensor::zeros([2, 2], &Default::default())) };
        assert_rule(CwrStarPlugin::new(&no_linear, CwrStarConfig::default()).map(|_| ()), "cwr_layer_name_in_model");
    }

    #[test]
    fn without_a_name_the_last_linear_layer_is_used() {
        let model = Tiny::new(2);
        let cwr = CwrStarPlugin::new(&model, CwrStarConfig::default()).unwrap();
        assert_eq!(cwr.layer_name(), "classifier");
        let cwr = CwrStarPlugin::new(&model, CwrStarConfig::default().with_cwr_layer_name("hidden")).unwrap();
        assert_eq!(cwr.layer_name(), "hidden");
        let linear = burn::nn::LinearConfig::new(3, 2).init(&Default::default());
        assert_eq!(CwrStarPlugin::new(&linear, CwrStarConfig::default()).unwrap().layer_name(), "");
        let writes = Plugin::<Tiny>::writes(&CwrStarPlugin::new(&model, CwrStarConfig::default()).unwrap());
        assert_eq!(writes, vec![StatePart::Model]);
    }
}
