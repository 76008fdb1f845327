"""ResNet34 (speaker-verification style) comparing module and masked statistics pooling.

Layout of feature maps everywhere: ``(B, C, F, T)`` — channels, feature (frequency) axis, time axis.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 conv + BN layers with a residual connection and dropout between them.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        stride: Stride of the first convolution (both axes).
        dropout: Dropout probability applied after the first activation.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.activation = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, F, T)`` -> ``(B, C_out, F', T')``."""
        hidden = self.dropout(self.activation(self.bn1(self.conv1(features))))
        hidden = self.bn2(self.conv2(hidden))
        return self.activation(hidden + self.shortcut(features))


def downsampled_length(lengths: torch.Tensor, strides: Sequence[int]) -> torch.Tensor:
    """Valid frames after 3x3 convolutions with padding 1 and the given strides: ceil(n / s)."""
    for stride in strides:
        lengths = torch.div(lengths + stride - 1, stride, rounding_mode="floor")
    return lengths


def downsampled_size(size: int, strides: Sequence[int]) -> int:
    """Feature-axis size after the strided stages (same rule as :func:`downsampled_length`)."""
    for stride in strides:
        size = (size + stride - 1) // stride
    return size


def masked_mean_std(
    features: torch.Tensor, lengths: torch.Tensor | None, epsilon: float = 1e-5
) -> torch.Tensor:
    """Mean and standard deviation over the last (time) axis, ignoring padded frames.

    Args:
        features: ``(B, ..., T)`` features.
        lengths: ``(B,)`` valid frames per item, or ``None`` when nothing is padded.
        epsilon: Variance floor so the square root stays differentiable.

    Returns:
        ``(B, ..., 2)`` with the mean in ``[..., 0]`` and the standard deviation in ``[..., 1]``.
    """
    frames = features.shape[-1]
    if lengths is None:
        lengths = torch.full((features.shape[0],), frames, device=features.device)
    lengths = lengths.clamp(min=1, max=frames)
    mask = torch.arange(frames, device=features.device).unsqueeze(0) < lengths.unsqueeze(1)
    shape = (features.shape[0],) + (1,) * (features.dim() - 2) + (frames,)
    mask = mask.reshape(shape).to(features.dtype)
    count = lengths.to(features.dtype).reshape((*shape[:-1], 1))
    mean = (features * mask).sum(dim=-1, keepdim=True) / count
    variance = ((features - mean).square() * mask).sum(dim=-1, keepdim=True) / count
    standard_deviation = torch.sqrt(variance.clamp(min=epsilon))
    return torch.cat([mean, standard_deviation], dim=-1)


def unmasked_mean_std(features: torch.Tensor, epsilon: float = 1e-10) -> torch.Tensor:
    """Statistics pooling of the official URGENT-PK ResNet: mean and standard deviation over every
    frame of the tensor (padded frames included), the variance unbiased plus ``epsilon`` inside
    the square root, flattened as all means followed by all standard deviations.

    Args:
        features: ``(B, C, F, T)`` feature maps.
        epsilon: Added to the variance before the square root.

    Returns:
        ``(B, 2 * C * F)``.
    """
    mean = features.mean(dim=-1).flatten(start_dim=1)
    deviation = torch.sqrt(features.var(dim=-1) + epsilon).flatten(start_dim=1)
    return torch.cat([mean, deviation], dim=1)


class ResNetTrunk(nn.Module):
    """3x3 stem (no max-pool) + four stages of :class:`BasicBlock`.

    Args:
        in_channels: Input channels (2 for early fusion of a pair, 1 for a single utterance).
        stem_channels: Channels of the stem convolution.
        widths: Channels of each stage.
        block_counts: Blocks in each stage.
        strides: Stride of the first block of each stage.
        dropout: Dropout inside each block.
    """

    def __init__(
        self,
        in_channels: int,
        stem_channels: int,
        widths: Sequence[int],
        block_counts: Sequence[int],
        strides: Sequence[int],
        dropout: float,
    ) -> None:
        super().__init__()
        self.strides = tuple(strides)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_channels, 3, 1, padding=1, bias=False),
            nn.BatchNorm2d(stem_channels),
            nn.ReLU(inplace=True),
        )
        stages = []
        channels = stem_channels
        for width, count, stride in zip(widths, block_counts, strides, strict=True):
            blocks = [BasicBlock(channels, width, stride, dropout)]
            blocks += [BasicBlock(width, width, 1, dropout) for _ in range(count - 1)]
            stages.append(nn.Sequential(*blocks))
            channels = width
        self.stages = nn.Sequential(*stages)
        self.out_channels = channels

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, F, T)`` -> ``(B, widths[-1], F / 8, T / 8)`` for the paper strides."""
        return self.stages(self.stem(features))
