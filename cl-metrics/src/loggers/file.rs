//! [`LogFile`]: a log file written record by record, that a resumed run continues.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use cl_core::checkpoint::StateDict;
use cl_core::{ClError, Result};

/// A log file written by whole records, crash-safe and resumable:
///
/// - opening it creates the file (and its folder) but does **not** truncate it: a run that is
///   then resumed keeps what the interrupted run wrote;
/// - the first record of a fresh run truncates it ([`start`](Self::start));
/// - every record goes to the file in one `write` call, unbuffered: a kill leaves at most the
///   last record torn, and nothing finished is lost;
/// - [`save_state`](Self::save_state) syncs the file and saves its length;
///   [`load_state`](Self::load_state) truncates the file back to that length (dropping what the
///   interrupted run wrote after the checkpoint, a torn record included), so a resumed run
///   appends after the checkpoint's records: no duplicate, no gap.
#[derive(Debug)]
pub(crate) struct LogFile {
    path: PathBuf,
    file: File,
    /// Bytes of this run's log.
    len: u64,
    /// Whether this run has started the file (truncated it, or restored it from a checkpoint).
    started: bool,
}

/// Creates `path`'s folder.
pub(crate) fn create_parent(path: &Path) -> io::Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir),
        None => Ok(()),
    }
}

impl LogFile {
    /// Opens `path` for appending, creating it and its folder; keeps its content.
    pub(crate) fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        create_parent(&path)?;
        let file = OpenOptions::new().append(true).create(true).open(&path)?;
        Ok(Self { path, file, len: 0, started: false })
    }

    /// Opens a new file at `path` (an error if it exists).
    pub(crate) fn create_new(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new().append(true).create_new(true).open(&path)?;
        Ok(Self { path, file, len: 0, started: false })
    }

    /// Opens an existing file at `path` for appending (an error if there is none).
    pub(crate) fn open_existing(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new().append(true).open(&path)?;
        Ok(Self { path, file, len: 0, started: false })
    }

    /// Whether nothing was written to the file, by this run or before.
    pub(crate) fn is_empty_new(&self) -> bool {
        !self.started && self.file.metadata().is_ok_and(|m| m.len() == 0)
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Starts a fresh run's log on the first call (truncates the file) and returns `true`
    /// then; `false` once started or restored.
    pub(crate) fn start(&mut self) -> io::Result<bool> {
        if self.started {
            return Ok(false);
        }
        self.file.set_len(0)?;
        self.len = 0;
        self.started = true;
        Ok(true)
    }

    /// Appends whole records (one `write` call). On an error the file is cut back to its last
    /// whole record, so a later record never follows a partial one.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.start()?;
        if bytes.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all(bytes) {
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        self.len += bytes.len() as u64;
        Ok(())
    }

    fn io_error(&self, source: io::Error) -> ClError {
        ClError::Io { path: self.path.clone(), source }
    }

    /// Syncs the file to the disk (so the length saved is there even after a power loss) and
    /// saves its length.
    pub(crate) fn save_state(&mut self, out: &mut StateDict) -> Result<()> {
        if self.started {
            self.file.sync_data().map_err(|e| self.io_error(e))?;
        }
        out.put("started", &self.started)?;
        out.put("len", &self.len)
    }

    /// Goes back to the length [`save_state`](Self::save_state) saved: truncates what was
    /// written after it. A file shorter than that (replaced, or cut by hand since) is an error.
    pub(crate) fn load_state(&mut self, state: &StateDict) -> Result<()> {
        let started: bool = state.get("started")?;
        let len: u64 = state.get("len")?;
        if !started {
            // Saved before this log's first record: the resumed run starts it as a fresh one.
            self.started = false;
            self.len = 0;
            return Ok(());
        }
        let actual = self.file.metadata().map_err(|e| self.io_error(e))?.len();
        if actual < len {
            return Err(ClError::CheckpointEntry {
                component: state.component().to_string(),
                key: "len".into(),
                reason: format!(
                    "the log file {} has {actual} bytes, fewer than the {len} the checkpoint recorded: it was cut \
                     or replaced after the checkpoint; put the file back as it was to resume this run",
                    self.path.display()
                ),
            });
        }
        self.file.set_len(len).map_err(|e| self.io_error(e))?;
        self.len = len;
        self.started = true;
        Ok(())
    }
}
