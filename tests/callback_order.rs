//! The exact order of the plugin callbacks, as in Avalanche's template.

mod common;

use std::sync::{Arc, Mutex};

use cl::core::{Callback, Model, Plugin, Result, StrategyState};
use cl::prelude::*;
use common::*;

/// Records every callback it receives.
struct Recorder(Log);

macro_rules! record_all {
    ($($name:ident),*) => {
        impl<M: Model> Plugin<M> for Recorder {
            $(fn $name(&mut self, _s: &mut StrategyState<M>) -> Result<()> {
                self.0.lock().unwrap().push(stringify!($name).to_string());
                Ok(())
            })*
        }
    };
}

record_all!(
    before_training, before_train_dataset_adaptation, after_train_dataset_adaptation,
    before_training_exp, before_training_epoch, before_training_iteration, before_forward,
    after_forward, before_backward, after_backward, before_update, after_update,
    after_training_iteration, after_training_epoch, after_training_exp, after_training,
    before_eval, before_eval_dataset_adaptation, after_eval_dataset_adaptation, before_eval_exp,
    before_eval_iteration, before_eval_forward, after_eval_forward, after_eval_iteration,
    after_eval_exp, after_eval
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
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    // 2 experiences × 2 epochs × 3 iterations (6 samples, batch 2).
    let stream = generated_stream("train", 2, 6);
    let mut strategy = Naive::builder(tiny_mlp(4), OptimizerSpec::sgd(0.01, 0.0, 0.0).unwrap(), cl::default_device())
        .train_mb_size(2)
        .train_epochs(2)
        .plugin(Recorder(log.clone()))
        .build()
        .unwrap();
    strategy.train(&stream).unwrap();
    assert_eq!(*log.lock().unwrap(), expected_training(2, 2, 3));
    let clock = strategy.state.clock;
    assert_eq!(clock.train_iterations, 12);
    assert_eq!(clock.train_exp_counter, 2);
    assert_eq!(clock.train_exp_epochs, 2);
    assert_eq!(clock.train_exp_iterations, 6);
    assert_eq!(clock.train_epoch_iterations, 3);
}

#[test]
fn eval_callbacks_follow_avalanche_order() {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let test = generated_stream("test", 2, 6);
    let mut strategy = Naive::builder(tiny_mlp(4), OptimizerSpec::sgd(0.01, 0.0, 0.0).unwrap(), cl::default_device())
        .eval_mb_size(2)
        .plugin(Recorder(log.clone()))
        .build()
        .unwrap();
    strategy.eval(&test).unwrap();
    assert_eq!(*log.lock().unwrap(), expected_eval(2, 3));
    assert_eq!(strategy.state.clock.total_iterations, 6);
    assert_eq!(strategy.state.clock.train_iterations, 0);
}

#[test]
fn periodic_eval_runs_between_epochs_and_restores_training_state() {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let train = generated_stream("train", 1, 6);
    let valid = generated_stream("valid", 1, 4);
    let mut strategy = Naive::builder(tiny_mlp(2), OptimizerSpec::sgd(0.01, 0.0, 0.0).unwrap(), cl::default_device())
        .train_mb_size(2)
        .train_epochs(2)
        .eval_mb_size(2)
        .eval_every(Some(1))
        .plugin(Recorder(log.clone()))
        .build()
        .unwrap();
    let results = strategy.train_with_eval(&train[0], &[&valid]).unwrap();
    // Periodic eval reports on the valid stream and training went on afterwards.
    assert!(results.contains_key("Top1_Acc_Stream/eval_phase/valid_stream/Task000"));
    assert!(results.contains_key("Top1_Acc_Epoch/train_phase/train_stream/Task000"));
    let log = log.lock().unwrap();
    let mut expected: Vec<String> = ["before_training", "before_train_dataset_adaptation", "after_train_dataset_adaptation", "before_training_exp"]
        .into_iter()
        .map(String::from)
        .collect();
    let epoch = expected_training(1, 1, 3);
    let epoch_body = &epoch[4..epoch.len() - 2]; // before_training_epoch .. after_training_epoch
    expected.extend(expected_eval(1, 2)); // initial evaluation
    for _ in 0..2 {
        expected.extend(epoch_body.iter().cloned());
        expected.extend(expected_eval(1, 2));
    }
    expected.extend(["after_training_exp".to_string(), "after_training".to_string()]);
    assert_eq!(*log, expected);
    assert_eq!(strategy.state.clock.train_iterations, 6);
    assert!(!strategy.state.is_training);
    assert!(strategy.state.experience.as_ref().is_some_and(|e| e.origin_stream == "train"));
}

#[test]
fn every_callback_has_a_distinct_avalanche_name() {
    let names: std::collections::BTreeSet<_> = Callback::ALL.iter().map(|c| c.name()).collect();
    assert_eq!(names.len(), 26);
    assert!(names.contains("before_training_exp") && names.contains("after_eval_forward"));
}
