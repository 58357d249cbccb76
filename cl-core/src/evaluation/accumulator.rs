//! Device-side accumulation of correct predictions and loss, read back once per period.

use std::collections::BTreeMap;

use crate::checkpoint::StateDict;
use crate::data::MiniBatch;
use crate::error::Result;
use burn::tensor::{Device, Int, Tensor, TensorData};

/// Sums for one task label: kept on the device until read.
#[derive(Debug, Default)]
struct TaskSums {
    correct: Option<Tensor<1, Int>>,
    loss_sum: Option<Tensor<1>>,
    count: usize,
    /// Sums restored from a checkpoint (`[correct]` as i64, `[loss_sum]` as f32), put back on
    /// the device of the first batch added (the accumulator does not know the device).
    restored: Option<(TensorData, TensorData)>,
}

impl TaskSums {
    fn materialize(&mut self, device: &Device) {
        if let Some((c, l)) = self.restored.take() {
            self.correct = Some(Tensor::from_data(c, device));
            self.loss_sum = Some(Tensor::from_data(l, device));
        }
    }

    fn sums(&self) -> Option<(Tensor<1, Int>, Tensor<1>)> {
        match &self.restored {
            Some((c, l)) => {
                let device = Device::default();
                Some((Tensor::from_data(c.clone(), &device), Tensor::from_data(l.clone(), &device)))
            }
            None => Some((self.correct.clone()?, self.loss_sum.clone()?)),
        }
    }
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

    /// Saves the sums (read back to the host, exactly) into a checkpoint.
    pub fn save_state(&self, out: &mut StateDict) -> Result<()> {
        let tasks: Vec<(u32, usize)> = self.tasks.iter().map(|(t, s)| (*t, s.count)).collect();
        out.put("tasks", &tasks)?;
        for (t, s) in &self.tasks {
            if let Some((c, l)) = s.sums() {
                out.put_data(&format!("{t}/correct"), c.into_data());
                out.put_data(&format!("{t}/loss_sum"), l.into_data());
            }
        }
        Ok(())
    }

    /// Restores [`save_state`](Self::save_state)'s sums.
    pub fn load_state(&mut self, state: &StateDict) -> Result<()> {
        self.tasks.clear();
        let tasks: Vec<(u32, usize)> = state.get("tasks")?;
        for (t, count) in tasks {
            let restored = match state.contains(&format!("{t}/correct")) {
                true => Some((state.data(&format!("{t}/correct"))?, state.data(&format!("{t}/loss_sum"))?)),
                false => None,
            };
            self.tasks.insert(t, TaskSums { correct: None, loss_sum: None, count, restored });
        }
        Ok(())
    }

    /// Adds a batch: its logits and its mean loss.
    pub fn update(&mut self, batch: &MiniBatch, logits: &Tensor<2>, mean_loss: &Tensor<1>) {
        let n = batch.len();
        if n == 0 {
            return;
        }
        self.update_hits(batch, top1_hits(logits, &batch.y), mean_loss);
    }

    /// Adds a batch given its per-sample top-1 hits (0/1, see
    /// [`MetricContext::hits`](super::MetricContext::hits)) and its mean loss.
    pub fn update_hits(&mut self, batch: &MiniBatch, hits: Tensor<1, Int>, mean_loss: &Tensor<1>) {
        let n = batch.len();
        if n == 0 {
            return;
        }
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
        s.materialize(&correct.device());
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

    /// The values over all tasks together (Avalanche's `Accuracy`/`Loss` plugin metrics pool
    /// the samples of every task); `None` if nothing was accumulated.
    pub fn read_pooled(&self) -> Option<TaskValues> {
        // Summed on the host in task order: the same f32 additions as on the device, and no
        // mixing of devices when some sums were restored from a checkpoint.
        let mut correct = 0i64;
        let mut loss: Option<f32> = None;
        let mut count = 0;
        for s in self.tasks.values().filter(|s| s.count > 0) {
            let (c, l) = s.sums()?;
            correct += c.into_scalar::<i64>();
            let l = l.into_scalar::<f32>();
            loss = Some(loss.map_or(l, |acc| acc + l));
            count += s.count;
        }
        Some(TaskValues { accuracy: correct as f64 / count as f64, loss: loss? as f64 / count as f64, count })
    }

    /// Reads the values of every task (one transfer per tensor).
    pub fn read(&self) -> BTreeMap<u32, TaskValues> {
        self.tasks
            .iter()
            .filter(|(_, s)| s.count > 0)
            .map(|(&t, s)| {
                let (correct, loss) =
                    s.sums().map_or((0, 0.0), |(c, l)| (c.into_scalar::<i64>(), l.into_scalar::<f32>() as f64));
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

/// Per-task sums of a per-sample 0/1 (or count) tensor, kept on the device: top-k hits, hits on
/// trained experiences, ...
#[derive(Debug, Default)]
pub struct TaskCounts {
    tasks: BTreeMap<u32, (Option<Tensor<1, Int>>, usize)>,
    /// Sums restored from a checkpoint, put back on the device of the first batch added.
    restored: BTreeMap<u32, TensorData>,
}

impl TaskCounts {
    /// Clears the sums.
    pub fn reset(&mut self) {
        self.tasks.clear();
        self.restored.clear();
    }

    fn sum_of(&self, task: u32) -> Option<Tensor<1, Int>> {
        match self.restored.get(&task) {
            Some(d) => Some(Tensor::from_data(d.clone(), &Device::default())),
            None => self.tasks.get(&task).and_then(|(s, _)| s.clone()),
        }
    }

    /// Saves the sums (read back to the host, exactly) into a checkpoint.
    pub fn save_state(&self, out: &mut StateDict) -> Result<()> {
        let tasks: Vec<(u32, usize)> = self.tasks.iter().map(|(t, (_, c))| (*t, *c)).collect();
        out.put("tasks", &tasks)?;
        for (t, _) in &tasks {
            if let Some(s) = self.sum_of(*t) {
                out.put_data(&format!("{t}/sum"), s.into_data());
            }
        }
        Ok(())
    }

    /// Restores [`save_state`](Self::save_state)'s sums.
    pub fn load_state(&mut self, state: &StateDict) -> Result<()> {
        self.reset();
        let tasks: Vec<(u32, usize)> = state.get("tasks")?;
        for (t, count) in tasks {
            self.tasks.insert(t, (None, count));
            if state.contains(&format!("{t}/sum")) {
                self.restored.insert(t, state.data(&format!("{t}/sum"))?);
            }
        }
        Ok(())
    }

    /// Adds a batch's per-sample values `[n]`, split by the samples' task labels.
    pub fn update(&mut self, batch: &MiniBatch, values: Tensor<1, Int>) {
        let n = batch.len();
        if n == 0 {
            return;
        }
        let restored = &mut self.restored;
        let mut add = |task: u32, sum: Tensor<1, Int>, count: usize| {
            let e = self.tasks.entry(task).or_default();
            if let Some(d) = restored.remove(&task) {
                e.0 = Some(Tensor::from_data(d, &sum.device()));
            }
            e.0 = Some(match e.0.take() {
                Some(s) => s + sum,
                None => sum,
            });
            e.1 += count;
        };
        match batch.single_task() {
            Some(task) => add(task, values.sum(), n),
            None => {
                let mut tasks = batch.task_labels.clone();
                tasks.sort_unstable();
                tasks.dedup();
                for task in tasks {
                    let count = batch.task_labels.iter().filter(|&&t| t == task).count();
                    let mask = batch.t.clone().equal_elem(task as i64).int();
                    add(task, (values.clone() * mask).sum(), count);
                }
            }
        }
    }

    /// `sum / count` per task (one transfer per task).
    pub fn read(&self) -> BTreeMap<u32, f64> {
        self.tasks
            .iter()
            .filter(|(_, (_, c))| *c > 0)
            .map(|(&t, (_, c))| (t, self.sum_of(t).map_or(0, |s| s.into_scalar::<i64>()) as f64 / *c as f64))
            .collect()
    }

    /// `sum / count` over all tasks together; `None` if nothing was added.
    pub fn read_pooled(&self) -> Option<f64> {
        let mut total = 0i64;
        let mut count = 0;
        for (&t, (_, c)) in &self.tasks {
            if let Some(s) = self.sum_of(t) {
                total += s.into_scalar::<i64>();
            }
            count += c;
        }
        (count > 0).then(|| total as f64 / count as f64)
    }
}

/// Rows of `logits` whose every value is finite, as 0/1 per sample: a NaN or infinite output is
/// never a hit (an argmax over NaN would pick class 0 and count a diverged model as right on
/// class 0).
pub fn finite_rows(logits: &Tensor<2>) -> Tensor<1, Int> {
    let n = logits.dims()[0];
    logits.clone().detach().is_finite().all_dim(1).reshape([n]).int()
}

/// Per-sample top-1 hits (0/1): `argmax(logits) == y` on rows whose logits are all finite.
pub fn top1_hits(logits: &Tensor<2>, y: &Tensor<1, Int>) -> Tensor<1, Int> {
    let n = logits.dims()[0];
    logits.clone().detach().argmax(1).reshape([n]).equal(y.clone()).int() * finite_rows(logits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};
    use std::sync::Arc;

    fn batch(y: &[u32], t: &[u32], device: &Device) -> MiniBatch {
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

    #[test]
    fn accuracy_and_loss_per_task_over_batches() {
        let device = Device::default();
        // Predictions: argmax of each row = 1, 0, 1, 1.
        let logits =
            Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 1.0, 2.0, 0.0, 0.0, 3.0, -1.0, 0.5], [4, 2]), &device);
        let loss = Tensor::<1>::from_data(TensorData::new(vec![0.5f32], [1]), &device);
        let mut sums = AccuracyLossSums::default();
        sums.update(&batch(&[1, 0, 0, 1], &[0, 0, 0, 0], &device), &logits, &loss);
        let v = sums.read();
        assert_eq!(v[&0].count, 4);
        assert!((v[&0].accuracy - 0.75).abs() < 1e-12);
        assert!((v[&0].loss - 0.5).abs() < 1e-6);
        // A mixed-task batch is split by task.
        sums.update(&batch(&[1, 1, 1, 1], &[0, 1, 1, 1], &device), &logits, &loss);
        let v = sums.read();
        assert_eq!(v[&0].count, 5);
        assert!((v[&0].accuracy - 4.0 / 5.0).abs() < 1e-12);
        assert_eq!(v[&1].count, 3);
        assert!((v[&1].accuracy - 2.0 / 3.0).abs() < 1e-12);
        let pooled = sums.read_pooled().unwrap();
        assert_eq!(pooled.count, 8);
        assert!((pooled.accuracy - 6.0 / 8.0).abs() < 1e-12);
        assert!((pooled.loss - 0.5).abs() < 1e-6);
        sums.reset();
        assert!(sums.read().is_empty());
        assert!(sums.read_pooled().is_none());
    }
}
