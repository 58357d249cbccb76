//! [`ModelConfig`]: the built-in models as data, so that a run description can name its model.

use burn::tensor::Device;
use cl_core::config::Validate;
use cl_core::{Model, Result};
use serde::{Deserialize, Serialize};

use crate::{SimpleCnnConfig, SimpleMlpConfig};

/// One of the built-in models and its configuration, tagged by `type`
/// (`{"type": "simple_mlp", "hidden_size": 256}`, or in TOML `type = "simple_cnn"` next to the
/// fields of the model's config).
///
/// The models are different Rust types, so there is no single `init`: either
/// [`match`](ModelConfig) on the variant and call the config's own `init` (each returns its
/// concrete type), or hand a [`ModelVisitor`] to [`init_with`](Self::init_with), which builds
/// the model and calls the visitor's generic method with it.
///
/// ```
/// use burn::tensor::Device;
/// use cl_core::config::ConfigFile;
/// use cl_core::{Model, Result};
/// use cl_models::{ModelConfig, ModelVisitor};
///
/// struct Outputs;
/// impl ModelVisitor for Outputs {
///     type Output = Option<usize>;
///     fn visit<M: Model>(self, model: M) -> Result<Option<usize>> {
///         Ok(model.num_outputs())
///     }
/// }
///
/// let config = ModelConfig::from_toml("type = \"simple_mlp\"\nnum_classes = 5").unwrap();
/// assert_eq!(config.init_with(&Device::flex(), Outputs).unwrap(), Some(5));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ModelConfig {
    /// [`SimpleMlp`](crate::SimpleMlp) (Avalanche's `SimpleMLP`), by [`SimpleMlpConfig::init`].
    #[doc(alias = "SimpleMLP")]
    SimpleMlp(SimpleMlpConfig),
    /// [`SimpleCnn`](crate::SimpleCnn) (Avalanche's `SimpleCNN`), by [`SimpleCnnConfig::init`].
    #[doc(alias = "SimpleCNN")]
    SimpleCnn(SimpleCnnConfig),
    /// [`MtSimpleMlp`](crate::MtSimpleMlp) (Avalanche's `MTSimpleMLP`), by
    /// [`SimpleMlpConfig::init_multitask`] (`num_classes` is not used).
    #[doc(alias = "MTSimpleMLP")]
    MtSimpleMlp(SimpleMlpConfig),
    /// [`MtSimpleCnn`](crate::MtSimpleCnn) (Avalanche's `MTSimpleCNN`), by
    /// [`SimpleCnnConfig::init_multitask`] (`num_classes` is not used).
    #[doc(alias = "MTSimpleCNN")]
    MtSimpleCnn(SimpleCnnConfig),
    /// [`IncrementalMlp`](crate::IncrementalMlp), by [`SimpleMlpConfig::init_incremental`]
    /// (`num_classes` is not used).
    IncrementalMlp(SimpleMlpConfig),
}

/// What to do with a model built by [`ModelConfig::init_with`], whatever its type (a closure
/// cannot be generic, a trait method can).
pub trait ModelVisitor {
    /// The result.
    type Output;

    /// Uses the model.
    fn visit<M: Model>(self, model: M) -> Result<Self::Output>;
}

impl ModelConfig {
    /// The variant's name as written in a file (`simple_mlp`, `mt_simple_cnn`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::SimpleMlp(_) => "simple_mlp",
            Self::SimpleCnn(_) => "simple_cnn",
            Self::MtSimpleMlp(_) => "mt_simple_mlp",
            Self::MtSimpleCnn(_) => "mt_simple_cnn",
            Self::IncrementalMlp(_) => "incremental_mlp",
        }
    }

    /// Builds the model on `device` (its config validated) and hands it to `visitor`.
    pub fn init_with<V: ModelVisitor>(&self, device: &Device, visitor: V) -> Result<V::Output> {
        match self {
            Self::SimpleMlp(c) => visitor.visit(c.init(device)?),
            Self::SimpleCnn(c) => visitor.visit(c.init(device)?),
            Self::MtSimpleMlp(c) => visitor.visit(c.init_multitask(device)?),
            Self::MtSimpleCnn(c) => visitor.visit(c.init_multitask(device)?),
            Self::IncrementalMlp(c) => visitor.visit(c.init_incremental(device)?),
        }
    }
}

impl Validate for ModelConfig {
    /// The rules of the variant's config.
    fn validate(&self) -> Result<()> {
        match self {
            Self::SimpleMlp(c) | Self::MtSimpleMlp(c) | Self::IncrementalMlp(c) => c.validate(),
            Self::SimpleCnn(c) | Self::MtSimpleCnn(c) => c.validate(),
        }
    }
}
