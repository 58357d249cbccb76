//! [`CwrStarPlugin`]: CWR* (Lomonaco & Maltoni, 2017/2019; Avalanche's `CWRStarPlugin`),
//! consolidation of the output layer's per-class weights across experiences.

use std::collections::{BTreeMap, HashSet};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};
use cl_core::{ClError, Model, Plugin, Result, StatePart, StrategyState};

use crate::regularization::params::for_each_param;

/// CWR*, following Avalanche's `cwr_star.py` step by step. The CWR layer is a linear layer
/// named by its path in the model (`classifier` for `SimpleMlp`); its weight is
/// `{name}.weight`, a rank-2 Burn `Linear` weight `[d_in, d_out]`, so class `c` is **column**
/// `c` (Avalanche's row `c` of the PyTorch weight). As in Avalanche the bias is never touched.
///
/// - `before_training_exp`: counts the patterns of each class in the experience's dataset
///   (`cur_j`, the classes with a count > 0 being the current classes); then, as Avalanche's
///   `reset_weights`, sets the **whole** weight to 0 and loads the consolidated column of each
///   current class that was already consolidated (so in an experience with only new classes
///   the whole weight is 0). From the second experience on, with `freeze_remaining_model`,
///   only the CWR layer trains (see below).
/// - `after_training_exp`: consolidation. With `avg` the mean of all the weights of the
///   current classes' columns, for each current class `j`: `w'_j = w_j − avg`; if `j` was
///   consolidated before, `wpast_j = √(past_j / cur_j)`,
///   `cw_j ← (cw_j·wpast_j + w'_j) / (wpast_j + 1)` and `past_j += cur_j`; otherwise
///   `cw_j = w'_j` and `past_j = cur_j`. Then every consolidated column is loaded into the
///   layer (`set_consolidate_weights`), which is what evaluation then uses; columns of classes
///   never trained keep the value they had (0 after a reset).
/// - Freezing: Avalanche sets `requires_grad = False` (and eval mode) on all other layers.
///   Here, in `before_update`, the gradients of every parameter outside the CWR layer (path
///   not starting with `{name}.`) are **removed** from `state.grads` (keyed by `ParamId`), so
///   the optimizer does not touch them at all (no momentum or weight-decay step either).
///   Batch-norm statistics and dropout are not switched to eval mode.
///
/// The layer is modified through a [`ModuleMapper`] that replaces the weight tensor with
/// [`Param::map`], keeping its id (optimizer state stays attached) and its `require_grad`.
///
/// ```ignore
/// let cwr = CwrStarPlugin::new(&model, "classifier", true)?;
/// let strategy = Naive::builder(model, optimizer, device).plugin(cwr).build()?;
/// ```
pub struct CwrStarPlugin {
    layer: String,
    freeze_remaining_model: bool,
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
    format!("{layer}.weight")
}

fn unknown_layer(layer: &str) -> ClError {
    ClError::config(
        "cwr_layer_name",
        format!("the model has no linear layer `{layer}` (no rank-2 parameter `{layer}.weight`)"),
    )
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

/// Removes from `grads` the gradient of every float parameter not in `keep`.
struct DropGrads<'a> {
    keep: &'a HashSet<ParamId>,
    grads: &'a mut GradientsParams,
}

impl ModuleVisitor for DropGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if !self.keep.contains(&param.id) {
            let _ = self.grads.remove::<D>(param.id);
        }
    }
}

impl CwrStarPlugin {
    /// A CWR* plugin consolidating the linear layer `cwr_layer_name` of `model` (its path,
    /// e.g. `classifier`); with `freeze_remaining_model` (Avalanche's default `true`), only
    /// that layer trains from the second experience on. An error (`ClError::InvalidConfig`)
    /// if `model` has no rank-2 parameter `{cwr_layer_name}.weight`.
    pub fn new<M: Module>(model: &M, cwr_layer_name: impl Into<String>, freeze_remaining_model: bool) -> Result<Self> {
        let layer = cwr_layer_name.into();
        let plugin = Self {
            layer,
            freeze_remaining_model,
            saved_weights: BTreeMap::new(),
            past_j: BTreeMap::new(),
            cur_j: BTreeMap::new(),
            cur_class: Vec::new(),
            freeze_now: false,
        };
        plugin.read_weight(model)?;
        Ok(plugin)
    }

    /// The CWR layer's path.
    pub fn layer_name(&self) -> &str {
        &self.layer
    }

    /// Whether the rest of the model is frozen after the first experience.
    pub fn freeze_remaining_model(&self) -> bool {
        self.freeze_remaining_model
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

    fn write_weight<M: Model>(&self, state: &mut StrategyState<M>, w: LayerWeight) {
        let target = weight_path(&self.layer);
        let mut mapper = ReplaceWeight { target: &target, path: Vec::new(), values: Some(w.values) };
        state.map_model(|m| m.map(&mut mapper));
    }

    fn check_classes(&self, w: &LayerWeight) -> Result<()> {
        match self.cur_class.iter().find(|&&c| c as usize >= w.d_out) {
            Some(&label) => Err(ClError::LabelOutOfRange { label, outputs: w.d_out }),
            None => Ok(()),
        }
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
    fn name(&self) -> String {
        "CwrStarPlugin".into()
    }

    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::Model, StatePart::Gradients]
    }

    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        self.freeze_now = self.freeze_remaining_model && state.clock.train_exp_counter > 0;
        let targets = state.current_experience()?.dataset.targets();
        let mut counts = BTreeMap::new();
        for t in targets {
            *counts.entry(t).or_insert(0usize) += 1;
        }
        self.cur_class = counts.iter().filter(|(_, n)| **n > 0).map(|(c, _)| *c).collect();
        self.cur_j = counts;
        // reset_weights: everything to 0, then the consolidated columns of current classes.
        let mut w = self.read_weight(state.model())?;
        self.check_classes(&w)?;
        w.values.iter_mut().for_each(|v| *v = 0.0);
        for c in &self.cur_class {
            if let Some(saved) = self.saved_weights.get(c) {
                w.set_column(*c as usize, saved);
            }
        }
        self.write_weight(state, w);
        Ok(())
    }

    fn before_update(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        if !self.freeze_now {
            return Ok(());
        }
        let prefix = format!("{}.", self.layer);
        let mut keep = HashSet::new();
        for_each_param(state.model(), |name, _, id, _, _| {
            if name.starts_with(&prefix) {
                keep.insert(id);
            }
        });
        if keep.is_empty() {
            return Err(unknown_layer(&self.layer));
        }
        let Some(mut grads) = state.grads.take() else {
            return Ok(());
        };
        state.model().visit(&mut DropGrads { keep: &keep, grads: &mut grads });
        state.grads = Some(grads);
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
        self.write_weight(state, w);
        self.freeze_now = false;
        Ok(())
    }
}
