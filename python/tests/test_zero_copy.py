"""Zero copies: the memory the C library reads and writes is the caller's array itself.

A test-only interposer (c_abi_trace.c, compiled here and LD_PRELOADed into a child Python) records
the address every C ABI entry point was handed; the child prints the addresses of its own arrays
(NumPy's __array_interface__, PyTorch's data_ptr(), JAX's unsafe_buffer_pointer()), and the two
lists must agree. out= arrays are also checked to be filled in place and returned as they are.
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig

import numpy as np
import pytest

import embedkit

HERE = pathlib.Path(__file__).resolve().parent
REPOSITORY = HERE.parent.parent

CHILD = r'''
import json, sys
import numpy as np
import embedkit

def address(array):
    if isinstance(array, np.ndarray):
        return array.__array_interface__["data"][0]
    if hasattr(array, "data_ptr"):
        return array.data_ptr()
    return array.unsafe_buffer_pointer()

expected = []
def expect(function, **tensors):
    expected.extend([function, name, address(a)] for name, a in tensors.items())

table = embedkit.Embedding(10, 4, placement="cpu")

buffer = np.arange(12, dtype=np.int64) % 10
ids = buffer[2:8].reshape(2, 3)            # a view into the middle of another array's memory
out = np.empty((2, 3, 4), np.float32)
assert table(ids, out=out) is out
expect("ek_lookup_on_stream", indices=ids, out=out)

result = table(ids)                         # the default NumPy result is the array the library allocated
expect("ek_lookup_new_on_stream", indices=ids, out=result)

grad = np.ones((2, 3, 4), np.float32)
table.train_step(ids, grad)
expect("ek_train_step_on_stream", indices=ids, grad_out=grad)

bag_ids, offsets = np.array([1, 2, 3], np.int64), np.array([0, 1, 3], np.int64)
weights = np.array([1.0, 2.0, 0.5], np.float32)
pooled = table.pooled(bag_ids, offsets, "sum", weights)
expect("ek_lookup_pooled_new_on_stream", indices=bag_ids, offsets=offsets, per_sample_weights=weights, out=pooled)
pooled_into = np.empty((2, 4), np.float32)
assert table.pooled(bag_ids, offsets, "sum", weights, out=pooled_into) is pooled_into
expect("ek_lookup_pooled_on_stream", indices=bag_ids, offsets=offsets, per_sample_weights=weights, out=pooled_into)
bag_grad = np.ones((2, 4), np.float32)
table.train_step_pooled(bag_ids, offsets, bag_grad, "sum", weights)
expect("ek_train_step_pooled_on_stream", indices=bag_ids, offsets=offsets, per_sample_weights=weights, grad_out=bag_grad)

matrix = np.zeros((10, 4), np.float32)
table.set_weights(matrix)
expect("ek_set_weights", weights=matrix)
copy = table.embeddings
expect("ek_get_weights", out=copy)

masked = embedkit.Embedding(10, 4, mask_zero=True)
mask = np.empty((2, 3), np.bool_)
assert masked.compute_mask(ids, out=mask) is mask
expect("ek_compute_mask_on_stream", indices=ids, mask=mask)

if "torch" in sys.argv:
    import torch
    t_ids = torch.tensor([[1, 2], [3, 4]])
    t_out = torch.empty((2, 2, 4))
    assert table(t_ids, out=t_out) is t_out
    expect("ek_lookup_on_stream", indices=t_ids, out=t_out)
    t_grad = torch.ones((2, 2, 4))
    table.train_step(t_ids, t_grad)
    expect("ek_train_step_on_stream", indices=t_ids, grad_out=t_grad)
    import embedkit.torch as ek_torch
    module = ek_torch.Embedding(10, 4)
    t_rows = module(t_ids)                  # the module's output is the tensor the library allocated
    expect("ek_lookup_new_on_stream", indices=t_ids, out=t_rows)

if "jax" in sys.argv:
    import jax.numpy as jnp
    j_ids = jnp.array([[1, 2], [3, 4]], dtype=jnp.int32)
    j_out = table(j_ids)
    expect("ek_lookup_new_on_stream", indices=j_ids, out=j_out)
    j_grad = jnp.ones((2, 2, 4), dtype=jnp.float32)
    table.train_step(j_ids, j_grad)
    expect("ek_train_step_on_stream", indices=j_ids, grad_out=j_grad)

print(json.dumps(expected))
'''


def importable(name):
    try:
        __import__(name)
        return True
    except ImportError:
        return False


@pytest.fixture(scope="module")
def interposer(tmp_path_factory):
    compiler = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    compiler = compiler.split()[0]
    if shutil.which(compiler) is None:
        pytest.skip(f"no C compiler ({compiler}) to build the test interposer")
    library = tmp_path_factory.mktemp("trace") / "c_abi_trace.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-O1", f"-I{REPOSITORY / 'include'}", "-o", str(library),
                    str(HERE / "c_abi_trace.c"), "-ldl"], check=True)
    return library


def test_the_library_reads_and_writes_the_callers_memory(interposer, tmp_path):
    frameworks = [name for name in ("torch", "jax") if importable(name)]
    trace = tmp_path / "trace.txt"
    env = dict(os.environ, LD_PRELOAD=str(interposer), EK_TRACE_FILE=str(trace))
    child = subprocess.run([sys.executable, "-c", CHILD, *frameworks], env=env, capture_output=True, text=True)
    assert child.returncode == 0, child.stderr
    expected = [(function, name, address) for function, name, address in json.loads(child.stdout)]
    seen = []
    for line in trace.read_text().splitlines():
        function, name, address = line.split()
        seen.append((function, name, int(address, 16) if address != "(nil)" else 0))
    assert expected, "the child made no calls"
    assert seen == expected


def test_out_is_filled_in_place():
    table = embedkit.Embedding(10, 4, placement="cpu")
    out = np.full((3, 4), np.nan, np.float32)
    before = out.__array_interface__["data"][0]
    assert table(np.array([1, 2, 3]), out=out) is out
    assert out.__array_interface__["data"][0] == before
    np.testing.assert_array_equal(out, table.embeddings[[1, 2, 3]])
