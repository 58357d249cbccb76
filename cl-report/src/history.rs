//! The metric history: what `cl_core::evaluation::EvaluationPlugin` serialises (a JSON array of
//! `{name, value, x_plot}`), read with this crate's own serde struct so that extra fields are
//! ignored and names that are not metric names are kept (readers parse them with
//! `cl_core::evaluation::MetricName` and skip those).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{ReportError, Result};

/// What a history file must hold, for error messages.
pub(crate) const HISTORY_SHAPE: &str = "a metric history (a JSON array of {name, value, x_plot})";

/// One emitted metric value. Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MetricRecord {
    /// Avalanche-style full name, e.g. `Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp003`
    /// (read it with `cl_core::evaluation::MetricName`'s `FromStr`).
    pub name: String,
    /// The value; `null` (how serde_json writes NaN) reads as NaN.
    #[serde(deserialize_with = "nullable_f64")]
    pub value: f64,
    /// Training iterations when the value was emitted (Avalanche's `x_plot`).
    pub x_plot: u64,
}

/// A number, or `null` read as NaN.
fn nullable_f64<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Parses a history from JSON text: a JSON array (`EvaluationPlugin::history_json`), or JSON
/// Lines, one record per line (`cl-metrics`' JSON Lines logger; blank lines skipped). `origin`
/// names its source in errors.
pub fn parse_history(json: &str, origin: &Path) -> Result<Vec<MetricRecord>> {
    let error = |message: String| ReportError::Parse { path: origin.to_path_buf(), expected: HISTORY_SHAPE, message };
    if json.trim_start().starts_with('[') {
        return serde_json::from_str(json).map_err(|e| error(e.to_string()));
    }
    // JSON lines. The last line, cut before its `\n` and not a whole record, is the one a killed
    // run was writing (cl-metrics' `JsonLinesLogger` writes whole lines): skipped with a warning.
    let lines: Vec<&str> = json.split('\n').collect();
    let mut records = Vec::with_capacity(lines.len());
    for (k, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(r) => records.push(r),
            // Cut short (end of input or broken syntax), not a whole record of another shape.
            Err(e) if k + 1 == lines.len() && (e.is_eof() || e.is_syntax()) => {
                tracing::warn!(
                    "{}: skipping the torn last line {} (a run killed while writing it)",
                    origin.display(),
                    k + 1
                );
            }
            Err(e) => return Err(error(format!("line {}: {e}", k + 1))),
        }
    }
    Ok(records)
}

/// Reads a history file.
pub fn load_history(path: &Path) -> Result<Vec<MetricRecord>> {
    parse_history(&read(path)?, path)
}

/// The text of `path`, or an error naming it.
pub(crate) fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| ReportError::Read { path: PathBuf::from(path), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_fields_ignored_and_null_is_nan() {
        let h = parse_history(
            r#"[{"name":"a/eval_phase/test_stream","value":0.5,"x_plot":3,"unit":"%","tags":[1]},
                {"name":"b/eval_phase/test_stream","value":null,"x_plot":4}]"#,
            Path::new("h.json"),
        )
        .unwrap();
        assert_eq!(h[0], MetricRecord { name: "a/eval_phase/test_stream".into(), value: 0.5, x_plot: 3 });
        assert!(h[1].value.is_nan());
    }

    #[test]
    fn json_lines() {
        let h = parse_history(
            "{\"name\":\"a/eval_phase/test_stream\",\"value\":0.5,\"x_plot\":3}\n\n{\"name\":\"b/eval_phase/test_stream\",\"value\":1,\"x_plot\":4,\"data\":null}\n",
            Path::new("h.jsonl"),
        )
        .unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!((h[1].name.as_str(), h[1].value, h[1].x_plot), ("b/eval_phase/test_stream", 1.0, 4));
        // A torn last line (a killed run) is skipped; a bad line before the end is an error.
        let h =
            parse_history("{\"name\":\"a\",\"value\":0.5,\"x_plot\":3}\n{\"name\":", Path::new("cut.jsonl")).unwrap();
        assert_eq!(h.len(), 1);
        let e = parse_history("{\"name\":\"a\",\"value\":0.5,\"x_plot\":3}\n{\"name\":\n{}\n", Path::new("cut.jsonl"))
            .unwrap_err();
        assert!(e.to_string().contains("cut.jsonl") && e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn errors_name_the_file() {
        let e = parse_history(r#"{"name": 1}"#, Path::new("bad.json")).unwrap_err().to_string();
        assert!(e.contains("bad.json") && e.contains("metric history"), "{e}");
        let e = load_history(Path::new("/nonexistent/h.json")).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/h.json"), "{e}");
    }
}
