"""TorchRec's types for embedkit's collections: torchrec's own when it is installed, else minimal
equivalents with the same names, fields and methods that ``embedkit.torch``'s collections use (so
torchrec stays optional)."""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import torch

try:  # pragma: no cover - which branch runs depends on the environment
    from torchrec.modules.embedding_configs import EmbeddingBagConfig, EmbeddingConfig, PoolingType
    from torchrec.sparse.jagged_tensor import JaggedTensor, KeyedJaggedTensor, KeyedTensor

    HAVE_TORCHREC = True
except (ImportError, OSError, RuntimeError):  # absent, or an install that cannot load (fbgemm's libraries)
    HAVE_TORCHREC = False

    class PoolingType(enum.Enum):
        """TorchRec's pooling of a bag."""

        SUM = "SUM"
        MEAN = "MEAN"
        NONE = "NONE"

    @dataclass
    class _BaseConfig:
        num_embeddings: int
        embedding_dim: int
        name: str = ""
        feature_names: List[str] = field(default_factory=list)
        weight_init_max: Optional[float] = None
        weight_init_min: Optional[float] = None
        init_fn: Optional[Callable[[torch.Tensor], Optional[torch.Tensor]]] = None

        # TorchRec's default: uniform in ±sqrt(1 / num_embeddings).
        def get_weight_init_max(self) -> float:
            return math.sqrt(1 / self.num_embeddings) if self.weight_init_max is None else self.weight_init_max

        def get_weight_init_min(self) -> float:
            return -math.sqrt(1 / self.num_embeddings) if self.weight_init_min is None else self.weight_init_min

    @dataclass
    class EmbeddingBagConfig(_BaseConfig):
        """A pooled table: TorchRec's EmbeddingBagConfig's fields that embedkit reads."""

        pooling: PoolingType = PoolingType.SUM

    @dataclass
    class EmbeddingConfig(_BaseConfig):
        """An unpooled table: TorchRec's EmbeddingConfig's fields that embedkit reads."""

    class JaggedTensor:
        """One feature's values with its lengths per sample."""

        def __init__(self, values: torch.Tensor, weights: Optional[torch.Tensor] = None,
                     lengths: Optional[torch.Tensor] = None, offsets: Optional[torch.Tensor] = None) -> None:
            self._values, self._weights = values, weights
            if lengths is None:
                lengths = offsets[1:] - offsets[:-1]
            self._lengths = lengths

        def values(self) -> torch.Tensor:
            return self._values

        def weights_or_none(self) -> Optional[torch.Tensor]:
            return self._weights

        def lengths(self) -> torch.Tensor:
            return self._lengths

        def offsets(self) -> torch.Tensor:
            return torch.cat([torch.zeros(1, dtype=self._lengths.dtype), torch.cumsum(self._lengths, 0)])

    class KeyedJaggedTensor:
        """TorchRec's sparse batch: keys, one values array, lengths or offsets per key and sample."""

        def __init__(self, keys: List[str], values: torch.Tensor, weights: Optional[torch.Tensor] = None,
                     lengths: Optional[torch.Tensor] = None, offsets: Optional[torch.Tensor] = None,
                     stride: Optional[int] = None) -> None:
            self._keys, self._values, self._weights = list(keys), values, weights
            if lengths is None and offsets is None:
                raise ValueError("a KeyedJaggedTensor needs lengths or offsets")
            self._lengths, self._offsets = lengths, offsets
            self._stride = stride

        @staticmethod
        def from_lengths_sync(keys: List[str], values: torch.Tensor, lengths: torch.Tensor,
                              weights: Optional[torch.Tensor] = None) -> "KeyedJaggedTensor":
            return KeyedJaggedTensor(keys, values, weights=weights, lengths=lengths)

        @staticmethod
        def from_offsets_sync(keys: List[str], values: torch.Tensor, offsets: torch.Tensor,
                              weights: Optional[torch.Tensor] = None) -> "KeyedJaggedTensor":
            return KeyedJaggedTensor(keys, values, weights=weights, offsets=offsets)

        def keys(self) -> List[str]:
            return self._keys

        def values(self) -> torch.Tensor:
            return self._values

        def weights_or_none(self) -> Optional[torch.Tensor]:
            return self._weights

        def lengths(self) -> torch.Tensor:
            if self._lengths is None:
                self._lengths = self._offsets[1:] - self._offsets[:-1]
            return self._lengths

        def offsets(self) -> torch.Tensor:
            if self._offsets is None:
                lengths = self._lengths
                self._offsets = torch.cat([torch.zeros(1, dtype=lengths.dtype), torch.cumsum(lengths, 0)])
            return self._offsets

        def stride(self) -> int:
            if self._stride is None:
                self._stride = int(self.lengths().numel()) // max(len(self._keys), 1)
            return self._stride

    class KeyedTensor:
        """Pooled embeddings of several keys side by side: values (batch, sum of length_per_key)."""

        def __init__(self, keys: List[str], length_per_key: List[int], values: torch.Tensor,
                     key_dim: int = 1) -> None:
            self._keys, self._length_per_key, self._values, self._key_dim = list(keys), list(length_per_key), values, key_dim

        def keys(self) -> List[str]:
            return self._keys

        def values(self) -> torch.Tensor:
            return self._values

        def length_per_key(self) -> List[int]:
            return self._length_per_key

        def key_dim(self) -> int:
            return self._key_dim

        def to_dict(self) -> Dict[str, torch.Tensor]:
            return dict(zip(self._keys, torch.split(self._values, self._length_per_key, dim=self._key_dim)))

        def __getitem__(self, key: str) -> torch.Tensor:
            return self.to_dict()[key]

__all__ = ["EmbeddingBagConfig", "EmbeddingConfig", "HAVE_TORCHREC", "JaggedTensor", "KeyedJaggedTensor",
           "KeyedTensor", "PoolingType"]
