//! [`JsonLinesLogger`]: one JSON record per emitted metric value; [`read_json_lines`] reads the
//! file back, also the file of a killed run.

use std::io;
use std::path::Path;

use cl_core::checkpoint::StateDict;
use cl_core::evaluation::{LogEvent, Logger, MetricValue};

use super::file::LogFile;

/// Appends every emitted value to a file as one JSON object per line, in the
/// [`MetricValue`] format (`{"name":...,"value":...,"x_plot":...}`, plus `"data"` for
/// matrices); [`read_json_lines`] reads it back.
///
/// Crash-safe: the values of a callback go to the file in one `write` call as soon as they are
/// emitted (no buffer), each line whole and ending in `\n`, so a killed run leaves at most one
/// torn last line, which [`read_json_lines`] skips and reports. Resumable: the file is not
/// truncated when the logger is built, only by the first record of a fresh run; a checkpoint
/// saves its length ([`Logger::save_state`]) and a resumed run cuts the file back to it and
/// appends, so the log of a resumed run has every record once.
#[derive(Debug)]
pub struct JsonLinesLogger {
    file: LogFile,
}

impl JsonLinesLogger {
    /// Opens the file, creating it and its folder; its content is replaced when the first value
    /// of a fresh run is logged (a resumed run continues it instead).
    pub fn new(path: impl AsRef<Path>) -> io::Result<Self> {
        Ok(Self { file: LogFile::open(path)? })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

impl Logger for JsonLinesLogger {
    fn log(&mut self, event: &LogEvent<'_>) -> io::Result<()> {
        let mut lines = Vec::new();
        for v in event.values {
            serde_json::to_writer(&mut lines, v)?;
            lines.push(b'\n');
        }
        // Also without values: the first callback of a fresh run starts (truncates) the file.
        self.file.append(&lines)
    }

    /// Saves the file's length (after syncing it to the disk).
    fn save_state(&mut self, out: &mut StateDict) -> cl_core::Result<()> {
        self.file.save_state(out)
    }

    /// Cuts the file back to the saved length; the next values are appended after it.
    fn load_state(&mut self, state: &StateDict) -> cl_core::Result<()> {
        self.file.load_state(state)
    }
}

/// The records of a JSON lines file ([`read_json_lines`]).
#[derive(Debug, Clone, PartialEq)]
pub struct JsonLines {
    /// The values, in file order.
    pub records: Vec<MetricValue>,
    /// The 1-based number of the last line if it was torn (cut before its end, as a run killed
    /// while writing leaves it) and skipped; `None` when the file ends with a whole record.
    pub torn_last_line: Option<usize>,
}

/// `serde_json`'s message without its position (it parses one line, so it always says line 1).
fn message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    full.strip_suffix(&suffix).unwrap_or(&full).to_string()
}

/// Reads a file written by [`JsonLinesLogger`] (blank lines skipped).
///
/// The last line, when it does not end with `\n` and is not a whole record, is the record a
/// killed run was writing: it is skipped, reported in [`JsonLines::torn_last_line`] and logged
/// as a warning, and every whole record is kept. Any other line that is not a record is an
/// [`InvalidData`](io::ErrorKind::InvalidData) error naming the file, the line and the column.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("metrics.jsonl");
/// std::fs::write(&path, "{\"name\":\"a\",\"value\":0.5,\"x_plot\":3}\n{\"name\":\"b\",\"val")?;
/// let read = cl_metrics::read_json_lines(&path)?;
/// assert_eq!(read.records.len(), 1);
/// assert_eq!(read.torn_last_line, Some(2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_json_lines(path: impl AsRef<Path>) -> io::Result<JsonLines> {
    let path = path.as_ref();
    let bytes = std::fs::read(path)?;
    let mut records = Vec::new();
    let mut torn_last_line = None;
    let mut lines = bytes.split(|&b| b == b'\n').enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice(line) {
            Ok(v) => records.push(v),
            // The last piece of `split` is what follows the last `\n`: a line without its end.
            // Cut short (end of input or broken syntax), not a whole record of another shape.
            Err(e) if lines.peek().is_none() && (e.is_eof() || e.is_syntax()) => {
                tracing::warn!(
                    file = %path.display(),
                    line = i + 1,
                    "skipping the torn last line of a JSON lines file (a run killed while writing it)"
                );
                torn_last_line = Some(i + 1);
            }
            Err(e) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: line {} column {}: {}", path.display(), i + 1, e.column(), message(&e)),
                ));
            }
        }
    }
    Ok(JsonLines { records, torn_last_line })
}
