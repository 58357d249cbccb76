//! [`CsvLogger`]: `training_results.csv` and `eval_results.csv`, as Avalanche's `CSVLogger`.

use std::io;
use std::path::{Path, PathBuf};

use cl_core::Callback;
use cl_core::checkpoint::StateDict;
use cl_core::evaluation::{LogEvent, Logger, MetricName};

use super::file::LogFile;
use super::fmt4;

const TRAINING_HEADER: &[u8] = b"training_exp,epoch,training_accuracy,val_accuracy,training_loss,val_loss\n";
const EVAL_HEADER: &[u8] = b"eval_exp,training_exp,eval_accuracy,eval_loss,forgetting\n";

/// Writes `training_results.csv` (`training_exp,epoch,training_accuracy,val_accuracy,
/// training_loss,val_loss`, one line per training epoch) and `eval_results.csv`
/// (`eval_exp,training_exp,eval_accuracy,eval_loss,forgetting`, one line per evaluated
/// experience outside training), line for line as Avalanche's `CSVLogger`:
///
/// - values are read from the metrics emitted at the callback (`Top1_Acc_Epoch`/`Loss_Epoch` of
///   the train stream; `Top1_Acc_Exp`, `Loss_Exp`, `ExperienceForgetting`, told by their
///   [`MetricName`]), so the evaluator must compute them; a value not emitted is written `0`, a
///   value emitted with 4 decimals;
/// - the epoch column is the number of epochs completed before this one (0 for the first);
/// - `val_accuracy`/`val_loss` are the last `Top1_Acc_Exp`/`Loss_Exp` of an evaluation run
///   inside training (periodic evaluation, `eval_every`), `0` if none;
/// - `training_exp` of the eval file is the last trained experience (`None` before any).
///
/// Crash-safe and resumable as the [`JsonLinesLogger`](crate::JsonLinesLogger): each line goes
/// to its file in one `write` call when it is complete; the files are not truncated when the
/// logger is built but at the first callback of a fresh run (which writes the headers); a
/// checkpoint saves their lengths and the logger's state, and a resumed run cuts the files back
/// to those lengths and continues them.
#[derive(Debug)]
pub struct CsvLogger {
    folder: PathBuf,
    training: LogFile,
    eval: LogFile,
    training_exp: Option<usize>,
    in_train_phase: Option<bool>,
    val_acc: Option<f64>,
    val_loss: Option<f64>,
}

fn val(v: Option<f64>) -> String {
    v.map_or_else(|| "0".to_string(), fmt4)
}

/// The event's values with a parsed name (values without Avalanche's layout are skipped).
fn named<'a>(e: &'a LogEvent<'_>) -> impl Iterator<Item = (MetricName, f64)> + 'a {
    e.values.iter().filter_map(|v| Some((v.parsed_name().ok()?, v.value)))
}

impl CsvLogger {
    /// Creates `folder` (Avalanche's default is `csvlogs`) and opens the two files; they get
    /// their headers (replacing any content) at the first callback of a fresh run, and a resumed
    /// run continues them.
    pub fn new(folder: impl AsRef<Path>) -> io::Result<Self> {
        let folder = folder.as_ref().to_path_buf();
        std::fs::create_dir_all(&folder)?;
        let training = LogFile::open(folder.join("training_results.csv"))?;
        let eval = LogFile::open(folder.join("eval_results.csv"))?;
        Ok(Self { folder, training, eval, training_exp: None, in_train_phase: None, val_acc: None, val_loss: None })
    }

    /// The folder holding the files.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    fn training_exp(&self) -> String {
        self.training_exp.map_or_else(|| "None".to_string(), |e| e.to_string())
    }
}

impl Logger for CsvLogger {
    fn log(&mut self, e: &LogEvent<'_>) -> io::Result<()> {
        if self.training.start()? {
            self.training.append(TRAINING_HEADER)?;
        }
        if self.eval.start()? {
            self.eval.append(EVAL_HEADER)?;
        }
        match e.callback {
            Callback::BeforeTraining => self.in_train_phase = Some(true),
            Callback::AfterTraining => self.in_train_phase = Some(false),
            Callback::BeforeEval if self.in_train_phase.is_none() => self.in_train_phase = Some(false),
            Callback::BeforeTrainingExp => self.training_exp = e.experience,
            Callback::AfterTrainingEpoch => {
                let (mut acc, mut loss) = (None, None);
                for (name, v) in named(e) {
                    if name.stream.as_deref() != Some("train") {
                        continue;
                    }
                    match name.metric.as_str() {
                        "Top1_Acc_Epoch" => acc = Some(v),
                        "Loss_Epoch" => loss = Some(v),
                        _ => {}
                    }
                }
                let line = format!(
                    "{},{},{},{},{},{}\n",
                    self.training_exp(),
                    e.clock.train_exp_epochs,
                    val(acc),
                    val(self.val_acc),
                    val(loss),
                    val(self.val_loss)
                );
                self.training.append(line.as_bytes())?;
            }
            Callback::AfterEvalExp => {
                let in_train = self.in_train_phase == Some(true);
                let (mut acc, mut loss, mut forgetting) = (None, None, None);
                for (name, v) in named(e) {
                    match (in_train, name.metric.as_str()) {
                        (true, "Top1_Acc_Exp") => self.val_acc = Some(v),
                        (true, "Loss_Exp") => self.val_loss = Some(v),
                        (false, "Top1_Acc_Exp") => acc = Some(v),
                        (false, "Loss_Exp") => loss = Some(v),
                        (false, "ExperienceForgetting") => forgetting = Some(v),
                        _ => {}
                    }
                }
                if !in_train {
                    let line = format!(
                        "{},{},{},{},{}\n",
                        e.experience.map_or_else(|| "None".to_string(), |x| x.to_string()),
                        self.training_exp(),
                        val(acc),
                        val(loss),
                        val(forgetting)
                    );
                    self.eval.append(line.as_bytes())?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Saves the files' lengths (after syncing them to the disk), the last trained experience,
    /// the phase and the last validation values.
    fn save_state(&mut self, out: &mut StateDict) -> cl_core::Result<()> {
        for (key, file) in [("training", &mut self.training), ("eval", &mut self.eval)] {
            let mut d = StateDict::new(format!("{} (`{key}` file)", out.component()));
            file.save_state(&mut d)?;
            out.put_dict(key, d);
        }
        out.put("training_exp", &self.training_exp)?;
        out.put("in_train_phase", &self.in_train_phase)?;
        // By their bits: a NaN validation value is written `nan`, a missing one `0`.
        out.put("val_acc", &self.val_acc.map(f64::to_bits))?;
        out.put("val_loss", &self.val_loss.map(f64::to_bits))
    }

    /// Cuts the files back to the saved lengths and restores the logger's state.
    fn load_state(&mut self, state: &StateDict) -> cl_core::Result<()> {
        self.training.load_state(state.dict("training")?)?;
        self.eval.load_state(state.dict("eval")?)?;
        self.training_exp = state.get("training_exp")?;
        self.in_train_phase = state.get("in_train_phase")?;
        self.val_acc = state.get::<Option<u64>>("val_acc")?.map(f64::from_bits);
        self.val_loss = state.get::<Option<u64>>("val_loss")?.map(f64::from_bits);
        Ok(())
    }
}
