#!/usr/bin/env python3
"""Avalanche 0.6's side of `cargo xtask fidelity`: the same protocol in Avalanche, on the same files.

Runs, for each seed, Avalanche 0.6 strategies on PermutedFMNIST (5 experiences, Avalanche's
`PermutedMNIST` code path on Fashion-MNIST with its mean/std) and class-incremental SplitFMNIST
(5 experiences, Avalanche's `SplitFMNIST`), with SimpleMLP, SGD(lr 0.01, momentum 0.9), batch 128,
eval batch 1000, 1 epoch per experience and an evaluation on the whole test stream after each
experience (the protocol of `cargo xtask bench` / `cargo xtask fidelity`). Writes one JSON file:
final average accuracy, Avalanche's stream forgetting and the accuracy matrix (accuracy on each
test experience after each training experience) of each run; the
permutations and class orders Avalanche drew for each seed (cl runs the same tasks from them);
with --fisher, EWC's importances after the first experience, per parameter tensor (mean, max).

    python -m venv /tmp/avenv && /tmp/avenv/bin/pip install torch==2.9.0 torchvision==0.24.0 avalanche-lib==0.6.0
    /tmp/avenv/bin/python scripts/avalanche_fidelity.py --out target/fidelity/avalanche.json
    cargo xtask fidelity --avalanche target/fidelity/avalanche.json

Runs are named `<benchmark>/<strategy>` with `strategy` one of naive, ewc:<lambda>, mas:<lambda>,
si:<lambda>, rwalk:<lambda> (ewc_alpha 0.9, delta_t 10), lfl:<lambda_e>, cwr, bic:<mem_size> (BiC, its other defaults), lamaml:<mem_size> (first-order LaMAML, reservoir of mem_size), generative_replay (its default VAE), der:<mem_size> (DER++), er_ace:<mem_size>, er_aml:<mem_size>, packnet:<prune_proportion> (PackNetModel
over SimpleMLP, PACKNET_EPOCHS epochs of which the last PACKNET_POST_PRUNE_EPOCHS after pruning; on SplitFMNIST-task),
mir:<mem_size> (subsample 50,
10 replayed), replay:<mem_size>, scr:<mem_size>, slda:<shrinkage> (StreamingLDA on the
normalised pixels: feature extractor Flatten, no training), pnn (PNN(num_layers=1, hidden 100, MLP adapters) on SplitFMNIST-task), icarl:<memory_size> (fixed memory, SimpleMLP's
hidden layers as the feature extractor, its output layer as the training classifier), gss:<mem_size>[:<mem_strength>] (GSS_greedy, mem_strength 1 by default), cope:<mem_size> (CoPE on SimpleMLP with 100 outputs, its other defaults; for SplitFMNIST-online), ar1:<rm_sz> (AR1 with its own defaults — SGD 0.001 then 5e-5, momentum 0.9, l2 0.0005, 4 epochs, batch 128 — on cl's LatentCnn in place of the pretrained MobileNet) (SCRModel over SimpleMLP's hidden layers, projection 512-512-128) on
PermutedFMNIST, SplitFMNIST, SplitFMNIST-task (task-incremental: SplitFMNIST with return_task_id=True, experience i has
task label i, original class labels, one head) or SplitFMNIST-online (the online protocol) (the default list is every run the fidelity table compares); --runs takes a
comma-separated subset. (Avalanche's SI is listed for completeness: on the CPU its importances
stay 0 — it accumulates through views — so it trains as Naive.) Data: the four Fashion-MNIST IDX .gz files in --data-dir (Debian's
dataset-fashion-mnist by default), unpacked once for torchvision under --work-dir.
"""

import argparse
import gzip
import json
import os
import platform
import shutil
import sys
import time

DEFAULT_RUNS = [
    "PermutedFMNIST/naive",
    "PermutedFMNIST/ewc:10",
    "PermutedFMNIST/ewc:100",
    "PermutedFMNIST/ewc:1000",
    "PermutedFMNIST/mas:0.1",
    "PermutedFMNIST/mas:1",
    "PermutedFMNIST/si:1",
    "PermutedFMNIST/rwalk:10",
    "PermutedFMNIST/cwr",
    "SplitFMNIST/naive",
    "SplitFMNIST/si:1",
    "SplitFMNIST/cwr",
    "SplitFMNIST/lfl:1",
    "SplitFMNIST/der:500",
    "SplitFMNIST/er_ace:500",
    "SplitFMNIST/mir:500",
    "SplitFMNIST/er_aml:2000",
    "SplitFMNIST/scr:500",
    "SplitFMNIST/bic:500",
    "SplitFMNIST/slda:0.0001",
    "SplitFMNIST/icarl:2000",
    "SplitFMNIST/gss:1000",
    "SplitFMNIST/ar1:1500",
    "SplitFMNIST-online/naive",
    "SplitFMNIST-online/er_ace:500",
    "SplitFMNIST-online/scr:500",
    "SplitFMNIST-online/cope:500",
    "SplitFMNIST-task/packnet:0.5",
    "SplitFMNIST-task/pnn",
]
FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]
FMNIST_MEAN_STD = (0.2860, 0.3530)
N_EXPERIENCES = 5
LR, MOMENTUM, TRAIN_MB, EVAL_MB, EPOCHS = 0.01, 0.9, 128, 1000, 1
MAS_ALPHA = 0.5
MIR_SUBSAMPLE, MIR_BATCH_SIZE_MEM = 50, 10
# The online protocol (`SplitFMNIST-online`): Avalanche's examples/online_replay.py, each training
# experience cut by split_online_stream([exp], experience_size) and trained on in one call,
# mini-batches of ONLINE_MB, evaluation at the experience boundaries.
ONLINE_EXPERIENCE_SIZE, ONLINE_MB = 10, 10
# PackNet needs a post-pruning phase: PACKNET_EPOCHS epochs per experience, the last
# PACKNET_POST_PRUNE_EPOCHS of them after pruning.
PACKNET_EPOCHS, PACKNET_POST_PRUNE_EPOCHS = 2, 1
# AR1 (its own optimizer, epochs and batch size): the learning rates of the first and later
# experiences, the epochs.
AR1_LR, AR1_INC_LR, AR1_EPOCHS = 0.001, 5e-5, 4
# CoPE's embedding width (its p_size, Avalanche's default): the output width of its SimpleMLP.
COPE_P_SIZE = 100


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--work-dir", default="target/fidelity/avalanche-data")
    p.add_argument("--out", default="target/fidelity/avalanche.json")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--runs", default=",".join(DEFAULT_RUNS))
    p.add_argument("--fisher", action="store_true", help="record EWC's importances after experience 0")
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


def prepare_data(data_dir, work_dir):
    """torchvision's FashionMNIST reads the unpacked IDX files from <root>/FashionMNIST/raw."""
    raw = os.path.join(work_dir, "FashionMNIST", "raw")
    os.makedirs(raw, exist_ok=True)
    for name in FILES:
        dst = os.path.join(raw, name)
        if os.path.exists(dst):
            continue
        src = os.path.join(data_dir, name + ".gz")
        if not os.path.exists(src):
            sys.exit(f"missing {src}: install Debian's dataset-fashion-mnist or give --data-dir")
        with gzip.open(src, "rb") as f, open(dst + ".part", "wb") as g:
            shutil.copyfileobj(f, g)
        os.replace(dst + ".part", dst)
    return work_dir


def permuted_fmnist(seed, root):
    """Avalanche's PermutedMNIST on Fashion-MNIST: `get_mnist_dataset` returns Fashion-MNIST and
    the transforms normalise with Fashion-MNIST's mean and std (cl's `permuted_fmnist`)."""
    import numpy as np
    from torchvision import transforms
    import avalanche.benchmarks.classic.cmnist as cmnist
    from torchvision.datasets import FashionMNIST

    class TensorFMNIST(FashionMNIST):
        """Avalanche's TensorMNIST (`external_datasets/mnist.py`) on Fashion-MNIST: [1, 28, 28]
        float tensors in [0, 1], the input PixelsPermutation and Normalize expect."""

        def __getitem__(self, index):
            img = self.data[index].float().unsqueeze(0) / 255.0
            return img, int(self.targets[index])

        @property
        def raw_folder(self):
            return os.path.join(self.root, "FashionMNIST", "raw")

    cmnist.get_mnist_dataset = lambda r: (TensorFMNIST(r, train=True), TensorFMNIST(r, train=False))
    norm = transforms.Compose([transforms.Normalize((FMNIST_MEAN_STD[0],), (FMNIST_MEAN_STD[1],))])
    bench = cmnist.PermutedMNIST(
        n_experiences=N_EXPERIENCES, seed=seed, train_transform=norm, eval_transform=norm, dataset_root=root
    )
    # The permutations PermutedMNIST drew: the same RandomState sequence.
    rng = np.random.RandomState(seed)
    perms = [rng.permutation(784).tolist() for _ in range(N_EXPERIENCES)]
    return bench, {"permutations": perms}


def split_fmnist(seed, root, return_task_id=False):
    from avalanche.benchmarks.classic import SplitFMNIST

    bench = SplitFMNIST(n_experiences=N_EXPERIENCES, seed=seed, dataset_root=root, return_task_id=return_task_id)
    return bench, {"class_order": [int(c) for c in bench.classes_order]}


def make_strategy(kind, model, evaluator, train_mb=TRAIN_MB):
    import torch
    from avalanche.training.supervised import DER, ER_ACE, ER_AML, EWC, MAS, MIR, CWRStar, Naive, SynapticIntelligence

    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    crit = torch.nn.CrossEntropyLoss()
    common = dict(train_mb_size=train_mb, train_epochs=EPOCHS, eval_mb_size=EVAL_MB, device="cpu", evaluator=evaluator)
    name, _, value = kind.partition(":")
    if name == "naive":
        return Naive(model=model, optimizer=opt, criterion=crit, **common)
    if name == "ewc":
        return EWC(model=model, optimizer=opt, criterion=crit, ewc_lambda=float(value), mode="separate", **common)
    if name == "mas":
        return MAS(model=model, optimizer=opt, criterion=crit, lambda_reg=float(value), alpha=MAS_ALPHA, **common)
    if name == "si":
        return SynapticIntelligence(model=model, optimizer=opt, criterion=crit, si_lambda=float(value), **common)
    if name == "rwalk":
        # Avalanche's RWalkPlugin (0.6 has no RWalk strategy) with its defaults besides lambda:
        # ewc_alpha 0.9, delta_t 10.
        from avalanche.training.plugins import RWalkPlugin

        return Naive(model=model, optimizer=opt, criterion=crit,
                     plugins=[RWalkPlugin(ewc_lambda=float(value), ewc_alpha=0.9, delta_t=10)], **common)
    if name == "lfl":
        # Avalanche's LFL: lambda_e on the MSE of SimpleMLP's features (get_features) against the
        # previous model's; its classifier frozen after each experience.
        from avalanche.training.supervised import LFL

        return LFL(model=model, optimizer=opt, criterion=crit, lambda_e=float(value), **common)
    if name == "cwr":
        return CWRStar(model=model, optimizer=opt, criterion=crit, cwr_layer_name="classifier", **common)
    if name == "der":
        # DER++ with Avalanche's defaults: alpha 0.1, beta 0.5, batch_size_mem = train_mb_size.
        return DER(model=model, optimizer=opt, criterion=crit, mem_size=int(value), **common)
    if name == "replay":
        from avalanche.training.plugins import ReplayPlugin

        return Naive(model=model, optimizer=opt, criterion=crit, plugins=[ReplayPlugin(mem_size=int(value))],
                     **common)
    if name == "er_aml":
        # The feature extractor: SimpleMLP's hidden layers on flattened inputs (model.features
        # alone expects flat vectors).
        return ER_AML(model=model, feature_extractor=lambda x: model.features(x.view(x.size(0), -1)), optimizer=opt,
                      criterion=crit, mem_size=int(value), **common)
    if name == "scr":
        # Avalanche's SCRModel over SimpleMLP's hidden layers (flattened input) with a
        # Linear(512, 512)-ReLU-Linear(512, 128) projection: cl's SimpleMlpConfig::init_scr(128).
        from avalanche.models import SCRModel
        from avalanche.training.supervised import SCR

        scr_model = SCRModel(
            feature_extractor=torch.nn.Sequential(torch.nn.Flatten(), model.features),
            projection=torch.nn.Sequential(torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 128)),
        )
        opt = torch.optim.SGD(scr_model.parameters(), lr=LR, momentum=MOMENTUM)
        return SCR(model=scr_model, optimizer=opt, mem_size=int(value), **common)
    if name == "bic":
        # Avalanche's BiC defaults besides the memory: 10 % of it held out for the bias layer,
        # 200 stage-2 epochs at lr 0.1, lamb = old classes / all classes.
        import avalanche.training.plugins.bic as bic_plugin
        from avalanche.training.supervised.strategy_wrappers import BiC

        # Avalanche 0.6 passes `verbose=False` to MultiStepLR, which torch >= 2.7 no longer
        # accepts (TypeError at the first bias correction): drop it.
        def multi_step_lr(*args, verbose=None, **kwargs):
            return torch.optim.lr_scheduler.MultiStepLR(*args, **kwargs)

        bic_plugin.MultiStepLR = multi_step_lr
        return BiC(model=model, optimizer=opt, criterion=crit, mem_size=int(value), **common)
    if name == "lamaml":
        # Avalanche 0.6's LaMAML (lamaml_v2.py, the torch.func version; lamaml.py needs `higher`,
        # which cannot patch Avalanche's SimpleMLP) with its defaults, a reservoir of <mem>
        # samples and first order (second_order=False: cl has no double backward). It
        # re-initialises the model (Kaiming normal) and updates it with its learned rates.
        from avalanche.training.supervised.lamaml_v2 import LaMAML

        class TaskArgument(torch.nn.Module):
            """lamaml_v2 calls `functional_call(model, params, (x, t))`: SimpleMLP ignoring `t`."""

            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, x, t=None):
                return self.inner(x)

        wrapped = TaskArgument(model)
        opt = torch.optim.SGD(wrapped.parameters(), lr=LR, momentum=MOMENTUM)
        return LaMAML(model=wrapped, optimizer=opt, criterion=crit, second_order=False, max_buffer_size=int(value),
                      **common)
    if name == "generative_replay":
        # Avalanche's GenerativeReplay with its default generator: MlpVAE((1, 28, 28), nhid=2),
        # Adam(lr 0.01, weight decay 1e-4), trained after each experience.
        from avalanche.training.supervised import GenerativeReplay

        return GenerativeReplay(model=model, optimizer=opt, criterion=crit, **common)
    if name == "packnet":
        from avalanche.models.packnet import PackNetModel
        from avalanche.training.supervised.strategy_wrappers import PackNet

        packnet_model = PackNetModel(model)
        opt = torch.optim.SGD(packnet_model.parameters(), lr=LR, momentum=MOMENTUM)
        return PackNet(model=packnet_model, optimizer=opt, criterion=crit, post_prune_epochs=PACKNET_POST_PRUNE_EPOCHS,
                       prune_proportion=float(value), **{**common, "train_epochs": PACKNET_EPOCHS})
    if name == "pnn":
        # Avalanche's PNNStrategy on its PNN with the defaults (1 layer, 100 hidden units per
        # column, MLP adapters), task-incremental SplitFMNIST.
        from avalanche.models import PNN
        from avalanche.training.supervised import PNNStrategy

        pnn = PNN(num_layers=1, in_features=784, hidden_features_per_column=100, adapter="mlp")
        opt = torch.optim.SGD(pnn.parameters(), lr=LR, momentum=MOMENTUM)
        return PNNStrategy(model=pnn, optimizer=opt, criterion=crit, **common)
    if name == "icarl":
        # Avalanche's ICaRL with a fixed memory of <value> samples, no buffer transform: the
        # feature extractor is SimpleMLP's hidden layers (flattened input), the training
        # classifier its output layer (same initial weights as the other runs).
        from avalanche.training.supervised import ICaRL

        feature_extractor = torch.nn.Sequential(torch.nn.Flatten(), model.features)
        opt = torch.optim.SGD(list(feature_extractor.parameters()) + list(model.classifier.parameters()), lr=LR,
                              momentum=MOMENTUM)
        return ICaRL(feature_extractor=feature_extractor, classifier=model.classifier, optimizer=opt,
                     memory_size=int(value), buffer_transform=None, fixed_memory=True, **common)
    if name == "slda":
        # Avalanche's StreamingLDA on the normalised pixels (feature extractor torch.nn.Flatten(),
        # input_size 784, num_classes 10), shrinkage <value>, streaming covariance; fitted one
        # sample at a time in the loader's order, predictions re-inverting the covariance at
        # every training mini-batch (its `predict`).
        from avalanche.training.supervised import StreamingLDA

        return StreamingLDA(slda_model=torch.nn.Flatten(), criterion=crit, input_size=784, num_classes=10,
                            shrinkage_param=float(value), streaming_update_sigma=True, **common)
    if name == "gss":
        # Avalanche's GSS_greedy: gss:<mem_size>[:<mem_strength>] (the strategy's default
        # mem_strength 1), input_size [1, 28, 28]; its replay loader adds batch_size_mem = 32
        # memory rows (ReplayDataLoader's default) to each mini-batch.
        from avalanche.training.supervised import GSS_greedy

        mem, _, strength = value.partition(":")
        return GSS_greedy(model=model, optimizer=opt, criterion=crit, mem_size=int(mem),
                          mem_strength=int(strength or 1), input_size=[1, 28, 28], **common)
    if name == "cope":
        # Avalanche's CoPE with its defaults besides the memory (n_classes 10, p_size 100,
        # alpha 0.99, T 0.1; the plugin's max_it_cnt 1) on SimpleMLP with COPE_P_SIZE outputs
        # (the embedding; CoPE appends its L2 normalisation): the online protocol.
        from avalanche.models import SimpleMLP
        from avalanche.training.supervised import CoPE

        cope_model = SimpleMLP(num_classes=COPE_P_SIZE)
        opt = torch.optim.SGD(cope_model.parameters(), lr=LR, momentum=MOMENTUM)
        return CoPE(model=cope_model, optimizer=opt, criterion=crit, mem_size=int(value), n_classes=10,
                    p_size=COPE_P_SIZE, **common)
    if name == "ar1":
        return make_ar1(value, evaluator)
    if name == "er_ace":
        # Avalanche's default batch_size_mem=10.
        return ER_ACE(model=model, optimizer=opt, criterion=crit, mem_size=int(value), **common)
    if name == "mir":
        return MIR(model=model, optimizer=opt, criterion=crit, mem_size=int(value), subsample=MIR_SUBSAMPLE,
                   batch_size_mem=MIR_BATCH_SIZE_MEM, **common)
    sys.exit(f"unknown strategy {kind!r} (naive, ewc:<lambda>, mas:<lambda>, si:<lambda>, rwalk:<lambda>, lfl:<lambda_e>, cwr, der:<mem>, er_ace:<mem>, "
             "er_aml:<mem>, mir:<mem>, bic:<mem>, lamaml:<mem>, generative_replay, packnet:<prune_proportion>, replay:<mem>, scr:<mem>, slda:<shrinkage>, icarl:<mem>, pnn, gss:<mem>[:<strength>], cope:<mem>, ar1:<rm_sz>)")


def latent_cnn_class():
    """cl's `LatentCnn` in PyTorch, with the interface of Avalanche's `MobilenetV1` that `AR1`
    builds (it cannot download the pretrained MobileNet): blocks of conv 3x3 (stride 2, padding 1,
    no bias) -> BatchNorm2d (replaced by AR1 with BatchRenorm2D) -> ReLU, [16, 32] channels below
    the latent layer (`lat_features`), [64, 64] above it then global average pooling
    (`end_features`), `output` Linear(64, 10, bias=False)."""
    import torch
    from torch import nn

    class ConvBlock(nn.Module):
        """conv -> bn -> ReLU as named attributes, like pytorchcv's `ConvBlock` in MobileNet: AR1's
        `replace_bn_with_brn` walks attributes by `dir()`, which skips the digit names of a
        `Sequential`'s children, so a `BatchNorm2d` directly in a `Sequential` would stay one."""

        def __init__(self, i, o):
            super().__init__()
            self.conv = nn.Conv2d(i, o, 3, stride=2, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(o)
            self.activ = nn.ReLU()

        def forward(self, x):
            return self.activ(self.bn(self.conv(x)))

    def block(i, o):
        return [ConvBlock(i, o)]

    class LatentCNN(nn.Module):
        def __init__(self, pretrained=True, latent_layer_num=None):
            super().__init__()
            self.lat_features = nn.Sequential(*block(1, 16), *block(16, 32))
            self.end_features = nn.Sequential(*block(32, 64), *block(64, 64), nn.AdaptiveAvgPool2d(1))
            self.output = nn.Linear(64, 10, bias=False)

        # MobilenetV1.forward, verbatim.
        def forward(self, x, latent_input=None, return_lat_acts=False):
            if latent_input is not None:
                with torch.no_grad():
                    orig_acts = self.lat_features(x)
                lat_acts = torch.cat((orig_acts, latent_input), 0)
            else:
                orig_acts = self.lat_features(x)
                lat_acts = orig_acts
            x = self.end_features(lat_acts)
            x = x.view(x.size(0), -1)
            logits = self.output(x)
            if return_lat_acts:
                return logits, orig_acts
            return logits

    return LatentCNN


def make_ar1(value, evaluator):
    """ar1:<rm_sz>: Avalanche's AR1 with its defaults (4 epochs, batch 128, SGD
    momentum 0.9, l2 0.0005, BatchRenorm settings) but the learning rates AR1_LR / AR1_INC_LR, on
    `latent_cnn_class()` in place of the pretrained MobileNet (patched into ar1.py), freezing below
    `end_features.0.conv` (the first layer above the latent one)."""
    import avalanche.training.supervised.ar1 as ar1_module

    ar1_module.MobilenetV1 = latent_cnn_class()
    return ar1_module.AR1(lr=AR1_LR, inc_lr=AR1_INC_LR, rm_sz=int(value or 1500),
                          freeze_below_layer="end_features.0.conv", train_epochs=AR1_EPOCHS, device="cpu",
                          evaluator=evaluator)


def fisher_summary(strategy):
    from avalanche.training.plugins import EWCPlugin

    for p in strategy.plugins:
        if isinstance(p, EWCPlugin) and 0 in p.importances:
            return {
                name: {"mean": float(d.data.mean()), "max": float(d.data.max()), "shape": list(d.data.shape)}
                for name, d in p.importances[0].items()
            }
    return None


def run(benchmark_name, kind, seed, root, want_fisher):
    import torch
    from avalanche.evaluation.metrics import accuracy_metrics, forgetting_metrics
    from avalanche.models import SimpleMLP
    from avalanche.training.determinism.rng_manager import RNGManager
    from avalanche.training.plugins import EvaluationPlugin

    RNGManager.set_random_seeds(seed)
    online = benchmark_name == "SplitFMNIST-online"
    task_il = benchmark_name == "SplitFMNIST-task"
    if benchmark_name == "PermutedFMNIST":
        bench, drawn = permuted_fmnist(seed, root)
    else:
        bench, drawn = split_fmnist(seed, root, return_task_id=task_il)
    model = SimpleMLP(num_classes=10)
    evaluator = EvaluationPlugin(
        accuracy_metrics(experience=True, stream=True), forgetting_metrics(stream=True), loggers=[]
    )
    strategy = make_strategy(kind, model, evaluator, ONLINE_MB if online else TRAIN_MB)
    start = time.perf_counter()
    fisher = None
    results = {}
    matrix = []
    for i, exp in enumerate(bench.train_stream):
        if online:
            from avalanche.benchmarks.scenarios.online import split_online_stream

            strategy.train(split_online_stream([exp], experience_size=ONLINE_EXPERIENCE_SIZE))
        else:
            strategy.train(exp)
        if i == 0 and want_fisher:
            fisher = fisher_summary(strategy)
        results = strategy.eval(bench.test_stream)
        matrix.append(
            [
                float(results[f"Top1_Acc_Exp/eval_phase/test_stream/Task{e if task_il else 0:03d}/Exp{e:03d}"])
                for e in range(N_EXPERIENCES)
            ]
        )
    elapsed = time.perf_counter() - start
    if task_il:
        # One stream accuracy per task label in Avalanche: the whole stream's is their mean
        # (every test experience holds 2 000 samples).
        acc = sum(matrix[-1]) / N_EXPERIENCES
    else:
        acc = results["Top1_Acc_Stream/eval_phase/test_stream/Task000"]
    forgetting = results.get("StreamForgetting/eval_phase/test_stream")
    out = {
        "benchmark": benchmark_name,
        "strategy": kind,
        "seed": seed,
        "final_accuracy": float(acc),
        "forgetting": None if forgetting is None else float(forgetting),
        "accuracy_matrix": matrix,
        "seconds": elapsed,
        **drawn,
    }
    if fisher is not None:
        out["fisher_exp0"] = fisher
    return out


def main():
    args = parse_args()
    import torch
    import avalanche

    torch.set_num_threads(args.threads)
    root = prepare_data(args.data_dir, args.work_dir)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    runs = [r for r in args.runs.split(",") if r]
    records = []
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    for spec in runs:
        benchmark_name, _, kind = spec.partition("/")
        if benchmark_name not in ("PermutedFMNIST", "SplitFMNIST", "SplitFMNIST-task", "SplitFMNIST-online"):
            sys.exit(f"unknown benchmark in {spec!r} (PermutedFMNIST, SplitFMNIST, SplitFMNIST-task, SplitFMNIST-online)")
        for seed in seeds:
            want_fisher = args.fisher and kind.startswith("ewc")
            r = run(benchmark_name, kind, seed, root, want_fisher)
            forgetting = "-" if r["forgetting"] is None else f"{r['forgetting']:.4f}"
            print(f"{spec} seed {seed}: accuracy {r['final_accuracy']:.4f}, forgetting {forgetting}, {r['seconds']:.1f} s",
                  flush=True)
            records.append(r)
            document = {
                "library": "avalanche",
                "avalanche_version": getattr(avalanche, "__version__", "unknown"),
                "torch_version": torch.__version__,
                "python": platform.python_version(),
                "threads": args.threads,
                "protocol": {
                    "model": "SimpleMLP(num_classes=10)",
                    "optimizer": f"SGD(lr={LR}, momentum={MOMENTUM})",
                    "train_mb_size": TRAIN_MB,
                    "eval_mb_size": EVAL_MB,
                    "train_epochs": EPOCHS,
                    "n_experiences": N_EXPERIENCES,
                    "mas_alpha": MAS_ALPHA,
                    "mir_subsample": MIR_SUBSAMPLE,
                    "mir_batch_size_mem": MIR_BATCH_SIZE_MEM,
                    "online_experience_size": ONLINE_EXPERIENCE_SIZE,
                    "online_train_mb_size": ONLINE_MB,
                    "packnet_train_epochs": PACKNET_EPOCHS,
                    "packnet_post_prune_epochs": PACKNET_POST_PRUNE_EPOCHS,
                },
                "seeds": seeds,
                "runs": records,
            }
            with open(args.out + ".part", "w") as f:
                json.dump(document, f, indent=1)
            os.replace(args.out + ".part", args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
