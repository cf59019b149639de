"""embedkit.Embedding: a Keras-style embedding layer whose table lives in embedkit."""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict, List, Mapping, Optional, Sequence, TypeVar, Union

import numpy as np

from . import _embedkit
from ._arrays import as_input, as_output, cuda_stream, shape_of

#: Any array embedkit borrows through DLPack (NumPy >= 1.22, PyTorch, JAX, CuPy) or, for inputs,
#: a nested sequence that NumPy turns into one.
ArrayLike = Any
#: A Keras name ("uniform"), a Keras object dict ({"class_name": ..., "config": {...}}), or an
#: object with get_config() (a Keras initializer, regularizer, constraint or optimizer).
KerasObject = Union[None, str, Mapping[str, Any], Any]

_EmbeddingT = TypeVar("_EmbeddingT", bound="Embedding")


def _serialize(value: KerasObject) -> Any:
    """A Keras object as the JSON embedkit's config reader takes."""
    if value is None or isinstance(value, (str, int, float, bool, Mapping)):
        return value
    if hasattr(value, "get_config"):
        return {"class_name": type(value).__name__, "config": value.get_config()}
    raise TypeError(f"expected a name, a Keras object dict or an object with get_config(), got {type(value).__name__}")


def _serialize_optimizer(optimizer: KerasObject) -> Any:
    """The optimizer as embedkit's config takes it. A Keras optimizer object asks for Keras's
    semantics: ``lazy: false``, every row stepped as Keras steps its dense gradient (momentum and
    Adam's moments decay on rows absent from a batch, FTRL resets never-touched rows, weight decay
    reaches every row). Names and serialized dicts keep embedkit's lazy default."""
    serialized = _serialize(optimizer)
    if _is_keras_object(optimizer):
        serialized["config"] = dict(serialized["config"], lazy=False)
    return serialized


def _is_keras_object(value: Any) -> bool:
    return value is not None and not isinstance(value, (str, int, float, bool, Mapping)) and hasattr(value, "get_config")


# The keys keras.layers.Embedding's get_config() writes (Keras 3), in its order; to_keras_config()
# gives exactly these, since Keras's from_config passes every key to the constructor.
_KERAS_KEYS = ("name", "trainable", "dtype", "input_dim", "output_dim", "embeddings_initializer",
               "embeddings_regularizer", "activity_regularizer", "embeddings_constraint", "mask_zero",
               "quantization_config")


def _is_keras_tensor(value: Any) -> bool:
    """Whether ``value`` is a symbolic Keras tensor (a functional model's input), which holds no data."""
    return type(value).__name__ == "KerasTensor" and type(value).__module__.split(".")[0] == "keras"


def _keras_tensor_refusal(value: Any) -> TypeError:
    return TypeError(
        f"embedkit.Embedding got a symbolic KerasTensor (shape {tuple(value.shape)}), which holds no ids: "
        f"embedkit.Embedding is a table, not a Keras layer. In a Keras model use embedkit.keras.Embedding, "
        f"a keras.layers.Layer over the same table"
    )


def _as_float32_weights(value: Any) -> Any:
    """Weights as Keras's ``set_weights`` takes them: float32 borrowed as it is; float64, float16 or
    integer arrays (NumPy's float64 above all) cast to a float32 copy, as Keras casts a value it assigns."""
    if str(getattr(value, "dtype", "")).replace("torch.", "") in _CAST_TO_FLOAT32:
        return np.ascontiguousarray(np.asarray(value), dtype=np.float32)
    return value


_CAST_TO_FLOAT32 = frozenset({"float16", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32"})


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _dumps(config: Mapping[str, Any]) -> str:
    return json.dumps(config, default=_json_default)


class Embedding:
    """An embedding table with Keras's ``Embedding`` names, defaults and error wording.

    The table (weights and optimizer state) lives in embedkit's C++ library, on the device its
    placement chose. Lookups take int32 or int64 ids of any rank from any DLPack array and return
    a NumPy float32 array of shape ``indices.shape + (output_dim,)``, or fill ``out=`` in place.
    Training is sparse: ``train_step`` hands the upstream gradient to the table's optimizer, which
    updates only the rows the batch touched. A failed call raises an ``embedkit.Error`` subclass
    (``IndexError`` for ids out of range, ``ValueError``, ``TypeError``, ...) and changes nothing.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer: KerasObject = "uniform",
        embeddings_regularizer: KerasObject = None,
        embeddings_constraint: KerasObject = None,
        mask_zero: bool = False,
        weights: Optional[Sequence[ArrayLike]] = None,
        lora_rank: Optional[int] = None,
        lora_alpha: Optional[float] = None,
        quantization_config: Any = None,
        *,
        name: str = "embedding",
        trainable: bool = True,
        seed: Optional[int] = None,
        padding_idx: Optional[int] = None,
        bounds_check: str = "error",
        optimizer: KerasObject = None,
        placement: str = "auto",
        nonfinite_gradients: str = "skip",
        gpu_memory_limit: Optional[int] = None,
        gpu_memory_headroom: Optional[int] = None,
        max_batch_lookups: Optional[int] = None,
        **keras_options: Any,
    ) -> None:
        """Creates and initialises the table.

        The positional arguments are Keras's. ``optimizer`` is a lower-case name (``"sgd"``,
        ``"adagrad"``, ``"rowwise_adagrad"``, ``"adam"``, ``"ftrl"``) or a dict (its serialized form,
        ``"lazy"`` allowed), which step only the rows a batch touched unless ``"lazy": False``; or a
        Keras optimizer object, which keeps Keras's semantics (``lazy: false``: every row stepped
        each step where a zero gradient moves rows, O(input_dim x output_dim) work a step; see
        ``summary()``). Default: SGD with Keras's defaults. ``placement`` is ``"auto"``,
        ``"cpu"`` or ``"cuda"``. ``weights`` is Keras's initial ``[matrix]``. ``dtype`` (a Keras
        name or ``DTypePolicy``) is the rows' storage type: ``"float32"``, ``"float16"`` or
        ``"bfloat16"`` (half the bytes; lookups, gradients and optimizer state stay float32, each
        updated row is rounded back, stochastically unless ``rounding="nearest"``); a
        ``mixed_float16`` / ``mixed_bfloat16`` policy keeps float32 rows, as Keras keeps its
        variables. ``lora_rank``, ``lora_alpha``, ``quantization_config`` and other Keras options
        are accepted at their Keras defaults; embedkit refuses other values with
        ``NotImplementedError``.
        """
        config: Dict[str, Any] = {
            "input_dim": input_dim,
            "output_dim": output_dim,
            "embeddings_initializer": _serialize(embeddings_initializer),
            "embeddings_regularizer": _serialize(embeddings_regularizer),
            "embeddings_constraint": _serialize(embeddings_constraint),
            "mask_zero": mask_zero,
            "lora_rank": lora_rank,
            "lora_alpha": lora_alpha,
            "quantization_config": quantization_config,
            "name": name,
            "trainable": trainable,
            "seed": seed,
            "padding_idx": padding_idx,
            "bounds_check": bounds_check,
            "optimizer": _serialize_optimizer(optimizer),
            "placement": placement,
            "nonfinite_gradients": nonfinite_gradients,
            "gpu_memory_limit": gpu_memory_limit,
            "gpu_memory_headroom": gpu_memory_headroom,
        }
        if max_batch_lookups is not None:
            config["max_batch_lookups"] = max_batch_lookups
        config.update({key: _serialize(value) for key, value in keras_options.items()})
        self._adopt(_embedkit.Table(_dumps(config)))
        if weights is not None:
            self.set_weights(weights)

    def _adopt(self, table: _embedkit.Table) -> None:
        self._table = table
        info = self._info()  # what never changes, kept for the hot path
        self._input_dim = int(info["input_dim"])
        self._output_dim = int(info["output_dim"])
        self._mask_zero = bool(info["config"]["mask_zero"])

    @classmethod
    def _wrap(cls: type[_EmbeddingT], table: _embedkit.Table) -> _EmbeddingT:
        layer = cls.__new__(cls)
        layer._adopt(table)
        return layer

    def __getstate__(self) -> Dict[str, Any]:
        """For ``pickle`` and ``copy.deepcopy``: the table as its checkpoint's files (config with
        placement, weights, optimizer state and step), read back whole by ``__setstate__``."""
        files: Dict[str, bytes] = {}
        with tempfile.TemporaryDirectory(prefix="embedkit-pickle-") as directory:
            self.save(directory)
            for root, _, names in os.walk(directory):
                for name in names:
                    path = os.path.join(root, name)
                    with open(path, "rb") as file:
                        files[os.path.relpath(path, directory)] = file.read()
        return {"embedkit_checkpoint": files}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        with tempfile.TemporaryDirectory(prefix="embedkit-unpickle-") as directory:
            for relative, data in state["embedkit_checkpoint"].items():
                path = os.path.join(directory, relative)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as file:
                    file.write(data)
            self._adopt(_embedkit.Table.load(directory))

    # ---------------------------------------------------------------------------------------------
    # Construction from Keras and from files

    @classmethod
    def from_config(cls: type[_EmbeddingT], config: Mapping[str, Any]) -> _EmbeddingT:
        """A table from a config: Keras's ``layer.get_config()`` as it is (Keras 3 or tf-keras), or
        this class's ``get_config()``, with embedkit's own keys (optimizer, placement, ...) allowed."""
        return cls._wrap(_embedkit.Table(_dumps(dict(config))))

    @classmethod
    def from_keras(
        cls: type[_EmbeddingT], layer: Any, *, optimizer: KerasObject = None, placement: str = "auto"
    ) -> _EmbeddingT:
        """A table with a Keras ``Embedding`` layer's config and (when the layer is built) its
        current weights, trained by ``optimizer`` and placed by ``placement``."""
        config = dict(layer.get_config())
        config["optimizer"] = _serialize_optimizer(optimizer)
        config["placement"] = placement
        table = cls.from_config(config)
        weights = layer.get_weights()
        if weights:
            table.set_weights(weights)
        return table

    @classmethod
    def load(cls: type[_EmbeddingT], directory: Union[str, os.PathLike]) -> _EmbeddingT:
        """A table from a checkpoint directory written by ``save`` (or C++'s ``save``/``ek_save``),
        placed by today's policy. Raises ``OSError`` (``embedkit.CheckpointError``) naming the file
        that fails its checksum, shape or name check."""
        return cls._wrap(_embedkit.Table.load(os.fspath(directory)))

    def save(self, directory: Union[str, os.PathLike]) -> None:
        """Saves weights, optimizer state, config and step into ``directory`` (created if missing):
        ``manifest.json`` and ``.npy`` files, crash-safe also over an existing checkpoint."""
        self._table.save(os.fspath(directory))

    # ---------------------------------------------------------------------------------------------
    # Lookups

    def __call__(self, indices: ArrayLike, *, out: Optional[ArrayLike] = None, stream: Any = None) -> Any:
        """Gathers rows: float32 of shape ``indices.shape + (output_dim,)``, into ``out`` when given
        (any writable DLPack array of that shape, filled in place and returned). CUDA arrays of a
        table on their device are used in place, on ``stream`` (see ``docs/python.md``: by default
        PyTorch's current stream for PyTorch tensors)."""
        if _is_keras_tensor(indices):
            raise _keras_tensor_refusal(indices)
        ids = as_input(indices, np.int64)
        if out is None:
            return self._table.lookup_new(ids, "numpy", cuda_stream(stream, ids))
        self._table.lookup(ids, as_output(out), cuda_stream(stream, ids, out))
        return out

    def compute_mask(
        self, indices: ArrayLike, mask: Optional[ArrayLike] = None, *, out: Optional[ArrayLike] = None,
        stream: Any = None,
    ) -> Any:
        """Keras's mask: ``indices != 0`` (bool, shape ``indices.shape``) under ``mask_zero``, else
        ``None``. ``mask`` (a previous layer's mask) is ignored, as Keras does."""
        del mask
        if not self.mask_zero:
            return None
        ids = as_input(indices, np.int64)
        if out is None:
            out = np.empty(shape_of(ids), dtype=np.bool_)
        self._table.compute_mask(ids, as_output(out), cuda_stream(stream, ids, out))
        return out

    def pooled(
        self,
        indices: ArrayLike,
        offsets: ArrayLike,
        mode: str = "sum",
        per_sample_weights: Optional[ArrayLike] = None,
        *,
        out: Optional[ArrayLike] = None,
        stream: Any = None,
    ) -> Any:
        """Pools bags of rows into float32 ``(bags, output_dim)``: bag ``b`` holds the 1-D ``indices``
        at positions ``offsets[b]:offsets[b+1]`` (int64 CSR offsets, ``bags + 1`` entries from 0 to
        ``len(indices)``). ``mode`` is ``"sum"``, ``"mean"``, ``"max"`` or ``"sqrtn"``; empty bags
        give zeros; ``per_sample_weights`` (float32, like ``indices``) weighs each entry."""
        ids = as_input(indices, np.int64)
        csr = as_input(offsets, np.int64, "offsets")
        weights = None
        if per_sample_weights is not None:
            weights = as_input(per_sample_weights, np.float32, "per_sample_weights")
        if out is None:
            return self._table.lookup_pooled_new(ids, csr, weights, mode, "numpy",
                                                 cuda_stream(stream, ids, csr, weights))
        self._table.lookup_pooled(ids, csr, weights, mode, as_output(out),
                                  cuda_stream(stream, ids, csr, weights, out))
        return out

    # ---------------------------------------------------------------------------------------------
    # Training

    def train_step(self, indices: ArrayLike, grad: ArrayLike, *, stream: Any = None) -> None:
        """One optimizer step from the upstream gradient of ``self(indices)`` (float32, shape
        ``indices.shape + (output_dim,)``): duplicates folded, only touched rows updated (every row under
        the optimizer's ``lazy: false``, Keras's semantics). The step count grows by one."""
        ids, gradient = as_input(indices, np.int64), as_input(grad, np.float32, "grad_out")
        self._table.train_step(ids, gradient, cuda_stream(stream, ids, gradient))

    def train_step_pooled(
        self,
        indices: ArrayLike,
        offsets: ArrayLike,
        grad: ArrayLike,
        mode: str = "sum",
        per_sample_weights: Optional[ArrayLike] = None,
        *,
        stream: Any = None,
    ) -> None:
        """One optimizer step from the upstream gradient of ``self.pooled(...)`` (float32, shape
        ``(bags, output_dim)``)."""
        weights = None
        if per_sample_weights is not None:
            weights = as_input(per_sample_weights, np.float32, "per_sample_weights")
        ids, gradient = as_input(indices, np.int64), as_input(grad, np.float32, "grad_out")
        csr = as_input(offsets, np.int64, "offsets")
        self._table.train_step_pooled(ids, csr, weights, mode, gradient,
                                      cuda_stream(stream, ids, csr, weights, gradient))

    @property
    def learning_rate(self) -> float:
        """The optimizer's learning rate; set it for schedules (finite, >= 0)."""
        return float(self._info()["config"]["optimizer"]["config"]["learning_rate"])

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._table.set_learning_rate(float(value))

    def optimizer_state_names(self) -> List[str]:
        """The names of the optimizer's state arrays, e.g. ``["momentum", "velocity"]`` for Adam."""
        return [entry["name"] for entry in self._info()["optimizer_state"]]

    def optimizer_state(self, name: str) -> np.ndarray:
        """A copy of one optimizer state array: float32 ``(input_dim, output_dim)``, or
        ``(input_dim,)`` for a per-row one (row-wise Adagrad's); ``ValueError`` for an unknown name."""
        shapes = {entry["name"]: tuple(entry["shape"]) for entry in self._info()["optimizer_state"]}
        out = np.empty(shapes.get(name, (0,)), dtype=np.float32)
        self._table.get_optimizer_state(name, out)  # an unknown name: the C ABI's error, naming the slots
        return out

    def set_optimizer_state(self, step: int, states: Mapping[str, ArrayLike]) -> None:
        """Replaces the step count and every optimizer state array (``states`` maps each of
        ``optimizer_state_names()`` to a float32 array of ``optimizer_state``'s shape), all or
        nothing, as loading a checkpoint would."""
        names = list(states)
        self._table.set_optimizer_state(int(step), names, [as_input(states[n], np.float32, "states") for n in names])

    @property
    def step(self) -> int:
        """Optimizer steps taken so far."""
        return int(self._info()["step"])

    # ---------------------------------------------------------------------------------------------
    # Weights

    @property
    def embeddings(self) -> np.ndarray:
        """A copy of the matrix, float32 ``(input_dim, output_dim)``."""
        out = np.empty((self.input_dim, self.output_dim), dtype=np.float32)
        self._table.get_weights(out)
        return out

    @property
    def weights(self) -> List[np.ndarray]:
        """Keras's ``layer.weights`` as copies: ``[embeddings]``."""
        return [self.embeddings]

    def get_weights(self) -> List[np.ndarray]:
        """Keras's ``get_weights()``: ``[a copy of the matrix]``."""
        return self.weights

    def set_weights(self, weights: Union[Sequence[ArrayLike], ArrayLike]) -> None:
        """Replaces the matrix from Keras's ``[matrix]`` or the matrix itself (shape ``(input_dim,
        output_dim)``; a wrong shape raises ``ValueError`` in Keras's words). float32 is read in place;
        float64, float16 and integer arrays are cast to float32 first, as Keras casts them."""
        if isinstance(weights, (list, tuple)):
            if len(weights) != 1:
                raise ValueError(f"expected a list of 1 weight array (the embeddings), got {len(weights)}")
            weights = weights[0]
        self._table.set_weights(as_input(_as_float32_weights(weights), np.float32, "weights"))

    # ---------------------------------------------------------------------------------------------
    # What the table is

    def _info(self) -> Dict[str, Any]:
        return json.loads(self._table.info())

    def get_config(self) -> Dict[str, Any]:
        """The config (Keras's keys in Keras's form, and embedkit's), which ``from_config`` reads
        back to an equal table definition; the seed drawn at creation is in it."""
        return self._info()["config"]

    def to_keras_config(self) -> Dict[str, Any]:
        """The config with Keras's keys only, which ``keras.layers.Embedding.from_config`` takes (it
        refuses embedkit's: optimizer, placement, seed, ...): the same table definition for Keras."""
        config = self.get_config()
        return {key: config.get(key) for key in _KERAS_KEYS}

    @property
    def input_dim(self) -> int:
        """Number of rows."""
        return self._input_dim

    @property
    def output_dim(self) -> int:
        """Embedding width."""
        return self._output_dim

    @property
    def mask_zero(self) -> bool:
        """Whether ``compute_mask`` masks id 0."""
        return self._mask_zero

    @property
    def name(self) -> str:
        """The table's name."""
        return str(self._info()["name"])

    @property
    def trainable(self) -> bool:
        """Whether training steps change the table."""
        return bool(self._info()["trainable"])

    @property
    def seed(self) -> int:
        """The seed the weights were initialised from (drawn at creation when none was given)."""
        return int(self._info()["seed"])

    @property
    def placement(self) -> Dict[str, Any]:
        """Where the table lives and why: ``{"device", "reason_code", "reason", "bytes": {"weights",
        "optimizer_state", "workspace", "total"}}`` (and ``device_free_bytes`` when a device was probed)."""
        info = self._info()
        return {**info["placement"], "bytes": info["bytes"]}

    def migrate(self, device: str) -> None:
        """Moves the table (weights, optimizer state, step) to ``"cpu"`` or ``"cuda"``; bitwise."""
        self._table.migrate(device)

    def summary(self, batch: Optional[ArrayLike] = None) -> str:
        """The table's summary, the same text as C++'s ``summary().to_string()``: rows, dim, bytes,
        placement and its reason; for a ``batch`` of ids also the output shape and the padding."""
        return self._table.summary(None if batch is None else as_input(batch, np.int64, "batch"))

    def __repr__(self) -> str:
        info = self._info()
        return (
            f"embedkit.Embedding(name={info['name']!r}, input_dim={info['input_dim']}, "
            f"output_dim={info['output_dim']}, device={info['placement']['device']!r})"
        )
