"""``embedkit.torch.EmbeddingBagCollection`` and ``EmbeddingCollection``: TorchRec's modules on an
embedkit table collection, the optimizer fused into backward.

They take TorchRec's table configs (``EmbeddingBagConfig`` / ``EmbeddingConfig``) and a
``KeyedJaggedTensor``, and return what TorchRec's modules return (a ``KeyedTensor`` whose keys are
the tables' ``feature_names`` in config order; a ``Dict[str, JaggedTensor]``), so they drop in where
TorchRec takes its own (``torchrec.models.dlrm.DLRM`` included). One forward is one collection call
(every table, one parallel region on the CPU); its backward hands the upstream gradient to
``module.optimizer``, which takes one step of every table in one call. ``state_dict()`` holds
TorchRec's keys and nothing else (``embedding_bags.<table>.weight``; ``embeddings.<table>.weight``),
so TorchRec's weights load here and these load there, strict mode included. Without ``torchrec``
installed, ``embedkit.torch`` offers minimal equivalents of its types (``embedkit._torchrec_types``).
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from . import _embedkit
from ._torch_optimizer import FusedOptimizer
from ._torchrec_types import JaggedTensor, KeyedJaggedTensor, KeyedTensor, PoolingType
from .embedding import Embedding as _Table

# torch.optim's argument names as embedkit's optimizer config spells them.
_OPTIMIZER_KEYS = {"eps": "epsilon", "lr": "learning_rate", "initial_accumulator_value": "initial_accumulator_value"}


def _optimizer_config(optimizer: str, lr: Optional[float], arguments: Dict[str, Any]) -> Any:
    if not isinstance(optimizer, str):
        raise TypeError(f"optimizer must be an embedkit optimizer name such as 'sgd' or 'rowwise_adagrad', "
                        f"got {optimizer!r}")
    config: Dict[str, Any] = {}
    for key, value in arguments.items():
        if key == "betas":
            config["beta_1"], config["beta_2"] = (float(v) for v in value)
        else:
            config[_OPTIMIZER_KEYS.get(key, key)] = value
    if lr is not None:
        config["learning_rate"] = float(lr)
    return {"class_name": optimizer, "config": config} if config else optimizer


def _pooling_name(pooling: Any) -> str:
    name = getattr(pooling, "name", str(pooling)).upper()
    if name not in ("SUM", "MEAN"):
        raise NotImplementedError(f"pooling {name} is not supported by EmbeddingBagCollection (SUM or MEAN)")
    return name.lower()


def _placement(device: Any) -> str:
    if device is None:
        return "auto"
    where = torch.device(device)
    if where.type not in ("cpu", "cuda", "meta"):
        raise NotImplementedError(f"an embedkit collection lives on the CPU or a CUDA device, not on {where}")
    return "cpu" if where.type == "meta" else where.type


class _CollectionOptimizer(FusedOptimizer):
    """The collection's ``module.optimizer``: one param group per table (its ``lr``, schedulers,
    ``state_dict()`` with each table's state and step), every step one collection call."""

    def __init__(self, params: Sequence[torch.nn.Parameter], tables: Sequence[_Table],
                 collection: "_embedkit.Collection") -> None:
        super().__init__(params, tables, step_in_backward=True)
        self._collection = collection
        self._batch: Optional[Tuple[Any, ...]] = None

    def _collection_backward(self, batch: Tuple[Any, ...]) -> None:
        self._batch = batch
        self.step()  # the instance's step: the one hooks and schedulers have wrapped

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """Applies the gradient of the last backward to every table, each at its group's ``lr``."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        batch, self._batch = self._batch, None
        if batch is None:
            return loss
        for index in range(len(self._tables)):
            self._sync_learning_rate(index)
        kind, keys, values, lengths, weights, grad = batch
        if kind == "pooled":
            self._collection.train_step_pooled(keys, values, lengths, None, weights, grad)
        else:
            self._collection.train_step(keys, values, lengths, None, grad)
        return loss


class _CollectionLookup(torch.autograd.Function):
    """forward: one collection lookup (pooled or plain); backward: one collection step."""

    @staticmethod
    def forward(ctx: Any, module: "_CollectionModule", kind: str, keys: List[str], values: torch.Tensor,
                lengths: torch.Tensor, weights: Optional[torch.Tensor], *anchors: torch.Tensor) -> torch.Tensor:
        del anchors
        collection = module._collection
        if kind == "pooled":
            out = torch.empty((lengths.numel() // max(len(keys), 1), module._width), dtype=torch.float32)
            collection.lookup_pooled(keys, values, lengths, None, weights, out)
        else:
            out = torch.empty((collection.lookup_size(keys, values, lengths, None),), dtype=torch.float32)
            collection.lookup(keys, values, lengths, None, out)
        ctx.module, ctx.batch = module, (kind, keys, values, lengths, weights)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Tuple[None, ...]:
        ctx.module.optimizer._collection_backward(ctx.batch + (grad.contiguous(),))
        return (None,) * (6 + len(ctx.module._anchors))


class _CollectionModule(torch.nn.Module):
    """What both collections share: the embedkit collection, one empty anchor parameter per table
    (autograd's way to call backward), the optimizer, TorchRec's state_dict keys."""

    def __init__(self, tables: Sequence[Any], kind: str, state_name: str, is_weighted: bool, device: Any,
                 optimizer: str, lr: Optional[float], optimizer_args: Dict[str, Any]) -> None:
        super().__init__()
        if not tables:
            raise ValueError("a collection needs at least one table config")
        optimizer_config = _optimizer_config(optimizer, lr, optimizer_args)
        entries = []
        for config in tables:
            entry = {
                "name": config.name,
                "input_dim": int(config.num_embeddings),
                "output_dim": int(config.embedding_dim),
                "feature_names": list(config.feature_names),
                "embeddings_initializer": {"class_name": "RandomUniform",
                                           "config": {"minval": float(config.get_weight_init_min()),
                                                      "maxval": float(config.get_weight_init_max())}},
                "optimizer": optimizer_config,
                "placement": _placement(device),
            }
            if kind == "pooled":
                entry["pooling"] = _pooling_name(config.pooling)
            entries.append(entry)
        self._configs = list(tables)
        self._kind, self._state_name, self._is_weighted = kind, state_name, bool(is_weighted)
        self._collection = _embedkit.Collection(json.dumps({"tables": entries}))
        count, self._width = self._collection.shape()
        self._tables = [_Table._wrap(self._collection.table(index)) for index in range(count)]
        self._feature_names = [name for config in tables for name in config.feature_names]
        self._feature_dims = [int(config.embedding_dim) for config in tables for _ in config.feature_names]
        self._anchors: List[torch.nn.Parameter] = []
        for index in range(count):
            anchor = torch.nn.Parameter(torch.empty(0))
            self.register_parameter(f"_anchor_{index}", anchor)
            self._anchors.append(anchor)
        self.optimizer = _CollectionOptimizer(self._anchors, self._tables, self._collection)
        for config, table in zip(tables, self._tables):
            if getattr(config, "init_fn", None) is not None:  # TorchRec's: called on the new weight
                weight = torch.empty(int(config.num_embeddings), int(config.embedding_dim))
                initialised = config.init_fn(weight)
                table.set_weights((weight if initialised is None else initialised).detach().contiguous().numpy())

    def _run(self, features: Any) -> Tuple[torch.Tensor, List[str], torch.Tensor]:
        keys = list(features.keys())
        values = features.values()
        if values.dtype not in (torch.int32, torch.int64):
            values = values.to(torch.int64)
        values = values.detach().cpu().contiguous()
        lengths = features.lengths().detach().cpu().to(torch.int64).contiguous()
        weights = None
        if self._kind == "pooled" and self._is_weighted:
            weights = features.weights_or_none()
            if weights is None:
                raise ValueError("is_weighted=True: the KeyedJaggedTensor must carry weights")
            weights = weights.detach().cpu().to(torch.float32).contiguous()
        out = _CollectionLookup.apply(self, self._kind, keys, values, lengths, weights, *self._anchors)
        return out, keys, lengths

    def tables(self) -> List[_Table]:
        """The embedkit tables, in config order (weights, optimizer state, placement, save)."""
        return list(self._tables)

    def _save_to_state_dict(self, destination: Dict[str, Any], prefix: str, keep_vars: bool) -> None:
        for config, table in zip(self._configs, self._tables):
            on_cpu = table.placement["device"] == "cpu"
            value = table._table.weights_view("torch") if on_cpu else torch.from_numpy(table.embeddings)
            destination[f"{prefix}{self._state_name}.{config.name}.weight"] = value

    def _load_from_state_dict(self, state_dict: Dict[str, Any], prefix: str, local_metadata: Dict[str, Any],
                              strict: bool, missing_keys: List[str], unexpected_keys: List[str],
                              error_msgs: List[str]) -> None:
        expected = {f"{prefix}{self._state_name}.{config.name}.weight": (config, table)
                    for config, table in zip(self._configs, self._tables)}
        unexpected_keys.extend(key for key in state_dict if key.startswith(prefix) and key not in expected)
        for key, (config, table) in expected.items():
            if key not in state_dict:
                missing_keys.append(key)
                continue
            value = state_dict[key]
            shape = (int(config.num_embeddings), int(config.embedding_dim))
            if tuple(value.shape) != shape:
                error_msgs.append(f"size mismatch for {key}: copying a param with shape {tuple(value.shape)} "
                                  f"from checkpoint, the shape in current model is {shape}.")
                continue
            table.set_weights(torch.as_tensor(value).detach().to("cpu", torch.float32).contiguous().numpy())


class EmbeddingBagCollection(_CollectionModule):
    """TorchRec's ``EmbeddingBagCollection`` on an embedkit collection: ``forward(kjt)`` pools each
    feature's bags with its table's pooling (SUM or MEAN) into a ``KeyedTensor`` of shape (batch,
    sum of dims), keys the tables' ``feature_names`` in config order (not the input's key order;
    keys of the input no table serves are ignored). ``is_weighted``: the input's ``weights`` weigh
    each id (they receive no gradient). ``optimizer`` (an embedkit name: ``"sgd"``, ``"adagrad"``,
    ``"rowwise_adagrad"`` (FBGEMM's EXACT_ROWWISE_ADAGRAD), ``"adam"``, ``"ftrl"``), ``lr`` and the
    optimizer's own arguments (``eps``, ``momentum``, ``initial_accumulator_value``, ``betas``...)
    configure ``module.optimizer``, which steps every table inside backward. ``device``: where the
    tables live ("cpu", "cuda"; None: embedkit's placement decides per table). A feature belongs to
    one table only. ``requires_grad_(False)`` freezes every table."""

    def __init__(self, tables: List[Any], is_weighted: bool = False, device: Any = None, *,
                 optimizer: str = "sgd", lr: Optional[float] = None, **optimizer_args: Any) -> None:
        super().__init__(tables, "pooled", "embedding_bags", is_weighted, device, optimizer, lr, optimizer_args)

    def embedding_bag_configs(self) -> List[Any]:
        """The table configs, as given (TorchRec's DLRM reads them)."""
        return self._configs

    def is_weighted(self) -> bool:
        """Whether forward reads the input's weights."""
        return self._is_weighted

    def forward(self, features: KeyedJaggedTensor) -> KeyedTensor:
        out, _, _ = self._run(features)
        return KeyedTensor(keys=list(self._feature_names), length_per_key=list(self._feature_dims), values=out,
                           key_dim=1)


class EmbeddingCollection(_CollectionModule):
    """TorchRec's ``EmbeddingCollection`` on an embedkit collection: ``forward(kjt)`` looks up every
    id and returns ``Dict[str, JaggedTensor]``, one per input key (each a feature of a table), its
    values (ids, dim) and the input's lengths. Every key of the input must be a feature of a table.
    Optimizer, device and freezing as ``EmbeddingBagCollection``."""

    def __init__(self, tables: List[Any], device: Any = None, *, optimizer: str = "sgd", lr: Optional[float] = None,
                 **optimizer_args: Any) -> None:
        super().__init__(tables, "plain", "embeddings", False, device, optimizer, lr, optimizer_args)

    def embedding_configs(self) -> List[Any]:
        """The table configs, as given."""
        return self._configs

    def forward(self, features: KeyedJaggedTensor) -> Dict[str, JaggedTensor]:
        out, keys, lengths = self._run(features)
        dims = dict(zip(self._feature_names, self._feature_dims))
        stride = lengths.numel() // max(len(keys), 1)
        per_key = lengths.reshape(len(keys), stride) if keys else lengths.reshape(0, 0)
        result: Dict[str, JaggedTensor] = {}
        start = 0
        for k, key in enumerate(keys):
            count = int(per_key[k].sum())
            rows = out[start:start + count * dims[key]].view(count, dims[key])
            result[key] = JaggedTensor(values=rows, lengths=per_key[k])
            start += count * dims[key]
        return result
