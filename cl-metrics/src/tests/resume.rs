//! Checkpoint and resume: every metric saved at every callback of a small run and loaded into a
//! fresh one continues with the values of the uninterrupted run; the file loggers, saved,
//! written further (the part a killed run loses), then resumed by new loggers on the same
//! files, leave exactly the uninterrupted run's files; torn last records are skipped by the
//! readers and reported with their position.

use std::path::Path;
use std::sync::{Arc, Mutex};

use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use cl_core::checkpoint::StateDict;
use cl_core::data::{ClassificationDataset, MiniBatch};
use cl_core::evaluation::{
    AccuracyConfig, EvaluationPlugin, Granularity, Logger, MetricContext, MetricValue, TopkConfig,
};
use cl_core::{Callback, ClError, Clock, Experience};

use crate::*;

/// One callback of the scripted run.
#[derive(Debug, Clone, Copy)]
struct Step {
    cb: Callback,
    training: bool,
    exp: usize,
    batch: Option<usize>,
}

/// A small run: an evaluation before training, then `train` on two experiences with periodic
/// evaluation (two epochs of two iterations each; a batch with two task labels and a label above
/// the model's outputs in the second experience), then an evaluation.
struct World {
    device: Device,
    model: Linear,
    /// train 0, train 1, test 0, test 1.
    exps: Vec<Experience>,
    batches: Vec<(MiniBatch, Tensor<2>, Tensor<1>)>,
    steps: Vec<Step>,
}

/// Labels, task labels, predictions, logits width, loss.
type BatchSpec = (&'static [u32], &'static [u32], &'static [u32], usize, f32);

fn experience(index: usize, stream: &str, targets: &[u32]) -> Experience {
    let data = ClassificationDataset::from_f32(vec![0.0; targets.len() * 4], vec![4], targets.to_vec())
        .unwrap()
        .with_task_label(0);
    Experience::new(index, data, stream, 6)
}

impl World {
    fn new() -> Self {
        let device = Device::default();
        let model = LinearConfig::new(4, 4).init(&device);
        let exps = vec![
            experience(0, "train", &[0, 1, 0, 1]),
            experience(1, "train", &[2, 3, 2, 3]),
            experience(0, "test", &[0, 1, 0, 1]),
            experience(1, "test", &[2, 3, 2, 3]),
        ];
        let mut w = Self { device, model, exps, batches: Vec::new(), steps: Vec::new() };
        let specs: [BatchSpec; 8] = [
            (&[0, 1, 0, 1], &[0, 0, 0, 0], &[0, 0, 1, 1], 4, 0.75),
            (&[1, 0, 1], &[0, 0, 0], &[1, 0, 0], 4, 0.5),
            (&[2, 3, 2, 3], &[0, 0, 0, 0], &[2, 2, 3, 3], 4, 1.25),
            (&[3, 2, 3], &[0, 0, 0], &[3, 3, 3], 4, 0.3),
            (&[2, 3, 5, 3], &[0, 1, 1, 0], &[2, 3, 5, 1], 6, 0.9),
            (&[0, 1, 0, 1], &[0, 0, 0, 0], &[0, 1, 0, 0], 4, 0.2),
            (&[2, 3, 2, 3], &[0, 0, 0, 0], &[0, 3, 2, 1], 4, 1.5),
            (&[1, 1, 0], &[0, 0, 0], &[1, 0, 0], 4, 0.4),
        ];
        for (y, t, pred, width, loss) in specs {
            w.batches.push(w.batch(y, t, pred, width, loss));
        }
        let mut counter = 0usize;
        let mut next = |of: &[usize]| {
            counter += 1;
            of[counter % of.len()]
        };
        let mut steps = Vec::new();
        let eval = |steps: &mut Vec<Step>, next: &mut dyn FnMut(&[usize]) -> usize| {
            let s = |cb, exp, batch| Step { cb, training: false, exp, batch };
            steps.push(s(Callback::BeforeEval, 2, None));
            for (exp, pool) in [(2, [0usize, 1, 5, 7]), (3, [2, 3, 6, 6])] {
                steps.push(s(Callback::BeforeEvalExp, exp, None));
                for _ in 0..2 {
                    let b = next(&pool);
                    steps.push(s(Callback::BeforeEvalIteration, exp, None));
                    steps.push(s(Callback::AfterEvalIteration, exp, Some(b)));
                }
                steps.push(s(Callback::AfterEvalExp, exp, None));
            }
            steps.push(s(Callback::AfterEval, 3, None));
        };
        let train = |steps: &mut Vec<Step>, exp: usize, pool: &[usize], next: &mut dyn FnMut(&[usize]) -> usize| {
            let s = |cb, batch| Step { cb, training: true, exp, batch };
            steps.push(s(Callback::BeforeTrainingExp, None));
            for _ in 0..2 {
                steps.push(s(Callback::BeforeTrainingEpoch, None));
                for _ in 0..2 {
                    let b = next(pool);
                    steps.push(s(Callback::BeforeTrainingIteration, None));
                    steps.push(s(Callback::AfterForward, Some(b)));
                    steps.push(s(Callback::AfterTrainingIteration, Some(b)));
                }
                steps.push(s(Callback::AfterTrainingEpoch, None));
            }
            steps.push(s(Callback::AfterTrainingExp, None));
        };
        eval(&mut steps, &mut next);
        steps.push(Step { cb: Callback::BeforeTraining, training: true, exp: 0, batch: None });
        eval(&mut steps, &mut next);
        train(&mut steps, 0, &[0, 1, 5, 7], &mut next);
        eval(&mut steps, &mut next);
        train(&mut steps, 1, &[2, 4, 3, 6], &mut next);
        eval(&mut steps, &mut next);
        steps.push(Step { cb: Callback::AfterTraining, training: true, exp: 1, batch: None });
        eval(&mut steps, &mut next);
        w.steps = steps;
        w
    }

    fn batch(&self, y: &[u32], t: &[u32], pred: &[u32], width: usize, loss: f32) -> (MiniBatch, Tensor<2>, Tensor<1>) {
        let n = y.len();
        let ints = |v: &[u32]| {
            Tensor::<1, Int>::from_data(
                TensorData::new(v.iter().map(|&x| x as i64).collect::<Vec<_>>(), [n]),
                &self.device,
            )
        };
        let batch = MiniBatch {
            x: Tensor::zeros([n, 4], &self.device),
            y: ints(y),
            t: ints(t),
            targets: y.to_vec(),
            task_labels: t.to_vec(),
            sample_shape: Arc::from(vec![4usize]),
        };
        let mut logits = vec![0.0f32; n * width];
        for (i, &p) in pred.iter().enumerate() {
            logits[i * width + p as usize] = 5.0;
            logits[i * width + (p as usize + 1) % width] = 1.0 + i as f32;
        }
        let out = Tensor::from_data(TensorData::new(logits, [n, width]), &self.device);
        (batch, out, Tensor::from_data(TensorData::new(vec![loss], [1]), &self.device))
    }

    /// Runs `steps` on `eval`, advancing `clock`.
    fn run(&self, eval: &mut EvaluationPlugin, clock: &mut Clock, steps: std::ops::Range<usize>) {
        for step in &self.steps[steps] {
            let exp = &self.exps[step.exp];
            let b = step.batch.map(|i| &self.batches[i]);
            let mut ctx = MetricContext::new(
                step.cb,
                step.training,
                *clock,
                Some(exp),
                b.map(|b| &b.0),
                b.map(|b| &b.1),
                b.map(|b| &b.2),
                &self.model,
            );
            ctx.dataset_len = Some(exp.dataset.len());
            ctx.mb_size = 4;
            ctx.train_epochs = 2;
            eval.process(&ctx).unwrap();
            clock.after(step.cb);
        }
    }
}

/// The state of `eval`, through its binary encoding (as a checkpoint stores it).
fn save(eval: &mut EvaluationPlugin) -> StateDict {
    let mut state = StateDict::new("evaluator");
    eval.save_state(&mut state).unwrap();
    StateDict::from_bytes(&state.to_bytes(), "evaluator").unwrap()
}

/// Whether two histories are the same: names, steps, data, and values to the bit (any two NaNs
/// equal: the history itself goes through JSON, where NaN is `null`).
fn same(a: &[MetricValue], b: &[MetricValue]) -> Result<(), String> {
    if a.len() != b.len() {
        let names = |h: &[MetricValue]| h.iter().map(|v| v.name.clone()).collect::<Vec<_>>();
        return Err(format!("{} values vs {}:\n{:?}\n{:?}", a.len(), b.len(), names(a), names(b)));
    }
    for (x, y) in a.iter().zip(b) {
        let value = x.value.to_bits() == y.value.to_bits() || (x.value.is_nan() && y.value.is_nan());
        if x.name != y.name || x.x_plot != y.x_plot || !value || format!("{:?}", x.data) != format!("{:?}", y.data) {
            return Err(format!("{x:?} vs {y:?}"));
        }
    }
    Ok(())
}

/// Every family whose values do not depend on the wall clock, some in two configurations.
fn deterministic_metrics() -> EvaluationConfig {
    let all = Granularity { minibatch: false, ..Granularity::ALL };
    EvaluationConfig::default().with_metrics(vec![
        MetricConfig::Accuracy(
            AccuracyConfig::default()
                .with_accuracy(Granularity::ALL)
                .with_loss(Granularity::ALL)
                .with_running_accuracy(true)
                .with_running_loss(true)
                .with_trained_experience(true)
                .with_task_aware(true),
        ),
        MetricConfig::Topk(TopkConfig::new(2).with_granularity(Granularity::ALL)),
        MetricConfig::ClassAccuracy(ClassAccuracyConfig::default().with_granularity(all)),
        MetricConfig::Amca(AmcaConfig::default()),
        MetricConfig::Amca(AmcaConfig::default().with_streams(AmcaStreams::All)),
        MetricConfig::Forgetting(TransferConfig::default()),
        MetricConfig::Bwt(TransferConfig::default()),
        MetricConfig::ForwardTransfer(TransferConfig::default()),
        MetricConfig::AccuracyMatrix,
        MetricConfig::ConfusionMatrix(ConfusionMatrixConfig::default()),
        MetricConfig::ConfusionMatrix(ConfusionMatrixConfig::default().with_num_classes(8)),
        MetricConfig::ModelSize,
        MetricConfig::Mac(MacConfig::default().with_granularity(Granularity { stream: false, ..Granularity::ALL })),
    ])
}

/// The families that read the wall clock or the process: their values differ from run to run,
/// but a resumed run emits the same values (names and steps) as the uninterrupted one.
fn clock_metrics() -> EvaluationConfig {
    EvaluationConfig::default().with_metrics(vec![
        MetricConfig::Timing(TimingConfig::default().with_granularity(Granularity::ALL).with_running_epoch(true)),
        MetricConfig::MaxRam(MaxRamConfig::default().with_granularity(Granularity::ALL).with_every(0.001)),
        MetricConfig::CpuUsage(CpuUsageConfig::default().with_granularity(Granularity::ALL)),
    ])
}

#[test]
fn every_metric_resumed_at_any_callback_continues_bit_identically() {
    let w = World::new();
    let n = w.steps.len();
    let config = deterministic_metrics();
    let mut reference = config.build().unwrap();
    let mut clock = Clock::default();
    w.run(&mut reference, &mut clock, 0..n);
    let full = reference.history().to_vec();
    assert!(full.len() > 200, "{}", full.len());

    // The families whose values after a cut depend on the saved state (all but ModelSize).
    let stateful = [
        "Top1_Acc_Epoch",
        "Top1_RunningAcc_Epoch",
        "Top1_Acc_Stream",
        "Accuracy_On_Trained_Experiences",
        "Topk_2_Acc_Epoch",
        "Top1_ClassAcc_Stream",
        "Top1_AMCA_Stream",
        "ExperienceForgetting",
        "ExperienceBWT",
        "StreamForwardTransfer",
        "EvalStream",
        "ConfusionMatrix_Stream",
        "MAC_Epoch",
    ];
    let mut differs_without_state = std::collections::BTreeSet::new();

    let mut first = config.build().unwrap();
    let mut clock = Clock::default();
    for cut in 0..=n {
        if cut > 0 {
            w.run(&mut first, &mut clock, cut - 1..cut);
        }
        let state = save(&mut first);
        let emitted = first.history().len();

        let mut resumed = config.build().unwrap();
        resumed.load_state(&state).unwrap();
        let mut c = clock;
        w.run(&mut resumed, &mut c, cut..n);
        same(resumed.history(), &full)
            .unwrap_or_else(|e| panic!("resumed after step {cut} ({:?}): {e}", w.steps.get(cut)));

        // Without the state, a fresh evaluator goes wrong somewhere: the check has teeth.
        let mut fresh = config.build().unwrap();
        let mut c = clock;
        w.run(&mut fresh, &mut c, cut..n);
        for family in stateful {
            let pick = |h: &[MetricValue]| {
                h.iter().filter(|v| v.name.split('/').next() == Some(family)).cloned().collect::<Vec<_>>()
            };
            if same(&pick(fresh.history()), &pick(&full[emitted..])).is_err() {
                differs_without_state.insert(family);
            }
        }
    }
    assert_eq!(differs_without_state.into_iter().collect::<Vec<_>>(), {
        let mut s = stateful.to_vec();
        s.sort();
        s
    });
}

#[test]
fn clock_metrics_resumed_emit_what_the_uninterrupted_run_emits() {
    let w = World::new();
    let n = w.steps.len();
    let config = clock_metrics();
    let mut reference = config.build().unwrap();
    let mut clock = Clock::default();
    w.run(&mut reference, &mut clock, 0..n);
    let names = |h: &[MetricValue]| h.iter().map(|v| (v.name.clone(), v.x_plot)).collect::<Vec<_>>();
    let full = names(reference.history());
    for cut in (0..=n).step_by(3) {
        let mut first = config.build().unwrap();
        let mut clock = Clock::default();
        w.run(&mut first, &mut clock, 0..cut);
        let state = save(&mut first);
        drop(first);
        let mut resumed = config.build().unwrap();
        resumed.load_state(&state).unwrap();
        w.run(&mut resumed, &mut clock, cut..n);
        assert_eq!(names(resumed.history()), full, "resumed after step {cut}");
        assert!(resumed.history().iter().all(|v| v.value.is_finite() && v.value >= 0.0));
    }
}

#[test]
fn timing_carries_the_open_periods_and_the_running_mean_over_a_resume() {
    let w = World::new();
    // Cut in the first epoch of experience 0, after its first iteration.
    let cut = w.steps.iter().position(|s| s.cb == Callback::AfterTrainingIteration).map(|i| i + 1).unwrap();
    let end_of_epoch = cut + w.steps[cut..].iter().position(|s| s.cb == Callback::AfterTrainingEpoch).unwrap() + 1;
    let config = TimingConfig::default().with_granularity(Granularity::ALL).with_running_epoch(true);
    let mut first = EvaluationPlugin::empty().metric(Timing::new(config));
    let mut clock = Clock::default();
    w.run(&mut first, &mut clock, 0..cut);
    let running: Vec<f64> =
        first.history().iter().filter(|v| v.name.starts_with("RunningTime_Epoch")).map(|v| v.value).collect();
    let last_mb = first.history().iter().rev().find(|v| v.name.starts_with("Time_MB")).unwrap().value;
    assert_eq!(running.len(), 1);
    std::thread::sleep(std::time::Duration::from_millis(30));
    let state = save(&mut first);
    // The time between the save and the resume is not counted.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut resumed = EvaluationPlugin::empty().metric(Timing::new(config));
    resumed.load_state(&state).unwrap();
    w.run(&mut resumed, &mut clock, cut..end_of_epoch);
    let h = resumed.history();
    let epoch = h.iter().rfind(|v| v.name.starts_with("Time_Epoch")).unwrap().value;
    assert!((0.03..0.2).contains(&epoch), "the epoch's time counts the part before the save: {epoch}");
    // The running mean goes on over the saved iteration: the mean of the epoch's two iteration
    // times (the history, restored, holds the first).
    let second = h.iter().filter(|v| v.name.starts_with("RunningTime_Epoch")).nth(1).unwrap().value;
    let mbs: Vec<f64> = h.iter().filter(|v| v.name.starts_with("Time_MB")).map(|v| v.value).collect();
    assert_eq!(mbs.len(), 2);
    let want = (running[0] + mbs[1]) / 2.0;
    assert!((second - want).abs() < 1e-12 && mbs[0] == last_mb, "{second} vs {want}");
    // A checkpoint of another configuration does not load.
    let mut other = EvaluationPlugin::empty().metric(Timing::new(TimingConfig::default()));
    assert!(matches!(other.load_state(&state), Err(ClError::CheckpointMismatch { .. })));
}

#[test]
fn metric_checkpoints_check_the_configuration() {
    let w = World::new();
    let mut forgetting = EvaluationPlugin::empty().metric(Forgetting::new(TransferConfig::default()));
    w.run(&mut forgetting, &mut Clock::default(), 0..40);
    let state = save(&mut forgetting);
    let mut other = EvaluationPlugin::empty().metric(Forgetting::new(TransferConfig::default().with_stream(false)));
    let e = other.load_state(&state).unwrap_err();
    assert!(matches!(&e, ClError::CheckpointMismatch { what, .. } if what.contains("Forgetting")), "{e}");
    let mut cm =
        EvaluationPlugin::empty().metric(ConfusionMatrixMetric::new(ConfusionMatrixConfig::default()).unwrap());
    w.run(&mut cm, &mut Clock::default(), 0..5);
    let state = save(&mut cm);
    let mut other = EvaluationPlugin::empty()
        .metric(ConfusionMatrixMetric::new(ConfusionMatrixConfig::default().with_num_classes(9)).unwrap());
    assert!(matches!(other.load_state(&state), Err(ClError::CheckpointMismatch { .. })));
}

/// A writer into shared memory.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }
}

/// An evaluator with the deterministic metrics and every logger writing under `dir`.
fn logged(dir: &Path, plain: &Shared) -> EvaluationPlugin {
    let metrics = deterministic_metrics().metrics.iter().map(|m| m.build().unwrap()).collect();
    let loggers: Vec<Box<dyn Logger>> = vec![
        Box::new(JsonLinesLogger::new(dir.join("metrics.jsonl")).unwrap()),
        Box::new(CsvLogger::new(dir.join("csv")).unwrap()),
        Box::new(TextLogger::to_file(dir.join("log.txt")).unwrap()),
        Box::new(TensorBoardLogger::new(dir.join("tb")).unwrap()),
        Box::new(InteractiveLogger::plain(plain.clone())),
    ];
    EvaluationPlugin::with(metrics, loggers)
}

/// The logged files of `dir` (the TensorBoard events without their wall times), and that the
/// TensorBoard folder holds one file.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for f in ["metrics.jsonl", "csv/training_results.csv", "csv/eval_results.csv", "log.txt"] {
        out.push((f.to_string(), std::fs::read(dir.join(f)).unwrap()));
    }
    let tb: Vec<_> = std::fs::read_dir(dir.join("tb")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(tb.len(), 1, "{tb:?}");
    let read = read_events(&tb[0]).unwrap();
    assert_eq!(read.torn_last_record, None);
    let events: Vec<String> =
        read.events.iter().map(|e| format!("{} {:?} {:?}", e.step, e.file_version, e.scalars)).collect();
    out.push(("tb".into(), events.join("\n").into_bytes()));
    out
}

#[test]
fn file_loggers_resumed_after_a_kill_leave_the_uninterrupted_files() {
    let w = World::new();
    let n = w.steps.len();
    let root = tempfile::tempdir().unwrap();
    let plain = Shared::default();
    let mut reference = logged(&root.path().join("reference"), &plain);
    w.run(&mut reference, &mut Clock::default(), 0..n);
    drop(reference);
    let want = files(&root.path().join("reference"));
    let want_plain = plain.bytes();
    assert!(want.iter().all(|(_, bytes)| bytes.len() > 100), "{want:?}");
    let jsonl = read_json_lines(root.path().join("reference/metrics.jsonl")).unwrap();
    assert_eq!(jsonl.torn_last_line, None);
    assert!(jsonl.records.len() > 200);

    for cut in 0..=n {
        let dir = root.path().join(format!("cut{cut}"));
        // A run with files of an earlier run in its folder: they are replaced, not appended to.
        std::fs::create_dir_all(dir.join("csv")).unwrap();
        std::fs::write(dir.join("metrics.jsonl"), "{\"name\":\"old\",\"value\":1,\"x_plot\":0}\n").unwrap();
        std::fs::write(dir.join("csv/eval_results.csv"), "old\n").unwrap();
        let plain = Shared::default();
        let mut first = logged(&dir, &plain);
        let mut clock = Clock::default();
        w.run(&mut first, &mut clock, 0..cut);
        let state = save(&mut first);
        let plain_at_save = plain.bytes().len();
        // The killed run goes on a little after its checkpoint, and dies writing a record.
        w.run(&mut first, &mut clock.clone(), cut..(cut + 9).min(n));
        drop(first);
        let mut f = std::fs::OpenOptions::new().append(true).open(dir.join("metrics.jsonl")).unwrap();
        std::io::Write::write_all(&mut f, b"{\"name\":\"Top1_Acc_MB/train_ph").unwrap();

        let resumed_plain = Shared::default();
        let mut resumed = logged(&dir, &resumed_plain);
        resumed.load_state(&state).unwrap();
        w.run(&mut resumed, &mut clock, cut..n);
        drop(resumed);
        let got = files(&dir);
        for ((name, a), (_, b)) in got.iter().zip(&want) {
            assert!(
                a == b,
                "resumed after step {cut}: {name} differs:\n{}\n---\n{}",
                String::from_utf8_lossy(a),
                String::from_utf8_lossy(b)
            );
        }
        let mut printed = plain.bytes()[..plain_at_save].to_vec();
        printed.extend(resumed_plain.bytes());
        assert!(printed == want_plain, "resumed after step {cut}: the interactive logger's lines differ");
    }
}

#[test]
fn a_logger_built_on_an_existing_file_keeps_it_until_a_fresh_run_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.jsonl");
    let old = "{\"name\":\"a\",\"value\":0.5,\"x_plot\":3}\n";
    std::fs::write(&path, old).unwrap();
    let w = World::new();
    let mut eval = EvaluationPlugin::empty().logger(JsonLinesLogger::new(&path).unwrap());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), old, "building the logger truncates nothing");
    w.run(&mut eval, &mut Clock::default(), 0..1);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "", "the first callback of a fresh run starts the file");
}

#[test]
fn a_log_file_shorter_than_its_checkpoint_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.jsonl");
    let w = World::new();
    let mut eval = deterministic_metrics().build().unwrap().logger(JsonLinesLogger::new(&path).unwrap());
    w.run(&mut eval, &mut Clock::default(), 0..20);
    let state = save(&mut eval);
    drop(eval);
    std::fs::write(&path, "").unwrap();
    let mut resumed = deterministic_metrics().build().unwrap().logger(JsonLinesLogger::new(&path).unwrap());
    let e = resumed.load_state(&state).unwrap_err();
    assert!(matches!(e, ClError::CheckpointEntry { .. }) && e.to_string().contains(&path.display().to_string()), "{e}");
}

#[test]
fn read_json_lines_skips_and_reports_a_torn_last_line_with_its_number() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.jsonl");
    let a = "{\"name\":\"a\",\"value\":0.5,\"x_plot\":3}";
    let b = "{\"name\":\"b\",\"value\":null,\"x_plot\":4,\"data\":{\"kind\":\"matrix\",\"rows\":[[1.0,null]]}}";
    // Blank lines count in the numbering.
    std::fs::write(&path, format!("{a}\n\n{b}\n{a}\n{{\"name\":\"c\",\"val")).unwrap();
    let read = read_json_lines(&path).unwrap();
    assert_eq!(read.torn_last_line, Some(5));
    assert_eq!(read.records.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(), ["a", "b", "a"]);
    assert!(read.records[1].value.is_nan());
    // A whole last record without its newline is a record.
    std::fs::write(&path, format!("{a}\n{b}")).unwrap();
    let read = read_json_lines(&path).unwrap();
    assert_eq!((read.records.len(), read.torn_last_line), (2, None));
    // A bad line elsewhere is an error naming its true line (not "line 1").
    for (text, line) in [
        (format!("{a}\n{{\"name\":\"c\",\"val\n{a}\n"), "line 2 column"),
        (format!("{a}\n\n{a}\n{{\"name\": 1}}\n{a}"), "line 4 column"),
        // Ending with a newline, the last line was written whole: not a torn line.
        (format!("{a}\n{a}\n{{\"name\":\"c\"\n"), "line 3 column"),
    ] {
        std::fs::write(&path, &text).unwrap();
        let e = read_json_lines(&path).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        let msg = e.to_string();
        assert!(msg.contains(line) && msg.contains("m.jsonl") && !msg.contains("at line 1"), "{msg}");
    }
}

#[test]
fn read_events_skips_and_reports_a_torn_last_record() {
    let dir = tempfile::tempdir().unwrap();
    let w = World::new();
    let tb = TensorBoardLogger::new(dir.path()).unwrap();
    let path = tb.path().to_path_buf();
    let mut eval = EvaluationPlugin::empty().metric(Forgetting::new(TransferConfig::default())).logger(tb);
    w.run(&mut eval, &mut Clock::default(), 0..w.steps.len());
    drop(eval);
    let whole = read_events(&path).unwrap();
    assert_eq!(whole.torn_last_record, None);
    let bytes = std::fs::read(&path).unwrap();
    // The offset of the last record: the sum of the lengths of the others.
    let mut offsets = vec![0u64];
    let mut at = 0usize;
    while at < bytes.len() {
        let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        at += 16 + len;
        offsets.push(at as u64);
    }
    let last = offsets[offsets.len() - 2];
    for cut in [1, 11, 12, 20, bytes.len() as u64 - last - 1] {
        let torn = dir.path().join("torn");
        std::fs::write(&torn, &bytes[..(last + cut) as usize]).unwrap();
        let read = read_events(&torn).unwrap();
        assert_eq!(read.torn_last_record, Some(last), "cut {cut}");
        assert_eq!(read.events, whole.events[..whole.events.len() - 1]);
    }
    // A corrupted record is still an error.
    let mut bad = bytes.clone();
    bad[(last + 14) as usize] ^= 0x55;
    std::fs::write(dir.path().join("bad"), &bad).unwrap();
    let e = read_events(dir.path().join("bad")).unwrap_err();
    assert!(e.to_string().contains(&format!("byte {last}")), "{e}");
}

#[test]
fn f64_values_of_a_checkpoint_read_back_to_the_bit() {
    // serde_json parses floats exactly only with its `float_roundtrip` feature (the workspace
    // enables it): without it, 0.40000001589457196 (a loss of 1.2f32 / 3) read back 1 ULP off,
    // and a resumed history differed from the uninterrupted one.
    let values = [0.40000001589457196, 0.1 + 0.2, 1.0 / 3.0, 2.0f64.powi(-1074), f64::MAX, 123456.789e-300];
    let mut state = StateDict::new("test");
    state.put("values", &values).unwrap();
    let back: Vec<f64> = StateDict::from_bytes(&state.to_bytes(), "test").unwrap().get("values").unwrap();
    assert_eq!(back.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), values.map(f64::to_bits));
    let history = vec![MetricValue::scalar("Loss_MB/train_phase/train_stream/Task000", values[0], 2)];
    let json = serde_json::to_string(&history).unwrap();
    assert_eq!(EvaluationPlugin::history_from_json(&json).unwrap()[0].value.to_bits(), values[0].to_bits());
}
