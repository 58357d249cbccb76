//! [`AccuracyMatrix`]: the accuracy matrix derived from a metric history.
//!
//! **Rule.** Only `Top1_Acc_Exp/eval_phase/<stream>_stream[/Task<t>]/Exp<j>` values count
//! (`<stream>` is `test` by default). `x_plot` is the number of training iterations done when a
//! value was emitted, so every value of one evaluation (one `eval` call on the stream) shares
//! one `x_plot`, and training in between makes it grow. An *eval phase* is therefore a run of
//! consecutive such values with the same `x_plot`; row `i` of the matrix is the `i`-th eval phase
//! with `x_plot > 0` (an evaluation before any training is not "after training on" anything, it
//! only shows in the curves). With the usual loop — train on experience `i`, then evaluate the
//! test stream — row `i` is "after training on experience `i`", i.e. R\[i\]\[j\] = accuracy on
//! experience `j` after training on experience `i`. Column `j` is experience `j` (the `Exp<j>`
//! index; task labels are not part of it); there are as many columns as the largest index + 1.
//! A cell evaluated twice in one phase keeps the last value; one never evaluated (or `NaN`) is
//! `None`.

use crate::history::{MetricName, MetricRecord};

/// The most cells [`AccuracyMatrix::from_history`] builds (e.g. 500 eval phases × 500
/// experiences); more is taken for a corrupt history.
pub const MAX_CELLS: usize = 250_000;

/// The history's matrix would have more than [`MAX_CELLS`] cells.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the accuracy matrix would be {rows} × {cols} (eval phases × experiences), over {max} cells", max = MAX_CELLS)]
pub struct TooLarge {
    /// Eval phases.
    pub rows: usize,
    /// Experiences (largest index + 1).
    pub cols: usize,
}

/// The metric read by the matrix and the curves.
pub(crate) const EXP_ACCURACY: &str = "Top1_Acc_Exp";

/// R\[i\]\[j\] = accuracy on experience `j` after the `i`-th eval phase (see the module docs).
///
/// ```
/// use cl_report::{AccuracyMatrix, MetricRecord};
/// let r = |name: &str, value, x_plot| MetricRecord { name: name.into(), value, x_plot };
/// let history = [
///     r("Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000", 0.9, 10),
///     r("Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp001", 0.1, 10),
///     r("Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000", 0.6, 20),
///     r("Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp001", 0.8, 20),
/// ];
/// let m = AccuracyMatrix::from_history(&history, "test").unwrap();
/// assert_eq!(m.rows(), &[vec![Some(0.9), Some(0.1)], vec![Some(0.6), Some(0.8)]]);
/// assert_eq!(m.x_plot(), &[10, 20]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AccuracyMatrix {
    rows: Vec<Vec<Option<f64>>>,
    x_plot: Vec<u64>,
}

impl AccuracyMatrix {
    /// Derives the matrix from `history` on stream `stream` (e.g. `"test"`), by the rule of the
    /// module docs.
    ///
    /// # Errors
    /// [`TooLarge`] if it would have more than [`MAX_CELLS`] cells (such as a corrupt
    /// experience index `Exp4000000000`).
    pub fn from_history(history: &[MetricRecord], stream: &str) -> Result<Self, TooLarge> {
        let mut phases: Vec<(u64, Vec<(usize, f64)>)> = Vec::new();
        for (x, j, value) in exp_accuracies(history, stream) {
            match phases.last_mut() {
                Some((last_x, cells)) if *last_x == x => cells.push((j, value)),
                _ => phases.push((x, vec![(j, value)])),
            }
        }
        phases.retain(|(x, _)| *x > 0);
        let n_cols = phases.iter().flat_map(|(_, c)| c.iter().map(|(j, _)| j.saturating_add(1))).max().unwrap_or(0);
        if phases.len().saturating_mul(n_cols) > MAX_CELLS {
            return Err(TooLarge { rows: phases.len(), cols: n_cols });
        }
        let mut rows = Vec::with_capacity(phases.len());
        let mut x_plot = Vec::with_capacity(phases.len());
        for (x, cells) in phases {
            let mut row = vec![None; n_cols];
            for (j, value) in cells {
                row[j] = value.is_finite().then_some(value);
            }
            rows.push(row);
            x_plot.push(x);
        }
        Ok(Self { rows, x_plot })
    }

    /// A matrix from given rows (`None`: not measured), e.g. a bench record's
    /// `accuracy_matrix`; `x_plot` is left empty.
    pub fn from_rows(rows: Vec<Vec<Option<f64>>>) -> Self {
        Self { rows, x_plot: Vec::new() }
    }

    /// The rows: `rows()[i][j]` = R\[i\]\[j\].
    pub fn rows(&self) -> &[Vec<Option<f64>>] {
        &self.rows
    }

    /// `x_plot` (training iterations) of each row's eval phase; empty for [`from_rows`](Self::from_rows).
    pub fn x_plot(&self) -> &[u64] {
        &self.x_plot
    }

    /// Number of rows (eval phases).
    pub fn n_rows(&self) -> usize {
        self.rows.len()
    }

    /// Number of columns (experiences): the longest row.
    pub fn n_cols(&self) -> usize {
        self.rows.iter().map(Vec::len).max().unwrap_or(0)
    }

    /// Whether there is no measured cell.
    pub fn is_empty(&self) -> bool {
        self.rows.iter().all(|r| r.iter().all(Option::is_none))
    }

    /// R\[i\]\[j\], `None` when not measured or out of range.
    pub fn get(&self, i: usize, j: usize) -> Option<f64> {
        self.rows.get(i)?.get(j).copied().flatten()
    }

    /// Mean of the measured cells of the last row; `None` without any.
    pub fn final_average_accuracy(&self) -> Option<f64> {
        let last = self.rows.last()?;
        mean(last.iter().flatten().copied())
    }

    /// Average forgetting after the last row: mean over `j < n-1` of R\[j\]\[j\] − R\[n-1\]\[j\]
    /// (as `cl_metrics::AccuracyMatrix::forgetting`), over the `j` where both are measured;
    /// `None` unless the matrix is square with at least two rows.
    pub fn forgetting(&self) -> Option<f64> {
        let n = self.n_rows();
        if n < 2 || self.n_cols() != n {
            return None;
        }
        mean((0..n - 1).filter_map(|j| Some(self.get(j, j)? - self.get(n - 1, j)?)))
    }
}

/// `(x_plot, experience, value)` of every `Top1_Acc_Exp/eval_phase/<stream>_stream/.../Exp<j>`
/// value, in history order.
pub(crate) fn exp_accuracies<'a>(
    history: &'a [MetricRecord],
    stream: &'a str,
) -> impl Iterator<Item = (u64, usize, f64)> + 'a {
    history.iter().filter_map(move |r| {
        let n = MetricName::parse(&r.name)?;
        if n.metric != EXP_ACCURACY || n.phase != "eval" || n.stream != stream {
            return None;
        }
        Some((r.x_plot, n.experience?, r.value))
    })
}

/// Mean of `values`; `None` when empty.
fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    (count > 0).then(|| sum / count as f64)
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
        let m = AccuracyMatrix::from_history(&history, "test").unwrap();
        assert_eq!(m.rows(), &[vec![Some(0.9), Some(0.0)], vec![Some(0.5), Some(0.85)]]);
        assert_eq!(m.x_plot(), &[5, 9]);
        assert!((m.final_average_accuracy().unwrap() - 0.675).abs() < 1e-12);
        assert!((m.forgetting().unwrap() - 0.4).abs() < 1e-12);
        let train = AccuracyMatrix::from_history(&history, "train").unwrap();
        assert_eq!(train.rows(), &[vec![None, Some(0.99)]]);
        assert_eq!(train.forgetting(), None);
    }

    #[test]
    fn empty_and_missing_cells() {
        let m = AccuracyMatrix::from_history(&[], "test").unwrap();
        assert!(m.is_empty() && m.n_rows() == 0 && m.final_average_accuracy().is_none());
        let m =
            AccuracyMatrix::from_history(&[rec("Top1_Acc_Exp/eval_phase/test_stream/Exp002", 0.5, 1)], "test").unwrap();
        assert_eq!(m.rows(), &[vec![None, None, Some(0.5)]]);
        assert_eq!(m.get(0, 2), Some(0.5));
        assert_eq!(m.get(0, 0), None);
        assert_eq!(m.get(7, 7), None);
        let corrupt = [rec("Top1_Acc_Exp/eval_phase/test_stream/Exp4000000000", 0.5, 1)];
        assert_eq!(AccuracyMatrix::from_history(&corrupt, "test"), Err(TooLarge { rows: 1, cols: 4_000_000_001 }));
    }
}
