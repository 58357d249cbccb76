//! Training-control plugins (Avalanche's `EarlyStoppingPlugin`, `LRSchedulerPlugin` and
//! `FromScratchTrainingPlugin`): they stop the epochs, schedule the learning rate or reset the
//! model, and touch nothing else of the loop. Their items are re-exported at the crate root.

mod early_stopping;
mod from_scratch;
mod lr_scheduling;

pub use early_stopping::{EarlyStoppingConfig, EarlyStoppingMode, EarlyStoppingPlugin};
pub use from_scratch::{FromScratchConfig, FromScratchPlugin};
pub use lr_scheduling::{
    CustomSchedule, FnSchedule, LrSchedule, LrSchedulerConfig, LrSchedulerPlugin, SchedulerConfig, StepGranularity,
};

/// Shared by the behaviour tests of the crate's plugins: a tiny MLP, generated streams, a
/// strategy builder and probes.
#[cfg(test)]
pub(crate) mod test_util {
    use std::sync::{Arc, Mutex};

    use burn::tensor::Device;
    use cl_core::data::ClassificationDataset;
    use cl_core::{Experience, OptimizerSpec, Plugin, Result, Strategy, StrategyBuilder, StrategyState, Stream};
    use cl_models::{SimpleMlp, SimpleMlpConfig};

    /// A log shared between a test and its probe plugins.
    pub type Shared<T> = Arc<Mutex<Vec<T>>>;

    /// `n` samples of shape [4], labels cycling through `classes`.
    pub fn generated(n: usize, classes: &[u32]) -> ClassificationDataset {
        let inputs: Vec<f32> = (0..n * 4).map(|i| ((i * 37 % 11) as f32) / 11.0).collect();
        let targets: Vec<u32> = (0..n).map(|i| classes[i % classes.len()]).collect();
        ClassificationDataset::from_f32(inputs, vec![4], targets).unwrap()
    }

    /// A stream named `name` of `n_exps` generated experiences, `per_exp` samples each, two
    /// classes per experience.
    pub fn named_stream(name: &str, n_exps: usize, per_exp: usize) -> Stream {
        let exps = (0..n_exps)
            .map(|e| {
                let c = 2 * e as u32;
                Experience::new(e, generated(per_exp, &[c, c + 1]), name, 2 * n_exps)
            })
            .collect();
        Stream::new(name, exps)
    }

    /// A `train` stream (see [`named_stream`]).
    pub fn stream(n_exps: usize, per_exp: usize) -> Stream {
        named_stream("train", n_exps, per_exp)
    }

    /// A small MLP (4 inputs, 8 hidden units, no dropout) with initial-weight seed `seed`.
    pub fn tiny_mlp_seeded(num_classes: usize, seed: u64) -> SimpleMlp {
        SimpleMlpConfig::new()
            .with_input_size(4)
            .with_hidden_size(8)
            .with_num_classes(num_classes)
            .with_drop_rate(0.0)
            .with_seed(Some(seed))
            .init(&Device::default())
            .unwrap()
    }

    /// A small MLP with the default initial-weight seed.
    pub fn tiny_mlp(num_classes: usize) -> SimpleMlp {
        tiny_mlp_seeded(num_classes, 0)
    }

    /// SGD at `lr`, batches of 2, `epochs` epochs, seed 3.
    pub fn builder(model: SimpleMlp, lr: f64, epochs: usize) -> StrategyBuilder<SimpleMlp> {
        Strategy::builder(model, OptimizerSpec::sgd(lr), Device::default())
            .train_mb_size(2)
            .train_epochs(epochs)
            .eval_mb_size(2)
            .seed(3)
    }

    /// The classifier's weights.
    pub fn classifier_weight(model: &SimpleMlp) -> Vec<f32> {
        model.classifier.weight.val().into_data().try_to_vec::<f32>().unwrap()
    }

    /// Records the number of epochs and iterations of each experience.
    pub struct Counts(pub Shared<(u64, u64)>);

    impl Plugin<SimpleMlp> for Counts {
        fn after_training_exp(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
            let c = s.clock();
            self.0.lock().unwrap().push((c.train_exp_epochs, c.train_exp_iterations));
            Ok(())
        }
    }

    /// Records, per experience, the classifier weights at `before_training_exp` and at
    /// `after_training_exp`, and the size of the training data.
    pub struct ModelProbe {
        log: Shared<(Vec<f32>, Vec<f32>, usize)>,
        start: Option<(Vec<f32>, usize)>,
    }

    impl ModelProbe {
        pub fn new(log: Shared<(Vec<f32>, Vec<f32>, usize)>) -> Self {
            Self { log, start: None }
        }
    }

    impl Plugin<SimpleMlp> for ModelProbe {
        fn before_training_exp(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
            let len = s.adapted_dataset.as_ref().map_or(0, |d| d.len());
            self.start = Some((classifier_weight(s.model()), len));
            Ok(())
        }

        fn after_training_exp(&mut self, s: &mut StrategyState<SimpleMlp>) -> Result<()> {
            let (start, len) = self.start.take().unwrap();
            self.log.lock().unwrap().push((start, classifier_weight(s.model()), len));
            Ok(())
        }
    }
}
