#!/usr/bin/env python3
"""Paper model of a sharded table's network traffic per training step on N machines.

Each machine holds 1/N of the rows (ids dealt by hashing, so every id's owner is another machine
with probability (N-1)/N) and a local batch of B ids per step drawn from a Zipf law of exponent s
over R rows. One step is what embedkit's ShardedEmbeddingTable does:

  lookup      each machine sends each of its U distinct ids once to its owner (8 bytes) and serves
              the rows others ask for (4·D bytes each); by symmetry it serves as many as it asks,
              so it sends (N-1)/N · U · (8 + 4·D) bytes and receives as much.
  train step  each machine sends every gradient row to its owner, duplicates included (the owner
              folds them in the canonical order, which the sender cannot do for it):
              (N-1)/N · B · (8 + 4·D) bytes.

U is the expected number of distinct ids in B Zipf draws: sum over ids of 1 - (1 - p_k)^B.
Counts, displacements and the error agreement add a few bytes per peer and are left out.
The link time assumes each machine's NIC (default 100 Gb/s, full duplex) is the bottleneck of a
non-blocking fabric and that the all-to-all reaches line rate: a lower bound on the step's network
time. bench_sharded reports the same bytes measured on one machine, to check the model.

Usage: bench/sharded_network_model.py [--rows R] [--dim D] [--batch B] [--zipf s] [--gbps G]
                                      [--machines 1,2,4,...]
"""
import argparse
import math


def zipf_distinct(rows: int, batch: int, exponent: float) -> float:
    """Expected distinct ids among `batch` draws from Zipf(exponent) over `rows` ids."""
    # Exact over the head; over the tail, where batch * p << 1, 1 - (1 - p)^B ~ B * p, and the
    # tail's share of the normaliser comes from the integral of x^-s (Euler-Maclaurin midpoint).
    head = min(rows, 2_000_000)

    def tail_sum(a: int, b: int) -> float:  # sum of k^-s for k in [a, b]
        if a > b:
            return 0.0
        lo, hi = a - 0.5, b + 0.5
        if abs(exponent - 1.0) < 1e-12:
            return math.log(hi / lo)
        return (hi ** (1 - exponent) - lo ** (1 - exponent)) / (1 - exponent)

    head_weights = [k ** -exponent for k in range(1, head + 1)]
    norm = sum(head_weights) + tail_sum(head + 1, rows)
    distinct = sum(1.0 - (1.0 - w / norm) ** batch for w in head_weights)
    distinct += batch * tail_sum(head + 1, rows) / norm
    return distinct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--batch", type=int, default=65536, help="ids per machine per step")
    parser.add_argument("--zipf", type=float, default=1.05)
    parser.add_argument("--gbps", type=float, default=100.0, help="link speed, Gb/s")
    parser.add_argument("--machines", default="1,2,4,8,16,32,64")
    args = parser.parse_args()

    row_bytes = 8 + 4 * args.dim  # an id and its row
    distinct = zipf_distinct(args.rows, args.batch, args.zipf)
    print(f"table {args.rows} x {args.dim} float32, batch {args.batch} ids per machine, Zipf({args.zipf}): "
          f"{distinct:.0f} distinct ids per machine batch ({distinct / args.batch:.1%})")
    print(f"link {args.gbps:g} Gb/s per machine; bytes are what one machine sends per step (it receives as much)")
    print(f"{'N':>5} {'lookup MiB':>11} {'train MiB':>10} {'step MiB':>9} {'link ms':>8} {'steps/s max':>12}"
          f" {'global batch':>13}")
    for n in (int(x) for x in args.machines.split(",")):
        remote = (n - 1) / n
        lookup = remote * distinct * row_bytes
        train = remote * args.batch * row_bytes
        step = lookup + train
        seconds = step * 8 / (args.gbps * 1e9)
        rate = f"{1 / seconds:12.0f}" if seconds > 0 else f"{'inf':>12}"
        print(f"{n:5d} {lookup / 2**20:11.2f} {train / 2**20:10.2f} {step / 2**20:9.2f} {seconds * 1e3:8.3f} {rate}"
              f" {n * args.batch:13d}")


if __name__ == "__main__":
    main()
