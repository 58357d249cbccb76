//! PackNet's mechanism, by hand: pruning takes the smallest weights of the current task in each
//! layer, a packed task's weights, biases and outputs stay bit-identical through later tasks,
//! the current task trains only its own weights, and misuse is a typed error.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor, TensorData};
use cl_core::config::assert_rule;
use cl_core::data::{ClassificationDataset, MiniBatch};
use cl_core::{ClError, Experience, Model, OptimizerSpec, Strategy};
use cl_models::{SimpleMlp, SimpleMlpConfig};

use super::masks::PRUNED;
use super::*;

const INPUT: usize = 6;

fn device() -> Device {
    Device::flex()
}

fn model() -> SimpleMlp {
    SimpleMlpConfig::new().with_input_size(INPUT).with_hidden_size(16).with_num_classes(6).init(&device()).unwrap()
}

/// 24 generated samples of `classes` with task label `task`.
fn experience(index: usize, classes: [u32; 2], task: u32) -> Experience {
    let n = 24;
    let inputs: Vec<f32> = (0..n * INPUT)
        .map(|i| (((i * 31 + index * 7) % 13) as f32 - 6.0) / 6.0 + classes[i / INPUT % 2] as f32 * 0.4)
        .collect();
    let targets: Vec<u32> = (0..n).map(|i| classes[i % 2]).collect();
    let data = ClassificationDataset::from_f32(inputs, vec![INPUT], targets).unwrap().with_task_label(task);
    Experience::new(index, data, "train", 6)
}

fn task_stream() -> Vec<Experience> {
    vec![experience(0, [0, 1], 0), experience(1, [2, 3], 1), experience(2, [4, 5], 2)]
}

fn packnet(config: PackNetConfig, epochs: usize) -> cl_core::Result<Strategy<SimpleMlp>> {
    PackNet::builder(model(), OptimizerSpec::sgd(0.1).with_momentum(0.9), device(), config)?
        .train_mb_size(8)
        .train_epochs(epochs)
        .seed(5)
        .build()
}

/// Every float parameter's values, by path.
fn values<M: Module>(m: &M) -> BTreeMap<String, Vec<f32>> {
    struct V(Vec<String>, BTreeMap<String, Vec<f32>>);
    impl ModuleVisitor for V {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.0.push(name.into());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.0.pop();
        }
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            self.1.insert(self.0.join("."), p.val().into_data().try_into_vec_as::<f32>().unwrap());
        }
    }
    let mut v = V(Vec::new(), BTreeMap::new());
    m.visit(&mut v);
    v.1
}

fn index_of(strategy: &Strategy<SimpleMlp>) -> &TaskIndex {
    strategy.steps_as::<PackNetSteps>().expect("PackNet's steps").task_index()
}

#[test]
fn pruning_takes_the_smallest_weights_of_the_current_task_in_each_layer() {
    let m = model();
    let mut index = TaskIndex::default();
    index.refresh(&m).unwrap();
    let paths: Vec<String> = index.weights().iter().map(|w| w.path.clone()).collect();
    assert_eq!(paths, ["features.0.linear.weight", "classifier.weight"], "SimpleMlp's packed weights");
    index.prune(&m, 0.3).unwrap();
    let v = values(&m);
    for w in index.weights() {
        let n = w.task_index.len();
        let pruned: Vec<f32> = (0..n).filter(|&i| w.task_index[i] == PRUNED).map(|i| v[&w.path][i].abs()).collect();
        let kept: Vec<f32> = (0..n).filter(|&i| w.task_index[i] == 0).map(|i| v[&w.path][i].abs()).collect();
        assert_eq!(pruned.len(), (n as f64 * 0.3) as usize, "{}: int(n * proportion) pruned", w.path);
        let largest_pruned = pruned.iter().copied().fold(0.0, f32::max);
        assert!(kept.iter().all(|&k| k >= largest_pruned), "{}: only the smallest magnitudes are pruned", w.path);
    }
    // Packing hands the pruned weights to the next task; pruning again looks at those only.
    index.freeze_pruned().unwrap();
    assert_eq!(index.task_count(), 1);
    let owned_by_1: Vec<usize> =
        index.weights().iter().map(|w| w.task_index.iter().filter(|&&t| t == 1).count()).collect();
    assert!(!index.has_pruned());
    index.prune(&m, 0.5).unwrap();
    for (w, n1) in index.weights().iter().zip(owned_by_1) {
        assert_eq!(w.task_index.iter().filter(|&&t| t == PRUNED).count(), n1 / 2, "{}", w.path);
        let n0 = w.task_index.iter().filter(|&&t| t == 0).count();
        assert_eq!(n0, w.task_index.len() - (w.task_index.len() as f64 * 0.3) as usize, "task 0 keeps its weights");
    }
}

#[test]
fn a_packed_task_keeps_its_weights_biases_and_outputs_bit_for_bit() {
    let stream = task_stream();
    let mut strategy = packnet(PackNetConfig::default(), 3).unwrap();
    let probe = Tensor::<2>::from_data(
        TensorData::new((0..4 * INPUT).map(|i| (i % 5) as f32 / 5.0 - 0.3).collect::<Vec<f32>>(), [4, INPUT]),
        &device(),
    );
    let outputs = |s: &Strategy<SimpleMlp>, task: u32| -> Vec<f32> {
        let view = index_of(s).clone().view(s.model().valid(), task, false);
        view.forward_tensor(probe.clone()).into_data().try_into_vec_as::<f32>().unwrap()
    };

    strategy.train(&stream[0]).unwrap();
    let after_0 = values(strategy.model());
    let index_0 = index_of(&strategy).weights().to_vec();
    let out_0 = outputs(&strategy, 0);
    // Task 0 owns the unpruned half of each layer; the pruned half is handed to task 1.
    for w in &index_0 {
        let n = w.task_index.len();
        assert_eq!(w.task_index.iter().filter(|&&t| t == 1).count(), n / 2, "{}", w.path);
    }

    for exp in &stream[1..] {
        strategy.train(exp).unwrap();
        let now = values(strategy.model());
        for w in &index_0 {
            let frozen = (0..w.task_index.len()).filter(|&i| w.task_index[i] == 0);
            for i in frozen {
                assert_eq!(now[&w.path][i].to_bits(), after_0[&w.path][i].to_bits(), "{}[{i}] is frozen", w.path);
            }
        }
        for bias in ["features.0.linear.bias", "classifier.bias"] {
            assert_eq!(now[bias], after_0[bias], "{bias} trains on the first task only");
        }
        assert_eq!(outputs(&strategy, 0), out_0, "task 0's outputs after experience {}", exp.current_experience);
    }
    // The later tasks did train their own weights.
    let last = values(strategy.model());
    let w = &index_0[0];
    let moved = (0..w.task_index.len()).filter(|&i| w.task_index[i] == 1 && last[&w.path][i] != after_0[&w.path][i]);
    assert!(moved.count() > 0, "task 1's weights train");
    assert_eq!(index_of(&strategy).task_count(), 3);
    // Evaluating task 0 now reads only task 0's weights: accuracy and loss equal the ones
    // right after it was packed.
    let metrics = strategy.eval(&stream[..1]).unwrap();
    assert!(!metrics.is_empty());
}

#[test]
fn evaluation_of_a_task_hides_later_tasks_weights() {
    let stream = task_stream();
    let mut strategy = packnet(PackNetConfig::default(), 2).unwrap();
    strategy.train(&stream[0]).unwrap();
    strategy.train(&stream[1]).unwrap();
    let model = strategy.model().valid();
    let mut index = index_of(&strategy).clone();
    let weights = index.weights().to_vec();
    let seen = values(&index.view(model.clone(), 0, false));
    let raw = values(&model);
    for w in &weights {
        for (i, &t) in w.task_index.iter().enumerate() {
            let expected = if t == 0 { raw[&w.path][i] } else { 0.0 };
            assert_eq!(seen[&w.path][i], expected, "task 0 sees {}[{i}] (owned by task {t})", w.path);
        }
    }
    // A task not trained yet sees every weight.
    assert_eq!(values(&index.view(model.clone(), 7, false)), raw);
}

#[test]
fn misuse_is_a_typed_error() {
    // A class-incremental stream: the second experience still has task label 0.
    let mut strategy = packnet(PackNetConfig::default(), 2).unwrap();
    strategy.train(&experience(0, [0, 1], 0)).unwrap();
    let err = strategy.train(&experience(1, [2, 3], 0)).unwrap_err();
    assert!(matches!(err, ClError::InvalidUse(_)) && err.to_string().contains("task label 1"), "{err}");

    // No epoch left after pruning.
    assert_rule(packnet(PackNetConfig::default(), 1).map(|_| ()), "post_prune_epochs_below_train_epochs");
    assert_rule(
        packnet(PackNetConfig::default().with_post_prune_epochs(0), 3).map(|_| ()),
        "post_prune_epochs_positive",
    );
    assert_rule(
        packnet(PackNetConfig::default().with_prune_proportion(PruneProportion::Constant(-0.1)), 3).map(|_| ()),
        "prune_proportion_in_unit_interval",
    );
    // A proportion list shorter than the stream.
    let mut strategy =
        packnet(PackNetConfig::default().with_prune_proportion(PruneProportion::PerExperience(vec![0.5])), 2).unwrap();
    strategy.train(&task_stream()[0]).unwrap();
    let err = strategy.train(&task_stream()[1]).unwrap_err();
    assert!(err.to_string().contains("1 proportions"), "{err}");

    // A batch mixing task labels (one evaluation batch over two tasks' samples).
    let mut strategy = PackNet::builder(model(), OptimizerSpec::sgd(0.1), device(), PackNetConfig::default())
        .unwrap()
        .train_epochs(2)
        .eval_mb_size(48)
        .build()
        .unwrap();
    strategy.train(&task_stream()[0]).unwrap();
    let mixed = task_stream()[1].dataset.concat(&task_stream()[2].dataset).unwrap();
    let err = strategy.eval(&Experience::new(1, mixed, "test", 6)).unwrap_err();
    assert!(err.to_string().contains("mixes task labels"), "{err}");

    // A trainable layer PackNet cannot isolate.
    #[derive(Module, Debug)]
    struct Normed {
        norm: BatchNorm,
        fc: Linear,
    }
    impl Model for Normed {
        fn forward(&self, batch: &MiniBatch) -> Tensor<2> {
            self.fc.forward(batch.x.clone())
        }
    }
    let normed =
        Normed { norm: BatchNormConfig::new(INPUT).init(&device()), fc: LinearConfig::new(INPUT, 6).init(&device()) };
    let err = PackNet::builder(normed, OptimizerSpec::sgd(0.1), device(), PackNetConfig::default())
        .unwrap()
        .train_epochs(2)
        .build()
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().contains("`norm.gamma` (BatchNorm)"), "{err}");
}
