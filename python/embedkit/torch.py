"""embedkit.torch: ``torch.nn`` modules over embedkit tables, the optimizer fused into backward.

``Embedding`` and ``EmbeddingBag`` take PyTorch's arguments, in PyTorch's order, and its inputs.
Their forward runs embedkit's lookup into a new tensor the library allocates (through DLPack,
without copies; freed back to embedkit's output cache, so a loop reuses paged-in memory); their
backward hands the upstream gradient to ``module.optimizer``, a ``torch.optim.Optimizer`` whose
step is embedkit's sparse update (as FBGEMM's table-batched embeddings do: no dense gradient and
no ``torch.optim`` state exists for the table). By default the step runs inside backward, so the
table has been updated when ``loss.backward()`` returns; ``step_in_backward=False`` keeps the
gradient until ``module.optimizer.step()`` (gradient accumulation, clipping by the true norm).
The modules hold no weights as ``torch.nn.Parameter``s: only an empty ``anchor`` parameter that
makes autograd call the backward (``requires_grad_(False)`` freezes the table). ``weight`` is the
table's memory on the CPU (writes reach the table); ``state_dict()`` holds exactly ``weight``, as
torch's modules' do; ``module.optimizer.state_dict()`` the optimizer state and step; ``pickle``,
``torch.save`` and ``copy.deepcopy`` keep the whole table (placement, optimizer, its state and step).
Each backward is one optimizer step: a module called twice in one graph steps twice.

Importing this module needs PyTorch (1.10 or newer, for ``Tensor.__dlpack__``).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch

from ._arrays import as_input, cuda_stream
from ._errors import refusal
from ._torch_optimizer import FusedOptimizer
from ._torch_weight import read_only_copy, table_weight
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


# torch's dtypes a table stores its rows in, by their embedkit names.
_ROW_DTYPES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}


def _dtype_name(dtype: Any) -> str:
    """``dtype=``: the rows' storage type, torch.float32 (None: float32, as torch's default dtype),
    torch.float16 or torch.bfloat16."""
    if dtype is None:
        return "float32"
    if dtype not in _ROW_DTYPES:
        raise NotImplementedError(
            f"embedkit tables hold float32, float16 or bfloat16 rows; dtype={dtype} is not supported"
        )
    return _ROW_DTYPES[dtype]


def _placement_for(device: Any, placement: str) -> str:
    """torch's ``device=`` as embedkit's placement: a CUDA device asks for a CUDA table (placement's
    clear error where it cannot be), the CPU for a CPU table; None leaves ``placement`` as given."""
    if device is None:
        return placement
    where = torch.device(device)
    if where.type not in ("cpu", "cuda"):
        raise NotImplementedError(f"an embedkit table lives on the CPU or a CUDA device, not on {where}")
    if where.type == "cuda" and where.index not in (None, 0):
        raise NotImplementedError(f"embedkit places tables on its context's device, cuda:0; {where} is not supported")
    if placement not in ("auto", where.type):
        raise ValueError(f"device={str(where)!r} and placement={placement!r} disagree; give one of them")
    return where.type


def _check_optimizer(optimizer: KerasObject) -> None:
    """The modules take embedkit optimizer names and dicts; a Keras optimizer object carries Keras's
    semantics, which belong to Keras layers."""
    if optimizer is None or isinstance(optimizer, (str, Mapping)):
        return
    raise TypeError(
        f"embedkit.torch modules take an optimizer name ('sgd', 'adagrad', 'rowwise_adagrad', 'adam', 'ftrl') "
        f"or a dict, got a {type(optimizer).__module__}.{type(optimizer).__name__} object; Keras optimizer "
        f"objects keep Keras's semantics in Keras layers (embedkit.Embedding; embedkit.keras.Embedding)"
    )


def _check_max_norm(max_norm: Any, norm_type: Any) -> None:
    """torch's positional order puts ``max_norm`` where embedkit's EmbeddingBag once took ``mode``."""
    if max_norm is not None and (isinstance(max_norm, bool) or not isinstance(max_norm, (int, float))):
        raise TypeError(
            f"max_norm must be a number or None, got {max_norm!r}; the arguments follow torch's order: "
            f"EmbeddingBag(num_embeddings, embedding_dim, max_norm, norm_type, scale_grad_by_freq, mode, ...)"
        )
    if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float)):
        raise TypeError(f"norm_type must be a number, got {norm_type!r}")


def _make_table(
    num_embeddings: int,
    embedding_dim: int,
    padding_idx: Optional[int],
    max_norm: Optional[float],
    norm_type: float,
    optimizer: KerasObject,
    lr: Optional[float],
    embeddings_initializer: KerasObject,
    seed: Optional[int],
    placement: str,
    name: str,
    dtype: str = "float32",
    rounding: str = "stochastic",
) -> _Table:
    _check_optimizer(optimizer)
    _check_max_norm(max_norm, norm_type)
    if padding_idx is not None:
        if not -num_embeddings <= padding_idx < num_embeddings:
            raise refusal("EK_INVALID_ARGUMENT", f"padding_idx must be within num_embeddings: got padding_idx="
                                                 f"{padding_idx} for num_embeddings={num_embeddings}")
        if padding_idx < 0:
            padding_idx += num_embeddings  # PyTorch's negative padding_idx counts from the end
    # torch's padding_idx: the row reads as itself.
    extra: Dict[str, Any] = {"padding_reads": "row", "dtype": dtype, "rounding": rounding}
    if max_norm is not None:
        # JSON has no infinity: the config spells it "inf".
        extra.update(max_norm=float(max_norm), norm_type="inf" if math.isinf(norm_type) else float(norm_type))
    table = _Table(
        num_embeddings,
        embedding_dim,
        embeddings_initializer=embeddings_initializer or _TORCH_INITIALIZER,
        padding_idx=padding_idx,
        optimizer=optimizer,
        placement=placement,
        seed=seed,
        name=name,
        **extra,
    )
    if lr is not None:
        table.learning_rate = lr
    return table


def _plain_batch(indices: torch.Tensor, grad_out: torch.Tensor, dim: int) -> Tuple[Any, ...]:
    return ("plain", indices.reshape(-1), grad_out.reshape(-1, dim).contiguous())


class _Lookup(torch.autograd.Function):
    """forward: the gather; backward: the gradient to the module's optimizer (which steps)."""

    @staticmethod
    def forward(ctx: Any, anchor: torch.Tensor, module: "_TableModule", indices: torch.Tensor) -> torch.Tensor:
        del anchor
        table = module.table
        # PyTorch before 2.3 never calls the deleter of an empty DLPack tensor (its data is NULL),
        # so empty outputs are PyTorch's own.
        if indices.device.type == "cpu" and indices.numel() > 0:
            out = table._table.lookup_new(indices, "torch")
        else:
            out = torch.empty(tuple(indices.shape) + (table.output_dim,), dtype=torch.float32, device=indices.device)
            table(indices, out=out)
        ctx.module, ctx.indices = module, indices
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> Tuple[None, None, None]:
        module = ctx.module
        marker = module.optimizer._backward(
            0, _plain_batch(module._kept_ids(ctx.indices), grad_out, module.embedding_dim))
        return marker, None, None


class _PooledLookup(torch.autograd.Function):
    """forward: the pooled gather over CSR bags; backward: per_sample_weights' gradient (as torch
    gives it in sum mode), then the pooled gradient to the module's optimizer."""

    @staticmethod
    def forward(
        ctx: Any,
        anchor: torch.Tensor,
        module: "_TableModule",
        indices: torch.Tensor,
        csr: torch.Tensor,
        weights: Optional[torch.Tensor],
        mode: str,
    ) -> torch.Tensor:
        del anchor
        table = module.table
        weights = None if weights is None else weights.detach()
        if indices.device.type == "cpu" and csr.shape[0] > 1:  # at least one bag, as above
            out = table._table.lookup_pooled_new(indices, csr, weights, mode, "torch")
        else:
            out = torch.empty((csr.shape[0] - 1, table.output_dim), dtype=torch.float32, device=indices.device)
            table.pooled(indices, csr, mode, weights, out=out)
        ctx.module, ctx.indices, ctx.csr, ctx.weights, ctx.mode = module, indices, csr, weights, mode
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> Tuple[Optional[torch.Tensor], ...]:
        module, ids, csr = ctx.module, ctx.indices, ctx.csr
        grad_out = grad_out.contiguous()
        grad_weights = None
        if ctx.needs_input_grad[4]:  # d(sum_j w_j row_j)/d w_j = <grad_bag, row_j>, before the step moves rows
            grad_weights = module._per_sample_weights_grad(ids, csr, grad_out)
        marker = None
        if ctx.needs_input_grad[0]:
            batch = ("pooled", module._kept_ids(ids), csr, ctx.weights, ctx.mode, grad_out)
            marker = module.optimizer._backward(0, batch)
        return marker, None, None, None, grad_weights, None


class _TableModule(torch.nn.Module):
    """What both modules share: the embedkit table, the empty ``anchor`` parameter that makes
    autograd call their backward, the optimizer, and the matrix's sizes and contents."""

    def __init__(
        self,
        table: _Table,
        max_norm: Optional[float],
        norm_type: float,
        sparse: bool,
        step_in_backward: bool,
    ) -> None:
        super().__init__()
        self.table: _Table = table
        self.anchor = torch.nn.Parameter(torch.empty(0))
        self.optimizer = FusedOptimizer([self.anchor], [table], step_in_backward=step_in_backward)
        self.padding_idx = table.get_config()["padding_idx"]  # the table's: a negative one resolved
        self.max_norm = max_norm
        self.norm_type = float(norm_type)
        self.scale_grad_by_freq = False
        self.sparse = bool(sparse)

    def _adopt_initial_weight(self, weight: Optional[torch.Tensor], freeze: bool) -> None:
        """torch's ``_weight`` / ``from_pretrained``: the matrix as given (its padding row included)."""
        if weight is not None:
            self.set_weight(weight)
        if freeze:
            self.anchor.requires_grad_(False)

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
        """The matrix, ``(num_embeddings, embedding_dim)`` float32. For a CPU table of float32 rows it is
        the table's memory itself (no copy): in-place changes (``nn.init.zeros_(m.weight)``, ``m.weight[0] = 5``,
        ``m.weight.data.normal_()``) reach the table. Writes through it take no lock: do not make them
        while another thread trains the table. While such a tensor lives, ``.cuda()`` / ``migrate``
        refuse (``embedkit.BusyError``): drop it first. For a table in device memory it is a copy
        whose in-place modification raises, pointing to ``set_weight``; so are float16 and bfloat16 rows."""
        device = self.table.placement["device"]
        if self._viewable():
            return table_weight(self.table._table.weights_view("torch"), self.table)
        return read_only_copy(self._weight_copy(device), self.table.name, device)

    def _viewable(self) -> bool:
        """Whether ``weight`` is the table's memory itself: a CPU table of float32 rows. float16 and
        bfloat16 rows are read as a float32 copy, as a device table's are."""
        return self.table.placement["device"] == "cpu" and self.table.get_config()["dtype"] == "float32"

    def _weight_copy(self, device: str) -> torch.Tensor:
        """A plain copy of the matrix, on the table's CUDA device where torch has one."""
        values = torch.from_numpy(self.table.embeddings)
        return values.to(device) if device.startswith("cuda") and torch.cuda.is_available() else values

    def set_weight(self, weight: torch.Tensor) -> None:
        """Replaces the matrix (float32 ``(num_embeddings, embedding_dim)``, rounded to nearest even
        into float16 or bfloat16 rows)."""
        self.table.set_weights(torch.as_tensor(weight).detach().contiguous())

    def __setattr__(self, name: str, value: Any) -> None:
        # ``module.weight = nn.Parameter(x)`` (or a tensor) replaces the table's matrix, as torch's
        # modules take it; the weight never becomes a parameter of its own.
        if name == "weight":
            self.set_weight(value)
            return
        super().__setattr__(name, value)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """As torch's, and drops the gradients kept for ``optimizer.step()`` (step_in_backward=False)."""
        super().zero_grad(set_to_none=set_to_none)
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def reset_parameters(self) -> None:
        """As torch's: rows drawn from N(0, 1), the padding row zeros."""
        weight = torch.randn(self.num_embeddings, self.embedding_dim)
        if self.padding_idx is not None:
            weight[self.padding_idx] = 0
        self.set_weight(weight)

    def _kept_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """The ids backward hands the optimizer: as they are when it steps at once, a copy when it
        keeps them for a later step (the caller may refill its tensor by then)."""
        return ids if self.optimizer.step_in_backward else ids.to(torch.int64, copy=True)

    def _per_sample_weights_grad(self, ids: torch.Tensor, csr: torch.Tensor, grad_bags: torch.Tensor) -> torch.Tensor:
        """torch's gradient of per_sample_weights in sum mode: entry j of bag b gets
        <grad_bags[b], weight[ids[j]]>, and 0 for padding entries."""
        rows = (self.table._table.lookup_new(ids, "torch", cuda_stream(None, ids)) if ids.numel() > 0
                else torch.empty(0, self.embedding_dim))
        bag_of = torch.repeat_interleave(torch.arange(csr.shape[0] - 1, device=ids.device), csr[1:] - csr[:-1])
        grad = (rows.to(grad_bags.device) * grad_bags[bag_of]).sum(dim=1)
        if self.padding_idx is not None:
            grad = grad.masked_fill(ids == self.padding_idx, 0.0)
        return grad

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> "_TableModule":
        """``.to()``, ``.double()``, ``.half()``, ``.cuda()``, ``.cpu()`` and the like reach the table
        or raise, never leave it as it was: a move to a CUDA device or back to the CPU migrates the
        table (the placement rules' clear error where it cannot go); a dtype conversion (the rows'
        type is chosen at creation, ``dtype=``), or any other device, is refused."""
        probe = fn(torch.empty(0, dtype=torch.float32))
        if probe.dtype != torch.float32:
            raise NotImplementedError(
                f"converting an embedkit module to {probe.dtype} is not supported: its rows' type is chosen "
                f"at creation (dtype=torch.float32, torch.float16 or torch.bfloat16)"
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
        # As torch's: the weight itself (a CPU table's memory), or a plain copy of a device table's.
        device = self.table.placement["device"]
        # A plain tensor either way, so torch.load(weights_only=True) reads the saved dict.
        destination[prefix + "weight"] = (
            self.table._table.weights_view("torch") if self._viewable() else self._weight_copy(device)
        )

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
        # versions held, is not unexpected. As torch's modules do: the weight is loaded, unexpected
        # keys recorded; torch's load_state_dict passes strict=True here whatever its own strict,
        # and raises afterwards only when strict (the table then holds the loaded weight, as a
        # torch module would).
        own = [name for name in state_dict if name.startswith(prefix) and "." not in name[len(prefix):]]
        unexpected_keys.extend(name for name in own if name[len(prefix):] not in ("weight", "anchor"))
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
    (embedding_dim,)``; backward hands the gradient to ``module.optimizer`` (default: SGD at ``lr``,
    else Keras's 0.01), which steps at once unless ``step_in_backward=False``.

    The positional arguments are torch's, in torch's order. ``padding_idx``'s row starts at zeros,
    reads as whatever it holds and is never updated, as in torch. ``max_norm`` renormalises the
    rows a forward looks up in the stored table, as torch does (that forward writes the table).
    ``device`` asks for a CPU or CUDA table (``placement`` says the same in embedkit's words);
    ``dtype`` is the rows' storage type: torch.float32 (the default), torch.float16 or
    torch.bfloat16 (half the bytes; lookups and gradients stay float32, each updated row is rounded
    back, stochastically unless ``rounding="nearest"``). ``optimizer`` is an embedkit optimizer name (``"sgd"``,
    ``"adagrad"``, ``"rowwise_adagrad"``, ``"adam"``, ``"ftrl"``) or a dict; ``lr`` overrides its
    learning rate. Non-contiguous inputs are made contiguous (a copy); contiguous ones are read in place.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: Optional[int] = None,
        max_norm: Optional[float] = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        _weight: Optional[torch.Tensor] = None,
        _freeze: bool = False,
        device: Any = None,
        dtype: Any = None,
        *,
        optimizer: KerasObject = "sgd",
        lr: Optional[float] = None,
        step_in_backward: bool = True,
        embeddings_initializer: KerasObject = None,
        seed: Optional[int] = None,
        placement: str = "auto",
        name: str = "embedding",
        rounding: str = "stochastic",
    ) -> None:
        _check_gradient_options(sparse, scale_grad_by_freq)
        table = _make_table(num_embeddings, embedding_dim, padding_idx, max_norm, norm_type, optimizer, lr,
                            embeddings_initializer, seed, _placement_for(device, placement), name,
                            _dtype_name(dtype), rounding)
        super().__init__(table, max_norm, norm_type, sparse, step_in_backward)
        self._adopt_initial_weight(_weight, _freeze)

    @classmethod
    def from_pretrained(
        cls,
        embeddings: torch.Tensor,
        freeze: bool = True,
        padding_idx: Optional[int] = None,
        max_norm: Optional[float] = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        **options: Any,
    ) -> "Embedding":
        """As torch's: a module holding ``embeddings`` (2-D), frozen unless ``freeze=False`` (no step
        in backward); the padding row is kept as given. ``options``: the keyword-only arguments."""
        if embeddings.dim() != 2:
            raise ValueError("Embeddings parameter is expected to be 2-dimensional")
        rows, dim = embeddings.shape
        return cls(rows, dim, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse, embeddings, freeze,
                   **options)

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - PyTorch's argument name
        """The rows of ``input`` (int32 or int64 ids of any shape)."""
        return _Lookup.apply(self.anchor, self, as_input(input, np.int64).contiguous())

    def extra_repr(self) -> str:
        """The sizes, torch's options that are set, and the table's device, for ``repr(module)``."""
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            text += f", max_norm={self.max_norm}, norm_type={self.norm_type}"
        return text + f", device={self.table.placement['device']!r}"


class EmbeddingBag(_TableModule):
    """``torch.nn.EmbeddingBag`` on an embedkit table: sums, means or maxima of bags of rows, with
    PyTorch's inputs (``input`` 2-D of fixed-size bags, or 1-D with ``offsets``: one start per bag,
    plus the end when ``include_last_offset``), converted to embedkit's CSR offsets. Backward gives
    ``per_sample_weights`` their gradient (``mode="sum"``, as torch) and hands the pooled gradient to
    ``module.optimizer``. The positional arguments are torch's, in torch's order (``max_norm`` third);
    the keyword-only ones and the rest as ``Embedding``'s. ``padding_idx`` entries are left out of
    their bags and out of mean's count, as in torch.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        max_norm: Optional[float] = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        mode: str = "mean",
        sparse: bool = False,
        _weight: Optional[torch.Tensor] = None,
        include_last_offset: bool = False,
        padding_idx: Optional[int] = None,
        device: Any = None,
        dtype: Any = None,
        *,
        optimizer: KerasObject = "sgd",
        lr: Optional[float] = None,
        step_in_backward: bool = True,
        embeddings_initializer: KerasObject = None,
        seed: Optional[int] = None,
        placement: str = "auto",
        name: str = "embedding_bag",
        rounding: str = "stochastic",
    ) -> None:
        _check_gradient_options(sparse, scale_grad_by_freq)
        if mode not in ("sum", "mean", "max"):
            raise ValueError(f"mode must be 'sum', 'mean' or 'max', got {mode!r}")
        table = _make_table(num_embeddings, embedding_dim, padding_idx, max_norm, norm_type, optimizer, lr,
                            embeddings_initializer, seed, _placement_for(device, placement), name,
                            _dtype_name(dtype), rounding)
        super().__init__(table, max_norm, norm_type, sparse, step_in_backward)
        self.mode = mode
        self.include_last_offset = include_last_offset
        self._adopt_initial_weight(_weight, False)

    @classmethod
    def from_pretrained(
        cls,
        embeddings: torch.Tensor,
        freeze: bool = True,
        max_norm: Optional[float] = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        mode: str = "mean",
        sparse: bool = False,
        include_last_offset: bool = False,
        padding_idx: Optional[int] = None,
        **options: Any,
    ) -> "EmbeddingBag":
        """As torch's: a module holding ``embeddings`` (2-D), frozen unless ``freeze=False``."""
        if embeddings.dim() != 2:
            raise ValueError("Embeddings parameter is expected to be 2-dimensional")
        rows, dim = embeddings.shape
        module = cls(rows, dim, max_norm, norm_type, scale_grad_by_freq, mode, sparse, embeddings,
                     include_last_offset, padding_idx, **options)
        if freeze:
            module.anchor.requires_grad_(False)
        return module

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
        # torch's conditions, checked on the offsets as given (before the end is appended).
        if csr.numel() > 0:
            first, last = int(csr[0]), int(csr[-1])
            if first != 0:
                raise refusal("EK_INVALID_ARGUMENT", f"offsets[0] has to be 0, i.e., the first sequence in the "
                                                     f"mini-batch has to start from position 0. However, got {first}")
            if last > input.shape[0]:
                raise refusal("EK_INVALID_ARGUMENT", f"offsets[-1] = {last} can not be greater than input's length "
                                                     f"({input.shape[0]})")
        elif self.include_last_offset:
            raise refusal("EK_INVALID_ARGUMENT", "offsets must hold at least the end of the input when "
                                                 "include_last_offset is True, got an empty tensor")
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
        weights = None if per_sample_weights is None else per_sample_weights.reshape(-1).contiguous()
        return _PooledLookup.apply(self.anchor, self, ids.contiguous(), csr.contiguous(), weights, self.mode)

    def extra_repr(self) -> str:
        """The sizes, the mode, torch's options that are set and the table's device, for ``repr(module)``."""
        text = f"{self.num_embeddings}, {self.embedding_dim}, mode={self.mode!r}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            text += f", max_norm={self.max_norm}, norm_type={self.norm_type}"
        return text + f", device={self.table.placement['device']!r}"



# TorchRec's collections (python/embedkit/_torch_collection.py) and its types, torchrec's own when installed.
from ._torch_collection import EmbeddingBagCollection, EmbeddingCollection  # noqa: E402
from ._torchrec_types import (  # noqa: E402
    EmbeddingBagConfig,
    EmbeddingConfig,
    JaggedTensor,
    KeyedJaggedTensor,
    KeyedTensor,
    PoolingType,
)

__all__ = ["Embedding", "EmbeddingBag", "EmbeddingBagCollection", "EmbeddingBagConfig", "EmbeddingCollection",
           "EmbeddingConfig", "FusedOptimizer", "JaggedTensor", "KeyedJaggedTensor", "KeyedTensor", "PoolingType"]
