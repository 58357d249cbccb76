//! [`ClassificationDataset`]: samples `(x, y, t)` over contiguous storage, with cheap views.

use std::collections::BTreeSet;
use std::sync::Arc;

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand_chacha::ChaCha8Rng;

use super::batch::MiniBatch;
use super::storage::{InputBuffer, Storage};
use super::transform::{TransformGroups, TransformMode, TransformSpec};
use crate::checkpoint::StateDict;
use crate::error::{ClError, Result};

/// One sample: input values (flattened, as f32 before transforms), class label, task label.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Flattened input values (u8 inputs scaled to `[0, 1]`), before transforms.
    pub x: Vec<f32>,
    /// Class label.
    pub y: u32,
    /// Task label.
    pub t: u32,
}

/// A contiguous range of one storage, possibly re-indexed, relabelled or re-tasked.
#[derive(Debug, Clone)]
struct Part {
    storage: Arc<Storage>,
    /// Storage indices of this part's samples; `None` means all samples in order.
    indices: Option<Arc<[u32]>>,
    /// Class relabelling: `target_map[original] = new`.
    target_map: Option<Arc<[u32]>>,
    /// Task label overriding the storage's.
    task_label: Option<u32>,
    /// The transforms of this part's samples (kept through concatenation, so memory samples
    /// of another experience keep their own permutation, rotation, ...).
    transforms: TransformGroups,
}

impl Part {
    fn len(&self) -> usize {
        self.indices.as_ref().map_or(self.storage.len(), |i| i.len())
    }

    #[inline]
    fn storage_index(&self, local: usize) -> usize {
        self.indices.as_ref().map_or(local, |i| i[local] as usize)
    }

    #[inline]
    fn target(&self, local: usize) -> u32 {
        let y = self.storage.targets[self.storage_index(local)];
        self.target_map.as_ref().map_or(y, |m| m[y as usize])
    }

    #[inline]
    fn task_label(&self, local: usize) -> u32 {
        self.task_label.unwrap_or_else(|| self.storage.task_labels.as_ref().map_or(0, |t| t[self.storage_index(local)]))
    }
}

/// A classification dataset: inputs in one contiguous buffer (u8 or f32), class labels and task
/// labels, seen through cheap views.
///
/// Subsets are index views (no copy of the inputs), concatenation appends views (O(number of
/// parts), never a copy of the samples), and `train()`/`eval()` select the transform group.
/// Cloning is cheap (reference counted).
///
/// ```
/// use cl_core::data::ClassificationDataset;
/// // 4 samples of shape [2]: inputs, labels.
/// let ds = ClassificationDataset::from_f32(vec![0.0; 8], vec![2], vec![0, 1, 1, 0]).unwrap();
/// let ones = ds.subset(&[1, 2]).unwrap();
/// assert_eq!(ones.targets(), vec![1, 1]);
/// let both = ds.concat(&ones).unwrap();
/// assert_eq!(both.len(), 6);
/// ```
#[derive(Debug, Clone)]
pub struct ClassificationDataset {
    parts: Arc<[Part]>,
    /// `offsets[p]` = index of part `p`'s first sample; `offsets[parts.len()]` = len.
    offsets: Arc<[usize]>,
    sample_shape: Arc<[usize]>,
    mode: TransformMode,
}

impl ClassificationDataset {
    fn from_storage(storage: Storage) -> Self {
        let len = storage.len();
        let sample_shape: Arc<[usize]> = storage.sample_shape.clone().into();
        Self {
            parts: vec![Part {
                storage: Arc::new(storage),
                indices: None,
                target_map: None,
                task_label: None,
                transforms: TransformGroups::default(),
            }]
            .into(),
            offsets: vec![0, len].into(),
            sample_shape,
            mode: TransformMode::Train,
        }
    }

    /// A dataset of raw bytes (e.g. image pixels), `targets.len()` samples of `sample_shape`.
    ///
    /// Bytes are scaled to `[0, 1]` when batches are built.
    pub fn from_u8(inputs: Vec<u8>, sample_shape: Vec<usize>, targets: Vec<u32>) -> Result<Self> {
        Ok(Self::from_storage(Storage::new(InputBuffer::U8(inputs), sample_shape, targets, None)?))
    }

    /// A dataset of f32 values, `targets.len()` samples of `sample_shape`.
    pub fn from_f32(inputs: Vec<f32>, sample_shape: Vec<usize>, targets: Vec<u32>) -> Result<Self> {
        Ok(Self::from_storage(Storage::new(InputBuffer::F32(inputs), sample_shape, targets, None)?))
    }

    /// Like [`from_u8`](Self::from_u8)/[`from_f32`](Self::from_f32) with one task label per sample.
    pub fn with_task_label_buffer(
        inputs: InputBuffer,
        sample_shape: Vec<usize>,
        targets: Vec<u32>,
        task_labels: Vec<u32>,
    ) -> Result<Self> {
        Ok(Self::from_storage(Storage::new(inputs, sample_shape, targets, Some(task_labels))?))
    }

    /// Copies a `burn_dataset::Dataset` into contiguous storage.
    ///
    /// `to_sample` turns an item into (flattened f32 inputs, class label, task label); every item
    /// must have `sample_shape.iter().product()` values.
    pub fn from_burn_dataset<I, D, F>(dataset: &D, sample_shape: Vec<usize>, to_sample: F) -> Result<Self>
    where
        D: burn_dataset::Dataset<I> + ?Sized,
        I: Send + Sync,
        F: Fn(I) -> (Vec<f32>, u32, u32),
    {
        let sample_len = super::checked_sample_len(&sample_shape)?;
        let n = dataset.len();
        // Reserve for what the items hold (checked: a huge shape is an error, not a wrap).
        let total = n.checked_mul(sample_len).ok_or_else(|| {
            ClError::DatasetLayout(format!("{n} items of shape {sample_shape:?} hold more than usize::MAX values"))
        })?;
        let mut inputs = Vec::with_capacity(total.min(1 << 28));
        let mut targets = Vec::with_capacity(n);
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let item = dataset.get(i).map_err(|e| ClError::DatasetLayout(format!("burn dataset item {i}: {e}")))?;
            let (x, y, t) = to_sample(item);
            if x.len() != sample_len {
                return Err(ClError::DatasetLayout(format!(
                    "item {i} has {} values, the sample shape {sample_shape:?} needs {sample_len}",
                    x.len()
                )));
            }
            inputs.extend_from_slice(&x);
            targets.push(y);
            tasks.push(t);
        }
        Self::with_task_label_buffer(InputBuffer::F32(inputs), sample_shape, targets, tasks)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        *self.offsets.last().unwrap_or(&0)
    }

    /// Whether the dataset has no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Shape of one sample's input, e.g. `[1, 28, 28]`.
    pub fn sample_shape(&self) -> &[usize] {
        &self.sample_shape
    }

    /// Number of values of one sample's input.
    pub fn sample_len(&self) -> usize {
        self.sample_shape.iter().product()
    }

    #[inline]
    fn locate(&self, index: usize) -> (&Part, usize) {
        // `partition_point` gives the first part starting after `index`.
        let p = self.offsets.partition_point(|&o| o <= index) - 1;
        (&self.parts[p], index - self.offsets[p])
    }

    fn check(&self, index: usize) -> Result<()> {
        if index >= self.len() {
            return Err(ClError::IndexOutOfBounds { index, len: self.len() });
        }
        Ok(())
    }

    /// Class label of sample `index`.
    pub fn target(&self, index: usize) -> Result<u32> {
        self.check(index)?;
        let (p, l) = self.locate(index);
        Ok(p.target(l))
    }

    /// Task label of sample `index`.
    pub fn task_label(&self, index: usize) -> Result<u32> {
        self.check(index)?;
        let (p, l) = self.locate(index);
        Ok(p.task_label(l))
    }

    /// Sample `index` (inputs before transforms).
    pub fn sample(&self, index: usize) -> Result<Sample> {
        self.check(index)?;
        let (p, l) = self.locate(index);
        let mut x = Vec::with_capacity(self.sample_len());
        p.storage.push_input(p.storage_index(l), &mut x);
        Ok(Sample { x, y: p.target(l), t: p.task_label(l) })
    }

    /// All class labels, in order.
    pub fn targets(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.len());
        for p in self.parts.iter() {
            out.extend((0..p.len()).map(|l| p.target(l)));
        }
        out
    }

    /// All task labels, in order.
    pub fn task_labels(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.len());
        for p in self.parts.iter() {
            match p.task_label {
                Some(t) => out.extend(std::iter::repeat_n(t, p.len())),
                None => out.extend((0..p.len()).map(|l| p.task_label(l))),
            }
        }
        out
    }

    /// The distinct class labels present.
    pub fn classes(&self) -> BTreeSet<u32> {
        self.targets().into_iter().collect()
    }

    /// The distinct task labels present.
    pub fn distinct_task_labels(&self) -> BTreeSet<u32> {
        self.task_labels().into_iter().collect()
    }

    /// A view of the samples at `indices` (in that order; repeats allowed), without copying inputs.
    pub fn subset(&self, indices: &[usize]) -> Result<Self> {
        let len = self.len();
        if let Some(&bad) = indices.iter().find(|&&i| i >= len) {
            return Err(ClError::IndexOutOfBounds { index: bad, len });
        }
        // Group consecutive runs that fall into the same part into one new part.
        let mut parts: Vec<Part> = Vec::new();
        let mut offsets = vec![0usize];
        let mut run: Vec<u32> = Vec::new();
        let mut run_part: Option<usize> = None;
        let flush = |run: &mut Vec<u32>, pi: usize, parts: &mut Vec<Part>, offsets: &mut Vec<usize>| {
            if run.is_empty() {
                return;
            }
            let src = &self.parts[pi];
            parts.push(Part {
                storage: src.storage.clone(),
                indices: Some(std::mem::take(run).into()),
                target_map: src.target_map.clone(),
                task_label: src.task_label,
                transforms: src.transforms.clone(),
            });
            offsets.push(offsets.last().unwrap() + parts.last().unwrap().len());
        };
        for &i in indices {
            let pi = self.offsets.partition_point(|&o| o <= i) - 1;
            if run_part != Some(pi) {
                if let Some(prev) = run_part {
                    flush(&mut run, prev, &mut parts, &mut offsets);
                }
                run_part = Some(pi);
            }
            run.push(self.parts[pi].storage_index(i - self.offsets[pi]) as u32);
        }
        if let Some(prev) = run_part {
            flush(&mut run, prev, &mut parts, &mut offsets);
        }
        Ok(Self {
            parts: parts.into(),
            offsets: offsets.into(),
            sample_shape: self.sample_shape.clone(),
            mode: self.mode,
        })
    }

    /// `self` followed by `other`; costs O(number of parts), the samples are not copied.
    ///
    /// Every sample keeps the transforms of the dataset it came from; the result has `self`'s
    /// mode (train/eval view).
    pub fn concat(&self, other: &Self) -> Result<Self> {
        Self::concat_all([self, other]).map(|c| c.expect("two datasets"))
    }

    /// The concatenation of `datasets` in order, built in one pass (O(total parts); folding
    /// [`concat`](Self::concat) copies the growing part list each time, O(parts²)); `None` when
    /// there is none. The same checks as `concat`.
    pub fn concat_all<'a>(datasets: impl IntoIterator<Item = &'a Self>) -> Result<Option<Self>> {
        let mut it = datasets.into_iter();
        let Some(first) = it.next() else {
            return Ok(None);
        };
        let mut parts: Vec<Part> = first.parts.to_vec();
        let mut offsets: Vec<usize> = first.offsets.to_vec();
        for other in it {
            if first.sample_shape != other.sample_shape {
                return Err(ClError::SampleShapeMismatch {
                    left: first.sample_shape.to_vec(),
                    right: other.sample_shape.to_vec(),
                });
            }
            for mode in [TransformMode::Train, TransformMode::Eval] {
                let (a, b) = (
                    first.transforms().output_shape(mode, &first.sample_shape),
                    other.transforms().output_shape(mode, &other.sample_shape),
                );
                if a != b {
                    return Err(ClError::SampleShapeMismatch { left: a, right: b });
                }
            }
            let base = *offsets.last().expect("offsets start with 0");
            parts.extend(other.parts.iter().cloned());
            offsets.extend(other.offsets[1..].iter().map(|o| o + base));
        }
        Ok(Some(Self {
            parts: parts.into(),
            offsets: offsets.into(),
            sample_shape: first.sample_shape.clone(),
            mode: first.mode,
        }))
    }

    /// Relabels classes: a sample of class `c` gets class `mapping[c]` (applied after any earlier
    /// mapping). Every present class must be in range.
    pub fn with_class_mapping(&self, mapping: &[u32]) -> Result<Self> {
        let mut parts = self.parts.to_vec();
        for p in parts.iter_mut() {
            let composed: Arc<[u32]> = match &p.target_map {
                Some(m) => m.iter().map(|&c| mapping.get(c as usize).copied().unwrap_or(u32::MAX)).collect(),
                None => mapping.into(),
            };
            p.target_map = Some(composed);
        }
        let out = Self { parts: parts.into(), ..self.clone() };
        if let Some(bad) = self.classes().into_iter().find(|&c| c as usize >= mapping.len()) {
            return Err(ClError::DatasetLayout(format!(
                "class {bad} has no entry in a class mapping of {} classes",
                mapping.len()
            )));
        }
        Ok(out)
    }

    /// Gives every sample the task label `task`.
    pub fn with_task_label(&self, task: u32) -> Self {
        let mut parts = self.parts.to_vec();
        for p in parts.iter_mut() {
            p.task_label = Some(task);
        }
        Self { parts: parts.into(), ..self.clone() }
    }

    /// Replaces the transform groups of every sample; an error if a transform does not fit
    /// the samples.
    pub fn with_transforms(&self, transforms: TransformGroups) -> Result<Self> {
        transforms.check(&self.sample_shape)?;
        let mut parts = self.parts.to_vec();
        for p in parts.iter_mut() {
            p.transforms = transforms.clone();
        }
        Ok(Self { parts: parts.into(), ..self.clone() })
    }

    /// The transform groups of the first sample's part (after concatenations, parts may differ).
    pub fn transforms(&self) -> &TransformGroups {
        &self.parts[0].transforms
    }

    /// Shape of a sample after this view's transforms (e.g. smaller after a crop).
    pub fn output_shape(&self) -> Vec<usize> {
        self.transforms().output_shape(self.mode, &self.sample_shape)
    }

    /// The view applying the training transforms.
    pub fn train(&self) -> Self {
        Self { mode: TransformMode::Train, ..self.clone() }
    }

    /// The view applying the evaluation transforms.
    pub fn eval(&self) -> Self {
        Self { mode: TransformMode::Eval, ..self.clone() }
    }

    /// The transform group this view applies.
    pub fn mode(&self) -> TransformMode {
        self.mode
    }

    /// Builds the mini-batch of the samples at `indices` on `device`, transforms applied.
    ///
    /// Inputs are gathered into one buffer and uploaded once; labels are kept on the host too.
    pub fn batch(&self, indices: &[usize], device: &Device, rng: &mut ChaCha8Rng) -> Result<MiniBatch> {
        let len = self.len();
        if let Some(&bad) = indices.iter().find(|&&i| i >= len) {
            return Err(ClError::IndexOutOfBounds { index: bad, len });
        }
        let n = indices.len();
        let sample_len = self.sample_len();
        let mut x = Vec::with_capacity(n * sample_len);
        let mut targets = Vec::with_capacity(n);
        let mut tasks = Vec::with_capacity(n);
        for &i in indices {
            let (p, l) = self.locate(i);
            p.storage.push_input(p.storage_index(l), &mut x);
            targets.push(p.target(l));
            tasks.push(p.task_label(l));
        }
        let xt = Tensor::<2>::from_data(TensorData::new(x, [n, sample_len]), device);
        let (xt, out_shape) = self.apply_transforms(xt, indices, rng);
        let y = Tensor::<1, Int>::from_data(
            TensorData::new(targets.iter().map(|&v| v as i64).collect::<Vec<_>>(), [n]),
            device,
        );
        let t = Tensor::<1, Int>::from_data(
            TensorData::new(tasks.iter().map(|&v| v as i64).collect::<Vec<_>>(), [n]),
            device,
        );
        Ok(MiniBatch { x: xt, y, t, targets, task_labels: tasks, sample_shape: out_shape })
    }

    /// Applies each row's transforms: once for the whole batch when its samples share them
    /// (the usual case), else per group of rows, reassembled in the batch order.
    fn apply_transforms(&self, x: Tensor<2>, indices: &[usize], rng: &mut ChaCha8Rng) -> (Tensor<2>, Arc<[usize]>) {
        let mut groups: Vec<(&TransformGroups, Vec<i64>)> = Vec::new();
        for (row, &i) in indices.iter().enumerate() {
            let t = &self.locate(i).0.transforms;
            match groups.iter_mut().find(|(g, _)| g.same_as(t)) {
                Some((_, rows)) => rows.push(row as i64),
                None => groups.push((t, vec![row as i64])),
            }
        }
        let apply = |t: &TransformGroups, mut x: Tensor<2>, rng: &mut ChaCha8Rng| {
            let mut shape = self.sample_shape.to_vec();
            for tr in t.group(self.mode) {
                x = tr.apply(x, &shape, rng);
                shape = tr.output_shape(&shape);
            }
            (x, shape)
        };
        if groups.len() <= 1 {
            let t = groups.first().map_or(self.transforms(), |(t, _)| *t);
            let (x, shape) = apply(t, x, rng);
            return (x, shape.into());
        }
        let device = x.device();
        let mut outputs = Vec::with_capacity(groups.len());
        let mut order: Vec<i64> = Vec::with_capacity(indices.len());
        let mut shape = Vec::new();
        for (t, rows) in &groups {
            let n = rows.len();
            let sel = Tensor::<1, Int>::from_data(TensorData::new(rows.clone(), [n]), &device);
            let (out, s) = apply(t, x.clone().select(0, sel), rng);
            outputs.push(out);
            order.extend_from_slice(rows);
            shape = s;
        }
        // `order[k]` is the batch row of output row k: invert it to restore the batch order.
        let mut inverse = vec![0i64; order.len()];
        for (k, &row) in order.iter().enumerate() {
            inverse[row as usize] = k as i64;
        }
        let n = inverse.len();
        let inverse = Tensor::<1, Int>::from_data(TensorData::new(inverse, [n]), &device);
        (Tensor::cat(outputs, 0).select(0, inverse), shape.into())
    }
}

impl burn_dataset::Dataset<Sample> for ClassificationDataset {
    /// Panics if `index >= len()`, as the trait specifies; use [`ClassificationDataset::sample`]
    /// for a checked lookup.
    fn get(&self, index: usize) -> Result<Sample, burn_dataset::DatasetError> {
        match self.sample(index) {
            Ok(s) => Ok(s),
            Err(e) => panic!("{e}"),
        }
    }

    fn len(&self) -> usize {
        ClassificationDataset::len(self)
    }
}

// ---- checkpoints ----------------------------------------------------------------------------

impl Part {
    /// The storage indices of the part's samples, in order.
    fn storage_indices(&self) -> Vec<usize> {
        match &self.indices {
            Some(ix) => ix.iter().map(|&i| i as usize).collect(),
            None => (0..self.storage.len()).collect(),
        }
    }
}

fn transform_specs(group: &[Arc<dyn super::transform::Transform>]) -> Result<Vec<TransformSpec>> {
    group
        .iter()
        .map(|t| {
            t.spec().ok_or_else(|| ClError::NotCheckpointable {
                component: format!("transform {t:?}"),
                hook: "Transform::spec (a serialisable TransformSpec)",
            })
        })
        .collect()
}

fn build_transforms(specs: &[TransformSpec]) -> Result<Arc<[Arc<dyn super::transform::Transform>]>> {
    Ok(specs.iter().map(TransformSpec::build).collect::<Result<Vec<_>>>()?.into())
}

impl ClassificationDataset {
    /// Saves the dataset into a checkpoint: for each part (a view of one storage), its samples
    /// (copied out of the storage, in order: O(len), not the whole storage), class and task
    /// labels, relabelling and transforms (as [`TransformSpec`]s; a transform without a spec
    /// is [`ClError::NotCheckpointable`]). [`load_state`](Self::load_state) rebuilds a dataset
    /// that batches to the same tensors.
    pub fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("sample_shape", &self.sample_shape.to_vec())?;
        out.put("eval_mode", &(self.mode == TransformMode::Eval))?;
        out.put("parts", &self.parts.len())?;
        for (p, part) in self.parts.iter().enumerate() {
            let storage = &part.storage;
            let ix = part.storage_indices();
            let len = storage.sample_len;
            let shape = [ix.len(), len];
            let inputs = match &storage.inputs {
                InputBuffer::U8(v) => {
                    let mut x = Vec::with_capacity(ix.len() * len);
                    for &i in &ix {
                        x.extend_from_slice(&v[i * len..(i + 1) * len]);
                    }
                    TensorData::new(x, shape)
                }
                InputBuffer::F32(v) => {
                    let mut x = Vec::with_capacity(ix.len() * len);
                    for &i in &ix {
                        x.extend_from_slice(&v[i * len..(i + 1) * len]);
                    }
                    TensorData::new(x, shape)
                }
            };
            out.put_data(&format!("{p}/inputs"), inputs);
            let targets: Vec<u32> = ix.iter().map(|&i| storage.targets[i]).collect();
            out.put_data(&format!("{p}/targets"), TensorData::new(targets, [ix.len()]));
            if let Some(t) = &storage.task_labels {
                let tasks: Vec<u32> = ix.iter().map(|&i| t[i]).collect();
                out.put_data(&format!("{p}/task_labels"), TensorData::new(tasks, [ix.len()]));
            }
            out.put(&format!("{p}/storage_shape"), &storage.sample_shape)?;
            out.put(&format!("{p}/target_map"), &part.target_map.as_ref().map(|m| m.to_vec()))?;
            out.put(&format!("{p}/task_label"), &part.task_label)?;
            let same = Arc::ptr_eq(&part.transforms.train, &part.transforms.eval);
            out.put(&format!("{p}/transforms_shared"), &same)?;
            out.put(&format!("{p}/train_transforms"), &transform_specs(&part.transforms.train)?)?;
            out.put(&format!("{p}/eval_transforms"), &transform_specs(&part.transforms.eval)?)?;
        }
        Ok(())
    }

    /// Rebuilds a dataset saved by [`save_state`](Self::save_state).
    pub fn load_state(state: &StateDict) -> Result<Self> {
        let entry = |key: String, reason: String| ClError::CheckpointEntry {
            component: state.component().to_string(),
            key,
            reason,
        };
        let sample_shape: Vec<usize> = state.get("sample_shape")?;
        let eval_mode: bool = state.get("eval_mode")?;
        let n: usize = state.get("parts")?;
        let mut parts = Vec::new();
        let mut offsets = vec![0usize];
        for p in 0..n {
            let inputs = state.data(&format!("{p}/inputs"))?;
            let inputs = match inputs.dtype() {
                burn::tensor::DType::U8 => InputBuffer::U8(
                    inputs.try_into_vec::<u8>().map_err(|e| entry(format!("{p}/inputs"), format!("{e:?}")))?,
                ),
                _ => InputBuffer::F32(
                    inputs.try_into_vec::<f32>().map_err(|e| entry(format!("{p}/inputs"), format!("{e:?}")))?,
                ),
            };
            let u32s = |key: String| -> Result<Vec<u32>> {
                state.data(&key)?.try_into_vec::<u32>().map_err(|e| entry(key, format!("{e:?}")))
            };
            let targets = u32s(format!("{p}/targets"))?;
            let tasks = match state.contains(&format!("{p}/task_labels")) {
                true => Some(u32s(format!("{p}/task_labels"))?),
                false => None,
            };
            let storage_shape: Vec<usize> = state.get(&format!("{p}/storage_shape"))?;
            if storage_shape != sample_shape {
                return Err(entry(
                    format!("{p}/storage_shape"),
                    format!("samples of shape {storage_shape:?} in a dataset of shape {sample_shape:?}"),
                ));
            }
            let len = targets.len();
            let target_map: Option<Vec<u32>> = state.get(&format!("{p}/target_map"))?;
            if let (Some(m), Some(&max)) = (&target_map, targets.iter().max())
                && max as usize >= m.len()
            {
                return Err(entry(
                    format!("{p}/target_map"),
                    format!("maps {} classes but a sample has class {max}", m.len()),
                ));
            }
            let storage = Storage::new(inputs, storage_shape, targets, tasks)
                .map_err(|e| entry(format!("{p}/inputs"), e.to_string()))?;
            let train = build_transforms(&state.get::<Vec<TransformSpec>>(&format!("{p}/train_transforms"))?)?;
            let eval = match state.get::<bool>(&format!("{p}/transforms_shared"))? {
                true => train.clone(),
                false => build_transforms(&state.get::<Vec<TransformSpec>>(&format!("{p}/eval_transforms"))?)?,
            };
            let transforms = TransformGroups { train, eval };
            transforms.check(&sample_shape)?;
            parts.push(Part {
                storage: Arc::new(storage),
                indices: None,
                target_map: target_map.map(Into::into),
                task_label: state.get(&format!("{p}/task_label"))?,
                transforms,
            });
            offsets.push(offsets[p] + len);
        }
        Ok(Self {
            parts: parts.into(),
            offsets: offsets.into(),
            sample_shape: sample_shape.into(),
            mode: if eval_mode { TransformMode::Eval } else { TransformMode::Train },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn ds(n: usize) -> ClassificationDataset {
        let inputs: Vec<u8> = (0..n * 2).map(|i| i as u8).collect();
        ClassificationDataset::from_u8(inputs, vec![2], (0..n as u32).map(|i| i % 3).collect()).unwrap()
    }

    #[test]
    fn subsets_are_views_in_the_given_order() {
        let d = ds(6);
        let s = d.subset(&[5, 0, 0, 3]).unwrap();
        assert_eq!(s.targets(), vec![2, 0, 0, 0]);
        assert_eq!(s.sample(0).unwrap().x, vec![10.0 / 255.0, 11.0 / 255.0]);
        // A subset of a subset maps back to the storage.
        let ss = s.subset(&[3, 0]).unwrap();
        assert_eq!(ss.sample(0).unwrap().x, vec![6.0 / 255.0, 7.0 / 255.0]);
        assert!(matches!(d.subset(&[6]), Err(ClError::IndexOutOfBounds { index: 6, len: 6 })));
    }

    #[test]
    fn concat_appends_parts_and_subsets_cross_parts() {
        let a = ds(3);
        let b = ds(4).with_task_label(1);
        let c = a.concat(&b).unwrap();
        assert_eq!(c.len(), 7);
        assert_eq!(c.task_labels(), vec![0, 0, 0, 1, 1, 1, 1]);
        let s = c.subset(&[6, 1, 4]).unwrap();
        assert_eq!(s.task_labels(), vec![1, 0, 1]);
        assert_eq!(s.targets(), vec![0, 1, 1]);
        let other = ClassificationDataset::from_f32(vec![0.0; 3], vec![3], vec![0]).unwrap();
        assert!(matches!(a.concat(&other), Err(ClError::SampleShapeMismatch { .. })));
    }

    /// `concat_all` in one pass gives what folding `concat` gives.
    #[test]
    fn concat_all_is_folded_concat() {
        let parts = [ds(3), ds(4).with_task_label(1), ds(2).subset(&[1]).unwrap(), ds(5).with_task_label(2)];
        let all = ClassificationDataset::concat_all(&parts).unwrap().unwrap();
        let folded = parts[1..].iter().fold(parts[0].clone(), |a, b| a.concat(b).unwrap());
        assert_eq!(all.len(), folded.len());
        assert_eq!(all.targets(), folded.targets());
        assert_eq!(all.task_labels(), folded.task_labels());
        for i in 0..all.len() {
            assert_eq!(all.sample(i).unwrap().x, folded.sample(i).unwrap().x);
        }
        assert!(ClassificationDataset::concat_all(std::iter::empty()).unwrap().is_none());
        let other = ClassificationDataset::from_f32(vec![0.0; 3], vec![3], vec![0]).unwrap();
        let err = ClassificationDataset::concat_all([&parts[0], &other]).unwrap_err();
        assert!(matches!(err, ClError::SampleShapeMismatch { .. }));
    }

    #[test]
    fn class_mappings_compose() {
        let d = ds(3).with_class_mapping(&[2, 1, 0]).unwrap();
        assert_eq!(d.targets(), vec![2, 1, 0]);
        let d2 = d.with_class_mapping(&[0, 0, 1]).unwrap();
        assert_eq!(d2.targets(), vec![1, 0, 0]);
        assert!(ds(3).with_class_mapping(&[0, 1]).is_err());
    }

    #[test]
    fn inconsistent_buffers_are_rejected() {
        assert!(matches!(
            ClassificationDataset::from_u8(vec![0; 5], vec![2], vec![0, 1]),
            Err(ClError::DatasetLayout(_))
        ));
        assert!(ClassificationDataset::from_f32(vec![f32::NAN, 0.0], vec![2], vec![0]).is_err());
        assert!(ClassificationDataset::from_f32(vec![], vec![0], vec![]).is_err());
    }

    #[test]
    fn wraps_and_implements_burn_datasets() {
        use burn_dataset::{Dataset, InMemDataset};
        // A burn dataset of (image bytes, label) items.
        let items: Vec<(Vec<u8>, u8)> = (0..5u8).map(|i| (vec![i, 2 * i, 3 * i, 4 * i], i % 2)).collect();
        let source = InMemDataset::new(items);
        let ds = ClassificationDataset::from_burn_dataset(&source, vec![1, 2, 2], |(x, y)| {
            (x.iter().map(|&b| b as f32).collect(), y as u32, 0)
        })
        .unwrap();
        assert_eq!(ds.len(), 5);
        assert_eq!(ds.targets(), vec![0, 1, 0, 1, 0]);
        assert_eq!(ds.sample(3).unwrap().x, vec![3.0, 6.0, 9.0, 12.0]);
        // And ours is a burn dataset.
        let as_burn: &dyn Dataset<Sample> = &ds;
        assert_eq!(as_burn.len(), 5);
        assert_eq!(as_burn.get(1).unwrap().y, 1);
        let bad = ClassificationDataset::from_burn_dataset(&source, vec![3], |(x, y)| {
            (x.iter().map(|&b| b as f32).collect(), y as u32, 0)
        });
        assert!(matches!(bad, Err(ClError::DatasetLayout(_))));
    }

    #[test]
    fn concatenated_parts_keep_their_own_transforms() {
        use crate::data::{PixelPermutation, Transform, TransformGroups};
        let groups = |perm: Vec<usize>| {
            let t: Arc<dyn Transform> = Arc::new(PixelPermutation::new(perm).unwrap());
            TransformGroups::same(vec![t])
        };
        let a = ClassificationDataset::from_f32(vec![1., 2., 3., 4.], vec![2], vec![0, 0]).unwrap();
        let b = ClassificationDataset::from_f32(vec![5., 6., 7., 8.], vec![2], vec![1, 1]).unwrap();
        let a = a.with_transforms(groups(vec![0, 1])).unwrap();
        let b = b.with_transforms(groups(vec![1, 0])).unwrap();
        let both = a.concat(&b).unwrap();
        let device = burn::tensor::Device::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        // Rows from both parts, interleaved: each keeps its own permutation, order preserved.
        let batch = both.batch(&[2, 0, 3, 1], &device, &mut rng).unwrap();
        let x = batch.x.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(x, vec![6., 5., 1., 2., 8., 7., 3., 4.]);
        assert_eq!(batch.targets, vec![1, 0, 1, 0]);
        // A view of one part only takes the fast path.
        let only_b = both.subset(&[3, 2]).unwrap().batch(&[0, 1], &device, &mut rng).unwrap();
        assert_eq!(only_b.x.into_data().try_to_vec::<f32>().unwrap(), vec![8., 7., 6., 5.]);
    }

    #[test]
    fn batch_gathers_rows_and_labels() {
        let device = burn::tensor::Device::default();
        let d = ds(4);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let b = d.batch(&[3, 1], &device, &mut rng).unwrap();
        assert_eq!(b.targets, vec![0, 1]);
        assert_eq!(b.x.dims(), [2, 2]);
        let x = b.x.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(x, vec![6.0 / 255.0, 7.0 / 255.0, 2.0 / 255.0, 3.0 / 255.0]);
    }
}
