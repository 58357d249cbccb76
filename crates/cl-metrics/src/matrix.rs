//! [`AccuracyMatrix`]: R[i][j] = accuracy on experience j after training on experience i, and
//! the summaries derived from it.

use serde::{Deserialize, Serialize};

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

    /// Sets R[after][on].
    ///
    /// # Panics
    /// If `after` or `on` is not below [`len`](Self::len).
    pub fn set(&mut self, after: usize, on: usize, accuracy: f64) {
        self.values[after][on] = accuracy;
    }

    /// R[after][on].
    ///
    /// # Panics
    /// If `after` or `on` is not below [`len`](Self::len).
    pub fn get(&self, after: usize, on: usize) -> f64 {
        self.values[after][on]
    }

    /// The rows.
    pub fn rows(&self) -> &[Vec<f64>] {
        &self.values
    }

    /// Mean accuracy over all experiences after training on experience `after` (Avalanche's
    /// stream accuracy when experiences are the same size).
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
