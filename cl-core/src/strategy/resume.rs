//! Checkpoint and resume of a [`Strategy`]: what a checkpoint holds, writing it (on request of
//! a plugin, or by hand), and loading it back into a strategy built with the same configuration.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Bytes;

use super::template::Strategy;
use crate::checkpoint::{
    self, CheckpointHeader, CheckpointInfo, CheckpointRequest, RunCall, StateDict, list_checkpoints, numbered_name,
    write_atomic,
};
use crate::error::{ClError, Result};
use crate::model::Model;

/// The parts of the run's identity a resume compares, in the header's `run` object.
const IDENTITY: [(&str, &str); 7] = [
    ("training", "training configuration"),
    ("optimizer", "optimizer"),
    ("criterion", "criterion"),
    ("model", "model type"),
    ("steps", "steps (the strategy's template steps)"),
    ("plugins", "plugins (in call order)"),
    ("evaluator", "evaluator"),
];

impl<M: Model> Strategy<M> {
    /// The run's identity recorded in every checkpoint header and compared on resume: the
    /// training configuration (seed, batch sizes, epochs, periodic evaluation), the optimizer,
    /// the criterion, the model's type, the steps, the plugins' names in call order and the
    /// evaluator. (Each component's own configuration is checked by its `load_state`.)
    pub fn run_identity(&self) -> serde_json::Value {
        let settings = self.state.settings();
        serde_json::json!({
            "training": settings.config(),
            "optimizer": settings.optimizer().name(),
            "criterion": settings.criterion().name(),
            "model": std::any::type_name::<M>(),
            "steps": self.steps.name(),
            "plugins": self.plugins.iter().map(|p| p.name()).collect::<Vec<_>>(),
            "evaluator": self.evaluator.name(),
        })
    }

    /// Everything that influences the run's later numbers, as one dictionary.
    fn collect_state(&mut self) -> Result<StateDict> {
        let mut root = StateDict::new("checkpoint");

        let mut strategy = StateDict::new("strategy");
        strategy.put("clock", &self.state.clock)?;
        strategy.put("lr", &self.state.lr())?;
        strategy.put("last_metrics", &checkpoint::f64_bits::to_bits(&self.state.last_metrics))?;
        strategy.put("journal", &self.journal)?;
        strategy.put("checkpoints_saved", &self.checkpoints_saved)?;
        root.put_dict("strategy", strategy);

        let model = self.state.model();
        // Burn's running states (batch-norm statistics) hold their last update apart until they
        // are synchronised, and a record reads the value before it ("outdated by one update"):
        // `valid()` synchronises them, in place (the copy shares them), so the record holds
        // what the model would use next. Without it, a resumed BatchNorm model differed.
        let _synchronised = model.valid();
        let mut extra = StateDict::new(format!("model `{}`", crate::config::short_type_name::<M>()));
        model.save_extra_state(&mut extra)?;
        root.put_dict("model_extra", extra);
        root.put_module("model", model)?;

        if let Some(optimizer) = self.state.optimizer() {
            let bytes = optimizer.into_bytes().map_err(|e| ClError::CheckpointEntry {
                component: "optimizer".into(),
                key: "optimizer".into(),
                reason: format!("cannot encode its state: {e}"),
            })?;
            root.put_bytes("optimizer", bytes.to_vec());
        }

        root.put("plugins", &self.plugins.iter().map(|p| p.name()).collect::<Vec<_>>())?;
        for (i, p) in self.plugins.iter().enumerate() {
            let mut d = StateDict::new(format!("plugin `{}`", p.name()));
            p.save_state(&mut d)?;
            root.put_dict(&format!("plugin/{i}"), d);
        }

        let mut evaluator = StateDict::new("evaluator");
        self.evaluator.save_state(&mut evaluator)?;
        root.put_dict("evaluator", evaluator);

        let mut steps = StateDict::new("steps");
        self.steps.save_state(&mut steps)?;
        root.put_dict("steps", steps);
        Ok(root)
    }

    /// Saves the whole run to `path`, atomically (a crash during the save leaves an existing
    /// file at `path` intact): the model (a Burn record with its parameter ids), the optimizer's
    /// state, the learning rate, the clock, the run's identity, the evaluator's history,
    /// accumulators and logger positions, the steps' state and every plugin's
    /// ([`Plugin::save_state`](crate::Plugin::save_state)), and the journal of the `train`/`eval`
    /// calls made so far.
    ///
    /// Call it between `train`/`eval` calls, or let a plugin request checkpoints during
    /// training ([`StrategyState::request_checkpoint`](crate::StrategyState::request_checkpoint);
    /// `cl_plugins::CheckpointPlugin`). A component that keeps state and cannot save it makes
    /// this fail with [`ClError::NotCheckpointable`] naming it; nothing is written then.
    pub fn save_checkpoint(&mut self, path: impl AsRef<Path>) -> Result<CheckpointInfo> {
        let path = path.as_ref();
        let start = Instant::now();
        let payload = self.collect_state()?;
        let bytes = checkpoint::encode(self.run_identity(), self.state.clock, &payload);
        write_atomic(path, &bytes)?;
        Ok(CheckpointInfo {
            path: path.to_path_buf(),
            bytes: bytes.len() as u64,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// Writes the checkpoint a plugin requested, if any: the next numbered file of the run
    /// directory, then deletes the oldest beyond `keep_last`.
    pub(super) fn write_requested_checkpoint(&mut self) -> Result<()> {
        let Some(CheckpointRequest { dir, keep_last }) = self.state.checkpoint_request.take() else {
            return Ok(());
        };
        if self.checkpoints_saved == 0 && !self.resumed && !list_checkpoints(&dir)?.is_empty() {
            return Err(ClError::InvalidUse(format!(
                "the run directory {} already holds checkpoints of a run, and this strategy was not resumed \
                 from it: resume that run (`StrategyBuilder::resume_latest`) or give this one an empty directory",
                dir.display()
            )));
        }
        self.checkpoints_saved += 1;
        let path = dir.join(numbered_name(self.checkpoints_saved));
        match self.save_checkpoint(&path) {
            Ok(info) => self.last_checkpoint = Some(info),
            Err(e) => {
                self.checkpoints_saved -= 1;
                return Err(e);
            }
        }
        // The checkpoint is written: a failed clean-up is a warning, not a failed `train`.
        if let Err(e) = rotate(&dir, self.checkpoints_saved, keep_last) {
            tracing::warn!("checkpoint {} written, but cleaning the run directory failed: {e}", path.display());
        }
        Ok(())
    }

    /// Loads a checkpoint into this strategy (built with the run's configuration): checks the
    /// run's identity, then restores the model, the optimizer, the loop's counters, the
    /// evaluator, the steps and the plugins, and arms the journal so that the calls the
    /// checkpointed run already made are skipped when the driver repeats them.
    pub(super) fn restore(&mut self, path: &Path, header: &CheckpointHeader, root: &StateDict) -> Result<()> {
        let current = self.run_identity();
        for (key, what) in IDENTITY {
            let (saved, now) = (&header.run[key], &current[key]);
            if saved != now {
                return Err(ClError::CheckpointMismatch {
                    path: path.to_path_buf(),
                    what: what.into(),
                    checkpoint: saved.to_string(),
                    current: now.to_string(),
                });
            }
        }
        self.restore_parts(root).map_err(|e| match e {
            ClError::CheckpointMismatch { path: p, what, checkpoint, current } if p.as_os_str().is_empty() => {
                ClError::CheckpointMismatch { path: path.to_path_buf(), what, checkpoint, current }
            }
            e => e,
        })
    }

    fn restore_parts(&mut self, root: &StateDict) -> Result<()> {
        let strategy = root.dict("strategy")?;
        let clock = strategy.get("clock")?;
        let lr: f64 = strategy.get("lr")?;
        let last_metrics = checkpoint::f64_bits::from_bits(strategy.get("last_metrics")?);
        let journal: Vec<RunCall> = strategy.get("journal")?;
        let checkpoints_saved = strategy.get("checkpoints_saved")?;

        // The model: dynamic parts re-grow first, then the parameters (values and ids) load.
        let device = self.state.settings().device().clone();
        let mut model = self.state.take_model();
        let loaded =
            model.load_extra_state(root.dict("model_extra")?).and_then(|_| root.module("model", model.clone()));
        let model = match loaded {
            Ok(m) => m,
            Err(e) => {
                self.state.put_model(model);
                return Err(e);
            }
        };
        // Parameters as fresh leaves on the training device, in training mode (ids kept).
        self.state.put_model(model.valid().to_device(&device).train());

        self.state.optimizer = match root.contains("optimizer") {
            true => {
                let bytes = Bytes::from_bytes_vec(root.bytes("optimizer")?.to_vec());
                let optimizer = self.state.settings().optimizer().build().from_bytes(bytes).map_err(|e| {
                    ClError::CheckpointEntry {
                        component: "optimizer".into(),
                        key: "optimizer".into(),
                        reason: format!("does not decode: {e}"),
                    }
                })?;
                Some(optimizer)
            }
            false => None,
        };

        self.state.clock = clock;
        self.state.set_lr(lr)?;
        self.state.last_metrics = last_metrics;

        let names: Vec<String> = root.get("plugins")?;
        let current: Vec<String> = self.plugins.iter().map(|p| p.name()).collect();
        if names != current {
            return Err(ClError::CheckpointMismatch {
                path: Default::default(),
                what: "plugins (in call order)".into(),
                checkpoint: format!("{names:?}"),
                current: format!("{current:?}"),
            });
        }
        for (i, p) in self.plugins.iter_mut().enumerate() {
            p.load_state(root.dict(&format!("plugin/{i}"))?, &self.state)?;
        }
        self.steps.load_state(root.dict("steps")?, &self.state)?;
        // The evaluator last: its loggers cut their files back, which must not happen if any
        // other part fails to load.
        self.evaluator.load_state(root.dict("evaluator")?)?;

        self.replay_cursor = 0;
        self.replay_until = journal.len();
        self.journal = journal;
        self.checkpoints_saved = checkpoints_saved;
        self.resumed = true;
        Ok(())
    }

    /// The whole state of the strategy as a [`StateDict`]: what [`save_checkpoint`](Self::save_checkpoint)
    /// writes, without the file. For a strategy driven by another component, which saves it
    /// inside its own state (GenerativeReplay's generator); restore it with
    /// [`load_state_dict`](Self::load_state_dict).
    pub fn to_state_dict(&mut self) -> Result<StateDict> {
        self.collect_state()
    }

    /// Restores [`to_state_dict`](Self::to_state_dict)'s state into this strategy (built with the
    /// same configuration). Unlike a resume, the calls the saved strategy made count as done:
    /// the next `train` or `eval` runs (nothing is replayed).
    pub fn load_state_dict(&mut self, root: &StateDict) -> Result<()> {
        self.restore_parts(root)?;
        self.replay_cursor = self.journal.len();
        self.replay_until = self.journal.len();
        self.resumed = false;
        Ok(())
    }

    /// Whether this strategy was resumed and the driver has not yet repeated every call of the
    /// checkpointed run (those calls are skipped).
    pub fn is_replaying(&self) -> bool {
        self.replay_cursor < self.replay_until
    }

    /// The last checkpoint written on a plugin's request (path, size, seconds), if any.
    pub fn last_checkpoint(&self) -> Option<&CheckpointInfo> {
        self.last_checkpoint.as_ref()
    }

    /// The journal of the run's top-level `train`/`eval` calls (what a checkpoint records).
    pub fn journal(&self) -> &[RunCall] {
        &self.journal
    }
}

/// After checkpoint `n` of a run directory was written: deletes the numbered checkpoints outside
/// the last `keep_last` (`n - keep_last + 1 ..= n`) — older ones, and newer ones left by a
/// timeline this run was resumed before (they would otherwise be what `resume_latest` picks) —
/// and the temporary files of writes killed midway. Files of other names are left alone.
fn rotate(dir: &Path, n: u64, keep_last: usize) -> Result<()> {
    let first_kept = n.saturating_sub(keep_last as u64) + 1;
    for path in list_checkpoints(dir)? {
        if let Some(k) = checkpoint::checkpoint_number(&path)
            && !(first_kept..=n).contains(&k)
        {
            std::fs::remove_file(&path).map_err(|source| ClError::Io { path: path.clone(), source })?;
        }
    }
    let own = format!(".tmp-{}", std::process::id());
    for entry in std::fs::read_dir(dir).map_err(|source| ClError::Io { path: dir.to_path_buf(), source })?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".ckpt-") && name.contains(".tmp-") && !name.ends_with(&own) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// Where a builder resumes from.
#[derive(Debug, Clone)]
pub(super) enum ResumeFrom {
    /// This checkpoint file; any problem with it is an error.
    File(PathBuf),
    /// The newest readable checkpoint of this run directory; a fresh run if it holds none.
    Latest(PathBuf),
}

impl ResumeFrom {
    /// Reads the checkpoint and restores `strategy` from it (nothing for an empty directory).
    pub(super) fn apply<M: Model>(&self, strategy: &mut Strategy<M>) -> Result<Option<PathBuf>> {
        let (path, header, root) = match self {
            ResumeFrom::File(path) => {
                let (h, d) = checkpoint::read_checkpoint(path)?;
                (path.clone(), h, d)
            }
            ResumeFrom::Latest(dir) => match checkpoint::latest_checkpoint(dir)? {
                Some(found) => found,
                None => return Ok(None),
            },
        };
        strategy.restore(&path, &header, &root)?;
        Ok(Some(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_last_k_up_to_the_new_one_and_drops_stale_and_temporary_files() {
        let dir = std::env::temp_dir().join(format!("cl-rotate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for n in 1..=5 {
            std::fs::write(dir.join(numbered_name(n)), b"x").unwrap();
        }
        std::fs::write(dir.join(".ckpt-000004.clckpt.tmp-1"), b"torn").unwrap();
        std::fs::write(dir.join("notes.txt"), b"mine").unwrap();
        // Resumed from checkpoint 2 and just wrote checkpoint 3: 4 and 5 are another timeline.
        rotate(&dir, 3, 2).unwrap();
        let mut left: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, ["ckpt-000002.clckpt", "ckpt-000003.clckpt", "notes.txt"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
