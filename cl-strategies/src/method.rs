//! [`StrategyConfig`]: a strategy as data — its name and its configuration — so that a strategy
//! can be chosen at run time (from a spec file, a command line, a sweep) without generics.

use burn::tensor::Device;
use cl_core::config::Validate;
use cl_core::{Model, OptimizerSpec, Result, StrategyBuilder};
use cl_plugins::regularization::{EwcConfig, MasConfig, RWalkConfig, SynapticIntelligenceConfig};
use cl_plugins::{
    AGemConfig, CwrStarConfig, FromScratchConfig, GDumbConfig, GemConfig, GssGreedyConfig, LflConfig, LwfConfig,
    MirConfig, ReplayConfig,
};
use serde::{Deserialize, Serialize};

use crate::{
    AGem, Ar1, Ar1Config, Bic, BicConfig, Cope, CopeConfig, Cumulative, CumulativeConfig, CwrStar, Der, DerConfig,
    ErAce, ErAceConfig, ErAml, ErAmlConfig, Ewc, FromScratchTraining, GDumb, Gem, GenerativeReplay,
    GenerativeReplayConfig, GssGreedy, Icarl, IcarlConfig, JointTraining, JointTrainingConfig, LaMaml, LaMamlConfig,
    Lfl, Lwf, Mas, Mir, Naive, NaiveConfig, PackNet, PackNetConfig, PnnStrategy, PnnStrategyConfig, RWalk, Replay, Scr,
    ScrConfig, StreamingLda, StreamingLdaConfig, SynapticIntelligence,
};

/// Every named strategy of this crate with its configuration. Serialised as
/// `{"name": "ewc", "config": {...}}` (TOML: `name = "ewc"` and a `[config]` table);
/// [`builder`](Self::builder) gives the same builder as the strategy's own `X::builder`, so
/// strategies of different kinds live in one `Vec<Strategy<M>>`.
///
/// ```
/// use burn::tensor::Device;
/// use cl_core::config::ConfigFile;
/// use cl_core::{OptimizerSpec, Result, Strategy};
/// use cl_models::{SimpleMlp, SimpleMlpConfig};
/// use cl_strategies::StrategyConfig;
///
/// # fn main() -> Result<()> {
/// let methods = [
///     StrategyConfig::from_toml("name = \"naive\"\n[config]\n")?,
///     StrategyConfig::from_json(r#"{"name": "ewc", "config": {"ewc_lambda": 0.4}}"#)?,
///     StrategyConfig::from_json(r#"{"name": "replay", "config": {"mem_size": 100}}"#)?,
/// ];
/// let device = Device::flex();
/// let strategies: Vec<Strategy<SimpleMlp>> = methods
///     .iter()
///     .map(|method| {
///         let model = SimpleMlpConfig::new().init(&device)?;
///         method.builder(model, OptimizerSpec::sgd(0.01), device.clone())?.build()
///     })
///     .collect::<Result<_>>()?;
/// assert_eq!(strategies.len(), 3);
/// assert_eq!(methods[1].name(), "ewc");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", content = "config", deny_unknown_fields)]
#[allow(missing_docs)] // each variant is the strategy of the same name
pub enum StrategyConfig {
    #[serde(rename = "naive")]
    Naive(NaiveConfig),
    #[serde(rename = "cumulative")]
    Cumulative(CumulativeConfig),
    #[serde(rename = "joint_training")]
    JointTraining(JointTrainingConfig),
    #[serde(rename = "from_scratch_training")]
    FromScratchTraining(FromScratchConfig),
    #[serde(rename = "replay")]
    Replay(ReplayConfig),
    #[serde(rename = "gdumb")]
    GDumb(GDumbConfig),
    #[serde(rename = "ewc")]
    Ewc(EwcConfig),
    #[serde(rename = "synaptic_intelligence")]
    SynapticIntelligence(SynapticIntelligenceConfig),
    #[serde(rename = "mas")]
    Mas(MasConfig),
    #[serde(rename = "rwalk")]
    RWalk(RWalkConfig),
    #[serde(rename = "lfl")]
    Lfl(LflConfig),
    #[serde(rename = "lwf")]
    Lwf(LwfConfig),
    #[serde(rename = "agem")]
    AGem(AGemConfig),
    #[serde(rename = "gem")]
    Gem(GemConfig),
    #[serde(rename = "cwr_star")]
    CwrStar(CwrStarConfig),
    #[serde(rename = "der")]
    Der(DerConfig),
    #[serde(rename = "er_ace")]
    ErAce(ErAceConfig),
    #[serde(rename = "er_aml")]
    ErAml(ErAmlConfig),
    #[serde(rename = "mir")]
    Mir(MirConfig),
    #[serde(rename = "scr")]
    Scr(ScrConfig),
    #[serde(rename = "packnet")]
    PackNet(PackNetConfig),
    #[serde(rename = "bic")]
    Bic(BicConfig),
    #[serde(rename = "lamaml")]
    LaMaml(LaMamlConfig),
    #[serde(rename = "generative_replay")]
    GenerativeReplay(GenerativeReplayConfig),
    #[serde(rename = "streaming_lda")]
    StreamingLda(StreamingLdaConfig),
    #[serde(rename = "icarl")]
    Icarl(IcarlConfig),
    #[serde(rename = "pnn")]
    Pnn(PnnStrategyConfig),
    #[serde(rename = "gss_greedy")]
    GssGreedy(GssGreedyConfig),
    #[serde(rename = "cope")]
    Cope(CopeConfig),
    #[serde(rename = "ar1")]
    Ar1(Ar1Config),
}

impl StrategyConfig {
    /// The names accepted in the `name` field, in the order of the variants.
    pub const NAMES: [&'static str; 30] = [
        "naive",
        "cumulative",
        "joint_training",
        "from_scratch_training",
        "replay",
        "gdumb",
        "ewc",
        "synaptic_intelligence",
        "mas",
        "rwalk",
        "lfl",
        "lwf",
        "agem",
        "gem",
        "cwr_star",
        "der",
        "er_ace",
        "er_aml",
        "mir",
        "scr",
        "packnet",
        "bic",
        "lamaml",
        "generative_replay",
        "streaming_lda",
        "icarl",
        "pnn",
        "gss_greedy",
        "cope",
        "ar1",
    ];

    /// The strategy's name, as serialised (`"ewc"`, `"cwr_star"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Naive(_) => "naive",
            Self::Cumulative(_) => "cumulative",
            Self::JointTraining(_) => "joint_training",
            Self::FromScratchTraining(_) => "from_scratch_training",
            Self::Replay(_) => "replay",
            Self::GDumb(_) => "gdumb",
            Self::Ewc(_) => "ewc",
            Self::SynapticIntelligence(_) => "synaptic_intelligence",
            Self::Mas(_) => "mas",
            Self::RWalk(_) => "rwalk",
            Self::Lfl(_) => "lfl",
            Self::Lwf(_) => "lwf",
            Self::AGem(_) => "agem",
            Self::Gem(_) => "gem",
            Self::CwrStar(_) => "cwr_star",
            Self::Der(_) => "der",
            Self::ErAce(_) => "er_ace",
            Self::ErAml(_) => "er_aml",
            Self::Mir(_) => "mir",
            Self::Scr(_) => "scr",
            Self::PackNet(_) => "packnet",
            Self::Bic(_) => "bic",
            Self::LaMaml(_) => "lamaml",
            Self::GenerativeReplay(_) => "generative_replay",
            Self::StreamingLda(_) => "streaming_lda",
            Self::Icarl(_) => "icarl",
            Self::Pnn(_) => "pnn",
            Self::GssGreedy(_) => "gss_greedy",
            Self::Cope(_) => "cope",
            Self::Ar1(_) => "ar1",
        }
    }

    /// The builder of the named strategy (what `X::builder(model, optimizer, device, config)`
    /// gives); an error if the configuration breaks a rule.
    pub fn builder<M: Model>(&self, model: M, optimizer: OptimizerSpec, device: Device) -> Result<StrategyBuilder<M>> {
        match self.clone() {
            Self::Naive(c) => Naive::builder(model, optimizer, device, c),
            Self::Cumulative(c) => Cumulative::builder(model, optimizer, device, c),
            Self::JointTraining(c) => JointTraining::builder(model, optimizer, device, c),
            Self::FromScratchTraining(c) => FromScratchTraining::builder(model, optimizer, device, c),
            Self::Replay(c) => Replay::builder(model, optimizer, device, c),
            Self::GDumb(c) => GDumb::builder(model, optimizer, device, c),
            Self::Ewc(c) => Ewc::builder(model, optimizer, device, c),
            Self::SynapticIntelligence(c) => SynapticIntelligence::builder(model, optimizer, device, c),
            Self::Mas(c) => Mas::builder(model, optimizer, device, c),
            Self::RWalk(c) => RWalk::builder(model, optimizer, device, c),
            Self::Lfl(c) => Lfl::builder(model, optimizer, device, c),
            Self::Lwf(c) => Lwf::builder(model, optimizer, device, c),
            Self::AGem(c) => AGem::builder(model, optimizer, device, c),
            Self::Gem(c) => Gem::builder(model, optimizer, device, c),
            Self::CwrStar(c) => CwrStar::builder(model, optimizer, device, c),
            Self::Der(c) => Der::builder(model, optimizer, device, c),
            Self::ErAce(c) => ErAce::builder(model, optimizer, device, c),
            Self::ErAml(c) => ErAml::builder(model, optimizer, device, c),
            Self::Mir(c) => Mir::builder(model, optimizer, device, c),
            Self::Scr(c) => Scr::builder(model, optimizer, device, c),
            Self::PackNet(c) => PackNet::builder(model, optimizer, device, c),
            Self::Bic(c) => Bic::builder(model, optimizer, device, c),
            Self::LaMaml(c) => LaMaml::builder(model, optimizer, device, c),
            Self::GenerativeReplay(c) => GenerativeReplay::builder(model, optimizer, device, c),
            Self::StreamingLda(c) => StreamingLda::builder(model, optimizer, device, c),
            Self::Icarl(c) => Icarl::builder(model, optimizer, device, c),
            Self::Pnn(c) => PnnStrategy::builder(model, optimizer, device, c),
            Self::GssGreedy(c) => GssGreedy::builder(model, optimizer, device, c),
            Self::Cope(c) => Cope::builder(model, optimizer, device, c),
            Self::Ar1(c) => Ar1::builder(model, optimizer, device, c),
        }
    }
}

impl Validate for StrategyConfig {
    /// The rules of the strategy's own configuration.
    fn validate(&self) -> Result<()> {
        match self {
            Self::Naive(c) => c.validate(),
            Self::Cumulative(c) => c.validate(),
            Self::JointTraining(c) => c.validate(),
            Self::FromScratchTraining(c) => c.validate(),
            Self::Replay(c) => c.validate(),
            Self::GDumb(c) => c.validate(),
            Self::Ewc(c) => c.validate(),
            Self::SynapticIntelligence(c) => c.validate(),
            Self::Mas(c) => c.validate(),
            Self::RWalk(c) => c.validate(),
            Self::Lfl(c) => c.validate(),
            Self::Lwf(c) => c.validate(),
            Self::AGem(c) => c.validate(),
            Self::Gem(c) => c.validate(),
            Self::CwrStar(c) => c.validate(),
            Self::Der(c) => c.validate(),
            Self::ErAce(c) => c.validate(),
            Self::ErAml(c) => c.validate(),
            Self::Mir(c) => c.validate(),
            Self::Scr(c) => c.validate(),
            Self::PackNet(c) => c.validate(),
            Self::Bic(c) => c.validate(),
            Self::LaMaml(c) => c.validate(),
            Self::GenerativeReplay(c) => c.validate(),
            Self::StreamingLda(c) => c.validate(),
            Self::Icarl(c) => c.validate(),
            Self::Pnn(c) => c.validate(),
            Self::GssGreedy(c) => c.validate(),
            Self::Cope(c) => c.validate(),
            Self::Ar1(c) => c.validate(),
        }
    }
}
