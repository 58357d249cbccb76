//! Downloading MNIST-format datasets, for users with internet access.
//!
//! Files are fetched by a [`Fetcher`] ([`CurlFetcher`] by default) into a
//! temporary file in the target directory (`.<name>.partial-<pid>`), checked
//! against their published SHA-256, then atomically renamed into place, so a
//! target file is either absent or complete and verified. Files already
//! present with the right SHA-256 are not fetched again.
//!
//! ```no_run
//! use cl_benchmarks::{download, mnist_files::{self, MnistKind}};
//! # fn main() -> Result<(), cl_benchmarks::data_error::DataError> {
//! // Download into the per-user cache, which `mnist_files::locate` searches.
//! let dir = mnist_files::default_cache_dir(MnistKind::FashionMnist).expect("HOME is set");
//! download::download(MnistKind::FashionMnist, &dir)?;
//! let data = mnist_files::load(MnistKind::FashionMnist, None)?;
//! # Ok(()) }
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::data_error::DataError;
use crate::mnist_files::MnistKind;

/// Something that can fetch a URL into a local file.
pub trait Fetcher {
    /// Fetches `url` and writes its bytes to `dest` (creating or truncating it).
    fn fetch(&self, url: &str, dest: &Path) -> Result<(), DataError>;
}

/// A [`Fetcher`] that runs `curl -fsSL --retry 2 -o <dest> <url>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurlFetcher {
    program: PathBuf,
}

impl CurlFetcher {
    /// A fetcher running the `curl` found on `PATH`.
    pub fn new() -> Self {
        Self::with_program("curl")
    }

    /// A fetcher running the given curl executable.
    pub fn with_program(program: impl Into<PathBuf>) -> Self {
        CurlFetcher { program: program.into() }
    }
}

impl Default for CurlFetcher {
    fn default() -> Self {
        Self::new()
    }
}

impl Fetcher for CurlFetcher {
    /// Errors: [`DataError::FetcherUnavailable`] if curl cannot be started,
    /// [`DataError::FetchFailed`] (with curl's stderr) if it exits unsuccessfully.
    fn fetch(&self, url: &str, dest: &Path) -> Result<(), DataError> {
        let output = Command::new(&self.program)
            .args(["-fsSL", "--retry", "2", "-o"])
            .arg(dest)
            .arg(url)
            .output()
            .map_err(|source| DataError::FetcherUnavailable { program: self.program.clone(), source })?;
        if output.status.success() {
            Ok(())
        } else {
            Err(DataError::FetchFailed {
                url: url.to_string(),
                status: format!("curl {}", output.status),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            })
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

const FASHION_MNIST_BASE: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com";
const MNIST_BASES: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist",
    "https://storage.googleapis.com/cvdf-datasets/mnist",
];

/// SHA-256 of the upstream Fashion-MNIST `.gz` files, in the order of
/// [`MnistKind::FILE_NAMES`]. Source: TensorFlow Datasets,
/// `tensorflow_datasets/url_checksums/fashion_mnist.txt` (sizes 26421880,
/// 29515, 4422102, 5148 bytes); the same values appear in other projects that
/// verify these files against Zalando's published MD5s.
///
/// Debian's `dataset-fashion-mnist` package ships the same data but
/// re-compressed (no file name, another mtime in the gzip header, 23-24 bytes
/// shorter), so `sha256sum /usr/share/datasets/fashion-mnist/*.gz` does NOT
/// give these values.
const FASHION_MNIST_SHA256: [&str; 4] = [
    "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
];

/// SHA-256 of the MNIST `.gz` files (the original LeCun files, sizes 9912422,
/// 28881, 1648877, 4542 bytes), in the order of [`MnistKind::FILE_NAMES`].
/// Source: TensorFlow Datasets, `tensorflow_datasets/url_checksums/mnist.txt`
/// (for the `storage.googleapis.com/cvdf-datasets` mirror); the
/// `ossci-datasets` mirror used by torchvision serves identical files.
const MNIST_SHA256: [&str; 4] = [
    "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
];

/// The four `.gz` files of a dataset with their canonical URLs and SHA-256.
pub fn remote_files(kind: MnistKind) -> Vec<RemoteFile> {
    let (bases, sums): (&[&str], _) = match kind {
        MnistKind::FashionMnist => (&[FASHION_MNIST_BASE], FASHION_MNIST_SHA256),
        MnistKind::Mnist => (&MNIST_BASES, MNIST_SHA256),
    };
    MnistKind::FILE_NAMES
        .iter()
        .zip(sums)
        .map(|(stem, sha)| {
            let name = format!("{stem}.gz");
            RemoteFile {
                urls: bases.iter().map(|b| format!("{b}/{name}")).collect(),
                name,
                sha256: sha.to_string(),
            }
        })
        .collect()
}

/// Downloads a dataset's four `.gz` files into `dir` (created if needed) with
/// curl, verifying their SHA-256; returns `dir`. See [`download_with`].
pub fn download(kind: MnistKind, dir: &Path) -> Result<PathBuf, DataError> {
    download_with(&CurlFetcher::new(), &remote_files(kind), dir)?;
    Ok(dir.to_path_buf())
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
pub fn download_with(fetcher: &dyn Fetcher, files: &[RemoteFile], dir: &Path) -> Result<(), DataError> {
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
        std::fs::File::open(&partial)
            .and_then(|f| f.sync_all())
            .map_err(|e| DataError::io(&partial, e))?;
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
                    Err(DataError::FetchFailed {
                        url: url.to_string(),
                        status: "fake".into(),
                        stderr: "404".into(),
                    })
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
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn fetches_verifies_and_installs() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("new/sub");
        let fetcher = FakeFetcher::serving(&[("u://a", b"alpha"), ("u://b", b"beta")]);
        let files = [remote("a.gz", &["u://a"], b"alpha"), remote("b.gz", &["u://b"], b"beta")];
        download_with(&fetcher, &files, &dir).unwrap();
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
        match download_with(&fetcher, &files, tmp.path()) {
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
        download_with(&fetcher, &[file], tmp.path()).unwrap();
        assert!(fetcher.calls.borrow().is_empty());
    }

    #[test]
    fn present_file_with_wrong_checksum_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.gz"), b"stale").unwrap();
        let fetcher = FakeFetcher::serving(&[("u://a", b"alpha")]);
        download_with(&fetcher, &[remote("a.gz", &["u://a"], b"alpha")], tmp.path()).unwrap();
        assert_eq!(std::fs::read(tmp.path().join("a.gz")).unwrap(), b"alpha");
        assert_eq!(dir_entries(tmp.path()), vec!["a.gz"]);
    }

    #[test]
    fn falls_back_to_next_mirror() {
        let tmp = tempfile::tempdir().unwrap();
        // First mirror fails outright, second serves wrong bytes, third is good.
        let fetcher = FakeFetcher::serving(&[("u://bad", b"xx"), ("u://good", b"alpha")]);
        let file = remote("a.gz", &["u://down", "u://bad", "u://good"], b"alpha");
        download_with(&fetcher, &[file], tmp.path()).unwrap();
        let urls: Vec<String> = fetcher.calls.borrow().iter().map(|c| c.0.clone()).collect();
        assert_eq!(urls, vec!["u://down", "u://bad", "u://good"]);
        assert_eq!(dir_entries(tmp.path()), vec!["a.gz"]);
    }

    #[test]
    fn all_mirrors_failing_lists_each() {
        let tmp = tempfile::tempdir().unwrap();
        let fetcher = FakeFetcher::serving(&[("u://bad", b"xx")]);
        let file = remote("a.gz", &["u://down", "u://bad"], b"alpha");
        let err = download_with(&fetcher, &[file], tmp.path()).unwrap_err();
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
        let err = download_with(&fetcher, &[none], tmp.path()).unwrap_err();
        assert!(matches!(err, DataError::AllMirrorsFailed { ref attempts, .. } if attempts.is_empty()));
    }

    #[test]
    fn remote_files_are_well_formed() {
        for kind in [MnistKind::Mnist, MnistKind::FashionMnist] {
            let files = remote_files(kind);
            assert_eq!(files.len(), 4);
            for (f, stem) in files.iter().zip(MnistKind::FILE_NAMES) {
                assert_eq!(f.name, format!("{stem}.gz"));
                assert_eq!(f.sha256.len(), 64);
                assert!(f.sha256.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
                assert!(f.urls.iter().all(|u| u.ends_with(&f.name)));
            }
        }
        assert_eq!(
            remote_files(MnistKind::Mnist)[0].urls,
            vec![
                "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
                "https://storage.googleapis.com/cvdf-datasets/mnist/train-images-idx3-ubyte.gz",
            ]
        );
        assert_eq!(
            remote_files(MnistKind::FashionMnist)[3].urls,
            vec!["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-labels-idx1-ubyte.gz"]
        );
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
        download_with(&CurlFetcher::new(), &[file], &out).unwrap();
        assert_eq!(std::fs::read(out.join("data.gz")).unwrap(), content);
        assert_eq!(dir_entries(&out), vec!["data.gz"]);

        // A missing source: curl fails, its stderr is reported, nothing is left.
        let missing = format!("file://{}", tmp.path().join("absent").display());
        let file = RemoteFile { name: "x.gz".into(), urls: vec![missing.clone()], sha256: sha_hex(b"") };
        match download_with(&CurlFetcher::new(), &[file], &out) {
            Err(DataError::FetchFailed { url, stderr, .. }) => {
                assert_eq!(url, missing);
                assert!(!stderr.trim().is_empty());
            }
            other => panic!("expected FetchFailed, got {other:?}"),
        }
        assert_eq!(dir_entries(&out), vec!["data.gz"]);
    }

    #[test]
    fn missing_curl_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let fetcher = CurlFetcher::with_program(tmp.path().join("no-such-curl"));
        let err = fetcher.fetch("file:///dev/null", &tmp.path().join("x")).unwrap_err();
        assert!(matches!(err, DataError::FetcherUnavailable { .. }), "{err:?}");
        assert!(err.to_string().contains("install curl"), "{err}");
    }
}
