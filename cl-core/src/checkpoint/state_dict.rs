//! [`StateDict`]: the named values, tensors, modules and datasets one component saves into a
//! checkpoint (Avalanche's and PyTorch's `state_dict`), with a compact binary encoding.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, DType, Device, Tensor, TensorData};
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::data::ClassificationDataset;
use crate::error::{ClError, Result};

/// One entry of a [`StateDict`].
#[derive(Debug, Clone, PartialEq)]
enum Entry {
    /// A serde value (counters, configurations, small vectors), stored as JSON.
    Value(serde_json::Value),
    /// A tensor's data (dtype, shape, raw bytes).
    Tensor(TensorData),
    /// Opaque bytes (a Burn record, an optimizer record).
    Bytes(Vec<u8>),
    /// A nested dictionary (a sub-component: a storage policy inside a replay plugin, ...).
    Dict(StateDict),
}

/// The state of one component of a run (a plugin, the evaluator, a metric, the steps, a
/// model's dynamic layout), as it goes into a checkpoint: Avalanche's `state_dict`.
///
/// Entries are named; a component writes them in [`Plugin::save_state`](crate::Plugin::save_state)
/// and reads them back, by the same names, in `load_state`. Values go through serde (JSON),
/// tensors and modules as raw bytes (Burn's records keep the parameter ids, so the optimizer's
/// state still matches the model after a resume), datasets as their samples and transforms.
/// Reading an entry that is missing or of another kind is [`ClError::CheckpointEntry`], naming
/// the component and the entry.
///
/// ```
/// use cl_core::checkpoint::StateDict;
/// let mut state = StateDict::new("plugin `Counter`");
/// state.put("seen", &42u64)?;
/// state.put("classes", &vec![1u32, 4, 7])?;
/// let bytes = state.to_bytes();
/// let back = StateDict::from_bytes(&bytes, "plugin `Counter`")?;
/// assert_eq!(back.get::<u64>("seen")?, 42);
/// assert_eq!(back.get::<Vec<u32>>("classes")?, [1, 4, 7]);
/// assert!(back.get::<u64>("missing").is_err());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StateDict {
    component: String,
    entries: BTreeMap<String, Entry>,
}

/// The dtype and shape of a stored tensor.
#[derive(Serialize, Deserialize)]
struct TensorMeta {
    dtype: DType,
    shape: Vec<usize>,
}

impl StateDict {
    /// An empty dictionary for `component` (named in error messages: `plugin \`Replay\``).
    pub fn new(component: impl Into<String>) -> Self {
        Self { component: component.into(), entries: BTreeMap::new() }
    }

    /// The component this dictionary belongs to.
    pub fn component(&self) -> &str {
        &self.component
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether an entry `key` exists.
    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// The entry names, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    fn entry_error(&self, key: &str, reason: impl Into<String>) -> ClError {
        ClError::CheckpointEntry { component: self.component.clone(), key: key.to_string(), reason: reason.into() }
    }

    fn entry(&self, key: &str) -> Result<&Entry> {
        self.entries.get(key).ok_or_else(|| {
            let have: Vec<&str> = self.keys().collect();
            self.entry_error(
                key,
                format!("missing (the checkpoint has {have:?}); was it written by another version of this component?"),
            )
        })
    }

    // ---- values ----------------------------------------------------------------------------

    /// Stores a serde value.
    pub fn put<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<()> {
        let v = serde_json::to_value(value).map_err(|e| self.entry_error(key, format!("cannot serialise: {e}")))?;
        self.entries.insert(key.to_string(), Entry::Value(v));
        Ok(())
    }

    /// Reads a serde value.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<T> {
        match self.entry(key)? {
            Entry::Value(v) => serde_json::from_value(v.clone())
                .map_err(|e| self.entry_error(key, format!("does not decode as {}: {e}", std::any::type_name::<T>()))),
            _ => Err(self.entry_error(key, "is not a value")),
        }
    }

    /// Checks that the configuration saved under `key` equals `current` (a component's
    /// hyper-parameters): a checkpoint of a replay plugin with 500 samples must not be loaded
    /// into one with 200. A mismatch is [`ClError::CheckpointMismatch`].
    pub fn check_config<T: Serialize>(&self, key: &str, current: &T) -> Result<()> {
        let current = serde_json::to_value(current).map_err(|e| self.entry_error(key, e.to_string()))?;
        match self.entry(key)? {
            Entry::Value(saved) if *saved == current => Ok(()),
            Entry::Value(saved) => Err(ClError::CheckpointMismatch {
                path: Default::default(),
                what: format!("{} configuration (`{key}`)", self.component),
                checkpoint: saved.to_string(),
                current: current.to_string(),
            }),
            _ => Err(self.entry_error(key, "is not a value")),
        }
    }

    // ---- tensors ---------------------------------------------------------------------------

    /// Stores a tensor's data as it is (dtype and shape kept).
    pub fn put_data(&mut self, key: &str, data: TensorData) {
        self.entries.insert(key.to_string(), Entry::Tensor(data));
    }

    /// Reads a tensor's data.
    pub fn data(&self, key: &str) -> Result<TensorData> {
        match self.entry(key)? {
            Entry::Tensor(d) => Ok(d.clone()),
            _ => Err(self.entry_error(key, "is not a tensor")),
        }
    }

    /// Stores a float tensor (read back, exactly, with [`tensor`](Self::tensor)).
    pub fn put_tensor<const D: usize>(&mut self, key: &str, tensor: &Tensor<D>) {
        self.put_data(key, tensor.to_data());
    }

    /// Reads a float tensor of rank `D` onto `device`.
    pub fn tensor<const D: usize>(&self, key: &str, device: &Device) -> Result<Tensor<D>> {
        let data = self.data(key)?;
        if data.shape().len() != D {
            return Err(self.entry_error(key, format!("has rank {}, expected {D}", data.shape().len())));
        }
        Ok(Tensor::from_data(data, device))
    }

    /// Stores optional float tensors in order (`key/0`, `key/1`, ... and the count).
    pub fn put_tensors<const D: usize>(&mut self, key: &str, tensors: &[Tensor<D>]) -> Result<()> {
        self.put(&format!("{key}/len"), &tensors.len())?;
        for (i, t) in tensors.iter().enumerate() {
            self.put_tensor(&format!("{key}/{i}"), t);
        }
        Ok(())
    }

    /// Reads tensors stored with [`put_tensors`](Self::put_tensors).
    pub fn tensors<const D: usize>(&self, key: &str, device: &Device) -> Result<Vec<Tensor<D>>> {
        let n: usize = self.get(&format!("{key}/len"))?;
        (0..n).map(|i| self.tensor(&format!("{key}/{i}"), device)).collect()
    }

    // ---- bytes, modules, random generators -------------------------------------------------

    /// Stores opaque bytes.
    pub fn put_bytes(&mut self, key: &str, bytes: Vec<u8>) {
        self.entries.insert(key.to_string(), Entry::Bytes(bytes));
    }

    /// Reads opaque bytes.
    pub fn bytes(&self, key: &str) -> Result<&[u8]> {
        match self.entry(key)? {
            Entry::Bytes(b) => Ok(b),
            _ => Err(self.entry_error(key, "is not a byte string")),
        }
    }

    /// Stores a module's parameters as a Burn record (parameter ids kept).
    pub fn put_module<Mo: Module>(&mut self, key: &str, module: &Mo) -> Result<()> {
        let bytes = module
            .clone()
            .into_record()
            .into_bytes()
            .map_err(|e| self.entry_error(key, format!("cannot encode the module's record: {e}")))?;
        self.put_bytes(key, bytes.to_vec());
        Ok(())
    }

    /// Loads a module stored with [`put_module`](Self::put_module) into `template` (a module of
    /// the same structure, e.g. a clone of the strategy's model); the parameters get the saved
    /// values and ids, on the template's devices.
    pub fn module<Mo: Module>(&self, key: &str, template: Mo) -> Result<Mo> {
        let bytes = self.bytes(key)?;
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes.to_vec()))
            .map_err(|e| self.entry_error(key, format!("is not a Burn record: {e}")))?;
        template.try_load_record(record).map_err(|e| {
            self.entry_error(
                key,
                format!("does not fit the module (was the model built with the same configuration?): {e}"),
            )
        })
    }

    /// Stores a ChaCha generator's exact position (seed, stream, word position).
    pub fn put_rng(&mut self, key: &str, rng: &ChaCha8Rng) -> Result<()> {
        self.put(key, &(rng.get_seed(), rng.get_stream(), rng.get_word_pos()))
    }

    /// Reads a generator stored with [`put_rng`](Self::put_rng), at the saved position.
    pub fn rng(&self, key: &str) -> Result<ChaCha8Rng> {
        use rand::SeedableRng;
        let (seed, stream, pos): ([u8; 32], u64, u128) = self.get(key)?;
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(stream);
        rng.set_word_pos(pos);
        Ok(rng)
    }

    // ---- datasets ------------------------------------------------------------------------------

    /// Stores a dataset: its samples (only those it holds, not the whole storage it views),
    /// labels, relabelling and transforms (see [`ClassificationDataset::save_state`]).
    pub fn put_dataset(&mut self, key: &str, dataset: &ClassificationDataset) -> Result<()> {
        let mut d = StateDict::new(format!("{} (dataset `{key}`)", self.component));
        dataset.save_state(&mut d)?;
        self.put_dict(key, d);
        Ok(())
    }

    /// Reads a dataset stored with [`put_dataset`](Self::put_dataset).
    pub fn dataset(&self, key: &str) -> Result<ClassificationDataset> {
        ClassificationDataset::load_state(self.dict(key)?)
    }

    // ---- nested dictionaries -----------------------------------------------------------------

    /// Stores a nested dictionary (a sub-component's state).
    pub fn put_dict(&mut self, key: &str, dict: StateDict) {
        self.entries.insert(key.to_string(), Entry::Dict(dict));
    }

    /// Reads a nested dictionary.
    pub fn dict(&self, key: &str) -> Result<&StateDict> {
        match self.entry(key)? {
            Entry::Dict(d) => Ok(d),
            _ => Err(self.entry_error(key, "is not a dictionary")),
        }
    }

    // ---- encoding ----------------------------------------------------------------------------

    /// The binary encoding (entries sorted by name; tensors and bytes stored raw).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for (key, entry) in &self.entries {
            put_chunk(out, key.as_bytes());
            match entry {
                Entry::Value(v) => {
                    out.push(0);
                    put_chunk(out, serde_json::to_string(v).expect("JSON values serialise").as_bytes());
                }
                Entry::Tensor(d) => {
                    out.push(1);
                    let meta = TensorMeta { dtype: d.dtype(), shape: d.shape().to_vec() };
                    put_chunk(out, serde_json::to_string(&meta).expect("tensor metadata serialises").as_bytes());
                    put_chunk(out, d.as_bytes());
                }
                Entry::Bytes(b) => {
                    out.push(2);
                    put_chunk(out, b);
                }
                Entry::Dict(d) => {
                    out.push(3);
                    put_chunk(out, d.component.as_bytes());
                    d.encode(out);
                }
            }
        }
    }

    /// Decodes [`to_bytes`](Self::to_bytes)'s output; a truncated or malformed encoding is
    /// [`ClError::CheckpointEntry`].
    pub fn from_bytes(bytes: &[u8], component: impl Into<String>) -> Result<Self> {
        let component = component.into();
        let mut reader = Reader { bytes, pos: 0, depth: 0 };
        let dict = Self::decode(&mut reader, component.clone()).map_err(|reason| ClError::CheckpointEntry {
            component: component.clone(),
            key: "(encoding)".into(),
            reason,
        })?;
        if reader.pos != bytes.len() {
            return Err(ClError::CheckpointEntry {
                component,
                key: "(encoding)".into(),
                reason: format!("{} trailing bytes", bytes.len() - reader.pos),
            });
        }
        Ok(dict)
    }

    fn decode(r: &mut Reader<'_>, component: String) -> std::result::Result<Self, String> {
        r.depth += 1;
        if r.depth > MAX_DEPTH {
            return Err(format!("dictionaries nested deeper than {MAX_DEPTH}"));
        }
        let n = r.u64()? as usize;
        let mut entries = BTreeMap::new();
        for _ in 0..n {
            let key = r.string()?;
            let tag = r.u8()?;
            let entry = match tag {
                0 => Entry::Value(serde_json::from_slice(r.chunk()?).map_err(|e| format!("entry `{key}`: {e}"))?),
                1 => {
                    let meta: TensorMeta =
                        serde_json::from_slice(r.chunk()?).map_err(|e| format!("entry `{key}`: {e}"))?;
                    let raw = r.chunk()?.to_vec();
                    let plain = matches!(
                        meta.dtype,
                        DType::F64
                            | DType::F32
                            | DType::F16
                            | DType::BF16
                            | DType::I64
                            | DType::I32
                            | DType::I16
                            | DType::I8
                            | DType::U64
                            | DType::U32
                            | DType::U16
                            | DType::U8
                            | DType::Bool(_)
                    );
                    if !plain {
                        return Err(format!("entry `{key}`: unsupported tensor dtype {:?}", meta.dtype));
                    }
                    let expected = meta
                        .shape
                        .iter()
                        .try_fold(meta.dtype.size(), |acc, &d| acc.checked_mul(d))
                        .ok_or_else(|| format!("entry `{key}`: shape {:?} overflows", meta.shape))?;
                    if raw.len() != expected {
                        return Err(format!(
                            "entry `{key}`: {} bytes for a {:?} tensor of shape {:?}",
                            raw.len(),
                            meta.dtype,
                            meta.shape
                        ));
                    }
                    Entry::Tensor(TensorData::from_bytes_vec(raw, meta.shape, meta.dtype))
                }
                2 => Entry::Bytes(r.chunk()?.to_vec()),
                3 => {
                    let sub = r.string()?;
                    Entry::Dict(Self::decode(r, sub)?)
                }
                t => return Err(format!("entry `{key}` has unknown kind {t}")),
            };
            entries.insert(key, entry);
        }
        r.depth -= 1;
        Ok(Self { component, entries })
    }
}

fn put_chunk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// How deep dictionaries may nest (a component's state is a few levels deep).
const MAX_DEPTH: usize = 64;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(|| {
            format!("truncated: {n} bytes needed at offset {}, {} left", self.pos, self.bytes.len() - self.pos)
        })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> std::result::Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    fn chunk(&mut self) -> std::result::Result<&'a [u8], String> {
        let n = self.u64()?;
        self.take(usize::try_from(n).map_err(|_| "chunk length overflows".to_string())?)
    }

    fn string(&mut self) -> std::result::Result<String, String> {
        String::from_utf8(self.chunk()?.to_vec()).map_err(|_| "an entry name is not UTF-8".to_string())
    }
}
