"""embedkit.torch: ``torch.nn`` modules over embedkit tables, the optimizer fused into backward.

``Embedding`` and ``EmbeddingBag`` take PyTorch's arguments and inputs. Their forward runs
embedkit's lookup into a new tensor the library allocates (through DLPack, without copies; freed
back to embedkit's output cache, so a loop reuses paged-in memory); their backward hands the
upstream gradient to the table's sparse optimizer step (``train_step``/``train_step_pooled``), as
FBGEMM's table-batched embeddings do, so no dense gradient and no ``torch.optim`` state exists for
the table. A training loop calls ``loss.backward()`` as usual; the table has been updated when it
returns. The modules hold no weights as ``torch.nn.Parameter``s: only an empty ``anchor`` parameter
that makes autograd call the backward (``requires_grad_(False)`` freezes the table). Read or save
the weights through ``weight`` / ``set_weight`` or the underlying ``table`` (an ``embedkit.Embedding``);
``state_dict()`` holds exactly ``weight``, as torch's modules' do, and ``pickle``, ``torch.save`` and
``copy.deepcopy`` keep the whole table (placement, optimizer, its state and step).
Each backward is one optimizer step: a module called twice in one graph steps twice.

Importing this module needs PyTorch (1.10 or newer, for ``Tensor.__dlpack__``).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from ._arrays import as_input
from ._errors import refusal
from .embedding import Embedding as _Table, KerasObject

# PyTorch initialises embeddings from N(0, 1); so do these modules unless told otherwise.
_TORCH_INITIALIZER = {"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": 1.0}}


def _check_gradient_options(sparse: bool, scale_grad_by_freq: bool) -> None:
    """torch's ``sparse`` is accepted and means nothing here (the gradient never exists densely: the
    optimizer step runs inside backward); ``scale_grad_by_freq`` is refused rather than ignored."""
    del sparse
    if scale_grad_by_freq:
        raise NotImplementedError(
            "scale_grad_by_freq=True is not supported: embedkit sums the gradients of an id's "
            "occurrences in a batch; scale grad_out yourself, or pass scale_grad_by_freq=False"
        )


def _make_table(
    num_embeddings: int,
    embedding_dim: int,
    padding_idx: Optional[int],
    optimizer: KerasObject,
    lr: Optional[float],
    embeddings_initializer: KerasObject,
    seed: Optional[int],
    placement: str,
    name: str,
) -> _Table:
    if padding_idx is not None and padding_idx < 0:
        padding_idx += num_embeddings  # PyTorch's negative padding_idx counts from the end
    table = _Table(
        num_embeddings,
        embedding_dim,
        embeddings_initializer=embeddings_initializer,
        padding_idx=padding_idx,
        optimizer=optimizer,
        placement=placement,
        seed=seed,
        name=name,
    )
    if lr is not None:
        table.learning_rate = lr
    return table


class _Lookup(torch.autograd.Function):
    """forward: the gather; backward: the optimizer step on the gathered rows."""

    @staticmethod
    def forward(ctx: Any, anchor: torch.Tensor, table: _Table, indices: torch.Tensor) -> torch.Tensor:
        del anchor
        # PyTorch before 2.3 never calls the deleter of an empty DLPack tensor (its data is NULL),
        # so empty outputs are PyTorch's own.
        if indices.device.type == "cpu" and indices.numel() > 0:
            out = table._table.lookup_new(indices, "torch")
        else:
            out = torch.empty(tuple(indices.shape) + (table.output_dim,), dtype=torch.float32, device=indices.device)
            table(indices, out=out)
        ctx.table, ctx.indices = table, indices
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> Tuple[None, None, None]:
        ctx.table.train_step(ctx.indices, grad_out.contiguous())
        return None, None, None


class _PooledLookup(torch.autograd.Function):
    """forward: the pooled gather over CSR bags; backward: the pooled optimizer step."""

    @staticmethod
    def forward(
        ctx: Any,
        anchor: torch.Tensor,
        table: _Table,
        indices: torch.Tensor,
        csr: torch.Tensor,
        weights: Optional[torch.Tensor],
        mode: str,
    ) -> torch.Tensor:
        del anchor
        if indices.device.type == "cpu" and csr.shape[0] > 1:  # at least one bag, as above
            out = table._table.lookup_pooled_new(indices, csr, weights, mode, "torch")
        else:
            out = torch.empty((csr.shape[0] - 1, table.output_dim), dtype=torch.float32, device=indices.device)
            table.pooled(indices, csr, mode, weights, out=out)
        ctx.table, ctx.indices, ctx.csr, ctx.weights, ctx.mode = table, indices, csr, weights, mode
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> Tuple[None, ...]:
        ctx.table.train_step_pooled(ctx.indices, ctx.csr, grad_out.contiguous(), ctx.mode, ctx.weights)
        return None, None, None, None, None, None


class _TableModule(torch.nn.Module):
    """What both modules share: the embedkit table, the empty ``anchor`` parameter that makes
    autograd call their backward, and the matrix's sizes and contents."""

    def __init__(self, table: _Table) -> None:
        super().__init__()
        self.table: _Table = table
        self.anchor = torch.nn.Parameter(torch.empty(0))

    @property
    def num_embeddings(self) -> int:
        """Rows of the table."""
        return self.table.input_dim

    @property
    def embedding_dim(self) -> int:
        """Width of a row."""
        return self.table.output_dim

    @property
    def weight(self) -> torch.Tensor:
        """A copy of the matrix, ``(num_embeddings, embedding_dim)`` float32."""
        return torch.from_numpy(self.table.embeddings)

    def set_weight(self, weight: torch.Tensor) -> None:
        """Replaces the matrix (float32 ``(num_embeddings, embedding_dim)``)."""
        self.table.set_weights(weight.detach().contiguous())

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> "_TableModule":
        """``.to()``, ``.double()``, ``.half()``, ``.cuda()``, ``.cpu()`` and the like reach the table
        or raise, never leave it as it was: a move to a CUDA device or back to the CPU migrates the
        table (the placement rules' clear error where it cannot go); a dtype other than float32, or
        any other device, is refused."""
        probe = fn(torch.empty(0, dtype=torch.float32))
        if probe.dtype != torch.float32:
            raise NotImplementedError(
                f"embedkit tables hold float32 rows; converting the module to {probe.dtype} is not supported"
            )
        if probe.device.type not in ("cpu", "cuda"):
            raise NotImplementedError(
                f"an embedkit table lives on the CPU or a CUDA device; moving the module to {probe.device} "
                f"is not supported"
            )
        if probe.device.type != self.table.placement["device"].split(":")[0]:
            self.table.migrate(probe.device.type)
        return super()._apply(fn, *args, **kwargs)

    # ``state_dict()`` holds exactly ``weight``, as ``nn.Embedding``'s and ``nn.EmbeddingBag``'s do,
    # so their state dicts load here and this one loads there (strict included). The optimizer's
    # state and step are not in it; pickling, ``torch.save(module)`` and ``copy.deepcopy`` keep
    # them (the table pickles as its checkpoint).

    def _save_to_state_dict(self, destination: Dict[str, Any], prefix: str, keep_vars: bool) -> None:
        destination[prefix + "weight"] = self.weight

    def _load_from_state_dict(
        self,
        state_dict: Dict[str, Any],
        prefix: str,
        local_metadata: Dict[str, Any],
        strict: bool,
        missing_keys: List[str],
        unexpected_keys: List[str],
        error_msgs: List[str],
    ) -> None:
        key = prefix + "weight"
        # This module's own keys only (children have none); 'anchor', which state dicts of earlier
        # versions held, is not unexpected. Under strict, an unexpected key leaves the table as it
        # is (torch would still copy the other keys before raising).
        own = [name for name in state_dict if name.startswith(prefix) and "." not in name[len(prefix):]]
        unexpected = [name for name in own if name[len(prefix):] not in ("weight", "anchor")]
        if strict and unexpected:
            unexpected_keys.extend(unexpected)
            return
        if key in state_dict:
            value = state_dict[key]
            expected = (self.num_embeddings, self.embedding_dim)
            if tuple(value.shape) != expected:
                error_msgs.append(
                    f"size mismatch for {key}: copying a param with shape {tuple(value.shape)} from checkpoint, "
                    f"the shape in current model is {expected}."
                )
            else:
                self.set_weight(value.to(torch.float32))
        elif strict:
            missing_keys.append(key)


class Embedding(_TableModule):
    """``torch.nn.Embedding`` on an embedkit table: ``forward(input)`` gives ``input.shape +
    (embedding_dim,)``; backward runs the table's optimizer (default: SGD at ``lr``, else Keras's 0.01).

    ``optimizer`` is an embedkit optimizer name (``"sgd"``, ``"adagrad"``, ``"rowwise_adagrad"``,
    ``"adam"``, ``"ftrl"``) or a Keras optimizer object/dict; ``lr`` overrides its learning rate.
    ``padding_idx``'s row reads as zeros and is never updated. Non-contiguous inputs are made
    contiguous (a copy); contiguous ones are read in place.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: Optional[int] = None,
        *,
        optimizer: KerasObject = "sgd",
        lr: Optional[float] = None,
        embeddings_initializer: KerasObject = None,
        seed: Optional[int] = None,
        placement: str = "auto",
        name: str = "embedding",
        sparse: bool = False,
        scale_grad_by_freq: bool = False,
    ) -> None:
        _check_gradient_options(sparse, scale_grad_by_freq)
        super().__init__(_make_table(
            num_embeddings, embedding_dim, padding_idx, optimizer, lr,
            embeddings_initializer or _TORCH_INITIALIZER, seed, placement, name,
        ))

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - PyTorch's argument name
        """The rows of ``input`` (int32 or int64 ids of any shape)."""
        return _Lookup.apply(self.anchor, self.table, as_input(input, np.int64).contiguous())

    def extra_repr(self) -> str:
        """The sizes and the table's device, for ``repr(module)``."""
        return f"{self.num_embeddings}, {self.embedding_dim}, device={self.table.placement['device']!r}"


class EmbeddingBag(_TableModule):
    """``torch.nn.EmbeddingBag`` on an embedkit table: sums, means or maxima of bags of rows, with
    PyTorch's inputs (``input`` 2-D of fixed-size bags, or 1-D with ``offsets``: one start per bag,
    plus the end when ``include_last_offset``), converted to embedkit's CSR offsets. Backward runs
    the table's optimizer on the pooled gradient; ``per_sample_weights`` receive no gradient.
    Arguments as ``Embedding``'s, plus ``mode`` (``"sum"``, ``"mean"``, ``"max"``) and
    ``include_last_offset``; ``padding_idx`` entries are left out of their bags, as in PyTorch.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        mode: str = "mean",
        include_last_offset: bool = False,
        padding_idx: Optional[int] = None,
        *,
        optimizer: KerasObject = "sgd",
        lr: Optional[float] = None,
        embeddings_initializer: KerasObject = None,
        seed: Optional[int] = None,
        placement: str = "auto",
        name: str = "embedding_bag",
        sparse: bool = False,
        scale_grad_by_freq: bool = False,
    ) -> None:
        _check_gradient_options(sparse, scale_grad_by_freq)
        if mode not in ("sum", "mean", "max"):
            raise ValueError(f"mode must be 'sum', 'mean' or 'max', got {mode!r}")
        super().__init__(_make_table(
            num_embeddings, embedding_dim, padding_idx, optimizer, lr,
            embeddings_initializer or _TORCH_INITIALIZER, seed, placement, name,
        ))
        self.mode = mode
        self.include_last_offset = include_last_offset

    def csr_offsets(self, input: torch.Tensor, offsets: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:  # noqa: A002
        """PyTorch's (input, offsets) as embedkit's (1-D ids, int64 CSR offsets of bags + 1 entries)."""
        if input.dim() == 2:
            if offsets is not None:
                raise ValueError("offsets must be None when input is 2-D (each row is one bag)")
            bags, per_bag = input.shape
            csr = torch.arange(bags + 1, dtype=torch.int64, device=input.device) * per_bag
            return input.reshape(-1), csr
        if input.dim() != 1:
            raise ValueError(f"input must be 1-D (with offsets) or 2-D, got shape {tuple(input.shape)}")
        if offsets is None:
            raise ValueError("offsets is required when input is 1-D")
        if offsets.dim() != 1:
            raise ValueError(f"offsets must be 1-D, got shape {tuple(offsets.shape)}")
        as_input(offsets, np.int64, "offsets")
        if offsets.is_floating_point() or offsets.is_complex():  # .to(int64) would truncate them
            dtype = str(offsets.dtype).replace("torch.", "")
            raise refusal("EK_DTYPE_MISMATCH", f"offsets must be int32 or int64, got {dtype}")
        csr = offsets.to(torch.int64)
        if not self.include_last_offset:
            end = torch.tensor([input.shape[0]], dtype=torch.int64, device=csr.device)
            csr = torch.cat([csr, end])
        return input, csr

    def forward(
        self,
        input: torch.Tensor,  # noqa: A002 - PyTorch's argument name
        offsets: Optional[torch.Tensor] = None,
        per_sample_weights: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """One pooled row per bag, ``(bags, embedding_dim)``."""
        if per_sample_weights is not None and self.mode != "sum":
            raise NotImplementedError(  # torch's refusal, in its words
                f"embedding_bag: per_sample_weights was not None. per_sample_weights is only supported for "
                f"mode='sum' (got mode='{self.mode}')."
            )
        ids, csr = self.csr_offsets(as_input(input, np.int64), offsets)
        weights = None if per_sample_weights is None else per_sample_weights.detach().reshape(-1).contiguous()
        return _PooledLookup.apply(self.anchor, self.table, ids.contiguous(), csr.contiguous(), weights, self.mode)

    def extra_repr(self) -> str:
        """The sizes, the mode and the table's device, for ``repr(module)``."""
        return (
            f"{self.num_embeddings}, {self.embedding_dim}, mode={self.mode!r}, "
            f"device={self.table.placement['device']!r}"
        )


__all__ = ["Embedding", "EmbeddingBag"]
