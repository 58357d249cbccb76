//! What the replay templates (`Der`, `ErAce`, `ErAml`, `Scr`) share: the memory loader of an
//! experience (Avalanche's `cycle(DataLoader(buffer, batch_size_mem, shuffle=True,
//! drop_last=True))`) and the memory batch's forward pass, the memory size rules, the
//! checkpoint entries of a class-balanced memory, the logits of a dataset, and the class means of a
//! nearest-class-mean classifier (`Scr`, `Icarl`).

use burn::tensor::{Device, Int, Tensor, TensorData};
use cl_core::checkpoint::StateDict;
use cl_core::config::rule;
use cl_core::data::{ClassificationDataset, CyclingSampler, MiniBatch};
use cl_core::{ClError, Model, Result, StrategyState};
use cl_models::{NcmClassifier, NcmConfig};
use cl_plugins::storage::ClassBalancedBuffer;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// The memory batches of one experience: a cycling shuffled pass over the memory, each batch
/// built with the memory's own (training) transforms, with the matching rows of a parallel
/// dataset (DER's stored logits) when there is one.
pub(crate) struct MemoryBatches {
    samples: ClassificationDataset,
    extra: Option<ClassificationDataset>,
    sampler: CyclingSampler,
    rng: ChaCha8Rng,
}

impl MemoryBatches {
    /// Batches of `batch_size` samples of `samples` (and the same rows of `extra`), seeded.
    pub(crate) fn new(
        samples: ClassificationDataset,
        extra: Option<ClassificationDataset>,
        batch_size: usize,
        seed: u64,
    ) -> Result<Self> {
        let sampler = CyclingSampler::new(samples.len(), batch_size, seed)?;
        Ok(Self { samples, extra, sampler, rng: ChaCha8Rng::seed_from_u64(seed ^ 0x05EE_D0FB_A7C4) })
    }

    /// The next memory batch on `device`, with the same rows of the parallel dataset.
    pub(crate) fn next(&mut self, device: &Device) -> Result<(MiniBatch, Option<Tensor<2>>)> {
        let rows = self.sampler.next_batch();
        let batch = self.samples.batch(rows, device, &mut self.rng)?;
        let extra = match &self.extra {
            Some(extra) => Some(extra.batch(rows, device, &mut self.rng)?.x),
            None => None,
        };
        Ok((batch, extra))
    }
}

/// A memory batch's output by the model being trained, its labels on the device and on the host.
pub(crate) type MemoryOutput = (Tensor<2>, Tensor<1, Int>, Vec<u32>);

/// The next memory batch of `replay` through the model being trained (a second forward pass,
/// as Avalanche's `ER_ACE` and `ER_AML`).
pub(crate) fn memory_forward<M: Model>(replay: &mut MemoryBatches, state: &StrategyState<M>) -> Result<MemoryOutput> {
    let (memory, _) = replay.next(state.batch_device())?;
    let model = state.forward_model();
    model.check_batch(&memory)?;
    let out = model.forward(&memory);
    Ok((out, memory.y, memory.targets))
}

/// The strategy's criterion on a memory batch's output (its labels checked against the outputs
/// first): the memory term of ER-ACE and ER-AML.
pub(crate) fn memory_term<M: Model>(state: &StrategyState<M>, (out, y, targets): MemoryOutput) -> Result<Tensor<1>> {
    cl_core::check_labels(&targets, out.dims()[1])?;
    Ok(state.settings().criterion().loss(out, y))
}

/// The rules of a memory of `mem_size` samples replayed `batch_size_mem` at a time:
/// `mem_size_positive`, `batch_size_mem_positive`, `batch_size_mem_at_most_mem_size`.
pub(crate) fn memory_size_rules(component: &'static str, mem_size: usize, batch_size_mem: usize) -> Result<()> {
    rule(component, "mem_size_positive", mem_size > 0, || "mem_size must be at least 1".into())?;
    rule(component, "batch_size_mem_positive", batch_size_mem > 0, || "batch_size_mem must be at least 1".into())?;
    rule(component, "batch_size_mem_at_most_mem_size", batch_size_mem <= mem_size, || {
        format!(
            "batch_size_mem = {batch_size_mem} is larger than mem_size = {mem_size}: the memory could never fill a \
             batch and nothing would be replayed (Avalanche silently trains without replay); use at most mem_size"
        )
    })
}

/// Saves a strategy's configuration (`config`, checked on load) and its class-balanced memory
/// (`storage`, a nested dictionary).
pub(crate) fn save_memory<C: Serialize>(out: &mut StateDict, config: &C, storage: &ClassBalancedBuffer) -> Result<()> {
    out.put("config", config)?;
    let mut dict = StateDict::new(format!("{} (storage)", out.component()));
    storage.save_state(&mut dict)?;
    out.put_dict("storage", dict);
    Ok(())
}

/// Restores what [`save_memory`] saved, after checking the configuration.
pub(crate) fn load_memory<C: Serialize>(
    state: &StateDict,
    config: &C,
    storage: &mut ClassBalancedBuffer,
) -> Result<()> {
    state.check_config("config", config)?;
    storage.load_state(state.dict("storage")?)
}

/// The seed of an experience's memory batches: the experience's seed, apart from the data
/// loader's.
pub(crate) fn memory_seed<M: Model>(state: &StrategyState<M>) -> u64 {
    state.experience_seed() ^ 0x4D45_4D4F_5259_0001
}

/// The logits of every sample of `data` (evaluation view, in order, batches of `batch_size`) by
/// `model` (an evaluation copy) on `device`, read back once: `(values, outputs)`, row-major.
pub(crate) fn run_logits<M: Model>(
    model: &M,
    data: &ClassificationDataset,
    device: &Device,
    batch_size: usize,
    seed: u64,
) -> Result<(Vec<f32>, usize)> {
    let eval = data.eval();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let indices: Vec<usize> = (0..eval.len()).collect();
    let mut outs = Vec::with_capacity(eval.len().div_ceil(batch_size.max(1)));
    for chunk in indices.chunks(batch_size.max(1)) {
        let batch = eval.batch(chunk, device, &mut rng)?;
        model.check_batch(&batch)?;
        outs.push(model.forward(&batch));
    }
    let all = Tensor::cat(outs, 0);
    let outputs = all.dims()[1];
    let values = all
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| ClError::InvalidUse(format!("reading the model's logits back: {e:?}")))?;
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(ClError::InvalidUse(format!(
            "the model's logit {} of sample {} is not finite: the model diverged before its outputs were stored",
            i % outputs.max(1),
            i / outputs.max(1)
        )));
    }
    Ok((values, outputs))
}

/// The nearest-class-mean classifier of `ncm` for features `width` wide, created (unit-norm
/// features) on first use; a typed error when the feature extractor changed width since.
pub(crate) fn ncm_of_width<'a>(
    ncm: &'a mut Option<NcmClassifier>,
    width: usize,
    component: &str,
) -> Result<&'a mut NcmClassifier> {
    if let Some(existing) = ncm.as_ref().filter(|n| n.feature_size() != width) {
        return Err(ClError::InvalidUse(format!(
            "{component}'s class means have {} values but the model's features now have {width}: the feature \
             extractor changed width",
            existing.feature_size()
        )));
    }
    if ncm.is_none() {
        *ncm = Some(NcmConfig::new(width).with_normalize(true).init()?);
    }
    Ok(ncm.as_mut().expect("set above"))
}

/// Writes the class means of `ncm` (none before the first experience ends) to the checkpoint.
pub(crate) fn save_class_means(out: &mut StateDict, ncm: Option<&NcmClassifier>) -> Result<()> {
    let means = ncm.map(|n| n.class_means().clone()).unwrap_or_default();
    let width = ncm.map_or(0, NcmClassifier::feature_size);
    out.put("ncm_width", &width)?;
    out.put("ncm_classes", &means.keys().copied().collect::<Vec<u32>>())?;
    out.put_data(
        "ncm_means",
        TensorData::new(means.values().flatten().copied().collect::<Vec<f32>>(), [means.len() * width]),
    );
    Ok(())
}

/// Reads back what [`save_class_means`] wrote: the classifier, or none when no means were saved.
pub(crate) fn load_class_means(state: &StateDict, component: &str) -> Result<Option<NcmClassifier>> {
    let width: usize = state.get("ncm_width")?;
    let classes: Vec<u32> = state.get("ncm_classes")?;
    let values =
        state.data("ncm_means")?.convert::<f32>().try_into_vec::<f32>().map_err(|e| ClError::CheckpointEntry {
            component: state.component().to_string(),
            key: "ncm_means".into(),
            reason: format!("{e:?}"),
        })?;
    if width == 0 {
        return Ok(None);
    }
    if values.len() != classes.len() * width {
        return Err(ClError::CheckpointEntry {
            component: state.component().to_string(),
            key: "ncm_means".into(),
            reason: format!("{} values for {} classes of width {width}", values.len(), classes.len()),
        });
    }
    let mut ncm = None;
    let means = classes.iter().zip(values.chunks(width)).map(|(&c, m)| (c, m.to_vec())).collect();
    ncm_of_width(&mut ncm, width, component)?.replace_class_means(means)?;
    Ok(ncm)
}
