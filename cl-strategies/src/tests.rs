//! Strategies as data: every configuration round-trips, names are stable, a list of different
//! strategies is built from names and configurations, and JointTraining trains once.

use burn::tensor::Device;
use cl_core::config::{ConfigFile, Validate, assert_rule};
use cl_core::data::ClassificationDataset;
use cl_core::{ClError, Experience, OptimizerSpec, Strategy};
use cl_models::{SimpleMlp, SimpleMlpConfig};
use cl_plugins::regularization::{EwcConfig, EwcMode, MasConfig, RWalkConfig, SynapticIntelligenceConfig};
use cl_plugins::{
    AGemConfig, CwrStarConfig, FromScratchConfig, GDumbConfig, GemConfig, GssGreedyConfig, LflConfig, LwfConfig,
    MirConfig, ReplayConfig, ReplayPlugin,
};

use crate::*;

/// One non-default configuration of every strategy.
pub(crate) fn every_strategy() -> Vec<StrategyConfig> {
    vec![
        StrategyConfig::Naive(NaiveConfig::default()),
        StrategyConfig::Cumulative(CumulativeConfig::default()),
        StrategyConfig::JointTraining(JointTrainingConfig::default()),
        StrategyConfig::FromScratchTraining(FromScratchConfig::default().with_reset_optimizer(false)),
        StrategyConfig::Replay(ReplayConfig::new(64)),
        StrategyConfig::GDumb(GDumbConfig::new(32)),
        StrategyConfig::Ewc(EwcConfig::new(0.4).with_mode(EwcMode::Online { decay_factor: 0.9 })),
        StrategyConfig::SynapticIntelligence(SynapticIntelligenceConfig::new(0.5)),
        StrategyConfig::Mas(MasConfig::default().with_lambda_reg(2.0)),
        StrategyConfig::RWalk(RWalkConfig::default().with_ewc_lambda(0.3)),
        StrategyConfig::Lfl(LflConfig::new(0.25)),
        StrategyConfig::Lwf(LwfConfig::default().with_alpha(0.5).with_temperature(3.0)),
        StrategyConfig::AGem(AGemConfig::new(16).with_sample_size(8)),
        StrategyConfig::Gem(GemConfig::new(16).with_memory_strength(0.25)),
        StrategyConfig::CwrStar(CwrStarConfig::default().with_cwr_layer_name("classifier")),
        StrategyConfig::Der(DerConfig::new(10).with_batch_size_mem(4).with_alpha(0.3).with_beta(0.2).with_seed(3)),
        StrategyConfig::ErAce(ErAceConfig::new(10).with_batch_size_mem(3).with_seed(2)),
        StrategyConfig::ErAml(ErAmlConfig::new(10).with_batch_size_mem(3).with_temp(0.2).with_seed(2)),
        StrategyConfig::Mir(MirConfig::new(12).with_subsample(5).with_batch_size_mem(2).with_seed(1)),
        StrategyConfig::Scr(ScrConfig::new(10).with_batch_size_mem(4).with_seed(3)),
        StrategyConfig::PackNet(PackNetConfig::new(1, PruneProportion::PerExperience(vec![0.5, 0.25, 0.75]))),
        StrategyConfig::Bic(BicConfig::new(20).with_val_percentage(0.3).with_stage_2_epochs(7).with_seed(4)),
        StrategyConfig::LaMaml(LaMamlConfig::default().with_n_inner_updates(2).with_max_buffer_size(8).with_seed(6)),
        StrategyConfig::GenerativeReplay(
            GenerativeReplayConfig::default()
                .with_generator(cl_models::MlpVaeConfig::default().with_input_size(4))
                .with_replay_size(Some(3)),
        ),
        StrategyConfig::StreamingLda(StreamingLdaConfig::new(6).with_shrinkage(0.01)),
        StrategyConfig::Icarl(IcarlConfig::new(8)),
        StrategyConfig::Pnn(PnnStrategyConfig::default()),
        StrategyConfig::GssGreedy(GssGreedyConfig::new(12).with_batch_size_mem(2).with_seed(1)),
        StrategyConfig::Cope(CopeConfig::new(12).with_n_classes(6).with_p_size(6).with_max_it_cnt(3).with_seed(1)),
        StrategyConfig::Ar1(Ar1Config::new().with_rm_sz(6).with_inc_lr(0.01).with_si_lambda(0.5).with_seed(2)),
    ]
}

fn model(device: &Device) -> SimpleMlp {
    SimpleMlpConfig::new().with_input_size(4).with_hidden_size(8).with_num_classes(3).init(device).unwrap()
}

#[test]
fn every_strategy_is_named_once_in_variant_order() {
    let names: Vec<&str> = every_strategy().iter().map(StrategyConfig::name).collect();
    assert_eq!(names, StrategyConfig::NAMES);
}

#[test]
fn every_strategy_config_round_trips_through_json_and_toml() {
    for config in every_strategy() {
        let json = config.to_json();
        assert!(json.contains(&format!("\"name\": \"{}\"", config.name())), "{json}");
        assert_eq!(StrategyConfig::from_json(&json).unwrap(), config, "{json}");
        let toml = config.to_toml().unwrap();
        assert_eq!(StrategyConfig::from_toml(&toml).unwrap(), config, "{toml}");
    }
    assert_eq!(NaiveConfig::from_json("{}").unwrap(), NaiveConfig::default());
    assert_eq!(CumulativeConfig::from_toml("").unwrap(), CumulativeConfig::default());
    assert_eq!(JointTrainingConfig::from_json("{}").unwrap(), JointTrainingConfig::default());
}

#[test]
fn unknown_names_and_fields_are_parse_errors() {
    let err = StrategyConfig::from_json(r#"{"name": "ewcc", "config": {}}"#).unwrap_err();
    assert!(matches!(err, ClError::ConfigParse { .. }), "{err}");
    assert!(err.to_string().contains("ewcc"), "{err}");
    let err = NaiveConfig::from_json(r#"{"lr": 0.1}"#).unwrap_err();
    assert!(matches!(err, ClError::ConfigParse { .. }), "{err}");
}

#[test]
fn the_strategy_config_checks_the_rules_of_its_strategy() {
    let bad = StrategyConfig::Gem(GemConfig::new(0));
    assert_rule(bad.validate(), "patterns_per_exp_positive");
    assert_rule(StrategyConfig::from_json(&bad.to_json()).map(|_| ()), "patterns_per_exp_positive");
    let device = Device::flex();
    assert_rule(
        bad.builder(model(&device), OptimizerSpec::sgd(0.1), device.clone()).map(|_| ()),
        "patterns_per_exp_positive",
    );
    assert_rule(
        Ewc::builder(model(&device), OptimizerSpec::sgd(0.1), device, EwcConfig::new(-1.0)).map(|_| ()),
        "ewc_lambda_finite_non_negative",
    );
}

#[test]
fn a_list_of_different_strategies_is_built_from_names_and_configs() {
    let device = Device::flex();
    let strategies: Vec<Strategy<SimpleMlp>> = every_strategy()
        .iter()
        // PnnStrategy refuses any model but a PNN, AR1 one without a latent layer.
        .filter(|config| !matches!(config, StrategyConfig::Pnn(_) | StrategyConfig::Ar1(_)))
        // Two epochs: PackNet fine-tunes for one after pruning.
        .map(|config| config.builder(model(&device), OptimizerSpec::sgd(0.01), device.clone())?.train_epochs(2).build())
        .collect::<cl_core::Result<_>>()
        .unwrap();
    assert_eq!(strategies.len(), StrategyConfig::NAMES.len() - 2);
    // The plugin of a plugin strategy is reachable after build, with its configuration.
    let replay = strategies[4].plugin::<ReplayPlugin>().expect("Replay holds a ReplayPlugin");
    assert_eq!(replay.config().mem_size, 64);
    assert!(strategies[0].plugin::<ReplayPlugin>().is_none());
    assert!(strategies[1].steps_as::<CumulativeSteps>().is_some());
    assert!(strategies[2].steps_as::<JointSteps>().is_some());
}

fn tiny_experience(id: usize, classes: [u32; 2]) -> Experience {
    let n = 8;
    let inputs: Vec<f32> = (0..n * 4).map(|i| (i % 7) as f32 / 7.0).collect();
    let targets: Vec<u32> = (0..n).map(|i| classes[i % 2]).collect();
    let data = ClassificationDataset::from_f32(inputs, vec![4], targets).unwrap();
    Experience::new(id, data, "train", 3)
}

#[test]
fn joint_training_trains_once_on_the_union() {
    let device = Device::flex();
    let stream = vec![tiny_experience(0, [0, 1]), tiny_experience(1, [1, 2])];
    let mut joint =
        JointTraining::builder(model(&device), OptimizerSpec::sgd(0.01), device, JointTrainingConfig::default())
            .unwrap()
            .train_mb_size(4)
            .build()
            .unwrap();
    joint.train(&stream).unwrap();
    assert!(joint.steps_as::<JointSteps>().unwrap().trained());
    // One experience of 16 samples, batches of 4: 4 iterations in all.
    assert_eq!(joint.state().clock().train_iterations, 4);
    let err = joint.train(&stream).unwrap_err();
    assert!(matches!(err, ClError::InvalidUse(_)), "{err}");
    assert!(err.to_string().contains("already trained"), "{err}");
    // Evaluation stays per experience.
    let results = joint.eval(&stream).unwrap();
    assert!(!results.is_empty());
}

#[test]
fn cumulative_trains_on_the_union_so_far() {
    let device = Device::flex();
    let stream = [tiny_experience(0, [0, 1]), tiny_experience(1, [1, 2])];
    let mut strategy =
        Cumulative::builder(model(&device), OptimizerSpec::sgd(0.01), device, CumulativeConfig::default())
            .unwrap()
            .train_mb_size(4)
            .build()
            .unwrap();
    strategy.train(&stream[0]).unwrap();
    assert_eq!(strategy.steps_as::<CumulativeSteps>().unwrap().dataset().unwrap().len(), 8);
    strategy.train(&stream[1]).unwrap();
    assert_eq!(strategy.steps_as::<CumulativeSteps>().unwrap().dataset().unwrap().len(), 16);
    // 2 batches, then 4.
    assert_eq!(strategy.state().clock().train_iterations, 6);
}
