//! [`JsonLinesLogger`]: one JSON record per emitted metric value.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use cl_core::evaluation::{LogEvent, Logger, MetricValue};

/// Appends every emitted value to a file as one JSON object per line, in the
/// [`MetricValue`] format (`{"name":...,"value":...,"x_plot":...}`, plus `"data"` for
/// matrices); [`read_json_lines`] reads it back.
#[derive(Debug)]
pub struct JsonLinesLogger {
    out: BufWriter<File>,
}

impl JsonLinesLogger {
    /// Creates (truncates) the file, and its folder.
    pub fn new(path: impl AsRef<Path>) -> io::Result<Self> {
        if let Some(dir) = path.as_ref().parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        Ok(Self { out: BufWriter::new(File::create(path)?) })
    }
}

impl Logger for JsonLinesLogger {
    fn log(&mut self, event: &LogEvent<'_>) -> io::Result<()> {
        for v in event.values {
            serde_json::to_writer(&mut self.out, v)?;
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Reads a file written by [`JsonLinesLogger`] (blank lines skipped).
pub fn read_json_lines(path: impl AsRef<Path>) -> io::Result<Vec<MetricValue>> {
    let mut values = Vec::new();
    for line in BufReader::new(File::open(path)?).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        values.push(serde_json::from_str(&line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?);
    }
    Ok(values)
}
