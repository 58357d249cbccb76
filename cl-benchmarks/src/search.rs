//! Where the dataset readers look for files: [`SearchEnv`] and the search list built from it.

use std::path::PathBuf;

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
    /// Reads `CL_DATA_DIR`, `XDG_CACHE_HOME` and `HOME` from the process
    /// environment, ignoring empty values (and, as the XDG specification
    /// requires, a relative `XDG_CACHE_HOME`); system directories are searched.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        SearchEnv {
            cl_data_dir: var("CL_DATA_DIR"),
            xdg_cache_home: var("XDG_CACHE_HOME").filter(|p| p.is_absolute()),
            home: var("HOME"),
            system_dirs: true,
        }
    }
}

impl SearchEnv {
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
