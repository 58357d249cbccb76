//! The configurations (round trips, every rule) and the names the families emit.

use std::collections::BTreeSet;
use std::sync::Arc;

use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use cl_core::config::{ConfigFile, Validate, assert_rule};
use cl_core::data::{ClassificationDataset, MiniBatch};
use cl_core::evaluation::{
    AccuracyConfig, EvaluationPlugin, Granularity, MetricContext, MetricName, MetricValue, TopkConfig,
};
use cl_core::{Callback, ClError, Clock, Experience};

use crate::*;

mod resume;

/// A JSON and a TOML round trip of `config`.
fn round_trip<C: ConfigFile + PartialEq + std::fmt::Debug>(config: &C) {
    assert_eq!(&C::from_json(&config.to_json()).unwrap(), config, "JSON: {}", config.to_json());
    let toml = config.to_toml().unwrap();
    assert_eq!(&C::from_toml(&toml).unwrap(), config, "TOML:\n{toml}");
}

const ODD: Granularity = Granularity { minibatch: true, epoch: false, experience: true, stream: false };

#[test]
fn every_config_round_trips_with_non_default_values() {
    let class = ClassAccuracyConfig::default().with_granularity(Granularity { minibatch: false, ..ODD });
    let amca = AmcaConfig::default().with_streams(AmcaStreams::Only(vec!["valid".into(), "test".into()]));
    let amca_all = AmcaConfig::default().with_streams(AmcaStreams::All);
    let transfer = TransferConfig::default().with_stream(false);
    let confusion = ConfusionMatrixConfig::default().with_num_classes(7);
    let timing = TimingConfig::default().with_granularity(ODD).with_running_epoch(true);
    let ram = MaxRamConfig::default().with_granularity(ODD).with_every(0.25);
    let cpu = CpuUsageConfig::default().with_granularity(ODD);
    let mac = MacConfig::default()
        .with_granularity(Granularity { minibatch: true, ..Granularity::NONE })
        .with_conv_output_sizes(vec![[26, 26], [12, 10]]);
    round_trip(&class);
    round_trip(&amca);
    round_trip(&amca_all);
    round_trip(&transfer);
    round_trip(&confusion);
    round_trip(&timing);
    round_trip(&ram);
    round_trip(&cpu);
    round_trip(&mac);
    let metrics = vec![
        MetricConfig::Accuracy(AccuracyConfig::default().with_loss(ODD).with_task_aware(true).with_running_loss(true)),
        MetricConfig::Topk(TopkConfig::new(3).with_granularity(ODD)),
        MetricConfig::ClassAccuracy(class),
        MetricConfig::Amca(amca),
        MetricConfig::Amca(amca_all),
        MetricConfig::Forgetting(transfer),
        MetricConfig::Bwt(TransferConfig::default().with_experience(false)),
        MetricConfig::ForwardTransfer(transfer),
        MetricConfig::AccuracyMatrix,
        MetricConfig::ConfusionMatrix(confusion),
        MetricConfig::Timing(timing),
        MetricConfig::MaxRam(ram),
        MetricConfig::CpuUsage(cpu),
        MetricConfig::ModelSize,
        MetricConfig::Mac(mac),
    ];
    for m in &metrics {
        round_trip(m);
    }
    let loggers = vec![
        LoggerConfig::Csv { folder: "out/csv".into() },
        LoggerConfig::JsonLines { path: "out/metrics.jsonl".into() },
        LoggerConfig::Text { file: Some("out/log.txt".into()) },
        LoggerConfig::Text { file: None },
        LoggerConfig::Interactive,
        LoggerConfig::TensorBoard { folder: "out/tb".into() },
    ];
    for l in &loggers {
        round_trip(l);
    }
    round_trip(&EvaluationConfig::default());
    round_trip(&EvaluationConfig::all());
    round_trip(&EvaluationConfig::default().with_metrics(metrics).with_loggers(loggers));
}

#[test]
fn config_files_use_avalanche_defaults_and_kinds() {
    let c = EvaluationConfig::from_json(
        r#"{"metrics": [{"kind": "max_ram"}, {"kind": "mac"}], "loggers": [{"kind": "tensorboard"}]}"#,
    )
    .unwrap();
    assert_eq!(c.metrics, [MetricConfig::MaxRam(MaxRamConfig::default()), MetricConfig::Mac(MacConfig::default())]);
    assert_eq!(c.loggers, [LoggerConfig::tensorboard()]);
    assert_eq!(EvaluationConfig::from_json("{}").unwrap(), EvaluationConfig::default());
    let c = EvaluationConfig::from_toml("[[metrics]]\nkind = \"timing\"\ngranularity = { epoch = true }\n").unwrap();
    assert_eq!(
        c.metrics,
        [MetricConfig::Timing(
            TimingConfig::default().with_granularity(Granularity { epoch: true, ..Granularity::NONE })
        )]
    );
    // Unknown fields and kinds are errors, naming the field.
    for bad in [
        r#"{"metrics": [{"kind": "forgetting", "experiense": true}]}"#,
        r#"{"metrics": [{"kind": "accuracy", "accuracy": {"epoc": true}}]}"#,
        r#"{"metrics": [{"kind": "nope"}]}"#,
        r#"{"loggers": [{"kind": "csv", "path": "x"}]}"#,
        r#"{"loggers": [{"kind": "json_lines"}]}"#,
        r#"{"metric": []}"#,
    ] {
        let e = EvaluationConfig::from_json(bad).unwrap_err();
        assert!(matches!(e, ClError::ConfigParse { .. }), "{bad}: {e}");
    }
}

#[test]
fn every_rule_has_a_test() {
    let rules: Vec<(cl_core::Result<()>, &str)> = vec![
        (ClassAccuracyConfig::default().with_granularity(Granularity::ALL).validate(), "granularity_minibatch_off"),
        (AmcaConfig::default().with_streams(AmcaStreams::Only(vec![])).validate(), "streams_not_empty"),
        (
            AmcaConfig::default().with_streams(AmcaStreams::Only(vec!["test".into(), String::new()])).validate(),
            "stream_names_not_empty",
        ),
        (ConfusionMatrixConfig::default().with_num_classes(0).validate(), "num_classes_positive"),
        (MaxRamConfig::default().with_every(0.0).validate(), "every_finite_positive"),
        (MaxRamConfig::default().with_every(f64::NAN).validate(), "every_finite_positive"),
        (MaxRamConfig::default().with_every(f64::INFINITY).validate(), "every_finite_positive"),
        (MacConfig::default().with_granularity(Granularity::DEFAULT).validate(), "granularity_stream_off"),
        (MacConfig::default().with_conv_output_sizes(vec![[3, 3], [0, 2]]).validate(), "conv_output_sizes_positive"),
        (LoggerConfig::Csv { folder: "".into() }.validate(), "csv_folder_not_empty"),
        (LoggerConfig::JsonLines { path: "".into() }.validate(), "json_lines_path_not_empty"),
        (LoggerConfig::Text { file: Some("".into()) }.validate(), "text_file_not_empty"),
        (LoggerConfig::TensorBoard { folder: "".into() }.validate(), "tensorboard_folder_not_empty"),
        (
            EvaluationConfig::default()
                .with_loggers(vec![LoggerConfig::csv(), LoggerConfig::Interactive, LoggerConfig::csv()])
                .validate(),
            "logger_outputs_distinct",
        ),
        (
            EvaluationConfig::default()
                .with_loggers(vec![
                    LoggerConfig::JsonLines { path: "run/log".into() },
                    LoggerConfig::Text { file: Some("run/log".into()) },
                ])
                .validate(),
            "logger_outputs_distinct",
        ),
        // Through the containers and the constructors.
        (MetricConfig::Topk(TopkConfig::new(0)).validate(), "top_k_positive"),
        (
            EvaluationConfig::default().with_metrics(vec![MetricConfig::Topk(TopkConfig::new(0))]).validate(),
            "top_k_positive",
        ),
        (
            EvaluationConfig::default().with_loggers(vec![LoggerConfig::Csv { folder: "".into() }]).build().map(|_| ()),
            "csv_folder_not_empty",
        ),
        (
            ClassAccuracy::new(ClassAccuracyConfig::default().with_granularity(Granularity::ALL)).map(|_| ()),
            "granularity_minibatch_off",
        ),
        (Amca::new(AmcaConfig::default().with_streams(AmcaStreams::Only(vec![]))).map(|_| ()), "streams_not_empty"),
        (
            ConfusionMatrixMetric::new(ConfusionMatrixConfig::default().with_num_classes(0)).map(|_| ()),
            "num_classes_positive",
        ),
        (MaxRam::new(MaxRamConfig::default().with_every(-1.0)).map(|_| ()), "every_finite_positive"),
        (MacMetric::new(MacConfig::default().with_granularity(Granularity::ALL)).map(|_| ()), "granularity_stream_off"),
    ];
    for (result, rule) in rules {
        assert_rule(result, rule);
    }
    // The defaults and presets pass every rule; distinct folders and stdout loggers are fine.
    for m in EvaluationConfig::all().metrics {
        assert!(m.validate().is_ok(), "{m:?}");
    }
    let ok = EvaluationConfig::default().with_loggers(vec![
        LoggerConfig::csv(),
        LoggerConfig::tensorboard(),
        LoggerConfig::Text { file: None },
        LoggerConfig::Text { file: None },
        LoggerConfig::Interactive,
    ]);
    assert!(ok.validate().is_ok());
}

#[test]
fn logger_configs_build_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = EvaluationConfig::default().with_loggers(vec![
        LoggerConfig::Csv { folder: dir.path().join("csv") },
        LoggerConfig::JsonLines { path: dir.path().join("m.jsonl") },
        LoggerConfig::Text { file: Some(dir.path().join("log.txt")) },
        LoggerConfig::TensorBoard { folder: dir.path().join("tb") },
    ]);
    let mut evaluator = config.build().unwrap();
    evaluator.flush().unwrap();
    for file in ["csv/training_results.csv", "csv/eval_results.csv", "m.jsonl", "log.txt"] {
        assert!(dir.path().join(file).is_file(), "{file}");
    }
    assert_eq!(std::fs::read_dir(dir.path().join("tb")).unwrap().count(), 1);
    // A folder that cannot be created is an I/O error naming it.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let e = LoggerConfig::Csv { folder: blocker.join("csv") }.build().map(|_| ()).unwrap_err();
    assert!(matches!(&e, ClError::Io { path, .. } if path == &blocker.join("csv")), "{e}");
}

/// Replays the callbacks of a small run into an evaluator (as the workspace's `metrics_support`
/// driver does, cut to what the name test needs).
struct Driver {
    eval: EvaluationPlugin,
    clock: Clock,
    device: Device,
    model: Linear,
}

fn experience(index: usize, stream: &str, targets: &[u32]) -> Experience {
    let data = ClassificationDataset::from_f32(vec![0.0; targets.len() * 4], vec![4], targets.to_vec())
        .unwrap()
        .with_task_label(0);
    Experience::new(index, data, stream, 4)
}

impl Driver {
    fn new(eval: EvaluationPlugin) -> Self {
        let device = Device::default();
        Self { eval, clock: Clock::default(), model: LinearConfig::new(4, 3).init(&device), device }
    }

    fn batch(&self, y: &[u32]) -> (MiniBatch, Tensor<2>, Tensor<1>) {
        let n = y.len();
        let ints = |v: Vec<i64>| Tensor::<1, Int>::from_data(TensorData::new(v, [n]), &self.device);
        let batch = MiniBatch {
            x: Tensor::zeros([n, 4], &self.device),
            y: ints(y.iter().map(|&v| v as i64).collect()),
            t: ints(vec![0; n]),
            targets: y.to_vec(),
            task_labels: vec![0; n],
            sample_shape: Arc::from(vec![4usize]),
        };
        // Predicts class 0 for everything.
        let mut logits = vec![0.0f32; n * 4];
        for i in 0..n {
            logits[i * 4] = 5.0;
        }
        let out = Tensor::from_data(TensorData::new(logits, [n, 4]), &self.device);
        let loss = Tensor::from_data(TensorData::new(vec![0.5f32], [1]), &self.device);
        (batch, out, loss)
    }

    fn call(
        &mut self,
        cb: Callback,
        training: bool,
        exp: &Experience,
        step: Option<&(MiniBatch, Tensor<2>, Tensor<1>)>,
    ) {
        let mut ctx = MetricContext::new(
            cb,
            training,
            self.clock,
            Some(exp),
            step.map(|s| &s.0),
            step.map(|s| &s.1),
            step.map(|s| &s.2),
            &self.model,
        );
        ctx.dataset_len = Some(exp.dataset.len());
        ctx.mb_size = 4;
        ctx.train_epochs = 1;
        self.eval.process(&ctx).unwrap();
        self.clock.after(cb);
    }

    fn train(&mut self, exp: &Experience) {
        let step = self.batch(&exp.dataset.targets());
        for cb in [Callback::BeforeTraining, Callback::BeforeTrainingExp, Callback::BeforeTrainingEpoch] {
            self.call(cb, true, exp, None);
        }
        for cb in [Callback::BeforeTrainingIteration, Callback::AfterForward, Callback::AfterTrainingIteration] {
            self.call(cb, true, exp, Some(&step));
        }
        for cb in [Callback::AfterTrainingEpoch, Callback::AfterTrainingExp, Callback::AfterTraining] {
            self.call(cb, true, exp, None);
        }
    }

    fn eval_stream(&mut self, exps: &[Experience]) {
        self.call(Callback::BeforeEval, false, &exps[0], None);
        for exp in exps {
            let step = self.batch(&exp.dataset.targets());
            self.call(Callback::BeforeEvalExp, false, exp, None);
            self.call(Callback::AfterEvalIteration, false, exp, Some(&step));
            self.call(Callback::AfterEvalExp, false, exp, None);
        }
        self.call(Callback::AfterEval, false, exps.last().unwrap(), None);
    }
}

/// Every name the families of [`EvaluationConfig::all`] emit: a [`MetricName`] that writes back
/// to the same string, of the expected families.
#[test]
fn all_metrics_emit_parseable_avalanche_names() {
    let run = |eval: EvaluationPlugin| -> Vec<MetricValue> {
        let mut d = Driver::new(eval);
        let test: Vec<_> = (0..2).map(|e| experience(e, "test", &[2 * e as u32, 2 * e as u32 + 1])).collect();
        d.eval_stream(&test);
        for e in 0..2u32 {
            d.train(&experience(e as usize, "train", &[2 * e, 2 * e + 1]));
            d.eval_stream(&test);
        }
        d.eval.history().to_vec()
    };
    let history = run(all_metrics());
    let names: BTreeSet<&str> = history.iter().map(|v| v.name.as_str()).collect();
    for name in &names {
        let parsed: MetricName = name.parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.to_string(), *name);
    }
    for want in [
        "Top1_Acc_Epoch/train_phase/train_stream/Task000",
        "Top1_RunningAcc_Epoch/train_phase/train_stream/Task000",
        "RunningLoss_Epoch/train_phase/train_stream/Task000",
        "Loss_Exp/eval_phase/test_stream/Task000/Exp000",
        "Accuracy_On_Trained_Experiences/eval_phase/test_stream/Task000",
        "Topk_5_Acc_Exp/eval_phase/test_stream/Task000/Exp000",
        "Top1_ClassAcc_Epoch/train_phase/train_stream/Task000/0",
        "Top1_ClassAcc_Exp/eval_phase/test_stream/Task000/Exp001/3",
        "Top1_ClassAcc_Stream/eval_phase/test_stream/Task000/2",
        "Top1_AMCA_Stream/test_stream/Task000",
        "ExperienceForgetting/eval_phase/test_stream/Task000/Exp000",
        "StreamForgetting/eval_phase/test_stream",
        "ExperienceBWT/eval_phase/test_stream/Task000/Exp000",
        "StreamBWT/eval_phase/test_stream",
        "ExperienceForwardTransfer/eval_phase/test_stream/Task000/Exp001",
        "StreamForwardTransfer/eval_phase/test_stream",
        "ConfusionMatrix_Stream/eval_phase/test_stream",
        "Time_Epoch/train_phase/train_stream/Task000",
        "Time_Exp/eval_phase/test_stream/Task000/Exp000",
        "MaxRAMUsage_Experience/eval_phase/test_stream/Task000/Exp001",
        "CPUUsage_Stream/eval_phase/test_stream/Task000",
        "MAC_Epoch/train_phase/train_stream/Task000",
        "MAC_Exp/eval_phase/test_stream/Task000/Exp000",
        "EvalStream/Acc_Matrix",
        "ModelParams_Exp/train_phase/train_stream/Task000/Exp001",
        "ModelBytes_Exp/train_phase/train_stream/Task000/Exp001",
    ] {
        assert!(names.contains(want), "missing {want}; have {names:#?}");
    }
    // The preset and the function are one evaluator; the JSON and TOML of the preset give it too.
    let all = EvaluationConfig::all();
    let from_toml = EvaluationConfig::from_toml(&all.to_toml().unwrap()).unwrap().build().unwrap();
    assert_eq!(from_toml.metric_names(), all_metrics().metric_names());
    let again: BTreeSet<String> = run(from_toml).into_iter().map(|v| v.name).collect();
    assert_eq!(again, names.iter().map(|n| n.to_string()).collect());
    // The accuracy matrix of the history is the one the metric emitted.
    let Some(cl_core::evaluation::MetricData::Matrix { rows }) =
        history.iter().rev().find(|v| v.name == "EvalStream/Acc_Matrix").and_then(|v| v.data.clone())
    else {
        panic!("no accuracy matrix")
    };
    let from_history = cl_core::evaluation::AccuracyMatrix::from_history(&history, "test").unwrap();
    assert_eq!(from_history.measured_rows(), cl_core::evaluation::AccuracyMatrix::from_rows(rows).measured_rows());
}
