//! [`ExperienceWeight`]: a hyper-parameter given once or once per experience (LwF's `alpha`,
//! LFL's `lambda_e`, SI's `si_lambda`: Avalanche's number-or-list arguments).

use serde::{Deserialize, Serialize};

/// A weight for every experience, or one per experience — Avalanche's `Union[float,
/// Sequence[float]]` arguments. It serialises as Avalanche writes it: a number (`alpha = 1.0`)
/// or a list (`alpha = [0.0, 1.0, 2.0]`).
///
/// Entry `i` of a list applies while training the experience that follows `i` trained ones
/// (`clock.train_exp_counter == i`); on experience 0 distillation-style plugins have no previous
/// model yet, so entry 0 only has to exist. What happens past the end of the list depends on
/// the plugin, as in Avalanche: LwF and LFL fail ([`at`](Self::at) is `None`, Avalanche's
/// `IndexError`), SI repeats the last value ([`at_or_last`](Self::at_or_last)).
///
/// ```
/// use cl_plugins::ExperienceWeight;
/// assert_eq!(ExperienceWeight::from(0.5).at(7), Some(0.5));
/// let w = ExperienceWeight::from(vec![0.0, 1.0]);
/// assert_eq!((w.at(1), w.at(2), w.at_or_last(5)), (Some(1.0), None, 1.0));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ExperienceWeight {
    /// The same weight for every experience.
    Constant(f64),
    /// `weights[i]` applies while training the experience that follows `i` trained ones.
    PerExperience(Vec<f64>),
}

impl ExperienceWeight {
    /// The weight while training the experience after `trained` ones; `None` past the end of a
    /// per-experience list.
    pub fn at(&self, trained: usize) -> Option<f64> {
        match self {
            ExperienceWeight::Constant(w) => Some(*w),
            ExperienceWeight::PerExperience(v) => v.get(trained).copied(),
        }
    }

    /// The weight while training the experience after `trained` ones, the last value of a
    /// per-experience list repeating past its end (SI's rule); 0 for an empty list (which
    /// validation rejects).
    pub fn at_or_last(&self, trained: usize) -> f64 {
        match self {
            ExperienceWeight::Constant(w) => *w,
            ExperienceWeight::PerExperience(v) => v.get(trained).or(v.last()).copied().unwrap_or(0.0),
        }
    }

    /// The values (one for a constant).
    pub fn values(&self) -> &[f64] {
        match self {
            ExperienceWeight::Constant(w) => std::slice::from_ref(w),
            ExperienceWeight::PerExperience(v) => v,
        }
    }

    /// Whether this is an empty per-experience list (every config rejects it).
    pub fn is_empty(&self) -> bool {
        self.values().is_empty()
    }

    /// Whether every value is a finite number `>= 0`.
    pub fn all_finite_non_negative(&self) -> bool {
        self.values().iter().all(|w| cl_core::config::finite_non_negative(*w))
    }

    /// The error of a plugin that needs a value past the end of the list.
    pub(crate) fn missing(&self, plugin: &str, name: &str, trained: usize) -> cl_core::ClError {
        cl_core::ClError::Plugin {
            plugin: plugin.to_string(),
            callback: "before_backward",
            message: format!(
                "`{name}` has {} values, none for experience {trained} (give one value per experience, or a \
                 single number; Avalanche fails with an IndexError here)",
                self.values().len()
            ),
        }
    }
}

impl Default for ExperienceWeight {
    /// `1.0` for every experience.
    fn default() -> Self {
        ExperienceWeight::Constant(1.0)
    }
}

impl From<f64> for ExperienceWeight {
    fn from(w: f64) -> Self {
        ExperienceWeight::Constant(w)
    }
}

impl From<Vec<f64>> for ExperienceWeight {
    fn from(v: Vec<f64>) -> Self {
        ExperienceWeight::PerExperience(v)
    }
}

impl From<&[f64]> for ExperienceWeight {
    fn from(v: &[f64]) -> Self {
        ExperienceWeight::PerExperience(v.to_vec())
    }
}

impl<const N: usize> From<[f64; N]> for ExperienceWeight {
    fn from(v: [f64; N]) -> Self {
        ExperienceWeight::PerExperience(v.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use cl_core::config::{ConfigFile, Validate};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Holder {
        w: ExperienceWeight,
    }

    impl Validate for Holder {
        fn validate(&self) -> cl_core::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn serialises_as_a_number_or_a_list() {
        for w in [ExperienceWeight::from(0.25), ExperienceWeight::from(vec![0.0, 1.5])] {
            let h = Holder { w };
            assert_eq!(Holder::from_json(&h.to_json()).unwrap(), h);
            assert_eq!(Holder::from_toml(&h.to_toml().unwrap()).unwrap(), h);
        }
        assert!(Holder { w: 0.5.into() }.to_json().contains(r#""w": 0.5"#));
        assert!(Holder { w: vec![1.0].into() }.to_toml().unwrap().contains("w = [1.0]"));
        assert_eq!(Holder::from_toml("w = 2").unwrap().w, ExperienceWeight::Constant(2.0));
        assert_eq!(Holder::from_toml("w = [1, 0.5]").unwrap().w, ExperienceWeight::from(vec![1.0, 0.5]));
        assert_eq!(Holder::from_json(r#"{"w": [0.5]}"#).unwrap().w, ExperienceWeight::from(vec![0.5]));
    }

    #[test]
    fn lookup_rules() {
        let w = ExperienceWeight::from([3.0, 4.0]);
        assert_eq!((w.at(0), w.at(1), w.at(2)), (Some(3.0), Some(4.0), None));
        assert_eq!((w.at_or_last(0), w.at_or_last(9)), (3.0, 4.0));
        assert!(ExperienceWeight::from(vec![]).is_empty());
        assert!(!ExperienceWeight::from(vec![1.0, -1.0]).all_finite_non_negative());
        assert!(!ExperienceWeight::from(f64::NAN).all_finite_non_negative());
    }
}
