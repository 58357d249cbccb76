//! [`CliError`]: what can go wrong with a spec file, a grid, a run directory, an executor.

use std::path::PathBuf;

use cl::benchmarks::BenchmarkError;
use cl::core::ClError;
use cl::device::DeviceError;
use cl::report::ReportError;

/// The errors of the `cl` command line. Each names the file or directory involved and, where
/// there is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A spec or grid file could not be parsed: bad syntax, an unknown name (strategy, plugin,
    /// benchmark, model, metric), a misspelled key, a value of the wrong type.
    #[error("{}: {}{}{message}", path.display(), key.as_deref().map(|k| format!("key `{k}`: ")).unwrap_or_default(), line.map(|l| format!("(line {l}) ")).unwrap_or_default())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The key that failed, as a dotted path (`strategy.config.ewc_lambda`), when known.
        key: Option<String>,
        /// The line, when the parser gives it.
        line: Option<usize>,
        /// The parser's message (for an unknown name or key, it lists the accepted ones).
        message: String,
    },
    /// A spec's values break a rule of their configuration (a memory size of 0, a negative λ).
    #[error("{}{}: {source}", path.display(), run.as_deref().map(|r| format!(" (run {r})")).unwrap_or_default())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The run of a grid it concerns (its axis values), when from a grid.
        run: Option<String>,
        /// The rule that failed.
        #[source]
        source: Box<ClError>,
    },
    /// A grid that cannot expand into runs: an empty axis, a key that is not in the spec, zero
    /// runs, two runs with the same id.
    #[error("{}: {message}", path.display())]
    Grid {
        /// The grid file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A run failed in the library (training, evaluation, checkpoints).
    #[error(transparent)]
    Cl(Box<ClError>),
    /// The benchmark's data could not be loaded.
    #[error(transparent)]
    Benchmark(Box<BenchmarkError>),
    /// The spec's device is not available in this build.
    #[error("device: {0}")]
    Device(#[from] DeviceError),
    /// The pictures could not be drawn.
    #[error(transparent)]
    Report(Box<ReportError>),
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A run directory that holds another run (its `spec.json` differs from this spec).
    #[error(
        "{} holds another run (its spec.json differs from this spec: {difference}); give another --run-dir, \
         or --restart to delete it and start over",
        dir.display()
    )]
    RunDirMismatch {
        /// The run directory.
        dir: PathBuf,
        /// The first key that differs.
        difference: String,
    },
    /// Another process is running the run of this directory.
    #[error(
        "{} is being run by another process{holder}: wait for it to end, or stop it (a killed run resumes from its \
         checkpoints)",
        dir.display()
    )]
    RunDirBusy {
        /// The run directory.
        dir: PathBuf,
        /// Who holds it, from status.json.
        holder: String,
    },
    /// A directory with files that is not a run directory (no spec.json, no status.json).
    #[error(
        "{} is not a run directory (it has files but no spec.json or status.json): give a new or empty directory \
         with --run-dir",
        dir.display()
    )]
    NotARunDir {
        /// The directory.
        dir: PathBuf,
    },
    /// `--resume` was given but the run directory has no checkpoint.
    #[error("--resume: {} holds no checkpoint to resume from (run without --resume to start the run)", dir.display())]
    NothingToResume {
        /// The checkpoint directory searched.
        dir: PathBuf,
    },
    /// A run's result cannot be read from the metrics (e.g. no experience accuracy).
    #[error("{0}")]
    Results(String),
    /// A Slurm command is not installed or not on the search path.
    #[error(
        "Slurm's `{program}` was not found (searched: {}). Install Slurm's client commands (Debian/Ubuntu: \
         `apt-get install slurm-client`; on a cluster usually `module load slurm`), or give the folder that holds \
         them with --slurm-bin DIR (or CL_SLURM_BIN)",
        searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    SlurmMissing {
        /// `sbatch`, `squeue`, ...
        program: &'static str,
        /// The folders searched.
        searched: Vec<PathBuf>,
    },
    /// A Slurm command failed (e.g. the controller cannot be reached).
    #[error("`{command}` failed ({status}): {stderr}{hint}")]
    Slurm {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on standard error.
        stderr: String,
        /// How to fix it, when known.
        hint: String,
    },
    /// Runs of a sweep failed or did not complete (each failure recorded with its error in its
    /// run directory's status.json).
    #[error(
        "{failed} of {total} runs failed or did not complete (their status.json and run.log say why; `cl sweep` \
         again retries them, resuming from their checkpoints): {}",
        ids.join(", ")
    )]
    RunsFailed {
        /// How many failed.
        failed: usize,
        /// How many runs the sweep has.
        total: usize,
        /// The ids of the failed runs.
        ids: Vec<String>,
    },
    /// Bad command-line usage that the parser cannot see (e.g. `--shard 3/2`).
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

impl From<ClError> for CliError {
    fn from(e: ClError) -> Self {
        Self::Cl(Box::new(e))
    }
}

impl From<BenchmarkError> for CliError {
    fn from(e: BenchmarkError) -> Self {
        Self::Benchmark(Box::new(e))
    }
}

impl From<ReportError> for CliError {
    fn from(e: ReportError) -> Self {
        Self::Report(Box::new(e))
    }
}

/// `Result` with [`CliError`].
pub type Result<T, E = CliError> = std::result::Result<T, E>;
