//! Flattened, detached per-parameter tensors keyed by [`ParamId`]: the snapshots (θ*),
//! importances and gradient accumulators of the regularisation plugins.
//!
//! Everything here goes through Burn's [`ModuleVisitor`], so it works for any [`Module`]
//! (MLP, CNN, multi-head) without assuming a layer layout. Stored tensors are plain
//! (no autodiff) 1-D tensors: they never receive gradients.

use std::collections::HashMap;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor};
use cl_core::Result;
use cl_core::checkpoint::StateDict;

/// One parameter-shaped tensor, flattened.
#[derive(Debug, Clone)]
pub struct ParamEntry {
    /// The parameter's path in the module (`features.0.linear.weight`).
    pub name: String,
    /// The parameter's shape when the entry was made.
    pub dims: Vec<usize>,
    /// The values, flattened row-major, on a device without autodiff.
    pub values: Tensor<1>,
}

/// A set of flattened tensors, one per parameter, keyed by [`ParamId`], in the order the
/// parameters were visited.
///
/// ```
/// use cl_plugins::regularization::ParamTensors;
/// use burn::tensor::{Device, Tensor};
/// use burn::module::ParamId;
/// let device = Device::default();
/// let mut t = ParamTensors::default();
/// let id = ParamId::new();
/// t.insert(id, "w", vec![2], Tensor::<1>::from_floats([1.0, 2.0], &device));
/// assert_eq!(t.to_vec(id).unwrap(), vec![1.0, 2.0]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ParamTensors {
    order: Vec<ParamId>,
    map: HashMap<ParamId, ParamEntry>,
}

/// Selects the parameters a plugin handles, from the path of the parameter (`a.b.weight`)
/// and the container types of the modules around it (`Struct:BatchNorm`, `Vec`, ...).
pub type ParamFilter<'a> = &'a dyn Fn(&str, &[String]) -> bool;

/// Accepts every parameter.
pub fn all_params(_: &str, _: &[String]) -> bool {
    true
}

struct PathVisitor<F: FnMut(&str, &[String], ParamId, Vec<usize>, Tensor<1>)> {
    path: Vec<String>,
    containers: Vec<String>,
    f: F,
}

impl<F: FnMut(&str, &[String], ParamId, Vec<usize>, Tensor<1>)> ModuleVisitor for PathVisitor<F> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push(name.to_string());
        self.containers.push(container_type.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
        self.containers.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        let dims = value.dims().to_vec();
        let n: usize = dims.iter().product();
        let name = self.path.join(".");
        (self.f)(&name, &self.containers, param.id, dims, value.reshape([n]));
    }
}

/// Calls `f(name, containers, id, dims, flattened value)` for every float parameter of
/// `module`; the value keeps its autodiff graph when the module is on an autodiff device.
pub(crate) fn for_each_param<M: Module>(module: &M, f: impl FnMut(&str, &[String], ParamId, Vec<usize>, Tensor<1>)) {
    let mut v = PathVisitor { path: Vec::new(), containers: Vec::new(), f };
    module.visit(&mut v);
}

/// Gradients of every float parameter of `module`, flattened, keyed by id (a parameter with
/// no gradient entry is absent). Uses `GradientsParams::get` with the parameter's rank.
struct GradVisitor<'a> {
    grads: &'a GradientsParams,
    out: Vec<(ParamId, Tensor<1>)>,
}

impl ModuleVisitor for GradVisitor<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let n = g.shape().num_elements();
            self.out.push((param.id, g.reshape([n])));
        }
    }
}

/// The flattened gradients in `grads` of the parameters of `module`.
pub fn flat_grads<M: Module>(module: &M, grads: &GradientsParams) -> Vec<(ParamId, Tensor<1>)> {
    let mut v = GradVisitor { grads, out: Vec::new() };
    module.visit(&mut v);
    v.out
}

/// The path of the last `burn::nn::Linear` layer of `module` in visiting (field) order —
/// Avalanche's `get_last_fc_layer`, which returns the last `nn.Linear` of `named_modules()`;
/// `Some("")` when `module` itself is a `Linear`, `None` when it has none.
pub(crate) fn last_linear_layer<M: Module>(module: &M) -> Option<String> {
    let mut last = None;
    for_each_param(module, |name, containers, _, _, _| {
        if containers.last().is_some_and(|c| c == "Struct:Linear") {
            last = Some(name.rsplit_once('.').map_or(String::new(), |(layer, _)| layer.to_string()));
        }
    });
    last
}

/// Indices, in the flattened `new_dims` array, of the elements of the flattened `old_dims`
/// array (each old index maps to the same multi-index in the new array). `None` if the ranks
/// differ or a dimension shrank.
pub(crate) fn embed_indices(old_dims: &[usize], new_dims: &[usize]) -> Option<Vec<i64>> {
    if old_dims.len() != new_dims.len() || old_dims.iter().zip(new_dims).any(|(o, n)| o > n) {
        return None;
    }
    let old_n: usize = old_dims.iter().product();
    let mut out = Vec::with_capacity(old_n);
    let rank = old_dims.len();
    let mut idx = vec![0usize; rank];
    for _ in 0..old_n {
        let mut flat = 0usize;
        for d in 0..rank {
            flat = flat * new_dims[d] + idx[d];
        }
        out.push(flat as i64);
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < old_dims[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Some(out)
}

/// `old` (shaped `old_dims`, flattened) zero-padded to `new_dims` (Avalanche's
/// `ParamData.expand`: the old values keep their multi-index, new units get 0).
pub(crate) fn pad_to(old: Tensor<1>, old_dims: &[usize], new_dims: &[usize], device: &Device) -> Option<Tensor<1>> {
    if old_dims == new_dims {
        return Some(old);
    }
    let idx = embed_indices(old_dims, new_dims)?;
    let n: usize = new_dims.iter().product();
    let idx = Tensor::<1, Int>::from_ints(idx.as_slice(), device);
    Some(Tensor::<1>::zeros([n], device).select_assign(0, idx, old.to_device(device), IndexingUpdateOp::Add))
}

/// The part of `current` (shaped `new_dims`, flattened) that corresponds to a parameter of
/// shape `old_dims` (the leading slice in every dimension). Differentiable.
pub(crate) fn crop_to(current: Tensor<1>, old_dims: &[usize], new_dims: &[usize]) -> Option<Tensor<1>> {
    if old_dims == new_dims {
        return Some(current);
    }
    let idx = embed_indices(old_dims, new_dims)?;
    let device = current.device();
    Some(current.select(0, Tensor::<1, Int>::from_ints(idx.as_slice(), &device)))
}

impl ParamTensors {
    /// A detached snapshot of the current values of the parameters of `module` accepted by
    /// `filter`, stored on `device` (use the evaluation device: no autodiff).
    pub fn values_of<M: Module>(module: &M, device: &Device, filter: ParamFilter<'_>) -> Self {
        let mut out = Self::default();
        for_each_param(module, |name, containers, id, dims, t| {
            if filter(name, containers) {
                out.insert(id, name, dims, t.inner().to_device(device));
            }
        });
        out
    }

    /// Zeros shaped like the parameters of `module` accepted by `filter`, on `device`.
    pub fn zeros_like<M: Module>(module: &M, device: &Device, filter: ParamFilter<'_>) -> Self {
        let mut out = Self::default();
        for_each_param(module, |name, containers, id, dims, _| {
            if filter(name, containers) {
                let n = dims.iter().product::<usize>();
                out.insert(id, name, dims, Tensor::zeros([n], device));
            }
        });
        out
    }

    /// The gradients in `grads` of the parameters of `module` accepted by `filter`, detached,
    /// on `device`; a parameter without a gradient gets zeros.
    pub fn grads_of<M: Module>(module: &M, grads: &GradientsParams, device: &Device, filter: ParamFilter<'_>) -> Self {
        let mut g: HashMap<ParamId, Tensor<1>> = flat_grads(module, grads).into_iter().collect();
        let mut out = Self::default();
        for_each_param(module, |name, containers, id, dims, _| {
            if filter(name, containers) {
                let n = dims.iter().product::<usize>();
                let t = match g.remove(&id) {
                    Some(t) => t.inner().to_device(device),
                    None => Tensor::zeros([n], device),
                };
                out.insert(id, name, dims, t);
            }
        });
        out
    }

    /// Adds or replaces an entry.
    pub fn insert(&mut self, id: ParamId, name: impl Into<String>, dims: Vec<usize>, values: Tensor<1>) {
        let entry = ParamEntry { name: name.into(), dims, values };
        if self.map.insert(id, entry).is_none() {
            self.order.push(id);
        }
    }

    /// Removes an entry.
    pub fn remove(&mut self, id: ParamId) -> Option<ParamEntry> {
        self.order.retain(|i| *i != id);
        self.map.remove(&id)
    }

    /// The entry of parameter `id`.
    pub fn get(&self, id: ParamId) -> Option<&ParamEntry> {
        self.map.get(&id)
    }

    /// The entry of the parameter named `name` (its path in the module).
    pub fn get_by_name(&self, name: &str) -> Option<(ParamId, &ParamEntry)> {
        self.iter().find(|(_, e)| e.name == name)
    }

    /// The values of parameter `id` as a vector.
    pub fn to_vec(&self, id: ParamId) -> Option<Vec<f32>> {
        self.map.get(&id).map(|e| e.values.clone().into_data().convert::<f32>().try_to_vec::<f32>().unwrap())
    }

    /// Whether `id` has an entry.
    pub fn contains(&self, id: ParamId) -> bool {
        self.map.contains_key(&id)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The entries in visiting order.
    pub fn iter(&self) -> impl Iterator<Item = (ParamId, &ParamEntry)> {
        self.order.iter().map(|id| (*id, &self.map[id]))
    }

    /// The ids in visiting order.
    pub fn ids(&self) -> Vec<ParamId> {
        self.order.clone()
    }

    /// Applies `f` to every tensor.
    pub fn map(mut self, mut f: impl FnMut(Tensor<1>) -> Tensor<1>) -> Self {
        for e in self.map.values_mut() {
            e.values = f(e.values.clone());
        }
        self
    }

    /// Replaces the values of entry `id` by `f(values)`.
    pub fn update(&mut self, id: ParamId, f: impl FnOnce(Tensor<1>) -> Tensor<1>) {
        if let Some(e) = self.map.get_mut(&id) {
            e.values = f(e.values.clone());
        }
    }

    /// Pads every entry whose parameter grew in `module` (a grown head) to its new shape with
    /// zeros, and adds zero entries for new parameters accepted by `filter`.
    pub fn expand_like<M: Module>(&mut self, module: &M, device: &Device, filter: ParamFilter<'_>) {
        for_each_param(module, |name, containers, id, dims, _| {
            if !filter(name, containers) {
                return;
            }
            match self.map.get_mut(&id) {
                Some(e) if e.dims != dims => {
                    if let Some(p) = pad_to(e.values.clone(), &e.dims, &dims, device) {
                        e.values = p;
                        e.dims = dims;
                    }
                }
                Some(_) => {}
                None => {
                    let n = dims.iter().product::<usize>();
                    self.insert(id, name, dims, Tensor::zeros([n], device));
                }
            }
        });
    }

    /// Saves the entries into a checkpoint, in order: each parameter's id (the model's ids
    /// survive a checkpoint, so the entries still match its parameters), path, shape and
    /// values (exact: raw tensor data).
    pub fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("ids", &self.order.iter().map(ParamId::val).collect::<Vec<u64>>())?;
        out.put("names", &self.iter().map(|(_, e)| e.name.as_str()).collect::<Vec<&str>>())?;
        out.put("dims", &self.iter().map(|(_, e)| e.dims.as_slice()).collect::<Vec<&[usize]>>())?;
        for (i, (_, e)) in self.iter().enumerate() {
            out.put_tensor(&format!("values/{i}"), &e.values);
        }
        Ok(())
    }

    /// Reads entries saved by [`save_state`](Self::save_state), their tensors on `device`.
    pub fn load_state(state: &StateDict, device: &Device) -> Result<Self> {
        let ids: Vec<u64> = state.get("ids")?;
        let names: Vec<String> = state.get("names")?;
        let dims: Vec<Vec<usize>> = state.get("dims")?;
        if names.len() != ids.len() || dims.len() != ids.len() {
            return Err(crate::persist::bad_entry(
                state,
                "ids",
                format!("{} ids, {} names, {} shapes", ids.len(), names.len(), dims.len()),
            ));
        }
        let mut out = Self::default();
        for (i, ((id, name), dims)) in ids.into_iter().zip(names).zip(dims).enumerate() {
            let key = format!("values/{i}");
            let values: Tensor<1> = state.tensor(&key, device)?;
            if values.dims()[0] != dims.iter().product::<usize>() {
                return Err(crate::persist::bad_entry(
                    state,
                    &key,
                    format!("{} values for a parameter of shape {dims:?}", values.dims()[0]),
                ));
            }
            out.insert(ParamId::from(id), name, dims, values);
        }
        Ok(out)
    }

    /// Sum of all entries' elements (for tests and logs).
    pub fn total(&self) -> f64 {
        self.iter().map(|(_, e)| e.values.clone().sum().into_scalar::<f64>()).sum()
    }
}

/// `Σ_params Σ importance·(θ − θ*)²` over the parameters of `model` that have an entry in both
/// `importance` and `anchor`, built from the model's current (autodiff) values so that the
/// result is differentiable; the stored tensors are brought onto `device` as constants. A
/// parameter that grew since the snapshot (a new head unit) is penalised on its old part only.
/// `None` when no parameter matches.
pub fn weighted_sq_distance<M: Module>(
    model: &M,
    importance: &ParamTensors,
    anchor: &ParamTensors,
    device: &Device,
) -> Option<Tensor<1>> {
    let mut total: Option<Tensor<1>> = None;
    for_each_param(model, |_, _, id, dims, current| {
        let (Some(imp), Some(theta)) = (importance.get(id), anchor.get(id)) else {
            return;
        };
        if imp.dims != theta.dims {
            return;
        }
        let Some(current) = crop_to(current, &theta.dims, &dims) else {
            return;
        };
        let imp = imp.values.clone().to_device(device);
        let theta = theta.values.clone().to_device(device);
        let term = (imp * (current - theta).powi_scalar(2)).sum();
        total = Some(match total.take() {
            Some(t) => t + term,
            None => term,
        });
    });
    total
}

/// Stores `tensors` as the nested dictionary `key`.
pub(crate) fn put_params(out: &mut StateDict, key: &str, tensors: &ParamTensors) -> Result<()> {
    let mut d = StateDict::new(format!("{} (`{key}`)", out.component()));
    tensors.save_state(&mut d)?;
    out.put_dict(key, d);
    Ok(())
}

/// Reads tensors stored with [`put_params`] onto `device`.
pub(crate) fn params(state: &StateDict, key: &str, device: &Device) -> Result<ParamTensors> {
    ParamTensors::load_state(state.dict(key)?, device)
}

/// Stores optional tensors (a presence flag, then [`put_params`]).
pub(crate) fn put_opt_params(out: &mut StateDict, key: &str, tensors: Option<&ParamTensors>) -> Result<()> {
    out.put(&format!("{key}/some"), &tensors.is_some())?;
    match tensors {
        Some(t) => put_params(out, key, t),
        None => Ok(()),
    }
}

/// Reads optional tensors stored with [`put_opt_params`].
pub(crate) fn opt_params(state: &StateDict, key: &str, device: &Device) -> Result<Option<ParamTensors>> {
    match state.get::<bool>(&format!("{key}/some"))? {
        true => Ok(Some(params(state, key, device)?)),
        false => Ok(None),
    }
}
