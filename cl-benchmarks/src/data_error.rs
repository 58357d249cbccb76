//! [`DataError`]: the error of the dataset readers, of locating a dataset and of the downloader.
//!
//! The leaf of the crate's module graph: it names no dataset type, so the readers
//! ([`crate::idx`], [`crate::cifar_bin`]), the downloader ([`crate::download`]) and the
//! per-dataset code ([`crate::files`], [`crate::mnist_files`], [`crate::cifar_files`]) all build
//! on it. Every variant names the file or directory involved (when known), what was wrong, and
//! how to fix it.

use std::path::{Path, PathBuf};

/// An error while reading, locating, validating or downloading a dataset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A file or directory could not be read, written, created or renamed.
    #[error("I/O error on {}: {source}", .path.display())]
    Io {
        /// The file or directory the operation was about.
        path: PathBuf,
        /// The underlying operating-system error.
        source: std::io::Error,
    },

    /// The input starts with the gzip magic bytes but the gzip stream is corrupt
    /// or cut short.
    #[error(
        "{}: corrupt or truncated gzip stream ({source}); the file is damaged, \
         delete it and download or copy it again",
        show_path(.path)
    )]
    Gzip {
        /// The file, or `None` for in-memory bytes.
        path: Option<PathBuf>,
        /// The decoder's error.
        source: std::io::Error,
    },

    /// The input does not start with the two zero bytes of an IDX file.
    #[error(
        "{}: not an IDX file: it must start with two zero bytes, found {}; \
         pass an MNIST-format file (raw or .gz)",
        show_path(.path),
        hex(.seen)
    )]
    BadMagic {
        /// The file, or `None` for in-memory bytes.
        path: Option<PathBuf>,
        /// The first (up to four) bytes of the (decompressed) input.
        seen: Vec<u8>,
    },

    /// The IDX element type is not unsigned byte (0x08), the only type supported.
    #[error(
        "{}: IDX element type 0x{dtype:02x} ({}) is not supported; only 0x08 (u8) \
         is, as used by MNIST and Fashion-MNIST",
        show_path(.path),
        idx_dtype_name(*.dtype)
    )]
    UnsupportedDtype {
        /// The file, or `None` for in-memory bytes.
        path: Option<PathBuf>,
        /// The element-type byte found in the header.
        dtype: u8,
    },

    /// The header or the data is shorter than the header says it must be.
    #[error(
        "{}: truncated IDX {what}: expected {expected} bytes, found {actual}; \
         the file is incomplete, delete it and download or copy it again",
        show_path(.path)
    )]
    Truncated {
        /// The file, or `None` for in-memory bytes.
        path: Option<PathBuf>,
        /// `"header"` or `"data"`.
        what: &'static str,
        /// The number of bytes required.
        expected: usize,
        /// The number of bytes present.
        actual: usize,
    },

    /// There are more data bytes than the dimensions in the header account for.
    #[error(
        "{}: {} bytes of IDX data follow the header but its dimensions {dims:?} \
         account for {expected}; the file is not a valid IDX file",
        show_path(.path),
        .actual
    )]
    TrailingData {
        /// The file, or `None` for in-memory bytes.
        path: Option<PathBuf>,
        /// The dimensions declared by the header.
        dims: Vec<usize>,
        /// The number of data bytes the dimensions require.
        expected: usize,
        /// The number of data bytes present.
        actual: usize,
    },

    /// The product of the IDX dimensions does not fit in memory addresses.
    #[error(
        "{}: IDX dimensions {dims:?} describe more elements than can be addressed; \
         the header is corrupt",
        show_path(.path)
    )]
    DimsOverflow {
        /// The file, or `None` for in-memory bytes.
        path: Option<PathBuf>,
        /// The dimensions declared by the header.
        dims: Vec<usize>,
    },

    /// An array has the wrong number of dimensions or a wrong shape.
    #[error("{}: expected {expected}, found dimensions {dims:?}", .path.display())]
    BadShape {
        /// The file.
        path: PathBuf,
        /// A description of the expected shape.
        expected: String,
        /// The dimensions found.
        dims: Vec<usize>,
    },

    /// An image file and its label file hold different numbers of samples.
    #[error(
        "{} holds {images} images but {} holds {labels} labels; the two files \
         must come from the same split of the same dataset",
        .images_path.display(),
        .labels_path.display()
    )]
    CountMismatch {
        /// The image file.
        images_path: PathBuf,
        /// The label file.
        labels_path: PathBuf,
        /// The number of images.
        images: usize,
        /// The number of labels.
        labels: usize,
    },

    /// A label is not a class index of the dataset.
    #[error(
        "{}: {which} {label} of record {index} is not a class in 0..{n_classes}; the file is \
         corrupt or belongs to another dataset",
        .path.display()
    )]
    LabelOutOfRange {
        /// The file.
        path: PathBuf,
        /// `"label"`, `"fine label"` or `"coarse label"`.
        which: &'static str,
        /// The record (sample) index, from 0, in the file.
        index: usize,
        /// The label value found.
        label: u8,
        /// The number of classes; labels must be below it.
        n_classes: usize,
    },

    /// A file of fixed-size records (a CIFAR binary batch) is empty or its size is not a
    /// multiple of the record size.
    #[error(
        "{}: {actual} bytes is not a positive multiple of the {record_len}-byte {dataset} \
         record ({} whole records and {} bytes over); the file is truncated or is not a \
         {dataset} binary-version file: extract or copy it again",
        .path.display(),
        .actual / .record_len,
        .actual % .record_len
    )]
    RecordSize {
        /// The file.
        path: PathBuf,
        /// The dataset the file belongs to (`CIFAR-10`).
        dataset: String,
        /// The size of one record in bytes.
        record_len: usize,
        /// The size of the file in bytes.
        actual: usize,
    },

    /// No searched directory holds the dataset.
    #[error("{}", not_found_message(.dataset, .searched, .expected, .fix))]
    NotFound {
        /// The dataset looked for (`Fashion-MNIST`).
        dataset: String,
        /// Every directory searched, in order.
        searched: Vec<PathBuf>,
        /// What a dataset directory must hold.
        expected: String,
        /// How to get the dataset.
        fix: String,
    },

    /// A directory given explicitly lacks some of the dataset's files.
    #[error(
        "{dataset}: the directory {} was given explicitly but lacks {} (a dataset directory holds \
         {expected}); {fix}",
        .dir.display(),
        .missing.join(", ")
    )]
    MissingFiles {
        /// The dataset looked for.
        dataset: String,
        /// The directory checked: the one given (or, for an archive's contents, the
        /// subdirectory the archive extracts to, when that exists).
        dir: PathBuf,
        /// The standard file names not found there.
        missing: Vec<String>,
        /// What a dataset directory must hold.
        expected: String,
        /// How to get the dataset there.
        fix: String,
    },

    /// The downloader program (`curl`) could not be started.
    #[error(
        "cannot run `{}` to download files ({source}); install curl \
         (e.g. `sudo apt-get install curl`), or copy the dataset files by hand",
        .program.display()
    )]
    FetcherUnavailable {
        /// The program that was tried.
        program: PathBuf,
        /// Why it could not be started.
        source: std::io::Error,
    },

    /// The downloader ran but failed to fetch a URL.
    #[error(
        "fetching {url} failed ({status}): {}; check the network connection \
         or proxy settings, or copy the dataset files by hand",
        .stderr.trim()
    )]
    FetchFailed {
        /// The URL that could not be fetched.
        url: String,
        /// The downloader's exit status.
        status: String,
        /// What the downloader wrote to its standard error.
        stderr: String,
    },

    /// A file to download that cannot be downloaded safely as described: a name that is not a
    /// plain file name, a checksum that is not 64 hexadecimal digits, a URL that is not
    /// `http(s)://` or `file://`. Checked before anything is fetched.
    #[error("cannot download {file}: {reason}")]
    BadDownload {
        /// The file's name as given.
        file: String,
        /// What is wrong and what is accepted.
        reason: String,
    },

    /// A fetched file does not have the published SHA-256; it was deleted.
    #[error(
        "{file}: SHA-256 mismatch: expected {expected}, got {actual}; the download \
         was corrupted or the mirror serves a different file (it was deleted, \
         nothing was installed); retry, or use another mirror"
    )]
    ChecksumMismatch {
        /// The file name.
        file: String,
        /// The published SHA-256 (lowercase hex).
        expected: String,
        /// The SHA-256 of the fetched bytes (lowercase hex).
        actual: String,
    },

    /// Every mirror of a file failed; one entry per attempt, in order.
    #[error("{}", all_mirrors_message(.file, .attempts))]
    AllMirrorsFailed {
        /// The file name.
        file: String,
        /// `(url, error)` for every mirror tried.
        attempts: Vec<(String, DataError)>,
    },

    /// A `.tar.gz` archive is malformed or lacks the dataset's files.
    #[error("{}: {reason}; delete the archive and download it again", .path.display())]
    BadArchive {
        /// The archive.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn show_path(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => p.display().to_string(),
        None => "<in-memory bytes>".to_string(),
    }
}

fn hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "no bytes".to_string();
    }
    let digits: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("0x{}", digits.join(" "))
}

/// The name of an IDX element-type byte, for error messages.
fn idx_dtype_name(dtype: u8) -> &'static str {
    match dtype {
        0x08 => "u8",
        0x09 => "i8",
        0x0b => "i16",
        0x0c => "i32",
        0x0d => "f32",
        0x0e => "f64",
        _ => "unknown type",
    }
}

fn not_found_message(dataset: &str, searched: &[PathBuf], expected: &str, fix: &str) -> String {
    let mut msg = format!("{dataset} not found. Searched these directories, in order (each must hold {expected}):\n");
    if searched.is_empty() {
        msg.push_str("  (none: neither CL_DATA_DIR, XDG_CACHE_HOME nor HOME is set)\n");
    }
    for dir in searched {
        msg.push_str(&format!("  - {}\n", dir.display()));
    }
    msg.push_str("Fix: ");
    msg.push_str(fix);
    msg
}

fn all_mirrors_message(file: &str, attempts: &[(String, DataError)]) -> String {
    if attempts.is_empty() {
        return format!("{file}: no download URL given; add at least one mirror");
    }
    let mut msg = format!("{file}: every mirror failed:");
    for (url, err) in attempts {
        msg.push_str(&format!("\n  - {url}: {err}"));
    }
    msg
}

impl DataError {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        DataError::Io { path: path.to_path_buf(), source }
    }
}
