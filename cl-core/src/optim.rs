//! [`OptimizerSpec`]: a serialisable recipe for the optimizer, with PyTorch's semantics and
//! argument names.

use std::fmt;
use std::sync::Arc;

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer, SgdConfig};
use serde::{Deserialize, Serialize};

use crate::config::{Validate, finite_non_negative, rule};
use crate::error::Result;

/// `torch.optim.SGD(lr, momentum=0, dampening=0, weight_decay=0, nesterov=False)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SgdSpec {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor (0 = plain SGD).
    pub momentum: f64,
    /// Dampening of the momentum (PyTorch's default 0; Burn's `MomentumConfig` defaults to 0.1,
    /// which this recipe never uses implicitly).
    pub dampening: f64,
    /// L2 penalty added to the gradients.
    pub weight_decay: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
}

impl Default for SgdSpec {
    fn default() -> Self {
        Self { lr: 0.001, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false }
    }
}

/// `torch.optim.Adam(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)` (weight decay as an L2
/// term on the gradients, as PyTorch's Adam).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamSpec {
    /// Learning rate.
    pub lr: f64,
    /// Coefficients of the running averages of the gradient and its square.
    pub betas: (f64, f64),
    /// Term added to the denominator.
    pub eps: f64,
    /// L2 penalty added to the gradients.
    pub weight_decay: f64,
}

impl Default for AdamSpec {
    fn default() -> Self {
        Self { lr: 0.001, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 0.0 }
    }
}

/// `torch.optim.AdamW(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)` (decoupled weight
/// decay; PyTorch's default 0.01, not Burn's 1e-4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamWSpec {
    /// Learning rate.
    pub lr: f64,
    /// Coefficients of the running averages of the gradient and its square.
    pub betas: (f64, f64),
    /// Term added to the denominator.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl Default for AdamWSpec {
    fn default() -> Self {
        Self { lr: 0.001, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 0.01 }
    }
}

/// Any Burn optimizer, built by a closure (not serialisable; result files record its name).
#[derive(Clone)]
pub struct CustomOptimizer {
    name: String,
    lr: f64,
    build: Arc<dyn Fn() -> ModuleOptimizer + Send + Sync>,
}

impl fmt::Debug for CustomOptimizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomOptimizer").field("name", &self.name).field("lr", &self.lr).finish_non_exhaustive()
    }
}

impl PartialEq for CustomOptimizer {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.lr == other.lr && Arc::ptr_eq(&self.build, &other.build)
    }
}

/// The optimizer of a strategy, as PyTorch describes it: a serialisable recipe
/// (`{"type": "sgd", "lr": 0.01, "momentum": 0.9}`) that the strategy turns into a Burn
/// optimizer. Validated by the strategy builder (or [`Validate::validate`]).
///
/// ```
/// use cl_core::OptimizerSpec;
/// use cl_core::config::{ConfigFile, Validate};
/// // torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
/// let sgd = OptimizerSpec::sgd(0.001).with_momentum(0.9);
/// assert_eq!(sgd.learning_rate(), 0.001);
/// assert_eq!(OptimizerSpec::from_toml("type = \"sgd\"\nlr = 0.001\nmomentum = 0.9").unwrap(), sgd);
/// assert_eq!(OptimizerSpec::sgd(-1.0).validate().unwrap_err().rule(), Some("lr_finite_non_negative"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OptimizerSpec {
    /// SGD (with momentum, weight decay, Nesterov).
    Sgd(SgdSpec),
    /// Adam.
    Adam(AdamSpec),
    /// AdamW.
    #[serde(rename = "adamw")]
    AdamW(AdamWSpec),
    /// Any Burn optimizer (not serialisable).
    #[serde(skip)]
    Custom(CustomOptimizer),
}

impl OptimizerSpec {
    /// SGD at `lr` with PyTorch's defaults (no momentum, dampening 0, no weight decay).
    pub fn sgd(lr: f64) -> Self {
        Self::Sgd(SgdSpec { lr, ..SgdSpec::default() })
    }

    /// Adam at `lr` with PyTorch's defaults (betas 0.9/0.999, eps 1e-8).
    pub fn adam(lr: f64) -> Self {
        Self::Adam(AdamSpec { lr, ..AdamSpec::default() })
    }

    /// AdamW at `lr` with PyTorch's defaults (weight decay 0.01).
    pub fn adamw(lr: f64) -> Self {
        Self::AdamW(AdamWSpec { lr, ..AdamWSpec::default() })
    }

    /// Any Burn optimizer: `build` is called whenever a fresh optimizer is needed.
    pub fn custom(
        name: impl Into<String>,
        lr: f64,
        build: impl Fn() -> ModuleOptimizer + Send + Sync + 'static,
    ) -> Self {
        Self::Custom(CustomOptimizer { name: name.into(), lr, build: Arc::new(build) })
    }

    /// Sets SGD's momentum (no effect on other optimizers).
    pub fn with_momentum(mut self, momentum: f64) -> Self {
        if let Self::Sgd(s) = &mut self {
            s.momentum = momentum;
        }
        self
    }

    /// Sets SGD's dampening (no effect on other optimizers).
    pub fn with_dampening(mut self, dampening: f64) -> Self {
        if let Self::Sgd(s) = &mut self {
            s.dampening = dampening;
        }
        self
    }

    /// Sets SGD's Nesterov flag (no effect on other optimizers).
    pub fn with_nesterov(mut self, nesterov: bool) -> Self {
        if let Self::Sgd(s) = &mut self {
            s.nesterov = nesterov;
        }
        self
    }

    /// Sets the weight decay (no effect on a custom optimizer).
    pub fn with_weight_decay(mut self, weight_decay: f64) -> Self {
        match &mut self {
            Self::Sgd(s) => s.weight_decay = weight_decay,
            Self::Adam(s) => s.weight_decay = weight_decay,
            Self::AdamW(s) => s.weight_decay = weight_decay,
            Self::Custom(_) => {}
        }
        self
    }

    /// Sets Adam's/AdamW's betas (no effect on other optimizers).
    pub fn with_betas(mut self, beta_1: f64, beta_2: f64) -> Self {
        match &mut self {
            Self::Adam(s) => s.betas = (beta_1, beta_2),
            Self::AdamW(s) => s.betas = (beta_1, beta_2),
            _ => {}
        }
        self
    }

    /// Sets Adam's/AdamW's epsilon (no effect on other optimizers).
    pub fn with_eps(mut self, eps: f64) -> Self {
        match &mut self {
            Self::Adam(s) => s.eps = eps,
            Self::AdamW(s) => s.eps = eps,
            _ => {}
        }
        self
    }

    /// Sets the learning rate.
    pub fn with_lr(mut self, lr: f64) -> Self {
        match &mut self {
            Self::Sgd(s) => s.lr = lr,
            Self::Adam(s) => s.lr = lr,
            Self::AdamW(s) => s.lr = lr,
            Self::Custom(c) => c.lr = lr,
        }
        self
    }

    /// The initial learning rate.
    pub fn learning_rate(&self) -> f64 {
        match self {
            Self::Sgd(s) => s.lr,
            Self::Adam(s) => s.lr,
            Self::AdamW(s) => s.lr,
            Self::Custom(c) => c.lr,
        }
    }

    /// A human-readable description, recorded in result files.
    pub fn name(&self) -> String {
        match self {
            Self::Sgd(s) => format!(
                "SGD(lr={}, momentum={}, dampening={}, weight_decay={}, nesterov={})",
                s.lr, s.momentum, s.dampening, s.weight_decay, s.nesterov
            ),
            Self::Adam(s) => format!(
                "Adam(lr={}, betas=({}, {}), eps={}, weight_decay={})",
                s.lr, s.betas.0, s.betas.1, s.eps, s.weight_decay
            ),
            Self::AdamW(s) => format!(
                "AdamW(lr={}, betas=({}, {}), eps={}, weight_decay={})",
                s.lr, s.betas.0, s.betas.1, s.eps, s.weight_decay
            ),
            Self::Custom(c) => c.name.clone(),
        }
    }

    /// A fresh optimizer (no state).
    pub fn build(&self) -> ModuleOptimizer {
        match self {
            Self::Sgd(s) => {
                let mut config = SgdConfig::new();
                if s.momentum > 0.0 {
                    config = config.with_momentum(Some(
                        MomentumConfig::new()
                            .with_momentum(s.momentum)
                            .with_dampening(s.dampening)
                            .with_nesterov(s.nesterov),
                    ));
                }
                if s.weight_decay > 0.0 {
                    config = config.with_weight_decay(Some(WeightDecayConfig::new(s.weight_decay as f32)));
                }
                config.init()
            }
            Self::Adam(s) => {
                let mut config = AdamConfig::new()
                    .with_beta_1(s.betas.0 as f32)
                    .with_beta_2(s.betas.1 as f32)
                    .with_epsilon(s.eps as f32);
                if s.weight_decay > 0.0 {
                    config = config.with_weight_decay(Some(WeightDecayConfig::new(s.weight_decay as f32)));
                }
                config.init()
            }
            Self::AdamW(s) => AdamWConfig::new()
                .with_beta_1(s.betas.0 as f32)
                .with_beta_2(s.betas.1 as f32)
                .with_epsilon(s.eps as f32)
                .with_weight_decay(s.weight_decay as f32)
                .init(),
            Self::Custom(c) => (c.build)(),
        }
    }
}

impl Validate for OptimizerSpec {
    fn validate(&self) -> Result<()> {
        const C: &str = "OptimizerSpec";
        let lr = self.learning_rate();
        rule(C, "lr_finite_non_negative", finite_non_negative(lr), || {
            format!("lr = {lr} must be a finite number >= 0")
        })?;
        let decay = match self {
            Self::Sgd(s) => s.weight_decay,
            Self::Adam(s) => s.weight_decay,
            Self::AdamW(s) => s.weight_decay,
            Self::Custom(_) => 0.0,
        };
        rule(C, "weight_decay_finite_non_negative", finite_non_negative(decay), || {
            format!("weight_decay = {decay} must be a finite number >= 0")
        })?;
        match self {
            Self::Sgd(s) => {
                rule(C, "momentum_in_unit_interval", (0.0..1.0).contains(&s.momentum), || {
                    format!("momentum = {} must be in [0, 1)", s.momentum)
                })?;
                rule(C, "dampening_in_unit_interval", (0.0..=1.0).contains(&s.dampening), || {
                    format!("dampening = {} must be in [0, 1]", s.dampening)
                })?;
                rule(
                    C,
                    "nesterov_needs_momentum_without_dampening",
                    !s.nesterov || (s.momentum > 0.0 && s.dampening == 0.0),
                    || "Nesterov momentum needs momentum > 0 and dampening = 0 (as PyTorch)".into(),
                )
            }
            Self::Adam(AdamSpec { betas, eps, .. }) | Self::AdamW(AdamWSpec { betas, eps, .. }) => {
                rule(
                    C,
                    "betas_in_unit_interval",
                    (0.0..1.0).contains(&betas.0) && (0.0..1.0).contains(&betas.1),
                    || format!("betas = ({}, {}) must both be in [0, 1)", betas.0, betas.1),
                )?;
                rule(C, "eps_positive", eps.is_finite() && *eps > 0.0, || {
                    format!("eps = {eps} must be a finite number > 0")
                })
            }
            Self::Custom(_) => Ok(()),
        }
    }
}
