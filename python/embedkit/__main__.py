"""``python -m embedkit plan ...``: the ``embedkit plan`` command, answered by the same planner and
report (``ek_plan`` in the C ABI), so both print the same text for the same arguments."""
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

from . import _embedkit
from ._errors import Error


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m embedkit", description="embedkit from Python")
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="what placement would decide for a table, and why")
    plan.add_argument("--rows", type=_positive, required=True, help="rows (input_dim)")
    plan.add_argument("--dim", type=_positive, required=True, help="embedding width (output_dim)")
    plan.add_argument(
        "--optimizer",
        default="sgd",
        choices=_embedkit.optimizer_names(),
        help="the optimizer, whose state counts",
    )
    plan.add_argument(
        "--dtype",
        default="float32",
        choices=("float32", "float16", "bfloat16"),
        help="the rows' storage type, whose bytes count",
    )
    plan.add_argument("--gpu-memory", help="a hypothetical device's free memory, e.g. 80GiB")
    plan.add_argument("--batch", type=_positive, default=1 << 18, help="the largest batch, in lookups")
    plan.add_argument("--json", action="store_true", help="print JSON")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    options = _parser().parse_args(argv)
    request = {
        "rows": options.rows,
        "dim": options.dim,
        "optimizer": options.optimizer,
        "dtype": options.dtype,
        "max_batch_lookups": options.batch,
        "gpu_memory": options.gpu_memory,
    }
    try:
        sys.stdout.write(_embedkit.plan(json.dumps(request), options.json))
    except Error as error:
        print(f"embedkit: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
