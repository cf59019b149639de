"""The CUDA stream a call names reaches the producer of its CUDA arrays (DLPack's consumer stream).

No GPU runs here: a NumPy array that says it lives on a CUDA device stands in for a CuPy or PyTorch
CUDA array. Its ``__dlpack_device__`` says kDLCUDA and its ``__dlpack__`` records the stream it is
asked to order its work on, then exports its host memory, so the call itself runs on the CPU table.
"""
import numpy as np
import pytest

import embedkit
from embedkit._arrays import cuda_stream

KDL_CUDA = 2


class CudaLike:
    """A host array posing as a CUDA array: records each ``__dlpack__(stream=...)`` it gets."""

    def __init__(self, array):
        self.array = np.ascontiguousarray(array)
        self.streams = []
        self.shape = self.array.shape

    def __dlpack_device__(self):
        return (KDL_CUDA, 0)

    def __dlpack__(self, stream=None, **kwargs):
        self.streams.append(stream)
        return self.array.__dlpack__()


def _table():
    return embedkit.Embedding(20, 4, placement="cpu", optimizer={"class_name": "SGD", "config": {"learning_rate": 0.5}})


def test_a_named_stream_is_the_consumer_stream_of_every_cuda_array():
    table = _table()
    ids = CudaLike(np.array([3, 1, 3], dtype=np.int64))
    out = CudaLike(np.zeros((3, 4), dtype=np.float32))
    table(ids, out=out, stream=0x5000)
    assert ids.streams == [0x5000] and out.streams == [0x5000]
    np.testing.assert_array_equal(out.array, table(np.array([3, 1, 3])))

    csr = CudaLike(np.array([0, 2, 3], dtype=np.int64))
    pooled = CudaLike(np.zeros((2, 4), dtype=np.float32))
    table.pooled(ids, csr, "sum", out=pooled, stream=0x5000)
    assert csr.streams == [0x5000] and pooled.streams == [0x5000]
    np.testing.assert_array_equal(pooled.array, table.pooled(np.array([3, 1, 3]), np.array([0, 2, 3]), "sum"))


def test_the_legacy_default_stream_is_named_as_dlpack_names_it():
    table = _table()
    ids = CudaLike(np.array([2], dtype=np.int64))
    grad = CudaLike(np.ones((1, 4), dtype=np.float32))
    before = table.get_weights()[0][2].copy()
    table.train_step(ids, grad, stream=0)  # cudaStream_t 0: the legacy default stream, DLPack's 1
    assert ids.streams == [1] and grad.streams == [1]
    np.testing.assert_allclose(table.get_weights()[0][2], before - 0.5)


def test_calls_that_allocate_their_output_name_the_stream_too():
    table = _table()
    ids = CudaLike(np.array([3, 1, 3], dtype=np.int64))
    rows = table(ids, stream=0x6000)  # a new host array: the ids are still read on the stream
    assert ids.streams == [0x6000]
    np.testing.assert_array_equal(rows, table(np.array([3, 1, 3])))
    csr = CudaLike(np.array([0, 1, 3], dtype=np.int64))
    bags = table.pooled(np.array([3, 1, 3]), csr, "mean", stream=0x6000)  # only the offsets are CUDA
    assert csr.streams == [0x6000]
    np.testing.assert_array_equal(bags, table.pooled(np.array([3, 1, 3]), np.array([0, 1, 3]), "mean"))
    masked = embedkit.Embedding(20, 4, placement="cpu", mask_zero=True)
    zero_ids = CudaLike(np.array([0, 5], dtype=np.int64))
    mask = masked.compute_mask(zero_ids, stream=0x6000)
    assert zero_ids.streams == [0x6000]
    np.testing.assert_array_equal(mask, [False, True])


def test_without_a_stream_the_producer_is_asked_for_none():
    table = _table()
    ids = CudaLike(np.array([4, 5], dtype=np.int64))
    out = np.zeros((2, 4), dtype=np.float32)
    table(ids, out=out)
    assert all(stream is None for stream in ids.streams)


def test_host_arrays_are_not_asked_for_a_stream():
    table = _table()
    ids = np.array([1, 2], dtype=np.int64)
    out = np.zeros((2, 4), dtype=np.float32)
    table(ids, out=out, stream=0x5000)  # host arrays: nothing to order; the call still runs
    np.testing.assert_array_equal(out, table(ids))


class _TorchLikeStream:
    cuda_stream = 0x7000


class _CupyLikeStream:
    ptr = 0x9000


def test_stream_objects_and_their_refusals():
    assert cuda_stream(None) is None
    assert cuda_stream(_TorchLikeStream()) == 0x7000
    assert cuda_stream(_CupyLikeStream()) == 0x9000
    assert cuda_stream(12) == 12
    for bad in ("default", -1, True, 1.5):
        with pytest.raises(TypeError, match="stream must be a CUDA stream"):
            cuda_stream(bad)
