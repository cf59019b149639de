"""``module.weight`` as a tensor whose writes reach the table or raise, never vanish.

A CPU table's ``weight`` is its memory itself (a DLPack view), so in-place writes reach the table;
``weight.data = x``, which would only rebind that one tensor, copies ``x`` into the table instead
(TableWeight). A table in device memory cannot be viewed that way yet; its ``weight`` is a copy,
and an in-place change of a copy would silently not reach the table: ReadOnlyWeight raises instead,
naming how to write (``set_weight``). Views of it (``w[0]``, ``w.data``, ``w.detach()``) refuse
too; tensors computed from it (``w * 2``, ``w.cpu()``, ``w.clone()``) are plain and the user's.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import torch

# In-place operations spelled without a trailing underscore.
_IN_PLACE_DUNDERS = frozenset({
    "__setitem__", "__set__", "__iadd__", "__isub__", "__imul__", "__itruediv__", "__ifloordiv__",
    "__imod__", "__ipow__", "__iand__", "__ior__", "__ixor__", "__ilshift__", "__irshift__", "__imatmul__",
})
# Trailing-underscore methods that change no value.
_HARMLESS = frozenset({"requires_grad_", "retain_grad", "share_memory_", "pin_memory"})


def _no_subclass() -> Any:
    """The context in which torch functions see plain tensors (its name changed in PyTorch 2.0)."""
    disable = getattr(torch._C, "DisableTorchFunctionSubclass", None) or torch._C.DisableTorchFunction
    return disable()


def _storage_pointer(tensor: torch.Tensor) -> int:
    storage = tensor.untyped_storage() if hasattr(tensor, "untyped_storage") else tensor.storage()
    return storage.data_ptr()


def _is_data_setter(func: Callable[..., Any]) -> bool:
    """Whether ``func`` is ``Tensor.data``'s setter (``tensor.data = x``)."""
    return getattr(func, "__name__", "") == "__set__" and getattr(getattr(func, "__self__", None), "__name__", "") == "data"


class TableWeight(torch.Tensor):
    """A CPU table's weights in place. Every operation runs on the plain tensor (views alias the
    table's memory, so in-place writes reach it); ``weight.data = x`` copies ``x`` into the table."""

    _embedkit_table: Any = None

    @classmethod
    def __torch_function__(
        cls, func: Callable[..., Any], types: Tuple[type, ...], args: Tuple[Any, ...] = (),
        kwargs: Optional[Dict[str, Any]] = None,
    ) -> Any:
        if _is_data_setter(func) and isinstance(args[0], TableWeight):
            args[0]._embedkit_table.set_weights(torch.as_tensor(args[1]).detach().contiguous())
            return None
        with _no_subclass():
            return func(*args, **(kwargs or {}))


def table_weight(view: torch.Tensor, table: Any) -> TableWeight:
    """``view`` (a DLPack view of ``table``'s weights) as a TableWeight."""
    weight = view.as_subclass(TableWeight)
    weight._embedkit_table = table
    return weight


def _writes(name: str, kwargs: Dict[str, Any]) -> bool:
    if name in _HARMLESS:
        return False
    if name in _IN_PLACE_DUNDERS or (name.endswith("_") and not name.endswith("__")):
        return True
    out = kwargs.get("out")
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return any(isinstance(tensor, ReadOnlyWeight) for tensor in outs)


class ReadOnlyWeight(torch.Tensor):
    """A copy of a device table's weights whose in-place modification raises ``RuntimeError``."""

    _embedkit_table: str = "?"
    _embedkit_device: str = "?"

    @classmethod
    def __torch_function__(
        cls, func: Callable[..., Any], types: Tuple[type, ...], args: Tuple[Any, ...] = (),
        kwargs: Optional[Dict[str, Any]] = None,
    ) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if _writes(name, kwargs):
            source = next((a for a in args if isinstance(a, ReadOnlyWeight)), None)
            table = getattr(source, "_embedkit_table", cls._embedkit_table)
            device = getattr(source, "_embedkit_device", cls._embedkit_device)
            raise RuntimeError(
                f"{name}: this weight is a copy of table '{table}', which lives on {device}; an in-place change "
                f"would not reach the table. Write it with module.set_weight(new_weight) (or move the module "
                f"to the CPU, where .weight is the table's memory)"
            )
        source = next((a for a in args if isinstance(a, ReadOnlyWeight)), None)
        with _no_subclass():
            result = func(*args, **kwargs)
        # Views of the copy stay read-only (their changes would be lost with it); new tensors are plain.
        if isinstance(result, torch.Tensor) and source is not None and result.numel() > 0 and \
                _storage_pointer(result) == _storage_pointer(source):
            result = read_only_copy(result, source._embedkit_table, source._embedkit_device)
        return result


def read_only_copy(values: torch.Tensor, table: str, device: str) -> ReadOnlyWeight:
    """``values`` (a copy of table ``table``'s weights on ``device``) as a ReadOnlyWeight."""
    weight = values.as_subclass(ReadOnlyWeight)
    weight._embedkit_table = table
    weight._embedkit_device = device
    return weight
