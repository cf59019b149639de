"""``module.weight`` for a table PyTorch cannot view in place: a copy that refuses to be written.

A CPU table's ``weight`` is its memory itself (a DLPack view), so writes reach the table. A table
in device memory cannot be viewed that way yet; its ``weight`` is a copy, and an in-place change of
a copy would silently not reach the table. This tensor subclass raises instead, naming how to write
(``set_weight``). Results computed from it carry the refusal too (``w[0]``, ``w.data`` and
``w.detach()`` are views whose changes would be lost the same way); ``clone()`` gives a plain tensor.
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
        if name == "clone":
            with _no_subclass():
                return func(*args, **kwargs)
        result = super().__torch_function__(func, types, args, kwargs)
        if isinstance(result, ReadOnlyWeight):
            source = next((a for a in args if isinstance(a, ReadOnlyWeight)), None)
            if source is not None:
                result._embedkit_table = source._embedkit_table
                result._embedkit_device = source._embedkit_device
        return result


def read_only_copy(values: torch.Tensor, table: str, device: str) -> ReadOnlyWeight:
    """``values`` (a copy of table ``table``'s weights on ``device``) as a ReadOnlyWeight."""
    weight = values.as_subclass(ReadOnlyWeight)
    weight._embedkit_table = table
    weight._embedkit_device = device
    return weight
