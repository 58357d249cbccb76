//! Task-incremental SplitFMNIST on the shipped fixture: a multi-head MLP trained with Naive
//! keeps its accuracy on every experience (each task has its own head), while the
//! class-incremental run with a single head forgets.

use crate::common::*;
use cl::benchmarks::SplitConfig;
use cl::models::MtSimpleMlp;
use cl::prelude::*;

fn run<M: Model>(mut strategy: Strategy<M>, b: &Benchmark, task_il: bool) -> AccuracyMatrix {
    let n = b.n_experiences();
    let mut r = AccuracyMatrix::new(n);
    for exp in &b.train_stream {
        strategy.train(exp).unwrap();
        let results = strategy.eval(&b.test_stream).unwrap();
        for j in 0..n {
            let task = if task_il { j as u32 } else { 0 };
            r.set(exp.current_experience, j, results[&MetricName::test_exp_accuracy(task, j).to_string()]);
        }
    }
    r
}

fn optimizer() -> OptimizerSpec {
    OptimizerSpec::sgd(0.01).with_momentum(0.9)
}

#[test]
fn multi_head_naive_keeps_task_incremental_accuracy_while_class_incremental_forgets() {
    let seed: u64 = std::env::var("CL_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let config = SplitConfig::new(5)
        .with_seed(seed)
        .with_return_task_id(true)
        .with_class_ids_from_zero_in_each_exp(true)
        .with_dataset_root(fixture_dir());
    let b = split_fmnist(&config).unwrap();
    for (t, exp) in b.train_stream.iter().enumerate() {
        assert_eq!(exp.task_labels, vec![t as u32]);
        assert_eq!(exp.classes_in_this_experience, vec![0, 1]);
    }
    let model: MtSimpleMlp = SimpleMlpConfig::new().with_num_classes(2).init_multitask(&cl::default_device()).unwrap();
    let naive = Naive::builder(model, optimizer(), cl::default_device(), NaiveConfig::default())
        .unwrap()
        .train_mb_size(32)
        .train_epochs(3)
        .eval_mb_size(100)
        .seed(1)
        .build()
        .unwrap();
    let task_il = run(naive, &b, true);
    eprintln!("task-IL accuracy matrix {:?}", task_il.rows());

    let class_il_model = SimpleMlpConfig::new().init(&cl::default_device()).unwrap();
    let naive = Naive::builder(class_il_model, optimizer(), cl::default_device(), NaiveConfig::default())
        .unwrap()
        .train_mb_size(32)
        .train_epochs(3)
        .eval_mb_size(100)
        .seed(1)
        .build()
        .unwrap();
    let class_il = run(naive, &fixture_benchmark(seed), false);
    eprintln!("class-IL accuracy matrix {:?}", class_il.rows());

    // Measured on the fixture with experiences in Avalanche's class-grouped sample order
    // (task-IL final average / forgetting; class-IL forgetting): seed 1 0.83 / 0.15 (the shared
    // trunk drifts so that task 3's head predicts one class at the end); 0.93; seed 2 0.86 / 0.09,
    // 0.95; seed 3 0.88 / 0.08, 0.93. (With the file order, seed 1 gave 0.95 / 0.01.)
    assert!(task_il.average_accuracy(4).unwrap() > 0.8, "task-IL final average {:?}", task_il.average_accuracy(4));
    assert!(task_il.forgetting().unwrap() < 0.2, "task-IL forgetting {:?}", task_il.forgetting());
    assert!(class_il.forgetting().unwrap() > 0.5, "class-IL forgetting {:?}", class_il.forgetting());
    assert!(task_il.average_accuracy(4).unwrap() > class_il.average_accuracy(4).unwrap() + 0.35);
}

#[test]
fn a_multi_head_model_gets_one_head_per_task_label_in_the_stream() {
    let config = SplitConfig::new(5).with_seed(2).with_return_task_id(true).with_dataset_root(fixture_dir());
    let b = split_fmnist(&config).unwrap();
    let model = SimpleMlpConfig::new().with_num_classes(2).init_multitask(&cl::default_device()).unwrap();
    let mut s = Naive::builder(model, optimizer(), cl::default_device(), NaiveConfig::default())
        .unwrap()
        .train_mb_size(100)
        .build()
        .unwrap();
    s.train(&b.train_stream.slice(0..2)).unwrap();
    // Without per-experience relabelling the heads grow to the largest class label they saw.
    let mh = &s.state().model().classifier;
    assert_eq!(mh.task_labels(), &[0, 1]);
    for (t, exp) in b.train_stream.iter().take(2).enumerate() {
        let max = *exp.classes_in_this_experience.iter().max().unwrap() as usize;
        assert_eq!(mh.head(t as u32).unwrap().num_outputs(), (max + 1).max(2));
    }
    // Evaluating the whole test stream adds (untrained) heads for the unseen tasks.
    s.eval(&b.test_stream).unwrap();
    assert_eq!(s.state().model().classifier.task_labels(), &[0, 1, 2, 3, 4]);
}

/// Every regularisation, distillation, projection and replay strategy runs with a multi-head
/// model — heads appear during the stream and the heads of other tasks get no gradient — and
/// keeps task-incremental accuracy on the first task.
#[test]
fn every_method_trains_a_multi_head_model_on_task_incremental_split_fmnist() {
    use cl::strategies::{AGem, Ewc, Gem, Lfl, Lwf, Mas, Replay, SynapticIntelligence};

    let config = SplitConfig::new(5)
        .with_seed(1)
        .with_return_task_id(true)
        .with_class_ids_from_zero_in_each_exp(true)
        .with_dataset_root(fixture_dir());
    let b = split_fmnist(&config).unwrap();
    let train = b.train_stream.slice(0..3);
    let test = b.test_stream.slice(0..3);
    let dev = cl::default_device;
    let model = || SimpleMlpConfig::new().with_num_classes(2).init_multitask(&dev()).unwrap();
    let builders = vec![
        ("EWC", Ewc::builder(model(), optimizer(), dev(), EwcConfig::new(50.0)).unwrap()),
        (
            "SI",
            SynapticIntelligence::builder(model(), optimizer(), dev(), SynapticIntelligenceConfig::new(1.0)).unwrap(),
        ),
        (
            "MAS",
            Mas::builder(model(), optimizer(), dev(), MasConfig::default().with_lambda_reg(1.0).with_alpha(0.5))
                .unwrap(),
        ),
        (
            "LwF",
            Lwf::builder(model(), optimizer(), dev(), LwfConfig::default().with_alpha(1.0).with_temperature(2.0))
                .unwrap(),
        ),
        ("LFL", Lfl::builder(model(), optimizer(), dev(), LflConfig::new(1.0)).unwrap()),
        ("GEM", Gem::builder(model(), optimizer(), dev(), GemConfig::new(64).with_memory_strength(0.5)).unwrap()),
        ("A-GEM", AGem::builder(model(), optimizer(), dev(), AGemConfig::new(64).with_sample_size(64)).unwrap()),
        ("Replay", Replay::builder(model(), optimizer(), dev(), ReplayConfig::new(200)).unwrap()),
    ];
    for (name, builder) in builders {
        let mut s = builder.train_mb_size(32).train_epochs(2).eval_mb_size(100).seed(1).build().unwrap();
        s.train(&train[0]).unwrap_or_else(|e| panic!("{name}: {e}"));
        let first = s.eval(&test.slice(0..1)).unwrap()[&MetricName::test_exp_accuracy(0, 0).to_string()];
        s.train(&train.slice(1..3)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let r = s.eval(&test).unwrap();
        assert_eq!(s.state().model().classifier.task_labels(), &[0, 1, 2], "{name}");
        let acc0 = r[&MetricName::test_exp_accuracy(0, 0).to_string()];
        let mean = (0..3).map(|j| r[&MetricName::test_exp_accuracy(j as u32, j).to_string()]).sum::<f64>() / 3.0;
        eprintln!("{name}: task 0 {first:.3} -> {acc0:.3}, mean over 3 tasks {mean:.3}");
        assert!(first > 0.9, "{name}: task 0 after training it {first}");
        assert!(acc0 > first - 0.1, "{name}: task 0 forgotten: {first} -> {acc0}");
        assert!(mean > 0.85, "{name}: task-IL mean accuracy {mean}");
    }
}

/// PackNet on Avalanche's task-incremental protocol (one 10-unit head, original class labels,
/// task label `i` on experience `i`): a packed task's accuracy never changes (zero forgetting,
/// exactly), and the final average beats Naive's on the same single head by a wide margin.
#[test]
fn packnet_keeps_every_packed_task_and_beats_naive_on_task_incremental_split_fmnist() {
    use cl::strategies::{PackNet, PackNetConfig};

    for seed in 1..=3u64 {
        let config = SplitConfig::new(5).with_seed(seed).with_return_task_id(true).with_dataset_root(fixture_dir());
        let b = split_fmnist(&config).unwrap();
        let dev = cl::default_device;
        let model = || SimpleMlpConfig::new().with_seed(Some(seed)).init(&dev()).unwrap();
        let packnet = PackNet::builder(model(), optimizer(), dev(), PackNetConfig::default())
            .unwrap()
            .train_mb_size(32)
            .train_epochs(3)
            .eval_mb_size(100)
            .seed(seed)
            .build()
            .unwrap();
        let naive = Naive::builder(model(), optimizer(), dev(), NaiveConfig::default())
            .unwrap()
            .train_mb_size(32)
            .train_epochs(3)
            .eval_mb_size(100)
            .seed(seed)
            .build()
            .unwrap();
        let p = run(packnet, &b, true);
        let n = run(naive, &b, true);
        let (pa, na) = (p.average_accuracy(4).unwrap(), n.average_accuracy(4).unwrap());
        eprintln!(
            "seed {seed}: PackNet {pa:.4} (forgetting {:?}), Naive {na:.4} (forgetting {:?})",
            p.forgetting(),
            n.forgetting()
        );
        eprintln!("  PackNet matrix {:?}", p.rows());
        for j in 0..5 {
            for i in j + 1..5 {
                assert_eq!(p.get(i, j), p.get(j, j), "seed {seed}: task {j}'s accuracy after experience {i}");
            }
        }
        // Measured (final average PackNet / Naive): seed 1 0.830 / 0.198, seed 2 0.830 / 0.162,
        // seed 3 0.813 / 0.199 (the last tasks get a quarter and an eighth of the weights).
        assert!(pa > na + 0.4, "seed {seed}: PackNet {pa} vs Naive {na}");
    }
}

/// PNN (Avalanche's defaults: one layer of 100 units per column, MLP adapters) on the same
/// protocol: a task's accuracy never changes once trained (its column and head are frozen or
/// untouched, exactly), and the final average over three seeds beats Naive on a multi-head MLP
/// (measured: PNN 0.952 / 0.909 / 0.942, multi-head Naive 0.906 / 0.852 / 0.955, whose forgetting
/// is 0.05 / 0.06 / 0.00).
#[test]
fn pnn_keeps_every_task_and_beats_multi_head_naive_on_task_incremental_split_fmnist() {
    use cl::models::PnnConfig;
    use cl::strategies::{PnnStrategy, PnnStrategyConfig};

    let (mut pnn_sum, mut naive_sum) = (0.0, 0.0);
    for seed in 1..=3u64 {
        let config = SplitConfig::new(5).with_seed(seed).with_return_task_id(true).with_dataset_root(fixture_dir());
        let b = split_fmnist(&config).unwrap();
        let dev = cl::default_device;
        let configure =
            |builder: StrategyBuilder<_>| builder.train_mb_size(32).train_epochs(2).eval_mb_size(100).seed(seed);
        let pnn_model = PnnConfig::new().with_seed(seed).init(&dev()).unwrap();
        let pnn = configure(PnnStrategy::builder(pnn_model, optimizer(), dev(), PnnStrategyConfig::default()).unwrap())
            .build()
            .unwrap();
        let mt = SimpleMlpConfig::new().with_seed(Some(seed)).init_multitask(&dev()).unwrap();
        let naive = Naive::builder(mt, optimizer(), dev(), NaiveConfig::default())
            .unwrap()
            .train_mb_size(32)
            .train_epochs(2)
            .eval_mb_size(100)
            .seed(seed)
            .build()
            .unwrap();
        let p = run(pnn, &b, true);
        let n = run(naive, &b, true);
        let (pa, na) = (p.average_accuracy(4).unwrap(), n.average_accuracy(4).unwrap());
        (pnn_sum, naive_sum) = (pnn_sum + pa, naive_sum + na);
        for j in 0..5 {
            for i in j + 1..5 {
                assert_eq!(p.get(i, j), p.get(j, j), "seed {seed}: task {j}'s accuracy after experience {i}");
            }
        }
        assert_eq!(p.forgetting(), Some(0.0), "seed {seed}");
    }
    assert!(pnn_sum > naive_sum + 0.05, "PNN {} vs Naive {} (sums over three seeds)", pnn_sum, naive_sum);
}
