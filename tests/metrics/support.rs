//! Drives an `EvaluationPlugin` through the callbacks of a run with hand-made predictions
//! (shared by the `metrics_*` and `loggers_*` tests).
#![allow(dead_code)]

use std::sync::Arc;

use cl::core::burn::nn::{Linear, LinearConfig};
use cl::core::burn::tensor::{Device, Int, Tensor, TensorData};
use cl::core::data::{ClassificationDataset, MiniBatch};
use cl::core::evaluation::{EvaluationPlugin, MetricContext, MetricValue};
use cl::core::{Callback, Clock, Experience};

/// An experience of `targets.len()` samples with the given labels and task label.
pub fn experience(index: usize, stream: &str, targets: &[u32], task: u32, n_classes: usize) -> Experience {
    let data = ClassificationDataset::from_f32(vec![0.0; targets.len()], vec![1], targets.to_vec())
        .unwrap()
        .with_task_label(task);
    Experience::new(index, data, stream, n_classes)
}

/// A batch with these labels and task labels (inputs are zeros).
pub fn batch(y: &[u32], t: &[u32], device: &Device) -> MiniBatch {
    let n = y.len();
    let ints = |v: &[u32]| {
        Tensor::<1, Int>::from_data(TensorData::new(v.iter().map(|&x| x as i64).collect::<Vec<_>>(), [n]), device)
    };
    MiniBatch {
        x: Tensor::zeros([n, 1], device),
        y: ints(y),
        t: ints(t),
        targets: y.to_vec(),
        task_labels: t.to_vec(),
        sample_shape: Arc::from(vec![1usize]),
    }
}

/// Logits `[n, classes]` whose argmax is `preds` (5 at the prediction, 0 elsewhere).
pub fn logits_for(preds: &[u32], classes: usize, device: &Device) -> Tensor<2> {
    let mut v = vec![0.0f32; preds.len() * classes];
    for (i, &p) in preds.iter().enumerate() {
        v[i * classes + p as usize] = 5.0;
    }
    Tensor::from_data(TensorData::new(v, [preds.len(), classes]), device)
}

/// Predictions for `targets` with the first `correct` right and the others wrong.
pub fn preds_with(targets: &[u32], correct: usize, classes: u32) -> Vec<u32> {
    targets.iter().enumerate().map(|(i, &y)| if i < correct { y } else { (y + 1) % classes }).collect()
}

/// One training batch: labels, predictions, mean loss.
pub type Step = (Vec<u32>, Vec<u32>, f32);

/// Replays callbacks into an evaluator, keeping the clock as the strategy does.
pub struct Driver {
    pub eval: EvaluationPlugin,
    pub clock: Clock,
    pub device: Device,
    pub model: Linear,
    pub train_epochs: usize,
    pub mb_size: usize,
}

impl Driver {
    pub fn new(eval: EvaluationPlugin) -> Self {
        let device = Device::default();
        Self {
            eval,
            clock: Clock::default(),
            model: LinearConfig::new(4, 3).init(&device),
            device,
            train_epochs: 1,
            mb_size: 10,
        }
    }

    /// Runs one callback; returns the values emitted.
    pub fn call(
        &mut self,
        cb: Callback,
        training: bool,
        exp: Option<&Experience>,
        step: Option<(&MiniBatch, &Tensor<2>, &Tensor<1>)>,
    ) -> Vec<MetricValue> {
        let mut ctx = MetricContext::new(
            cb,
            training,
            self.clock,
            exp,
            step.map(|s| s.0),
            step.map(|s| s.1),
            step.map(|s| s.2),
            &self.model,
        );
        ctx.dataset_len = exp.map(|e| e.dataset.len());
        ctx.mb_size = self.mb_size;
        ctx.train_epochs = self.train_epochs;
        let out = self.eval.process(&ctx).unwrap().to_vec();
        self.clock.after(cb);
        out
    }

    fn loss(&self, v: f32) -> Tensor<1> {
        Tensor::from_data(TensorData::new(vec![v], [1]), &self.device)
    }

    /// Trains on `exp`: one epoch per entry of `epochs`, each a list of batches
    /// (labels, predictions, mean loss).
    pub fn train(&mut self, exp: &Experience, epochs: &[Vec<Step>], classes: usize) {
        self.train_epochs = epochs.len();
        let task = exp.task_labels[0];
        self.call(Callback::BeforeTraining, true, None, None);
        for cb in
            [Callback::BeforeTrainDatasetAdaptation, Callback::AfterTrainDatasetAdaptation, Callback::BeforeTrainingExp]
        {
            self.call(cb, true, Some(exp), None);
        }
        for epoch in epochs {
            self.call(Callback::BeforeTrainingEpoch, true, Some(exp), None);
            for (y, p, l) in epoch {
                let b = batch(y, &vec![task; y.len()], &self.device);
                let o = logits_for(p, classes, &self.device);
                let loss = self.loss(*l);
                for cb in [
                    Callback::BeforeTrainingIteration,
                    Callback::BeforeForward,
                    Callback::AfterForward,
                    Callback::BeforeBackward,
                    Callback::AfterBackward,
                    Callback::BeforeUpdate,
                    Callback::AfterUpdate,
                    Callback::AfterTrainingIteration,
                ] {
                    self.call(cb, true, Some(exp), Some((&b, &o, &loss)));
                }
            }
            self.call(Callback::AfterTrainingEpoch, true, Some(exp), None);
        }
        self.call(Callback::AfterTrainingExp, true, Some(exp), None);
        self.call(Callback::AfterTraining, true, Some(exp), None);
    }

    /// Evaluates experiences, each as one batch with the given predictions and mean loss.
    pub fn eval_stream(&mut self, exps: &[(&Experience, Vec<u32>, f32)], classes: usize) -> Vec<MetricValue> {
        let mut all = Vec::new();
        all.extend(self.call(Callback::BeforeEval, false, Some(exps[0].0), None));
        let mut last = None;
        for (exp, preds, l) in exps {
            let y = exp.dataset.targets();
            let t = exp.dataset.task_labels();
            let b = batch(&y, &t, &self.device);
            let o = logits_for(preds, classes, &self.device);
            let loss = self.loss(*l);
            for cb in
                [Callback::BeforeEvalDatasetAdaptation, Callback::AfterEvalDatasetAdaptation, Callback::BeforeEvalExp]
            {
                all.extend(self.call(cb, false, Some(exp), None));
            }
            for cb in [
                Callback::BeforeEvalIteration,
                Callback::BeforeEvalForward,
                Callback::AfterEvalForward,
                Callback::AfterEvalIteration,
            ] {
                all.extend(self.call(cb, false, Some(exp), Some((&b, &o, &loss))));
            }
            all.extend(self.call(Callback::AfterEvalExp, false, Some(exp), None));
            last = Some(*exp);
        }
        all.extend(self.call(Callback::AfterEval, false, last, None));
        all
    }
}

/// The value named `name` in `values` (the last one).
pub fn value(values: &[MetricValue], name: &str) -> f64 {
    values
        .iter()
        .rev()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no value named {name} in {:#?}", values.iter().map(|v| &v.name).collect::<Vec<_>>()))
        .value
}
