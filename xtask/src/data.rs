//! `cargo xtask data`: makes Fashion-MNIST available for the quickstart and the benchmarks.
//!
//! Order: already present (any place the loaders search) → Debian's `dataset-fashion-mnist`
//! through `apt-get` (as root, or with `sudo`) → download of the upstream files (SHA-256 checked)
//! into the per-user cache directory that the loaders search.

use std::path::PathBuf;
use std::process::Command;

use cl::benchmarks::files::{default_cache_dir, download, locate};
use cl::benchmarks::{DataError, MnistKind};

/// Runs a command, returning whether it succeeded (a missing program counts as failure).
fn run(program: &str, args: &[&str]) -> bool {
    println!("$ {program} {}", args.join(" "));
    Command::new(program).args(args).status().is_ok_and(|s| s.success())
}

fn have(program: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {program} >/dev/null")]).status().is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Installs with apt-get (root or sudo); `false` if that is not possible here or fails.
fn apt_install() -> bool {
    if !have("apt-get") {
        return false;
    }
    let prefix: &[&str] = if is_root() {
        &[]
    } else if have("sudo") {
        &["sudo"]
    } else {
        return false;
    };
    let apt = |args: &[&str]| {
        let mut all: Vec<&str> = prefix.to_vec();
        all.push("apt-get");
        all.extend_from_slice(args);
        run(all[0], &all[1..])
    };
    apt(&["install", "-y", "-q", "dataset-fashion-mnist"])
        || (apt(&["update", "-q"]) && apt(&["install", "-y", "-q", "dataset-fashion-mnist"]))
}

/// Makes Fashion-MNIST available; returns the directory holding it.
pub fn ensure_fashion_mnist() -> Result<PathBuf, DataError> {
    if let Ok(dir) = locate(MnistKind::FashionMnist, None) {
        println!("Fashion-MNIST found in {}", dir.display());
        return Ok(dir);
    }
    if apt_install()
        && let Ok(dir) = locate(MnistKind::FashionMnist, None)
    {
        println!("Fashion-MNIST installed in {}", dir.display());
        return Ok(dir);
    }
    let cache = default_cache_dir(MnistKind::FashionMnist)
        .ok_or_else(|| locate(MnistKind::FashionMnist, None).expect_err("not found above"))?;
    println!("downloading Fashion-MNIST into {}", cache.display());
    download(MnistKind::FashionMnist, &cache)
}
