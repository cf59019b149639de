"""How Python values become the arrays the C ABI borrows, and how results are allocated."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np


def as_input(value: Any, dtype: Optional[type] = None) -> Any:
    """``value`` itself when it exports DLPack or a buffer (borrowed, never copied); a NumPy array of
    ``dtype`` made from it otherwise (Python lists, scalars)."""
    if hasattr(value, "__dlpack__") or isinstance(value, (memoryview, bytearray)):
        return value
    return np.asarray(value, dtype=dtype)


def shape_of(array: Any) -> Tuple[int, ...]:
    """The shape of a NumPy, PyTorch, JAX or CuPy array (all of them have ``.shape``)."""
    return tuple(int(extent) for extent in array.shape)


def as_output(value: Any) -> Any:
    """``value`` for the library to write into, refusing JAX arrays: they are immutable, but their
    DLPack export does not say so, and writing into one would change a value JAX may share."""
    if type(value).__module__.split(".")[0] in ("jax", "jaxlib"):
        raise ValueError("out is a JAX array, which is immutable; pass a NumPy, PyTorch or CuPy array, "
                         "or use the returned NumPy array")
    return value
