//! Structural information on a model, read by visiting its Burn module: parameter count and
//! bytes, and the Linear/Conv2d layers that multiply-accumulate counts are computed from.

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// A layer found in a model, with what its multiply-accumulate count depends on (serialisable:
/// a MAC metric's checkpoint keeps the layers its count was computed for).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LayerKind {
    /// A `burn::nn::Linear`: weight `[d_in, d_out]`.
    Linear {
        /// Input features.
        d_in: usize,
        /// Output features.
        d_out: usize,
    },
    /// A `burn::nn::conv::Conv2d`: weight `[c_out, c_in / groups, kh, kw]`.
    Conv2d {
        /// Output channels.
        c_out: usize,
        /// Input channels per group.
        c_in_per_group: usize,
        /// Kernel size.
        kernel: [usize; 2],
    },
}

/// A layer of a model: its path (`fc1`, `features.0.conv`) and kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// Module path, `.`-separated.
    pub path: String,
    /// The kind of layer.
    pub kind: LayerKind,
}

/// What metrics can ask of a model without knowing its type (object safe; implemented for
/// every Burn [`Module`]).
pub trait ModelInspect {
    /// Number of scalar parameters.
    fn param_count(&self) -> usize;
    /// Bytes taken by the parameters (element count × element size of each tensor's dtype).
    fn param_bytes(&self) -> u64;
    /// The Linear and Conv2d layers, in visiting (declaration) order.
    fn layers(&self) -> Vec<LayerInfo>;
}

impl<M: Module> ModelInspect for M {
    fn param_count(&self) -> usize {
        self.num_params()
    }

    fn param_bytes(&self) -> u64 {
        let mut v = Inspector::default();
        self.visit(&mut v);
        v.bytes
    }

    fn layers(&self) -> Vec<LayerInfo> {
        let mut v = Inspector::default();
        self.visit(&mut v);
        v.layers
    }
}

#[derive(Default)]
struct Inspector {
    stack: Vec<(String, String)>,
    bytes: u64,
    layers: Vec<LayerInfo>,
}

impl ModuleVisitor for Inspector {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.stack.push((name.to_string(), container_type.to_string()));
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        let dims = tensor.dims();
        let numel: usize = dims.iter().product();
        self.bytes += (numel * tensor.dtype().size()) as u64;
        // The parameter's own field was entered last, with its struct as container.
        let Some((field, container)) = self.stack.last() else { return };
        if field != "weight" {
            return;
        }
        let path = self.stack[..self.stack.len() - 1].iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(".");
        let kind = match (container.as_str(), D) {
            ("Struct:Linear", 2) => LayerKind::Linear { d_in: dims[0], d_out: dims[1] },
            ("Struct:Conv2d", 4) => {
                LayerKind::Conv2d { c_out: dims[0], c_in_per_group: dims[1], kernel: [dims[2], dims[3]] }
            }
            _ => return,
        };
        self.layers.push(LayerInfo { path, kind });
    }
}

/// Multiply-accumulates of one forward pass of `conv` on one sample of spatial size `input_hw`,
/// and the output's spatial size (to chain layers): `c_out · c_in/groups · kh · kw · h_out · w_out`.
///
/// For a CNN, compose this over the model's convolutions (and
/// [`linear_macs`]) and give the result to `cl-metrics`' `MacMetric::with_counter`.
pub fn conv2d_macs(conv: &Conv2d, input_hw: [usize; 2]) -> (u64, [usize; 2]) {
    let [c_out, c_in_g, kh, kw] = conv.weight.dims();
    let (pad_h, pad_w) = match &conv.padding {
        PaddingConfig2d::Valid => ((0, 0), (0, 0)),
        PaddingConfig2d::Same => {
            // Burn's `Same` keeps the size (stride 1).
            let ph = conv.dilation[0] * (kh - 1);
            let pw = conv.dilation[1] * (kw - 1);
            ((ph / 2, ph - ph / 2), (pw / 2, pw - pw / 2))
        }
        PaddingConfig2d::Explicit(top, left, bottom, right) => ((*top, *bottom), (*left, *right)),
    };
    let out = |i: usize, (a, b): (usize, usize), k: usize, d: usize, s: usize| {
        (i + a + b).saturating_sub(d * (k - 1) + 1) / s + 1
    };
    let h = out(input_hw[0], pad_h, kh, conv.dilation[0], conv.stride[0]);
    let w = out(input_hw[1], pad_w, kw, conv.dilation[1], conv.stride[1]);
    ((c_out * c_in_g * kh * kw * h * w) as u64, [h, w])
}

/// Multiply-accumulates of a Linear layer on one sample: `d_in · d_out`.
pub fn linear_macs(d_in: usize, d_out: usize) -> u64 {
    (d_in * d_out) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Device;

    #[derive(Module, Debug)]
    struct Net {
        conv: Conv2d,
        fc: burn::nn::Linear,
    }

    #[test]
    fn layers_params_bytes_and_conv_macs() {
        let device = Device::default();
        let net = Net {
            conv: Conv2dConfig::new([1, 4], [3, 3]).init(&device),
            fc: LinearConfig::new(4 * 26 * 26, 10).init(&device),
        };
        let layers = net.layers();
        assert_eq!(
            layers,
            vec![
                LayerInfo {
                    path: "conv".into(),
                    kind: LayerKind::Conv2d { c_out: 4, c_in_per_group: 1, kernel: [3, 3] }
                },
                LayerInfo { path: "fc".into(), kind: LayerKind::Linear { d_in: 2704, d_out: 10 } },
            ]
        );
        let params = 4 * 9 + 4 + 2704 * 10 + 10;
        assert_eq!(net.param_count(), params);
        assert_eq!(net.param_bytes(), 4 * params as u64);
        // 28x28 input, 3x3 valid conv: 26x26 output, 4 * 1 * 9 * 676 MACs.
        assert_eq!(conv2d_macs(&net.conv, [28, 28]), (4 * 9 * 676, [26, 26]));
    }
}
