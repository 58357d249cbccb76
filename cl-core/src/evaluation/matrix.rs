//! [`AccuracyMatrix`]: R[i][j] = accuracy on experience j after training on experience i, and
//! the summaries derived from it.

use serde::{Deserialize, Serialize};

/// An index of [`AccuracyMatrix::try_get`] / [`AccuracyMatrix::try_set`] out of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("index [{after}][{on}] out of range for a {len}x{len} accuracy matrix")]
pub struct IndexOutOfRange {
    /// The row (training experience) asked for.
    pub after: usize,
    /// The column (evaluated experience) asked for.
    pub on: usize,
    /// The matrix size.
    pub len: usize,
}

/// The accuracy matrix of a run over `n` experiences (`NaN` where not measured).
///
/// ```
/// use cl_metrics::AccuracyMatrix;
/// let mut r = AccuracyMatrix::new(2);
/// r.set(0, 0, 0.9); r.set(0, 1, 0.0);
/// r.set(1, 0, 0.5); r.set(1, 1, 0.8);
/// assert!((r.average_accuracy(1) - 0.65).abs() < 1e-12);
/// assert!((r.forgetting() - 0.4).abs() < 1e-12);
/// assert!((r.backward_transfer() + 0.4).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccuracyMatrix {
    n: usize,
    values: Vec<Vec<f64>>,
}

impl AccuracyMatrix {
    /// An `n × n` matrix with nothing measured.
    pub fn new(n: usize) -> Self {
        Self {
            n,
            values: vec![vec![f64::NAN; n]; n],
        }
    }

    /// A matrix from its rows (e.g. the `rows` of an `AccuracyMatrix` metric value); a
    /// ragged input is padded with `NaN` to a square of the largest size.
    pub fn from_rows(rows: Vec<Vec<f64>>) -> Self {
        let n = rows.iter().map(Vec::len).max().unwrap_or(0).max(rows.len());
        let mut values = rows;
        values.resize(n, Vec::new());
        for r in values.iter_mut() {
            r.resize(n, f64::NAN);
        }
        Self { n, values }
    }

    /// Number of experiences.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the matrix is 0 × 0.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Sets R[after][on]. See [`try_set`](Self::try_set) for a version that does not panic.
    ///
    /// # Panics
    /// If `after` or `on` is not below [`len`](Self::len) (the message names the indices and
    /// the size).
    pub fn set(&mut self, after: usize, on: usize, accuracy: f64) {
        if let Err(e) = self.try_set(after, on, accuracy) {
            panic!("AccuracyMatrix::set: {e}");
        }
    }

    /// R[after][on] (`NaN` if not measured). See [`try_get`](Self::try_get) for a version that
    /// does not panic.
    ///
    /// # Panics
    /// If `after` or `on` is not below [`len`](Self::len) (the message names the indices and
    /// the size).
    pub fn get(&self, after: usize, on: usize) -> f64 {
        self.try_get(after, on).unwrap_or_else(|e| panic!("AccuracyMatrix::get: {e}"))
    }

    /// Sets R[after][on], or [`IndexOutOfRange`] if `after` or `on` is not below
    /// [`len`](Self::len) (the matrix is left unchanged).
    ///
    /// ```
    /// use cl_metrics::AccuracyMatrix;
    /// let mut r = AccuracyMatrix::new(2);
    /// assert!(r.try_set(1, 0, 0.5).is_ok());
    /// let e = r.try_set(2, 0, 0.5).unwrap_err();
    /// assert_eq!((e.after, e.on, e.len), (2, 0, 2));
    /// ```
    pub fn try_set(&mut self, after: usize, on: usize, accuracy: f64) -> Result<(), IndexOutOfRange> {
        let len = self.n;
        match self.values.get_mut(after).and_then(|r| r.get_mut(on)) {
            Some(v) => {
                *v = accuracy;
                Ok(())
            }
            None => Err(IndexOutOfRange { after, on, len }),
        }
    }

    /// R[after][on] (`NaN` if not measured), or [`IndexOutOfRange`] if `after` or `on` is not
    /// below [`len`](Self::len).
    pub fn try_get(&self, after: usize, on: usize) -> Result<f64, IndexOutOfRange> {
        self.values
            .get(after)
            .and_then(|r| r.get(on))
            .copied()
            .ok_or(IndexOutOfRange { after, on, len: self.n })
    }

    /// The rows.
    pub fn rows(&self) -> &[Vec<f64>] {
        &self.values
    }

    /// Mean accuracy over all experiences after training on experience `after` (Avalanche's
    /// stream accuracy when experiences are the same size).
    ///
    /// # Panics
    /// If `after` is not below [`len`](Self::len).
    pub fn average_accuracy(&self, after: usize) -> f64 {
        let row = &self.values[after];
        row.iter().sum::<f64>() / row.len() as f64
    }

    /// Average forgetting after the last experience: mean over j < n-1 of
    /// R[j][j] − R[n-1][j] (Avalanche's `StreamForgetting`).
    pub fn forgetting(&self) -> f64 {
        if self.n < 2 {
            return 0.0;
        }
        let last = self.n - 1;
        (0..last).map(|j| self.values[j][j] - self.values[last][j]).sum::<f64>() / last as f64
    }

    /// Backward transfer: mean over j < n-1 of R[n-1][j] − R[j][j] (Lopez-Paz & Ranzato).
    pub fn backward_transfer(&self) -> f64 {
        -self.forgetting()
    }
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
        let e = IndexOutOfRange { after: 0, on: 2, len: 2 };
        assert_eq!(r.try_set(0, 2, 1.0), Err(e));
        assert_eq!(r.try_get(0, 2), Err(e));
        assert_eq!(r.try_get(5, 0), Err(IndexOutOfRange { after: 5, on: 0, len: 2 }));
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
}
