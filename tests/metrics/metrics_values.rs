//! Metric values on hand-made predictions equal hand-computed numbers, under Avalanche's names.

use crate::support::*;
use cl::core::Callback;
use cl::core::burn::tensor::{Tensor, TensorData};
use cl::core::evaluation::{
    AccuracyConfig, AccuracyMatrix, AccuracyMetrics, EvaluationPlugin, Granularity, MetricData, TopkAccuracy,
    TopkConfig,
};
use cl::metrics::{
    AccuracyMatrixMetric, Amca, AmcaConfig, AmcaStreams, ClassAccuracy, ClassAccuracyConfig, ConfusionMatrixConfig,
    ConfusionMatrixMetric, Forgetting, ForwardTransfer, TransferConfig,
};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

macro_rules! assert_close {
    ($a:expr, $b:expr) => {
        let (a, b) = ($a, $b);
        assert!(close(a, b), "{} = {a}, expected {b}", stringify!($a));
    };
}

/// Three test experiences of 10 samples (classes 2e, 2e+1), six classes.
fn test_stream() -> Vec<cl::core::Experience> {
    (0..3)
        .map(|e| {
            let c = 2 * e as u32;
            let y: Vec<u32> = (0..10).map(|i| c + (i % 2)).collect();
            experience(e, "test", &y, 0, 6)
        })
        .collect()
}

fn train_exp(e: usize) -> cl::core::Experience {
    let c = 2 * e as u32;
    experience(e, "train", &[c, c + 1], 0, 6)
}

/// Evaluates the test stream with the given accuracies (tenths) and losses 0.5, 1.0, 1.5.
fn eval_with(
    d: &mut Driver,
    stream: &[cl::core::Experience],
    tenths: [usize; 3],
) -> Vec<cl::core::evaluation::MetricValue> {
    let exps: Vec<_> = stream
        .iter()
        .zip(tenths)
        .enumerate()
        .map(|(j, (e, k))| (e, preds_with(&e.dataset.targets(), k, 6), 0.5 * (j + 1) as f32))
        .collect();
    d.eval_stream(&exps, 6)
}

fn train(d: &mut Driver, e: usize) {
    let exp = train_exp(e);
    let c = 2 * e as u32;
    d.train(&exp, &[vec![(vec![c, c + 1], vec![c, c + 1], 0.1)]], 6);
}

#[test]
fn accuracy_forgetting_bwt_forward_transfer_and_accuracy_matrix() {
    let eval = EvaluationPlugin::empty()
        .metric(AccuracyMetrics::new(AccuracyConfig::default().with_trained_experience(true)))
        .metric(Forgetting::new(TransferConfig::default()))
        .metric(Forgetting::bwt(TransferConfig::default()))
        .metric(ForwardTransfer::new(TransferConfig::default()))
        .metric(AccuracyMatrixMetric::new());
    let mut d = Driver::new(eval);
    let stream = test_stream();
    // R (accuracy on exp j): at init [.1 .2 .3], after exp 0 [.9 .4 .2], after exp 1 [.6 .8 .6],
    // after exp 2 [.5 .7 .9].
    let v = eval_with(&mut d, &stream, [1, 2, 3]);
    assert_close!(value(&v, "Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000"), 0.1);
    assert_close!(value(&v, "Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp002"), 0.3);
    assert_close!(value(&v, "StreamForwardTransfer/eval_phase/test_stream"), 0.0);
    assert_close!(value(&v, "StreamForgetting/eval_phase/test_stream"), 0.0);
    // Before any training, experience 0 counts as trained (as Avalanche).
    assert_close!(value(&v, "Accuracy_On_Trained_Experiences/eval_phase/test_stream/Task000"), 0.1);
    assert!(!v.iter().any(|x| x.name == "EvalStream/Acc_Matrix"), "no matrix before training");

    train(&mut d, 0);
    let v = eval_with(&mut d, &stream, [9, 4, 2]);
    assert!(!v.iter().any(|x| x.name.starts_with("ExperienceForgetting")));
    assert_close!(value(&v, "ExperienceForwardTransfer/eval_phase/test_stream/Task000/Exp001"), 0.4 - 0.2);
    assert_eq!(v.iter().filter(|x| x.name.starts_with("ExperienceForwardTransfer")).count(), 1);
    assert_close!(value(&v, "StreamForwardTransfer/eval_phase/test_stream"), 0.2);
    assert_close!(value(&v, "Accuracy_On_Trained_Experiences/eval_phase/test_stream/Task000"), 0.9);

    train(&mut d, 1);
    let v = eval_with(&mut d, &stream, [6, 8, 6]);
    assert_close!(value(&v, "ExperienceForgetting/eval_phase/test_stream/Task000/Exp000"), 0.3);
    assert_close!(value(&v, "StreamForgetting/eval_phase/test_stream"), 0.3);
    assert_close!(value(&v, "ExperienceBWT/eval_phase/test_stream/Task000/Exp000"), -0.3);
    assert_close!(value(&v, "StreamBWT/eval_phase/test_stream"), -0.3);
    assert_close!(value(&v, "ExperienceForwardTransfer/eval_phase/test_stream/Task000/Exp002"), 0.6 - 0.3);
    assert_close!(value(&v, "StreamForwardTransfer/eval_phase/test_stream"), (0.2 + 0.3) / 2.0);
    assert_close!(value(&v, "Accuracy_On_Trained_Experiences/eval_phase/test_stream/Task000"), 14.0 / 20.0);

    train(&mut d, 2);
    let v = eval_with(&mut d, &stream, [5, 7, 9]);
    assert_close!(value(&v, "ExperienceForgetting/eval_phase/test_stream/Task000/Exp000"), 0.9 - 0.5);
    assert_close!(value(&v, "ExperienceForgetting/eval_phase/test_stream/Task000/Exp001"), 0.8 - 0.7);
    assert_close!(value(&v, "StreamForgetting/eval_phase/test_stream"), 0.25);
    assert_close!(value(&v, "StreamBWT/eval_phase/test_stream"), -0.25);
    assert_close!(value(&v, "StreamForwardTransfer/eval_phase/test_stream"), 0.25);
    assert!(!v.iter().any(|x| x.name.starts_with("ExperienceForwardTransfer")));
    assert_close!(value(&v, "Top1_Acc_Stream/eval_phase/test_stream/Task000"), 21.0 / 30.0);
    // Losses 0.5, 1.0, 1.5 over 10 samples each.
    assert_close!(value(&v, "Loss_Stream/eval_phase/test_stream/Task000"), 1.0);
    assert_close!(value(&v, "Loss_Exp/eval_phase/test_stream/Task000/Exp001"), 1.0);
    assert_close!(value(&v, "Accuracy_On_Trained_Experiences/eval_phase/test_stream/Task000"), 21.0 / 30.0);

    // Avalanche's name for the accuracy matrix.
    let m = v.iter().find(|x| x.name == "EvalStream/Acc_Matrix").unwrap();
    assert_close!(m.value, 0.7);
    let Some(MetricData::Matrix { rows }) = &m.data else { panic!("matrix data") };
    let want = [[0.9, 0.4, 0.2], [0.6, 0.8, 0.6], [0.5, 0.7, 0.9]];
    for i in 0..3 {
        for j in 0..3 {
            assert_close!(rows[i][j], want[i][j]);
        }
    }
    let r = AccuracyMatrix::from_rows(rows.clone());
    assert_close!(r.forgetting().unwrap(), 0.25);
    assert_close!(r.backward_transfer().unwrap(), -0.25);
    // The evaluator returns the last value of each metric.
    let last = d.eval.last_values();
    assert_close!(last["StreamForgetting/eval_phase/test_stream"], 0.25);
    assert_close!(last["ExperienceForgetting/eval_phase/test_stream/Task000/Exp000"], 0.4);
}

#[test]
fn forward_transfer_needs_an_evaluation_before_training() {
    let mut d = Driver::new(EvaluationPlugin::empty().metric(ForwardTransfer::new(TransferConfig::default())));
    let stream = test_stream();
    // The first evaluation comes after training: its accuracies are not initial ones, and
    // nothing is emitted (a warning is logged), then or later.
    train(&mut d, 0);
    let v = eval_with(&mut d, &stream, [9, 4, 2]);
    assert!(!v.iter().any(|x| x.name.contains("ForwardTransfer")), "{v:#?}");
    train(&mut d, 1);
    let v = eval_with(&mut d, &stream, [6, 8, 6]);
    assert!(!v.iter().any(|x| x.name.contains("ForwardTransfer")), "{v:#?}");

    // A periodic evaluation at the start of training (no iteration run yet) serves.
    let mut d = Driver::new(EvaluationPlugin::empty().metric(ForwardTransfer::new(TransferConfig::default())));
    d.call(Callback::BeforeTraining, true, None, None);
    let v = eval_with(&mut d, &stream, [1, 2, 3]);
    assert_close!(value(&v, "StreamForwardTransfer/eval_phase/test_stream"), 0.0);
    d.call(Callback::AfterTraining, true, None, None);
    train(&mut d, 0);
    let v = eval_with(&mut d, &stream, [9, 4, 2]);
    assert_close!(value(&v, "ExperienceForwardTransfer/eval_phase/test_stream/Task000/Exp001"), 0.4 - 0.2);
}

#[test]
fn minibatch_running_and_epoch_accuracy_and_loss() {
    let g = Granularity::ALL;
    let mut d = Driver::new(EvaluationPlugin::empty().metric(AccuracyMetrics::new(
        AccuracyConfig::default().with_accuracy(g).with_loss(g).with_running_accuracy(true).with_running_loss(true),
    )));
    let exp = experience(0, "train", &[0, 1], 0, 2);
    // Batch 1: 3 of 4 right, loss 0.4; batch 2: 1 of 2 right, loss 1.0.
    d.train(&exp, &[vec![(vec![0, 1, 0, 1], vec![0, 1, 0, 0], 0.4), (vec![0, 1], vec![1, 1], 1.0)]], 2);
    let h = d.eval.history();
    let of = |name: &str| h.iter().filter(|v| v.name == name).map(|v| (v.value, v.x_plot)).collect::<Vec<_>>();
    let mb = of("Top1_Acc_MB/train_phase/train_stream/Task000");
    assert_eq!(mb.len(), 2);
    assert_close!(mb[0].0, 0.75);
    assert_close!(mb[1].0, 0.5);
    assert_eq!((mb[0].1, mb[1].1), (0, 1));
    let running = of("Top1_RunningAcc_Epoch/train_phase/train_stream/Task000");
    assert_close!(running[0].0, 0.75);
    assert_close!(running[1].0, 4.0 / 6.0);
    let running_loss = of("RunningLoss_Epoch/train_phase/train_stream/Task000");
    assert!((running_loss[0].0 - 0.4).abs() < 1e-6);
    let epoch = of("Top1_Acc_Epoch/train_phase/train_stream/Task000");
    assert_eq!(epoch.len(), 1);
    assert_close!(epoch[0].0, 4.0 / 6.0);
    assert_eq!(epoch[0].1, 2);
    let loss = of("Loss_Epoch/train_phase/train_stream/Task000");
    assert!((loss[0].0 - (0.4 * 4.0 + 1.0 * 2.0) / 6.0).abs() < 1e-6);
    let mb_loss = of("Loss_MB/train_phase/train_stream/Task000");
    assert!((mb_loss[1].0 - 1.0).abs() < 1e-6);
}

#[test]
fn confusion_matrix_class_accuracy_and_amca() {
    let eval = EvaluationPlugin::empty()
        .metric(ConfusionMatrixMetric::new(ConfusionMatrixConfig::default()).unwrap())
        .metric(ClassAccuracy::new(ClassAccuracyConfig::default()).unwrap())
        .metric(Amca::new(AmcaConfig::default()).unwrap());
    let mut d = Driver::new(eval);
    let e0 = experience(0, "test", &[0, 0, 1, 1, 2, 2], 0, 3);
    let e1 = experience(1, "test", &[0, 1], 0, 3);
    let v = d.eval_stream(&[(&e0, vec![0, 1, 1, 1, 0, 2], 0.0), (&e1, vec![0, 0], 0.0)], 3);
    let cm = v.iter().find(|x| x.name == "ConfusionMatrix_Stream/eval_phase/test_stream").unwrap();
    assert_eq!(cm.value, 8.0);
    assert_eq!(
        cm.data,
        Some(MetricData::ConfusionMatrix { counts: vec![vec![2, 1, 0], vec![1, 2, 0], vec![1, 0, 1]] })
    );
    // Experience 0: class 0 1/2, class 1 2/2, class 2 1/2.
    assert_close!(value(&v, "Top1_ClassAcc_Exp/eval_phase/test_stream/Task000/Exp000/0"), 0.5);
    assert_close!(value(&v, "Top1_ClassAcc_Exp/eval_phase/test_stream/Task000/Exp000/1"), 1.0);
    assert_close!(value(&v, "Top1_ClassAcc_Exp/eval_phase/test_stream/Task000/Exp000/2"), 0.5);
    // Experience 1 has no sample of class 2: no value for it.
    assert!(!v.iter().any(|x| x.name == "Top1_ClassAcc_Exp/eval_phase/test_stream/Task000/Exp001/2"));
    assert_close!(value(&v, "Top1_ClassAcc_Stream/eval_phase/test_stream/Task000/0"), 2.0 / 3.0);
    assert_close!(value(&v, "Top1_ClassAcc_Stream/eval_phase/test_stream/Task000/2"), 0.5);
    // AMCA (Avalanche's amca.py): class accuracies pooled over the whole eval phase —
    // class 0: 1/2 + 1/1 -> 2/3, class 1: 2/2 + 0/1 -> 2/3, class 2: 1/2 — mean 11/18.
    let phase1 = (2.0 / 3.0 + 2.0 / 3.0 + 0.5) / 3.0;
    assert_close!(value(&v, "Top1_AMCA_Stream/test_stream/Task000"), phase1);
    assert_eq!(v.iter().filter(|x| x.name.starts_with("Top1_AMCA")).count(), 1);
    // Second phase, experience 1 only: class 0 1/1, class 1 0/1, class 2 (seen before, absent
    // now) 0 -> 1/3; the running mean over the two phases is emitted.
    let v = d.eval_stream(&[(&e1, vec![0, 0], 0.0)], 3);
    let phase2 = 1.0 / 3.0;
    assert_close!(value(&v, "Top1_AMCA_Stream/test_stream/Task000"), (phase1 + phase2) / 2.0);
    // A periodic evaluation inside `train` is ignored (Avalanche's ignore_validation).
    d.call(Callback::BeforeTraining, true, None, None);
    let v = d.eval_stream(&[(&e0, vec![0; 6], 0.0)], 3);
    assert!(!v.iter().any(|x| x.name.starts_with("Top1_AMCA")));
    d.call(Callback::AfterTraining, true, None, None);
    // A phase on another stream: untracked (only `test` by default), but the test stream's
    // value is emitted with this phase counting 0, as Avalanche.
    let valid = experience(0, "valid", &[0, 1], 0, 3);
    let v = d.eval_stream(&[(&valid, vec![0, 1], 0.0)], 3);
    assert!(!v.iter().any(|x| x.name.starts_with("Top1_AMCA_Stream/valid_stream")));
    assert_close!(value(&v, "Top1_AMCA_Stream/test_stream/Task000"), (phase1 + phase2 + 0.0) / 3.0);
    // That zero is not kept: the next test phase (all right) averages three phases.
    let v = d.eval_stream(&[(&e0, vec![0, 0, 1, 1, 2, 2], 0.0), (&e1, vec![0, 1], 0.0)], 3);
    assert_close!(value(&v, "Top1_AMCA_Stream/test_stream/Task000"), (phase1 + phase2 + 1.0) / 3.0);
}

#[test]
fn amca_tracks_other_streams_when_asked() {
    let mut d = Driver::new(
        EvaluationPlugin::empty().metric(Amca::new(AmcaConfig::default().with_streams(AmcaStreams::All)).unwrap()),
    );
    let valid = experience(0, "valid", &[0, 1, 1], 0, 2);
    let v = d.eval_stream(&[(&valid, vec![0, 1, 0], 0.0)], 2);
    // class 0 1/1, class 1 1/2.
    assert_close!(value(&v, "Top1_AMCA_Stream/valid_stream/Task000"), 0.75);
    let mut d = Driver::new(
        EvaluationPlugin::empty()
            .metric(Amca::new(AmcaConfig::default().with_streams(AmcaStreams::Only(vec!["valid".into()]))).unwrap()),
    );
    let v = d.eval_stream(&[(&valid, vec![0, 1, 0], 0.0)], 2);
    assert_close!(value(&v, "Top1_AMCA_Stream/valid_stream/Task000"), 0.75);
}

/// Evaluates one experience as one batch with the given logits; returns the values emitted.
fn eval_logits(
    d: &mut Driver,
    exp: &cl::core::Experience,
    logits: Vec<f32>,
    classes: usize,
) -> Vec<cl::core::evaluation::MetricValue> {
    let y = exp.dataset.targets();
    let n = y.len();
    let b = batch(&y, &vec![0; n], &d.device);
    let logits = Tensor::<2>::from_data(TensorData::new(logits, [n, classes]), &d.device);
    let loss = Tensor::<1>::from_data(TensorData::new(vec![0.0f32], [1]), &d.device);
    let mut v = d.call(Callback::BeforeEval, false, Some(exp), None);
    v.extend(d.call(Callback::BeforeEvalExp, false, Some(exp), None));
    v.extend(d.call(Callback::AfterEvalIteration, false, Some(exp), Some((&b, &logits, &loss))));
    v.extend(d.call(Callback::AfterEvalExp, false, Some(exp), None));
    v.extend(d.call(Callback::AfterEval, false, Some(exp), None));
    v
}

#[test]
fn a_model_with_one_output_works() {
    // One logit: every prediction is class 0; labels 0, 1, 1 (class 1 has no logit).
    let eval = EvaluationPlugin::empty()
        .metric(ConfusionMatrixMetric::new(ConfusionMatrixConfig::default()).unwrap())
        .metric(ClassAccuracy::new(ClassAccuracyConfig::default()).unwrap())
        .metric(Amca::new(AmcaConfig::default()).unwrap())
        .metric(TopkAccuracy::new(TopkConfig::new(1)).unwrap())
        .metric(AccuracyMetrics::new(AccuracyConfig::default().with_loss(Granularity::NONE)));
    let mut d = Driver::new(eval);
    let exp = experience(0, "test", &[0, 1, 1], 0, 2);
    let v = eval_logits(&mut d, &exp, vec![0.3, 0.1, -2.0], 1);
    let cm = v.iter().find(|x| x.name == "ConfusionMatrix_Stream/eval_phase/test_stream").unwrap();
    assert_eq!(cm.data, Some(MetricData::ConfusionMatrix { counts: vec![vec![1, 0], vec![2, 0]] }));
    assert_close!(value(&v, "Top1_ClassAcc_Exp/eval_phase/test_stream/Task000/Exp000/0"), 1.0);
    assert_close!(value(&v, "Top1_ClassAcc_Exp/eval_phase/test_stream/Task000/Exp000/1"), 0.0);
    assert_close!(value(&v, "Top1_AMCA_Stream/test_stream/Task000"), 0.5);
    assert_close!(value(&v, "Topk_1_Acc_Exp/eval_phase/test_stream/Task000/Exp000"), 1.0 / 3.0);
    assert_close!(value(&v, "Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000"), 1.0 / 3.0);
    // A later, wider head (three outputs) on the same evaluator: the sums grow on the device.
    let exp = experience(0, "test", &[2, 1], 0, 3);
    let v = eval_logits(&mut d, &exp, vec![0.0, 0.0, 1.0, 0.0, 1.0, 0.0], 3);
    let cm = v.iter().find(|x| x.name == "ConfusionMatrix_Stream/eval_phase/test_stream").unwrap();
    assert_eq!(
        cm.data,
        Some(MetricData::ConfusionMatrix { counts: vec![vec![0, 0, 0], vec![0, 1, 0], vec![0, 0, 1]] })
    );
    assert_close!(value(&v, "Top1_ClassAcc_Stream/eval_phase/test_stream/Task000/2"), 1.0);
}

#[test]
fn topk_accuracy() {
    let mut d = Driver::new(EvaluationPlugin::empty().metric(TopkAccuracy::new(TopkConfig::new(2)).unwrap()));
    let exp = experience(0, "test", &[1, 0, 2], 0, 4);
    let b = batch(&[1, 0, 2], &[0, 0, 0], &d.device);
    // True-class ranks: 2nd, 4th, 2nd -> top-2 accuracy 2/3.
    let logits = Tensor::<2>::from_data(
        TensorData::new(vec![3.0f32, 2.0, 1.0, 0.0, 0.0, 1.0, 2.0, 3.0, 0.0, 5.0, 4.0, 3.0], [3, 4]),
        &d.device,
    );
    let loss = Tensor::<1>::from_data(TensorData::new(vec![0.0f32], [1]), &d.device);
    d.call(Callback::BeforeEval, false, Some(&exp), None);
    d.call(Callback::BeforeEvalExp, false, Some(&exp), None);
    d.call(Callback::AfterEvalIteration, false, Some(&exp), Some((&b, &logits, &loss)));
    let v = d.call(Callback::AfterEvalExp, false, Some(&exp), None);
    assert_close!(value(&v, "Topk_2_Acc_Exp/eval_phase/test_stream/Task000/Exp000"), 2.0 / 3.0);
    let v = d.call(Callback::AfterEval, false, Some(&exp), None);
    assert_close!(value(&v, "Topk_2_Acc_Stream/eval_phase/test_stream/Task000"), 2.0 / 3.0);
    assert!(TopkAccuracy::new(TopkConfig::new(0)).is_err());
}

#[test]
fn topk_accuracy_breaks_ties_by_index() {
    let topk = |k: usize, labels: &[u32], logits: Vec<f32>| {
        let mut d = Driver::new(EvaluationPlugin::empty().metric(TopkAccuracy::new(TopkConfig::new(k)).unwrap()));
        let exp = experience(0, "test", labels, 0, 4);
        let v = eval_logits(&mut d, &exp, logits, 4);
        value(&v, &format!("Topk_{k}_Acc_Exp/eval_phase/test_stream/Task000/Exp000"))
    };
    // All logits equal (a fully masked head): ranks follow the index, as torch.topk; labels
    // 0, 1, 3 rank 1st, 2nd, 4th.
    let equal = vec![0.0f32; 12];
    assert_close!(topk(1, &[0, 1, 3], equal.clone()), 1.0 / 3.0);
    assert_close!(topk(2, &[0, 1, 3], equal.clone()), 2.0 / 3.0);
    assert_close!(topk(4, &[0, 1, 3], equal), 1.0);
    // Logits [1, 2, 2, 0]: label 2 ties with index 1 -> rank 2; label 1 -> rank 1;
    // label 3 -> rank 4.
    let tied = [1.0f32, 2.0, 2.0, 0.0].repeat(3);
    assert_close!(topk(1, &[2, 1, 3], tied.clone()), 1.0 / 3.0);
    assert_close!(topk(2, &[2, 1, 3], tied.clone()), 2.0 / 3.0);
    assert_close!(topk(3, &[2, 1, 3], tied), 2.0 / 3.0);
}

#[test]
fn task_aware_and_task_agnostic_accuracy() {
    // One experience holding tasks 0 and 1: task 0 all right, task 1 one of two right.
    let data = cl::core::data::ClassificationDataset::from_f32(vec![0.0; 2], vec![1], vec![0, 1])
        .unwrap()
        .concat(
            &cl::core::data::ClassificationDataset::from_f32(vec![0.0; 2], vec![1], vec![0, 1])
                .unwrap()
                .with_task_label(1),
        )
        .unwrap();
    let exp = cl::core::Experience::new(0, data, "test", 2);
    let preds = vec![0, 1, 0, 0];
    let g = Granularity::DEFAULT;
    let mut agnostic = Driver::new(
        EvaluationPlugin::empty()
            .metric(AccuracyMetrics::new(AccuracyConfig::default().with_accuracy(g).with_loss(Granularity::NONE))),
    );
    let v = agnostic.eval_stream(&[(&exp, preds.clone(), 0.0)], 2);
    // Several task labels: the name has no task part.
    assert_close!(value(&v, "Top1_Acc_Exp/eval_phase/test_stream/Exp000"), 0.75);
    assert_close!(value(&v, "Top1_Acc_Stream/eval_phase/test_stream"), 0.75);
    let mut aware = Driver::new(EvaluationPlugin::empty().metric(AccuracyMetrics::new(
        AccuracyConfig::default().with_accuracy(g).with_loss(Granularity::NONE).with_task_aware(true),
    )));
    let v = aware.eval_stream(&[(&exp, preds, 0.0)], 2);
    assert_close!(value(&v, "Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000"), 1.0);
    assert_close!(value(&v, "Top1_Acc_Exp/eval_phase/test_stream/Task001/Exp000"), 0.5);
    assert_close!(value(&v, "Top1_Acc_Stream/eval_phase/test_stream/Task001"), 0.5);
}

#[test]
fn history_serialises_and_reads_back() {
    let mut d = Driver::new(cl::metrics::all_metrics());
    let stream = test_stream();
    eval_with(&mut d, &stream, [1, 2, 3]);
    train(&mut d, 0);
    eval_with(&mut d, &stream, [9, 4, 2]);
    let json = d.eval.history_json();
    let back = EvaluationPlugin::history_from_json(&json).unwrap();
    assert_eq!(back.len(), d.eval.history().len());
    for (a, b) in back.iter().zip(d.eval.history()) {
        assert_eq!(a.name, b.name);
        assert_eq!(a.x_plot, b.x_plot);
        assert!(a.value == b.value || (a.value.is_nan() && b.value.is_nan()));
        assert_eq!(a.data.is_some(), b.data.is_some());
    }
}
