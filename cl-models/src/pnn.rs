//! [`Pnn`]: progressive neural networks (Rusu et al., 2016; Avalanche's `PNN`, `PNNLayer`,
//! `PNNColumn`, `LinearAdapter`, `MLPAdapter`).

use std::collections::BTreeMap;

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, rule};
use cl_core::data::MiniBatch;
use cl_core::{Adaptation, ClError, DynamicModule, Model, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::dynamic::{MultiHeadClassifier, MultiHeadConfig};
use crate::headed::Head;
use crate::simple_mlp::seeded_linear;

/// The lateral connections of a column from the columns before it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PnnAdapter {
    /// Avalanche's `MLPAdapter` (default): `U·relu(V·[α₁h₁, …, α_k h_k])`, `α ~ N(0, 1)`.
    #[default]
    Mlp,
    /// Avalanche's `LinearAdapter`: `Σ_i W_i h_i`.
    Linear,
}

/// When a column is added for a task label never seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnPolicy {
    /// Only when training on the task (default). Evaluating a task without a column uses the
    /// newest column.
    #[default]
    Training,
    /// At every adaptation, evaluation included, as Avalanche's `PNNLayer.adaptation`: evaluating
    /// unseen tasks adds their columns, and each addition freezes every earlier column, so a
    /// task evaluated before it is trained trains only its head (the usual protocol of
    /// evaluating the whole stream after each experience).
    Avalanche,
}

/// The configuration of [`Pnn`]: Avalanche's `PNN(num_layers=1, in_features=784,
/// hidden_features_per_column=100, adapter="mlp")`.
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_models::{PnnAdapter, PnnConfig};
/// let config = PnnConfig::new().with_num_layers(2).with_adapter(PnnAdapter::Linear);
/// assert_eq!(PnnConfig::from_toml("num_layers = 2\nadapter = \"linear\"")?, config);
/// assert!(PnnConfig::from_toml("num_layers = 0").is_err());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PnnConfig {
    /// Layers per column (default 1).
    pub num_layers: usize,
    /// Input values per sample (default 784).
    pub in_features: usize,
    /// Hidden units of each column's layers (default 100).
    pub hidden_features_per_column: usize,
    /// The adapters of the layers after the first (default MLP). The first layer's are always
    /// MLP adapters, as in Avalanche (its `PNN` builds the first `PNNLayer` with the default).
    pub adapter: PnnAdapter,
    /// When columns are added (default [`ColumnPolicy::Training`]; Avalanche's is
    /// [`ColumnPolicy::Avalanche`]).
    pub columns: ColumnPolicy,
    /// Seed of the initial weights (column `c` of layer `l`: derived from `seed`, `l`, `c`;
    /// default 0).
    pub seed: u64,
}

impl Default for PnnConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl PnnConfig {
    /// Avalanche's defaults.
    pub fn new() -> Self {
        Self {
            num_layers: 1,
            in_features: 784,
            hidden_features_per_column: 100,
            adapter: PnnAdapter::Mlp,
            columns: ColumnPolicy::Training,
            seed: 0,
        }
    }

    /// Sets the layers per column.
    pub fn with_num_layers(mut self, num_layers: usize) -> Self {
        self.num_layers = num_layers;
        self
    }

    /// Sets the input width.
    pub fn with_in_features(mut self, in_features: usize) -> Self {
        self.in_features = in_features;
        self
    }

    /// Sets the hidden width of the columns.
    pub fn with_hidden_features_per_column(mut self, hidden: usize) -> Self {
        self.hidden_features_per_column = hidden;
        self
    }

    /// Sets the adapters of the layers after the first.
    pub fn with_adapter(mut self, adapter: PnnAdapter) -> Self {
        self.adapter = adapter;
        self
    }

    /// Sets when columns are added.
    pub fn with_columns(mut self, columns: ColumnPolicy) -> Self {
        self.columns = columns;
        self
    }

    /// Sets the seed of the initial weights.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// One column (for the first task label seen) and one head, on `device`.
    pub fn init(&self, device: &Device) -> Result<Pnn> {
        self.validate()?;
        let layers = (0..self.num_layers).map(|l| PnnLayer { columns: vec![self.column(l, 0, device)] }).collect();
        let classifier = MultiHeadConfig::new(self.hidden_features_per_column).with_seed(self.seed).init(device)?;
        Ok(Pnn { layers, classifier, config: self.clone(), task_columns: BTreeMap::new() })
    }

    fn width_in(&self, layer: usize) -> usize {
        if layer == 0 { self.in_features } else { self.hidden_features_per_column }
    }

    fn adapter_of(&self, layer: usize) -> PnnAdapter {
        if layer == 0 { PnnAdapter::Mlp } else { self.adapter }
    }

    /// Column `index` of layer `layer`, with `index` lateral inputs.
    fn column(&self, layer: usize, index: usize, device: &Device) -> PnnColumn {
        let seed = self.seed ^ (0x504E_4E00_0000 + ((layer as u64) << 20) + index as u64);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (d_in, h) = (self.width_in(layer), self.hidden_features_per_column);
        let itoh = seeded_linear(d_in, h, &mut rng, device);
        let (mut lateral, mut v, mut u, mut alphas) = (Vec::new(), None, None, None);
        if index > 0 {
            match self.adapter_of(layer) {
                PnnAdapter::Linear => lateral = (0..index).map(|_| seeded_linear(d_in, h, &mut rng, device)).collect(),
                PnnAdapter::Mlp => {
                    v = Some(seeded_linear(d_in * index, h, &mut rng, device));
                    let normal: Vec<f32> = (0..index).map(|_| standard_normal(&mut rng)).collect();
                    alphas = Some(Param::from_tensor(Tensor::from_data(TensorData::new(normal, [index]), device)));
                    u = Some(seeded_linear(h, h, &mut rng, device));
                }
            }
        }
        PnnColumn { itoh, lateral, v, u, alphas }
    }
}

/// A standard normal draw (Box–Muller).
fn standard_normal(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random_range(0.0..1.0);
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

impl Validate for PnnConfig {
    /// `num_layers_positive`, `in_features_positive`, `hidden_features_positive`.
    fn validate(&self) -> Result<()> {
        const C: &str = "PnnConfig";
        rule(C, "num_layers_positive", self.num_layers > 0, || "num_layers must be at least 1".into())?;
        rule(C, "in_features_positive", self.in_features > 0, || "in_features must be at least 1".into())?;
        rule(C, "hidden_features_positive", self.hidden_features_per_column > 0, || {
            "hidden_features_per_column must be at least 1".into()
        })
    }
}

/// One column of a [`PnnLayer`] (Avalanche's `PNNColumn`): its own input-to-hidden layer plus
/// the adapter of the earlier columns' inputs.
#[derive(Module, Debug)]
pub struct PnnColumn {
    /// Input to hidden (`itoh`).
    pub itoh: Linear,
    /// The linear adapter's layers, one per earlier column.
    pub lateral: Vec<Linear>,
    /// The MLP adapter's first layer (over the concatenated scaled inputs).
    pub v: Option<Linear>,
    /// The MLP adapter's second layer.
    pub u: Option<Linear>,
    /// The MLP adapter's scales, one per earlier column.
    pub alphas: Option<Param<Tensor<1>>>,
}

impl PnnColumn {
    /// The column's pre-activation from the inputs of columns `0..=its index` (its own last).
    fn forward(&self, inputs: &[Tensor<2>]) -> Tensor<2> {
        let (own, earlier) = inputs.split_last().expect("a column has its own input");
        let mut h = self.itoh.forward(own.clone());
        if !earlier.is_empty() {
            if let (Some(v), Some(u), Some(alphas)) = (&self.v, &self.u, &self.alphas) {
                let alphas = alphas.val();
                let scaled: Vec<Tensor<2>> = earlier
                    .iter()
                    .enumerate()
                    .map(|(i, x)| x.clone().mul(alphas.clone().slice(i..i + 1).unsqueeze::<2>()))
                    .collect();
                h = h + u.forward(relu(v.forward(Tensor::cat(scaled, 1))));
            } else {
                for (lat, x) in self.lateral.iter().zip(earlier) {
                    h = h + lat.forward(x.clone());
                }
            }
        }
        h
    }
}

/// One layer of every column (Avalanche's `PNNLayer`).
#[derive(Module, Debug)]
pub struct PnnLayer {
    /// The columns, in the order their tasks arrived.
    pub columns: Vec<PnnColumn>,
}

/// A progressive neural network (Rusu et al., "Progressive Neural Networks", 2016; Avalanche's
/// `PNN`, `avalanche/models/pnn.py`): one column of `num_layers` layers per task label, each
/// layer of a column fed by its own previous layer and, through an adapter, by the earlier
/// columns' previous layers; earlier columns frozen when a column is added; a
/// [`MultiHeadClassifier`] on the task's column. Train it with `PnnStrategy` (Naive on a PNN)
/// on task-incremental streams, one task label per experience.
///
/// As Avalanche's: ReLU after every layer; the first layer's adapters are MLP adapters whatever
/// `adapter` says; the first task label seen gets column 0; an MLP adapter scales each earlier
/// input by a learned `α ~ N(0, 1)`; mixed task labels in a batch run each group through its
/// own column. Weights are drawn as PyTorch's default initialisation from a host RNG seeded by
/// the configuration (not torch's global generator).
#[derive(Module, Debug)]
pub struct Pnn {
    /// The layers, each holding every column.
    pub layers: Vec<PnnLayer>,
    /// One head per task label.
    pub classifier: MultiHeadClassifier,
    #[module(skip)]
    config: PnnConfig,
    #[module(skip)]
    task_columns: BTreeMap<u32, usize>,
}

impl Pnn {
    /// The configuration.
    pub fn config(&self) -> &PnnConfig {
        &self.config
    }

    /// The column of each task label.
    pub fn task_columns(&self) -> &BTreeMap<u32, usize> {
        &self.task_columns
    }

    /// The number of columns.
    pub fn num_columns(&self) -> usize {
        self.layers[0].columns.len()
    }

    fn column_of(&self, task: u32) -> usize {
        self.task_columns.get(&task).copied().unwrap_or(self.num_columns() - 1)
    }

    /// The last layer's activations of column `column` for inputs `x` (columns `0..=column`
    /// computed).
    fn trunk(&self, x: Tensor<2>, column: usize) -> Tensor<2> {
        let mut inputs: Vec<Tensor<2>> = vec![x; column + 1];
        for layer in &self.layers {
            inputs = (0..=column).map(|c| relu(layer.columns[c].forward(&inputs[..=c]))).collect();
        }
        inputs.pop().expect("at least one column")
    }

    /// The features of each sample through its task's column.
    fn embed(&self, batch: &MiniBatch) -> Tensor<2> {
        if let Some(task) = batch.single_task() {
            return self.trunk(batch.x.clone(), self.column_of(task));
        }
        let device = batch.x.device();
        let n = batch.len();
        let mut tasks = batch.task_labels.clone();
        tasks.sort_unstable();
        tasks.dedup();
        let mut order = Vec::with_capacity(n);
        let mut parts = Vec::with_capacity(tasks.len());
        for task in tasks {
            let rows: Vec<i64> = (0..n).filter(|&i| batch.task_labels[i] == task).map(|i| i as i64).collect();
            order.extend_from_slice(&rows);
            let idx = Tensor::<1, Int>::from_data(TensorData::new(rows.clone(), [rows.len()]), &device);
            parts.push(self.trunk(batch.x.clone().select(0, idx), self.column_of(task)));
        }
        let mut inverse = vec![0i64; n];
        for (pos, &row) in order.iter().enumerate() {
            inverse[row as usize] = pos as i64;
        }
        let inverse = Tensor::<1, Int>::from_data(TensorData::new(inverse, [n]), &device);
        Tensor::cat(parts, 0).select(0, inverse)
    }

    /// Adds a column for `task` (freezing every earlier one), unless it has one; the first task
    /// label takes column 0.
    fn ensure_column(&mut self, task: u32) {
        if self.task_columns.contains_key(&task) {
            return;
        }
        if self.task_columns.is_empty() {
            self.task_columns.insert(task, 0);
            return;
        }
        let index = self.num_columns();
        let device = self.layers[0].columns[0].itoh.weight.val().device();
        let config = self.config.clone();
        for (l, layer) in self.layers.iter_mut().enumerate() {
            let columns = std::mem::take(&mut layer.columns);
            layer.columns = columns.into_iter().map(|c| c.no_grad()).collect();
            layer.columns.push(config.column(l, index, &device));
        }
        self.task_columns.insert(task, index);
    }
}

impl Model for Pnn {
    fn forward(&self, batch: &MiniBatch) -> Tensor<2> {
        self.classifier.forward(self.embed(batch), batch)
    }

    fn features(&self, batch: &MiniBatch) -> Option<Tensor<2>> {
        Some(self.embed(batch))
    }

    fn forward_all_tasks(&self, batch: &MiniBatch) -> Option<BTreeMap<u32, Tensor<2>>> {
        // Each head on its own task's column.
        let heads = self.classifier.task_labels().to_vec();
        let mut out = BTreeMap::new();
        for task in heads {
            let features = self.trunk(batch.x.clone(), self.column_of(task));
            let labels = vec![task; batch.len()];
            out.insert(task, self.classifier.try_forward(features, &labels).ok()?);
        }
        Some(out)
    }

    fn num_outputs(&self) -> Option<usize> {
        Head::num_outputs(&self.classifier)
    }

    fn adapts_outputs(&self) -> bool {
        true
    }

    fn input_size(&self) -> Option<usize> {
        Some(self.config.in_features)
    }

    /// A column for the experience's task label (training; at evaluation too with
    /// [`ColumnPolicy::Avalanche`]), then the heads' adaptation. An experience with several
    /// task labels is an error (Avalanche asserts one).
    fn adaptation(&mut self, ctx: &Adaptation<'_>) -> Result<()> {
        let tasks = &ctx.experience.task_labels;
        if tasks.len() != 1 {
            return Err(ClError::InvalidUse(format!(
                "PNN adds one column per task and needs one task label per experience; experience {} has {:?}: use a \
                 task-incremental benchmark (e.g. SplitFMNIST with return_task_id)",
                ctx.experience.current_experience, tasks
            )));
        }
        if ctx.training || self.config.columns == ColumnPolicy::Avalanche {
            self.ensure_column(tasks[0]);
        }
        Head::adaptation(&mut self.classifier, ctx)
    }

    fn check_batch(&self, batch: &MiniBatch) -> Result<()> {
        Head::check_batch(&self.classifier, batch)
    }

    /// The column of each task label and the heads' layout.
    fn save_extra_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("task_columns", &self.task_columns.iter().map(|(&t, &c)| (t, c)).collect::<Vec<(u32, usize)>>())?;
        let mut classifier = StateDict::new(format!("{} `classifier`", out.component()));
        self.classifier.save_extra_state(&mut classifier)?;
        out.put_dict("classifier", classifier);
        Ok(())
    }

    /// Regrows the columns in the saved order (frozen as they were), then the heads.
    fn load_extra_state(&mut self, state: &StateDict) -> Result<()> {
        let mut saved: Vec<(u32, usize)> = state.get("task_columns")?;
        saved.sort_by_key(|&(_, c)| c);
        for (task, column) in saved {
            if self.task_columns.get(&task).is_some_and(|&c| c != column) {
                return Err(ClError::InvalidUse(format!(
                    "PNN checkpoint: task {task} has column {column} there but {} here",
                    self.task_columns[&task]
                )));
            }
            self.ensure_column(task);
        }
        self.classifier.load_extra_state(state.dict("classifier")?)
    }
}

impl DynamicModule for Pnn {
    fn adaptation(&mut self, ctx: &Adaptation<'_>) -> Result<()> {
        Model::adaptation(self, ctx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cl_core::Experience;
    use cl_core::config::assert_rule;
    use cl_core::data::ClassificationDataset;

    use super::*;

    fn device() -> Device {
        Device::flex()
    }

    fn experience(index: usize, task: u32, stream: &str) -> Experience {
        let x: Vec<f32> = (0..4 * 3).map(|i| ((i * 7 % 5) as f32 - 2.0) / 2.0).collect();
        let data = ClassificationDataset::from_f32(x, vec![3], vec![0, 1, 0, 1]).unwrap().with_task_label(task);
        Experience::new(index, data, stream, 2)
    }

    fn batch(x: Vec<f32>, tasks: Vec<u32>) -> MiniBatch {
        let n = tasks.len();
        let d = device();
        MiniBatch {
            x: Tensor::from_data(TensorData::new(x, [n, 3]), &d),
            y: Tensor::from_data(TensorData::new(vec![0i64; n], [n]), &d),
            t: Tensor::from_data(TensorData::new(tasks.iter().map(|&t| i64::from(t)).collect::<Vec<_>>(), [n]), &d),
            targets: vec![0; n],
            task_labels: tasks,
            sample_shape: Arc::from(vec![3usize]),
        }
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    fn linear(l: &Linear, x: &[f32]) -> Vec<f32> {
        let w = values(l.weight.val());
        let b = values(l.bias.as_ref().unwrap().val());
        let (d_in, d_out) = (x.len(), b.len());
        (0..d_out).map(|o| b[o] + (0..d_in).map(|i| x[i] * w[i * d_out + o]).sum::<f32>()).collect()
    }

    fn relu_v(v: Vec<f32>) -> Vec<f32> {
        v.into_iter().map(|x| x.max(0.0)).collect()
    }

    #[test]
    fn columns_follow_training_tasks_and_freeze_the_earlier_ones() {
        // On the autodiff device, where parameters track gradients.
        let mut pnn =
            PnnConfig::new().with_in_features(3).with_hidden_features_per_column(2).init(&device().autodiff()).unwrap();
        let train =
            |pnn: &mut Pnn, e: &Experience| Model::adaptation(pnn, &Adaptation { experience: e, training: true });
        train(&mut pnn, &experience(0, 5, "train")).unwrap();
        assert_eq!((pnn.num_columns(), pnn.task_columns().clone()), (1, BTreeMap::from([(5, 0)])));
        assert!(pnn.layers[0].columns[0].itoh.weight.is_require_grad());
        train(&mut pnn, &experience(1, 2, "train")).unwrap();
        assert_eq!(pnn.num_columns(), 2);
        assert!(!pnn.layers[0].columns[0].itoh.weight.is_require_grad(), "column 0 frozen");
        assert!(pnn.layers[0].columns[1].itoh.weight.is_require_grad());
        assert_eq!(pnn.layers[0].columns[1].alphas.as_ref().unwrap().val().dims(), [1]);
        // Evaluating an unseen task adds no column by default, one with Avalanche's policy.
        let eval = experience(2, 9, "test");
        Model::adaptation(&mut pnn, &Adaptation { experience: &eval, training: false }).unwrap();
        assert_eq!(pnn.num_columns(), 2);
        let mut avalanche = pnn.clone();
        avalanche.config.columns = ColumnPolicy::Avalanche;
        Model::adaptation(&mut avalanche, &Adaptation { experience: &eval, training: false }).unwrap();
        assert_eq!(avalanche.num_columns(), 3);
        assert!(!avalanche.layers[0].columns[1].itoh.weight.is_require_grad(), "column 1 frozen by an evaluation");
        // An experience with two task labels is refused.
        let mixed = experience(0, 0, "train");
        let two = mixed
            .dataset
            .subset(&[0, 1])
            .unwrap()
            .concat(&mixed.dataset.subset(&[2, 3]).unwrap().with_task_label(1))
            .unwrap();
        let err = train(&mut pnn, &Experience::new(3, two, "train", 2)).unwrap_err();
        assert!(err.to_string().contains("one task label per experience"), "{err}");
    }

    /// Column 1 of a one-layer PNN by hand: `relu(itoh₁(x) + U·relu(V·(α·x)))` (the first layer's
    /// adapter reads the input again, as Avalanche's), then the head of task 1; a batch mixing
    /// tasks gives each row its own column's output.
    #[test]
    fn the_forward_pass_is_avalanches_by_hand() {
        let mut pnn = PnnConfig::new()
            .with_in_features(3)
            .with_hidden_features_per_column(2)
            .with_seed(4)
            .init(&device())
            .unwrap();
        for (i, t) in [0u32, 1].into_iter().enumerate() {
            Model::adaptation(&mut pnn, &Adaptation { experience: &experience(i, t, "train"), training: true })
                .unwrap();
        }
        let x = [0.5f32, -1.0, 2.0];
        let c0 = &pnn.layers[0].columns[0];
        let c1 = &pnn.layers[0].columns[1];
        let alpha = values(c1.alphas.as_ref().unwrap().val())[0];
        let scaled: Vec<f32> = x.iter().map(|v| v * alpha).collect();
        let lateral = linear(c1.u.as_ref().unwrap(), &relu_v(linear(c1.v.as_ref().unwrap(), &scaled)));
        let h1: Vec<f32> = relu_v(linear(&c1.itoh, &x).iter().zip(&lateral).map(|(a, b)| a + b).collect());
        let h0 = relu_v(linear(&c0.itoh, &x));
        let f1 = values(pnn.features(&batch(x.to_vec(), vec![1])).unwrap());
        let f0 = values(pnn.features(&batch(x.to_vec(), vec![0])).unwrap());
        for (a, b) in f1.iter().zip(&h1).chain(f0.iter().zip(&h0)) {
            assert!((a - b).abs() < 1e-5, "{f1:?} vs {h1:?}, {f0:?} vs {h0:?}");
        }
        // Mixed batch: rows in their order, each through its task's column.
        let y = [1.0f32, 0.0, -0.5];
        let mixed = values(pnn.features(&batch([x, y, x].concat(), vec![1, 0, 0])).unwrap());
        let y0 = values(pnn.features(&batch(y.to_vec(), vec![0])).unwrap());
        let expected: Vec<f32> = [h1.clone(), y0, h0].concat();
        for (a, b) in mixed.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-5, "{mixed:?} vs {expected:?}");
        }
    }

    /// A two-layer PNN with linear adapters: layer 2 of column 1 adds `W·h⁰₁` (column 0's first
    /// layer) to its own; the first layer keeps an MLP adapter.
    #[test]
    fn linear_adapters_after_the_first_layer() {
        let config = PnnConfig::new()
            .with_in_features(3)
            .with_hidden_features_per_column(2)
            .with_num_layers(2)
            .with_adapter(PnnAdapter::Linear);
        let mut pnn = config.init(&device()).unwrap();
        for (i, t) in [0u32, 1].into_iter().enumerate() {
            Model::adaptation(&mut pnn, &Adaptation { experience: &experience(i, t, "train"), training: true })
                .unwrap();
        }
        let (first, second) = (&pnn.layers[0].columns[1], &pnn.layers[1].columns[1]);
        assert!(first.v.is_some() && first.lateral.is_empty());
        assert!(second.v.is_none() && second.lateral.len() == 1);
        let x = [0.25f32, 0.5, -0.75];
        let h0 = relu_v(linear(&pnn.layers[0].columns[0].itoh, &x));
        let c1 = &pnn.layers[0].columns[1];
        let alpha = values(c1.alphas.as_ref().unwrap().val())[0];
        let scaled: Vec<f32> = x.iter().map(|v| v * alpha).collect();
        let lateral = linear(c1.u.as_ref().unwrap(), &relu_v(linear(c1.v.as_ref().unwrap(), &scaled)));
        let h1: Vec<f32> = relu_v(linear(&c1.itoh, &x).iter().zip(&lateral).map(|(a, b)| a + b).collect());
        let out: Vec<f32> =
            relu_v(linear(&second.itoh, &h1).iter().zip(linear(&second.lateral[0], &h0)).map(|(a, b)| a + b).collect());
        let got = values(pnn.features(&batch(x.to_vec(), vec![1])).unwrap());
        for (a, b) in got.iter().zip(&out) {
            assert!((a - b).abs() < 1e-5, "{got:?} vs {out:?}");
        }
    }

    #[test]
    fn config_rules() {
        assert_rule(PnnConfig::new().with_num_layers(0).validate(), "num_layers_positive");
        assert_rule(PnnConfig::new().with_in_features(0).validate(), "in_features_positive");
        assert_rule(PnnConfig::new().with_hidden_features_per_column(0).validate(), "hidden_features_positive");
        let d = PnnConfig::default();
        assert_eq!(
            (d.num_layers, d.in_features, d.hidden_features_per_column, d.adapter, d.columns),
            (1, 784, 100, PnnAdapter::Mlp, ColumnPolicy::Training)
        );
    }
}
