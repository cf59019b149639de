"""The exceptions embedkit raises: one class per C ABI status, each also a built-in exception.

Every failed call of the C ABI raises one of these with the ABI's message (which names the bad
value and its position) and its status, so ``except IndexError`` and ``except embedkit.Error``
both work. A failed call leaves the table, and any ``out=`` array, unchanged.
"""
from __future__ import annotations


class Error(Exception):
    """A failed embedkit call: ``status`` is the C ABI's ek_status value, ``status_name`` its name."""

    status: int
    status_name: str

    def __init__(self, message: str, status: int, status_name: str) -> None:
        super().__init__(message)
        self.status = status
        self.status_name = status_name


class InvalidArgumentError(Error, ValueError):
    """EK_INVALID_ARGUMENT: a bad argument, config, offset or stride."""


class OutOfRangeError(Error, IndexError):
    """EK_OUT_OF_RANGE: an id outside [0, input_dim), e.g. ``indices[3,7] = 15000 is not in [0, 10000)``."""


class ShapeMismatchError(Error, ValueError):
    """EK_SHAPE_MISMATCH: an array whose shape is not the one the call needs."""


class DtypeMismatchError(Error, TypeError):
    """EK_DTYPE_MISMATCH: an array of the wrong element type."""


class OutOfMemoryError(Error, MemoryError):
    """EK_OUT_OF_MEMORY: not enough memory (checked before allocating)."""


class UnsupportedError(Error, NotImplementedError):
    """EK_UNSUPPORTED: valid, but not available in this build, on this machine or in embedkit."""


class CheckpointError(Error, OSError):
    """EK_IO_ERROR: a checkpoint file could not be read or written."""


class InternalError(Error, RuntimeError):
    """EK_INTERNAL: a broken invariant inside embedkit (a bug: please report it)."""


class BusyError(Error, RuntimeError):
    """EK_BUSY: the table is in use in a way the call cannot wait out, e.g. ``migrate`` while a
    tensor viewing its weights (``module.weight``) is alive."""


_BY_STATUS: dict[int, type[Error]] = {
    1: InvalidArgumentError,
    2: OutOfRangeError,
    3: ShapeMismatchError,
    4: DtypeMismatchError,
    5: OutOfMemoryError,
    6: UnsupportedError,
    7: CheckpointError,
    8: InternalError,
    9: BusyError,
}


_STATUS_OF: dict[str, int] = {
    "EK_INVALID_ARGUMENT": 1,
    "EK_OUT_OF_RANGE": 2,
    "EK_SHAPE_MISMATCH": 3,
    "EK_DTYPE_MISMATCH": 4,
    "EK_OUT_OF_MEMORY": 5,
    "EK_UNSUPPORTED": 6,
    "EK_IO_ERROR": 7,
    "EK_INTERNAL": 8,
    "EK_BUSY": 9,
}


def error_for(status: int, status_name: str, message: str) -> Error:
    """The exception for a failed C ABI call (called by the extension module)."""
    return _BY_STATUS.get(status, InternalError)(message, status, status_name)


def refusal(status_name: str, message: str) -> Error:
    """The exception the C ABI would give, for an input the package refuses before calling it."""
    return error_for(_STATUS_OF[status_name], status_name, message)
