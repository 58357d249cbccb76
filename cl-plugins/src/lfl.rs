//! [`LflPlugin`]: Less-Forgetful Learning (Jung et al., 2016; Avalanche's `LFLPlugin`).

use burn::tensor::Tensor;
use cl_core::checkpoint::StateDict;
use cl_core::config::{Validate, rule};
use cl_core::{ClError, Model, ModelPart, Plugin, Result, StatePart, StrategyState, freeze};
use serde::{Deserialize, Serialize};

use crate::mode::{EvalModeSwitch, ModeAfterPass};
use crate::persist::{opt_model, put_opt_model};
use crate::regularization::last_linear_layer;
use crate::weights::ExperienceWeight;

/// LFL's hyper-parameter: Avalanche's `LFLPlugin(lambda_e)` (required, no default).
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_plugins::LflConfig;
/// assert_eq!(LflConfig::from_toml("lambda_e = [0.0, 2.0]")?, LflConfig::new(vec![0.0, 2.0]));
/// assert!(LflConfig::from_toml("lambda_e = -1.0").is_err());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "LFLPlugin")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LflConfig {
    /// Weight of the feature distance: a number, or one per experience indexed by the
    /// strategy's `train_exp_counter` (a list too short for an experience is an error when
    /// that experience trains, as Avalanche's `IndexError`); finite and `>= 0`.
    pub lambda_e: ExperienceWeight,
    /// The mode the model trains in once the penalty applies (default: Avalanche's, evaluation
    /// mode from the first penalised iteration of an experience on).
    #[serde(default)]
    pub mode: ModeAfterPass,
}

impl LflConfig {
    /// `lambda_e`: a number or one value per experience, in Avalanche's mode.
    pub fn new(lambda_e: impl Into<ExperienceWeight>) -> Self {
        Self { lambda_e: lambda_e.into(), mode: ModeAfterPass::Avalanche }
    }

    /// Sets the mode.
    pub fn with_mode(mut self, mode: ModeAfterPass) -> Self {
        self.mode = mode;
        self
    }

    /// Sets `lambda_e`.
    pub fn with_lambda_e(mut self, lambda_e: impl Into<ExperienceWeight>) -> Self {
        self.lambda_e = lambda_e.into();
        self
    }
}

impl Validate for LflConfig {
    fn validate(&self) -> Result<()> {
        const C: &str = "LflConfig";
        rule(C, "lambda_e_not_empty", !self.lambda_e.is_empty(), || {
            "lambda_e is an empty list: give a number or one value per experience".into()
        })?;
        rule(C, "lambda_e_finite_non_negative", self.lambda_e.all_finite_non_negative(), || {
            format!("lambda_e = {:?}: every value must be a finite number >= 0", self.lambda_e.values())
        })
    }
}

/// Less-Forgetful Learning: Avalanche's `LFLPlugin` (`avalanche/training/plugins/lfl.py`), the
/// plugin of the `Lfl` strategy.
///
/// After each training experience the plugin keeps a frozen copy of the model
/// (`model().valid()`: no autodiff, dropout off, unaffected by later updates) and freezes the
/// current model's last linear layer (Avalanche's `get_last_fc_layer`: the last
/// `burn::nn::Linear` in field order, e.g. `classifier` of `SimpleMlp`) for the rest of
/// training, through [`cl_core::freeze`]: its weight and bias no longer require gradients, so
/// the optimizer leaves them alone, as PyTorch's optimizers skip the parameters Avalanche sets
/// to `requires_grad = False` (a model rebuilt from a checkpoint is frozen again at the start of
/// the next experience). From the second experience on,
/// `before_backward` adds
///
/// `lambda_e · mean((f(x) − f_prev(x))²)`
///
/// (torch's `mse_loss` with its default `mean` reduction: averaged over samples *and* feature
/// units, as Avalanche's `_euclidean_loss`), where `f` is the current model's penultimate
/// representation ([`Model::features`]) on the batch inputs — part of this iteration's graph,
/// so the penalty is back-propagated into the feature extractor — and `f_prev` the frozen
/// model's on the same inputs, a constant. `lambda_e` is indexed by the strategy's
/// `train_exp_counter`, and looked up on every iteration as in Avalanche.
///
/// The model must implement [`Model::features`]; otherwise training fails with
/// [`ClError::InvalidUse`] on the first iteration (Avalanche checks for a `BaseModel` in
/// `before_training`). A model without a `Linear` layer fails at the end of the first
/// experience, as Avalanche's `No fc layer found`.
///
/// With [`ModeAfterPass::Avalanche`] (the default, the config's `mode`) the penalty switches the model to evaluation mode
/// as Avalanche's `compute_features` does (`model.eval()`, never undone within the
/// experience): the features of both models are computed without dropout, and the iterations
/// after the first penalised one train in evaluation mode too; the training flags switched off
/// ([`cl_core::set_training_mode`]) are switched back on after the experience.
/// [`ModeAfterPass::Training`] keeps the strategy's training mode throughout.
///
/// # Differences from Avalanche
///
/// - The frozen layer keeps its parameters in later experiences even for a dynamic model that
///   grows it (its new units are frozen too; Avalanche's new parameters would train).
///
/// ```
/// use burn::tensor::Device;
/// use cl_core::{OptimizerSpec, Strategy};
/// use cl_models::{SimpleMlp, SimpleMlpConfig};
/// use cl_plugins::{LflConfig, LflPlugin};
/// let device = Device::default();
/// let model = SimpleMlpConfig::new().init(&device)?;
/// let lfl = LflPlugin::new(LflConfig::new(0.5))?;
/// let strategy = Strategy::builder(model, OptimizerSpec::sgd(0.01), device).plugin(lfl).build()?;
/// assert!(strategy.plugin::<LflPlugin<SimpleMlp>>().is_some());
/// # Ok::<(), cl_core::ClError>(())
/// ```
#[doc(alias = "LFLPlugin")]
pub struct LflPlugin<M: Model> {
    config: LflConfig,
    prev_model: Option<M>,
    checked: bool,
    /// The training flags switched off in this experience ([`ModeAfterPass::Avalanche`]).
    eval_mode: EvalModeSwitch,
    /// Every layer frozen so far, in the order they were frozen (the last linear layer after
    /// each experience; several with a model whose last layer changes, e.g. a new head).
    frozen_layers: Vec<String>,
}

impl<M: Model> LflPlugin<M> {
    /// An LFL plugin; an error ([`ClError::InvalidConfig`]) if `config` breaks one of its rules.
    pub fn new(config: LflConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            prev_model: None,
            checked: false,
            eval_mode: EvalModeSwitch::default(),
            frozen_layers: Vec::new(),
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &LflConfig {
        &self.config
    }

    /// The frozen previous model (the model after the last trained experience), if any.
    pub fn previous_model(&self) -> Option<&M> {
        self.prev_model.as_ref()
    }

    /// The path of the last linear layer frozen (after the first experience).
    pub fn frozen_layer(&self) -> Option<&str> {
        self.frozen_layers.last().map(String::as_str)
    }

    /// Every layer frozen so far (Avalanche's `requires_grad = False` is never undone), in the
    /// order they were frozen.
    pub fn frozen_layers(&self) -> &[String] {
        &self.frozen_layers
    }
}

fn no_features() -> ClError {
    ClError::InvalidUse(
        "LFL needs the model's penultimate features: implement `Model::features` for the model \
         (it returns None by default)"
            .into(),
    )
}

/// `mean((a − b)²)` over all elements (torch's `mse_loss`, `reduction="mean"`).
fn mse(a: Tensor<2>, b: Tensor<2>) -> Result<Tensor<1>> {
    if a.dims() != b.dims() {
        return Err(ClError::InvalidUse(format!(
            "LFL: the current model's features {:?} and the previous model's {:?} differ in shape",
            a.dims(),
            b.dims()
        )));
    }
    let d = a - b;
    Ok(d.clone().mul(d).mean())
}

impl<M: Model> Plugin<M> for LflPlugin<M> {
    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::Loss, StatePart::Model]
    }

    fn before_backward(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        // As Avalanche, the weight is looked up on every iteration (a too-short list fails).
        let trained = state.clock().train_exp_counter as usize;
        let lambda_e = self
            .config
            .lambda_e
            .at(trained)
            .ok_or_else(|| self.config.lambda_e.missing(&Plugin::<M>::name(self), "lambda_e", trained))?;
        let batch = state.current_batch()?;
        // A plain copy of the batch, for the frozen model (no autodiff).
        let plain = batch.inner();
        let Some(prev_model) = &self.prev_model else {
            if !self.checked {
                // Fail early, on the first iteration, for a model without features (Avalanche
                // checks in `before_training`); the frozen copy keeps the graph untouched.
                state.model().valid().features(&plain).ok_or_else(no_features)?;
                self.checked = true;
            }
            return Ok(());
        };
        // Avalanche's `model.eval()` in `compute_features`, called whatever lambda_e.
        self.eval_mode.enter(self.config.mode, state)?;
        if lambda_e == 0.0 {
            return Ok(());
        }
        let batch = state.current_batch()?;
        let prev = prev_model.features(&plain).ok_or_else(no_features)?;
        let prev = Tensor::from_inner(prev);
        let current = state.model().features(batch).ok_or_else(no_features)?;
        let loss = mse(current, prev)?;
        state.add_loss(loss.mul_scalar(lambda_e))?;
        Ok(())
    }

    fn before_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        // Idempotent; freezes again every layer frozen so far in a model rebuilt from a
        // checkpoint.
        if self.frozen_layers.is_empty() {
            return Ok(());
        }
        let part = ModelPart::layers(self.frozen_layers.iter().map(String::as_str));
        state.map_model(|m| freeze(m, &part))
    }

    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        // Avalanche's next `train()` call: `model.train()`.
        self.eval_mode.leave(state)?;
        self.prev_model = Some(state.model().valid());
        let layer = last_linear_layer(state.model()).ok_or_else(|| {
            ClError::InvalidUse(
                "LFL freezes the model's last linear layer after each experience (as Avalanche's \
                 `get_last_fc_layer`), but the model has no `burn::nn::Linear` layer"
                    .into(),
            )
        })?;
        state.map_model(|m| freeze(m, &ModelPart::layers([layer.as_str()])))?;
        if !self.frozen_layers.contains(&layer) {
            self.frozen_layers.push(layer);
        }
        Ok(())
    }

    /// The configuration (checked on load), the frozen previous model (a Burn record), the
    /// paths of the frozen layers and whether the model's features were checked. A checkpoint
    /// of an earlier version (one `frozen_layer` entry) loads too.
    fn save_state(&self, out: &mut StateDict) -> Result<()> {
        out.put("config", &self.config)?;
        put_opt_model(out, "prev_model", self.prev_model.as_ref())?;
        out.put("frozen_layers", &self.frozen_layers)?;
        out.put("checked", &self.checked)
    }

    fn load_state(&mut self, state: &StateDict, strategy: &StrategyState<M>) -> Result<()> {
        state.check_config("config", &self.config)?;
        self.prev_model = opt_model(state, "prev_model", strategy)?;
        self.frozen_layers = if state.contains("frozen_layers") {
            state.get("frozen_layers")?
        } else {
            state.get::<Option<String>>("frozen_layer")?.into_iter().collect()
        };
        self.checked = state.get("checked")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regularization::test_support::{Tiny, device, sgd, stream, values};
    use cl_core::Strategy;
    use cl_core::config::{ConfigFile, assert_rule};

    /// The frozen previous model (values and parameter ids) and the frozen layer come back; a
    /// checkpoint of another configuration is refused.
    #[test]
    fn checkpoint_restores_the_previous_model_and_the_frozen_layer() {
        use crate::persist::test_util::{assert_mismatch, module_values, restore};
        let config = LflConfig::new(vec![0.5, 1.0]);
        let mut s = Strategy::builder(Tiny::new(4), sgd(0.3), device())
            .train_mb_size(3)
            .plugin(LflPlugin::<Tiny>::new(config.clone()).unwrap())
            .build()
            .unwrap();
        s.train(&stream(2, 6)).unwrap();
        let lfl = s.plugin::<LflPlugin<Tiny>>().unwrap();
        let mut fresh = LflPlugin::new(config).unwrap();
        let state = restore(lfl, &mut fresh, s.state());
        assert_eq!(module_values(fresh.previous_model().unwrap()), module_values(lfl.previous_model().unwrap()));
        assert_eq!(fresh.frozen_layer(), Some("classifier"));
        assert_eq!(fresh.checked, lfl.checked);
        assert_mismatch(&state, &mut LflPlugin::new(LflConfig::new(0.5)).unwrap(), s.state());
    }

    /// Every frozen layer is saved and frozen again after a resume (a model whose last linear
    /// layer changes, e.g. a new head per task, has several); a checkpoint of the earlier
    /// single-entry format loads.
    #[test]
    fn checkpoint_keeps_every_frozen_layer_and_reads_the_old_entry() {
        use crate::persist::test_util::restore;
        let mut s = Strategy::builder(Tiny::new(4), sgd(0.3), device())
            .train_mb_size(3)
            .plugin(LflPlugin::<Tiny>::new(LflConfig::new(1.0)).unwrap())
            .build()
            .unwrap();
        s.train(&stream(1, 6)).unwrap();
        let lfl = s.plugin_mut::<LflPlugin<Tiny>>().unwrap();
        lfl.frozen_layers.insert(0, "hidden".into());
        let lfl = s.plugin::<LflPlugin<Tiny>>().unwrap();
        let mut fresh = LflPlugin::<Tiny>::new(LflConfig::new(1.0)).unwrap();
        let state = restore(lfl, &mut fresh, s.state());
        assert_eq!(fresh.frozen_layers(), ["hidden", "classifier"]);
        assert_eq!(fresh.frozen_layer(), Some("classifier"));

        // A resumed plugin freezes all of them at the next experience: here the whole model,
        // which the loop reports as an error instead of a panic in Burn's backward.
        let mut resumed =
            Strategy::builder(Tiny::new(4), sgd(0.3), device()).train_mb_size(3).plugin(fresh).build().unwrap();
        let err = resumed.train(&stream(1, 6)).unwrap_err();
        assert!(err.to_string().contains("no trainable parameter"), "{err}");

        // The earlier format: one `frozen_layer` entry.
        let mut old = StateDict::new("LflPlugin");
        old.put("config", &LflConfig::new(1.0)).unwrap();
        old.put("checked", &state.get::<bool>("checked").unwrap()).unwrap();
        crate::persist::put_opt_model::<Tiny>(&mut old, "prev_model", None).unwrap();
        old.put("frozen_layer", &Some("classifier")).unwrap();
        let mut fresh = LflPlugin::<Tiny>::new(LflConfig::new(1.0)).unwrap();
        Plugin::<Tiny>::load_state(&mut fresh, &old, s.state()).unwrap();
        assert_eq!(fresh.frozen_layers(), ["classifier"]);
    }

    #[test]
    fn config_round_trips() {
        for c in [LflConfig::new(0.5), LflConfig::new(vec![0.0, 2.0, 1.5]).with_mode(ModeAfterPass::Training)] {
            assert_eq!(LflConfig::from_json(&c.to_json()).unwrap(), c);
            assert_eq!(LflConfig::from_toml(&c.to_toml().unwrap()).unwrap(), c);
        }
        assert!(LflConfig::from_json("{}").is_err(), "lambda_e is required");
        assert_eq!(
            LflConfig::from_toml("lambda_e = 1.0").unwrap().mode,
            ModeAfterPass::Avalanche,
            "Avalanche's by default"
        );
        assert_eq!(LflConfig::from_toml("lambda_e = 1.0\nmode = \"training\"").unwrap().mode, ModeAfterPass::Training);
    }

    /// Avalanche's mode: from the first penalised iteration of an experience on, the model
    /// trains in evaluation mode (dropout off, seen at `after_training_iteration`), and the
    /// next experience starts in training mode again; the training mode keeps dropout on.
    #[test]
    fn avalanche_mode_trains_in_evaluation_mode_once_the_penalty_applies() {
        use crate::regularization::test_support::dropout_seen_with;
        for (mode, later) in [(ModeAfterPass::Avalanche, false), (ModeAfterPass::Training, true)] {
            let (seen, after) = dropout_seen_with(LflPlugin::new(LflConfig::new(1.0).with_mode(mode)).unwrap());
            assert_eq!(seen.len(), 6, "{mode:?}");
            for (exp, on) in seen {
                assert_eq!(on, exp == 0 || later, "{mode:?}: experience {exp}");
            }
            assert!(after, "{mode:?}: training mode after the experience");
        }
    }

    #[test]
    fn every_validation_rule() {
        let ok = LflConfig::new(1.0);
        for (bad, rule) in [
            (ok.clone().with_lambda_e(vec![]), "lambda_e_not_empty"),
            (ok.clone().with_lambda_e(-0.1), "lambda_e_finite_non_negative"),
            (ok.clone().with_lambda_e(vec![1.0, f64::NAN]), "lambda_e_finite_non_negative"),
        ] {
            assert_rule(bad.validate(), rule);
            assert_rule(LflPlugin::<Tiny>::new(bad).map(|_| ()), rule);
        }
    }

    /// As Avalanche, the last linear layer stops training after the first experience while
    /// the feature extractor keeps training.
    #[test]
    fn the_last_linear_layer_is_frozen_after_the_first_experience() {
        let mut s = Strategy::builder(Tiny::new(4), sgd(0.3), device())
            .train_mb_size(3)
            .plugin(LflPlugin::<Tiny>::new(LflConfig::new(1.0)).unwrap())
            .build()
            .unwrap();
        let data = stream(2, 6);
        s.train(&data.experiences()[0]).unwrap();
        assert_eq!(s.plugin::<LflPlugin<Tiny>>().unwrap().frozen_layer(), Some("classifier"));
        let (w, b, h) = {
            let m = s.model();
            (values(&m.classifier.weight), values(m.classifier.bias.as_ref().unwrap()), values(&m.hidden.weight))
        };
        s.train(&data.experiences()[1]).unwrap();
        let m = s.model();
        assert_eq!(values(&m.classifier.weight), w, "classifier weight frozen");
        assert_eq!(values(m.classifier.bias.as_ref().unwrap()), b, "classifier bias frozen");
        assert_ne!(values(&m.hidden.weight), h, "the feature extractor still trains");
    }
}
