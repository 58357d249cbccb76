use std::sync::{Arc, Mutex};

use cl_core::config::{ConfigFile, assert_rule};
use cl_core::{Experience, Strategy};
use cl_models::SimpleMlp;

use super::*;
use crate::persist::test_util::restore;
use crate::training::test_util::{Shared, builder, classifier_weight, tiny_mlp};

#[test]
fn config_rules_and_round_trip() {
    let c = GssGreedyConfig::new;
    assert_rule(c(0).validate(), "mem_size_positive");
    assert_rule(c(10).with_mem_strength(0).validate(), "mem_strength_positive");
    assert_rule(c(10).with_batch_size_mem(0).validate(), "batch_size_mem_positive");
    assert_rule(c(10).with_batch_size_mem(10).validate(), "batch_size_mem_below_mem_size");
    assert_rule(c(100).with_input_size(vec![]).validate(), "input_size_positive");
    assert_rule(c(100).with_input_size(vec![1, 0, 28]).validate(), "input_size_positive");
    let config = c(30).with_mem_strength(3).with_batch_size_mem(5).with_input_size(vec![4]).with_seed(2);
    assert_eq!(GssGreedyConfig::from_json(&config.to_json()).unwrap(), config);
    assert_eq!(
        GssGreedyConfig::default(),
        GssGreedyConfig {
            mem_size: 200,
            mem_strength: 1,
            input_size: None,
            batch_size_mem: 32,
            scoring_gradient: ScoringGradient::Discard,
            seed: 0
        }
    );
}

/// Avalanche's weights `(s − min) / (max − min + 0.01)`; the draw never repeats an index, puts
/// zero weights last, and picks the first index with probability proportional to its weight.
#[test]
fn candidate_weights_and_weighted_draw() {
    let w = replacement_weights(&[0.1, 1.0, -0.5, 0.5]);
    let expected = [0.6 / 1.51, 1.5 / 1.51, 0.0, 1.0 / 1.51];
    for (a, b) in w.iter().zip(expected) {
        assert!((a - b).abs() < 1e-6, "{w:?}");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let weights = [1.0, 2.0, 0.0, 3.0, 4.0];
    let mut first = [0usize; 5];
    for _ in 0..20_000 {
        let draw = weighted_sample(&weights, 5, &mut rng);
        let mut sorted = draw.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![0, 1, 2, 3, 4], "every index once");
        assert_eq!(draw[4], 2, "the zero weight comes last");
        first[draw[0]] += 1;
    }
    for (i, w) in weights.iter().enumerate() {
        let freq = first[i] as f32 / 20_000.0;
        assert!((freq - w / 10.0).abs() < 0.015, "index {i}: first drawn {freq}, expected {}", w / 10.0);
    }
    assert_eq!(weighted_sample(&weights, 2, &mut rng).len(), 2);
}

/// An experience of `n` copies of one sample `x` with label `class`.
fn copies(index: usize, n: usize, x: [f32; 4], class: u32) -> Experience {
    let inputs: Vec<f32> = (0..n).flat_map(|_| x).collect();
    let data = ClassificationDataset::from_f32(inputs, vec![4], vec![class; n]).unwrap();
    Experience::new(index, data, "train", 2)
}

fn gss(config: GssGreedyConfig, lr: f64) -> Strategy<SimpleMlp> {
    builder(tiny_mlp(2), lr, 1).plugin(GssGreedyPlugin::new(config).unwrap()).build().unwrap()
}

const X: [f32; 4] = [0.3, -0.2, 0.9, 0.5];

/// Filling: the first insertion scores 0.1 without gradients; later samples identical to the
/// memory's have gradients parallel to the memory subsets' (cosine 1). With
/// `ScoringGradient::AddToStep` the last scoring gradient (here equal to the criterion's, the
/// samples being identical and the MLP without dropout) joins the update: the step is exactly
/// twice the plain one (plain SGD).
#[test]
fn filling_scores_and_the_scoring_gradient_reaches_the_step_only_with_add_to_step() {
    let lr = 0.05;
    let config = GssGreedyConfig::new(4).with_batch_size_mem(1);
    let mut plain = gss(config.clone(), lr);
    let mut avalanche = gss(config.with_scoring_gradient(ScoringGradient::AddToStep), lr);
    // One iteration on an empty memory: no scoring gradient, same step.
    plain.train(&copies(0, 2, X, 0)).unwrap();
    avalanche.train(&copies(0, 2, X, 0)).unwrap();
    let start = classifier_weight(plain.model());
    assert_eq!(start, classifier_weight(avalanche.model()));
    for s in [&plain, &avalanche] {
        let p = s.plugin::<GssGreedyPlugin>().unwrap();
        assert_eq!(p.scores(), &[0.1, 0.1]);
        assert_eq!(p.per_sample_passes(), 0);
    }
    // One iteration of 2 current samples + 1 replayed (memory of 4 with 2 free slots): the
    // first two rows enter with score 1, one pass each.
    plain.train(&copies(1, 2, X, 0)).unwrap();
    avalanche.train(&copies(1, 2, X, 0)).unwrap();
    for s in [&plain, &avalanche] {
        let p = s.plugin::<GssGreedyPlugin>().unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(p.per_sample_passes(), 2);
        for &score in &p.scores()[2..] {
            assert!((score - 1.0).abs() < 1e-5, "{:?}", p.scores());
        }
        assert!(p.memory().unwrap().targets().iter().all(|&t| t == 0));
    }
    let plain_step: Vec<f32> = classifier_weight(plain.model()).iter().zip(&start).map(|(a, b)| a - b).collect();
    let avalanche_step: Vec<f32> =
        classifier_weight(avalanche.model()).iter().zip(&start).map(|(a, b)| a - b).collect();
    assert!(plain_step.iter().any(|d| d.abs() > 1e-4), "the model trained");
    for (p, a) in plain_step.iter().zip(&avalanche_step) {
        assert!((a - 2.0 * p).abs() < 1e-5 * (1.0 + p.abs()), "AddToStep {a} vs 2 × plain {p}");
    }
}

/// Replacement: a memory full of (x, class 0) and mini-batches of (x, class 1). In a 2-class
/// model the two labels' gradients at the same input are exactly opposite (every gradient is
/// linear in `softmax − onehot`, `(−p₁, p₁)` vs `(p₀, −p₀)`), so each class-1 sample scores −1
/// against the memory, its keep weight `(−1 + 1) / 2` is 0 and it always replaces its
/// candidate once the batch conflicts; memory samples keep their scores, the size never
/// exceeds `mem_size`. Replay reads the memory as it is at each iteration (as Avalanche's loader
/// over views of its memory): class-1 samples inserted during the experience are replayed in it.
#[test]
fn conflicting_samples_replace_memory_samples_with_score_minus_one() {
    let batches: Shared<Vec<u32>> = Arc::new(Mutex::new(Vec::new()));
    let mut s = builder(tiny_mlp(2), 0.5, 1)
        .plugin(GssGreedyPlugin::new(GssGreedyConfig::new(6).with_batch_size_mem(1)).unwrap())
        .plugin(RecordBatches(batches.clone()))
        .build()
        .unwrap();
    s.train(&copies(0, 12, X, 0)).unwrap();
    assert!(batches.lock().unwrap().iter().all(|b| b.len() == 2), "no replay in the first experience");
    let p = s.plugin::<GssGreedyPlugin>().unwrap();
    assert_eq!(p.len(), 6);
    let before = p.scores().to_vec();
    assert_eq!(&before[..2], &[0.1, 0.1]);
    batches.lock().unwrap().clear();
    s.train(&copies(1, 20, X, 1)).unwrap();
    let seen = batches.lock().unwrap().clone();
    assert_eq!(seen.len(), 10);
    assert!(seen.iter().all(|b| b.len() == 3 && b[..2] == [1, 1]), "2 current samples + 1 replayed: {seen:?}");
    assert_eq!(seen[0][2], 0, "the memory holds class 0 only when the experience starts");
    assert!(seen.iter().any(|b| b[2] == 1), "samples inserted during the experience are replayed: {seen:?}");
    let p = s.plugin::<GssGreedyPlugin>().unwrap();
    assert_eq!(p.len(), 6, "never more than mem_size");
    let targets = p.memory().unwrap().targets();
    assert!(targets.contains(&1), "conflicting samples entered: {targets:?} {:?}", p.scores());
    for (&t, &score) in targets.iter().zip(p.scores()) {
        if t == 1 {
            assert!((score + 1.0).abs() < 1e-4, "class-1 sample scored {score}");
        } else {
            assert!(score == 0.1 || (score - 1.0).abs() < 1e-4, "class-0 sample's score changed: {score}");
        }
    }
    // The checkpoint restores the memory and its scores.
    let mut fresh = GssGreedyPlugin::new(p.config().clone()).unwrap();
    restore(p, &mut fresh, s.state());
    assert_eq!(fresh.scores(), p.scores());
    assert_eq!(fresh.memory().unwrap().targets(), targets);
    assert_eq!(fresh.memory.rows, p.memory.rows);
}

/// Records the labels of every training mini-batch as the model sees it.
struct RecordBatches(Shared<Vec<u32>>);

impl Plugin<SimpleMlp> for RecordBatches {
    fn before_forward(&mut self, state: &mut StrategyState<SimpleMlp>) -> Result<()> {
        self.0.lock().unwrap().push(state.current_batch()?.targets.clone());
        Ok(())
    }
}

/// Mini-batches larger than the memory are refused before training, naming the sizes; a
/// sample shape other than `input_size` is a typed error.
#[test]
fn bad_sizes_are_typed_errors() {
    let mut s = builder(tiny_mlp(2), 0.1, 1)
        .train_mb_size(8)
        .plugin(GssGreedyPlugin::new(GssGreedyConfig::new(5).with_batch_size_mem(1)).unwrap())
        .build()
        .unwrap();
    let err = s.train(&copies(0, 8, X, 0)).unwrap_err().to_string();
    assert!(err.contains("mem_size >= 8"), "{err}");
    let mut s = gss(GssGreedyConfig::new(5).with_batch_size_mem(1).with_input_size(vec![2, 2]), 0.1);
    let err = s.train(&copies(0, 4, X, 0)).unwrap_err();
    assert!(matches!(err, ClError::SampleShapeMismatch { .. }), "{err}");
}
