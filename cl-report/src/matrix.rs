//! The accuracy matrix of a metric history read from a file: [`matrix_from_history`].

use cl_core::evaluation::{AccuracyMatrix, TooLarge};

use crate::history::MetricRecord;

/// The [`AccuracyMatrix`] (`cl_core`'s, the one of `cl`) of a history
/// read from a file, on stream `stream` (e.g. `"test"`).
///
/// **Rule** (that of [`AccuracyMatrix::from_history`]). Only
/// `Top1_Acc_Exp/eval_phase/<stream>_stream[/Task<t>]/Exp<j>` values count. `x_plot` is the
/// number of training iterations done when a value was emitted, so every value of one evaluation
/// (one `eval` call on the stream) shares one `x_plot`, and training in between makes it grow.
/// An *eval phase* is therefore a run of consecutive such values with the same `x_plot`; row `i`
/// of the matrix is the `i`-th eval phase with `x_plot > 0` (an evaluation before any training is
/// not "after training on" anything, it only shows in the curves). With the usual loop — train
/// on experience `i`, then evaluate the test stream — row `i` is "after training on experience
/// `i`", i.e. R\[i\]\[j\] = accuracy on experience `j` after training on experience `i`. Column
/// `j` is experience `j` (the `Exp<j>` index; task labels are not part of it); there are as many
/// columns as the largest index + 1. A cell evaluated twice in one phase keeps the last value;
/// one never evaluated (or `NaN`) is `None` in [`measured_rows`](AccuracyMatrix::measured_rows).
///
/// ```
/// use cl_report::{MetricRecord, matrix_from_history};
/// let r = |name: &str, value, x_plot| MetricRecord { name: name.into(), value, x_plot };
/// let history = [
///     r("Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000", 0.9, 10),
///     r("Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp001", 0.1, 10),
///     r("Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000", 0.6, 20),
///     r("Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp001", 0.8, 20),
/// ];
/// let m = matrix_from_history(&history, "test").unwrap();
/// assert_eq!(m.measured_rows(), vec![vec![Some(0.9), Some(0.1)], vec![Some(0.6), Some(0.8)]]);
/// assert_eq!(m.x_plot(), &[10, 20]);
/// ```
///
/// # Errors
/// [`TooLarge`] if it would have more than [`AccuracyMatrix::MAX_CELLS`] cells (such as a
/// corrupt experience index `Exp4000000000`).
pub fn matrix_from_history(history: &[MetricRecord], stream: &str) -> Result<AccuracyMatrix, TooLarge> {
    AccuracyMatrix::from_experience_accuracies(exp_accuracies(history, stream))
}

/// `(x_plot, experience, value)` of every `Top1_Acc_Exp/eval_phase/<stream>_stream/.../Exp<j>`
/// value, in history order (names read by [`AccuracyMatrix::experience_of`]; other names are
/// skipped).
pub(crate) fn exp_accuracies<'a>(
    history: &'a [MetricRecord],
    stream: &'a str,
) -> impl Iterator<Item = (u64, usize, f64)> + 'a {
    history.iter().filter_map(move |r| Some((r.x_plot, AccuracyMatrix::experience_of(&r.name, stream)?, r.value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str, value: f64, x_plot: u64) -> MetricRecord {
        MetricRecord { name: name.into(), value, x_plot }
    }

    #[test]
    fn phases_split_on_x_plot_and_skip_before_training() {
        let exp = |j: usize| format!("Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp{j:03}");
        let history = vec![
            rec(&exp(0), 0.1, 0), // before training: not a row
            rec(&exp(1), 0.1, 0),
            rec("Top1_Acc_Epoch/train_phase/train_stream/Task000", 0.7, 5),
            rec(&exp(0), 0.95, 5),
            rec("Loss_Exp/eval_phase/test_stream/Task000/Exp000", 0.2, 5),
            rec(&exp(1), 0.0, 5),
            rec("Top1_Acc_Stream/eval_phase/test_stream/Task000", 0.47, 5),
            rec(&exp(0), 0.9, 5), // evaluated again at the same x: last value wins
            rec(&exp(0), 0.5, 9),
            rec("Top1_Acc_Exp/eval_phase/train_stream/Task000/Exp001", 0.99, 9), // other stream
            rec(&exp(1), 0.85, 9),
        ];
        let m = matrix_from_history(&history, "test").unwrap();
        assert_eq!(m.measured_rows(), vec![vec![Some(0.9), Some(0.0)], vec![Some(0.5), Some(0.85)]]);
        assert_eq!(m.x_plot(), &[5, 9]);
        assert!((m.final_average_accuracy().unwrap() - 0.675).abs() < 1e-12);
        assert!((m.forgetting().unwrap() - 0.4).abs() < 1e-12);
        let train = matrix_from_history(&history, "train").unwrap();
        assert_eq!(train.measured_rows(), vec![vec![None, Some(0.99)]]);
        assert_eq!(train.forgetting(), None);
    }

    #[test]
    fn names_without_the_layout_are_skipped() {
        let history = [
            rec("Top1_Acc_Exp/eval/test_stream/Exp000", 0.1, 1),
            rec("Top1_Acc_Exp/eval_phase/test_stream/Exp001/Task000", 0.2, 1),
            rec("Top1_Acc_Exp/eval_phase/test_stream/Task000", 0.3, 1),
            rec("Top1_Acc_Exp/train_phase/test_stream/Task000/Exp000", 0.4, 1),
            rec("not a metric", 0.5, 1),
            rec("Top1_Acc_Exp/eval_phase/test_stream/Task1/Exp1", 0.6, 1),
        ];
        let m = matrix_from_history(&history, "test").unwrap();
        assert_eq!(m.measured_rows(), vec![vec![None, Some(0.6)]]);
    }

    #[test]
    fn empty_and_missing_cells() {
        let m = matrix_from_history(&[], "test").unwrap();
        assert!(m.is_empty() && m.n_rows() == 0 && m.final_average_accuracy().is_none());
        let m = matrix_from_history(&[rec("Top1_Acc_Exp/eval_phase/test_stream/Exp002", 0.5, 1)], "test").unwrap();
        assert_eq!(m.measured_rows(), vec![vec![None, None, Some(0.5)]]);
        assert_eq!(m.measured(0, 2), Some(0.5));
        assert_eq!(m.measured(0, 0), None);
        assert_eq!(m.measured(7, 7), None);
        let corrupt = [rec("Top1_Acc_Exp/eval_phase/test_stream/Exp4000000000", 0.5, 1)];
        assert_eq!(matrix_from_history(&corrupt, "test"), Err(TooLarge { rows: 1, cols: 4_000_000_001 }));
    }
}
