//! The checkpoint file: a header (format and library versions, the run's identity, a checksum)
//! and the payload (one [`StateDict`]), written atomically.
//!
//! Layout: the magic bytes `CLCKPT\r\n`, the format version (`u32`, little-endian), the header's
//! length (`u64`) and the header as JSON, then the payload. The version comes before the header so
//! that a later format can change the header; the SHA-256 of the payload is in the header.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::state_dict::StateDict;
use crate::clock::Clock;
use crate::error::{ClError, Result};

/// The checkpoint format this library writes and reads.
pub const FORMAT_VERSION: u32 = 1;

const MAGIC: &[u8; 8] = b"CLCKPT\r\n";

/// The file extension of checkpoints in a run directory.
pub const EXTENSION: &str = "clckpt";

/// What a checkpoint says about itself, readable without loading it ([`read_header`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointHeader {
    /// The format version ([`FORMAT_VERSION`] when written by this library).
    pub format_version: u32,
    /// The `cl` version that wrote it.
    pub library_version: String,
    /// The Burn version it was built against.
    pub burn_version: String,
    /// Seconds since the Unix epoch when it was written.
    pub created_unix_s: u64,
    /// The run's identity: training configuration (seed included), optimizer, criterion, model,
    /// steps, plugins and evaluator types. A resume checks it against the resuming strategy.
    pub run: serde_json::Value,
    /// The loop's counters when it was taken.
    pub clock: Clock,
    /// The payload's length in bytes.
    pub payload_len: u64,
    /// The payload's SHA-256, hexadecimal.
    pub payload_sha256: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn io_error(path: &Path, source: std::io::Error) -> ClError {
    ClError::Io { path: path.to_path_buf(), source }
}

/// Encodes a checkpoint (header and payload) into bytes.
pub(crate) fn encode(run: serde_json::Value, clock: Clock, payload: &StateDict) -> Vec<u8> {
    let payload = payload.to_bytes();
    let header = CheckpointHeader {
        format_version: FORMAT_VERSION,
        library_version: env!("CARGO_PKG_VERSION").to_string(),
        burn_version: "0.22.1".to_string(),
        created_unix_s: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        run,
        clock,
        payload_len: payload.len() as u64,
        payload_sha256: hex(&Sha256::digest(&payload)),
    };
    let header = serde_json::to_vec(&header).expect("the header serialises");
    let mut out = Vec::with_capacity(20 + header.len() + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&payload);
    out
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, flushed to disk,
/// then renamed over `path` (and the directory synced), so a crash at any point leaves either
/// the old file or the new one, never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "checkpoint".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        stall_for_tests(&mut f, path, bytes)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        // The rename itself reaches the disk when the directory is synced (Unix; elsewhere a
        // directory cannot be opened, and the rename is durable on its own).
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_error(path, e)
    })
}

/// The environment variable of the crash tests: `n` makes the `n`-th checkpoint write of the
/// process stop halfway through its temporary file (after creating `<checkpoint>.stalled`) and
/// wait forever, so a test can kill the process *during* a checkpoint write.
#[doc(hidden)]
pub const STALL_WRITE_ENV: &str = "CL_CHECKPOINT_TEST_STALL_WRITE";

fn stall_for_tests(f: &mut File, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let n = WRITES.fetch_add(1, Ordering::SeqCst) + 1;
    if std::env::var(STALL_WRITE_ENV).ok().and_then(|v| v.parse::<u64>().ok()) == Some(n) {
        f.write_all(&bytes[..bytes.len() / 2])?;
        f.sync_all()?;
        File::create(path.with_extension("stalled"))?;
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
    Ok(())
}

fn corrupt(path: &Path, problem: impl Into<String>) -> ClError {
    ClError::CorruptCheckpoint { path: path.to_path_buf(), problem: problem.into() }
}

/// Parses the header of checkpoint bytes; returns it and the payload's offset.
fn parse_header(path: &Path, bytes: &[u8]) -> Result<(CheckpointHeader, usize)> {
    if bytes.len() < 20 {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] == MAGIC {
            return Err(corrupt(path, format!("truncated: {} bytes, shorter than a header", bytes.len())));
        }
        return Err(corrupt(path, "not a cl checkpoint (no `CLCKPT` magic bytes)"));
    }
    if &bytes[..8] != MAGIC {
        return Err(corrupt(path, "not a cl checkpoint (no `CLCKPT` magic bytes)"));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    let header_len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes")) as usize;
    let header_end = 20usize.saturating_add(header_len);
    if version != FORMAT_VERSION {
        // Read what a later format says about its writer, if its header is still JSON.
        let writer = bytes
            .get(20..header_end)
            .and_then(|h| serde_json::from_slice::<serde_json::Value>(h).ok())
            .and_then(|h| h.get("library_version").and_then(|v| v.as_str()).map(str::to_string))
            .unwrap_or_else(|| "an unknown version".into());
        return Err(ClError::CheckpointVersion {
            path: path.to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
            writer,
            library: env!("CARGO_PKG_VERSION").to_string(),
        });
    }
    let header_bytes = bytes.get(20..header_end).ok_or_else(|| {
        corrupt(path, format!("truncated: {} bytes, the header alone needs {header_end}", bytes.len()))
    })?;
    let header: CheckpointHeader =
        serde_json::from_slice(header_bytes).map_err(|e| corrupt(path, format!("corrupt header: {e}")))?;
    Ok((header, header_end))
}

/// Reads only the header of the checkpoint at `path` (its version, run configuration, clock).
pub fn read_header(path: &Path) -> Result<CheckpointHeader> {
    use std::io::Read;
    let mut f = File::open(path).map_err(|e| io_error(path, e))?;
    let mut head = [0u8; 20];
    let n = f.read(&mut head).map_err(|e| io_error(path, e))?;
    let mut bytes = head[..n].to_vec();
    if n == 20 && &head[..8] == MAGIC {
        // The header only, however large the payload.
        let header_len = u64::from_le_bytes(head[12..20].try_into().expect("8 bytes"));
        f.take(header_len).read_to_end(&mut bytes).map_err(|e| io_error(path, e))?;
    }
    parse_header(path, &bytes).map(|(h, _)| h)
}

/// Reads and verifies the checkpoint at `path`: magic bytes, format version, length and
/// checksum, then decodes the payload.
pub fn read_checkpoint(path: &Path) -> Result<(CheckpointHeader, StateDict)> {
    let bytes = fs::read(path).map_err(|e| io_error(path, e))?;
    let (header, start) = parse_header(path, &bytes)?;
    let payload = &bytes[start..];
    if (payload.len() as u64) < header.payload_len {
        return Err(corrupt(path, format!("truncated: {} of {} payload bytes", payload.len(), header.payload_len)));
    }
    if (payload.len() as u64) > header.payload_len {
        return Err(corrupt(path, format!("{} bytes after the payload", payload.len() as u64 - header.payload_len)));
    }
    if hex(&Sha256::digest(payload)) != header.payload_sha256 {
        return Err(corrupt(path, "corrupt: the payload's checksum does not match the header's"));
    }
    let dict = StateDict::from_bytes(payload, "checkpoint").map_err(|e| corrupt(path, e.to_string()))?;
    Ok((header, dict))
}

/// The number of a run directory's checkpoint file (`ckpt-000012.clckpt` → 12).
pub(crate) fn checkpoint_number(path: &Path) -> Option<u64> {
    if path.extension()? != EXTENSION {
        return None;
    }
    path.file_stem()?.to_str()?.strip_prefix("ckpt-")?.parse().ok()
}

/// The numbered checkpoints of a run directory (`ckpt-<n>.clckpt`, as requests write them),
/// oldest first; other files (a checkpoint saved by hand under another name) are not listed.
pub fn list_checkpoints(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut files: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .map_err(|e| io_error(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter_map(|p| checkpoint_number(&p).map(|n| (n, p)))
        .collect();
    files.sort();
    Ok(files.into_iter().map(|(_, p)| p).collect())
}

/// The newest checkpoint of `dir` that reads and verifies, with its content; `None` if the
/// directory holds none. Unreadable newer ones (a file torn by a crash of an older version, a
/// corrupt disk) are skipped with a warning; if every one is unreadable, the newest's error.
pub fn latest_checkpoint(dir: &Path) -> Result<Option<(PathBuf, CheckpointHeader, StateDict)>> {
    let files = list_checkpoints(dir)?;
    let mut first_error = None;
    for path in files.iter().rev() {
        match read_checkpoint(path) {
            Ok((h, d)) => return Ok(Some((path.clone(), h, d))),
            Err(e) => {
                tracing::warn!("skipping checkpoint {}: {e}", path.display());
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

/// The file name of the `n`-th checkpoint of a run (sortable by name).
pub(crate) fn numbered_name(n: u64) -> String {
    format!("ckpt-{n:06}.{EXTENSION}")
}
