//! Metric names exactly as Avalanche writes them.

/// `Top1_Acc_Stream/eval_phase/test_stream/Task000`-style names (Avalanche's
/// `default_metric_name_template`): the task part is left out when `task` is `None` (an
/// experience with several task labels), the experience part when `experience` is `None`.
///
/// ```
/// use cl_metrics::names::metric_name;
/// assert_eq!(
///     metric_name("Top1_Acc_Exp", false, "test", Some(0), Some(2)),
///     "Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp002"
/// );
/// assert_eq!(metric_name("Loss_Epoch", true, "train", None, None), "Loss_Epoch/train_phase/train_stream");
/// ```
pub fn metric_name(metric: &str, training: bool, stream: &str, task: Option<u32>, experience: Option<usize>) -> String {
    let phase = if training { "train_phase" } else { "eval_phase" };
    let mut name = format!("{metric}/{phase}/{stream}_stream");
    if let Some(t) = task {
        name.push_str(&format!("/Task{t:03}"));
    }
    if let Some(e) = experience {
        name.push_str(&format!("/Exp{e:03}"));
    }
    name
}

/// Name of the experience accuracy on the test stream, the most read metric.
pub fn test_exp_accuracy(task: u32, experience: usize) -> String {
    metric_name("Top1_Acc_Exp", false, "test", Some(task), Some(experience))
}

/// Name of the stream accuracy on the test stream.
pub fn test_stream_accuracy(task: u32) -> String {
    metric_name("Top1_Acc_Stream", false, "test", Some(task), None)
}
