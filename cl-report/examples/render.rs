//! Renders the pictures of a results file (a metric history or strategy records), as
//! `cargo xtask report` does, with `cl-report` alone.
//!
//! ```text
//! cargo run --release -p cl-report --example render -- <results.json> [OUT_DIR]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next().map(PathBuf::from) else {
        eprintln!("usage: render <results.json> [OUT_DIR]");
        return ExitCode::from(2);
    };
    let out = args.next().map(PathBuf::from).unwrap_or_else(|| path.parent().map(PathBuf::from).unwrap_or_default());
    match cl_report::render_results_file(&path, &out) {
        Ok(pictures) => {
            for p in pictures {
                println!("written {} and {}", p.png.display(), p.svg.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
