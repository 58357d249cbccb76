//! [`Provenance`]: where and with what a benchmark ran (versions, commit, machine).

use std::path::Path;
use std::process::Command;

use serde::Serialize;

/// The Burn version the workspace pins (`=0.22.1` in `[workspace.dependencies]`).
pub const BURN_VERSION: &str = "0.22.1";

/// Build and machine facts recorded with each result; gathered once per `bench` invocation.
#[derive(Debug, Clone, Serialize)]
pub struct Provenance {
    /// Backend of [`cl::default_device`] (`flex` by default).
    pub backend: &'static str,
    /// Threads of the rayon pool the CPU backends compute on.
    pub threads: usize,
    /// Version of the `cl` workspace.
    pub cl_version: &'static str,
    /// Version of Burn.
    pub burn_version: &'static str,
    /// Output of `rustc -V`, or `unknown`.
    pub rustc_version: String,
    /// `git rev-parse HEAD` of the workspace, with `-dirty` if the tree has changes; `unknown`
    /// if git fails.
    pub git_commit: String,
    /// Contents of `/etc/hostname`, if readable.
    pub hostname: Option<String>,
}

impl Provenance {
    /// Gathers the facts; `workspace_root` is where git is asked.
    pub fn collect(workspace_root: &Path) -> Self {
        Self {
            backend: cl::default_backend_name(),
            threads: rayon::current_num_threads(),
            // xtask shares the workspace version with `cl` (`version.workspace = true`).
            cl_version: env!("CARGO_PKG_VERSION"),
            burn_version: BURN_VERSION,
            rustc_version: command_output("rustc", &["-V"], None).unwrap_or_else(|| "unknown".into()),
            git_commit: git_commit(workspace_root),
            hostname: std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
        }
    }
}

/// The commit of `root`, `-dirty` appended when `git status --porcelain` lists anything.
fn git_commit(root: &Path) -> String {
    let Some(commit) = command_output("git", &["rev-parse", "HEAD"], Some(root)) else {
        return "unknown".into();
    };
    match command_output("git", &["status", "--porcelain"], Some(root)) {
        Some(status) if !status.is_empty() => format!("{commit}-dirty"),
        Some(_) => commit,
        None => "unknown".into(),
    }
}

/// Trimmed stdout of a successful command, `None` if it cannot run or fails.
fn command_output(program: &str, args: &[&str], dir: Option<&Path>) -> Option<String> {
    let mut command = Command::new(program);
    command.args(args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let output = command.output().ok()?;
    if !output.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&output.stdout).trim().to_string())
}
