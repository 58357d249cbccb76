//! Device-side accumulation of correct predictions and loss, read back once per period.

use std::collections::BTreeMap;

use burn::tensor::{Int, Tensor};
use cl_core::MiniBatch;

/// Sums for one task label: kept on the device until read.
#[derive(Debug, Default)]
struct TaskSums {
    correct: Option<Tensor<1, Int>>,
    loss_sum: Option<Tensor<1>>,
    count: usize,
}

/// Accuracy and loss sums per task label over a period (minibatch, epoch, experience, stream).
///
/// Updating costs a few tensor ops and no device → host transfer; [`read`](Self::read) transfers
/// two scalars per task.
#[derive(Debug, Default)]
pub struct AccuracyLossSums {
    tasks: BTreeMap<u32, TaskSums>,
}

/// Accuracy and mean loss of one task over a period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskValues {
    /// Fraction of correct top-1 predictions.
    pub accuracy: f64,
    /// Mean loss per sample.
    pub loss: f64,
    /// Number of samples.
    pub count: usize,
}

impl AccuracyLossSums {
    /// Clears the sums.
    pub fn reset(&mut self) {
        self.tasks.clear();
    }

    /// Whether nothing was accumulated.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Adds a batch: its logits and its mean loss.
    pub fn update(&mut self, batch: &MiniBatch, logits: &Tensor<2>, mean_loss: &Tensor<1>) {
        let n = batch.len();
        if n == 0 {
            return;
        }
        let hits = logits
            .clone()
            .detach()
            .argmax(1)
            .reshape([n])
            .equal(batch.y.clone())
            .int();
        let loss = mean_loss.clone().detach();
        match batch.single_task() {
            Some(task) => self.add(task, hits.sum(), loss.mul_scalar(n as f32), n),
            None => {
                // Mixed tasks: split the hits by task; the batch's mean loss is attributed to
                // each task in proportion to its samples (the criterion gives no per-sample loss).
                let mut tasks: Vec<u32> = batch.task_labels.clone();
                tasks.sort_unstable();
                tasks.dedup();
                for task in tasks {
                    let count = batch.task_labels.iter().filter(|&&t| t == task).count();
                    let mask = batch.t.clone().equal_elem(task as i64).int();
                    let task_hits = (hits.clone() * mask).sum();
                    self.add(task, task_hits, loss.clone().mul_scalar(count as f32), count);
                }
            }
        }
    }

    fn add(&mut self, task: u32, correct: Tensor<1, Int>, loss_sum: Tensor<1>, count: usize) {
        let s = self.tasks.entry(task).or_default();
        s.correct = Some(match s.correct.take() {
            Some(c) => c + correct,
            None => correct,
        });
        s.loss_sum = Some(match s.loss_sum.take() {
            Some(l) => l + loss_sum,
            None => loss_sum,
        });
        s.count += count;
    }

    /// Reads the values of every task (one transfer per tensor).
    pub fn read(&self) -> BTreeMap<u32, TaskValues> {
        self.tasks
            .iter()
            .filter(|(_, s)| s.count > 0)
            .map(|(&t, s)| {
                let correct = s.correct.clone().map_or(0, |c| c.into_scalar::<i64>());
                let loss = s.loss_sum.clone().map_or(0.0, |l| l.into_scalar::<f32>() as f64);
                (
                    t,
                    TaskValues {
                        accuracy: correct as f64 / s.count as f64,
                        loss: loss / s.count as f64,
                        count: s.count,
                    },
                )
            })
            .collect()
    }
}
