"""embedkit.keras: ``Embedding``, a Keras 3 layer whose table (weights and optimizer state) is embedkit's.

``embedkit.keras.Embedding`` takes ``keras.layers.Embedding``'s arguments and works where it does:
``Sequential`` and functional models, ``fit`` / ``evaluate`` / ``predict``, masks (``mask_zero``),
``get_weights`` / ``set_weights``, ``get_config`` / ``from_config``, ``model.save`` and
``keras.models.load_model`` (the table's weights, optimizer state and step saved with the model).
The table is placed by embedkit's placement rules (a table too big for the device stays on the CPU,
with the logged reason, while the rest of the model runs on the GPU) and trained by embedkit's
sparse optimizer in the backward pass: the layer's ``optimizer`` (a Keras optimizer object, which
keeps Keras's semantics, or an embedkit name or dict) steps the table; the model's own Keras
optimizer never sees it (only an empty ``embedkit_anchor`` weight, which carries the backward).

How the backward reaches embedkit, per Keras backend:

- **torch**: a ``torch.autograd.Function`` (``embedkit.torch``'s optimizer, stepping inside
  ``loss.backward()``); the ids cross to the table's device and the output comes back to the
  input's device. No copy for CPU tensors.
- **jax**: a ``jax.custom_vjp`` whose forward and backward are
  ``jax.experimental.io_callback(..., ordered=True)``: the compiled step calls back to the host for
  the lookup and for the update, in program order (a pure callback whose result is unused may be
  dropped or repeated). Each call copies the ids, the output and the gradient between XLA and the
  host, and serialises the step around the callbacks.
- **tensorflow**: a ``tf.custom_gradient`` over ``tf.py_function`` (the lookup, and the update in
  its gradient); the model must be compiled without XLA (``jit_compile=False``: Keras turns XLA on
  when a GPU exists, and XLA cannot compile ``tf.py_function``), which the layer checks while it is
  traced. Each step copies the ids, the output and the gradient between TensorFlow and the host.

Importing this module imports Keras.
"""
from __future__ import annotations

import functools
from typing import Any, Dict, List, Optional, Sequence

import keras
import numpy as np

from .embedding import Embedding as _Table
from .embedding import KerasObject, _as_float32_weights

# embedkit's constructor options beyond Keras's, as get_config() writes them.
_EMBEDKIT_OPTIONS = ("optimizer", "placement", "seed", "padding_idx", "bounds_check", "nonfinite_gradients",
                     "gpu_memory_limit", "gpu_memory_headroom", "max_batch_lookups")
# The optimizer-state entries model.save() writes beside the embeddings (entry "0", as Keras's Embedding).
_STEP_KEY = "embedkit_step"
_STATE_PREFIX = "embedkit_state_"


class _Untracked:
    """Holds what the layer must keep out of Keras's and torch's tracking: the torch module (whose
    anchor parameter Keras would otherwise wrap as a variable of the model's optimizer)."""

    def __init__(self) -> None:
        self.module: Any = None


@keras.saving.register_keras_serializable(package="embedkit")
class Embedding(keras.layers.Layer):
    """``keras.layers.Embedding`` on an embedkit table, trained by embedkit's sparse optimizer.

    The positional arguments are Keras's, in Keras's order, with Keras's defaults. Keyword-only:
    ``optimizer`` (a Keras optimizer object: Keras's semantics, ``lazy: false``, every row stepped
    where a zero gradient moves rows, O(input_dim x output_dim) work a step; or an embedkit name
    such as ``"adagrad"`` or a dict: touched rows only unless ``"lazy": False``; default SGD with
    Keras's defaults), ``placement`` (``"auto"``, ``"cpu"``, ``"cuda"``), ``seed``,
    ``padding_idx``, ``bounds_check``, ``nonfinite_gradients``, ``gpu_memory_limit``,
    ``gpu_memory_headroom``, ``max_batch_lookups``; the rest (``name``, ``dtype``, ``trainable``)
    go to ``keras.layers.Layer``. The rows are float32: the output is cast to the layer's compute
    dtype, as Keras's ``Embedding`` does; a variable dtype other than float32 is refused.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer: KerasObject = "uniform",
        embeddings_regularizer: KerasObject = None,
        embeddings_constraint: KerasObject = None,
        mask_zero: bool = False,
        weights: Optional[Sequence[Any]] = None,
        lora_rank: Optional[int] = None,
        lora_alpha: Optional[float] = None,
        quantization_config: Any = None,
        *,
        optimizer: KerasObject = None,
        placement: str = "auto",
        seed: Optional[int] = None,
        padding_idx: Optional[int] = None,
        bounds_check: str = "error",
        nonfinite_gradients: str = "skip",
        gpu_memory_limit: Optional[int] = None,
        gpu_memory_headroom: Optional[int] = None,
        max_batch_lookups: Optional[int] = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("input_length", None)  # deprecated in Keras 3, which ignores it too
        super().__init__(**kwargs)
        if self.dtype_policy.variable_dtype != "float32":
            raise NotImplementedError(
                f"embedkit tables hold float32 rows; dtype policy {self.dtype_policy.name!r} stores "
                f"{self.dtype_policy.variable_dtype} variables (mixed policies such as 'mixed_float16' work)"
            )
        self.table = _Table(
            input_dim,
            output_dim,
            embeddings_initializer,
            embeddings_regularizer,
            embeddings_constraint,
            mask_zero,
            None,
            lora_rank,
            lora_alpha,
            quantization_config,
            name=self.name,
            trainable=self.trainable,
            optimizer=optimizer,
            placement=placement,
            seed=seed,
            padding_idx=padding_idx,
            bounds_check=bounds_check,
            nonfinite_gradients=nonfinite_gradients,
            gpu_memory_limit=gpu_memory_limit,
            gpu_memory_headroom=gpu_memory_headroom,
            max_batch_lookups=max_batch_lookups,
        )
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero
        self.autocast = False
        self._untracked = _Untracked()
        if weights is not None:
            self.build()
            self.set_weights(weights if isinstance(weights, (list, tuple)) else [weights])

    # ---------------------------------------------------------------------------------------------
    # Keras's layer protocol

    def build(self, input_shape: Any = None) -> None:
        """Adds the empty ``embedkit_anchor`` weight: the model's gradient computation reaches the
        table's backward through it (its own gradient is always empty)."""
        if self.built:
            return
        self._anchor = self.add_weight(shape=(0,), initializer="zeros", name="embedkit_anchor", trainable=True)
        self.built = True

    def call(self, inputs: Any) -> Any:
        """The rows of ``inputs`` (ids of any shape; non-integer ids are cast as Keras casts them)."""
        backend = keras.backend.backend()
        if backend == "torch":
            outputs = self._torch_call(inputs)
        elif backend == "jax":
            outputs = self._jax_call(inputs)
        elif backend == "tensorflow":
            outputs = self._tensorflow_call(inputs)
        else:
            raise _refuse_backend(backend)
        if self.compute_dtype != "float32":
            outputs = keras.ops.cast(outputs, self.compute_dtype)
        return outputs

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """Keras's mask: ``inputs != 0`` under ``mask_zero``, else None."""
        if not self.mask_zero:
            return None
        return keras.ops.not_equal(inputs, 0)

    def compute_output_shape(self, input_shape: Sequence[Optional[int]]) -> tuple:
        return (*input_shape, self.output_dim)

    def compute_output_spec(self, inputs: Any) -> Any:
        return keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype=self.compute_dtype)

    def get_config(self) -> Dict[str, Any]:
        """Keras's Embedding keys (``to_keras_config()`` alone gives those) and embedkit's: the
        optimizer as the table runs it (``lazy`` included), placement, seed, ..."""
        table = self.table.get_config()
        config = super().get_config()
        config.update(self.table.to_keras_config())
        config.update(name=self.name, trainable=self.trainable, dtype=keras.dtype_policies.serialize(self.dtype_policy))
        config.update({key: table[key] for key in _EMBEDKIT_OPTIONS})
        return config

    def to_keras_config(self) -> Dict[str, Any]:
        """A config ``keras.layers.Embedding.from_config`` takes: Keras's keys only."""
        config = self.get_config()
        return {key: value for key, value in config.items() if key not in _EMBEDKIT_OPTIONS}

    def get_weights(self) -> List[np.ndarray]:
        """``[embeddings]``: a copy of the table, float32 ``(input_dim, output_dim)``, as Keras's Embedding."""
        return self.table.get_weights()

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Replaces the table from ``[embeddings]`` (float64 and others cast to float32, as Keras does);
        the wrong count or shape raises ``ValueError`` in Keras's words."""
        if not isinstance(weights, (list, tuple)) or len(weights) != 1:
            count = len(weights) if isinstance(weights, (list, tuple)) else "not a list of"
            raise ValueError(
                f"You called `set_weights(weights)` on layer '{self.name}' with a weight list of length {count}, "
                f"but the layer was expecting 1 weights."
            )
        value = _as_float32_weights(weights[0])
        shape = tuple(int(extent) for extent in np.shape(value))
        if shape != (self.input_dim, self.output_dim):
            raise ValueError(
                f"Layer {self.name} weight shape {(self.input_dim, self.output_dim)} is not compatible with provided "
                f"weight shape {shape}."
            )
        self.table.set_weights([value])

    def count_params(self) -> int:
        """The table's parameters (``input_dim x output_dim``), for ``model.summary()``."""
        return self.input_dim * self.output_dim

    def save_own_variables(self, store: Any) -> None:
        """``model.save``: the embeddings as entry ``"0"`` (Keras's Embedding's layout), then the
        optimizer's step and state arrays."""
        store["0"] = self.table.embeddings
        store[_STEP_KEY] = np.array(self.table.step, dtype=np.int64)
        for name in self.table.optimizer_state_names():
            store[_STATE_PREFIX + name] = self.table.optimizer_state(name)

    def load_own_variables(self, store: Any) -> None:
        """``keras.models.load_model``: the embeddings, and the optimizer state when saved with it
        (a model saved with ``keras.layers.Embedding`` loads its embeddings only). Everything is
        checked before the table changes: a store of another shape or optimizer raises
        ``ValueError`` naming what differs, and leaves the table as it was."""
        keys = set(store.keys())
        embeddings = _as_float32_weights(np.asarray(store["0"]))
        expected = (self.input_dim, self.output_dim)
        if tuple(embeddings.shape) != expected:
            raise ValueError(f"Layer {self.name} weight shape {expected} is not compatible with provided weight "
                             f"shape {tuple(embeddings.shape)}.")
        saved = sorted(key[len(_STATE_PREFIX):] for key in keys if key.startswith(_STATE_PREFIX))
        states: Dict[str, np.ndarray] = {}
        if _STEP_KEY in keys:
            shapes = {entry["name"]: tuple(entry["shape"]) for entry in self.table._info()["optimizer_state"]}
            if saved != sorted(shapes):
                raise ValueError(
                    f"layer '{self.name}': the saved optimizer state holds {saved or 'no arrays'}, but this layer's "
                    f"optimizer keeps {sorted(shapes) or 'none'}: load it into a layer with the same optimizer"
                )
            for name, shape in shapes.items():
                states[name] = np.ascontiguousarray(store[_STATE_PREFIX + name], dtype=np.float32)
                if states[name].shape != shape:
                    raise ValueError(f"layer '{self.name}': the saved optimizer state '{name}' has shape "
                                     f"{states[name].shape}, this layer's has {shape}")
        if _STEP_KEY not in keys:
            self.table.set_weights([embeddings])
            return
        previous = self.table.embeddings  # the state's own checks (finite, accumulators >= 0) come last
        self.table.set_weights([embeddings])
        try:
            self.table.set_optimizer_state(int(np.asarray(store[_STEP_KEY])), states)
        except Exception:
            self.table.set_weights([previous])
            raise

    @property
    def placement(self) -> Dict[str, Any]:
        """Where the table lives and why (``embedkit.Embedding.placement``)."""
        return self.table.placement

    def table_summary(self, batch: Any = None) -> str:
        """The table's summary (``embedkit.Embedding.summary``): bytes, placement and its reason,
        and the cost of a step that updates every row."""
        return self.table.summary(batch)

    # ---------------------------------------------------------------------------------------------
    # The backends

    def _torch_call(self, inputs: Any) -> Any:
        import torch

        from . import torch as _ektorch

        module = self._untracked.module
        if module is None:
            module = _ektorch._TableModule(self.table, None, 2.0, False, True)
            self._untracked.module = module
        ids = inputs if inputs.dtype in (torch.int32, torch.int64) else inputs.to(torch.int64)
        table_device = self.table.placement["device"].split(":")[0]
        staged = ids.device.type != table_device and table_device == "cpu"
        if staged:
            ids = ids.cpu()  # the rest of the model on the GPU, the table on the CPU
        anchor = self._anchor.value if self.trainable else self._anchor.value.detach()
        outputs = _torch_lookup().apply(anchor, module, ids.contiguous())
        return outputs.to(inputs.device) if staged else outputs

    def _jax_call(self, inputs: Any) -> Any:
        import jax.numpy as jnp

        ids = inputs if str(inputs.dtype) in ("int32", "int64") else inputs.astype(jnp.int32)
        # A frozen layer's anchor is not among the variables Keras differentiates: no backward then.
        return _jax_lookup(self.table, self.output_dim)(self._anchor.value, ids)

    def _tensorflow_call(self, inputs: Any) -> Any:
        import tensorflow as tf

        _refuse_xla(self.name)
        ids = inputs if inputs.dtype in (tf.int32, tf.int64) else tf.cast(inputs, tf.int32)
        anchor = tf.convert_to_tensor(self._anchor.value)
        # The tape watches the anchor's variable whatever Keras's trainable says: a frozen layer cuts it.
        return _tensorflow_lookup(self.table, self.output_dim, ids)(anchor if self.trainable else tf.stop_gradient(anchor))


def _refuse_backend(backend: str) -> NotImplementedError:
    return NotImplementedError(
        f"embedkit.keras.Embedding does not run on Keras's {backend} backend: its sparse update needs a host "
        f"callback in the backward pass, which embedkit provides on the torch, jax and tensorflow backends. Set "
        f"KERAS_BACKEND to one of them, or use keras.layers.Embedding (Keras's dense update) here"
    )


def _refuse_xla(name: str) -> None:
    """XLA cannot compile ``tf.py_function``: a model compiled with ``jit_compile=True`` (Keras's
    choice on TensorFlow when a GPU exists) is refused here, while it is traced, in words naming
    the fix, rather than by XLA's error at its first step."""
    try:
        from tensorflow.python.framework import ops
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # a TensorFlow without these modules: XLA's own error then
        return
    if control_flow_util.GraphOrParentsInXlaContext(ops.get_default_graph()):
        raise NotImplementedError(
            f"layer '{name}': embedkit.keras.Embedding on TensorFlow runs its lookup and update in tf.py_function, "
            f"which XLA cannot compile, and this model is compiled with XLA (Keras turns jit_compile on when a "
            f"GPU exists). Compile the model with jit_compile=False, or use KERAS_BACKEND=jax or torch"
        )


@functools.lru_cache(maxsize=None)
def _torch_lookup() -> Any:
    """The autograd Function of the torch backend, made on first use: importing this module needs no torch."""
    import torch

    from .torch import _plain_batch

    class TorchLookup(torch.autograd.Function):
        """forward: embedkit's gather; backward: the upstream gradient to the table's optimizer
        (``embedkit.torch``'s FusedOptimizer, which steps at once), and an empty gradient for the
        Keras anchor, so that the model's optimizer has one for every trainable weight."""

        @staticmethod
        def forward(ctx: Any, anchor: torch.Tensor, module: Any, ids: torch.Tensor) -> torch.Tensor:
            table = module.table
            if ids.device.type == "cpu" and ids.numel() > 0:
                out = table._table.lookup_new(ids, "torch")
            else:
                out = torch.empty(tuple(ids.shape) + (table.output_dim,), dtype=torch.float32, device=ids.device)
                table(ids, out=out)
            ctx.module, ctx.ids = module, ids
            ctx.anchor_spec = (anchor.dtype, anchor.device)
            return out

        @staticmethod
        def backward(ctx: Any, grad_out: torch.Tensor) -> Any:
            module = ctx.module
            module.optimizer._backward(0, _plain_batch(ctx.ids, grad_out.to(ctx.ids.device), module.embedding_dim))
            dtype, device = ctx.anchor_spec
            return torch.zeros(0, dtype=dtype, device=device), None, None

    return TorchLookup


def _jax_lookup(table: _Table, dim: int) -> Any:
    """``f(anchor, ids)``: the lookup as a ``jax.custom_vjp`` whose forward and backward call back
    to the host in program order; the backward steps ``table`` and gives the anchor an empty gradient."""
    import jax
    import jax.numpy as jnp
    from jax.experimental import io_callback

    def host_lookup(ids: np.ndarray) -> np.ndarray:
        return table(np.asarray(ids))

    def host_step(ids: np.ndarray, grad: np.ndarray) -> np.ndarray:
        table.train_step(np.asarray(ids), np.ascontiguousarray(grad, dtype=np.float32))
        return np.zeros((), np.int32)

    def forward(ids: Any) -> Any:
        spec = jax.ShapeDtypeStruct(tuple(ids.shape) + (dim,), jnp.float32)
        return io_callback(host_lookup, spec, ids, ordered=True)

    @jax.custom_vjp
    def lookup(anchor: Any, ids: Any) -> Any:
        del anchor
        return forward(ids)

    def lookup_forward(anchor: Any, ids: Any) -> Any:
        del anchor
        return forward(ids), ids

    def lookup_backward(ids: Any, grad: Any) -> Any:
        io_callback(host_step, jax.ShapeDtypeStruct((), jnp.int32), ids, grad.astype(jnp.float32), ordered=True)
        return jnp.zeros((0,), jnp.float32), np.zeros(ids.shape, jax.dtypes.float0)

    lookup.defvjp(lookup_forward, lookup_backward)
    return lookup


def _tensorflow_lookup(table: _Table, dim: int, ids: Any) -> Any:
    """``f(anchor)``: the lookup of ``ids`` as a ``tf.custom_gradient`` over ``tf.py_function``s,
    whose gradient steps ``table`` and gives the anchor an empty gradient. ``tf.py_function`` is
    stateful, so inside ``tf.function`` the lookups and updates run in program order."""
    import tensorflow as tf

    def host_lookup(host_ids: Any) -> np.ndarray:
        return table(host_ids.numpy())

    def host_step(host_ids: Any, grad: Any) -> np.ndarray:
        table.train_step(host_ids.numpy(), np.ascontiguousarray(grad.numpy(), dtype=np.float32))
        return np.zeros((), np.int32)

    @tf.custom_gradient
    def lookup(anchor: Any) -> Any:
        del anchor
        out = tf.py_function(host_lookup, [ids], Tout=tf.float32)
        out.set_shape(ids.shape.concatenate([dim]))

        def gradient(upstream: Any) -> Any:
            stepped = tf.py_function(host_step, [ids, tf.cast(upstream, tf.float32)], Tout=tf.int32)
            with tf.control_dependencies([stepped]):
                return tf.zeros((0,), tf.float32)

        return out, gradient

    return lookup


__all__ = ["Embedding"]
