//! [`ReportError`]: why a results file could not be read or a picture not rendered.

use std::path::PathBuf;

/// Why a report could not be made. Every variant names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The results file could not be read (missing, unreadable).
    #[error("cannot read results file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The results file is not JSON of the expected shape.
    #[error("results file {path} is not {expected}: {message}")]
    Parse {
        /// The file (`<memory>` for a string).
        path: PathBuf,
        /// What was expected, e.g. "a metric history (a JSON array of {name, value, x_plot})".
        expected: &'static str,
        /// The parser's message (with line and column).
        message: String,
    },
    /// The results file parsed but holds nothing to draw.
    #[error("results file {path} has nothing to draw: {message}")]
    NoData {
        /// The file.
        path: PathBuf,
        /// What is missing.
        message: String,
    },
    /// The results are too large to draw (a corrupt file, or far more experiences or strategies
    /// than a picture can show).
    #[error("results file {path} is too large to draw: {message}")]
    TooLarge {
        /// The file (or, from the `render_*` functions, the picture).
        path: PathBuf,
        /// What is too large.
        message: String,
    },
    /// Drawing a picture failed.
    #[error("cannot render {path}: {message}")]
    Render {
        /// The picture being written.
        path: PathBuf,
        /// The drawing library's message.
        message: String,
    },
    /// Writing a picture (or creating its directory) failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// `Result` with [`ReportError`].
pub type Result<T, E = ReportError> = std::result::Result<T, E>;
