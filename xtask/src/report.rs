//! Human-readable output of `bench`: a stdout summary per run and the markdown table.

use std::fmt::Write;

use crate::bench::BenchRecord;
use crate::loaders::LoaderRecord;
use crate::strategies::{self, StrategyRecord};

/// Prints the headline numbers of one run.
pub fn print_record(r: &BenchRecord) {
    println!(
        "{} {} {}ep: final average accuracy {:.4}, stream accuracy {:.4}, forgetting {:.4}\n  \
         wall {:.2} s (train {:.2} s, eval {:.2} s; load {:.2} s not included); \
         {} iterations, {:.1} it/s, {:.0} samples/s",
        r.benchmark,
        r.strategy,
        r.epochs,
        r.final_average_accuracy,
        r.final_stream_accuracy,
        r.forgetting,
        r.wall_time_s,
        r.train_time_s,
        r.eval_time_s,
        r.load_time_s,
        r.train_iterations,
        r.train_iterations_per_s,
        r.train_samples_per_s
    );
}

/// The content of `summary.md`: provenance of the invocation and one table row per run.
pub fn markdown_table(records: &[BenchRecord]) -> String {
    let mut s = String::from("# cl benchmarks\n\n");
    if let Some(first) = records.first() {
        let p = &first.provenance;
        let _ = writeln!(
            s,
            "`cargo xtask bench` at {} (Unix time); commit `{}`; cl {}, burn {}, {}; backend {}, {} threads{}.\n",
            first.timestamp,
            p.git_commit,
            p.cl_version,
            p.burn_version,
            p.rustc_version,
            p.backend,
            p.threads,
            p.hostname.as_deref().map(|h| format!(", host `{h}`")).unwrap_or_default()
        );
    }
    s.push_str(
        "| benchmark | strategy | epochs | batch | seed | final avg acc | stream acc | forgetting \
         | train it/s | train samples/s | train (s) | eval (s) | wall (s) | load (s) |\n",
    );
    s.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in records {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:.4} | {:.4} | {:.4} | {:.1} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
            r.benchmark,
            r.strategy,
            r.epochs,
            r.batch_size,
            r.seed,
            r.final_average_accuracy,
            r.final_stream_accuracy,
            r.forgetting,
            r.train_iterations_per_s,
            r.train_samples_per_s,
            r.train_time_s,
            r.eval_time_s,
            r.wall_time_s,
            r.load_time_s
        );
    }
    s
}

/// The "strategies" section of `summary.md`: one table per benchmark, one row per strategy;
/// `time vs Naive` is the wall time over Naive's on the same benchmark, `work vs Naive` the
/// inherent cost (samples forwarded, a backpropagated one counting three, over Naive's), `ms/it` the mean time of
/// one training iteration without the experience-boundary work, `ms/it after exp 1` the same over
/// the experiences after the first (penalties, replay, projections active) and `vs Naive` its ratio
/// to Naive's (the per-step cost). A failed run shows its error instead of numbers.
pub fn strategies_table(records: &[StrategyRecord]) -> String {
    let mut s = String::from("\n## strategies\n");
    let mut benchmarks: Vec<&str> = Vec::new();
    for r in records {
        if !benchmarks.contains(&r.benchmark) {
            benchmarks.push(r.benchmark);
        }
    }
    for benchmark in benchmarks {
        let rows: Vec<&StrategyRecord> = records.iter().filter(|r| r.benchmark == benchmark).collect();
        let r = rows[0];
        let _ = writeln!(
            s,
            "\n### {}\n\n{} ({} experiences), SimpleMlp, SGD(lr={}, momentum={}), {} epoch(s) per experience, \
             batch {}, seed {}; evaluation on the full test stream after each experience \
             (JointTraining: one training on the whole stream, one evaluation).\n",
            r.benchmark, r.benchmark, r.n_experiences, r.lr, r.momentum, r.epochs, r.batch_size, r.seed
        );
        s.push_str(
            "| strategy | settings | final avg acc | forgetting | train it | train (s) | eval (s) | wall (s) | time vs Naive | work vs Naive | ms/it | ms/it after exp 1 | vs Naive |\n\
             |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in rows {
            let settings = if r.hyperparameters.is_empty() { "-" } else { r.hyperparameters.as_str() };
            match &r.error {
                None => {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {:.4} | {} | {} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {} |",
                        r.strategy,
                        settings,
                        r.final_average_accuracy,
                        strategies::format_forgetting(r.forgetting),
                        r.train_iterations,
                        r.train_time_s,
                        r.eval_time_s,
                        r.wall_time_s,
                        strategies::format_ratio(r.wall_time_vs_naive),
                        strategies::format_ratio(r.work_vs_naive),
                        r.ms_per_iteration.map_or("-".into(), |ms| format!("{ms:.2}")),
                        r.ms_per_later_iteration.map_or("-".into(), |ms| format!("{ms:.2}")),
                        strategies::format_ratio(r.iteration_vs_naive)
                    );
                }
                Some(e) => {
                    let e = e.replace('|', "\\|").replace('\n', " ");
                    let _ = writeln!(s, "| {} | {} | error: {e} | | | | | | | | | | |", r.strategy, settings);
                }
            }
        }
    }
    s
}

/// The "data loading" section of `summary.md`: one row per loader.
pub fn loaders_table(records: &[LoaderRecord]) -> String {
    let mut s = String::from(
        "\n## data loading\n\nOne epoch per loader, no model: time inside `next_batch` (gather, u8 → f32, \
         upload, Normalize). `× training`: loader samples/s over the training samples/s of the 1-epoch run.\n\n\
         | loader | data | batch | batch mem | batches | samples | seconds | samples/s | × training |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in records {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {:.3} | {:.0} | {} |",
            r.loader,
            r.data,
            r.batch_size,
            r.batch_size_mem.map_or("-".into(), |b| b.to_string()),
            r.batches,
            r.samples,
            r.seconds,
            r.samples_per_s,
            r.ratio_to_training.map_or("-".into(), |x| format!("{x:.1}"))
        );
    }
    s
}

/// Renders the strategies comparison chart next to `strategies.json` (`strategies.png` and
/// `strategies.svg` in the same directory).
pub fn strategies_chart(json: &std::path::Path) -> Result<cl::report::Pictures, cl::report::ReportError> {
    let dir = json.parent().unwrap_or(std::path::Path::new("."));
    cl::report::render_strategies_file(json, dir)
}
