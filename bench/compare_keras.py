#!/usr/bin/env python3
"""embedkit.keras.Embedding against keras.layers.Embedding: time per epoch of model.fit, one process.

A model a Keras user trains on a large vocabulary: ids (batch, 8) -> Embedding(rows, 64) ->
GlobalAveragePooling1D -> Dense(1, sigmoid), binary cross-entropy, `fit` for whole epochs of
`--steps` batches of `--batch` samples. Ids are Zipf(1.2) ranks spread over the table by
rank * 2654435761 mod rows (bench/core/id_streams.cpp's law). Contenders, each given the same
Keras optimizer:

  keras        keras.layers.Embedding: the model's optimizer updates the whole matrix each step
               (Keras 3 applies the dense gradient on JAX and torch; every row is read and written)
  embedkit     embedkit.keras.Embedding(optimizer=<Keras object>): Keras's semantics (lazy: false),
               every row stepped where a zero gradient moves rows (momentum SGD, Adam; plain SGD
               and Adagrad take the sparse step, which is the same bits)
  embedkit-lazy embedkit.keras.Embedding(optimizer=<its name>): touched rows only

Epochs run round robin (keras, embedkit, embedkit-lazy, repeat) after one warm-up epoch each, so
the shared machine's drift falls on all alike; each cell is the median epoch time. The ratio is
keras / contender (above 1: the contender is faster). The Keras backend is KERAS_BACKEND's (torch
or jax); on JAX, Keras compiles the step with XLA and embedkit's lookup and update run in ordered
host callbacks.

Usage: KERAS_BACKEND=torch python3 bench/compare_keras.py [--rows 1000000] [--dim 64] [--batch 1024]
       [--steps 20] [--epochs 3] [--optimizers sgd,momentum,adam,adagrad] [--json out.json]
It needs Keras, the backend, and the embedkit wheel importable (python/tests' environments).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import keras  # noqa: E402

import embedkit  # noqa: E402
import embedkit.keras  # noqa: E402

OPTIMIZERS = {
    "sgd": (lambda: keras.optimizers.SGD(0.1), "sgd"),
    "momentum": (lambda: keras.optimizers.SGD(0.1, momentum=0.9), {"class_name": "SGD", "config": {
        "learning_rate": 0.1, "momentum": 0.9}}),
    "adam": (lambda: keras.optimizers.Adam(0.001), "adam"),
    "adagrad": (lambda: keras.optimizers.Adagrad(0.1), {"class_name": "Adagrad", "config": {"learning_rate": 0.1}}),
}


def zipf_ids(rows: int, shape: tuple, seed: int) -> np.ndarray:
    ranks = np.random.default_rng(seed).zipf(1.2, size=shape).astype(np.uint64) - 1
    return ((ranks * np.uint64(2654435761)) % np.uint64(rows)).astype(np.int32)


def model_for(layer: keras.layers.Layer, length: int, optimizer: keras.optimizers.Optimizer) -> keras.Model:
    model = keras.Sequential([keras.Input((length,), dtype="int32"), layer, keras.layers.GlobalAveragePooling1D(),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=optimizer, loss="binary_crossentropy")
    return model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--length", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--optimizers", default="sgd,momentum,adam,adagrad")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    samples = args.batch * args.steps
    x = zipf_ids(args.rows, (samples, args.length), 1)
    y = np.random.default_rng(2).integers(0, 2, (samples, 1)).astype(np.float32)
    print(f"Keras {keras.__version__} on {keras.backend.backend()}, embedkit {embedkit.__version__}; "
          f"{args.rows:,} x {args.dim} table, {args.steps} steps of {args.batch} x {args.length} ids per epoch, "
          f"{os.cpu_count()} CPUs")
    print(f"{'optimizer':<10} {'keras s/epoch':>14} {'embedkit':>10} {'ratio':>7} {'embedkit-lazy':>14} {'ratio':>7}")
    results = []
    for name in args.optimizers.split(","):
        make, lazy_spec = OPTIMIZERS[name]
        contenders = {
            "keras": model_for(keras.layers.Embedding(args.rows, args.dim), args.length, make()),
            "embedkit": model_for(embedkit.keras.Embedding(args.rows, args.dim, optimizer=make(), placement="cpu"),
                                  args.length, make()),
            "embedkit-lazy": model_for(embedkit.keras.Embedding(args.rows, args.dim, optimizer=lazy_spec,
                                                                placement="cpu"), args.length, make()),
        }
        times = {key: [] for key in contenders}
        for key, model in contenders.items():  # warm-up: compilation, first touch of the tables
            model.fit(x, y, batch_size=args.batch, epochs=1, shuffle=False, verbose=0)
        for _ in range(args.epochs):
            for key, model in contenders.items():
                started = time.perf_counter()
                model.fit(x, y, batch_size=args.batch, epochs=1, shuffle=False, verbose=0)
                times[key].append(time.perf_counter() - started)
        median = {key: statistics.median(values) for key, values in times.items()}
        row = {"optimizer": name, **{f"{key}_s": value for key, value in median.items()},
               "ratio": median["keras"] / median["embedkit"], "ratio_lazy": median["keras"] / median["embedkit-lazy"]}
        results.append(row)
        print(f"{name:<10} {median['keras']:>14.3f} {median['embedkit']:>10.3f} {row['ratio']:>7.2f} "
              f"{median['embedkit-lazy']:>14.3f} {row['ratio_lazy']:>7.2f}", flush=True)
        del contenders
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"backend": keras.backend.backend(), "args": vars(args), "results": results}, file, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
