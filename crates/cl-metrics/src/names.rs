//! Metric names exactly as Avalanche writes them.

/// `Top1_Acc_Stream/eval_phase/test_stream/Task000`-style names.
///
/// ```
/// use cl_metrics::names::metric_name;
/// assert_eq!(
///     metric_name("Top1_Acc_Exp", false, "test", 0, Some(2)),
///     "Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp002"
/// );
/// ```
pub fn metric_name(metric: &str, training: bool, stream: &str, task: u32, experience: Option<usize>) -> String {
    let phase = if training { "train_phase" } else { "eval_phase" };
    match experience {
        Some(e) => format!("{metric}/{phase}/{stream}_stream/Task{task:03}/Exp{e:03}"),
        None => format!("{metric}/{phase}/{stream}_stream/Task{task:03}"),
    }
}

/// Name of the experience accuracy on the test stream, the most read metric.
pub fn test_exp_accuracy(task: u32, experience: usize) -> String {
    metric_name("Top1_Acc_Exp", false, "test", task, Some(experience))
}

/// Name of the stream accuracy on the test stream.
pub fn test_stream_accuracy(task: u32) -> String {
    metric_name("Top1_Acc_Stream", false, "test", task, None)
}
