//! The loggers' files: CSV exactly as Avalanche's `CSVLogger` writes it, JSON lines and
//! TensorBoard events that read back to the emitted values, Avalanche's text output.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::support::*;
use cl::core::Callback;
use cl::core::evaluation::{AccuracyConfig, AccuracyMetrics, EvaluationPlugin};
use cl::metrics::{
    CsvLogger, Forgetting, InteractiveLogger, JsonLinesLogger, TensorBoardLogger, TextLogger, TransferConfig,
    read_events, read_json_lines,
};

fn out_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cl-loggers-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A writer into shared memory.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn evaluator() -> EvaluationPlugin {
    EvaluationPlugin::empty()
        .metric(AccuracyMetrics::new(AccuracyConfig::default()))
        .metric(Forgetting::new(TransferConfig::default()))
}

/// Initial evaluation; experience 0 trained with a validation run inside training; evaluation;
/// experience 1 trained for two epochs; evaluation.
fn run(d: &mut Driver) {
    let t0 = experience(0, "test", &[0, 1, 0, 1], 0, 4);
    let t1 = experience(1, "test", &[2, 3, 2, 3], 0, 4);
    // Accuracy 1/4 and 2/4, loss 2.0.
    d.eval_stream(&[(&t0, vec![0, 0, 1, 0], 2.0), (&t1, vec![2, 3, 3, 2], 2.0)], 4);
    let e0 = experience(0, "train", &[0, 1], 0, 4);
    // Validation inside training (periodic evaluation): 3/4, loss 0.25.
    d.call(Callback::BeforeTraining, true, None, None);
    d.eval_stream(&[(&t0, vec![0, 1, 0, 0], 0.25)], 4);
    // One epoch: 2 batches, 3/4 then 1/2 right, losses 0.5 and 1.0.
    d.train(&e0, &[vec![(vec![0, 1, 0, 1], vec![0, 1, 0, 0], 0.5), (vec![0, 1], vec![0, 0], 1.0)]], 4);
    d.eval_stream(&[(&t0, vec![0, 1, 0, 1], 0.125), (&t1, vec![0, 0, 0, 0], 3.0)], 4);
    let e1 = experience(1, "train", &[2, 3], 0, 4);
    d.train(&e1, &[vec![(vec![2, 3], vec![2, 3], 0.5)], vec![(vec![2, 3], vec![2, 2], 0.75)]], 4);
    d.eval_stream(&[(&t0, vec![0, 1, 1, 1], 1.5), (&t1, vec![2, 3, 2, 3], 0.0625)], 4);
}

#[test]
fn csv_logger_writes_avalanches_files() {
    let dir = out_dir("csv");
    let mut d = Driver::new(evaluator().logger(CsvLogger::new(dir.join("csvlogs")).unwrap()));
    run(&mut d);
    let training = std::fs::read_to_string(dir.join("csvlogs/training_results.csv")).unwrap();
    let eval = std::fs::read_to_string(dir.join("csvlogs/eval_results.csv")).unwrap();
    // Epoch 0 of experience 0 (4 of 6 right; loss (0.5*4 + 1.0*2)/6), with the
    // validation values of the evaluation run inside training; experience 1's epochs 0 and 1.
    assert_eq!(
        training,
        "training_exp,epoch,training_accuracy,val_accuracy,training_loss,val_loss\n\
         0,0,0.6667,0.7500,0.6667,0.2500\n\
         1,0,1.0000,0.7500,0.5000,0.2500\n\
         1,1,0.5000,0.7500,0.7500,0.2500\n"
    );
    // Before training: training_exp None; forgetting 0 until an experience has an initial and a
    // last value (experience 0 after training experience 1: 1.0 - 0.75).
    assert_eq!(
        eval,
        "eval_exp,training_exp,eval_accuracy,eval_loss,forgetting\n\
         0,None,0.2500,2.0000,0\n\
         1,None,0.5000,2.0000,0\n\
         0,0,1.0000,0.1250,0\n\
         1,0,0.0000,3.0000,0\n\
         0,1,0.7500,1.5000,0.2500\n\
         1,1,1.0000,0.0625,0\n"
    );
}

#[test]
fn json_lines_and_tensorboard_read_back_to_the_history() {
    let dir = out_dir("jsonl-tb");
    let tb = TensorBoardLogger::new(dir.join("tb")).unwrap();
    let tb_path = tb.path().to_path_buf();
    assert!(tb_path.file_name().unwrap().to_str().unwrap().starts_with("events.out.tfevents."));
    let eval = cl::metrics::all_metrics().logger(JsonLinesLogger::new(dir.join("metrics.jsonl")).unwrap()).logger(tb);
    let mut d = Driver::new(eval);
    run(&mut d);
    d.eval.flush().unwrap();
    let history = d.eval.history().to_vec();
    assert!(history.len() > 50);

    let back = read_json_lines(dir.join("metrics.jsonl")).unwrap();
    assert_eq!(back.torn_last_line, None);
    let back = back.records;
    assert_eq!(back.len(), history.len());
    for (a, b) in back.iter().zip(&history) {
        assert_eq!((&a.name, a.x_plot), (&b.name, b.x_plot));
        // (NaN != NaN: compare the matrices through their Debug text.)
        assert_eq!(format!("{:?}", a.data), format!("{:?}", b.data));
        assert!(a.value == b.value || (a.value.is_nan() && b.value.is_nan()), "{} {} {}", a.name, a.value, b.value);
    }

    let events = read_events(&tb_path).unwrap();
    assert_eq!(events.torn_last_record, None);
    let events = events.events;
    assert_eq!(events[0].file_version.as_deref(), Some("brain.Event:2"));
    let scalars: Vec<_> =
        events[1..].iter().flat_map(|e| e.scalars.iter().map(move |(tag, v)| (tag.clone(), *v, e.step))).collect();
    let want: Vec<_> = history
        .iter()
        .filter(|v| v.data.is_none())
        .map(|v| (v.name.clone(), v.value as f32, v.x_plot as i64))
        .collect();
    assert_eq!(scalars.len(), want.len());
    for (a, b) in scalars.iter().zip(&want) {
        assert_eq!((&a.0, a.2), (&b.0, b.2));
        assert!(a.1 == b.1 || (a.1.is_nan() && b.1.is_nan()));
    }
    // A corrupted byte is detected by the checksums.
    let mut bytes = std::fs::read(&tb_path).unwrap();
    let k = bytes.len() / 2;
    bytes[k] ^= 0x55;
    std::fs::write(dir.join("corrupt"), bytes).unwrap();
    assert!(read_events(dir.join("corrupt")).is_err());
}

#[test]
fn text_logger_and_plain_interactive_logger_print_avalanches_lines() {
    let dir = out_dir("text");
    let plain = Shared::default();
    let eval = evaluator()
        .logger(TextLogger::to_file(dir.join("log.txt")).unwrap())
        .logger(InteractiveLogger::plain(plain.clone()));
    let mut d = Driver::new(eval);
    run(&mut d);
    d.eval.flush().unwrap();
    let text = std::fs::read_to_string(dir.join("log.txt")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        &lines[..8],
        &[
            "-- >> Start of eval phase << --",
            "-- Starting eval on experience 0 (Task 0) from test stream --",
            "> Eval on experience 0 (Task 0) from test stream ended.",
            "\tLoss_Exp/eval_phase/test_stream/Task000/Exp000 = 2.0000",
            "\tTop1_Acc_Exp/eval_phase/test_stream/Task000/Exp000 = 0.2500",
            "-- Starting eval on experience 1 (Task 0) from test stream --",
            "> Eval on experience 1 (Task 0) from test stream ended.",
            "\tLoss_Exp/eval_phase/test_stream/Task000/Exp001 = 2.0000",
        ]
    );
    assert!(text.contains("-- >> Start of training phase << --\n"));
    assert!(text.contains("-- Starting training on experience 1 (Task 0) from train stream --\n"));
    assert!(text.contains("Epoch 1 ended.\n\tLoss_Epoch/train_phase/train_stream/Task000 = 0.7500\n\tTop1_Acc_Epoch/train_phase/train_stream/Task000 = 0.5000\n"));
    assert!(text.contains(
        "> Eval on experience 0 (Task 0) from test stream ended.\n\
         \tExperienceForgetting/eval_phase/test_stream/Task000/Exp000 = 0.2500\n\
         \tLoss_Exp/eval_phase/test_stream/Task000/Exp000 = 1.5000\n\
         \tTop1_Acc_Exp/eval_phase/test_stream/Task000/Exp000 = 0.7500\n"
    ));
    // Stream loss (1.5 * 4 + 0.0625 * 4) / 8 = 0.78125, written 0.7812 as Python does.
    assert!(text.ends_with(
        "-- >> End of eval phase << --\n\
         \tLoss_Stream/eval_phase/test_stream/Task000 = 0.7812\n\
         \tStreamForgetting/eval_phase/test_stream = 0.2500\n\
         \tTop1_Acc_Stream/eval_phase/test_stream/Task000 = 0.8750\n"
    ));
    // Without a terminal, the interactive logger prints the same lines and no bar.
    assert_eq!(plain.text(), text);
}
