#!/usr/bin/env python3
"""A plain PyTorch training loop: the reference `cargo xtask compare` measures `cl` against.

The same protocol as cl's Naive on SplitFMNIST (class-incremental): Fashion-MNIST from the IDX
files in --data-dir, normalised once with Avalanche's mean/std (0.2860, 0.3530) and kept in
memory as float32 tensors, split into experiences by --classes-order (two classes each, in that
order); SimpleMLP (Linear 784→512, ReLU, Dropout 0.5, Linear 512→10, Avalanche's
`SimpleMLP`); SGD(lr, momentum); cross-entropy; --epochs epochs per experience over a fresh
random permutation of the experience's samples, mini-batches of --batch (the last one smaller);
after each experience the model (eval mode, no_grad) is evaluated on every test experience in
batches of --eval-batch. No DataLoader, no Avalanche: the fastest plain loop.

Prints one JSON object: wall/train/eval seconds (data loading excluded), iterations, the final
average accuracy over the test experiences, torch version and threads. Run with
OMP_WAIT_POLICY=PASSIVE (cargo xtask compare sets it).
"""

import argparse
import gzip
import json
import os
import struct
import time

import numpy as np
import torch
from torch import nn


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(data_dir, split):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(x.astype(np.float32).reshape(len(x), -1) / 255.0)
    x = (x - 0.2860) / 0.3530
    return x.contiguous(), torch.from_numpy(y.astype(np.int64))


class SimpleMLP(nn.Module):
    def __init__(self, num_classes=10, input_size=784, hidden_size=512, drop_rate=0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Linear(input_size, hidden_size), nn.ReLU(inplace=True), nn.Dropout(p=drop_rate)
        )
        self.classifier = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--classes-order", required=True, help="comma-separated class order")
    p.add_argument("--per-exp", type=int, default=2, help="classes per experience")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--eval-batch", type=int, default=1000)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    order = [int(c) for c in a.classes_order.split(",")]
    groups = [order[i:i + a.per_exp] for i in range(0, len(order), a.per_exp)]

    t_load = time.perf_counter()
    x_train, y_train = load(a.data_dir, "train")
    x_test, y_test = load(a.data_dir, "test")

    def subset(x, y, classes):
        idx = torch.nonzero(torch.isin(y, torch.tensor(classes))).flatten()
        return x.index_select(0, idx).contiguous(), y.index_select(0, idx).contiguous()

    train_exps = [subset(x_train, y_train, g) for g in groups]
    test_exps = [subset(x_test, y_test, g) for g in groups]
    load_s = time.perf_counter() - t_load

    model = SimpleMLP(num_classes=10)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum)
    loss_fn = nn.CrossEntropyLoss()
    train_s = eval_s = 0.0
    iterations = 0
    accuracies = []
    wall = time.perf_counter()
    for xe, ye in train_exps:
        t = time.perf_counter()
        model.train()
        n = len(ye)
        for _ in range(a.epochs):
            perm = torch.randperm(n)
            for start in range(0, n, a.batch):
                idx = perm[start:start + a.batch]
                xb, yb = xe.index_select(0, idx), ye.index_select(0, idx)
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()
                iterations += 1
        train_s += time.perf_counter() - t
        t = time.perf_counter()
        model.eval()
        accuracies = []
        with torch.no_grad():
            for xt, yt in test_exps:
                correct = 0
                for start in range(0, len(yt), a.eval_batch):
                    out = model(xt[start:start + a.eval_batch])
                    correct += (out.argmax(1) == yt[start:start + a.eval_batch]).sum().item()
                accuracies.append(correct / len(yt))
        eval_s += time.perf_counter() - t
    wall_s = time.perf_counter() - wall
    print(json.dumps({
        "wall_s": wall_s,
        "train_s": train_s,
        "eval_s": eval_s,
        "load_s": load_s,
        "iterations": iterations,
        "final_average_accuracy": sum(accuracies) / len(accuracies),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
    }))


if __name__ == "__main__":
    main()
