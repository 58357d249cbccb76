//! Small helpers shared by the plugins' checkpoint hooks (`save_state` / `load_state`): optional
//! entries with an explicit presence flag (a missing flag is an error, never a silent `None`),
//! floats stored by their bits (exact whatever the JSON parser), and the frozen models plugins
//! keep.

use cl_core::checkpoint::StateDict;
use cl_core::data::ClassificationDataset;
use cl_core::{ClError, Model, Result, StrategyState};

/// The name of the presence flag of the optional entry `key`.
fn flag(key: &str) -> String {
    format!("{key}/some")
}

/// Stores an optional `f64` exactly (its bits).
pub(crate) fn put_f64(out: &mut StateDict, key: &str, value: Option<f64>) -> Result<()> {
    out.put(key, &value.map(f64::to_bits))
}

/// Reads an optional `f64` stored with [`put_f64`].
pub(crate) fn get_f64(state: &StateDict, key: &str) -> Result<Option<f64>> {
    Ok(state.get::<Option<u64>>(key)?.map(f64::from_bits))
}

/// Stores an optional float tensor exactly (a presence flag and the tensor).
pub(crate) fn put_opt_tensor<const D: usize>(
    out: &mut StateDict,
    key: &str,
    tensor: Option<&burn::tensor::Tensor<D>>,
) -> Result<()> {
    out.put(&flag(key), &tensor.is_some())?;
    if let Some(t) = tensor {
        out.put_tensor(key, t);
    }
    Ok(())
}

/// Reads an optional tensor stored with [`put_opt_tensor`] onto `device`.
pub(crate) fn opt_tensor<const D: usize>(
    state: &StateDict,
    key: &str,
    device: &burn::tensor::Device,
) -> Result<Option<burn::tensor::Tensor<D>>> {
    match state.get::<bool>(&flag(key))? {
        true => Ok(Some(state.tensor(key, device)?)),
        false => Ok(None),
    }
}

/// Stores an optional model: its dynamic layout ([`Model::save_extra_state`]: the outputs
/// and active units of an incremental classifier, the heads of a multi-head one) and its
/// parameters (a Burn record, parameter ids kept).
pub fn put_opt_model<M: Model>(out: &mut StateDict, key: &str, model: Option<&M>) -> Result<()> {
    out.put(&flag(key), &model.is_some())?;
    let Some(m) = model else {
        return Ok(());
    };
    let mut extra = StateDict::new(format!("{} (layout of `{key}`)", out.component()));
    m.save_extra_state(&mut extra)?;
    out.put_dict(&format!("{key}/extra"), extra);
    out.put_module(key, m)
}

/// Reads an optional model stored with [`put_opt_model`], without autodiff (as the plugins
/// keep their frozen copies): a copy of the resumed strategy's model (`model().valid()`) takes
/// the saved layout ([`Model::load_extra_state`]), then the saved parameters.
///
/// The copy can grow to the saved layout but not shrink: a frozen model smaller than the
/// resumed model (a dynamic model that grew after the copy was taken, e.g. during a periodic
/// evaluation on unseen classes) is an error of the layout's `load_extra_state` or of the
/// record.
pub fn opt_model<M: Model>(state: &StateDict, key: &str, strategy: &StrategyState<M>) -> Result<Option<M>> {
    if !state.get::<bool>(&flag(key))? {
        return Ok(None);
    }
    let mut template = strategy.model().valid();
    template.load_extra_state(state.dict(&format!("{key}/extra"))?).map_err(|e| {
        bad_entry(
            state,
            key,
            format!(
                "this frozen copy of the model cannot be rebuilt from a copy of the resumed model \
                 (a dynamic model that grew after the copy was taken, e.g. while evaluating unseen \
                 classes, cannot shrink back): {e}"
            ),
        )
    })?;
    Ok(Some(state.module(key, template)?))
}

/// Stores an optional dataset (its samples, labels and transforms).
pub(crate) fn put_opt_dataset(out: &mut StateDict, key: &str, data: Option<&ClassificationDataset>) -> Result<()> {
    out.put(&flag(key), &data.is_some())?;
    match data {
        Some(d) => out.put_dataset(key, d),
        None => Ok(()),
    }
}

/// Reads an optional dataset stored with [`put_opt_dataset`].
pub(crate) fn opt_dataset(state: &StateDict, key: &str) -> Result<Option<ClassificationDataset>> {
    match state.get::<bool>(&flag(key))? {
        true => Ok(Some(state.dataset(key)?)),
        false => Ok(None),
    }
}

/// Stores datasets in order (`key/len`, `key/0`, `key/1`, ...).
pub fn put_datasets(out: &mut StateDict, key: &str, data: &[ClassificationDataset]) -> Result<()> {
    out.put(&format!("{key}/len"), &data.len())?;
    for (i, d) in data.iter().enumerate() {
        out.put_dataset(&format!("{key}/{i}"), d)?;
    }
    Ok(())
}

/// Reads datasets stored with [`put_datasets`].
pub fn datasets(state: &StateDict, key: &str) -> Result<Vec<ClassificationDataset>> {
    let n: usize = state.get(&format!("{key}/len"))?;
    (0..n).map(|i| state.dataset(&format!("{key}/{i}"))).collect()
}

/// An entry whose value does not fit the component (`reason`): [`ClError::CheckpointEntry`].
pub(crate) fn bad_entry(state: &StateDict, key: &str, reason: impl Into<String>) -> ClError {
    ClError::CheckpointEntry { component: state.component().to_string(), key: key.to_string(), reason: reason.into() }
}

/// The refusal of a component that cannot save its state (a custom storage policy or selection
/// strategy without the hooks).
pub(crate) fn not_checkpointable(component: String, hook: &'static str) -> ClError {
    ClError::NotCheckpointable { component, hook }
}

/// Shared by the checkpoint tests of the plugins and storage policies.
#[cfg(test)]
pub(crate) mod test_util {
    use std::path::PathBuf;

    use burn::module::Module;
    use burn::tensor::{Device, TensorData};
    use cl_core::checkpoint::StateDict;
    use cl_core::data::ClassificationDataset;
    use cl_core::{ClError, Model, Plugin, StrategyBuilder, StrategyState, Stream};
    use rand::{RngCore, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use crate::regularization::{ParamTensors, for_each_param};

    /// `state` through its binary encoding (what a checkpoint file holds).
    pub fn encoded(state: &StateDict) -> StateDict {
        StateDict::from_bytes(&state.to_bytes(), state.component()).expect("a dictionary decodes its own encoding")
    }

    /// What `plugin` saves, through the binary encoding.
    pub fn saved<M: Model, P: Plugin<M>>(plugin: &P) -> StateDict {
        let mut d = StateDict::new(format!("plugin `{}`", plugin.name()));
        plugin.save_state(&mut d).expect("the plugin saves its state");
        encoded(&d)
    }

    /// Saves `plugin`, loads the encoded state into `fresh` (a plugin of the same configuration
    /// that never trained) and checks that `fresh` now saves exactly the same state (values,
    /// tensors bit for bit, records, datasets, generator positions). Returns the state.
    pub fn restore<M: Model, P: Plugin<M>>(plugin: &P, fresh: &mut P, strategy: &StrategyState<M>) -> StateDict {
        let state = saved(plugin);
        fresh.load_state(&state, strategy).expect("the state loads into a plugin of the same configuration");
        assert_eq!(saved(fresh), state, "the restored plugin saves another state");
        state
    }

    /// Loading `state` into `other` (another configuration) is a `CheckpointMismatch`.
    pub fn assert_mismatch<M: Model, P: Plugin<M>>(state: &StateDict, other: &mut P, strategy: &StrategyState<M>) {
        let err = other.load_state(state, strategy).expect_err("another configuration must be refused");
        assert!(matches!(err, ClError::CheckpointMismatch { .. }), "{err:?}");
    }

    /// The same samples (values, class and task labels) in the same order, and the same
    /// batches through the training and evaluation transforms.
    pub fn assert_same_dataset(a: &ClassificationDataset, b: &ClassificationDataset) {
        assert_eq!(a.len(), b.len(), "dataset lengths");
        assert_eq!(a.sample_shape(), b.sample_shape());
        for i in 0..a.len() {
            assert_eq!(a.sample(i).unwrap(), b.sample(i).unwrap(), "sample {i}");
        }
        if a.is_empty() {
            return;
        }
        let device = Device::default();
        let idx: Vec<usize> = (0..a.len()).collect();
        for (x, y) in [(a.train(), b.train()), (a.eval(), b.eval())] {
            let bx = x.batch(&idx, &device, &mut ChaCha8Rng::seed_from_u64(7)).unwrap();
            let by = y.batch(&idx, &device, &mut ChaCha8Rng::seed_from_u64(7)).unwrap();
            assert_eq!(bx.x.into_data(), by.x.into_data(), "batch inputs");
            assert_eq!(bx.targets, by.targets);
            assert_eq!(bx.task_labels, by.task_labels);
        }
    }

    /// The two generators produce the same next numbers.
    pub fn assert_same_rng(a: &ChaCha8Rng, b: &ChaCha8Rng) {
        let (mut a, mut b) = (a.clone(), b.clone());
        let (x, y): (Vec<u64>, Vec<u64>) = (0..16).map(|_| (a.next_u64(), b.next_u64())).unzip();
        assert_eq!(x, y, "the generators diverge");
    }

    /// The same entries (ids, names, shapes, order) with bit-identical values.
    pub fn assert_same_params(a: &ParamTensors, b: &ParamTensors) {
        assert_eq!(a.ids(), b.ids(), "parameter ids");
        for ((_, x), (_, y)) in a.iter().zip(b.iter()) {
            assert_eq!((&x.name, &x.dims), (&y.name, &y.dims));
            assert_eq!(x.values.to_data(), y.values.to_data(), "values of {}", x.name);
        }
    }

    /// Every float parameter of a module: path, id and data.
    pub fn module_values<Mo: Module>(module: &Mo) -> Vec<(String, u64, TensorData)> {
        let mut out = Vec::new();
        for_each_param(module, |name, _, id, _, t| out.push((name.to_string(), id.val(), t.to_data())));
        out
    }

    /// A fresh directory for one test's checkpoints.
    pub fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cl-plugins-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Trains `stream` one experience per `train` call three ways: uninterrupted; stopped after
    /// `stop_after` experiences with a checkpoint of the whole run; and resumed from that
    /// checkpoint by a strategy built afresh with the same driver loop. The resumed run must
    /// end with bit-identical weights (the parameter ids are the stopped run's, which differ
    /// from the uninterrupted run's: every model built draws new ids). Returns the final
    /// weights.
    pub fn assert_resume_is_exact<M: Model>(
        name: &str,
        build: impl Fn() -> StrategyBuilder<M>,
        stream: &Stream,
        stop_after: usize,
    ) -> Vec<(String, u64, TensorData)> {
        let dir = temp_dir(name);
        let path = dir.join("run.clckpt");
        let mut uninterrupted = build().build().unwrap();
        for e in stream.iter() {
            uninterrupted.train(e).unwrap();
        }
        let mut stopped = build().build().unwrap();
        for e in stream.iter().take(stop_after) {
            stopped.train(e).unwrap();
        }
        stopped.save_checkpoint(&path).unwrap();
        drop(stopped);
        let mut resumed = build().resume_from(&path).build().unwrap();
        assert!(resumed.is_replaying());
        for e in stream.iter() {
            resumed.train(e).unwrap();
        }
        let (a, b) = (module_values(uninterrupted.model()), module_values(resumed.model()));
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!((&x.0, &x.2), (&y.0, &y.2), "{name}: parameter {} differs after the resume", x.0);
        }
        let _ = std::fs::remove_dir_all(&dir);
        a
    }
}
