//! Unit tests of the configurations (round trips, one test per rule) and of the seeded weights.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use cl_core::config::{ConfigFile, Validate, assert_rule};
use cl_core::{Model, Result};

use crate::{
    IncrementalClassifierConfig, ModelConfig, ModelVisitor, MultiHeadConfig, NcmConfig, SimpleCnnConfig,
    SimpleMlpConfig,
};

fn device() -> Device {
    Device::flex()
}

/// FNV-1a over the bits of every float parameter, in visiting order, and their number.
struct Fingerprint {
    hash: u64,
    count: usize,
}

impl ModuleVisitor for Fingerprint {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let values = param.val().into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        for v in values {
            for b in v.to_bits().to_le_bytes() {
                self.hash ^= b as u64;
                self.hash = self.hash.wrapping_mul(0x100_0000_01b3);
            }
            self.count += 1;
        }
    }
}

fn fingerprint<M: Module>(m: &M) -> (u64, usize) {
    let mut f = Fingerprint { hash: 0xcbf2_9ce4_8422_2325, count: 0 };
    m.visit(&mut f);
    (f.hash, f.count)
}

/// The initial weights of every model are those of the seeds before the config idiom (bit for
/// bit; the values were recorded from the previous implementation).
#[test]
fn seeded_weights_are_unchanged() {
    let d = device();
    let mlp = SimpleMlpConfig::new().init(&d).unwrap();
    assert_eq!(fingerprint(&mlp), (9351528411793721389, 407050));
    let deep = SimpleMlpConfig::new().with_seed(Some(7)).with_hidden_layers(2).with_hidden_size(64).init(&d).unwrap();
    assert_eq!(fingerprint(&deep), (7274407667962136909, 55050));
    let mt = SimpleMlpConfig::new().with_num_classes(2).init_multitask(&d).unwrap();
    assert_eq!(fingerprint(&mt), (1186341916364369714, 402946));
    let inc = SimpleMlpConfig::new().with_seed(Some(3)).init_incremental(&d).unwrap();
    assert_eq!(fingerprint(&inc), (14534624308850421113, 402946));
    assert_eq!(fingerprint(&SimpleCnnConfig::new().init(&d).unwrap()), (3304748305206116050, 70378));
    let cnn = SimpleCnnConfig::new().with_in_channels(1).with_seed(5).init(&d).unwrap();
    assert_eq!(fingerprint(&cnn), (7433560703953296125, 69802));
    let mt_cnn = SimpleCnnConfig::new().with_in_channels(1).init_multitask(&d).unwrap();
    assert_eq!(fingerprint(&mt_cnn), (4272347169660856520, 69282));
    let mut head = IncrementalClassifierConfig::new(5).with_seed(3).init(&d).unwrap();
    assert_eq!(fingerprint(&head), (11583924108782366255, 12));
    head.grow(7);
    assert_eq!(fingerprint(&head), (4614725257623163368, 42));
    let mh = MultiHeadConfig::new(4).with_initial_out_features(3).with_seed(9).init(&d).unwrap();
    assert_eq!(fingerprint(&mh), (12118572890643983836, 15));
    let as_mt = SimpleMlpConfig::new().with_num_classes(2).init(&d).unwrap().as_multitask();
    assert_eq!(fingerprint(&as_mt), (15180422174204119686, 402946));
    let as_inc = SimpleMlpConfig::new().init(&d).unwrap().as_incremental();
    assert_eq!(fingerprint(&as_inc), (9351528411793721389, 407050));
}

/// JSON and TOML round trips of `config`.
fn round_trip<C: ConfigFile + PartialEq + std::fmt::Debug>(config: &C) {
    assert_eq!(&C::from_json(&config.to_json()).unwrap(), config, "JSON: {}", config.to_json());
    let toml = config.to_toml().unwrap();
    assert_eq!(&C::from_toml(&toml).unwrap(), config, "TOML: {toml}");
}

#[test]
fn simple_mlp_config_round_trips() {
    let config = SimpleMlpConfig::new()
        .with_num_classes(5)
        .with_input_size(100)
        .with_hidden_size(64)
        .with_hidden_layers(3)
        .with_drop_rate(0.25)
        .with_seed(Some(42));
    assert_ne!(config, SimpleMlpConfig::default());
    round_trip(&config);
    // `None` (the device's RNG) is written "device": TOML has no null.
    let device_seed = config.with_seed(None);
    round_trip(&device_seed);
    assert!(device_seed.to_toml().unwrap().contains("seed = \"device\""));
    assert_eq!(SimpleMlpConfig::from_json(r#"{"seed": null}"#).unwrap().seed, None);
    assert!(SimpleMlpConfig::from_toml("seed = -1").is_err());
    assert!(SimpleMlpConfig::from_toml("seed = \"host\"").is_err());
}

#[test]
fn simple_cnn_config_round_trips() {
    let config = SimpleCnnConfig::new().with_num_classes(7).with_in_channels(1).with_drop_rate(0.1).with_seed(9);
    assert_ne!(config, SimpleCnnConfig::default());
    round_trip(&config);
}

#[test]
fn incremental_classifier_config_round_trips() {
    let config = IncrementalClassifierConfig::new(32)
        .with_initial_out_features(5)
        .with_masking(false)
        .with_mask_value(-5.5)
        .with_seed(11);
    round_trip(&config);
}

#[test]
fn multi_head_config_round_trips() {
    let config =
        MultiHeadConfig::new(16).with_initial_out_features(4).with_masking(false).with_mask_value(-1.0).with_seed(2);
    round_trip(&config);
}

#[test]
fn ncm_config_round_trips() {
    round_trip(&NcmConfig::new(8).with_normalize(false));
}

#[test]
fn model_config_round_trips_every_variant() {
    let mlp = SimpleMlpConfig::new().with_hidden_size(32).with_num_classes(3).with_seed(None);
    let cnn = SimpleCnnConfig::new().with_in_channels(1).with_seed(4);
    for config in [
        ModelConfig::SimpleMlp(mlp.clone()),
        ModelConfig::SimpleCnn(cnn.clone()),
        ModelConfig::MtSimpleMlp(mlp.clone()),
        ModelConfig::MtSimpleCnn(cnn),
        ModelConfig::IncrementalMlp(mlp.clone()),
        ModelConfig::ScrMlp(crate::ScrMlpConfig { mlp, projection_size: 16 }),
    ] {
        round_trip(&config);
        assert!(config.to_json().contains(&format!("\"type\": \"{}\"", config.name())));
    }
}

#[test]
fn files_give_the_defaults_and_reject_unknown_fields() {
    assert_eq!(SimpleMlpConfig::from_toml("").unwrap(), SimpleMlpConfig::new());
    assert_eq!(SimpleCnnConfig::from_json("{}").unwrap(), SimpleCnnConfig::new());
    assert_eq!(MultiHeadConfig::from_toml("in_features = 3").unwrap(), MultiHeadConfig::new(3));
    assert_eq!(NcmConfig::from_json(r#"{"feature_size": 3}"#).unwrap(), NcmConfig::new(3));
    assert!(IncrementalClassifierConfig::from_toml("masking = false").is_err(), "in_features is required");
    assert!(NcmConfig::from_toml("normalize = false").is_err(), "feature_size is required");
    assert!(SimpleMlpConfig::from_toml("hiden_size = 3").is_err());
    assert!(SimpleCnnConfig::from_toml("channels = 1").is_err());
    assert!(IncrementalClassifierConfig::from_toml("in_features = 3\nmask = 1.0").is_err());
    assert!(MultiHeadConfig::from_json(r#"{"in_features": 3, "heads": 2}"#).is_err());
    assert!(NcmConfig::from_json(r#"{"feature_size": 3, "normalise": true}"#).is_err());
    assert!(ModelConfig::from_toml("type = \"simple_mlp\"\nin_channels = 1").is_err());
    assert!(ModelConfig::from_toml("type = \"resnet\"").is_err());
    let cnn = ModelConfig::from_toml("type = \"mt_simple_cnn\"\nin_channels = 1").unwrap();
    assert_eq!(cnn, ModelConfig::MtSimpleCnn(SimpleCnnConfig::new().with_in_channels(1)));
}

#[test]
fn the_defaults_are_avalanches() {
    let mlp = SimpleMlpConfig::default();
    assert_eq!(
        (mlp.num_classes, mlp.input_size, mlp.hidden_size, mlp.hidden_layers, mlp.drop_rate, mlp.seed),
        (10, 784, 512, 1, 0.5, Some(0))
    );
    let cnn = SimpleCnnConfig::default();
    assert_eq!((cnn.num_classes, cnn.in_channels, cnn.drop_rate, cnn.seed), (10, 3, 0.25, 0));
    let inc = IncrementalClassifierConfig::new(8);
    assert_eq!((inc.initial_out_features, inc.masking, inc.mask_value, inc.seed), (2, true, -1000.0, 0));
    let mh = MultiHeadConfig::new(8);
    assert_eq!((mh.initial_out_features, mh.masking, mh.mask_value, mh.seed), (2, true, -1000.0, 0));
    assert!(NcmConfig::new(8).normalize);
    for config in [
        SimpleMlpConfig::default().validate(),
        SimpleCnnConfig::default().validate(),
        inc.validate(),
        mh.validate(),
        NcmConfig::new(8).validate(),
    ] {
        config.unwrap();
    }
}

#[test]
fn simple_mlp_config_rules() {
    let ok = SimpleMlpConfig::new;
    for (config, rule) in [
        (ok().with_num_classes(0), "num_classes_positive"),
        (ok().with_input_size(0), "input_size_positive"),
        (ok().with_hidden_size(0), "hidden_size_positive"),
        (ok().with_hidden_layers(0), "hidden_layers_positive"),
        (ok().with_drop_rate(1.0), "drop_rate_in_unit_interval"),
        (ok().with_drop_rate(-0.1), "drop_rate_in_unit_interval"),
        (ok().with_drop_rate(f64::NAN), "drop_rate_in_unit_interval"),
    ] {
        assert_rule(config.validate(), rule);
        assert_rule(config.init(&device()), rule);
        assert_rule(config.init_multitask(&device()), rule);
        assert_rule(config.init_incremental(&device()), rule);
        assert_rule(ModelConfig::SimpleMlp(config).validate(), rule);
    }
}

#[test]
fn simple_cnn_config_rules() {
    let ok = SimpleCnnConfig::new;
    for (config, rule) in [
        (ok().with_num_classes(0), "num_classes_positive"),
        (ok().with_in_channels(0), "in_channels_positive"),
        (ok().with_drop_rate(1.0), "drop_rate_in_unit_interval"),
        (ok().with_drop_rate(-0.5), "drop_rate_in_unit_interval"),
    ] {
        assert_rule(config.validate(), rule);
        assert_rule(config.init(&device()), rule);
        assert_rule(config.init_trunk(&device()), rule);
        assert_rule(config.init_multitask(&device()), rule);
        assert_rule(ModelConfig::MtSimpleCnn(config).validate(), rule);
    }
}

#[test]
fn incremental_classifier_config_rules() {
    let ok = || IncrementalClassifierConfig::new(4);
    for (config, rule) in [
        (ok().with_in_features(0), "in_features_positive"),
        (ok().with_initial_out_features(0), "initial_out_features_positive"),
        (ok().with_mask_value(f32::NAN), "mask_value_finite"),
        (ok().with_mask_value(f32::NEG_INFINITY), "mask_value_finite"),
    ] {
        assert_rule(config.validate(), rule);
        assert_rule(config.init(&device()), rule);
    }
}

#[test]
fn multi_head_config_rules() {
    let ok = || MultiHeadConfig::new(4);
    for (config, rule) in [
        (ok().with_in_features(0), "in_features_positive"),
        (ok().with_initial_out_features(0), "initial_out_features_positive"),
        (ok().with_mask_value(f32::INFINITY), "mask_value_finite"),
    ] {
        assert_rule(config.validate(), rule);
        assert_rule(config.init(&device()), rule);
    }
}

#[test]
fn ncm_config_rules() {
    assert_rule(NcmConfig::new(0).validate(), "feature_size_positive");
    assert_rule(NcmConfig::new(0).init(), "feature_size_positive");
}

#[test]
fn files_are_validated() {
    assert_rule(SimpleMlpConfig::from_toml("drop_rate = 1.5"), "drop_rate_in_unit_interval");
    assert_rule(ModelConfig::from_json(r#"{"type": "simple_cnn", "in_channels": 0}"#), "in_channels_positive");
}

#[test]
fn conversions_to_dynamic_heads_validate_their_config() {
    let d = device();
    let mlp = || SimpleMlpConfig::new().with_hidden_size(8).with_num_classes(3).init(&d).unwrap();
    // in_features comes from the backbone, whatever the config says.
    let mt = mlp().into_headed().as_multitask_with(MultiHeadConfig::new(0).with_initial_out_features(4)).unwrap();
    assert_eq!(mt.classifier.head(0).unwrap().in_features(), 8);
    assert_rule(
        mlp().into_headed().as_multitask_with(MultiHeadConfig::new(8).with_mask_value(f32::NAN)),
        "mask_value_finite",
    );
    let inc = mlp()
        .into_headed()
        .as_incremental_with(IncrementalClassifierConfig::new(1).with_masking(false).with_seed(3))
        .unwrap();
    assert_eq!((inc.classifier.in_features(), inc.classifier.num_outputs()), (8, 3));
    assert!(!inc.classifier.masking());
    assert_rule(
        mlp().into_headed().as_incremental_with(IncrementalClassifierConfig::new(8).with_mask_value(f32::NAN)),
        "mask_value_finite",
    );
    let default = mlp().as_incremental();
    assert!(default.classifier.masking());
    assert_eq!(default.classifier.mask_value(), -1000.0);
}

struct Summary;

impl ModelVisitor for Summary {
    type Output = (Option<usize>, bool, String);

    fn visit<M: Model>(self, model: M) -> Result<Self::Output> {
        let name = std::any::type_name::<M>().rsplit("::").next().unwrap_or_default().to_string();
        Ok((model.num_outputs(), model.adapts_outputs(), name))
    }
}

#[test]
fn model_config_builds_each_model() {
    let d = device();
    let mlp = SimpleMlpConfig::new().with_num_classes(5).with_hidden_size(16);
    let cnn = SimpleCnnConfig::new().with_num_classes(4).with_in_channels(1);
    let cases = [
        (ModelConfig::SimpleMlp(mlp.clone()), Some(5), false),
        (ModelConfig::SimpleCnn(cnn.clone()), Some(4), false),
        (ModelConfig::MtSimpleMlp(mlp.clone()), Some(2), true),
        (ModelConfig::MtSimpleCnn(cnn), Some(2), true),
        (ModelConfig::IncrementalMlp(mlp), Some(2), true),
    ];
    for (config, outputs, adapts) in cases {
        let (n, a, _) = config.init_with(&d, Summary).unwrap();
        assert_eq!((n, a), (outputs, adapts), "{}", config.name());
    }
    // The same seeds as the configs' own init.
    let config = SimpleMlpConfig::new().with_seed(Some(7)).with_hidden_layers(2).with_hidden_size(64);
    struct Print;
    impl ModelVisitor for Print {
        type Output = (u64, usize);
        fn visit<M: Model>(self, model: M) -> Result<(u64, usize)> {
            Ok(fingerprint(&model))
        }
    }
    assert_eq!(ModelConfig::SimpleMlp(config).init_with(&d, Print).unwrap(), (7274407667962136909, 55050));
    assert_rule(
        ModelConfig::IncrementalMlp(SimpleMlpConfig::new().with_hidden_size(0)).init_with(&d, Summary),
        "hidden_size_positive",
    );
}
