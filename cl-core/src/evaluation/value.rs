//! [`MetricValue`]: one emitted value, with its name, its step and (for matrices) its data.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::names::{MetricName, MetricNameError};

/// One emitted metric value (Avalanche's `MetricValue`).
///
/// The `name` is a [`MetricName`] written out (the metrics emit typed names); it stays a string
/// here so that any history, also a hand-made one, loads. Extra fields are ignored when reading.
/// Serialised as `{"name": ..., "value": ..., "x_plot": ...}` plus `"data"` for values that are
/// not a single number (a confusion matrix, the accuracy matrix). A `NaN` value is written as
/// `null` and read back as `NaN`; histories written before `data` existed still load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricValue {
    /// Avalanche-style full name (`Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000`).
    pub name: String,
    /// The value. For a matrix-valued metric, a scalar summary documented by the metric (the
    /// confusion matrix: the number of samples).
    #[serde(serialize_with = "nan_as_null", deserialize_with = "null_as_nan")]
    pub value: f64,
    /// `clock.train_iterations` when it was emitted (Avalanche's `x_plot`).
    pub x_plot: u64,
    /// The full value when it is not a single number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<MetricData>,
}

impl MetricValue {
    /// A scalar value.
    pub fn scalar(name: impl Into<String>, value: f64, x_plot: u64) -> Self {
        Self { name: name.into(), value, x_plot, data: None }
    }

    /// The name read as a [`MetricName`]; an error for a name without Avalanche's layout (a
    /// hand-made value).
    pub fn parsed_name(&self) -> Result<MetricName, MetricNameError> {
        self.name.parse()
    }
}

/// The value of a metric that is not a single number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MetricData {
    /// A confusion matrix: `counts[true_class][predicted_class]`, classes `0..counts.len()`.
    ConfusionMatrix {
        /// Sample counts, rows = true class, columns = predicted class.
        counts: Vec<Vec<u64>>,
    },
    /// A matrix of numbers (the accuracy matrix: `rows[i][j]` = accuracy on experience `j`
    /// after training experience `i`; `NaN`, written `null`, where not measured).
    Matrix {
        /// The rows.
        #[serde(serialize_with = "rows_nan_as_null", deserialize_with = "rows_null_as_nan")]
        rows: Vec<Vec<f64>>,
    },
}

fn nan_as_null<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() { s.serialize_f64(*v) } else { s.serialize_none() }
}

fn null_as_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

pub(super) fn rows_nan_as_null<S: Serializer>(rows: &[Vec<f64>], s: S) -> Result<S::Ok, S::Error> {
    let rows: Vec<Vec<Option<f64>>> =
        rows.iter().map(|r| r.iter().map(|v| v.is_finite().then_some(*v)).collect()).collect();
    rows.serialize(s)
}

pub(super) fn rows_null_as_nan<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<f64>>, D::Error> {
    let rows = Vec::<Vec<Option<f64>>>::deserialize(d)?;
    Ok(rows.into_iter().map(|r| r.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_format_loads_and_nan_round_trips() {
        let old = r#"[{"name":"Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000","value":0.5,"x_plot":3}]"#;
        let v: Vec<MetricValue> = serde_json::from_str(old).unwrap();
        assert_eq!(v[0], MetricValue::scalar("Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000", 0.5, 3));
        let nan = MetricValue {
            data: Some(MetricData::Matrix { rows: vec![vec![1.0, f64::NAN]] }),
            ..MetricValue::scalar("m", f64::NAN, 1)
        };
        let json = serde_json::to_string(&nan).unwrap();
        assert_eq!(json, r#"{"name":"m","value":null,"x_plot":1,"data":{"kind":"matrix","rows":[[1.0,null]]}}"#);
        let back: MetricValue = serde_json::from_str(&json).unwrap();
        assert!(back.value.is_nan());
        let Some(MetricData::Matrix { rows }) = back.data else { panic!() };
        assert_eq!(rows[0][0], 1.0);
        assert!(rows[0][1].is_nan());
    }
}
