//! [`SldaStatistics`]: the statistics of deep streaming LDA (class means, a shared covariance) and
//! its linear classifier, on the host in `f64`.

use cl_core::{ClError, Result};
use rayon::prelude::*;

/// The streaming statistics of Avalanche's `StreamingLDA` and the LDA rule on them: per-class
/// running means `μ_k` and counts, one covariance `Σ` shared by the classes, updated sample by
/// sample in the order given; the scores of a feature vector `x` are `x·W − c` with
/// `W = Λ·Mᵀ`, `Λ = ((1 − s)·Σ + s·I)⁻¹` (shrinkage `s`) and `c_k = ½·μ_k·W_k`.
///
/// Each sample `(x, y)`, as Avalanche's `fit`: with `n` samples seen so far and the mean of class
/// `y` *before* the sample, `Σ ← (n·Σ + n/(n+1)·(x − μ_y)(x − μ_y)ᵀ)/(n + 1)` (when the
/// covariance streams), then `μ_y ← μ_y + (x − μ_y)/(c_y + 1)`, `c_y ← c_y + 1`. A batch applies
/// the same sequence exactly, with one pass over `Σ`: the differences `x_i − μ_{y_i}` are taken
/// in order on the host (`O(B·d)`), then
/// `Σ ← (n₀·Σ + Σᵢ wᵢ·vᵢvᵢᵀ)/(n₀ + B)`, `wᵢ = (n₀ + i)/(n₀ + i + 1)` (the per-sample recursion
/// telescopes to this), `O(B·d²/2)` on the lower triangle, rows in parallel.
///
/// `Σ` starts as all ones, as Avalanche's (`torch.ones`): it only shows before the first sample
/// (the first update multiplies it by 0) or when the covariance does not stream (it then stays
/// all ones, as in Avalanche, unless set with [`set_covariance`](Self::set_covariance)).
///
/// The classifier solves `((1 − s)·Σ + s·I)·W = Mᵀ` by a Cholesky factorisation in `f64`
/// (blocked, rows in parallel) where Avalanche inverts in `f32` with `torch.pinverse`: the same
/// matrix (symmetric, positive definite for `s > 0`), so the same `W` up to rounding.
#[derive(Debug, Clone, PartialEq)]
pub struct SldaStatistics {
    num_classes: usize,
    input_size: usize,
    shrinkage: f64,
    streaming_update_sigma: bool,
    /// `[num_classes × input_size]`, row per class.
    means: Vec<f64>,
    counts: Vec<u64>,
    /// `[input_size × input_size]`, row-major, symmetric (the update computes the lower
    /// triangle and mirrors it).
    sigma: Vec<f64>,
    num_updates: u64,
}

/// The linear LDA classifier of a [`SldaStatistics`]: scores `x·Wᵀ − c`.
#[derive(Debug, Clone, PartialEq)]
pub struct LdaWeights {
    /// `[num_classes × input_size]`, one row `W_k = Λ·μ_k` per class.
    pub weights: Vec<f64>,
    /// `c_k = ½·μ_k·W_k`, one per class.
    pub bias: Vec<f64>,
    /// The number of samples the statistics had seen ([`SldaStatistics::num_updates`]).
    pub num_updates: u64,
}

impl SldaStatistics {
    /// Empty statistics for `num_classes` classes of `input_size` features (means 0, counts 0,
    /// covariance all ones); an error if a size is 0 or the shrinkage is not in `(0, 1]`.
    pub fn new(num_classes: usize, input_size: usize, shrinkage: f64, streaming_update_sigma: bool) -> Result<Self> {
        if num_classes == 0 || input_size == 0 {
            return Err(ClError::InvalidUse(format!(
                "SldaStatistics needs at least one class and one feature (num_classes = {num_classes}, input_size = \
                 {input_size})"
            )));
        }
        if !(shrinkage > 0.0 && shrinkage <= 1.0) {
            return Err(ClError::InvalidUse(format!(
                "SldaStatistics's shrinkage = {shrinkage} must be in (0, 1] (default 1e-4): at 0 the covariance of \
                 constant features is singular"
            )));
        }
        Ok(Self {
            num_classes,
            input_size,
            shrinkage,
            streaming_update_sigma,
            means: vec![0.0; num_classes * input_size],
            counts: vec![0; num_classes],
            sigma: vec![1.0; input_size * input_size],
            num_updates: 0,
        })
    }

    /// The number of classes (rows of the means, columns of the scores).
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// The width of the features.
    pub fn input_size(&self) -> usize {
        self.input_size
    }

    /// The shrinkage `s`.
    pub fn shrinkage(&self) -> f64 {
        self.shrinkage
    }

    /// Whether the covariance is updated by each sample.
    pub fn streaming_update_sigma(&self) -> bool {
        self.streaming_update_sigma
    }

    /// The samples fitted so far (Avalanche's `num_updates`).
    pub fn num_updates(&self) -> u64 {
        self.num_updates
    }

    /// The class means, `[num_classes × input_size]` row-major (Avalanche's `muK`).
    pub fn means(&self) -> &[f64] {
        &self.means
    }

    /// The samples seen per class (Avalanche's `cK`).
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// The shared covariance, `[input_size × input_size]` row-major, symmetric (Avalanche's
    /// `Sigma`).
    pub fn covariance(&self) -> &[f64] {
        &self.sigma
    }

    /// Replaces the covariance (e.g. one estimated offline on base data, as Avalanche's
    /// `fit_base`); an error if it is not `input_size²` finite values.
    pub fn set_covariance(&mut self, sigma: Vec<f64>) -> Result<()> {
        let d = self.input_size;
        let symmetric = |s: &[f64]| (0..d).all(|a| (0..a).all(|b| s[a * d + b] == s[b * d + a]));
        if sigma.len() != d * d || !sigma.iter().all(|v| v.is_finite()) || !symmetric(&sigma) {
            return Err(ClError::InvalidUse(format!(
                "SldaStatistics::set_covariance: {} values given, {} finite values of a symmetric matrix expected \
                 ({} × {})",
                sigma.len(),
                self.input_size * self.input_size,
                self.input_size,
                self.input_size
            )));
        }
        self.sigma = sigma;
        Ok(())
    }

    /// Restores statistics saved from [`means`](Self::means), [`counts`](Self::counts),
    /// [`covariance`](Self::covariance) and [`num_updates`](Self::num_updates).
    pub fn restore(&mut self, means: Vec<f64>, counts: Vec<u64>, sigma: Vec<f64>, num_updates: u64) -> Result<()> {
        if means.len() != self.num_classes * self.input_size || counts.len() != self.num_classes {
            return Err(ClError::InvalidUse(format!(
                "SldaStatistics::restore: {} means and {} counts for {} classes of {} features",
                means.len(),
                counts.len(),
                self.num_classes,
                self.input_size
            )));
        }
        self.set_covariance(sigma)?;
        self.means = means;
        self.counts = counts;
        self.num_updates = num_updates;
        Ok(())
    }

    /// Fits the samples of a batch, in order: `features` is `[targets.len() × input_size]`
    /// row-major. An error (and nothing changed) if the sizes do not match, a label has no class,
    /// or a feature is not finite.
    pub fn fit(&mut self, features: &[f32], targets: &[u32]) -> Result<()> {
        let d = self.input_size;
        let rows = targets.len();
        if features.len() != rows * d {
            return Err(ClError::InvalidUse(format!(
                "SldaStatistics::fit: {} feature values for {rows} samples of {d} features: the feature extractor's \
                 output width is not StreamingLdaConfig::input_size",
                features.len()
            )));
        }
        if let Some(&label) = targets.iter().find(|&&y| y as usize >= self.num_classes) {
            return Err(ClError::LabelOutOfRange { label, outputs: self.num_classes });
        }
        if let Some(i) = features.iter().position(|v| !v.is_finite()) {
            return Err(ClError::InvalidUse(format!(
                "SldaStatistics::fit: feature {} of sample {} is {}: the feature extractor gives non-finite values",
                i % d,
                i / d,
                features[i]
            )));
        }
        if rows == 0 {
            return Ok(());
        }
        let n0 = self.num_updates as f64;
        // v_i = x_i − μ_{y_i} before the sample, scaled by √w_i so that Σ w_i v_i v_iᵀ = VᵀV.
        let mut scaled = if self.streaming_update_sigma { vec![0.0f64; rows * d] } else { Vec::new() };
        for (i, (&y, x)) in targets.iter().zip(features.chunks_exact(d)).enumerate() {
            let y = y as usize;
            let n = n0 + i as f64;
            let root_w = (n / (n + 1.0)).sqrt();
            let count = self.counts[y] as f64;
            let mean = &mut self.means[y * d..(y + 1) * d];
            let v_row = if self.streaming_update_sigma { Some(&mut scaled[i * d..(i + 1) * d]) } else { None };
            match v_row {
                Some(v_row) => {
                    for ((m, &xv), v) in mean.iter_mut().zip(x).zip(v_row) {
                        let diff = f64::from(xv) - *m;
                        *v = diff * root_w;
                        *m += diff / (count + 1.0);
                    }
                }
                None => {
                    for (m, &xv) in mean.iter_mut().zip(x) {
                        *m += (f64::from(xv) - *m) / (count + 1.0);
                    }
                }
            }
            self.counts[y] += 1;
        }
        if self.streaming_update_sigma {
            let total = n0 + rows as f64;
            let (keep, add) = (n0 / total, 1.0 / total);
            self.sigma.par_chunks_mut(d).enumerate().for_each(|(a, row)| {
                let row = &mut row[..=a];
                if keep == 0.0 {
                    row.fill(0.0);
                } else {
                    row.iter_mut().for_each(|s| *s *= keep);
                }
                for v in scaled.chunks_exact(d) {
                    let coef = v[a] * add;
                    if coef != 0.0 {
                        row.iter_mut().zip(&v[..=a]).for_each(|(s, &vb)| *s += coef * vb);
                    }
                }
            });
            mirror_lower(&mut self.sigma, d);
        }
        self.num_updates += rows as u64;
        Ok(())
    }

    /// The LDA classifier of the statistics now (Avalanche's `predict` without the features):
    /// solves `((1 − s)·Σ + s·I)·W = Mᵀ`. An error if that matrix is not positive definite
    /// (only when the statistics hold non-finite values or a covariance set by hand is not
    /// positive semi-definite).
    pub fn weights(&self) -> Result<LdaWeights> {
        let d = self.input_size;
        let s = self.shrinkage;
        let mut a: Vec<f64> = self.sigma.iter().map(|v| (1.0 - s) * v).collect();
        for i in 0..d {
            a[i * d + i] += s;
        }
        cholesky_lower(&mut a, d).map_err(|pivot| {
            ClError::InvalidUse(format!(
                "SldaStatistics: the shrunk covariance (1 − {s})·Σ + {s}·I is not positive definite (pivot {pivot}): \
                 the covariance holds non-finite values or was set to a matrix that is not positive semi-definite; \
                 raise the shrinkage or check the features"
            ))
        })?;
        let upper = transpose(&a, d);
        let mut weights = self.means.clone();
        weights.par_chunks_mut(d).for_each(|w| cholesky_solve(&a, &upper, d, w));
        let bias = self
            .means
            .chunks_exact(d)
            .zip(weights.chunks_exact(d))
            .map(|(m, w)| 0.5 * m.iter().zip(w).map(|(a, b)| a * b).sum::<f64>())
            .collect();
        Ok(LdaWeights { weights, bias, num_updates: self.num_updates })
    }
}

/// Block size of [`cholesky_lower`].
const BLOCK: usize = 64;

/// In-place Cholesky factorisation `A = L·Lᵀ` of the symmetric `n × n` row-major matrix `a`
/// (lower triangle read; `L` written there, the strict upper triangle left as it was). Blocked
/// right-looking: each diagonal block is factored, the panel below it solved, and the trailing
/// lower triangle updated with 64-long dot products, rows in parallel. `Err(pivot)` if the
/// matrix is not (numerically) positive definite.
pub(crate) fn cholesky_lower(a: &mut [f64], n: usize) -> std::result::Result<(), usize> {
    let mut kb = 0;
    while kb < n {
        let b = BLOCK.min(n - kb);
        let end = kb + b;
        // The diagonal block (earlier blocks' contributions already subtracted).
        for j in kb..end {
            let lj = &a[j * n + kb..j * n + j];
            let sum = a[j * n + j] - dot(lj, lj);
            if !(sum > 0.0 && sum.is_finite()) {
                return Err(j);
            }
            let diag = sum.sqrt();
            a[j * n + j] = diag;
            for i in j + 1..end {
                let sum = a[i * n + j] - dot(&a[i * n + kb..i * n + j], &a[j * n + kb..j * n + j]);
                a[i * n + j] = sum / diag;
            }
        }
        if end == n {
            break;
        }
        let (top, bottom) = a.split_at_mut(end * n);
        let block = &top[kb * n..];
        // The panel below: L21 = A21·L11⁻ᵀ, one row at a time.
        bottom.par_chunks_mut(n).for_each(|row| {
            for j in kb..end {
                let lj = &block[(j - kb) * n..(j - kb) * n + n];
                row[j] = (row[j] - dot(&row[kb..j], &lj[kb..j])) / lj[j];
            }
        });
        // The trailing lower triangle: A22 −= L21·L21ᵀ.
        let panel: Vec<f64> = bottom.chunks_exact(n).flat_map(|row| row[kb..end].iter().copied()).collect();
        let m = n - end;
        bottom.par_chunks_mut(TILE_R * n).enumerate().for_each(|(g, rows)| {
            let r0 = g * TILE_R;
            let rows_here = rows.len() / n;
            // Columns j ≤ the group's last row, TILE_C at a time (the part of a tile above the
            // diagonal is computed and discarded).
            let mut j0 = 0;
            while j0 < (r0 + rows_here).min(m) {
                let cols = TILE_C.min(m - j0);
                let tile = dot_tile(&panel, b, r0, rows_here, j0, cols);
                for (a, row) in rows.chunks_exact_mut(n).enumerate() {
                    for c in 0..cols {
                        if j0 + c <= r0 + a {
                            row[end + j0 + c] -= tile[a][c];
                        }
                    }
                }
                j0 += cols;
            }
        });
        kb = end;
    }
    Ok(())
}

/// Rows and columns of one register tile of the trailing update, and the lanes of each sum.
const TILE_R: usize = 2;
const TILE_C: usize = 4;
const LANES: usize = 2;

/// The `rows × cols` (≤ `TILE_R × TILE_C`) dot products of panel rows `r0..` with panel rows
/// `j0..` (each `b` long), eight sums of two lanes at once so that each loaded value serves
/// several products (sized to stay in the sixteen vector registers of the x86-64 baseline).
fn dot_tile(panel: &[f64], b: usize, r0: usize, rows: usize, j0: usize, cols: usize) -> [[f64; TILE_C]; TILE_R] {
    let row = |i: usize| &panel[i * b..(i + 1) * b];
    let a: [&[f64]; TILE_R] = std::array::from_fn(|k| row(r0 + k.min(rows - 1)));
    let c: [&[f64]; TILE_C] = std::array::from_fn(|k| row(j0 + k.min(cols - 1)));
    let mut acc = [[[0.0f64; LANES]; TILE_C]; TILE_R];
    let full = b / LANES * LANES;
    let mut k = 0;
    while k < full {
        let ys: [&[f64; LANES]; TILE_C] = std::array::from_fn(|j| c[j][k..k + LANES].try_into().expect("lanes"));
        for (x, acc_x) in a.iter().zip(acc.iter_mut()) {
            let xa: &[f64; LANES] = x[k..k + LANES].try_into().expect("lanes");
            for (yb, acc_xy) in ys.iter().zip(acc_x.iter_mut()) {
                for l in 0..LANES {
                    acc_xy[l] += xa[l] * yb[l];
                }
            }
        }
        k += LANES;
    }
    let mut out = [[0.0f64; TILE_C]; TILE_R];
    for i in 0..TILE_R {
        for j in 0..TILE_C {
            let v = &acc[i][j];
            let mut sum = v[0] + v[1];
            for p in full..b {
                sum += a[i][p] * c[j][p];
            }
            out[i][j] = sum;
        }
    }
    out
}

/// Solves `L·Lᵀ·x = rhs` in place with the factor `l` of [`cholesky_lower`] and its transpose
/// `upper` (rows of `Lᵀ`, for the backward pass).
pub(crate) fn cholesky_solve(l: &[f64], upper: &[f64], n: usize, x: &mut [f64]) {
    for i in 0..n {
        x[i] = (x[i] - dot(&l[i * n..i * n + i], &x[..i])) / l[i * n + i];
    }
    for i in (0..n).rev() {
        x[i] = (x[i] - dot(&upper[i * n + i + 1..(i + 1) * n], &x[i + 1..])) / upper[i * n + i];
    }
}

/// Copies the lower triangle of the `n × n` row-major `a` onto its upper triangle.
fn mirror_lower(a: &mut [f64], n: usize) {
    for i in 0..n {
        for j in i + 1..n {
            a[i * n + j] = a[j * n + i];
        }
    }
}

/// The transpose of the lower triangle of `l` (the upper triangle of the result; zeros below).
fn transpose(l: &[f64], n: usize) -> Vec<f64> {
    let mut t = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            t[j * n + i] = l[i * n + j];
        }
    }
    t
}

/// A dot product with eight independent sums (so that it vectorises).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = a.len() / 8;
    for (ca, cb) in a[..chunks * 8].chunks_exact(8).zip(b[..chunks * 8].chunks_exact(8)) {
        for k in 0..8 {
            acc[k] += ca[k] * cb[k];
        }
    }
    let mut sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in a[chunks * 8..].iter().zip(&b[chunks * 8..]) {
        sum += x * y;
    }
    sum
}
