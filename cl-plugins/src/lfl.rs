//! [`LflPlugin`]: Less-Forgetful Learning (Jung et al., 2016; Avalanche's `LFLPlugin`).

use burn::tensor::Tensor;
use cl_core::{ClError, MiniBatch, Model, Plugin, Result, StatePart, StrategyState};

/// LFL's penalty weight `lambda_e`: one number, or one per experience.
pub type LflLambda = crate::weights::ExperienceWeight;

/// Less-Forgetful Learning (Avalanche's `LFLPlugin` / `LFL`).
///
/// After each training experience the plugin keeps a frozen copy of the model
/// (`model().valid()`: no autodiff, dropout off, unaffected by later updates). From the second
/// experience on, `before_backward` adds
///
/// `lambda_e · mean((f(x) − f_prev(x))²)`
///
/// (torch's `mse_loss` with its default `mean` reduction: averaged over samples *and* feature
/// units, as Avalanche's `_euclidean_loss`), where `f` is the current model's penultimate
/// representation ([`Model::features`]) on the batch inputs — part of this iteration's graph,
/// so the penalty is back-propagated into the feature extractor — and `f_prev` the frozen
/// model's on the same inputs, a constant. `lambda_e` is indexed by the number of trained
/// experiences (the strategy's `train_exp_counter`).
///
/// Differences from Avalanche: the current model's features are computed in training mode
/// (Avalanche calls `model.eval()` inside the penalty, which leaves the model in eval mode for
/// the rest of the experience), and the current model's last layer is not frozen after each
/// experience (Avalanche sets `requires_grad = False` on it).
///
/// The model must implement [`Model::features`]; otherwise training fails with
/// [`ClError::InvalidUse`] on the first iteration (Avalanche checks for a `BaseModel`).
///
/// ```ignore
/// let lfl = LflPlugin::new(0.5)?;
/// let strategy = Naive::builder(model, optimizer, device).plugin(lfl).build()?;
/// ```
pub struct LflPlugin<M: Model> {
    lambda_e: LflLambda,
    prev_model: Option<M>,
    checked: bool,
}

impl<M: Model> LflPlugin<M> {
    /// An LFL plugin; an error for a negative, non-finite or empty `lambda_e`.
    pub fn new(lambda_e: impl Into<LflLambda>) -> Result<Self> {
        let lambda_e = lambda_e.into();
        lambda_e.validate_named("lambda_e")?;
        Ok(Self {
            lambda_e,
            prev_model: None,
            checked: false,
        })
    }

    /// The penalty weight(s).
    pub fn lambda_e(&self) -> &LflLambda {
        &self.lambda_e
    }

    /// The frozen previous model (the model after the last trained experience), if any.
    pub fn previous_model(&self) -> Option<&M> {
        self.prev_model.as_ref()
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
    fn name(&self) -> String {
        "LflPlugin".into()
    }

    fn writes(&self) -> Vec<StatePart> {
        vec![StatePart::Loss]
    }

    fn before_backward(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        // As Avalanche, the weight is looked up on every iteration (a too-short list fails).
        let lambda_e = self.lambda_e.at_named(state.clock.train_exp_counter as usize, "lambda_e")?;
        let batch = state.current_batch()?;
        // A plain copy of the batch, for the frozen model (no autodiff).
        let plain = MiniBatch {
            x: batch.x.clone().inner(),
            y: batch.y.clone().inner(),
            t: batch.t.clone().inner(),
            targets: batch.targets.clone(),
            task_labels: batch.task_labels.clone(),
            sample_shape: batch.sample_shape.clone(),
        };
        let Some(prev_model) = &self.prev_model else {
            if !self.checked {
                // Fail early, on the first iteration, for a model without features (Avalanche
                // checks in `before_training`); the frozen copy keeps the graph untouched.
                state.model().valid().features(&plain).ok_or_else(no_features)?;
                self.checked = true;
            }
            return Ok(());
        };
        if lambda_e == 0.0 {
            return Ok(());
        }
        let prev = prev_model.features(&plain).ok_or_else(no_features)?;
        let prev = Tensor::from_inner(prev);
        let current = state.model().features(batch).ok_or_else(no_features)?;
        let loss = mse(current, prev)?;
        state.add_loss(loss.mul_scalar(lambda_e));
        Ok(())
    }

    fn after_training_exp(&mut self, state: &mut StrategyState<M>) -> Result<()> {
        self.prev_model = Some(state.model().valid());
        Ok(())
    }
}
