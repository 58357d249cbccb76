//! [`BenchmarkError`]: the error of the classic benchmarks, which read dataset files.
//!
//! The generators over datasets ([`crate::nc_benchmark`], ...) only fail on their arguments
//! and configs, and return [`cl_core::Result`]; the classic benchmarks ([`crate::split_fmnist`],
//! [`crate::BenchmarkConfig::build`], ...) may also fail to find or read the data.

use cl_core::ClError;

use crate::data_error::DataError;

/// Errors building a classic benchmark: a config that breaks a rule, data that cannot be found
/// or read.
#[derive(Debug, thiserror::Error)]
pub enum BenchmarkError {
    /// The dataset files could not be found or read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A config or argument is invalid ([`ClError::InvalidConfig`], naming the rule and the
    /// fix), or a dataset operation failed.
    #[error(transparent)]
    Core(#[from] ClError),
}

impl BenchmarkError {
    /// An invalid function argument ([`ClError::config`]: config `"argument"`, rule = the
    /// argument's name).
    pub(crate) fn arg(argument: &'static str, reason: impl Into<String>) -> Self {
        Self::Core(ClError::config(argument, reason))
    }

    /// The name of the validation rule that failed, for [`ClError::InvalidConfig`].
    pub fn rule(&self) -> Option<&'static str> {
        match self {
            Self::Core(e) => e.rule(),
            Self::Data(_) => None,
        }
    }
}
