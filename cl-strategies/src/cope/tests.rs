use burn::tensor::Device;
use cl_core::config::assert_rule;
use cl_core::data::ClassificationDataset;
use cl_core::{Experience, Strategy};
use cl_models::{SimpleMlp, SimpleMlpConfig};

use super::*;

fn unit_rows(rows: &[[f32; 3]]) -> Vec<f32> {
    rows.iter()
        .flat_map(|r| {
            let n = r.iter().map(|v| v * v).sum::<f32>().sqrt();
            r.map(|v| v / n)
        })
        .collect()
}

const X: [[f32; 3]; 5] = [[0.3, -0.2, 0.9], [0.1, 0.8, -0.4], [-0.5, 0.2, 0.6], [0.7, 0.7, 0.1], [-0.3, 0.9, 0.2]];
const P: [[f32; 3]; 3] = [[1.0, 0.2, 0.1], [-0.2, 1.0, 0.3], [0.4, 0.4, -1.0]];

/// Embeddings, labels, Avalanche's loss and its gradient.
type Case<'a> = (&'a [[f32; 3]], &'a [u32], f32, &'a [f32]);

/// The loss and its gradient against Avalanche 0.6's `PPPloss(p_mem, T=0.5)` on the same
/// unit-norm embeddings and prototypes (values printed by torch), for a batch of three classes
/// and for a single-class batch (attractor only).
#[test]
fn ppp_loss_and_gradient_are_avalanches() {
    let device = Device::flex().autodiff();
    let prototypes = Tensor::<2>::from_data(TensorData::new(unit_rows(&P), [3, 3]), &device);
    let cases: [Case; 2] = [
        (
            &X,
            &[0, 1, 0, 2, 1],
            2.244_424_8,
            &[
                -0.258_260_34,
                0.244_117_35,
                -0.035_134_356,
                0.290_457_87,
                -0.223_484_68,
                -0.254_907_28,
                -0.656_330_05,
                0.635_639_67,
                0.036_884_718,
                -0.014_016_837,
                0.062_362_76,
                0.516_310_8,
                0.135_087_22,
                -0.159_983_13,
                -0.026_075_356,
            ],
        ),
        (
            &X[..3],
            &[1, 1, 1],
            1.045_865_4,
            &[
                0.491_614_6,
                -0.167_605_52,
                -0.134_422_99,
                0.343_174_4,
                -0.145_441_46,
                -0.498_558_6,
                0.108_440_49,
                -0.055_147_648,
                -0.063_308_18,
            ],
        ),
    ];
    for (rows, targets, value, gradient) in cases {
        let x = Tensor::<2>::from_data(TensorData::new(unit_rows(rows), [rows.len(), 3]), &device).require_grad();
        let loss = ppp_loss(x.clone(), targets, &prototypes, 0.5).unwrap();
        let got = loss.clone().into_scalar::<f32>();
        assert!((got - value).abs() < 1e-5, "{got} vs {value}");
        let grads = loss.backward();
        let g = x.grad(&grads).unwrap().into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        for (a, b) in g.iter().zip(gradient) {
            assert!((a - b).abs() < 1e-5, "{g:?} vs {gradient:?}");
        }
    }
    let x = Tensor::<2>::from_data(TensorData::new(unit_rows(&X[..1]), [1, 3]), &device);
    assert!(ppp_loss(x, &[3], &prototypes, 0.5).unwrap_err().to_string().contains("n_classes"));
}

#[test]
fn config_rules() {
    let c = CopeConfig::new;
    assert_rule(c(0).validate(), "mem_size_positive");
    assert_rule(c(10).with_n_classes(1).validate(), "n_classes_at_least_two");
    assert_rule(c(10).with_p_size(0).validate(), "p_size_positive");
    assert_rule(c(10).with_alpha(1.5).validate(), "alpha_in_unit_interval");
    assert_rule(c(10).with_temperature(0.0).validate(), "temperature_positive");
    assert_rule(c(10).with_max_it_cnt(0).validate(), "max_it_cnt_positive");
    assert_eq!(
        CopeConfig::default(),
        CopeConfig {
            mem_size: 200,
            n_classes: 10,
            p_size: 100,
            alpha: 0.99,
            temperature: 0.1,
            max_it_cnt: 1,
            skip_after_stop: false,
            seed: 0
        }
    );
}

fn mlp(outputs: usize) -> SimpleMlp {
    SimpleMlpConfig::new()
        .with_input_size(4)
        .with_hidden_size(8)
        .with_num_classes(outputs)
        .with_drop_rate(0.0)
        .with_seed(Some(1))
        .init(&Device::flex())
        .unwrap()
}

fn experience(index: usize, classes: &[u32], n: usize) -> Experience {
    let inputs: Vec<f32> = (0..n * 4).map(|i| ((i * 37 + index * 11) % 13) as f32 / 13.0).collect();
    let targets: Vec<u32> = (0..n).map(|i| classes[i % classes.len()]).collect();
    Experience::new(index, ClassificationDataset::from_f32(inputs, vec![4], targets).unwrap(), "train", 4)
}

fn cope(config: CopeConfig) -> Strategy<SimpleMlp> {
    Cope::builder(mlp(config.p_size), OptimizerSpec::sgd(0.1), Device::flex(), config)
        .unwrap()
        .train_mb_size(2)
        .seed(3)
        .build()
        .unwrap()
}

/// One iteration per experience (`max_it_cnt = 1`), then the prototype of each class seen moves
/// by `1 − α` towards the normalised mean of its embeddings and stays unit norm; the unseen
/// classes keep theirs; the experience enters the class-balanced memory; later mini-batches
/// carry `train_mb_size` memory rows.
#[test]
fn one_update_per_experience_momentum_prototypes_and_memory() {
    let config = CopeConfig::new(6).with_n_classes(4).with_p_size(5).with_alpha(0.5);
    let mut s = cope(config);
    s.train(&experience(0, &[0, 1], 8)).unwrap();
    assert_eq!(s.state().clock().train_exp_iterations, 1, "max_it_cnt = 1: one update");
    let steps = s.steps_as::<CopeSteps>().unwrap();
    let after = steps.prototypes();
    assert_eq!(after.len(), 4);
    for p in &after {
        assert!((p.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-5);
    }
    let mut fresh = CopeSteps::new(steps.config().clone()).unwrap();
    fresh.init_prototypes();
    let initial = fresh.prototypes();
    assert_eq!(after[2], initial[2], "class 2 unseen: unchanged");
    assert_eq!(after[3], initial[3]);
    assert_ne!(after[0], initial[0], "class 0 seen: moved");
    assert_eq!(steps.storage().len(), 6);
    s.train(&experience(1, &[2, 3], 8)).unwrap();
    assert_eq!(s.state().clock().train_exp_iterations, 1);
    let classes = s.steps_as::<CopeSteps>().unwrap().storage().seen_classes();
    assert_eq!(classes.len(), 4);
    // Evaluation: the nearest prototype, a score per class.
    let results = s.eval(&experience(2, &[0, 1, 2, 3], 8)).unwrap();
    assert!(results.keys().any(|k| k.contains("Top1_Acc")));
}

/// A model whose output is not `p_size` wide is a typed error naming both widths.
#[test]
fn output_width_must_be_p_size() {
    let config = CopeConfig::new(6).with_n_classes(4).with_p_size(5);
    let mut s = Cope::builder(mlp(4), OptimizerSpec::sgd(0.1), Device::flex(), config)
        .unwrap()
        .train_mb_size(2)
        .build()
        .unwrap();
    let err = s.train(&experience(0, &[0, 1], 4)).unwrap_err().to_string();
    assert!(err.contains("p_size = 5") && err.contains("outputs 4"), "{err}");
}

/// `skip_after_stop` reproduces Avalanche's carried-over stop flag: in one `train` call over
/// four one-batch experiences only the first and third train (the memory still takes all four);
/// a new `train` call starts clean. Without it every experience trains.
#[test]
fn skip_after_stop_trains_every_other_experience_of_a_train_call() {
    let exps: Vec<Experience> = (0..4).map(|i| experience(i, &[0, 1], 2)).collect();
    for (skip, expected) in [(false, 4), (true, 2)] {
        let config = CopeConfig::new(8).with_n_classes(4).with_p_size(5).with_skip_after_stop(skip);
        let mut s = cope(config);
        s.train(&exps).unwrap();
        assert_eq!(s.state().clock().train_iterations, expected, "skip_after_stop = {skip}");
        assert_eq!(s.steps_as::<CopeSteps>().unwrap().storage().len(), 8, "every experience enters the memory");
        s.train(&exps[..1]).unwrap();
        assert_eq!(s.state().clock().train_iterations, expected + 1, "a new train call trains its first experience");
    }
}
