//! The run journal: the top-level `train`/`eval` calls a run made, so that a resumed strategy
//! driven by the same loop skips what the checkpointed run already did.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::scenario::Experience;

/// An experience, as the journal names it: its stream and its index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExperienceKey {
    /// The stream's name (`train`, `test`, ...).
    pub stream: String,
    /// The experience's index in its stream.
    pub experience: usize,
}

impl ExperienceKey {
    pub(crate) fn of(experiences: &[Experience]) -> Vec<Self> {
        experiences.iter().map(|e| Self { stream: e.origin_stream.clone(), experience: e.current_experience }).collect()
    }
}

fn describe(keys: &[ExperienceKey]) -> String {
    match keys {
        [] => "no experience".into(),
        [k] => format!("experience {} of `{}`", k.experience, k.stream),
        [first, .., last] => {
            format!(
                "experiences {}..={} of `{}` ({} in all)",
                first.experience,
                last.experience,
                first.stream,
                keys.len()
            )
        }
    }
}

/// One top-level call of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum RunCall {
    /// `train(experiences)`: `done` experiences (of those the steps train on) finished;
    /// `finished` once `after_training` ran too.
    Train {
        /// The experiences given to `train`.
        experiences: Vec<ExperienceKey>,
        /// How many experiences the call trains on (after the steps' transformation: one for
        /// joint training).
        total: usize,
        /// Experiences trained so far.
        done: usize,
        /// Whether the call returned.
        finished: bool,
        /// What the call returned (the evaluator's last metrics; saved as bits, so NaN and
        /// infinities come back exactly).
        #[serde(with = "f64_bits")]
        metrics: BTreeMap<String, f64>,
    },
    /// `eval(experiences)`.
    Eval {
        /// The experiences given to `eval`.
        experiences: Vec<ExperienceKey>,
        /// What the call returned.
        #[serde(with = "f64_bits")]
        metrics: BTreeMap<String, f64>,
    },
}

impl RunCall {
    /// A description for error messages: `train(experiences 0..=4 of \`train\`)`.
    pub fn describe(&self) -> String {
        match self {
            RunCall::Train { experiences, .. } => format!("train({})", describe(experiences)),
            RunCall::Eval { experiences, .. } => format!("eval({})", describe(experiences)),
        }
    }

    pub(crate) fn describe_call(train: bool, keys: &[ExperienceKey]) -> String {
        if train { format!("train({})", describe(keys)) } else { format!("eval({})", describe(keys)) }
    }
}

/// Serde of metric maps by the bits of their values (JSON has no NaN or infinity).
pub(crate) mod f64_bits {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(map: &BTreeMap<String, f64>, s: S) -> Result<S::Ok, S::Error> {
        map.iter().map(|(k, v)| (k.clone(), v.to_bits())).collect::<BTreeMap<String, u64>>().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, f64>, D::Error> {
        Ok(BTreeMap::<String, u64>::deserialize(d)?.into_iter().map(|(k, v)| (k, f64::from_bits(v))).collect())
    }

    /// The map as bits, for [`StateDict::put`](crate::checkpoint::StateDict::put).
    pub fn to_bits(map: &BTreeMap<String, f64>) -> BTreeMap<String, u64> {
        map.iter().map(|(k, v)| (k.clone(), v.to_bits())).collect()
    }

    /// The map back from bits.
    pub fn from_bits(map: BTreeMap<String, u64>) -> BTreeMap<String, f64> {
        map.into_iter().map(|(k, v)| (k, f64::from_bits(v))).collect()
    }
}
