//! The [`Model`] trait: what the training loop needs from a network.

use burn::module::Module;
use burn::tensor::Tensor;

use crate::data::MiniBatch;
use crate::scenario::Experience;

/// A classifier the strategies can train: a Burn [`Module`] with a forward pass over
/// [`MiniBatch`]es.
///
/// The batch carries the task labels, so multi-task models can route samples by task; plain
/// models ignore them. `num_outputs` and `input_size` let the strategy check a model against the
/// benchmark before training starts.
///
/// ```ignore
/// #[derive(Module, Debug)]
/// struct Linear1 { fc: burn::nn::Linear }
/// impl Model for Linear1 {
///     fn forward(&self, batch: &MiniBatch) -> Tensor<2> { self.fc.forward(batch.x.clone()) }
///     fn num_outputs(&self) -> Option<usize> { Some(self.fc.weight.dims()[1]) }
/// }
/// ```
pub trait Model: Module + 'static {
    /// Logits `[batch, num_outputs]` for a batch.
    fn forward(&self, batch: &MiniBatch) -> Tensor<2>;

    /// The penultimate representation `[batch, features]` of a batch (the input of the output
    /// layer, Avalanche's `get_features`), if the model exposes one; plugins like LFL and
    /// herding use it. `None` by default.
    fn features(&self, _batch: &MiniBatch) -> Option<Tensor<2>> {
        None
    }

    /// Number of output units (classes), if fixed.
    fn num_outputs(&self) -> Option<usize> {
        None
    }

    /// Number of input values per sample the model expects, if fixed.
    fn input_size(&self) -> Option<usize> {
        None
    }

    /// Seeds the model's own random state (e.g. dropout masks); called by the strategy builder
    /// with the strategy's seed. Initial weights come from the device's RNG (`Device::seed`).
    fn seed(&mut self, _seed: u64) {}

    /// Model adaptation (Avalanche's `DynamicModule.adaptation`): called before training and
    /// before evaluation on each experience. Dynamic models grow heads here.
    fn adaptation(&mut self, _experience: &Experience) {}
}
