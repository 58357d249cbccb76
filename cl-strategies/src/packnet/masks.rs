//! [`TaskIndex`]: which task owns each weight of a PackNet-packed model, and the masked views of
//! the model that training and evaluation use (Avalanche's `WeightAndBiasPackNetModule`).
//!
//! Works on any Burn module whose trainable parameters are the weights and biases of `Linear`
//! and convolution layers (Avalanche's `PackNetModel.wrap` accepts the same layers and refuses
//! normalisation layers and any other module with parameters). Weights are found by walking
//! the module (`ModuleVisitor`): a float parameter named `weight` or `bias` whose parent struct
//! is one of [`PACKABLE_LAYERS`].

use std::collections::{BTreeSet, HashMap};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use cl_core::checkpoint::StateDict;
use cl_core::{ClError, Result};

/// The layers whose weights PackNet packs (Burn's struct names): Avalanche's `_PnLinear`,
/// `_PnConvNd` and `_PnConvTransposedNd` wrap the same ones.
pub const PACKABLE_LAYERS: [&str; 7] =
    ["Linear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"];

/// The task code of a weight pruned from the current task and not yet handed to the next one
/// (Avalanche's `PRUNED_CODE`, 255): invisible to every task.
pub const PRUNED: u8 = u8::MAX;

/// What a float parameter is to PackNet.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    /// The weight of a packable layer: owned weight by weight by the tasks.
    Weight,
    /// The bias of a packable layer: trained on the first task only, then frozen.
    Bias,
    /// A tensor that is never trained (batch-norm running statistics, frozen buffers): ignored.
    Buffer,
    /// A trainable parameter of another layer: PackNet cannot isolate it.
    Unsupported(String),
}

fn role(name: &str, parent: &str, trainable: bool) -> Role {
    let layer = parent.strip_prefix("Struct:").unwrap_or(parent);
    match (PACKABLE_LAYERS.contains(&layer), name) {
        (true, "weight") => Role::Weight,
        (true, "bias") => Role::Bias,
        _ if !trainable => Role::Buffer,
        _ => Role::Unsupported(layer.to_string()),
    }
}

/// The path of module names (`layers.0.linear.weight`) and the parent struct of the current one.
#[derive(Default)]
struct Path {
    names: Vec<String>,
    parents: Vec<String>,
}

impl Path {
    fn enter(&mut self, name: &str, container: &str) {
        self.names.push(name.to_string());
        self.parents.push(container.to_string());
    }

    fn exit(&mut self) {
        self.names.pop();
        self.parents.pop();
    }

    fn current(&self) -> (String, &str, &str) {
        let name = self.names.last().map_or("", String::as_str);
        let parent = self.parents.last().map_or("", String::as_str);
        (self.names.join("."), name, parent)
    }
}

/// One packed weight tensor: its path in the model, its shape and the task that owns each of
/// its values (row-major, in Burn's layout).
#[derive(Debug, Clone, PartialEq)]
pub struct PackedWeight {
    /// The path of the parameter (`classifier.weight`).
    pub path: String,
    /// Its shape.
    pub dims: Vec<usize>,
    /// The task that owns each value: `t` for tasks trained so far and the current one,
    /// [`PRUNED`] for values pruned from the current task during its post-pruning epochs.
    pub task_index: Vec<u8>,
}

/// The model's weights and biases as PackNet sees them, in visiting order.
#[derive(Debug, Default)]
pub(crate) struct Layout {
    pub weights: Vec<(String, Vec<usize>)>,
    pub biases: Vec<String>,
}

/// Walks `model`: its packable weights and biases; an error naming any trainable parameter of
/// another kind of layer, or a model without packable weight.
pub(crate) fn layout<M: Module>(model: &M) -> Result<Layout> {
    struct Walk {
        path: Path,
        layout: Layout,
        unsupported: Vec<String>,
    }
    impl ModuleVisitor for Walk {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.path.enter(name, container_type);
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.exit();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let (path, name, parent) = self.path.current();
            match role(name, parent, param.is_require_grad()) {
                Role::Weight => self.layout.weights.push((path, param.dims().to_vec())),
                Role::Bias => self.layout.biases.push(path),
                Role::Buffer => {}
                Role::Unsupported(layer) => self.unsupported.push(format!("`{path}` ({layer})")),
            }
        }
    }
    let mut walk = Walk { path: Path::default(), layout: Layout::default(), unsupported: Vec::new() };
    model.visit(&mut walk);
    if !walk.unsupported.is_empty() {
        return Err(ClError::InvalidUse(format!(
            "PackNet packs the weights of {} layers only; the model trains {}: build the model from those layers \
             (normalisation layers are not supported, as in Avalanche's PackNetModel), or freeze the other \
             parameters (cl_core::freeze) before building the strategy",
            PACKABLE_LAYERS.join("/"),
            walk.unsupported.join(", ")
        )));
    }
    if walk.layout.weights.is_empty() {
        return Err(ClError::InvalidUse(format!(
            "PackNet found no weight of a {} layer in the model: nothing to pack",
            PACKABLE_LAYERS.join("/")
        )));
    }
    Ok(walk.layout)
}

/// The values of the weights at `paths` (row-major).
fn weight_values<M: Module>(model: &M, paths: &HashMap<String, usize>) -> Vec<Option<Vec<f32>>> {
    struct Read<'a> {
        path: Path,
        paths: &'a HashMap<String, usize>,
        values: Vec<Option<Vec<f32>>>,
    }
    impl ModuleVisitor for Read<'_> {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.path.enter(name, container_type);
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.exit();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let (path, _, _) = self.path.current();
            if let Some(&k) = self.paths.get(&path) {
                self.values[k] = param.val().into_data().try_into_vec_as::<f32>().ok();
            }
        }
    }
    let mut read = Read { path: Path::default(), paths, values: vec![None; paths.len()] };
    model.visit(&mut read);
    read.values
}

/// A 0/1 mask per packed weight (`None`: all ones), built for one key and device.
struct Masks {
    key: MaskKey,
    device: Device,
    autodiff: bool,
    masks: Vec<Option<Tensor<1>>>,
}

/// What a mask keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MaskKey {
    /// The values a forward pass for this task sees: tasks `0..=t` (pruned values hidden).
    Visible { task: u8, task_count: u8 },
    /// The values that train: the current task's, not pruned.
    Trainable { task_count: u8 },
}

impl MaskKey {
    fn keeps(self, t: u8) -> bool {
        match self {
            Self::Visible { task, .. } => t <= task,
            Self::Trainable { task_count } => t == task_count,
        }
    }
}

/// The task that owns each weight of the model (Avalanche's per-layer `task_index`), the
/// number of tasks packed so far, and the masked views of the model for each task.
#[derive(Default)]
pub struct TaskIndex {
    weights: Vec<PackedWeight>,
    by_path: HashMap<String, usize>,
    biases: BTreeSet<String>,
    task_count: u8,
    /// Masks built so far for the current packing (cleared by prune and freeze).
    masks: Vec<Masks>,
}

impl Clone for TaskIndex {
    /// The task index without its cached views (rebuilt on demand).
    fn clone(&self) -> Self {
        Self {
            weights: self.weights.clone(),
            by_path: self.by_path.clone(),
            biases: self.biases.clone(),
            task_count: self.task_count,
            masks: Vec::new(),
        }
    }
}

impl std::fmt::Debug for TaskIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskIndex").field("task_count", &self.task_count).field("weights", &self.weights.len()).finish()
    }
}

impl TaskIndex {
    /// Tasks packed so far (frozen): the task being trained is `task_count()`.
    pub fn task_count(&self) -> u8 {
        self.task_count
    }

    /// The packed weights.
    pub fn weights(&self) -> &[PackedWeight] {
        &self.weights
    }

    /// Packs the weights and biases of `model` on the first training experience (owned by task
    /// 0); afterwards, checks that the packed weights kept their shapes (a growing classifier
    /// is an error: PackNet needs fixed layers). Parameters the model adds later (the heads a
    /// multi-head classifier adds for new tasks) are not packed, as in Avalanche, where
    /// `PackNetModel` wraps the layers that exist when it is built: each such head trains with
    /// its own task only.
    pub(crate) fn refresh<M: Module>(&mut self, model: &M) -> Result<()> {
        let layout = layout(model)?;
        if self.weights.is_empty() {
            for (path, dims) in layout.weights {
                let len = dims.iter().product();
                self.by_path.insert(path.clone(), self.weights.len());
                self.weights.push(PackedWeight { path, dims, task_index: vec![self.task_count; len] });
            }
            self.biases = layout.biases.into_iter().collect();
            self.masks.clear();
            return Ok(());
        }
        for (path, dims) in layout.weights {
            if let Some(&k) = self.by_path.get(&path)
                && self.weights[k].dims != dims
            {
                return Err(ClError::InvalidUse(format!(
                    "PackNet: the weight `{path}` changed shape from {:?} to {dims:?} (a classifier that grows with \
                     the classes seen); PackNet packs fixed layers: give the model all its outputs from the start \
                     (e.g. SimpleMlp with num_classes), or use a multi-head model",
                    self.weights[k].dims
                )));
            }
        }
        Ok(())
    }

    /// Prunes `proportion` of the current task's weights in each layer, those of smallest
    /// magnitude in `model` (Avalanche's `_prune`: `int(n * proportion)` of the `n` values the
    /// current task owns, per layer; ties by position). They become invisible to every task
    /// and get no gradient; they keep their values.
    pub(crate) fn prune<M: Module>(&mut self, model: &M, proportion: f64) -> Result<()> {
        let values = weight_values(model, &self.by_path);
        let current = self.task_count;
        for (w, values) in self.weights.iter_mut().zip(values) {
            let values = values.ok_or_else(|| {
                ClError::InvalidUse(format!("PackNet: the model no longer has the weight `{}` it packs", w.path))
            })?;
            let mut prunable: Vec<usize> = (0..w.task_index.len()).filter(|&i| w.task_index[i] == current).collect();
            let count = (prunable.len() as f64 * proportion) as usize;
            prunable.sort_by(|&a, &b| values[a].abs().total_cmp(&values[b].abs()).then(a.cmp(&b)));
            for &i in &prunable[..count] {
                w.task_index[i] = PRUNED;
            }
        }
        self.masks.clear();
        Ok(())
    }

    /// Commits the current task (Avalanche's `freeze_pruned`): its remaining weights are frozen
    /// for good, the pruned ones go to the next task, and the biases stop training.
    pub(crate) fn freeze_pruned(&mut self) -> Result<()> {
        if self.task_count == PRUNED - 1 {
            return Err(ClError::InvalidUse(format!("PackNet packs at most {} tasks", PRUNED - 1)));
        }
        self.task_count += 1;
        for w in &mut self.weights {
            for t in w.task_index.iter_mut().filter(|t| **t == PRUNED) {
                *t = self.task_count;
            }
        }
        self.masks.clear();
        Ok(())
    }

    /// Whether some weight is pruned (the post-pruning phase).
    pub fn has_pruned(&self) -> bool {
        self.weights.iter().any(|w| w.task_index.contains(&PRUNED))
    }

    /// `model` as task `task` sees it (Avalanche's `activate_task(min(task, task_count))`):
    /// the weights of later tasks and the pruned ones read as 0 (`w * visible`); when
    /// `training` (the current task), only the pruned ones are hidden. The parameters keep
    /// their ids, so the gradients of the view are the stored model's. A model with nothing
    /// hidden is returned as it is.
    pub fn view<M: Module>(&mut self, model: M, task: u32, training: bool) -> M {
        let task_count = self.task_count;
        let task = if training { task_count } else { task.min(u32::from(task_count)) as u8 };
        let Some(k) = self.masks_for(&model, MaskKey::Visible { task, task_count }) else {
            return model;
        };
        if self.masks[k].masks.iter().all(Option::is_none) {
            return model;
        }
        let mut mapper = ApplyMask { path: Path::default(), by_path: &self.by_path, masks: &self.masks[k].masks };
        model.map(&mut mapper)
    }

    /// Restricts `grads` (of `model`'s parameters) to what trains in the current task
    /// (Avalanche's gradient hook `grad * unfrozen_mask`, and `requires_grad = False` on the
    /// biases once a task is packed): the gradient of every packed weight is multiplied by the
    /// mask of the current task's unpruned values — a zero gradient elsewhere, so that SGD's
    /// momentum still moves pruned values as in PyTorch — and the biases' gradients are
    /// dropped after the first task (no update at all).
    pub(crate) fn mask_gradients<M: Module>(&mut self, model: &M, grads: &mut GradientsParams) {
        let Some(k) = self.masks_for(model, MaskKey::Trainable { task_count: self.task_count }) else {
            return;
        };
        let mut visitor = MaskGrads {
            path: Path::default(),
            by_path: &self.by_path,
            masks: &self.masks[k].masks,
            biases: (self.task_count > 0).then_some(&self.biases),
            grads,
        };
        model.visit(&mut visitor);
    }

    /// The index of the masks for `key` on `model`'s device, built if needed; `None` for a
    /// model with nothing packed.
    fn masks_for<M: Module>(&mut self, model: &M, key: MaskKey) -> Option<usize> {
        if self.weights.is_empty() {
            return None;
        }
        let device = first_device(model)?;
        let autodiff = device.is_autodiff();
        if let Some(k) = self.masks.iter().position(|m| m.key == key && m.device == device && m.autodiff == autodiff) {
            return Some(k);
        }
        let masks = self.weights.iter().map(|w| mask(&w.task_index, |t| key.keeps(t), &device)).collect();
        self.masks.push(Masks { key, device, autodiff, masks });
        Some(self.masks.len() - 1)
    }

    /// Saves the task count and each weight's task index.
    pub(crate) fn save(&self, out: &mut StateDict) -> Result<()> {
        out.put("task_count", &self.task_count)?;
        let layout: Vec<(&str, &[usize])> = self.weights.iter().map(|w| (w.path.as_str(), w.dims.as_slice())).collect();
        out.put("weights", &layout)?;
        out.put("biases", &self.biases)?;
        for (k, w) in self.weights.iter().enumerate() {
            out.put_bytes(&format!("task_index.{k}"), w.task_index.clone());
        }
        Ok(())
    }

    /// Restores what [`save`](Self::save) saved.
    pub(crate) fn load(state: &StateDict) -> Result<Self> {
        let task_count: u8 = state.get("task_count")?;
        let layout: Vec<(String, Vec<usize>)> = state.get("weights")?;
        let biases: BTreeSet<String> = state.get("biases")?;
        let mut index = TaskIndex { task_count, biases, ..Default::default() };
        for (k, (path, dims)) in layout.into_iter().enumerate() {
            let task_index = state.bytes(&format!("task_index.{k}"))?.to_vec();
            if task_index.len() != dims.iter().product::<usize>() {
                return Err(ClError::CheckpointEntry {
                    component: state.component().to_string(),
                    key: format!("task_index.{k}"),
                    reason: format!("{} task labels for the weight `{path}` of shape {dims:?}", task_index.len()),
                });
            }
            index.by_path.insert(path.clone(), k);
            index.weights.push(PackedWeight { path, dims, task_index });
        }
        Ok(index)
    }
}

fn first_device<M: Module>(model: &M) -> Option<Device> {
    struct First(Option<Device>);
    impl ModuleVisitor for First {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.0.is_none() {
                self.0 = Some(param.val().device());
            }
        }
    }
    let mut first = First(None);
    model.visit(&mut first);
    first.0
}

/// A 0/1 mask of the values whose task satisfies `keep` (`None` when it keeps them all).
fn mask(task_index: &[u8], keep: impl Fn(u8) -> bool, device: &Device) -> Option<Tensor<1>> {
    if task_index.iter().all(|&t| keep(t)) {
        return None;
    }
    let values: Vec<f32> = task_index.iter().map(|&t| if keep(t) { 1.0 } else { 0.0 }).collect();
    let n = values.len();
    Some(Tensor::<1>::from_data(TensorData::new(values, [n]), device))
}

/// Multiplies the packed weights by their masks.
struct ApplyMask<'a> {
    path: Path,
    by_path: &'a HashMap<String, usize>,
    masks: &'a [Option<Tensor<1>>],
}

impl ModuleMapper for ApplyMask<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (path, _, _) = self.path.current();
        match self.by_path.get(&path).and_then(|&k| self.masks[k].as_ref()) {
            Some(mask) => {
                let shape = param.shape();
                param.map(|w| w * mask.clone().reshape(shape))
            }
            None => param,
        }
    }
}

/// Multiplies the packed weights' gradients by their masks and drops the frozen biases'.
struct MaskGrads<'a> {
    path: Path,
    by_path: &'a HashMap<String, usize>,
    masks: &'a [Option<Tensor<1>>],
    biases: Option<&'a BTreeSet<String>>,
    grads: &'a mut GradientsParams,
}

impl ModuleVisitor for MaskGrads<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let (path, _, _) = self.path.current();
        if let Some(mask) = self.by_path.get(&path).and_then(|&k| self.masks[k].as_ref()) {
            if let Some(grad) = self.grads.remove::<D>(param.id) {
                let shape = grad.shape();
                self.grads.register(param.id, grad * mask.clone().reshape(shape));
            }
        } else if self.biases.is_some_and(|b| b.contains(&path)) {
            let _ = self.grads.remove::<D>(param.id);
        }
    }
}
