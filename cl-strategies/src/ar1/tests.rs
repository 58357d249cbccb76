use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Device;
use cl_core::config::{ConfigFile, assert_rule};
use cl_core::data::ClassificationDataset;
use cl_core::{Experience, Strategy, frozen_parameters};
use cl_models::{LatentCnn, LatentCnnConfig, SimpleMlpConfig};
use rand::SeedableRng;

use super::*;

const SIDE: usize = 8;

fn model() -> LatentCnn {
    LatentCnnConfig::new()
        .with_input_shape([1, SIDE, SIDE])
        .with_lower_channels(vec![2])
        .with_upper_channels(vec![3])
        .with_num_classes(4)
        .with_seed(5)
        .init(&Device::flex())
        .unwrap()
}

/// `n` generated 1×8×8 images of `classes` (alternating), distinguishable by class.
fn experience(index: usize, classes: [u32; 2], n: usize) -> Experience {
    let len = SIDE * SIDE;
    let inputs: Vec<f32> = (0..n * len)
        .map(|i| (((i * 31 + index * 7) % 13) as f32 - 6.0) / 6.0 + classes[(i / len) % 2] as f32 * 0.25)
        .collect();
    let targets: Vec<u32> = (0..n).map(|i| classes[i % 2]).collect();
    Experience::new(index, ClassificationDataset::from_f32(inputs, vec![1, SIDE, SIDE], targets).unwrap(), "train", 4)
}

fn strategy(config: Ar1Config) -> Strategy<LatentCnn> {
    Ar1::builder(model(), OptimizerSpec::sgd(0.05).with_momentum(0.9), Device::flex(), config)
        .unwrap()
        .train_mb_size(4)
        .train_epochs(2)
        .seed(3)
        .build()
        .unwrap()
}

fn steps(s: &Strategy<LatentCnn>) -> &Ar1Steps {
    s.steps_as::<Ar1Steps>().unwrap()
}

#[derive(Default)]
struct Values(Vec<(String, Vec<f32>)>, Vec<String>);

impl ModuleVisitor for Values {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.1.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.1.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let v = param.val().into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        self.0.push((self.1.join("."), v));
    }
}

fn values(m: &LatentCnn, prefix: &str) -> Vec<f32> {
    let mut v = Values::default();
    m.visit(&mut v);
    v.0.into_iter().filter(|(p, _)| p.starts_with(prefix)).flat_map(|(_, v)| v).collect()
}

fn running(norm: &cl_models::BatchRenorm2d) -> Vec<f32> {
    let mut v = norm.running_mean.value_sync().into_data().try_to_vec::<f32>().unwrap();
    v.extend(norm.running_std.value_sync().into_data().try_to_vec::<f32>().unwrap());
    v
}

#[test]
fn defaults_are_avalanches() {
    let c = Ar1Config::default();
    assert_eq!((c.inc_lr, c.init_update_rate, c.inc_update_rate), (5e-5, 0.01, 5e-5));
    assert_eq!((c.max_r_max, c.max_d_max, c.inc_step, c.rm_sz, c.si_lambda), (1.25, 0.5, 4.1e-5, 1500, 0.0));
    assert_eq!(Ar1Config::from_toml("").unwrap(), c);
    assert_eq!(
        Ar1Config::avalanche_optimizer(),
        OptimizerSpec::sgd(0.001).with_momentum(0.9).with_weight_decay(0.0005)
    );
    let s = Ar1::builder(model(), Ar1Config::avalanche_optimizer(), Device::flex(), c).unwrap().build().unwrap();
    assert_eq!(
        (
            s.state().settings().train_epochs(),
            s.state().settings().train_mb_size(),
            s.state().settings().eval_mb_size()
        ),
        (4, 128, 128)
    );
    // No SI plugin at si_lambda = 0; one (the output layer excluded) otherwise.
    assert!(s.plugin::<SynapticIntelligencePlugin>().is_none());
    let s =
        Ar1::builder(model(), Ar1Config::avalanche_optimizer(), Device::flex(), Ar1Config::new().with_si_lambda(0.5))
            .unwrap()
            .build()
            .unwrap();
    assert_eq!(s.plugin::<SynapticIntelligencePlugin>().unwrap().config().excluded_parameters, ["output"]);
}

#[test]
fn config_round_trips_and_every_rule_is_checked() {
    let c = Ar1Config::new()
        .with_rm_sz(10)
        .with_inc_lr(0.1)
        .with_si_lambda(2.0)
        .with_replay_labels(ReplayLabels::DatasetOrder)
        .with_batch_renorm(0.1, 0.2, 2.0, 1.0, 0.001)
        .with_seed(9);
    assert_eq!(Ar1Config::from_json(&c.to_json()).unwrap(), c);
    assert_eq!(Ar1Config::from_toml(&c.to_toml().unwrap()).unwrap(), c);
    let bad = |f: fn(&mut Ar1Config)| {
        let mut c = Ar1Config::default();
        f(&mut c);
        c.validate()
    };
    assert_rule(bad(|c| c.inc_lr = f64::NAN), "inc_lr_non_negative");
    assert_rule(bad(|c| c.init_update_rate = 1.5), "update_rate_in_unit_interval");
    assert_rule(bad(|c| c.inc_update_rate = -0.1), "update_rate_in_unit_interval");
    assert_rule(bad(|c| c.max_r_max = 0.5), "max_r_max_at_least_one");
    assert_rule(bad(|c| c.max_d_max = -1.0), "max_d_max_non_negative");
    assert_rule(bad(|c| c.inc_step = f64::INFINITY), "inc_step_non_negative");
    assert_rule(bad(|c| c.rm_sz = 0), "rm_sz_positive");
    assert_rule(bad(|c| c.si_lambda = -1.0), "si_lambda_non_negative");
    assert_rule(Ar1Steps::new(Ar1Config::new().with_rm_sz(0)).map(|_| ()), "rm_sz_positive");
}

#[test]
fn a_model_without_a_latent_layer_or_epochs_is_refused() {
    let device = Device::flex();
    let mlp = || SimpleMlpConfig::new().with_input_size(64).init(&device).unwrap();
    assert_rule(
        Ar1::builder(mlp(), OptimizerSpec::sgd(0.1), device.clone(), Ar1Config::new()).map(|_| ()),
        "model_has_latent_layer",
    );
    let err = Ar1::builder(mlp(), OptimizerSpec::sgd(0.1), device.clone(), Ar1Config::new()).map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("LatentCnn"), "{err}");
    let built =
        Ar1::builder(model(), OptimizerSpec::sgd(0.1), device, Ar1Config::new()).unwrap().train_epochs(0).build();
    assert_rule(built.map(|_| ()), "train_epochs_positive");
}

/// The memory fills on the first experience (`min(rm_sz, n)` rows, no replay); on the second,
/// mini-batches hold `n // ((n + rm_sz) // mb)` = 12 // 4 = 3 current samples and 1 memory row
/// (4 batches per epoch), and `rm_sz / 2` rows are replaced by the experience's.
#[test]
fn the_memory_fills_then_half_of_it_is_replaced() {
    let mut s = strategy(Ar1Config::new().with_rm_sz(6).with_inc_lr(0.01).with_seed(1));
    s.train(&experience(0, [0, 1], 12)).unwrap();
    let st = steps(&s);
    assert_eq!(st.memory_labels().len(), 6);
    assert!(st.memory_labels().iter().all(|y| *y < 2));
    assert_eq!(st.memory_activations().len(), 6 * 2 * 4 * 4);
    assert_eq!(st.replay_mb_size(), 0);
    assert_eq!(s.state().clock().train_iterations, 2 * 3);
    let before: Vec<u32> = st.memory_labels().to_vec();
    s.train(&experience(1, [2, 3], 12)).unwrap();
    let st = steps(&s);
    assert_eq!(st.replay_mb_size(), 1);
    assert_eq!(s.state().clock().train_iterations, 6 + 2 * 4);
    assert_eq!(st.memory_labels().len(), 6);
    assert_eq!(st.memory_labels().iter().filter(|y| **y >= 2).count(), 3);
    // CWR*'s counts of the second experience include the replayed rows' classes.
    let cur = st.cwr().unwrap().current_counts();
    for c in [0u32, 1] {
        assert_eq!(cur.get(&c).copied().unwrap_or(0), before.iter().filter(|y| **y == c).count());
    }
    assert_eq!((cur[&2], cur[&3]), (6, 6));
    assert_eq!(st.cwr().unwrap().consolidated_weights().len(), 4);
    // The later experience's optimizer runs at inc_lr.
    assert_eq!(s.state().lr(), 0.01);
}

/// The lower part stays in evaluation mode (its batch-renorm statistics never move) and trains
/// on the first experience only; the upper part's statistics move; the batch-renorm limits grow
/// on the first experience and sit at their maxima afterwards.
#[test]
fn the_lower_part_is_in_evaluation_mode_and_frozen_after_the_first_experience() {
    let config = Ar1Config::new().with_rm_sz(6).with_inc_lr(0.01);
    let mut s = strategy(config.clone());
    let lower0 = values(s.model(), "lower.0.conv");
    let upper_stats0 = running(&s.model().upper[0].norm);
    s.train(&experience(0, [0, 1], 12)).unwrap();
    assert_eq!(running(&s.model().lower[0].norm), vec![0.0, 0.0, 1.0, 1.0]);
    assert_ne!(running(&s.model().upper[0].norm), upper_stats0);
    let lower1 = values(s.model(), "lower.0.conv");
    assert_ne!(lower1, lower0);
    // 2 epochs of 12 samples, 4.1e-5 per sample: r_max = 1 + 24 × 4.1e-5 (d_max from 0).
    let grown = s.model().upper[0].norm.settings();
    assert!((grown.r_max - (1.0 + 24.0 * 4.1e-5)).abs() < 1e-12 && (grown.d_max - 24.0 * 4.1e-5).abs() < 1e-12);
    assert_eq!(grown.momentum, 0.01);
    s.train(&experience(1, [2, 3], 12)).unwrap();
    assert_eq!(values(s.model(), "lower.0.conv"), lower1);
    assert_eq!(running(&s.model().lower[0].norm), vec![0.0, 0.0, 1.0, 1.0]);
    let frozen = frozen_parameters(s.model());
    assert!(frozen.iter().any(|p| p == "lower.0.conv.weight") && !frozen.iter().any(|p| p.starts_with("upper.0.conv")));
    assert_eq!(s.model().upper[0].norm.settings(), config.incremental_renorm());
}

/// Each stored activation is the lower part's activation of a sample of the experience, with
/// that sample's label ([`ReplayLabels::Own`]); Avalanche's dataset-order labels differ from the
/// samples' own for some rows.
#[test]
fn stored_activations_carry_their_samples_labels() {
    let exp1 = experience(1, [2, 3], 12);
    let check = |labels: ReplayLabels| -> (usize, usize) {
        let mut s = strategy(Ar1Config::new().with_rm_sz(6).with_inc_lr(0.01).with_seed(4).with_replay_labels(labels));
        s.train(&experience(0, [0, 1], 12)).unwrap();
        s.train(&exp1).unwrap();
        // The lower part is frozen and in evaluation mode: its activations now are those stored.
        let batch = exp1
            .dataset
            .batch(&(0..12).collect::<Vec<_>>(), &Device::flex().autodiff(), &mut ChaCha8Rng::seed_from_u64(0))
            .unwrap();
        let lat = s.model().latent_replay().unwrap().latent(&batch).into_data().try_to_vec::<f32>().unwrap();
        let st = steps(&s);
        let d = st.memory_activations().len() / st.memory_labels().len();
        let (mut own, mut other) = (0, 0);
        for (row, &y) in st.memory_activations().chunks(d).zip(st.memory_labels()) {
            if y < 2 {
                continue;
            }
            let i = (0..12)
                .find(|&i| lat[i * d..(i + 1) * d].iter().zip(row).all(|(a, b)| (a - b).abs() < 1e-5))
                .expect("a stored activation is a sample's");
            if batch.targets[i] == y { own += 1 } else { other += 1 }
        }
        (own, other)
    };
    assert_eq!(check(ReplayLabels::Own), (3, 0));
    let (own, other) = check(ReplayLabels::DatasetOrder);
    assert_eq!(own + other, 3);
    assert!(other > 0, "the loader's order differs from the dataset's: some labels are another sample's");
}
