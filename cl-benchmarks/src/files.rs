//! Finding and downloading a dataset's files, written once for every dataset: a dataset
//! describes its files with [`DatasetFiles`] (implemented by
//! [`MnistKind`](crate::mnist_files::MnistKind) and [`CifarKind`](crate::cifar_files::CifarKind)),
//! and [`locate`] and [`download`] do the rest.
//!
//! [`locate`] looks for a dataset directory in this order:
//!
//! 1. the directory passed explicitly, if any — and only that one: if it lacks the files, that
//!    is an error ([`DataError::MissingFiles`]), there is no silent fallback;
//! 2. `$CL_DATA_DIR/<name>`, then `$CL_DATA_DIR` itself;
//! 3. the per-user cache, `$XDG_CACHE_HOME/cl/<name>` or else `$HOME/.cache/cl/<name>` (where
//!    [`default_cache_dir`] points, a good target for [`download`]);
//! 4. the dataset's system directories ([`DatasetFiles::system_dirs`]), e.g.
//!    `/usr/share/datasets/fashion-mnist` where Debian's `dataset-fashion-mnist` package
//!    installs Fashion-MNIST.
//!
//! `<name>` is [`DatasetFiles::name`] (`mnist`, `fashion-mnist`, `cifar10`, `cifar100`). When no
//! directory holds the dataset, the error ([`DataError::NotFound`]) lists every directory
//! searched and how to get the files. The search list is computed by [`search_dirs`] from a
//! [`SearchEnv`], so it can be inspected and tested without touching environment variables.
//!
//! ```no_run
//! use cl_benchmarks::files;
//! use cl_benchmarks::mnist_files::{self, MnistKind};
//! # fn main() -> Result<(), cl_benchmarks::DataError> {
//! // Download into the per-user cache, which `files::locate` searches.
//! let dir = files::default_cache_dir(MnistKind::FashionMnist).expect("HOME is set");
//! files::download(MnistKind::FashionMnist, &dir)?;
//! let data = mnist_files::load(MnistKind::FashionMnist, None)?;
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};

use crate::data_error::DataError;
use crate::download::{CurlFetcher, Fetcher, RemoteFile, extract_tar_gz, fetch_files};

/// How a dataset's files are published, and so what a dataset directory looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packaging {
    /// The files are published one by one ([`DatasetFiles::remote_files`] lists them); with
    /// `gzip`, each may also be present gzip-compressed as `<name>.gz` (as MNIST's are
    /// published).
    Files {
        /// Whether `<name>.gz` is accepted for `<name>`.
        gzip: bool,
    },
    /// One `.tar.gz` archive (the only [`DatasetFiles::remote_files`] entry) whose extraction
    /// creates `subdir` holding the files. A dataset directory is the directory of the files or
    /// its parent holding `subdir`.
    TarGz {
        /// The directory the archive extracts to (`cifar-10-batches-bin`).
        subdir: &'static str,
    },
}

/// A directory that lacks some of a dataset's files: the directory checked and the standard
/// file names missing there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incomplete {
    /// The directory checked (for [`Packaging::TarGz`], the `subdir` when it exists).
    pub dir: PathBuf,
    /// The file names missing there.
    pub missing: Vec<String>,
}

/// The files of a dataset: their names, where they are published (mirrors, checksums),
/// whether as an archive, and how a directory holding them is recognised. [`locate`],
/// [`download`] and the errors they return are written once on top of it.
pub trait DatasetFiles {
    /// The directory name under `$CL_DATA_DIR` and the cache (`fashion-mnist`).
    fn name(&self) -> &'static str;

    /// The human-readable name (`Fashion-MNIST`), for messages.
    fn display_name(&self) -> &'static str;

    /// This value as Rust code (`MnistKind::FashionMnist`), for the fixes the errors suggest.
    fn rust_path(&self) -> &'static str;

    /// The files a dataset directory holds (standard names).
    fn file_names(&self) -> Vec<&'static str>;

    /// How the files are published.
    fn packaging(&self) -> Packaging;

    /// The files to download, with their mirrors and SHA-256: the data files themselves for
    /// [`Packaging::Files`], the archive for [`Packaging::TarGz`].
    fn remote_files(&self) -> Vec<RemoteFile>;

    /// System-wide directories searched last (those of distribution packages).
    fn system_dirs(&self) -> &'static [&'static str] {
        &[]
    }

    /// How a distribution package installs the dataset, put first in the not-found fix.
    fn install_hint(&self) -> Option<&'static str> {
        None
    }

    /// The paths of the files in `dir`, in the order of [`file_names`](Self::file_names)
    /// (for [`Packaging::Files`] with `gzip`, the raw file is preferred over `<name>.gz` when
    /// both exist); or the names missing.
    fn file_paths(&self, dir: &Path) -> Result<Vec<PathBuf>, Vec<String>> {
        let gzip = matches!(self.packaging(), Packaging::Files { gzip: true });
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for name in self.file_names() {
            let raw = dir.join(name);
            let gz = dir.join(format!("{name}.gz"));
            if raw.is_file() {
                found.push(raw);
            } else if gzip && gz.is_file() {
                found.push(gz);
            } else {
                missing.push(name.to_string());
            }
        }
        if missing.is_empty() { Ok(found) } else { Err(missing) }
    }

    /// The directory of the files if `dir` is a dataset directory: `dir` itself, or (for
    /// [`Packaging::TarGz`]) `dir/subdir`; otherwise where files are missing.
    fn resolve_dir(&self, dir: &Path) -> Result<PathBuf, Incomplete> {
        let missing = match self.file_paths(dir) {
            Ok(_) => return Ok(dir.to_path_buf()),
            Err(missing) => missing,
        };
        let Packaging::TarGz { subdir } = self.packaging() else {
            return Err(Incomplete { dir: dir.to_path_buf(), missing });
        };
        let sub = dir.join(subdir);
        if !sub.is_dir() {
            return Err(Incomplete { dir: dir.to_path_buf(), missing });
        }
        match self.file_paths(&sub) {
            Ok(_) => Ok(sub),
            Err(missing) => Err(Incomplete { dir: sub, missing }),
        }
    }
}

impl<D: DatasetFiles + ?Sized> DatasetFiles for &D {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn display_name(&self) -> &'static str {
        (**self).display_name()
    }
    fn rust_path(&self) -> &'static str {
        (**self).rust_path()
    }
    fn file_names(&self) -> Vec<&'static str> {
        (**self).file_names()
    }
    fn packaging(&self) -> Packaging {
        (**self).packaging()
    }
    fn remote_files(&self) -> Vec<RemoteFile> {
        (**self).remote_files()
    }
    fn system_dirs(&self) -> &'static [&'static str] {
        (**self).system_dirs()
    }
    fn install_hint(&self) -> Option<&'static str> {
        (**self).install_hint()
    }
    fn file_paths(&self, dir: &Path) -> Result<Vec<PathBuf>, Vec<String>> {
        (**self).file_paths(dir)
    }
    fn resolve_dir(&self, dir: &Path) -> Result<PathBuf, Incomplete> {
        (**self).resolve_dir(dir)
    }
}

/// The environment that determines the search list; see [`SearchEnv::search_dirs`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchEnv {
    /// The value of `CL_DATA_DIR`, if set and not empty.
    pub cl_data_dir: Option<PathBuf>,
    /// The value of `XDG_CACHE_HOME`, if set, not empty and absolute.
    pub xdg_cache_home: Option<PathBuf>,
    /// The value of `HOME`, if set and not empty.
    pub home: Option<PathBuf>,
    /// Whether to search the system directories of a dataset (e.g. Debian's
    /// `/usr/share/datasets/fashion-mnist`).
    pub system_dirs: bool,
}

impl SearchEnv {
    /// Reads `CL_DATA_DIR`, `XDG_CACHE_HOME` and `HOME` from the process environment, ignoring
    /// empty values (and, as the XDG specification requires, a relative `XDG_CACHE_HOME`);
    /// system directories are searched.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        SearchEnv {
            cl_data_dir: var("CL_DATA_DIR"),
            xdg_cache_home: var("XDG_CACHE_HOME").filter(|p| p.is_absolute()),
            home: var("HOME"),
            system_dirs: true,
        }
    }

    /// The per-user cache directory of dataset `name`: `$XDG_CACHE_HOME/cl/<name>`, else
    /// `$HOME/.cache/cl/<name>`, else `None`.
    pub fn cache_dir(&self, name: &str) -> Option<PathBuf> {
        let base = match (&self.xdg_cache_home, &self.home) {
            (Some(xdg), _) => xdg.clone(),
            (None, Some(home)) => home.join(".cache"),
            (None, None) => return None,
        };
        Some(base.join("cl").join(name))
    }

    /// The directories searched for dataset `name`, in order, without duplicates:
    /// `$CL_DATA_DIR/<name>`, `$CL_DATA_DIR`, the cache directory, then `system_dirs` (when
    /// [`system_dirs`](Self::system_dirs) is set).
    pub fn search_dirs(&self, name: &str, system_dirs: &[&str]) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if let Some(d) = &self.cl_data_dir {
            dirs.push(d.join(name));
            dirs.push(d.clone());
        }
        dirs.extend(self.cache_dir(name));
        if self.system_dirs {
            dirs.extend(system_dirs.iter().map(PathBuf::from));
        }
        let mut unique: Vec<PathBuf> = Vec::with_capacity(dirs.len());
        for d in dirs {
            if !unique.contains(&d) {
                unique.push(d);
            }
        }
        unique
    }
}

/// The per-user cache directory of a dataset under `env`: `$XDG_CACHE_HOME/cl/<name>`, else
/// `$HOME/.cache/cl/<name>`, else `None`.
pub fn cache_dir<D: DatasetFiles>(dataset: D, env: &SearchEnv) -> Option<PathBuf> {
    env.cache_dir(dataset.name())
}

/// The per-user cache directory of a dataset in the current environment (see [`cache_dir`]);
/// [`locate`] searches it, so it is a good place to [`download`] to.
pub fn default_cache_dir<D: DatasetFiles>(dataset: D) -> Option<PathBuf> {
    cache_dir(dataset, &SearchEnv::from_env())
}

/// The directories searched for a dataset when none is given explicitly, in order, without
/// duplicates (see the [module documentation](self)).
pub fn search_dirs<D: DatasetFiles>(dataset: D, env: &SearchEnv) -> Vec<PathBuf> {
    env.search_dirs(dataset.name(), dataset.system_dirs())
}

/// What a dataset directory holds, for messages.
fn expected<D: DatasetFiles>(dataset: &D) -> String {
    let files = dataset.file_names().join(", ");
    match dataset.packaging() {
        Packaging::Files { gzip: true } => format!("{files}, raw or with .gz"),
        Packaging::Files { gzip: false } => files,
        Packaging::TarGz { subdir } => format!("{files}, directly or in a `{subdir}` subdirectory"),
    }
}

/// How to get a dataset: into the search path (`explicit` is `None`) or into `explicit`.
fn fix<D: DatasetFiles>(dataset: &D, explicit: Option<&Path>) -> String {
    let download = format!("`cl_benchmarks::files::download({}, dir)`", dataset.rust_path());
    let name = dataset.name();
    let mut msg = String::new();
    if explicit.is_none()
        && let Some(hint) = dataset.install_hint()
    {
        msg.push_str(hint);
        msg.push_str(", or ");
    }
    match (dataset.packaging(), explicit) {
        (Packaging::Files { .. }, None) => msg.push_str(&format!(
            "put the files in $CL_DATA_DIR/{name} (set CL_DATA_DIR) or pass their directory explicitly, or \
             download them with {download}"
        )),
        (Packaging::Files { .. }, Some(_)) => {
            msg.push_str(&format!("put the files there, pass another directory, or download them with {download}"))
        }
        (Packaging::TarGz { .. }, explicit) => {
            let remote = dataset.remote_files();
            let (archive, url) = match remote.first() {
                Some(f) => (f.name.clone(), f.urls.first().cloned().unwrap_or_default()),
                None => ("the archive".to_string(), String::new()),
            };
            match explicit {
                None => msg.push_str(&format!(
                    "download {archive} from {url} and extract it into $CL_DATA_DIR/{name} (`mkdir -p \
                     \"$CL_DATA_DIR/{name}\" && tar -xzf {archive} -C \"$CL_DATA_DIR/{name}\"`; set CL_DATA_DIR) \
                     or ~/.cache/cl/{name}, or pass the directory explicitly; with internet access, {download} \
                     does this"
                )),
                Some(_) => msg.push_str(&format!(
                    "download {archive} from {url} and extract it there (`tar -xzf {archive} -C <dir>`), pass \
                     another directory, or download it with {download}"
                )),
            }
        }
    }
    msg
}

/// Checks that `dir` is a directory of `dataset` (see [`DatasetFiles::resolve_dir`]); returns
/// the directory of its files, or [`DataError::MissingFiles`] naming what is missing where and
/// how to get it.
pub fn verify_dir<D: DatasetFiles>(dataset: D, dir: &Path) -> Result<PathBuf, DataError> {
    dataset.resolve_dir(dir).map_err(|incomplete| missing_files(&dataset, dir, incomplete))
}

/// [`DataError::MissingFiles`] for a directory `dir` given explicitly.
pub(crate) fn missing_files<D: DatasetFiles>(dataset: &D, dir: &Path, incomplete: Incomplete) -> DataError {
    DataError::MissingFiles {
        dataset: dataset.display_name().to_string(),
        dir: incomplete.dir,
        missing: incomplete.missing,
        expected: expected(dataset),
        fix: fix(dataset, Some(dir)),
    }
}

/// Finds the directory holding a dataset, searching the process environment; see
/// [`locate_with`].
pub fn locate<D: DatasetFiles>(dataset: D, explicit: Option<&Path>) -> Result<PathBuf, DataError> {
    locate_with(dataset, explicit, &SearchEnv::from_env())
}

/// Finds the directory holding a dataset's files: `explicit` if given (error
/// [`DataError::MissingFiles`] if it is not a dataset directory, see [`verify_dir`]), else the
/// first of [`search_dirs`]`(dataset, env)` that is one (error [`DataError::NotFound`] listing
/// every directory searched and the fix).
///
/// Returns the directory of the files themselves (for an archive's contents, e.g.
/// `…/cifar10/cifar-10-batches-bin`).
pub fn locate_with<D: DatasetFiles>(
    dataset: D,
    explicit: Option<&Path>,
    env: &SearchEnv,
) -> Result<PathBuf, DataError> {
    if let Some(dir) = explicit {
        return verify_dir(&dataset, dir);
    }
    let searched = search_dirs(&dataset, env);
    match searched.iter().find_map(|d| dataset.resolve_dir(d).ok()) {
        Some(dir) => Ok(dir),
        None => Err(DataError::NotFound {
            dataset: dataset.display_name().to_string(),
            searched,
            expected: expected(&dataset),
            fix: fix(&dataset, None),
        }),
    }
}

/// Downloads a dataset into `dir` (created if needed) with curl from its published mirrors,
/// checking every SHA-256; returns the directory of its files. See [`download_with`].
pub fn download<D: DatasetFiles>(dataset: D, dir: &Path) -> Result<PathBuf, DataError> {
    let files = dataset.remote_files();
    download_with(dataset, &CurlFetcher::default(), &files, dir)
}

/// Downloads `files` of a dataset (its [`DatasetFiles::remote_files`], or mirrors of them) into
/// `dir` with `fetcher`; returns the directory of the dataset's files.
///
/// - [`Packaging::Files`]: each file is fetched and verified by
///   [`fetch_files`] (files already present with the right
///   SHA-256 are not fetched again).
/// - [`Packaging::TarGz`]: nothing is done if `dir` (or its `subdir`) already holds the files;
///   otherwise the archive is fetched and verified the same way, its files are extracted into
///   `dir/<subdir>` by [`extract_tar_gz`] (no member can
///   escape it) and the archive is deleted.
///
/// Errors: those of `fetch_files` and `extract_tar_gz`; [`DataError::MissingFiles`] if `dir`
/// still lacks files afterwards (`files` did not cover them).
pub fn download_with<D: DatasetFiles>(
    dataset: D,
    fetcher: &dyn Fetcher,
    files: &[RemoteFile],
    dir: &Path,
) -> Result<PathBuf, DataError> {
    match dataset.packaging() {
        Packaging::Files { .. } => fetch_files(fetcher, files, dir)?,
        Packaging::TarGz { subdir } => {
            if let Ok(found) = dataset.resolve_dir(dir) {
                return Ok(found);
            }
            fetch_files(fetcher, files, dir)?;
            let names = dataset.file_names();
            for file in files {
                let archive = dir.join(&file.name);
                extract_tar_gz(&archive, dir, subdir, &names)?;
                std::fs::remove_file(&archive).map_err(|e| DataError::io(&archive, e))?;
            }
        }
    }
    verify_dir(dataset, dir)
}
