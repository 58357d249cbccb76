//! The error type of `cl-benchmarks`.

use cl_core::ClError;

use crate::data_error::DataError;

/// Errors building a benchmark: bad arguments, data that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum BenchmarkError {
    /// An argument is invalid; the message says which values are accepted.
    #[error("invalid benchmark argument `{argument}`: {reason}")]
    InvalidArgument {
        /// The argument.
        argument: &'static str,
        /// Why it is rejected.
        reason: String,
    },
    /// The dataset files could not be found or read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A dataset operation failed.
    #[error(transparent)]
    Core(#[from] ClError),
}

impl BenchmarkError {
    pub(crate) fn arg(argument: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            argument,
            reason: reason.into(),
        }
    }
}
