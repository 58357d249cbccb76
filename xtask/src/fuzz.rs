//! `cargo xtask fuzz`: mutation-based fuzzing of the readers of untrusted files, on the stable
//! toolchain (no instrumentation, no nightly): the IDX reader, an MNIST directory of four
//! files, CIFAR record files, CIFAR `.tar.gz` archives (extracted, then loaded) and the results
//! files `cl-report` reads.
//!
//! Each execution takes an input from a pool (real seeds cut from the shipped Fashion-MNIST
//! fixture, or generated where the content does not matter, plus inputs that parsed), applies
//! 1 to 8 stacked mutations (bit flips, interesting bytes and big-endian `u32`s, chunk
//! insertions, deletions, copies, truncation, splicing, dictionary tokens), compresses it where
//! the format is gzip (half the time mutating the payload before compression, so that the
//! parser behind the decompressor is reached), and runs the reader. A **failure** is a panic,
//! or a peak of heap memory (measured by the counting global allocator of the `xtask` binary,
//! [`crate::counting_alloc`]) above the target's bound — twice the size the input declares (an
//! IDX header's dimensions, a CIFAR file's size) plus a constant; for an archive four times its
//! decompressed size (extracted, then loaded), for a results file 64 times its text (JSON
//! values) — or an allocation above `--max-alloc`, refused after the input is printed (an
//! infallible allocation then aborts the process). Typed errors are the expected outcome for
//! most inputs and are counted, not reported. The readers' crates are built with overflow
//! checks in release (the workspace's `Cargo.toml`), so arithmetic that would wrap panics here.
//!
//! `--jobs N` runs N worker processes with seeds `S, S+1, ...`; the execution counts add up.

use std::io::{Read, Write};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::Instant;

use cl::benchmarks::cifar_bin::parse_records;
use cl::benchmarks::download::extract_tar_gz;
use cl::benchmarks::files::DatasetFiles;
use cl::benchmarks::{CifarKind, MnistKind, cifar_files, idx, mnist_files};
use serde::{Deserialize, Serialize};

use crate::counting_alloc;

/// The usage of `fuzz`.
pub const USAGE: &str = "\
fuzz options (cargo xtask fuzz):
  --target LIST     comma-separated targets: idx, mnist-dir, cifar, archive, report, or all
                    (default all)
  --execs N         executions per target (default 10000)
  --seed S          seed of the mutations (default 1); the same seed gives the same inputs
  --jobs N          worker processes, each with its own seed (default 1)
  --max-len N       longest mutated input in bytes (default 65536)
  --max-alloc BYTES refuse (print the input, abort) any single allocation above this
                    (default 4294967296)
  writes target/fuzz/fuzz.json; exits 1 if any input panicked or broke its memory bound";

/// What to fuzz, how long and with which seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FuzzOptions {
    /// The targets, in order.
    pub targets: Vec<Target>,
    /// Executions per target.
    pub execs: u64,
    /// Seed of the mutations.
    pub seed: u64,
    /// Worker processes.
    pub jobs: usize,
    /// Longest mutated input.
    pub max_len: usize,
    /// Largest single allocation allowed.
    pub max_alloc: usize,
    /// Run as a worker: print the summary as one JSON line.
    pub worker: bool,
}

impl Default for FuzzOptions {
    fn default() -> Self {
        Self {
            targets: Target::ALL.to_vec(),
            execs: 10_000,
            seed: 1,
            jobs: 1,
            max_len: 1 << 16,
            max_alloc: 1 << 32,
            worker: false,
        }
    }
}

/// A reader under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// `idx::parse_idx` on raw and gzip IDX bytes.
    Idx,
    /// `mnist_files::load_dir` on a directory of four (gzip) IDX files, one of them mutated.
    MnistDir,
    /// `cifar_bin::parse_records` on CIFAR-10 and CIFAR-100 record files.
    Cifar,
    /// `download::extract_tar_gz` of a CIFAR-10 `.tar.gz`, then `cifar_files::load_dir`.
    Archive,
    /// `cl_report`: `detect_kind`, then the history (accuracy matrix, curves) or the strategy
    /// records (grouping, display names).
    Report,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 5] = [Target::Idx, Target::MnistDir, Target::Cifar, Target::Archive, Target::Report];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Target::Idx => "idx",
            Target::MnistDir => "mnist-dir",
            Target::Cifar => "cifar",
            Target::Archive => "archive",
            Target::Report => "report",
        }
    }

    fn parse(name: &str) -> Result<Vec<Target>, String> {
        if name == "all" {
            return Ok(Target::ALL.to_vec());
        }
        Target::ALL.iter().find(|t| t.name() == name).map(|t| vec![*t]).ok_or_else(|| {
            format!("--target: unknown target `{name}` (known: {}, all)", Target::ALL.map(Target::name).join(", "))
        })
    }
}

/// Parses the options after `fuzz`; `None` for `--help`.
pub fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<FuzzOptions>, String> {
    let mut options = FuzzOptions::default();
    while let Some(arg) = it.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        if arg == "--worker" {
            options.worker = true;
            continue;
        }
        let (flag, value) = crate::option_value(
            &arg,
            &["--target", "--execs", "--seed", "--jobs", "--max-len", "--max-alloc"],
            "fuzz",
            &mut it,
        )?;
        let number = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag} `{v}`: {e}"));
        match flag.as_str() {
            "--target" => {
                let mut targets = Vec::new();
                for part in value.split(',') {
                    for t in Target::parse(part.trim())? {
                        if !targets.contains(&t) {
                            targets.push(t);
                        }
                    }
                }
                options.targets = targets;
            }
            "--execs" => options.execs = number(&value)?,
            "--seed" => options.seed = number(&value)?,
            "--jobs" => options.jobs = usize::try_from(number(&value)?.max(1)).unwrap_or(1),
            "--max-len" => options.max_len = usize::try_from(number(&value)?.max(16)).unwrap_or(usize::MAX),
            "--max-alloc" => options.max_alloc = usize::try_from(number(&value)?.max(1 << 20)).unwrap_or(usize::MAX),
            _ => unreachable!("flag checked above"),
        }
    }
    Ok(Some(options))
}

/// One target's outcome.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TargetSummary {
    /// The target's name.
    pub target: String,
    /// Executions.
    pub execs: u64,
    /// Executions whose reader returned `Ok`.
    pub ok: u64,
    /// Executions whose reader returned a typed error.
    pub errors: u64,
    /// Seconds spent (the sum over workers).
    pub seconds: f64,
    /// The highest peak / bound ratio seen (below 1 when every bound held).
    pub max_peak_ratio: f64,
    /// The highest peak heap use of one execution, bytes.
    pub max_peak_bytes: usize,
    /// The failing inputs (at most 5 per worker).
    pub failures: Vec<Failure>,
}

/// A failing input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    /// What went wrong: the panic message, or the peak and the bound.
    pub what: String,
    /// The input (the file as given to the reader), hex, at most 4 KiB.
    pub input_hex: String,
    /// The input's length.
    pub len: usize,
}

/// What `run` writes.
#[derive(Debug, Serialize)]
struct Report<'a> {
    options: &'a FuzzOptions,
    provenance: crate::provenance::Provenance,
    targets: &'a [TargetSummary],
}

/// Runs the fuzzer (in worker processes with `--jobs`); prints a table and writes
/// `target/fuzz/fuzz.json`. `Ok(false)` when some input failed.
pub fn run(options: &FuzzOptions, root: &Path) -> Result<bool, String> {
    if options.worker {
        let summaries = fuzz_all(options)?;
        println!("{}", serde_json::to_string(&summaries).map_err(|e| e.to_string())?);
        return Ok(summaries.iter().all(|s| s.failures.is_empty()));
    }
    let start = Instant::now();
    let summaries = if options.jobs <= 1 { fuzz_all(options)? } else { run_workers(options)? };
    let wall = start.elapsed().as_secs_f64();
    println!(
        "{:<10} {:>12} {:>10} {:>10} {:>12} {:>11} {:>12} {:>9}",
        "target", "execs", "execs/s", "ok", "errors", "peak/bound", "max peak", "failures"
    );
    for s in &summaries {
        println!(
            "{:<10} {:>12} {:>10.0} {:>10} {:>12} {:>11.3} {:>10} K {:>9}",
            s.target,
            s.execs,
            s.execs as f64 / s.seconds.max(1e-9) * options.jobs as f64,
            s.ok,
            s.errors,
            s.max_peak_ratio,
            s.max_peak_bytes / 1024,
            s.failures.len()
        );
    }
    let total: u64 = summaries.iter().map(|s| s.execs).sum();
    println!(
        "{total} executions in {wall:.1} s ({:.0}/s), seed {}, {} job(s)",
        total as f64 / wall,
        options.seed,
        options.jobs
    );
    for s in &summaries {
        for f in &s.failures {
            println!("\nFAILURE in {}: {}\ninput ({} bytes, hex): {}", s.target, f.what, f.len, f.input_hex);
        }
    }
    let dir = root.join("target/fuzz");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let report = Report { options, provenance: crate::provenance::Provenance::collect(root), targets: &summaries };
    let path = dir.join("fuzz.json");
    let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(&path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(summaries.iter().all(|s| s.failures.is_empty()))
}

/// Runs `jobs` worker processes of this binary and adds up their summaries.
fn run_workers(options: &FuzzOptions) -> Result<Vec<TargetSummary>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the xtask executable: {e}"))?;
    let jobs = options.jobs as u64;
    let children: Vec<_> = (0..jobs)
        .map(|k| {
            let execs = options.execs / jobs + u64::from(k < options.execs % jobs);
            let targets: Vec<&str> = options.targets.iter().map(|t| t.name()).collect();
            std::process::Command::new(&exe)
                .args(["fuzz", "--worker", "--target", &targets.join(",")])
                .args(["--execs", &execs.to_string(), "--seed", &options.seed.wrapping_add(k).to_string()])
                .args(["--max-len", &options.max_len.to_string(), "--max-alloc", &options.max_alloc.to_string()])
                .env("RAYON_NUM_THREADS", "1")
                .stdout(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot start a worker: {e}"))
        })
        .collect::<Result<_, _>>()?;
    // Every worker is waited for before any is reported on.
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output()).collect();
    let mut merged: Vec<TargetSummary> = Vec::new();
    let mut lost = Vec::new();
    for (k, out) in outputs.into_iter().enumerate() {
        let seed = options.seed.wrapping_add(k as u64);
        let parts: Vec<TargetSummary> = match out {
            Ok(out) => match serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()) {
                Ok(parts) => parts,
                Err(e) => {
                    lost.push(format!("worker {k} (seed {seed}) ended with {} and no summary ({e})", out.status));
                    continue;
                }
            },
            Err(e) => {
                lost.push(format!("worker {k} (seed {seed}): {e}"));
                continue;
            }
        };
        for p in parts {
            match merged.iter_mut().find(|m| m.target == p.target) {
                Some(m) => {
                    m.execs += p.execs;
                    m.ok += p.ok;
                    m.errors += p.errors;
                    m.seconds += p.seconds;
                    m.max_peak_ratio = m.max_peak_ratio.max(p.max_peak_ratio);
                    m.max_peak_bytes = m.max_peak_bytes.max(p.max_peak_bytes);
                    m.failures.extend(p.failures);
                }
                None => merged.push(p),
            }
        }
    }
    if !lost.is_empty() {
        // What the other workers found is not lost with them.
        eprintln!("summaries of the workers that finished: {}", serde_json::to_string(&merged).unwrap_or_default());
        return Err(format!(
            "{}; see its output above (an aborted worker printed the input it was running)",
            lost.join("; ")
        ));
    }
    Ok(merged)
}

/// Fuzzes every target of `options` in this process.
fn fuzz_all(options: &FuzzOptions) -> Result<Vec<TargetSummary>, String> {
    // Panics are failures to record, not messages to print.
    let panic_message = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = panic_message.clone();
    std::panic::set_hook(Box::new(move |info| {
        if let Ok(mut m) = sink.lock() {
            *m = info.to_string();
        }
    }));
    counting_alloc::enable();
    let mut out = Vec::new();
    for (k, &target) in options.targets.iter().enumerate() {
        let mut runner = Runner::new(target)?;
        let seed = options.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (k as u64 + 1);
        out.push(fuzz_target(&mut runner, target, options, seed, &panic_message));
    }
    let _ = std::panic::take_hook();
    Ok(out)
}

fn fuzz_target(
    runner: &mut Runner,
    target: Target,
    options: &FuzzOptions,
    seed: u64,
    panic_message: &std::sync::Mutex<String>,
) -> TargetSummary {
    let mut rng = Rng(seed);
    let mut pool: Vec<Seed> = runner.seeds.clone();
    let n_seeds = pool.len();
    let mut summary = TargetSummary { target: target.name().into(), ..TargetSummary::default() };
    let start = Instant::now();
    for exec in 0..options.execs {
        // The seeds unchanged first, then mutants of the pool.
        let mut seed_input = pool[if exec < n_seeds as u64 { exec as usize } else { rng.below(pool.len()) }].clone();
        let mutate_payload = seed_input.gz && rng.below(2) == 0;
        if exec >= n_seeds as u64 && (mutate_payload || !seed_input.gz) {
            let other = pool[rng.below(pool.len())].payload.clone();
            mutate(&mut rng, &mut seed_input.payload, &other, runner.dictionary, options.max_len);
        }
        let mut bytes = if seed_input.gz { gzip(&seed_input.payload) } else { seed_input.payload.clone() };
        if exec >= n_seeds as u64 && seed_input.gz && !mutate_payload {
            let other = pool[rng.below(pool.len())].payload.clone();
            mutate(&mut rng, &mut bytes, &other, &[], options.max_len);
        }
        let bound = runner.bound(seed_input.file, &bytes);
        // The limit and the input only while the reader runs.
        counting_alloc::set_input(&bytes);
        counting_alloc::set_limit(options.max_alloc);
        let baseline = counting_alloc::reset_peak();
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| runner.run(seed_input.file, &bytes)));
        let used = usize::try_from(counting_alloc::peak() - baseline).unwrap_or(0);
        counting_alloc::set_limit(usize::MAX);
        counting_alloc::clear_input();
        let refused = counting_alloc::take_refused();
        runner.after_run(seed_input.file);
        summary.execs += 1;
        summary.max_peak_bytes = summary.max_peak_bytes.max(used);
        summary.max_peak_ratio = summary.max_peak_ratio.max(used as f64 / bound as f64);
        let failure = match result {
            Ok(Ok(())) => {
                summary.ok += 1;
                if exec >= n_seeds as u64 && pool.len() < 64 {
                    // What was run: the compressed bytes when they were mutated after compression.
                    let accepted = if seed_input.gz && !mutate_payload {
                        Seed { file: seed_input.file, payload: bytes.clone(), gz: false }
                    } else {
                        seed_input.clone()
                    };
                    pool.push(accepted);
                }
                None
            }
            Ok(Err(_)) => {
                summary.errors += 1;
                None
            }
            Err(_) => Some(format!("panic: {}", panic_message.lock().map(|m| m.clone()).unwrap_or_default())),
        };
        let failure = failure
            .or_else(|| {
                (refused > 0).then(|| format!("an allocation of {refused} bytes, over --max-alloc, was refused"))
            })
            .or_else(|| (used > bound).then(|| format!("peak heap use {used} bytes over the bound {bound} bytes")));
        if let Some(what) = failure
            && summary.failures.len() < 5
        {
            summary.failures.push(Failure { what, input_hex: hex(&bytes[..bytes.len().min(4096)]), len: bytes.len() });
        }
    }
    summary.seconds = start.elapsed().as_secs_f64();
    summary
}

/// An input of the pool: the payload, gzip-compressed before the run when `gz`; `file` picks
/// the file of a multi-file target (the MNIST directory).
#[derive(Debug, Clone)]
struct Seed {
    file: usize,
    payload: Vec<u8>,
    gz: bool,
}

/// Heap the readers may use beyond their bound's proportional part: gzip decoder state
/// (~50 KiB), buffers, error messages, four threads of the MNIST directory reader.
const SLACK: usize = 1 << 20;

/// A target with its seeds and scratch directory.
struct Runner {
    target: Target,
    seeds: Vec<Seed>,
    dictionary: &'static [&'static [u8]],
    /// Scratch directory (in /dev/shm when there is one) for the targets that read files.
    dir: tempfile::TempDir,
    /// The four MNIST files as written (for `MnistDir`).
    mnist_files: Vec<Vec<u8>>,
}

const JSON_TOKENS: &[&[u8]] = &[
    b"null",
    b"1e999",
    b"-1",
    b"18446744073709551616",
    b"NaN",
    b"\"Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp4000000000\"",
    b"\"Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp999999\"",
    b"\"x_plot\":",
    b"\"value\":",
    b"\"name\":",
    b"\"benchmark\":",
    b"\"strategy\":",
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b"\n",
    b"\"\\ud800\"",
];

impl Runner {
    fn new(target: Target) -> Result<Self, String> {
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }
            .map_err(|e| format!("cannot create a scratch directory: {e}"))?;
        let mut runner = Runner { target, seeds: Vec::new(), dictionary: &[], dir, mnist_files: Vec::new() };
        match target {
            Target::Idx => {
                for payload in fixture_idx()? {
                    runner.seeds.push(Seed { file: 0, payload: payload.clone(), gz: false });
                    runner.seeds.push(Seed { file: 0, payload, gz: true });
                }
            }
            Target::MnistDir => {
                let files = fixture_idx()?;
                for (k, name) in MnistKind::FashionMnist.file_names().iter().enumerate() {
                    let bytes = gzip(&files[k]);
                    std::fs::write(runner.dir.path().join(name), &bytes).map_err(|e| e.to_string())?;
                    runner.mnist_files.push(bytes);
                    runner.seeds.push(Seed { file: k, payload: files[k].clone(), gz: true });
                }
            }
            Target::Cifar => {
                runner.seeds.push(Seed { file: 0, payload: cifar_records(3, false), gz: false });
                runner.seeds.push(Seed { file: 1, payload: cifar_records(2, true), gz: false });
            }
            Target::Archive => {
                runner.seeds.push(Seed { file: 0, payload: cifar_tar(TarNames::Plain), gz: true });
                runner.seeds.push(Seed { file: 0, payload: cifar_tar(TarNames::GnuLong), gz: true });
                runner.seeds.push(Seed { file: 0, payload: cifar_tar(TarNames::Pax), gz: true });
            }
            Target::Report => {
                runner.dictionary = JSON_TOKENS;
                let exp = |j: usize, v: f64, x: u64| {
                    format!(
                        r#"{{"name":"Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp{j:03}","value":{v},"x_plot":{x}}}"#
                    )
                };
                let records = [exp(0, 0.9, 10), exp(1, 0.1, 10), exp(0, 0.6, 20), exp(1, 0.8, 20)];
                let history = format!("[{}]", records.join(","));
                let lines = records.join("\n");
                let strategies = r#"[{"benchmark":"SplitFMNIST","strategy":"EWC","hyperparameters":"separate, λ=10","final_average_accuracy":0.5,"forgetting":0.2},{"benchmark":"SplitFMNIST","strategy":"EWC","hyperparameters":"separate, λ=100","final_average_accuracy":null,"forgetting":null,"error":"diverged"}]"#;
                let single = r#"{"benchmark":"B","strategy":"Naive","final_average_accuracy":0.3,"forgetting":0.7}"#;
                for text in [history, lines, strategies.to_string(), single.to_string()] {
                    runner.seeds.push(Seed { file: 0, payload: text.into_bytes(), gz: false });
                }
            }
        }
        Ok(runner)
    }

    /// The most heap one run on `bytes` may use.
    fn bound(&self, file: usize, bytes: &[u8]) -> usize {
        match self.target {
            Target::Idx => 2 * declared_idx_len(bytes) + SLACK,
            Target::MnistDir => {
                let mut total = SLACK;
                for (k, original) in self.mnist_files.iter().enumerate() {
                    let f: &[u8] = if k == file { bytes } else { original };
                    // A compressed file is read whole, then decompressed into at most ~2x its
                    // declared size.
                    total += 2 * declared_idx_len(f) + if f.starts_with(&[0x1f, 0x8b]) { f.len() } else { 0 };
                }
                total
            }
            Target::Cifar => 2 * bytes.len() + SLACK,
            // Extraction streams (bounded by a constant); loading then reads the extracted files
            // (at most the decompressed size) into records and their concatenation.
            // (Deflate expands at most ~1032×: the cap never binds, it bounds the counting time.)
            Target::Archive => 4 * gunzip_len(bytes, 1100 * bytes.len() as u64 + (1 << 20)) + SLACK,
            // JSON values take more memory than their text (a `Value` per number).
            Target::Report => 64 * bytes.len() + SLACK,
        }
    }

    /// Restores what `run` changed on disk: the MNIST directory's mutated file, the archive's
    /// extracted files.
    fn after_run(&self, file: usize) {
        if self.target == Target::Archive {
            let _ = std::fs::remove_dir_all(self.dir.path().join("out"));
        }
        if self.target == Target::MnistDir {
            let path = self.dir.path().join(MnistKind::FashionMnist.file_names()[file]);
            if let Err(e) = std::fs::write(&path, &self.mnist_files[file]) {
                panic!("cannot restore {}: {e}", path.display());
            }
        }
    }

    /// Runs the reader: `Ok` when it accepted the input, `Err` with its (typed) error's message.
    fn run(&mut self, file: usize, bytes: &[u8]) -> Result<(), String> {
        match self.target {
            Target::Idx => idx::parse_idx(bytes).map(drop).map_err(|e| e.to_string()),
            Target::MnistDir => {
                let name = MnistKind::FashionMnist.file_names()[file];
                let path = self.dir.path().join(name);
                std::fs::write(&path, bytes).map_err(|e| e.to_string())?;
                // The original is written back by `after_run`, even after a panic.
                mnist_files::load_dir(MnistKind::FashionMnist, self.dir.path()).map(drop).map_err(|e| e.to_string())
            }
            Target::Cifar => {
                let format = if file == 0 { CifarKind::Cifar10 } else { CifarKind::Cifar100 }.record_format();
                parse_records(&format, bytes, Path::new("fuzz.bin")).map(drop).map_err(|e| e.to_string())
            }
            Target::Archive => {
                let archive = self.dir.path().join("cifar.tar.gz");
                std::fs::write(&archive, bytes).map_err(|e| e.to_string())?;
                let out = self.dir.path().join("out");
                let kind = CifarKind::Cifar10;
                // `after_run` removes what was extracted, even after a panic.
                extract_tar_gz(&archive, &out, kind.subdir(), &kind.file_names())
                    .and_then(|dir| cifar_files::load_dir(kind, &dir))
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
            Target::Report => {
                let text = String::from_utf8_lossy(bytes);
                let origin = Path::new("fuzz.json");
                match cl::report::detect_kind(&text, origin).map_err(|e| e.to_string())? {
                    cl::report::ResultsKind::History => {
                        let history = cl::report::parse_history(&text, origin).map_err(|e| e.to_string())?;
                        let matrix = cl::report::matrix_from_history(&history, "test").map_err(|e| e.to_string())?;
                        let _ = (matrix.final_average_accuracy(), matrix.forgetting());
                        let curves = cl::report::AccuracyCurves::from_history(&history, "test");
                        let _ = curves.max_x();
                    }
                    cl::report::ResultsKind::Strategies => {
                        let records = cl::report::parse_strategies(&text, origin).map_err(|e| e.to_string())?;
                        for (_, rows) in cl::report::group_by_benchmark(&records) {
                            let _ = cl::report::display_names(&rows);
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

/// The data size an IDX input declares (its header's dimensions multiplied), decompressing at
/// most the header when it is gzip; 0 without a readable header.
fn declared_idx_len(bytes: &[u8]) -> usize {
    let mut head = Vec::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        // Across members, as the reader decompresses.
        let _ = flate2::read::MultiGzDecoder::new(bytes).take(4 + 4 * 255).read_to_end(&mut head);
    } else {
        head.extend_from_slice(&bytes[..bytes.len().min(4 + 4 * 255)]);
    }
    if head.len() < 4 {
        return 0;
    }
    let ndims = usize::from(head[3]);
    if head.len() < 4 + 4 * ndims {
        return 0;
    }
    head[4..4 + 4 * ndims]
        .chunks_exact(4)
        .try_fold(1usize, |acc, c| acc.checked_mul(u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize))
        .unwrap_or(0)
}

/// The decompressed length of gzip `bytes` (every member), counted up to `cap`.
fn gunzip_len(bytes: &[u8], cap: u64) -> usize {
    let mut decoder = flate2::read::MultiGzDecoder::new(bytes).take(cap);
    let mut buf = [0u8; 1 << 14];
    let mut total = 0;
    while let Ok(n) = decoder.read(&mut buf) {
        if n == 0 {
            break;
        }
        total += n;
    }
    total
}

/// The first images and labels of the shipped Fashion-MNIST fixture as four small IDX files
/// (train images, train labels, test images, test labels): real bytes, short enough to run fast.
fn fixture_idx() -> Result<Vec<Vec<u8>>, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cl-benchmarks/tests/fixtures/fashion-mnist-mini");
    let arrays = mnist_files::load_dir(MnistKind::FashionMnist, &dir).map_err(|e| e.to_string())?;
    let image = arrays.rows * arrays.cols;
    let idx_bytes = |dims: &[u32], data: &[u8]| {
        let mut v = vec![0, 0, idx::IDX_DTYPE_U8, dims.len() as u8];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    };
    let (rows, cols) = (arrays.rows as u32, arrays.cols as u32);
    Ok(vec![
        idx_bytes(&[3, rows, cols], &arrays.train_images[..3 * image]),
        idx_bytes(&[3], &arrays.train_labels[..3]),
        idx_bytes(&[2, rows, cols], &arrays.test_images[..2 * image]),
        idx_bytes(&[2], &arrays.test_labels[..2]),
    ])
}

/// `n` generated CIFAR records (CIFAR-100's with a coarse label when `coarse`).
fn cifar_records(n: usize, coarse: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        if coarse {
            out.push((i % 20) as u8);
        }
        out.push((i % 10) as u8);
        out.extend((0..3072).map(|p| ((p * 7 + i * 13) % 251) as u8));
    }
    out
}

/// How the member names of the seed archive are stored.
#[derive(Clone, Copy)]
enum TarNames {
    /// In the ustar header.
    Plain,
    /// In GNU long-name entries.
    GnuLong,
    /// In pax extension headers.
    Pax,
}

/// A CIFAR-10 tar stream holding one record per batch file.
fn cifar_tar(names: TarNames) -> Vec<u8> {
    let kind = CifarKind::Cifar10;
    let mut tar = Vec::new();
    for (k, name) in kind.file_names().iter().enumerate() {
        let path = format!("{}/{name}", kind.subdir());
        let data = cifar_records(1 + k % 2, false);
        match names {
            TarNames::Plain => tar_entry(&mut tar, &path, &data, b'0'),
            TarNames::GnuLong => {
                tar_entry(&mut tar, "././@LongLink", format!("{path}\0").as_bytes(), b'L');
                tar_entry(&mut tar, "short", &data, b'0');
            }
            TarNames::Pax => {
                let record = |len: usize| format!("{len} path={path}\n");
                let mut len = record(0).len();
                while record(len).len() != len {
                    len = record(len).len();
                }
                tar_entry(&mut tar, "PaxHeaders/x", record(len).as_bytes(), b'x');
                tar_entry(&mut tar, "short", &data, b'0');
            }
        }
    }
    tar.extend_from_slice(&[0u8; 1024]);
    tar
}

/// Appends a ustar member `name` of type `kind` holding `data`.
fn tar_entry(out: &mut Vec<u8>, name: &str, data: &[u8], kind: u8) {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = e.write_all(bytes);
    e.finish().unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SplitMix64: a small, seeded, portable generator (the same inputs on every machine).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const INTERESTING_U8: [u8; 9] = [0, 1, 0x7f, 0x80, 0xff, 8, 10, 28, 0x1f];
const INTERESTING_U32: [u32; 12] =
    [0, 1, 2, 28, 255, 256, 0x7fff, 0xffff, 0x1_0000, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff];

/// Applies 1 to 8 stacked mutations to `data`, then cuts it to `max_len`.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8], dictionary: &[&[u8]], max_len: usize) {
    let stack = 1 << rng.below(4);
    for _ in 0..stack {
        let len = data.len();
        let pos = |rng: &mut Rng| if len == 0 { 0 } else { rng.below(len) };
        match rng.below(if dictionary.is_empty() { 10 } else { 12 }) {
            0 if len > 0 => {
                let p = pos(rng);
                data[p] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let p = pos(rng);
                data[p] = rng.next() as u8;
            }
            2 if len > 0 => {
                let p = pos(rng);
                data[p] = INTERESTING_U8[rng.below(INTERESTING_U8.len())];
            }
            3 if len >= 4 => {
                let p = rng.below(len - 3);
                data[p..p + 4].copy_from_slice(&INTERESTING_U32[rng.below(INTERESTING_U32.len())].to_be_bytes());
            }
            4 if len > 0 => {
                let p = pos(rng);
                data[p] = data[p].wrapping_add((rng.below(35) as u8).wrapping_sub(17));
            }
            5 if len > 0 => {
                let p = pos(rng);
                let n = 1 + rng.below((len - p).min(512));
                data.drain(p..p + n);
            }
            6 => {
                let p = if len == 0 { 0 } else { rng.below(len + 1) };
                let chunk: Vec<u8> = if rng.below(2) == 0 {
                    (0..1 + rng.below(32)).map(|_| rng.next() as u8).collect()
                } else {
                    vec![rng.next() as u8; 1 + rng.below(4096)]
                };
                data.splice(p..p, chunk);
            }
            7 if len > 1 => {
                let (from, to) = (pos(rng), pos(rng));
                let n = 1 + rng.below((len - from).min(len - to).min(256));
                let chunk = data[from..from + n].to_vec();
                data[to..to + n].copy_from_slice(&chunk);
            }
            8 if len > 0 => data.truncate(pos(rng)),
            9 if !other.is_empty() => {
                let cut = if len == 0 { 0 } else { rng.below(len + 1) };
                let from = rng.below(other.len());
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            10 | 11 => {
                let token = dictionary[rng.below(dictionary.len())];
                let p = if len == 0 { 0 } else { rng.below(len + 1) };
                data.splice(p..p, token.iter().copied());
            }
            _ => {
                let p = if len == 0 { 0 } else { rng.below(len + 1) };
                data.insert(p, rng.next() as u8);
            }
        }
    }
    data.truncate(max_len);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        let parse = |args: &[&str]| parse_args(args.iter().map(|s| s.to_string()));
        let o = parse(&["--target", "idx,report", "--execs", "50", "--seed=7", "--jobs", "2"]).unwrap().unwrap();
        assert_eq!((o.targets, o.execs, o.seed, o.jobs), (vec![Target::Idx, Target::Report], 50, 7, 2));
        assert_eq!(parse(&["--target", "all"]).unwrap().unwrap().targets, Target::ALL.to_vec());
        assert!(parse(&["--target", "png"]).unwrap_err().contains("known: idx, mnist-dir"));
        assert!(parse(&["--bogus"]).unwrap_err().contains("unknown option"));
        assert_eq!(parse(&["--help"]).unwrap(), None);
    }

    #[test]
    fn mutations_are_seeded_and_bounded() {
        let run = |seed| {
            let mut rng = Rng(seed);
            let mut data = b"0123456789abcdef".to_vec();
            for _ in 0..200 {
                mutate(&mut rng, &mut data, b"other input", JSON_TOKENS, 64);
                assert!(data.len() <= 64);
            }
            data
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }

    #[test]
    fn declared_sizes() {
        let raw = [0u8, 0, 8, 2, 0, 0, 0, 3, 0, 0, 0, 5];
        assert_eq!(declared_idx_len(&raw), 15);
        assert_eq!(declared_idx_len(&gzip(&raw)), 15);
        assert_eq!(declared_idx_len(&[0, 0, 8]), 0);
        assert_eq!(gunzip_len(&gzip(&[7u8; 10_000]), 1 << 20), 10_000);
    }

    #[test]
    fn every_seed_is_accepted_by_its_reader() {
        for target in Target::ALL {
            let mut runner = Runner::new(target).unwrap();
            for seed in runner.seeds.clone() {
                let bytes = if seed.gz { gzip(&seed.payload) } else { seed.payload.clone() };
                runner.run(seed.file, &bytes).unwrap_or_else(|e| panic!("{}: {e}", target.name()));
            }
        }
    }
}
