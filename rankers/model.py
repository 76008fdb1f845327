"""URGENT-PK utterance-level pairwise model (early fusion), paper and compact configurations.

The two homologous waveforms are encoded separately (log-mel or a self-supervised model), stacked
as the two input channels of a ResNet34-style comparing module, pooled over time (masked mean and
standard deviation) and mapped by one linear layer to three outputs: the comparison logit
(``P(a better than b) = sigmoid(logit)``) and the MOS of each input.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import torch
from torch import nn

from rankers.encoders import MelEncoder, SslEncoder
from rankers.resnet import (
    ResNetTrunk,
    downsampled_length,
    downsampled_size,
    masked_mean_std,
    unmasked_mean_std,
)
from sqa.checkpoint import register_model
from sqa.checkpoint.importing import register_importer
from sqa.errors import SqaError

MODEL_KIND = "urgent_pk"
PAPER_PARAMETER_COUNT = 5_346_691


class RankerOutput(NamedTuple):
    """Outputs for a batch of pairs: comparison logit and the MOS of inputs a and b, ``(B,)``."""

    logit: torch.Tensor
    mos_a: torch.Tensor
    mos_b: torch.Tensor


@dataclass(frozen=True)
class PairwiseRankerConfig:
    """Configuration of :class:`PairwiseRanker`; the defaults are the paper's mel model.

    Attributes:
        encoder: ``"mel"`` or ``"ssl"``.
        sample_rate: Input rate in Hz (callers resample to it).
        n_fft: FFT size of the mel encoder.
        win_length: Hann window length of the mel encoder.
        hop_length: Frame shift of the mel encoder.
        n_mels: Number of HTK mel bands.
        ssl_path: Local transformers model directory (pretrained weights) for ``"ssl"``.
        ssl_config_json: The backbone's config as JSON (checkpoints rebuild without the folder).
        ssl_layer: Hidden-state index of the backbone used as features (-1: last).
        freeze: Keep the ssl backbone frozen.
        lstm_hidden: BiLSTM units per direction after the ssl backbone (0: none).
        stem_channels: Output channels of the 3x3 stem.
        widths: Channels of the four ResNet stages.
        block_counts: Basic blocks per stage (ResNet34: 3, 4, 6, 3).
        strides: Stride of the first block of each stage.
        dropout: Dropout inside every block.
        pooling: ``"masked"``: mean and standard deviation over the valid frames (biased
            variance floored at 1e-5), interleaved per feature; ``"urgentpk"``: the official
            URGENT-PK statistics (:func:`rankers.resnet.unmasked_mean_std`), which imported
            official checkpoints use.
    """

    encoder: str = "mel"
    sample_rate: int = 16000
    n_fft: int = 320
    win_length: int = 160
    hop_length: int = 80
    n_mels: int = 120
    ssl_path: str | None = None
    ssl_config_json: str = ""
    ssl_layer: int = -1
    freeze: bool = True
    lstm_hidden: int = 0
    stem_channels: int = 32
    widths: tuple[int, ...] = (32, 64, 128, 256)
    block_counts: tuple[int, ...] = (3, 4, 6, 3)
    strides: tuple[int, ...] = (1, 2, 2, 2)
    dropout: float = 0.3
    pooling: str = "masked"


POOLING_KINDS = ("masked", "urgentpk")
PAPER_CONFIG = PairwiseRankerConfig()


def compact_config(**overrides: object) -> PairwiseRankerConfig:
    """A CPU-friendly early-fusion configuration (about 0.2 M parameters, 4x fewer frames)."""
    settings: dict[str, object] = {
        "n_fft": 512,
        "win_length": 320,
        "hop_length": 160,
        "n_mels": 64,
        "stem_channels": 16,
        "widths": (16, 32, 64, 128),
        "block_counts": (1, 1, 1, 1),
        "dropout": 0.1,
    }
    settings.update(overrides)
    return replace(PAPER_CONFIG, **settings)  # type: ignore[arg-type]


def build_encoder(config: PairwiseRankerConfig) -> MelEncoder | SslEncoder:
    """The speech encoder selected by ``config.encoder``."""
    if config.encoder == "mel":
        return MelEncoder(
            config.sample_rate, config.n_fft, config.win_length, config.hop_length, config.n_mels
        )
    if config.encoder == "ssl":
        return SslEncoder(
            config.ssl_path,
            config.ssl_config_json,
            config.ssl_layer,
            config.freeze,
            config.lstm_hidden,
        )
    raise SqaError(f"unknown ranker encoder {config.encoder!r}: use 'mel' or 'ssl'")


class PairwiseRanker(nn.Module):
    """Early-fusion URGENT-PK pairwise model (see the module docstring).

    Args:
        config: The model configuration.
    """

    def __init__(self, config: PairwiseRankerConfig) -> None:
        super().__init__()
        if config.pooling not in POOLING_KINDS:
            raise SqaError(f"unknown ranker pooling {config.pooling!r}: use one of {POOLING_KINDS}")
        self.config = config
        self.sample_rate = config.sample_rate
        self.encoder = build_encoder(config)
        self.trunk = ResNetTrunk(
            2,
            config.stem_channels,
            config.widths,
            config.block_counts,
            config.strides,
            config.dropout,
        )
        pooled_features = downsampled_size(self.encoder.feature_size, config.strides)
        self.head = nn.Linear(self.trunk.out_channels * pooled_features * 2, 3)

    def encode(
        self, waveform: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T)`` waveforms -> features ``(B, F, T')`` and valid frames ``(B,)``."""
        return self.encoder(waveform, lengths)

    def compare_features(
        self,
        features_a: torch.Tensor,
        features_b: torch.Tensor,
        frames: torch.Tensor,
    ) -> RankerOutput:
        """Run the comparing module on two encoded inputs.

        Args:
            features_a: ``(B, F, T')`` features of the first input.
            features_b: ``(B, F, T')`` features of the second input.
            frames: ``(B,)`` valid frames shared by the pair.

        Returns:
            The :class:`RankerOutput` of the batch.
        """
        fused = torch.stack([features_a, features_b], dim=1)
        hidden = self.trunk(fused)
        if self.config.pooling == "urgentpk":
            pooled = unmasked_mean_std(hidden)
        else:
            valid = downsampled_length(frames, self.config.strides)
            pooled = masked_mean_std(hidden, valid).flatten(start_dim=1)
        output = self.head(pooled)
        return RankerOutput(output[:, 0], output[:, 1], output[:, 2])

    def forward(
        self,
        wave_a: torch.Tensor,
        wave_b: torch.Tensor,
        lengths_a: torch.Tensor | None = None,
        lengths_b: torch.Tensor | None = None,
    ) -> RankerOutput:
        """Compare a batch of homologous pairs.

        Args:
            wave_a: ``(B, T)`` first waveforms at ``sample_rate``, zero-padded.
            wave_b: ``(B, T)`` second waveforms (same padded length as ``wave_a``).
            lengths_a: ``(B,)`` valid samples of ``wave_a`` (default: all).
            lengths_b: ``(B,)`` valid samples of ``wave_b`` (default: all).

        Returns:
            :class:`RankerOutput` with ``logit``, ``mos_a`` and ``mos_b``, each ``(B,)``.
        """
        if wave_a.shape != wave_b.shape:
            raise SqaError(f"pair shapes differ: {tuple(wave_a.shape)} vs {tuple(wave_b.shape)}")
        full = torch.full((wave_a.shape[0],), wave_a.shape[1], device=wave_a.device)
        lengths_a = full if lengths_a is None else lengths_a
        lengths_b = full if lengths_b is None else lengths_b
        lengths = torch.minimum(lengths_a, lengths_b)
        features, frames = self.encode(torch.cat([wave_a, wave_b]), torch.cat([lengths, lengths]))
        features_a, features_b = features.chunk(2)
        return self.compare_features(features_a, features_b, frames[: wave_a.shape[0]])


def count_parameters(model: nn.Module) -> int:
    """Number of trainable and frozen parameters of ``model``."""
    return sum(parameter.numel() for parameter in model.parameters())


register_model(MODEL_KIND, PairwiseRankerConfig, PairwiseRanker, role="pairwise ranker")
register_importer(
    "urgent-pk",
    "rankers.official_import:import_urgent_pk",
    "URGENT-PK Lightning checkpoint (mel encoder, ResNet34/18 comparing module)",
)
