//! [`PluginConfig`]: a plugin as data — its name and its configuration — so that a run
//! description (a spec file, a sweep) can add plugins to any strategy.

use cl_core::config::Validate;
use cl_core::{Model, Plugin, Result};
use serde::{Deserialize, Serialize};

use crate::regularization::{
    EwcConfig, EwcPlugin, MasConfig, MasPlugin, RWalkConfig, RWalkPlugin, SynapticIntelligenceConfig,
    SynapticIntelligencePlugin,
};
use crate::{
    AGemConfig, AGemPlugin, CwrStarConfig, CwrStarPlugin, EarlyStoppingConfig, EarlyStoppingPlugin, FromScratchConfig,
    FromScratchPlugin, GDumbConfig, GDumbPlugin, GemConfig, GemPlugin, GssGreedyConfig, GssGreedyPlugin, LflConfig,
    LflPlugin, LrSchedulerConfig, LrSchedulerPlugin, LwfConfig, LwfPlugin, MirConfig, MirPlugin, ReplayConfig,
    ReplayPlugin,
};

/// Every plugin of this crate that a configuration describes completely, with that
/// configuration. Serialised like `StrategyConfig`: `{"name": "lwf", "config": {...}}` (TOML:
/// an entry of `[[plugins]]` with `name = "lwf"` and a `config` table). The checkpoint plugin is
/// not here: a run description has its own checkpoint section (where the run directory is known).
///
/// ```
/// use cl_core::config::ConfigFile;
/// use cl_plugins::PluginConfig;
/// let plugin = PluginConfig::from_toml("name = \"replay\"\n[config]\nmem_size = 100\n").unwrap();
/// assert_eq!(plugin.name(), "replay");
/// let err = PluginConfig::from_toml("name = \"replay\"\n[config]\nmem_size = 0\n").unwrap_err();
/// assert_eq!(err.rule(), Some("mem_size_positive"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", content = "config", deny_unknown_fields)]
#[allow(missing_docs)] // each variant is the plugin of the same name
pub enum PluginConfig {
    #[serde(rename = "replay")]
    Replay(ReplayConfig),
    #[serde(rename = "gdumb")]
    GDumb(GDumbConfig),
    #[serde(rename = "from_scratch")]
    FromScratch(FromScratchConfig),
    #[serde(rename = "early_stopping")]
    EarlyStopping(EarlyStoppingConfig),
    #[serde(rename = "lr_scheduler")]
    LrScheduler(LrSchedulerConfig),
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
    #[serde(rename = "mir")]
    Mir(MirConfig),
    #[serde(rename = "gss_greedy")]
    GssGreedy(GssGreedyConfig),
}

impl PluginConfig {
    /// The names accepted in the `name` field, in the order of the variants.
    pub const NAMES: [&'static str; 16] = [
        "replay",
        "gdumb",
        "from_scratch",
        "early_stopping",
        "lr_scheduler",
        "ewc",
        "synaptic_intelligence",
        "mas",
        "rwalk",
        "lfl",
        "lwf",
        "agem",
        "gem",
        "cwr_star",
        "mir",
        "gss_greedy",
    ];

    /// The plugin's name, as serialised.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Replay(_) => "replay",
            Self::GDumb(_) => "gdumb",
            Self::FromScratch(_) => "from_scratch",
            Self::EarlyStopping(_) => "early_stopping",
            Self::LrScheduler(_) => "lr_scheduler",
            Self::Ewc(_) => "ewc",
            Self::SynapticIntelligence(_) => "synaptic_intelligence",
            Self::Mas(_) => "mas",
            Self::RWalk(_) => "rwalk",
            Self::Lfl(_) => "lfl",
            Self::Lwf(_) => "lwf",
            Self::AGem(_) => "agem",
            Self::Gem(_) => "gem",
            Self::CwrStar(_) => "cwr_star",
            Self::Mir(_) => "mir",
            Self::GssGreedy(_) => "gss_greedy",
        }
    }

    /// The plugin for a strategy over `model` (CWR* reads the model's layout; the others ignore
    /// it); an error if the configuration breaks a rule.
    pub fn build<M: Model>(&self, model: &M) -> Result<Box<dyn Plugin<M>>> {
        Ok(match self.clone() {
            Self::Replay(c) => Box::new(ReplayPlugin::new(c)?),
            Self::GDumb(c) => Box::new(GDumbPlugin::<M>::new(c)?),
            Self::FromScratch(c) => Box::new(FromScratchPlugin::<M>::new(c)?),
            Self::EarlyStopping(c) => Box::new(EarlyStoppingPlugin::new(c)?),
            Self::LrScheduler(c) => Box::new(LrSchedulerPlugin::new(c)?),
            Self::Ewc(c) => Box::new(EwcPlugin::new(c)?),
            Self::SynapticIntelligence(c) => Box::new(SynapticIntelligencePlugin::new(c)?),
            Self::Mas(c) => Box::new(MasPlugin::new(c)?),
            Self::RWalk(c) => Box::new(RWalkPlugin::new(c)?),
            Self::Lfl(c) => Box::new(LflPlugin::<M>::new(c)?),
            Self::Lwf(c) => Box::new(LwfPlugin::<M>::new(c)?),
            Self::AGem(c) => Box::new(AGemPlugin::new(c)?),
            Self::Gem(c) => Box::new(GemPlugin::new(c)?),
            Self::CwrStar(c) => Box::new(CwrStarPlugin::new(model, c)?),
            Self::Mir(c) => Box::new(MirPlugin::new(c)?),
            Self::GssGreedy(c) => Box::new(GssGreedyPlugin::new(c)?),
        })
    }
}

impl Validate for PluginConfig {
    /// The rules of the plugin's own configuration.
    fn validate(&self) -> Result<()> {
        match self {
            Self::Replay(c) => c.validate(),
            Self::GDumb(c) => c.validate(),
            Self::FromScratch(c) => c.validate(),
            Self::EarlyStopping(c) => c.validate(),
            Self::LrScheduler(c) => c.validate(),
            Self::Ewc(c) => c.validate(),
            Self::SynapticIntelligence(c) => c.validate(),
            Self::Mas(c) => c.validate(),
            Self::RWalk(c) => c.validate(),
            Self::Lfl(c) => c.validate(),
            Self::Lwf(c) => c.validate(),
            Self::AGem(c) => c.validate(),
            Self::Gem(c) => c.validate(),
            Self::CwrStar(c) => c.validate(),
            Self::Mir(c) => c.validate(),
            Self::GssGreedy(c) => c.validate(),
        }
    }
}

#[cfg(test)]
mod tests {
    use cl_core::config::ConfigFile;

    use super::*;

    #[test]
    fn names_match_the_variants_and_round_trip() {
        let all = [
            PluginConfig::Replay(ReplayConfig::new(10)),
            PluginConfig::GDumb(GDumbConfig::new(10)),
            PluginConfig::FromScratch(FromScratchConfig::default()),
            PluginConfig::EarlyStopping(EarlyStoppingConfig::new(2, "test_stream")),
            PluginConfig::LrScheduler(LrSchedulerConfig::new(crate::SchedulerConfig::step(1))),
            PluginConfig::Ewc(EwcConfig::new(1.0)),
            PluginConfig::SynapticIntelligence(SynapticIntelligenceConfig::new(1.0)),
            PluginConfig::Mas(MasConfig::default()),
            PluginConfig::RWalk(RWalkConfig::default()),
            PluginConfig::Lfl(LflConfig::new(1.0)),
            PluginConfig::Lwf(LwfConfig::default()),
            PluginConfig::AGem(AGemConfig::new(10)),
            PluginConfig::Gem(GemConfig::new(10)),
            PluginConfig::CwrStar(CwrStarConfig::default()),
            PluginConfig::Mir(MirConfig::new(10).with_subsample(5)),
            PluginConfig::GssGreedy(GssGreedyConfig::new(100).with_input_size(vec![1, 28, 28])),
        ];
        for (plugin, name) in all.iter().zip(PluginConfig::NAMES) {
            assert_eq!(plugin.name(), name);
            assert_eq!(&PluginConfig::from_json(&plugin.to_json()).unwrap(), plugin);
            assert_eq!(&PluginConfig::from_toml(&plugin.to_toml().unwrap()).unwrap(), plugin);
        }
        let err = PluginConfig::from_json(r#"{"name": "replai", "config": {}}"#).unwrap_err().to_string();
        assert!(err.contains("replai") && err.contains("replay") && err.contains("cwr_star"), "{err}");
    }
}
