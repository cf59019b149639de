#!/usr/bin/python3
"""embedkit against PyTorch on the CPU, the same shapes in one run, as ratios.

Runs `embedkit bench --json` (the headline scenarios of bench/core/suite.cpp), then each scenario's
shape through PyTorch with the same thread count, and prints both times and the ratio
(PyTorch time / embedkit time: above 1, embedkit is faster).

  lookup       torch.nn.functional.embedding
  pooled_sum   torch.nn.functional.embedding_bag(mode="sum")
  train_*      nn.EmbeddingBag(mode="sum", sparse=True): forward, backward of the same bag gradient,
               then the optimizer's step: torch.optim.Adagrad for row-wise Adagrad (PyTorch has no
               row-wise variant; its Adagrad keeps a full accumulator), torch.optim.SparseAdam for
               lazy Adam, torch.optim.SGD for SGD.

Ids follow the same distributions as the C++ suite (uniform, or Zipf ranks spread over the table by
rank * 2654435761 mod rows), drawn with NumPy's generator: the same law, not the same numbers.

Needs Debian's python3-torch with Debian's python and NumPy (/usr/bin/python3), kept apart from any
PyPI NumPy 2 environment. Usage: /usr/bin/python3 bench/compare_pytorch.py [--embedkit PATH]
[--seconds 60] [--scale full|smoke] [--threads 2]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

SPREAD_PRIME = 2654435761
SEED = 20240601


def draw_ids(distribution, rows, count, rng):
    """Ids in [0, rows) as the C++ suite draws them (bench/core/id_streams.cpp)."""
    if distribution == "uniform":
        return rng.integers(0, rows, size=count, dtype=np.int64)
    alpha = float(distribution[len("zipf"):])
    cumulative = np.cumsum(np.arange(1, rows + 1, dtype=np.float64) ** -alpha)
    ranks = np.searchsorted(cumulative, rng.uniform(0.0, cumulative[-1], size=count), side="right")
    ranks = np.minimum(ranks, rows - 1).astype(np.uint64)
    return ((ranks * np.uint64(SPREAD_PRIME)) % np.uint64(rows)).astype(np.int64)


def parse_title(title):
    """'lookup/dim:64/uniform/rows:8388608/lookups:1048576' -> ('lookup', {...}, 'uniform')."""
    parts = title.split("/")
    fields = {}
    distribution = None
    for part in parts[1:]:
        if ":" in part:
            key, value = part.split(":")
            fields[key] = int(value)
        else:
            distribution = part
    return parts[0], fields, distribution


def best_seconds(step, budget, rounds=3):
    """The fastest of repeated runs of `step`, at least `rounds`, until `budget` seconds passed."""
    best = float("inf")
    start = time.perf_counter()
    done = 0
    while done < rounds or time.perf_counter() - start < budget:
        begin = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - begin)
        done += 1
    return best


def torch_step(kind, fields, distribution, rng):
    """A closure running one batch of the scenario in PyTorch, with its tensors built."""
    rows, lookups = fields["rows"], fields["lookups"]
    dim = fields["dim"]
    ids = torch.from_numpy(draw_ids(distribution, rows, lookups, rng))
    if kind == "lookup":
        weight = torch.empty(rows, dim).uniform_(-0.05, 0.05)
        return lambda: F.embedding(ids, weight)
    bag = fields["bag"]
    offsets = torch.arange(0, lookups, bag, dtype=torch.int64)
    if kind == "pooled_sum":
        weight = torch.empty(rows, dim).uniform_(-0.05, 0.05)
        return lambda: F.embedding_bag(ids, weight, offsets, mode="sum")
    optimizer_name = kind[len("train_"):]
    table = torch.nn.EmbeddingBag(rows, dim, mode="sum", sparse=True)
    with torch.no_grad():
        table.weight.uniform_(-0.05, 0.05)
    if optimizer_name in ("adagrad", "rowwise_adagrad"):
        optimizer = torch.optim.Adagrad(table.parameters(), lr=0.01, initial_accumulator_value=0.1)
    elif optimizer_name == "adam":
        optimizer = torch.optim.SparseAdam(table.parameters(), lr=0.001)
    else:
        optimizer = torch.optim.SGD(table.parameters(), lr=0.01)
    grad = torch.empty(offsets.numel(), dim).uniform_(-1e-3, 1e-3)

    def step():
        optimizer.zero_grad(set_to_none=True)
        table(ids, offsets).backward(grad)
        optimizer.step()

    return step


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedkit", default=os.path.join(here, "..", "build", "cpu", "tools", "embedkit"))
    parser.add_argument("--seconds", type=float, default=60.0, help="each side's timed budget")
    parser.add_argument("--scale", choices=("full", "smoke"), default="full")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
    args = parser.parse_args()

    environment = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    command = [args.embedkit, "bench", "--json", "--scale", args.scale, "--seconds", str(args.seconds)]
    report = json.loads(subprocess.run(command, env=environment, check=True, capture_output=True, text=True).stdout)
    torch.set_num_threads(args.threads)
    budget = args.seconds / max(1, len(report["scenarios"]))
    rng = np.random.default_rng(SEED)

    print(f"embedkit vs PyTorch {torch.__version__} on the CPU, {args.threads} threads, scale {args.scale}")
    print(f"{'scenario':<72} {'embedkit ms':>12} {'PyTorch ms':>11} {'speedup':>8} {'vs naive':>9}")
    for scenario in report["scenarios"]:
        kind, fields, distribution = parse_title(scenario["title"])
        step = torch_step(kind, fields, distribution, rng)
        torch_seconds = best_seconds(step, budget)
        seconds = scenario["seconds"]
        mine = seconds["embedkit"]
        naive = seconds.get("naive")
        naive_text = f"{naive / mine:.2f}" if naive else "-"
        print(f"{scenario['title']:<72} {mine * 1e3:>12.3f} {torch_seconds * 1e3:>11.3f} "
              f"{torch_seconds / mine:>8.2f} {naive_text:>9}")
        del step
    print("speedup = PyTorch time / embedkit time; vs naive = embedkit over the naive baseline "
          "(bench/core/baselines.hpp), both measured in this run.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
