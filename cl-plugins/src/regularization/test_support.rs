//! Helpers of the unit tests of the regularisation, distillation, projection and CWR* plugins:
//! a tiny deterministic MLP, generated streams and probes.

use std::sync::{Arc, Mutex};

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use cl_core::data::{ClassificationDataset, MiniBatch};
use cl_core::{Experience, Model, OptimizerSpec, Plugin, Result, StrategyState, Stream};

/// `inputs → hidden (ReLU) → classifier`, with deterministic weights.
#[derive(Module, Debug)]
pub(crate) struct Tiny {
    pub hidden: Linear,
    pub classifier: Linear,
}

/// A linear layer `[d_in, d_out]` with weights from a fixed formula (salted by `salt`).
fn linear(d_in: usize, d_out: usize, salt: usize, device: &Device) -> Linear {
    let w: Vec<f32> = (0..d_in * d_out).map(|i| (((i * 7 + salt * 3) % 13) as f32 - 6.0) * 0.08).collect();
    let b: Vec<f32> = (0..d_out).map(|i| (((i * 5 + salt) % 7) as f32 - 3.0) * 0.05).collect();
    Linear {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, [d_in, d_out]), device)),
        bias: Some(Param::from_tensor(Tensor::from_data(TensorData::new(b, [d_out]), device))),
    }
}

impl Tiny {
    /// 4 inputs, 6 hidden units, `classes` outputs.
    pub fn new(classes: usize) -> Self {
        let device = device();
        Self { hidden: linear(4, 6, 1, &device), classifier: linear(6, classes, 2, &device) }
    }
}

impl Model for Tiny {
    fn forward(&self, batch: &MiniBatch) -> Tensor<2> {
        self.classifier.forward(relu(self.hidden.forward(batch.x.clone())))
    }

    fn features(&self, batch: &MiniBatch) -> Option<Tensor<2>> {
        Some(relu(self.hidden.forward(batch.x.clone())))
    }

    fn num_outputs(&self) -> Option<usize> {
        Some(self.classifier.weight.dims()[1])
    }

    fn input_size(&self) -> Option<usize> {
        Some(4)
    }
}

/// The test device.
pub fn device() -> Device {
    Device::default()
}

/// `n` samples of 4 features (salted by `salt`), labels `classes` round-robin.
pub fn generated(n: usize, classes: &[u32], salt: usize) -> ClassificationDataset {
    let inputs: Vec<f32> = (0..n * 4).map(|i| (((i + salt) * 37 % 11) as f32) / 11.0 - 0.3).collect();
    let targets: Vec<u32> = (0..n).map(|i| classes[i % classes.len()]).collect();
    ClassificationDataset::from_f32(inputs, vec![4], targets).unwrap()
}

/// `n_exps` experiences of `per_exp` samples, classes `2e, 2e+1` in experience `e`.
pub fn stream(n_exps: usize, per_exp: usize) -> Stream {
    let exps = (0..n_exps)
        .map(|e| {
            let c = 2 * e as u32;
            Experience::new(e, generated(per_exp, &[c, c + 1], e), "train", 2 * n_exps)
        })
        .collect();
    Stream::new("train", exps)
}

/// Plain SGD.
pub fn sgd(lr: f64) -> OptimizerSpec {
    OptimizerSpec::sgd(lr)
}

/// The flattened values of a parameter tensor.
pub fn values<const D: usize>(p: &Param<Tensor<D>>) -> Vec<f32> {
    p.val().into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// What a [`LossProbe`] saw at `before_backward`: the experience and the loss.
pub type Seen = Arc<Mutex<Vec<(u64, f32)>>>;

/// Records `(train_exp_counter, loss)` at every `before_backward` (read-only).
pub struct LossProbe(pub Seen);

impl<M: Model> Plugin<M> for LossProbe {
    fn before_backward(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        let loss = state.loss.clone().expect("loss set before backward").into_scalar::<f32>();
        self.0.lock().unwrap().push((state.clock().train_exp_counter, loss));
        Ok(())
    }
}

/// Trains a SimpleMLP (4 inputs, dropout 0.5) with `plugin` over 3 experiences of 6 samples
/// (batch 3) and returns, per iteration, the experience and whether its first dropout layer was
/// on at `after_training_iteration`, and whether it is on after training.
pub fn dropout_seen_with(plugin: impl Plugin<cl_models::SimpleMlp>) -> (Vec<(u64, bool)>, bool) {
    use cl_models::{SimpleMlp, SimpleMlpConfig};
    struct FlagProbe(Vec<(u64, bool)>);
    impl Plugin<SimpleMlp> for FlagProbe {
        fn after_training_iteration(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
            self.0.push((s.clock().train_exp_counter, s.model().features[0].dropout.training.is_enabled()));
            Ok(())
        }
    }
    let model = SimpleMlpConfig::new().with_input_size(4).with_hidden_size(8).with_num_classes(6);
    let mut s = cl_core::Strategy::builder(model.init(&device()).unwrap(), sgd(0.1), device())
        .train_mb_size(3)
        .plugin(plugin)
        .plugin(FlagProbe(Vec::new()))
        .build()
        .unwrap();
    s.train(&stream(3, 6)).unwrap();
    let seen = s.plugin::<FlagProbe>().unwrap().0.clone();
    (seen, s.model().features[0].dropout.training.is_enabled())
}
