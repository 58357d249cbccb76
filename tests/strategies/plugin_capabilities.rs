//! What a plugin can do through the strategy state, each proven by a small test plugin.

use crate::common::*;
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use cl::burn;
use cl::core::data::{ClassificationDataLoader, DataLoaderConfig};
use cl::core::{Plugin, Result, StrategyState};
use cl::prelude::*;

fn builder(model: SimpleMlp, lr: f64) -> StrategyBuilder<SimpleMlp> {
    Naive::builder(model, OptimizerSpec::sgd(lr), cl::default_device(), NaiveConfig::default())
        .unwrap()
        .train_mb_size(2)
        .train_epochs(2)
        .seed(3)
}

/// Adds a constant and an L2 penalty on the classifier to the loss; records the loss seen
/// before and after.
struct AddLoss {
    constant: f32,
    l2: f32,
    seen: Vec<(f32, f32)>,
    before: f32,
}

impl Plugin<SimpleMlp> for AddLoss {
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::Loss]
    }
    fn before_backward(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
        self.before = s.loss.clone().unwrap().into_scalar::<f32>();
        let device = s.settings().device().clone();
        let w = s.model().classifier.weight.val();
        let penalty = w.powf_scalar(2.0).sum().mul_scalar(self.l2);
        s.add_loss(Tensor::<1>::from_floats([self.constant], &device) + penalty)?;
        Ok(())
    }
    fn after_backward(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
        let after = s.loss.clone().unwrap().into_scalar::<f32>();
        self.seen.push((self.before, after));
        Ok(())
    }
}

#[test]
fn a_plugin_adds_a_term_to_the_loss_before_backward() {
    let stream = generated_stream("train", 1, 6);
    let mut s = builder(tiny_mlp(2), 0.1)
        .plugin(AddLoss { constant: 5.0, l2: 0.0, seen: Vec::new(), before: 0.0 })
        .build()
        .unwrap();
    s.train(&stream).unwrap();
    let seen = &s.plugin::<AddLoss>().unwrap().seen;
    assert_eq!(seen.len(), 6);
    for (before, after) in seen.iter() {
        assert!((after - before - 5.0).abs() < 1e-4, "loss {before} + 5 != {after}");
    }

    // A penalty term changes the gradients: a strong L2 term shrinks the classifier.
    let norm = |m: &SimpleMlp| classifier_weight(m).iter().map(|v| v * v).sum::<f32>();
    let mut plain = builder(tiny_mlp(2), 0.1).build().unwrap();
    plain.train(&stream).unwrap();
    let mut penalised = builder(tiny_mlp(2), 0.1)
        .plugin(AddLoss { constant: 0.0, l2: 2.0, seen: Vec::new(), before: 0.0 })
        .build()
        .unwrap();
    penalised.train(&stream).unwrap();
    assert!(norm(penalised.model()) < 0.5 * norm(plain.model()));
}

/// Replaces the gradients with none at all: the update must leave the model unchanged.
struct DropGrads;
impl Plugin<SimpleMlp> for DropGrads {
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::Gradients]
    }
    fn before_update(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
        assert!(s.grads.as_ref().is_some_and(|g| !g.is_empty()), "gradients are visible before the update");
        s.grads = Some(GradientsParams::new());
        Ok(())
    }
}

/// Scales every gradient of the classifier weight by 0 through its parameter id.
struct ZeroClassifierGrad;
impl Plugin<SimpleMlp> for ZeroClassifierGrad {
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::Gradients]
    }
    fn before_update(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
        let id = s.model().classifier.weight.id;
        let grads = s.grads.as_mut().unwrap();
        let g: Tensor<2> = grads.remove(id).expect("classifier gradient present");
        grads.register(id, g.zeros_like());
        Ok(())
    }
}

#[test]
fn a_plugin_reads_and_rewrites_gradients_before_the_update() {
    let stream = generated_stream("train", 1, 6);
    let model = tiny_mlp(2);
    let w0 = classifier_weight(&model);
    let mut s = builder(model, 0.5).plugin(DropGrads).build().unwrap();
    s.train(&stream).unwrap();
    assert_eq!(classifier_weight(s.model()), w0);

    let model = tiny_mlp(2);
    let w0 = classifier_weight(&model);
    let hidden0 = model.features[0].linear.weight.val().into_data().try_to_vec::<f32>().unwrap();
    let mut s = builder(model, 0.5).plugin(ZeroClassifierGrad).build().unwrap();
    s.train(&stream).unwrap();
    assert_eq!(classifier_weight(s.model()), w0, "zeroed gradient leaves the classifier");
    let hidden1 = s.model().features[0].linear.weight.val().into_data().try_to_vec::<f32>().unwrap();
    assert_ne!(hidden0, hidden1, "other parameters still train");
}

/// Replaces the dataloader with one over 2 samples, batch 1.
struct SmallLoader;
impl Plugin<SimpleMlp> for SmallLoader {
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::TrainingData]
    }
    fn before_training_exp(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
        let ds = s.adapted_dataset.as_ref().unwrap().subset(&[0, 1])?;
        s.dataloader = Some(Box::new(ClassificationDataLoader::new(ds, DataLoaderConfig::train(1, 0))?));
        Ok(())
    }
}

/// Replaces the adapted dataset with its first 4 samples.
struct SmallDataset;
impl Plugin<SimpleMlp> for SmallDataset {
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::TrainingData]
    }
    fn after_train_dataset_adaptation(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
        let ds = s.adapted_dataset.as_ref().unwrap().subset(&[0, 1, 2, 3])?;
        s.adapted_dataset = Some(ds);
        Ok(())
    }
}

#[test]
fn a_plugin_replaces_the_dataloader_or_the_adapted_dataset() {
    let stream = generated_stream("train", 1, 6);
    let mut s = builder(tiny_mlp(2), 0.1).plugin(SmallLoader).build().unwrap();
    s.train(&stream).unwrap();
    assert_eq!(s.state().clock().train_iterations, 4, "2 epochs × 2 batches of 1");

    let mut s = builder(tiny_mlp(2), 0.1).plugin(SmallDataset).build().unwrap();
    s.train(&stream).unwrap();
    assert_eq!(s.state().clock().train_iterations, 4, "2 epochs × 2 batches of 2");
}

/// Snapshots the model before the experience, overwrites the classifier bias, and checks the
/// snapshot is unaffected by training.
struct SnapshotAndModify {
    snapshot: Option<SimpleMlp>,
}
impl Plugin<SimpleMlp> for SnapshotAndModify {
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::Model]
    }
    fn before_training_exp(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
        self.snapshot = Some(s.model().clone());
        s.map_model(|mut model| {
            let bias = model.classifier.bias.take().unwrap();
            model.classifier.bias = Some(bias.map(|b| b.ones_like().mul_scalar(7.0)));
            model
        })
    }
}

/// Sets the learning rate to zero.
struct FreezeLr;
impl Plugin<SimpleMlp> for FreezeLr {
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::LearningRate]
    }
    fn before_training_exp(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
        s.set_lr(0.0)
    }
}

#[test]
fn a_plugin_snapshots_and_modifies_parameters_and_changes_the_learning_rate() {
    let stream = generated_stream("train", 1, 6);
    let mut s =
        builder(tiny_mlp(2), 0.5).plugin(SnapshotAndModify { snapshot: None }).plugin(FreezeLr).build().unwrap();
    let w0 = classifier_weight(s.model());
    s.train(&stream).unwrap();
    let bias = s.model().classifier.bias.as_ref().unwrap().val().into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(bias, vec![7.0, 7.0], "the modification persists and lr = 0 keeps it");
    assert_eq!(classifier_weight(s.model()), w0);

    // With the learning rate left alone, the same training moves the weights.
    let mut s = builder(tiny_mlp(2), 0.5).build().unwrap();
    let w0 = classifier_weight(s.model());
    s.train(&stream).unwrap();
    assert_ne!(classifier_weight(s.model()), w0);
}

/// Stops training after the second iteration.
struct StopEarly;
impl Plugin<SimpleMlp> for StopEarly {
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::StopTraining]
    }
    fn after_training_iteration(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
        if s.clock().train_exp_iterations == 1 {
            s.stop_training()?;
        }
        Ok(())
    }
}

#[test]
fn a_plugin_stops_training_early() {
    let stream = generated_stream("train", 2, 6);
    let mut s = builder(tiny_mlp(4), 0.1).train_epochs(5).plugin(StopEarly).build().unwrap();
    s.train(&stream).unwrap();
    // Each experience: 2 iterations, its epoch closed, no further epoch.
    assert_eq!(s.state().clock().train_iterations, 4);
    assert_eq!(s.state().clock().train_exp_epochs, 1);
    assert_eq!(s.state().clock().train_exp_counter, 2, "the next experience trains again");
}

/// Fails in a callback.
struct Failing;
impl Plugin<SimpleMlp> for Failing {
    fn before_training_epoch(&mut self, _s: &mut StrategyState<SimpleMlp>) -> Result<()> {
        Err(ClError::Plugin { plugin: "Failing".into(), callback: "before_training_epoch", message: "boom".into() })
    }
}

#[test]
fn a_plugin_error_stops_the_loop_and_is_returned() {
    let stream = generated_stream("train", 1, 6);
    let mut s = builder(tiny_mlp(2), 0.1).plugin(Failing).build().unwrap();
    let err = s.train(&stream).unwrap_err();
    assert!(err.to_string().contains("boom"), "{err}");
    assert_eq!(s.state().clock().train_iterations, 0);
    assert!(!s.state().is_training());
}

/// Records whether the optimizer holds state when each experience starts.
struct OptimizerStateProbe(Vec<bool>);
impl Plugin<SimpleMlp> for OptimizerStateProbe {
    fn before_training_exp(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
        let has_state = !s.optimizer().unwrap().to_record().is_empty();
        self.0.push(has_state);
        Ok(())
    }
}

#[test]
fn optimizer_state_is_kept_across_experiences_unless_reset() {
    let stream = generated_stream("train", 2, 6);
    for (reset, expected) in [(false, vec![false, true]), (true, vec![false, false])] {
        let mut s = Naive::builder(
            tiny_mlp(4),
            OptimizerSpec::sgd(0.1).with_momentum(0.9),
            cl::default_device(),
            NaiveConfig::default(),
        )
        .unwrap()
        .train_mb_size(2)
        .reset_optimizer_state(reset)
        .plugin(OptimizerStateProbe(Vec::new()))
        .build()
        .unwrap();
        s.train(&stream).unwrap();
        assert_eq!(s.plugin::<OptimizerStateProbe>().unwrap().0, expected, "reset_optimizer_state = {reset}");
    }
}

/// Swaps in data whose labels the model cannot output.
struct ForeignLabels;
impl Plugin<SimpleMlp> for ForeignLabels {
    fn after_train_dataset_adaptation(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
        s.adapted_dataset = Some(generated(4, &[7]));
        Ok(())
    }
}

#[test]
fn labels_without_an_output_unit_are_an_error() {
    let stream = generated_stream("train", 1, 6);
    let mut s = builder(tiny_mlp(2), 0.1).plugin(ForeignLabels).build().unwrap();
    let err = s.train(&stream).unwrap_err();
    assert!(matches!(err, ClError::LabelOutOfRange { label: 7, outputs: 2 }), "{err}");
}

/// Declares that it replaces the training data, as replay or GDumb do.
struct OwnsData(&'static str);
impl Plugin<SimpleMlp> for OwnsData {
    fn name(&self) -> String {
        self.0.to_string()
    }
    fn writes(&self) -> Vec<cl::core::StatePart> {
        vec![cl::core::StatePart::TrainingData, cl::core::StatePart::Loss]
    }
}

/// Adds to the loss only.
struct AddsLoss;
impl Plugin<SimpleMlp> for AddsLoss {
    fn writes(&self) -> Vec<cl::core::StatePart> {
        vec![cl::core::StatePart::Loss]
    }
}

#[test]
fn plugins_replacing_the_same_state_are_rejected_when_built() {
    let err =
        builder(tiny_mlp(2), 0.1).plugin(OwnsData("ReplayA")).plugin(AddsLoss).plugin(OwnsData("ReplayB")).build();
    let err = err.err().expect("two owners of the training data");
    let msg = err.to_string();
    assert!(matches!(err, ClError::IncompatiblePlugins(_)));
    assert!(msg.contains("ReplayA") && msg.contains("ReplayB") && msg.contains("training data"), "{msg}");
    // Several loss terms are fine.
    assert!(builder(tiny_mlp(2), 0.1).plugin(OwnsData("Replay")).plugin(AddsLoss).plugin(AddsLoss).build().is_ok());
}

#[test]
fn the_last_metrics_are_visible_to_plugins_after_an_eval() {
    let stream = generated_stream("test", 1, 4);
    let mut s = builder(tiny_mlp(2), 0.1).build().unwrap();
    assert!(s.state().last_metrics().is_empty());
    let results = s.eval(&stream).unwrap();
    assert_eq!(*s.state().last_metrics(), results);
    assert!(results.contains_key("Top1_Acc_Stream/eval_phase/test_stream/Task000"));
}

/// Adds `c·Σ w²` on the classifier's weight: through autodiff (`add_loss`) or with its
/// closed-form gradient `2c·w` (`add_loss_with_gradient`). Records the loss after backward.
struct L2OnClassifier {
    c: f32,
    closed_form: bool,
    losses: Vec<f32>,
}

impl Plugin<SimpleMlp> for L2OnClassifier {
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::Loss]
    }
    fn before_backward(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
        let w = s.model().classifier.weight.val();
        if self.closed_form {
            let w = w.without_autodiff();
            let n = w.shape().num_elements();
            let value = w.clone().powi_scalar(2).sum().mul_scalar(self.c);
            let gradient = w.reshape([n]).mul_scalar(2.0 * self.c);
            s.add_loss_with_gradient(value, vec![(s.model().classifier.weight.id, gradient)])
        } else {
            s.add_loss(w.powi_scalar(2).sum().mul_scalar(self.c))
        }
    }
    fn after_backward(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
        self.losses.push(s.loss.clone().unwrap().into_scalar::<f32>());
        Ok(())
    }
}

fn l2(closed_form: bool) -> L2OnClassifier {
    L2OnClassifier { c: 0.7, closed_form, losses: Vec::new() }
}

/// A term with a closed-form gradient trains exactly as the same term back-propagated: same
/// losses (the value is in the loss) and the same weights after 6 updates.
#[test]
fn a_closed_form_gradient_equals_the_back_propagated_one() {
    let stream = generated_stream("train", 1, 6);
    let run = |closed_form: bool| {
        let mut s = builder(tiny_mlp(2), 0.1).plugin(l2(closed_form)).build().unwrap();
        s.train(&stream).unwrap();
        let losses = s.plugin::<L2OnClassifier>().unwrap().losses.clone();
        (
            losses,
            classifier_weight(s.model()),
            s.model().features[0].linear.weight.val().into_data().try_to_vec::<f32>().unwrap(),
        )
    };
    let (autodiff, closed) = (run(false), run(true));
    assert_eq!(autodiff.0.len(), 6);
    for (a, b) in autodiff.0.iter().zip(&closed.0) {
        assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "loss {a} vs {b}");
    }
    for (a, b) in autodiff.1.iter().zip(&closed.1).chain(autodiff.2.iter().zip(&closed.2)) {
        assert!((a - b).abs() <= 1e-6, "weight {a} vs {b}");
    }
    let plain = {
        let mut s = builder(tiny_mlp(2), 0.1).build().unwrap();
        s.train(&stream).unwrap();
        classifier_weight(s.model())
    };
    assert_ne!(plain, closed.1, "the term changes the training");
}

/// A frozen parameter gets no closed-form gradient: it does not move.
#[test]
fn a_closed_form_gradient_skips_frozen_parameters() {
    let stream = generated_stream("train", 1, 6);
    let model = cl::core::freeze(tiny_mlp(2), &cl::core::ModelPart::layers(["classifier"]));
    let before = classifier_weight(&model);
    let mut s = builder(model, 0.1).plugin(l2(true)).build().unwrap();
    s.train(&stream).unwrap();
    assert_eq!(classifier_weight(s.model()), before);
}

/// Steps whose backward ignores the pending closed-form gradients are refused at the first
/// update, with the fix; without the `Loss` declaration the term is refused too.
#[test]
fn closed_form_gradients_left_pending_are_an_error() {
    struct OwnBackward;
    impl TemplateSteps<SimpleMlp> for OwnBackward {
        fn backward(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
            let loss = s.loss.clone().unwrap();
            s.grads = Some(GradientsParams::from_grads(loss.backward(), s.model()));
            Ok(())
        }
    }
    let stream = generated_stream("train", 1, 6);
    let mut s = builder(tiny_mlp(2), 0.1).steps(OwnBackward).plugin(l2(true)).build().unwrap();
    let err = s.train(&stream).unwrap_err();
    assert!(matches!(err, ClError::InvalidUse(_)), "{err:?}");
    assert!(err.to_string().contains("apply_pending_gradients"), "{err}");

    struct Undeclared;
    impl Plugin<SimpleMlp> for Undeclared {
        fn before_backward(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
            let value = Tensor::<1>::from_floats([1.0], s.settings().device());
            s.add_loss_with_gradient(value, Vec::new())
        }
    }
    let mut s = builder(tiny_mlp(2), 0.1).plugin(Undeclared).build().unwrap();
    assert!(matches!(s.train(&stream).unwrap_err(), ClError::UndeclaredWrite { .. }));

    // A gradient of the wrong length is an error naming the parameter, not a panic in reshape.
    struct WrongLength;
    impl Plugin<SimpleMlp> for WrongLength {
        fn writes(&self) -> Vec<StatePart> {
            vec![StatePart::Loss]
        }
        fn before_backward(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
            let device = s.settings().device().clone().without_autodiff();
            let value = Tensor::<1>::from_floats([0.0], &device);
            let gradient = Tensor::<1>::zeros([3], &device);
            s.add_loss_with_gradient(value, vec![(s.model().classifier.weight.id, gradient)])
        }
    }
    let mut s = builder(tiny_mlp(2), 0.1).plugin(WrongLength).build().unwrap();
    let err = s.train(&stream).unwrap_err();
    assert!(matches!(err, ClError::InvalidUse(_)) && err.to_string().contains("classifier.weight"), "{err}");
}
