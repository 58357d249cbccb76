//! Multiply-accumulate counts and model size from visiting a Burn module with Linear and Conv2d
//! layers, against hand-computed numbers.

use cl::core::burn;
use cl::core::burn::module::Module;
use cl::core::burn::nn::conv::{Conv2d, Conv2dConfig};
use cl::core::burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use cl::core::burn::tensor::Device;
use cl::core::evaluation::{LayerKind, ModelInspect, conv2d_macs};
use cl::metrics::{MacConfig, MacMetric};

#[derive(Module, Debug)]
struct SmallCnn {
    conv1: Conv2d,
    conv2: Conv2d,
    fc: Linear,
}

fn cnn() -> SmallCnn {
    let device = Device::default();
    SmallCnn {
        // 1 -> 4 channels, 3x3, no padding: 28x28 -> 26x26.
        conv1: Conv2dConfig::new([1, 4], [3, 3]).init(&device),
        // 4 -> 8 channels, 3x3, padding 1, stride 2: 26x26 -> 13x13.
        conv2: Conv2dConfig::new([4, 8], [3, 3])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device),
        fc: LinearConfig::new(8 * 13 * 13, 10).init(&device),
    }
}

#[test]
fn cnn_macs_params_and_bytes() {
    let model = cnn();
    let layers = model.layers();
    assert_eq!(layers.len(), 3);
    assert_eq!(layers[1].path, "conv2");
    assert_eq!(layers[1].kind, LayerKind::Conv2d { c_out: 8, c_in_per_group: 4, kernel: [3, 3] });
    // Output sizes from the layers' own configuration.
    let (m1, hw1) = conv2d_macs(&model.conv1, [28, 28]);
    let (m2, hw2) = conv2d_macs(&model.conv2, hw1);
    assert_eq!((m1, hw1), (4 * 9 * 26 * 26, [26, 26]));
    assert_eq!((m2, hw2), (8 * 4 * 9 * 13 * 13, [13, 13]));
    let linear = 8 * 13 * 13 * 10;
    let mut mac = MacMetric::new(MacConfig::default().with_conv_output_sizes(vec![hw1, hw2])).unwrap();
    assert_eq!(mac.count(&layers, &[1, 28, 28]), 24_336 + 48_672 + linear);
    // Without the convolutions' output sizes only the Linear layer is counted.
    assert_eq!(MacMetric::new(MacConfig::default()).unwrap().count(&layers, &[1, 28, 28]), linear);
    // A custom counter replaces the built-in one.
    let mut custom =
        MacMetric::new(MacConfig::default()).unwrap().with_counter(|layers, shape| (layers.len() * shape[1]) as u64);
    assert_eq!(custom.count(&layers, &[1, 28, 28]), 84);
    let params = (4 * 9 + 4) + (8 * 4 * 9 + 8) + (1352 * 10 + 10);
    assert_eq!(model.param_count(), params);
    assert_eq!(model.param_bytes(), 4 * params as u64);
}
