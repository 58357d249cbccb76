//! The checked download: fetching files from mirrors, verifying their SHA-256, and extracting
//! the dataset files from a `.tar.gz` archive.
//!
//! Files are fetched by a [`Fetcher`] ([`CurlFetcher`] by default) into a temporary file in the
//! target directory (`.<name>.partial-<pid>`), checked against their published SHA-256, then
//! atomically renamed into place, so a target file is either absent or complete and verified.
//! Files already present with the right SHA-256 are not fetched again ([`fetch_files`]).
//! Archives are read with the `tar` crate; only the regular files directly under the
//! archive's dataset directory are extracted, and no member can escape it
//! ([`extract_tar_gz`]).
//!
//! This module knows no dataset: [`crate::files::download`] downloads a dataset described by
//! [`crate::files::DatasetFiles`] with it.

use std::cell::Cell;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cl_core::config::{Validate, rule};
use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

use crate::data_error::DataError;

/// Something that can fetch a URL into a local file.
pub trait Fetcher {
    /// Fetches `url` and writes its bytes to `dest` (creating or truncating it).
    fn fetch(&self, url: &str, dest: &Path) -> Result<(), DataError>;
}

/// A [`Fetcher`] that runs `curl -fsSL --retry <retry> -o <dest> <url>`; also the download
/// options (a serialisable config, see [`cl_core::config`]).
///
/// ```
/// use cl_benchmarks::download::CurlFetcher;
/// use cl_core::config::ConfigFile;
/// let fetcher = CurlFetcher::default().with_program("/usr/local/bin/curl").with_retry(5);
/// assert_eq!(CurlFetcher::from_toml(&fetcher.to_toml().unwrap()).unwrap(), fetcher);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CurlFetcher {
    /// The curl executable (default `curl`, looked up on `PATH`).
    pub program: PathBuf,
    /// How many times curl retries a transient failure (`--retry`, default 2).
    pub retry: u32,
    /// Seconds to wait for a connection (`--connect-timeout`, default 30).
    pub connect_timeout_s: u32,
    /// A transfer slower than 1 kB/s for this many seconds is abandoned (`--speed-limit 1024
    /// --speed-time`, default 60): a server that accepts and stalls does not hang the download.
    pub stall_timeout_s: u32,
    /// The longest one attempt may take (`--max-time`, default 3600 s).
    pub max_time_s: u32,
}

impl Default for CurlFetcher {
    fn default() -> Self {
        CurlFetcher {
            program: PathBuf::from("curl"),
            retry: 2,
            connect_timeout_s: 30,
            stall_timeout_s: 60,
            max_time_s: 3600,
        }
    }
}

impl CurlFetcher {
    /// The curl executable to run.
    pub fn with_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = program.into();
        self
    }

    /// How many times curl retries a transient failure.
    pub fn with_retry(mut self, retry: u32) -> Self {
        self.retry = retry;
        self
    }

    /// The connection, stall and total timeouts, in seconds.
    pub fn with_timeouts(mut self, connect_s: u32, stall_s: u32, max_s: u32) -> Self {
        (self.connect_timeout_s, self.stall_timeout_s, self.max_time_s) = (connect_s, stall_s, max_s);
        self
    }
}

impl Validate for CurlFetcher {
    fn validate(&self) -> cl_core::Result<()> {
        rule("CurlFetcher", "program_non_empty", !self.program.as_os_str().is_empty(), || {
            "program is empty; give the curl executable (`curl` to look it up on PATH)".to_string()
        })?;
        rule(
            "CurlFetcher",
            "timeouts_positive",
            self.connect_timeout_s > 0 && self.stall_timeout_s > 0 && self.max_time_s > 0,
            || "connect_timeout_s, stall_timeout_s and max_time_s must be at least 1 second".to_string(),
        )
    }
}

impl CurlFetcher {
    /// The longest a curl process may run before it is killed: curl's own limits (`--max-time`
    /// per attempt, `--retry-max-time` for starting retries) bound it by about twice
    /// `max_time_s`; this watchdog also covers a `program` that ignores them. It kills the
    /// process it started: a wrapper script that runs curl without `exec` would leave curl to
    /// its own timeouts.
    pub fn deadline(&self) -> Duration {
        Duration::from_secs(2 * u64::from(self.max_time_s) + u64::from(self.connect_timeout_s) + 5)
    }
}

impl Fetcher for CurlFetcher {
    /// Errors: [`DataError::FetcherUnavailable`] if curl cannot be started,
    /// [`DataError::FetchFailed`] (with curl's stderr) if it exits unsuccessfully or is killed
    /// at [`deadline`](CurlFetcher::deadline).
    fn fetch(&self, url: &str, dest: &Path) -> Result<(), DataError> {
        check_url(url, dest)?;
        // curl's messages go to a file beside `dest`, not a pipe: nothing can block on a pipe
        // that a stuck process holds open.
        let mut stderr_path = dest.as_os_str().to_owned();
        stderr_path.push(".curl-stderr");
        let stderr_path = PathBuf::from(stderr_path);
        let stderr = std::fs::File::create(&stderr_path).map_err(|e| DataError::io(&stderr_path, e))?;
        // `--` ends curl's options: the URL is never read as one.
        let spawned = Command::new(&self.program)
            .args(["-fsSL", "--retry", &self.retry.to_string()])
            .args(["--retry-max-time", &self.max_time_s.to_string()])
            .args(["--connect-timeout", &self.connect_timeout_s.to_string()])
            .args(["--speed-limit", "1024", "--speed-time", &self.stall_timeout_s.to_string()])
            .args(["--max-time", &self.max_time_s.to_string(), "-o"])
            .arg(dest)
            .arg("--")
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(source) => {
                let _ = std::fs::remove_file(&stderr_path);
                return Err(DataError::FetcherUnavailable { program: self.program.clone(), source });
            }
        };
        // The child is always waited for (reaped): on exit, or after being killed at the deadline.
        let deadline = Instant::now() + self.deadline();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!("killed after {} s (the fetcher's deadline)", self.deadline().as_secs()));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!("could not wait for curl: {e}"));
                }
            }
        };
        // At most 64 KiB of it: a misbehaving program could write until the deadline.
        let mut messages = Vec::new();
        if let Ok(f) = std::fs::File::open(&stderr_path) {
            let _ = f.take(64 * 1024).read_to_end(&mut messages);
        }
        let messages = String::from_utf8_lossy(&messages).into_owned();
        let _ = std::fs::remove_file(&stderr_path);
        match status {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => {
                Err(DataError::FetchFailed { url: url.to_string(), status: format!("curl {status}"), stderr: messages })
            }
            Err(status) => Err(DataError::FetchFailed { url: url.to_string(), status, stderr: messages }),
        }
    }
}

/// A file to download: its name in the target directory, its mirrors and its checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// The file name in the target directory (e.g. `train-images-idx3-ubyte.gz`).
    pub name: String,
    /// Mirror URLs, tried in order until one yields the right bytes.
    pub urls: Vec<String>,
    /// The expected SHA-256 of the file, hexadecimal (case-insensitive).
    pub sha256: String,
}

/// Downloads `files` into `dir` (created if needed) with `fetcher`.
///
/// A file already present with the right SHA-256 is skipped. Otherwise each
/// mirror is tried in order: its bytes go to `dir/.<name>.partial-<pid>`, are
/// checked against the SHA-256, and on success renamed to `dir/<name>`
/// (replacing a present file with wrong contents); on failure the partial file
/// is deleted and the next mirror tried.
///
/// Errors: [`DataError::Io`] for the directory or files; if every mirror of
/// a file fails, the error of the only mirror (e.g.
/// [`DataError::ChecksumMismatch`], [`DataError::FetchFailed`]) or, with
/// several mirrors (or none), [`DataError::AllMirrorsFailed`] listing each.
/// Files before the failing one stay installed.
pub fn fetch_files(fetcher: &dyn Fetcher, files: &[RemoteFile], dir: &Path) -> Result<(), DataError> {
    // Every file is checked before anything is fetched.
    files.iter().try_for_each(check_remote_file)?;
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    for file in files {
        let target = dir.join(&file.name);
        let expected = file.sha256.to_ascii_lowercase();
        if target.is_file() && sha256_file(&target)? == expected {
            continue;
        }
        let mut attempts = Vec::new();
        let mut done = false;
        for url in &file.urls {
            match fetch_verified(fetcher, url, file, &expected, &target) {
                Ok(()) => {
                    done = true;
                    break;
                }
                Err(e) => attempts.push((url.clone(), e)),
            }
        }
        if !done {
            return Err(match <[(String, DataError); 1]>::try_from(attempts) {
                Ok([(_, only)]) => only,
                Err(attempts) => DataError::AllMirrorsFailed { file: file.name.clone(), attempts },
            });
        }
    }
    Ok(())
}

/// A file to download must have a plain file name, a SHA-256 of 64 hexadecimal digits and
/// mirrors that cannot read as options.
fn check_remote_file(file: &RemoteFile) -> Result<(), DataError> {
    let bad = |reason: String| Err(DataError::BadDownload { file: file.name.clone(), reason });
    let plain = Path::new(&file.name).file_name().is_some_and(|n| n == file.name.as_str());
    if file.name.is_empty() || !plain || file.name.starts_with('.') {
        return bad("the name must be a plain file name (no `/`, no `..`, not hidden)".into());
    }
    if file.sha256.len() != 64 || !file.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
        return bad(format!("the SHA-256 `{}` is not 64 hexadecimal digits", file.sha256));
    }
    // (Which schemes work is the fetcher's business: `CurlFetcher` takes http(s):// and file://.)
    for url in &file.urls {
        if url.trim().is_empty() || url.starts_with('-') {
            return bad(format!("the mirror `{url}` is empty or begins with `-` (it would read as an option)"));
        }
    }
    Ok(())
}

fn is_fetchable_url(url: &str) -> bool {
    ["http://", "https://", "file://"].iter().any(|scheme| url.len() > scheme.len() && url.starts_with(scheme))
}

/// The URL check of a single fetch (a [`Fetcher`] may be called directly).
fn check_url(url: &str, dest: &Path) -> Result<(), DataError> {
    if is_fetchable_url(url) {
        return Ok(());
    }
    Err(DataError::BadDownload {
        file: dest.display().to_string(),
        reason: format!("`{url}` is not an http://, https:// or file:// URL"),
    })
}

/// Fetches one mirror into a partial file, verifies it, renames it into place.
fn fetch_verified(
    fetcher: &dyn Fetcher,
    url: &str,
    file: &RemoteFile,
    expected: &str,
    target: &Path,
) -> Result<(), DataError> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let partial = dir.join(format!(".{}.partial-{}", file.name, std::process::id()));
    let result = (|| {
        remove_if_present(&partial)?;
        fetcher.fetch(url, &partial)?;
        let actual = sha256_file(&partial)?;
        if actual != expected {
            return Err(DataError::ChecksumMismatch {
                file: file.name.clone(),
                expected: expected.to_string(),
                actual,
            });
        }
        // Make the bytes durable before the rename publishes them.
        std::fs::File::open(&partial).and_then(|f| f.sync_all()).map_err(|e| DataError::io(&partial, e))?;
        std::fs::rename(&partial, target).map_err(|e| DataError::io(target, e))
    })();
    if result.is_err() {
        // Best effort: the original error matters more than a failed cleanup.
        let _ = remove_if_present(&partial);
    }
    result
}

fn remove_if_present(path: &Path) -> Result<(), DataError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DataError::io(path, e)),
    }
}

/// The SHA-256 of a file's contents, lowercase hexadecimal.
pub fn sha256_file(path: &Path) -> Result<String, DataError> {
    let mut f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(to_hex(&hasher.finalize()))
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A reader that remembers whether its inner reader (the gzip decoder) failed, so that a
/// corrupt gzip stream is told apart from a malformed tar stream.
struct Watched<'a, R> {
    inner: R,
    failed: &'a Cell<bool>,
}

impl<R: Read> Read for Watched<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if e.kind() != std::io::ErrorKind::Interrupted {
                self.failed.set(true);
            }
        })
    }
}

/// Extracts the regular files directly under `subdir/` (e.g. the dataset files and the
/// label-name text files of `cifar-10-batches-bin/`) from the `.tar.gz` archive `archive` into
/// `dir/<subdir>`; returns `dir/<subdir>`.
///
/// Other entries are skipped, as is any member whose path would leave `dir/<subdir>` (`..`,
/// absolute paths, nested directories; see [`member_name`]): nothing is written outside
/// `dir/<subdir>`. GNU long names and pax paths are honoured (read here, at most 64 KiB each);
/// pax `size` records and GNU sparse members, which no dataset archive has, are refused.
/// Each file is written to a hidden partial file and renamed into place once complete.
///
/// Errors: [`DataError::Gzip`] if the gzip stream is corrupt or truncated;
/// [`DataError::BadArchive`] for a malformed or truncated tar stream or an archive lacking
/// some of `required` under `subdir/`; [`DataError::Io`].
pub fn extract_tar_gz(archive: &Path, dir: &Path, subdir: &str, required: &[&str]) -> Result<PathBuf, DataError> {
    let out_dir = dir.join(subdir);
    let f = std::fs::File::open(archive).map_err(|e| DataError::io(archive, e))?;
    let gzip_failed = Cell::new(false);
    let reader = Watched { inner: MultiGzDecoder::new(std::io::BufReader::new(f)), failed: &gzip_failed };
    let bad = |reason: String| DataError::BadArchive { path: archive.to_path_buf(), reason };
    let read_err = |e: std::io::Error| {
        if gzip_failed.get() {
            DataError::Gzip { path: Some(archive.to_path_buf()), source: e }
        } else {
            bad(format!("malformed or truncated tar stream ({e})"))
        }
    };
    let mut tar = tar::Archive::new(reader);
    let mut extracted: Vec<String> = Vec::new();
    // Raw entries: GNU long names and pax paths are read here, with a bound (the `tar` crate
    // would read an extension header of any declared size into memory).
    let mut long_name: Option<String> = None;
    for entry in tar.entries().map_err(read_err)?.raw(true) {
        let mut entry = entry.map_err(read_err)?;
        let kind = entry.header().entry_type();
        if kind.is_gnu_longname() || kind.is_pax_local_extensions() {
            let size = entry.size();
            let data = read_extension(&mut entry, size, &read_err, &bad)?;
            if kind.is_gnu_longname() {
                let name = data.split(|&b| b == 0).next().unwrap_or_default();
                long_name = Some(String::from_utf8_lossy(name).into_owned());
            } else if let Some(path) = pax_path(&data).map_err(|reason| bad(reason.to_string()))? {
                long_name = Some(path);
            }
            continue;
        }
        if kind.is_gnu_longlink() || kind.is_pax_global_extensions() {
            continue;
        }
        if kind.is_gnu_sparse() {
            return Err(bad("a GNU sparse member, which no dataset archive has".to_string()));
        }
        let path = long_name.take().unwrap_or_else(|| String::from_utf8_lossy(&entry.path_bytes()).into_owned());
        if !(kind.is_file() || kind.is_contiguous()) {
            continue;
        }
        let Some(base) = member_name(&path, subdir) else {
            continue;
        };
        std::fs::create_dir_all(&out_dir).map_err(|e| DataError::io(&out_dir, e))?;
        let target = out_dir.join(base);
        let partial = out_dir.join(format!(".{base}.partial-{}", std::process::id()));
        let size = entry.size();
        let written = copy_entry(&mut entry, size, &partial, &read_err, || {
            bad("truncated tar stream (it ends inside an entry)".to_string())
        })
        .and_then(|()| std::fs::rename(&partial, &target).map_err(|e| DataError::io(&target, e)));
        if written.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        written?;
        extracted.push(base.to_string());
    }
    let missing: Vec<&str> = required.iter().copied().filter(|n| !extracted.iter().any(|e| e == n)).collect();
    if !missing.is_empty() {
        return Err(bad(format!(
            "the archive lacks {} (under `{subdir}/`); it is not this dataset's archive",
            missing.join(", ")
        )));
    }
    Ok(out_dir)
}

/// The longest GNU long-name or pax extension header read (a path is at most a few KiB).
const MAX_EXTENSION_HEADER: u64 = 64 * 1024;

/// The data of a GNU long-name or pax extension entry, at most [`MAX_EXTENSION_HEADER`] bytes.
fn read_extension(
    entry: &mut impl Read,
    size: u64,
    read_err: &dyn Fn(std::io::Error) -> DataError,
    bad: &dyn Fn(String) -> DataError,
) -> Result<Vec<u8>, DataError> {
    if size > MAX_EXTENSION_HEADER {
        return Err(bad(format!(
            "an extension header (GNU long name or pax) of {size} bytes, over {MAX_EXTENSION_HEADER}; \
             not a dataset archive"
        )));
    }
    let mut data = Vec::with_capacity(size as usize);
    entry.take(size).read_to_end(&mut data).map_err(read_err)?;
    if (data.len() as u64) < size {
        return Err(bad("truncated tar stream (it ends inside an extension header)".to_string()));
    }
    Ok(data)
}

/// The `path` of a pax extension header (records `"<length> <key>=<value>\n"`), if it has one.
fn pax_path(data: &[u8]) -> Result<Option<String>, &'static str> {
    const MALFORMED: &str = "malformed pax extension header (records are `<length> <key>=<value>\\n`)";
    const UNSUPPORTED: &str =
        "a pax header with a `size` or `GNU.sparse` record (large or sparse members), which no dataset archive has";
    let mut rest = data;
    let mut path = None;
    while !rest.is_empty() && rest.iter().any(|&b| b != 0) {
        let space = rest.iter().position(|&b| b == b' ').ok_or(MALFORMED)?;
        let len: usize = std::str::from_utf8(&rest[..space]).ok().and_then(|l| l.parse().ok()).ok_or(MALFORMED)?;
        if len <= space + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(MALFORMED);
        }
        let record = &rest[space + 1..len - 1];
        let eq = record.iter().position(|&b| b == b'=').ok_or(MALFORMED)?;
        let key = &record[..eq];
        // In raw mode a pax `size` would not frame the entry (the `tar` crate applies it only
        // when it reads extensions itself), nor would sparse maps: refuse them rather than
        // misread the rest of the archive. The datasets' archives have neither.
        if key == b"size" || key.starts_with(b"GNU.sparse") {
            return Err(UNSUPPORTED);
        }
        if key == b"path" {
            path = Some(String::from_utf8_lossy(&record[eq + 1..]).into_owned());
        }
        rest = &rest[len..];
    }
    Ok(path)
}

/// Writes an entry's `size` bytes to a new file `dest`; an entry cut short is `truncated()`.
fn copy_entry(
    entry: &mut impl Read,
    size: u64,
    dest: &Path,
    read_err: &dyn Fn(std::io::Error) -> DataError,
    truncated: impl Fn() -> DataError,
) -> Result<(), DataError> {
    let f = std::fs::File::create(dest).map_err(|e| DataError::io(dest, e))?;
    let mut w = std::io::BufWriter::new(f);
    let mut buf = vec![0u8; 1 << 16];
    let mut copied = 0u64;
    loop {
        let n = match entry.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        w.write_all(&buf[..n]).map_err(|e| DataError::io(dest, e))?;
        copied += n as u64;
    }
    if copied < size {
        return Err(truncated());
    }
    let f = w.into_inner().map_err(|e| DataError::io(dest, e.into_error()))?;
    f.sync_all().map_err(|e| DataError::io(dest, e))
}

/// The file name of an archive member `<subdir>/<name>` (leading `./` allowed); `None` for
/// any other path, including those with `..`, absolute paths or further directories: the
/// check that keeps every extracted file inside `<subdir>`.
pub fn member_name<'a>(path: &'a str, subdir: &str) -> Option<&'a str> {
    if path.starts_with('/') || path.contains('\\') {
        return None;
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    match parts[..] {
        [dir, base] if dir == subdir && base != ".." => Some(base),
        _ => None,
    }
}

/// Writers of hand-made `.tar.gz` archives for tests: the `tar` crate's builder refuses the
/// malicious paths the extraction must withstand, so headers are written byte by byte.
#[cfg(test)]
pub(crate) mod test_tar {
    use std::io::Write;

    /// A ustar header for a member `name` of `size` bytes, type `kind` and link target `link`.
    pub(crate) fn header(name: &str, size: usize, kind: u8, link: &str) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h
    }

    /// Appends a member `name` holding `data`, of type `kind` (`b'0'` a regular file).
    pub(crate) fn entry(out: &mut Vec<u8>, name: &str, data: &[u8], kind: u8) {
        link(out, name, data, kind, "");
    }

    /// Appends a member with a link target (`b'1'` hard link, `b'2'` symbolic link).
    pub(crate) fn link(out: &mut Vec<u8>, name: &str, data: &[u8], kind: u8, target: &str) {
        out.extend_from_slice(&header(name, data.len(), kind, target));
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }

    /// The gzip compression of `bytes`.
    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    fn sha_hex(bytes: &[u8]) -> String {
        to_hex(&Sha256::digest(bytes))
    }

    /// Serves fixed bytes per URL (a missing URL fails) and records its calls.
    #[derive(Default)]
    struct FakeFetcher {
        bytes: HashMap<String, Vec<u8>>,
        calls: RefCell<Vec<(String, PathBuf)>>,
    }

    impl FakeFetcher {
        fn serving(pairs: &[(&str, &[u8])]) -> Self {
            FakeFetcher {
                bytes: pairs.iter().map(|(u, b)| (u.to_string(), b.to_vec())).collect(),
                calls: RefCell::default(),
            }
        }
    }

    impl Fetcher for FakeFetcher {
        fn fetch(&self, url: &str, dest: &Path) -> Result<(), DataError> {
            self.calls.borrow_mut().push((url.to_string(), dest.to_path_buf()));
            // The download goes to a hidden partial file, never to the final name.
            let name = dest.file_name().unwrap().to_str().unwrap();
            assert!(name.starts_with('.') && name.contains(".partial-"), "{name}");
            match self.bytes.get(url) {
                Some(b) => std::fs::write(dest, b).map_err(|e| DataError::io(dest, e)),
                None => {
                    // Leave a partial file behind, as an interrupted download would.
                    std::fs::write(dest, b"partial").unwrap();
                    Err(DataError::FetchFailed { url: url.to_string(), status: "fake".into(), stderr: "404".into() })
                }
            }
        }
    }

    fn remote(name: &str, urls: &[&str], content: &[u8]) -> RemoteFile {
        RemoteFile {
            name: name.to_string(),
            urls: urls.iter().map(|u| u.to_string()).collect(),
            sha256: sha_hex(content),
        }
    }

    fn dir_entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    }

    #[test]
    fn fetches_verifies_and_installs() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("new/sub");
        let fetcher = FakeFetcher::serving(&[("u://a", b"alpha"), ("u://b", b"beta")]);
        let files = [remote("a.gz", &["u://a"], b"alpha"), remote("b.gz", &["u://b"], b"beta")];
        fetch_files(&fetcher, &files, &dir).unwrap();
        assert_eq!(std::fs::read(dir.join("a.gz")).unwrap(), b"alpha");
        assert_eq!(std::fs::read(dir.join("b.gz")).unwrap(), b"beta");
        assert_eq!(dir_entries(&dir), vec!["a.gz", "b.gz"], "no partial file left");
        let calls = fetcher.calls.borrow();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].1, dir.join(format!(".a.gz.partial-{}", std::process::id())));
    }

    #[test]
    fn checksum_mismatch_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let fetcher = FakeFetcher::serving(&[("u://a", b"tampered")]);
        let files = [remote("a.gz", &["u://a"], b"alpha")];
        match fetch_files(&fetcher, &files, tmp.path()) {
            Err(DataError::ChecksumMismatch { file, expected, actual }) => {
                assert_eq!(file, "a.gz");
                assert_eq!(expected, sha_hex(b"alpha"));
                assert_eq!(actual, sha_hex(b"tampered"));
            }
            other => panic!("expected ChecksumMismatch, got {other:?}"),
        }
        assert!(dir_entries(tmp.path()).is_empty());
    }

    #[test]
    fn present_file_with_right_checksum_is_not_fetched() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.gz"), b"alpha").unwrap();
        let fetcher = FakeFetcher::default();
        // Upper-case expected checksum: compared case-insensitively.
        let mut file = remote("a.gz", &["u://a"], b"alpha");
        file.sha256 = file.sha256.to_uppercase();
        fetch_files(&fetcher, &[file], tmp.path()).unwrap();
        assert!(fetcher.calls.borrow().is_empty());
    }

    #[test]
    fn present_file_with_wrong_checksum_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.gz"), b"stale").unwrap();
        let fetcher = FakeFetcher::serving(&[("u://a", b"alpha")]);
        fetch_files(&fetcher, &[remote("a.gz", &["u://a"], b"alpha")], tmp.path()).unwrap();
        assert_eq!(std::fs::read(tmp.path().join("a.gz")).unwrap(), b"alpha");
        assert_eq!(dir_entries(tmp.path()), vec!["a.gz"]);
    }

    #[test]
    fn falls_back_to_next_mirror() {
        let tmp = tempfile::tempdir().unwrap();
        // First mirror fails outright, second serves wrong bytes, third is good.
        let fetcher = FakeFetcher::serving(&[("u://bad", b"xx"), ("u://good", b"alpha")]);
        let file = remote("a.gz", &["u://down", "u://bad", "u://good"], b"alpha");
        fetch_files(&fetcher, &[file], tmp.path()).unwrap();
        let urls: Vec<String> = fetcher.calls.borrow().iter().map(|c| c.0.clone()).collect();
        assert_eq!(urls, vec!["u://down", "u://bad", "u://good"]);
        assert_eq!(dir_entries(tmp.path()), vec!["a.gz"]);
    }

    #[test]
    fn all_mirrors_failing_lists_each() {
        let tmp = tempfile::tempdir().unwrap();
        let fetcher = FakeFetcher::serving(&[("u://bad", b"xx")]);
        let file = remote("a.gz", &["u://down", "u://bad"], b"alpha");
        let err = fetch_files(&fetcher, &[file], tmp.path()).unwrap_err();
        match &err {
            DataError::AllMirrorsFailed { file, attempts } => {
                assert_eq!(file, "a.gz");
                assert!(matches!(attempts[0], (ref u, DataError::FetchFailed { .. }) if u == "u://down"));
                assert!(matches!(attempts[1], (ref u, DataError::ChecksumMismatch { .. }) if u == "u://bad"));
            }
            other => panic!("expected AllMirrorsFailed, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("u://down") && msg.contains("u://bad"), "{msg}");
        assert!(dir_entries(tmp.path()).is_empty(), "partial files removed");
        // No mirror at all.
        let none = RemoteFile { name: "z".into(), urls: vec![], sha256: sha_hex(b"") };
        let err = fetch_files(&fetcher, &[none], tmp.path()).unwrap_err();
        assert!(matches!(err, DataError::AllMirrorsFailed { ref attempts, .. } if attempts.is_empty()));
    }

    fn curl_available() -> bool {
        let ok = Command::new("curl").arg("--version").output().is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!("note: `curl` is not installed; skipping the CurlFetcher test");
        }
        ok
    }

    #[test]
    fn curl_fetcher_file_url() {
        if !curl_available() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("source.bin");
        let content: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&src, &content).unwrap();
        let url = format!("file://{}", src.display());
        let out = tmp.path().join("out");
        let file = RemoteFile { name: "data.gz".into(), urls: vec![url], sha256: sha_hex(&content) };
        fetch_files(&CurlFetcher::default(), &[file], &out).unwrap();
        assert_eq!(std::fs::read(out.join("data.gz")).unwrap(), content);
        assert_eq!(dir_entries(&out), vec!["data.gz"]);

        // A missing source: curl fails, its stderr is reported, nothing is left.
        let missing = format!("file://{}", tmp.path().join("absent").display());
        let file = RemoteFile { name: "x.gz".into(), urls: vec![missing.clone()], sha256: sha_hex(b"") };
        match fetch_files(&CurlFetcher::default(), &[file], &out) {
            Err(DataError::FetchFailed { url, stderr, .. }) => {
                assert_eq!(url, missing);
                assert!(!stderr.trim().is_empty());
            }
            other => panic!("expected FetchFailed, got {other:?}"),
        }
        assert_eq!(dir_entries(&out), vec!["data.gz"]);
    }

    #[test]
    fn bad_names_checksums_and_urls_are_refused_before_any_fetch() {
        let tmp = tempfile::tempdir().unwrap();
        let good = remote("a.bin", &["file:///dev/null"], b"x");
        let cases = [
            (RemoteFile { name: "../a.bin".into(), ..good.clone() }, "plain file name"),
            (RemoteFile { name: "sub/a.bin".into(), ..good.clone() }, "plain file name"),
            (RemoteFile { sha256: "zz".into(), ..good.clone() }, "64 hexadecimal"),
            (RemoteFile { urls: vec!["--output=/etc/passwd".into()], ..good.clone() }, "begins with `-`"),
        ];
        for (file, expected) in cases {
            let err = fetch_files(&FakeFetcher::serving(&[]), &[good.clone(), file], tmp.path()).unwrap_err();
            assert!(matches!(&err, DataError::BadDownload { .. }) && err.to_string().contains(expected), "{err}");
            assert!(dir_entries(tmp.path()).is_empty(), "nothing was fetched");
        }
    }

    #[test]
    fn a_stalling_server_times_out_and_the_next_mirror_is_tried() {
        if !curl_available() {
            eprintln!("skipped: no curl");
            return;
        }
        // A server on 127.0.0.1 that accepts connections and never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().take(8).flatten() {
                held.push(stream);
            }
            std::thread::sleep(std::time::Duration::from_secs(30));
        });
        let tmp = tempfile::tempdir().unwrap();
        let source = tmp.path().join("source.bin");
        std::fs::write(&source, b"the real bytes").unwrap();
        let fetcher = CurlFetcher::default().with_retry(0).with_timeouts(2, 2, 4);
        let file = RemoteFile {
            name: "data.bin".into(),
            urls: vec![format!("http://127.0.0.1:{port}/data.bin"), format!("file://{}", source.display())],
            sha256: sha_hex(b"the real bytes"),
        };
        let start = std::time::Instant::now();
        fetch_files(&fetcher, std::slice::from_ref(&file), &tmp.path().join("out")).unwrap();
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "took {:?}", start.elapsed());
        assert_eq!(std::fs::read(tmp.path().join("out/data.bin")).unwrap(), b"the real bytes");
        // Alone, the stalled mirror is an error naming it, within the timeouts.
        let only = RemoteFile { urls: vec![format!("http://127.0.0.1:{port}/data.bin")], ..file };
        let start = std::time::Instant::now();
        let err = fetch_files(&fetcher, &[only], &tmp.path().join("out2")).unwrap_err();
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "took {:?}", start.elapsed());
        assert!(matches!(err, DataError::FetchFailed { .. }), "{err}");
    }

    /// A local HTTP server on 127.0.0.1 answering every connection with `respond`; its port.
    fn serve(respond: fn(std::net::TcpStream)) -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(16).flatten() {
                std::thread::spawn(move || respond(stream));
            }
        });
        port
    }

    /// Reads the request head (up to its blank line).
    fn read_request(stream: &mut std::net::TcpStream) {
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while !seen.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
            seen.push(byte[0]);
        }
    }

    #[test]
    fn servers_that_reset_truncate_or_serve_wrong_bytes_fall_through_to_the_next_mirror() {
        if !curl_available() {
            return;
        }
        // Closes the connection without reading the request: the kernel answers with a reset.
        let reset = serve(|stream| {
            std::thread::sleep(Duration::from_millis(100));
            drop(stream);
        });
        // Promises 1000 bytes, sends 10 and closes.
        let truncated = serve(|mut stream| {
            read_request(&mut stream);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789");
        });
        // A complete answer with other bytes than the published checksum's.
        let wrong = serve(|mut stream| {
            read_request(&mut stream);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\nwrong bytes");
        });
        let tmp = tempfile::tempdir().unwrap();
        let source = tmp.path().join("source.bin");
        std::fs::write(&source, b"the real bytes").unwrap();
        let fetcher = CurlFetcher::default().with_retry(0).with_timeouts(5, 5, 10);
        let url = |port: u16| format!("http://127.0.0.1:{port}/data.bin");
        let bad_mirrors = vec![url(reset), url(truncated), url(wrong)];
        let mut urls = bad_mirrors.clone();
        urls.push(format!("file://{}", source.display()));
        let file = RemoteFile { name: "data.bin".into(), urls, sha256: sha_hex(b"the real bytes") };
        let out = tmp.path().join("out");
        fetch_files(&fetcher, std::slice::from_ref(&file), &out).unwrap();
        assert_eq!(std::fs::read(out.join("data.bin")).unwrap(), b"the real bytes");
        assert_eq!(dir_entries(&out), vec!["data.bin"], "no partial or stderr file left");
        // Without the good mirror: one error naming each mirror and what went wrong with it.
        let only_bad = RemoteFile { urls: bad_mirrors.clone(), ..file };
        let out = tmp.path().join("out2");
        let err = fetch_files(&fetcher, &[only_bad], &out).unwrap_err();
        let DataError::AllMirrorsFailed { ref attempts, .. } = err else { panic!("{err:?}") };
        assert_eq!(attempts.len(), 3, "{err}");
        let message = err.to_string();
        for mirror in &bad_mirrors {
            assert!(message.contains(mirror.as_str()), "{message}");
        }
        assert!(message.contains("checksum") || message.contains("SHA-256"), "{message}");
        assert!(dir_entries(&out).is_empty(), "nothing installed: {:?}", dir_entries(&out));
    }

    #[cfg(unix)]
    #[test]
    fn a_fetcher_that_ignores_its_timeouts_is_killed_and_reaped_at_the_deadline() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        // A "curl" that hangs whatever it is told.
        let program = tmp.path().join("hanging-curl");
        std::fs::write(&program, "#!/bin/sh\necho started >&2\nexec sleep 600\n").unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let fetcher = CurlFetcher::default().with_program(&program).with_retry(0).with_timeouts(1, 1, 1);
        assert_eq!(fetcher.deadline(), Duration::from_secs(8));
        let start = Instant::now();
        // A script just written can be "busy" while another test's fork still holds it open.
        let mut tries = 0;
        let err = loop {
            tries += 1;
            match fetcher.fetch("http://127.0.0.1:9/x", &tmp.path().join("x")) {
                Err(DataError::FetcherUnavailable { ref source, .. })
                    if source.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 100 =>
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                other => break other.unwrap_err(),
            }
        };
        assert!(start.elapsed() < Duration::from_secs(30), "took {:?}", start.elapsed());
        let DataError::FetchFailed { ref status, ref stderr, .. } = err else { panic!("{err:?}") };
        assert!(status.contains("killed after 8 s") && stderr.contains("started"), "{err}");
        assert_eq!(dir_entries(tmp.path()), vec!["hanging-curl"], "its stderr file is removed");
    }

    #[test]
    fn curl_takes_only_http_and_file_urls() {
        let tmp = tempfile::tempdir().unwrap();
        let err = CurlFetcher::default().fetch("--config=/tmp/x", &tmp.path().join("x")).unwrap_err();
        assert!(matches!(&err, DataError::BadDownload { .. }) && err.to_string().contains("not an http"), "{err}");
    }

    #[test]
    fn missing_curl_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let fetcher = CurlFetcher::default().with_program(tmp.path().join("no-such-curl"));
        let err = fetcher.fetch("file:///dev/null", &tmp.path().join("x")).unwrap_err();
        assert!(matches!(err, DataError::FetcherUnavailable { .. }), "{err:?}");
        assert!(err.to_string().contains("install curl"), "{err}");
    }

    #[test]
    fn curl_fetcher_config() {
        use cl_core::config::{ConfigFile, assert_rule};
        let c = CurlFetcher::default().with_program("/opt/curl/bin/curl").with_retry(7);
        assert_eq!(CurlFetcher::from_json(&c.to_json()).unwrap(), c);
        assert_eq!(CurlFetcher::from_toml(&c.to_toml().unwrap()).unwrap(), c);
        assert_eq!(CurlFetcher::from_toml("").unwrap(), CurlFetcher::default());
        assert_rule(CurlFetcher::default().with_program("").validate(), "program_non_empty");
        assert_rule(CurlFetcher::default().with_timeouts(0, 1, 1).validate(), "timeouts_positive");
    }

    /// Every entry under `dir`, recursively, relative to it (symbolic links not followed).
    fn tree(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let path = e.unwrap().path();
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
                if std::fs::symlink_metadata(&path).unwrap().is_dir() {
                    stack.push(path);
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn no_member_escapes_the_target_folder() {
        use test_tar::{entry, gzip, link};
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let mut tar = Vec::new();
        // Path traversal in every spelling, absolute paths, nested directories, and links
        // pointing out of the folder: none may write outside `out/data`.
        for name in [
            "../x",
            "./../x",
            "data/../x",
            "data/../../x",
            "data/./../../x",
            "data/sub/../../../x",
            "/x",
            "//x",
            "data/sub/x",
            "data\\..\\..\\x",
        ] {
            entry(&mut tar, name, b"evil", b'0');
        }
        link(&mut tar, "data/symlink", b"", b'2', "../../x");
        link(&mut tar, "data/hardlink", b"", b'1', "../x");
        link(&mut tar, "../link", b"", b'2', "data/good.bin");
        entry(&mut tar, "data/", b"", b'5');
        entry(&mut tar, "data/..", b"evil", b'0');
        entry(&mut tar, "data/good.bin", b"good", b'0');
        // A member that would overwrite the archive itself or a sibling of the target folder.
        entry(&mut tar, "data/../../a.tar.gz", b"evil", b'0');
        tar.extend_from_slice(&[0u8; 1024]);
        let archive = root.join("a.tar.gz");
        let bytes = gzip(&tar);
        std::fs::write(&archive, &bytes).unwrap();
        std::fs::create_dir(root.join("out")).unwrap();
        std::fs::write(root.join("out/sibling"), b"kept").unwrap();

        let out = extract_tar_gz(&archive, &root.join("out"), "data", &["good.bin"]).unwrap();
        assert_eq!(out, root.join("out/data"));
        assert_eq!(tree(root), vec!["a.tar.gz", "out", "out/data", "out/data/good.bin", "out/sibling"]);
        assert_eq!(std::fs::read(out.join("good.bin")).unwrap(), b"good");
        assert_eq!(std::fs::read(root.join("out/sibling")).unwrap(), b"kept");
        assert_eq!(std::fs::read(&archive).unwrap(), bytes, "the archive is untouched");
        assert!(!Path::new("/x").exists() || std::fs::read("/x").unwrap() != b"evil");

        // An archive made only of escaping members lacks the required file: nothing is written.
        let mut tar = Vec::new();
        entry(&mut tar, "data/../good.bin", b"evil", b'0');
        entry(&mut tar, "../data/good.bin", b"evil", b'0');
        tar.extend_from_slice(&[0u8; 1024]);
        std::fs::write(&archive, gzip(&tar)).unwrap();
        let err = extract_tar_gz(&archive, &root.join("fresh"), "data", &["good.bin"]).unwrap_err();
        assert!(matches!(&err, DataError::BadArchive { reason, .. } if reason.contains("lacks good.bin")), "{err:?}");
        assert!(!root.join("fresh").exists());
        assert!(!root.join("good.bin").exists() && !root.join("data").exists());
    }

    #[test]
    fn member_names() {
        let s = "cifar-10-batches-bin";
        assert_eq!(member_name("cifar-10-batches-bin/a.bin", s), Some("a.bin"));
        assert_eq!(member_name("./cifar-10-batches-bin/a.bin", s), Some("a.bin"));
        assert_eq!(member_name("/cifar-10-batches-bin/a.bin", s), None);
        assert_eq!(member_name("cifar-10-batches-bin/../a.bin", s), None);
        assert_eq!(member_name("cifar-10-batches-bin/..", s), None);
        assert_eq!(member_name("cifar-10-batches-bin/x/a.bin", s), None);
        assert_eq!(member_name("a.bin", s), None);
        assert_eq!(member_name("cifar-10-batches-bin\\..\\a.bin", s), None);
    }
}
