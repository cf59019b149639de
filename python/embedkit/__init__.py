"""embedkit: embedding tables for Keras and PyTorch users.

``embedkit.Embedding`` is a Keras-style embedding layer whose table (weights and optimizer state)
lives in embedkit's C++ library; ``embedkit.torch`` (when PyTorch is importable) wraps it as
``torch.nn`` modules whose backward runs the sparse optimizer step; ``embedkit.keras`` (when Keras is
importable) is a Keras 3 layer over it, trained in the backward pass too. Arrays cross through DLPack
without copies. Failed calls raise ``embedkit.Error`` subclasses that are also the matching
built-in exceptions, and change nothing.
"""
from __future__ import annotations

from . import _embedkit
from ._errors import (
    BusyError,
    CheckpointError,
    DtypeMismatchError,
    Error,
    InternalError,
    InvalidArgumentError,
    OutOfMemoryError,
    OutOfRangeError,
    ShapeMismatchError,
    UnsupportedError,
)
from .embedding import Embedding


def set_output_cache_capacity(num_bytes: int) -> None:
    """Bytes of freed lookup outputs embedkit keeps mapped for the next call's output (default
    1 GiB, or the environment variable ``EMBEDKIT_OUTPUT_CACHE_BYTES``); 0 frees them and disables
    the cache. Outputs the library allocates (``Embedding(...)`` without ``out=``, the
    ``embedkit.torch`` modules' forward) come from it, so a loop reuses memory already paged in."""
    _embedkit.set_output_cache_capacity(int(num_bytes))


#: The version of the C library this package runs on (MAJOR.MINOR.PATCH).
__version__: str = _embedkit.version()

__all__ = [
    "BusyError",
    "CheckpointError",
    "DtypeMismatchError",
    "Embedding",
    "Error",
    "InternalError",
    "InvalidArgumentError",
    "OutOfMemoryError",
    "OutOfRangeError",
    "ShapeMismatchError",
    "UnsupportedError",
    "__version__",
    "set_output_cache_capacity",
]
