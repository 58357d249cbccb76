//! [`ParametricBuffer`]: groups of samples chosen by a [`SelectionStrategy`].

use std::collections::{BTreeMap, BTreeSet};

use cl_core::{ClError, ClassificationDataset, Model, Result, StrategyState};

use super::{
    SelectionStrategy, StoragePolicy, check_max_size, check_shape, concat_all, group_lengths, split_indices,
};

/// How a [`ParametricBuffer`] groups its samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum GroupBy {
    /// One group.
    #[default]
    None,
    /// One group per task label.
    Task,
    /// One group per class.
    Class,
    /// One group per experience (`state.experience`'s `current_experience`).
    Experience,
}

/// One group: its capacity and its samples.
#[derive(Debug, Clone)]
struct Group {
    max_size: usize,
    data: Option<ClassificationDataset>,
}

/// A memory whose groups (by task, class, experience or none) keep the samples a
/// [`SelectionStrategy`] ranks first (Avalanche's `ParametricBuffer`).
///
/// `max_size` is split equally among the groups seen so far (the remainder to the smallest
/// group keys). On an update, each group's old samples and new samples are ranked together by
/// the selection strategy and the first ones kept; groups larger than their new share are cut
/// the same way. A group within its share is not re-ranked (Avalanche re-ranks every group on
/// every update, which changes the order of a group but not its samples). Kept samples are in
/// dataset order.
pub struct ParametricBuffer<M: Model> {
    max_size: usize,
    groupby: GroupBy,
    selection: Box<dyn SelectionStrategy<M>>,
    groups: BTreeMap<u64, Group>,
    sample_shape: Option<Vec<usize>>,
}

impl<M: Model> std::fmt::Debug for ParametricBuffer<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParametricBuffer")
            .field("max_size", &self.max_size)
            .field("groupby", &self.groupby)
            .field("group_sizes", &self.group_sizes())
            .finish_non_exhaustive()
    }
}

impl<M: Model> ParametricBuffer<M> {
    /// An empty memory of at most `max_size` (≥ 1) samples, grouped by `groupby`, its samples
    /// chosen by `selection` (e.g. [`RandomSelection`](super::RandomSelection),
    /// [`HerdingSelection`](super::HerdingSelection)).
    pub fn new(max_size: usize, groupby: GroupBy, selection: Box<dyn SelectionStrategy<M>>) -> Result<Self> {
        check_max_size(max_size)?;
        Ok(Self {
            max_size,
            groupby,
            selection,
            groups: BTreeMap::new(),
            sample_shape: None,
        })
    }

    /// How samples are grouped.
    pub fn groupby(&self) -> GroupBy {
        self.groupby
    }

    /// `(group key, samples held, capacity)` of each group, by increasing key (the key is the
    /// task label, class or experience index; 0 with [`GroupBy::None`]).
    pub fn group_sizes(&self) -> Vec<(u64, usize, usize)> {
        self.groups
            .iter()
            .map(|(&k, g)| (k, g.data.as_ref().map_or(0, |d| d.len()), g.max_size))
            .collect()
    }

    /// The samples of group `key`, if it holds any.
    pub fn group(&self, key: u64) -> Option<&ClassificationDataset> {
        self.groups.get(&key).and_then(|g| g.data.as_ref())
    }

    /// Splits `data` into the groups of `self.groupby`.
    fn make_groups(
        &self,
        experience: usize,
        data: &ClassificationDataset,
    ) -> Result<BTreeMap<u64, ClassificationDataset>> {
        let split = |keys: Vec<u32>| -> Result<BTreeMap<u64, ClassificationDataset>> {
            split_indices(&keys)
                .into_iter()
                .map(|(k, idx)| Ok((u64::from(k), data.subset(&idx)?)))
                .collect()
        };
        match self.groupby {
            GroupBy::None => Ok(BTreeMap::from([(0, data.clone())])),
            GroupBy::Experience => Ok(BTreeMap::from([(experience as u64, data.clone())])),
            GroupBy::Task => split(data.task_labels()),
            GroupBy::Class => split(data.targets()),
        }
    }

    /// The first `k` samples of `data` by the selection strategy, in dataset order.
    fn cut(
        &mut self,
        state: &StrategyState<M>,
        data: ClassificationDataset,
        k: usize,
    ) -> Result<Option<ClassificationDataset>> {
        if k == 0 || data.is_empty() {
            return Ok(None);
        }
        if data.len() <= k {
            return Ok(Some(data));
        }
        let mut idx = self.selection.make_sorted_prefix(state, &data, k)?;
        idx.truncate(k);
        let distinct: BTreeSet<usize> = idx.iter().copied().collect();
        if idx.len() < k || distinct.len() != idx.len() || idx.iter().any(|&i| i >= data.len()) {
            return Err(ClError::InvalidUse(format!(
                "the selection strategy ranked {} indices ({} distinct) of {} samples; {k} distinct \
                 indices below {} are needed",
                idx.len(),
                distinct.len(),
                data.len(),
                data.len()
            )));
        }
        idx.sort_unstable();
        Ok(Some(data.subset(&idx)?))
    }

    /// Sets each group's capacity (`max_size` split among the groups) and cuts the groups
    /// larger than it.
    fn rebalance(&mut self, state: &StrategyState<M>) -> Result<()> {
        let lens = group_lengths(self.max_size, self.groups.len(), None);
        let keys: Vec<u64> = self.groups.keys().copied().collect();
        for (key, len) in keys.into_iter().zip(lens) {
            let group = self.groups.get_mut(&key).expect("key listed");
            group.max_size = len;
            if let Some(data) = group.data.take() {
                let kept = self.cut(state, data, len)?;
                self.groups.get_mut(&key).expect("key listed").data = kept;
            }
        }
        Ok(())
    }
}

impl<M: Model> StoragePolicy<M> for ParametricBuffer<M> {
    fn max_size(&self) -> usize {
        self.max_size
    }

    fn len(&self) -> usize {
        self.groups
            .values()
            .map(|g| g.data.as_ref().map_or(0, |d| d.len()))
            .sum()
    }

    fn buffer(&self) -> Option<ClassificationDataset> {
        concat_all(self.groups.values().filter_map(|g| g.data.as_ref()))
    }

    fn update(&mut self, state: &StrategyState<M>) -> Result<()> {
        let experience = state.current_experience()?;
        let data = experience.dataset.clone();
        if data.is_empty() {
            return Ok(());
        }
        check_shape(&mut self.sample_shape, &data)?;
        let new_groups = self.make_groups(experience.current_experience, &data)?;
        for key in new_groups.keys() {
            self.groups.entry(*key).or_insert(Group {
                max_size: 0,
                data: None,
            });
        }
        // New capacities, then old ∪ new of each updated group ranked together and cut.
        let lens = group_lengths(self.max_size, self.groups.len(), None);
        let caps: BTreeMap<u64, usize> = self.groups.keys().copied().zip(lens).collect();
        for (key, new_data) in new_groups {
            let group = self.groups.get_mut(&key).expect("inserted above");
            let combined = match group.data.take() {
                Some(old) => old.concat(&new_data)?,
                None => new_data,
            };
            let kept = self.cut(state, combined, caps[&key])?;
            self.groups.get_mut(&key).expect("inserted above").data = kept;
        }
        self.rebalance(state)
    }

    fn resize(&mut self, state: &StrategyState<M>, new_size: usize) -> Result<()> {
        self.max_size = new_size;
        self.rebalance(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_util::{data, ids, set_experience, strategy};
    use crate::storage::{ClosestToCenterSelection, HerdingSelection, RandomSelection};
    use cl_models::SimpleMlp;
    use proptest::prelude::*;

    fn random(seed: u64) -> Box<dyn SelectionStrategy<SimpleMlp>> {
        Box::new(RandomSelection::new(seed))
    }

    #[test]
    fn errors() {
        assert!(matches!(
            ParametricBuffer::new(0, GroupBy::None, random(0)),
            Err(ClError::InvalidConfig {
                field: "max_size",
                ..
            })
        ));
        let s = strategy();
        let mut b = ParametricBuffer::new(4, GroupBy::Class, random(0)).unwrap();
        assert!(matches!(
            b.update(&s.state),
            Err(ClError::MissingState("experience"))
        ));
    }

    #[test]
    fn groups_by_task_class_and_experience() {
        let mut s = strategy();
        let tasks = |first: usize, n: usize, t: u32| data(first, vec![0; n]).with_task_label(t);
        let mut by_task = ParametricBuffer::new(9, GroupBy::Task, random(1)).unwrap();
        let mut by_exp = ParametricBuffer::new(9, GroupBy::Experience, random(1)).unwrap();
        let mut by_class = ParametricBuffer::new(9, GroupBy::Class, random(1)).unwrap();
        let mut single = ParametricBuffer::new(9, GroupBy::None, random(1)).unwrap();
        for (e, d) in [
            tasks(0, 10, 3),
            tasks(100, 10, 5).concat(&data(200, vec![1; 10])).unwrap(),
        ]
        .into_iter()
        .enumerate()
        {
            set_experience(&mut s, e, d);
            for b in [&mut by_task, &mut by_exp, &mut by_class, &mut single] {
                b.update(&s.state).unwrap();
                assert!(b.len() <= 9);
            }
        }
        // The concatenation keeps the first part's task label override: 100.. has task 5,
        // 200.. has the storage's task (0).
        assert_eq!(by_task.group_sizes(), vec![(0, 3, 3), (3, 3, 3), (5, 3, 3)]);
        assert_eq!(by_exp.group_sizes(), vec![(0, 5, 5), (1, 4, 4)]);
        assert_eq!(by_class.group_sizes(), vec![(0, 5, 5), (1, 4, 4)]);
        assert_eq!(single.group_sizes(), vec![(0, 9, 9)]);
        assert!(by_class.group(1).unwrap().targets().iter().all(|&t| t == 1));
        assert!(ids(by_exp.group(0).unwrap()).iter().all(|&i| i < 10));
        by_class.resize(&s.state, 3).unwrap();
        assert_eq!(by_class.group_sizes(), vec![(0, 2, 2), (1, 1, 1)]);
        assert_eq!(by_class.buffer().unwrap().len(), 3);
    }

    #[test]
    fn closest_to_center_keeps_the_cluster() {
        // Three samples near the direction (1, 1, 0, 0) and two outliers: after L2
        // normalisation the mean is closest to the cluster, which is what a group of 3 keeps.
        let mut s = strategy();
        let values = vec![
            0.0, 0.0, 1.0, 0.0, //
            1.0, 1.0, 0.0, 0.0, //
            0.0, 0.0, 0.0, 1.0, //
            1.0, 1.2, 0.0, 0.0, //
            1.2, 1.0, 0.0, 0.0,
        ];
        let d = ClassificationDataset::from_f32(values, vec![4], vec![0; 5]).unwrap();
        set_experience(&mut s, 0, d);
        let identity = |_: &SimpleMlp, b: &cl_core::MiniBatch| b.x.clone();
        let mut b = ParametricBuffer::new(
            3,
            GroupBy::None,
            Box::new(ClosestToCenterSelection::new(identity)),
        )
        .unwrap();
        b.update(&s.state).unwrap();
        let kept = b.buffer().unwrap();
        let firsts: Vec<f32> = (0..3).map(|i| kept.sample(i).unwrap().x[0]).collect();
        assert_eq!(firsts, vec![1.0, 1.0, 1.2]);
    }

    #[test]
    fn herding_on_model_features_is_deterministic() {
        let mut s = strategy();
        let targets: Vec<u32> = (0..60).map(|i| i % 3).collect();
        let values: Vec<f32> = (0..60 * 4)
            .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let d = ClassificationDataset::from_f32(values, vec![4], targets).unwrap();
        set_experience(&mut s, 0, d);
        let run = |s: &cl_core::Strategy<SimpleMlp>| {
            let features = |m: &SimpleMlp, b: &cl_core::MiniBatch| m.features(b.x.clone());
            let mut b = ParametricBuffer::new(
                12,
                GroupBy::Class,
                Box::new(HerdingSelection::new(features).with_batch_size(7)),
            )
            .unwrap();
            b.update(&s.state).unwrap();
            b.buffer().unwrap()
        };
        let (a, b) = (run(&s), run(&s));
        assert_eq!(a.len(), 12);
        assert_eq!(a.targets(), [vec![0; 4], vec![1; 4], vec![2; 4]].concat());
        let xs = |d: &ClassificationDataset| (0..d.len()).map(|i| d.sample(i).unwrap().x).collect::<Vec<_>>();
        assert_eq!(xs(&a), xs(&b));
    }

    proptest! {
        #[test]
        fn class_groups_balanced_bounded_deterministic(
            max_size in 1usize..40,
            exps in proptest::collection::vec(proptest::collection::vec(0u32..6, 0..30), 1..6),
            seed in 0u64..1000,
        ) {
            let run = || {
                let mut s = strategy();
                let mut b = ParametricBuffer::new(max_size, GroupBy::Class, random(seed)).unwrap();
                let mut per_class: BTreeMap<u32, usize> = BTreeMap::new();
                let mut start = 0;
                for (e, targets) in exps.iter().enumerate() {
                    if targets.is_empty() { continue; }
                    set_experience(&mut s, e, data(start, targets.clone()));
                    start += targets.len();
                    b.update(&s.state).unwrap();
                    for &t in targets { *per_class.entry(t).or_default() += 1; }
                    assert!(b.len() <= max_size);
                    let lens = group_lengths(max_size, per_class.len(), None);
                    let ideal = max_size as f64 / per_class.len() as f64;
                    for ((k, n, cap), ((&c, &seen), &l)) in b.group_sizes().into_iter().zip(per_class.iter().zip(&lens)) {
                        assert_eq!((k, cap), (u64::from(c), l));
                        assert_eq!(n, seen.min(l));
                        assert!((l as f64 - ideal).abs() < 1.0);
                    }
                }
                b.buffer().map(|d| ids(&d)).unwrap_or_default()
            };
            prop_assert_eq!(run(), run());
        }
    }
}
