//! [`TextLogger`]: Avalanche's `TextLogger` output, to any writer (a file, stdout).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use cl_core::Callback;
use cl_core::evaluation::{LogEvent, Logger, MetricData, MetricValue};

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
pub struct TextLogger {
    out: Box<dyn Write + Send>,
    format: TextFormat,
}

impl std::fmt::Debug for TextLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextLogger").finish_non_exhaustive()
    }
}

impl TextLogger {
    /// A logger writing to `out`.
    pub fn new(out: impl Write + Send + 'static) -> Self {
        Self { out: Box::new(out), format: TextFormat::default() }
    }

    /// A logger writing to a file (created or truncated, with its folder).
    pub fn to_file(path: impl AsRef<Path>) -> io::Result<Self> {
        if let Some(dir) = path.as_ref().parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        Ok(Self::new(BufWriter::new(File::create(path)?)))
    }

    /// A logger writing to standard output.
    pub fn stdout() -> Self {
        Self::new(io::stdout())
    }
}

impl Logger for TextLogger {
    fn log(&mut self, e: &LogEvent<'_>) -> io::Result<()> {
        for line in self.format.lines(e) {
            writeln!(self.out, "{line}")?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
