//! Freezing part of a model as Avalanche freezes it: [`freeze`], [`unfreeze`], [`ModelPart`].
//!
//! Avalanche's `freeze_everything(model)` sets `requires_grad = False` on every parameter and
//! calls `model.eval()`; `unfreeze_everything(layer)` undoes both for one layer
//! (`avalanche/training/utils.py`). A frozen layer therefore gets no gradient, so PyTorch's
//! optimizers skip it (no momentum or weight-decay step either), **and** it behaves as in
//! evaluation: dropout off, batch normalisation normalising with its running statistics and
//! no longer updating them. CWR*, LFL, AR1 and PNN rely on both halves.
//!
//! Burn has no `train()`/`eval()` switch per module, but since 0.22 every layer with a training
//! behaviour (`Dropout`, `BatchNorm`, `cl-models`' `SeededDropout`) holds a training flag, a
//! `Param<Flag>` that `Module::freeze` clears together with the tensors' `require_grad`.
//! [`freeze`] does the same for the part of the model a [`ModelPart`] selects by path:
//!
//! - its float parameters stop requiring gradients: the backward pass computes no gradient
//!   for them (so the optimizer leaves them, and their optimizer state, untouched; and the
//!   backward pass through a frozen prefix of the network is cheaper);
//! - its training flags are off: its dropout layers pass their input through and its
//!   batch-norm layers use (and keep) their running statistics, also while the rest of the
//!   model trains.
//!
//! Both settings persist through the strategy's evaluation copies (`Module::valid` then
//! `Module::train` restores the frozen settings, not "all trainable"); a plugin freezes through
//! [`StrategyState::map_model`](crate::StrategyState::map_model), e.g. in `before_training_exp`.
//! A model rebuilt from a checkpoint record or re-initialised (`FromScratch`) is unfrozen: a
//! plugin that freezes does so again at the start of each experience, as Avalanche's do.
//!
//! ```
//! use burn::module::Module;
//! use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
//! use cl_core::{ModelPart, freeze, frozen_parameters, unfreeze};
//! #[derive(Module, Debug)]
//! struct Net { hidden: Linear, drop: Dropout, classifier: Linear }
//! let device = burn::tensor::Device::default().autodiff(); // the training device
//! let net = Net {
//!     hidden: LinearConfig::new(4, 8).init(&device),
//!     drop: DropoutConfig::new(0.5).init(),
//!     classifier: LinearConfig::new(8, 2).init(&device),
//! };
//! // Avalanche's freeze_everything(model); unfreeze_everything(model.classifier):
//! let net = freeze(net, &ModelPart::all_but(["classifier"]));
//! assert_eq!(frozen_parameters(&net), ["hidden.weight", "hidden.bias"]);
//! assert!(!net.drop.training.is_enabled()); // dropout off while the classifier trains
//! let net = unfreeze(net, &ModelPart::All);
//! assert!(frozen_parameters(&net).is_empty() && net.drop.training.is_enabled());
//! ```

use burn::module::{Flag, Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// A part of a model, by the paths of its layers (`classifier`, `layers.0`, the paths of
/// `Module` fields joined with `.`): a parameter or training flag belongs to layer `l` when its
/// path is `l` or starts with `l.` (`layers.1` does not contain `layers.10.weight`); the empty
/// path is the whole model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelPart {
    /// The whole model.
    All,
    /// These layers (and everything under them).
    Layers(Vec<String>),
    /// Everything but these layers.
    AllBut(Vec<String>),
}

impl ModelPart {
    /// These layers.
    pub fn layers<S: Into<String>>(layers: impl IntoIterator<Item = S>) -> Self {
        Self::Layers(layers.into_iter().map(Into::into).collect())
    }

    /// Everything but these layers.
    pub fn all_but<S: Into<String>>(layers: impl IntoIterator<Item = S>) -> Self {
        Self::AllBut(layers.into_iter().map(Into::into).collect())
    }

    /// Whether the parameter or flag at `path` belongs to this part.
    pub fn contains(&self, path: &str) -> bool {
        let under = |layers: &[String]| layers.iter().any(|l| in_layer(path, l));
        match self {
            Self::All => true,
            Self::Layers(layers) => under(layers),
            Self::AllBut(layers) => !under(layers),
        }
    }
}

/// Whether `path` is `layer` or lies under it (`layer` empty: the whole model).
fn in_layer(path: &str, layer: &str) -> bool {
    layer.is_empty() || path.strip_prefix(layer).is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// Freezes the `part` of `model` (see the [module docs](self)): no gradient, so no optimizer
/// step, and evaluation-mode behaviour (dropout off, batch-norm running statistics used and
/// kept). Idempotent; the rest of the model is left as it is.
///
/// Freeze an initialised model (a strategy's is: the builder initialises every parameter). A
/// parameter still waiting for lazy initialisation shares its initialiser with the model's
/// clones, so freezing it would be seen by them too.
pub fn freeze<M: Module>(model: M, part: &ModelPart) -> M {
    model.map(&mut SetTrainable { part, trainable: false, path: Vec::new() })
}

/// Unfreezes the `part` of `model`: its parameters require gradients again and its training
/// flags are on (Avalanche's `unfreeze_everything`). The rest of the model is left as it is.
pub fn unfreeze<M: Module>(model: M, part: &ModelPart) -> M {
    model.map(&mut SetTrainable { part, trainable: true, path: Vec::new() })
}

/// The paths of the float tensors of `model` that get no gradient, in visiting order: the
/// frozen parameters, and state that is never trained (batch-norm running statistics). Meant
/// for a model on the training (autodiff) device, such as `StrategyState::model`; on a device
/// without autodiff no tensor tracks gradients and every path is listed.
pub fn frozen_parameters<M: Module>(model: &M) -> Vec<String> {
    let mut visitor = Frozen { path: Vec::new(), frozen: Vec::new() };
    model.visit(&mut visitor);
    visitor.frozen
}

/// Avalanche's `model.train(mode)` as far as Burn has it: sets every training flag of `model`
/// (dropout, batch normalisation: `Param<Flag>`) to `training`, leaving the parameters'
/// `require_grad` as they are (a model on the autodiff device keeps training, in evaluation
/// mode when `training` is false). Returns the model and the paths of the flags it changed, so
/// that exactly those can be switched back with [`set_training_flags`] (flags a freeze turned
/// off stay off).
///
/// ```
/// use burn::nn::{Dropout, DropoutConfig};
/// use cl_core::{set_training_flags, set_training_mode};
/// #[derive(burn::module::Module, Debug)]
/// struct Net { drop: Dropout }
/// let net = Net { drop: DropoutConfig::new(0.5).init() };
/// let (net, changed) = set_training_mode(net, false); // Avalanche's model.eval()
/// assert_eq!(changed, ["drop.training"]);
/// assert!(!net.drop.training.is_enabled());
/// let net = set_training_flags(net, &changed, true);
/// assert!(net.drop.training.is_enabled());
/// ```
pub fn set_training_mode<M: Module>(model: M, training: bool) -> (M, Vec<String>) {
    let mut mapper = SetFlags { only: None, value: training, path: Vec::new(), changed: Vec::new() };
    let model = model.map(&mut mapper);
    (model, mapper.changed)
}

/// Sets the training flags at `paths` (as [`set_training_mode`] returns them) to `training`.
pub fn set_training_flags<M: Module>(model: M, paths: &[String], training: bool) -> M {
    model.map(&mut SetFlags { only: Some(paths), value: training, path: Vec::new(), changed: Vec::new() })
}

struct SetFlags<'a> {
    only: Option<&'a [String]>,
    value: bool,
    path: Vec<String>,
    changed: Vec<String>,
}

impl ModuleMapper for SetFlags<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_flag(&mut self, flag: Param<Flag>) -> Param<Flag> {
        let path = self.path.join(".");
        if self.only.is_some_and(|only| !only.contains(&path)) || flag.is_enabled() == self.value {
            return flag;
        }
        self.changed.push(path);
        flag.with_value(self.value)
    }
}

struct SetTrainable<'a> {
    part: &'a ModelPart,
    trainable: bool,
    path: Vec<String>,
}

impl ModuleMapper for SetTrainable<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        match self.part.contains(&self.path.join(".")) {
            true => param.set_require_grad(self.trainable),
            false => param,
        }
    }

    fn map_flag(&mut self, flag: Param<Flag>) -> Param<Flag> {
        match self.part.contains(&self.path.join(".")) {
            true => flag.with_value(self.trainable),
            false => flag,
        }
    }
}

struct Frozen {
    path: Vec<String>,
    frozen: Vec<String>,
}

impl ModuleVisitor for Frozen {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if !param.is_require_grad() {
            self.frozen.push(self.path.join("."));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig};
    use burn::optim::{GradientsParams, SgdConfig, momentum::MomentumConfig};
    use burn::tensor::{Device, Distribution};

    #[derive(Module, Debug)]
    struct Net {
        norm: BatchNorm,
        hidden: Linear,
        drop: Dropout,
        classifier: Linear,
    }

    impl Net {
        fn new(device: &Device) -> Self {
            device.seed(7);
            Self {
                norm: BatchNormConfig::new(4).init(device),
                hidden: LinearConfig::new(4, 16).init(device),
                drop: DropoutConfig::new(0.5).init(),
                classifier: LinearConfig::new(16, 3).init(device),
            }
        }

        fn features(&self, x: Tensor<2>) -> Tensor<2> {
            self.drop.forward(burn::tensor::activation::relu(self.hidden.forward(self.norm.forward(x))))
        }

        fn forward(&self, x: Tensor<2>) -> Tensor<2> {
            self.classifier.forward(self.features(x))
        }
    }

    fn values<M: Module>(m: &M) -> Vec<(String, Vec<u32>)> {
        struct V(Vec<String>, Vec<(String, Vec<u32>)>);
        impl ModuleVisitor for V {
            fn enter_module(&mut self, name: &str, _: &str) {
                self.0.push(name.into());
            }
            fn exit_module(&mut self, _: &str, _: &str) {
                self.0.pop();
            }
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
                let v = p.val().into_data().try_to_vec::<f32>().unwrap().iter().map(|x| x.to_bits()).collect();
                self.1.push((self.0.join("."), v));
            }
        }
        let mut v = V(Vec::new(), Vec::new());
        m.visit(&mut v);
        v.1
    }

    #[test]
    fn paths_select_whole_layers() {
        let part = ModelPart::layers(["layers.1", "head"]);
        assert!(part.contains("layers.1.weight") && part.contains("head") && part.contains("head.bias"));
        assert!(!part.contains("layers.10.weight") && !part.contains("header.weight") && !part.contains("layers"));
        let rest = ModelPart::all_but(["layers.1", "head"]);
        assert!(!rest.contains("layers.1.weight") && rest.contains("layers.10.weight"));
        assert!(ModelPart::All.contains("anything") && ModelPart::layers([""]).contains("x.y"));
        let json = serde_json::to_string(&rest).unwrap();
        assert_eq!(json, r#"{"all_but":["layers.1","head"]}"#);
        assert_eq!(serde_json::from_str::<ModelPart>(&json).unwrap(), rest);
    }

    /// SGD with momentum over several steps: the frozen layers' weights and batch-norm running
    /// statistics stay bit-identical, their dropout is off (the features of a batch are the
    /// same twice on the training device), the classifier trains; after `unfreeze`, everything
    /// trains again and dropout is back on.
    #[test]
    fn frozen_layers_get_no_step_and_behave_as_in_evaluation() {
        let device = Device::default().autodiff();
        let net = Net::new(&device);
        let x = Tensor::<2>::random([32, 4], Distribution::Normal(1.0, 2.0), &device);
        let y = Tensor::<1, burn::tensor::Int>::from_data([0i64, 1, 2, 1].repeat(8).as_slice(), &device);
        // Unfrozen, dropout is on: two forward passes differ.
        let a = net.features(x.clone()).into_data().try_to_vec::<f32>().unwrap();
        let b = net.features(x.clone()).into_data().try_to_vec::<f32>().unwrap();
        assert_ne!(a, b, "dropout is on while training");

        let running_stats = ["norm.running_mean", "norm.running_var"];
        assert_eq!(frozen_parameters(&net), running_stats, "never trained");
        let mut net = freeze(net, &ModelPart::all_but(["classifier"]));
        assert_eq!(
            frozen_parameters(&net),
            ["norm.gamma", "norm.beta", "norm.running_mean", "norm.running_var", "hidden.weight", "hidden.bias"]
        );
        let before = values(&net);
        let running = |n: &Net| (n.norm.running_mean.value().into_data(), n.norm.running_var.value().into_data());
        let stats = running(&net);
        let a = net.features(x.clone()).into_data().try_to_vec::<f32>().unwrap();
        let b = net.features(x.clone()).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(a, b, "dropout is off in the frozen part");

        let mut optim = SgdConfig::new().with_momentum(Some(MomentumConfig::new().with_momentum(0.9))).init();
        for _ in 0..3 {
            let loss =
                burn::nn::loss::CrossEntropyLossConfig::new().init(&device).forward(net.forward(x.clone()), y.clone());
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            assert_eq!(grads.len(), 2, "only the classifier's weight and bias have a gradient");
            net = optim.step(0.1, net, grads);
        }
        let after = values(&net);
        for ((name, b), (_, a)) in before.iter().zip(&after) {
            if name.starts_with("classifier") {
                assert_ne!(a, b, "{name} trains");
            } else {
                assert_eq!(a, b, "{name} is frozen");
            }
        }
        assert_eq!(running(&net), stats, "batch-norm statistics are kept");
        // Through an evaluation copy and back, the freezing holds.
        let net = net.valid().train();
        assert_eq!(frozen_parameters(&net).len(), 6);
        assert!(!net.drop.training.is_enabled() && !net.norm.training.is_enabled());

        let net = unfreeze(net, &ModelPart::All);
        assert_eq!(frozen_parameters(&net), running_stats);
        assert!(net.drop.training.is_enabled() && net.norm.training.is_enabled());
        let a = net.features(x.clone()).into_data().try_to_vec::<f32>().unwrap();
        let b = net.features(x).into_data().try_to_vec::<f32>().unwrap();
        assert_ne!(a, b, "dropout is on again");
    }
}
