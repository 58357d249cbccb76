//! [`Stream`]: a named, ordered list of experiences.

use std::ops::{Index, RangeBounds};

use super::experience::Experience;

/// An ordered, sliceable list of experiences with a name (`train`, `test`, ...).
#[derive(Debug, Clone)]
pub struct Stream {
    name: String,
    experiences: Vec<Experience>,
}

impl Stream {
    /// A stream named `name`.
    pub fn new(name: impl Into<String>, experiences: Vec<Experience>) -> Self {
        Self { name: name.into(), experiences }
    }

    /// The stream's name; metric names use `<name>_stream`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of experiences.
    pub fn len(&self) -> usize {
        self.experiences.len()
    }

    /// Whether the stream has no experience.
    pub fn is_empty(&self) -> bool {
        self.experiences.is_empty()
    }

    /// Iterates over the experiences in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Experience> {
        self.experiences.iter()
    }

    /// The experiences as a slice.
    pub fn experiences(&self) -> &[Experience] {
        &self.experiences
    }

    /// Experience `i`, if it exists.
    pub fn get(&self, i: usize) -> Option<&Experience> {
        self.experiences.get(i)
    }

    /// The sub-stream of the experiences in `range` (same name, experiences keep their index).
    pub fn slice(&self, range: impl RangeBounds<usize>) -> Stream {
        use std::ops::Bound::*;
        let start = match range.start_bound() {
            Included(&s) => s,
            Excluded(&s) => s + 1,
            Unbounded => 0,
        };
        let end = match range.end_bound() {
            Included(&e) => e + 1,
            Excluded(&e) => e,
            Unbounded => self.len(),
        }
        .min(self.len());
        Stream { name: self.name.clone(), experiences: self.experiences[start.min(end)..end].to_vec() }
    }
}

impl Index<usize> for Stream {
    type Output = Experience;
    fn index(&self, i: usize) -> &Experience {
        &self.experiences[i]
    }
}

impl<'a> IntoIterator for &'a Stream {
    type Item = &'a Experience;
    type IntoIter = std::slice::Iter<'a, Experience>;
    fn into_iter(self) -> Self::IntoIter {
        self.experiences.iter()
    }
}
