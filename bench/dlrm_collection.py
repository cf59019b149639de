"""TorchRec's DLRM trained end to end on embedkit's EmbeddingBagCollection against the same model on
TorchRec's own: the 26 Criteo Kaggle tables (dim 16), dense arch 512-256-16, over arch 512-512-256-1,
batch 2048, random Criteo-shaped data (13 dense features, one Zipf(1.05) id per table), SGD at one
learning rate for the dense layers and the tables (TorchRec's tables: torch.optim.SGD on their dense
gradients; embedkit's: the fused step in backward). Both start from one state dict; prints the time
per step and the two loss curves' largest difference. In the TorchRec environment:

    cd bench && OMP_WAIT_POLICY=passive ../build/python/venv-torchrec/bin/python dlrm_collection.py --steps 50
"""
import argparse
import statistics
import time

import torch

import embedkit.torch as et
from compare_collection import CARDINALITIES, zipf_ids


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--lr", type=float, default=0.05)
    args = parser.parse_args()
    from torchrec.models.dlrm import DLRM
    from torchrec.modules.embedding_modules import EmbeddingBagCollection as TorchRecEBC

    configs = [et.EmbeddingBagConfig(num_embeddings=r, embedding_dim=16, name=f"t{i}", feature_names=[f"f{i}"])
               for i, r in enumerate(CARDINALITIES)]
    torch.manual_seed(0)
    layers = dict(dense_in_features=13, dense_arch_layer_sizes=[512, 256, 16], over_arch_layer_sizes=[512, 512, 256, 1])
    theirs = DLRM(embedding_bag_collection=TorchRecEBC(tables=configs), **layers)
    ours = DLRM(embedding_bag_collection=et.EmbeddingBagCollection(configs, device="cpu", lr=args.lr), **layers)
    ours.load_state_dict(theirs.state_dict())
    optimizers = {"torchrec": torch.optim.SGD(theirs.parameters(), lr=args.lr),
                  "embedkit": torch.optim.SGD(ours.parameters(), lr=args.lr)}
    models = {"torchrec": theirs, "embedkit": ours}
    keys = [f"f{i}" for i in range(len(CARDINALITIES))]
    loss_fn = torch.nn.BCEWithLogitsLoss()
    times = {name: [] for name in models}
    losses = {name: [] for name in models}
    for step in range(args.steps):
        gen = torch.Generator().manual_seed(step)
        dense = torch.randn(args.batch, 13, generator=gen)
        labels = torch.randint(0, 2, (args.batch, 1), generator=gen).float()
        values = torch.cat([zipf_ids(r, args.batch, 1.05, 1000 * step + i) for i, r in enumerate(CARDINALITIES)])
        kjt = et.KeyedJaggedTensor(keys=keys, values=values,
                                   lengths=torch.ones(len(keys) * args.batch, dtype=torch.int64))
        for name, model in models.items():
            start = time.perf_counter()
            optimizers[name].zero_grad()
            loss = loss_fn(model(dense, kjt), labels)
            loss.backward()
            optimizers[name].step()
            times[name].append(time.perf_counter() - start)
            losses[name].append(loss.item())
    print(f"### DLRM, batch {args.batch}, {args.steps} steps, {torch.get_num_threads()} torch threads\n")
    print("| model | median ms per step (after 5) | best ms | first loss | last loss |\n| --- | ---: | ---: | ---: | ---: |")
    for name in models:
        print(f"| DLRM on {name}'s collection | {statistics.median(times[name][5:]) * 1e3:.1f} | "
              f"{min(times[name]) * 1e3:.1f} | {losses[name][0]:.6f} | {losses[name][-1]:.6f} |")
    ratio = statistics.median(times["torchrec"][5:]) / statistics.median(times["embedkit"][5:])
    gap = max(abs(a - b) for a, b in zip(losses["torchrec"], losses["embedkit"]))
    print(f"| **TorchRec / embedkit, time per step** | {ratio:.2f}x | | | |")
    print(f"\nlargest loss difference over {args.steps} steps: {gap:.3g}\n")


if __name__ == "__main__":
    main()
