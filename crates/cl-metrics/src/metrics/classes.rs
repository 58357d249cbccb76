//! Per-class accuracy (`Top1_ClassAcc_*`) and the average mean-class accuracy
//! (`Top1_AMCA_Stream`).

use std::collections::BTreeMap;

use burn::tensor::Tensor;
use cl_core::{Callback, MiniBatch};

use super::Granularity;
use crate::metric::{Metric, MetricContext, MetricOutput};

/// Correct and total counts per class and task, on the device.
#[derive(Debug, Default)]
pub(crate) struct ClassSums {
    /// task → (classes, correct `[1, C]`, total `[1, C]`).
    device: BTreeMap<u32, (usize, Tensor<2>, Tensor<2>)>,
    /// task → host sums spilled when the number of outputs changed (dynamic heads).
    host: BTreeMap<u32, (Vec<f64>, Vec<f64>)>,
}

impl ClassSums {
    pub(crate) fn reset(&mut self) {
        self.device.clear();
        self.host.clear();
    }

    pub(crate) fn update(&mut self, batch: &MiniBatch, hits: Tensor<1, burn::tensor::Int>, classes: usize) {
        let n = batch.len();
        if n == 0 {
            return;
        }
        let one_hot = batch.y.clone().one_hot::<2>(classes).float();
        let hit_rows = one_hot.clone() * hits.float().reshape([n, 1]);
        let mut add = |task: u32, correct: Tensor<2>, total: Tensor<2>| {
            if let Some((c, _, _)) = self.device.get(&task)
                && *c != classes
            {
                let (c, cor, tot) = self.device.remove(&task).expect("present");
                let h = self.host.entry(task).or_default();
                add_host(h, c, cor, tot);
            }
            match self.device.remove(&task) {
                Some((c, cor, tot)) => self.device.insert(task, (c, cor + correct, tot + total)),
                None => self.device.insert(task, (classes, correct, total)),
            };
        };
        match batch.single_task() {
            Some(t) => add(t, hit_rows.sum_dim(0), one_hot.sum_dim(0)),
            None => {
                let mut tasks = batch.task_labels.clone();
                tasks.sort_unstable();
                tasks.dedup();
                for t in tasks {
                    let mask = batch.t.clone().equal_elem(t as i64).float().reshape([n, 1]);
                    add(t, (hit_rows.clone() * mask.clone()).sum_dim(0), (one_hot.clone() * mask).sum_dim(0));
                }
            }
        }
    }

    /// task → class → (correct, total), classes with at least one sample.
    pub(crate) fn read(&self) -> BTreeMap<u32, BTreeMap<u32, (f64, f64)>> {
        let mut host = self.host.clone();
        for (&t, (c, cor, tot)) in &self.device {
            add_host(host.entry(t).or_default(), *c, cor.clone(), tot.clone());
        }
        host.into_iter()
            .map(|(t, (cor, tot))| {
                let classes = cor
                    .iter()
                    .zip(&tot)
                    .enumerate()
                    .filter(|(_, (_, n))| **n > 0.0)
                    .map(|(c, (k, n))| (c as u32, (*k, *n)))
                    .collect();
                (t, classes)
            })
            .collect()
    }
}

fn add_host(h: &mut (Vec<f64>, Vec<f64>), classes: usize, correct: Tensor<2>, total: Tensor<2>) {
    let read = |x: Tensor<2>| -> Vec<f64> { x.into_data().iter::<f32>().map(f64::from).collect() };
    let (cor, tot) = (read(correct), read(total));
    if h.0.len() < classes {
        h.0.resize(classes, 0.0);
        h.1.resize(classes, 0.0);
    }
    for c in 0..classes {
        h.0[c] += cor[c];
        h.1[c] += tot[c];
    }
}

/// Accuracy per class (`Top1_ClassAcc_Epoch/train_phase/train_stream/Task000/3`,
/// `Top1_ClassAcc_Exp/eval_phase/test_stream/Task000/Exp000/3`, `Top1_ClassAcc_Stream/...`), one
/// value per task and class present, as Avalanche's `class_accuracy_metrics`.
#[derive(Debug)]
pub struct ClassAccuracy {
    granularity: Granularity,
    epoch: ClassSums,
    experience: ClassSums,
    stream: ClassSums,
}

impl ClassAccuracy {
    /// Per-class accuracy at the given granularities (the minibatch one is not offered).
    pub fn new(granularity: Granularity) -> Self {
        Self {
            granularity,
            epoch: ClassSums::default(),
            experience: ClassSums::default(),
            stream: ClassSums::default(),
        }
    }

    fn emit(sums: &ClassSums, level: &str, add_exp: bool, ctx: &MetricContext<'_>, out: &mut MetricOutput) {
        let metric = format!("Top1_ClassAcc_{level}");
        for (t, classes) in sums.read() {
            let base = ctx.name_with_task(&metric, t, add_exp);
            for (c, (k, n)) in classes {
                out.scalar(format!("{base}/{c}"), k / n);
            }
        }
    }
}

impl Metric for ClassAccuracy {
    fn name(&self) -> String {
        "ClassAccuracy".into()
    }

    fn on(&mut self, ctx: &MetricContext<'_>, out: &mut MetricOutput) {
        let g = self.granularity;
        let update = |sums: &mut ClassSums| {
            if let (Some(batch), Some(hits), Some(o)) = (ctx.batch, ctx.hits(), ctx.output) {
                sums.update(batch, hits, o.dims()[1]);
            }
        };
        match ctx.callback {
            Callback::BeforeTrainingEpoch => self.epoch.reset(),
            Callback::AfterTrainingIteration if g.epoch => update(&mut self.epoch),
            Callback::AfterTrainingEpoch if g.epoch => Self::emit(&self.epoch, "Epoch", false, ctx, out),
            Callback::BeforeEval => self.stream.reset(),
            Callback::BeforeEvalExp => self.experience.reset(),
            Callback::AfterEvalIteration => {
                if g.experience {
                    update(&mut self.experience);
                }
                if g.stream {
                    update(&mut self.stream);
                }
            }
            Callback::AfterEvalExp if g.experience => Self::emit(&self.experience, "Exp", true, ctx, out),
            Callback::AfterEval if g.stream => Self::emit(&self.stream, "Stream", false, ctx, out),
            _ => {}
        }
    }
}

/// Average mean-class accuracy (`Top1_AMCA_Stream/test_stream/Task000`, without phase, as
/// Avalanche's `amca_metrics`): per task, the mean over the evaluated experiences of the mean
/// accuracy over the classes present in the experience. Evaluations run inside `train`
/// (periodic validation) are ignored, as Avalanche's default `ignore_validation=True`.
#[derive(Debug, Default)]
pub struct Amca {
    experience: ClassSums,
    per_exp: BTreeMap<u32, Vec<f64>>,
    in_training: bool,
}

impl Amca {
    /// The metric.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Metric for Amca {
    fn name(&self) -> String {
        "AMCA".into()
    }

    fn on(&mut self, ctx: &MetricContext<'_>, out: &mut MetricOutput) {
        match ctx.callback {
            Callback::BeforeTraining => self.in_training = true,
            Callback::AfterTraining => self.in_training = false,
            _ if self.in_training => {}
            Callback::BeforeEval => self.per_exp.clear(),
            Callback::BeforeEvalExp => self.experience.reset(),
            Callback::AfterEvalIteration => {
                if let (Some(batch), Some(hits), Some(o)) = (ctx.batch, ctx.hits(), ctx.output) {
                    self.experience.update(batch, hits, o.dims()[1]);
                }
            }
            Callback::AfterEvalExp => {
                for (t, classes) in self.experience.read() {
                    if classes.is_empty() {
                        continue;
                    }
                    let mean = classes.values().map(|(k, n)| k / n).sum::<f64>() / classes.len() as f64;
                    self.per_exp.entry(t).or_default().push(mean);
                }
            }
            Callback::AfterEval => {
                for (t, v) in &self.per_exp {
                    let name = format!("Top1_AMCA_Stream/{}_stream/Task{t:03}", ctx.stream());
                    out.scalar(name, v.iter().sum::<f64>() / v.len() as f64);
                }
            }
            _ => {}
        }
    }
}
