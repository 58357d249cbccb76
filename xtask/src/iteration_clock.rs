//! [`IterationClock`]: the time of the training iterations themselves, apart from the work
//! at experience and epoch boundaries (importance passes, memory updates, a generator's
//! training), for the per-iteration columns of the strategies comparison.

use std::time::Instant;

use cl::core::{Model, Plugin, Result, StrategyState};

/// Measures the interval between consecutive `after_training_iteration` callbacks within an
/// epoch: one whole iteration (next batch, every plugin's iteration callbacks, forward,
/// backward, update). Added last, so the interval ends after every other plugin's
/// `after_training_iteration`. The first iteration of each epoch is not timed (its interval
/// would include the epoch's start). On the online protocol ([`across_experiences`]), where
/// each `train` call trains many one-iteration sub-experiences, the intervals run across their
/// boundaries (the per-sub-experience work, e.g. a memory update, is part of an online step)
/// and only the first iteration of each `train` call is not timed.
///
/// [`across_experiences`]: Self::across_experiences
#[derive(Debug, Default)]
pub struct IterationClock {
    last: Option<Instant>,
    /// Time across sub-experience boundaries (the online protocol).
    across: bool,
    /// `train` calls started so far.
    calls: u64,
    /// Seconds and timed iterations of the first `train` call (the first experience), then of
    /// the later ones.
    first: (f64, u64),
    later: (f64, u64),
}

impl IterationClock {
    /// A clock for the online protocol: intervals across sub-experience boundaries.
    pub fn across_experiences() -> Self {
        Self { across: true, ..Self::default() }
    }

    /// Mean seconds per timed iteration, over all experiences (`None` when none was timed).
    pub fn seconds_per_iteration(&self) -> Option<f64> {
        let (s, n) = (self.first.0 + self.later.0, self.first.1 + self.later.1);
        (n > 0).then(|| s / n as f64)
    }

    /// Mean seconds per timed iteration of the experiences after the first — where penalties,
    /// replay and projections are active (`None` when none was timed).
    pub fn seconds_per_later_iteration(&self) -> Option<f64> {
        (self.later.1 > 0).then(|| self.later.0 / self.later.1 as f64)
    }
}

impl<M: Model> Plugin<M> for IterationClock {
    fn before_training(&mut self, _state: &mut StrategyState<M>) -> Result<()> {
        self.calls += 1;
        self.last = None;
        Ok(())
    }

    fn before_training_epoch(&mut self, _state: &mut StrategyState<M>) -> Result<()> {
        if !self.across {
            self.last = None;
        }
        Ok(())
    }

    fn after_training_iteration(&mut self, _state: &mut StrategyState<M>) -> Result<()> {
        let now = Instant::now();
        if let Some(last) = self.last {
            let bucket = if self.calls <= 1 { &mut self.first } else { &mut self.later };
            bucket.0 += (now - last).as_secs_f64();
            bucket.1 += 1;
        }
        self.last = Some(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cl::prelude::*;

    /// Over 2 epochs of 3 iterations, 4 intervals are timed (not the first of each epoch).
    #[test]
    fn times_every_iteration_but_the_first_of_each_epoch() {
        let device = cl::default_device();
        let data =
            cl::core::data::ClassificationDataset::from_f32(vec![0.5; 6 * 4], vec![4], vec![0, 1, 0, 1, 0, 1]).unwrap();
        let stream = Stream::new("train", vec![Experience::new(0, data, "train", 2)]);
        let model =
            SimpleMlpConfig::new().with_input_size(4).with_hidden_size(4).with_num_classes(2).init(&device).unwrap();
        let mut s = Strategy::builder(model, OptimizerSpec::sgd(0.1), device)
            .train_mb_size(2)
            .train_epochs(2)
            .plugin(IterationClock::default())
            .build()
            .unwrap();
        s.train(&stream).unwrap();
        let clock = s.plugin::<IterationClock>().unwrap();
        assert_eq!(clock.first.1, 4);
        assert!(clock.seconds_per_iteration().unwrap() > 0.0);
        assert_eq!(clock.seconds_per_later_iteration(), None, "one experience only");
    }

    /// Across experiences (the online protocol): three one-iteration experiences in one
    /// `train` call give two timed intervals; a second call's iterations count as later.
    #[test]
    fn times_across_experiences_within_a_train_call() {
        let device = cl::default_device();
        let data = || cl::core::data::ClassificationDataset::from_f32(vec![0.5; 2 * 4], vec![4], vec![0, 1]).unwrap();
        let stream = |first: usize| {
            Stream::new("train", (first..first + 3).map(|i| Experience::new(i, data(), "train", 2)).collect())
        };
        let model =
            SimpleMlpConfig::new().with_input_size(4).with_hidden_size(4).with_num_classes(2).init(&device).unwrap();
        let mut s = Strategy::builder(model, OptimizerSpec::sgd(0.1), device)
            .train_mb_size(2)
            .plugin(IterationClock::across_experiences())
            .build()
            .unwrap();
        s.train(&stream(0)).unwrap();
        assert_eq!(s.plugin::<IterationClock>().unwrap().first.1, 2);
        s.train(&stream(3)).unwrap();
        let clock = s.plugin::<IterationClock>().unwrap();
        assert_eq!((clock.first.1, clock.later.1), (2, 2));
    }
}
