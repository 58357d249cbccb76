//! `cargo xtask setup-libtorch`: PyTorch 2.9.0 from PyPI into a virtualenv, for the `tch`
//! feature, without downloading libtorch itself.
//!
//! `tch`/`torch-sys` 0.22.0 link against exactly PyTorch 2.9.0; with `LIBTORCH_USE_PYTORCH=1`
//! `torch-sys` asks the active Python (`python` when `VIRTUAL_ENV` is set, else `python3`)
//! where its `torch` package keeps headers and libraries. This command creates the virtualenv
//! (default `target/libtorch/venv`), installs `torch==2.9.0` unless it is there already,
//! writes `target/libtorch/env.sh` and prints the same `export` lines on stdout (progress goes
//! to stderr), so both `source target/libtorch/env.sh` and
//! `eval "$(cargo xtask setup-libtorch)"` set the environment of `cargo build --features tch`.
//!
//! On Linux the PyPI wheel is the CUDA 12.8 build; with its `nvidia-*` packages it takes about
//! 6.8 GB, and it needs them even on the CPU.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The PyTorch version `tch` 0.22.0 requires.
pub const TORCH_VERSION: &str = "2.9.0";

/// Options of `setup-libtorch`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SetupOptions {
    /// The virtualenv; `target/libtorch/venv` of the workspace when `None` (or
    /// `CL_LIBTORCH_VENV` when set).
    pub venv: Option<PathBuf>,
    /// The Python that creates the virtualenv (default `python3`).
    pub python: Option<String>,
}

/// The usage of `setup-libtorch`, part of `cargo xtask --help`.
pub const USAGE: &str = "\
setup-libtorch options:
  --venv DIR        the virtualenv (default: $CL_LIBTORCH_VENV, else target/libtorch/venv)
  --python PY       the Python that creates it (default python3)";

/// Parses the options of `setup-libtorch`; `Ok(None)` for `--help`.
pub fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<SetupOptions>, String> {
    let mut o = SetupOptions::default();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--venv" | "--python" => {
                let value = match inline {
                    Some(v) => v,
                    None => it.next().ok_or_else(|| format!("{flag} needs a value"))?,
                };
                if flag == "--venv" {
                    o.venv = Some(PathBuf::from(value));
                } else {
                    o.python = Some(value);
                }
            }
            _ => return Err(format!("unknown option `{arg}` for `setup-libtorch`")),
        }
    }
    Ok(Some(o))
}

/// Why the set-up failed.
#[derive(Debug)]
pub enum SetupError {
    /// A program could not be started.
    Spawn {
        /// What was being run.
        what: String,
        /// The OS error.
        error: String,
    },
    /// A program ran and failed.
    Failed {
        /// What was being run.
        what: String,
        /// How to fix it.
        hint: &'static str,
    },
    /// The installed torch is not 2.9.0 even after installing.
    WrongVersion(String),
    /// Writing the environment file failed.
    Write(PathBuf, String),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Spawn { what, error } => write!(
                f,
                "cannot run {what}: {error}; install Python 3 with venv and pip (e.g. `apt-get install python3-venv python3-pip`)"
            ),
            Self::Failed { what, hint } => write!(f, "{what} failed; {hint}"),
            Self::WrongVersion(v) => write!(
                f,
                "the virtualenv has torch {v}, but tch 0.22.0 needs exactly {TORCH_VERSION}; remove the virtualenv and run `cargo xtask setup-libtorch` again"
            ),
            Self::Write(path, e) => write!(f, "cannot write {}: {e}", path.display()),
        }
    }
}

impl std::error::Error for SetupError {}

/// The default virtualenv: `CL_LIBTORCH_VENV`, else `<workspace>/target/libtorch/venv`.
pub fn default_venv(workspace: &Path) -> PathBuf {
    match std::env::var_os("CL_LIBTORCH_VENV") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace.join("target").join("libtorch").join("venv"),
    }
}

/// The `export` lines for a virtualenv whose torch libraries are in `torch_lib`.
pub fn env_script(venv: &Path, torch_lib: &Path) -> String {
    format!(
        "# Environment of `cargo build --features tch` (written by `cargo xtask setup-libtorch`).\n\
         export LIBTORCH_USE_PYTORCH=1\n\
         export VIRTUAL_ENV=\"{venv}\"\n\
         export PATH=\"{venv}/bin:$PATH\"\n\
         export LD_LIBRARY_PATH=\"{lib}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}\"\n\
         # libtorch's OpenMP threads must not spin: they would starve the Rust data loaders' threads.\n\
         export OMP_WAIT_POLICY=PASSIVE\n",
        venv = venv.display(),
        lib = torch_lib.display()
    )
}

/// Runs the set-up; returns the path of the environment file. `workspace` is the workspace
/// root (the environment file goes to `<workspace>/target/libtorch/env.sh`).
pub fn run(options: &SetupOptions, workspace: &Path) -> Result<PathBuf, SetupError> {
    let venv = options.venv.clone().unwrap_or_else(|| default_venv(workspace));
    let venv = std::path::absolute(&venv).unwrap_or(venv);
    let python = venv.join("bin").join("python");
    if !python.exists() {
        let base = options.python.as_deref().unwrap_or("python3");
        eprintln!("creating the virtualenv {} with {base}", venv.display());
        if let Some(parent) = venv.parent() {
            std::fs::create_dir_all(parent).map_err(|e| SetupError::Write(parent.to_path_buf(), e.to_string()))?;
        }
        status(
            Command::new(base).arg("-m").arg("venv").arg(&venv),
            &format!("`{base} -m venv {}`", venv.display()),
            "install the venv module (Debian: `apt-get install python3-venv`) or pass --python",
        )?;
    }
    match torch_version(&python)? {
        Some(v) if v.split('+').next() == Some(TORCH_VERSION) => {
            eprintln!("torch {v} is already installed in {}", venv.display());
        }
        found => {
            if let Some(v) = found {
                eprintln!("torch {v} found; installing {TORCH_VERSION}");
            }
            eprintln!(
                "installing torch=={TORCH_VERSION} from PyPI into {} (about 6.8 GB with its nvidia-* packages)",
                venv.display()
            );
            let start = Instant::now();
            status(
                Command::new(&python).args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    &format!("torch=={TORCH_VERSION}"),
                ]),
                &format!("`pip install torch=={TORCH_VERSION}`"),
                "check the network access to PyPI and the free disk space (about 7 GB)",
            )?;
            eprintln!("installed in {:.0} s", start.elapsed().as_secs_f64());
            match torch_version(&python)? {
                Some(v) if v.split('+').next() == Some(TORCH_VERSION) => {}
                other => return Err(SetupError::WrongVersion(other.unwrap_or_else(|| "none".into()))),
            }
        }
    }
    let lib = python_output(
        &python,
        "import importlib.util, os; print(os.path.join(os.path.dirname(importlib.util.find_spec('torch').origin), 'lib'))",
    )?
    .unwrap_or_default();
    let script = env_script(&venv, Path::new(&lib));
    let env_file = workspace.join("target").join("libtorch").join("env.sh");
    if let Some(parent) = env_file.parent() {
        std::fs::create_dir_all(parent).map_err(|e| SetupError::Write(parent.to_path_buf(), e.to_string()))?;
    }
    std::fs::write(&env_file, &script).map_err(|e| SetupError::Write(env_file.clone(), e.to_string()))?;
    print!("{script}");
    eprintln!(
        "written {}; now:\n    source {}\n    cargo run --release --features tch --example quickstart -- --device libtorch-cpu",
        env_file.display(),
        env_file.display()
    );
    Ok(env_file)
}

/// The version of torch installed for `python`, `None` when there is none.
fn torch_version(python: &Path) -> Result<Option<String>, SetupError> {
    python_output(
        python,
        "import importlib.util, importlib.metadata as m\nprint(m.version('torch') if importlib.util.find_spec('torch') else '')",
    )
}

/// The trimmed stdout of `python -c code`, `None` when empty.
fn python_output(python: &Path, code: &str) -> Result<Option<String>, SetupError> {
    let what = format!("`{} -c ...`", python.display());
    let out = Command::new(python)
        .args(["-c", code])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| SetupError::Spawn { what: what.clone(), error: e.to_string() })?;
    if !out.status.success() {
        return Err(SetupError::Failed {
            what,
            hint: "remove the virtualenv and run `cargo xtask setup-libtorch` again",
        });
    }
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok((!text.is_empty()).then_some(text))
}

/// Runs `command` with its stdout sent to stderr (stdout carries only the `export` lines).
fn status(command: &mut Command, what: &str, hint: &'static str) -> Result<(), SetupError> {
    let status = command
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .map_err(|e| SetupError::Spawn { what: what.to_string(), error: e.to_string() })?;
    if status.success() { Ok(()) } else { Err(SetupError::Failed { what: what.to_string(), hint }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let parse = |a: &[&str]| parse_args(a.iter().map(|s| s.to_string()));
        assert_eq!(parse(&[]), Ok(Some(SetupOptions::default())));
        assert_eq!(
            parse(&["--venv", "/v", "--python=python3.11"]),
            Ok(Some(SetupOptions { venv: Some("/v".into()), python: Some("python3.11".into()) }))
        );
        assert_eq!(parse(&["-h"]), Ok(None));
        assert!(parse(&["--venv"]).is_err());
        assert!(parse(&["--cuda"]).is_err());
    }

    #[test]
    fn env_script_sets_what_torch_sys_and_the_loader_read() {
        let s = env_script(
            Path::new("/w/target/libtorch/venv"),
            Path::new("/w/venv/lib/python3.11/site-packages/torch/lib"),
        );
        assert!(s.contains("export LIBTORCH_USE_PYTORCH=1\n"));
        assert!(s.contains("export VIRTUAL_ENV=\"/w/target/libtorch/venv\"\n"));
        assert!(s.contains("export PATH=\"/w/target/libtorch/venv/bin:$PATH\"\n"));
        assert!(s.contains(
            "export LD_LIBRARY_PATH=\"/w/venv/lib/python3.11/site-packages/torch/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\"\n"
        ));
        assert!(s.contains("export OMP_WAIT_POLICY=PASSIVE\n"));
        // Every line is a comment or an export, so `eval "$(...)"` is safe.
        assert!(s.lines().all(|l| l.starts_with('#') || l.starts_with("export ")));
    }

    #[test]
    fn a_missing_python_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("cl-setup-libtorch-test-{}", std::process::id()));
        let options = SetupOptions { venv: Some(dir.join("venv")), python: Some("/nonexistent/python3".into()) };
        let e = run(&options, &dir).unwrap_err();
        assert!(matches!(e, SetupError::Spawn { .. }), "{e}");
        assert!(e.to_string().contains("/nonexistent/python3"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn wrong_version_message_says_what_to_do() {
        let e = SetupError::WrongVersion("2.8.0".into()).to_string();
        assert!(e.contains("2.9.0") && e.contains("cargo xtask setup-libtorch"), "{e}");
    }
}
