"""The optimizer of ``embedkit.torch`` modules as PyTorch sees it: a ``torch.optim.Optimizer``.

The update math runs inside embedkit (fused into backward, or at ``step()`` when accumulating); this
class is how PyTorch's tools reach it. Each table is one param group holding the module's empty
``anchor`` parameter, whose ``lr`` is read again before every step it applies, so
``torch.optim.lr_scheduler`` schedules work; every applied step goes through ``step()``, so step
hooks and schedulers see it; ``state_dict()`` / ``load_state_dict()`` carry the tables' optimizer
state and step counts.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from ._arrays import cuda_stream
from ._errors import refusal
from .embedding import Embedding as _Table

# One batch's gradient waiting for step(): ("plain", ids, grad) or ("pooled", ids, csr, weights, mode, grad).
_Batch = Tuple[Any, ...]


class FusedOptimizer(torch.optim.Optimizer):
    """The sparse optimizer of one or more embedkit tables, as a ``torch.optim.Optimizer``.

    With ``step_in_backward`` (the default), each backward of a module hands its gradient here and
    calls ``step()`` at once, so the table has moved when ``loss.backward()`` returns; a later
    ``step()`` by the training loop finds nothing pending and does nothing. Without it, backward
    only keeps the gradient; ``step()`` applies everything kept since the last step as one
    optimizer step per table (one fold of all the batches), after ``clip_grad_norm_`` if wanted.
    """

    def __init__(self, params: Sequence[torch.nn.Parameter], tables: Sequence[_Table], step_in_backward: bool = True):
        if len(params) != len(tables) or not tables:
            raise ValueError("FusedOptimizer needs one anchor parameter per table, and at least one table")
        self._tables: List[_Table] = list(tables)
        self._step_in_backward = step_in_backward
        self._pending: List[List[_Batch]] = [[] for _ in tables]
        self._folded: List[Optional[Tuple[torch.Tensor, torch.Tensor]]] = [None for _ in tables]
        self._applied_lr: List[float] = [table.learning_rate for table in tables]
        groups = [{"params": [param], "lr": lr} for param, lr in zip(params, self._applied_lr)]
        super().__init__(groups, {"lr": self._applied_lr[0]})

    # ---------------------------------------------------------------------------------------------
    # What backward calls

    def _backward(self, index: int, batch: _Batch) -> Optional[torch.Tensor]:
        """Takes one backward's gradient for table ``index``; steps now unless accumulating. Returns
        the anchor's gradient: none when stepping now; when accumulating an empty marker, so that
        ``zero_grad(set_to_none=True)`` on the model (or any optimizer holding the anchor), which
        clears it, is seen here and drops the batches kept before it, as it drops dense gradients."""
        if self._step_in_backward:
            self._pending[index].append(batch)
            self.step()  # the instance's step: the one hooks and schedulers have wrapped
            return None
        if self._pending[index] and self._cleared(index):
            self._pending[index], self._folded[index] = [], None
        self._pending[index].append(batch)
        anchor = self.param_groups[index]["params"][0]
        return torch.zeros(0, dtype=anchor.dtype, device=anchor.device)  # where autograd expects it

    def _cleared(self, index: int) -> bool:
        """Whether the anchor's gradient marker was cleared since the kept batches set it."""
        return self.param_groups[index]["params"][0].grad is None

    def _drop(self, index: int) -> None:
        self._pending[index], self._folded[index] = [], None

    # ---------------------------------------------------------------------------------------------
    # torch.optim.Optimizer

    @property
    def step_in_backward(self) -> bool:
        """Whether backward applies the step itself (True) or keeps the gradient for ``step()``."""
        return self._step_in_backward

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """Applies every gradient kept since the last step, one optimizer step per table that has
        any, at each group's current ``lr``; nothing when none is pending. ``closure``, if given,
        is called first (with gradients enabled) and its loss returned."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for index, table in enumerate(self._tables):
            if not self._step_in_backward and self._cleared(index):
                self._drop(index)  # zero_grad(set_to_none=True) since the last backward
            if not self._pending[index] and self._folded[index] is None:
                continue
            self._sync_learning_rate(index)
            batches, folded = self._pending[index], self._folded[index]
            self._pending[index], self._folded[index] = [], None
            if folded is not None:
                if batches:
                    folded = self._merge(index, folded, self._fold(index, batches))
                table._table.apply_sparse_grad(*folded)
            else:
                self._apply_batches(table, batches)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drops the gradients kept for ``step()`` (none exist with ``step_in_backward``), and the
        anchors' (always empty) ``.grad``. ``model.zero_grad()`` drops them too when it sets
        gradients to None (torch 2's default)."""
        self._pending = [[] for _ in self._tables]
        self._folded = [None for _ in self._tables]
        super().zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> Dict[str, Any]:
        """PyTorch's layout: ``state[i]`` holds table i's ``step`` and each optimizer state array
        (e.g. ``accumulator`` for Adagrad, ``momentum`` and ``velocity`` for Adam) as CPU float32
        tensors; ``param_groups[i]`` its ``lr``. Gradients kept for ``step()`` are not in it."""
        for hook in getattr(self, "_optimizer_state_dict_pre_hooks", {}).values():
            hook(self)
        state: Dict[int, Dict[str, torch.Tensor]] = {}
        for index, table in enumerate(self._tables):
            entry: Dict[str, torch.Tensor] = {"step": torch.tensor(float(table.step))}
            for name in table._table.optimizer_state_names():
                entry[name] = torch.from_numpy(table.optimizer_state(name))
            state[index] = entry
        groups = []
        for index, group in enumerate(self.param_groups):
            saved = {key: value for key, value in group.items() if key != "params"}
            saved["params"] = [index]
            groups.append(saved)
        result: Dict[str, Any] = {"state": state, "param_groups": groups}
        for hook in getattr(self, "_optimizer_state_dict_post_hooks", {}).values():
            changed = hook(self, result)
            result = changed if changed is not None else result
        return result

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restores every table's optimizer state and step, and the groups' ``lr`` (and any other
        key a scheduler added), from ``state_dict()``'s layout. Everything is checked before any
        table changes; a mismatch raises ``ValueError`` naming the table and the array."""
        for hook in getattr(self, "_optimizer_load_state_dict_pre_hooks", {}).values():
            changed = hook(self, state_dict)
            state_dict = changed if changed is not None else state_dict
        groups = state_dict.get("param_groups")
        state = state_dict.get("state")
        if not isinstance(groups, list) or not isinstance(state, dict):
            raise ValueError("an optimizer state_dict holds 'state' (a dict) and 'param_groups' (a list)")
        if len(groups) != len(self._tables):
            raise ValueError(
                f"loaded state dict has {len(groups)} parameter groups; this optimizer has {len(self._tables)} "
                f"(one per table)"
            )
        restores = []
        for index, table in enumerate(self._tables):
            entry = state.get(index, state.get(str(index), {}))
            names = table._table.optimizer_state_names()
            unknown = sorted(set(entry) - set(names) - {"step"})
            if unknown:
                raise refusal("EK_INVALID_ARGUMENT",
                              f"table '{table.name}' has no optimizer state {unknown[0]!r} "
                              f"(it keeps: {', '.join(names) or 'nothing but its step'})")
            missing = [name for name in names + ["step"] if name not in entry]
            if missing:
                raise refusal("EK_INVALID_ARGUMENT",
                              f"the state dict holds no {missing[0]!r} for table '{table.name}' (param group {index})")
            step = float(entry["step"])
            if not step.is_integer() or step < 0:
                raise refusal("EK_INVALID_ARGUMENT", f"table '{table.name}': step must be an integer >= 0, got {step}")
            arrays = [torch.as_tensor(entry[name]).detach().to("cpu", torch.float32).contiguous() for name in names]
            restores.append((table, int(step), names, arrays))
        # The C ABI checks each table's arrays (shapes); a table that refuses leaves the others
        # unchanged only if it is the first, so every table's arrays are checked against its shapes first.
        for table, _, names, arrays in restores:
            for name, array in zip(names, arrays):
                expected = tuple(table.optimizer_state(name).shape)
                if tuple(array.shape) != expected:
                    raise refusal("EK_SHAPE_MISMATCH",
                                  f"table '{table.name}': optimizer state '{name}' has shape {expected}, "
                                  f"got shape {tuple(array.shape)}")
        for table, step, names, arrays in restores:
            table._table.set_optimizer_state(step, names, arrays)
        for group, saved in zip(self.param_groups, groups):
            group.update({key: value for key, value in saved.items() if key != "params"})
        self._pending = [[] for _ in self._tables]
        self._folded = [None for _ in self._tables]
        for hook in getattr(self, "_optimizer_load_state_dict_post_hooks", {}).values():
            hook(self)

    # ---------------------------------------------------------------------------------------------
    # Gradient norms (accumulating mode)

    def sparse_grad_norm(self, norm_type: float = 2.0) -> torch.Tensor:
        """The ``norm_type`` norm of the gradient ``step()`` would apply, over every table: each
        id's gradient rows summed (duplicates folded) as the step sums them. Folds what is pending;
        needs ``step_in_backward=False`` (with it, nothing is ever pending)."""
        if self._step_in_backward:
            raise RuntimeError(
                "sparse_grad_norm needs step_in_backward=False: with the step fused into backward the table "
                "has already moved and no gradient is kept (torch.nn.utils.clip_grad_norm_ sees 0.0 there)"
            )
        norms = []
        for index in range(len(self._tables)):
            if self._cleared(index):
                self._drop(index)
            if self._pending[index]:
                fresh = self._fold(index, self._pending[index])
                self._pending[index] = []
                previous = self._folded[index]
                self._folded[index] = fresh if previous is None else self._merge(index, previous, fresh)
            if self._folded[index] is not None:
                norms.append(torch.linalg.vector_norm(self._folded[index][1], norm_type))
        if not norms:
            return torch.tensor(0.0)
        return torch.linalg.vector_norm(torch.stack(norms), norm_type)

    def clip_grad_norm_(self, max_norm: float, norm_type: float = 2.0) -> torch.Tensor:
        """As ``torch.nn.utils.clip_grad_norm_`` for the tables' kept gradient: scales it by
        ``max_norm / (norm + 1e-6)`` when that is below 1, and returns the norm before clipping."""
        total = self.sparse_grad_norm(norm_type)
        scale = float(max_norm) / (float(total) + 1e-6)
        if scale < 1.0 or math.isnan(scale):  # a NaN norm makes the gradient NaN, as torch's clip does
            for folded in self._folded:
                if folded is not None:
                    folded[1].mul_(scale)
        return total

    # ---------------------------------------------------------------------------------------------

    def _sync_learning_rate(self, index: int) -> None:
        lr = self.param_groups[index]["lr"]
        if isinstance(lr, torch.Tensor):
            lr = float(lr)
        if lr != self._applied_lr[index]:
            if not math.isfinite(lr) or lr < 0:
                raise ValueError(f"param group {index}: lr must be a finite number >= 0, got {lr}")
            self._tables[index].learning_rate = lr
            self._applied_lr[index] = lr

    @staticmethod
    def _concatenate(batches: List[_Batch]) -> _Batch:
        """The batches as one batch of the same kind: ids, bags and gradients end to end."""
        kind = batches[0][0]
        if len(batches) == 1:
            return batches[0]
        if kind == "plain":
            return ("plain", torch.cat([b[1] for b in batches]), torch.cat([b[2] for b in batches]))
        ids = torch.cat([b[1] for b in batches])
        shifted, start = [], 0
        for b in batches:
            shifted.append(b[2][:-1] + start)
            start += int(b[1].shape[0])
        csr = torch.cat(shifted + [torch.tensor([start], dtype=torch.int64, device=ids.device)])
        if all(b[3] is None for b in batches):
            weights = None
        else:
            weights = torch.cat([b[3] if b[3] is not None else torch.ones(b[1].shape[0], device=ids.device)
                                 for b in batches])
        return ("pooled", ids, csr, weights, batches[0][4], torch.cat([b[5] for b in batches]))

    def _apply_batches(self, table: _Table, batches: List[_Batch]) -> None:
        """One train step of the batches together: duplicates across batches folded once."""
        batch = self._concatenate(batches)
        # On CUDA tensors the step runs on PyTorch's current stream, after the backward pass that made them.
        if batch[0] == "plain":
            table._table.train_step(batch[1], batch[2], cuda_stream(None, batch[1], batch[2]))
        else:
            table._table.train_step_pooled(batch[1], batch[2], batch[3], batch[4], batch[5],
                                           cuda_stream(None, batch[1], batch[2], batch[5]))

    def _fold(self, index: int, batches: List[_Batch]) -> Tuple[torch.Tensor, torch.Tensor]:
        batch = self._concatenate(batches)
        table = self._tables[index]._table
        if batch[0] == "plain":
            return table.sparse_grad_new(batch[1], batch[2], "torch", cuda_stream(None, batch[1], batch[2]))
        return table.sparse_grad_pooled_new(batch[1], batch[2], batch[3], batch[4], batch[5], "torch",
                                            cuda_stream(None, batch[1], batch[2], batch[5]))

    def _merge(self, index: int, first: Tuple[torch.Tensor, torch.Tensor],
               second: Tuple[torch.Tensor, torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Two folded gradients as one: a plain fold of their rows (ids in both are summed)."""
        ids = torch.cat([first[0], second[0]])
        rows = torch.cat([first[1], second[1]])
        return self._tables[index]._table.sparse_grad_new(ids, rows, "torch")

    def __getstate__(self) -> Dict[str, Any]:
        state = super().__getstate__()
        state.update({"_tables": self._tables, "_step_in_backward": self._step_in_backward,
                      "_applied_lr": self._applied_lr})
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        super().__setstate__(state)
        self._pending = [[] for _ in self._tables]
        self._folded = [None for _ in self._tables]

    def __repr__(self) -> str:
        tables = ", ".join(f"'{table.name}'" for table in self._tables)
        groups = ", ".join(f"lr={group['lr']}" for group in self.param_groups)
        return f"FusedOptimizer(tables=[{tables}], {groups}, step_in_backward={self._step_in_backward})"
