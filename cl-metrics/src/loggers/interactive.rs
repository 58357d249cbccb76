//! [`InteractiveLogger`]: progress bars on a terminal, plain lines elsewhere.

use std::io::{self, IsTerminal, Write};

use cl_core::Callback;
use cl_core::checkpoint::StateDict;
use cl_core::evaluation::{LogEvent, Logger};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::fmt4;
use super::text::TextFormat;

/// Avalanche's `InteractiveLogger`: a progress bar per training epoch and per evaluated
/// experience (the `indicatif` crate), showing the running loss and accuracy while training
/// when the evaluator emits them (`AccuracyConfig::running_accuracy`/`running_loss`) and the
/// period's accuracy
/// and loss when it ends, with the text logger's lines between bars.
///
/// When standard output is not a terminal (a cluster job's log file, a pipe) there are no bars:
/// only the text logger's lines, one per event, so logs are not flooded with redraws.
pub struct InteractiveLogger {
    bars: bool,
    target: fn() -> ProgressDrawTarget,
    bar: Option<ProgressBar>,
    format: TextFormat,
    out: Box<dyn Write + Send>,
}

impl std::fmt::Debug for InteractiveLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InteractiveLogger").field("bars", &self.bars).finish_non_exhaustive()
    }
}

impl Default for InteractiveLogger {
    fn default() -> Self {
        Self::new()
    }
}

/// `metric=value` of the event's values whose metric (the [`MetricName`] part) passes `keep`.
///
/// [`MetricName`]: cl_core::evaluation::MetricName
fn summary(e: &LogEvent<'_>, keep: impl Fn(&str) -> bool) -> Vec<String> {
    e.values
        .iter()
        .filter_map(|v| Some((v.parsed_name().ok()?.metric, v.value)))
        .filter(|(metric, _)| keep(metric))
        .map(|(metric, value)| format!("{metric}={}", fmt4(value)))
        .collect()
}

impl InteractiveLogger {
    /// Bars on standard output if it is a terminal, plain lines otherwise.
    pub fn new() -> Self {
        Self {
            bars: io::stdout().is_terminal(),
            target: ProgressDrawTarget::stdout,
            bar: None,
            format: TextFormat::default(),
            out: Box::new(io::stdout()),
        }
    }

    /// Plain lines to `out`, never bars (what `new` does when stdout is not a terminal).
    pub fn plain(out: impl Write + Send + 'static) -> Self {
        Self {
            bars: false,
            target: ProgressDrawTarget::hidden,
            bar: None,
            format: TextFormat::default(),
            out: Box::new(out),
        }
    }

    /// Whether progress bars are drawn.
    pub fn draws_bars(&self) -> bool {
        self.bars
    }

    fn start_bar(&mut self, len: Option<usize>, prefix: String) {
        let bar = ProgressBar::with_draw_target(len.map(|l| l as u64), (self.target)());
        let style =
            ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(prefix);
        self.bar = Some(bar);
    }

    fn print(&mut self, lines: Vec<String>) -> io::Result<()> {
        for line in lines {
            match &self.bar {
                Some(bar) if self.bars => bar.println(line),
                _ => writeln!(self.out, "{line}")?,
            }
        }
        Ok(())
    }
}

impl Logger for InteractiveLogger {
    fn log(&mut self, e: &LogEvent<'_>) -> io::Result<()> {
        let lines = self.format.lines(e);
        if !self.bars {
            return self.print(lines);
        }
        match e.callback {
            Callback::BeforeTrainingEpoch => {
                let prefix = format!(
                    "exp {} epoch {}/{}",
                    e.experience.unwrap_or(0),
                    e.clock.train_exp_epochs + 1,
                    e.train_epochs
                );
                self.start_bar(e.iterations, prefix);
            }
            Callback::BeforeEvalExp => {
                let prefix = format!("eval {} exp {}", e.stream, e.experience.unwrap_or(0));
                self.start_bar(e.iterations, prefix);
            }
            Callback::AfterTrainingIteration | Callback::AfterEvalIteration => {
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                    let msg = summary(e, |m| m == "Top1_RunningAcc_Epoch" || m == "RunningLoss_Epoch");
                    if !msg.is_empty() {
                        bar.set_message(msg.join(" "));
                    }
                }
            }
            Callback::AfterTrainingEpoch | Callback::AfterEvalExp => {
                if let Some(bar) = self.bar.take() {
                    // The period's accuracy and loss, if the evaluator emitted them.
                    let msg = summary(e, |m| m.starts_with("Top1_Acc_") || m.starts_with("Loss_"));
                    if msg.is_empty() {
                        bar.finish();
                    } else {
                        bar.finish_with_message(msg.join(" "));
                    }
                }
            }
            _ => {}
        }
        self.print(lines)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// A terminal has no position to save: only the values not printed yet (a resumed run
    /// prints them at the next epoch or experience end, as the interrupted one would have).
    fn save_state(&mut self, out: &mut StateDict) -> cl_core::Result<()> {
        self.format.save_state(out)
    }

    fn load_state(&mut self, state: &StateDict) -> cl_core::Result<()> {
        self.format.load_state(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cl_core::Clock;
    use cl_core::evaluation::MetricValue;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn event<'a>(callback: Callback, values: &'a [MetricValue]) -> LogEvent<'a> {
        LogEvent {
            callback,
            training: true,
            clock: Clock::default(),
            experience: Some(0),
            task: Some(0),
            stream: "train",
            iterations: Some(2),
            train_epochs: 1,
            values,
        }
    }

    #[test]
    fn bars_count_iterations_and_show_running_values() {
        let out = Shared::default();
        let mut logger = InteractiveLogger {
            bars: true,
            target: ProgressDrawTarget::hidden,
            bar: None,
            format: TextFormat::default(),
            out: Box::new(out.clone()),
        };
        logger.log(&event(Callback::BeforeTrainingEpoch, &[])).unwrap();
        let running = [MetricValue::scalar("Top1_RunningAcc_Epoch/train_phase/train_stream/Task000", 0.5, 0)];
        logger.log(&event(Callback::AfterTrainingIteration, &running)).unwrap();
        logger.log(&event(Callback::AfterTrainingIteration, &[])).unwrap();
        let bar = logger.bar.clone().unwrap();
        assert_eq!((bar.position(), bar.length()), (2, Some(2)));
        assert_eq!(bar.message(), "Top1_RunningAcc_Epoch=0.5000");
        let epoch = [MetricValue::scalar("Top1_Acc_Epoch/train_phase/train_stream/Task000", 0.75, 2)];
        logger.log(&event(Callback::AfterTrainingEpoch, &epoch)).unwrap();
        assert!(logger.bar.is_none() && bar.is_finished());
        assert_eq!(bar.message(), "Top1_Acc_Epoch=0.7500");
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "Epoch 0 ended.\n\tTop1_Acc_Epoch/train_phase/train_stream/Task000 = 0.7500\n\tTop1_RunningAcc_Epoch/train_phase/train_stream/Task000 = 0.5000\n"
        );
    }
}
