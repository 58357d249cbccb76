//! iCaRL on class-incremental SplitFMNIST (the fixture): exemplars, distillation and the
//! nearest-mean classifier keep the old classes where Naive forgets them.

use crate::common::*;
use cl::prelude::*;
use cl::strategies::{Icarl, IcarlConfig, IcarlSteps};

fn run(builder: StrategyBuilder<SimpleMlp>, b: &Benchmark, seed: u64) -> (f64, Strategy<SimpleMlp>) {
    let mut s = builder.train_mb_size(32).train_epochs(2).eval_mb_size(250).seed(seed).build().unwrap();
    for exp in &b.train_stream {
        s.train(exp).unwrap();
    }
    let acc = s.eval(&b.test_stream).unwrap()[&MetricName::test_stream_accuracy(0).to_string()];
    (acc, s)
}

fn model(seed: u64) -> SimpleMlp {
    SimpleMlpConfig::new().with_seed(Some(seed)).init(&cl::default_device()).unwrap()
}

fn sgd() -> OptimizerSpec {
    OptimizerSpec::sgd(0.01).with_momentum(0.9)
}

/// Over three class orders of the fixture (≈400 training samples per experience), memory 200
/// (20 exemplars per class at the end), 2 epochs: iCaRL ends at 0.66–0.69, Naive at 0.21–0.26;
/// the memory holds ⌈200 / 10⌉ = 20 exemplars of each class at the end.
#[test]
fn icarl_beats_naive_on_class_incremental_split_fmnist() {
    for seed in 0..3 {
        let b = fixture_benchmark(seed);
        let (plain, _) =
            run(Naive::builder(model(seed), sgd(), cl::default_device(), NaiveConfig::default()).unwrap(), &b, seed);
        let (icarl, s) =
            run(Icarl::builder(model(seed), sgd(), cl::default_device(), IcarlConfig::new(200)).unwrap(), &b, seed);
        let steps = s.steps_as::<IcarlSteps<SimpleMlp>>().unwrap();
        let exemplars = steps.exemplars();
        assert_eq!(exemplars.len(), 10);
        assert!(
            exemplars.iter().all(|(_, d)| d.len() == 20),
            "{:?}",
            exemplars.iter().map(|(c, d)| (*c, d.len())).collect::<Vec<_>>()
        );
        assert!(icarl > plain + 0.3, "seed {seed}: iCaRL {icarl} vs Naive {plain}");
    }
}
