//! Checkpoints of the strategies' steps: `CumulativeSteps` and `JointSteps` save and load their
//! state, and a strategy of every kind resumed from a checkpoint ends with the weights and the
//! metrics of the uninterrupted run, bit for bit.

use std::path::PathBuf;

use burn::module::{ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use cl_core::checkpoint::StateDict;
use cl_core::data::{ClassificationDataLoader, ClassificationDataset, DataLoader, DataLoaderConfig};
use cl_core::{ClError, Experience, MetricResults, OptimizerSpec, Strategy, TemplateSteps};
use cl_models::{IncrementalMlp, SimpleMlp, SimpleMlpConfig};
use cl_plugins::{CheckpointConfig, CheckpointPlugin};

use crate::tests::every_strategy;
use crate::*;

const INPUT: usize = 4;

fn device() -> Device {
    Device::flex()
}

fn model() -> SimpleMlp {
    SimpleMlpConfig::new()
        .with_input_size(INPUT)
        .with_hidden_size(8)
        .with_num_classes(6)
        .with_drop_rate(0.25)
        .init(&device())
        .unwrap()
}

/// An experience of 12 generated samples of `classes`.
fn experience(index: usize, classes: [u32; 2]) -> Experience {
    let n = 12;
    let inputs: Vec<f32> = (0..n * INPUT)
        .map(|i| (((i * 29 + index * 13) % 11) as f32 - 5.0) / 5.0 + classes[i / INPUT % 2] as f32 * 0.3)
        .collect();
    let targets: Vec<u32> = (0..n).map(|i| classes[i % 2]).collect();
    let data = ClassificationDataset::from_f32(inputs, vec![INPUT], targets).unwrap();
    Experience::new(index, data, "train", 6)
}

fn stream() -> Vec<Experience> {
    vec![experience(0, [0, 1]), experience(1, [2, 3]), experience(2, [4, 5])]
}

/// [`stream`], with task label `i` on experience `i` for the task-incremental strategies.
fn stream_for(config: &StrategyConfig) -> Vec<Experience> {
    match config {
        StrategyConfig::PackNet(_) | StrategyConfig::Pnn(_) => stream()
            .into_iter()
            .map(|e| {
                Experience::new(
                    e.current_experience,
                    e.dataset.with_task_label(e.current_experience as u32),
                    "train",
                    6,
                )
            })
            .collect(),
        // AR1's LatentCnn takes images: the same samples as 1×2×2.
        StrategyConfig::Ar1(_) => stream()
            .into_iter()
            .map(|e| {
                let (x, y, _) = samples(&e.dataset);
                let x = x.into_iter().map(f32::from_bits).collect();
                let data = ClassificationDataset::from_f32(x, vec![1, 2, 2], y).unwrap();
                Experience::new(e.current_experience, data, "train", 6)
            })
            .collect(),
        _ => stream(),
    }
}

/// A fresh, empty directory for one test's checkpoints.
fn run_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cl-strategies-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[derive(Default)]
struct Bits(Vec<u32>);

impl ModuleVisitor for Bits {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let v = param.val().into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        self.0.extend(v.into_iter().map(f32::to_bits));
    }
}

fn weights<M: burn::module::Module>(m: &M) -> Vec<u32> {
    let mut b = Bits::default();
    m.visit(&mut b);
    b.0
}

/// Every sample of `ds` (inputs as bits, labels, task labels), in order, in its mode.
fn samples(ds: &ClassificationDataset) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
    let mut loader = ClassificationDataLoader::new(ds.clone(), DataLoaderConfig::eval(ds.len())).unwrap();
    let b = loader.next_batch(&device()).unwrap().unwrap();
    let x = b.x.into_data().convert::<f32>().try_to_vec::<f32>().unwrap().into_iter().map(f32::to_bits).collect();
    (x, b.targets, b.task_labels)
}

fn save_steps<S: TemplateSteps<SimpleMlp>>(steps: &S) -> StateDict {
    let mut d = StateDict::new("steps");
    steps.save_state(&mut d).unwrap();
    StateDict::from_bytes(&d.to_bytes(), "steps").unwrap()
}

fn built(builder: cl_core::Result<cl_core::StrategyBuilder<SimpleMlp>>) -> Strategy<SimpleMlp> {
    builder.unwrap().train_mb_size(4).train_epochs(2).seed(3).build().unwrap()
}

#[test]
fn cumulative_steps_save_and_load_the_union() {
    let s = stream();
    let mut strategy =
        built(Cumulative::builder(model(), OptimizerSpec::sgd(0.05), device(), CumulativeConfig::default()));

    // Before any training: no union.
    let empty = save_steps(strategy.steps_as::<CumulativeSteps>().unwrap());
    let mut loaded = CumulativeSteps::default();
    TemplateSteps::<SimpleMlp>::load_state(&mut loaded, &empty, strategy.state()).unwrap();
    assert!(loaded.dataset().is_none());

    strategy.train(&s[0]).unwrap();
    strategy.train(&s[1]).unwrap();
    let steps = strategy.steps_as::<CumulativeSteps>().unwrap();
    let state = save_steps(steps);
    let mut loaded = CumulativeSteps::default();
    TemplateSteps::<SimpleMlp>::load_state(&mut loaded, &state, strategy.state()).unwrap();
    let (a, b) = (steps.dataset().unwrap(), loaded.dataset().unwrap());
    assert_eq!(b.len(), 24);
    assert_eq!(samples(a), samples(b), "train view");
    assert_eq!(samples(&a.eval()), samples(&b.eval()), "eval view");
    assert_eq!(a.classes(), b.classes());

    // A state without the union is an error naming the entry.
    let err =
        TemplateSteps::<SimpleMlp>::load_state(&mut loaded, &StateDict::new("steps"), strategy.state()).unwrap_err();
    assert!(matches!(err, ClError::CheckpointEntry { ref key, .. } if key == "has_dataset"), "{err}");
}

#[test]
fn joint_steps_save_and_load_whether_they_trained() {
    let s = stream();
    let mut strategy =
        built(JointTraining::builder(model(), OptimizerSpec::sgd(0.05), device(), JointTrainingConfig::default()));
    let before = save_steps(strategy.steps_as::<JointSteps>().unwrap());
    let mut loaded = JointSteps::default();
    TemplateSteps::<SimpleMlp>::load_state(&mut loaded, &before, strategy.state()).unwrap();
    assert!(!loaded.trained());

    strategy.train(&s).unwrap();
    let after = save_steps(strategy.steps_as::<JointSteps>().unwrap());
    TemplateSteps::<SimpleMlp>::load_state(&mut loaded, &after, strategy.state()).unwrap();
    assert!(loaded.trained());
    let err = TemplateSteps::<SimpleMlp>::train_experiences(&mut loaded, &s).unwrap_err();
    assert!(err.to_string().contains("already trained"), "{err}");
}

/// What a run produced: the result of every call and the final weights.
type Outcome = (Vec<MetricResults>, Vec<u32>);

/// Trains `stream` in one `train` call, with a checkpoint after every experience, then
/// evaluates it; resumed from `resume` if given.
fn run_in_one_call(
    config: &StrategyConfig,
    dir: &std::path::Path,
    resume: Option<PathBuf>,
) -> cl_core::Result<Outcome> {
    let s = stream_for(config);
    let plugin = CheckpointPlugin::new(CheckpointConfig::new(dir).with_keep_last(10))?;
    let mut builder =
        config.builder(model(), OptimizerSpec::sgd(0.05), device())?.train_mb_size(4).train_epochs(2).seed(3);
    builder = builder.plugin(plugin);
    if let Some(path) = resume {
        builder = builder.resume_from(path);
    }
    let mut strategy = builder.build()?;
    let trained = strategy.train(&s)?;
    let evaluated = strategy.eval(&s)?;
    Ok((vec![trained, evaluated], weights(strategy.model())))
}

/// A `train` call per experience, each followed by an evaluation, with a checkpoint saved by
/// hand after `save_after` experiences; resumed from `resume` if given.
fn run_per_experience(
    config: &StrategyConfig,
    save: Option<(usize, &std::path::Path)>,
    resume: Option<&std::path::Path>,
) -> cl_core::Result<Outcome> {
    match config {
        // PNN trains its own model, one column per task label.
        StrategyConfig::Pnn(_) => {
            let pnn = cl_models::PnnConfig::new()
                .with_in_features(INPUT)
                .with_hidden_features_per_column(6)
                .init(&device())?;
            run_model(config, pnn, save, resume)
        }
        // AR1 needs a model split at a latent layer.
        StrategyConfig::Ar1(_) => {
            let cnn = cl_models::LatentCnnConfig::new()
                .with_input_shape([1, 2, 2])
                .with_lower_channels(vec![3])
                .with_upper_channels(vec![4])
                .with_num_classes(6)
                .with_seed(1)
                .init(&device())?;
            run_model(config, cnn, save, resume)
        }
        _ => run_model(config, model(), save, resume),
    }
}

fn run_model<M: cl_core::Model>(
    config: &StrategyConfig,
    model: M,
    save: Option<(usize, &std::path::Path)>,
    resume: Option<&std::path::Path>,
) -> cl_core::Result<Outcome> {
    let s = stream_for(config);
    let mut builder =
        config.builder(model, OptimizerSpec::sgd(0.05), device())?.train_mb_size(4).train_epochs(2).seed(3);
    if let Some(path) = resume {
        builder = builder.resume_from(path);
    }
    let mut strategy = builder.build()?;
    let mut results = Vec::new();
    for (i, exp) in s.iter().enumerate() {
        results.push(strategy.train(exp)?);
        results.push(strategy.eval(&s)?);
        if let Some((after, path)) = save
            && after == i + 1
        {
            strategy.save_checkpoint(path)?;
        }
    }
    Ok((results, weights(strategy.model())))
}

#[test]
fn cumulative_resumed_inside_a_train_call_ends_as_the_uninterrupted_run() {
    let config = StrategyConfig::Cumulative(CumulativeConfig::default());
    let dir = run_dir("cumulative-in-call");
    let full = run_in_one_call(&config, &dir, None).unwrap();
    // The checkpoint after the first experience: the union holds it; two experiences are left.
    let first = dir.join("ckpt-000001.clckpt");
    assert!(first.exists());
    let copy = dir.join("first.bin");
    std::fs::copy(&first, &copy).unwrap();
    let resumed = run_in_one_call(&config, &dir, Some(copy)).unwrap();
    assert_eq!(resumed, full);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn joint_training_resumed_after_its_train_call_refuses_a_second_one() {
    let config = StrategyConfig::JointTraining(JointTrainingConfig::default());
    let dir = run_dir("joint");
    let full = run_in_one_call(&config, &dir, None).unwrap();
    // The checkpoints of the call: after the union experience (at least; the call then ends).
    let saved = cl_core::checkpoint::list_checkpoints(&dir).unwrap();
    assert!(!saved.is_empty());
    let copies: Vec<PathBuf> = (0..saved.len()).map(|n| dir.join(format!("copy-{n}.bin"))).collect();
    for (path, copy) in saved.iter().zip(&copies) {
        std::fs::copy(path, copy).unwrap();
    }
    for (n, copy) in copies.iter().enumerate() {
        let resumed = run_in_one_call(&config, &dir, Some(copy.clone())).unwrap();
        assert_eq!(resumed, full, "resumed from checkpoint {n}");

        let plugin = CheckpointPlugin::new(CheckpointConfig::new(&dir).with_keep_last(10)).unwrap();
        let mut strategy = config
            .builder(model(), OptimizerSpec::sgd(0.05), device())
            .unwrap()
            .train_mb_size(4)
            .train_epochs(2)
            .seed(3)
            .plugin(plugin)
            .resume_from(copy)
            .build()
            .unwrap();
        assert!(strategy.steps_as::<JointSteps>().unwrap().trained());
        strategy.train(&stream()).unwrap();
        let err = strategy.train(&stream()).unwrap_err();
        assert!(err.to_string().contains("already trained"), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_strategy_resumed_between_experiences_ends_as_the_uninterrupted_run() {
    let dir = run_dir("every");
    for config in every_strategy() {
        if matches!(config, StrategyConfig::JointTraining(_)) {
            continue; // trains once; see joint_training_resumed_after_its_train_call_refuses_a_second_one
        }
        let path = dir.join(format!("{}.clckpt", config.name()));
        let full = run_per_experience(&config, Some((1, &path)), None)
            .unwrap_or_else(|e| panic!("{}: the uninterrupted run: {e}", config.name()));
        let resumed = run_per_experience(&config, None, Some(&path))
            .unwrap_or_else(|e| panic!("{}: the resumed run: {e}", config.name()));
        assert!(resumed == full, "{}: the resumed run differs", config.name());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_growing_model_resumes_with_cumulative() {
    let dir = run_dir("incremental");
    let path = dir.join("after-1.clckpt");
    let build = |resume: bool| -> Strategy<IncrementalMlp> {
        let model =
            SimpleMlpConfig::new().with_input_size(INPUT).with_hidden_size(8).init_incremental(&device()).unwrap();
        let mut b = Cumulative::builder(model, OptimizerSpec::sgd(0.05), device(), CumulativeConfig::default())
            .unwrap()
            .train_mb_size(4)
            .seed(5);
        if resume {
            b = b.resume_from(&path);
        }
        b.build().unwrap()
    };
    let s = stream();
    let run = |mut strategy: Strategy<IncrementalMlp>, save: bool| -> Outcome {
        let mut results = Vec::new();
        for (i, exp) in s.iter().enumerate() {
            results.push(strategy.train(exp).unwrap());
            results.push(strategy.eval(&s).unwrap());
            if save && i == 0 {
                strategy.save_checkpoint(&path).unwrap();
            }
        }
        assert_eq!(strategy.model().classifier.num_outputs(), 6);
        (results, weights(strategy.model()))
    };
    let full = run(build(false), true);
    let resumed = run(build(true), false);
    assert_eq!(resumed, full);
    let _ = std::fs::remove_dir_all(&dir);
}
