//! Locating and loading MNIST-format datasets (MNIST, Fashion-MNIST) from disk.
//!
//! A dataset directory holds the four standard files
//! [`MnistKind::FILE_NAMES`], each raw or gzip-compressed (`<name>.gz`).
//! [`locate`] looks for such a directory in this order:
//!
//! 1. the directory passed explicitly, if any — and only that one: if it lacks
//!    the files, that is an error ([`DataError::MissingFiles`]), there is no
//!    silent fallback;
//! 2. `$CL_DATA_DIR/<name>`, then `$CL_DATA_DIR` itself;
//! 3. the per-user cache, `$XDG_CACHE_HOME/cl/<name>` or else
//!    `$HOME/.cache/cl/<name>` (where [`default_cache_dir`] points, a good
//!    target for [`crate::download::download`]);
//! 4. for Fashion-MNIST, `/usr/share/datasets/fashion-mnist`, where Debian's
//!    `dataset-fashion-mnist` package installs it.
//!
//! `<name>` is [`MnistKind::name`]: `mnist` or `fashion-mnist`.
//! The search list is computed by [`search_dirs`] from a [`SearchEnv`], so it
//! can be inspected and tested without touching environment variables.

use std::path::{Path, PathBuf};

use crate::data_error::DataError;
use crate::idx::{IdxArray, read_idx};

/// The number of classes of MNIST and Fashion-MNIST; labels are in `0..NUM_CLASSES`.
pub const NUM_CLASSES: usize = 10;

/// Which MNIST-format dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MnistKind {
    /// The MNIST handwritten digits (LeCun, Cortes, Burges).
    Mnist,
    /// Fashion-MNIST, Zalando Research's clothing images (same format as MNIST).
    FashionMnist,
}

impl MnistKind {
    /// The standard file names (without `.gz`): train images, train labels,
    /// test images, test labels.
    pub const FILE_NAMES: [&'static str; 4] = [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ];

    /// The directory name used under `$CL_DATA_DIR` and the cache: `mnist` or `fashion-mnist`.
    pub fn name(self) -> &'static str {
        match self {
            MnistKind::Mnist => "mnist",
            MnistKind::FashionMnist => "fashion-mnist",
        }
    }

    /// The human-readable name: `MNIST` or `Fashion-MNIST`.
    pub fn display_name(self) -> &'static str {
        match self {
            MnistKind::Mnist => "MNIST",
            MnistKind::FashionMnist => "Fashion-MNIST",
        }
    }

    /// System-wide directories searched last (those of distribution packages).
    pub fn system_dirs(self) -> &'static [&'static str] {
        match self {
            MnistKind::Mnist => &[],
            MnistKind::FashionMnist => &["/usr/share/datasets/fashion-mnist"],
        }
    }
}

impl std::fmt::Display for MnistKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.display_name())
    }
}

pub use crate::search::SearchEnv;

/// The per-user cache directory of a dataset under `env`:
/// `$XDG_CACHE_HOME/cl/<name>`, else `$HOME/.cache/cl/<name>`, else `None`.
pub fn cache_dir(kind: MnistKind, env: &SearchEnv) -> Option<PathBuf> {
    env.cache_dir(kind.name())
}

/// The per-user cache directory of a dataset in the current environment
/// (see [`cache_dir`]); [`locate`] searches it, so it is a good place to
/// [`download`](crate::download::download) to.
pub fn default_cache_dir(kind: MnistKind) -> Option<PathBuf> {
    cache_dir(kind, &SearchEnv::from_env())
}

/// The directories searched for a dataset when none is given explicitly, in
/// order, without duplicates (see the [module documentation](self)).
pub fn search_dirs(kind: MnistKind, env: &SearchEnv) -> Vec<PathBuf> {
    env.search_dirs(kind.name(), kind.system_dirs())
}

/// The paths of the four files in `dir` (order of [`MnistKind::FILE_NAMES`]),
/// preferring the raw file over `.gz` when both exist; or the names missing.
fn files_in(dir: &Path) -> Result<[PathBuf; 4], Vec<String>> {
    let mut found = Vec::with_capacity(4);
    let mut missing = Vec::new();
    for name in MnistKind::FILE_NAMES {
        let raw = dir.join(name);
        let gz = dir.join(format!("{name}.gz"));
        if raw.is_file() {
            found.push(raw);
        } else if gz.is_file() {
            found.push(gz);
        } else {
            missing.push(name.to_string());
        }
    }
    match <[PathBuf; 4]>::try_from(found) {
        Ok(files) if missing.is_empty() => Ok(files),
        _ => Err(missing),
    }
}

/// Finds the directory holding a dataset, searching the process environment;
/// see [`locate_with`].
pub fn locate(kind: MnistKind, explicit: Option<&Path>) -> Result<PathBuf, DataError> {
    locate_with(kind, explicit, &SearchEnv::from_env())
}

/// Finds the directory holding a dataset: `explicit` if given (error
/// [`DataError::MissingFiles`] if it lacks any file), else the first of
/// [`search_dirs`]`(kind, env)` holding all four files (error
/// [`DataError::DatasetNotFound`] listing every directory searched).
pub fn locate_with(
    kind: MnistKind,
    explicit: Option<&Path>,
    env: &SearchEnv,
) -> Result<PathBuf, DataError> {
    if let Some(dir) = explicit {
        return match files_in(dir) {
            Ok(_) => Ok(dir.to_path_buf()),
            Err(missing) => Err(DataError::MissingFiles { dataset: kind, dir: dir.to_path_buf(), missing }),
        };
    }
    let searched = search_dirs(kind, env);
    match searched.iter().find(|d| files_in(d).is_ok()) {
        Some(dir) => Ok(dir.clone()),
        None => Err(DataError::DatasetNotFound { dataset: kind, searched }),
    }
}

/// A whole MNIST-format dataset in memory.
#[derive(Clone, PartialEq, Eq)]
pub struct MnistArrays {
    /// Training images, row-major, `rows * cols` bytes per image, one after the other.
    pub train_images: Vec<u8>,
    /// Training labels, one byte per image, each in `0..10`.
    pub train_labels: Vec<u8>,
    /// Test images, laid out as `train_images`.
    pub test_images: Vec<u8>,
    /// Test labels, laid out as `train_labels`.
    pub test_labels: Vec<u8>,
    /// Image height in pixels.
    pub rows: usize,
    /// Image width in pixels.
    pub cols: usize,
    /// The directory the files were read from.
    pub dir: PathBuf,
}

impl MnistArrays {
    /// The number of bytes (pixels) of one image: `rows * cols`.
    pub fn image_len(&self) -> usize {
        self.rows * self.cols
    }

    /// The number of training samples.
    pub fn n_train(&self) -> usize {
        self.train_labels.len()
    }

    /// The number of test samples.
    pub fn n_test(&self) -> usize {
        self.test_labels.len()
    }
}

impl std::fmt::Debug for MnistArrays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Summarise: the arrays hold tens of megabytes.
        f.debug_struct("MnistArrays")
            .field("n_train", &self.n_train())
            .field("n_test", &self.n_test())
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("dir", &self.dir)
            .finish()
    }
}

/// Locates (see [`locate`]) and loads a dataset.
pub fn load(kind: MnistKind, explicit: Option<&Path>) -> Result<MnistArrays, DataError> {
    let dir = locate(kind, explicit)?;
    load_dir(kind, &dir)
}

/// Loads and validates the dataset in `dir`, decoding the four files in
/// parallel threads.
///
/// Errors: [`DataError::MissingFiles`]; the errors of [`read_idx`];
/// [`DataError::BadShape`] unless images are `[n, rows, cols]` (test and
/// training alike, non-zero sizes) and labels `[n]`;
/// [`DataError::CountMismatch`] if a split has different numbers of images
/// and labels; [`DataError::BadLabel`] for a label not in `0..10`.
pub fn load_dir(kind: MnistKind, dir: &Path) -> Result<MnistArrays, DataError> {
    let files = files_in(dir).map_err(|missing| DataError::MissingFiles {
        dataset: kind,
        dir: dir.to_path_buf(),
        missing,
    })?;
    let [train_x, train_y, test_x, test_y]: [Result<IdxArray, DataError>; 4] =
        std::thread::scope(|s| {
            files
                .each_ref()
                .map(|f| s.spawn(move || read_idx(f)))
                .map(|h| h.join().unwrap_or_else(|payload| std::panic::resume_unwind(payload)))
        });
    let (train_x, train_y, test_x, test_y) = (train_x?, train_y?, test_x?, test_y?);
    let [train_x_path, train_y_path, test_x_path, test_y_path] = files;

    let (rows, cols) = match train_x.dims[..] {
        [_, r, c] if r > 0 && c > 0 => (r, c),
        _ => {
            return Err(DataError::BadShape {
                path: train_x_path,
                expected: "3-D images [n, rows, cols] with rows, cols > 0".to_string(),
                dims: train_x.dims,
            });
        }
    };
    if !matches!(test_x.dims[..], [_, r, c] if r == rows && c == cols) {
        return Err(DataError::BadShape {
            path: test_x_path,
            expected: format!("3-D images [n, {rows}, {cols}] like the training images"),
            dims: test_x.dims,
        });
    }
    for (labels, path, images, images_path) in [
        (&train_y, &train_y_path, &train_x, &train_x_path),
        (&test_y, &test_y_path, &test_x, &test_x_path),
    ] {
        if labels.dims.len() != 1 {
            return Err(DataError::BadShape {
                path: path.clone(),
                expected: "1-D labels [n]".to_string(),
                dims: labels.dims.clone(),
            });
        }
        if labels.dims[0] != images.dims[0] {
            return Err(DataError::CountMismatch {
                images_path: images_path.clone(),
                labels_path: path.clone(),
                images: images.dims[0],
                labels: labels.dims[0],
            });
        }
        if let Some((index, &label)) =
            labels.data.iter().enumerate().find(|&(_, &l)| usize::from(l) >= NUM_CLASSES)
        {
            return Err(DataError::BadLabel { path: path.clone(), index, label });
        }
    }

    Ok(MnistArrays {
        train_images: train_x.data,
        train_labels: train_y.data,
        test_images: test_x.data,
        test_labels: test_y.data,
        rows,
        cols,
        dir: dir.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn fixture_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fashion-mnist-mini")
    }

    /// An environment that sees nothing outside `root` (no system directories).
    fn env_in(root: &Path) -> SearchEnv {
        SearchEnv {
            cl_data_dir: Some(root.join("data")),
            xdg_cache_home: None,
            home: Some(root.join("home")),
            system_dirs: false,
        }
    }

    fn copy_fixture_to(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        for name in MnistKind::FILE_NAMES {
            let f = format!("{name}.gz");
            std::fs::copy(fixture_dir().join(&f), dir.join(&f)).unwrap();
        }
    }

    fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 0x08, dims.len() as u8];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    /// Writes a tiny raw (uncompressed) dataset: 2x2 images.
    fn write_tiny(dir: &Path, n_train_images: u32, train_labels: &[u8]) {
        std::fs::create_dir_all(dir).unwrap();
        let w = |name: &str, bytes: Vec<u8>| {
            std::fs::File::create(dir.join(name)).unwrap().write_all(&bytes).unwrap();
        };
        w(
            "train-images-idx3-ubyte",
            idx_bytes(&[n_train_images, 2, 2], &vec![7; n_train_images as usize * 4]),
        );
        w("train-labels-idx1-ubyte", idx_bytes(&[train_labels.len() as u32], train_labels));
        w("t10k-images-idx3-ubyte", idx_bytes(&[1, 2, 2], &[1, 2, 3, 4]));
        w("t10k-labels-idx1-ubyte", idx_bytes(&[1], &[9]));
    }

    #[test]
    fn loads_fixture() {
        let a = load_dir(MnistKind::FashionMnist, &fixture_dir()).unwrap();
        assert_eq!((a.rows, a.cols), (28, 28));
        assert_eq!((a.n_train(), a.n_test()), (2000, 500));
        assert_eq!(a.train_images.len(), 2000 * 784);
        assert_eq!(a.test_images.len(), 500 * 784);
        // Values Python reads from the same files (see make_fixture.py).
        assert_eq!(&a.train_labels[..10], &[9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
        assert_eq!(&a.test_labels[..10], &[9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
        let mut counts = [0usize; 10];
        a.train_labels.iter().for_each(|&l| counts[l as usize] += 1);
        assert_eq!(counts, [194, 216, 202, 195, 186, 200, 194, 215, 198, 200]);
        let mut counts = [0usize; 10];
        a.test_labels.iter().for_each(|&l| counts[l as usize] += 1);
        assert_eq!(counts, [55, 52, 65, 46, 57, 39, 47, 47, 44, 48]);
        assert!(format!("{a:?}").contains("n_train: 2000"));
    }

    /// The full dataset, where Debian's `dataset-fashion-mnist` is installed.
    #[test]
    fn loads_system_fashion_mnist_if_installed() {
        let dir = Path::new("/usr/share/datasets/fashion-mnist");
        if files_in(dir).is_err() {
            eprintln!("note: {} not installed; skipping the full-dataset test", dir.display());
            return;
        }
        let t = std::time::Instant::now();
        let a = load(MnistKind::FashionMnist, Some(dir)).unwrap();
        eprintln!("loaded full Fashion-MNIST in {:?}: {a:?}", t.elapsed());
        assert_eq!((a.n_train(), a.n_test(), a.rows, a.cols), (60_000, 10_000, 28, 28));
        // The fixture is a prefix of these files.
        let mini = load_dir(MnistKind::FashionMnist, &fixture_dir()).unwrap();
        assert_eq!(a.train_labels[..2000], mini.train_labels[..]);
        assert_eq!(a.train_images[..2000 * 784], mini.train_images[..]);
        assert_eq!(a.test_images[..500 * 784], mini.test_images[..]);
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
        assert_eq!(
            search_dirs(MnistKind::FashionMnist, &env),
            vec![
                p("/d/fashion-mnist"),
                p("/d"),
                p("/x/cl/fashion-mnist"),
                p("/usr/share/datasets/fashion-mnist")
            ]
        );
        assert_eq!(search_dirs(MnistKind::Mnist, &env), vec![p("/d/mnist"), p("/d"), p("/x/cl/mnist")]);
        let env = SearchEnv { cl_data_dir: None, xdg_cache_home: None, ..env };
        assert_eq!(search_dirs(MnistKind::Mnist, &env), vec![p("/h/.cache/cl/mnist")]);
        assert!(search_dirs(MnistKind::Mnist, &SearchEnv::default()).is_empty());
    }

    #[test]
    fn locate_follows_order() {
        let root = tempfile::tempdir().unwrap();
        let env = env_in(root.path());
        let kind = MnistKind::FashionMnist;
        // Only in the HOME cache.
        let cache = root.path().join("home/.cache/cl/fashion-mnist");
        copy_fixture_to(&cache);
        assert_eq!(locate_with(kind, None, &env).unwrap(), cache);
        // $CL_DATA_DIR itself wins over the cache...
        copy_fixture_to(&root.path().join("data"));
        assert_eq!(locate_with(kind, None, &env).unwrap(), root.path().join("data"));
        // ...and $CL_DATA_DIR/<name> over $CL_DATA_DIR.
        copy_fixture_to(&root.path().join("data/fashion-mnist"));
        assert_eq!(locate_with(kind, None, &env).unwrap(), root.path().join("data/fashion-mnist"));
        // An explicit directory wins over everything.
        assert_eq!(locate_with(kind, Some(&fixture_dir()), &env).unwrap(), fixture_dir());
        // A directory with only some of the files is skipped.
        let partial = root.path().join("partial");
        std::fs::create_dir_all(&partial).unwrap();
        std::fs::copy(
            fixture_dir().join("train-labels-idx1-ubyte.gz"),
            partial.join("train-labels-idx1-ubyte.gz"),
        )
        .unwrap();
        let env = SearchEnv { cl_data_dir: Some(partial), ..env };
        assert_eq!(locate_with(kind, None, &env).unwrap(), cache);
    }

    #[test]
    fn not_found_lists_searched_paths_and_fix() {
        let root = tempfile::tempdir().unwrap();
        let env = env_in(root.path());
        let err = locate_with(MnistKind::FashionMnist, None, &env).unwrap_err();
        let DataError::DatasetNotFound { dataset, searched } = &err else {
            panic!("expected DatasetNotFound, got {err:?}");
        };
        assert_eq!(*dataset, MnistKind::FashionMnist);
        assert_eq!(searched, &search_dirs(MnistKind::FashionMnist, &env));
        assert_eq!(searched.len(), 3);
        let msg = err.to_string();
        eprintln!("{msg}");
        for dir in searched {
            assert!(msg.contains(&dir.display().to_string()), "{msg}");
        }
        assert!(msg.contains("sudo apt-get install dataset-fashion-mnist"), "{msg}");
        assert!(msg.contains("CL_DATA_DIR"), "{msg}");
        assert!(msg.contains("download(MnistKind::FashionMnist, dir)"), "{msg}");

        let msg = locate_with(MnistKind::Mnist, None, &env).unwrap_err().to_string();
        assert!(!msg.contains("apt-get"), "{msg}");
        assert!(msg.contains("download(MnistKind::Mnist, dir)"), "{msg}");
        assert!(msg.contains(&root.path().join("data/mnist").display().to_string()), "{msg}");
    }

    #[test]
    fn explicit_dir_without_files_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        // Even though the cache holds the dataset, there is no fallback.
        copy_fixture_to(&root.path().join("home/.cache/cl/fashion-mnist"));
        let env = env_in(root.path());
        let empty = root.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        std::fs::copy(
            fixture_dir().join("t10k-labels-idx1-ubyte.gz"),
            empty.join("t10k-labels-idx1-ubyte.gz"),
        )
        .unwrap();
        let err = locate_with(MnistKind::FashionMnist, Some(&empty), &env).unwrap_err();
        match &err {
            DataError::MissingFiles { dir, missing, .. } => {
                assert_eq!(dir, &empty);
                assert_eq!(missing.len(), 3);
                assert!(!missing.contains(&"t10k-labels-idx1-ubyte".to_string()));
            }
            other => panic!("expected MissingFiles, got {other:?}"),
        }
        assert!(err.to_string().contains(&empty.display().to_string()));
        // A non-existent explicit directory too.
        let err = load(MnistKind::Mnist, Some(&root.path().join("nope"))).unwrap_err();
        assert!(matches!(&err, DataError::MissingFiles { missing, .. } if missing.len() == 4), "{err:?}");
    }

    #[test]
    fn loads_raw_files() {
        let root = tempfile::tempdir().unwrap();
        write_tiny(root.path(), 3, &[0, 1, 2]);
        let a = load_dir(MnistKind::Mnist, root.path()).unwrap();
        assert_eq!((a.rows, a.cols, a.n_train(), a.n_test()), (2, 2, 3, 1));
        assert_eq!(a.test_images, vec![1, 2, 3, 4]);
        assert_eq!(a.train_labels, vec![0, 1, 2]);
    }

    #[test]
    fn count_mismatch() {
        let root = tempfile::tempdir().unwrap();
        write_tiny(root.path(), 3, &[0, 1]);
        match load_dir(MnistKind::Mnist, root.path()) {
            Err(DataError::CountMismatch { images: 3, labels: 2, images_path, labels_path }) => {
                assert!(images_path.ends_with("train-images-idx3-ubyte"));
                assert!(labels_path.ends_with("train-labels-idx1-ubyte"));
            }
            other => panic!("expected CountMismatch, got {other:?}"),
        }
    }

    #[test]
    fn bad_label() {
        let root = tempfile::tempdir().unwrap();
        write_tiny(root.path(), 3, &[0, 10, 2]);
        match load_dir(MnistKind::Mnist, root.path()) {
            Err(DataError::BadLabel { index: 1, label: 10, path }) => {
                assert!(path.ends_with("train-labels-idx1-ubyte"))
            }
            other => panic!("expected BadLabel, got {other:?}"),
        }
    }

    #[test]
    fn bad_shapes() {
        let root = tempfile::tempdir().unwrap();
        write_tiny(root.path(), 3, &[0, 1, 2]);
        // Labels passed as images: 1-D where 3-D is expected.
        std::fs::write(root.path().join("train-images-idx3-ubyte"), idx_bytes(&[3], &[0, 1, 2])).unwrap();
        let err = load_dir(MnistKind::Mnist, root.path()).unwrap_err();
        assert!(matches!(&err, DataError::BadShape { dims, .. } if dims == &vec![3]), "{err:?}");
        // Test images of another size than the training images.
        write_tiny(root.path(), 3, &[0, 1, 2]);
        std::fs::write(root.path().join("t10k-images-idx3-ubyte"), idx_bytes(&[1, 1, 4], &[0; 4])).unwrap();
        let err = load_dir(MnistKind::Mnist, root.path()).unwrap_err();
        assert!(matches!(&err, DataError::BadShape { path, .. } if path.ends_with("t10k-images-idx3-ubyte")));
    }

    #[test]
    fn corrupt_file_error_propagates_with_path() {
        let root = tempfile::tempdir().unwrap();
        write_tiny(root.path(), 3, &[0, 1, 2]);
        std::fs::write(root.path().join("t10k-labels-idx1-ubyte"), b"garbage!").unwrap();
        let err = load_dir(MnistKind::Mnist, root.path()).unwrap_err();
        assert!(
            matches!(&err, DataError::BadMagic { path: Some(p), .. } if p.ends_with("t10k-labels-idx1-ubyte")),
            "{err:?}"
        );
    }
}
