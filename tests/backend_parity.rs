//! Backend parity: the default CPU backend (`flex`) and LibTorch give the same numbers.
//!
//! The same initial weights (the flex model's, moved to LibTorch through a Burn record) and the
//! same batches (the Fashion-MNIST fixture, the same seeded data order and dropout masks) give
//! the same outputs, the same loss at every SGD step and the same weights after the steps, for
//! SimpleMlp and SimpleCnn with Naive, and for EWC and GEM over two experiences.
//!
//! The LibTorch device is `libtorch-cpu`, or `CL_PARITY_DEVICE` (e.g. `cuda:0`, which
//! `scripts/gpu-check.sh` sets). Tolerance: |a − b| ≤ atol + rtol·|b| with atol = rtol = 1e-4
//! on the CPU (f32 sums in a different order), 5e-3 on a GPU (cuDNN convolutions use TF32 by
//! default).
//!
//! ```text
//! source target/libtorch/env.sh   # after `cargo xtask setup-libtorch`
//! cargo test --release --features tch --test backend_parity
//! ```
#![cfg(feature = "tch")]

mod common;

use burn::module::{Module, ModuleVisitor, Param};
use burn::store::ModuleRecord;
use burn::tensor::{Device, Tensor};
use cl::core::data::MiniBatch;
use cl::device::DeviceChoice;
use cl::models::{SimpleCnn, SimpleCnnConfig};
use cl::plugins::regularization::EwcConfig;
use cl::prelude::*;
use cl::strategies::{Ewc, Gem};
use common::fixture_benchmark;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The LibTorch device under test: `CL_PARITY_DEVICE`, else `libtorch-cpu`.
fn libtorch() -> (DeviceChoice, Device) {
    let name = std::env::var("CL_PARITY_DEVICE").unwrap_or_else(|_| "libtorch-cpu".into());
    let choice: DeviceChoice = name.parse().unwrap_or_else(|e| panic!("CL_PARITY_DEVICE: {e}"));
    let device = choice.device().unwrap_or_else(|e| panic!("{e}"));
    (choice, device)
}

/// `(atol, rtol)` for a device compared with flex.
fn tolerance(choice: DeviceChoice) -> (f32, f32) {
    if choice.is_gpu() { (5e-3, 5e-3) } else { (1e-4, 1e-4) }
}

/// Asserts `a ≈ b` elementwise; prints the largest absolute difference (the measured gap).
fn assert_close(what: &str, a: &[f32], b: &[f32], (atol, rtol): (f32, f32)) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    assert!(!a.is_empty(), "{what}: nothing to compare");
    let mut worst = (0usize, 0f32);
    let mut max_abs = 0f32;
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(x.is_finite() && y.is_finite(), "{what}[{i}]: {x} vs {y}");
        let d = (x - y).abs();
        max_abs = max_abs.max(d);
        let excess = d - (atol + rtol * y.abs());
        if excess > worst.1 {
            worst = (i, excess);
        }
    }
    eprintln!("{what}: {} values, max |difference| {max_abs:.3e}", a.len());
    let i = worst.0;
    assert!(worst.1 <= 0.0, "{what}[{i}]: {} (flex) vs {} (libtorch) is beyond atol {atol} + rtol {rtol}", b[i], a[i]);
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// Every float parameter of a module, flattened, in visiting order, as host f32.
fn params<M: Module>(model: &M) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.extend(values(param.val()));
        }
    }
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    collect.0
}

/// `model` (built on flex) rebuilt on `device`: a fresh module there with other initial
/// weights, then the flex model's record loaded into it.
fn moved<M: Module>(model: &M, fresh_on_device: M) -> M {
    let bytes = model.clone().into_record().into_bytes().unwrap();
    fresh_on_device.load_record(ModuleRecord::from_bytes(bytes).unwrap())
}

/// The first 64 training samples of experience 0 as one batch on `device`.
fn batch(b: &Benchmark, device: &Device) -> MiniBatch {
    let indices: Vec<usize> = (0..64).collect();
    b.train_stream[0].dataset.eval().batch(&indices, device, &mut ChaCha8Rng::seed_from_u64(0)).unwrap()
}

/// Records the loss of every training iteration.
#[derive(Default)]
struct Losses(Vec<f32>);

impl<M: Model> Plugin<M> for Losses {
    fn after_training_iteration(&mut self, state: &mut StrategyState<M>) -> cl::core::Result<()> {
        let loss = state.loss.clone().expect("a loss after each iteration");
        self.0.extend(values(loss));
        Ok(())
    }
}

/// What one run gives, compared between the backends.
struct Run {
    initial_params: Vec<f32>,
    initial_logits: Vec<f32>,
    losses: Vec<f32>,
    final_params: Vec<f32>,
    final_logits: Vec<f32>,
}

/// Trains `model` on `device` with the strategy `configure` builds, on the first `n_exps`
/// experiences of the fixture, recording what [`Run`] holds.
fn run<M: Model + Clone>(
    model: M,
    device: &Device,
    n_exps: usize,
    configure: impl FnOnce(M, Device) -> StrategyBuilder<M>,
) -> Run {
    let b = fixture_benchmark(3);
    let x = batch(&b, device);
    let initial_params = params(&model);
    let initial_logits = values(model.forward(&x));
    let mut s = configure(model, device.clone())
        .train_mb_size(64)
        .train_epochs(1)
        .seed(11)
        .plugin(Losses::default())
        .build()
        .unwrap();
    for exp in b.train_stream.iter().take(n_exps) {
        s.train(exp).unwrap();
    }
    let trained = s.model().valid();
    Run {
        initial_params,
        initial_logits,
        losses: s.plugin::<Losses>().expect("the Losses plugin").0.clone(),
        final_params: params(&trained),
        final_logits: values(trained.forward(&x)),
    }
}

/// Runs on flex and on LibTorch from the same weights and compares everything.
fn compare<M: Model + Clone>(
    name: &str,
    on_flex: M,
    fresh_on_libtorch: impl FnOnce(&Device) -> M,
    n_exps: usize,
    configure: impl Fn(M, Device) -> StrategyBuilder<M>,
) {
    let flex = Device::flex();
    let (choice, device) = libtorch();
    let on_libtorch = moved(&on_flex, fresh_on_libtorch(&device));
    let reference = run(on_flex, &flex, n_exps, &configure);
    let other = run(on_libtorch, &device, n_exps, &configure);
    let tol = tolerance(choice);
    assert_eq!(other.initial_params, reference.initial_params, "{name}: the record gives the same initial weights");
    assert_close(&format!("{name} on {choice}: initial logits"), &other.initial_logits, &reference.initial_logits, tol);
    assert!(reference.losses.len() >= 6, "{name}: {} steps", reference.losses.len());
    assert_close(&format!("{name} on {choice}: loss per SGD step"), &other.losses, &reference.losses, tol);
    assert_close(
        &format!("{name} on {choice}: weights after training"),
        &other.final_params,
        &reference.final_params,
        tol,
    );
    assert_close(
        &format!("{name} on {choice}: logits after training"),
        &other.final_logits,
        &reference.final_logits,
        tol,
    );
    assert_ne!(reference.final_params, reference.initial_params, "{name}: training changed the weights");
}

fn sgd() -> OptimizerSpec {
    OptimizerSpec::sgd(0.01).with_momentum(0.9)
}

/// SimpleMlp with dropout 0.5 (host-seeded masks, the same on both backends).
fn mlp(device: &Device, seed: Option<u64>) -> SimpleMlp {
    SimpleMlpConfig::new().with_seed(seed).init(device).unwrap()
}

#[test]
fn simple_mlp_naive_sgd_steps_match() {
    compare(
        "SimpleMlp/Naive",
        mlp(&Device::flex(), Some(7)),
        |d| mlp(d, Some(99)),
        1,
        |m, d| Naive::builder(m, sgd(), d, NaiveConfig::default()).unwrap(),
    );
}

#[test]
fn simple_cnn_naive_sgd_steps_match() {
    let cnn = |d: &Device, seed: u64| -> SimpleCnn {
        SimpleCnnConfig::new().with_in_channels(1).with_seed(seed).init(d).unwrap()
    };
    compare(
        "SimpleCnn/Naive",
        cnn(&Device::flex(), 7),
        |d| cnn(d, 99),
        1,
        |m, d| Naive::builder(m, sgd(), d, NaiveConfig::default()).unwrap(),
    );
}

#[test]
fn ewc_penalty_steps_match() {
    // Two experiences: the second trains with the EWC penalty of the first.
    compare(
        "SimpleMlp/EWC",
        mlp(&Device::flex(), Some(7)),
        |d| mlp(d, Some(99)),
        2,
        |m, d| Ewc::builder(m, sgd(), d, EwcConfig::new(50.0)).unwrap(),
    );
}

#[test]
fn gem_projection_steps_match() {
    // Two experiences: the second projects its gradients against the first's memory.
    compare(
        "SimpleMlp/GEM",
        mlp(&Device::flex(), Some(7)),
        |d| mlp(d, Some(99)),
        2,
        |m, d| Gem::builder(m, sgd(), d, GemConfig::new(32).with_memory_strength(0.5)).unwrap(),
    );
}

#[test]
fn the_libtorch_device_computes() {
    let (choice, device) = libtorch();
    assert_eq!(choice.feature(), "tch");
    let t = Tensor::<2>::from_floats([[1.0, 2.0], [3.0, 4.0]], &device);
    assert_eq!(values(t.clone().matmul(t)), vec![7.0, 10.0, 15.0, 22.0]);
}
