//! CIFAR-10 and CIFAR-100: their files ([`CifarKind`], a [`DatasetFiles`]) and loading them
//! from disk ([`load`], [`load_dir`]), in their **binary** version (the one of
//! `cifar-10-binary.tar.gz` and `cifar-100-binary.tar.gz`, read by [`crate::cifar_bin`]; the
//! Python "pickle" and MATLAB versions are not read).
//!
//! | dataset   | files (in `subdir`)                                                                   |
//! |-----------|---------------------------------------------------------------------------------------|
//! | CIFAR-10  | `data_batch_1.bin` … `data_batch_5.bin`, `test_batch.bin` (in `cifar-10-batches-bin`) |
//! | CIFAR-100 | `train.bin`, `test.bin` (in `cifar-100-binary`)                                       |
//!
//! A dataset directory is either the directory holding the files or its parent, holding
//! [`CifarKind::subdir`] (what extracting the archive creates). It is found by
//! [`files::locate`] (explicit directory, `$CL_DATA_DIR/<name>`,
//! `$CL_DATA_DIR`, the per-user cache), where `<name>` is `cifar10` or `cifar100`. No
//! distribution package ships CIFAR, so there is no system directory. To install by hand:
//!
//! ```text
//! mkdir -p ~/.cache/cl/cifar10
//! curl -L https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz | tar -xz -C ~/.cache/cl/cifar10
//! ```
//!
//! The archive itself is not needed once extracted.
//! [`files::download`] fetches it with curl, checks its SHA-256,
//! extracts the dataset files (in Rust, with the `tar` crate; no member can leave the dataset
//! directory) and deletes it:
//!
//! ```no_run
//! use cl_benchmarks::cifar_files::{self, CifarKind};
//! use cl_benchmarks::files;
//! # fn main() -> Result<(), cl_benchmarks::DataError> {
//! // Download into the per-user cache, which `files::locate` searches.
//! let dir = files::default_cache_dir(CifarKind::Cifar10).expect("HOME is set");
//! files::download(CifarKind::Cifar10, &dir)?;
//! let data = cifar_files::load(CifarKind::Cifar10, None)?;
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};

use crate::cifar_bin::{RecordFormat, Records, read_records};
use crate::data_error::DataError;
use crate::download::RemoteFile;
use crate::files::{self, DatasetFiles, Packaging};

/// Which CIFAR dataset; its files are described by its [`DatasetFiles`] implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CifarKind {
    /// CIFAR-10: 10 classes, 50 000 training and 10 000 test images.
    Cifar10,
    /// CIFAR-100: 100 fine classes grouped in 20 coarse ones, 50 000 training and 10 000
    /// test images.
    Cifar100,
}

impl CifarKind {
    /// The directory the archive extracts to: `cifar-10-batches-bin` or `cifar-100-binary`.
    pub fn subdir(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "cifar-10-batches-bin",
            CifarKind::Cifar100 => "cifar-100-binary",
        }
    }

    /// The training files, in the order their records are concatenated.
    pub fn train_files(self) -> &'static [&'static str] {
        match self {
            CifarKind::Cifar10 => {
                &["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"]
            }
            CifarKind::Cifar100 => &["train.bin"],
        }
    }

    /// The test file.
    pub fn test_file(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "test_batch.bin",
            CifarKind::Cifar100 => "test.bin",
        }
    }

    /// The record layout of the files.
    pub fn record_format(self) -> RecordFormat {
        match self {
            CifarKind::Cifar10 => RecordFormat { dataset: "CIFAR-10", n_classes: 10, n_coarse_classes: None },
            CifarKind::Cifar100 => RecordFormat { dataset: "CIFAR-100", n_classes: 100, n_coarse_classes: Some(20) },
        }
    }

    /// The size of one record in bytes: the label byte(s) and
    /// [`IMAGE_LEN`](crate::cifar_bin::IMAGE_LEN) pixels.
    pub fn record_len(self) -> usize {
        self.record_format().record_len()
    }

    /// The number of classes of the (fine) labels: 10 or 100.
    pub fn n_classes(self) -> usize {
        self.record_format().n_classes
    }

    /// The number of coarse classes: `None` for CIFAR-10, `Some(20)` for CIFAR-100.
    pub fn n_coarse_classes(self) -> Option<usize> {
        self.record_format().n_coarse_classes
    }

    /// The file name of the binary-version archive.
    pub fn archive_name(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "cifar-10-binary.tar.gz",
            CifarKind::Cifar100 => "cifar-100-binary.tar.gz",
        }
    }

    /// The canonical URL of the binary-version archive (Alex Krizhevsky's page).
    pub fn url(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
            CifarKind::Cifar100 => "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
        }
    }

    /// The SHA-256 of the archive (lowercase hex).
    ///
    /// Source: TensorFlow Datasets, `tensorflow_datasets/url_checksums/cifar10.txt` and
    /// `cifar100.txt` (sizes 170 052 171 and 168 513 733 bytes); the same values are pinned
    /// by other independent loaders (Julia's MLDatasets, torch.rb, GoMLX), and one record
    /// pairs the CIFAR-10 value with the published MD5 [`Self::archive_md5`].
    pub fn archive_sha256(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
            CifarKind::Cifar100 => "58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec",
        }
    }

    /// The MD5 of the archive published on the CIFAR page (informative only: downloads are
    /// checked with [`Self::archive_sha256`]).
    pub fn archive_md5(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "c32a1d4ab5d03f1284b67883e8d87530",
            CifarKind::Cifar100 => "03b5dce01913d631647c71ecec9e9cb8",
        }
    }
}

impl DatasetFiles for CifarKind {
    /// `cifar10` or `cifar100`.
    fn name(&self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "cifar10",
            CifarKind::Cifar100 => "cifar100",
        }
    }

    /// `CIFAR-10` or `CIFAR-100`.
    fn display_name(&self) -> &'static str {
        self.record_format().dataset
    }

    fn rust_path(&self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "CifarKind::Cifar10",
            CifarKind::Cifar100 => "CifarKind::Cifar100",
        }
    }

    /// The training files, then the test file.
    fn file_names(&self) -> Vec<&'static str> {
        let mut names = self.train_files().to_vec();
        names.push(self.test_file());
        names
    }

    /// A `.tar.gz` archive extracting to [`CifarKind::subdir`].
    fn packaging(&self) -> Packaging {
        Packaging::TarGz { subdir: self.subdir() }
    }

    /// The binary-version archive with its canonical URL and SHA-256.
    fn remote_files(&self) -> Vec<RemoteFile> {
        vec![RemoteFile {
            name: self.archive_name().to_string(),
            urls: vec![self.url().to_string()],
            sha256: self.archive_sha256().to_string(),
        }]
    }
}

impl std::fmt::Display for CifarKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.display_name())
    }
}

/// A whole CIFAR dataset in memory.
#[derive(Clone, PartialEq, Eq)]
pub struct CifarArrays {
    /// Which dataset.
    pub kind: CifarKind,
    /// Training images, [`IMAGE_LEN`](crate::cifar_bin::IMAGE_LEN) bytes each in
    /// [`IMAGE_SHAPE`](crate::cifar_bin::IMAGE_SHAPE)
    /// (channel-major) order, one after the other (the training files' records concatenated in
    /// file order).
    pub train_images: Vec<u8>,
    /// Training labels, one byte per image: the class in `0..10` (CIFAR-10) or the fine
    /// class in `0..100` (CIFAR-100).
    pub train_labels: Vec<u8>,
    /// CIFAR-100's coarse training labels (superclasses, `0..20`); `None` for CIFAR-10.
    pub train_coarse_labels: Option<Vec<u8>>,
    /// Test images, laid out as `train_images`.
    pub test_images: Vec<u8>,
    /// Test labels, as `train_labels`.
    pub test_labels: Vec<u8>,
    /// CIFAR-100's coarse test labels; `None` for CIFAR-10.
    pub test_coarse_labels: Option<Vec<u8>>,
    /// The directory the files were read from.
    pub dir: PathBuf,
}

impl CifarArrays {
    /// The number of training samples.
    pub fn n_train(&self) -> usize {
        self.train_labels.len()
    }

    /// The number of test samples.
    pub fn n_test(&self) -> usize {
        self.test_labels.len()
    }
}

impl std::fmt::Debug for CifarArrays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Summarise: the arrays hold about 180 MB.
        f.debug_struct("CifarArrays")
            .field("kind", &self.kind)
            .field("n_train", &self.n_train())
            .field("n_test", &self.n_test())
            .field("dir", &self.dir)
            .finish()
    }
}

/// Locates (see [`files::locate`]) and loads a dataset.
pub fn load(kind: CifarKind, explicit: Option<&Path>) -> Result<CifarArrays, DataError> {
    let dir = files::locate(kind, explicit)?;
    load_dir(kind, &dir)
}

/// Loads and validates the dataset in `dir` (the directory of the files or its parent
/// holding [`CifarKind::subdir`]), decoding the files in parallel threads.
///
/// Errors: [`DataError::MissingFiles`]; [`DataError::Io`];
/// [`DataError::RecordSize`] for a file that is empty or whose size is not a multiple of
/// [`CifarKind::record_len`]; [`DataError::LabelOutOfRange`] for a label not below
/// [`CifarKind::n_classes`] (a coarse label not below 20).
pub fn load_dir(kind: CifarKind, dir: &Path) -> Result<CifarArrays, DataError> {
    let dir = files::verify_dir(kind, dir)?;
    let format = kind.record_format();
    let paths: Vec<PathBuf> = kind.file_names().iter().map(|n| dir.join(n)).collect();
    let mut results: Vec<Result<Records, DataError>> = std::thread::scope(|s| {
        let handles: Vec<_> = paths.iter().map(|p| s.spawn(move || read_records(&format, p))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|payload| std::panic::resume_unwind(payload))).collect()
    });
    let test = results.pop().expect("the test file is listed last")?;
    let train = Records::concat(&format, results.into_iter().collect::<Result<Vec<_>, _>>()?);
    Ok(CifarArrays {
        kind,
        train_images: train.images,
        train_labels: train.labels,
        train_coarse_labels: train.coarse_labels,
        test_images: test.images,
        test_labels: test.labels,
        test_coarse_labels: test.coarse_labels,
        dir,
    })
}

/// Writers of small files in the real binary formats, for tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use crate::cifar_bin::IMAGE_LEN;

    /// A deterministic pseudo-random pixel value of record `seed`, position `i`.
    pub(crate) fn pixel(seed: usize, i: usize) -> u8 {
        let mut x = (seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        x ^= x >> 29;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 32;
        (x >> 24) as u8
    }

    /// The pixels of record `seed`.
    pub(crate) fn image(seed: usize) -> Vec<u8> {
        (0..IMAGE_LEN).map(|i| pixel(seed, i)).collect()
    }

    /// The bytes of CIFAR-10 records `seeds` with labels `label(seed)`.
    pub(crate) fn cifar10_bytes(seeds: std::ops::Range<usize>, label: impl Fn(usize) -> u8) -> Vec<u8> {
        seeds
            .flat_map(|s| {
                let mut r = vec![label(s)];
                r.extend(image(s));
                r
            })
            .collect()
    }

    /// Writes a CIFAR-10 dataset into `dir`: 5 training batches of `per_batch` records (seeds
    /// 0.., label `seed % 10`) and a test batch of `n_test` (seeds 1000.., label `seed % 10`).
    pub(crate) fn write_cifar10(dir: &Path, per_batch: usize, n_test: usize) {
        std::fs::create_dir_all(dir).unwrap();
        for (b, name) in CifarKind::Cifar10.train_files().iter().enumerate() {
            let bytes = cifar10_bytes(b * per_batch..(b + 1) * per_batch, |s| (s % 10) as u8);
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        std::fs::write(dir.join("test_batch.bin"), cifar10_bytes(1000..1000 + n_test, |s| (s % 10) as u8)).unwrap();
    }

    /// The bytes of CIFAR-100 records `seeds`: fine label `seed % 100`, coarse `fine / 5`.
    pub(crate) fn cifar100_bytes(seeds: std::ops::Range<usize>) -> Vec<u8> {
        seeds
            .flat_map(|s| {
                let fine = (s % 100) as u8;
                let mut r = vec![fine / 5, fine];
                r.extend(image(s));
                r
            })
            .collect()
    }

    /// Writes a CIFAR-100 dataset into `dir`: `n_train` training records (seeds 0..) and
    /// `n_test` test records (seeds 1000..).
    pub(crate) fn write_cifar100(dir: &Path, n_train: usize, n_test: usize) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("train.bin"), cifar100_bytes(0..n_train)).unwrap();
        std::fs::write(dir.join("test.bin"), cifar100_bytes(1000..1000 + n_test)).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use crate::cifar_bin::IMAGE_LEN;
    use crate::download::test_tar::{entry as tar_entry, gzip};
    use crate::download::{Fetcher, extract_tar_gz};
    use crate::files::{SearchEnv, download_with, locate_with, search_dirs};

    /// An environment that sees nothing outside `root`.
    fn env_in(root: &Path) -> SearchEnv {
        SearchEnv {
            cl_data_dir: Some(root.join("data")),
            xdg_cache_home: None,
            home: Some(root.join("home")),
            system_dirs: false,
        }
    }

    #[test]
    fn parses_cifar10() {
        let root = tempfile::tempdir().unwrap();
        write_cifar10(root.path(), 20, 10);
        let a = load_dir(CifarKind::Cifar10, root.path()).unwrap();
        assert_eq!((a.n_train(), a.n_test()), (100, 10));
        assert_eq!(a.train_images.len(), 100 * IMAGE_LEN);
        assert_eq!(a.test_images.len(), 10 * IMAGE_LEN);
        assert_eq!(a.train_labels, (0..100).map(|i| (i % 10) as u8).collect::<Vec<_>>());
        assert_eq!(a.test_labels, (0..10).map(|i| ((1000 + i) % 10) as u8).collect::<Vec<_>>());
        assert_eq!(a.train_coarse_labels, None);
        assert_eq!(a.test_coarse_labels, None);
        // Records of the files concatenated in order: record 20 opens data_batch_2.bin.
        assert_eq!(a.train_images[..IMAGE_LEN], image(0)[..]);
        assert_eq!(a.train_images[20 * IMAGE_LEN..21 * IMAGE_LEN], image(20)[..]);
        assert_eq!(a.train_images[99 * IMAGE_LEN..], image(99)[..]);
        assert_eq!(a.test_images[..IMAGE_LEN], image(1000)[..]);
        assert_eq!(a.dir, root.path());
        assert_eq!(
            format!("{a:?}"),
            format!("CifarArrays {{ kind: Cifar10, n_train: 100, n_test: 10, dir: {:?} }}", a.dir)
        );
    }

    #[test]
    fn parses_cifar100_fine_and_coarse() {
        let root = tempfile::tempdir().unwrap();
        write_cifar100(&root.path().join("cifar-100-binary"), 200, 100);
        let a = load_dir(CifarKind::Cifar100, root.path()).unwrap();
        assert_eq!((a.n_train(), a.n_test()), (200, 100));
        assert_eq!(a.dir, root.path().join("cifar-100-binary"));
        assert_eq!(a.train_labels[..3], [0, 1, 2]);
        assert_eq!(a.train_labels[150], 50);
        let coarse = a.train_coarse_labels.as_ref().unwrap();
        assert_eq!(coarse.len(), 200);
        assert!(a.train_labels.iter().zip(coarse).all(|(&f, &c)| c == f / 5));
        assert_eq!(a.test_coarse_labels.as_ref().unwrap().len(), 100);
        assert_eq!(a.train_images[IMAGE_LEN..2 * IMAGE_LEN], image(1)[..]);
        assert_eq!(a.test_images[..IMAGE_LEN], image(1000)[..]);
        let mut fine: Vec<u8> = a.test_labels.clone();
        fine.sort_unstable();
        assert_eq!(fine, (0..100).collect::<Vec<u8>>());
    }

    #[test]
    fn directory_or_parent_accepted() {
        let root = tempfile::tempdir().unwrap();
        let files = root.path().join("cifar-10-batches-bin");
        write_cifar10(&files, 2, 3);
        let env = env_in(root.path());
        assert_eq!(locate_with(CifarKind::Cifar10, Some(&files), &env).unwrap(), files);
        assert_eq!(locate_with(CifarKind::Cifar10, Some(root.path()), &env).unwrap(), files);
        assert_eq!(load_dir(CifarKind::Cifar10, root.path()).unwrap().dir, files);
        assert_eq!(load(CifarKind::Cifar10, Some(&files)).unwrap().n_test(), 3);
    }

    #[test]
    fn search_order() {
        let env = SearchEnv {
            cl_data_dir: Some("/d".into()),
            xdg_cache_home: Some("/x".into()),
            home: Some("/h".into()),
            system_dirs: true,
        };
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(search_dirs(CifarKind::Cifar10, &env), vec![p("/d/cifar10"), p("/d"), p("/x/cl/cifar10")]);
        let env = SearchEnv { cl_data_dir: None, xdg_cache_home: None, ..env };
        assert_eq!(search_dirs(CifarKind::Cifar100, &env), vec![p("/h/.cache/cl/cifar100")]);
        assert!(search_dirs(CifarKind::Cifar10, &SearchEnv::default()).is_empty());
    }

    #[test]
    fn locate_follows_order() {
        let root = tempfile::tempdir().unwrap();
        let env = env_in(root.path());
        let kind = CifarKind::Cifar10;
        // Only in the HOME cache, extracted there (through the subdirectory).
        let cache = root.path().join("home/.cache/cl/cifar10/cifar-10-batches-bin");
        write_cifar10(&cache, 1, 1);
        assert_eq!(locate_with(kind, None, &env).unwrap(), cache);
        // $CL_DATA_DIR itself, holding the files directly, wins over the cache...
        write_cifar10(&root.path().join("data"), 1, 1);
        assert_eq!(locate_with(kind, None, &env).unwrap(), root.path().join("data"));
        // ...and $CL_DATA_DIR/cifar10 over $CL_DATA_DIR.
        let named = root.path().join("data/cifar10/cifar-10-batches-bin");
        write_cifar10(&named, 1, 1);
        assert_eq!(locate_with(kind, None, &env).unwrap(), named);
        // CIFAR-100 is not found in CIFAR-10's directories.
        assert!(matches!(locate_with(CifarKind::Cifar100, None, &env), Err(DataError::NotFound { .. })));
    }

    #[test]
    fn not_found_lists_searched_paths_and_fix() {
        let root = tempfile::tempdir().unwrap();
        let env = env_in(root.path());
        let err = locate_with(CifarKind::Cifar10, None, &env).unwrap_err();
        let DataError::NotFound { dataset, searched, .. } = &err else {
            panic!("expected NotFound, got {err:?}");
        };
        assert_eq!(dataset, "CIFAR-10");
        assert_eq!(searched, &search_dirs(CifarKind::Cifar10, &env));
        assert_eq!(searched.len(), 3);
        let msg = err.to_string();
        eprintln!("{msg}");
        for dir in searched {
            assert!(msg.contains(&format!("  - {}\n", dir.display())), "{msg}");
        }
        for needle in [
            "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
            "CL_DATA_DIR/cifar10",
            "tar -xzf",
            "cifar-10-batches-bin",
            "data_batch_1.bin",
            "test_batch.bin",
            "download(CifarKind::Cifar10, dir)",
        ] {
            assert!(msg.contains(needle), "{needle} not in {msg}");
        }
        let msg = locate_with(CifarKind::Cifar100, None, &env).unwrap_err().to_string();
        assert!(msg.contains("cifar-100-binary.tar.gz") && msg.contains("train.bin"), "{msg}");
        let msg = locate_with(CifarKind::Cifar100, None, &SearchEnv::default()).unwrap_err().to_string();
        assert!(msg.contains("(none:"), "{msg}");
    }

    #[test]
    fn missing_files_listed() {
        let root = tempfile::tempdir().unwrap();
        // Even though the cache holds the dataset, there is no fallback.
        write_cifar10(&root.path().join("home/.cache/cl/cifar10"), 1, 1);
        let env = env_in(root.path());
        let partial = root.path().join("partial");
        write_cifar10(&partial, 1, 1);
        std::fs::remove_file(partial.join("data_batch_3.bin")).unwrap();
        std::fs::remove_file(partial.join("test_batch.bin")).unwrap();
        let err = locate_with(CifarKind::Cifar10, Some(&partial), &env).unwrap_err();
        match &err {
            DataError::MissingFiles { dataset, dir, missing, .. } => {
                assert_eq!(dataset, "CIFAR-10");
                assert_eq!(dir, &partial);
                assert_eq!(missing, &["data_batch_3.bin", "test_batch.bin"]);
            }
            other => panic!("expected MissingFiles, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(&partial.display().to_string()), "{msg}");
        assert!(msg.contains("data_batch_3.bin, test_batch.bin"), "{msg}");
        assert!(msg.contains("cifar-10-binary.tar.gz"), "{msg}");
        // A parent whose subdirectory is incomplete: the subdirectory is reported.
        let sub = root.path().join("p/cifar-100-binary");
        write_cifar100(&sub, 1, 1);
        std::fs::remove_file(sub.join("train.bin")).unwrap();
        let err = load(CifarKind::Cifar100, Some(&root.path().join("p"))).unwrap_err();
        assert!(
            matches!(&err, DataError::MissingFiles { dir, missing, .. } if dir == &sub && missing == &["train.bin"]),
            "{err:?}"
        );
        // A non-existent directory: every file is missing.
        let err = load_dir(CifarKind::Cifar10, &root.path().join("nope")).unwrap_err();
        assert!(matches!(&err, DataError::MissingFiles { missing, .. } if missing.len() == 6), "{err:?}");
    }

    #[test]
    fn truncated_file() {
        let root = tempfile::tempdir().unwrap();
        write_cifar10(root.path(), 3, 2);
        let path = root.path().join("data_batch_4.bin");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(2 * 3073 + 100);
        std::fs::write(&path, bytes).unwrap();
        let err = load_dir(CifarKind::Cifar10, root.path()).unwrap_err();
        match &err {
            DataError::RecordSize { path: p, dataset, record_len, actual } => {
                assert_eq!(p, &path);
                assert_eq!((dataset.as_str(), *record_len, *actual), ("CIFAR-10", 3073, 2 * 3073 + 100));
            }
            other => panic!("expected RecordSize, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("data_batch_4.bin") && msg.contains("6246 bytes") && msg.contains("3073-byte"), "{msg}");
        assert!(msg.contains("2 whole records and 100 bytes over"), "{msg}");
        // Empty file; CIFAR-10 records read as CIFAR-100 (3073 is not a multiple of 3074).
        std::fs::write(&path, b"").unwrap();
        assert!(matches!(load_dir(CifarKind::Cifar10, root.path()), Err(DataError::RecordSize { actual: 0, .. })));
        let c100 = root.path().join("c100");
        std::fs::create_dir_all(&c100).unwrap();
        std::fs::write(c100.join("train.bin"), cifar10_bytes(0..2, |_| 0)).unwrap();
        std::fs::write(c100.join("test.bin"), cifar100_bytes(0..1)).unwrap();
        let err = load_dir(CifarKind::Cifar100, &c100).unwrap_err();
        assert!(matches!(err, DataError::RecordSize { record_len: 3074, actual: 6146, .. }), "{err:?}");
    }

    #[test]
    fn bad_labels() {
        let root = tempfile::tempdir().unwrap();
        write_cifar10(root.path(), 3, 4);
        let path = root.path().join("test_batch.bin");
        std::fs::write(&path, cifar10_bytes(0..4, |s| if s == 2 { 10 } else { 9 })).unwrap();
        match load_dir(CifarKind::Cifar10, root.path()) {
            Err(DataError::LabelOutOfRange { path: p, which: "label", index: 2, label: 10, n_classes: 10 }) => {
                assert_eq!(p, path)
            }
            other => panic!("expected LabelOutOfRange, got {other:?}"),
        }
        // CIFAR-100: fine label 100, then coarse label 20.
        let dir = root.path().join("c100");
        write_cifar100(&dir, 5, 2);
        let train = dir.join("train.bin");
        let mut bytes = cifar100_bytes(0..5);
        bytes[3 * 3074 + 1] = 100;
        std::fs::write(&train, &bytes).unwrap();
        let err = load_dir(CifarKind::Cifar100, &dir).unwrap_err();
        assert!(
            matches!(err, DataError::LabelOutOfRange { which: "fine label", index: 3, label: 100, n_classes: 100, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("fine label 100 of record 3 is not a class in 0..100"), "{err}");
        let mut bytes = cifar100_bytes(0..5);
        bytes[4 * 3074] = 20;
        std::fs::write(&train, &bytes).unwrap();
        let err = load_dir(CifarKind::Cifar100, &dir).unwrap_err();
        assert!(
            matches!(err, DataError::LabelOutOfRange { which: "coarse label", index: 4, label: 20, n_classes: 20, .. }),
            "{err:?}"
        );
    }

    // ---- download and extraction ----

    /// A CIFAR-10-like archive of the files in `src` (plus a directory entry, a metadata file,
    /// a file outside the dataset directory and path-traversal attempts, all to be ignored
    /// or extracted harmlessly), as a `.tar.gz`.
    fn cifar10_archive(src: &Path, skip: Option<&str>) -> Vec<u8> {
        let mut tar = Vec::new();
        tar_entry(&mut tar, "cifar-10-batches-bin/", b"", b'5');
        tar_entry(&mut tar, "cifar-10-batches-bin/batches.meta.txt", b"airplane\n", b'0');
        tar_entry(&mut tar, "../evil.bin", b"x", b'0');
        tar_entry(&mut tar, "cifar-10-batches-bin/../../evil.bin", b"x", b'0');
        tar_entry(&mut tar, "other/readme.html", b"<html>", b'0');
        for name in CifarKind::Cifar10.file_names() {
            if Some(name) == skip {
                continue;
            }
            let data = std::fs::read(src.join(name)).unwrap();
            tar_entry(&mut tar, &format!("./cifar-10-batches-bin/{name}"), &data, b'0');
        }
        tar.extend_from_slice(&[0u8; 1024]);
        gzip(&tar)
    }

    /// Serves fixed bytes for one URL; records the calls.
    struct OneFile {
        url: String,
        bytes: Vec<u8>,
        calls: std::cell::Cell<usize>,
    }

    impl Fetcher for OneFile {
        fn fetch(&self, url: &str, dest: &Path) -> Result<(), DataError> {
            self.calls.set(self.calls.get() + 1);
            assert_eq!(url, self.url);
            std::fs::write(dest, &self.bytes).map_err(|e| DataError::io(dest, e))
        }
    }

    fn sha_hex(bytes: &[u8]) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    }

    #[test]
    fn download_fetches_verifies_extracts() {
        let root = tempfile::tempdir().unwrap();
        let src = root.path().join("src");
        write_cifar10(&src, 4, 5);
        let archive = cifar10_archive(&src, None);
        let file = RemoteFile {
            name: "cifar-10-binary.tar.gz".into(),
            urls: vec!["u://cifar".into()],
            sha256: sha_hex(&archive),
        };
        let fetcher = OneFile { url: "u://cifar".into(), bytes: archive, calls: Default::default() };
        let dir = root.path().join("out/cifar10");
        let files = download_with(CifarKind::Cifar10, &fetcher, std::slice::from_ref(&file), &dir).unwrap();
        assert_eq!(files, dir.join("cifar-10-batches-bin"));
        assert_eq!(fetcher.calls.get(), 1);
        // The archive is deleted, nothing escaped, no partial file left.
        assert_eq!(entries(&dir), vec!["cifar-10-batches-bin"]);
        assert_eq!(entries(&root.path().join("out")), vec!["cifar10"]);
        let mut expected: Vec<String> = CifarKind::Cifar10.file_names().iter().map(|s| s.to_string()).collect();
        expected.push("batches.meta.txt".into());
        expected.sort();
        assert_eq!(entries(&files), expected);
        assert_eq!(load_dir(CifarKind::Cifar10, &dir).unwrap(), {
            let mut a = load_dir(CifarKind::Cifar10, &src).unwrap();
            a.dir = files.clone();
            a
        });
        // Already there: nothing fetched.
        assert_eq!(download_with(CifarKind::Cifar10, &fetcher, &[file], &dir).unwrap(), files);
        assert_eq!(fetcher.calls.get(), 1);
    }

    #[test]
    fn download_checksum_mismatch_installs_nothing() {
        let root = tempfile::tempdir().unwrap();
        let file = RemoteFile { name: "a.tar.gz".into(), urls: vec!["u://a".into()], sha256: sha_hex(b"good") };
        let fetcher = OneFile { url: "u://a".into(), bytes: b"tampered".to_vec(), calls: Default::default() };
        let err = download_with(CifarKind::Cifar100, &fetcher, &[file], root.path()).unwrap_err();
        assert!(matches!(err, DataError::ChecksumMismatch { .. }), "{err:?}");
        assert!(entries(root.path()).is_empty());
    }

    /// Extracts a dataset's files from its archive, as [`download_with`] does.
    fn extract_archive(kind: CifarKind, archive: &Path, dir: &Path) -> Result<PathBuf, DataError> {
        extract_tar_gz(archive, dir, kind.subdir(), &kind.file_names())
    }

    #[test]
    fn archive_errors() {
        let root = tempfile::tempdir().unwrap();
        let src = root.path().join("src");
        write_cifar10(&src, 1, 1);
        let path = root.path().join("a.tar.gz");
        // A member missing.
        std::fs::write(&path, cifar10_archive(&src, Some("data_batch_5.bin"))).unwrap();
        let err = extract_archive(CifarKind::Cifar10, &path, &root.path().join("x")).unwrap_err();
        assert!(
            matches!(&err, DataError::BadArchive { reason, .. } if reason.contains("lacks data_batch_5.bin")),
            "{err:?}"
        );
        // Truncated inside an entry (valid gzip of a cut tar).
        let mut tar = Vec::new();
        tar_entry(&mut tar, "cifar-10-batches-bin/test_batch.bin", &[1u8; 3073], b'0');
        tar.truncate(1500);
        std::fs::write(&path, gzip(&tar)).unwrap();
        let err = extract_archive(CifarKind::Cifar10, &path, &root.path().join("y")).unwrap_err();
        assert!(matches!(&err, DataError::BadArchive { reason, .. } if reason.contains("truncated")), "{err:?}");
        assert!(entries(&root.path().join("y/cifar-10-batches-bin")).is_empty(), "partial file removed");
        // A corrupt header checksum.
        let mut tar = Vec::new();
        tar_entry(&mut tar, "cifar-10-batches-bin/test_batch.bin", b"x", b'0');
        tar[10] ^= 1;
        std::fs::write(&path, gzip(&tar)).unwrap();
        let err = extract_archive(CifarKind::Cifar10, &path, &root.path().join("z")).unwrap_err();
        assert!(matches!(&err, DataError::BadArchive { reason, .. } if reason.contains("checksum")), "{err:?}");
        // A GNU long name declaring 1 GiB: refused before anything is read into memory.
        let mut tar = Vec::new();
        tar.extend_from_slice(&crate::download::test_tar::header("././@LongLink", 1 << 30, b'L', ""));
        tar.extend_from_slice(&[b'a'; 4096]);
        std::fs::write(&path, gzip(&tar)).unwrap();
        let err = extract_archive(CifarKind::Cifar10, &path, &root.path().join("v")).unwrap_err();
        assert!(
            matches!(&err, DataError::BadArchive { reason, .. } if reason.contains("1073741824 bytes, over 65536")),
            "{err:?}"
        );
        // A malformed pax record (its length runs past the header).
        let mut tar = Vec::new();
        tar_entry(&mut tar, "PaxHeaders/x", b"99 path=cifar-10-batches-bin/x\n", b'x');
        tar_entry(&mut tar, "cifar-10-batches-bin/test_batch.bin", b"x", b'0');
        std::fs::write(&path, gzip(&tar)).unwrap();
        let err = extract_archive(CifarKind::Cifar10, &path, &root.path().join("u")).unwrap_err();
        assert!(matches!(&err, DataError::BadArchive { reason, .. } if reason.contains("malformed pax")), "{err:?}");
        // Not gzip at all.
        std::fs::write(&path, b"plain text, not gzip").unwrap();
        let err = extract_archive(CifarKind::Cifar10, &path, &root.path().join("w")).unwrap_err();
        assert!(matches!(err, DataError::Gzip { .. }), "{err:?}");
    }

    #[test]
    fn long_names_and_pax_paths() {
        let root = tempfile::tempdir().unwrap();
        let mut tar = Vec::new();
        // GNU long name.
        tar_entry(&mut tar, "././@LongLink", b"cifar-100-binary/train.bin\0", b'L');
        tar_entry(&mut tar, "ignored-short-name", &cifar100_bytes(0..2), b'0');
        // pax path.
        let record = "34 path=cifar-100-binary/test.bin\n";
        assert_eq!(record.len(), 34);
        tar_entry(&mut tar, "PaxHeaders/test.bin", record.as_bytes(), b'x');
        tar_entry(&mut tar, "other-name", &cifar100_bytes(5..6), b'0');
        std::fs::write(root.path().join("a.tgz"), gzip(&tar)).unwrap();
        let out = extract_archive(CifarKind::Cifar100, &root.path().join("a.tgz"), root.path()).unwrap();
        let a = load_dir(CifarKind::Cifar100, &out).unwrap();
        assert_eq!((a.n_train(), a.n_test()), (2, 1));
        assert_eq!(a.test_labels, vec![5]);
    }

    #[test]
    fn remote_files_are_well_formed() {
        for kind in [CifarKind::Cifar10, CifarKind::Cifar100] {
            let [f] = <[RemoteFile; 1]>::try_from(kind.remote_files()).unwrap();
            assert_eq!(f.urls, vec![kind.url().to_string()]);
            assert!(f.urls[0].ends_with(&f.name) && f.urls[0].starts_with("https://www.cs.toronto.edu/~kriz/"));
            assert_eq!(f.sha256.len(), 64);
            assert!(f.sha256.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            assert_eq!(kind.archive_md5().len(), 32);
        }
        assert_eq!(CifarKind::Cifar100.remote_files()[0].name, "cifar-100-binary.tar.gz");
    }
}
