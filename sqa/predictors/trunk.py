"""The predictor's trunk: encoder configuration, masked Transformer encoders and range outputs.

:class:`TrunkConfig` chooses the paper's three group encoders or the Track-2 baseline's one
shared encoder; :class:`MaskedEncoder` projects frame features, encodes them with key-padding
masks and mean-pools the valid frames; :class:`RangeActivation` maps each metric head into the
metric's range. :mod:`sqa.predictors.model` assembles them into the full predictor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sqa.errors import SqaError

TRUNK_KINDS = ("paper", "baseline")


@dataclass(frozen=True)
class TrunkConfig:
    """Encoder trunk. Defaults are the paper's; :meth:`baseline` gives the Track-2 baseline."""

    kind: str = "paper"
    num_layers: int = 4
    num_heads: int = 4
    d_model: int = 256
    ffn_dim: int = 1024
    dropout: float = 0.1
    positional_encoding: bool = False

    @classmethod
    def baseline(cls) -> TrunkConfig:
        """One shared encoder: 6 layers, d=768, 8 heads, FFN 2048."""
        return cls(kind="baseline", num_layers=6, num_heads=8, d_model=768, ffn_dim=2048)


class RangeActivation(nn.Module):
    """Map an unbounded output into a metric's range.

    Both bounds: ``lo + (hi - lo) sigmoid(x)``; lower only: ``lo + softplus(x - lo)``; upper only:
    ``hi - softplus(hi - x)``; none: identity. The one-sided forms are close to the identity
    inside the range and bend smoothly at the bound. The result is clamped to the closed range so
    that float rounding at saturated inputs can never step outside it.
    """

    def __init__(self, low: float | None, high: float | None) -> None:
        super().__init__()
        if low is not None and high is not None and not high > low:
            raise SqaError(f"invalid metric range [{low}, {high}]")
        self.low = low
        self.high = high

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        low, high = self.low, self.high
        if low is not None and high is not None:
            value = low + (high - low) * torch.sigmoid(logits)
            return value.clamp(low, high)
        if low is not None:
            return (low + F.softplus(logits - low)).clamp_min(low)
        if high is not None:
            return (high - F.softplus(high - logits)).clamp_max(high)
        return logits

    @property
    def two_sided(self) -> bool:
        """Whether both bounds are finite (the sigmoid form)."""
        return self.low is not None and self.high is not None

    def extra_repr(self) -> str:
        return f"low={self.low}, high={self.high}"


class SinusoidalPositions(nn.Module):
    """Adds fixed sine/cosine position codes to ``(B, F, d)`` frames."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.d_model = d_model

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        count, dimension = frames.shape[1], self.d_model
        position = torch.arange(count, device=frames.device, dtype=torch.float32)[:, None]
        rate = torch.exp(
            torch.arange(0, dimension, 2, device=frames.device, dtype=torch.float32)
            * (-math.log(10000.0) / dimension)
        )
        table = torch.zeros(count, dimension, device=frames.device)
        table[:, 0::2] = torch.sin(position * rate)
        table[:, 1::2] = torch.cos(position * rate)[:, : dimension // 2]
        return frames + table.to(frames.dtype)[None]


class MaskedEncoder(nn.Module):
    """Projection + Transformer encoder + masked mean pooling."""

    def __init__(self, input_dim: int, trunk: TrunkConfig) -> None:
        super().__init__()
        self.projection = nn.Sequential(
            nn.Linear(input_dim, trunk.d_model), nn.LayerNorm(trunk.d_model)
        )
        self.positions = SinusoidalPositions(trunk.d_model) if trunk.positional_encoding else None
        layer = nn.TransformerEncoderLayer(
            trunk.d_model, trunk.num_heads, trunk.ffn_dim, trunk.dropout, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, trunk.num_layers, enable_nested_tensor=False)

    def forward(self, features: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Encode and pool.

        Args:
            features: ``(B, F, D_in)`` frame features.
            valid: ``(B, F)`` bool, True on real frames.

        Returns:
            ``(B, d)`` mean of the encoder output over valid frames.
        """
        frames = self.projection(features)
        if self.positions is not None:
            frames = self.positions(frames)
        encoded = self.encoder(frames, src_key_padding_mask=~valid)
        weights = valid.to(encoded.dtype)[..., None]
        return (encoded * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
