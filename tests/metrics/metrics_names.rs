//! Metric names follow Avalanche's scheme exactly for the keys both emit.

use crate::support::*;

#[test]
fn all_metrics_emit_avalanche_names() {
    let mut d = Driver::new(cl::metrics::all_metrics());
    let test: Vec<_> = (0..2).map(|e| experience(e, "test", &[2 * e as u32, 2 * e as u32 + 1], 0, 4)).collect();
    let eval = |d: &mut Driver| {
        let exps: Vec<_> = test.iter().map(|e| (e, e.dataset.targets(), 0.3)).collect();
        d.eval_stream(&exps, 4)
    };
    eval(&mut d);
    for e in 0..2u32 {
        let exp = experience(e as usize, "train", &[2 * e, 2 * e + 1], 0, 4);
        d.train(&exp, &[vec![(vec![2 * e, 2 * e + 1], vec![2 * e, 2 * e], 0.7)]], 4);
        eval(&mut d);
    }
    let names: std::collections::BTreeSet<&str> = d.eval.history().iter().map(|v| v.name.as_str()).collect();
    for want in [
        "Top1_Acc_Epoch/train_phase/train_stream/Task000",
        "Top1_RunningAcc_Epoch/train_phase/train_stream/Task000",
        "Loss_Epoch/train_phase/train_stream/Task000",
        "RunningLoss_Epoch/train_phase/train_stream/Task000",
        "Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp001",
        "Loss_Exp/eval_phase/test_stream/Task000/Exp000",
        "Top1_Acc_Stream/eval_phase/test_stream/Task000",
        "Loss_Stream/eval_phase/test_stream/Task000",
        "Accuracy_On_Trained_Experiences/eval_phase/test_stream/Task000",
        "Topk_5_Acc_Epoch/train_phase/train_stream/Task000",
        "Topk_5_Acc_Exp/eval_phase/test_stream/Task000/Exp000",
        "Topk_5_Acc_Stream/eval_phase/test_stream/Task000",
        "Top1_ClassAcc_Epoch/train_phase/train_stream/Task000/0",
        "Top1_ClassAcc_Exp/eval_phase/test_stream/Task000/Exp001/3",
        "Top1_ClassAcc_Stream/eval_phase/test_stream/Task000/2",
        "Top1_AMCA_Stream/test_stream/Task000",
        "ExperienceForgetting/eval_phase/test_stream/Task000/Exp000",
        "StreamForgetting/eval_phase/test_stream",
        "ExperienceBWT/eval_phase/test_stream/Task000/Exp000",
        "StreamBWT/eval_phase/test_stream",
        "ExperienceForwardTransfer/eval_phase/test_stream/Task000/Exp001",
        "StreamForwardTransfer/eval_phase/test_stream",
        "ConfusionMatrix_Stream/eval_phase/test_stream",
        "Time_Epoch/train_phase/train_stream/Task000",
        "Time_Exp/eval_phase/test_stream/Task000/Exp000",
        "Time_Stream/eval_phase/test_stream/Task000",
        "MaxRAMUsage_Epoch/train_phase/train_stream/Task000",
        "MaxRAMUsage_Experience/eval_phase/test_stream/Task000/Exp001",
        "MaxRAMUsage_Stream/eval_phase/test_stream/Task000",
        "CPUUsage_Epoch/train_phase/train_stream/Task000",
        "CPUUsage_Exp/eval_phase/test_stream/Task000/Exp000",
        "CPUUsage_Stream/eval_phase/test_stream/Task000",
        "MAC_Epoch/train_phase/train_stream/Task000",
        "MAC_Exp/eval_phase/test_stream/Task000/Exp000",
        // Avalanche's `accuracy_matrix_metrics` name, without phase or stream.
        "EvalStream/Acc_Matrix",
        // Not in Avalanche; named in its scheme.
        "ModelParams_Exp/train_phase/train_stream/Task000/Exp001",
        "ModelBytes_Exp/train_phase/train_stream/Task000/Exp001",
    ] {
        assert!(names.contains(want), "missing {want}; have {names:#?}");
    }
    let h = d.eval.history();
    // The driver's model is a Linear 4 -> 3: 12 MACs per sample, 15 parameters of 4 bytes.
    assert_eq!(value(h, "MAC_Epoch/train_phase/train_stream/Task000"), 12.0);
    assert_eq!(value(h, "ModelParams_Exp/train_phase/train_stream/Task000/Exp001"), 15.0);
    assert_eq!(value(h, "ModelBytes_Exp/train_phase/train_stream/Task000/Exp001"), 60.0);
    // The process uses some memory (MiB) and times are non-negative.
    assert!(value(h, "MaxRAMUsage_Stream/eval_phase/test_stream/Task000") > 1.0);
    assert!(value(h, "Time_Epoch/train_phase/train_stream/Task000") >= 0.0);
    assert!(value(h, "CPUUsage_Stream/eval_phase/test_stream/Task000") >= 0.0);
}
