//! The exact order of the plugin callbacks, as in Avalanche's template.

use crate::common::*;
use cl::core::{Callback, Model, Plugin, Result, StrategyState};
use cl::prelude::*;

/// Records every callback it receives.
#[derive(Default)]
struct Recorder(Vec<String>);

macro_rules! record_all {
    ($($name:ident),*) => {
        impl<M: Model> Plugin<M> for Recorder {
            $(fn $name(&mut self, _s: &mut StrategyState<M>) -> Result<()> {
                self.0.push(stringify!($name).to_string());
                Ok(())
            })*
        }
    };
}

/// The callbacks the strategy's `Recorder` received.
fn recorded<M: Model>(strategy: &Strategy<M>) -> Vec<String> {
    strategy.plugin::<Recorder>().expect("the Recorder plugin").0.clone()
}

record_all!(
    before_training,
    before_train_dataset_adaptation,
    after_train_dataset_adaptation,
    before_training_exp,
    before_training_epoch,
    before_training_iteration,
    before_forward,
    after_forward,
    before_backward,
    after_backward,
    before_update,
    after_update,
    after_training_iteration,
    after_training_epoch,
    after_training_exp,
    after_training,
    before_eval,
    before_eval_dataset_adaptation,
    after_eval_dataset_adaptation,
    before_eval_exp,
    before_eval_iteration,
    before_eval_forward,
    after_eval_forward,
    after_eval_iteration,
    after_eval_exp,
    after_eval
);

fn expected_training(exps: usize, epochs: usize, iterations: usize) -> Vec<String> {
    let mut v = vec!["before_training"];
    for _ in 0..exps {
        v.extend(["before_train_dataset_adaptation", "after_train_dataset_adaptation", "before_training_exp"]);
        for _ in 0..epochs {
            v.push("before_training_epoch");
            for _ in 0..iterations {
                v.extend([
                    "before_training_iteration",
                    "before_forward",
                    "after_forward",
                    "before_backward",
                    "after_backward",
                    "before_update",
                    "after_update",
                    "after_training_iteration",
                ]);
            }
            v.push("after_training_epoch");
        }
        v.push("after_training_exp");
    }
    v.push("after_training");
    v.into_iter().map(String::from).collect()
}

fn expected_eval(exps: usize, iterations: usize) -> Vec<String> {
    let mut v = vec!["before_eval"];
    for _ in 0..exps {
        v.extend(["before_eval_dataset_adaptation", "after_eval_dataset_adaptation", "before_eval_exp"]);
        for _ in 0..iterations {
            v.extend(["before_eval_iteration", "before_eval_forward", "after_eval_forward", "after_eval_iteration"]);
        }
        v.push("after_eval_exp");
    }
    v.push("after_eval");
    v.into_iter().map(String::from).collect()
}

#[test]
fn training_callbacks_follow_avalanche_order() {
    // 2 experiences × 2 epochs × 3 iterations (6 samples, batch 2).
    let stream = generated_stream("train", 2, 6);
    let mut strategy =
        Naive::builder(tiny_mlp(4), OptimizerSpec::sgd(0.01), cl::default_device(), NaiveConfig::default())
            .unwrap()
            .train_mb_size(2)
            .train_epochs(2)
            .plugin(Recorder::default())
            .build()
            .unwrap();
    strategy.train(&stream).unwrap();
    assert_eq!(recorded(&strategy), expected_training(2, 2, 3));
    let clock = strategy.state().clock();
    assert_eq!(clock.train_iterations, 12);
    assert_eq!(clock.train_exp_counter, 2);
    assert_eq!(clock.train_exp_epochs, 2);
    assert_eq!(clock.train_exp_iterations, 6);
    assert_eq!(clock.train_epoch_iterations, 3);
}

#[test]
fn eval_callbacks_follow_avalanche_order() {
    let test = generated_stream("test", 2, 6);
    let mut strategy =
        Naive::builder(tiny_mlp(4), OptimizerSpec::sgd(0.01), cl::default_device(), NaiveConfig::default())
            .unwrap()
            .eval_mb_size(2)
            .plugin(Recorder::default())
            .build()
            .unwrap();
    strategy.eval(&test).unwrap();
    assert_eq!(recorded(&strategy), expected_eval(2, 3));
    assert_eq!(strategy.state().clock().total_iterations, 6);
    assert_eq!(strategy.state().clock().train_iterations, 0);
}

/// The training log with periodic evaluation of a 4-sample stream (2 iterations of 2).
fn periodic_log(eval_every: usize, epochs: usize) -> (Vec<String>, cl::core::MetricResults) {
    let train = generated_stream("train", 1, 6);
    let valid = generated_stream("valid", 1, 4);
    let mut strategy =
        Naive::builder(tiny_mlp(2), OptimizerSpec::sgd(0.01), cl::default_device(), NaiveConfig::default())
            .unwrap()
            .train_mb_size(2)
            .train_epochs(epochs)
            .eval_mb_size(2)
            .eval_every(Some(eval_every))
            .plugin(Recorder::default())
            .build()
            .unwrap();
    let results = strategy.train_with_eval(&train[0], &[&valid]).unwrap();
    assert_eq!(strategy.state().clock().train_iterations, 3 * epochs as u64);
    assert!(!strategy.state().is_training());
    assert!(strategy.state().experience.is_none(), "per-experience state is cleared after train");
    let log = recorded(&strategy);
    (log, results)
}

/// Avalanche's PeriodicEval: before training; after epochs 1, k+1, 2k+1, ... (the epoch
/// counter is read before the clock increments it); at the end of the experience unless its last
/// epoch was just evaluated; `eval_every = 0`: before training and at the end of each experience.
fn expected_periodic(eval_every: usize, epochs: usize) -> Vec<String> {
    let full = expected_training(1, epochs, 3);
    let eval = expected_eval(1, 2);
    let mut out = vec![full[0].clone()];
    out.extend(eval.iter().cloned()); // initial evaluation
    let mut epoch = 0;
    for name in &full[1..] {
        out.push(name.clone());
        if name == "after_training_epoch" {
            if eval_every > 0 && epoch % eval_every == 0 {
                out.extend(eval.iter().cloned());
            }
            epoch += 1;
        }
        if name == "after_training_exp" && !(eval_every > 0 && (epochs - 1).is_multiple_of(eval_every)) {
            out.extend(eval.iter().cloned());
        }
    }
    out
}

#[test]
fn periodic_eval_follows_avalanche_and_restores_training_state() {
    for (every, epochs) in [(1, 2), (0, 2), (2, 3), (2, 2)] {
        let (log, results) = periodic_log(every, epochs);
        assert_eq!(log, expected_periodic(every, epochs), "eval_every = {every}, epochs = {epochs}");
        assert!(results.contains_key("Top1_Acc_Stream/eval_phase/valid_stream/Task000"));
        assert!(results.contains_key("Top1_Acc_Epoch/train_phase/train_stream/Task000"));
    }
    // eval_every = 2 with 2 epochs: initial, after epoch 1, final.
    let evals = |log: &[String]| log.iter().filter(|n| *n == "before_eval").count();
    assert_eq!(evals(&periodic_log(2, 2).0), 3);
    assert_eq!(evals(&periodic_log(2, 3).0), 3);
    assert_eq!(evals(&periodic_log(1, 2).0), 3);
    assert_eq!(evals(&periodic_log(0, 2).0), 2);
}

#[test]
fn train_without_eval_streams_evaluates_the_training_experiences() {
    let train = generated_stream("train", 2, 4);
    let mut strategy =
        Naive::builder(tiny_mlp(4), OptimizerSpec::sgd(0.01), cl::default_device(), NaiveConfig::default())
            .unwrap()
            .train_mb_size(2)
            .eval_every(Some(0))
            .plugin(Recorder::default())
            .build()
            .unwrap();
    let results = strategy.train(&train).unwrap();
    assert!(results.contains_key("Top1_Acc_Exp/eval_phase/train_stream/Task000/Exp001"), "{results:?}");
    // Initial evaluation plus one per experience, each over both training experiences.
    let log = recorded(&strategy);
    assert_eq!(log.iter().filter(|n| *n == "before_eval").count(), 3);
    assert_eq!(log.iter().filter(|n| *n == "before_eval_exp").count(), 6);
}

#[test]
fn every_callback_has_a_distinct_avalanche_name() {
    let names: std::collections::BTreeSet<_> = Callback::ALL.iter().map(|c| c.name()).collect();
    assert_eq!(names.len(), 26);
    assert!(names.contains("before_training_exp") && names.contains("after_eval_forward"));
}

#[test]
fn periodic_eval_can_count_iterations() {
    let train = generated_stream("train", 1, 6); // 3 iterations of 2
    let valid = generated_stream("valid", 1, 2);
    let mut strategy =
        Naive::builder(tiny_mlp(2), OptimizerSpec::sgd(0.01), cl::default_device(), NaiveConfig::default())
            .unwrap()
            .train_mb_size(2)
            .periodic_eval(PeriodicEval::Every { every: 2, mode: cl::core::PevalMode::Iteration })
            .plugin(Recorder::default())
            .build()
            .unwrap();
    strategy.train_with_eval(&train[0], &[&valid]).unwrap();
    let log = recorded(&strategy);
    // Initial; after iterations 1 and 3 (counter 0 and 2 before the clock increments); final.
    let positions: Vec<usize> = log.iter().enumerate().filter(|(_, n)| *n == "before_eval").map(|(i, _)| i).collect();
    assert_eq!(positions.len(), 4, "{log:?}");
    let iteration_ends: Vec<usize> =
        log.iter().enumerate().filter(|(_, n)| *n == "after_training_iteration").map(|(i, _)| i).collect();
    assert_eq!(positions[1], iteration_ends[0] + 1);
    assert_eq!(positions[2], iteration_ends[2] + 1);
    assert!(positions[3] > log.iter().position(|n| n == "after_training_exp").unwrap());
}
