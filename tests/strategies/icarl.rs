//! iCaRL on class-incremental SplitFMNIST (the fixture): exemplars, distillation and the
//! nearest-mean classifier keep the old classes where Naive forgets them.

use crate::common::*;
use cl::prelude::*;
use cl::strategies::{Icarl, IcarlConfig, IcarlSteps};

/// Over three class orders of the fixture (≈400 training samples per experience), memory 200
/// (20 exemplars per class at the end), 2 epochs: iCaRL ends at 0.66–0.69, Naive at 0.21–0.26;
/// the memory holds ⌈200 / 10⌉ = 20 exemplars of each class at the end.
#[test]
fn icarl_beats_naive_on_class_incremental_split_fmnist() {
    for seed in 0..3 {
        let b = fixture_benchmark(seed);
        let (plain, _) = class_il_accuracy(
            Naive::builder(seeded_mlp(seed), sgd_momentum(), cl::default_device(), NaiveConfig::default()).unwrap(),
            &b,
            seed,
        );
        let (icarl, s) = class_il_accuracy(
            Icarl::builder(seeded_mlp(seed), sgd_momentum(), cl::default_device(), IcarlConfig::new(200)).unwrap(),
            &b,
            seed,
        );
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
