//! The evaluation-cost part of `bench`: how much the metrics add to an evaluation of the
//! SplitFMNIST test stream, against a bare forward pass over the same batches. Written as
//! `target/bench/eval_cost.json` and a table in `summary.md`.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use cl::burn::module::Module;
use cl::burn::tensor::Tensor;
use cl::core::NoMetrics;
use cl::core::data::{ClassificationDataLoader, DataLoader, DataLoaderConfig};
use cl::core::evaluation::EvaluationPlugin;
use cl::metrics::all_metrics;
use cl::prelude::*;
use cl::strategies::NaiveConfig;
use serde::Serialize;

use crate::provenance::Provenance;

/// Timed repetitions of each configuration (the minimum and the median are reported).
const REPEATS: usize = 3;

/// One configuration's time over the test stream.
#[derive(Debug, Clone, Serialize)]
pub struct EvalCostCase {
    /// What ran: `bare forward`, `eval, no metrics`, `eval, default metrics`, `eval, all metrics`.
    pub case: &'static str,
    /// Fastest of the repetitions, seconds.
    pub seconds_min: f64,
    /// Median of the repetitions, seconds.
    pub seconds_median: f64,
    /// `seconds_min / bare forward's seconds_min`.
    pub ratio_to_bare_forward: f64,
    /// Test samples per second (from `seconds_min`).
    pub samples_per_s: f64,
}

/// The measurement.
#[derive(Debug, Clone, Serialize)]
pub struct EvalCostRecord {
    /// `SplitFMNIST`.
    pub benchmark: &'static str,
    /// `SimpleMlp` (untrained: the cost does not depend on the weights).
    pub model: &'static str,
    /// Evaluation mini-batch size.
    pub batch_size: usize,
    /// Samples of the test stream.
    pub samples: usize,
    /// Experiences of the test stream.
    pub experiences: usize,
    /// Repetitions per case.
    pub repeats: usize,
    /// The cases.
    pub cases: Vec<EvalCostCase>,
    /// Start of the measurement, seconds since the Unix epoch.
    pub timestamp: u64,
    /// Versions, commit and machine.
    #[serde(flatten)]
    pub provenance: Provenance,
}

fn stats(mut times: Vec<f64>) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    (times[0], times[times.len() / 2])
}

/// The forward pass alone over the test stream's batches, one value read back per experience.
fn bare_forward(model: &SimpleMlp, benchmark: &Benchmark, batch_size: usize) -> Result<f64, ClError> {
    let device = cl::default_device().without_autodiff();
    let model = model.valid();
    let t = Instant::now();
    for exp in &benchmark.test_stream {
        let mut loader = ClassificationDataLoader::new(exp.dataset.eval(), DataLoaderConfig::eval(batch_size))?;
        loader.start_epoch();
        let mut sum: Option<Tensor<1>> = None;
        while let Some(batch) = loader.next_batch(&device) {
            let s = model.forward(&batch?).sum();
            sum = Some(match sum {
                Some(a) => a + s,
                None => s,
            });
        }
        if let Some(s) = sum {
            std::hint::black_box(s.into_scalar::<f32>());
        }
    }
    Ok(t.elapsed().as_secs_f64())
}

/// `strategy.eval(test_stream)` with the given evaluator.
fn eval_with<E: cl::core::Evaluator<SimpleMlp>>(
    model: &SimpleMlp,
    benchmark: &Benchmark,
    batch_size: usize,
    evaluator: E,
) -> Result<f64, ClError> {
    let mut strategy =
        Naive::builder(model.clone(), OptimizerSpec::sgd(0.01), cl::default_device(), NaiveConfig::default())?
            .eval_mb_size(batch_size)
            .evaluator(evaluator)
            .build()?;
    let t = Instant::now();
    strategy.eval(&benchmark.test_stream)?;
    Ok(t.elapsed().as_secs_f64())
}

/// Times a bare forward pass and `eval` with no, the default and all metrics over the test
/// stream, prints the table and returns the record.
pub fn run(benchmark: &Benchmark, batch_size: usize, provenance: &Provenance) -> Result<EvalCostRecord, ClError> {
    let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let model = SimpleMlpConfig::new().with_num_classes(benchmark.n_classes).init(&cl::default_device())?;
    let samples: usize = benchmark.test_stream.iter().map(|e| e.dataset.len()).sum();
    println!(
        "\n== evaluation cost: test stream ({samples} samples), SimpleMlp, batch {batch_size}, backend {}, best of {REPEATS} ==",
        provenance.backend
    );
    // Warm-up (allocator, kernels).
    bare_forward(&model, benchmark, batch_size)?;
    let mut raw: Vec<(&'static str, Vec<f64>)> = vec![
        ("bare forward", Vec::new()),
        ("eval, no metrics", Vec::new()),
        ("eval, default metrics", Vec::new()),
        ("eval, all metrics", Vec::new()),
    ];
    // Interleaved repetitions, so that machine noise spreads over all cases.
    for _ in 0..REPEATS {
        raw[0].1.push(bare_forward(&model, benchmark, batch_size)?);
        raw[1].1.push(eval_with(&model, benchmark, batch_size, NoMetrics)?);
        raw[2].1.push(eval_with(&model, benchmark, batch_size, EvaluationPlugin::default())?);
        raw[3].1.push(eval_with(&model, benchmark, batch_size, all_metrics())?);
    }
    let bare = stats(raw[0].1.clone()).0;
    let cases: Vec<EvalCostCase> = raw
        .into_iter()
        .map(|(case, times)| {
            let (min, median) = stats(times);
            EvalCostCase {
                case,
                seconds_min: min,
                seconds_median: median,
                ratio_to_bare_forward: if bare > 0.0 { min / bare } else { f64::NAN },
                samples_per_s: if min > 0.0 { samples as f64 / min } else { 0.0 },
            }
        })
        .collect();
    for c in &cases {
        println!(
            "{:<22} {:>8.3} s (median {:.3} s) {:>9.0} samples/s  {:.2}× bare forward",
            c.case, c.seconds_min, c.seconds_median, c.samples_per_s, c.ratio_to_bare_forward
        );
    }
    Ok(EvalCostRecord {
        benchmark: "SplitFMNIST",
        model: "SimpleMLP",
        batch_size,
        samples,
        experiences: benchmark.test_stream.len(),
        repeats: REPEATS,
        cases,
        timestamp,
        provenance: provenance.clone(),
    })
}

/// The markdown table of `summary.md`.
pub fn markdown(record: &EvalCostRecord) -> String {
    let mut s = format!(
        "\n## Evaluation cost (test stream, {} samples, batch {}, best of {})\n\n\
         | case | seconds | samples/s | × bare forward |\n|---|---:|---:|---:|\n",
        record.samples, record.batch_size, record.repeats
    );
    for c in &record.cases {
        s.push_str(&format!(
            "| {} | {:.3} | {:.0} | {:.2} |\n",
            c.case, c.seconds_min, c.samples_per_s, c.ratio_to_bare_forward
        ));
    }
    s
}
