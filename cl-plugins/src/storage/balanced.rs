//! [`BalancedBuffer`]: the groups shared by the balanced storage policies
//! ([`ClassBalancedBuffer`](super::ClassBalancedBuffer),
//! [`ExperienceBalancedBuffer`](super::ExperienceBalancedBuffer)), as Avalanche's
//! `BalancedExemplarsBuffer`.

use std::collections::{BTreeMap, BTreeSet};

use cl_core::checkpoint::StateDict;
use cl_core::config::rule;
use cl_core::data::ClassificationDataset;
use cl_core::{ClError, Result, derive_seed};
use serde::{Deserialize, Serialize};

use super::{ReservoirSamplingBuffer, check_policy_name, check_shape, concat_all, group_lengths, put_policy_name};
use crate::persist::bad_entry;

/// How a balanced memory ([`ExperienceBalancedBuffer`](super::ExperienceBalancedBuffer),
/// [`ClassBalancedBuffer`](super::ClassBalancedBuffer)) splits `max_size` among its groups —
/// Avalanche's `adaptive_size` and `num_experiences` / `total_num_classes` arguments, which
/// exclude each other, as one enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[doc(alias = "adaptive_size", alias = "num_experiences", alias = "total_num_classes")]
pub enum BufferSizing {
    /// `max_size` split equally among the groups seen so far, the remainder to the first ones
    /// (Avalanche's `adaptive_size=True`, its default).
    #[default]
    Adaptive,
    /// `max_size / groups` samples per group, whatever the number seen so far (Avalanche's
    /// `adaptive_size=False` with `num_experiences` / `total_num_classes = groups`). Seeing more
    /// than `groups` groups is an error (Avalanche would exceed `max_size`).
    Fixed {
        /// The number of groups (experiences or classes) the memory is split for (at least 1,
        /// at most `max_size`).
        groups: usize,
    },
}

impl BufferSizing {
    /// The fixed number of groups, `None` when adaptive.
    pub fn fixed_groups(self) -> Option<usize> {
        match self {
            Self::Adaptive => None,
            Self::Fixed { groups } => Some(groups),
        }
    }
}

/// The two sizing rules of a balanced memory's config: a fixed split needs at least one group
/// and at most `max_size` (every group gets at least one sample).
pub(crate) fn sizing_rules(config: &'static str, max_size: usize, sizing: BufferSizing) -> Result<()> {
    let groups = sizing.fixed_groups();
    rule(config, "sizing_groups_positive", groups != Some(0), || {
        "BufferSizing::Fixed needs groups >= 1 (or use BufferSizing::Adaptive)".into()
    })?;
    rule(config, "sizing_groups_at_most_max_size", groups.is_none_or(|g| g <= max_size), || {
        format!(
            "BufferSizing::Fixed {{ groups: {} }} for max_size {max_size}: every group would get 0 samples; \
             use at most max_size groups",
            groups.unwrap_or(0)
        )
    })
}

/// The container of a [`BalancedBuffer`]'s groups, iterated in increasing key order.
pub(crate) trait Groups<K>: Default {
    /// The keys of the groups, increasing.
    fn keys(&self) -> impl Iterator<Item = K>;
    /// The groups, by increasing key.
    fn values(&self) -> impl Iterator<Item = &ReservoirSamplingBuffer>;
    /// The groups, by increasing key.
    fn values_mut(&mut self) -> impl Iterator<Item = &mut ReservoirSamplingBuffer>;
    /// The group of `key`, made by `make` if there is none.
    fn get_or_insert_with(
        &mut self,
        key: K,
        make: impl FnOnce() -> ReservoirSamplingBuffer,
    ) -> &mut ReservoirSamplingBuffer;
    /// The number of groups.
    fn count(&self) -> usize;
    /// Adds a restored group; `false` (and no change) if `key` cannot be added (already there,
    /// or not the next position).
    fn try_insert(&mut self, key: K, group: ReservoirSamplingBuffer) -> bool;
}

impl<K: Ord + Copy> Groups<K> for BTreeMap<K, ReservoirSamplingBuffer> {
    fn keys(&self) -> impl Iterator<Item = K> {
        BTreeMap::keys(self).copied()
    }

    fn values(&self) -> impl Iterator<Item = &ReservoirSamplingBuffer> {
        BTreeMap::values(self)
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut ReservoirSamplingBuffer> {
        BTreeMap::values_mut(self)
    }

    fn get_or_insert_with(
        &mut self,
        key: K,
        make: impl FnOnce() -> ReservoirSamplingBuffer,
    ) -> &mut ReservoirSamplingBuffer {
        self.entry(key).or_insert_with(make)
    }

    fn count(&self) -> usize {
        self.len()
    }

    fn try_insert(&mut self, key: K, group: ReservoirSamplingBuffer) -> bool {
        match self.entry(key) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(group);
                true
            }
            std::collections::btree_map::Entry::Occupied(_) => false,
        }
    }
}

/// Groups keyed by their position (`0, 1, …`); a new group's key is the current count.
impl Groups<u64> for Vec<ReservoirSamplingBuffer> {
    fn keys(&self) -> impl Iterator<Item = u64> {
        0..self.len() as u64
    }

    fn values(&self) -> impl Iterator<Item = &ReservoirSamplingBuffer> {
        self.iter()
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut ReservoirSamplingBuffer> {
        self.iter_mut()
    }

    fn get_or_insert_with(
        &mut self,
        key: u64,
        make: impl FnOnce() -> ReservoirSamplingBuffer,
    ) -> &mut ReservoirSamplingBuffer {
        let i = key as usize;
        assert!(i <= self.len(), "positional groups are added in order");
        if i == self.len() {
            self.push(make());
        }
        &mut self[i]
    }

    fn count(&self) -> usize {
        self.len()
    }

    fn try_insert(&mut self, key: u64, group: ReservoirSamplingBuffer) -> bool {
        if key != self.len() as u64 {
            return false;
        }
        self.push(group);
        true
    }
}

/// A memory of at most `max_size` samples split among groups (one [`ReservoirSamplingBuffer`]
/// per key `K`), as Avalanche's `BalancedExemplarsBuffer`: adaptive, `max_size` is split equally
/// among the groups seen so far (the remainder to the smallest keys); fixed, each group gets
/// `max_size / groups` samples and seeing more than `groups` groups is an error. Each group's
/// reservoir is seeded from the buffer's seed and its key.
#[derive(Debug, Clone)]
pub(crate) struct BalancedBuffer<K, G = BTreeMap<K, ReservoirSamplingBuffer>> {
    max_size: usize,
    sizing: BufferSizing,
    seed: u64,
    groups: G,
    sample_shape: Option<Vec<usize>>,
    /// The config's name, for errors.
    config: &'static str,
    /// What the groups are, for errors ("classes", "experiences").
    noun: &'static str,
    _key: std::marker::PhantomData<K>,
}

impl<K: Ord + Copy + Into<u64>, G: Groups<K>> BalancedBuffer<K, G> {
    /// An empty memory (the config, named `config` in errors, is validated by the caller).
    pub(crate) fn new(
        max_size: usize,
        sizing: BufferSizing,
        seed: u64,
        config: &'static str,
        noun: &'static str,
    ) -> Self {
        Self {
            max_size,
            sizing,
            seed,
            groups: G::default(),
            sample_shape: None,
            config,
            noun,
            _key: std::marker::PhantomData,
        }
    }

    pub(crate) fn max_size(&self) -> usize {
        self.max_size
    }

    pub(crate) fn sizing(&self) -> BufferSizing {
        self.sizing
    }

    pub(crate) fn seed(&self) -> u64 {
        self.seed
    }

    /// The samples the memory holds now.
    pub(crate) fn len(&self) -> usize {
        self.groups.values().map(ReservoirSamplingBuffer::len).sum()
    }

    /// The groups.
    pub(crate) fn buffer_groups(&self) -> &G {
        &self.groups
    }

    /// The groups concatenated by increasing key; `None` while empty.
    pub(crate) fn buffer(&self) -> Option<ClassificationDataset> {
        concat_all(self.groups.values().filter_map(ReservoirSamplingBuffer::buffer_ref))
    }

    /// Adds the samples of `new_data` at `new_groups[key]` to group `key`'s reservoir
    /// (creating the group, possibly empty, if new) and splits `max_size` again among all the
    /// groups. An error, and no change, if the sample shape differs from the data seen before
    /// or there are more groups than a fixed split allows.
    pub(crate) fn update(
        &mut self,
        new_data: &ClassificationDataset,
        new_groups: BTreeMap<K, Vec<usize>>,
    ) -> Result<()> {
        let mut shape = self.sample_shape.clone();
        check_shape(&mut shape, new_data)?;
        let mut keys: BTreeSet<K> = self.groups.keys().collect();
        keys.extend(new_groups.keys().copied());
        if let Some(total) = self.sizing.fixed_groups()
            && keys.len() > total
        {
            return Err(ClError::InvalidUse(format!(
                "{} {} but the memory of {} was split for {total} (sizing = BufferSizing::Fixed {{ groups: {total} }}); \
                 raise `groups` or use BufferSizing::Adaptive",
                keys.len(),
                self.noun,
                self.config
            )));
        }
        self.sample_shape = shape;
        let lens = group_lengths(self.max_size, keys.len(), self.sizing.fixed_groups());
        let lens: BTreeMap<K, usize> = keys.into_iter().zip(lens).collect();
        for (key, idx) in new_groups {
            let len = lens[&key];
            let seed = derive_seed(self.seed, key.into());
            let group = self.groups.get_or_insert_with(key, || ReservoirSamplingBuffer::with_capacity(len, seed));
            // Shrinking first keeps the same samples as Avalanche's update-then-shrink (the
            // top weights), at a lower cost.
            group.resize_to(len)?;
            if idx.len() == new_data.len() {
                // The indices are increasing, so this is the whole dataset.
                group.update_from_dataset(new_data)?;
            } else if !idx.is_empty() {
                group.update_from_dataset(&new_data.subset(&idx)?)?;
            }
        }
        for (g, &l) in self.groups.values_mut().zip(lens.values()) {
            g.resize_to(l)?;
        }
        Ok(())
    }

    /// Sets `max_size` and splits it again among the groups.
    pub(crate) fn resize_to(&mut self, new_size: usize) -> Result<()> {
        self.max_size = new_size;
        let lens = group_lengths(new_size, self.groups.count(), self.sizing.fixed_groups());
        for (g, l) in self.groups.values_mut().zip(lens) {
            g.resize_to(l)?;
        }
        Ok(())
    }

    /// Saves the memory: `max_size`, the sizing and seed (checked on load), the sample shape
    /// and every group's reservoir (a nested dictionary per key).
    pub(crate) fn save_state(&self, out: &mut StateDict, policy: &str) -> Result<()> {
        put_policy_name(out, policy)?;
        out.put("max_size", &self.max_size)?;
        out.put("sizing", &self.sizing)?;
        out.put("seed", &self.seed)?;
        out.put("sample_shape", &self.sample_shape)?;
        let keys: Vec<u64> = self.groups.keys().map(Into::into).collect();
        out.put("keys", &keys)?;
        for (key, group) in keys.iter().zip(self.groups.values()) {
            let mut d = StateDict::new(format!("{} (group {key})", out.component()));
            group.save_state(&mut d)?;
            out.put_dict(&format!("group/{key}"), d);
        }
        Ok(())
    }

    /// Restores what [`save_state`](Self::save_state) saved; a memory of another policy,
    /// sizing or seed is [`ClError::CheckpointMismatch`].
    pub(crate) fn load_state(&mut self, state: &StateDict, policy: &str) -> Result<()>
    where
        K: TryFrom<u64>,
    {
        check_policy_name(state, policy)?;
        state.check_config("sizing", &self.sizing)?;
        state.check_config("seed", &self.seed)?;
        let max_size: usize = state.get("max_size")?;
        let sample_shape: Option<Vec<usize>> = state.get("sample_shape")?;
        let keys: Vec<u64> = state.get("keys")?;
        let mut groups = G::default();
        for key in keys {
            let k = K::try_from(key).map_err(|_| bad_entry(state, "keys", format!("group key {key} out of range")))?;
            let mut group = ReservoirSamplingBuffer::with_capacity(0, 0);
            group.load_state(state.dict(&format!("group/{key}"))?)?;
            if !groups.try_insert(k, group) {
                return Err(bad_entry(state, "keys", format!("group key {key} repeated or out of order")));
            }
        }
        self.max_size = max_size;
        self.sample_shape = sample_shape;
        self.groups = groups;
        Ok(())
    }
}
