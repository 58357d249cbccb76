//! Checkpoints of the models: a model grown through adaptation over several experiences, saved
//! (its parameter record and its extra state, through the binary encoding), loads into a
//! freshly built model of the same configuration with the same outputs bit for bit and the same
//! parameter ids; a checkpoint of another configuration is a typed error, never a panic.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Device, Tensor};
use cl_core::checkpoint::StateDict;
use cl_core::data::{ClassificationDataset, MiniBatch};
use cl_core::{Adaptation, ClError, Experience, Model};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::{
    Head, HeadedModel, IncrementalClassifierConfig, IncrementalMlp, MtSimpleMlp, NcmClassifier, NcmConfig,
    SimpleMlpConfig,
};

const INPUT: usize = 6;
const CLASSES: usize = 12;

fn device() -> Device {
    Device::flex()
}

/// `n` generated samples of `classes` (round robin) with task label `task`.
fn data(n: usize, classes: &[u32], task: u32, salt: u32) -> ClassificationDataset {
    let inputs: Vec<f32> = (0..n * INPUT).map(|i| (((i as u32 * 37 + salt * 11) % 17) as f32 - 8.0) / 8.0).collect();
    let targets: Vec<u32> = (0..n).map(|i| classes[i % classes.len()]).collect();
    ClassificationDataset::from_f32(inputs, vec![INPUT], targets).unwrap().with_task_label(task)
}

fn experience(index: usize, classes: &[u32], task: u32) -> Experience {
    Experience::new(index, data(4 * classes.len(), classes, task, index as u32), "train", CLASSES)
}

fn batch(dataset: &ClassificationDataset) -> MiniBatch {
    let indices: Vec<usize> = (0..dataset.len()).collect();
    dataset.batch(&indices, &device(), &mut ChaCha8Rng::seed_from_u64(0)).unwrap()
}

fn bits(t: Tensor<2>) -> Vec<u32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap().into_iter().map(f32::to_bits).collect()
}

/// Every float parameter's id and bits, in visiting order.
#[derive(Default)]
struct Params(Vec<(ParamId, Vec<u32>)>);

impl ModuleVisitor for Params {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let values = param.val().into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        self.0.push((param.id, values.into_iter().map(f32::to_bits).collect()));
    }
}

fn params<M: Module>(m: &M) -> Vec<(ParamId, Vec<u32>)> {
    let mut p = Params::default();
    m.visit(&mut p);
    p.0
}

/// Moves every float parameter away from its initial value (ids kept), as training would, so
/// that a fresh model re-grown from the seeds cannot match without the record.
struct Nudge;

impl ModuleMapper for Nudge {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|t| t.mul_scalar(1.25).add_scalar(0.01))
    }
}

/// Saves `model` as the strategy does (extra state, then the record), through the binary
/// encoding, and loads it into `fresh` as the resume does.
fn save_and_load<M: Model>(model: &M, mut fresh: M) -> cl_core::Result<M> {
    let mut root = StateDict::new("checkpoint");
    let mut extra = StateDict::new("model");
    model.save_extra_state(&mut extra)?;
    root.put_dict("model_extra", extra);
    root.put_module("model", model)?;
    let root = StateDict::from_bytes(&root.to_bytes(), "checkpoint")?;
    fresh.load_extra_state(root.dict("model_extra")?)?;
    root.module("model", fresh)
}

fn assert_same<M: Model>(a: &M, b: &M, on: &[&MiniBatch]) {
    assert_eq!(params(a), params(b), "parameter values and ids");
    assert_eq!(a.num_outputs(), b.num_outputs());
    for batch in on {
        assert_eq!(bits(a.forward(batch)), bits(b.forward(batch)), "outputs bit for bit");
        let all = |m: &M| m.forward_all_tasks(batch).map(|t| t.into_iter().map(|(k, v)| (k, bits(v))).collect());
        let (x, y): (Option<BTreeMap<u32, Vec<u32>>>, _) = (all(a), all(b));
        assert_eq!(x, y, "every task's outputs");
    }
}

fn mlp_config() -> SimpleMlpConfig {
    SimpleMlpConfig::new().with_input_size(INPUT).with_hidden_size(8).with_seed(Some(4))
}

fn grown_incremental() -> IncrementalMlp {
    let mut model = mlp_config().init_incremental(&device()).unwrap();
    model.adaptation(&Adaptation::train(&experience(0, &[0, 1], 0))).unwrap();
    model.adaptation(&Adaptation::train(&experience(1, &[2, 3], 0))).unwrap();
    // Grown for evaluation only: units 4..=6 exist but stay masked.
    model.adaptation(&Adaptation::eval(&experience(2, &[4, 6], 0))).unwrap();
    model.adaptation(&Adaptation::train(&experience(3, &[5], 0))).unwrap();
    model.map(&mut Nudge)
}

#[test]
fn a_grown_incremental_classifier_loads_into_a_fresh_model() {
    let model = grown_incremental();
    assert_eq!(model.classifier.num_outputs(), 7);
    assert_eq!(model.classifier.active_units(), &[true, true, true, true, false, true, false]);
    let fresh = mlp_config().init_incremental(&device()).unwrap();
    assert_eq!(fresh.classifier.num_outputs(), 2);
    let mut loaded = save_and_load(&model, fresh).unwrap();
    let probe = batch(&data(9, &[0, 1, 2, 3, 4, 5, 6], 0, 7));
    assert_same(&model, &loaded, &[&probe]);
    assert_eq!(loaded.classifier.active_units(), model.classifier.active_units());
    // What the resume does next (fresh leaves on the training device, training mode) keeps the
    // layout (compared in inference mode: dropout is on in training mode).
    let moved = loaded.clone().valid().to_device(&device()).train();
    assert_eq!(moved.classifier.active_units(), model.classifier.active_units());
    assert_same(&model, &moved.valid(), &[&probe]);

    // Growth continues where it was: the units added next are the same bits (growth count kept);
    // the grown parameters are new ones in both (fresh ids, fresh optimizer state).
    let mut model = model;
    let next = experience(4, &[9], 0);
    model.adaptation(&Adaptation::train(&next)).unwrap();
    loaded.adaptation(&Adaptation::train(&next)).unwrap();
    assert_eq!(model.classifier.num_outputs(), 10);
    let values = |m: &IncrementalMlp| params(m).into_iter().map(|(_, v)| v).collect::<Vec<_>>();
    assert_eq!(values(&model), values(&loaded));
    assert_eq!(bits(model.forward(&probe)), bits(loaded.forward(&probe)));
}

#[test]
fn an_incremental_classifier_alone_round_trips_through_its_head_hooks() {
    let config = IncrementalClassifierConfig::new(INPUT).with_seed(3).with_mask_value(-7.5);
    let mut head = config.init(&device()).unwrap();
    head.grow(5);
    head.activate(&[1, 3]);
    let mut d = StateDict::new("head");
    Head::save_extra_state(&head, &mut d).unwrap();
    d.put_module("record", &head).unwrap();
    let d = StateDict::from_bytes(&d.to_bytes(), "head").unwrap();
    let mut fresh = config.init(&device()).unwrap();
    Head::load_extra_state(&mut fresh, &d).unwrap();
    let fresh = d.module("record", fresh).unwrap();
    assert_eq!(params(&head), params(&fresh));
    assert_eq!(fresh.active_units(), head.active_units());
    let x = batch(&data(3, &[0], 0, 1)).x;
    assert_eq!(bits(head.forward_features(x.clone())), bits(fresh.forward_features(x)));
}

fn grown_multi_head() -> MtSimpleMlp {
    let mut model = mlp_config().init_multitask(&device()).unwrap();
    model.adaptation(&Adaptation::train(&experience(0, &[0, 1], 0))).unwrap();
    model.adaptation(&Adaptation::train(&experience(1, &[0, 1, 2, 3], 2))).unwrap();
    model.adaptation(&Adaptation::train(&experience(2, &[4, 5], 1))).unwrap();
    // Task 5 seen at evaluation only: a fresh, untrained head.
    model.adaptation(&Adaptation::eval(&experience(3, &[0, 2], 5))).unwrap();
    model.map(&mut Nudge)
}

#[test]
fn a_multi_head_classifier_loads_its_heads_into_a_fresh_model() {
    let model = grown_multi_head();
    assert_eq!(model.classifier.task_labels(), &[0, 2, 1, 5]);
    let fresh = mlp_config().init_multitask(&device()).unwrap();
    assert_eq!(fresh.classifier.num_heads(), 1);
    let loaded = save_and_load(&model, fresh).unwrap();
    assert_eq!(loaded.classifier.task_labels(), model.classifier.task_labels());
    for task in [0, 1, 2, 5] {
        assert_eq!(loaded.classifier.active_units(task), model.classifier.active_units(task), "task {task}");
        let (a, b) = (model.classifier.head(task).unwrap(), loaded.classifier.head(task).unwrap());
        assert_eq!(a.num_outputs(), b.num_outputs());
    }
    let single = batch(&data(5, &[0, 1, 2, 3], 2, 3));
    let mixed =
        batch(&data(4, &[0, 1], 0, 1).concat(&data(3, &[4, 5], 1, 2)).unwrap().concat(&data(2, &[2], 5, 4)).unwrap());
    assert_same(&model, &loaded, &[&single, &mixed]);
    let trained: Vec<u32> = loaded.forward_all_tasks(&single).unwrap().into_keys().collect();
    assert_eq!(trained, [0, 1, 2], "the head of task 5 is still untrained");
}

#[test]
fn ncm_class_means_load_into_a_fresh_model() {
    let trunk = || mlp_config().init(&device()).unwrap().into_headed().features;
    let ncm = || NcmConfig::new(8).init().unwrap();
    let mut model: HeadedModel<_, NcmClassifier> = HeadedModel::new(trunk(), ncm());
    let train = data(12, &[0, 2, 3], 0, 5);
    model.update_from_dataset(&train, 5, &device()).unwrap();
    // A class evaluated without a mean gets a zero mean.
    model.adaptation(&Adaptation::eval(&experience(1, &[6], 0))).unwrap();
    assert_eq!(model.num_outputs(), Some(7));
    let loaded = save_and_load(&model, HeadedModel::new(trunk(), ncm())).unwrap();
    assert_eq!(loaded.classifier.class_means(), model.classifier.class_means());
    assert_same(&model, &loaded, &[&batch(&train)]);

    // Another normalisation is another configuration.
    let other = HeadedModel::new(trunk(), NcmConfig::new(8).with_normalize(false).init().unwrap());
    let err = save_and_load(&model, other).unwrap_err();
    assert!(matches!(err, ClError::CheckpointMismatch { .. }), "{err}");
}

#[test]
fn fixed_models_save_no_extra_state_and_load_their_record() {
    let config = mlp_config().with_num_classes(4);
    let model = config.init(&device()).unwrap().map(&mut Nudge);
    let loaded = save_and_load(&model, config.init(&device()).unwrap()).unwrap();
    assert_same(&model, &loaded, &[&batch(&data(5, &[0, 3], 0, 2))]);
    let headed = config.init(&device()).unwrap().into_headed().map(&mut Nudge);
    let loaded = save_and_load(&headed, config.init(&device()).unwrap().into_headed()).unwrap();
    assert_same(&headed, &loaded, &[&batch(&data(5, &[0, 3], 0, 2))]);
}

#[test]
fn a_checkpoint_of_another_configuration_is_a_typed_error() {
    let model = grown_incremental();
    // Another trunk width: the extra state's check catches it (the head's inputs differ).
    let wider = mlp_config().with_hidden_size(16).init_incremental(&device()).unwrap();
    let err = save_and_load(&model, wider).unwrap_err();
    assert!(matches!(err, ClError::CheckpointMismatch { .. }), "{err}");
    // Another masking or seed of the head.
    let unmasked = mlp_config()
        .init(&device())
        .unwrap()
        .into_headed()
        .as_incremental_with(IncrementalClassifierConfig::new(8).with_masking(false).with_seed(5))
        .unwrap();
    let err = save_and_load(&model, unmasked).unwrap_err();
    assert!(matches!(err, ClError::CheckpointMismatch { .. }), "{err}");
    // A model that is not fresh: it cannot shrink to the checkpoint.
    let mut bigger = mlp_config().init_incremental(&device()).unwrap();
    bigger.adaptation(&Adaptation::train(&experience(0, &[11], 0))).unwrap();
    let err = save_and_load(&model, bigger).unwrap_err();
    assert!(matches!(err, ClError::CheckpointMismatch { .. }), "{err}");
    assert!(err.to_string().contains("cannot shrink"), "{err}");

    // Parameters that do not fit (the layout matches, the trunk does not): the record's error.
    let fixed = mlp_config().with_num_classes(4).init(&device()).unwrap();
    let other = mlp_config().with_num_classes(4).with_hidden_size(16).init(&device()).unwrap();
    let err = save_and_load(&fixed, other).unwrap_err();
    assert!(matches!(err, ClError::CheckpointEntry { .. }), "{err}");
    assert!(err.to_string().contains("same configuration"), "{err}");

    // A multi-head checkpoint into another multi-head configuration, and into another model type.
    let mt = grown_multi_head();
    let other = mlp_config().init(&device()).unwrap().into_headed().as_multitask();
    let err = save_and_load(&mt, other).unwrap_err();
    assert!(matches!(err, ClError::CheckpointMismatch { .. }), "{err}");
    let mut extra = StateDict::new("model");
    mt.save_extra_state(&mut extra).unwrap();
    let mut inc = mlp_config().init_incremental(&device()).unwrap();
    let err = inc.load_extra_state(&extra).unwrap_err();
    assert!(matches!(err, ClError::CheckpointEntry { .. } | ClError::CheckpointMismatch { .. }), "{err}");
}
