//! A real strategy run with every metric and logger: `train`/`eval` return the last values,
//! the history is complete and the loggers' files are written.

use cl::core::data::ClassificationDataset;
use cl::core::{Experience, Stream};
use cl::metrics::{read_events, read_json_lines};
use cl::prelude::*;

fn generated(n: usize, classes: &[u32], shift: usize) -> ClassificationDataset {
    let inputs: Vec<f32> = (0..n * 4).map(|i| (((i + shift) * 37 % 11) as f32) / 11.0).collect();
    let targets: Vec<u32> = (0..n).map(|i| classes[i % classes.len()]).collect();
    ClassificationDataset::from_f32(inputs, vec![4], targets).unwrap()
}

fn stream(name: &str, shift: usize) -> Stream {
    let exps = (0..2)
        .map(|e| {
            let c = 2 * e as u32;
            Experience::new(e, generated(24, &[c, c + 1], shift), name, 4)
        })
        .collect();
    Stream::new(name, exps)
}

#[test]
fn naive_with_all_metrics_and_loggers() {
    let dir = std::env::temp_dir().join(format!("cl-metrics-strategy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let evaluator = cl::metrics::all_metrics()
        .logger(CsvLogger::new(dir.join("csv")).unwrap())
        .logger(JsonLinesLogger::new(dir.join("metrics.jsonl")).unwrap())
        .logger(TensorBoardLogger::new(dir.join("tb")).unwrap())
        .logger(TextLogger::to_file(dir.join("log.txt")).unwrap())
        .logger(InteractiveLogger::plain(std::io::sink()));
    let model = SimpleMlpConfig::new()
        .with_input_size(4)
        .with_hidden_size(8)
        .with_num_classes(4)
        .with_drop_rate(0.0)
        .init(&cl::default_device())
        .unwrap();
    let mut strategy = Naive::builder(model, OptimizerSpec::sgd(0.1), cl::default_device(), NaiveConfig::default())
        .unwrap()
        .train_mb_size(8)
        .train_epochs(2)
        .eval_mb_size(16)
        .evaluator(evaluator)
        .build()
        .unwrap();
    let (train, test) = (stream("train", 0), stream("test", 5));
    // The evaluation before training that forward transfer needs.
    strategy.eval(&test).unwrap();
    for exp in train.experiences() {
        let r = strategy.train(exp).unwrap();
        assert!(r.contains_key("Top1_Acc_Epoch/train_phase/train_stream/Task000"));
        let r = strategy.eval(&test).unwrap();
        for key in [
            "Top1_Acc_Stream/eval_phase/test_stream/Task000",
            "StreamForgetting/eval_phase/test_stream",
            "StreamForwardTransfer/eval_phase/test_stream",
            "ConfusionMatrix_Stream/eval_phase/test_stream",
            "Time_Stream/eval_phase/test_stream/Task000",
        ] {
            assert!(r.contains_key(key), "missing {key}");
        }
        // 48 evaluated samples in the confusion matrix.
        assert_eq!(r["ConfusionMatrix_Stream/eval_phase/test_stream"], 48.0);
    }
    let e = strategy.evaluator_as::<EvaluationPlugin>().unwrap();
    let h = e.history();
    // SimpleMlp 4 -> 8 -> 4: 4*8 + 8*4 MACs per sample, 8*4+8 + 4*8+4 = 76 parameters.
    assert_eq!(crate::support::value(h, "MAC_Epoch/train_phase/train_stream/Task000"), 64.0);
    assert_eq!(crate::support::value(h, "ModelParams_Exp/train_phase/train_stream/Task000/Exp001"), 76.0);
    // Every training epoch and evaluated experience reached the files.
    let csv = std::fs::read_to_string(dir.join("csv/training_results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 2);
    let eval_csv = std::fs::read_to_string(dir.join("csv/eval_results.csv")).unwrap();
    assert_eq!(eval_csv.lines().count(), 1 + 3 * 2);
    let jsonl = read_json_lines(dir.join("metrics.jsonl")).unwrap();
    assert_eq!((jsonl.records.len(), jsonl.torn_last_line), (h.len(), None));
    let tb_file = std::fs::read_dir(dir.join("tb")).unwrap().next().unwrap().unwrap().path();
    let scalars: usize = read_events(&tb_file).unwrap().events.iter().map(|e| e.scalars.len()).sum();
    assert_eq!(scalars, h.iter().filter(|v| v.data.is_none()).count());
    assert!(std::fs::read_to_string(dir.join("log.txt")).unwrap().contains("-- >> End of eval phase << --"));

    // The pictures of the run: the history and the JSON-lines file both render (cl-report reads
    // what cl-metrics writes).
    let history = dir.join("history.json");
    std::fs::write(&history, e.history_json()).unwrap();
    for file in [history, dir.join("metrics.jsonl")] {
        let out = dir.join("pictures").join(file.file_stem().unwrap());
        let pictures = cl::report::render_history_file(&file, &out).unwrap();
        assert_eq!(pictures.len(), 2, "accuracy matrix and curves from {file:?}");
        for p in pictures {
            let png = std::fs::read(&p.png).unwrap();
            assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000, "{:?}", p.png);
            let svg = std::fs::read_to_string(&p.svg).unwrap();
            assert!(svg.contains("<svg") && svg.contains("exp 1"), "{:?}", p.svg);
        }
    }
}
