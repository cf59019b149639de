#!/usr/bin/env python3
"""embedkit against today's anchors on the CPU: PyPI's PyTorch and FBGEMM's TBE, one process, interleaved.

What a user would otherwise pick on a CPU, run on the same shapes with the same thread count:

  embedkit   embedkit.torch.EmbeddingBag(mode="sum") / embedkit.torch.Embedding (the optimizer fused
             into backward), and the table's own lookup into a preallocated output (`table(ids, out=)`)
  FBGEMM     fbgemm_gpu's SplitTableBatchedEmbeddingBagsCodegen, one table, EmbeddingLocation.HOST,
             ComputeDevice.CPU, pooling SUM; training fuses the optimizer (EXACT_ROWWISE_ADAGRAD or
             EXACT_SGD) into backward, as embedkit does. Pooled scenarios only (it has no plain lookup)
  PyTorch    F.embedding_bag / F.embedding / index_select(out=); training with
             nn.EmbeddingBag(mode="sum", sparse=True) and torch.optim.Adagrad (a full accumulator, one
             value per weight: PyTorch has no row-wise Adagrad) or torch.optim.SGD

The contenders run round robin, call by call (embedkit, FBGEMM, PyTorch, repeat) in one process, so
the shared machine's drift falls on all of them alike; each cell is the median over the rounds. A
train step is forward, backward of a fixed upstream gradient and the optimizer step. Ids follow the
C++ suite's laws (bench/core/id_streams.cpp): uniform, or Zipf ranks spread over the table by
rank * 2654435761 mod rows, drawn with NumPy's generator (the same law, not the same numbers).

The second table is a training loop: EmbeddingBag -> MLP (64 -> 256 -> 1, ReLU, BCE-with-logits
loss, torch.optim.SGD on the MLP), forward and backward per step, embedkit against
nn.EmbeddingBag(sparse=True) + SGD, under each OpenMP wait policy (OMP_WAIT_POLICY unset, ACTIVE or
PASSIVE: each one runs in its own child process, since the runtimes read it when they start) and
with N busy CPU processes running beside it (--load).

Anchors (--anchor):
  pypi     (default) bench/requirements-anchors.txt's pinned torch, fbgemm-gpu-cpu and NumPy, in the
           virtual environment build/bench-anchors, which this script creates or updates (quick when
           present); then the script runs itself there.
  debian   Debian's python3-torch and NumPy (/usr/bin/python3), no FBGEMM: the environment
           build/bench-debian sees the system site-packages and gets only the wheel.
Either way the embedkit wheel is built from this checkout as scripts/test.sh's python lane builds it
(incrementally, in build/bench-wheel, with the lane's pinned scikit-build-core and nanobind in
build/bench-wheel/venv), or taken from --wheel, and installed into the environment.
--no-venv runs in the calling interpreter as it is (torch, NumPy and embedkit importable), as CI's
python lane does in its Debian-torch environment.

Usage: python3 bench/compare_pytorch.py [--anchor pypi|debian] [--scale full|smoke] [--threads 2]
       [--seconds 20] [--load 0,2] [--wait-policies unset,passive] [--parts headline,loop]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SPREAD_PRIME = 2654435761
SEED = 20240601
LEARNING_RATE = 0.01
# Keras's Adagrad defaults, which embedkit's "rowwise_adagrad" takes; the anchors get the same.
ADAGRAD_EPSILON = 1e-7
ADAGRAD_INITIAL_ACCUMULATOR = 0.1
# Set in the environment of the process this script re-executes (and of its children): the
# environment is ready, run the measurements.
INSIDE = "EMBEDKIT_BENCH_INSIDE"
# What the measured embedkit was built from, as the preparing process saw it.
SOURCE = "EMBEDKIT_BENCH_SOURCE"
ANCHORS = {
    "pypi": {"venv": "build/bench-anchors", "requirements": "bench/requirements-anchors.txt", "system": False},
    "debian": {"venv": "build/bench-debian", "requirements": None, "system": True},
}
WAIT_POLICIES = {"unset": None, "active": "ACTIVE", "passive": "PASSIVE"}

# Shapes per scale. full: the shapes (about 6 GiB at the peak, in the pooled scenario, where
# three 2 GiB tables coexist); smoke: seconds, for CI.
SCALES: Dict[str, Dict[str, int]] = {
    "full": {
        "rows": 1 << 23, "dim": 64, "pooled_ids": 1 << 21, "bag": 32, "lookup_ids": 1 << 20,
        "train_rows": 1 << 22, "train_ids": 1 << 21, "copy_bytes": 512 << 20,
        "loop_rows": 1 << 20, "loop_bags": 4096, "loop_bag": 32, "hidden": 256, "loop_batches": 8,
    },
    "smoke": {
        "rows": 1 << 14, "dim": 64, "pooled_ids": 1 << 12, "bag": 32, "lookup_ids": 1 << 11,
        "train_rows": 1 << 13, "train_ids": 1 << 12, "copy_bytes": 8 << 20,
        "loop_rows": 1 << 12, "loop_bags": 64, "loop_bag": 8, "hidden": 32, "loop_batches": 2,
    },
}


# -------------------------------------------------------------------------------------------------
# The environment: a virtual environment with the anchors and this checkout's wheel


def _run(command: Sequence[str], **kwargs: Any) -> None:
    print("[compare_pytorch] " + " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(list(command), check=True, cwd=ROOT, **kwargs)


def _build_tool_pins() -> List[str]:
    """scikit-build-core and nanobind as python/requirements-test.txt pins them (the python lane's)."""
    pins = []
    with open(os.path.join(ROOT, "python", "requirements-test.txt"), encoding="utf-8") as handle:
        for line in handle:
            line = line.split("#")[0].strip()
            if line.split("==")[0] in ("scikit-build-core", "nanobind"):
                pins.append(line)
    return pins


def _base_python() -> str:
    """Debian's Python (the one python3-torch is built for, and the python lane's), else this one."""
    return "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


def ensure_venv(venv: str, packages: Sequence[str], system_site_packages: bool = False) -> str:
    """Creates or updates a virtual environment holding ``packages`` (pip requirement lines); returns
    its python. Installs only when the list changed since the last install (a stamp file in it)."""
    python = os.path.join(venv, "bin", "python")
    if not os.access(python, os.X_OK):
        _run([_base_python(), "-m", "venv", *(["--system-site-packages"] if system_site_packages else []), venv])
    stamp = os.path.join(venv, ".embedkit-bench-packages")
    text = "\n".join(packages) + "\n"
    if packages and (not os.path.exists(stamp) or open(stamp, encoding="utf-8").read() != text):
        _run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *packages])
    with open(stamp, "w", encoding="utf-8") as handle:
        handle.write(text)
    return python


def anchor_python(anchor: str) -> str:
    """The anchor's environment, created or updated: exactly bench/requirements-anchors.txt for
    ``pypi``; Debian's system site-packages and nothing added for ``debian``."""
    spec = ANCHORS[anchor]
    packages: List[str] = []
    if spec["requirements"]:
        with open(os.path.join(ROOT, spec["requirements"]), encoding="utf-8") as handle:
            packages = [line.split("#")[0].strip() for line in handle if line.split("#")[0].strip()]
    return ensure_venv(os.path.join(ROOT, spec["venv"]), packages, system_site_packages=spec["system"])


def build_wheel() -> str:
    """This checkout's embedkit wheel, built as scripts/test.sh's python lane builds it (CPU-only,
    no MPI) from an environment holding only the build tools (build/bench-wheel/venv), incrementally
    in build/bench-wheel/build; returns its path. One wheel serves both anchors (Debian's Python)."""
    base = os.path.join(ROOT, "build", "bench-wheel")
    python = ensure_venv(os.path.join(base, "venv"), _build_tool_pins())
    dist = os.path.join(base, "dist")
    os.makedirs(dist, exist_ok=True)
    for name in os.listdir(dist):
        os.remove(os.path.join(dist, name))
    environment = dict(os.environ)
    if subprocess.run(["sh", "-c", "command -v ccache"], capture_output=True).returncode == 0:
        # As scripts/ccache_env.sh does: the wheel shares the test lanes' compiler cache.
        environment.update(CCACHE_BASEDIR=ROOT, CCACHE_NOHASHDIR="true",
                           CMAKE_C_COMPILER_LAUNCHER="ccache", CMAKE_CXX_COMPILER_LAUNCHER="ccache")
    _run([python, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-build-isolation", "--no-deps",
          "-w", dist, f"--config-settings=build-dir={os.path.join(base, 'build')}",
          "--config-settings=cmake.define.EMBEDKIT_CUDA=OFF", "--config-settings=cmake.define.EMBEDKIT_WERROR=ON",
          "--config-settings=cmake.define.EMBEDKIT_MPI=OFF", "./python"], env=environment)
    wheels = [name for name in os.listdir(dist) if name.endswith(".whl")]
    if len(wheels) != 1:
        raise SystemExit(f"expected one wheel in {dist}, found {wheels}")
    return os.path.join(dist, wheels[0])


def install_wheel(python: str, wheel: str) -> None:
    """Installs the wheel unless the same bytes are installed already (a stamp of its hash)."""
    with open(wheel, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    stamp = os.path.join(os.path.dirname(os.path.dirname(python)), ".embedkit-bench-wheel")
    if os.path.exists(stamp) and open(stamp, encoding="utf-8").read() == digest:
        return
    _run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--force-reinstall", "--no-deps", wheel])
    with open(stamp, "w", encoding="utf-8") as handle:
        handle.write(digest)


# -------------------------------------------------------------------------------------------------
# Measuring


def draw_ids(np: Any, distribution: str, rows: int, count: int, rng: Any) -> Any:
    """Ids in [0, rows) as the C++ suite draws them (bench/core/id_streams.cpp)."""
    if distribution == "uniform":
        return rng.integers(0, rows, size=count, dtype=np.int64)
    alpha = float(distribution[len("zipf"):])
    cumulative = np.cumsum(np.arange(1, rows + 1, dtype=np.float64) ** -alpha)
    ranks = np.searchsorted(cumulative, rng.uniform(0.0, cumulative[-1], size=count), side="right")
    ranks = np.minimum(ranks, rows - 1).astype(np.uint64)
    return ((ranks * np.uint64(SPREAD_PRIME)) % np.uint64(rows)).astype(np.int64)


def interleave(calls: Dict[str, Callable[[], Any]], rounds: int, seconds: float) -> Dict[str, List[float]]:
    """Seconds per call of each contender, called round robin (one warm-up round first), for at
    least ``rounds`` rounds and until ``seconds`` have passed (at most 1000 rounds). A call's result
    is dropped after its clock stops."""
    for call in calls.values():
        call()
    times: Dict[str, List[float]] = {name: [] for name in calls}
    start = time.perf_counter()
    done = 0
    while done < rounds or (time.perf_counter() - start < seconds and done < 1000):
        for name, call in calls.items():
            begin = time.perf_counter()
            result = call()
            times[name].append(time.perf_counter() - begin)
            del result
        done += 1
    return times


def milliseconds(seconds: float) -> str:
    value = seconds * 1e3
    return f"{value:.1f} ms" if value >= 10 else f"{value:.2f} ms" if value >= 1 else f"{value:.3f} ms"


class Bench:
    """The measurements, run inside the prepared environment (torch, NumPy and embedkit imported)."""

    def __init__(self, args: argparse.Namespace) -> None:
        import numpy
        import torch

        import embedkit
        import embedkit.torch

        self.np, self.torch, self.embedkit = numpy, torch, embedkit
        self.args = args
        self.shape = SCALES[args.scale]
        self.rounds = args.rounds if args.rounds is not None else (15 if args.scale == "full" else 3)
        self.rng = numpy.random.default_rng(SEED)
        torch.set_num_threads(args.threads)
        torch.manual_seed(SEED)
        # torch.optim.Adagrad's sparse step says this on every call since PyTorch 2.x; nothing of ours.
        warnings.filterwarnings("ignore", message="Sparse invariant checks")
        try:
            import fbgemm_gpu  # noqa: F401 - registers the TBE operators
            from fbgemm_gpu import split_table_batched_embeddings_ops_training as tbe

            self.tbe: Optional[Any] = tbe
            self.fbgemm_version = getattr(fbgemm_gpu, "__version__", "?")
        except ImportError:
            self.tbe = None
            self.fbgemm_version = None

    # -- contenders ------------------------------------------------------------------------------

    def embedkit_bag(self, rows: int, optimizer: str) -> Any:
        return self.embedkit.torch.EmbeddingBag(
            rows, self.shape["dim"], mode="sum", optimizer=optimizer, lr=LEARNING_RATE,
            embeddings_initializer="uniform", seed=SEED, placement="cpu",
        )

    def fbgemm_bag(self, rows: int, optimizer: str) -> Any:
        """A one-table TBE in host memory, computed on the CPU, its weights uniform(-0.05, 0.05)."""
        tbe = self.tbe
        optim = {"rowwise_adagrad": tbe.OptimType.EXACT_ROWWISE_ADAGRAD, "sgd": tbe.OptimType.EXACT_SGD}[optimizer]
        module = tbe.SplitTableBatchedEmbeddingBagsCodegen(
            embedding_specs=[(rows, self.shape["dim"], tbe.EmbeddingLocation.HOST, tbe.ComputeDevice.CPU)],
            optimizer=optim,
            learning_rate=LEARNING_RATE,
            eps=ADAGRAD_EPSILON,
            pooling_mode=tbe.PoolingMode.SUM,
            weights_precision=tbe.SparseType.FP32,
            output_dtype=tbe.SparseType.FP32,
            device="cpu",
        )
        with self.torch.no_grad():
            for weights in module.split_embedding_weights():
                weights.uniform_(-0.05, 0.05)
        return module

    def torch_weight(self, rows: int) -> Any:
        return self.torch.empty(rows, self.shape["dim"]).uniform_(-0.05, 0.05)

    def torch_bag(self, rows: int, optimizer: str) -> Tuple[Any, Any]:
        torch = self.torch
        bag = torch.nn.EmbeddingBag(rows, self.shape["dim"], mode="sum", sparse=True)
        with torch.no_grad():
            bag.weight.uniform_(-0.05, 0.05)
        if optimizer == "rowwise_adagrad":
            step = torch.optim.Adagrad(bag.parameters(), lr=LEARNING_RATE, eps=ADAGRAD_EPSILON,
                                       initial_accumulator_value=ADAGRAD_INITIAL_ACCUMULATOR)
        else:
            step = torch.optim.SGD(bag.parameters(), lr=LEARNING_RATE)
        return bag, step

    def bags(self, distribution: str, rows: int, count: int, bag: int) -> Tuple[Any, Any, Any]:
        """1-D ids, PyTorch's offsets (one start per bag) and FBGEMM's (the end appended)."""
        torch = self.torch
        ids = torch.from_numpy(draw_ids(self.np, distribution, rows, count, self.rng))
        starts = torch.arange(0, count, bag, dtype=torch.int64)
        return ids, starts, torch.cat([starts, torch.tensor([count], dtype=torch.int64)])

    # -- the headline table ----------------------------------------------------------------------

    def measure(self, calls: Dict[str, Callable[[], Any]]) -> Dict[str, float]:
        times = interleave(calls, self.rounds, self.args.seconds)
        return {name: statistics.median(values) for name, values in times.items()}

    def headline(self) -> List[Tuple[str, Dict[str, str]]]:
        """(scenario, cells) rows; cells keyed embedkit / fbgemm / torch."""
        torch, s = self.torch, self.shape
        F = torch.nn.functional
        rows: List[Tuple[str, Dict[str, str]]] = []

        def add(title: str, seconds: Dict[str, float], notes: Optional[Dict[str, str]] = None) -> None:
            base = seconds["embedkit"]
            cells = {"embedkit": milliseconds(base)}
            for name in ("fbgemm", "torch"):
                if name in seconds:
                    note = (notes or {}).get(name)
                    cells[name] = f"{milliseconds(seconds[name])} ({seconds[name] / base:.1f}x)" + (
                        f", `{note}`" if note else "")
                else:
                    cells[name] = (notes or {}).get(name, "-")
            rows.append((title, cells))
            print(f"[compare_pytorch] {title}: " + ", ".join(f"{k} {v}" for k, v in cells.items()),
                  file=sys.stderr, flush=True)

        table_rows, dim, bag = s["rows"], s["dim"], s["bag"]
        shape_text = f"2^{table_rows.bit_length() - 1} x {dim} table"
        with torch.no_grad():
            # Each call's table is freed when its clock has stopped.
            add(f"table creation, {shape_text}, uniform(-0.05, 0.05)",
                self.measure({"embedkit": lambda: self.embedkit_bag(table_rows, "sgd"),
                              "torch": lambda: self.torch_weight(table_rows)}),
                {"torch": "empty + uniform_"})
            ids, starts, ends = self.bags("uniform", table_rows, s["pooled_ids"], bag)
            mine = self.embedkit_bag(table_rows, "sgd")
            weight = self.torch_weight(table_rows)
            calls: Dict[str, Callable[[], Any]] = {"embedkit": lambda: mine(ids, starts)}
            if self.tbe is not None:
                fbgemm = self.fbgemm_bag(table_rows, "sgd")
                calls["fbgemm"] = lambda: fbgemm(ids, ends)
            calls["torch"] = lambda: F.embedding_bag(ids, weight, starts, mode="sum")
            add(f"pooled sum, {shape_text}, 2^{s['pooled_ids'].bit_length() - 1} uniform ids, bags of {bag}",
                self.measure(calls), {"torch": "F.embedding_bag"})
            del mine, calls
            if self.tbe is not None:
                del fbgemm

            lookup = self.embedkit.torch.Embedding(table_rows, dim, embeddings_initializer="uniform", seed=SEED,
                                                   placement="cpu")
            ids = torch.from_numpy(draw_ids(self.np, "uniform", table_rows, s["lookup_ids"], self.rng))
            count = f"2^{s['lookup_ids'].bit_length() - 1}"
            add(f"lookup, same table, {count} uniform ids, output allocated by the call",
                self.measure({"embedkit": lambda: lookup(ids), "torch": lambda: F.embedding(ids, weight)}),
                {"torch": "F.embedding"})
            mine_out = torch.empty(s["lookup_ids"], dim)
            torch_out = torch.empty(s["lookup_ids"], dim)
            add("lookup, same, into a preallocated output (embedkit: `module.table(ids, out=)`)",
                self.measure({"embedkit": lambda: lookup.table(ids, out=mine_out),
                              "torch": lambda: torch.index_select(weight, 0, ids, out=torch_out)}),
                {"torch": "index_select(out=)"})
            del lookup, weight, mine_out, torch_out

        train_rows = s["train_rows"]
        ids, starts, ends = self.bags("zipf1.2", train_rows, s["train_ids"], bag)
        grad = torch.empty(starts.numel(), dim).uniform_(-1e-3, 1e-3)
        for optimizer, title, torch_name in (
            ("rowwise_adagrad", "row-wise Adagrad (PyTorch: Adagrad, full accumulator)", "optim.Adagrad"),
            ("sgd", "SGD", "optim.SGD"),
        ):
            mine = self.embedkit_bag(train_rows, optimizer)
            torch_bag, torch_step = self.torch_bag(train_rows, optimizer)

            def mine_step() -> None:
                mine(ids, starts).backward(grad)

            def anchor_step() -> None:
                torch_step.zero_grad(set_to_none=True)
                torch_bag(ids, starts).backward(grad)
                torch_step.step()

            calls = {"embedkit": mine_step}
            if self.tbe is not None:
                fbgemm = self.fbgemm_bag(train_rows, optimizer)
                calls["fbgemm"] = lambda: fbgemm(ids, ends).backward(grad)
            calls["torch"] = anchor_step
            add(f"train step, 2^{train_rows.bit_length() - 1} x {dim}, 2^{s['train_ids'].bit_length() - 1} "
                f"Zipf(1.2) ids, bags of {bag}, {title}",
                self.measure(calls), {"torch": torch_name})
            del mine, torch_bag, torch_step, calls
            if self.tbe is not None:
                del fbgemm

        # The machine's copy bandwidth, in the same process: a preallocated destination, and one
        # allocated by the call (its first touch is page faults, as a lookup's new output's is).
        elements = s["copy_bytes"] // 4
        source, target = torch.rand(elements), torch.empty(elements)
        copies = self.measure({"copy_": lambda: target.copy_(source), "clone": lambda: source.clone()})
        size = f"{s['copy_bytes'] >> 20} MiB"
        for name, text in (("copy_", "into a preallocated tensor (`copy_`)"), ("clone", "allocated by the call (`clone`)")):
            rate = s["copy_bytes"] / copies[name] / 1e9
            rows.append((f"copy anchor: {size} {text}, {self.args.threads} threads",
                         {"embedkit": "-", "fbgemm": "-", "torch": f"{milliseconds(copies[name])}, {rate:.1f} GB/s"}))
        return rows

    # -- the training loop -----------------------------------------------------------------------

    def loop(self) -> Dict[str, float]:
        """Median seconds per training-loop step of embedkit's EmbeddingBag and PyTorch's, interleaved."""
        torch, s = self.torch, self.shape
        rows, dim, bags, per_bag = s["loop_rows"], s["dim"], s["loop_bags"], s["loop_bag"]
        batches = []
        for _ in range(s["loop_batches"]):
            ids, starts, _ = self.bags("zipf1.2", rows, bags * per_bag, per_bag)
            labels = torch.from_numpy(self.rng.integers(0, 2, size=bags).astype(self.np.float32))
            batches.append((ids, starts, labels))

        def mlp() -> Any:
            torch.manual_seed(SEED)
            return torch.nn.Sequential(torch.nn.Linear(dim, s["hidden"]), torch.nn.ReLU(),
                                       torch.nn.Linear(s["hidden"], 1))

        loss = torch.nn.BCEWithLogitsLoss()

        def make_step(table: Any, optimizer: Any, head: Any) -> Callable[[], Any]:
            position = [0]

            def step() -> float:
                ids, starts, labels = batches[position[0] % len(batches)]
                position[0] += 1
                optimizer.zero_grad(set_to_none=True)
                value = loss(head(table(ids, starts)).squeeze(1), labels)
                value.backward()
                optimizer.step()
                return float(value)

            return step

        mine, mine_head = self.embedkit_bag(rows, "sgd"), mlp()
        theirs = torch.nn.EmbeddingBag(rows, dim, mode="sum", sparse=True)
        with torch.no_grad():
            theirs.weight.uniform_(-0.05, 0.05)
        theirs_head = mlp()
        calls = {
            "embedkit": make_step(mine, torch.optim.SGD(mine_head.parameters(), lr=LEARNING_RATE), mine_head),
            "torch": make_step(theirs, torch.optim.SGD(list(theirs.parameters()) + list(theirs_head.parameters()),
                                                       lr=LEARNING_RATE), theirs_head),
        }
        return self.measure(calls)

    def versions(self) -> str:
        np, torch = self.np, self.torch
        parts = [f"Python {platform.python_version()}", f"torch {torch.__version__}",
                 f"fbgemm_gpu {self.fbgemm_version}" if self.fbgemm_version else "no FBGEMM",
                 f"NumPy {np.__version__}",
                 f"embedkit {self.embedkit.__version__} ({os.environ.get(SOURCE, 'as installed, --no-venv')})"]
        return ", ".join(parts)


def git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
        return commit + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------------
# The training loop under wait policies and loads: one child process per policy


def start_load(count: int) -> List[subprocess.Popen]:
    """``count`` busy processes (a Python spin loop each), for the measurement to share the CPUs with."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def stop_load(processes: List[subprocess.Popen]) -> None:
    for process in processes:
        process.kill()
        process.wait()


def loop_table(args: argparse.Namespace, torch_name: str) -> str:
    policies = [policy for policy in args.wait_policies.split(",") if policy]
    loads = [int(load) for load in args.load.split(",") if load]
    rows = []
    for policy in policies:
        if policy not in WAIT_POLICIES:
            raise SystemExit(f"unknown wait policy {policy!r} ({', '.join(WAIT_POLICIES)})")
        environment = dict(os.environ)
        environment.pop("OMP_WAIT_POLICY", None)
        if WAIT_POLICIES[policy]:
            environment["OMP_WAIT_POLICY"] = WAIT_POLICIES[policy]
        for load in loads:
            busy = start_load(load)
            try:
                command = [sys.executable, os.path.abspath(__file__), "--loop-child", "--no-venv",
                           "--scale", args.scale, "--threads", str(args.threads), "--seconds", str(args.seconds)]
                if args.rounds is not None:
                    command += ["--rounds", str(args.rounds)]
                child = subprocess.run(command, env=environment, capture_output=True, text=True)
            finally:
                stop_load(busy)
            if child.returncode != 0:
                sys.stderr.write(child.stdout + child.stderr)
                raise SystemExit(f"the training loop's process ({policy}, load {load}) failed: {child.returncode}")
            seconds = json.loads(child.stdout.strip().splitlines()[-1])
            ratio = seconds["torch"] / seconds["embedkit"]
            rows.append([policy if policy == "unset" else f"OMP_WAIT_POLICY={WAIT_POLICIES[policy]}", str(load),
                         milliseconds(seconds["embedkit"]), milliseconds(seconds["torch"]), f"{ratio:.2f}x"])
            print(f"[compare_pytorch] loop, {policy}, load {load}: {rows[-1][2:]}", file=sys.stderr, flush=True)
    return markdown(["wait policy", "busy processes", "embedkit step", f"{torch_name} step", f"{torch_name} / embedkit"],
                    rows)


# -------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--anchor", choices=tuple(ANCHORS), default="pypi",
                        help="pypi: build/bench-anchors with bench/requirements-anchors.txt (default); "
                             "debian: Debian's python3-torch, no FBGEMM")
    parser.add_argument("--no-venv", action="store_true",
                        help="run in this interpreter as it is (torch, NumPy and embedkit importable)")
    parser.add_argument("--wheel", help="install this embedkit wheel instead of building one from the checkout")
    parser.add_argument("--scale", choices=tuple(SCALES), default="full")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads and OMP_NUM_THREADS (default 2)")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="each scenario's time budget, all contenders together (default 20)")
    parser.add_argument("--rounds", type=int, help="at least this many rounds per scenario (default 15; smoke 3)")
    parser.add_argument("--parts", default="headline,loop", help="headline, loop or both (default)")
    parser.add_argument("--load", default="0", help="busy CPU processes beside the training loop, a comma list "
                                                    "(default 0; e.g. 0,2)")
    parser.add_argument("--wait-policies", default="unset,passive",
                        help="OMP_WAIT_POLICY settings for the training loop, each in its own process: "
                             "unset, active, passive (default unset,passive)")
    parser.add_argument("--loop-child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def prepare(args: argparse.Namespace, argv: Sequence[str]) -> None:
    """Creates or updates the environment, installs the wheel, and re-executes this script there."""
    python = anchor_python(args.anchor)
    install_wheel(python, os.path.abspath(args.wheel) if args.wheel else build_wheel())
    source = f"wheel {os.path.basename(args.wheel)}" if args.wheel else f"built from {git_commit()}"
    environment = dict(os.environ, **{INSIDE: "1", SOURCE: source})
    os.execve(python, [python, os.path.abspath(__file__), *argv], environment)


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    if not args.no_venv and os.environ.get(INSIDE) != "1":
        prepare(args, argv)
    # Before torch or embedkit load their OpenMP runtimes.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    bench = Bench(args)
    if args.loop_child:
        print(json.dumps(bench.loop()))
        return 0
    parts = args.parts.split(",")
    torch_name = "PyTorch " + ".".join(bench.torch.__version__.split("+")[0].split(".")[:2])
    print(f"embedkit against {bench.versions()}")
    print(f"{cpu_name()}, {os.cpu_count()} CPUs, {args.threads} threads, "
          f"OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'unset')}, scale {args.scale}, "
          f"median of >= {bench.rounds} interleaved rounds and >= {args.seconds:g} s per scenario; "
          f"load average at the start {load_average()}")
    if "headline" in parts:
        rows = bench.headline()
        header = ["scenario", "embedkit", "FBGEMM TBE (CPU)" if bench.tbe is not None else "FBGEMM", torch_name]
        print()
        print(markdown(header, [[title, cells["embedkit"], cells["fbgemm"], cells["torch"]] for title, cells in rows]))
        print()
        print("(N.Nx) = that contender's median time over embedkit's: above 1, embedkit is faster. A train step is "
              "forward, backward of a fixed upstream gradient and the optimizer's step (fused into backward for "
              "embedkit and FBGEMM; `optimizer.step()` for PyTorch).")
    if "loop" in parts:
        del bench  # the children measure; this process's tables are gone already
        s = SCALES[args.scale]
        print()
        print(f"Training loop: EmbeddingBag (2^{s['loop_rows'].bit_length() - 1} x {s['dim']}, SGD) -> MLP "
              f"{s['dim']}->{s['hidden']}->1 (ReLU, BCE-with-logits, torch.optim.SGD), {s['loop_bags']} bags of "
              f"{s['loop_bag']} Zipf(1.2) ids per step, forward + backward + step; median step of the "
              f"interleaved rounds, one process per wait policy")
        print()
        print(loop_table(args, torch_name))
    print()
    print(f"load average at the end {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
