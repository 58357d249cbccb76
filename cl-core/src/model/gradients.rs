//! Adding closed-form gradients, flattened and keyed by parameter id, to a [`GradientsParams`].

use std::collections::HashMap;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use crate::error::{ClError, Result};

struct AddFlat<'a> {
    grads: &'a mut GradientsParams,
    pending: HashMap<ParamId, Tensor<1>>,
    path: Vec<String>,
    /// The first gradient whose length does not match its parameter: (path, length, shape).
    mismatch: Option<(String, usize, Vec<usize>)>,
}

impl ModuleVisitor for AddFlat<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(flat) = self.pending.remove(&param.id) else { return };
        if !param.is_require_grad() {
            return;
        }
        let dims: [usize; D] = param.dims();
        let len = flat.dims()[0];
        if len != dims.iter().product::<usize>() {
            self.mismatch.get_or_insert((self.path.join("."), len, dims.to_vec()));
            return;
        }
        let add = flat.reshape(dims);
        let sum = match self.grads.remove::<D>(param.id) {
            Some(g) => g + add,
            None => add,
        };
        self.grads.register(param.id, sum);
    }
}

/// Adds each flattened gradient of `flat` to the gradient of the parameter of `module` with
/// that id (reshaped to the parameter's shape; registered when the parameter had none). Terms
/// of the same parameter are summed; parameters that do not require gradients, and ids that
/// are not parameters of `module`, are skipped. A gradient whose length is not its parameter's
/// number of elements is an error naming the parameter (the others are still added).
pub(crate) fn add_flat_gradients<M: Module>(
    module: &M,
    grads: &mut GradientsParams,
    flat: Vec<(ParamId, Tensor<1>)>,
) -> Result<()> {
    let mut pending: HashMap<ParamId, Tensor<1>> = HashMap::with_capacity(flat.len());
    for (id, g) in flat {
        let g = g.without_autodiff();
        let merged = match pending.remove(&id) {
            Some(prev) => prev + g,
            None => g,
        };
        pending.insert(id, merged);
    }
    let mut visitor = AddFlat { grads, pending, path: Vec::new(), mismatch: None };
    module.visit(&mut visitor);
    match visitor.mismatch {
        None => Ok(()),
        Some((path, len, dims)) => Err(ClError::InvalidUse(format!(
            "a closed-form gradient (StrategyState::add_loss_with_gradient) has {len} values for parameter `{path}` \
             of shape {dims:?}: give one value per element, flattened row-major"
        ))),
    }
}
