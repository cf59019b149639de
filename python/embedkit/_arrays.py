"""How Python values become the arrays the C ABI borrows, and how results are allocated."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from ._errors import refusal


def _wanted(dtype: Optional[type]) -> str:
    """The C ABI's words for the dtypes an argument takes."""
    return "int32 or int64" if dtype is not None and np.issubdtype(dtype, np.integer) else "float32"


def as_input(value: Any, dtype: Optional[type] = None, name: str = "indices") -> Any:
    """``value`` itself when it exports DLPack or a buffer (borrowed, never copied); a NumPy array
    made from it otherwise (Python lists, scalars): of ``dtype`` when its values are of that kind
    (integers for ids, numbers for floats), else as NumPy reads them, so the C ABI refuses a list
    of floats given as ids as it refuses an array of them, instead of truncating it. Tensors that
    cannot cross DLPack (meta tensors; bool tensors on PyTorch before 2.x) are refused here in
    words naming their device or dtype."""
    if hasattr(value, "__dlpack__"):
        if getattr(value, "is_meta", False) or str(getattr(value, "device", "")) == "meta":
            raise refusal("EK_INVALID_ARGUMENT",
                          f"{name} is a meta tensor, which holds no data; pass a tensor on the CPU or a CUDA device")
        if str(getattr(value, "dtype", "")) == "torch.bool":
            raise refusal("EK_DTYPE_MISMATCH", f"{name} must be {_wanted(dtype)}, got bool")
        return value
    if isinstance(value, (memoryview, bytearray)):
        return value
    array = np.asarray(value)
    if dtype is None or array.size == 0:
        return array.astype(dtype) if dtype is not None else array
    integral = np.issubdtype(dtype, np.integer)
    convertible = array.dtype.kind in "iu" if integral else array.dtype.kind in "iuf"
    return array.astype(dtype) if convertible else array


def shape_of(array: Any) -> Tuple[int, ...]:
    """The shape of a NumPy, PyTorch, JAX or CuPy array (all of them have ``.shape``)."""
    return tuple(int(extent) for extent in array.shape)


def as_output(value: Any) -> Any:
    """``value`` for the library to write into, refusing JAX arrays: they are immutable, but their
    DLPack export does not say so, and writing into one would change a value JAX may share. A
    PyTorch tensor that requires grad is refused as torch refuses an in-place write on it while
    autograd records (the library's write would be invisible to autograd); under ``torch.no_grad()``
    it is written, as torch would write it."""
    if type(value).__module__.split(".")[0] in ("jax", "jaxlib"):
        raise ValueError("out is a JAX array, which is immutable; pass a NumPy, PyTorch or CuPy array, "
                         "or use the returned NumPy array")
    if getattr(value, "requires_grad", False):
        import torch  # a tensor that requires grad is a torch tensor: torch is importable

        if torch.is_grad_enabled():
            if value.is_leaf:
                raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
            raise RuntimeError("out requires grad: embedkit's write into it would be invisible to autograd; "
                               "pass a tensor that does not require grad")
        return value.detach()
    return value


def cuda_stream(stream: Any, *arrays: Any) -> Optional[int]:
    """The CUDA stream a call runs on, as an int ``cudaStream_t`` (0: CUDA's legacy default
    stream), or ``None`` when the call names none. ``stream`` is ``None``, an int, or a stream
    object with ``cuda_stream`` (PyTorch) or ``ptr`` (CuPy). Given ``None``, a call on PyTorch CUDA
    tensors runs on PyTorch's current stream of their device, as PyTorch's own operations do;
    other CUDA arrays are then exported for CUDA's legacy default stream, as DLPack prescribes."""
    if stream is not None:
        handle = getattr(stream, "cuda_stream", getattr(stream, "ptr", stream))
        if isinstance(handle, bool) or not isinstance(handle, int) or handle < 0:
            raise TypeError(f"stream must be a CUDA stream (an int cudaStream_t, or an object with cuda_stream or "
                            f"ptr), got {type(stream).__name__}")
        return handle
    for array in arrays:
        if getattr(array, "is_cuda", False) and type(array).__module__.split(".")[0] == "torch":
            import torch  # a torch tensor: torch is importable

            return int(torch.cuda.current_stream(array.device).cuda_stream)
    return None
