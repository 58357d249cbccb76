//! [`AccuracyMatrix`]: R\[i\]\[j\] = accuracy on experience `j` after training on experience `i`,
//! filled by hand or derived from a metric history, and the summaries derived from it.

use serde::{Deserialize, Serialize};

use super::names::{MetricName, Phase};
use super::value::MetricValue;

/// An index of [`AccuracyMatrix::try_get`] / [`AccuracyMatrix::try_set`] out of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("index [{after}][{on}] out of range for a {rows}x{cols} accuracy matrix")]
pub struct IndexOutOfRange {
    /// The row (training experience) asked for.
    pub after: usize,
    /// The column (evaluated experience) asked for.
    pub on: usize,
    /// The matrix's number of rows.
    pub rows: usize,
    /// The matrix's number of columns.
    pub cols: usize,
}

/// The history's matrix ([`AccuracyMatrix::from_history`]) would have more than
/// [`AccuracyMatrix::MAX_CELLS`] cells.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the accuracy matrix would be {rows} × {cols} (eval phases × experiences), over {max} cells",
    max = AccuracyMatrix::MAX_CELLS
)]
pub struct TooLarge {
    /// Eval phases.
    pub rows: usize,
    /// Experiences (largest index + 1).
    pub cols: usize,
}

/// The accuracy matrix of a run: R\[i\]\[j\] = accuracy on experience `j` after training on
/// experience `i` (`NaN` where not measured), the one type used by the metrics, the report and
/// the bench.
///
/// Built by hand ([`new`](Self::new) and [`set`](Self::set), after each `eval`), from the rows of
/// the `EvalStream/Acc_Matrix` metric value ([`from_rows`](Self::from_rows)), or from a whole
/// metric history ([`from_history`](Self::from_history), which also keeps each row's `x_plot`).
/// The summaries skip cells that were not measured.
///
/// ```
/// use cl_core::evaluation::AccuracyMatrix;
/// let mut r = AccuracyMatrix::new(2);
/// r.set(0, 0, 0.9); r.set(0, 1, 0.0);
/// r.set(1, 0, 0.5); r.set(1, 1, 0.8);
/// assert!((r.average_accuracy(1).unwrap() - 0.65).abs() < 1e-12);
/// assert!((r.forgetting().unwrap() - 0.4).abs() < 1e-12);
/// assert!((r.backward_transfer().unwrap() + 0.4).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccuracyMatrix {
    /// Rectangular; `NaN` (`null` when serialised) where not measured.
    #[serde(serialize_with = "super::value::rows_nan_as_null", deserialize_with = "super::value::rows_null_as_nan")]
    rows: Vec<Vec<f64>>,
    /// `x_plot` of each row's eval phase ([`from_history`](Self::from_history)), else empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    x_plot: Vec<u64>,
}

impl AccuracyMatrix {
    /// The most cells [`from_history`](Self::from_history) builds (e.g. 500 eval phases × 500
    /// experiences); more is taken for a corrupt history.
    pub const MAX_CELLS: usize = 250_000;

    /// An `n × n` matrix with nothing measured.
    pub fn new(n: usize) -> Self {
        Self { rows: vec![vec![f64::NAN; n]; n], x_plot: Vec::new() }
    }

    /// A matrix from its rows (e.g. the `rows` of the `EvalStream/Acc_Matrix` metric value, or
    /// a bench record's `accuracy_matrix`); a ragged input is padded with `NaN` to a square of
    /// the largest size.
    pub fn from_rows(rows: Vec<Vec<f64>>) -> Self {
        let n = rows.iter().map(Vec::len).max().unwrap_or(0).max(rows.len());
        let mut rows = rows;
        rows.resize(n, Vec::new());
        for r in rows.iter_mut() {
            r.resize(n, f64::NAN);
        }
        Self { rows, x_plot: Vec::new() }
    }

    /// Derives the matrix from a metric `history` (what the evaluator records, or a file read
    /// back) on the stream `stream` (e.g. `"test"`).
    ///
    /// **Rule.** Only `Top1_Acc_Exp/eval_phase/<stream>_stream[/Task<t>]/Exp<j>` values count
    /// ([`experience_accuracies`](Self::experience_accuracies)). `x_plot` is the number of
    /// training iterations done when a value was emitted, so every value of one evaluation (one
    /// `eval` call on the stream) shares one `x_plot`, and training in between makes it grow. An
    /// *eval phase* is therefore a run of consecutive such values with the same `x_plot`; row
    /// `i` of the matrix is the `i`-th eval phase with `x_plot > 0` (an evaluation before any
    /// training is not "after training on" anything). With the usual loop — train on
    /// experience `i`, then evaluate the test stream — row `i` is "after training on experience
    /// `i`". Column `j` is experience `j` (the `Exp<j>` index; task labels are not part of it);
    /// there are as many columns as the largest index + 1. A cell evaluated twice in one phase
    /// keeps the last value; one never evaluated (or `NaN`) is not measured.
    ///
    /// # Errors
    /// [`TooLarge`] if it would have more than [`MAX_CELLS`](Self::MAX_CELLS) cells (such as a
    /// corrupt experience index `Exp4000000000`).
    ///
    /// ```
    /// use cl_core::evaluation::{AccuracyMatrix, MetricName, MetricValue};
    /// let acc = |j: usize, value, x_plot| MetricValue::scalar(MetricName::test_exp_accuracy(0, j).to_string(), value, x_plot);
    /// let history = [acc(0, 0.9, 10), acc(1, 0.1, 10), acc(0, 0.6, 20), acc(1, 0.8, 20)];
    /// let m = AccuracyMatrix::from_history(&history, "test").unwrap();
    /// assert_eq!(m.rows(), &[vec![0.9, 0.1], vec![0.6, 0.8]]);
    /// assert_eq!(m.x_plot(), &[10, 20]);
    /// ```
    pub fn from_history(history: &[MetricValue], stream: &str) -> Result<Self, TooLarge> {
        Self::from_experience_accuracies(Self::experience_accuracies(history, stream))
    }

    /// The matrix of `(x_plot, experience, accuracy)` values in history order, by the rule of
    /// [`from_history`](Self::from_history) (consecutive values with one `x_plot` form a row;
    /// rows with `x_plot = 0` are left out): for histories read from elsewhere (e.g. the report's
    /// JSON records).
    pub fn from_experience_accuracies(values: impl IntoIterator<Item = (u64, usize, f64)>) -> Result<Self, TooLarge> {
        let mut phases: Vec<(u64, Vec<(usize, f64)>)> = Vec::new();
        for (x, j, value) in values {
            match phases.last_mut() {
                Some((last_x, cells)) if *last_x == x => cells.push((j, value)),
                _ => phases.push((x, vec![(j, value)])),
            }
        }
        phases.retain(|(x, _)| *x > 0);
        let n_cols = phases.iter().flat_map(|(_, c)| c.iter().map(|(j, _)| j.saturating_add(1))).max().unwrap_or(0);
        if phases.len().saturating_mul(n_cols) > Self::MAX_CELLS {
            return Err(TooLarge { rows: phases.len(), cols: n_cols });
        }
        let mut rows = Vec::with_capacity(phases.len());
        let mut x_plot = Vec::with_capacity(phases.len());
        for (x, cells) in phases {
            let mut row = vec![f64::NAN; n_cols];
            for (j, value) in cells {
                row[j] = value;
            }
            rows.push(row);
            x_plot.push(x);
        }
        Ok(Self { rows, x_plot })
    }

    /// `(x_plot, experience, value)` of every `Top1_Acc_Exp/eval_phase/<stream>_stream/.../Exp<j>`
    /// value of `history`, in history order (names without that layout are skipped): the values
    /// [`from_history`](Self::from_history) reads.
    pub fn experience_accuracies<'a>(
        history: &'a [MetricValue],
        stream: &'a str,
    ) -> impl Iterator<Item = (u64, usize, f64)> + 'a {
        history.iter().filter_map(move |v| Some((v.x_plot, Self::experience_of(&v.name, stream)?, v.value)))
    }

    /// The experience `j` of a value named `name` if it is one that
    /// [`from_history`](Self::from_history) reads on `stream`
    /// (`Top1_Acc_Exp/eval_phase/<stream>_stream[/Task<t>]/Exp<j>`, read with [`MetricName`]),
    /// else `None`: for histories whose values are not [`MetricValue`]s (e.g. the report's JSON
    /// records), with [`from_experience_accuracies`](Self::from_experience_accuracies).
    ///
    /// ```
    /// use cl_core::evaluation::AccuracyMatrix;
    /// assert_eq!(AccuracyMatrix::experience_of("Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp002", "test"), Some(2));
    /// assert_eq!(AccuracyMatrix::experience_of("Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp002", "train"), None);
    /// assert_eq!(AccuracyMatrix::experience_of("Loss_Exp/eval_phase/test_stream/Task000/Exp002", "test"), None);
    /// ```
    pub fn experience_of(name: &str, stream: &str) -> Option<usize> {
        let n: MetricName = name.parse().ok()?;
        if n.metric != EXP_ACCURACY || n.phase != Some(Phase::Eval) || n.stream.as_deref() != Some(stream) {
            return None;
        }
        n.experience
    }

    /// Number of rows (training experiences, or eval phases of a history).
    pub fn n_rows(&self) -> usize {
        self.rows.len()
    }

    /// Number of columns (evaluated experiences).
    pub fn n_cols(&self) -> usize {
        self.rows.first().map_or(0, Vec::len)
    }

    /// Whether no cell is measured (also for a 0 × 0 matrix).
    pub fn is_empty(&self) -> bool {
        self.rows.iter().flatten().all(|v| v.is_nan())
    }

    /// Sets R\[after\]\[on\]. See [`try_set`](Self::try_set) for a version that does not panic.
    ///
    /// # Panics
    /// If `after` is not below [`n_rows`](Self::n_rows) or `on` not below
    /// [`n_cols`](Self::n_cols) (the message names the indices and the size).
    pub fn set(&mut self, after: usize, on: usize, accuracy: f64) {
        if let Err(e) = self.try_set(after, on, accuracy) {
            panic!("AccuracyMatrix::set: {e}");
        }
    }

    /// R\[after\]\[on\] (`NaN` if not measured). See [`try_get`](Self::try_get) for a version
    /// that does not panic, [`measured`](Self::measured) for an `Option`.
    ///
    /// # Panics
    /// If `after` is not below [`n_rows`](Self::n_rows) or `on` not below
    /// [`n_cols`](Self::n_cols) (the message names the indices and the size).
    pub fn get(&self, after: usize, on: usize) -> f64 {
        self.try_get(after, on).unwrap_or_else(|e| panic!("AccuracyMatrix::get: {e}"))
    }

    /// Sets R\[after\]\[on\], or [`IndexOutOfRange`] if the cell is outside the matrix (the
    /// matrix is left unchanged).
    ///
    /// ```
    /// use cl_core::evaluation::AccuracyMatrix;
    /// let mut r = AccuracyMatrix::new(2);
    /// assert!(r.try_set(1, 0, 0.5).is_ok());
    /// let e = r.try_set(2, 0, 0.5).unwrap_err();
    /// assert_eq!((e.after, e.on, e.rows, e.cols), (2, 0, 2, 2));
    /// ```
    pub fn try_set(&mut self, after: usize, on: usize, accuracy: f64) -> Result<(), IndexOutOfRange> {
        let e = self.out_of_range(after, on);
        match self.rows.get_mut(after).and_then(|r| r.get_mut(on)) {
            Some(v) => {
                *v = accuracy;
                Ok(())
            }
            None => Err(e),
        }
    }

    /// R\[after\]\[on\] (`NaN` if not measured), or [`IndexOutOfRange`] if the cell is outside
    /// the matrix.
    pub fn try_get(&self, after: usize, on: usize) -> Result<f64, IndexOutOfRange> {
        self.rows.get(after).and_then(|r| r.get(on)).copied().ok_or(self.out_of_range(after, on))
    }

    fn out_of_range(&self, after: usize, on: usize) -> IndexOutOfRange {
        IndexOutOfRange { after, on, rows: self.n_rows(), cols: self.n_cols() }
    }

    /// R\[i\]\[j\], `None` when not measured (`NaN`) or outside the matrix.
    pub fn measured(&self, i: usize, j: usize) -> Option<f64> {
        self.rows.get(i)?.get(j).copied().filter(|v| !v.is_nan())
    }

    /// The rows: `rows()[i][j]` = R\[i\]\[j\], `NaN` where not measured.
    pub fn rows(&self) -> &[Vec<f64>] {
        &self.rows
    }

    /// The rows with `None` where not measured.
    pub fn measured_rows(&self) -> Vec<Vec<Option<f64>>> {
        self.rows.iter().map(|r| r.iter().map(|v| (!v.is_nan()).then_some(*v)).collect()).collect()
    }

    /// `x_plot` (training iterations) of each row's eval phase for a matrix
    /// [`from_history`](Self::from_history); empty otherwise.
    pub fn x_plot(&self) -> &[u64] {
        &self.x_plot
    }

    /// Mean of the measured cells of row `after` (Avalanche's stream accuracy after training
    /// on experience `after` when the experiences are the same size); `None` when the row has
    /// no measured cell or does not exist.
    pub fn average_accuracy(&self, after: usize) -> Option<f64> {
        mean(self.rows.get(after)?.iter().copied().filter(|v| !v.is_nan()))
    }

    /// [`average_accuracy`](Self::average_accuracy) of the last row.
    pub fn final_average_accuracy(&self) -> Option<f64> {
        self.average_accuracy(self.n_rows().checked_sub(1)?)
    }

    /// Average forgetting after the last row: mean over `j < n-1` of R\[j\]\[j\] − R\[n-1\]\[j\]
    /// (Avalanche's `StreamForgetting` after the last experience), over the `j` where both are
    /// measured; `None` unless the matrix is square with at least two rows and one such `j`.
    pub fn forgetting(&self) -> Option<f64> {
        let n = self.n_rows();
        if n < 2 || self.n_cols() != n {
            return None;
        }
        mean((0..n - 1).filter_map(|j| Some(self.measured(j, j)? - self.measured(n - 1, j)?)))
    }

    /// Backward transfer (Lopez-Paz & Ranzato): mean over `j < n-1` of R\[n-1\]\[j\] −
    /// R\[j\]\[j\], i.e. the negated [`forgetting`](Self::forgetting).
    pub fn backward_transfer(&self) -> Option<f64> {
        self.forgetting().map(|f| -f)
    }
}

/// The metric [`AccuracyMatrix::from_history`] reads.
const EXP_ACCURACY: &str = "Top1_Acc_Exp";

/// Mean of `values`; `None` when empty.
fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    (count > 0).then(|| sum / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_indices_are_typed_errors() {
        let mut r = AccuracyMatrix::new(2);
        assert_eq!(r.try_set(1, 1, 0.25), Ok(()));
        assert_eq!(r.try_get(1, 1), Ok(0.25));
        assert!(r.try_get(0, 1).unwrap().is_nan());
        let e = IndexOutOfRange { after: 0, on: 2, rows: 2, cols: 2 };
        assert_eq!(r.try_set(0, 2, 1.0), Err(e));
        assert_eq!(r.try_get(0, 2), Err(e));
        assert_eq!(r.try_get(5, 0), Err(IndexOutOfRange { after: 5, on: 0, rows: 2, cols: 2 }));
        assert_eq!(e.to_string(), "index [0][2] out of range for a 2x2 accuracy matrix");
    }

    #[test]
    #[should_panic(expected = "AccuracyMatrix::set: index [2][0] out of range for a 2x2 accuracy matrix")]
    fn set_out_of_range_panics_with_the_indices() {
        AccuracyMatrix::new(2).set(2, 0, 1.0);
    }

    #[test]
    #[should_panic(expected = "AccuracyMatrix::get: index [0][3] out of range")]
    fn get_out_of_range_panics_with_the_indices() {
        AccuracyMatrix::new(2).get(0, 3);
    }

    #[test]
    fn summaries_skip_unmeasured_cells() {
        let mut r = AccuracyMatrix::new(3);
        assert!(r.is_empty());
        assert_eq!((r.average_accuracy(0), r.final_average_accuracy(), r.forgetting()), (None, None, None));
        r.set(0, 0, 0.9);
        r.set(1, 1, 0.8);
        r.set(2, 0, 0.5);
        r.set(2, 2, 0.7);
        assert!(!r.is_empty());
        assert!((r.average_accuracy(2).unwrap() - 0.6).abs() < 1e-12);
        assert_eq!(r.average_accuracy(3), None);
        // Only experience 0 has both R[0][0] and R[2][0].
        assert!((r.forgetting().unwrap() - 0.4).abs() < 1e-12);
        assert!((r.backward_transfer().unwrap() + 0.4).abs() < 1e-12);
        assert_eq!(r.measured(1, 1), Some(0.8));
        assert_eq!(r.measured(1, 0), None);
        assert_eq!(r.measured(9, 0), None);
        assert_eq!(r.measured_rows()[0], vec![Some(0.9), None, None]);
        // One row: no forgetting.
        assert_eq!(AccuracyMatrix::from_rows(vec![vec![1.0]]).forgetting(), None);
        // Ragged rows are padded to a square.
        let r = AccuracyMatrix::from_rows(vec![vec![0.5], vec![0.25, 1.0, 0.0]]);
        assert_eq!((r.n_rows(), r.n_cols()), (3, 3));
        assert_eq!(
            r.measured_rows(),
            vec![vec![Some(0.5), None, None], vec![Some(0.25), Some(1.0), Some(0.0)], vec![None; 3]]
        );
    }

    #[test]
    fn serde_keeps_unmeasured_cells() {
        let mut r = AccuracyMatrix::new(2);
        r.set(0, 0, 0.5);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, r#"{"rows":[[0.5,null],[null,null]]}"#);
        let back: AccuracyMatrix = serde_json::from_str(&json).unwrap();
        assert_eq!(back.measured_rows(), r.measured_rows());
        let h = AccuracyMatrix::from_history(
            &[MetricValue::scalar(MetricName::test_exp_accuracy(0, 0).to_string(), 0.5, 3)],
            "test",
        )
        .unwrap();
        let back: AccuracyMatrix = serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
        assert_eq!(back, h);
    }

    fn rec(name: &str, value: f64, x_plot: u64) -> MetricValue {
        MetricValue::scalar(name, value, x_plot)
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
        assert_eq!(m.measured_rows(), vec![vec![Some(0.9), Some(0.0)], vec![Some(0.5), Some(0.85)]]);
        assert_eq!(m.x_plot(), &[5, 9]);
        assert!((m.final_average_accuracy().unwrap() - 0.675).abs() < 1e-12);
        assert!((m.forgetting().unwrap() - 0.4).abs() < 1e-12);
        let train = AccuracyMatrix::from_history(&history, "train").unwrap();
        assert_eq!(train.measured_rows(), vec![vec![None, Some(0.99)]]);
        assert_eq!(train.forgetting(), None);
    }

    #[test]
    fn experience_of_reads_only_eval_exp_accuracy_on_the_stream() {
        let of = AccuracyMatrix::experience_of;
        assert_eq!(of("Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp003", "test"), Some(3));
        assert_eq!(of("Top1_Acc_Exp/eval_phase/test_stream/Exp001", "test"), Some(1));
        assert_eq!(of("Top1_Acc_Exp/eval_phase/train_stream/Task000/Exp003", "test"), None);
        assert_eq!(of("Top1_Acc_Exp/train_phase/test_stream/Task000/Exp003", "test"), None);
        assert_eq!(of("Top1_Acc_Stream/eval_phase/test_stream/Task000", "test"), None);
        assert_eq!(of("Top1_Acc_Exp/eval_phase/test_stream/Task000", "test"), None);
        assert_eq!(of("not a metric", "test"), None);
    }

    #[test]
    fn empty_and_missing_cells() {
        let m = AccuracyMatrix::from_history(&[], "test").unwrap();
        assert!(m.is_empty() && m.n_rows() == 0 && m.final_average_accuracy().is_none());
        let m =
            AccuracyMatrix::from_history(&[rec("Top1_Acc_Exp/eval_phase/test_stream/Exp002", 0.5, 1)], "test").unwrap();
        assert_eq!(m.measured_rows(), vec![vec![None, None, Some(0.5)]]);
        assert_eq!(m.measured(0, 2), Some(0.5));
        assert_eq!(m.measured(0, 0), None);
        assert_eq!(m.measured(7, 7), None);
        // A NaN value is not measured.
        let m = AccuracyMatrix::from_history(&[rec("Top1_Acc_Exp/eval_phase/test_stream/Exp000", f64::NAN, 1)], "test")
            .unwrap();
        assert!(m.is_empty() && m.n_rows() == 1);
        let corrupt = [rec("Top1_Acc_Exp/eval_phase/test_stream/Exp4000000000", 0.5, 1)];
        assert_eq!(AccuracyMatrix::from_history(&corrupt, "test"), Err(TooLarge { rows: 1, cols: 4_000_000_001 }));
    }
}
