//! Dynamic models: growth of the incremental classifier, routing of the multi-head classifier,
//! optimizer state across growth, SimpleCnn shapes, NCM.

use std::collections::BTreeMap;

use crate::common::*;
use burn::module::{Module, ParamId};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Tensor, TensorData};
use cl::core::data::{ClassificationDataset, MiniBatch};
use cl::core::{Adaptation, DynamicModule, Experience, Stream};
use cl::models::{Backbone, Head, IncrementalClassifierConfig, MultiHeadConfig, SimpleCnnConfig, class_means};
use cl::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn device() -> Device {
    cl::default_device()
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// An experience of `n` generated samples with labels `classes` and task label `task`.
fn experience(index: usize, classes: &[u32], task: u32) -> Experience {
    let ds = generated(4 * classes.len(), classes).with_task_label(task);
    Experience::new(index, ds, "train", 10)
}

fn features(rows: usize, width: usize, seed: u32) -> Tensor<2> {
    let v: Vec<f32> = (0..rows * width).map(|i| (((i as u32 * 31 + seed * 17) % 13) as f32 - 6.0) / 6.0).collect();
    Tensor::from_data(TensorData::new(v, [rows, width]), &device())
}

/// Column `j` (output unit `j`) of a `[d_in, d_out]` weight, flattened row-major.
fn unit(weight: &[f32], d_out: usize, j: usize) -> Vec<f32> {
    weight.chunks_exact(d_out).map(|row| row[j]).collect()
}

#[test]
fn incremental_classifier_grows_keeps_old_units_and_masks_unseen_classes() {
    let mut head = IncrementalClassifierConfig::new(5).init(&device()).unwrap();
    assert_eq!(head.num_outputs(), 2);
    let e0 = experience(0, &[0, 1], 0);
    DynamicModule::adaptation(&mut head, &Adaptation::train(&e0)).unwrap();
    assert_eq!(head.num_outputs(), 2, "classes {{0, 1}} fit the initial 2 outputs");
    let w0 = values(head.classifier.weight.val());
    let b0 = values(head.classifier.bias.as_ref().unwrap().val());
    let id0 = head.classifier.weight.id;

    for (i, classes) in [[2u32, 3], [4, 5]].iter().enumerate() {
        DynamicModule::adaptation(&mut head, &Adaptation::train(&experience(i + 1, classes, 0))).unwrap();
    }
    assert_eq!(head.num_outputs(), 6);
    assert_ne!(head.classifier.weight.id, id0, "a grown layer is a new parameter");
    let w = values(head.classifier.weight.val());
    let b = values(head.classifier.bias.as_ref().unwrap().val());
    for j in 0..2 {
        assert_eq!(unit(&w, 6, j), unit(&w0, 2, j), "unit {j}'s weights are unchanged by the growth");
        assert_eq!(b[j], b0[j]);
    }
    assert_eq!(head.active_units(), &[true; 6]);

    // Adaptation for evaluation grows but activates nothing: unit 6 and 7 stay masked.
    DynamicModule::adaptation(&mut head, &Adaptation::eval(&experience(3, &[6, 7], 0))).unwrap();
    assert_eq!(head.num_outputs(), 8);
    let out = values(head.forward_features(features(3, 5, 1)));
    for row in out.chunks_exact(8) {
        assert_eq!(&row[6..], &[-1000.0, -1000.0], "outputs of untrained classes equal mask_value");
        assert!(row[..6].iter().all(|&v| v > -100.0), "trained classes are not masked: {row:?}");
    }
    // Without masking nothing is masked.
    let mut plain = IncrementalClassifierConfig::new(5).with_masking(false).init(&device()).unwrap();
    DynamicModule::adaptation(&mut plain, &Adaptation::eval(&experience(0, &[2, 3], 0))).unwrap();
    assert!(values(plain.forward_features(features(2, 5, 1))).iter().all(|&v| v > -100.0));
}

#[test]
fn growth_is_deterministic() {
    let grow = || {
        let mut head = IncrementalClassifierConfig::new(5).with_seed(3).init(&device()).unwrap();
        DynamicModule::adaptation(&mut head, &Adaptation::train(&experience(0, &[4, 5], 0))).unwrap();
        values(head.classifier.weight.val())
    };
    assert_eq!(grow(), grow());
}

#[test]
fn multi_head_routes_mixed_batches_and_restores_the_order() {
    let mut mh = MultiHeadConfig::new(4).init(&device()).unwrap();
    // Task 0: classes {0, 1}; task 1: classes {0, 1, 2} (its head grows to 3); task 2: {0, 1}.
    for (i, (classes, task)) in [(&[0u32, 1][..], 0u32), (&[0, 1, 2][..], 1), (&[0, 1][..], 2)].into_iter().enumerate()
    {
        DynamicModule::adaptation(&mut mh, &Adaptation::train(&experience(i, classes, task))).unwrap();
    }
    assert_eq!(mh.task_labels(), &[0, 1, 2]);
    assert_eq!(mh.num_heads(), 3);
    assert_eq!(mh.head(1).unwrap().num_outputs(), 3);

    let tasks = [1u32, 0, 2, 1, 0, 2, 2];
    let x = features(tasks.len(), 4, 2);
    let out = mh.try_forward(x.clone(), &tasks).unwrap();
    assert_eq!(out.dims(), [7, 3], "mixed batch: padded to the widest head");
    let out = values(out);
    let rows = values(x.clone());
    for (i, &t) in tasks.iter().enumerate() {
        let xi = Tensor::<2>::from_data(TensorData::new(rows[i * 4..(i + 1) * 4].to_vec(), [1, 4]), &device());
        let alone = values(mh.try_forward(xi, &[t]).unwrap());
        let w = alone.len();
        for j in 0..3 {
            // Narrower heads are padded with mask_value (masking is on by default).
            let expected = if j < w { alone[j] } else { -1000.0 };
            assert!((out[i * 3 + j] - expected).abs() < 1e-5, "sample {i} (task {t}) output {j}");
        }
    }
    // A single-task batch goes through its head alone.
    assert_eq!(mh.try_forward(features(2, 4, 3), &[0, 0]).unwrap().dims(), [2, 2]);

    let err = mh.try_forward(features(2, 4, 3), &[0, 7]).unwrap_err();
    assert!(matches!(err, ClError::UnknownTask { task: 7, .. }), "{err}");
    assert!(err.to_string().contains("adaptation"), "{err}");
}

#[test]
fn multi_head_masks_classes_its_task_was_not_trained_on() {
    let mut mh = MultiHeadConfig::new(4).with_initial_out_features(3).init(&device()).unwrap();
    DynamicModule::adaptation(&mut mh, &Adaptation::train(&experience(0, &[0, 1], 0))).unwrap();
    let out = values(mh.try_forward(features(2, 4, 4), &[0, 0]).unwrap());
    for row in out.chunks_exact(3) {
        assert_eq!(row[2], -1000.0);
        assert!(row[0] > -100.0 && row[1] > -100.0);
    }
    // An unseen task at evaluation gets a fresh head whose units are all masked (never trained).
    DynamicModule::adaptation(&mut mh, &Adaptation::eval(&experience(1, &[0, 1], 5))).unwrap();
    assert_eq!(mh.task_labels(), &[0, 5]);
    assert!(values(mh.try_forward(features(1, 4, 4), &[5]).unwrap()).iter().all(|&v| v == -1000.0));
}

/// Plain SGD with momentum 0.9 and no dampening, as `torch.optim.SGD(lr, momentum=0.9)`.
fn sgd_momentum() -> burn::optim::ModuleOptimizer {
    SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_momentum(0.9).with_dampening(0.0).with_nesterov(false)))
        .init()
}

fn constant_grads<M: Module>(model: &M, value: f32) -> (GradientsParams, Vec<ParamId>) {
    struct Collect(Vec<(ParamId, Vec<usize>)>);
    impl burn::module::ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            self.0.push((param.id, param.val().dims().to_vec()));
        }
    }
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    let mut grads = GradientsParams::new();
    let mut ids = Vec::new();
    for (id, dims) in c.0 {
        let n: usize = dims.iter().product();
        match dims.len() {
            1 => grads.register(id, Tensor::<1>::from_data(TensorData::new(vec![value; n], [n]), &device())),
            2 => grads
                .register(id, Tensor::<2>::from_data(TensorData::new(vec![value; n], [dims[0], dims[1]]), &device())),
            _ => unreachable!(),
        }
        ids.push(id);
    }
    (grads, ids)
}

#[test]
fn optimizer_state_survives_growth_for_old_parameters_and_starts_fresh_for_new_ones() {
    let model = SimpleMlpConfig::new()
        .with_input_size(3)
        .with_hidden_size(4)
        .with_num_classes(2)
        .with_drop_rate(0.0)
        .init_incremental(&device())
        .unwrap()
        .to_device(&device().autodiff())
        .train();
    let mut optim = sgd_momentum();
    let lr = 0.1;
    // Step 1: gradient 1 everywhere → momentum buffers = 1.
    let (g1, _) = constant_grads(&model, 1.0);
    let model = optim.step(lr, model, g1);
    let trunk_before = values(model.features.layers[0].linear.weight.val());
    let head_id_before = model.classifier.classifier.weight.id;

    // Growth to 4 classes: new parameter ids for the classifier.
    let mut model = model;
    Head::adaptation(&mut model.classifier, &Adaptation::train(&experience(1, &[2, 3], 0))).unwrap();
    assert_ne!(model.classifier.classifier.weight.id, head_id_before);
    let head_before = values(model.classifier.classifier.weight.val());

    // Step 2: gradient 2 everywhere. Trunk: v = 0.9·1 + 2 = 2.9 (state kept); new head: v = 2.
    let (g2, _) = constant_grads(&model, 2.0);
    let model = optim.step(lr, model, g2);
    let trunk_after = values(model.features.layers[0].linear.weight.val());
    let head_after = values(model.classifier.classifier.weight.val());
    for (a, b) in trunk_before.iter().zip(&trunk_after) {
        assert!((a - b - lr as f32 * 2.9).abs() < 1e-5, "trunk moved by {} (momentum kept: 0.29)", a - b);
    }
    for (a, b) in head_before.iter().zip(&head_after) {
        assert!((a - b - lr as f32 * 2.0).abs() < 1e-5, "grown head moved by {} (fresh state: 0.2)", a - b);
    }
}

#[test]
fn an_incremental_model_grows_through_the_strategy_and_never_predicts_untrained_classes() {
    let model = SimpleMlpConfig::new()
        .with_input_size(4)
        .with_hidden_size(8)
        .with_drop_rate(0.0)
        .init_incremental(&device())
        .unwrap();
    let stream = generated_stream("train", 3, 24);
    let mut s = Naive::builder(model, OptimizerSpec::sgd(0.05).with_momentum(0.9), device(), NaiveConfig::default())
        .unwrap()
        .train_mb_size(8)
        .build()
        .unwrap();
    s.train(&stream).unwrap();
    let head = &s.state().model().classifier;
    assert_eq!(head.num_outputs(), 6, "grown to max(class) + 1 over the stream");
    assert_eq!(head.active_units(), &[true; 6]);
    // An experience of new classes {6, 7} at evaluation: the head grows to 8 but the new units
    // stay masked, so nothing is predicted as 6 or 7 and the accuracy on it is exactly 0.
    let unseen = Stream::new("test", vec![Experience::new(0, generated(16, &[6, 7]), "test", 8)]);
    let r = s.eval(&unseen).unwrap();
    assert_eq!(s.state().model().classifier.num_outputs(), 8);
    assert_eq!(r[&MetricName::test_exp_accuracy(0, 0).to_string()], 0.0);

    // A label beyond the benchmark's classes is an error, not a growth to it.
    let bad = Stream::new("train", vec![Experience::new(0, generated(8, &[0, 9]), "train", 4)]);
    let err = s.train(&bad).unwrap_err();
    assert!(matches!(err, ClError::ClassOutOfRange { class: 9, n_classes: 4, .. }), "{err}");
}

#[test]
fn multi_head_adapts_each_task_to_its_own_classes_and_checks_batches() {
    // One experience with two tasks: task 0 holds classes {0, 1}, task 1 classes {2, 3}.
    let a = generated(8, &[0, 1]).with_task_label(0);
    let b = generated(8, &[2, 3]).with_task_label(1);
    let exp = Experience::new(0, a.concat(&b).unwrap(), "train", 4);
    let mut mh = MultiHeadConfig::new(4).init(&device()).unwrap();
    DynamicModule::adaptation(&mut mh, &Adaptation::train(&exp)).unwrap();
    assert_eq!(mh.head(0).unwrap().num_outputs(), 2);
    assert_eq!(mh.head(1).unwrap().num_outputs(), 4);
    assert_eq!(mh.active_units(0).unwrap(), &[true, true]);
    assert_eq!(mh.active_units(1).unwrap(), &[false, false, true, true]);

    let model = cl::models::HeadedModel::new(tiny_mlp(2).into_headed().features, mh);
    let ds = generated(4, &[0, 1]).with_task_label(5);
    let batch = ds.batch(&[0, 1, 2, 3], &device(), &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    assert!(matches!(model.check_batch(&batch), Err(ClError::UnknownTask { task: 5, .. })));
    let ok = a.batch(&[0, 1], &device(), &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    assert!(model.check_batch(&ok).is_ok());
}

#[test]
fn simple_cnn_shapes_for_mnist_and_cifar_images() {
    for (channels, side) in [(1usize, 28usize), (3, 32)] {
        let model = SimpleCnnConfig::new().with_in_channels(channels).init(&device()).unwrap();
        let n = channels * side * side;
        let ds = ClassificationDataset::from_f32(vec![0.5; 2 * n], vec![channels, side, side], vec![0, 1]).unwrap();
        let batch: MiniBatch = ds.batch(&[0, 1], &device(), &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        assert_eq!(model.features.embed(&batch).dims(), [2, 64]);
        assert_eq!(model.forward(&batch).dims(), [2, 10]);
        assert!(model.check_sample_shape(&[channels, side, side]).is_ok());
    }
    let rgb = SimpleCnnConfig::new().init(&device()).unwrap();
    let err = rgb.check_sample_shape(&[1, 28, 28]).unwrap_err();
    assert!(err.contains("with_in_channels(1)"), "{err}");
    assert!(rgb.check_sample_shape(&[3, 8, 8]).is_err());
}

#[test]
fn ncm_logits_are_negative_distances_to_the_class_means() {
    let mut ncm = NcmConfig::new(2).with_normalize(false).init().unwrap();
    ncm.replace_class_means(BTreeMap::from([(0, vec![0.0, 0.0]), (2, vec![3.0, 4.0])])).unwrap();
    assert_eq!(ncm.num_classes(), 3, "class 1 has no mean: a zero mean, as Avalanche");
    let x = Tensor::<2>::from_data(TensorData::new(vec![3.0f32, 0.0], [1, 2]), &device());
    let out = values(ncm.forward_features(x));
    let expected = [-3.0f32, -3.0, -4.0];
    for (o, e) in out.iter().zip(expected) {
        assert!((o - e).abs() < 1e-4, "{out:?}");
    }
    // Momentum update, Avalanche's convention (1 replaces): 0.25·(1, 0) + 0.75·(3, 4) = (2.5, 3).
    ncm.update_class_means(BTreeMap::from([(2, vec![1.0, 0.0])]), 0.25).unwrap();
    assert_eq!(ncm.class_means()[&2], vec![2.5, 3.0]);
    // A class whose mean is all zeros takes the new mean as it is.
    ncm.update_class_means(BTreeMap::from([(0, vec![1.0, 1.0])]), 0.25).unwrap();
    assert_eq!(ncm.class_means()[&0], vec![1.0, 1.0]);
    assert!(ncm.replace_class_means(BTreeMap::from([(0, vec![1.0])])).is_err(), "wrong width");

    // Normalised: the inputs are scaled to unit norm, the means are used as stored (Avalanche).
    let mut unit_ncm = NcmConfig::new(2).with_normalize(true).init().unwrap();
    unit_ncm.replace_class_means(BTreeMap::from([(0, vec![2.0, 0.0]), (1, vec![0.0, 5.0])])).unwrap();
    let x = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 9.0], [1, 2]), &device());
    let out = values(unit_ncm.forward_features(x));
    assert!((out[0] + 5f32.sqrt()).abs() < 1e-4 && (out[1] + 4.0).abs() < 1e-4, "{out:?}");
    // Evaluation adaptation gives the experience's classes without a mean a zero mean.
    Head::adaptation(&mut unit_ncm, &Adaptation::eval(&experience(0, &[3], 0))).unwrap();
    assert_eq!(unit_ncm.num_classes(), 4);
    assert_eq!(unit_ncm.class_means()[&3], vec![0.0, 0.0]);
}

#[test]
fn class_means_of_a_dataset_are_the_per_class_feature_averages() {
    // An MLP trunk on 4 inputs; the means equal the averages of the features computed one by one.
    let model = tiny_mlp(2).into_headed();
    let ds = generated(10, &[0, 3]);
    let means = class_means(&model.features, &ds, 3, &device()).unwrap();
    assert_eq!(means.keys().copied().collect::<Vec<_>>(), vec![0, 3]);
    let trunk = model.features.valid();
    for class in [0u32, 3] {
        let idx: Vec<usize> = (0..10).filter(|i| ds.targets()[*i] == class).collect();
        let batch = ds.batch(&idx, &device(), &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        let f = values(trunk.embed(&batch));
        let width = f.len() / idx.len();
        for k in 0..width {
            let avg = f.iter().skip(k).step_by(width).sum::<f32>() / idx.len() as f32;
            assert!((means[&class][k] - avg).abs() < 1e-5);
        }
    }
}

#[test]
fn simple_cnn_learns_an_experience_of_the_fixture() {
    let b = fixture_benchmark(1);
    let model = SimpleCnnConfig::new().with_in_channels(1).init(&device()).unwrap();
    let mut s = Naive::builder(model, OptimizerSpec::sgd(0.05).with_momentum(0.9), device(), NaiveConfig::default())
        .unwrap()
        .train_mb_size(32)
        .train_epochs(4)
        .eval_mb_size(100)
        .seed(1)
        .build()
        .unwrap();
    let test = b.test_stream.slice(0..1);
    let loss = |r: &cl::core::MetricResults| {
        *r.iter().find(|(k, _)| k.starts_with("Loss_Stream/eval_phase/test_stream")).expect("stream loss").1
    };
    let before = s.eval(&test).unwrap();
    s.train(&b.train_stream[0]).unwrap();
    let after = s.eval(&test).unwrap();
    let acc = after[&MetricName::test_exp_accuracy(0, 0).to_string()];
    eprintln!("SimpleCnn: loss {} -> {}, accuracy {acc}", loss(&before), loss(&after));
    assert!(loss(&after) < 0.5 * loss(&before), "loss falls: {} -> {}", loss(&before), loss(&after));
    assert!(acc > 0.8, "accuracy on the trained experience {acc}");

    // A 3-channel CNN on 1-channel images is rejected before training, with the fix.
    let rgb = SimpleCnnConfig::new().init(&device()).unwrap();
    let mut s =
        Naive::builder(rgb, OptimizerSpec::sgd(0.01), device(), NaiveConfig::default()).unwrap().build().unwrap();
    let err = s.train(&b.train_stream[0]).unwrap_err();
    assert!(matches!(err, ClError::ModelInputMismatch { .. }), "{err}");
    assert!(err.to_string().contains("with_in_channels(1)"), "{err}");
}
