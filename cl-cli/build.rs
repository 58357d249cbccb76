//! Records the commit the `cl` binary is built from (`CL_GIT_COMMIT`, with `-dirty` when the
//! tree has changes; `unknown` without git), for the provenance of every run.

use std::process::Command;

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(&root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = match (git(&["rev-parse", "HEAD"]), git(&["status", "--porcelain", "--untracked-files=no"])) {
        (Some(commit), Some(status)) if !status.is_empty() => format!("{commit}-dirty"),
        (Some(commit), Some(_)) => commit,
        _ => "unknown".into(),
    };
    println!("cargo:rustc-env=CL_GIT_COMMIT={commit}");
    let head_ref = std::fs::read_to_string(root.join(".git/HEAD"))
        .ok()
        .and_then(|h| h.strip_prefix("ref: ").map(|r| format!(".git/{}", r.trim())));
    for path in [".git/HEAD".to_string(), ".git/index".into(), ".git/packed-refs".into()].into_iter().chain(head_ref) {
        let full = root.join(path);
        if full.exists() {
            println!("cargo:rerun-if-changed={}", full.display());
        }
    }
    // Sources of every crate the binary is built from: an edit makes the commit `-dirty`.
    for dir in ["src", "cl-core/src", "cl-benchmarks/src", "cl-strategies/src", "cl-plugins/src", "cl-metrics/src"]
        .into_iter()
        .chain(["cl-models/src", "cl-report/src", "cl-cli/src", "Cargo.toml", "Cargo.lock"])
    {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-changed=build.rs");
}
