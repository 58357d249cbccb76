//! MNIST and Fashion-MNIST: their files ([`MnistKind`], a [`DatasetFiles`]) and loading them
//! from disk ([`load`], [`load_dir`]).
//!
//! A dataset directory holds the four standard files [`MnistKind::FILE_NAMES`], each raw or
//! gzip-compressed (`<name>.gz`), read by [`crate::idx`]. It is found by
//! [`files::locate`] (explicit directory, `$CL_DATA_DIR/<name>`,
//! `$CL_DATA_DIR`, the per-user cache, and for Fashion-MNIST Debian's
//! `/usr/share/datasets/fashion-mnist`), where `<name>` is `mnist` or `fashion-mnist`, and
//! downloaded by [`files::download`].

use std::path::{Path, PathBuf};

use crate::data_error::DataError;
use crate::download::RemoteFile;
use crate::files::{self, DatasetFiles, Incomplete, Packaging};
use crate::idx::{IdxArray, read_idx};

/// The number of classes of MNIST and Fashion-MNIST; labels are in `0..NUM_CLASSES`.
pub const NUM_CLASSES: usize = 10;

/// Which MNIST-format dataset; its files are described by its [`DatasetFiles`] implementation.
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
    pub const FILE_NAMES: [&'static str; 4] =
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];
}

const FASHION_MNIST_BASE: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com";
const MNIST_BASES: [&str; 2] =
    ["https://ossci-datasets.s3.amazonaws.com/mnist", "https://storage.googleapis.com/cvdf-datasets/mnist"];

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

impl DatasetFiles for MnistKind {
    /// `mnist` or `fashion-mnist`.
    fn name(&self) -> &'static str {
        match self {
            MnistKind::Mnist => "mnist",
            MnistKind::FashionMnist => "fashion-mnist",
        }
    }

    /// `MNIST` or `Fashion-MNIST`.
    fn display_name(&self) -> &'static str {
        match self {
            MnistKind::Mnist => "MNIST",
            MnistKind::FashionMnist => "Fashion-MNIST",
        }
    }

    fn rust_path(&self) -> &'static str {
        match self {
            MnistKind::Mnist => "MnistKind::Mnist",
            MnistKind::FashionMnist => "MnistKind::FashionMnist",
        }
    }

    /// [`MnistKind::FILE_NAMES`].
    fn file_names(&self) -> Vec<&'static str> {
        MnistKind::FILE_NAMES.to_vec()
    }

    /// Four files, each raw or `.gz`.
    fn packaging(&self) -> Packaging {
        Packaging::Files { gzip: true }
    }

    /// The four `.gz` files with their canonical URLs and SHA-256.
    fn remote_files(&self) -> Vec<RemoteFile> {
        let (bases, sums): (&[&str], _) = match self {
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

    /// Debian's `dataset-fashion-mnist` directory for Fashion-MNIST.
    fn system_dirs(&self) -> &'static [&'static str] {
        match self {
            MnistKind::Mnist => &[],
            MnistKind::FashionMnist => &["/usr/share/datasets/fashion-mnist"],
        }
    }

    fn install_hint(&self) -> Option<&'static str> {
        match self {
            MnistKind::Mnist => None,
            MnistKind::FashionMnist => Some(
                "`sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu; installs to \
                 /usr/share/datasets/fashion-mnist)",
            ),
        }
    }
}

impl std::fmt::Display for MnistKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.display_name())
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

/// Locates (see [`files::locate`]) and loads a dataset.
pub fn load(kind: MnistKind, explicit: Option<&Path>) -> Result<MnistArrays, DataError> {
    let dir = files::locate(kind, explicit)?;
    load_dir(kind, &dir)
}

/// Loads and validates the dataset in `dir`, decoding the four files in
/// parallel threads.
///
/// Errors: [`DataError::MissingFiles`]; the errors of [`read_idx`];
/// [`DataError::BadShape`] unless images are `[n, rows, cols]` (test and
/// training alike, non-zero sizes) and labels `[n]`;
/// [`DataError::CountMismatch`] if a split has different numbers of images
/// and labels; [`DataError::LabelOutOfRange`] for a label not in `0..10`.
pub fn load_dir(kind: MnistKind, dir: &Path) -> Result<MnistArrays, DataError> {
    let paths = kind
        .file_paths(dir)
        .map_err(|missing| files::missing_files(&kind, dir, Incomplete { dir: dir.to_path_buf(), missing }))?;
    let files: [PathBuf; 4] = paths.try_into().expect("one path per file name");
    let [train_x, train_y, test_x, test_y]: [Result<IdxArray, DataError>; 4] = std::thread::scope(|s| {
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
    for (labels, path, images, images_path) in
        [(&train_y, &train_y_path, &train_x, &train_x_path), (&test_y, &test_y_path, &test_x, &test_x_path)]
    {
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
        if let Some((index, &label)) = labels.data.iter().enumerate().find(|&(_, &l)| usize::from(l) >= NUM_CLASSES) {
            return Err(DataError::LabelOutOfRange {
                path: path.clone(),
                which: "label",
                index,
                label,
                n_classes: NUM_CLASSES,
            });
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
    use crate::files::{SearchEnv, locate_with, search_dirs};
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
        w("train-images-idx3-ubyte", idx_bytes(&[n_train_images, 2, 2], &vec![7; n_train_images as usize * 4]));
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
        if MnistKind::FashionMnist.file_paths(dir).is_err() {
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
            vec![p("/d/fashion-mnist"), p("/d"), p("/x/cl/fashion-mnist"), p("/usr/share/datasets/fashion-mnist")]
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
        std::fs::copy(fixture_dir().join("train-labels-idx1-ubyte.gz"), partial.join("train-labels-idx1-ubyte.gz"))
            .unwrap();
        let env = SearchEnv { cl_data_dir: Some(partial), ..env };
        assert_eq!(locate_with(kind, None, &env).unwrap(), cache);
    }

    #[test]
    fn not_found_lists_searched_paths_and_fix() {
        let root = tempfile::tempdir().unwrap();
        let env = env_in(root.path());
        let err = locate_with(MnistKind::FashionMnist, None, &env).unwrap_err();
        let DataError::NotFound { dataset, searched, .. } = &err else {
            panic!("expected NotFound, got {err:?}");
        };
        assert_eq!(dataset, "Fashion-MNIST");
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
        std::fs::copy(fixture_dir().join("t10k-labels-idx1-ubyte.gz"), empty.join("t10k-labels-idx1-ubyte.gz"))
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
            Err(DataError::LabelOutOfRange { index: 1, label: 10, path, which: "label", n_classes: 10 }) => {
                assert!(path.ends_with("train-labels-idx1-ubyte"))
            }
            other => panic!("expected LabelOutOfRange, got {other:?}"),
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

    #[test]
    fn remote_files_are_well_formed() {
        for kind in [MnistKind::Mnist, MnistKind::FashionMnist] {
            let files = kind.remote_files();
            assert_eq!(files.len(), 4);
            for (f, stem) in files.iter().zip(MnistKind::FILE_NAMES) {
                assert_eq!(f.name, format!("{stem}.gz"));
                assert_eq!(f.sha256.len(), 64);
                assert!(f.sha256.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
                assert!(f.urls.iter().all(|u| u.ends_with(&f.name)));
            }
        }
        assert_eq!(
            MnistKind::Mnist.remote_files()[0].urls,
            vec![
                "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
                "https://storage.googleapis.com/cvdf-datasets/mnist/train-images-idx3-ubyte.gz",
            ]
        );
        assert_eq!(
            MnistKind::FashionMnist.remote_files()[3].urls,
            vec!["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-labels-idx1-ubyte.gz"]
        );
    }

    /// The whole download path with a fake fetcher serving the fixture's files: fetched,
    /// verified, installed, then found and loaded.
    #[test]
    fn download_installs_a_loadable_dataset() {
        struct Fixture;
        impl crate::download::Fetcher for Fixture {
            fn fetch(&self, url: &str, dest: &Path) -> Result<(), DataError> {
                let name = url.rsplit('/').next().unwrap();
                std::fs::copy(fixture_dir().join(name), dest).map(|_| ()).map_err(|e| DataError::io(dest, e))
            }
        }
        let root = tempfile::tempdir().unwrap();
        let kind = MnistKind::FashionMnist;
        let remote: Vec<RemoteFile> = MnistKind::FILE_NAMES
            .iter()
            .map(|stem| {
                let name = format!("{stem}.gz");
                let sha256 = crate::download::sha256_file(&fixture_dir().join(&name)).unwrap();
                RemoteFile { urls: vec![format!("u://mirror/{name}")], name, sha256 }
            })
            .collect();
        let dir = root.path().join("home/.cache/cl/fashion-mnist");
        assert_eq!(files::download_with(kind, &Fixture, &remote, &dir).unwrap(), dir);
        assert_eq!(locate_with(kind, None, &env_in(root.path())).unwrap(), dir);
        assert_eq!(
            load_dir(kind, &dir).unwrap(),
            load_dir(kind, &fixture_dir())
                .map(|mut a| {
                    a.dir = dir.clone();
                    a
                })
                .unwrap()
        );
        // The published checksums are not the fixture's: a real mirror list is refused.
        let err = files::download_with(kind, &Fixture, &kind.remote_files()[..1], &root.path().join("x")).unwrap_err();
        assert!(matches!(err, DataError::ChecksumMismatch { .. }), "{err:?}");
    }
}
