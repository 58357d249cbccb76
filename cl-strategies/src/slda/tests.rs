//! Mechanism tests of [`SldaStatistics`] and [`StreamingLdaSteps`]: the batched update against
//! Avalanche's per-sample recursion, the classifier against Avalanche's values and a direct
//! solve, the blocked Cholesky across block boundaries, the rules, the checkpoint.

use burn::tensor::{Device, Tensor, TensorData};
use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, assert_rule};
use cl_core::data::ClassificationDataset;
use cl_core::{ClError, Experience, OptimizerSpec, TemplateSteps};
use cl_models::{Flatten, FlattenConfig};

use super::lda::{cholesky_lower, cholesky_solve};
use super::*;

/// The samples of Avalanche's example below: 7 samples of 3 features, classes 0, 1, 2.
const X: [[f32; 3]; 7] = [
    [0.5, -1.0, 2.0],
    [1.5, 0.25, -0.5],
    [0.0, 1.0, 1.0],
    [2.0, -0.5, 0.5],
    [-1.0, 0.75, 1.5],
    [0.25, 0.5, -1.0],
    [1.0, 1.0, 0.0],
];
const Y: [u32; 7] = [0, 1, 0, 1, 2, 0, 2];

/// Avalanche's `fit` (deep_slda.py), one sample at a time, in f64: (means, covariance, updates).
fn avalanche_fit(x: &[Vec<f64>], y: &[u32], classes: usize, stream_sigma: bool) -> (Vec<f64>, Vec<f64>, u64) {
    let d = x[0].len();
    let mut mu = vec![0.0; classes * d];
    let mut count = vec![0.0; classes];
    let mut sigma = vec![1.0; d * d];
    let mut n = 0.0f64;
    for (x, &y) in x.iter().zip(y) {
        let y = y as usize;
        if stream_sigma {
            let v: Vec<f64> = (0..d).map(|i| x[i] - mu[y * d + i]).collect();
            for a in 0..d {
                for b in 0..d {
                    let delta = v[a] * v[b] * n / (n + 1.0);
                    sigma[a * d + b] = (n * sigma[a * d + b] + delta) / (n + 1.0);
                }
            }
        }
        for i in 0..d {
            mu[y * d + i] += (x[i] - mu[y * d + i]) / (count[y] + 1.0);
        }
        count[y] += 1.0;
        n += 1.0;
    }
    (mu, sigma, n as u64)
}

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol * (1.0 + y.abs()))
}

/// Deterministic pseudo-random values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Avalanche 0.6.0 (torch 2.9.0): `StreamingLDA(input_size=3, num_classes=3,
/// shrinkage_param=0.1)`, `fit` on each sample of `X`, `Y` in order, then `predict` on two
/// points, gives these values (`Sigma`, `muK`, scores); cl's batch of the seven samples agrees.
#[test]
fn statistics_and_scores_are_avalanches() {
    let mut lda = SldaStatistics::new(3, 3, 0.1, true).unwrap();
    let flat: Vec<f32> = X.concat();
    lda.fit(&flat, &Y).unwrap();
    let sigma = [
        0.815_391_12,
        -0.133_120_75,
        -0.491_156_43,
        -0.133_120_75,
        0.547_385_16,
        -0.345_918_36,
        -0.491_156_43,
        -0.345_918_36,
        1.496_938_8,
    ];
    assert!(close(lda.covariance(), &sigma, 1e-6), "{:?}", lda.covariance());
    let mu = [0.25, 0.166_666_67, 0.666_666_7, 1.75, -0.125, 0.0, 0.0, 0.875, 0.75];
    assert!(close(lda.means(), &mu, 1e-6), "{:?}", lda.means());
    assert_eq!((lda.counts(), lda.num_updates()), (&[3u64, 2, 2][..], 7));
    let w = lda.weights().unwrap();
    let points = [[0.3, 0.2, -0.1], [1.0, -1.0, 1.0]];
    let scores: Vec<f64> = points
        .iter()
        .flat_map(|p| (0..3).map(|k| (0..3).map(|i| p[i] * w.weights[k * 3 + i]).sum::<f64>() - w.bias[k]))
        .collect();
    let avalanche = [-0.136_166_21, -1.467_137_9, -0.898_665_96, 0.412_272_2, 0.547_493_46, -1.541_816_7];
    assert!(close(&scores, &avalanche, 1e-5), "{scores:?}");
}

/// Any split of the samples into batches gives the per-sample recursion, with and without the
/// streaming covariance (without, it stays all ones as in Avalanche).
#[test]
fn a_batch_update_is_the_per_sample_recursion() {
    let (n, d, classes) = (57, 9, 4);
    let x = values(n * d, 7);
    let y: Vec<u32> = (0..n).map(|i| ((i * 7 + i / 5) % classes) as u32).collect();
    let rows: Vec<Vec<f64>> = x.chunks(d).map(|r| r.iter().map(|&v| f64::from(v)).collect()).collect();
    for stream_sigma in [true, false] {
        let (mu, sigma, updates) = avalanche_fit(&rows, &y, classes, stream_sigma);
        for splits in [vec![n], vec![1; n], vec![10, 1, 30, 16], vec![0, 57]] {
            let mut lda = SldaStatistics::new(classes, d, 0.1, stream_sigma).unwrap();
            let mut start = 0;
            for len in splits.iter().copied() {
                lda.fit(&x[start * d..(start + len) * d], &y[start..start + len]).unwrap();
                start += len;
            }
            assert!(close(lda.means(), &mu, 1e-12), "means, splits {splits:?}");
            assert!(close(lda.covariance(), &sigma, 1e-12), "covariance, splits {splits:?}, {stream_sigma}");
            assert_eq!(lda.num_updates(), updates);
            let counts: Vec<u64> =
                (0..classes).map(|c| y.iter().filter(|&&t| t as usize == c).count() as u64).collect();
            assert_eq!(lda.counts(), &counts[..]);
        }
    }
}

/// The classifier solves `((1 − s)Σ + sI)·W_k = μ_k`: residuals ~1e-12 with 150 features
/// (three blocks of the factorisation), and `c_k = ½ μ_k·W_k`. Before any sample, every score
/// is 0 (zero means), as Avalanche's.
#[test]
fn the_weights_solve_the_shrunk_system() {
    let (n, d, classes) = (400, 150, 5);
    let x = values(n * d, 3);
    let y: Vec<u32> = (0..n).map(|i| (i % classes) as u32).collect();
    let mut lda = SldaStatistics::new(classes, d, 1e-3, true).unwrap();
    let empty = lda.weights().unwrap();
    assert!(empty.weights.iter().chain(&empty.bias).all(|&v| v == 0.0));
    lda.fit(&x, &y).unwrap();
    let w = lda.weights().unwrap();
    let sigma = lda.covariance();
    for k in 0..classes {
        let wk = &w.weights[k * d..(k + 1) * d];
        for i in 0..d {
            let row: f64 = (0..d).map(|j| (1.0 - 1e-3) * sigma[i * d + j] * wk[j]).sum::<f64>() + 1e-3 * wk[i];
            assert!((row - lda.means()[k * d + i]).abs() < 1e-9, "class {k}, row {i}: {row}");
        }
        let c: f64 = lda.means()[k * d..(k + 1) * d].iter().zip(wk).map(|(a, b)| a * b).sum::<f64>() * 0.5;
        assert!((c - w.bias[k]).abs() < 1e-12);
    }
}

#[test]
fn the_blocked_cholesky_factors_across_blocks_and_rejects_indefinite_matrices() {
    for n in [1, 63, 64, 65, 130, 200] {
        let b = values(n * n, n as u64);
        // A = BᵀB/n + I: symmetric positive definite.
        let mut a = vec![0.0f64; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|k| f64::from(b[k * n + i]) * f64::from(b[k * n + j])).sum::<f64>()
                    / n as f64
                    + if i == j { 1.0 } else { 0.0 };
            }
        }
        let mut l = a.clone();
        cholesky_lower(&mut l, n).unwrap();
        for i in 0..n {
            for j in 0..=i {
                let v: f64 = (0..=j).map(|k| l[i * n + k] * l[j * n + k]).sum();
                assert!((v - a[i * n + j]).abs() < 1e-10, "n {n}: ({i}, {j})");
            }
        }
        let mut upper = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                upper[j * n + i] = l[i * n + j];
            }
        }
        let rhs: Vec<f64> = (0..n).map(|i| i as f64 - 3.0).collect();
        let mut x = rhs.clone();
        cholesky_solve(&l, &upper, n, &mut x);
        for i in 0..n {
            let v: f64 = (0..n).map(|j| a[i * n + j] * x[j]).sum();
            assert!((v - rhs[i]).abs() < 1e-9, "n {n}: row {i}");
        }
    }
    let mut indefinite = vec![1.0, 2.0, 2.0, 1.0];
    assert_eq!(cholesky_lower(&mut indefinite, 2), Err(1));
}

#[test]
fn bad_inputs_are_typed_errors_that_change_nothing() {
    let mut lda = SldaStatistics::new(3, 3, 0.1, true).unwrap();
    let before = lda.clone();
    let err = lda.fit(&[0.0; 5], &[0, 1]).unwrap_err();
    assert!(err.to_string().contains("input_size"), "{err}");
    let err = lda.fit(&[0.0; 6], &[0, 3]).unwrap_err();
    assert!(matches!(err, ClError::LabelOutOfRange { label: 3, outputs: 3 }), "{err}");
    let err = lda.fit(&[0.0, f32::NAN, 0.0], &[1]).unwrap_err();
    assert!(err.to_string().contains("non-finite"), "{err}");
    assert_eq!(lda, before);
    assert!(SldaStatistics::new(3, 3, 0.0, true).is_err());
    assert!(SldaStatistics::new(0, 3, 0.1, true).is_err());
    assert!(lda.set_covariance(vec![1.0; 4]).is_err());
    assert!(lda.set_covariance(vec![1.0, 2.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]).is_err());
    // A covariance that is not positive semi-definite, shrunk too little: no factorisation.
    lda.set_covariance(vec![1.0, 0.0, 0.0, 0.0, -5.0, 0.0, 0.0, 0.0, 1.0]).unwrap();
    let err = lda.weights().unwrap_err();
    assert!(err.to_string().contains("not positive definite"), "{err}");
}

#[test]
fn config_rules() {
    assert_rule(StreamingLdaConfig::new(0).validate(), "num_classes_positive");
    assert_rule(StreamingLdaConfig::new(3).with_input_size(0).validate(), "input_size_positive");
    assert_rule(StreamingLdaConfig::new(3).with_shrinkage(0.0).validate(), "shrinkage_in_range");
    assert_rule(StreamingLdaConfig::new(3).with_shrinkage(1.5).validate(), "shrinkage_in_range");
    assert_rule(StreamingLdaConfig::new(3).with_shrinkage(f64::NAN).validate(), "shrinkage_in_range");
    assert_rule(StreamingLdaSteps::new(StreamingLdaConfig::new(0)).map(|_| ()), "num_classes_positive");
    let c = StreamingLdaConfig::new(10);
    assert_eq!(
        (c.input_size, c.shrinkage, c.streaming_update_sigma, c.features),
        (None, 1e-4, true, SldaFeatures::Output)
    );
}

fn experience(index: usize, classes: [u32; 2], seed: u64) -> Experience {
    named(index, classes, seed, "train")
}

fn named(index: usize, classes: [u32; 2], seed: u64, stream: &str) -> Experience {
    let (x, targets) = samples(classes, seed);
    Experience::new(index, ClassificationDataset::from_f32(x, vec![3], targets).unwrap(), stream, 4)
}

/// 40 samples of 3 features, classes alternating; class c centred at (c, −c, c/2).
fn samples(classes: [u32; 2], seed: u64) -> (Vec<f32>, Vec<u32>) {
    let n = 40;
    let mut x = values(n * 3, seed);
    let targets: Vec<u32> = (0..n).map(|i| classes[i % 2]).collect();
    for (i, &y) in targets.iter().enumerate() {
        let c = y as f32;
        x[i * 3] += c;
        x[i * 3 + 1] -= c;
        x[i * 3 + 2] += c / 2.0;
    }
    (x, targets)
}

fn strategy(config: StreamingLdaConfig) -> cl_core::Strategy<Flatten> {
    let model = FlattenConfig::new(3).init().unwrap();
    StreamingLda::builder(model, OptimizerSpec::sgd(0.1), Device::flex(), config)
        .unwrap()
        .train_mb_size(7)
        .eval_mb_size(16)
        .seed(5)
        .build()
        .unwrap()
}

/// Training fits every sample once per epoch (no optimizer, no gradients), evaluation scores by
/// the statistics; the separated classes are recognised, old ones too.
#[test]
fn the_strategy_fits_the_stream_and_classifies_by_lda() {
    let exps = [experience(0, [0, 1], 1), experience(1, [2, 3], 2)];
    let mut s = strategy(StreamingLdaConfig::new(4));
    s.train(&exps[0]).unwrap();
    assert!(s.state().optimizer().is_none());
    let steps = s.steps_as::<StreamingLdaSteps>().unwrap();
    assert_eq!(steps.statistics().unwrap().counts(), &[20, 20, 0, 0]);
    s.train(&exps[1]).unwrap();
    let steps = s.steps_as::<StreamingLdaSteps>().unwrap();
    assert_eq!(steps.statistics().unwrap().num_updates(), 80);
    // The statistics are those of the samples in the loader's order; any order gives the same
    // means.
    let (mut all, mut y) = samples([0, 1], 1);
    let (more, more_y) = samples([2, 3], 2);
    all.extend(more);
    y.extend(more_y);
    let mut by_hand = SldaStatistics::new(4, 3, 1e-4, true).unwrap();
    by_hand.fit(&all, &y).unwrap();
    assert!(close(steps.statistics().unwrap().means(), by_hand.means(), 1e-9));
    let tests = [named(0, [0, 1], 11, "test"), named(1, [2, 3], 12, "test")];
    let results = s.eval(&tests[..]).unwrap();
    for e in 0..2 {
        let acc = results[&cl_core::evaluation::MetricName::test_exp_accuracy(0, e).to_string()];
        assert!(acc > 0.7, "experience {e}: {acc}");
    }
}

#[test]
fn labels_beyond_num_classes_and_changing_widths_are_errors_naming_the_fix() {
    let mut s = strategy(StreamingLdaConfig::new(2));
    let err = s.train(&experience(0, [0, 3], 1)).unwrap_err();
    assert!(err.to_string().contains("num_classes = 2"), "{err}");
    let mut s = strategy(StreamingLdaConfig::new(4).with_input_size(5));
    let err = s.train(&experience(0, [0, 1], 1)).unwrap_err();
    assert!(err.to_string().contains("input_size"), "{err}");
}

#[test]
fn the_steps_save_and_load_their_statistics() {
    let mut s = strategy(StreamingLdaConfig::new(4));
    s.train(&experience(0, [0, 1], 1)).unwrap();
    let steps = s.steps_as::<StreamingLdaSteps>().unwrap();
    let mut d = StateDict::new("steps");
    TemplateSteps::<Flatten>::save_state(steps, &mut d).unwrap();
    let d = StateDict::from_bytes(&d.to_bytes(), "steps").unwrap();
    let mut loaded = StreamingLdaSteps::new(StreamingLdaConfig::new(4)).unwrap();
    TemplateSteps::<Flatten>::load_state(&mut loaded, &d, s.state()).unwrap();
    assert_eq!(loaded.statistics(), steps.statistics());
    let mut other = StreamingLdaSteps::new(StreamingLdaConfig::new(5)).unwrap();
    assert!(TemplateSteps::<Flatten>::load_state(&mut other, &d, s.state()).is_err());
    // The scores of the loaded statistics are the same.
    let x = Tensor::<2>::from_data(TensorData::new(vec![0.5f32, -0.5, 0.25], [1, 3]), &Device::flex());
    let a = loaded.scores(x.clone(), &Device::flex()).unwrap().into_data();
    let mut original = StreamingLdaSteps::new(StreamingLdaConfig::new(4).with_input_size(3)).unwrap();
    let statistics = steps.statistics().unwrap();
    original
        .statistics_mut()
        .unwrap()
        .restore(
            statistics.means().to_vec(),
            statistics.counts().to_vec(),
            statistics.covariance().to_vec(),
            statistics.num_updates(),
        )
        .unwrap();
    let b = original.scores(x, &Device::flex()).unwrap().into_data();
    assert_eq!(a, b);
}
