//! [`ModelConfig`]: the built-in models as data, so that a run description can name its model.

use burn::tensor::Device;
use cl_core::config::Validate;
use cl_core::{Model, Result};
use serde::{Deserialize, Serialize};

use crate::{FlattenConfig, LatentCnnConfig, PnnConfig, SimpleCnnConfig, SimpleMlpConfig};

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
    /// [`ScrMlp`](crate::ScrMlp) (Avalanche's `SCRModel` on `SimpleMLP`'s hidden layers), by
    /// [`SimpleMlpConfig::init_scr`]: the fields of `simple_mlp` and `projection_size`.
    #[doc(alias = "SCRModel")]
    ScrMlp(ScrMlpConfig),
    /// The flattened input as output and features, no parameters (`torch.nn.Flatten()`; the
    /// feature extractor of `StreamingLda` on raw inputs).
    Flatten(FlattenConfig),
    /// A progressive neural network (Avalanche's `PNN`), for `PnnStrategy`.
    #[doc(alias = "PNN")]
    Pnn(PnnConfig),
    /// A convolutional network with batch renormalisation split at a latent layer
    /// ([`LatentCnn`](crate::LatentCnn)), for `Ar1`'s latent replay.
    LatentCnn(LatentCnnConfig),
}

/// The configuration of an [`ScrMlp`](crate::ScrMlp): a [`SimpleMlpConfig`] (its fields at the
/// same level; `num_classes` is not used) and the width of the projection.
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_models::{ModelConfig, ScrMlpConfig};
/// let config = ModelConfig::from_toml("type = \"scr_mlp\"\nhidden_size = 64\nprojection_size = 32").unwrap();
/// let ModelConfig::ScrMlp(scr) = config else { panic!() };
/// assert_eq!((scr.mlp.hidden_size, scr.projection_size), (64, 32));
/// assert!(ModelConfig::from_toml("type = \"scr_mlp\"\nprojection = 3").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "ScrMlpFields", into = "ScrMlpFields")]
pub struct ScrMlpConfig {
    /// The trunk (the fields of `simple_mlp`).
    pub mlp: SimpleMlpConfig,
    /// Width of the projection (default 128).
    pub projection_size: usize,
}

fn default_projection() -> usize {
    128
}

/// [`ScrMlpConfig`] as written in a file: the fields of [`SimpleMlpConfig`] and
/// `projection_size` at one level, unknown keys rejected (serde's `flatten` would accept them).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ScrMlpFields {
    num_classes: usize,
    input_size: usize,
    hidden_size: usize,
    hidden_layers: usize,
    drop_rate: f64,
    #[serde(with = "crate::simple_mlp::host_seed")]
    seed: Option<u64>,
    projection_size: usize,
}

impl Default for ScrMlpFields {
    fn default() -> Self {
        ScrMlpConfig::default().into()
    }
}

impl From<ScrMlpFields> for ScrMlpConfig {
    fn from(f: ScrMlpFields) -> Self {
        let mlp = SimpleMlpConfig {
            num_classes: f.num_classes,
            input_size: f.input_size,
            hidden_size: f.hidden_size,
            hidden_layers: f.hidden_layers,
            drop_rate: f.drop_rate,
            seed: f.seed,
        };
        Self { mlp, projection_size: f.projection_size }
    }
}

impl From<ScrMlpConfig> for ScrMlpFields {
    fn from(c: ScrMlpConfig) -> Self {
        let m = c.mlp;
        Self {
            num_classes: m.num_classes,
            input_size: m.input_size,
            hidden_size: m.hidden_size,
            hidden_layers: m.hidden_layers,
            drop_rate: m.drop_rate,
            seed: m.seed,
            projection_size: c.projection_size,
        }
    }
}

impl Default for ScrMlpConfig {
    fn default() -> Self {
        Self { mlp: SimpleMlpConfig::new(), projection_size: default_projection() }
    }
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
            Self::ScrMlp(_) => "scr_mlp",
            Self::Flatten(_) => "flatten",
            Self::Pnn(_) => "pnn",
            Self::LatentCnn(_) => "latent_cnn",
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
            Self::ScrMlp(c) => visitor.visit(c.mlp.init_scr(c.projection_size, device)?),
            Self::Flatten(c) => visitor.visit(c.init()?),
            Self::Pnn(c) => visitor.visit(c.init(device)?),
            Self::LatentCnn(c) => visitor.visit(c.init(device)?),
        }
    }
}

impl Validate for ModelConfig {
    /// The rules of the variant's config.
    fn validate(&self) -> Result<()> {
        match self {
            Self::Flatten(c) => c.validate(),
            Self::Pnn(c) => c.validate(),
            Self::LatentCnn(c) => c.validate(),
            Self::SimpleMlp(c) | Self::MtSimpleMlp(c) | Self::IncrementalMlp(c) => c.validate(),
            Self::SimpleCnn(c) | Self::MtSimpleCnn(c) => c.validate(),
            Self::ScrMlp(c) => {
                c.mlp.validate()?;
                cl_core::config::rule("ScrMlpConfig", "projection_size_positive", c.projection_size > 0, || {
                    "the projection of an SCR model needs at least 1 output".into()
                })
            }
        }
    }
}
