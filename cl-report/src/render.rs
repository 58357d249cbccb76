//! The entry points: data → pictures, and results file → pictures.

use std::path::{Path, PathBuf};

use crate::curves::AccuracyCurves;
use crate::draw::bars::Bars;
use crate::draw::curves::Curves;
use crate::draw::heatmap::Heatmap;
use crate::draw::{Pictures, render};
use crate::error::{ReportError, Result};
use crate::history::{HISTORY_SHAPE, parse_history, read};
use crate::strategies::{StrategySummary, group_by_benchmark, parse_strategies};
use cl_core::evaluation::AccuracyMatrix;

/// The stream whose accuracies the history pictures show.
const STREAM: &str = "test";

/// Draws `matrix` as an annotated heatmap into `<stem>.png` and `<stem>.svg`.
///
/// # Errors
/// [`ReportError::NoData`] if the matrix has no measured cell; rendering or writing errors.
pub fn render_accuracy_matrix(matrix: &AccuracyMatrix, title: &str, stem: &Path) -> Result<Pictures> {
    if matrix.is_empty() {
        return Err(no_data(stem, "the accuracy matrix has no measured cell"));
    }
    render(&Heatmap { matrix, title: title.to_string() }, stem)
}

/// Draws `curves` (x: training iterations, y: accuracy, one line per experience, the stream
/// dashed) into `<stem>.png` and `<stem>.svg`.
///
/// # Errors
/// [`ReportError::NoData`] without any point; rendering or writing errors.
pub fn render_accuracy_curves(curves: &AccuracyCurves, title: &str, stem: &Path) -> Result<Pictures> {
    if curves.is_empty() {
        return Err(no_data(stem, "no accuracy value to plot"));
    }
    render(&Curves { curves, title: title.to_string() }, stem)
}

/// Draws final average accuracy and forgetting per strategy, one panel per benchmark, into
/// `<stem>.png` and `<stem>.svg`.
///
/// # Errors
/// [`ReportError::NoData`] without records; rendering or writing errors.
pub fn render_strategy_comparison(records: &[StrategySummary], title: &str, stem: &Path) -> Result<Pictures> {
    if records.is_empty() {
        return Err(no_data(stem, "no strategy record"));
    }
    render(&Bars { groups: group_by_benchmark(records), title: title.to_string() }, stem)
}

/// What a results file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultsKind {
    /// A metric history: an array of `{name, value, x_plot}`, or JSON Lines of them.
    History,
    /// Strategy records: an array of `{benchmark, strategy, ...}` (or one such object).
    Strategies,
}

/// Tells a history from strategy records by the fields of the first element (or of the object,
/// or of the first line of JSON Lines).
///
/// # Errors
/// [`ReportError::Parse`] if `json` is not JSON or is neither; [`ReportError::NoData`] for `[]`.
pub fn detect_kind(json: &str, origin: &Path) -> Result<ResultsKind> {
    let parse_error = |message: String| ReportError::Parse {
        path: origin.to_path_buf(),
        expected: "a metric history or strategy records",
        message,
    };
    let value: serde_json::Value = match serde_json::from_str(json) {
        Ok(v) => v,
        // JSON Lines (several objects, one per line): told by the first line.
        Err(e) => {
            let mut lines = json.lines().filter(|l| !l.trim().is_empty());
            match (lines.next().map(serde_json::from_str::<serde_json::Value>), lines.next()) {
                (Some(Ok(first)), Some(_)) => first,
                _ => return Err(parse_error(e.to_string())),
            }
        }
    };
    let first = match &value {
        serde_json::Value::Array(items) => items.first().ok_or_else(|| no_data(origin, "the array is empty"))?,
        other => other,
    };
    let has = |key: &str| first.get(key).is_some();
    if has("name") && has("x_plot") {
        Ok(ResultsKind::History)
    } else if has("benchmark") && has("strategy") {
        Ok(ResultsKind::Strategies)
    } else {
        Err(parse_error(
            "the first element has neither `name` and `x_plot` (a metric history) nor `benchmark` and `strategy` \
             (strategy records)"
                .into(),
        ))
    }
}

/// Renders the pictures of a history file into `out_dir`: `<stem>_accuracy_matrix` and
/// `<stem>_accuracy_curves` (`.png` and `.svg`), where `<stem>` is the file's name without
/// extension.
///
/// # Errors
/// The file cannot be read or parsed ([`ReportError::Read`], [`ReportError::Parse`]), holds no
/// test-stream experience accuracy ([`ReportError::NoData`]), or a picture cannot be written.
pub fn render_history_file(path: &Path, out_dir: &Path) -> Result<Vec<Pictures>> {
    history_pictures(&read(path)?, path, out_dir)
}

/// Renders the comparison chart of a strategies file into `out_dir/<stem>.png` and `.svg`
/// (`strategies.json` → `strategies.png`, next to it when `out_dir` is its directory).
///
/// # Errors
/// As [`render_history_file`].
pub fn render_strategies_file(path: &Path, out_dir: &Path) -> Result<Pictures> {
    strategies_picture(&read(path)?, path, out_dir)
}

/// Renders whatever pictures suit the file: [`render_history_file`]'s for a history,
/// [`render_strategies_file`]'s for strategy records (see [`detect_kind`]).
///
/// # Errors
/// As [`render_history_file`] and [`detect_kind`].
pub fn render_results_file(path: &Path, out_dir: &Path) -> Result<Vec<Pictures>> {
    let json = read(path)?;
    match detect_kind(&json, path)? {
        ResultsKind::History => history_pictures(&json, path, out_dir),
        ResultsKind::Strategies => Ok(vec![strategies_picture(&json, path, out_dir)?]),
    }
}

/// The history pictures of `json`, read from `path`.
fn history_pictures(json: &str, path: &Path, out_dir: &Path) -> Result<Vec<Pictures>> {
    let history = parse_history(json, path)?;
    let matrix = crate::matrix::matrix_from_history(&history, STREAM)
        .map_err(|e| ReportError::TooLarge { path: path.to_path_buf(), message: e.to_string() })?;
    let curves = AccuracyCurves::from_history(&history, STREAM);
    if matrix.is_empty() && curves.is_empty() {
        return Err(no_data(
            path,
            &format!(
                "no `Top1_Acc_Exp/eval_phase/{STREAM}_stream/.../Exp<j>` value (is it {HISTORY_SHAPE} with \
                 experience accuracies?)"
            ),
        ));
    }
    let name = stem_of(path);
    let mut written = Vec::new();
    if !matrix.is_empty() {
        let title = format!("Accuracy matrix — {name}");
        written.push(render_accuracy_matrix(&matrix, &title, &out_dir.join(format!("{name}_accuracy_matrix")))?);
    }
    let title = format!("Accuracy per experience over training — {name}");
    written.push(render_accuracy_curves(&curves, &title, &out_dir.join(format!("{name}_accuracy_curves")))?);
    Ok(written)
}

/// The comparison chart of `json`, read from `path`.
fn strategies_picture(json: &str, path: &Path, out_dir: &Path) -> Result<Pictures> {
    let records = parse_strategies(json, path)?;
    if records.is_empty() {
        return Err(no_data(path, "no strategy record"));
    }
    let title = "Strategies: final average accuracy and forgetting after the last experience";
    render_strategy_comparison(&records, title, &out_dir.join(stem_of(path)))
}

/// The file name without its extension (`results` when there is none).
fn stem_of(path: &Path) -> String {
    path.file_stem().map_or_else(|| "results".into(), |s| s.to_string_lossy().into_owned())
}

/// A [`ReportError::NoData`] about `path`.
fn no_data(path: &Path, message: &str) -> ReportError {
    ReportError::NoData { path: PathBuf::from(path), message: message.to_string() }
}
