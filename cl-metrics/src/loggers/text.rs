//! [`TextLogger`]: Avalanche's `TextLogger` output, to any writer (a file, stdout).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use cl_core::Callback;
use cl_core::checkpoint::StateDict;
use cl_core::evaluation::{LogEvent, Logger, MetricData, MetricValue};

use super::file::LogFile;
use super::fmt4;

/// Turns events into Avalanche's text lines; shared by [`TextLogger`] and the interactive
/// logger's plain output.
#[derive(Debug, Default)]
pub(crate) struct TextFormat {
    /// Last value of each metric since the last print, by name.
    values: BTreeMap<String, MetricValue>,
}

impl TextFormat {
    /// The lines to print for this event (none for most callbacks).
    pub(crate) fn lines(&mut self, e: &LogEvent<'_>) -> Vec<String> {
        for v in e.values {
            self.values.insert(v.name.clone(), v.clone());
        }
        let mut lines = Vec::new();
        let exp = e.experience.map_or_else(|| "None".to_string(), |x| x.to_string());
        let with_task = |what: &str| match e.task {
            Some(t) => format!("{what} {exp} (Task {t})"),
            None => format!("{what} {exp}"),
        };
        match e.callback {
            Callback::BeforeTraining => lines.push("-- >> Start of training phase << --".into()),
            Callback::AfterTraining => lines.push("-- >> End of training phase << --".into()),
            Callback::BeforeEval => lines.push("-- >> Start of eval phase << --".into()),
            Callback::BeforeTrainingExp | Callback::BeforeEvalExp => {
                let action = if e.training { "training" } else { "eval" };
                lines.push(format!("-- Starting {action} on {} from {} stream --", with_task("experience"), e.stream));
            }
            Callback::AfterTrainingEpoch => {
                lines.push(format!("Epoch {} ended.", e.clock.train_exp_epochs));
                self.drain(&mut lines);
            }
            Callback::AfterEvalExp => {
                lines.push(format!("> Eval on {} from {} stream ended.", with_task("experience"), e.stream));
                self.drain(&mut lines);
            }
            Callback::AfterEval => {
                lines.push("-- >> End of eval phase << --".into());
                self.drain(&mut lines);
            }
            _ => {}
        }
        lines
    }

    /// Saves the values not printed yet (they are printed at the next epoch or experience end).
    pub(crate) fn save_state(&self, out: &mut StateDict) -> cl_core::Result<()> {
        // The value by its bits (JSON has no NaN or infinity); the data as a MetricValue writes it.
        let values: Vec<(&MetricValue, u64)> = self.values.values().map(|v| (v, v.value.to_bits())).collect();
        out.put("pending", &values)
    }

    /// Restores [`save_state`](Self::save_state)'s values.
    pub(crate) fn load_state(&mut self, state: &StateDict) -> cl_core::Result<()> {
        let values: Vec<(MetricValue, u64)> = state.get("pending")?;
        self.values = values
            .into_iter()
            .map(|(v, bits)| (v.name.clone(), MetricValue { value: f64::from_bits(bits), ..v }))
            .collect();
        Ok(())
    }

    fn drain(&mut self, lines: &mut Vec<String>) {
        for (name, v) in std::mem::take(&mut self.values) {
            let shown = match &v.data {
                Some(MetricData::ConfusionMatrix { counts }) => {
                    let rows: Vec<String> = counts.iter().map(|r| format!("{r:?}")).collect();
                    format!("\n{}", rows.join("\n"))
                }
                Some(MetricData::Matrix { rows }) => {
                    let rows: Vec<String> = rows
                        .iter()
                        .map(|r| format!("[{}]", r.iter().map(|x| fmt4(*x)).collect::<Vec<_>>().join(", ")))
                        .collect();
                    format!("\n{}", rows.join("\n"))
                }
                None => fmt4(v.value),
            };
            lines.push(format!("\t{name} = {shown}"));
        }
    }
}

/// Writes what Avalanche's `TextLogger` prints: phase and experience starts, then after each
/// epoch, evaluated experience and evaluation the last value of every metric emitted since
/// (sorted by name, 4 decimals); per-iteration values only show through their last value.
///
/// The lines of a callback are written in one `write` call. Written to a file
/// ([`to_file`](Self::to_file)), the logger is crash-safe and resumable as the
/// [`JsonLinesLogger`](crate::JsonLinesLogger) (the file is truncated by the first callback of
/// a fresh run, not when the logger is built; a resumed run continues it from the checkpoint's
/// length). To any other writer, a resumed run just goes on writing.
pub struct TextLogger {
    out: Output,
    format: TextFormat,
}

enum Output {
    Writer(Box<dyn Write + Send>),
    File(LogFile),
}

impl std::fmt::Debug for TextLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextLogger").finish_non_exhaustive()
    }
}

impl TextLogger {
    /// A logger writing to `out`.
    pub fn new(out: impl Write + Send + 'static) -> Self {
        Self { out: Output::Writer(Box::new(out)), format: TextFormat::default() }
    }

    /// A logger writing to a file (created with its folder; its content is replaced at the first
    /// callback of a fresh run, continued by a resumed run).
    pub fn to_file(path: impl AsRef<Path>) -> io::Result<Self> {
        Ok(Self { out: Output::File(LogFile::open(path)?), format: TextFormat::default() })
    }

    /// A logger writing to standard output.
    pub fn stdout() -> Self {
        Self::new(io::stdout())
    }
}

impl Logger for TextLogger {
    fn log(&mut self, e: &LogEvent<'_>) -> io::Result<()> {
        let mut text = String::new();
        for line in self.format.lines(e) {
            text.push_str(&line);
            text.push('\n');
        }
        match &mut self.out {
            Output::File(f) => f.append(text.as_bytes()),
            Output::Writer(_) if text.is_empty() => Ok(()),
            Output::Writer(w) => w.write_all(text.as_bytes()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.out {
            Output::File(_) => Ok(()),
            Output::Writer(w) => w.flush(),
        }
    }

    /// Saves the values not printed yet and, written to a file, its length (after syncing it).
    fn save_state(&mut self, out: &mut StateDict) -> cl_core::Result<()> {
        self.format.save_state(out)?;
        match &mut self.out {
            Output::File(f) => {
                let mut d = StateDict::new(format!("{} (file)", out.component()));
                f.save_state(&mut d)?;
                out.put_dict("file", d);
                Ok(())
            }
            Output::Writer(w) => {
                w.flush().map_err(|source| cl_core::ClError::Io { path: "(text logger output)".into(), source })
            }
        }
    }

    /// Restores the values not printed yet and, written to a file, cuts it back to the saved
    /// length.
    fn load_state(&mut self, state: &StateDict) -> cl_core::Result<()> {
        self.format.load_state(state)?;
        match &mut self.out {
            Output::File(f) => f.load_state(state.dict("file")?),
            Output::Writer(_) => Ok(()),
        }
    }
}
