//! Rendering from small hand-made results files: the PNGs decode to the expected size and are
//! not blank, the SVGs parse as XML and hold the expected labels, and the accuracy matrix derived
//! from a history equals the hand-computed one.

use std::fs;
use std::path::Path;

use cl_report::{
    AccuracyCurves, Pictures, ReportError, ResultsKind, detect_kind, parse_history, parse_strategies,
    render_history_file, render_results_file, render_strategies_file,
};

/// Two experiences, Avalanche names as `EvaluationPlugin` writes them: an evaluation before
/// training (x 0), then one after each experience (x 50, x 100), with training, loss and stream
/// values mixed in and an extra field (`data`) that must be ignored.
const HISTORY: &str = r#"[
  {"name": "Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000", "value": 0.10, "x_plot": 0},
  {"name": "Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp001", "value": 0.12, "x_plot": 0},
  {"name": "Top1_Acc_Epoch/train_phase/train_stream/Task000", "value": 0.80, "x_plot": 50},
  {"name": "Loss_Epoch/train_phase/train_stream/Task000", "value": 0.60, "x_plot": 50},
  {"name": "Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000", "value": 0.96, "x_plot": 50},
  {"name": "Loss_Exp/eval_phase/test_stream/Task000/Exp000", "value": 0.10, "x_plot": 50},
  {"name": "Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp001", "value": 0.02, "x_plot": 50},
  {"name": "Top1_Acc_Stream/eval_phase/test_stream/Task000", "value": 0.49, "x_plot": 50},
  {"name": "ConfusionMatrix_Stream/eval_phase/test_stream", "value": 200, "x_plot": 50, "data": {"kind": "confusion_matrix", "counts": [[1, 0], [0, 1]]}},
  {"name": "Top1_Acc_Epoch/train_phase/train_stream/Task000", "value": 0.85, "x_plot": 100},
  {"name": "Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000", "value": 0.40, "x_plot": 100},
  {"name": "Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp001", "value": 0.90, "x_plot": 100},
  {"name": "Top1_Acc_Stream/eval_phase/test_stream/Task000", "value": 0.65, "x_plot": 100}
]"#;

/// Strategy records as `cargo xtask bench` writes them (trimmed), with a null forgetting
/// (JointTraining) and a failed run.
const STRATEGIES: &str = r#"[
  {"benchmark": "SplitFMNIST", "strategy": "Naive", "hyperparameters": "", "final_average_accuracy": 0.1975, "forgetting": 0.932, "wall_time_s": 4.5, "accuracy_matrix": [[1.0]], "error": null, "seed": 1},
  {"benchmark": "SplitFMNIST", "strategy": "JointTraining", "final_average_accuracy": 0.84, "forgetting": null, "wall_time_s": 3.0, "error": null},
  {"benchmark": "SplitFMNIST", "strategy": "EWC", "final_average_accuracy": 0.10, "forgetting": 0.73, "wall_time_s": 5.0, "error": null},
  {"benchmark": "PermutedFMNIST", "strategy": "Naive", "final_average_accuracy": 0.77, "forgetting": 0.09, "wall_time_s": 6.0, "error": null},
  {"benchmark": "PermutedFMNIST", "strategy": "GEM", "final_average_accuracy": null, "forgetting": null, "wall_time_s": null, "error": "panicked: boom"}
]"#;

/// Decodes `path` as PNG: (width, height, number of distinct colours).
fn decode_png(path: &Path) -> (u32, u32, usize) {
    let bytes = fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{} lacks the PNG signature", path.display());
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let pixels = &buf[..info.buffer_size()];
    let mut colours: Vec<&[u8]> = pixels.chunks_exact(3).collect();
    colours.sort_unstable();
    colours.dedup();
    (info.width, info.height, colours.len())
}

/// Parses `path` as XML: the root element's name and `width`/`height`, and all text content.
fn parse_svg(path: &Path) -> (String, u32, u32, String) {
    let file = fs::File::open(path).unwrap();
    let (mut root, mut size, mut text) = (None, (0, 0), String::new());
    for event in xml::reader::EventReader::new(std::io::BufReader::new(file)) {
        match event.unwrap_or_else(|e| panic!("{} is not XML: {e}", path.display())) {
            xml::reader::XmlEvent::StartElement { name, attributes, .. } if root.is_none() => {
                let get =
                    |key: &str| attributes.iter().find(|a| a.name.local_name == key).unwrap().value.parse().unwrap();
                size = (get("width"), get("height"));
                root = Some(name.local_name);
            }
            xml::reader::XmlEvent::Characters(t) => {
                text.push_str(t.trim());
                text.push('\n');
            }
            _ => {}
        }
    }
    (root.unwrap(), size.0, size.1, text)
}

/// Checks both files of `p`: same size, PNG not blank, SVG labels present.
fn check_pictures(p: &Pictures, labels: &[&str]) {
    let (w, h, colours) = decode_png(&p.png);
    assert!(w >= 400 && h >= 300, "{}: {w}×{h}", p.png.display());
    assert!(colours > 20, "{} looks blank: {colours} colours", p.png.display());
    let (root, sw, sh, text) = parse_svg(&p.svg);
    assert_eq!((root.as_str(), sw, sh), ("svg", w, h));
    for label in labels {
        assert!(text.contains(label), "{} lacks `{label}`; its text:\n{text}", p.svg.display());
    }
}

#[test]
fn matrix_from_history_is_the_hand_computed_one() {
    let history = parse_history(HISTORY, Path::new("h.json")).unwrap();
    let m = cl_report::matrix_from_history(&history, "test").unwrap();
    // Rows: the eval phases after training (x 50, x 100); the x-0 evaluation is not a row.
    assert_eq!(m.measured_rows(), vec![vec![Some(0.96), Some(0.02)], vec![Some(0.40), Some(0.90)]]);
    assert_eq!(m.x_plot(), &[50, 100]);
    assert!((m.final_average_accuracy().unwrap() - 0.65).abs() < 1e-12);
    assert!((m.forgetting().unwrap() - 0.56).abs() < 1e-12); // R[0][0] − R[1][0]
    let c = AccuracyCurves::from_history(&history, "test");
    assert_eq!(
        c.experiences(),
        &[(0, vec![(0, 0.10), (50, 0.96), (100, 0.40)]), (1, vec![(0, 0.12), (50, 0.02), (100, 0.90)])]
    );
    assert_eq!(c.stream(), &[(50, 0.49), (100, 0.65)]);
}

#[test]
fn history_file_gives_heatmap_and_curves() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.json");
    fs::write(&path, HISTORY).unwrap();
    let out = dir.path().join("pictures");
    let written = render_history_file(&path, &out).unwrap();
    assert_eq!(written.len(), 2);
    assert_eq!(written[0].png, out.join("run_accuracy_matrix.png"));
    assert_eq!(written[1].svg, out.join("run_accuracy_curves.svg"));
    check_pictures(
        &written[0],
        &[
            "Accuracy matrix — run",
            "0.960",
            "0.020",
            "0.400",
            "0.900",
            "exp 0",
            "exp 1",
            "after exp 1",
            "forgetting 0.560",
        ],
    );
    check_pictures(&written[1], &["training iterations", "top-1 accuracy", "exp 0", "exp 1", "whole stream"]);
    assert_eq!(render_results_file(&path, &out).unwrap(), written);

    // The same history as JSON Lines (the JSON Lines logger of cl-metrics) gives the same pictures.
    let values: Vec<serde_json::Value> = serde_json::from_str(HISTORY).unwrap();
    let lines: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    let jsonl = dir.path().join("run.jsonl");
    fs::write(&jsonl, lines.join("\n") + "\n").unwrap();
    assert_eq!(detect_kind(&fs::read_to_string(&jsonl).unwrap(), &jsonl).unwrap(), ResultsKind::History);
    let again = render_results_file(&jsonl, &out).unwrap();
    assert_eq!(again, written);
}

#[test]
fn strategies_file_gives_bar_chart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strategies.json");
    fs::write(&path, STRATEGIES).unwrap();
    let p = render_strategies_file(&path, dir.path()).unwrap();
    assert_eq!(p.png, dir.path().join("strategies.png"));
    check_pictures(
        &p,
        &[
            "SplitFMNIST",
            "PermutedFMNIST",
            "Naive",
            "JointTraining",
            "EWC",
            "GEM",
            "0.20",
            "0.93",
            "n/a",
            "failed",
            "forgetting",
        ],
    );
    assert_eq!(parse_strategies(STRATEGIES, &path).unwrap().len(), 5);
    assert_eq!(render_results_file(&path, dir.path()).unwrap(), vec![p]);
}

#[test]
fn kinds_are_told_apart() {
    let p = Path::new("x.json");
    assert_eq!(detect_kind(HISTORY, p).unwrap(), ResultsKind::History);
    assert_eq!(detect_kind(STRATEGIES, p).unwrap(), ResultsKind::Strategies);
    assert!(matches!(detect_kind("[]", p), Err(ReportError::NoData { .. })));
    assert!(matches!(detect_kind(r#"[{"a": 1}]"#, p), Err(ReportError::Parse { .. })));
}

#[test]
fn bad_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let e = render_results_file(&missing, dir.path()).unwrap_err();
    assert!(matches!(e, ReportError::Read { .. }) && e.to_string().contains("missing.json"), "{e}");

    let corrupt = dir.path().join("corrupt.json");
    fs::write(&corrupt, "[{\"name\": \"Top1_Acc_Exp/eval_phase/test_stream/Exp000\", \"value\": 0.5,").unwrap();
    let e = render_results_file(&corrupt, dir.path()).unwrap_err();
    assert!(matches!(e, ReportError::Parse { .. }) && e.to_string().contains("corrupt.json"), "{e}");
    let e = render_history_file(&corrupt, dir.path()).unwrap_err();
    assert!(e.to_string().contains("metric history"), "{e}");

    let no_accuracy = dir.path().join("losses.json");
    fs::write(&no_accuracy, r#"[{"name": "Loss_Epoch/train_phase/train_stream/Task000", "value": 0.5, "x_plot": 3}]"#)
        .unwrap();
    let e = render_history_file(&no_accuracy, dir.path()).unwrap_err();
    assert!(matches!(e, ReportError::NoData { .. }) && e.to_string().contains("losses.json"), "{e}");

    let corrupt_index = dir.path().join("huge.json");
    fs::write(
        &corrupt_index,
        r#"[{"name": "Top1_Acc_Exp/eval_phase/test_stream/Exp4000000000", "value": 0.5, "x_plot": 3}]"#,
    )
    .unwrap();
    let e = render_history_file(&corrupt_index, dir.path()).unwrap_err();
    assert!(matches!(e, ReportError::TooLarge { .. }) && e.to_string().contains("huge.json"), "{e}");
    let many: Vec<String> = (0..400)
        .map(|j| {
            format!(r#"{{"name": "Top1_Acc_Exp/eval_phase/test_stream/Exp{j:03}", "value": 0.5, "x_plot": {}}}"#, 1 + j)
        })
        .collect();
    let wide = dir.path().join("wide.json");
    fs::write(&wide, format!("[{}]", many.join(","))).unwrap();
    let e = render_history_file(&wide, dir.path()).unwrap_err(); // 400 × 400 cells: 40 030 × 28 250 pixels
    assert!(matches!(e, ReportError::TooLarge { .. }) && e.to_string().contains("pixels"), "{e}");

    let empty = dir.path().join("empty.json");
    fs::write(&empty, "[]").unwrap();
    assert!(matches!(render_strategies_file(&empty, dir.path()), Err(ReportError::NoData { .. })));
    // Nothing was written for the bad files.
    let pictures: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x != "json"))
        .collect();
    assert!(pictures.is_empty(), "{pictures:?}");
}

#[test]
fn a_single_evaluation_still_renders() {
    // Evaluation before any training only: no matrix row, but a curve.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("start.json");
    fs::write(&path, r#"[{"name": "Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000", "value": 0.1, "x_plot": 0}]"#)
        .unwrap();
    let written = render_history_file(&path, dir.path()).unwrap();
    assert_eq!(written.len(), 1);
    check_pictures(&written[0], &["exp 0"]);
}
