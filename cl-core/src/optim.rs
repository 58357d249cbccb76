//! [`OptimizerSpec`]: how the strategy (re)builds its optimizer, with PyTorch's semantics.

use std::fmt;
use std::sync::Arc;

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, ModuleOptimizer, SgdConfig};

use crate::error::{ClError, Result};

/// A recipe for the optimizer and its learning rate.
///
/// The strategy builds a fresh optimizer from it in `make_optimizer`, before each experience,
/// which resets its state (momentum buffers) as Avalanche's `reset_optimizer` does.
///
/// ```
/// use cl_core::OptimizerSpec;
/// // torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
/// let sgd = OptimizerSpec::sgd(0.001, 0.9, 0.0).unwrap();
/// assert_eq!(sgd.learning_rate(), 0.001);
/// assert!(OptimizerSpec::sgd(-1.0, 0.0, 0.0).is_err());
/// ```
#[derive(Clone)]
pub struct OptimizerSpec {
    name: String,
    lr: f64,
    build: Arc<dyn Fn() -> ModuleOptimizer + Send + Sync>,
}

impl fmt::Debug for OptimizerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OptimizerSpec")
            .field("name", &self.name)
            .field("lr", &self.lr)
            .finish()
    }
}

fn check_lr(lr: f64) -> Result<()> {
    if !(lr.is_finite() && lr >= 0.0) {
        return Err(ClError::config("lr", format!("{lr} is not a finite, non-negative learning rate")));
    }
    Ok(())
}

impl OptimizerSpec {
    /// SGD as `torch.optim.SGD(lr, momentum, weight_decay)`: dampening 0, no Nesterov (Burn's
    /// `MomentumConfig` defaults to dampening 0.1, which would change the results).
    pub fn sgd(lr: f64, momentum: f64, weight_decay: f64) -> Result<Self> {
        check_lr(lr)?;
        if !(0.0..1.0).contains(&momentum) {
            return Err(ClError::config("momentum", format!("{momentum} is not in [0, 1)")));
        }
        if !(weight_decay.is_finite() && weight_decay >= 0.0) {
            return Err(ClError::config("weight_decay", format!("{weight_decay} must be >= 0")));
        }
        let mut config = SgdConfig::new();
        if momentum > 0.0 {
            config = config.with_momentum(Some(
                MomentumConfig::new()
                    .with_momentum(momentum)
                    .with_dampening(0.0)
                    .with_nesterov(false),
            ));
        }
        if weight_decay > 0.0 {
            config = config.with_weight_decay(Some(WeightDecayConfig::new(weight_decay as f32)));
        }
        Ok(Self {
            name: format!("SGD(lr={lr}, momentum={momentum}, weight_decay={weight_decay})"),
            lr,
            build: Arc::new(move || config.init()),
        })
    }

    /// Adam with PyTorch's defaults (betas 0.9/0.999, eps 1e-8).
    pub fn adam(lr: f64) -> Result<Self> {
        check_lr(lr)?;
        let config = AdamConfig::new().with_epsilon(1e-8);
        Ok(Self {
            name: format!("Adam(lr={lr})"),
            lr,
            build: Arc::new(move || config.init()),
        })
    }

    /// Any Burn optimizer: `build` is called at every `make_optimizer`.
    pub fn custom(
        name: impl Into<String>,
        lr: f64,
        build: impl Fn() -> ModuleOptimizer + Send + Sync + 'static,
    ) -> Result<Self> {
        check_lr(lr)?;
        Ok(Self {
            name: name.into(),
            lr,
            build: Arc::new(build),
        })
    }

    /// The initial learning rate.
    pub fn learning_rate(&self) -> f64 {
        self.lr
    }

    /// A human-readable description, recorded in result files.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A fresh optimizer (no state).
    pub fn build(&self) -> ModuleOptimizer {
        (self.build)()
    }
}
