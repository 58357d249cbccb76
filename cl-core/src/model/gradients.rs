//! Adding closed-form gradients, flattened and keyed by parameter id, to a [`GradientsParams`].

use std::collections::HashMap;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

struct AddFlat<'a> {
    grads: &'a mut GradientsParams,
    pending: HashMap<ParamId, Tensor<1>>,
}

impl ModuleVisitor for AddFlat<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(flat) = self.pending.remove(&param.id) else { return };
        if !param.is_require_grad() {
            return;
        }
        let dims: [usize; D] = param.dims();
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
/// are not parameters of `module`, are skipped.
pub(crate) fn add_flat_gradients<M: Module>(module: &M, grads: &mut GradientsParams, flat: Vec<(ParamId, Tensor<1>)>) {
    let mut pending: HashMap<ParamId, Tensor<1>> = HashMap::with_capacity(flat.len());
    for (id, g) in flat {
        let g = g.without_autodiff();
        let merged = match pending.remove(&id) {
            Some(prev) => prev + g,
            None => g,
        };
        pending.insert(id, merged);
    }
    module.visit(&mut AddFlat { grads, pending });
}
