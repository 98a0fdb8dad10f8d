"""The tutorial's hyper-parameters as one validated dataclass.

Tutorial: "Hyperparameters" — the tutorial trains a small Transformer
(4 layers, d_model 128, dff 512, 8 heads, dropout 0.1) instead of the paper's
base model (6 / 512 / 2048 / 8), so that it trains in about an hour.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from tftransformer._checks import positive_int


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """Hyper-parameters of a `Transformer` (vocab sizes excepted).

    Tutorial: "Hyperparameters".

    Args:
        num_layers: encoder and decoder layers (default 4).
        d_model: width of embeddings and every residual stream (default 128).
        dff: inner width of each `FeedForward` (default 512).
        num_heads: attention heads (default 8).
        dropout_rate: dropout everywhere (default 0.1).
    """

    num_layers: int = 4
    d_model: int = 128
    dff: int = 512
    num_heads: int = 8
    dropout_rate: float = 0.1

    def __post_init__(self):
        for field in ("num_layers", "d_model", "dff", "num_heads"):
            # bool is an int subclass; `num_layers=True` is a mistake, not 1.
            positive_int(getattr(self, field), f"TransformerConfig.{field}")
        if self.d_model % 2:
            raise ValueError(
                "TransformerConfig.d_model must be even (the positional encoding "
                f"concatenates sin and cos halves), got {self.d_model!r}"
            )
        rate = self.dropout_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ValueError(
                f"TransformerConfig.dropout_rate must be a number in [0, 1), got {rate!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON-ready), in declaration order."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TransformerConfig:
        """Build from a mapping, rejecting unknown keys by name."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown TransformerConfig field(s) {unknown}; "
                f"expected a subset of {sorted(known)}"
            )
        return cls(**values)
