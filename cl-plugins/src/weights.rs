//! [`ExperienceWeight`]: a hyper-parameter given once or once per experience (LwF's `alpha`,
//! LFL's `lambda_e`, as Avalanche's number-or-list arguments).

use cl_core::{ClError, Result};

/// A weight for every experience, or one per experience (indexed by the number of experiences
/// trained so far, as Avalanche's list form; entry 0 weighs the first experience, on which
/// distillation-style plugins have no previous model yet).
#[derive(Debug, Clone, PartialEq)]
pub enum ExperienceWeight {
    /// The same weight for every experience.
    Constant(f64),
    /// `weights[i]` applies while training the experience that follows `i` trained ones.
    PerExperience(Vec<f64>),
}

impl ExperienceWeight {
    /// The weight used after `trained` experiences; an error if a per-experience list is too
    /// short (Avalanche fails with an `IndexError` there).
    pub fn at(&self, trained: usize) -> Result<f64> {
        self.at_named(trained, "weight")
    }

    /// Errors for a negative or non-finite weight, or an empty list.
    pub fn validate(&self) -> Result<()> {
        self.validate_named("weight")
    }

    /// [`at`](Self::at), naming the hyper-parameter (`alpha`, `lambda_e`) in the error.
    pub(crate) fn at_named(&self, trained: usize, name: &'static str) -> Result<f64> {
        match self {
            ExperienceWeight::Constant(w) => Ok(*w),
            ExperienceWeight::PerExperience(v) => v.get(trained).copied().ok_or_else(|| {
                ClError::config(name, format!("{} values given, none for experience {trained}", v.len()))
            }),
        }
    }

    /// [`validate`](Self::validate), naming the hyper-parameter in the error.
    pub(crate) fn validate_named(&self, name: &'static str) -> Result<()> {
        let values: &[f64] = match self {
            ExperienceWeight::Constant(w) => std::slice::from_ref(w),
            ExperienceWeight::PerExperience(v) => v,
        };
        if values.is_empty() {
            return Err(ClError::config(name, "the per-experience list is empty"));
        }
        if let Some(w) = values.iter().find(|w| !w.is_finite() || **w < 0.0) {
            return Err(ClError::config(name, format!("must be finite and ≥ 0, got {w}")));
        }
        Ok(())
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
