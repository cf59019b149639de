"""A Criteo-shaped collection (DLRM's Kaggle configuration: the 26 Criteo Kaggle cardinalities,
one feature per table, dim 16, one id per feature and sample, ids Zipf(1.05) per table) through
embedkit.torch.EmbeddingBagCollection, FBGEMM's CPU TBE (all 26 tables in one
SplitTableBatchedEmbeddingBagsCodegen) and TorchRec's EmbeddingBagCollection: the forward and the
row-wise Adagrad train step (forward + backward with the update), interleaved round by round in one
process; ratios of best and median times. Runs in the TorchRec environment
(python/requirements-test-torchrec.txt):

    build/python/venv-torchrec/bin/python bench/compare_collection.py --batch 2048 --rounds 10
"""
import argparse
import statistics
import time

import numpy as np
import torch

import embedkit.torch as et

CARDINALITIES = [1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194, 27, 14992,
                 5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572]


def zipf_ids(rows, count, alpha, seed):
    """Zipf(alpha) ranks over [0, rows), spread by bench/core/id_streams.cpp's permutation."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, rows + 1, dtype=np.float64)
    weights = ranks ** -alpha
    cdf = np.cumsum(weights / weights.sum())
    picked = np.minimum(np.searchsorted(cdf, rng.random(count)), rows - 1)
    return torch.from_numpy((picked * 2654435761) % rows)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--cap", type=int, default=1 << 40, help="cap on a table's rows")
    args = parser.parse_args()
    from fbgemm_gpu.split_embedding_configs import EmbOptimType
    from fbgemm_gpu.split_table_batched_embeddings_ops_common import EmbeddingLocation, PoolingMode
    from fbgemm_gpu.split_table_batched_embeddings_ops_training import (
        ComputeDevice,
        SplitTableBatchedEmbeddingBagsCodegen,
    )
    from torchrec.modules.embedding_modules import EmbeddingBagCollection as TorchRecEBC

    rows = [min(c, args.cap) for c in CARDINALITIES]
    configs = [et.EmbeddingBagConfig(num_embeddings=r, embedding_dim=args.dim, name=f"t{i}", feature_names=[f"f{i}"])
               for i, r in enumerate(rows)]
    keys = [f"f{i}" for i in range(len(rows))]
    values = torch.cat([zipf_ids(r, args.batch, 1.05, 100 + i) for i, r in enumerate(rows)])
    lengths = torch.ones(len(rows) * args.batch, dtype=torch.int64)
    offsets = torch.arange(len(rows) * args.batch + 1, dtype=torch.int64)
    kjt = et.KeyedJaggedTensor(keys=keys, values=values, lengths=lengths)
    target = torch.randn(args.batch, len(rows) * args.dim) * 1e-3
    eps, lr = 1e-8, 0.01

    ours = et.EmbeddingBagCollection(configs, device="cpu", optimizer="rowwise_adagrad", lr=lr, eps=eps,
                                     initial_accumulator_value=0.0)
    tbe = SplitTableBatchedEmbeddingBagsCodegen(
        embedding_specs=[(r, args.dim, EmbeddingLocation.HOST, ComputeDevice.CPU) for r in rows],
        optimizer=EmbOptimType.EXACT_ROWWISE_ADAGRAD, learning_rate=lr, eps=eps, pooling_mode=PoolingMode.SUM)
    theirs = TorchRecEBC(tables=configs)

    def our_forward():
        with torch.no_grad():
            ours(kjt)

    def our_step():
        (ours(kjt).values() * target).sum().backward()

    def tbe_forward():
        with torch.no_grad():
            tbe(values, offsets)

    def tbe_step():
        (tbe(values, offsets) * target).sum().backward()

    def torchrec_forward():
        with torch.no_grad():
            theirs(kjt)

    contenders = {"embedkit collection: forward": our_forward, "FBGEMM TBE (CPU): forward": tbe_forward,
                  "TorchRec EmbeddingBagCollection: forward": torchrec_forward,
                  "embedkit collection: row-wise Adagrad step": our_step,
                  "FBGEMM TBE (CPU): EXACT_ROWWISE_ADAGRAD step": tbe_step}
    times = {name: [] for name in contenders}
    for run in contenders.values():
        run()  # warm up
    for _ in range(args.rounds):
        for name, run in contenders.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    print(f"### batch {args.batch}, dim {args.dim}, {args.rounds} interleaved rounds, "
          f"{torch.get_num_threads()} torch threads\n")
    print("| call | best ms | median ms |\n| --- | ---: | ---: |")
    for name, values_ in times.items():
        print(f"| {name} | {min(values_) * 1e3:.3f} | {statistics.median(values_) * 1e3:.3f} |")
    for what, ours_name, other in (
            ("FBGEMM / embedkit, forward", "embedkit collection: forward", "FBGEMM TBE (CPU): forward"),
            ("TorchRec / embedkit, forward", "embedkit collection: forward",
             "TorchRec EmbeddingBagCollection: forward"),
            ("FBGEMM / embedkit, row-wise Adagrad step", "embedkit collection: row-wise Adagrad step",
             "FBGEMM TBE (CPU): EXACT_ROWWISE_ADAGRAD step")):
        print(f"| **{what}** | {min(times[other]) / min(times[ours_name]):.2f}x | "
              f"{statistics.median(times[other]) / statistics.median(times[ours_name]):.2f}x |")
    print()


if __name__ == "__main__":
    main()
