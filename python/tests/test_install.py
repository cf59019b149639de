"""What `pip install ./python` built: a library that links neither MPI nor NCCL, a placement that
says in words why a table is on the CPU, and embedkit.torch importing beside torch in either order.

Every lane runs this file; the cuda lane runs it against a CUDA-built wheel beside PyPI's CUDA torch
(scripts/test.sh), where the toolkit's libnccl.so.2 once made `import torch` fail."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import embedkit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cmake"))
from cuda_driver_probe import probe  # noqa: E402  (what the build itself asks the driver)

PACKAGE = Path(embedkit.__file__).resolve().parent


def needed_libraries(library: Path) -> list:
    """The DT_NEEDED entries of a shared library, as readelf -d lists them."""
    dynamic = subprocess.run(["readelf", "-d", str(library)], check=True, capture_output=True, text=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)


@pytest.mark.skipif(shutil.which("readelf") is None, reason="readelf (binutils) is not installed")
def test_package_links_neither_mpi_nor_nccl():
    libraries = sorted(PACKAGE.glob("*.so"))
    assert {p.name for p in libraries} >= {"libembedkit.so"}, libraries
    for library in libraries:
        needed = needed_libraries(library)
        assert needed, f"{library}: no NEEDED entries read"
        linked = [name for name in needed if re.search(r"nccl|mpi|cudart\.so", name)]
        assert not linked, f"{library.name} links {linked} (all of it: {needed})"


def test_placement_says_why_in_words():
    table = embedkit.Embedding(10, 4)
    placement = table.placement
    if os.environ.get("EMBEDKIT_TEST_CUDA_BUILD") == "1":  # the cuda lane's wheel must be the one tested
        assert placement["reason_code"] != "cuda_not_built", f"{embedkit.__file__}: {placement}"
    if placement["reason_code"] == "cuda_not_built":  # a CPU-only wheel, as the python lane builds
        assert placement["device"] == "cpu"
        assert "built without CUDA" in placement["reason"]
        return
    devices, driver = probe()
    if devices == 0 and os.environ.get("EMBEDKIT_DEVICE", "") in ("", "auto"):
        assert placement["device"] == "cpu", placement
        assert placement["reason_code"] == "no_cuda_device", placement
        reason = placement["reason"]
        # "no CUDA device is usable (no NVIDIA driver is loaded, ...; cudaErrorInsufficientDriver: ...)"
        assert re.search(r"\bno CUDA device\b", reason), reason
        assert re.search(r"\bcudaError\w+", reason), f"the CUDA error code is missing: {reason}"
        assert reason.index("cudaError") > reason.index("CUDA device"), f"the words come first: {reason}"
        if "cudaErrorInsufficientDriver" in reason:
            assert "no NVIDIA driver" in reason, reason
    elif devices > 0:
        assert placement["reason_code"] != "no_cuda_device", f"{driver}, yet {placement}"


# Imported in a fresh interpreter: the order of loading decides whether two libnccl.so.2 collide.
TORCH_SCRIPT = """
import {first}, {second}
import torch, embedkit, embedkit.torch
module = embedkit.torch.Embedding(10, 4)
out = module(torch.tensor([[1, 2], [3, 0]]))
assert tuple(out.shape) == (2, 2, 4), out.shape
out.sum().backward()
print(torch.__version__, torch.version.cuda, module.table.placement["device"], module.table.placement["reason"])
"""


@pytest.mark.parametrize("first, second", [("embedkit", "torch"), ("torch", "embedkit")])
def test_embedkit_torch_imports_beside_torch(first, second):
    pytest.importorskip("torch")
    result = subprocess.run(
        [sys.executable, "-c", TORCH_SCRIPT.format(first=first, second=second)], capture_output=True, text=True
    )
    assert result.returncode == 0, f"import {first} before {second}:\n{result.stderr}"
    print(result.stdout)
